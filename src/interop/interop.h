/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Moving VMs in and out (issue 17, docs/interop.md): libvirt domain XML
 * (import and export), quickemu configurations, OVA/OVF appliances.
 *
 * An import is two steps.  A reader (libvirt.c, quickemu.c, ova.c) turns
 * the foreign description into a plan: a Phyllome definition, the files to
 * bring (disks copied, converted or referenced; UEFI vars; TPM state) and a
 * report of everything it did not map one to one.  interop_place() then
 * checks the plan (paths against the containment rules, the model against
 * this host), builds the VM in a temporary directory and renames it into
 * place: a failed import leaves nothing behind.
 *
 * Everything read here is untrusted: XML is parsed without entities, DTDs
 * or network, capped in size; every host path is checked with
 * vm_path_check before it is read; errors name the file, the element and
 * its line.
 */
#include <stdbool.h>
#include <stdint.h>
#include "cleanup.h"
#include "error.h"
#include "strv.h"
#include "vm/vm.h"

struct json_object;

/* ---- the import report (report.c) ---- */

enum interop_status {
        INTEROP_CHANGED,        /* mapped, but not the same thing (a guest may notice when guest_visible) */
        INTEROP_DROPPED,        /* not modelled by Phyllome: left out */
        INTEROP_IMPLIED,        /* Phyllome provides its own equivalent (controllers, serial console, ...) */
        INTEROP_NOTE,           /* a fact worth knowing (a guess made, a file referenced) */
};

struct interop_report {
        struct json_object *items;      /* array of {element, line, status, guest_visible, message} */
};

/* element: where it came from ("/domain/devices/sound[1]", "quickemu.conf:7 tpm"),
 * line 0 when unknown. */
void interop_report_add(struct interop_report *r, const char *element, long line, enum interop_status st,
                        bool guest_visible, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void interop_report_done(struct interop_report *r);
/* How many items have status st (-1: all). */
size_t interop_report_count(const struct interop_report *r, int st);
/* {"changed": n, "dropped": n, "implied": n, "notes": n, "guest_visible": n, "items": [...]}; a new reference. */
struct json_object *interop_report_json(const struct interop_report *r);
const char *interop_status_name(enum interop_status st);

/* ---- an import plan ---- */

enum interop_file_how {
        INTEROP_DISK,           /* a disk image: qemu-img convert into the VM dir (flattened, checked) */
        INTEROP_FILE,           /* a small file copied (UEFI vars) */
        INTEROP_TREE,           /* the regular files of a directory copied (TPM state) */
};

struct interop_file {
        enum interop_file_how how;
        char *src;              /* absolute host path */
        char *dst;              /* relative to the new VM dir */
        char *src_format;       /* INTEROP_DISK: the source's format as the description says (NULL: probe) */
        char *dst_format;       /* INTEROP_DISK: qcow2 or raw */
        char *what;             /* the element, for messages */
};

struct interop_plan {
        struct vm_def def;
        struct interop_file *files;
        size_t n_files;
        struct interop_report report;
        char *source;           /* what was read, for messages */
        char *tmpdir;           /* an OVA's extracted members (removed by interop_plan_done) */
};

void interop_plan_done(struct interop_plan *p);
#define _cleanup_interop_plan_ _cleanup_(interop_plan_done)
int interop_plan_add_file(struct interop_plan *p, enum interop_file_how how, const char *src, const char *dst,
                          const char *src_format, const char *dst_format, const char *what, phy_error *err);

/* What the caller chose. */
struct interop_opts {
        const char *name;       /* the new VM's name (NULL: the description's) */
        const char *profile;    /* NULL: guessed from the description (reported) */
        bool reference;         /* disks used where they are (qcow2/raw only), not copied */
        const char *tpm_state;  /* libvirt: swtpm's state dir of this domain (NULL: none known) */
        const char *libvirt_uri; /* libvirt: the connection read (its swtpm dir is known, see below) */
        const char *base_dir;   /* quickemu: the directory relative paths are relative to */
        bool allow_no_manifest; /* OVA: accept an appliance without a .mf (reported) */
};

/* Builds the VM the plan describes in <home>/vms/<name>: every source path
 * checked (vm_path_check_here, naming the element), disks converted with
 * qemu_img (backing files refused), the model resolved against host and caps
 * before anything is renamed into place; an existing VM is refused. */
struct host_facts;
struct qemu_caps;
int interop_place(const char *home, struct interop_plan *p, const struct host_facts *host,
                  const struct qemu_caps *caps, const char *qemu_img, phy_error *err);

/* ---- libvirt (libvirt.c, libvirt-export.c) ---- */

/* Most bytes of a domain XML, an OVF descriptor or a quickemu file. */
#define INTEROP_TEXT_MAX (1024u * 1024)

/* A domain XML (text, len bytes; source names it in messages) into a plan. */
int interop_libvirt_parse(const char *source, const char *text, size_t len, const struct interop_opts *o,
                          struct interop_plan *ret, phy_error *err);
/* swtpm's state directory libvirt keeps for domain uuid under connection
 * uri (qemu:///system or qemu:///session); NULL when another URI. */
char *interop_libvirt_tpm_dir(const char *uri, const char *uuid);

struct interop_export_opts {
        const char *target;     /* where DIR will be on the libvirt host (NULL: DIR itself) */
        bool kvm;               /* domain type kvm (else qemu, TCG) */
        const char *qemu_img;
};
/*
 * Writes VM d (the model m: every value resolved) from its directory vmdir
 * into dir in /var/lib/libvirt's layout: NAME.xml, images/NAME-DISK.qcow2,
 * qemu/nvram/NAME_VARS.fd, swtpm/UUID/tpm2/ (the files that exist).  dir
 * must not exist or be empty.  What libvirt cannot express goes to *report.
 */
int interop_libvirt_export(const struct vm_def *d, const struct vm_def *m, const char *vmdir, const char *dir,
                           const struct interop_export_opts *o, struct interop_report *report, char **ret_xml_path,
                           phy_error *err);
/* The domain XML alone (for tests): malloc'd text. */
int interop_libvirt_format(const struct vm_def *d, const struct vm_def *m, const struct interop_export_opts *o,
                           const char *disk_dir, const char *nvram, const char *log_dir,
                           struct interop_report *report, char **ret, phy_error *err);

/* ---- quickemu (quickemu.c) ---- */

int interop_quickemu_parse(const char *source, const char *text, const struct interop_opts *o,
                           struct interop_plan *ret, phy_error *err);

/* ---- OVA / OVF (ova.c) ---- */

/* An OVF descriptor (dir: where its files are). */
int interop_ovf_parse(const char *source, const char *text, size_t len, const char *dir,
                      const struct interop_opts *o, struct interop_plan *ret, phy_error *err);
/* An .ova (tar): members extracted into workdir (an empty directory the
 * caller made; the plan removes it when done), the .mf checked (a wrong
 * checksum is refused), then the .ovf read. */
int interop_ova_open(const char *path, const char *workdir, const struct interop_opts *o, struct interop_plan *ret,
                     phy_error *err);

/* ---- safe XML (xml.c) ---- */

struct _xmlDoc;
struct _xmlNode;
/* Parses text (at most INTEROP_TEXT_MAX bytes) refusing any DOCTYPE (so no
 * entity, internal or external), without network access. */
int interop_xml_read(const char *source, const char *text, size_t len, struct _xmlDoc **ret, phy_error *err);
/* "/domain/devices/disk[2]" of node (malloc'd). */
char *interop_xml_where(struct _xmlNode *node);

/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Disks, snapshots, clones and bundles of a VM (docs/storage.md).  All work
 * goes through the real qemu-img (found like vm_create finds it: the given
 * path, $PHYLLOME_QEMU_IMG, $PATH).  Every function that changes a VM
 * refuses a running one where that is unsafe ("stop it first").
 */
#include <stdbool.h>
#include <stdint.h>
#include "error.h"
#include "strv.h"

struct json_object;

/* ---- tools (tool.c) ------------------------------------------------------ */

/* qemu-img: given, else $PHYLLOME_QEMU_IMG, else $PATH.  malloc'd or NULL. */
char *store_find_qemu_img(const char *given);
/* Runs argv (no shell).  stdout is captured into *ret_out (malloc'd, capped
 * at 16 MiB) when ret_out is non-NULL; stderr into errbuf.  0 on exit 0,
 * -ENOEXEC when it could not run, -EIO on another exit. */
int store_run(char *const *argv, char **ret_out, char *errbuf, size_t errlen);
/* `qemu-img info --output=json -U <path>` parsed (caller puts it). */
int store_image_info(const char *qemu_img, const char *path, struct json_object **ret, phy_error *err);
/* The same read as fmt (-f fmt), never probed; fmt NULL: probed.  A VM's
 * disk is always read as its definition's format: a raw disk's guest may
 * have written a qcow2 header naming any host file as its backing file. */
int store_image_info_as(const char *qemu_img, const char *path, const char *fmt, struct json_object **ret,
                        phy_error *err);
/* The same for the image held open as fd (path names it in messages and in
 * the JSON): qemu-img reads that very file (/proc/PID/fd/N), after
 * vm_image_fd_check (a regular file, no external data file).  store_image_info_as
 * opens path and calls this. */
int store_image_info_fd(const char *qemu_img, int fd, const char *path, const char *fmt, struct json_object **ret,
                        phy_error *err);
/* Whether qemu-img info's JSON shows an image that takes data from other
 * files: an external data file, or extents (VMDK) other than self, the
 * name qemu-img was given. */
bool store_image_names_other(struct json_object *info, const char *self);
/* A disk opened with its chain (vm/chain.h: vm_disk_chain_open) as
 * qemu-img's --image-opts: "driver=FMT,file.filename=/proc/PID/fd/N" and a
 * backing node per link, so that qemu-img reads the files checked, never
 * what a header names (malloc'd; NULL: out of memory). */
struct vm_chain;
char *store_chain_image_opts(const struct vm_chain *c, const char *fmt);
struct vm_disk;
/* The definition's format of a disk (qcow2 when it names none). */
const char *store_disk_format(const struct vm_disk *k);

/* ---- disks (disk.c) ------------------------------------------------------ */

struct store_disk_add {
        const char *disk;       /* [disk NAME]; NULL: "disk<N>" */
        uint64_t size;          /* new image of this size (qcow2) */
        const char *image;      /* or attach this image: raw and qcow2 in place, others converted */
        int bus;                /* enum vm_bus; 0: virtio */
        const char *key_file;   /* a new LUKS-encrypted qcow2 with the key in this 0600 file */
        bool key_prompt;        /* key_file holds a typed passphrase: the disk gets key = prompt */
};
/* Adds a disk to VM name's definition.  Takes effect at the next start
 * (*ret_pending true when the VM is running now).  The name of the new
 * disk goes to *ret_disk (malloc'd) when non-NULL. */
int store_disk_add(const char *home, const char *name, const struct store_disk_add *o,
                   const char *qemu_img, char **ret_disk, bool *ret_pending, phy_error *err);
/* Encrypted disks whose passphrase is typed ([disk] key = prompt): ask
 * fills buf with the passphrase for disk (NUL-terminated) or returns
 * -errno.  unlock asks for each such disk of d and keeps the answer in
 * <run dir>/key-disk-<name> (0600) for the command that needs it; forget
 * removes them.  unlock returns how many it asked for (0: none needed);
 * without ask, a disk that needs one is -ENOKEY with a sentence. */
struct vm_def;
typedef int (*store_ask_fn)(const char *disk, char *buf, size_t len, void *userdata);
int store_keys_unlock(const char *home, const struct vm_def *d, store_ask_fn ask, void *userdata, phy_error *err);
void store_keys_forget(const char *home, const struct vm_def *d);
char *store_key_path(const char *run_dir, const char *disk);
/* A JSON array: per disk name, path, format, bus, virtual-size, actual-size,
 * backing (or null), snapshots (count). */
int store_disk_list(const char *home, const char *name, const char *qemu_img, struct json_object **ret,
                    phy_error *err);
/* Grows (or with shrink, also shrinks) a disk of a stopped VM. */
int store_disk_resize(const char *home, const char *name, const char *disk, uint64_t size, bool shrink,
                      const char *qemu_img, phy_error *err);
/* Removes a disk from a stopped VM's definition; its image too when it lies
 * in the VM's directory, unless keep_file. */
int store_disk_remove(const char *home, const char *name, const char *disk, bool keep_file, phy_error *err);

/* ---- snapshots (snapshot.c) ---------------------------------------------- */

/* A snapshot: an internal qcow2 snapshot in every disk plus copies of the
 * UEFI vars and the TPM state in <vm_dir>/snapshots/<snap>/.  Of a running
 * VM: its CPUs are stopped, vars and TPM copied, and QEMU's snapshot-save
 * job stores disks and memory (vmstate in the first disk); then it runs on. */
int store_snapshot_create(const char *home, const char *name, const char *snap, const char *qemu_img,
                          phy_error *err);
/* JSON array of {name, created, disks, vars, tpm}, oldest first. */
int store_snapshot_list(const char *home, const char *name, struct json_object **ret, phy_error *err);
/* A revert's checks that change nothing: snap exists and holds only disks
 * the VM has (run before a running VM is stopped for the revert). */
int store_snapshot_revert_check(const char *home, const char *name, const char *snap, const char *qemu_img,
                                phy_error *err);
/* Brings disks, vars and TPM state of a stopped VM back to snap (a running
 * one is refused: stopping it is the caller's, src/ops).  *ret_memory: the
 * snapshot was taken while the VM ran and also holds its memory; to run on
 * from that moment, the caller starts the VM paused and calls
 * store_snapshot_load_memory. */
int store_snapshot_revert(const char *home, const char *name, const char *snap, const char *qemu_img,
                          bool *ret_memory, phy_error *err);
/* Loads snap's memory into VM name, which runs paused (snapshot-load), and
 * lets it run. */
int store_snapshot_load_memory(const char *home, const char *name, const char *snap, phy_error *err);
int store_snapshot_delete(const char *home, const char *name, const char *snap, const char *qemu_img,
                          phy_error *err);

/* ---- clones (clone.c) ---------------------------------------------------- */

enum store_tpm_mode { STORE_TPM_DEFAULT = 0, STORE_TPM_COPY, STORE_TPM_FRESH };
/*
 * Clones the stopped VM src into dst with a new identity (uuid, MACs) and
 * its own vars copy.  Linked (default): each source disk is frozen into
 * <src_dir>/base/ and both VMs get a thin qcow2 overlay on it, so the time
 * does not depend on the disk size.  full: independent copies (qemu-img
 * convert).  TPM: default is fresh for both kinds (a clone is a new machine).
 */
int store_clone(const char *home, const char *src, const char *dst, bool full, enum store_tpm_mode tpm,
                const char *qemu_img, phy_error *err);
/* The VMs whose disks use a frozen base of VM name (sorted). */
int store_clones_of(const char *home, const char *name, strv *ret, phy_error *err);
/* Called before deleting VM name: refuses (-EBUSY, naming the clones) when
 * linked clones depend on it; with force, first makes each clone's disks
 * standalone (qemu-img rebase onto nothing) so they survive the delete. */
int store_delete_check(const char *home, const char *name, bool force, const char *qemu_img, phy_error *err);

/* ---- bundles (bundle.c) -------------------------------------------------- */

/* Progress: done and total bytes of disk data; may be NULL. */
typedef void (*store_progress_fn)(uint64_t done, uint64_t total, void *userdata);

/* Writes VM name (stopped) as a tar+zstd bundle to fd: vm.conf, each disk
 * (a backing chain flattened to one qcow2), OVMF_VARS.fd, tpm/, and
 * manifest.json last with the size and sha256 of every member. */
int store_export(const char *home, const char *name, int fd, const char *qemu_img, store_progress_fn progress,
                 void *userdata, phy_error *err);
/* What an import may do (all zero: untrusted, no cap but free space). */
struct store_import_opts {
        const char *new_name;           /* import under this name (a new identity); NULL: the bundle's */
        bool trust;                     /* a bundle you made yourself: its host paths, forwards and
                                         * devices are kept (see docs/storage.md, "Untrusted bundles") */
        uint64_t max_bytes;             /* cap on the uncompressed data written; 0: free space only */
        const char *qemu_img;           /* NULL: found as usual */
        store_progress_fn progress;     /* may be NULL */
        void *userdata;
        const volatile int *cancel;     /* when it becomes non-zero (another thread), the import stops
                                         * and removes what it wrote (-ECANCELED) */
};

struct store_import_result {
        char *name;                     /* the VM's name (malloc'd) */
        strv stripped;                  /* one sentence per key removed or changed, e.g. "[cdrom
                                         * install] path '/x' removed: a host file" */
};
void store_import_result_done(struct store_import_result *r);

/* Reads a bundle from fd into <home>/vms/<new_name or the bundle's name>.
 * Everything is checked (member names, duplicates, declared sizes against
 * the cap and the free space before anything is written, sha256 and sparse
 * map, the definition, each qcow2 backing chain) in a temporary directory
 * that is renamed into place only when whole.  Unless o->trust, every key
 * that reaches outside the VM's own files (host paths, port forwards, host
 * devices, bridges) is removed or changed and listed in ret->stripped. */
int store_import(const char *home, int fd, const struct store_import_opts *o, struct store_import_result *ret,
                 phy_error *err);
/* A member name a bundle may hold: relative, no "." or ".." part, one
 * level at most and only under tpm/, a plain character set.  (Exposed for
 * the unit tests; store_import applies it to every member.) */
bool store_bundle_member_name_ok(const char *p);

/* ---- live migration (migrate.c) ------------------------------------------ */

/* Progress of a migration: phase "prepare", "disks" (bytes mirrored) or
 * "memory" (bytes of RAM sent, of the guest's total). */
typedef void (*store_migrate_progress_fn)(const char *phase, uint64_t done, uint64_t total, void *userdata);

struct store_migrate_opts {
        const char *dest_home;          /* the Phyllome home that receives the VM */
        const char *address;            /* IPv4 address the data flows over; NULL: 127.0.0.1 */
        const char *qemu_img;
        uint64_t max_bandwidth;         /* bytes/s for the memory stream; 0: 16 GiB/s */
        unsigned timeout_s;             /* for the disk copy and for the memory copy; 0: 600 */
        store_migrate_progress_fn progress;
        void *userdata;
};

struct store_migrate_result {
        int64_t downtime_ms;            /* the guest's pause at the switch-over (QEMU's "downtime") */
        int64_t total_ms;               /* the memory migration, start to end */
        uint64_t ram_bytes;             /* bytes of RAM sent */
};

/*
 * Live migration of running VM name from home to o->dest_home (another
 * home on this machine) without shared storage, in two halves around the
 * destination's start, which is the caller's (src/ops: the lifecycle is
 * not store's):
 *
 *   store_migrate_begin     checks, the destination's definition, disks
 *                           and vars made, the source's QMP opened
 *   (caller)                starts the destination VM in o->dest_home
 *                           paused, waiting for the migration ("-incoming
 *                           defer"), under its own monitor
 *   store_migrate_transfer  every read-write disk (and the UEFI vars)
 *                           mirrored into the destination's NBD exports
 *                           over TCP, then RAM and device state; the
 *                           destination runs and the source QEMU is quit
 *                           (its state: stopped, "migrated to ...")
 *   (caller)                waits for the source to be stopped
 *   store_migrate_end       frees the migration
 *
 * On a failure of transfer (which cancels what it began on the source:
 * the source keeps running), or of the destination's start (the caller
 * calls store_migrate_cancel), the caller ends the destination's QEMU and
 * store_migrate_end removes the destination's files.
 */
struct store_migration;
int store_migrate_begin(const char *home, const char *name, const struct store_migrate_opts *o,
                        struct store_migration **ret, phy_error *err);
int store_migrate_transfer(struct store_migration *m, struct store_migrate_result *ret, phy_error *err);
void store_migrate_cancel(struct store_migration *m);
void store_migrate_end(struct store_migration *m);

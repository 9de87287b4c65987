/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The catalog's verbs, each written once (docs/catalog.md): list, show,
 * identify, verify, download, the unattended install's answer (install) and
 * the answer files on disk (unattend).  Each returns its result as JSON; none
 * prints.  They run in `phyllome-catalog-worker` (src/libexec), which
 * phyllod and phyllo start with an argv array (src/ops/worker.c): neither
 * loads libosinfo, GLib or libcurl itself.  catalog_verb_list is in the
 * catalog file's own library (catalog.c), so phyllod lists without a child.
 *
 * catalog: the catalog file (NULL: $PHYLLOME_CATALOG, else the installed one).
 */
#include <stdbool.h>
#include "catalog.h"
#include "unattend.h"

struct json_object;

/* The entries whose id, name or osinfo id holds word (NULL: all), an array. */
int catalog_verb_list(const char *catalog, const char *word, struct json_object **ret, phy_error *err);
/* The entry, osinfo's facts ("os"), the plan ("plan": the resources create
 * takes), "unattended" (whether an answer file can be made) and "create":
 * the members of POST /v1/vms the plan sets (profile, and cpus, memory,
 * disk, disk_bus, nic, gpu where osinfo says better than the profile). */
int catalog_verb_show(const char *catalog, const char *os, struct json_object **ret, phy_error *err);
/* The OS on an install ISO by libosinfo's media detection: file, volume_id,
 * catalog (the entry's id, when the catalog has that OS), os, plan,
 * unattended, create.  -ENOENT when osinfo-db knows no OS with its ids. */
int catalog_verb_identify(const char *catalog, const char *iso, struct json_object **ret, phy_error *err);
/* file, sha256, verified; os, vendor_name and how when verified, else
 * "message" (why not).  0 either way; < 0 when the file cannot be read. */
int catalog_verb_verify(const char *catalog, const char *file, struct json_object **ret, phy_error *err);

struct catalog_verb_download {
        const char *dir;                /* NULL: the media cache */
        bool unverified;
        catalog_progress_fn progress;
        void *userdata;
        const volatile int *cancel;     /* non-zero: stop */
        bool drop_partial;              /* a cancelled download removes its partial file (else kept to resume) */
};
/* {os, path, verified (false: the catalog has no checksum or signature)}. */
int catalog_verb_download(const char *catalog, const char *os, const struct catalog_verb_download *o,
                          struct json_object **ret, phy_error *err);
/* An unattended install as POST /v1/vms's "install" member takes it:
 * {"profile": the OS's, "install": {...}}.  os: a catalog id, or NULL to
 * identify the ISO; profile: the VM's (NULL: the OS's) decides Windows or
 * osinfo's script.  The password is the first line of password_file. */
int catalog_verb_install(const char *catalog, const char *os, const char *iso, const char *profile,
                         struct catalog_unattend *u, const char *password_file, struct json_object **ret,
                         phy_error *err);
/* The answer file (and the answer ISO for Windows, the initrd with the
 * answer for others when initrd is given) written under out (0700):
 * {os, answer_file, image?, initrd?}. */
int catalog_verb_unattend(const char *catalog, const char *os, struct catalog_unattend *u, const char *password_file,
                          const char *out, const char *initrd, struct json_object **ret, phy_error *err);

/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * QEMU's loadable modules: which file brings which feature Phyllome uses,
 * and which Debian 12 package ships it.  Debian's qemu-system-x86 has its
 * displays, 3D and some audio drivers in modules (.so files in
 * /usr/lib/x86_64-linux-gnu/qemu); those of qemu-system-gui come only as
 * a Recommends, so a machine installed with --no-install-recommends lacks
 * them and QEMU lacks the features.  The table serves `phyllo host check`
 * (what is missing, which package to install) and the capability probe's
 * refusals ("install qemu-system-gui").
 */
#include <stdbool.h>
#include "error.h"
#include "strv.h"

struct host_qemu_module {
        const char *file;       /* "ui-gtk.so" */
        const char *package;    /* the Debian 12 package that ships it */
        const char *feature;    /* what Phyllome uses it for, a phrase */
        /* What it adds to QEMU, space separated "kind:name" words: kinds are
         * device (a QOM type), display (-display), audio (-audiodev), accel. */
        const char *provides;
};

/* The modules Phyllome's features use, in a stable order. */
extern const struct host_qemu_module host_qemu_modules[];
extern const size_t host_qemu_modules_n;

/* The module that provides kind:name ("device", "virtio-gpu-gl-device"), or NULL. */
const struct host_qemu_module *host_qemu_module_providing(const char *kind, const char *name);

/* QEMU's module directory below an installation prefix ("/usr", or a root
 * prefix + "/usr"): the first of lib/x86_64-linux-gnu/qemu (Debian),
 * lib64/qemu and lib/qemu that is a directory.  NULL when none is (a QEMU
 * built without modules, or none installed); -ENOMEM as NULL too. */
char *host_qemu_module_dir(const char *prefix);

/* The modules of the table found and missing in QEMU's module directory
 * under a root prefix ("/" or NULL: the real host). */
struct host_qemu_modules {
        char *dir;              /* the directory as seen on the host (no root prefix); NULL: none found */
        strv found;             /* file names from the table, in table order */
        strv missing;
};
int host_qemu_modules_scan(const char *root, struct host_qemu_modules *ret, phy_error *err);
void host_qemu_modules_done(struct host_qemu_modules *m);

/* SPDX-License-Identifier: MIT */
/*
 * The one-shot unattended install boot, [install] (docs/vm-format.md,
 * docs/catalog.md).  vm_install_apply turns a definition into the model of
 * its install run; vm_install_finish ends it: [install] leaves vm.conf and
 * the media's kernel and initrd copied into the VM dir go.  The answer file
 * never enters the definition: it is in the run dir for that run only
 * (src/run/install.c).
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "vm.h"

/* [install] is all or nothing: the media, the answer file's name and how it
 * reaches the installer; with initrd delivery the kernel and initrd too. */
int vm_install_check(const char *file, const struct vm_install *in, phy_error *err) {
        bool any = in->media || in->kernel || in->initrd || in->append || in->answer || in->delivery;
        if (!any)
                return 0;
        if (!in->media || !in->answer || !in->delivery)
                return phy_error_usage(err, "%s: section [install] needs media, answer and delivery (a one-shot "
                                       "unattended install; docs/vm-format.md)", file);
        if (in->delivery == VM_INSTALL_INITRD && (!in->kernel || !in->initrd))
                return phy_error_usage(err, "%s: section [install] with delivery = initrd needs kernel and initrd",
                                       file);
        if (in->delivery == VM_INSTALL_CDROM && (in->kernel || in->initrd || in->append))
                return phy_error_usage(err, "%s: section [install] with delivery = cdrom takes no kernel, initrd "
                                       "or append", file);
        return 0;
}

bool vm_install_answer_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 64 || s[0] == '.')
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && !strchr("._-", *s))
                        return false;
        return true;
}

void vm_install_done(struct vm_install *in) {
        free(in->media);
        free(in->kernel);
        free(in->initrd);
        free(in->append);
        free(in->answer);
        *in = (struct vm_install) { 0 };
}

static int prepend_cdrom(struct vm_def *d, const char *name, const char *path, bool first) {
        struct vm_cdrom *cd = realloc(d->cdroms, (d->n_cdroms + 1) * sizeof *cd);
        if (!cd)
                return -ENOMEM;
        d->cdroms = cd;
        size_t at = first ? 0 : d->n_cdroms;
        memmove(&cd[at + 1], &cd[at], (d->n_cdroms - at) * sizeof *cd);
        cd[at] = (struct vm_cdrom) { .name = strdup(name), .path = strdup(path), .bus = VM_BUS_SATA };
        d->n_cdroms++;
        return cd[at].name && cd[at].path ? 0 : -ENOMEM;
}

static int set(char **field, const char *v) {
        char *c = v ? strdup(v) : NULL;
        if (v && !c)
                return -ENOMEM;
        free(*field);
        *field = c;
        return 0;
}

int vm_install_apply(struct vm_def *d, const char *run_dir, phy_error *err) {
        const struct vm_install *in = &d->install;
        if (!in->delivery)
                return phy_error_set(err, EINVAL, "VM '%s' has no [install] section: nothing to install", d->name);
        _cleanup_free_ char *initrd = NULL, *iso = NULL;
        if (asprintf(&initrd, "%s/" VM_INSTALL_INITRD_FILE, run_dir) < 0 ||
            asprintf(&iso, "%s/" VM_INSTALL_ISO_FILE, run_dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = 0;
        /* The installer first in the boot order; the disk stays bootable
         * behind it, and the answer CD comes after both. */
        if (in->delivery == VM_INSTALL_INITRD)
                r = set(&d->kernel, in->kernel) < 0 || set(&d->initrd, initrd) < 0 || set(&d->append, in->append) < 0
                    ? -ENOMEM : 0;
        if (r >= 0)
                r = prepend_cdrom(d, VM_INSTALL_MEDIA_CDROM, in->media, true);
        if (r >= 0 && in->delivery == VM_INSTALL_CDROM)
                r = prepend_cdrom(d, VM_INSTALL_ANSWER_CDROM, iso, false);
        if (r < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        d->install_run = true;
        return 0;
}

int vm_install_finish(const char *home, const char *name, phy_error *err) {
        _cleanup_vm_edit_ struct vm_edit e = { .lock = -1 };
        int r = vm_edit_begin(home, name, &e, err);
        if (r < 0)
                return r;
        if (!e.def.install.delivery)
                return 0;
        /* The copies of the media's kernel and initrd, inside the VM dir only
         * (a path that leaves it is the user's own file, kept). */
        _cleanup_free_ char *dir = strdup(e.conf);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (!slash)
                return phy_error_set(err, ENOMEM, "out of memory");
        *slash = '\0';
        const char *files[] = { e.def.install.kernel, e.def.install.initrd };
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        for (size_t i = 0; i < ELEMENTSOF(files) && dfd >= 0; i++)
                if (files[i] && files[i][0] != '/')
                        (void) unlink_beneath(dfd, files[i]);
        vm_install_done(&e.def.install);
        return vm_edit_save(&e, err);
}

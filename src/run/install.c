/* SPDX-License-Identifier: MIT */
/*
 * The files of an unattended install run (docs/catalog.md, docs/security.md).
 * The answer file reaches run_start in memory (from the create request) and
 * is written only here, into the run dir, which is root's (0710 root:<VM
 * gid>): the initrd holding it, or the small CD holding it, is 0640 root:<VM
 * gid>, so the VM's QEMU uid can read it and no other uid can.  When the run
 * ends, the monitor (or a reconcile after a crash) removes them and the
 * definition's [install] (vm_install_finish).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "media.h"
#include "run-internal.h"
#include "run.h"
#include "vm/vm.h"

#define INITRD_MAX (1024u * 1024 * 1024)

/* The media's initrd copied into the VM dir (or a path the definition names
 * under allow-paths), opened without following a symlink on the way. */
static int read_initrd(const char *vm_dir, const char *path, char **ret, size_t *ret_len, phy_error *err) {
        _cleanup_close_ int dfd = open(vm_dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int fd = -1;
        if (dfd < 0)
                return phy_error_set(err, errno, "cannot open '%s': %s", vm_dir, strerror(errno));
        if (path[0] == '/') {
                char real[4096];
                fd = realpath(path, real) ? open_resolved(real, O_RDONLY, 0) : -errno;
        } else
                fd = open_beneath(dfd, path, O_RDONLY, 0);
        if (fd < 0)
                return phy_error_set(err, -fd, "cannot open the installer's initrd '%s': %s", path, strerror(-fd));
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t) st.st_size > INITRD_MAX)
                return phy_error_set(err, EINVAL, "the installer's initrd '%s' is not a regular file of at most 1 GiB",
                                     path);
        _cleanup_free_ char *buf = malloc((size_t) st.st_size + 1);
        size_t n = 0;
        if (!buf)
                return phy_error_set(err, ENOMEM, "out of memory");
        while (n < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return phy_error_set(err, k < 0 ? errno : EIO, "cannot read '%s'", path);
                n += (size_t) k;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = n;
        return 0;
}

/* Hands file (in the run dir, ours) to root:<VM gid> 0640, or keeps it 0600
 * when QEMU runs as ourselves. */
static int restrict_to_vm(int dfd, const char *file, const struct run_creds *cr, phy_error *err) {
        _cleanup_close_ int fd = openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
                return phy_error_set(err, EPERM, "'%s' in the run dir is not our own regular file", file);
        if (fchown(fd, geteuid(), cr->drop ? cr->gid : getegid()) < 0 || fchmod(fd, cr->drop ? 0640 : 0600) < 0)
                return phy_error_set(err, errno, "cannot hand '%s' to the VM's group: %s", file, strerror(errno));
        return 0;
}

int run_install_prepare(const char *vm_dir, const char *run_dir, const struct vm_install *in,
                        const struct run_answer *a, const struct run_creds *cr, phy_error *err) {
        _cleanup_close_ int dfd = open(run_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return phy_error_set(err, errno, "cannot open the runtime directory '%s': %s", run_dir,
                                     strerror(errno));
        run_install_cleanup(run_dir);
        _cleanup_free_ char *out = NULL;
        int r;
        if (in->delivery == VM_INSTALL_INITRD) {
                _cleanup_free_ char *orig = NULL, *all = NULL;
                size_t olen = 0, alen = 0;
                if ((r = read_initrd(vm_dir, in->initrd, &orig, &olen, err)) < 0)
                        return r;
                if ((r = media_initrd_with(orig, olen, in->answer, a->data, a->len, &all, &alen)) < 0)
                        return phy_error_set(err, -r, "cannot add '%s' to the installer's initrd: %s", in->answer,
                                             strerror(-r));
                if (!(out = run_file(run_dir, VM_INSTALL_INITRD_FILE)))
                        return phy_error_set(err, ENOMEM, "out of memory");
                /* A fresh file of ours: nobody else writes in the run dir. */
                _cleanup_close_ int fd = openat(dfd, VM_INSTALL_INITRD_FILE,
                                                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return phy_error_set(err, errno, "cannot create '%s': %s", out, strerror(errno));
                for (size_t off = 0; off < alen;) {
                        ssize_t k = write(fd, all + off, alen - off);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0) {
                                r = phy_error_set(err, errno, "cannot write '%s': %s", out, strerror(errno));
                                run_install_cleanup(run_dir);
                                return r;
                        }
                        off += (size_t) k;
                }
                r = restrict_to_vm(dfd, VM_INSTALL_INITRD_FILE, cr, err);
        } else {
                if (!(out = run_file(run_dir, VM_INSTALL_ISO_FILE)))
                        return phy_error_set(err, ENOMEM, "out of memory");
                /* Windows setup looks for autounattend.xml at the root of every removable drive. */
                if ((r = media_iso_one(in->answer, a->data, a->len, "UNATTEND", out, err)) >= 0)
                        r = restrict_to_vm(dfd, VM_INSTALL_ISO_FILE, cr, err);
        }
        if (r < 0)
                run_install_cleanup(run_dir);
        return r;
}

bool run_install_cleanup(const char *run_dir) {
        _cleanup_close_ int dfd = open(run_dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return false;
        bool any = false;
        static const char *const files[] = { VM_INSTALL_INITRD_FILE, VM_INSTALL_ISO_FILE };
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                if (unlinkat(dfd, files[i], 0) == 0)
                        any = true;
        return any;
}

void run_install_end(const char *home, const char *name, const char *run_dir) {
        phy_error e = { 0 };
        run_install_cleanup(run_dir);
        (void) vm_install_finish(home, name, &e);
}

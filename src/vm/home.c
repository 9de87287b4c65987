/* SPDX-License-Identifier: MIT */
/*
 * Where VMs live in a Phyllome home (<home>/vms/<name>/vm.conf) and the
 * operations on that layout: list, load by name, create, delete.
 * Work in progress is built under a name no VM can have ('#' is not allowed
 * in names) and renamed into place, so readers never see half a VM.
 */
#include "vm.h"
#include "exec.h"
#include "qemu/tools.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "profile.h"

extern char **environ;

char *vm_dir(const char *home, const char *name) {
        char *p = NULL;
        if (asprintf(&p, "%s/vms/%s", home, name) < 0)
                return NULL;
        return p;
}

char *vm_conf_path(const char *home, const char *name) {
        char *p = NULL;
        if (asprintf(&p, "%s/vms/%s/vm.conf", home, name) < 0)
                return NULL;
        return p;
}

char *vm_path_resolve(const char *vmdir, const char *path) {
        char *p = NULL;
        if (path[0] == '/')
                return strdup(path);
        if (asprintf(&p, "%s/%s", vmdir, path) < 0)
                return NULL;
        return p;
}

const char *vm_dir_relative(const char *vmdir, const char *path) {
        if (path[0] != '/')
                return path;
        size_t n = strlen(vmdir);
        if (strncmp(path, vmdir, n) != 0 || path[n] != '/')
                return NULL;
        while (path[n] == '/')
                n++;
        return path[n] ? path + n : NULL;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int vm_list(const char *home, strv *ret, phy_error *err) {
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s/vms", home) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        _cleanup_strv_ strv names = { 0 };
        DIR *d = opendir(dir);
        if (!d) {
                if (errno == ENOENT) {
                        *ret = (strv) { 0 };
                        return 0;
                }
                return phy_error_set(err, errno, "cannot read the VM directory '%s': %s", dir, strerror(errno));
        }
        for (struct dirent *de; (de = readdir(d));) {
                if (!vm_name_valid(de->d_name))
                        continue;
                struct stat st;
                _cleanup_free_ char *conf = NULL;
                if (asprintf(&conf, "%s/%s/vm.conf", dir, de->d_name) < 0) {
                        conf = NULL;
                        closedir(d);
                        return phy_error_set(err, ENOMEM, "out of memory");
                }
                if (stat(conf, &st) == 0 && S_ISREG(st.st_mode) && strv_push(&names, de->d_name) < 0) {
                        closedir(d);
                        return phy_error_set(err, ENOMEM, "out of memory");
                }
        }
        closedir(d);
        if (names.n > 1)
                qsort(names.v, names.n, sizeof *names.v, cmp_str);
        *ret = names;
        names = (strv) { 0 };
        return 0;
}

static int bad_name(const char *name, phy_error *err) {
        return phy_error_usage(err, "invalid VM name '%s'; use 1 to 64 of A-Z a-z 0-9 . _ - "
                             "(and not '.' or '..')", name);
}

int vm_not_found(const char *home, const char *name, phy_error *err) {
        return phy_error_set_kind(err, PHY_ERR_NOT_FOUND, ENOENT, "no VM named '%s' (looked in %s/vms)", name, home);
}

int vm_exists(const char *home, const char *name, phy_error *err) {
        if (!vm_name_valid(name))
                return bad_name(name, err);
        _cleanup_free_ char *conf = vm_conf_path(home, name);
        if (!conf)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (access(conf, F_OK) < 0 && errno == ENOENT)
                return vm_not_found(home, name, err);
        return 0;
}

int vm_load_by_name(const char *home, const char *name, struct vm_def *ret, phy_error *err) {
        return vm_load_by_name_text(home, name, NULL, ret, err);
}

int vm_load_by_name_text(const char *home, const char *name, char **ret_text, struct vm_def *ret, phy_error *err) {
        int r = vm_exists(home, name, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *conf = vm_conf_path(home, name);
        if (!conf)
                return phy_error_set(err, ENOMEM, "out of memory");
        _cleanup_vm_def_ struct vm_def d = { 0 };
        _cleanup_free_ char *text = NULL;
        r = vm_def_load_text(conf, ret_text ? &text : NULL, &d, err);
        if (r < 0)
                return r;
        if (d.name[0] && strcmp(d.name, name) != 0)
                return phy_error_usage(err, "%s: [vm] name is '%s' but the VM's directory is '%s'; "
                                     "make them the same", conf, d.name, name);
        snprintf(d.name, sizeof d.name, "%s", name);
        *ret = d;
        d = (struct vm_def) { 0 };
        if (ret_text)
                *ret_text = TAKE_PTR(text);
        return 0;
}

/* Young ones are left alone: between mkdtemp and flock their maker holds no
 * lock yet. */
#define TMPDIR_MIN_AGE_S 60

int vm_edit_lock(const char *home, const char *name, int *ret_fd, phy_error *err) {
        if (!vm_name_valid(name))
                return bad_name(name, err);
        _cleanup_free_ char *dir = vm_dir(home, name);
        if (!dir)
                return phy_error_set(err, ENOMEM, "out of memory");
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        return vm_not_found(home, name, err);
                return phy_error_set(err, errno, "cannot open '%s' to lock it for an edit: %s", dir, strerror(errno));
        }
        /* Edits are short (load, change, save): wait for the one before. */
        while (flock(fd, LOCK_EX) < 0)
                if (errno != EINTR)
                        return phy_error_set(err, errno, "cannot lock '%s' for an edit: %s", dir, strerror(errno));
        /* A delete (or a create --force) may have moved the directory away
         * while we waited: the lock must be on the VM's directory of now. */
        struct stat locked, now;
        if (fstat(fd, &locked) < 0 || stat(dir, &now) < 0 || locked.st_ino != now.st_ino || locked.st_dev != now.st_dev)
                return phy_error_set_kind(err, PHY_ERR_CONFLICT, EAGAIN, "VM '%s' was deleted or replaced during the "
                                          "edit; nothing was changed", name);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

void vm_edit_done(struct vm_edit *e) {
        if (!e)
                return;
        vm_def_done(&e->def);
        /* The lock is taken after conf is set: a zeroed edit holds none. */
        if (e->conf && e->lock >= 0)
                close(e->lock);
        free(e->conf);
        e->conf = NULL;
        e->lock = -1;
}

int vm_edit_begin(const char *home, const char *name, struct vm_edit *ret, phy_error *err) {
        _cleanup_(vm_edit_done) struct vm_edit e = { .lock = -1 };
        if (!(e.conf = vm_conf_path(home, name)))
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = vm_edit_lock(home, name, &e.lock, err);
        if (r < 0)
                return r;
        if ((r = vm_load_by_name(home, name, &e.def, err)) < 0)
                return r;
        *ret = e;
        e = (struct vm_edit) { .lock = -1 };
        return 0;
}

int vm_edit_save(struct vm_edit *e, phy_error *err) {
        return vm_def_save(&e->def, e->conf, err);
}

int vm_home_sweep(const char *home) {
        _cleanup_free_ char *vms = NULL;
        if (asprintf(&vms, "%s/vms", home) < 0)
                return -ENOMEM;
        DIR *d = opendir(vms);
        if (!d)
                return 0;
        int n = 0;
        time_t now = time(NULL);
        for (struct dirent *e; (e = readdir(d));) {
                if (strncmp(e->d_name, ".#", 2) != 0)
                        continue;
                _cleanup_close_ int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0 || now - st.st_mtime < TMPDIR_MIN_AGE_S ||
                    flock(fd, LOCK_EX | LOCK_NB) < 0)
                        continue;
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", vms, e->d_name) >= 0 && rm_rf(p) >= 0)
                        n++;
        }
        closedir(d);
        return n;
}

int vm_tmpdir_make(const char *home, const char *kind, const char *name, char **ret_path, int *ret_lock,
                   phy_error *err) {
        _cleanup_free_ char *vms = NULL, *tmp = NULL;
        if (asprintf(&vms, "%s/vms", home) < 0 ||
            (name ? asprintf(&tmp, "%s/.#%s.%s.XXXXXX", vms, kind, name) : asprintf(&tmp, "%s/.#%s.XXXXXX", vms, kind)) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = mkdir_p(vms, 0700);
        if (r < 0)
                return phy_error_set(err, r, "cannot create '%s': %s", vms, strerror(-r));
        (void) vm_home_sweep(home);
        if (!mkdtemp(tmp))
                return phy_error_set(err, errno, "cannot create a directory in '%s': %s", vms, strerror(errno));
        int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || flock(fd, LOCK_EX) < 0) {
                r = phy_error_set(err, errno, "cannot lock '%s': %s", tmp, strerror(errno));
                if (fd >= 0)
                        close(fd);
                (void) rm_rf(tmp);
                return r;
        }
        *ret_path = TAKE_PTR(tmp);
        *ret_lock = fd;
        return 0;
}

int vm_delete(const char *home, const char *name, phy_error *err) {
        if (!vm_name_valid(name))
                return bad_name(name, err);
        _cleanup_free_ char *dir = vm_dir(home, name), *gone = NULL;
        if (!dir || asprintf(&gone, "%s/vms/.#delete.%s.%ld", home, name, (long) getpid()) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* Renamed away first so that a half-removed tree never shows as a VM;
         * locked as a temporary dir is, so a delete killed half-way is swept. */
        _cleanup_close_ int gone_lock = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (gone_lock >= 0)
                (void) flock(gone_lock, LOCK_EX);
        if (rename(dir, gone) < 0) {
                if (errno == ENOENT)
                        return vm_not_found(home, name, err);
                return phy_error_set(err, errno, "cannot delete '%s': %s", dir, strerror(errno));
        }
        int r = rm_rf(gone);
        if (r < 0)
                return phy_error_set(err, r, "VM '%s' is deleted but '%s' could not be removed fully: %s",
                                     name, gone, strerror(-r));
        return 0;
}

/* ---- create ------------------------------------------------------------- */


static int check_input_file(const char *vmdir, const char *what, const char *path, phy_error *err) {
        _cleanup_free_ char *p = vm_path_resolve(vmdir, path);
        if (!p)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (access(p, R_OK) < 0)
                return phy_error_set(err, errno, "cannot read the %s '%s': %s", what, p, strerror(errno));
        return 0;
}

/* Everything of a new VM inside tmp (its future directory). */
static int populate(const char *tmp, const struct vm_def *def, const struct vm_def *model,
                    const char *qemu_img_given, phy_error *err) {
        for (size_t i = 0; i < model->n_cdroms; i++) {
                if (!model->cdroms[i].path)
                        continue;       /* an empty drive */
                int r = check_input_file(tmp, "ISO image", model->cdroms[i].path, err);
                if (r < 0)
                        return phy_error_prefix(err, "[cdrom %s]", model->cdroms[i].name);
        }
        if (model->kernel && check_input_file(tmp, "kernel", model->kernel, err) < 0)
                return -err->code;
        if (model->initrd && check_input_file(tmp, "initrd", model->initrd, err) < 0)
                return -err->code;

        _cleanup_free_ char *conf = NULL;
        if (asprintf(&conf, "%s/vm.conf", tmp) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = vm_def_save(def, conf, err);
        if (r < 0)
                return r;

        _cleanup_free_ char *qemu_img = NULL;
        for (size_t i = 0; i < model->n_disks; i++) {
                const struct vm_disk *k = &model->disks[i];
                if (k->path[0] == '/') {
                        /* An image elsewhere is the user's: it must exist already. */
                        if ((r = check_input_file(tmp, "disk image", k->path, err)) < 0)
                                return phy_error_prefix(err, "[disk %s]", k->name);
                        continue;
                }
                if (!qemu_img && !(qemu_img = exec_find_qemu_img(qemu_img_given)))
                        return phy_error_set(err, ENOENT, "cannot find qemu-img to create disk '%s'; install "
                                             "qemu-utils or set PHYLLOME_QEMU_IMG", k->name);
                _cleanup_free_ char *p = vm_path_resolve(tmp, k->path);
                if (!p)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if ((r = qemu_img_create(qemu_img, p, k->format, k->size, err)) < 0)
                        return r;
        }
        return 0;
}

int vm_create(const char *home, const struct vm_def *def, const struct host_facts *host,
              const struct qemu_caps *caps, const char *qemu_img, bool force, phy_error *err) {
        if (!vm_name_valid(def->name))
                return bad_name(def->name, err);
        _cleanup_vm_def_ struct vm_def model = { 0 };
        int r = vm_model_resolve(def, host, caps, &model, err);
        if (r < 0)
                return r;

        _cleanup_free_ char *dir = vm_dir(home, def->name), *tmp = NULL;
        _cleanup_close_ int tmp_lock = -1;
        if (!dir)
                return phy_error_set(err, ENOMEM, "out of memory");
        struct stat st;
        bool exists = lstat(dir, &st) == 0;
        if (exists && !force)
                return phy_error_set(err, EEXIST, "a VM named '%s' already exists (%s); delete it first or "
                                     "create with --force to replace it", def->name, dir);
        if ((r = vm_tmpdir_make(home, "create", def->name, &tmp, &tmp_lock, err)) < 0)
                return r;
        if (chmod(tmp, 0755) < 0)
                r = phy_error_set(err, errno, "cannot set the mode of '%s': %s", tmp, strerror(errno));
        if (r >= 0)
                r = populate(tmp, def, &model, qemu_img, err);
        if (r >= 0) {
                _cleanup_close_ int old_lock = -1;
                if (exists) {
                        /* Swap in one step: the old VM stays whole until the new one is;
                         * under its edit lock, so no edit saves into the old one. */
                        if ((r = vm_edit_lock(home, def->name, &old_lock, err)) < 0)
                                ;
                        else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) < 0)
                                r = phy_error_set(err, errno, "cannot replace '%s': %s", dir, strerror(errno));
                } else if (rename(tmp, dir) < 0) {
                        r = errno == EEXIST || errno == ENOTEMPTY
                                ? phy_error_set(err, EEXIST, "a VM named '%s' was created meanwhile (%s)", def->name, dir)
                                : phy_error_set(err, errno, "cannot rename '%s' to '%s': %s", tmp, dir, strerror(errno));
                }
        }
        /* tmp is now either the failed attempt or the replaced VM. */
        if (r < 0 || exists)
                (void) rm_rf(tmp);
        return r;
}

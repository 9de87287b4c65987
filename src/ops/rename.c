/* SPDX-License-Identifier: MIT */
/*
 * `phyllo rename OLD NEW` (issue 19).  A VM is its directory: the move is
 * one renameat2(RENAME_NOREPLACE) of <home>/vms/OLD, so disks, snapshots
 * (inside the qcow2 images and <vm_dir>/snapshots/), UEFI vars and TPM
 * state follow at once, and a VM named NEW made meanwhile is never
 * overwritten.  What names the old directory by absolute path is then
 * rewritten: vm.conf (the name; paths inside the directory made
 * relative), and qcow2 backing files (the frozen bases of a linked clone's
 * source, the overlays of its linked clones: qemu-img rebase -u, metadata
 * only).  A running or starting VM is refused: its run lock is held from
 * the check to the end, so no start can slip in.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "ops.h"
#include "fileio.h"
#include "json-cleanup.h"
#include "run/run.h"
#include "store/store.h"
#include "vm/chain.h"

/* An image whose backing file is named by an absolute path in the old directory. */
struct rebase {
        char *image;            /* where it is after the move */
        char *backing;          /* the new backing path */
        char *format;           /* the backing file's format */
        char *vm;               /* the VM it belongs to */
};

static void rebases_free(struct rebase *v, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(v[i].image);
                free(v[i].backing);
                free(v[i].format);
                free(v[i].vm);
        }
        free(v);
}

/* path, when below olddir, moved below newdir (malloc'd); NULL otherwise. */
static char *moved(const char *path, const char *olddir, const char *newdir) {
        size_t n = strlen(olddir);
        char *p = NULL;
        if (path && strncmp(path, olddir, n) == 0 && path[n] == '/' && asprintf(&p, "%s%s", newdir, path + n) < 0)
                p = NULL;
        return p;
}

struct scan {
        const char *olddir, *newdir;
        struct rebase *v;
        size_t n;
};

/* Records image (its path now, at_now, and after the move) when its backing
 * file lies in the old directory.  fmt: the image's format as its definition
 * gives it (NULL for a frozen base: qcow2 by its magic).  The header is read
 * through an fd, never probed by qemu-img: a raw disk's guest writes what it
 * likes into it (a qcow2 header to be rewritten, a VMDK descriptor whose
 * extent is a host file or a FIFO qemu-img would open as root).  Not a
 * qcow2, not a regular file or unreadable: nothing. */
static int scan_image(struct scan *s, const char *vm, const char *at_now, const char *after, const char *fmt,
                      phy_error *err) {
        if (fmt && strcmp(fmt, "qcow2") != 0)
                return 0;
        _cleanup_close_ int fd = open(at_now, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return 0;
        _cleanup_free_ char *backing = NULL;
        char bfmt[32];
        if (vm_image_backing(fd, &backing, bfmt, sizeof bfmt) < 0 || !backing)
                return 0;
        _cleanup_free_ char *nb = moved(backing, s->olddir, s->newdir);
        if (!nb)
                return 0;       /* relative (it moves with the image), or elsewhere */
        struct rebase *v = realloc(s->v, (s->n + 1) * sizeof *v);
        if (!v)
                return phy_error_set(err, ENOMEM, "out of memory");
        s->v = v;
        v[s->n] = (struct rebase) { .image = strdup(after), .backing = TAKE_PTR(nb),
                                    .format = strdup(bfmt[0] ? bfmt : "qcow2"), .vm = strdup(vm) };
        if (!v[s->n].image || !v[s->n].format || !v[s->n].vm) {
                s->n++;
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        s->n++;
        return 0;
}

/* The VM's own images: its disks and its frozen bases (<dir>/base/). */
static int scan_own(struct scan *s, const struct vm_def *d, const char *newname, phy_error *err) {
        int r;
        for (size_t i = 0; i < d->n_disks; i++) {
                _cleanup_free_ char *now = vm_path_resolve(s->olddir, d->disks[i].path);
                _cleanup_free_ char *after = now && now[0] == '/' ? moved(now, s->olddir, s->newdir) : NULL;
                if (!now)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if ((r = scan_image(s, newname, now, after ? after : now, d->disks[i].format, err)) < 0)
                        return r;
        }
        _cleanup_free_ char *base = NULL;
        if (asprintf(&base, "%s/base", s->olddir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        DIR *dir = opendir(base);
        for (struct dirent *e; dir && (e = readdir(dir));) {
                _cleanup_free_ char *now = NULL, *after = NULL;
                if (e->d_name[0] == '.')
                        continue;
                if (asprintf(&now, "%s/%s", base, e->d_name) < 0 ||
                    asprintf(&after, "%s/base/%s", s->newdir, e->d_name) < 0) {
                        closedir(dir);
                        return phy_error_set(err, ENOMEM, "out of memory");
                }
                if ((r = scan_image(s, newname, now, after, NULL, err)) < 0) {
                        closedir(dir);
                        return r;
                }
        }
        if (dir)
                closedir(dir);
        return 0;
}

/* The other VMs' disks backed by a file in the old directory (linked
 * clones); each such VM must be stopped. */
static int scan_clones(struct scan *s, const char *home, const char *oldname, phy_error *err) {
        _cleanup_strv_ strv all = { 0 };
        int r = vm_list(home, &all, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < all.n; i++) {
                if (strcmp(all.v[i], oldname) == 0)
                        continue;
                _cleanup_vm_def_ struct vm_def d = { 0 };
                _cleanup_free_ char *dir = vm_dir(home, all.v[i]);
                phy_error ignore = { 0 };
                if (!dir)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if (vm_load_by_name(home, all.v[i], &d, &ignore) < 0)
                        continue;
                size_t before = s->n;
                for (size_t k = 0; k < d.n_disks; k++) {
                        _cleanup_free_ char *p = vm_path_resolve(dir, d.disks[k].path);
                        if (!p)
                                return phy_error_set(err, ENOMEM, "out of memory");
                        if ((r = scan_image(s, all.v[i], p, p, d.disks[k].format, err)) < 0)
                                return r;
                }
                if (s->n > before && run_is_active(home, all.v[i]))
                        return phy_error_set(err, EBUSY, "VM '%s' is a linked clone of '%s' (its disks use files in "
                                             "%s's directory) and is running; stop it first ('phyllo stop %s')",
                                             all.v[i], oldname, oldname, all.v[i]);
        }
        return 0;
}

/* A path of the definition below the old directory becomes relative. */
static int relocate(char **p, const char *olddir) {
        size_t n = strlen(olddir);
        if (!*p || strncmp(*p, olddir, n) != 0 || (*p)[n] != '/' || !(*p)[n + 1])
                return 0;
        char *rel = strdup(*p + n + 1);
        if (!rel)
                return -ENOMEM;
        free(*p);
        *p = rel;
        return 0;
}

static int relocate_def(struct vm_def *d, const char *olddir) {
        int r = 0;
        r = r ?: relocate(&d->kernel, olddir);
        r = r ?: relocate(&d->initrd, olddir);
        r = r ?: relocate(&d->install.media, olddir);
        r = r ?: relocate(&d->install.kernel, olddir);
        r = r ?: relocate(&d->install.initrd, olddir);
        for (size_t i = 0; i < d->n_disks && !r; i++)
                r = relocate(&d->disks[i].path, olddir) ?: relocate(&d->disks[i].key_file, olddir);
        for (size_t i = 0; i < d->n_cdroms && !r; i++)
                r = relocate(&d->cdroms[i].path, olddir);
        for (size_t i = 0; i < d->n_shares && !r; i++)
                r = relocate(&d->shares[i].path, olddir);
        return r;
}

static int running(const char *name, phy_error *err) {
        return phy_error_set(err, EBUSY, "VM '%s' is running; a running VM cannot be renamed: stop it first "
                             "('phyllo stop %s')", name, name);
}

int ops_rename(const struct ops_ctx *c, const char *old_name, const char *new_name, json_object **ret,
               phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        _cleanup_free_ char *olddir = NULL, *newdir = NULL, *newconf = NULL, *oldrun = NULL, *newrun = NULL;
        _cleanup_free_ char *qemu_img = NULL;
        _cleanup_close_ int run_lock = -1;
        int r;
        if ((r = ops_name_check("VM name", old_name, err)) < 0 || (r = ops_name_check("new VM name", new_name, err)) < 0)
                return r;
        if ((r = vm_exists(c->home, old_name, err)) < 0)
                return r;
        if (strcmp(old_name, new_name) == 0)
                return phy_error_usage(err, "VM '%s' has that name already", old_name);
        phy_error e2 = { 0 };
        if (vm_exists(c->home, new_name, &e2) == 0)
                return phy_error_set(err, EEXIST, "a VM named '%s' exists already; pick another name, or delete it "
                                     "first", new_name);
        if (run_is_active(c->home, old_name))
                return running(old_name, err);
        if ((r = run_dir_path(c->home, old_name, &oldrun, err)) < 0 ||
            (r = run_dir_path(c->home, new_name, &newrun, err)) < 0)
                return r;
        /* A crash's leftovers are repaired first (what a start would do), then
         * the run lock keeps any start out until the move is complete. */
        if (access(oldrun, F_OK) == 0) {
                if ((r = run_reconcile(c->home, old_name, NULL, err)) < 0)
                        return r;
                if ((r = run_lock_take(oldrun, &run_lock, err)) < 0)
                        return r == -EBUSY ? running(old_name, err) : r;
        }
        if ((r = ops_vm_open(c, old_name, OPS_WRITE, &vm, err)) < 0)
                return r;
        if (!(olddir = vm_dir(c->home, old_name)) || !(newdir = vm_dir(c->home, new_name)) ||
            !(newconf = vm_conf_path(c->home, new_name)))
                return phy_error_set(err, ENOMEM, "out of memory");

        /* What names the old directory by absolute path, found before anything moves. */
        struct scan s = { .olddir = olddir, .newdir = newdir };
        qemu_img = store_find_qemu_img(NULL);
        if (qemu_img && ((r = scan_own(&s, &vm.def, new_name, err)) < 0 ||
                         (r = scan_clones(&s, c->home, old_name, err)) < 0)) {
                rebases_free(s.v, s.n);
                return r;
        }

        if (renameat2(AT_FDCWD, olddir, AT_FDCWD, newdir, RENAME_NOREPLACE) < 0) {
                r = errno == EEXIST ? phy_error_set(err, EEXIST, "a VM named '%s' exists already", new_name)
                                    : phy_error_set(err, errno, "cannot rename '%s' to '%s': %s", olddir, newdir,
                                                    strerror(errno));
                rebases_free(s.v, s.n);
                return r;
        }
        snprintf(vm.def.name, sizeof vm.def.name, "%s", new_name);
        if (relocate_def(&vm.def, olddir) < 0)
                r = phy_error_set(err, ENOMEM, "out of memory");
        else
                r = vm_def_save(&vm.def, newconf, err);
        if (r < 0) {
                /* Back where it was: nothing renamed. */
                (void) renameat2(AT_FDCWD, newdir, AT_FDCWD, olddir, RENAME_NOREPLACE);
                rebases_free(s.v, s.n);
                return r;
        }

        json_object *warnings = json_object_new_array();
        /* Its QEMU's uid (per-VM uids) follows it: the files are that uid's. */
        phy_error ue = { 0 };
        if (run_vm_uid_rename(c->home, old_name, new_name, &ue) < 0)
                json_object_array_add(warnings, json_object_new_string(phy_error_message(&ue)));
        for (size_t i = 0; i < s.n; i++) {
                char *argv[] = { qemu_img, "rebase", "-q", "-u", "-f", "qcow2", "-F", s.v[i].format, "-b",
                                 s.v[i].backing, s.v[i].image, NULL };
                char errbuf[512];
                /* A frozen base is read-only (0444): writable for the header's change only. */
                struct stat st;
                bool ro = stat(s.v[i].image, &st) == 0 && !(st.st_mode & S_IWUSR);
                if (ro)
                        (void) chmod(s.v[i].image, (st.st_mode & 07777) | S_IWUSR);
                r = store_run(argv, NULL, errbuf, sizeof errbuf);
                if (ro)
                        (void) chmod(s.v[i].image, st.st_mode & 07777);
                if (r < 0) {
                        char w[1400];
                        snprintf(w, sizeof w, "the backing file of '%s' (VM '%s') still names the old directory: "
                                 "qemu-img rebase failed (%s); run 'qemu-img rebase -u -F %s -b %s %s'", s.v[i].image,
                                 s.v[i].vm, errbuf, s.v[i].format, s.v[i].backing, s.v[i].image);
                        json_object_array_add(warnings, json_object_new_string(w));
                }
        }
        size_t n_rebased = s.n;
        rebases_free(s.v, s.n);

        /* The stopped VM's logs and last state follow; a stale run dir of the new name goes. */
        if (access(oldrun, F_OK) == 0) {
                if (access(newrun, F_OK) == 0)
                        (void) rm_rf(newrun);
                if (rename(oldrun, newrun) < 0) {
                        (void) rm_rf(oldrun);
                }
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(new_name));
        json_object_object_add(o, "old_name", json_object_new_string(old_name));
        json_object_object_add(o, "dir", json_object_new_string(newdir));
        json_object_object_add(o, "rebased", json_object_new_int64((int64_t) n_rebased));
        json_object_object_add(o, "warnings", warnings);
        *ret = o;
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The files QEMU's user must reach, prepared by run_start (as the caller,
 * before the monitor exists): the run dir (ours alone), the UEFI vars, the
 * TPM state, the images inside the VM dir; then a check, as QEMU's user,
 * that it can reach them.
 */
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "monitor.h"
#include "paths.h"
#include "qemu/argv.h"


/* chown when QEMU runs as another user, so that it can use its own files. */
static int hand_over(const struct run_creds *cr, const char *path, phy_error *err) {
        if (!cr->drop)
                return 0;
        if (chown(path, cr->uid, cr->gid) < 0 && errno != ENOENT)
                return phy_error_set(err, errno, "cannot hand '%s' to the QEMU user '%s': %s", path, cr->user,
                                     strerror(errno));
        return 0;
}

/* hand_over for rel inside the VM dir: opened beneath it with no symlink on
 * the way, chowned through that fd (issue 12: a '..' disk path or a planted
 * symlink made root chown any file). */
static int hand_over_beneath(const struct run_creds *cr, const char *vmdir, const char *rel, phy_error *err) {
        if (!cr->drop)
                return 0;
        _cleanup_close_ int dfd = open(vmdir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int fd = dfd < 0 ? -errno : open_beneath(dfd, rel, O_PATH | O_NOFOLLOW, 0);
        struct stat st;
        if (fd == -ENOENT)
                return 0;
        if (fd >= 0 && fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
                close(fd);      /* the symlink itself (O_PATH|O_NOFOLLOW), or a device or FIFO */
                fd = -ELOOP;
        }
        if (fd < 0 || fchownat(fd, "", cr->uid, cr->gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                return phy_error_set(err, fd < 0 ? -fd : errno, "cannot hand '%s/%s' to the QEMU user '%s': %s%s",
                                     vmdir, rel, cr->user, strerror(fd < 0 ? -fd : errno),
                                     fd == -EXDEV || fd == -ELOOP ? " (it leaves the VM's directory, is a symlink "
                                     "or goes through one)" : "");
        return 0;
}

/* The permission bits of st that apply to QEMU's user (owner, else group,
 * else other: the class decides, as in the kernel's own check), shifted to
 * R_OK/W_OK/X_OK. */
static int class_bits(const struct run_creds *cr, const struct stat *st) {
        if (st->st_uid == cr->uid)
                return (st->st_mode >> 6) & 7;
        if (st->st_gid == cr->gid || (cr->kvm_gid != (gid_t) -1 && st->st_gid == cr->kvm_gid))
                return (st->st_mode >> 3) & 7;
        return st->st_mode & 7;
}

/* One object on the way: no symlink, no ACL (its entries could name QEMU's
 * user or group), a directory where one is passed through, need allowed. */
static bool object_allows(const struct run_creds *cr, const char *path, int need, bool dir) {
        struct stat st;
        if (lstat(path, &st) < 0 || S_ISLNK(st.st_mode) || (dir && !S_ISDIR(st.st_mode)))
                return false;
        if (lgetxattr(path, "system.posix_acl_access", NULL, 0) >= 0 || errno != ENODATA)
                return false;
        return (class_bits(cr, &st) & need) == need;
}

/* The directories one check_access has already proven searchable for
 * QEMU's user: the paths of a start share their prefixes (/, /tmp, the
 * home, the VM dir), each looked at once (an lstat and an lgetxattr). */
struct reach_memo {
        char *dirs[32];
        size_t n;
};

static void reach_memo_done(struct reach_memo *m) {
        for (size_t i = 0; i < m->n; i++)
                free(m->dirs[i]);
        m->n = 0;
}

static bool dir_searchable(const struct run_creds *cr, struct reach_memo *memo, const char *dir) {
        for (size_t i = 0; memo && i < memo->n; i++)
                if (strcmp(memo->dirs[i], dir) == 0)
                        return true;
        if (!object_allows(cr, dir, X_OK, true))
                return false;
        if (memo && memo->n < ELEMENTSOF(memo->dirs) && (memo->dirs[memo->n] = strdup(dir)))
                memo->n++;
        return true;
}

static bool reachable_by_modes(const struct run_creds *cr, struct reach_memo *memo, const char *path, int mode) {
        char buf[PATH_MAX];
        if (!path || path[0] != '/' || strlen(path) >= sizeof buf || !dir_searchable(cr, memo, "/"))
                return false;
        strcpy(buf, path);
        size_t len = strlen(buf);
        while (len > 1 && buf[len - 1] == '/')
                buf[--len] = '\0';
        if (len == 1)
                return object_allows(cr, "/", mode, true);
        for (char *p = buf;;) {
                char *next = strchr(p + 1, '/');
                if (next)
                        *next = '\0';
                const char *comp = p + 1;
                if (strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0 ||
                    !(next ? dir_searchable(cr, memo, buf) : object_allows(cr, buf, mode, false)))
                        return false;
                if (!next)
                        return true;
                *next = '/';
                p = next;
        }
}

/* True when the modes alone prove that QEMU's user reaches path for mode:
 * an absolute path without '.', '..' or symlinks, each directory searchable
 * and the end allowing mode for the class QEMU's user falls in, none with
 * an ACL.  False says nothing: check_access then asks as that user.  A
 * start's usual files (the VM's own, a world-readable kernel) pass here
 * without the fork. */
bool run_reachable_by_modes(const struct run_creds *cr, const char *path, int mode) {
        return reachable_by_modes(cr, NULL, path, mode);
}

/* Checks, as the QEMU user, that QEMU can reach what it needs.  A missing
 * file is left for QEMU to report in its own words. */
static int check_access(const struct run_creds *cr, const char *const *all_paths, const int *modes, size_t n,
                        phy_error *err) {
        if (!cr->drop || n == 0)
                return 0;
        /* What the modes prove reachable needs no child (~0.3 ms of a start). */
        const char *paths[64];
        assert(n <= ELEMENTSOF(paths));         /* the caller's arrays hold 64 */
        bool left = false;
        struct reach_memo memo = { 0 };
        for (size_t i = 0; i < n; i++) {
                paths[i] = all_paths[i] && !reachable_by_modes(cr, &memo, all_paths[i], modes[i]) ? all_paths[i] : NULL;
                left = left || paths[i];
        }
        reach_memo_done(&memo);
        if (!left)
                return 0;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return phy_error_set(err, errno, "cannot create a pipe: %s", strerror(errno));
        pid_t pid = fork();
        if (pid < 0) {
                close(p[0]);
                close(p[1]);
                return phy_error_set(err, errno, "cannot fork: %s", strerror(errno));
        }
        if (pid == 0) {
                close(p[0]);
                if (run_creds_apply_child(cr) < 0)
                        _exit(1);
                for (size_t i = 0; i < n; i++)
                        if (paths[i] && access(paths[i], modes[i]) < 0 && errno == EACCES) {
                                unsigned char b = (unsigned char) i;
                                (void) !write(p[1], &b, 1);
                                _exit(0);
                        }
                _exit(0);
        }
        close(p[1]);
        unsigned char b;
        ssize_t r;
        do
                r = read(p[0], &b, 1);
        while (r < 0 && errno == EINTR);
        close(p[0]);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        if (r == 1 && b < n)
                return phy_error_set(err, EACCES,
                                     "QEMU runs as the unprivileged user '%s' and cannot use '%s': make it and "
                                     "every directory above it reachable for that user (chmod o+x on the "
                                     "directories, o+r on the file), or set PHYLLOME_HOME to a directory such "
                                     "as /var/lib/phyllome",
                                     cr->user, paths[b]);
        return 0;
}

/* Hands a directory tree to uid:gid, never following a symlink (a link
 * itself is re-owned, not what it points to).  -errno; -ENOENT when path
 * does not exist. */
static int chown_tree_at(int dfd, uid_t uid, gid_t gid, unsigned depth) {
        if (fchown(dfd, uid, gid) < 0)
                return -errno;
        if (depth > 16)
                return -ELOOP;
        int dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
        if (dup_fd < 0)
                return -errno;
        DIR *d = fdopendir(dup_fd);
        if (!d) {
                close(dup_fd);
                return -errno;
        }
        int r = 0;
        struct dirent *e;
        while (r == 0 && (e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                int sub = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub >= 0) {
                        r = chown_tree_at(sub, uid, gid, depth + 1);
                        close(sub);
                } else if (fchownat(dfd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                        r = -errno;
        }
        closedir(d);
        return r;
}

static int chown_tree(const char *path, uid_t uid, gid_t gid) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return chown_tree_at(fd, uid, gid, 0);
}

/* Removes every entry of dir but keep (no symlink followed). */
static int purge_dir(const char *dir, const char *keep) {
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        int dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
        DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
        if (!d) {
                if (dup_fd >= 0)
                        close(dup_fd);
                return -errno;
        }
        int r = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, keep) == 0)
                        continue;
                if (unlinkat(dfd, e->d_name, 0) == 0)
                        continue;
                _cleanup_free_ char *p = NULL;
                if (errno != EISDIR || asprintf(&p, "%s/%s", dir, e->d_name) < 0 || rm_rf(p) < 0)
                        r = -EIO;
        }
        closedir(d);
        return r;
}

/*
 * The run dir belongs to root (or the user running phyllo) and nobody else
 * writes there: QEMU and its companions get their sockets and logs as file
 * descriptors.  A run dir another user could write (an older Phyllome made
 * it root:QEMU-group 0770) is emptied first: anything in it may be forged.
 * QEMU may read it (its typed passphrases) through the group of its uid.
 * SPICE alone takes no fd: QEMU makes its socket in <run_dir>/spice, its
 * own directory, and <run_dir>/spice.sock points there.
 */
static int prepare_run_dir(struct start_ctx *c, phy_error *err) {
        const struct run_creds *cr = &c->creds;
        struct stat st;
        _cleanup_close_ int dfd = open(c->run_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0 || fstat(dfd, &st) < 0)
                return phy_error_set(err, errno, "cannot open the runtime directory '%s': %s", c->run_dir,
                                     strerror(errno));
        if (st.st_uid != geteuid())
                return phy_error_set(err, EPERM, "the runtime directory '%s' belongs to uid %u, not to uid %u; "
                                     "remove it", c->run_dir, (unsigned) st.st_uid, (unsigned) geteuid());
        bool untrusted = c->run_dir_untrusted || (st.st_mode & 022) != 0;
        gid_t gid = cr->drop ? cr->gid : getegid();
        mode_t mode = cr->drop ? 0710 : 0700;
        /* As it should be already at every start but the first: no inode
         * change (a journal write on ext4) for nothing. */
        if ((st.st_gid != gid && fchown(dfd, geteuid(), gid) < 0) ||
            ((st.st_mode & 07777) != mode && fchmod(dfd, mode) < 0))
                return phy_error_set(err, errno, "cannot secure the runtime directory '%s': %s", c->run_dir,
                                     strerror(errno));
        if (untrusted && purge_dir(c->run_dir, "lock") < 0)
                return phy_error_set(err, EIO, "cannot empty the runtime directory '%s', which other users could "
                                     "write; remove it", c->run_dir);
        (void) unlinkat(dfd, "spice.sock", 0);
        _cleanup_free_ char *spice = run_file(c->run_dir, "spice");
        if (!spice)
                return phy_error_set(err, ENOMEM, "out of memory");
        (void) rm_rf(spice);
        if (c->model.vm.display != VM_DISPLAY_SPICE)
                return 0;
        if (mkdirat(dfd, "spice", 0700) < 0)
                return phy_error_set(err, errno, "cannot create '%s': %s", spice, strerror(errno));
        _cleanup_close_ int sfd = openat(dfd, "spice", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sfd < 0 || (cr->drop && fchown(sfd, cr->uid, cr->gid) < 0) ||
            symlinkat("spice/spice.sock", dfd, "spice.sock") < 0)
                return phy_error_set(err, errno, "cannot prepare the SPICE directory '%s': %s", spice, strerror(errno));
        return 0;
}

int prepare_files(struct start_ctx *c, phy_error *err) {
        const struct run_creds *cr = &c->creds;
        int r;
        /* The per-VM UEFI vars, copied once from the template. */
        _cleanup_free_ char *vars = NULL;
        if (c->model.vm.firmware == VM_FW_UEFI) {
                vars = qemu_vars_path(c->vm_dir);
                if (!vars)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if (access(vars, F_OK) < 0) {
                        const char *tmpl = c->model.vm.secure_boot == VM_ON ? c->tools.ovmf_vars_ms : c->tools.ovmf_vars;
                        if (!tmpl)
                                return phy_error_set(err, ENOENT, "VM '%s' boots with UEFI but no OVMF vars template "
                                                     "was found; install ovmf (apt-get install ovmf)", c->name);
                        r = file_copy_atomic(tmpl, vars, 0600, err);
                        if (r < 0)
                                return r;
                }
                if ((r = hand_over(cr, vars, err)) < 0)
                        return r;
        }
        if ((r = prepare_run_dir(c, err)) < 0)
                return r;
        if (cr->drop) {
                /* The VM dir and <home>/vms: traversable by the QEMU user's group. */
                _cleanup_free_ char *vms = strdup(c->vm_dir);
                char *slash = vms ? strrchr(vms, '/') : NULL;
                if (slash)
                        *slash = '\0';
                const char *dirs[] = { c->vm_dir, slash ? vms : NULL };
                for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                        struct stat st;
                        if (!dirs[i] || lstat(dirs[i], &st) < 0 || !S_ISDIR(st.st_mode))
                                continue;
                        mode_t mode = st.st_mode & 07777;
                        gid_t gid = st.st_gid;
                        if (cr->per_vm && i == 0) {
                                /* The VM's own group only: no other VM's uid gets in. */
                                gid = cr->gid;
                                mode = (mode & ~(mode_t) (S_IRWXO | S_IWGRP)) | S_IXGRP;
                        } else if (cr->per_vm) {
                                mode |= S_IXOTH;        /* every VM's uid passes through <home>/vms */
                        } else if (!(mode & S_IXOTH) && !(gid == cr->gid && (mode & S_IXGRP))) {
                                gid = cr->gid;
                                mode |= S_IXGRP;
                        }
                        if ((gid != st.st_gid && lchown(dirs[i], st.st_uid, gid) < 0) ||
                            (mode != (st.st_mode & 07777) && chmod(dirs[i], mode) < 0))
                                return phy_error_set(err, errno, "cannot open '%s' to the QEMU user '%s': %s",
                                                     dirs[i], cr->user, strerror(errno));
                }
                /* The TPM state, made by an earlier uid perhaps: all of it the VM's. */
                _cleanup_free_ char *tpm = run_file(c->vm_dir, "tpm");
                if (!tpm)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if ((r = chown_tree(tpm, cr->uid, cr->gid)) < 0 && r != -ENOENT)
                        return phy_error_set(err, -r, "cannot hand '%s' to the QEMU user '%s': %s", tpm, cr->user,
                                             strerror(-r));
        }
        const char *paths[64];
        int modes[64];
        size_t n = 0;
        char *owned[64];
        size_t n_owned = 0;
        for (size_t i = 0; i < c->model.vm.n_disks && n < 60; i++) {
                char *p = vm_path_resolve(c->vm_dir, c->model.vm.disks[i].path);
                if (!p)
                        continue;
                owned[n_owned++] = p;
                /* Images inside the VM dir belong to the VM: hand them over,
                 * anchored there (never a file a '..' or a symlink leads to). */
                const char *in = vm_dir_relative(c->vm_dir, c->model.vm.disks[i].path);
                if (in && (r = hand_over_beneath(cr, c->vm_dir, in, err)) < 0)
                        goto out;
                paths[n] = p;
                modes[n++] = c->model.vm.disks[i].readonly ? R_OK : R_OK | W_OK;
        }
        for (size_t i = 0; i < c->model.vm.n_cdroms && n < 60; i++) {
                if (!c->model.vm.cdroms[i].path)
                        continue;       /* an empty drive */
                char *p = vm_path_resolve(c->vm_dir, c->model.vm.cdroms[i].path);
                if (!p)
                        continue;
                owned[n_owned++] = p;
                paths[n] = p;
                modes[n++] = R_OK;
        }
        if (c->model.vm.kernel) {
                paths[n] = c->model.vm.kernel;
                modes[n++] = R_OK;
        }
        if (c->model.vm.initrd) {
                paths[n] = c->model.vm.initrd;
                modes[n++] = R_OK;
        }
        if (vars) {
                paths[n] = vars;
                modes[n++] = R_OK | W_OK;
        }
        paths[n] = c->run_dir;
        modes[n++] = X_OK;
        r = check_access(cr, paths, modes, n, err);
out:
        for (size_t i = 0; i < n_owned; i++)
                free(owned[i]);
        return r;
}

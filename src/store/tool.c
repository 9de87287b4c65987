/* SPDX-License-Identifier: MIT */
/* Running qemu-img: argv + execve, stdout and stderr read through pipes. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "exec.h"
#include "fileio.h"
#include "store.h"
#include "store-internal.h"
#include "vm/vm.h"
#include <limits.h>

char *store_find_qemu_img(const char *given) {
        return exec_find_qemu_img(given);
}

int store_run(char *const *argv, char **ret_out, char *errbuf, size_t errlen) {
        return exec_run(argv, ret_out, errbuf, errlen);
}

int store_qemu_img(const char *qemu_img, const char *what, char *const *argv, char **ret_out, phy_error *err) {
        char msg[1024];
        int r = store_run(argv, ret_out, msg, sizeof msg);
        if (r == -ENOEXEC)
                return phy_error_set(err, r, "cannot run '%s' for %s; install qemu-utils or set PHYLLOME_QEMU_IMG",
                                     qemu_img, what);
        if (r < 0)
                return phy_error_set(err, r, "'%s %s' failed for %s: %s", qemu_img, argv[1], what,
                                     msg[0] ? msg : strerror(-r));
        return 0;
}

int store_image_info(const char *qemu_img, const char *path, struct json_object **ret, phy_error *err) {
        return store_image_info_as(qemu_img, path, NULL, ret, err);
}

int store_image_info_as(const char *qemu_img, const char *path, const char *fmt, struct json_object **ret,
                        phy_error *err) {
        char *argv[] = { (char *) qemu_img, "info", "--output=json", "-U", fmt ? "-f" : (char *) path,
                         (char *) fmt, fmt ? (char *) path : NULL, NULL };
        _cleanup_free_ char *out = NULL, *what = NULL;
        if (asprintf(&what, "the disk image '%s'", path) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = store_qemu_img(qemu_img, what, argv, &out, err);
        if (r < 0)
                return r;
        json_object *o = json_tokener_parse(out);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return phy_error_set(err, EIO, "'%s info' printed something that is not JSON for '%s'", qemu_img, path);
        }
        *ret = o;
        return 0;
}

const char *store_disk_format(const struct vm_disk *k) {
        return k->format ? k->format : "qcow2";
}

/* A linked clone's base: <vms>/<VM>/base/<file>, vms being the parent of vmdir. */
static bool in_a_base(const char *real, const char *vmdir) {
        char vd[PATH_MAX];
        if (!realpath(vmdir, vd))
                return false;
        char *slash = strrchr(vd, '/');
        if (!slash || slash == vd)
                return false;
        *slash = '\0';
        size_t n = strlen(vd);
        if (strncmp(real, vd, n) != 0 || real[n] != '/')
                return false;
        const char *vm = real + n + 1, *s = strchr(vm, '/');
        return s && s > vm && strncmp(s, "/base/", 6) == 0 && s[6] && !strchr(s + 6, '/');
}

int store_disk_chain_check(const char *qemu_img, const char *vmdir, const char *vm, const struct vm_disk *k,
                           const char *path, bool *ret_backed, phy_error *err) {
        _cleanup_free_ char *cur = strdup(path), *fmt = strdup(store_disk_format(k));
        int r = 0;
        if (!cur || !fmt)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (ret_backed)
                *ret_backed = false;
        for (unsigned depth = 0;; depth++) {
                _cleanup_(json_object_putp) json_object *info = NULL;
                if (depth >= 16)
                        return phy_error_set(err, ELOOP, "disk '%s' of VM '%s': its backing chain is deeper than 16 "
                                             "images or loops", k->name, vm);
                /* The format named (the definition's, the link's), never probed
                 * when one is known: a raw disk's guest writes any header. */
                if ((r = store_image_info_as(qemu_img, cur, fmt, &info, err)) < 0)
                        return r;
                json_object *fs, *fsd, *df;
                if (json_object_object_get_ex(info, "format-specific", &fs) &&
                    json_object_object_get_ex(fs, "data", &fsd) && json_object_object_get_ex(fsd, "data-file", &df))
                        return phy_error_set(err, EPERM, "disk '%s' of VM '%s': the image '%s' has the external data "
                                             "file '%s'; Phyllome never makes one, and the VM's QEMU, which owns the "
                                             "image, may have written that header: refusing to read it", k->name, vm,
                                             cur, json_object_get_string(df));
                const char *back = store_json_str(info, "full-backing-filename");
                if (!back)
                        return 0;
                if (ret_backed)
                        *ret_backed = true;
                char real[PATH_MAX];
                phy_error ignore = { 0 };
                if (!realpath(back, real) ||
                    (!in_a_base(real, vmdir) && vm_path_check_here(vmdir, "backing file", real, &ignore) < 0)) {
                        phy_error_clear(&ignore);
                        return phy_error_set(err, EPERM, "disk '%s' of VM '%s': the image '%s' has the backing file "
                                             "'%s', which is missing or outside the VM's files, a linked clone's "
                                             "base and the directories this host allows; the VM's QEMU, which owns "
                                             "the image, may have written that header: refusing to read it", k->name,
                                             vm, cur, back);
                }
                phy_error_clear(&ignore);
                const char *bf = store_json_str(info, "backing-filename-format");
                if (bf && strcmp(bf, "qcow2") != 0 && strcmp(bf, "raw") != 0)
                        return phy_error_set(err, EPERM, "disk '%s' of VM '%s': the image '%s' names the backing "
                                             "format '%s'; only qcow2 and raw are read", k->name, vm, cur, bf);
                free(cur);
                free(fmt);
                cur = strdup(real);
                fmt = bf ? strdup(bf) : NULL;   /* no format recorded: probed, and the link checked all the same */
                if (!cur || (bf && !fmt))
                        return phy_error_set(err, ENOMEM, "out of memory");
        }
}

int store_need_qemu_img(const char *given, char **ret, phy_error *err) {
        char *p = store_find_qemu_img(given);
        if (!p)
                return phy_error_set(err, ENOENT, "cannot find qemu-img; install qemu-utils or set PHYLLOME_QEMU_IMG");
        *ret = p;
        return 0;
}

int store_refuse_running(const char *home, const char *name, const char *what, phy_error *err) {
        if (run_is_active(home, name))
                return phy_error_set(err, EBUSY, "VM '%s' is running; stop it first ('phyllo stop %s') to %s", name,
                                     name, what);
        return 0;
}

int64_t store_json_int(struct json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : -1;
}

const char *store_json_str(struct json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                ? json_object_get_string(v) : NULL;
}

/* The entries of directory sfd (src names it) copied into dst, which this
 * makes.  Everything is opened beneath sfd without following a symlink: the
 * tree may belong to a VM's uid (its TPM state), which can swap a file or a
 * directory for a symlink at any moment (issue 12). */
static int copy_tree_at(int sfd, const char *src, const char *dst, const struct stat *dst_st, unsigned depth,
                        phy_error *err) {
        if (depth > 16)
                return phy_error_set(err, ELOOP, "'%s' is nested too deeply to copy", src);
        if (mkdir(dst, dst_st->st_mode & 07777) < 0)
                return phy_error_set(err, errno, "cannot create '%s': %s", dst, strerror(errno));
        /* The owner too: the state may belong to the unprivileged QEMU/swtpm user. */
        if (geteuid() == 0 && lchown(dst, dst_st->st_uid, dst_st->st_gid) < 0)
                return phy_error_set(err, errno, "cannot set the owner of '%s': %s", dst, strerror(errno));
        int dup_fd = fcntl(sfd, F_DUPFD_CLOEXEC, 0);
        DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
        if (!d) {
                if (dup_fd >= 0)
                        close(dup_fd);
                return phy_error_set(err, errno, "cannot read '%s': %s", src, strerror(errno));
        }
        int r = 0;
        for (struct dirent *e; r >= 0 && (e = readdir(d));) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                _cleanup_free_ char *s = NULL, *t = NULL;
                struct stat st;
                if (asprintf(&s, "%s/%s", src, e->d_name) < 0 || asprintf(&t, "%s/%s", dst, e->d_name) < 0) {
                        r = phy_error_set(err, ENOMEM, "out of memory");
                        break;
                }
                _cleanup_close_ int fd = openat(sfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                if (fd < 0 && errno == ELOOP) {
                        r = phy_error_usage(err, "'%s' is a symlink; the tree is copied without following one", s);
                } else if (fd < 0 || fstat(fd, &st) < 0) {
                        r = phy_error_set(err, errno, "cannot read '%s': %s", s, strerror(errno));
                } else if (S_ISDIR(st.st_mode)) {
                        r = copy_tree_at(fd, s, t, &st, depth + 1, err);
                } else if (!S_ISREG(st.st_mode)) {
                        r = phy_error_usage(err, "'%s' is neither a file nor a directory; cannot copy it", s);
                } else {
                        char self[64];
                        snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
                        r = file_copy_atomic(self, t, st.st_mode & 07777, err);
                        if (r >= 0 && geteuid() == 0 && chown(t, st.st_uid, st.st_gid) < 0)
                                r = phy_error_set(err, errno, "cannot set the owner of '%s': %s", t, strerror(errno));
                }
        }
        closedir(d);
        return r;
}

int store_copy_tree(const char *src, const char *dst, phy_error *err) {
        struct stat st;
        /* Never into (and so never removing) something that is there already. */
        if (lstat(dst, &st) == 0)
                return phy_error_set(err, EEXIST, "cannot copy '%s' to '%s': the target exists", src, dst);
        _cleanup_close_ int sfd = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sfd < 0 || fstat(sfd, &st) < 0)
                return phy_error_set(err, errno, "cannot read the directory '%s': %s", src, strerror(errno));
        int r = copy_tree_at(sfd, src, dst, &st, 0, err);
        if (r < 0)
                (void) rm_rf(dst);
        return r;
}

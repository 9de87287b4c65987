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
#include "vm/chain.h"
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

/* "/proc/<our pid>/fd/<fd>": a child (qemu-img) opens the very file we hold. */
static void fd_name(int fd, char *buf, size_t len) {
        snprintf(buf, len, "/proc/%ld/fd/%d", (long) getpid(), fd);
}

int store_image_info_fd(const char *qemu_img, int fd, const char *path, const char *fmt, struct json_object **ret,
                        phy_error *err) {
        char self[64];
        fd_name(fd, self, sizeof self);
        char *argv[] = { (char *) qemu_img, "info", "--output=json", "-U", fmt ? "-f" : self, (char *) fmt,
                         fmt ? self : NULL, NULL };
        _cleanup_free_ char *out = NULL, *what = NULL, *full = NULL;
        if (asprintf(&what, "the disk image '%s'", path) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* Checked through the fd before qemu-img opens anything: a FIFO or a
         * named external data file is refused here (issue 12). */
        int r = vm_image_fd_check(fd, what, err);
        if (r < 0 || (r = store_qemu_img(qemu_img, what, argv, &out, err)) < 0)
                return r;
        json_object *o = json_tokener_parse(out);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return phy_error_set(err, EIO, "'%s info' printed something that is not JSON for '%s'", qemu_img, path);
        }
        /* Its names as the image's own path gives them, as qemu-img would have. */
        const char *b = store_json_str(o, "backing-filename"), *slash = strrchr(path, '/');
        if (b && (b[0] == '/' || !slash ? !(full = strdup(b)) :
                  asprintf(&full, "%.*s/%s", (int) (slash - path), path, b) < 0)) {
                json_object_put(o);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        json_object_object_add(o, "filename", json_object_new_string(path));
        if (full)
                json_object_object_add(o, "full-backing-filename", json_object_new_string(full));
        *ret = o;
        return 0;
}

bool store_image_names_other(struct json_object *info, const char *self) {
        json_object *fs, *data, *ext, *df;
        if (!json_object_object_get_ex(info, "format-specific", &fs) || !json_object_object_get_ex(fs, "data", &data))
                return false;
        if (json_object_object_get_ex(data, "data-file", &df))
                return true;
        if (json_object_object_get_ex(data, "extents", &ext) && json_object_is_type(ext, json_type_array))
                for (size_t i = 0; i < json_object_array_length(ext); i++) {
                        const char *name = store_json_str(json_object_array_get_idx(ext, i), "filename");
                        if (!name || strcmp(name, self) != 0)
                                return true;
                }
        return false;
}

int store_image_info_as(const char *qemu_img, const char *path, const char *fmt, struct json_object **ret,
                        phy_error *err) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return phy_error_set(err, errno, "cannot open the disk image '%s': %s", path, strerror(errno));
        return store_image_info_fd(qemu_img, fd, path, fmt, ret, err);
}

char *store_chain_image_opts(const struct vm_chain *c, const char *fmt) {
        char self[64];
        fd_name(c->top, self, sizeof self);
        char *s = NULL;
        if (asprintf(&s, "driver=%s,file.driver=file,file.filename=%s", fmt, self) < 0)
                return NULL;
        _cleanup_free_ char *prefix = strdup("");
        for (size_t i = 0; prefix && i < c->n; i++) {
                char *p = NULL, *t = NULL;
                fd_name(c->v[i].fd, self, sizeof self);
                if (asprintf(&p, "%sbacking.", prefix) < 0)
                        p = NULL;
                free(prefix);
                prefix = p;
                if (!p || asprintf(&t, "%s,%sdriver=%s,%sfile.driver=file,%sfile.filename=%s", s, p, c->v[i].format, p,
                                   p, self) < 0) {
                        free(s);
                        return NULL;
                }
                free(s);
                s = t;
        }
        if (!prefix)
                s = (free(s), NULL);
        return s;
}

const char *store_disk_format(const struct vm_disk *k) {
        return k->format ? k->format : "qcow2";
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

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
        char *argv[] = { (char *) qemu_img, "info", "--output=json", "-U", (char *) path, NULL };
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

static int copy_tree_rec(const char *src, const char *dst, phy_error *err) {
        struct stat st;
        if (lstat(src, &st) < 0)
                return phy_error_set(err, errno, "cannot read '%s': %s", src, strerror(errno));
        /* The owner too: the state may belong to the unprivileged QEMU/swtpm user. */
        if (S_ISREG(st.st_mode)) {
                int r = file_copy_atomic(src, dst, st.st_mode & 07777, err);
                if (r >= 0 && geteuid() == 0 && chown(dst, st.st_uid, st.st_gid) < 0)
                        r = phy_error_set(err, errno, "cannot set the owner of '%s': %s", dst, strerror(errno));
                return r;
        }
        if (!S_ISDIR(st.st_mode))
                return phy_error_usage(err, "'%s' is neither a file nor a directory; cannot copy it", src);
        if (mkdir(dst, st.st_mode & 07777) < 0)
                return phy_error_set(err, errno, "cannot create '%s': %s", dst, strerror(errno));
        if (geteuid() == 0 && chown(dst, st.st_uid, st.st_gid) < 0)
                return phy_error_set(err, errno, "cannot set the owner of '%s': %s", dst, strerror(errno));
        DIR *d = opendir(src);
        if (!d)
                return phy_error_set(err, errno, "cannot read '%s': %s", src, strerror(errno));
        int r = 0;
        for (struct dirent *e; r >= 0 && (e = readdir(d));) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                _cleanup_free_ char *s = NULL, *t = NULL;
                if (asprintf(&s, "%s/%s", src, e->d_name) < 0 || asprintf(&t, "%s/%s", dst, e->d_name) < 0)
                        r = phy_error_set(err, ENOMEM, "out of memory");
                else
                        r = copy_tree_rec(s, t, err);
        }
        closedir(d);
        return r;
}

int store_copy_tree(const char *src, const char *dst, phy_error *err) {
        struct stat st;
        /* Never into (and so never removing) something that is there already. */
        if (lstat(dst, &st) == 0)
                return phy_error_set(err, EEXIST, "cannot copy '%s' to '%s': the target exists", src, dst);
        int r = copy_tree_rec(src, dst, err);
        if (r < 0)
                (void) rm_rf(dst);
        return r;
}

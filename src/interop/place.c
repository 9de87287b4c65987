/* SPDX-License-Identifier: MIT */
/*
 * An import plan made real: checked whole, built in a temporary directory
 * of the home (vm_tmpdir_make), renamed into place.  Nothing is left behind
 * by a failure.
 */
#include "interop.h"

#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "fileio.h"
#include "vm/profile.h"
#include "store/store.h"
#include "vm/chain.h"

void interop_plan_done(struct interop_plan *p) {
        vm_def_done(&p->def);
        for (size_t i = 0; i < p->n_files; i++) {
                struct interop_file *f = &p->files[i];
                free(f->src);
                free(f->dst);
                free(f->src_format);
                free(f->dst_format);
                free(f->what);
        }
        free(p->files);
        interop_report_done(&p->report);
        free(p->source);
        if (p->tmpdir)
                (void) rm_rf(p->tmpdir);
        free(p->tmpdir);
        *p = (struct interop_plan) { 0 };
}

static char *dup_or_null(const char *s, bool *oom) {
        char *c = s ? strdup(s) : NULL;
        if (s && !c)
                *oom = true;
        return c;
}

int interop_plan_add_file(struct interop_plan *p, enum interop_file_how how, const char *src, const char *dst,
                          const char *src_format, const char *dst_format, const char *what, phy_error *err) {
        struct interop_file *n = realloc(p->files, (p->n_files + 1) * sizeof *n);
        if (!n)
                return phy_error_set(err, ENOMEM, "out of memory");
        p->files = n;
        bool oom = false;
        struct interop_file f = { .how = how, .src = dup_or_null(src, &oom), .dst = dup_or_null(dst, &oom),
                                  .src_format = dup_or_null(src_format, &oom),
                                  .dst_format = dup_or_null(dst_format, &oom), .what = dup_or_null(what, &oom) };
        p->files[p->n_files++] = f;
        return oom ? phy_error_set(err, ENOMEM, "out of memory") : 0;
}

/* `qemu-img info` of src read as fmt (NULL: probed, only for what the
 * description did not name); a backing file is refused: an image from
 * outside may name any host file as its backing file. */
/* The source opened once, as resolved (interop_place replaced each source
 * by its resolved path after the check; our own temporary directory's
 * members without following a symlink): what qemu-img reads, through
 * /proc/PID/fd/N, is the file checked, and a FIFO is refused before
 * qemu-img could block on it (issue 12).  *ret_fd, self gets its name. */
static int source_open(const struct interop_plan *p, const struct interop_file *f, int *ret_fd, char *self,
                       size_t len, phy_error *err) {
        bool own = p->tmpdir && path_is_below(f->src, p->tmpdir);
        int fd = own ? open(f->src, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC)
                     : open_resolved(f->src, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
        if (own && fd < 0)
                fd = -errno;
        if (fd < 0)
                return phy_error_set(err, -fd, "%s: cannot open the disk image '%s': %s%s", f->what, f->src,
                                     strerror(-fd), fd == -ELOOP ? " (a symlink appeared since it was checked)" : "");
        char what[PATH_MAX + 300];
        snprintf(what, sizeof what, "%s: the disk image '%s'", f->what, f->src);
        int r = vm_image_fd_check(fd, what, err);
        if (r < 0) {
                close(fd);
                return r;
        }
        snprintf(self, len, "/proc/%ld/fd/%d", (long) getpid(), fd);
        *ret_fd = fd;
        return 0;
}

static int disk_info(const char *qemu_img, const struct interop_file *f, const char *self, char **ret_format,
                     uint64_t *ret_size, phy_error *err) {
        char *argv[] = { (char *) qemu_img, "info", "--output=json", "-U", f->src_format ? "-f" : (char *) self,
                         f->src_format ? f->src_format : NULL, f->src_format ? (char *) self : NULL, NULL };
        _cleanup_free_ char *out = NULL;
        char msg[1024];
        int r = exec_run(argv, &out, msg, sizeof msg);
        if (r < 0)
                return phy_error_set(err, r, "%s: qemu-img cannot read the disk image '%s'%s%s%s: %s", f->what, f->src,
                                     f->src_format ? " as " : "", f->src_format ? f->src_format : "",
                                     "", msg[0] ? msg : strerror(-r));
        json_object *j = json_tokener_parse(out), *v;
        if (!j)
                return phy_error_set(err, EIO, "%s: qemu-img info of '%s' is not JSON", f->what, f->src);
        if (json_object_object_get_ex(j, "backing-filename", &v)) {
                r = phy_error_set_kind(err, PHY_ERR_PERMISSION, EPERM, "%s: the disk image '%s' has a backing file "
                                       "('%s'); an imported image may not name other host files: flatten it first "
                                       "(qemu-img convert -O qcow2 '%s' new.qcow2)", f->what, f->src,
                                       json_object_get_string(v), f->src);
                json_object_put(j);
                return r;
        }
        /* A VMDK descriptor names its extents: each must be the image itself
         * (a hostile descriptor could make any host file the guest's disk). */
        json_object *fs, *data, *ext, *df;
        /* Nor may a qcow2 keep its data in an external file: convert would copy that host file in. */
        if (json_object_object_get_ex(j, "format-specific", &fs) && json_object_object_get_ex(fs, "data", &data) &&
            json_object_object_get_ex(data, "data-file", &df)) {
                r = phy_error_set_kind(err, PHY_ERR_PERMISSION, EPERM, "%s: the disk image '%s' keeps its data in "
                                       "the external data file '%s'; an imported image may not name other host "
                                       "files: refused", f->what, f->src, json_object_get_string(df));
                json_object_put(j);
                return r;
        }
        if (json_object_object_get_ex(j, "format-specific", &fs) && json_object_object_get_ex(fs, "data", &data) &&
            json_object_object_get_ex(data, "extents", &ext) && json_object_is_type(ext, json_type_array))
                for (size_t i = 0; i < json_object_array_length(ext); i++) {
                        json_object *fn;
                        const char *name = json_object_object_get_ex(json_object_array_get_idx(ext, i), "filename", &fn)
                                                   ? json_object_get_string(fn) : NULL;
                        if (!name || strcmp(name, self) != 0) {
                                r = phy_error_set_kind(err, PHY_ERR_PERMISSION, EPERM, "%s: the disk image '%s' "
                                                       "takes its data from '%s'; an imported image may not name "
                                                       "other host files", f->what, f->src, name ? name : "?");
                                json_object_put(j);
                                return r;
                        }
                }
        if (json_object_object_get_ex(j, "format", &v) && !(*ret_format = strdup(json_object_get_string(v)))) {
                json_object_put(j);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        *ret_size = json_object_object_get_ex(j, "virtual-size", &v) ? (uint64_t) json_object_get_int64(v) : 0;
        json_object_put(j);
        return 0;
}

/* The regular files of src (no links, no subdirectories) copied into dst. */
static int copy_tree(const struct interop_file *f, const char *dst, phy_error *err) {
        _cleanup_close_ int dfd = open(f->src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return phy_error_set(err, errno, "%s: cannot open the directory '%s': %s", f->what, f->src,
                                     strerror(errno));
        if (mkdir_p(dst, 0700) < 0)
                return phy_error_set(err, errno, "cannot create '%s': %s", dst, strerror(errno));
        DIR *d = fdopendir(dfd);
        if (!d)
                return phy_error_set(err, errno, "cannot read '%s': %s", f->src, strerror(errno));
        dfd = -1;
        int r = 0;
        struct dirent *e;
        while (r >= 0 && (e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
                        r = phy_error_set_kind(err, PHY_ERR_PERMISSION, EPERM, "%s: '%s/%s' is not a regular file; "
                                               "the TPM state is copied file by file", f->what, f->src, e->d_name);
                        break;
                }
                _cleanup_free_ char *s = NULL, *t = NULL;
                if (asprintf(&s, "%s/%s", f->src, e->d_name) < 0 || asprintf(&t, "%s/%s", dst, e->d_name) < 0) {
                        r = phy_error_set(err, ENOMEM, "out of memory");
                        break;
                }
                r = file_copy_at(dirfd(d), e->d_name, s, t, 0600, NULL, err);
        }
        closedir(d);
        return r;
}

/* Every disk read once with qemu-img info before anything is copied: its
 * format (when the description named none), no backing file, its size
 * (the profile's minimums are judged on it). */
static int probe_disks(struct interop_plan *p, const char *qemu_img, int *fds, phy_error *err) {
        int r;
        char self[64];
        for (size_t i = 0; i < p->n_files; i++) {
                struct interop_file *f = &p->files[i];
                if (f->how != INTEROP_DISK)
                        continue;
                _cleanup_free_ char *fmt = NULL;
                uint64_t size = 0;
                if ((r = source_open(p, f, &fds[i], self, sizeof self, err)) < 0 ||
                    (r = disk_info(qemu_img, f, self, &fmt, &size, err)) < 0)
                        return r;
                if (!f->src_format)
                        f->src_format = TAKE_PTR(fmt);
                for (size_t k = 0; k < p->def.n_disks; k++)
                        if (strcmp(p->def.disks[k].path, f->dst) == 0 && !p->def.disks[k].size)
                                p->def.disks[k].size = size;
        }
        /* Disks used where they are. */
        for (size_t k = 0; k < p->def.n_disks; k++) {
                struct vm_disk *d = &p->def.disks[k];
                if (d->path[0] != '/')
                        continue;
                _cleanup_free_ char *what = NULL, *fmt = NULL;
                uint64_t size = 0;
                if (asprintf(&what, "[disk %s] path", d->name) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                struct interop_file f = { .src = d->path, .src_format = d->format, .what = what };
                _cleanup_close_ int fd = -1;
                if ((r = source_open(p, &f, &fd, self, sizeof self, err)) < 0 ||
                    (r = disk_info(qemu_img, &f, self, &fmt, &size, err)) < 0)
                        return r;
                if (!d->size)
                        d->size = size;
        }
        return 0;
}

static int place_files(const char *tmp, struct interop_plan *p, const char *qemu_img, const int *fds,
                       phy_error *err) {
        int r;
        for (size_t i = 0; i < p->n_files; i++) {
                struct interop_file *f = &p->files[i];
                _cleanup_free_ char *dst = NULL;
                if (asprintf(&dst, "%s/%s", tmp, f->dst) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if (f->how == INTEROP_FILE) {
                        char *slash = strrchr(dst, '/');
                        *slash = '\0';
                        int mk = mkdir_p(dst, 0700);
                        *slash = '/';
                        if (mk < 0)
                                return phy_error_set(err, errno, "cannot create the directory of '%s': %s", dst,
                                                     strerror(errno));
                        if ((r = file_copy_atomic(f->src, dst, 0600, err)) < 0)
                                return phy_error_prefix(err, "%s", f->what);
                } else if (f->how == INTEROP_TREE) {
                        if ((r = copy_tree(f, dst, err)) < 0)
                                return r;
                } else {
                        char self[64];
                        snprintf(self, sizeof self, "/proc/%ld/fd/%d", (long) getpid(), fds[i]);
                        char *argv[] = { (char *) qemu_img, "convert", "-f", f->src_format, "-O", f->dst_format,
                                         self, dst, NULL };
                        char msg[1024];
                        if ((r = exec_run(argv, NULL, msg, sizeof msg)) < 0)
                                return phy_error_set(err, r, "%s: qemu-img could not convert '%s' (%s) to %s: %s",
                                                     f->what, f->src, f->src_format, f->dst_format,
                                                     msg[0] ? msg : strerror(-r));
                }
        }
        return 0;
}

int interop_place(const char *home, struct interop_plan *p, const struct host_facts *host,
                  const struct qemu_caps *caps, const char *qemu_img_given, phy_error *err) {
        struct vm_def *d = &p->def;
        int r;
        if (!vm_name_valid(d->name))
                return phy_error_usage(err, "%s: '%s' is no valid VM name (1 to 64 of A-Z a-z 0-9 . _ -); give one "
                                       "with --name", p->source, d->name);
        if ((r = vm_def_make_identity(d, err)) < 0)
                return r;
        _cleanup_free_ char *dir = vm_dir(home, d->name), *tmp = NULL, *conf = NULL;
        if (!dir)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (access(dir, F_OK) == 0)
                return phy_error_set(err, EEXIST, "a VM named '%s' already exists (%s); import with --name NEW",
                                     d->name, dir);
        _cleanup_free_ char *qemu_img = exec_find_qemu_img(qemu_img_given);
        if (!qemu_img)
                return phy_error_set(err, ENOENT, "cannot find qemu-img to bring the disks; install qemu-utils or "
                                     "set PHYLLOME_QEMU_IMG");
        /* The sources again (the readers checked them as they met them), each
         * replaced by its resolved path: what is read is what was checked. */
        for (size_t i = 0; i < p->n_files; i++) {
                struct interop_file *f = &p->files[i];
                if (p->tmpdir && path_is_below(f->src, p->tmpdir))
                        continue;
                char *real = NULL;
                if ((r = vm_path_check_here_real(dir, f->what, f->src, &real, err)) < 0)
                        return r;
                free(f->src);
                f->src = real;
        }
        /* The definition's own syntax: formatted and parsed back as any vm.conf. */
        _cleanup_free_ char *text = vm_def_format(d, false);
        _cleanup_vm_def_ struct vm_def back = { 0 }, model = { 0 };
        if (!text)
                return phy_error_usage(err, "%s: a value of the imported definition has a control character",
                                       p->source);
        if ((r = vm_def_parse("imported vm.conf", text, &back, err)) < 0)
                return phy_error_prefix(err, "%s", p->source);
        /* Judged on this host before a byte is copied; each disk read through
         * the fd probe_disks opened. */
        _cleanup_free_ int *fds = calloc(p->n_files + 1, sizeof *fds);
        if (!fds)
                return phy_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < p->n_files; i++)
                fds[i] = -1;
        r = probe_disks(p, qemu_img, fds, err);
        if (r >= 0)
                r = vm_model_resolve(d, host, caps, &model, err);
        _cleanup_close_ int lock = -1;
        if (r >= 0 && (r = vm_tmpdir_make(home, "import", d->name, &tmp, &lock, err)) >= 0 && chmod(tmp, 0755) < 0)
                r = phy_error_set(err, errno, "cannot set the mode of '%s': %s", tmp, strerror(errno));
        if (r >= 0)
                r = place_files(tmp, p, qemu_img, fds, err);
        for (size_t i = 0; i < p->n_files; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        if (!tmp)
                return r;
        if (r >= 0 && asprintf(&conf, "%s/vm.conf", tmp) < 0)
                r = phy_error_set(err, ENOMEM, "out of memory");
        if (r >= 0)
                r = vm_def_save(d, conf, err);
        if (r >= 0 && rename(tmp, dir) < 0)
                r = errno == EEXIST || errno == ENOTEMPTY
                        ? phy_error_set(err, EEXIST, "a VM named '%s' was created meanwhile (%s)", d->name, dir)
                        : phy_error_set(err, errno, "cannot rename '%s' to '%s': %s", tmp, dir, strerror(errno));
        if (r < 0)
                (void) rm_rf(tmp);
        return r;
}

/* SPDX-License-Identifier: MIT */
/*
 * Clones.  A linked clone must not share a disk the source keeps writing,
 * so each source disk is first frozen: the image moves to <src_dir>/base/
 * (mode 0444, never opened for writing again) and the source gets a thin
 * qcow2 overlay on it in the old place; the clone gets another overlay on
 * the same base.  Both VMs then run freely.  Only renames and two small
 * `qemu-img create` calls per disk: the time does not depend on disk size.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "fileio.h"
#include "store.h"
#include "store-internal.h"
#include "vm/vm.h"
#include "vm/chain.h"

/* Relative paths of the definition (kernel, ISO) made absolute against the
 * source's directory, so the clone in another directory finds them. */
static int absolutize(char **path, const char *dir) {
        if (!*path || (*path)[0] == '/')
                return 0;
        char *p = vm_path_resolve(dir, *path);
        if (!p)
                return -ENOMEM;
        free(*path);
        *path = p;
        return 0;
}

static bool has_snapshots(const char *dir) {
        _cleanup_free_ char *s = NULL;
        if (asprintf(&s, "%s/snapshots", dir) < 0)
                return false;
        DIR *d = opendir(s);
        bool any = false;
        for (struct dirent *e; d && !any && (e = readdir(d));)
                any = e->d_name[0] != '.';
        if (d)
                closedir(d);
        return any;
}

struct frozen {
        char *disk;     /* the source's disk path (now an overlay) */
        char *base;     /* where its data went */
};

/* Freezes the source disk at abs into <srcdir>/base/<label>.<n>.qcow2 and
 * puts an overlay in its place.  *ret gets the base's absolute path.
 * Crash-safe: the source's disk name always holds either the image itself or
 * the finished overlay (a hard link makes the base, the overlay is built
 * aside and renamed over the disk); a kill leaves at worst an unused base
 * link, never a source without its disk. */
static int freeze(const char *qemu_img, const char *srcdir, const char *label, const char *rel, const char *abs,
                  char **ret, phy_error *err) {
        _cleanup_free_ char *basedir = NULL, *base = NULL, *backing = NULL, *aside = NULL;
        if (asprintf(&basedir, "%s/base", srcdir) < 0 || asprintf(&aside, "%s/.#overlay.%s", srcdir, label) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = mkdir_p(basedir, 0755);
        if (r < 0)
                return phy_error_set(err, r, "cannot create '%s': %s", basedir, strerror(-r));
        for (unsigned n = 1; !base; n++) {
                if (asprintf(&base, "%s/%s.%u.qcow2", basedir, label, n) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if (access(base, F_OK) == 0)
                        base = (free(base), NULL);
        }
        /* Relative to the overlay when it sits in the VM dir: the pair can move with the dir. */
        if (strchr(rel, '/') ? !(backing = strdup(base)) : asprintf(&backing, "base/%s", strrchr(base, '/') + 1) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* The disk may be the overlay of an earlier clone, whose relative
         * backing ("base/x") would not resolve from inside base/: it gets
         * the absolute path, right from both places. */
        _cleanup_(json_object_putp) json_object *info = NULL;
        if ((r = store_image_info_as(qemu_img, abs, "qcow2", &info, err)) < 0)
                return r;
        json_object *b = NULL;
        if (json_object_object_get_ex(info, "backing-filename", &b) && json_object_is_type(b, json_type_string) &&
            json_object_get_string(b)[0] != '/') {
                _cleanup_free_ char *babs = vm_path_resolve(srcdir, json_object_get_string(b));
                if (!babs)
                        return phy_error_set(err, ENOMEM, "out of memory");
                char *argv[] = { (char *) qemu_img, "rebase", "-q", "-u", "-f", "qcow2", "-F", "qcow2", "-b", babs,
                                 (char *) abs, NULL };
                if ((r = store_qemu_img(qemu_img, "the absolute backing path of a frozen overlay", argv, NULL, err)) < 0)
                        return r;
        }
        if (link(abs, base) < 0)
                return phy_error_set(err, errno, "cannot link '%s' to '%s': %s", abs, base, strerror(errno));
        (void) unlink(aside);
        char *argv[] = { (char *) qemu_img, "create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2", aside, NULL };
        if ((r = store_qemu_img(qemu_img, "the source's overlay of a linked clone", argv, NULL, err)) < 0 ||
            (rename(aside, abs) < 0 &&
             (r = phy_error_set(err, errno, "cannot rename '%s' to '%s': %s", aside, abs, strerror(errno))) < 0)) {
                (void) unlink(aside);
                (void) unlink(base);
                return r;
        }
        /* The base is the source's image, which its VM's uid owned: now ours,
         * so no VM's QEMU can make it writable again and change what a
         * linked clone reads (issue 12: one uid per VM). */
        if (lchown(base, geteuid(), getegid()) < 0 || chmod(base, 0444) < 0)
                return phy_error_set(err, errno, "cannot make '%s' read-only: %s", base, strerror(errno));
        *ret = TAKE_PTR(base);
        return 0;
}

/* Undoes freeze(): the overlay is empty (nothing ran on it), so the base goes back. */
static void unfreeze(const struct frozen *f) {
        const char *slash = strrchr(f->base, '/');
        _cleanup_free_ char *rec = NULL;
        if (slash && asprintf(&rec, "%.*s/.%s.clone", (int) (slash - f->base), f->base, slash + 1) >= 0)
                (void) unlink(rec);
        (void) chmod(f->base, 0644);
        if (rename(f->base, f->disk) < 0)
                (void) chmod(f->base, 0444);
}

int store_clone(const char *home, const char *src, const char *dst, bool full, enum store_tpm_mode tpm,
                const char *qemu_img_given, phy_error *err) {
        _cleanup_vm_def_ struct vm_def s = { 0 }, d = { 0 };
        _cleanup_free_ char *qemu_img = NULL, *sdir = NULL, *ddir = NULL, *tmp = NULL;
        _cleanup_close_ int tmp_lock = -1;
        int r = vm_load_by_name(home, src, &s, err);
        if (r < 0)
                return r;
        if (!vm_name_valid(dst))
                return phy_error_usage(err, "invalid VM name '%s'; use up to 64 letters, digits, '.', '_' and '-'",
                                     dst);
        if ((r = store_refuse_running(home, src, "clone it", err)) < 0 ||
            (r = store_need_qemu_img(qemu_img_given, &qemu_img, err)) < 0)
                return r;
        if (!(sdir = vm_dir(home, src)) || !(ddir = vm_dir(home, dst)))
                return phy_error_set(err, ENOMEM, "out of memory");
        /* It renames, reads and copies the source's disks: only allowed files (issue 12). */
        if ((r = vm_def_check_here(&s, sdir, err)) < 0)
                return r;
        if (access(ddir, F_OK) == 0)
                return phy_error_set(err, EEXIST, "a VM named '%s' already exists (%s)", dst, ddir);
        for (size_t i = 0; i < s.n_disks; i++)
                if (s.disks[i].key_file || s.disks[i].key_prompt)
                        return phy_error_set(err, ENOTSUP, "disk '%s' of VM '%s' is encrypted; encrypted disks cannot be "
                                             "cloned yet (export and import the VM instead)", s.disks[i].name, src);
        if (!full) {
                if (has_snapshots(sdir))
                        return phy_error_set(err, ENOTSUP, "VM '%s' has snapshots, which a linked clone would freeze "
                                             "out of reach; delete them first or clone with --full", src);
                for (size_t i = 0; i < s.n_disks; i++) {
                        const struct vm_disk *k = &s.disks[i];
                        if (k->format && strcmp(k->format, "qcow2") != 0)
                                return phy_error_set(err, ENOTSUP, "disk '%s' of VM '%s' is %s; a linked clone needs "
                                                     "qcow2 disks: clone with --full", k->name, src, k->format);
                        if (k->path[0] == '/')
                                return phy_error_set(err, ENOTSUP, "disk '%s' of VM '%s' is the image '%s' outside the "
                                                     "VM's directory, which a linked clone would have to move: clone "
                                                     "with --full", k->name, src, k->path);
                }
        }

        if ((r = vm_def_copy(&s, &d)) < 0)
                return phy_error_set(err, -r, "out of memory");
        snprintf(d.name, sizeof d.name, "%s", dst);
        d.uuid[0] = '\0';
        for (size_t i = 0; i < d.n_nics; i++)
                d.nics[i].mac[0] = '\0';
        if ((r = vm_def_make_identity(&d, err)) < 0)
                return r;
        if (absolutize(&d.kernel, sdir) < 0 || absolutize(&d.initrd, sdir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* A pending unattended install is the source's own (its answer was never kept). */
        vm_install_done(&d.install);
        for (size_t i = 0; i < d.n_cdroms; i++)
                if (absolutize(&d.cdroms[i].path, sdir) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");

        if ((r = vm_tmpdir_make(home, "clone", dst, &tmp, &tmp_lock, err)) < 0)
                return r;
        if (chmod(tmp, 0755) < 0)
                r = phy_error_set(err, errno, "cannot set the mode of '%s': %s", tmp, strerror(errno));

        _cleanup_free_ struct frozen *fz = calloc(s.n_disks + 1, sizeof *fz);
        size_t nfz = 0;
        if (!fz)
                r = phy_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; r >= 0 && i < s.n_disks; i++) {
                struct vm_disk *k = &d.disks[i];
                _cleanup_free_ char *from = vm_path_resolve(sdir, s.disks[i].path), *rel = NULL, *to = NULL;
                if (!from || asprintf(&rel, "disk-%s.qcow2", k->name) < 0 || asprintf(&to, "%s/%s", tmp, rel) < 0) {
                        r = phy_error_set(err, ENOMEM, "out of memory");
                        break;
                }
                /* Every link checked before root reads or freezes it (issue 12): a
                 * frozen base's header is then what it stays. */
                struct vm_chain ch;
                r = vm_disk_chain_open(sdir, src, s.uuid, &s.disks[i], from, &ch, err);
                if (r >= 0 && full) {
                        /* Read as its format, through the files checked, never what a header names. */
                        _cleanup_free_ char *opts = store_chain_image_opts(&ch, store_disk_format(&s.disks[i]));
                        char *argv[] = { qemu_img, "convert", "-q", "--image-opts", opts, "-O", "qcow2", to, NULL };
                        r = opts ? store_qemu_img(qemu_img, "a full clone's disk copy", argv, NULL, err)
                                 : phy_error_set(err, ENOMEM, "out of memory");
                } else if (r >= 0) {
                        char *base = NULL;
                        r = freeze(qemu_img, sdir, k->name, s.disks[i].path, from, &base, err);
                        if (r >= 0) {
                                fz[nfz++] = (struct frozen) { .disk = TAKE_PTR(from), .base = base };
                                char *argv[] = { qemu_img, "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2",
                                                 to, NULL };
                                r = store_qemu_img(qemu_img, "a linked clone's overlay", argv, NULL, err);
                        }
                        /* The clone, and only it, may use this base (vm/chain.h). */
                        if (r >= 0)
                                r = vm_base_record(base, d.uuid, err);
                }
                vm_chain_done(&ch);
                if (r >= 0) {
                        free(k->path);
                        free(k->format);
                        k->path = TAKE_PTR(rel);
                        k->format = strdup("qcow2");
                        if (!k->format)
                                r = phy_error_set(err, ENOMEM, "out of memory");
                }
        }

        _cleanup_free_ char *svars = NULL, *dvars = NULL, *stpm = NULL, *dtpm = NULL, *conf = NULL;
        if (r >= 0 && (asprintf(&svars, "%s/OVMF_VARS.fd", sdir) < 0 || asprintf(&dvars, "%s/OVMF_VARS.fd", tmp) < 0 ||
                       asprintf(&stpm, "%s/tpm", sdir) < 0 || asprintf(&dtpm, "%s/tpm", tmp) < 0 ||
                       asprintf(&conf, "%s/vm.conf", tmp) < 0))
                r = phy_error_set(err, ENOMEM, "out of memory");
        if (r >= 0 && access(svars, F_OK) == 0)
                r = file_copy_atomic(svars, dvars, 0600, err);
        /* A clone is a new machine: a fresh TPM unless asked to copy (the same keys in two VMs). */
        if (r >= 0 && tpm == STORE_TPM_COPY && access(stpm, F_OK) == 0)
                r = store_copy_tree(stpm, dtpm, err);
        if (r >= 0)
                r = vm_def_save(&d, conf, err);
        if (r >= 0 && rename(tmp, ddir) < 0)
                r = errno == EEXIST || errno == ENOTEMPTY
                        ? phy_error_set(err, EEXIST, "a VM named '%s' was created meanwhile (%s)", dst, ddir)
                        : phy_error_set(err, errno, "cannot rename '%s' to '%s': %s", tmp, ddir, strerror(errno));
        if (r < 0) {
                (void) rm_rf(tmp);
                while (nfz-- > 0)
                        unfreeze(&fz[nfz]);
        }
        for (size_t i = 0; i < s.n_disks; i++) {
                free(fz[i].disk);
                free(fz[i].base);
        }
        return r;
}

/* Disks of VM other whose backing file lies in basedir: their paths go to *ret when non-NULL. */
static int depends_on(const char *home, const char *other, const char *basedir, const char *qemu_img, strv *ret,
                      bool *ret_any, phy_error *err) {
        _cleanup_vm_def_ struct vm_def d = { 0 };
        _cleanup_free_ char *dir = vm_dir(home, other);
        *ret_any = false;
        if (!dir)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (vm_load_by_name(home, other, &d, err) < 0)
                return 0;       /* a broken definition is not a clone we can know of */
        size_t bl = strlen(basedir);
        for (size_t i = 0; i < d.n_disks; i++) {
                _cleanup_free_ char *p = vm_path_resolve(dir, d.disks[i].path);
                _cleanup_(json_object_putp) json_object *info = NULL;
                phy_error ignore = { 0 };
                if (!p)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if (store_image_info_as(qemu_img, p, store_disk_format(&d.disks[i]), &info, &ignore) < 0)
                        continue;
                const char *b = store_json_str(info, "full-backing-filename");
                if (b && strncmp(b, basedir, bl) == 0 && b[bl] == '/') {
                        *ret_any = true;
                        if (ret && strv_push(ret, p) < 0)
                                return phy_error_set(err, ENOMEM, "out of memory");
                }
        }
        return 0;
}

int store_clones_of(const char *home, const char *name, strv *ret, phy_error *err) {
        _cleanup_strv_ strv all = { 0 }, out = { 0 };
        _cleanup_free_ char *dir = vm_dir(home, name), *basedir = NULL, *qemu_img = NULL;
        if (!dir || asprintf(&basedir, "%s/base", dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r;
        if (access(basedir, F_OK) < 0) {
                *ret = (strv) { 0 };
                return 0;       /* never cloned linked: nothing can depend on it */
        }
        if ((r = store_need_qemu_img(NULL, &qemu_img, err)) < 0 || (r = vm_list(home, &all, err)) < 0)
                return r;
        for (size_t i = 0; i < all.n; i++) {
                bool any = false;
                if (strcmp(all.v[i], name) == 0)
                        continue;
                if ((r = depends_on(home, all.v[i], basedir, qemu_img, NULL, &any, err)) < 0)
                        return r;
                if (any && strv_push(&out, all.v[i]) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
        }
        *ret = out;
        out = (strv) { 0 };
        return 0;
}

int store_delete_check(const char *home, const char *name, bool force, const char *qemu_img_given, phy_error *err) {
        _cleanup_strv_ strv clones = { 0 };
        int r = store_clones_of(home, name, &clones, err);
        if (r < 0 || clones.n == 0)
                return r;
        _cleanup_free_ char *list = strv_join(&clones, ", ");
        if (!force)
                return phy_error_set(err, EBUSY, "VM '%s' has linked clones that use its disks: %s; delete them first, "
                                     "or delete with --force, which first copies the data they need into them",
                                     name, list ? list : "?");
        _cleanup_free_ char *dir = vm_dir(home, name), *basedir = NULL, *qemu_img = NULL;
        if (!dir || asprintf(&basedir, "%s/base", dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if ((r = store_need_qemu_img(qemu_img_given, &qemu_img, err)) < 0)
                return r;
        for (size_t i = 0; i < clones.n; i++)
                if ((r = store_refuse_running(home, clones.v[i], "let its source be deleted", err)) < 0)
                        return r;
        for (size_t i = 0; i < clones.n; i++) {
                _cleanup_strv_ strv disks = { 0 };
                bool any;
                if ((r = depends_on(home, clones.v[i], basedir, qemu_img, &disks, &any, err)) < 0)
                        return r;
                for (size_t k = 0; k < disks.n; k++) {
                        /* Safe-mode rebase onto nothing copies in all data the clone reads from the base. */
                        char *argv[] = { qemu_img, "rebase", "-q", "-f", "qcow2", "-b", "", disks.v[k], NULL };
                        if ((r = store_qemu_img(qemu_img, "making a clone's disk standalone", argv, NULL, err)) < 0)
                                return phy_error_prefix(err, "VM '%s' was not deleted", name);
                }
        }
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* phyllo disk add|list|resize|remove: the definition and the images together. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "fileio.h"
#include "qemu/argv.h"
#include "store.h"
#include "store-internal.h"
#include "vm/vm.h"
#include "vm/chain.h"

/* With ret_lock: under the VM's edit lock (held until *ret_lock is closed),
 * for a change that is saved. */
static int load(const char *home, const char *name, struct vm_def *d, char **ret_dir, int *ret_lock, phy_error *err) {
        int r = ret_lock ? vm_edit_lock(home, name, ret_lock, err) : 0;
        if (r >= 0)
                r = vm_load_by_name(home, name, d, err);
        if (r < 0)
                return r;
        if (ret_dir && !(*ret_dir = vm_dir(home, name)))
                return phy_error_set(err, ENOMEM, "out of memory");
        return 0;
}

static int save(const char *home, const char *name, const struct vm_def *d, phy_error *err) {
        _cleanup_free_ char *conf = vm_conf_path(home, name);
        if (!conf)
                return phy_error_set(err, ENOMEM, "out of memory");
        return vm_def_save(d, conf, err);
}

ssize_t store_find_disk(const struct vm_def *d, const char *disk) {
        for (size_t i = 0; i < d->n_disks; i++)
                if (strcmp(d->disks[i].name, disk) == 0)
                        return (ssize_t) i;
        return -1;
}

static int no_disk(const struct vm_def *d, const char *disk, phy_error *err) {
        _cleanup_strv_ strv names = { 0 };
        for (size_t i = 0; i < d->n_disks; i++)
                if (strv_push(&names, d->disks[i].name) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
        _cleanup_free_ char *list = strv_join(&names, ", ");
        return phy_error_set(err, ENOENT, "VM '%s' has no disk named '%s' (its disks: %s)", d->name, disk,
                             list && *list ? list : "none");
}

char *store_key_path(const char *run_dir, const char *disk) {
        char *p = NULL;
        return asprintf(&p, "%s/key-disk-%s", run_dir, disk) < 0 ? NULL : p;
}

int store_keys_unlock(const char *home, const struct vm_def *d, store_ask_fn ask, void *userdata, phy_error *err) {
        _cleanup_free_ char *rd = NULL;
        int r = run_dir_path(home, d->name, &rd, err), n = 0;
        if (r < 0)
                return r;
        for (size_t i = 0; i < d->n_disks; i++) {
                if (!d->disks[i].key_prompt)
                        continue;
                if (!ask)
                        return phy_error_set(err, ENOKEY, "disk '%s' of VM '%s' is encrypted with a typed passphrase "
                                             "(key = prompt) and nobody can type it here: run the command on a terminal",
                                             d->disks[i].name, d->name);
                if (n == 0 && (r = run_dir_make(rd, err)) < 0)
                        return r;
                char pass[512];
                if ((r = ask(d->disks[i].name, pass, sizeof pass, userdata)) < 0) {
                        explicit_bzero(pass, sizeof pass);
                        if (r == -ENOTTY)
                                return phy_error_set(err, ENOKEY, "disk '%s' of VM '%s' is encrypted with a typed "
                                                     "passphrase (key = prompt) and there is no terminal to type it "
                                                     "on: run the command on a terminal", d->disks[i].name, d->name);
                        return phy_error_set(err, -r, "no passphrase was typed for disk '%s' of VM '%s'",
                                             d->disks[i].name, d->name);
                }
                _cleanup_free_ char *kp = store_key_path(rd, d->disks[i].name);
                r = kp ? file_write_atomic(kp, pass, strlen(pass), 0600, err) : -ENOMEM;
                explicit_bzero(pass, sizeof pass);
                if (r < 0)
                        return r;
                n++;
        }
        return n;
}

void store_keys_forget(const char *home, const struct vm_def *d) {
        _cleanup_free_ char *rd = NULL;
        phy_error e = { 0 };
        if (run_dir_path(home, d->name, &rd, &e) < 0)
                return;
        for (size_t i = 0; i < d->n_disks; i++) {
                _cleanup_free_ char *kp = d->disks[i].key_prompt ? store_key_path(rd, d->disks[i].name) : NULL;
                if (kp)
                        (void) unlink(kp);
        }
}

int store_image_args(const char *run_dir, const char *vmdir, const struct vm_disk *k, const char *path, strv *argv,
                     phy_error *err) {
        if (!k->key_file && !k->key_prompt)
                return strv_push(argv, path) < 0 ? phy_error_set(err, ENOMEM, "out of memory") : 0;
        /* An encrypted qcow2 opens only with its key: a secret object read
         * from the key file (or the typed passphrase's file in the run dir). */
        _cleanup_free_ char *key = k->key_prompt ? store_key_path(run_dir, k->name) : vm_path_resolve(vmdir, k->key_file);
        _cleanup_free_ char *ek = NULL, *ep = NULL;
        if (!key || !(ek = qemu_opt_escape(key)) || !(ep = qemu_opt_escape(path)))
                return phy_error_set(err, ENOMEM, "out of memory");
        if (k->key_prompt && access(key, R_OK) < 0)
                return phy_error_set(err, ENOKEY, "disk '%s' is encrypted with a typed passphrase (key = prompt), and "
                                     "none was given; run the command on a terminal to type it", k->name);
        if (strv_push(argv, "--object") < 0 || strv_pushf(argv, "secret,id=sec0,file=%s", ek) < 0 ||
            strv_push(argv, "--image-opts") < 0 ||
            strv_pushf(argv, "driver=qcow2,file.filename=%s,encrypt.format=luks,encrypt.key-secret=sec0", ep) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        return 0;
}

int store_check_key_file(const char *path, phy_error *err) {
        struct stat st;
        if (stat(path, &st) < 0)
                return phy_error_set(err, errno, "cannot use the key file '%s': %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode) || st.st_size == 0)
                return phy_error_usage(err, "the key file '%s' must be a non-empty regular file", path);
        if (st.st_mode & 077)
                return phy_error_set(err, EPERM, "the key file '%s' can be read by other users (mode %04o); "
                                     "chmod 600 it first", path, (unsigned) (st.st_mode & 07777));
        return 0;
}

/* True when a disk label is usable as a section label and a file name. */
static bool disk_name_valid(const char *s) {
        return vm_name_valid(s);
}

int store_disk_add(const char *home, const char *name, const struct store_disk_add *o, const char *qemu_img_given,
                   char **ret_disk, bool *ret_pending, phy_error *err) {
        _cleanup_vm_def_ struct vm_def d = { 0 };
        _cleanup_free_ char *dir = NULL, *qemu_img = NULL, *label = NULL, *rel = NULL, *abs = NULL;
        _cleanup_close_ int lock = -1;
        int r = load(home, name, &d, &dir, &lock, err);
        if (r < 0)
                return r;
        if ((r = store_need_qemu_img(qemu_img_given, &qemu_img, err)) < 0)
                return r;
        if (o->disk) {
                if (!disk_name_valid(o->disk))
                        return phy_error_usage(err, "invalid disk name '%s'; use letters, digits, '.', '_' and '-'",
                                             o->disk);
                if (store_find_disk(&d, o->disk) >= 0)
                        return phy_error_set(err, EEXIST, "VM '%s' already has a disk named '%s'", name, o->disk);
                label = strdup(o->disk);
        } else {
                for (unsigned n = (unsigned) d.n_disks; !label; n++) {
                        if (asprintf(&label, "disk%u", n) < 0)
                                return phy_error_set(err, ENOMEM, "out of memory");
                        if (store_find_disk(&d, label) >= 0)
                                label = (free(label), NULL);
                }
        }
        if (!label)
                return phy_error_set(err, ENOMEM, "out of memory");

        _cleanup_free_ char *format = strdup("qcow2"), *key = NULL;
        if (!format)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (o->key_file && o->image)
                return phy_error_usage(err, "--encrypt makes a new disk; it cannot be used with --image");
        if (o->key_file) {
                if ((r = store_check_key_file(o->key_file, err)) < 0)
                        return r;
                if (!(key = realpath(o->key_file, NULL)))
                        return phy_error_set(err, errno, "cannot resolve '%s': %s", o->key_file, strerror(errno));
        }
        /* Read (as root under phyllod) before the definition is saved: the same
         * rule as for the definition's own paths (issue 12); then opened once,
         * as resolved (no symlink swapped in since), and read through that fd. */
        _cleanup_free_ char *image = NULL;
        _cleanup_close_ int ifd = -1;
        if ((o->image && (r = vm_path_check_here_real(dir, "--image", o->image, &image, err)) < 0) ||
            (key && (r = vm_path_check_here(dir, "--key-file", key, err)) < 0))
                return r;
        if (image && (ifd = open_resolved(image, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0)) < 0)
                return phy_error_set(err, -ifd, "cannot open the image '%s': %s", o->image, strerror(-ifd));
        if (o->image) {
                /* An existing image: raw and qcow2 are used where they are; others are converted. */
                _cleanup_(json_object_putp) json_object *info = NULL;
                if ((r = store_image_info_fd(qemu_img, ifd, image, NULL, &info, err)) < 0)
                        return r;
                const char *f = store_json_str(info, "format"), *b = store_json_str(info, "backing-filename");
                if (f && (strcmp(f, "raw") == 0 || strcmp(f, "qcow2") == 0)) {
                        /* A copy: the string belongs to info, freed at the end of this block. */
                        free(format);
                        if (!(format = strdup(f)) || !(rel = strdup(image)))
                                return phy_error_set(err, ENOMEM, "out of memory");
                } else {
                        /* Converted by root: from the file checked, and only one that names no other file. */
                        char self[64];
                        snprintf(self, sizeof self, "/proc/%ld/fd/%d", (long) getpid(), ifd);
                        if (!f || b || store_image_names_other(info, self))
                                return phy_error_set(err, EPERM, "the image '%s' (%s) names other files (a backing "
                                                     "file, extents or a data file); attach a raw or qcow2 image, or "
                                                     "flatten it first (qemu-img convert -O qcow2)", o->image,
                                                     f ? f : "unknown format");
                        if (asprintf(&rel, "disk-%s.qcow2", label) < 0 || !(abs = vm_path_resolve(dir, rel)))
                                return phy_error_set(err, ENOMEM, "out of memory");
                        if (access(abs, F_OK) == 0)
                                return phy_error_set(err, EEXIST, "'%s' exists already; choose another --name", abs);
                        char *argv[] = { (char *) qemu_img, "convert", "-q", "-f", (char *) f, "-O", "qcow2", self,
                                         abs, NULL };
                        if ((r = store_qemu_img(qemu_img, "converting the image to qcow2", argv, NULL, err)) < 0) {
                                (void) unlink(abs);
                                return r;
                        }
                }
        } else {
                if (o->size == 0)
                        return phy_error_usage(err, "a new disk needs a size (--size 64G) or an image (--image PATH)");
                if (asprintf(&rel, "disk-%s.qcow2", label) < 0 || !(abs = vm_path_resolve(dir, rel)))
                        return phy_error_set(err, ENOMEM, "out of memory");
                if (access(abs, F_OK) == 0)
                        return phy_error_set(err, EEXIST, "'%s' exists already; choose another --name", abs);
                char sz[32];
                snprintf(sz, sizeof sz, "%llu", (unsigned long long) o->size);
                _cleanup_free_ char *obj = NULL, *ek = key ? qemu_opt_escape(key) : NULL;
                if (key && (!ek || asprintf(&obj, "secret,id=sec0,file=%s", ek) < 0))
                        return phy_error_set(err, ENOMEM, "out of memory");
                char *plain[] = { (char *) qemu_img, "create", "-q", "-f", "qcow2", abs, sz, NULL };
                /* LUKS inside qcow2; the key reaches qemu-img as a secret object read from the file. */
                char *luks[] = { (char *) qemu_img, "create", "-q", "--object", obj, "-f", "qcow2", "-o",
                                 "encrypt.format=luks,encrypt.key-secret=sec0", abs, sz, NULL };
                /* qemu-img times LUKS's key derivation by the thread's CPU time,
                 * which the kernel updates at a tick or a switch: a first round
                 * shorter than a tick can read as 0 ms ("Unable to get accurate
                 * CPU usage").  Each try is a new chance (a failed one costs
                 * ~10 ms); five in a row failed once under CI's load, twenty
                 * make that rare. */
                for (int tries = 0;; tries++) {
                        phy_error_clear(err);
                        r = store_qemu_img(qemu_img, "creating the disk image", key ? luks : plain, NULL, err);
                        if (r >= 0 || !key || tries >= 19 || !err || !strstr(err->message, "accurate CPU usage"))
                                break;
                        (void) unlink(abs);
                }
                if (r < 0) {
                        (void) unlink(abs);
                        return r;
                }
        }

        struct vm_disk *nd = realloc(d.disks, (d.n_disks + 1) * sizeof *nd);
        if (!nd)
                r = phy_error_set(err, ENOMEM, "out of memory");
        else {
                d.disks = nd;
                nd = &d.disks[d.n_disks];
                *nd = (struct vm_disk) { .size = o->size, .bus = o->bus ? o->bus : VM_BUS_VIRTIO };
                nd->name = strdup(label);
                nd->path = strdup(rel);
                nd->format = strdup(format);
                nd->key_file = key && !o->key_prompt ? strdup(key) : NULL;
                nd->key_prompt = key && o->key_prompt;
                d.n_disks++;
                if (!nd->name || !nd->path || !nd->format || (key && !o->key_prompt && !nd->key_file))
                        r = phy_error_set(err, ENOMEM, "out of memory");
        }
        if (r >= 0)
                r = save(home, name, &d, err);
        if (r < 0) {
                /* Only an image made here goes; an attached one is the user's. */
                if (abs)
                        (void) unlink(abs);
                return r;
        }
        if (ret_pending)
                *ret_pending = run_is_active(home, name);
        if (ret_disk)
                *ret_disk = TAKE_PTR(label);
        return 0;
}

int store_disk_list(const char *home, const char *name, const char *qemu_img_given, json_object **ret,
                    phy_error *err) {
        _cleanup_vm_def_ struct vm_def d = { 0 };
        _cleanup_free_ char *dir = NULL, *qemu_img = NULL;
        int r = load(home, name, &d, &dir, NULL, err);
        if (r >= 0)
                r = vm_def_check_here(&d, dir, err);    /* qemu-img info on each disk */
        if (r < 0 || (r = store_need_qemu_img(qemu_img_given, &qemu_img, err)) < 0)
                return r;
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        for (size_t i = 0; i < d.n_disks; i++) {
                const struct vm_disk *k = &d.disks[i];
                _cleanup_free_ char *p = vm_path_resolve(dir, k->path);
                if (!p)
                        return phy_error_set(err, ENOMEM, "out of memory");
                json_object *o = json_object_new_object();
                json_object_array_add(a, o);
                json_object_object_add(o, "name", json_object_new_string(k->name));
                json_object_object_add(o, "path", json_object_new_string(p));
                json_object_object_add(o, "bus", json_object_new_string(vm_bus_name(k->bus ? k->bus : VM_BUS_VIRTIO)));
                _cleanup_(json_object_putp) json_object *info = NULL;
                if ((r = store_image_info_as(qemu_img, p, store_disk_format(k), &info, err)) < 0)
                        return phy_error_prefix(err, "[disk %s] of VM '%s'", k->name, name);
                const char *f = store_json_str(info, "format"), *b = store_json_str(info, "full-backing-filename");
                json_object *snaps = NULL;
                json_object_object_get_ex(info, "snapshots", &snaps);
                json_object_object_add(o, "format", f ? json_object_new_string(f) : NULL);
                json_object_object_add(o, "virtual-size", json_object_new_int64(store_json_int(info, "virtual-size")));
                json_object_object_add(o, "actual-size", json_object_new_int64(store_json_int(info, "actual-size")));
                json_object_object_add(o, "backing", b ? json_object_new_string(b) : NULL);
                json_object_object_add(o, "snapshots",
                                       json_object_new_int(snaps ? (int) json_object_array_length(snaps) : 0));
        }
        *ret = TAKE_PTR(a);
        return 0;
}

int store_disk_resize(const char *home, const char *name, const char *disk, uint64_t size, bool shrink,
                      const char *qemu_img_given, phy_error *err) {
        _cleanup_vm_def_ struct vm_def d = { 0 };
        _cleanup_free_ char *dir = NULL, *qemu_img = NULL;
        _cleanup_close_ int lock = -1;
        int r = load(home, name, &d, &dir, &lock, err);
        if (r >= 0)
                r = vm_def_check_here(&d, dir, err);    /* qemu-img resize writes the file */
        if (r < 0 || (r = store_refuse_running(home, name, "resize a disk", err)) < 0 ||
            (r = store_need_qemu_img(qemu_img_given, &qemu_img, err)) < 0)
                return r;
        ssize_t i = store_find_disk(&d, disk);
        if (i < 0)
                return no_disk(&d, disk, err);
        struct vm_disk *k = &d.disks[i];
        _cleanup_free_ char *p = vm_path_resolve(dir, k->path);
        if (!p)
                return phy_error_set(err, ENOMEM, "out of memory");
        _cleanup_(json_object_putp) json_object *info = NULL;
        /* qemu-img resize opens the backing chain too: every link checked first (issue 12). */
        if ((r = vm_disk_chain_check(dir, name, d.uuid, k, p, NULL, err)) < 0 ||
            (r = store_image_info_as(qemu_img, p, store_disk_format(k), &info, err)) < 0)
                return r;
        int64_t cur = store_json_int(info, "virtual-size");
        char want[32], have[32];
        format_size(size, want, sizeof want);
        format_size(cur < 0 ? 0 : (unsigned long long) cur, have, sizeof have);
        if (cur >= 0 && size < (uint64_t) cur && !shrink)
                return phy_error_usage(err, "disk '%s' of VM '%s' is %s; %s would shrink it and cut off data: "
                                     "shrink the file systems inside first, then use --shrink", disk, name, have, want);
        if (cur >= 0 && size == (uint64_t) cur)
                return 0;
        const char *f = store_disk_format(k);      /* the definition's, never probed */
        _cleanup_strv_ strv argv = { 0 };
        if (strv_push_many(&argv, qemu_img, "resize", "-q", NULL) < 0 || (shrink && strv_push(&argv, "--shrink") < 0) ||
            (!k->key_file && !k->key_prompt && strv_push_many(&argv, "-f", f, NULL) < 0))
                return phy_error_set(err, ENOMEM, "out of memory");
        _cleanup_free_ char *rd = NULL;
        if ((r = run_dir_path(home, name, &rd, err)) < 0 || (r = store_image_args(rd, dir, k, p, &argv, err)) < 0)
                return r;
        if (strv_pushf(&argv, "%llu", (unsigned long long) size) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if ((r = store_qemu_img(qemu_img, "resizing the disk", argv.v, NULL, err)) < 0)
                return r;
        /* Keep the definition's size in step with the image. */
        k->size = size;
        return save(home, name, &d, err);
}

int store_disk_remove(const char *home, const char *name, const char *disk, bool keep_file, phy_error *err) {
        _cleanup_vm_def_ struct vm_def d = { 0 };
        _cleanup_free_ char *dir = NULL, *p = NULL;
        _cleanup_close_ int lock = -1;
        int r = load(home, name, &d, &dir, &lock, err);
        if (r < 0 || (r = store_refuse_running(home, name, "remove a disk", err)) < 0)
                return r;
        ssize_t i = store_find_disk(&d, disk);
        if (i < 0)
                return no_disk(&d, disk, err);
        /* Written inside the VM's directory: ours to delete, anchored there. */
        _cleanup_free_ char *kpath = strdup(d.disks[i].path);
        if (!kpath || !(p = vm_path_resolve(dir, kpath)))
                return phy_error_set(err, ENOMEM, "out of memory");
        const char *rel = vm_dir_relative(dir, kpath);     /* points into kpath */
        bool own = rel != NULL;
        vm_def_remove_elem(&d, "disk", (size_t) i);
        if ((r = save(home, name, &d, err)) < 0)
                return r;
        _cleanup_close_ int dfd = own && !keep_file ? open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
        r = !own || keep_file ? 0 : dfd < 0 ? -errno : unlink_beneath(dfd, rel);
        if (r == -EXDEV || r == -ELOOP)
                return phy_error_set(err, EPERM, "disk '%s' is removed from VM '%s'; its image '%s' was not deleted: "
                                     "it is not a file inside the VM's directory ('..' or a symlink leads out)",
                                     disk, name, p);
        if (r < 0 && r != -ENOENT)
                return phy_error_set(err, -r, "disk '%s' is removed from VM '%s' but its image '%s' could not be "
                                     "deleted: %s", disk, name, p, strerror(-r));
        return 0;
}

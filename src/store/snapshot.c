/* SPDX-License-Identifier: MIT */
/*
 * Snapshots of a stopped VM: an internal qcow2 snapshot of the same name in
 * every disk, and beside them in <vm_dir>/snapshots/<snap>/ a copy of the
 * UEFI vars (OVMF_VARS.fd) and of the TPM state (tpm/), so that a revert
 * brings back firmware and TPM that match the disks.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "fileio.h"
#include "store.h"
#include "store-internal.h"
#include "vm/vm.h"

struct snapctx {
        struct vm_def def;
        char *dir;              /* VM dir */
        char *snaps;            /* <dir>/snapshots */
        char *qemu_img;
};

static void snapctx_done(struct snapctx *c) {
        vm_def_done(&c->def);
        free(c->dir);
        free(c->snaps);
        free(c->qemu_img);
}

static int snapctx_load(const char *home, const char *name, const char *qemu_img, struct snapctx *c,
                        phy_error *err) {
        int r = vm_load_by_name(home, name, &c->def, err);
        if (r < 0)
                return r;
        if (!(c->dir = vm_dir(home, name)) || asprintf(&c->snaps, "%s/snapshots", c->dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        return store_need_qemu_img(qemu_img, &c->qemu_img, err);
}

static char *disk_path(const struct snapctx *c, size_t i) {
        return vm_path_resolve(c->dir, c->def.disks[i].path);
}

/* Does disk i hold an internal snapshot named snap? */
static int disk_has_snapshot(const struct snapctx *c, size_t i, const char *snap, bool *ret, phy_error *err) {
        _cleanup_free_ char *p = disk_path(c, i);
        _cleanup_(json_object_putp) json_object *info = NULL;
        if (!p)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = store_image_info(c->qemu_img, p, &info, err);
        if (r < 0)
                return r;
        json_object *a;
        *ret = false;
        if (json_object_object_get_ex(info, "snapshots", &a))
                for (size_t k = 0; k < json_object_array_length(a); k++) {
                        const char *n = store_json_str(json_object_array_get_idx(a, k), "name");
                        if (n && strcmp(n, snap) == 0)
                                *ret = true;
                }
        return 0;
}

static int snap_img(const struct snapctx *c, const char *flag, const char *snap, size_t i, phy_error *err) {
        _cleanup_free_ char *p = disk_path(c, i), *what = NULL;
        _cleanup_strv_ strv argv = { 0 };
        if (!p || asprintf(&what, "snapshot '%s' of disk '%s'", snap, c->def.disks[i].name) < 0 ||
            strv_push_many(&argv, c->qemu_img, "snapshot", flag, snap, NULL) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = store_image_args(c->dir, &c->def.disks[i], p, &argv, err);
        return r < 0 ? r : store_qemu_img(c->qemu_img, what, argv.v, NULL, err);
}

static int check_snap_name(const char *snap, phy_error *err) {
        if (!vm_name_valid(snap))
                return phy_error_set(err, EINVAL, "invalid snapshot name '%s'; use up to 64 letters, digits, '.', '_' "
                                     "and '-'", snap);
        return 0;
}

int store_snapshot_create(const char *home, const char *name, const char *snap, const char *qemu_img,
                          phy_error *err) {
        _cleanup_(snapctx_done) struct snapctx c = { 0 };
        int r = check_snap_name(snap, err);
        if (r < 0 || (r = snapctx_load(home, name, qemu_img, &c, err)) < 0)
                return r;
        if (run_is_active(home, name))
                return phy_error_set(err, EBUSY, "VM '%s' is running; stop it first ('phyllo stop %s'): snapshots "
                                     "are taken of a stopped VM so that disks, UEFI vars and TPM state agree", name, name);
        for (size_t i = 0; i < c.def.n_disks; i++)
                if (c.def.disks[i].format && strcmp(c.def.disks[i].format, "qcow2") != 0)
                        return phy_error_set(err, ENOTSUP, "disk '%s' of VM '%s' is %s; snapshots need qcow2 disks "
                                             "(convert it with qemu-img convert -O qcow2)", c.def.disks[i].name, name,
                                             c.def.disks[i].format);
        _cleanup_free_ char *final = NULL, *tmp = NULL, *vars = NULL, *tpm = NULL;
        if (asprintf(&final, "%s/%s", c.snaps, snap) < 0 || asprintf(&tmp, "%s/.#new.%s.XXXXXX", c.snaps, snap) < 0 ||
            asprintf(&vars, "%s/OVMF_VARS.fd", c.dir) < 0 || asprintf(&tpm, "%s/tpm", c.dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (access(final, F_OK) == 0)
                return phy_error_set(err, EEXIST, "VM '%s' already has a snapshot named '%s'", name, snap);
        for (size_t i = 0; i < c.def.n_disks; i++) {
                bool has = false;
                if ((r = disk_has_snapshot(&c, i, snap, &has, err)) < 0)
                        return r;
                if (has)
                        return phy_error_set(err, EEXIST, "disk '%s' of VM '%s' already holds an internal snapshot named "
                                             "'%s'; choose another name", c.def.disks[i].name, name, snap);
        }
        if ((r = mkdir_p(c.snaps, 0700)) < 0)
                return phy_error_set(err, r, "cannot create '%s': %s", c.snaps, strerror(-r));
        if (!mkdtemp(tmp))
                return phy_error_set(err, errno, "cannot create a directory in '%s': %s", c.snaps, strerror(errno));

        bool has_vars = access(vars, F_OK) == 0, has_tpm = access(tpm, F_OK) == 0;
        size_t made = 0;
        _cleanup_free_ char *tv = NULL, *tt = NULL, *meta = NULL;
        if (asprintf(&tv, "%s/OVMF_VARS.fd", tmp) < 0 || asprintf(&tt, "%s/tpm", tmp) < 0 ||
            asprintf(&meta, "%s/meta.json", tmp) < 0)
                r = phy_error_set(err, ENOMEM, "out of memory");
        if (r >= 0 && has_vars)
                r = file_copy_atomic(vars, tv, 0600, err);
        if (r >= 0 && has_tpm)
                r = store_copy_tree(tpm, tt, err);
        for (; r >= 0 && made < c.def.n_disks; made++)
                r = snap_img(&c, "-c", snap, made, err);
        if (r >= 0) {
                json_object *o = json_object_new_object(), *a = json_object_new_array();
                json_object_object_add(o, "name", json_object_new_string(snap));
                json_object_object_add(o, "created", json_object_new_int64((int64_t) time(NULL)));
                for (size_t i = 0; i < c.def.n_disks; i++)
                        json_object_array_add(a, json_object_new_string(c.def.disks[i].name));
                json_object_object_add(o, "disks", a);
                json_object_object_add(o, "vars", json_object_new_boolean(has_vars));
                json_object_object_add(o, "tpm", json_object_new_boolean(has_tpm));
                const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
                r = file_write_atomic(meta, s, strlen(s), 0600, err);
                json_object_put(o);
        }
        if (r >= 0 && rename(tmp, final) < 0)
                r = phy_error_set(err, errno, "cannot rename '%s' to '%s': %s", tmp, final, strerror(errno));
        if (r < 0) {
                /* Undo the disks already done: nothing of a failed snapshot stays. */
                phy_error ignore = { 0 };
                while (made-- > 0)
                        (void) snap_img(&c, "-d", snap, made, &ignore);
                (void) rm_rf(tmp);
        }
        return r;
}

static int read_meta(const struct snapctx *c, const char *snap, json_object **ret, phy_error *err) {
        _cleanup_free_ char *p = NULL, *text = NULL;
        if (asprintf(&p, "%s/%s/meta.json", c->snaps, snap) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = file_read_all(p, 1024 * 1024, &text, NULL);
        if (r == -ENOENT)
                return phy_error_set(err, ENOENT, "VM '%s' has no snapshot named '%s'; see 'phyllo snapshot list %s'",
                                     c->def.name, snap, c->def.name);
        if (r < 0)
                return phy_error_set(err, r, "cannot read '%s': %s", p, strerror(-r));
        json_object *o = json_tokener_parse(text);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return phy_error_set(err, EINVAL, "'%s' is not a snapshot description (JSON object)", p);
        }
        *ret = o;
        return 0;
}

static int by_created(const void *a, const void *b) {
        json_object *x = *(json_object *const *) a, *y = *(json_object *const *) b;
        int64_t cx = store_json_int(x, "created"), cy = store_json_int(y, "created");
        if (cx != cy)
                return cx < cy ? -1 : 1;
        return strcmp(store_json_str(x, "name") ?: "", store_json_str(y, "name") ?: "");
}

int store_snapshot_list(const char *home, const char *name, json_object **ret, phy_error *err) {
        _cleanup_(snapctx_done) struct snapctx c = { 0 };
        int r = vm_load_by_name(home, name, &c.def, err);
        if (r < 0)
                return r;
        if (!(c.dir = vm_dir(home, name)) || asprintf(&c.snaps, "%s/snapshots", c.dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        DIR *d = opendir(c.snaps);
        if (!d && errno != ENOENT)
                return phy_error_set(err, errno, "cannot read '%s': %s", c.snaps, strerror(errno));
        for (struct dirent *e; d && (e = readdir(d));) {
                if (e->d_name[0] == '.')
                        continue;
                json_object *m = NULL;
                if (read_meta(&c, e->d_name, &m, err) < 0) {
                        closedir(d);
                        return -err->code;
                }
                json_object_array_add(a, m);
        }
        if (d)
                closedir(d);
        json_object_array_sort(a, by_created);
        *ret = TAKE_PTR(a);
        return 0;
}

/* The disks a snapshot covers, as indexes into the current definition. */
static int meta_disks(const struct snapctx *c, json_object *meta, const char *snap, size_t **ret, size_t *ret_n,
                      phy_error *err) {
        json_object *a;
        if (!json_object_object_get_ex(meta, "disks", &a) || !json_object_is_type(a, json_type_array))
                return phy_error_set(err, EINVAL, "snapshot '%s' of VM '%s' lists no disks", snap, c->def.name);
        size_t n = json_object_array_length(a);
        _cleanup_free_ size_t *idx = calloc(n + 1, sizeof *idx);
        if (!idx)
                return phy_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                const char *dn = json_object_get_string(json_object_array_get_idx(a, i));
                ssize_t k = dn ? store_find_disk(&c->def, dn) : -1;
                if (k < 0)
                        return phy_error_set(err, ENOENT, "snapshot '%s' of VM '%s' holds disk '%s', which the VM no "
                                             "longer has", snap, c->def.name, dn ? dn : "?");
                idx[i] = (size_t) k;
        }
        *ret = TAKE_PTR(idx);
        *ret_n = n;
        return 0;
}

int store_snapshot_revert(const char *home, const char *name, const char *snap, bool stop, const char *qemu_img,
                          phy_error *err) {
        _cleanup_(snapctx_done) struct snapctx c = { 0 };
        int r = check_snap_name(snap, err);
        if (r < 0 || (r = snapctx_load(home, name, qemu_img, &c, err)) < 0)
                return r;
        _cleanup_(json_object_putp) json_object *meta = NULL;
        _cleanup_free_ size_t *idx = NULL;
        size_t n = 0;
        if ((r = read_meta(&c, snap, &meta, err)) < 0 || (r = meta_disks(&c, meta, snap, &idx, &n, err)) < 0)
                return r;
        if (run_is_active(home, name)) {
                if (!stop)
                        return phy_error_set(err, EBUSY, "VM '%s' is running; stop it first or revert with --stop "
                                             "(which shuts it down)", name);
                if ((r = run_stop(home, name, 60, false, NULL, err)) < 0)
                        return r;
        }
        /* Check every disk first: a revert either starts on all of them or on none. */
        for (size_t i = 0; i < n; i++) {
                bool has = false;
                if ((r = disk_has_snapshot(&c, idx[i], snap, &has, err)) < 0)
                        return r;
                if (!has)
                        return phy_error_set(err, ENOENT, "disk '%s' of VM '%s' has no internal snapshot '%s' (was "
                                             "the image replaced?); nothing was changed", c.def.disks[idx[i]].name,
                                             name, snap);
        }
        json_object *v;
        bool want_vars = json_object_object_get_ex(meta, "vars", &v) && json_object_get_boolean(v);
        bool want_tpm = json_object_object_get_ex(meta, "tpm", &v) && json_object_get_boolean(v);
        _cleanup_free_ char *vars = NULL, *tpm = NULL, *svars = NULL, *stpm = NULL, *nvars = NULL, *ntpm = NULL;
        if (asprintf(&vars, "%s/OVMF_VARS.fd", c.dir) < 0 || asprintf(&tpm, "%s/tpm", c.dir) < 0 ||
            asprintf(&svars, "%s/%s/OVMF_VARS.fd", c.snaps, snap) < 0 || asprintf(&stpm, "%s/%s/tpm", c.snaps, snap) < 0 ||
            asprintf(&nvars, "%s/.#revert.OVMF_VARS.fd", c.dir) < 0 || asprintf(&ntpm, "%s/.#revert.tpm", c.dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* Copies first, beside their targets: the switch is then a rename each. */
        (void) unlink(nvars);
        (void) rm_rf(ntpm);
        if (want_vars && (r = file_copy_atomic(svars, nvars, 0600, err)) < 0)
                return r;
        if (want_tpm && (r = store_copy_tree(stpm, ntpm, err)) < 0) {
                (void) unlink(nvars);
                return r;
        }
        for (size_t i = 0; i < n && r >= 0; i++)
                r = snap_img(&c, "-a", snap, idx[i], err);
        if (r < 0) {
                (void) unlink(nvars);
                (void) rm_rf(ntpm);
                return phy_error_prefix(err, "the revert of VM '%s' to '%s' stopped part way; run it again", name, snap);
        }
        if (want_vars ? rename(nvars, vars) < 0 : unlink(vars) < 0 && errno != ENOENT)
                return phy_error_set(err, errno, "cannot restore '%s': %s", vars, strerror(errno));
        if (want_tpm) {
                if (access(tpm, F_OK) == 0) {
                        if (renameat2(AT_FDCWD, ntpm, AT_FDCWD, tpm, RENAME_EXCHANGE) < 0)
                                return phy_error_set(err, errno, "cannot restore '%s': %s", tpm, strerror(errno));
                        (void) rm_rf(ntpm);   /* now the state that was replaced */
                } else if (rename(ntpm, tpm) < 0)
                        return phy_error_set(err, errno, "cannot restore '%s': %s", tpm, strerror(errno));
        } else if ((r = rm_rf(tpm)) < 0 && r != -ENOENT)
                return phy_error_set(err, r, "cannot remove '%s': %s", tpm, strerror(-r));
        return 0;
}

int store_snapshot_delete(const char *home, const char *name, const char *snap, const char *qemu_img,
                          phy_error *err) {
        _cleanup_(snapctx_done) struct snapctx c = { 0 };
        int r = check_snap_name(snap, err);
        if (r < 0 || (r = snapctx_load(home, name, qemu_img, &c, err)) < 0)
                return r;
        _cleanup_(json_object_putp) json_object *meta = NULL;
        if ((r = read_meta(&c, snap, &meta, err)) < 0 ||
            (r = store_refuse_running(home, name, "delete a snapshot", err)) < 0)
                return r;
        for (size_t i = 0; i < c.def.n_disks; i++) {
                bool has = false;
                if ((r = disk_has_snapshot(&c, i, snap, &has, err)) < 0)
                        return r;
                if (has && (r = snap_img(&c, "-d", snap, i, err)) < 0)
                        return r;
        }
        _cleanup_free_ char *d = NULL;
        if (asprintf(&d, "%s/%s", c.snaps, snap) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if ((r = rm_rf(d)) < 0)
                return phy_error_set(err, r, "cannot remove '%s': %s", d, strerror(-r));
        return 0;
}

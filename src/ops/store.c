/* SPDX-License-Identifier: MIT */
/* Storage: disks, snapshots, clones, bundles and live migration (src/store
 * does the work; here the verbs' arguments, checks and results). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "json-cleanup.h"
#include "ops.h"
#include "run/run.h"
#include "store/store.h"
#include "vm/profile.h"

static json_object *named(const char *name, const char *key, const char *value) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, key, json_object_new_string(value ? value : ""));
        return o;
}

static json_object *listed(const char *key, json_object *a) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, key, a);
        return o;
}

/* ---- disks ---- */

int ops_disk_list(const struct ops_ctx *c, const char *name, json_object **ret, phy_error *err) {
        json_object *a = NULL;
        int r = ops_name_check("VM name", name, err);
        if (r < 0 || (r = store_disk_list(c->home, name, NULL, &a, err)) < 0)
                return r;
        *ret = listed("disks", a);
        return 0;
}

int ops_disk_add(const struct ops_ctx *c, const char *name, const struct ops_disk_add *o, json_object **ret,
                 phy_error *err) {
        struct store_disk_add a = { .disk = o->disk, .size = o->size, .key_prompt = o->key_prompt };
        _cleanup_free_ char *image = NULL, *key = NULL, *disk = NULL;
        int r;
        if ((r = ops_name_check("VM name", name, err)) < 0)
                return r;
        if (!!o->size == !!o->image)
                return phy_error_usage(err, "a new disk needs either a size or an image, not both");
        if (o->bus) {
                int b = vm_bus_from_name(o->bus);
                if (b < 0 || b == VM_BUS_IDE)
                        return phy_error_usage(err, "invalid bus '%s'; use virtio, scsi, sata or nvme", o->bus);
                a.bus = b;
        }
        if ((o->image && (r = ops_input_path(c, "image", o->image, &image, err)) < 0) ||
            (o->key_file && (r = ops_input_path(c, "key file", o->key_file, &key, err)) < 0))
                return r;
        a.image = image;
        a.key_file = key;
        bool pending = false;
        if ((r = store_disk_add(c->home, name, &a, NULL, &disk, &pending, err)) < 0)
                return r;
        *ret = named(name, "disk", disk);
        json_object_object_add(*ret, "pending", json_object_new_boolean(pending));
        return 0;
}

int ops_disk_resize(const struct ops_ctx *c, const char *name, const char *disk, uint64_t size, bool shrink,
                    json_object **ret, phy_error *err) {
        int r = ops_name_check("VM name", name, err);
        if (r < 0 || (r = store_disk_resize(c->home, name, disk, size, shrink, NULL, err)) < 0)
                return r;
        *ret = named(name, "disk", disk);
        json_object_object_add(*ret, "size", json_object_new_int64((int64_t) size));
        return 0;
}

int ops_disk_remove(const struct ops_ctx *c, const char *name, const char *disk, bool keep_file, json_object **ret,
                    phy_error *err) {
        int r = ops_name_check("VM name", name, err);
        if (r < 0 || (r = store_disk_remove(c->home, name, disk, keep_file, err)) < 0)
                return r;
        *ret = named(name, "removed_disk", disk);
        return 0;
}

/* ---- keys typed by the caller ---- */

int ops_keys_unlock(const struct ops_ctx *c, const char *name, bool even_running, ops_ask_fn ask, void *userdata,
                    phy_error *err) {
        if (!vm_name_valid(name))
                return 0;
        /* No such VM: the command itself says so. */
        _cleanup_vm_def_ struct vm_def d = { 0 };
        phy_error e2 = { 0 };
        if (vm_load_by_name(c->home, name, &d, &e2) < 0)
                return 0;
        /* Most VMs have no typed passphrase: then nothing more to read
         * (a start reads the run state itself). */
        bool prompt = false;
        for (size_t i = 0; i < d.n_disks; i++)
                prompt = prompt || d.disks[i].key_prompt;
        /* A running VM's QEMU has its disks open: nothing to type. */
        if (!prompt || (!even_running && run_is_active(c->home, name)))
                return 0;
        int r = store_keys_unlock(c->home, &d, ask, userdata, err);
        if (r < 0)
                store_keys_forget(c->home, &d);
        return r;
}

void ops_keys_forget(const struct ops_ctx *c, const char *name) {
        _cleanup_vm_def_ struct vm_def d = { 0 };
        phy_error err = { 0 };
        if (vm_name_valid(name) && vm_load_by_name(c->home, name, &d, &err) >= 0)
                store_keys_forget(c->home, &d);
}

/* ---- snapshots ---- */

int ops_snapshot_list(const struct ops_ctx *c, const char *name, json_object **ret, phy_error *err) {
        json_object *a = NULL;
        int r = ops_name_check("VM name", name, err);
        if (r < 0 || (r = store_snapshot_list(c->home, name, &a, err)) < 0)
                return r;
        *ret = listed("snapshots", a);
        return 0;
}

int ops_snapshot_create(const struct ops_ctx *c, const char *name, const char *snap, json_object **ret,
                        phy_error *err) {
        int r = ops_name_check("VM name", name, err);
        if (r < 0 || (r = store_snapshot_create(c->home, name, snap, NULL, err)) < 0)
                return r;
        *ret = named(name, "snapshot", snap);
        return 0;
}

int ops_snapshot_revert(const struct ops_ctx *c, const char *name, const char *snap, bool stop, json_object **ret,
                        phy_error *err) {
        int r = ops_name_check("VM name", name, err);
        if (r < 0)
                return r;
        /* What the snapshot holds, for the answer: only what the VM has. */
        _cleanup_(json_object_putp) json_object *all = NULL, *meta = NULL;
        if ((r = store_snapshot_list(c->home, name, &all, err)) < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(all) && !meta; i++) {
                json_object *m = json_object_array_get_idx(all, i), *n = NULL;
                if (json_object_object_get_ex(m, "name", &n) && strcmp(json_object_get_string(n), snap) == 0)
                        meta = json_object_get(m);
        }
        /* The lifecycle around store's disk work: everything store can check
         * is checked before a running VM is stopped (when asked to); one
         * whose snapshot holds its memory is started paused to load it, and
         * runs on. */
        if ((r = store_snapshot_revert_check(c->home, name, snap, NULL, err)) < 0)
                return r;
        if (run_is_active(c->home, name)) {
                if (!stop)
                        return phy_error_set(err, EBUSY, "VM '%s' is running; stop it first or revert with --stop "
                                             "(which shuts it down)", name);
                if ((r = run_stop(c->home, name, 60, false, NULL, err)) < 0)
                        return r;
        }
        bool memory = false;
        if ((r = store_snapshot_revert(c->home, name, snap, NULL, &memory, err)) < 0)
                return r;
        if (memory) {
                struct run_start_opts o = { .root = c->root, .home = c->home, .name = name, .paused = true };
                if ((r = run_start(&o, NULL, err)) < 0)
                        return phy_error_prefix(err, "disks, vars and TPM of VM '%s' are back at '%s', but it did "
                                                "not start to load its memory", name, snap);
                if ((r = store_snapshot_load_memory(c->home, name, snap, err)) < 0) {
                        phy_error ignore = { 0 };
                        (void) run_kill(c->home, name, &ignore);
                        return phy_error_prefix(err, "disks, vars and TPM of VM '%s' are back at '%s', but its "
                                                "memory could not be loaded (the VM is stopped; a start boots it "
                                                "afresh)", name, snap);
                }
        }
        *ret = named(name, "reverted_to", snap);
        json_object *got = json_object_new_array(), *v = NULL;
        json_object_array_add(got, json_object_new_string("disks"));
        if (json_object_object_get_ex(meta, "vars", &v) && json_object_get_boolean(v))
                json_object_array_add(got, json_object_new_string("UEFI vars"));
        if (json_object_object_get_ex(meta, "tpm", &v) && json_object_get_boolean(v))
                json_object_array_add(got, json_object_new_string("TPM state"));
        if (json_object_object_get_ex(meta, "vmstate", &v) && json_object_get_boolean(v))
                json_object_array_add(got, json_object_new_string("memory"));
        json_object_object_add(*ret, "restored", got);
        return 0;
}

int ops_snapshot_delete(const struct ops_ctx *c, const char *name, const char *snap, json_object **ret,
                        phy_error *err) {
        int r = ops_name_check("VM name", name, err);
        if (r < 0 || (r = store_snapshot_delete(c->home, name, snap, NULL, err)) < 0)
                return r;
        *ret = named(name, "deleted_snapshot", snap);
        return 0;
}

/* ---- clones, bundles ---- */

int ops_clone(const struct ops_ctx *c, const char *name, const char *dst, bool full, const char *tpm_s,
              json_object **ret, phy_error *err) {
        enum store_tpm_mode tpm = STORE_TPM_DEFAULT;
        if (tpm_s && strcmp(tpm_s, "fresh") == 0)
                tpm = STORE_TPM_FRESH;
        else if (tpm_s && strcmp(tpm_s, "copy") == 0)
                tpm = STORE_TPM_COPY;
        else if (tpm_s)
                return phy_error_usage(err, "invalid TPM mode '%s'; use fresh or copy", tpm_s);
        int r = ops_name_check("VM name", name, err);
        if (r < 0 || (r = store_clone(c->home, name, dst, full, tpm, NULL, err)) < 0)
                return r;
        /* A TPM's fate is said only for a VM that has one (its definition's,
         * else its profile's). */
        _cleanup_vm_def_ struct vm_def d = { 0 };
        phy_error e2 = { 0 };
        bool has_tpm = false;
        if (vm_load_by_name(c->home, dst, &d, &e2) >= 0) {
                const struct vm_profile *p = vm_profile_find(d.profile);
                enum vm_tpm t = d.tpm != VM_TPM_UNSET ? d.tpm : p ? p->tpm : VM_TPM_NONE;
                has_tpm = t != VM_TPM_NONE && t != VM_TPM_UNSET;
        }
        *ret = named(name, "clone", dst);
        json_object_object_add(*ret, "full", json_object_new_boolean(full));
        json_object_object_add(*ret, "tpm", has_tpm ? json_object_new_string(tpm == STORE_TPM_COPY ? "copy" : "fresh")
                                                    : NULL);
        return 0;
}

int ops_export(const struct ops_ctx *c, const char *name, int fd, ops_progress_fn progress, void *userdata,
               phy_error *err) {
        return store_export(c->home, name, fd, NULL, progress, userdata, err);
}

int ops_import(const struct ops_ctx *c, int fd, const struct store_import_opts *o, struct store_import_result *ret,
               phy_error *err) {
        int r;
        if (o->new_name && (r = ops_name_check("VM name", o->new_name, err)) < 0)
                return r;
        return store_import(c->home, fd, o, ret, err);
}

json_object *ops_import_json(const struct store_import_opts *o, const struct store_import_result *r) {
        json_object *x = json_object_new_object(), *st = json_object_new_array();
        json_object_object_add(x, "name", json_object_new_string(r->name ? r->name : ""));
        json_object_object_add(x, "trusted", json_object_new_boolean(o->trust));
        for (size_t i = 0; i < r->stripped.n; i++)
                json_object_array_add(st, json_object_new_string(r->stripped.v[i]));
        json_object_object_add(x, "stripped", st);
        return x;
}

int ops_migrate(const struct ops_ctx *c, const char *name, const struct ops_migrate *o, json_object **ret,
                phy_error *err) {
        int r = ops_name_check("VM name", name, err);
        if (r < 0)
                return r;
        if (!o->dest_home || o->dest_home[0] != '/')
                return phy_error_usage(err, "the destination Phyllome home '%s' must be an absolute path",
                                     o->dest_home ? o->dest_home : "");
        struct store_migrate_opts so = { .dest_home = o->dest_home, .address = o->address,
                                         .max_bandwidth = o->max_bandwidth, .timeout_s = o->timeout_s,
                                         .progress = o->progress, .userdata = o->userdata };
        struct store_migrate_result res;
        struct store_migration *m = NULL;
        if ((r = store_migrate_begin(c->home, name, &so, &m, err)) < 0)
                return r;
        /* The destination starts paused, waiting for the migration, under its own monitor. */
        struct run_start_opts start = { .root = c->root, .home = o->dest_home, .name = name, .paused = true,
                                        .incoming = "defer" };
        if ((r = run_start(&start, NULL, err)) < 0) {
                phy_error_prefix(err, "starting the destination VM in '%s'", o->dest_home);
                store_migrate_cancel(m);
                store_migrate_end(m);
                return r;
        }
        if ((r = store_migrate_transfer(m, &res, err)) < 0) {
                /* The source runs on; the destination goes. */
                phy_error ignore = { 0 };
                (void) run_kill(o->dest_home, name, &ignore);
                store_migrate_end(m);
                return r;
        }
        store_migrate_end(m);
        {
                /* The source QEMU was quit: its monitor records the stop. */
                phy_error ignore = { 0 };
                (void) run_wait(c->home, name, RUN_STOPPED, 30000, NULL, &ignore);
        }
        json_object *x = named(name, "dest_home", o->dest_home);
        json_object_object_add(x, "downtime_ms", json_object_new_int64(res.downtime_ms));
        json_object_object_add(x, "total_ms", json_object_new_int64(res.total_ms));
        json_object_object_add(x, "ram_bytes", json_object_new_int64((int64_t) res.ram_bytes));
        *ret = x;
        return 0;
}

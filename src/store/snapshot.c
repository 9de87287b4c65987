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
#include "net/net.h"
#include "qemu/argv.h"
#include "qemu/caps.h"
#include "qemu/qmp.h"
#include "vm/vm.h"
#include "vm/chain.h"

struct snapctx {
        struct vm_def def;
        char *dir;              /* VM dir */
        char *snaps;            /* <dir>/snapshots */
        char *qemu_img;
        char *run_dir;          /* where a typed passphrase's key file is */
};

static void snapctx_done(struct snapctx *c) {
        vm_def_done(&c->def);
        free(c->dir);
        free(c->snaps);
        free(c->qemu_img);
        free(c->run_dir);
}

static int snapctx_load(const char *home, const char *name, const char *qemu_img, struct snapctx *c,
                        phy_error *err) {
        int r = vm_load_by_name(home, name, &c->def, err);
        if (r < 0)
                return r;
        if (!(c->dir = vm_dir(home, name)) || asprintf(&c->snaps, "%s/snapshots", c->dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* qemu-img (as root under phyllod) touches only files the rules allow (issue 12). */
        if ((r = vm_def_check_here(&c->def, c->dir, err)) < 0)
                return r;
        if ((r = run_dir_path(home, name, &c->run_dir, err)) < 0)
                return r;
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
        int r = store_image_info_as(c->qemu_img, p, store_disk_format(&c->def.disks[i]), &info, err);
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
        const struct vm_disk *k = &c->def.disks[i];
        /* qemu-img snapshot opens the backing chain too: every link checked first (issue 12). */
        int r = vm_disk_chain_check(c->dir, c->def.name, c->def.uuid, k, p, NULL, err);
        if (r < 0)
                return r;
        if (!k->key_file && !k->key_prompt) {
                /* Opened as qcow2, never probed: the image is the VM uid's, and
                 * `qemu-img snapshot` has no -f (issue 12). */
                _cleanup_free_ char *ep = qemu_opt_escape(p);
                if (!ep || strv_push(&argv, "--image-opts") < 0 ||
                    strv_pushf(&argv, "driver=qcow2,file.driver=file,file.filename=%s", ep) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
        } else
                r = store_image_args(c->run_dir, c->dir, k, p, &argv, err);
        return r < 0 ? r : store_qemu_img(c->qemu_img, what, argv.v, NULL, err);
}

static int check_snap_name(const char *snap, phy_error *err) {
        if (!vm_name_valid(snap))
                return phy_error_usage(err, "invalid snapshot name '%s'; use up to 64 letters, digits, '.', '_' "
                                     "and '-'", snap);
        return 0;
}

/* ---- a running VM: QEMU's snapshot jobs over QMP ---- */

#define SNAP_JOB_ID "phyllome-snapshot"
#define SNAP_JOB_TIMEOUT_MS (10 * 60 * 1000)
/* QEMU answers QMP from its main loop, which a running snapshot job and a
 * busy host (TCG on 2 shared cores) can hold for many seconds. */
#define SNAP_QMP_TIMEOUT_MS (60 * 1000)
#define SNAP_CMD_TIMEOUT_MS (3 * 60 * 1000)

static int live_open(const char *home, const char *name, struct qmp **ret, phy_error *err) {
        _cleanup_free_ char *dir = NULL, *sock = NULL;
        int r = run_dir_path(home, name, &dir, err);
        if (r < 0)
                return r;
        if (asprintf(&sock, "%s/qmp.sock", dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        return qmp_open_path(sock, SNAP_QMP_TIMEOUT_MS, ret, err);
}

/* Like Proxmox's fs-freeze: when the guest runs the QEMU guest agent, its
 * filesystems are frozen before the CPUs stop and thawed once they run
 * again, so the disks are consistent on their own (a revert that boots
 * afresh, a disk used elsewhere).  Recorded in meta.json "fsfreeze":
 * {"frozen": N, "thawed": M} or with "error" / "thaw_error" instead. */
#define FSFREEZE_TIMEOUT_MS (60 * 1000)

struct fsfreeze {
        char *sock;             /* the agent's socket; NULL: no agent, nothing asked */
        char *run_dir;          /* where the freeze is marked (net_agent_freeze_mark) */
        json_object *record;
};

static void fs_freeze(struct qmp *q, const char *home, const char *name, struct fsfreeze *f) {
        _cleanup_free_ char *dir = NULL;
        phy_error e = { 0 };
        if (!net_agent_port_open(q) || run_dir_path(home, name, &dir, &e) < 0 ||
            asprintf(&f->sock, "%s/qga.sock", dir) < 0) {
                f->sock = NULL;
                return;
        }
        f->record = json_object_new_object();
        /* A freeze an earlier snapshot left behind (it was killed) first. */
        phy_error e0 = { 0 };
        (void) net_agent_thaw_abandoned(dir, FSFREEZE_TIMEOUT_MS, &e0);
        f->run_dir = TAKE_PTR(dir);
        int n = net_agent_freeze_mark(f->run_dir, &e) < 0 ? -EIO : net_agent_fsfreeze(f->sock, FSFREEZE_TIMEOUT_MS, &e);
        /* A failed freeze does not stop the snapshot (nor does it in
         * Proxmox): the snapshot is then crash-consistent, as without agent. */
        json_object_object_add(f->record, n >= 0 ? "frozen" : "error",
                               n >= 0 ? json_object_new_int(n) : json_object_new_string(e.message));
}

/* Always, also after a failed freeze or snapshot: a freeze that timed out
 * may still have happened, and a frozen guest hangs on its next write. */
static void fs_thaw(struct fsfreeze *f) {
        if (!f->sock)
                return;
        phy_error e = { 0 };
        int n = net_agent_fsthaw(f->sock, FSFREEZE_TIMEOUT_MS, &e);
        if (n >= 0)
                net_agent_freeze_unmark(f->run_dir);
        json_object_object_add(f->record, n >= 0 ? "thawed" : "thaw_error",
                               n >= 0 ? json_object_new_int(n) : json_object_new_string(e.message));
}

static void fsfreeze_done(struct fsfreeze *f) {
        free(f->sock);
        free(f->run_dir);
        json_object_put(f->record);
}

/* snapshot-save/-load/-delete arguments: the VM state goes into the first disk. */
static json_object *job_args(const struct snapctx *c, const char *snap) {
        json_object *a = json_object_new_object(), *devs = json_object_new_array();
        char node[96];
        json_object_object_add(a, "job-id", json_object_new_string(SNAP_JOB_ID));
        json_object_object_add(a, "tag", json_object_new_string(snap));
        for (size_t i = 0; i < c->def.n_disks; i++) {
                snprintf(node, sizeof node, "disk-%s", c->def.disks[i].name);
                json_object_array_add(devs, json_object_new_string(node));
                if (i == 0)
                        json_object_object_add(a, "vmstate", json_object_new_string(node));
        }
        json_object_object_add(a, "devices", devs);
        return a;
}

/* Runs a snapshot job and waits (on QMP events, no polling) for it to conclude. */
/* The job's QMP reply can wait while QEMU's main loop writes the VM state,
 * so the command gets the job's time, not a plain command's.  A QEMU that
 * answers nothing in that time is wedged: say so, and what is left to do. */
static int live_job(struct qmp *q, const char *cmd, json_object *args, phy_error *err) {
        int r = qmp_command(q, cmd, args, SNAP_CMD_TIMEOUT_MS, NULL, err);
        if (r == -ETIMEDOUT)
                return phy_error_prefix(err, "QEMU stopped answering during its %s job and the VM is left paused; "
                                        "'phyllo resume' may bring it back, else 'phyllo kill' ends it", cmd);
        if (r < 0)
                return r;
        for (;;) {
                _cleanup_(json_object_putp) json_object *ev = NULL;
                if ((r = qmp_next_event(q, SNAP_JOB_TIMEOUT_MS, &ev, err)) < 0)
                        return phy_error_prefix(err, "waiting for QEMU's %s job", cmd);
                json_object *data;
                const char *e = store_json_str(ev, "event");
                if (!e || strcmp(e, "JOB_STATUS_CHANGE") != 0 || !json_object_object_get_ex(ev, "data", &data))
                        continue;
                const char *id = store_json_str(data, "id"), *st = store_json_str(data, "status");
                if (id && st && strcmp(id, SNAP_JOB_ID) == 0 && strcmp(st, "concluded") == 0)
                        break;
        }
        /* The outcome is in query-jobs; dismiss the job either way. */
        _cleanup_(json_object_putp) json_object *jobs = NULL;
        char msg[512] = "";
        if ((r = qmp_command(q, "query-jobs", NULL, SNAP_QMP_TIMEOUT_MS, &jobs, err)) < 0)
                return r;
        for (size_t i = 0; jobs && i < json_object_array_length(jobs); i++) {
                json_object *j = json_object_array_get_idx(jobs, i);
                const char *id = store_json_str(j, "id"), *e = store_json_str(j, "error");
                if (id && strcmp(id, SNAP_JOB_ID) == 0 && e)
                        snprintf(msg, sizeof msg, "%s", e);
        }
        json_object *d = json_object_new_object();
        json_object_object_add(d, "id", json_object_new_string(SNAP_JOB_ID));
        phy_error ignore = { 0 };
        (void) qmp_command(q, "job-dismiss", d, SNAP_QMP_TIMEOUT_MS, NULL, &ignore);
        if (msg[0]) {
                phy_error_set(err, EIO, "QEMU's %s failed: %s", cmd, msg);
                qemu_migration_blocker_hint(err);
                return -EIO;
        }
        return 0;
}

/* A create killed after its temporary dir was made (snapshots/.#new.<snap>.*)
 * may have left internal snapshots named snap in the disks with no
 * snapshot dir: they were never a snapshot, so they and the dir go. */
static int drop_interrupted(const struct snapctx *c, const char *snap, phy_error *err) {
        _cleanup_free_ char *prefix = NULL;
        if (asprintf(&prefix, ".#new.%s.", snap) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        DIR *d = opendir(c->snaps);
        if (!d)
                return 0;
        bool found = false;
        struct dirent *e;
        while ((e = readdir(d))) {
                if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || strchr(e->d_name + strlen(prefix), '.'))
                        continue;
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", c->snaps, e->d_name) >= 0)
                        (void) rm_rf(p);
                found = true;
        }
        closedir(d);
        for (size_t i = 0; found && i < c->def.n_disks; i++) {
                bool has = false;
                int r = disk_has_snapshot(c, i, snap, &has, err);
                if (r < 0 || (has && (r = snap_img(c, "-d", snap, i, err)) < 0))
                        return r;
        }
        return 0;
}

int store_snapshot_create(const char *home, const char *name, const char *snap, const char *qemu_img,
                          phy_error *err) {
        _cleanup_(snapctx_done) struct snapctx c = { 0 };
        int r = check_snap_name(snap, err);
        if (r < 0 || (r = snapctx_load(home, name, qemu_img, &c, err)) < 0)
                return r;
        bool live = run_is_active(home, name);
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
        if (!live && (r = drop_interrupted(&c, snap, err)) < 0)
                return r;
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

        /* Live: the CPUs stop first, so vars, TPM state and the RAM image are of one moment. */
        _cleanup_qmp_ struct qmp *q = NULL;
        _cleanup_free_ char *status = NULL;
        _cleanup_(fsfreeze_done) struct fsfreeze fz = { 0 };
        bool resume = false;
        if (live && (r = live_open(home, name, &q, err)) >= 0 && (r = qmp_query_status(q, &status, err)) >= 0 &&
            strcmp(status, "running") == 0) {
                /* A paused guest's agent cannot answer: only a running one is frozen. */
                fs_freeze(q, home, name, &fz);
                if ((r = qmp_command(q, "stop", NULL, SNAP_QMP_TIMEOUT_MS, NULL, err)) >= 0)
                        resume = true;
        }
        if (r < 0) {
                fs_thaw(&fz);
                (void) rm_rf(tmp);
                return r;
        }
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
        if (live && r >= 0)
                r = live_job(q, "snapshot-save", job_args(&c, snap), err);
        for (; !live && r >= 0 && made < c.def.n_disks; made++)
                r = snap_img(&c, "-c", snap, made, err);
        if (resume) {
                phy_error e2 = { 0 };
                int r2 = qmp_command(q, "cont", NULL, SNAP_QMP_TIMEOUT_MS, NULL, r < 0 ? &e2 : err);
                if (r >= 0)
                        r = r2;
        }
        fs_thaw(&fz);
        if (r >= 0) {
                json_object *o = json_object_new_object(), *a = json_object_new_array();
                json_object_object_add(o, "name", json_object_new_string(snap));
                json_object_object_add(o, "created", json_object_new_int64((int64_t) time(NULL)));
                for (size_t i = 0; i < c.def.n_disks; i++)
                        json_object_array_add(a, json_object_new_string(c.def.disks[i].name));
                json_object_object_add(o, "disks", a);
                json_object_object_add(o, "vars", json_object_new_boolean(has_vars));
                json_object_object_add(o, "tpm", json_object_new_boolean(has_tpm));
                json_object_object_add(o, "vmstate", json_object_new_boolean(live));
                if (fz.record)
                        json_object_object_add(o, "fsfreeze", json_object_get(fz.record));
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

static int meta_disks(const struct snapctx *c, json_object *meta, const char *snap, size_t **ret, size_t *ret_n,
                      phy_error *err);

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
                /* A snapshot that holds a disk removed since cannot be
                 * reverted: said in the list, not found at the revert. */
                _cleanup_free_ size_t *idx = NULL;
                size_t n = 0;
                phy_error e2 = { 0 };
                bool usable = meta_disks(&c, m, e->d_name, &idx, &n, &e2) >= 0;
                json_object_object_add(m, "revertible", json_object_new_boolean(usable));
                if (!usable)
                        json_object_object_add(m, "why_not", json_object_new_string(e2.message));
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

/* What a revert to snap works on: the VM, the snapshot's record and the
 * indexes of its disks in the VM's definition. */
static int revert_plan(const char *home, const char *name, const char *snap, const char *qemu_img,
                       struct snapctx *c, json_object **ret_meta, size_t **ret_idx, size_t *ret_n, phy_error *err) {
        int r = check_snap_name(snap, err);
        if (r < 0 || (r = snapctx_load(home, name, qemu_img, c, err)) < 0 ||
            (r = read_meta(c, snap, ret_meta, err)) < 0)
                return r;
        return meta_disks(c, *ret_meta, snap, ret_idx, ret_n, err);
}

/* Everything that can be checked before anything changes (ops stops a
 * running VM only after these): every disk holds the snapshot, and the
 * memory of a live one can load (QEMU's snapshot-load) only when every disk
 * the VM has now holds it, the one with the memory first as when it was
 * taken. */
static int revert_checks(struct snapctx *c, json_object *meta, const size_t *idx, size_t n, const char *name,
                         const char *snap, phy_error *err) {
        int r;
        for (size_t i = 0; i < n; i++) {
                bool has = false;
                if ((r = disk_has_snapshot(c, idx[i], snap, &has, err)) < 0)
                        return r;
                if (!has)
                        return phy_error_set(err, ENOENT, "disk '%s' of VM '%s' has no internal snapshot '%s' (was "
                                             "the image replaced?); nothing was changed", c->def.disks[idx[i]].name,
                                             name, snap);
        }
        json_object *v;
        if (!(json_object_object_get_ex(meta, "vmstate", &v) && json_object_get_boolean(v)))
                return 0;
        if (n == 0 || idx[0] != 0)
                return phy_error_set_kind(err, PHY_ERR_CONFLICT, EBUSY,
                                          "snapshot '%s' of VM '%s' holds its memory in disk '%s', which is no "
                                          "longer the VM's first disk; nothing was changed", snap, name,
                                          n ? c->def.disks[idx[0]].name : "?");
        for (size_t i = 0; i < c->def.n_disks; i++) {
                bool covered = false;
                for (size_t k = 0; k < n && !covered; k++)
                        covered = idx[k] == i;
                if (!covered)
                        return phy_error_set_kind(err, PHY_ERR_CONFLICT, EBUSY,
                                                  "snapshot '%s' of VM '%s' holds the VM's memory, which QEMU "
                                                  "loads only when every disk has the snapshot, and disk '%s' "
                                                  "came after it; nothing was changed: remove that disk first "
                                                  "('phyllo disk remove %s %s --keep-file' keeps its image)",
                                                  snap, name, c->def.disks[i].name, name, c->def.disks[i].name);
        }
        return 0;
}

int store_snapshot_revert_check(const char *home, const char *name, const char *snap, const char *qemu_img,
                                phy_error *err) {
        _cleanup_(snapctx_done) struct snapctx c = { 0 };
        _cleanup_(json_object_putp) json_object *meta = NULL;
        _cleanup_free_ size_t *idx = NULL;
        size_t n = 0;
        int r = revert_plan(home, name, snap, qemu_img, &c, &meta, &idx, &n, err);
        return r < 0 ? r : revert_checks(&c, meta, idx, n, name, snap, err);
}

int store_snapshot_revert(const char *home, const char *name, const char *snap, const char *qemu_img,
                          bool *ret_memory, phy_error *err) {
        _cleanup_(snapctx_done) struct snapctx c = { 0 };
        _cleanup_(json_object_putp) json_object *meta = NULL;
        _cleanup_free_ size_t *idx = NULL;
        size_t n = 0;
        int r = revert_plan(home, name, snap, qemu_img, &c, &meta, &idx, &n, err);
        if (r < 0 || (r = store_refuse_running(home, name, "revert it", err)) < 0 ||
            (r = revert_checks(&c, meta, idx, n, name, snap, err)) < 0)
                return r;
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
        /* A snapshot of a running VM also holds its memory. */
        *ret_memory = json_object_object_get_ex(meta, "vmstate", &v) && json_object_get_boolean(v);
        return 0;
}

int store_snapshot_load_memory(const char *home, const char *name, const char *snap, phy_error *err) {
        _cleanup_(snapctx_done) struct snapctx c = { 0 };
        _cleanup_qmp_ struct qmp *q = NULL;
        int r = snapctx_load(home, name, NULL, &c, err);
        if (r < 0 || (r = live_open(home, name, &q, err)) < 0 ||
            (r = live_job(q, "snapshot-load", job_args(&c, snap), err)) < 0)
                return r;
        return qmp_command(q, "cont", NULL, SNAP_QMP_TIMEOUT_MS, NULL, err);
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

/* SPDX-License-Identifier: MIT */
/*
 * Install media (issue 19): `phyllo cdrom insert|eject`, in the definition
 * and, while the VM runs, live over QMP.  A [cdrom NAME] without a path is
 * an empty drive (QEMU's CD device without a medium), so a drive ejected
 * stays one the next insert fills, also live.
 *
 * Live, QEMU never names the host path: QEMU runs as another user inside a
 * Landlock ruleset made at its start, which holds no file the user picks
 * later.  The ISO passes the checks a [cdrom] path gets (the caller may read
 * it; allow-paths), this process opens the resolved file and hands QEMU the
 * fd (add-fd), and the new medium is a node on /dev/fdset/N.  The drive's
 * medium is swapped with the blockdev-*-tray/-medium commands, which QEMU
 * 7.2 and 10.0 both take (blockdev-change-medium wants a filename).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "ops.h"
#include "fileio.h"
#include "json-cleanup.h"
#include "qemu/qmp.h"

#define QMP_MS 10000

static struct vm_cdrom *find_drive(struct vm_def *d, const char *drive) {
        for (size_t i = 0; i < d->n_cdroms; i++)
                if (!drive || strcmp(d->cdroms[i].name, drive) == 0)
                        return &d->cdroms[i];
        return NULL;
}

/* "install, drivers" for a message. */
static void drive_names(const struct vm_def *d, char *buf, size_t len) {
        size_t at = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < d->n_cdroms && at < len; i++)
                at += (size_t) snprintf(buf + at, len - at, "%s%s", i ? ", " : "", d->cdroms[i].name);
}

static int no_drive(const struct ops_vm *vm, const char *drive, phy_error *err) {
        char names[512];
        drive_names(&vm->def, names, sizeof names);
        if (!vm->def.n_cdroms)
                return phy_error_set(err, ENOENT, "VM '%s' has no CD drive; 'phyllo cdrom insert %s FILE.iso' adds "
                                     "one", vm->name, vm->name);
        return phy_error_set(err, ENOENT, "VM '%s' has no CD drive '%s'; its drives: %s", vm->name, drive, names);
}

/* The running QEMU's drive `id` (query-block's "qdev" is the device id):
 * 1 when it has it, with its medium's node name (NULL: empty) in *ret_node;
 * 0 when not (a drive added since the start). */
static int live_drive(struct qmp *q, const char *id, char **ret_node, phy_error *err) {
        _cleanup_(json_object_putp) json_object *blocks = NULL;
        *ret_node = NULL;
        int r = qmp_command(q, "query-block", NULL, QMP_MS, &blocks, err);
        if (r < 0)
                return r;
        for (size_t i = 0; json_object_is_type(blocks, json_type_array) && i < json_object_array_length(blocks); i++) {
                json_object *b = json_object_array_get_idx(blocks, i), *v = NULL, *ins = NULL, *node = NULL;
                if (!json_object_object_get_ex(b, "qdev", &v) || strcmp(json_object_get_string(v), id) != 0)
                        continue;
                if (json_object_object_get_ex(b, "inserted", &ins) && json_object_object_get_ex(ins, "node-name", &node) &&
                    !(*ret_node = strdup(json_object_get_string(node))))
                        return phy_error_set(err, ENOMEM, "out of memory");
                return 1;
        }
        return 0;
}

static int tray(struct qmp *q, const char *cmd, const char *id, bool force, phy_error *err) {
        json_object *a = json_object_new_object();
        json_object_object_add(a, "id", json_object_new_string(id));
        if (force)
                json_object_object_add(a, "force", json_object_new_boolean(true));
        return qmp_command(q, cmd, a, QMP_MS, NULL, err);
}

static void node_del(struct qmp *q, const char *node) {
        json_object *a = json_object_new_object();
        json_object_object_add(a, "node-name", json_object_new_string(node));
        phy_error ignore = { 0 };
        (void) qmp_command(q, "blockdev-del", a, QMP_MS, NULL, &ignore);
}

/* The medium node that left the drive: ours (the start's "cd-NAME" over
 * "cd-NAME-file", or an earlier insert's "cdm-...") goes. */
static void old_medium_del(struct qmp *q, const char *node) {
        if (!node || (strncmp(node, "cd-", 3) != 0 && strncmp(node, "cdm-", 4) != 0))
                return;
        node_del(q, node);
        if (strncmp(node, "cd-", 3) == 0) {
                char file[160];
                snprintf(file, sizeof file, "%s-file", node);
                node_del(q, file);
        }
}

/* Opens the tray (force: a guest's lock does not hold it), takes the medium out. */
static int live_empty(struct qmp *q, const char *id, phy_error *err) {
        int r;
        if ((r = tray(q, "blockdev-open-tray", id, true, err)) < 0 ||
            (r = tray(q, "blockdev-remove-medium", id, false, err)) < 0)
                return r;
        return 0;
}

static int live_insert(struct qmp *q, const char *id, int fd, const char *old_node, phy_error *err) {
        json_object *added = NULL, *v = NULL;
        json_object *a = json_object_new_object();
        json_object_object_add(a, "opaque", json_object_new_string("phyllome cdrom"));
        int r = qmp_command_fd(q, "add-fd", a, fd, QMP_MS, &added, err);
        if (r < 0)
                return r;
        int64_t set = json_object_object_get_ex(added, "fdset-id", &v) ? json_object_get_int64(v) : -1;
        json_object_put(added);
        if (set < 0)
                return phy_error_set(err, EBADMSG, "QEMU's add-fd gave no fdset-id");
        /* Node names are at most 31 characters: the fdset and the clock's microseconds. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        char node[32], file[32];
        snprintf(node, sizeof node, "cdm-%" PRId64 "-%lx", set % 100000, (unsigned long) (ts.tv_nsec / 1000) & 0xfffff);
        snprintf(file, sizeof file, "/dev/fdset/%" PRId64, set);
        json_object *f = json_object_new_object();
        json_object_object_add(f, "driver", json_object_new_string("file"));
        json_object_object_add(f, "filename", json_object_new_string(file));
        json_object_object_add(f, "read-only", json_object_new_boolean(true));
        a = json_object_new_object();
        json_object_object_add(a, "driver", json_object_new_string("raw"));
        json_object_object_add(a, "node-name", json_object_new_string(node));
        json_object_object_add(a, "read-only", json_object_new_boolean(true));
        json_object_object_add(a, "file", f);
        r = qmp_command(q, "blockdev-add", a, QMP_MS, NULL, err);
        if (r >= 0 && (r = live_empty(q, id, err)) >= 0) {
                a = json_object_new_object();
                json_object_object_add(a, "id", json_object_new_string(id));
                json_object_object_add(a, "node-name", json_object_new_string(node));
                if ((r = qmp_command(q, "blockdev-insert-medium", a, QMP_MS, NULL, err)) < 0) {
                        /* Nothing half-done: the old medium goes back in. */
                        node_del(q, node);
                        if (old_node) {
                                a = json_object_new_object();
                                json_object_object_add(a, "id", json_object_new_string(id));
                                json_object_object_add(a, "node-name", json_object_new_string(old_node));
                                phy_error ignore = { 0 };
                                (void) qmp_command(q, "blockdev-insert-medium", a, QMP_MS, NULL, &ignore);
                                (void) tray(q, "blockdev-close-tray", id, false, &ignore);
                        }
                } else
                        old_medium_del(q, old_node);
        }
        /* The node holds its own duplicate of the fd; the set's goes. */
        a = json_object_new_object();
        json_object_object_add(a, "fdset-id", json_object_new_int64(set));
        phy_error ignore = { 0 };
        (void) qmp_command(q, "remove-fd", a, QMP_MS, NULL, &ignore);
        if (r < 0)
                return r;
        return tray(q, "blockdev-close-tray", id, false, err);
}

int ops_cdrom_insert(const struct ops_ctx *c, const char *name, const char *drive, const char *path, json_object **ret,
                     phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        _cleanup_qmp_ struct qmp *q = NULL;
        _cleanup_free_ char *iso = NULL, *real = NULL, *vmdir = NULL, *old = NULL, *old_node = NULL;
        int r;
        if ((r = ops_name_check("VM name", name, err)) < 0 || (drive && (r = ops_name_check("CD drive name", drive, err)) < 0))
                return r;
        if (!path || !*path)
                return phy_error_usage(err, "an ISO image to insert is required");
        if ((r = ops_vm_open(c, name, OPS_WRITE, &vm, err)) < 0)
                return r;
        /* What a [cdrom] path in a definition must be: readable by the caller, under allow-paths. */
        if ((r = ops_input_path(c, "ISO", path, &iso, err)) < 0)
                return r;
        if (!(vmdir = vm_dir(c->home, vm.name)))
                return phy_error_set(err, ENOMEM, "out of memory");
        struct vm_cdrom *cd = find_drive(&vm.def, drive);
        bool added = false;
        if (!cd && vm.def.n_cdroms)
                return no_drive(&vm, drive, err);
        char what[128];
        snprintf(what, sizeof what, "[cdrom %s] path", cd ? cd->name : drive ? drive : "install");
        if ((r = vm_path_check_here_real(vmdir, what, iso, &real, err)) < 0)
                return r;
        _cleanup_close_ int fd = open_resolved(real, O_RDONLY | O_NOCTTY, 0);
        struct stat st;
        if (fd < 0)
                return phy_error_set(err, -fd, "cannot open the ISO '%s': %s", path, strerror(-fd));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return phy_error_usage(err, "the ISO '%s' is not a regular file", path);
        if (!cd) {
                /* No drive yet: [cdrom install] (or the name asked for). */
                struct vm_cdrom *cds = realloc(vm.def.cdroms, (vm.def.n_cdroms + 1) * sizeof *cds);
                if (!cds)
                        return phy_error_set(err, ENOMEM, "out of memory");
                vm.def.cdroms = cds;
                cd = &cds[vm.def.n_cdroms++];
                *cd = (struct vm_cdrom) { .name = strdup(drive ? drive : "install") };
                if (!cd->name)
                        return phy_error_set(err, ENOMEM, "out of memory");
                added = true;
        }
        old = cd->path;
        if (!(cd->path = strdup(real)))
                return phy_error_set(err, ENOMEM, "out of memory");
        /* The whole definition checked before anything changes live. */
        if ((r = vm_def_check_save(&vm.def, vm.conf, err)) < 0)
                return r;
        char id[96];
        snprintf(id, sizeof id, "cd-%s", cd->name);
        bool live = false, pending = false;
        if ((r = ops_vm_qmp(&vm, &q, err)) < 0)
                return r;
        if (q) {
                if ((r = live_drive(q, id, &old_node, err)) < 0)
                        return phy_error_prefix(err, "cannot insert the ISO into running VM '%s'", vm.name);
                if (r == 0)
                        pending = true;         /* a drive added since the start: at the next one */
                else if ((r = live_insert(q, id, fd, old_node, err)) < 0)
                        return phy_error_prefix(err, "cannot insert the ISO into CD drive '%s' of running VM '%s'",
                                                cd->name, vm.name);
                else
                        live = true;
        }
        if ((r = ops_vm_save(&vm, err)) < 0)
                return r;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(vm.name));
        json_object_object_add(o, "drive", json_object_new_string(cd->name));
        json_object_object_add(o, "path", json_object_new_string(cd->path));
        json_object_object_add(o, "replaced", old ? json_object_new_string(old) : NULL);
        json_object_object_add(o, "added_drive", json_object_new_boolean(added));
        json_object_object_add(o, "live", json_object_new_boolean(live));
        json_object_object_add(o, "pending", json_object_new_boolean(pending));
        *ret = o;
        return 0;
}

int ops_cdrom_eject(const struct ops_ctx *c, const char *name, const char *drive, json_object **ret, phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        _cleanup_qmp_ struct qmp *q = NULL;
        _cleanup_free_ char *old = NULL, *old_node = NULL;
        int r;
        if ((r = ops_name_check("VM name", name, err)) < 0 || (drive && (r = ops_name_check("CD drive name", drive, err)) < 0))
                return r;
        if ((r = ops_vm_open(c, name, OPS_WRITE, &vm, err)) < 0)
                return r;
        struct vm_cdrom *cd = find_drive(&vm.def, drive);
        if (!cd)
                return no_drive(&vm, drive, err);
        char id[96];
        snprintf(id, sizeof id, "cd-%s", cd->name);
        bool live = false;
        if ((r = ops_vm_qmp(&vm, &q, err)) < 0)
                return r;
        if (q && (r = live_drive(q, id, &old_node, err)) < 0)
                return phy_error_prefix(err, "cannot eject the CD of running VM '%s'", vm.name);
        if (q && r == 1 && old_node) {
                if ((r = live_empty(q, id, err)) < 0 || (r = tray(q, "blockdev-close-tray", id, false, err)) < 0)
                        return phy_error_prefix(err, "cannot eject the CD of drive '%s' of running VM '%s'", cd->name,
                                                vm.name);
                old_medium_del(q, old_node);
                live = true;
        }
        old = TAKE_PTR(cd->path);
        if (old && (r = ops_vm_save(&vm, err)) < 0)
                return r;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(vm.name));
        json_object_object_add(o, "drive", json_object_new_string(cd->name));
        json_object_object_add(o, "ejected", old ? json_object_new_string(old) : NULL);
        json_object_object_add(o, "live", json_object_new_boolean(live));
        *ret = o;
        return 0;
}

int ops_boot_once_check(const struct ops_ctx *c, const char *name, const char *boot_once, bool *ret_cdrom,
                        phy_error *err) {
        *ret_cdrom = false;
        if (!boot_once)
                return 0;
        if (strcmp(boot_once, "cdrom") != 0)
                return phy_error_usage(err, "--boot-once takes 'cdrom' (boot from the CD this start only), not '%s'",
                                       boot_once);
        _cleanup_vm_def_ struct vm_def d = { 0 };
        int r = vm_load_by_name(c->home, name, &d, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < d.n_cdroms; i++)
                if (d.cdroms[i].path) {
                        *ret_cdrom = true;
                        return 0;
                }
        return phy_error_usage(err, "VM '%s' has no CD in a drive to boot from; put one in with 'phyllo cdrom insert "
                               "%s FILE.iso'", name, name);
}

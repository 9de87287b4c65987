/* SPDX-License-Identifier: MIT */
/* The VM handle, and the definitions: create, list, show, set, delete,
 * profiles. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "ops.h"
#include "fileio.h"
#include "show-cache.h"
#include "media.h"
#include "value.h"
#include "net/net.h"
#include "qemu/qmp.h"
#include "run/run.h"
#include "store/store.h"
#include "vm/env.h"
#include "vm/profile.h"

/* A definition's text is read whole: the same cap as an API body. */
#define OPS_CONF_MAX (1024u * 1024)

struct ops_ctx ops_ctx_self(const char *root, const char *home) {
        return (struct ops_ctx) { .root = root, .home = home, .uid = geteuid(), .gid = getegid(), .exits_after = true };
}

int ops_name_check(const char *what, const char *name, phy_error *err) {
        if (!name)
                return phy_error_usage(err, "a %s is required", what);
        if (!vm_name_valid(name))
                return phy_error_usage(err, "invalid %s '%s'; use 1 to 64 of A-Z a-z 0-9 . _ -", what, name);
        return 0;
}

static bool in_groups(const struct ops_ctx *c, gid_t g) {
        if (g == c->gid)
                return true;
        for (size_t i = 0; i < c->n_groups; i++)
                if (c->groups[i] == g)
                        return true;
        return false;
}

/* The rwx bits of st that apply to the caller include all of want (4 2 1). */
static bool bits_allow(const struct ops_ctx *c, const struct stat *st, unsigned want) {
        unsigned bits = st->st_uid == c->uid ? st->st_mode >> 6 : in_groups(c, st->st_gid) ? st->st_mode >> 3
                                                                                             : st->st_mode;
        return (bits & want) == want;
}

bool ops_caller_may(const struct ops_ctx *c, const char *path, int mode) {
        if (c->uid == 0)
                return true;
        if (c->uid == geteuid() && c->gid == getegid())
                return faccessat(AT_FDCWD, path, mode, AT_EACCESS) == 0;
        char buf[PATH_MAX];
        struct stat st;
        if (path[0] != '/' || strlen(path) >= sizeof buf)
                return false;
        memcpy(buf, path, strlen(path) + 1);
        /* Each directory above it: search (x). */
        for (char *s = strchr(buf + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                bool good = stat(buf, &st) == 0 && bits_allow(c, &st, 1);
                *s = '/';
                if (!good)
                        return false;
        }
        return stat(path, &st) == 0 && bits_allow(c, &st, (mode & R_OK ? 4 : 0) | (mode & W_OK ? 2 : 0));
}

int ops_input_path(const struct ops_ctx *c, const char *what, const char *path, char **ret, phy_error *err) {
        char buf[PATH_MAX];
        if (path[0] != '/')
                return phy_error_usage(err, "the %s '%s' must be an absolute path", what, path);
        if (!realpath(path, buf))
                return phy_error_set(err, errno, "cannot use the %s '%s': %s", what, path, strerror(errno));
        if (!ops_caller_may(c, buf, R_OK))
                return phy_error_set(err, EACCES, "cannot use the %s '%s': uid %u may not read it", what, path,
                                     (unsigned) c->uid);
        if (!(*ret = strdup(buf)))
                return phy_error_set(err, ENOMEM, "out of memory");
        return 0;
}

/* ---- the handle ---- */

int ops_vm_open(const struct ops_ctx *c, const char *name, enum ops_access access, struct ops_vm *ret,
                phy_error *err) {
        *ret = (struct ops_vm) { .ctx = c, .lock_fd = -1 };
        int r;
        if ((r = ops_name_check("VM name", name, err)) < 0)
                return r;
        /* OPS_WRITE: the definition's edit lock (vm_edit_lock) is taken
         * first and the definition loaded under it, so that two edits
         * serialise instead of one losing the other; held until
         * ops_vm_close. */
        if (access == OPS_WRITE) {
                /* The VM must exist before its lock file is made. */
                if ((r = vm_load_by_name(c->home, name, &ret->def, err)) < 0)
                        return r;
                vm_def_done(&ret->def);
                ret->def = (struct vm_def) { 0 };
                if ((r = vm_edit_lock(c->home, name, &ret->lock_fd, err)) < 0) {
                        ops_vm_close(ret);
                        return r;
                }
        }
        if ((r = vm_load_by_name(c->home, name, &ret->def, err)) < 0) {
                ops_vm_close(ret);
                return r;
        }
        ret->name = ret->def.name;
        if (!(ret->conf = vm_conf_path(c->home, name))) {
                ops_vm_close(ret);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        if ((r = run_dir_path(c->home, name, &ret->run_dir, err)) < 0) {
                ops_vm_close(ret);
                return r;
        }
        return 0;
}

int ops_vm_save(struct ops_vm *vm, phy_error *err) {
        return vm_def_save(&vm->def, vm->conf, err);
}

void ops_vm_close(struct ops_vm *vm) {
        vm_def_done(&vm->def);
        free(vm->conf);
        free(vm->run_dir);
        if (vm->lock_fd >= 0)
                close(vm->lock_fd);
        *vm = (struct ops_vm) { .lock_fd = -1 };
}

bool ops_vm_active(const struct ops_vm *vm) {
        return run_is_active(vm->ctx->home, vm->name);
}

int ops_vm_qmp(struct ops_vm *vm, struct qmp **ret, phy_error *err) {
        _cleanup_run_state_ struct run_state st = { 0 };
        _cleanup_free_ char *sock = NULL;
        *ret = NULL;
        int r = run_state_get(vm->ctx->home, vm->name, &st, err);
        if (r < 0 || (st.state != RUN_RUNNING && st.state != RUN_PAUSED))
                return r;
        if (asprintf(&sock, "%s/qmp.sock", vm->run_dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if ((r = qmp_open_path(sock, 5000, ret, err)) < 0)
                return phy_error_prefix(err, "cannot reach QEMU of running VM '%s'", vm->name);
        return 0;
}

/* ---- create ---- */

static int dup_into(char **ret, const char *s, phy_error *err) {
        if (!(*ret = strdup(s)))
                return phy_error_set(err, ENOMEM, "out of memory");
        return 0;
}

static int add_cdrom(const struct ops_ctx *c, struct vm_def *d, const char *name, const char *path, phy_error *err) {
        struct vm_cdrom *cd = realloc(d->cdroms, (d->n_cdroms + 1) * sizeof *cd);
        if (!cd)
                return phy_error_set(err, ENOMEM, "out of memory");
        d->cdroms = cd;
        cd = &d->cdroms[d->n_cdroms++];
        *cd = (struct vm_cdrom) { 0 };
        int r = dup_into(&cd->name, name, err);
        return r < 0 ? r : ops_input_path(c, strcmp(name, "drivers") == 0 ? "driver ISO" : "ISO", path, &cd->path, err);
}

/* A path inside install media: relative, no "..", no control character. */
static bool inner_path_valid(const char *p) {
        if (!p || !*p || strlen(p) > 255 || str_has_control(p))
                return false;
        for (const char *s = p; *s;) {
                size_t n = strcspn(s, "/");
                if (n == 2 && s[0] == '.' && s[1] == '.')
                        return false;
                s += n;
                while (*s == '/')
                        s++;
        }
        return true;
}

/* [install]: the media (the ISO), the answer file's name and its delivery;
 * for initrd delivery the copies of the media's kernel and initrd that
 * install_copy makes in the VM dir. */
static int install_def(const struct ops_ctx *c, const struct ops_create *o, struct vm_def *d, phy_error *err) {
        const struct ops_install *in = o->install;
        if (!o->iso)
                return phy_error_usage(err, "an unattended install needs the install media (iso)");
        if (!in->answer_name || !vm_install_answer_valid(in->answer_name))
                return phy_error_usage(err, "invalid answer file name '%s'; use 1 to 64 of A-Z a-z 0-9 . _ - (not "
                                       "starting with '.')", in->answer_name ? in->answer_name : "");
        if (!in->answer || in->answer_len == 0 || in->answer_len > OPS_ANSWER_MAX)
                return phy_error_usage(err, "the answer file must hold 1 byte to %u KiB", OPS_ANSWER_MAX / 1024);
        if (!in->delivery || (strcmp(in->delivery, "initrd") != 0 && strcmp(in->delivery, "cdrom") != 0))
                return phy_error_usage(err, "invalid delivery '%s' of the answer file; allowed: initrd, cdrom",
                                       in->delivery ? in->delivery : "");
        bool initrd = strcmp(in->delivery, "initrd") == 0;
        if (initrd && (!inner_path_valid(in->kernel) || !inner_path_valid(in->initrd)))
                return phy_error_usage(err, "initrd delivery needs the paths of the kernel and the initrd inside "
                                       "the media (e.g. install.amd/vmlinuz), without '..'");
        if (!initrd && (in->kernel || in->initrd || in->append))
                return phy_error_usage(err, "cdrom delivery takes no kernel, initrd or append");
        if (in->append && str_has_control(in->append))
                return phy_error_usage(err, "the kernel's arguments hold a control character");
        int r;
        d->install.delivery = initrd ? VM_INSTALL_INITRD : VM_INSTALL_CDROM;
        if ((r = ops_input_path(c, "ISO", o->iso, &d->install.media, err)) < 0 ||
            (r = dup_into(&d->install.answer, in->answer_name, err)) < 0 ||
            (initrd && ((r = dup_into(&d->install.kernel, VM_INSTALL_KERNEL_COPY, err)) < 0 ||
                        (r = dup_into(&d->install.initrd, VM_INSTALL_INITRD_COPY, err)) < 0 ||
                        (in->append && (r = dup_into(&d->install.append, in->append, err)) < 0))))
                return r;
        return 0;
}

/* After vm_create: the media's kernel and initrd copied into the VM dir
 * (initrd delivery), then the install run started with the answer. */
static int install_start(const struct ops_ctx *c, const struct ops_create *o, const struct vm_def *d,
                         strv *warnings, phy_error *err) {
        const struct ops_install *in = o->install;
        _cleanup_free_ char *dir = vm_dir(c->home, o->name), *k = NULL, *i = NULL;
        int r;
        if (!dir)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (d->install.delivery == VM_INSTALL_INITRD) {
                if (asprintf(&k, "%s/" VM_INSTALL_KERNEL_COPY, dir) < 0 ||
                    asprintf(&i, "%s/" VM_INSTALL_INITRD_COPY, dir) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if ((r = media_iso_extract(d->install.media, in->kernel, k, err)) < 0 ||
                    (r = media_iso_extract(d->install.media, in->initrd, i, err)) < 0)
                        return r;
        }
        struct run_answer a = { .data = in->answer, .len = in->answer_len };
        struct run_start_opts so = { .root = c->root, .home = c->home, .name = o->name, .answer = &a,
                                     .caller_exits = c->exits_after };
        return run_start(&so, warnings, err);
}

/* The definition create writes, from its options. */
static int create_def(const struct ops_ctx *c, const struct ops_create *o, const struct vm_profile *prof,
                      struct vm_def *d, phy_error *err) {
        const char *allowed;
        int v, r;
        snprintf(d->name, sizeof d->name, "%s", o->name);
        if (o->display) {
                if ((v = vm_display_from_name(o->display, &allowed)) < 0)
                        return phy_error_usage(err, "invalid display '%s'; allowed: %s", o->display, allowed);
                d->display = (enum vm_display) v;
        }
        if (o->gpu) {
                if ((v = vm_gpu_from_name(o->gpu, &allowed)) < 0)
                        return phy_error_usage(err, "invalid GPU '%s'; allowed: %s", o->gpu, allowed);
                d->gpu = (enum vm_gpu) v;
        }
        if (o->cpus) {
                d->cores = o->cpus;
                d->threads = 1;
        }
        d->memory = o->memory;
        if (o->uefi >= 0)
                d->firmware = o->uefi ? VM_FW_UEFI : VM_FW_BIOS;
        if (o->usb_redirect >= 0) {
                d->usb_redirect = (unsigned) o->usb_redirect;
                d->usb_redirect_set = true;
        }
        if ((r = dup_into(&d->profile, prof->name, err)) < 0)
                return r;
        if (!o->no_disk) {
                /* The system disk: path and size recorded, since the image is made now. */
                if (!(d->disks = calloc(1, sizeof *d->disks)))
                        return phy_error_set(err, ENOMEM, "out of memory");
                d->n_disks = 1;
                d->disks[0].size = o->disk ? o->disk : prof->disk_size;
                if ((r = dup_into(&d->disks[0].name, "system", err)) < 0 ||
                    (r = dup_into(&d->disks[0].path, "disk-system.qcow2", err)) < 0)
                        return r;
                if (o->disk_bus) {
                        if ((v = vm_bus_from_name(o->disk_bus)) <= 0)
                                return phy_error_usage(err, "invalid disk bus '%s'", o->disk_bus);
                        d->disks[0].bus = (enum vm_bus) v;
                }
        }
        if (o->install && (r = install_def(c, o, d, err)) < 0)
                return r;
        if ((o->iso && !o->install && (r = add_cdrom(c, d, "install", o->iso, err)) < 0) ||
            (o->drivers && (r = add_cdrom(c, d, "drivers", o->drivers, err)) < 0) ||
            (o->kernel && (r = ops_input_path(c, "kernel", o->kernel, &d->kernel, err)) < 0) ||
            (o->initrd && (r = ops_input_path(c, "initrd", o->initrd, &d->initrd, err)) < 0) ||
            (o->append && (r = dup_into(&d->append, o->append, err)) < 0))
                return r;
        if (!(d->nics = calloc(1, sizeof *d->nics)))
                return phy_error_set(err, ENOMEM, "out of memory");
        d->n_nics = 1;
        if ((r = dup_into(&d->nics[0].name, "net0", err)) < 0)
                return r;
        for (size_t i = 0; i < o->forwards.n; i++) {
                if (value_forward_parse(o->forwards.v[i], NULL) < 0)
                        return phy_error_usage(err, "invalid forward '%s'; use tcp|udp:[ADDRESS:]HOSTPORT:"
                                             "GUESTPORT (e.g. tcp:2222:22)", o->forwards.v[i]);
                /* A privileged host port would fail the start, as nobody, with no hint. */
                if ((r = net_forward_check_port(o->forwards.v[i], err)) < 0)
                        return phy_error_prefix(err, "--forward %s", o->forwards.v[i]);
                if (!strv_contains(&d->nics[0].forwards, o->forwards.v[i]) &&
                    strv_push(&d->nics[0].forwards, o->forwards.v[i]) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
        }
        if (o->net && (r = vm_nic_mode_parse(o->net, &d->nics[0], err)) < 0)
                return r;
        if (o->nic) {
                if ((v = vm_nic_model_from_name(o->nic)) <= 0)
                        return phy_error_usage(err, "invalid NIC model '%s'", o->nic);
                d->nics[0].model = (enum vm_nic_model) v;
        }
        return vm_def_make_identity(d, err);
}

/* A model's refusal names the definition's keys ("[cpu] cores"); the
 * caller of create typed options: each key it names that one of theirs set
 * gets that option, as typed (issue 19: "... (you gave --cpus 1)"). */
static void create_name_flags(const struct ops_create *o, phy_error *err) {
        char mem[32] = "", disk[32] = "", cpus[16] = "", redirect[16] = "";
        if (o->memory)
                format_size(o->memory, mem, sizeof mem);
        if (o->disk)
                format_size(o->disk, disk, sizeof disk);
        snprintf(cpus, sizeof cpus, "%u", o->cpus);
        snprintf(redirect, sizeof redirect, "%d", o->usb_redirect);
        const struct { const char *key, *flag, *value; bool given; } t[] = {
                { "[cpu] cores", "--cpus", cpus, o->cpus > 0 },
                { "vCPUs", "--cpus", cpus, o->cpus > 0 },
                { "[memory] size", "--memory", mem, o->memory > 0 },
                { "[disk system]", "--disk", disk, o->disk > 0 },
                { "disk 'system'", "--disk", disk, o->disk > 0 },
                { "system disk", "--no-disk", "", o->no_disk },
                { "[gpu] type", "--gpu", o->gpu, o->gpu != NULL },
                { "[display] type", "--display", o->display, o->display != NULL },
                { "[usb] redirect", "--usb-redirect", redirect, o->usb_redirect >= 0 },
                { "[firmware] type", o->uefi ? "--uefi" : "--no-uefi", "", o->uefi >= 0 },
                { "[boot] kernel", "--kernel", o->kernel, o->kernel != NULL },
                { "[network net0]", "--net", o->net, o->net != NULL },
        };
        char said[256] = "";
        size_t at = 0;
        for (size_t i = 0; i < ELEMENTSOF(t) && at < sizeof said; i++) {
                if (!t[i].given || !strstr(err->message, t[i].key) || strstr(said, t[i].flag))
                        continue;
                at += (size_t) snprintf(said + at, sizeof said - at, "%s%s%s%s", at ? ", " : "", t[i].flag,
                                        t[i].value && *t[i].value ? " " : "", t[i].value ? t[i].value : "");
        }
        size_t n = strlen(err->message);
        if (said[0] && n + strlen(said) + 16 < sizeof err->message)
                snprintf(err->message + n, sizeof err->message - n, " (you gave %s)", said);
}

int ops_create(const struct ops_ctx *c, const struct ops_create *o, json_object **ret, phy_error *err) {
        int r;
        if ((r = ops_name_check("VM name", o->name, err)) < 0)
                return r;
        if (!o->profile)
                return phy_error_usage(err, "a profile is required; one of: %s", vm_profile_names());
        const struct vm_profile *prof = vm_profile_find(o->profile);
        if (!prof)
                return phy_error_usage(err, "unknown profile '%s'; use one of: %s", o->profile,
                                     vm_profile_names());
        if (o->cpus > 255)
                return phy_error_usage(err, "invalid number of CPUs %u; use a whole number from 1 to 255",
                                     o->cpus);
        if (o->usb_redirect > (int) VM_USB_REDIRECT_MAX)
                return phy_error_usage(err, "invalid number of USB redirection channels %d; use 0 to %u",
                                     o->usb_redirect, VM_USB_REDIRECT_MAX);
        if (o->no_disk && o->disk)
                return phy_error_usage(err, "a disk size and no disk contradict each other");
        if ((o->initrd || o->append) && !o->kernel)
                return phy_error_usage(err, "an initrd and kernel arguments need a kernel");

        _cleanup_vm_def_ struct vm_def d = { 0 }, m = { 0 };
        if ((r = create_def(c, o, prof, &d, err)) < 0)
                return r;
        struct vm_env e = { 0 };
        r = vm_env_load(c->root, true, &e, err);
        if (r >= 0)
                r = vm_create(c->home, &d, &e.host, vm_env_caps(&e), e.tools.qemu_img, o->force, err);
        if (r >= 0)
                r = vm_model_resolve(&d, &e.host, vm_env_caps(&e), &m, err);
        _cleanup_strv_ strv warnings = { 0 };
        if (r >= 0 && vm_model_warnings(&m, &e.host, &warnings) < 0)
                r = phy_error_set(err, ENOMEM, "out of memory");
        json_object *warn = e.warning[0] ? json_object_new_string(e.warning) : NULL;
        vm_env_done(&e);
        _cleanup_strv_ strv start_warnings = { 0 };
        if (r >= 0 && o->install && (r = install_start(c, o, &d, &start_warnings, err)) < 0) {
                /* Nothing half-made: without its install run the VM is no use (the answer is gone). */
                phy_error e2 = { 0 };
                (void) run_vm_delete(c->home, o->name, &e2);
        }
        if (r < 0) {
                json_object_put(warn);
                create_name_flags(o, err);
                return r;
        }
        _cleanup_free_ char *dir = vm_dir(c->home, o->name);
        json_object *x = json_object_new_object();
        json_object_object_add(x, "name", json_object_new_string(o->name));
        json_object_object_add(x, "profile", json_object_new_string(prof->name));
        json_object_object_add(x, "cpus", json_object_new_int((int) (m.cores * m.threads)));
        json_object_object_add(x, "memory", json_object_new_int64((int64_t) m.memory));
        json_object_object_add(x, "disk_size", m.n_disks ? json_object_new_int64((int64_t) m.disks[0].size) : NULL);
        json_object_object_add(x, "dir", dir ? json_object_new_string(dir) : NULL);
        json_object_object_add(x, "model", vm_def_to_json(&m));
        if (warn)
                json_object_object_add(x, "caps_warning", warn);
        json_object *wa = json_object_new_array();
        for (size_t i = 0; i < warnings.n; i++)
                json_object_array_add(wa, json_object_new_string(warnings.v[i]));
        json_object_object_add(x, "warnings", wa);
        if (o->install) {
                json_object *in = json_object_new_object(), *w = json_object_new_array();
                json_object_object_add(in, "answer", json_object_new_string(d.install.answer));
                json_object_object_add(in, "delivery", json_object_new_string(o->install->delivery));
                json_object_object_add(in, "started", json_object_new_boolean(true));
                for (size_t i = 0; i < start_warnings.n; i++)
                        json_object_array_add(w, json_object_new_string(start_warnings.v[i]));
                json_object_object_add(in, "warnings", w);
                json_object_object_add(x, "install", in);
        }
        *ret = x;
        return 0;
}

/* ---- list, show ---- */

int ops_list(const struct ops_ctx *c, json_object **ret, phy_error *err) {
        json_object *arr = NULL;
        int r = ops_list_summaries(c, &arr, err);
        if (r < 0)
                return r;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "vms", arr);
        *ret = o;
        return 0;
}

/* What a show says that the definition's text and the host's facts decide:
 * {"name", "config" (the file as written), "model" (defaults filled),
 * "model_text" (the text `phyllo show` prints)}, from one read of vm.conf
 * (its text in *ret_text), so that the model is always that of the text. */
static int show_object(const struct ops_ctx *c, const char *name, const struct ops_env *e, char **ret_text,
                       json_object **ret, phy_error *err) {
        _cleanup_vm_def_ struct vm_def d = { 0 }, m = { 0 };
        _cleanup_free_ char *text = NULL, *model_text = NULL;
        int r = vm_load_by_name_text(c->home, name, &text, &d, err);
        if (r >= 0)
                r = vm_model_resolve(&d, &ops_env_of(e)->host, vm_env_caps(ops_env_of(e)), &m, err);
        if (r < 0)
                return r;
        if (!(model_text = vm_def_format(&m, true)))
                return phy_error_set(err, ENOMEM, "out of memory");
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "config", json_object_new_string(text));
        json_object_object_add(o, "model", vm_def_to_json(&m));
        json_object_object_add(o, "model_text", json_object_new_string(model_text));
        *ret = o;
        *ret_text = TAKE_PTR(text);
        return 0;
}

/* The facts snapshot for a show; when it cannot be had, a VM that does not
 * exist is said first, as before. */
static int show_env(const struct ops_ctx *c, const char *name, struct ops_env **ret, phy_error *err) {
        int r = ops_env_get(c, true, ret, err);
        if (r < 0) {
                phy_error e2 = { 0 };
                if (vm_exists(c->home, name, &e2) < 0)
                        *err = e2;
        }
        return r;
}

/* The file as written, the model with the text `phyllo show` prints, and
 * the run state. */
int ops_show(const struct ops_ctx *c, const char *name, json_object **ret, phy_error *err) {
        _cleanup_free_ char *text = NULL;
        struct ops_env *e = NULL;
        json_object *o = NULL;
        int r;
        if ((r = ops_name_check("VM name", name, err)) < 0)
                return r;
        if ((r = show_env(c, name, &e, err)) < 0)
                return r;
        r = show_object(c, name, e, &text, &o, err);
        ops_env_put(e);
        if (r < 0)
                return r;
        _cleanup_run_state_ struct run_state st = { 0 };
        if ((r = run_state_get(c->home, name, &st, err)) < 0) {
                json_object_put(o);
                return r;
        }
        json_object_object_add(o, "status", run_state_to_json(&st));
        *ret = o;
        return 0;
}

/* ops_show's answer as text (what phyllod sends), its part without the
 * run state from the show cache when phyllod has one (show-cache.h): a
 * repeated GET /v1/vms/NAME read, parsed, resolved and formatted the
 * definition each time (~450,000 instructions). */
int ops_show_text(const struct ops_ctx *c, const char *name, char **ret, size_t *ret_len, phy_error *err) {
        _cleanup_free_ char *conf_path = NULL, *conf = NULL, *out = NULL;
        _cleanup_run_state_ struct run_state st = { 0 };
        size_t conf_len = 0, len = 0;
        struct ops_env *e = NULL;
        int r;
        if ((r = ops_name_check("VM name", name, err)) < 0)
                return r;
        if (!(conf_path = vm_conf_path(c->home, name)))
                return phy_error_set(err, ENOMEM, "out of memory");
        if ((r = show_env(c, name, &e, err)) < 0)
                return r;
        uint64_t gen = ops_env_gen(e);
        /* The definition as it is now, for the key (a failed read is the
         * slow path's to explain). */
        bool hit = c->env_cache && file_read_all(conf_path, OPS_CONF_MAX, &conf, &conf_len) >= 0 &&
                   ops_show_cache_get(c->env_cache, name, conf, conf_len, gen, &out, &len);
        if (!hit) {
                _cleanup_free_ char *text = NULL;
                json_object *o = NULL;
                r = show_object(c, name, e, &text, &o, err);
                if (r >= 0) {
                        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                              JSON_C_TO_STRING_NOSLASHESCAPE);
                        /* Without its closing brace: the state follows. */
                        len = strlen(s) - 1;
                        if (!(out = strndup(s, len)))
                                r = phy_error_set(err, ENOMEM, "out of memory");
                        else
                                ops_show_cache_put(c->env_cache, name, text, strlen(text), gen, out, len);
                }
                json_object_put(o);
        }
        ops_env_put(e);
        if (r < 0)
                return r;
        if ((r = run_state_get(c->home, name, &st, err)) < 0)
                return r;
        json_object *so = run_state_to_json(&st);
        const char *s = json_object_to_json_string_ext(so, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        size_t n = strlen(s);
        char *full = realloc(out, len + sizeof ",\"status\":" - 1 + n + 3);
        if (!full) {
                json_object_put(so);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        out = full;
        memcpy(out + len, ",\"status\":", sizeof ",\"status\":" - 1);
        len += sizeof ",\"status\":" - 1;
        memcpy(out + len, s, n);
        len += n;
        memcpy(out + len, "}\n", 3);
        len += 2;
        json_object_put(so);
        *ret = TAKE_PTR(out);
        *ret_len = len;
        return 0;
}

/* ---- set (edit), delete ---- */

int ops_set_config(const struct ops_ctx *c, const char *name, const char *text, const char *source,
                   const char *base, json_object **ret, phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        _cleanup_vm_def_ struct vm_def d = { 0 }, m = { 0 };
        int r;
        if (!text)
                return phy_error_usage(err, "the definition text is required");
        if ((r = ops_vm_open(c, name, OPS_WRITE, &vm, err)) < 0)
                return r;
        const char *where = source ? source : vm.conf;
        char warning[sizeof err->message] = "";
        /* Checked as a whole before it replaces the original: parse, name, model. */
        r = vm_def_parse(where, text, &d, err);
        if (r >= 0 && d.name[0] && strcmp(d.name, name) != 0)
                r = phy_error_usage(err, "%s: [vm] name cannot change from '%s' to '%s' here; create a "
                                  "new VM instead", where, name, d.name);
        /* What every save checks (files only in the VM dir or allow-paths). */
        if (r >= 0)
                r = vm_def_check_save(&d, vm.conf, err);
        if (r >= 0) {
                snprintf(d.name, sizeof d.name, "%s", name);
                struct vm_env e = { 0 };
                r = vm_env_load(c->root, true, &e, err);
                if (r >= 0)
                        r = vm_model_resolve(&d, &e.host, vm_env_caps(&e), &m, err);
                if (e.warning[0])
                        snprintf(warning, sizeof warning, "%s", e.warning);
                vm_env_done(&e);
        }
        if (r < 0)
                return r;
        /* OPS_WRITE holds the edit lock: compare with the file as it is now. */
        if (base) {
                _cleanup_free_ char *now = NULL;
                if ((r = file_read_all(vm.conf, OPS_CONF_MAX, &now, NULL)) < 0)
                        return phy_error_set(err, -r, "cannot read '%s': %s", vm.conf, strerror(-r));
                if (strcmp(now, base) != 0)
                        return phy_error_set_kind(err, PHY_ERR_CONFLICT, EBUSY, "'%s' was changed by someone else "
                                                  "while you edited it", vm.conf);
        }
        if ((r = file_write_atomic(vm.conf, text, strlen(text), 0644, err)) < 0)
                return r;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "saved", json_object_new_boolean(true));
        if (warning[0])
                json_object_object_add(o, "caps_warning", json_object_new_string(warning));
        *ret = o;
        return 0;
}

int ops_delete(const struct ops_ctx *c, const char *name, bool force, json_object **ret, phy_error *err) {
        int r;
        if ((r = ops_name_check("VM name", name, err)) < 0)
                return r;
        /* Linked clones reading its frozen disks protect it unless forced. */
        if ((r = store_delete_check(c->home, name, force, NULL, err)) < 0 || (r = run_vm_delete(c->home, name, err)) < 0)
                return r;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "deleted", json_object_new_string(name));
        *ret = o;
        return 0;
}

int ops_profiles(json_object **ret, phy_error *err) {
        size_t n;
        const struct vm_profile *p = vm_profile_list(&n);
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(p[i].name));
                json_object_object_add(o, "summary", json_object_new_string(p[i].summary));
                json_object_object_add(o, "cpus", json_object_new_int((int) p[i].cores));
                json_object_object_add(o, "memory", json_object_new_int64((int64_t) p[i].memory));
                json_object_object_add(o, "disk_size", json_object_new_int64((int64_t) p[i].disk_size));
                json_object_object_add(o, "disk_bus", json_object_new_string(vm_bus_name(p[i].disk_bus)));
                json_object_object_add(o, "disk_bus_with_drivers",
                                       json_object_new_string(vm_bus_name(p[i].disk_bus_drivers)));
                json_object_object_add(o, "nic", json_object_new_string(vm_nic_model_name(p[i].nic)));
                json_object_object_add(o, "gpu", json_object_new_string(vm_gpu_name(p[i].gpu)));
                json_object_object_add(o, "display", json_object_new_string(vm_display_name(p[i].display)));
                json_object_object_add(o, "tpm", json_object_new_string(vm_tpm_name(p[i].tpm)));
                json_object_object_add(o, "secure_boot", json_object_new_boolean(p[i].secure_boot));
                json_object_array_add(arr, o);
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "profiles", arr);
        *ret = o;
        (void) err;
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* The routes: method + path -> the library call the CLI makes -> status +
 * JSON.  No HTTP here (server.c), so the unit test calls api_handle(). */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "api.h"
#include "cleanup.h"
#include "fileio.h"
#include "paths.h"
#include "dev/dev.h"
#include "host/check.h"
#include "host/host.h"
#include "host/json.h"
#include "host/pci.h"
#include "net/net.h"
#include "qemu/caps.h"
#include "qemu/tools.h"
#include "run/run.h"
#include "store/store.h"
#include "vm/profile.h"
#include "vm/env.h"
#include "vm/vm.h"

DEFINE_CLEANUP_FUNC(json_object, json_object_put)
#define _cleanup_json_ _cleanup_(json_object_putp)

/* The HTTP status derives from the error's kind (phy_error_http_status),
 * not from its errno; "kind" travels with it so that phyllo exits alike. */
int api_error_reply(const phy_error *e, json_object **ret) {
        int code = e && e->code ? e->code : EIO;
        const char *name = strerrorname_np(code);
        json_object *inner = json_object_new_object();
        json_object_object_add(inner, "code", name ? json_object_new_string(name) : json_object_new_int(code));
        json_object_object_add(inner, "kind", json_object_new_string(phy_error_kind_name(phy_error_kind_of(e))));
        json_object_object_add(inner, "message", json_object_new_string(phy_error_message(e)));
        json_object *o = json_object_new_object();
        json_object_object_add(o, "error", inner);
        *ret = o;
        return phy_error_http_status(e);
}

static int fail(json_object **ret, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(json_object **ret, int code, const char *fmt, ...) {
        char buf[sizeof ((phy_error *) 0)->message];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        phy_error e = { 0 };
        /* The routes' own EINVAL judges the request: a usage error. */
        phy_error_set_kind(&e, code == EINVAL ? PHY_ERR_USAGE : PHY_ERR_NONE, code, "%s", buf);
        return api_error_reply(&e, ret);
}

bool api_is_events(const char *method, const char *path) {
        return strcmp(method, "GET") == 0 && strcmp(path, "/v1/events") == 0;
}


/* ---- request bodies ---- */

/* Parses an optional JSON object body; NULL body -> empty object. */
static int body_object(const char *body, size_t len, json_object **ret, json_object **reply) {
        if (!body || len == 0) {
                *ret = json_object_new_object();
                return 0;
        }
        json_tokener *tok = json_tokener_new_ex(32);
        if (!tok)
                return fail(reply, ENOMEM, "out of memory");
        json_object *o = json_tokener_parse_ex(tok, body, (int) len);
        enum json_tokener_error je = json_tokener_get_error(tok);
        size_t used = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        /* Anything but one whole object (trailing junk, truncation) is refused. */
        if (!o || je != json_tokener_success || used != len || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return fail(reply, EINVAL, "the request body is not a JSON object: %s",
                            je != json_tokener_success ? json_tokener_error_desc(je) : "expected {...}");
        }
        *ret = o;
        return 0;
}

/* Looks up an optional member of a type; wrong type is an error. */
static int member(json_object *o, const char *key, json_type t, json_object **ret, json_object **reply) {
        *ret = NULL;
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, t)) {
                static const char *const names[] = { [json_type_boolean] = "true or false",
                                                      [json_type_int] = "a whole number",
                                                      [json_type_string] = "a string" };
                return fail(reply, EINVAL, "'%s' in the request body must be %s", key,
                            (size_t) t < ELEMENTSOF(names) && names[t] ? names[t] : "of another type");
        }
        *ret = v;
        return 0;
}

static int member_bool(json_object *o, const char *key, bool *ret, json_object **reply) {
        json_object *v;
        int r = member(o, key, json_type_boolean, &v, reply);
        if (r == 0 && v)
                *ret = json_object_get_boolean(v);
        return r;
}

static int member_str(json_object *o, const char *key, const char **ret, json_object **reply) {
        json_object *v;
        int r = member(o, key, json_type_string, &v, reply);
        if (r == 0 && v)
                *ret = json_object_get_string(v);
        return r;
}

/* A size: a number of bytes or a string such as "4G" (as the CLI takes). */
static int member_size(json_object *o, const char *key, uint64_t *ret, json_object **reply) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        unsigned long long n = 0;
        bool good = false;
        if (json_object_is_type(v, json_type_int)) {
                int64_t x = json_object_get_int64(v);
                good = x > 0;
                n = (unsigned long long) x;
        } else if (json_object_is_type(v, json_type_string))
                good = parse_size(json_object_get_string(v), &n) >= 0 && n > 0;
        if (!good)
                return fail(reply, EINVAL, "invalid '%s' in the request body; use a number of bytes or a size "
                            "with K, M, G or T (e.g. \"4G\")", key);
        *ret = n;
        return 0;
}

static int member_uint(json_object *o, const char *key, unsigned max, unsigned *ret, json_object **reply) {
        json_object *v;
        int r = member(o, key, json_type_int, &v, reply);
        if (r || !v)
                return r;
        int64_t x = json_object_get_int64(v);
        if (x < 0 || x > max) {
                char m[32];
                snprintf(m, sizeof m, "%u", max);
                return fail(reply, EINVAL, "'%s' in the request body must be from 0 to %s", key, m);
        }
        *ret = (unsigned) x;
        return 0;
}

/* ---- routes ---- */

static int get_version(json_object **ret) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "version", json_object_new_string(PHYLLOME_VERSION));
        json_object_object_add(o, "api", json_object_new_string("v1"));
        *ret = o;
        return 200;
}

static int get_host(const struct api_ctx *c, json_object **ret) {
        phy_error err = { 0 };
        _cleanup_(host_facts_done) struct host_facts h = { 0 };
        if (host_facts_load(c->root, &h, &err) < 0)
                return api_error_reply(&err, ret);
        /* Tools are about the real host (as in `phyllo host check`). */
        bool real = !c->root || strcmp(c->root, "/") == 0;
        struct qemu_tools tools = { 0 };
        if (real && qemu_tools_find(&tools, &err) < 0) {
                qemu_tools_done(&tools);
                return api_error_reply(&err, ret);
        }
        _cleanup_(host_check_report_done) struct host_check_report rep = { 0 };
        int r = host_check_run(&h, real ? &tools : NULL, &rep, &err);
        qemu_tools_done(&tools);
        if (r < 0)
                return api_error_reply(&err, ret);
        /* The 3D display modes, as `phyllo host check` adds them (src/dev). */
        if ((r = dev_gl_modes_check(c->root, &h, &rep)) < 0)
                return fail(ret, -r, "cannot check the 3D display modes: %s", strerror(-r));
        *ret = host_check_report_to_json(&h, &rep);
        return 200;
}

static int get_host_devices(const struct api_ctx *c, json_object **ret) {
        phy_error err = { 0 };
        _cleanup_(host_pci_list_done) struct host_pci_list l = { 0 };
        if (host_pci_list(c->root, &l, &err) < 0)
                return api_error_reply(&err, ret);
        *ret = host_pci_list_to_json(&l);
        return 200;
}

/* One VM as `phyllo list --json` shows it. */
static json_object *vm_summary(const struct api_ctx *c, const struct vm_env *e, const char *name) {
        _cleanup_vm_def_ struct vm_def d = { 0 }, m = { 0 };
        phy_error e1 = { 0 };
        bool okay = vm_load_by_name(c->home, name, &d, &e1) >= 0 && vm_model_resolve(&d, &e->host, NULL, &m, &e1) >= 0;
        const char *state = "invalid";
        _cleanup_run_state_ struct run_state rs = { 0 };
        phy_error e2 = { 0 };
        if (okay)
                state = run_state_get(c->home, name, &rs, &e2) >= 0 ? run_state_name(rs.state) : "unknown";
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        if (d.profile)
                json_object_object_add(o, "profile", json_object_new_string(d.profile));
        if (okay) {
                json_object_object_add(o, "cpus", json_object_new_int((int) (m.cores * m.threads)));
                json_object_object_add(o, "memory", json_object_new_int64((int64_t) m.memory));
        } else
                json_object_object_add(o, "error", json_object_new_string(e1.message));
        json_object_object_add(o, "state", json_object_new_string(state));
        return o;
}

static int get_vms(const struct api_ctx *c, json_object **ret) {
        phy_error err = { 0 };
        _cleanup_strv_ strv names = { 0 };
        if (vm_list(c->home, &names, &err) < 0)
                return api_error_reply(&err, ret);
        struct vm_env e = { 0 };
        if (names.n && vm_env_load(c->root, false, &e, &err) < 0)
                return api_error_reply(&err, ret);
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < names.n; i++)
                json_object_array_add(arr, vm_summary(c, &e, names.v[i]));
        vm_env_done(&e);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "vms", arr);
        *ret = o;
        return 200;
}

/* Input files are recorded as absolute paths (the daemon's cwd is not the
 * client's, so relative ones are refused). */
static int absolute_input(const char *what, const char *path, char **ret, phy_error *err) {
        char buf[PATH_MAX];
        if (path[0] != '/')
                return phy_error_usage(err, "the %s '%s' must be an absolute path", what, path);
        if (!realpath(path, buf))
                return phy_error_set(err, errno, "cannot use the %s '%s': %s", what, path, strerror(errno));
        if (!(*ret = strdup(buf)))
                return phy_error_set(err, ENOMEM, "out of memory");
        return 0;
}

static int add_named(char **ret_name, const char *name, phy_error *err) {
        if (!(*ret_name = strdup(name)))
                return phy_error_set(err, ENOMEM, "out of memory");
        return 0;
}

/* POST /v1/vms: the body holds what `phyllo create` takes as options:
 * name, profile, cpus, memory, disk, no_disk, iso, drivers, display, gpu,
 * kernel, initrd, append, uefi, force. */
static int post_vms(const struct api_ctx *c, json_object *b, json_object **ret) {
        const char *name = NULL, *profile = NULL, *iso = NULL, *drivers = NULL, *kernel = NULL, *initrd = NULL,
                   *append = NULL, *display = NULL, *gpu = NULL;
        unsigned cpus = 0;
        uint64_t memory = 0, disk = 0;
        bool no_disk = false, force = false, uefi = false, have_uefi = json_object_object_get_ex(b, "uefi", NULL);
        int r;
        if ((r = member_str(b, "name", &name, ret)) || (r = member_str(b, "profile", &profile, ret)) ||
            (r = member_str(b, "iso", &iso, ret)) || (r = member_str(b, "drivers", &drivers, ret)) ||
            (r = member_str(b, "kernel", &kernel, ret)) || (r = member_str(b, "initrd", &initrd, ret)) ||
            (r = member_str(b, "append", &append, ret)) || (r = member_str(b, "display", &display, ret)) ||
            (r = member_str(b, "gpu", &gpu, ret)) || (r = member_uint(b, "cpus", 255, &cpus, ret)) ||
            (r = member_size(b, "memory", &memory, ret)) || (r = member_size(b, "disk", &disk, ret)) ||
            (r = member_bool(b, "no_disk", &no_disk, ret)) || (r = member_bool(b, "force", &force, ret)) ||
            (r = member_bool(b, "uefi", &uefi, ret)))
                return r;
        if (!name)
                return fail(ret, EINVAL, "'name' is required in the request body");
        if (!vm_name_valid(name))
                return fail(ret, EINVAL, "invalid VM name '%s'; use 1 to 64 of A-Z a-z 0-9 . _ -", name);
        if (!profile)
                return fail(ret, EINVAL, "'profile' is required; one of: %s", vm_profile_names());
        const struct vm_profile *prof = vm_profile_find(profile);
        if (!prof)
                return fail(ret, EINVAL, "unknown profile '%s'; use one of: %s", profile, vm_profile_names());
        if (json_object_object_get_ex(b, "cpus", NULL) && cpus < 1)
                return fail(ret, EINVAL, "invalid 'cpus'; use a whole number from 1 to 255");
        if (no_disk && disk)
                return fail(ret, EINVAL, "'disk' and 'no_disk' contradict each other");
        if ((initrd || append) && !kernel)
                return fail(ret, EINVAL, "'initrd' and 'append' need 'kernel'");

        _cleanup_vm_def_ struct vm_def d = { 0 };
        const char *allowed;
        int v;
        if (display) {
                if ((v = vm_display_from_name(display, &allowed)) < 0)
                        return fail(ret, EINVAL, "invalid 'display' '%s'; allowed: %s", display, allowed);
                d.display = (enum vm_display) v;
        }
        if (gpu) {
                if ((v = vm_gpu_from_name(gpu, &allowed)) < 0)
                        return fail(ret, EINVAL, "invalid 'gpu' '%s'; allowed: %s", gpu, allowed);
                d.gpu = (enum vm_gpu) v;
        }
        if (cpus) {
                d.cores = cpus;
                d.threads = 1;
        }
        d.memory = memory;
        if (have_uefi)
                d.firmware = uefi ? VM_FW_UEFI : VM_FW_BIOS;
        snprintf(d.name, sizeof d.name, "%s", name);

        phy_error err = { 0 };
        r = add_named(&d.profile, prof->name, &err);
        if (r >= 0 && !no_disk) {
                if (!(d.disks = calloc(1, sizeof *d.disks)))
                        r = phy_error_set(&err, ENOMEM, "out of memory");
                else {
                        d.n_disks = 1;
                        d.disks[0].size = disk ? disk : prof->disk_size;
                        if ((r = add_named(&d.disks[0].name, "system", &err)) >= 0)
                                r = add_named(&d.disks[0].path, "disk-system.qcow2", &err);
                }
        }
        const char *cd_names[2] = { "install", "drivers" }, *cd_paths[2] = { iso, drivers };
        for (size_t i = 0; r >= 0 && i < 2; i++) {
                if (!cd_paths[i])
                        continue;
                struct vm_cdrom *cd = realloc(d.cdroms, (d.n_cdroms + 1) * sizeof *cd);
                if (!cd) {
                        r = phy_error_set(&err, ENOMEM, "out of memory");
                        break;
                }
                d.cdroms = cd;
                cd = &d.cdroms[d.n_cdroms++];
                *cd = (struct vm_cdrom) { 0 };
                if ((r = add_named(&cd->name, cd_names[i], &err)) >= 0)
                        r = absolute_input(i ? "driver ISO" : "ISO", cd_paths[i], &cd->path, &err);
        }
        if (r >= 0 && kernel)
                r = absolute_input("kernel", kernel, &d.kernel, &err);
        if (r >= 0 && initrd)
                r = absolute_input("initrd", initrd, &d.initrd, &err);
        if (r >= 0 && append)
                r = add_named(&d.append, append, &err);
        if (r >= 0) {
                if (!(d.nics = calloc(1, sizeof *d.nics)))
                        r = phy_error_set(&err, ENOMEM, "out of memory");
                else {
                        d.n_nics = 1;
                        r = add_named(&d.nics[0].name, "net0", &err);
                }
        }
        if (r >= 0)
                r = vm_def_make_identity(&d, &err);
        if (r < 0)
                return api_error_reply(&err, ret);

        struct vm_env e = { 0 };
        _cleanup_vm_def_ struct vm_def m = { 0 };
        r = vm_env_load(c->root, true, &e, &err);
        if (r >= 0)
                r = vm_create(c->home, &d, &e.host, vm_env_caps(&e), e.tools.qemu_img, force, &err);
        if (r >= 0)
                r = vm_model_resolve(&d, &e.host, vm_env_caps(&e), &m, &err);
        vm_env_done(&e);
        if (r < 0)
                return api_error_reply(&err, ret);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "model", vm_def_to_json(&m));
        *ret = o;
        return 201;
}

/* GET /v1/vms/{name}: the file as written, the model (defaults filled), and
 * the reconciled run state. */
static int get_vm(const struct api_ctx *c, const char *name, json_object **ret) {
        phy_error err = { 0 };
        _cleanup_vm_def_ struct vm_def d = { 0 }, m = { 0 };
        if (vm_load_by_name(c->home, name, &d, &err) < 0)
                return api_error_reply(&err, ret);
        _cleanup_free_ char *conf = vm_conf_path(c->home, name), *text = NULL;
        int r = conf ? file_read_all(conf, API_BODY_MAX, &text, NULL) : -ENOMEM;
        if (r < 0) {
                phy_error_set(&err, -r, "cannot read '%s': %s", conf ? conf : name, strerror(-r));
                return api_error_reply(&err, ret);
        }
        struct vm_env e = { 0 };
        r = vm_env_load(c->root, true, &e, &err);
        if (r >= 0)
                r = vm_model_resolve(&d, &e.host, vm_env_caps(&e), &m, &err);
        vm_env_done(&e);
        if (r < 0)
                return api_error_reply(&err, ret);
        _cleanup_run_state_ struct run_state st = { 0 };
        if (run_state_get(c->home, name, &st, &err) < 0)
                return api_error_reply(&err, ret);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "config", json_object_new_string(text));
        json_object_object_add(o, "model", vm_def_to_json(&m));
        /* The text `phyllo show` prints, so the CLI prints it the same either way. */
        _cleanup_free_ char *model_text = vm_def_format(&m, true);
        if (!model_text)
                return fail(ret, ENOMEM, "out of memory");
        json_object_object_add(o, "model_text", json_object_new_string(model_text));
        json_object_object_add(o, "status", run_state_to_json(&st));
        *ret = o;
        return 200;
}

/* PUT /v1/vms/{name} {"config": "<vm.conf text>"}: checked as `phyllo edit`
 * checks it (parse, name, model) before it replaces the file. */
static int put_vm(const struct api_ctx *c, const char *name, json_object *b, json_object **ret) {
        const char *text = NULL;
        int r = member_str(b, "config", &text, ret);
        if (r)
                return r;
        if (!text)
                return fail(ret, EINVAL, "'config' (the definition text) is required in the request body");
        phy_error err = { 0 };
        _cleanup_vm_def_ struct vm_def cur = { 0 }, d = { 0 }, m = { 0 };
        if (vm_load_by_name(c->home, name, &cur, &err) < 0)
                return api_error_reply(&err, ret);
        _cleanup_free_ char *conf = vm_conf_path(c->home, name);
        if (!conf)
                return fail(ret, ENOMEM, "out of memory");
        r = vm_def_parse(conf, text, &d, &err);
        if (r >= 0 && d.name[0] && strcmp(d.name, name) != 0)
                r = phy_error_usage(&err, "%s: [vm] name cannot change from '%s' to '%s' here; create a "
                                  "new VM instead", conf, name, d.name);
        if (r >= 0)
                r = vm_def_check_save(&d, conf, &err);
        if (r >= 0) {
                snprintf(d.name, sizeof d.name, "%s", name);
                struct vm_env e = { 0 };
                r = vm_env_load(c->root, true, &e, &err);
                if (r >= 0)
                        r = vm_model_resolve(&d, &e.host, vm_env_caps(&e), &m, &err);
                vm_env_done(&e);
        }
        /* Replaced under the VM's edit lock, as every edit is. */
        _cleanup_close_ int lock = -1;
        if (r >= 0 && (r = vm_edit_lock(c->home, name, &lock, &err)) >= 0)
                r = file_write_atomic(conf, text, strlen(text), 0644, &err);
        if (r < 0)
                return api_error_reply(&err, ret);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "saved", json_object_new_boolean(true));
        *ret = o;
        return 200;
}

/* DELETE /v1/vms/{name} [{"force": true}]: as `phyllo delete [--force]`; the
 * linked clones reading the VM's frozen disks protect it unless forced. */
static int delete_vm(const struct api_ctx *c, const char *name, json_object *b, json_object **ret) {
        bool force = false;
        int r = member_bool(b, "force", &force, ret);
        if (r)
                return r;
        phy_error err = { 0 };
        if (store_delete_check(c->home, name, force, NULL, &err) < 0 || run_vm_delete(c->home, name, &err) < 0)
                return api_error_reply(&err, ret);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "deleted", json_object_new_string(name));
        *ret = o;
        return 200;
}

/* The state after an action, as `phyllo status --json` shows it. */
static int action_reply(const struct api_ctx *c, const char *name, const char *action, json_object *extra,
                        json_object **ret) {
        phy_error err = { 0 };
        _cleanup_run_state_ struct run_state st = { 0 };
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "action", json_object_new_string(action));
        if (run_state_get(c->home, name, &st, &err) >= 0)
                json_object_object_add(o, "state", json_object_new_string(run_state_name(st.state)));
        if (extra) {
                json_object_object_foreach(extra, k, v)
                        json_object_object_add(o, k, json_object_get(v));
        }
        *ret = o;
        return 200;
}

static int post_action(const struct api_ctx *c, const char *name, const char *action, json_object *b,
                       json_object **ret) {
        phy_error err = { 0 };
        _cleanup_json_ json_object *extra = json_object_new_object();
        bool paused = false, force = false, was = false;
        unsigned timeout = 60;
        const char *mode_s = NULL, *ended_by = NULL;
        enum run_stop_mode mode = RUN_STOP_DEFAULT;
        int r;
        if (!vm_name_valid(name))
                return fail(ret, EINVAL, "'%s' is not a valid VM name", name);
        bool is_start = strcmp(action, "start") == 0, is_stop = strcmp(action, "stop") == 0,
             is_restart = strcmp(action, "restart") == 0;
        if ((is_start && (r = member_bool(b, "paused", &paused, ret))) ||
            (is_stop && (r = member_bool(b, "force", &force, ret))) ||
            ((is_stop || is_restart) && (r = member_uint(b, "timeout", 31 * 24 * 3600, &timeout, ret))) ||
            (is_stop && (r = member_str(b, "mode", &mode_s, ret))))
                return r;
        if (mode_s && run_stop_mode_parse(mode_s, &mode) < 0)
                return fail(ret, EINVAL, "'mode' takes default, acpi or agent, not '%s'", mode_s);
        /* Unknown members are refused, so a misspelt option is not silently ignored. */
        json_object_object_foreach(b, k, v) {
                (void) v;
                if (!((is_start && strcmp(k, "paused") == 0) ||
                      (is_stop && (strcmp(k, "force") == 0 || strcmp(k, "mode") == 0)) ||
                      ((is_stop || is_restart) && strcmp(k, "timeout") == 0)))
                        return fail(ret, EINVAL, "unknown member '%s' in the request body for '%s'", k, action);
        }

        if (is_start || is_restart) {
                if (is_restart) {
                        if ((r = run_stop(c->home, name, timeout, false, &was, &err)) < 0)
                                return api_error_reply(&err, ret);
                        json_object_object_add(extra, "was_running", json_object_new_boolean(was));
                }
                _cleanup_strv_ strv warnings = { 0 };
                struct run_start_opts o = { .root = c->root, .home = c->home, .name = name, .paused = paused };
                if (run_start(&o, &warnings, &err) < 0)
                        return api_error_reply(&err, ret);
                json_object *w = json_object_new_array();
                for (size_t i = 0; i < warnings.n; i++)
                        json_object_array_add(w, json_object_new_string(warnings.v[i]));
                json_object_object_add(extra, "warnings", w);
        } else if (is_stop) {
                if (run_stop_via(c->home, name, timeout, force, mode, &was, &ended_by, &err) < 0)
                        return api_error_reply(&err, ret);
                json_object_object_add(extra, "was_running", json_object_new_boolean(was));
                if (ended_by)
                        json_object_object_add(extra, "stopped_by", json_object_new_string(ended_by));
        } else if (strcmp(action, "kill") == 0) {
                if (run_kill(c->home, name, &err) < 0)
                        return api_error_reply(&err, ret);
        } else if (strcmp(action, "pause") == 0) {
                if (run_pause(c->home, name, &err) < 0)
                        return api_error_reply(&err, ret);
        } else if (strcmp(action, "resume") == 0) {
                if (run_resume(c->home, name, &err) < 0)
                        return api_error_reply(&err, ret);
        } else if (strcmp(action, "reconcile") == 0) {
                /* The repairs a read never makes (run_reconcile): `phyllo status --repair`. */
                _cleanup_vm_def_ struct vm_def d = { 0 };
                if (vm_load_by_name(c->home, name, &d, &err) < 0 || run_reconcile(c->home, name, NULL, &err) < 0)
                        return api_error_reply(&err, ret);
        } else
                return fail(ret, ENOENT, "no action '%s'; use start, stop, kill, pause, resume, restart or reconcile",
                            action);
        return action_reply(c, name, action, extra, ret);
}

static int get_status(const struct api_ctx *c, const char *name, json_object **ret) {
        phy_error err = { 0 };
        _cleanup_vm_def_ struct vm_def d = { 0 };
        if (vm_load_by_name(c->home, name, &d, &err) < 0)
                return api_error_reply(&err, ret);
        _cleanup_run_state_ struct run_state st = { 0 };
        if (run_state_get(c->home, name, &st, &err) < 0)
                return api_error_reply(&err, ret);
        /* As `phyllo status --json`: NICs, and the guest's addresses when its
         * agent answers.  The NICs as the VM runs them: the resolved model
         * (a windows11 NIC left unset is the profile's e1000e), or the
         * definition when it does not resolve on this host now. */
        _cleanup_free_ char *rd = NULL;
        if (run_state_active(st.state) && run_dir_path(c->home, name, &rd, &err) < 0)
                phy_error_clear(&err);
        _cleanup_vm_def_ struct vm_def m = { 0 };
        struct vm_env e = { 0 };
        phy_error e2 = { 0 };
        bool resolved = vm_env_load(c->root, false, &e, &e2) >= 0 && vm_model_resolve(&d, &e.host, NULL, &m, &e2) >= 0;
        vm_env_done(&e);
        json_object *net = net_status_json(resolved ? &m : &d, rd), *nets = NULL, *gifs = NULL;
        json_object_object_get_ex(net, "networks", &nets);
        json_object_object_get_ex(net, "guest_interfaces", &gifs);
        json_object *o = run_state_to_json(&st);
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "networks", json_object_get(nets));
        if (gifs)
                json_object_object_add(o, "guest_interfaces", json_object_get(gifs));
        json_object_put(net);
        *ret = o;
        return 200;
}

/* ---- storage (src/store): snapshots, clones, disks ---- */

static int refuse_unknown(json_object *b, const char *const *known, const char *what, json_object **ret) {
        json_object_object_foreach(b, k, v) {
                (void) v;
                bool good = false;
                for (size_t i = 0; known[i] && !good; i++)
                        good = strcmp(k, known[i]) == 0;
                if (!good)
                        return fail(ret, EINVAL, "unknown member '%s' in the request body for %s", k, what);
        }
        return 0;
}

static int name_valid_or_fail(const char *what, const char *n, json_object **ret) {
        if (!n)
                return fail(ret, EINVAL, "'%s' is required in the request body", what);
        if (!vm_name_valid(n))
                return fail(ret, EINVAL, "invalid %s '%s'; use 1 to 64 of A-Z a-z 0-9 . _ -", what, n);
        return 0;
}

static json_object *done_reply(const char *name, const char *key, const char *value) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, key, json_object_new_string(value));
        return o;
}

static int get_list(int r, json_object *a, const phy_error *err, const char *key, json_object **ret) {
        if (r < 0)
                return api_error_reply(err, ret);
        json_object *o = json_object_new_object();
        json_object_object_add(o, key, a);
        *ret = o;
        return 200;
}

/* /v1/vms/{name}/snapshots[/{snap}[/revert]] */
static int route_snapshots(const struct api_ctx *c, const char *method, const char *name, const char *rest,
                           json_object *b, json_object **ret) {
        phy_error err = { 0 };
        int r;
        if (!*rest) {
                if (strcmp(method, "GET") == 0) {
                        json_object *a = NULL;
                        r = store_snapshot_list(c->home, name, &a, &err);
                        return get_list(r, a, &err, "snapshots", ret);
                }
                if (strcmp(method, "POST") != 0)
                        return fail(ret, EOPNOTSUPP, "method %s is not allowed on snapshots", method);
                const char *snap = NULL;
                static const char *const known[] = { "name", NULL };
                if ((r = member_str(b, "name", &snap, ret)) || (r = refuse_unknown(b, known, "a snapshot", ret)) ||
                    (r = name_valid_or_fail("snapshot name", snap, ret)))
                        return r;
                if (store_snapshot_create(c->home, name, snap, NULL, &err) < 0)
                        return api_error_reply(&err, ret);
                *ret = done_reply(name, "snapshot", snap);
                return 201;
        }
        char snap[VM_NAME_MAX + 1];
        const char *slash = strchr(rest, '/');
        size_t n = slash ? (size_t) (slash - rest) : strlen(rest);
        if (n == 0 || n > VM_NAME_MAX)
                return fail(ret, ENOENT, "no such snapshot resource for VM '%s'", name);
        memcpy(snap, rest, n);
        snap[n] = '\0';
        if (slash && strcmp(slash, "/revert") == 0) {
                if (strcmp(method, "POST") != 0)
                        return fail(ret, EOPNOTSUPP, "method %s is not allowed on a revert", method);
                bool stop = false;
                static const char *const known[] = { "stop", NULL };
                if ((r = member_bool(b, "stop", &stop, ret)) || (r = refuse_unknown(b, known, "a revert", ret)))
                        return r;
                struct run_start_opts o = { .root = c->root, .home = c->home, .name = name };
                if (store_snapshot_revert(c->home, name, snap, stop, &o, NULL, &err) < 0)
                        return api_error_reply(&err, ret);
                *ret = done_reply(name, "reverted_to", snap);
                return 200;
        }
        if (slash)
                return fail(ret, ENOENT, "no such snapshot resource for VM '%s'", name);
        if (strcmp(method, "DELETE") != 0)
                return fail(ret, EOPNOTSUPP, "method %s is not allowed on a snapshot", method);
        if (store_snapshot_delete(c->home, name, snap, NULL, &err) < 0)
                return api_error_reply(&err, ret);
        *ret = done_reply(name, "deleted_snapshot", snap);
        return 200;
}

/* POST /v1/vms/{name}/clone {"name": DST, "full": false, "tpm": "fresh"|"copy"} */
static int post_clone(const struct api_ctx *c, const char *name, json_object *b, json_object **ret) {
        const char *dst = NULL, *tpm_s = NULL;
        bool full = false;
        int r;
        static const char *const known[] = { "name", "full", "tpm", NULL };
        if ((r = member_str(b, "name", &dst, ret)) || (r = member_bool(b, "full", &full, ret)) ||
            (r = member_str(b, "tpm", &tpm_s, ret)) || (r = refuse_unknown(b, known, "a clone", ret)) ||
            (r = name_valid_or_fail("name", dst, ret)))
                return r;
        enum store_tpm_mode tpm = STORE_TPM_DEFAULT;
        if (tpm_s && strcmp(tpm_s, "fresh") == 0)
                tpm = STORE_TPM_FRESH;
        else if (tpm_s && strcmp(tpm_s, "copy") == 0)
                tpm = STORE_TPM_COPY;
        else if (tpm_s)
                return fail(ret, EINVAL, "invalid 'tpm' '%s'; use fresh or copy", tpm_s);
        phy_error err = { 0 };
        if (store_clone(c->home, name, dst, full, tpm, NULL, &err) < 0)
                return api_error_reply(&err, ret);
        *ret = done_reply(name, "clone", dst);
        json_object_object_add(*ret, "full", json_object_new_boolean(full));
        return 201;
}

/* /v1/vms/{name}/disks[/{disk}] */
static int route_disks(const struct api_ctx *c, const char *method, const char *name, const char *rest,
                       json_object *b, json_object **ret) {
        phy_error err = { 0 };
        int r;
        if (*rest) {
                if (strcmp(method, "DELETE") != 0)
                        return fail(ret, EOPNOTSUPP, "method %s is not allowed on a disk", method);
                if (strchr(rest, '/'))
                        return fail(ret, ENOENT, "no such disk resource for VM '%s'", name);
                bool keep = false;
                static const char *const known[] = { "keep_file", NULL };
                if ((r = member_bool(b, "keep_file", &keep, ret)) || (r = refuse_unknown(b, known, "a disk removal", ret)))
                        return r;
                if (store_disk_remove(c->home, name, rest, keep, &err) < 0)
                        return api_error_reply(&err, ret);
                *ret = done_reply(name, "removed_disk", rest);
                return 200;
        }
        if (strcmp(method, "GET") == 0) {
                json_object *a = NULL;
                r = store_disk_list(c->home, name, NULL, &a, &err);
                return get_list(r, a, &err, "disks", ret);
        }
        if (strcmp(method, "POST") != 0)
                return fail(ret, EOPNOTSUPP, "method %s is not allowed on disks", method);
        /* As `phyllo disk add`: size or image, bus, name, key_file (absolute paths). */
        struct store_disk_add o = { 0 };
        const char *image = NULL, *bus = NULL, *key = NULL;
        static const char *const known[] = { "size", "image", "bus", "name", "key_file", NULL };
        if ((r = member_size(b, "size", &o.size, ret)) || (r = member_str(b, "image", &image, ret)) ||
            (r = member_str(b, "bus", &bus, ret)) || (r = member_str(b, "name", &o.disk, ret)) ||
            (r = member_str(b, "key_file", &key, ret)) || (r = refuse_unknown(b, known, "a disk", ret)))
                return r;
        if (!!o.size == !!image)
                return fail(ret, EINVAL, "give either 'size' or 'image' in the request body");
        static const struct { const char *n; int v; } buses[] = {
                { "virtio", VM_BUS_VIRTIO }, { "scsi", VM_BUS_SCSI }, { "sata", VM_BUS_SATA }, { "nvme", VM_BUS_NVME },
        };
        if (bus) {
                o.bus = -1;
                for (size_t i = 0; i < ELEMENTSOF(buses); i++)
                        if (strcmp(bus, buses[i].n) == 0)
                                o.bus = buses[i].v;
                if (o.bus < 0)
                        return fail(ret, EINVAL, "invalid 'bus' '%s'; use virtio, scsi, sata or nvme", bus);
        }
        _cleanup_free_ char *image_abs = NULL, *key_abs = NULL, *disk = NULL;
        if ((image && absolute_input("image", image, &image_abs, &err) < 0) ||
            (key && absolute_input("key file", key, &key_abs, &err) < 0))
                return api_error_reply(&err, ret);
        o.image = image_abs;
        o.key_file = key_abs;
        bool pending = false;
        if (store_disk_add(c->home, name, &o, NULL, &disk, &pending, &err) < 0)
                return api_error_reply(&err, ret);
        *ret = done_reply(name, "disk", disk ? disk : "");
        json_object_object_add(*ret, "pending", json_object_new_boolean(pending));
        return 201;
}

static int method_not_allowed(const char *method, const char *path, json_object **ret) {
        return fail(ret, EOPNOTSUPP, "method %s is not allowed on '%s'; see docs/openapi.yaml", method, path);
}

int api_handle(const struct api_ctx *c, const char *method, const char *path, const char *body, size_t body_len,
               json_object **ret) {
        *ret = NULL;
        bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0, put = strcmp(method, "PUT") == 0,
             del = strcmp(method, "DELETE") == 0;
        if (strcmp(path, "/v1/version") == 0)
                return get ? get_version(ret) : method_not_allowed(method, path, ret);
        if (strcmp(path, "/v1/host") == 0)
                return get ? get_host(c, ret) : method_not_allowed(method, path, ret);
        if (strcmp(path, "/v1/host/devices") == 0)
                return get ? get_host_devices(c, ret) : method_not_allowed(method, path, ret);

        _cleanup_json_ json_object *b = NULL;
        int r;
        if (strcmp(path, "/v1/vms") == 0) {
                if (get)
                        return get_vms(c, ret);
                if (!post)
                        return method_not_allowed(method, path, ret);
                if ((r = body_object(body, body_len, &b, ret)))
                        return r;
                return post_vms(c, b, ret);
        }
        if (strncmp(path, "/v1/vms/", 8) == 0) {
                /* /v1/vms/{name} or /v1/vms/{name}/{action}: names never hold '/'. */
                const char *rest = path + 8, *slash = strchr(rest, '/');
                char name[VM_NAME_MAX + 1];
                size_t n = slash ? (size_t) (slash - rest) : strlen(rest);
                if (n == 0 || n > VM_NAME_MAX)
                        return fail(ret, n ? EINVAL : ENOENT, "no such resource '%s'", path);
                memcpy(name, rest, n);
                name[n] = '\0';
                if (!vm_name_valid(name))
                        return fail(ret, EINVAL, "'%s' is not a valid VM name; use 1 to 64 of A-Z a-z 0-9 . _ -",
                                    name);
                if (slash) {
                        const char *action = slash + 1;
                        if (strcmp(action, "status") == 0)
                                return get ? get_status(c, name, ret) : method_not_allowed(method, path, ret);
                        bool snaps = strncmp(action, "snapshots", 9) == 0 && (!action[9] || action[9] == '/'),
                             disks = strncmp(action, "disks", 5) == 0 && (!action[5] || action[5] == '/');
                        if (snaps || disks || strcmp(action, "clone") == 0) {
                                if (!get && (r = body_object(body, body_len, &b, ret)))
                                        return r;
                                if (snaps)
                                        return route_snapshots(c, method, name, action[9] ? action + 10 : "", b, ret);
                                if (disks)
                                        return route_disks(c, method, name, action[5] ? action + 6 : "", b, ret);
                                return post ? post_clone(c, name, b, ret) : method_not_allowed(method, path, ret);
                        }
                        if (strchr(action, '/'))
                                return fail(ret, ENOENT, "no such resource '%s'", path);
                        if (!post)
                                return method_not_allowed(method, path, ret);
                        if ((r = body_object(body, body_len, &b, ret)))
                                return r;
                        return post_action(c, name, action, b, ret);
                }
                if (get)
                        return get_vm(c, name, ret);
                if (del) {
                        if ((r = body_object(body, body_len, &b, ret)))
                                return r;
                        return delete_vm(c, name, b, ret);
                }
                if (!put)
                        return method_not_allowed(method, path, ret);
                if ((r = body_object(body, body_len, &b, ret)))
                        return r;
                return put_vm(c, name, b, ret);
        }
        return fail(ret, ENOENT, "no such resource '%s'; the API is described in docs/openapi.yaml", path);
}

/* SPDX-License-Identifier: MIT */
/* The routes: method + path -> the body's members -> one verb of src/ops
 * (the one the CLI's command runs) -> status + JSON.  No HTTP here
 * (server.c), so the unit test calls api_handle(); and no logic beyond that
 * translation: the route table below is the whole API (docs/openapi.json). */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "api.h"
#include "cleanup.h"
#include "error-json.h"
#include "fileio.h"
#include "json-cleanup.h"
#include "ops/ops.h"
#include "vm/vm.h"

/* The HTTP status derives from the error's kind (phy_error_http_status),
 * not from its errno; "kind" travels with it so that phyllo exits alike. */
int api_error_reply(const phy_error *e, json_object **ret) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "error", phy_error_to_json(e));
        *ret = o;
        return phy_error_http_status(e);
}

int api_failv(json_object **ret, int code, const char *fmt, va_list ap) {
        char buf[sizeof ((phy_error *) 0)->message];
        vsnprintf(buf, sizeof buf, fmt, ap);
        phy_error e = { 0 };
        /* The API's own EINVAL judges the request: a usage error. */
        phy_error_set_kind(&e, code == EINVAL ? PHY_ERR_USAGE : PHY_ERR_NONE, code, "%s", buf);
        return api_error_reply(&e, ret);
}

int api_fail(json_object **ret, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int status = api_failv(ret, code, fmt, ap);
        va_end(ap);
        return status;
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
                return api_fail(reply, ENOMEM, "out of memory");
        json_object *o = json_tokener_parse_ex(tok, body, (int) len);
        enum json_tokener_error je = json_tokener_get_error(tok);
        size_t used = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        /* Anything but one whole object (trailing junk, truncation) is refused. */
        if (!o || je != json_tokener_success || used != len || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return api_fail(reply, EINVAL, "the request body is not a JSON object: %s",
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
                return api_fail(reply, EINVAL, "'%s' in the request body must be %s", key,
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

/* A size: a number of bytes or a string such as "4G" (as the CLI takes:
 * a bare number in a string is in units of 1 << bare_shift, MiB of memory,
 * GiB of disk). */
static int member_size_unit(json_object *o, const char *key, unsigned bare_shift, uint64_t *ret,
                            json_object **reply) {
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
                good = parse_size_unit(json_object_get_string(v), bare_shift, &n) >= 0 && n > 0;
        if (!good)
                return api_fail(reply, EINVAL, "invalid '%s' in the request body; use a number of bytes or a size "
                            "with K, M, G or T (e.g. \"4G\")", key);
        *ret = n;
        return 0;
}

static int member_size(json_object *o, const char *key, uint64_t *ret, json_object **reply) {
        return member_size_unit(o, key, 0, ret, reply);
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
                return api_fail(reply, EINVAL, "'%s' in the request body must be from 0 to %s", key, m);
        }
        *ret = (unsigned) x;
        return 0;
}

/* forwards: an array of strings. */
static int member_strv(json_object *o, const char *key, strv *ret, json_object **reply) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        bool good = json_object_is_type(v, json_type_array);
        for (size_t i = 0; good && i < json_object_array_length(v); i++) {
                json_object *s = json_object_array_get_idx(v, i);
                good = json_object_is_type(s, json_type_string);
                if (good && strv_push(ret, json_object_get_string(s)) < 0)
                        return api_fail(reply, ENOMEM, "out of memory");
        }
        if (!good)
                return api_fail(reply, EINVAL, "'%s' in the request body must be an array of strings", key);
        return 0;
}

static int required(const char *key, const char *v, json_object **reply) {
        return v ? 0 : api_fail(reply, EINVAL, "'%s' is required in the request body", key);
}

/* ---- the calls: one per route ---- */

struct call {
        const struct api_ctx *c;
        struct ops_ctx oc;
        const char *path;
        char p[2][256];         /* the {…} segments of the path, in order */
        json_object *b;         /* the body (an empty object when none) */
        json_object **ret;
};

/* The verb's result: 0 and *ret set, or its error. */
static int answer(struct call *q, int r, const phy_error *err, int status) {
        return r < 0 ? api_error_reply(err, q->ret) : status;
}

#define CALL(status, expr)                                              \
        do {                                                            \
                phy_error err_ = { 0 };                                 \
                phy_error *err = &err_;                                 \
                int r_ = (expr);                                        \
                return answer(q, r_, err, (status));                    \
        } while (0)

static int get_version(struct call *q) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "version", json_object_new_string(PHYLLOME_VERSION));
        json_object_object_add(o, "api", json_object_new_string("v1"));
        *q->ret = o;
        return 200;
}

static int get_host(struct call *q) { CALL(200, ops_host_check(&q->oc, q->ret, err)); }
static int get_host_devices(struct call *q) { CALL(200, ops_host_devices(&q->oc, q->ret, err)); }
static int get_profiles(struct call *q) { CALL(200, ops_profiles(q->ret, err)); }
static int get_mdev_types(struct call *q) { CALL(200, ops_mdev_types(&q->oc, q->p[0], q->ret, err)); }

static int post_sriov(struct call *q) {
        unsigned n = 0;
        int r;
        if ((r = member_uint(q->b, "count", 4096, &n, q->ret)))
                return r;
        CALL(200, ops_sriov(&q->oc, q->p[0], n, q->ret, err));
}

static int post_mdev(struct call *q) {
        const char *parent = NULL, *type = NULL, *uuid = NULL;
        int r;
        if ((r = member_str(q->b, "parent", &parent, q->ret)) || (r = member_str(q->b, "type", &type, q->ret)) ||
            (r = member_str(q->b, "uuid", &uuid, q->ret)) || (r = required("parent", parent, q->ret)) ||
            (r = required("type", type, q->ret)))
                return r;
        CALL(201, ops_mdev_create(&q->oc, parent, type, uuid, q->ret, err));
}

static int delete_mdev(struct call *q) { CALL(200, ops_mdev_remove(&q->oc, q->p[0], q->ret, err)); }

static int get_vms(struct call *q) { CALL(200, ops_list(&q->oc, q->ret, err)); }

/* POST /v1/vms's "install": {"answer_name", "answer", "delivery", "kernel",
 * "initrd", "append"} (docs/api.md): an unattended install whose answer file
 * is given whole; phyllod makes it from "unattended" (catalog-routes.c). */
static int member_install(json_object *b, struct ops_install *in, bool *ret_have, json_object **reply) {
        json_object *o;
        int r;
        *ret_have = false;
        if (!json_object_object_get_ex(b, "install", &o) || json_object_is_type(o, json_type_null))
                return 0;
        if (!json_object_is_type(o, json_type_object))
                return api_fail(reply, EINVAL, "'install' in the request body must be an object");
        static const char *const known[] = { "answer_name", "answer", "delivery", "kernel", "initrd", "append" };
        json_object_object_foreach(o, k, v) {
                (void) v;
                bool good = false;
                for (size_t i = 0; i < ELEMENTSOF(known) && !good; i++)
                        good = strcmp(k, known[i]) == 0;
                if (!good)
                        return api_fail(reply, EINVAL, "unknown member '%s' in 'install'", k);
        }
        if ((r = member_str(o, "answer_name", &in->answer_name, reply)) || (r = member_str(o, "answer", &in->answer, reply)) ||
            (r = member_str(o, "delivery", &in->delivery, reply)) || (r = member_str(o, "kernel", &in->kernel, reply)) ||
            (r = member_str(o, "initrd", &in->initrd, reply)) || (r = member_str(o, "append", &in->append, reply)))
                return r;
        in->answer_len = in->answer ? strlen(in->answer) : 0;
        *ret_have = true;
        return 0;
}

/* POST /v1/vms: the members are `phyllo create`'s options. */
static int post_vms(struct call *q) {
        _cleanup_strv_ strv forwards = { 0 };
        struct ops_create o = { .uefi = -1, .usb_redirect = -1 };
        json_object *b = q->b, **ret = q->ret;
        unsigned redirect = 0;
        bool uefi = false;
        int r;
        if ((r = member_str(b, "name", &o.name, ret)) || (r = member_str(b, "profile", &o.profile, ret)) ||
            (r = member_str(b, "iso", &o.iso, ret)) || (r = member_str(b, "drivers", &o.drivers, ret)) ||
            (r = member_str(b, "kernel", &o.kernel, ret)) || (r = member_str(b, "initrd", &o.initrd, ret)) ||
            (r = member_str(b, "append", &o.append, ret)) || (r = member_str(b, "display", &o.display, ret)) ||
            (r = member_str(b, "gpu", &o.gpu, ret)) || (r = member_uint(b, "cpus", 255, &o.cpus, ret)) ||
            (r = member_str(b, "disk_bus", &o.disk_bus, ret)) || (r = member_str(b, "nic", &o.nic, ret)) ||
            (r = member_size_unit(b, "memory", SIZE_MIB, &o.memory, ret)) ||
            (r = member_size_unit(b, "disk", SIZE_GIB, &o.disk, ret)) ||
            (r = member_bool(b, "no_disk", &o.no_disk, ret)) || (r = member_bool(b, "force", &o.force, ret)) ||
            (r = member_bool(b, "uefi", &uefi, ret)) || (r = member_str(b, "net", &o.net, ret)) ||
            (r = member_strv(b, "forwards", &forwards, ret)) ||
            (r = member_uint(b, "usb_redirect", VM_USB_REDIRECT_MAX, &redirect, ret)) ||
            (r = required("name", o.name, ret)))
                return r;
        if (json_object_object_get_ex(b, "cpus", NULL) && o.cpus < 1)
                return api_fail(ret, EINVAL, "invalid 'cpus'; use a whole number from 1 to 255");
        if (json_object_object_get_ex(b, "uefi", NULL))
                o.uefi = uefi;
        if (json_object_object_get_ex(b, "usb_redirect", NULL))
                o.usb_redirect = (int) redirect;
        o.forwards = forwards;
        struct ops_install install = { 0 };
        bool have_install;
        if ((r = member_install(b, &install, &have_install, ret)))
                return r;
        if (have_install)
                o.install = &install;
        CALL(201, ops_create(&q->oc, &o, q->ret, err));
}

static int get_vm(struct call *q) { CALL(200, ops_show(&q->oc, q->p[0], q->ret, err)); }

/* PUT /v1/vms/{name} {"config": TEXT, "source": NAME, "base": TEXT}: `phyllo edit`. */
static int put_vm(struct call *q) {
        const char *text = NULL, *source = NULL, *base = NULL;
        int r;
        if ((r = member_str(q->b, "config", &text, q->ret)) || (r = member_str(q->b, "source", &source, q->ret)) ||
            (r = member_str(q->b, "base", &base, q->ret)))
                return r;
        if (!text)
                return api_fail(q->ret, EINVAL, "'config' (the definition text) is required in the request body");
        CALL(200, ops_set_config(&q->oc, q->p[0], text, source, base, q->ret, err));
}

static int delete_vm(struct call *q) {
        bool force = false;
        int r = member_bool(q->b, "force", &force, q->ret);
        if (r)
                return r;
        CALL(200, ops_delete(&q->oc, q->p[0], force, q->ret, err));
}

static int get_status(struct call *q) { CALL(200, ops_status(&q->oc, q->p[0], q->ret, err)); }
static int get_logs(struct call *q) { CALL(200, ops_logs(&q->oc, q->p[0], q->ret, err)); }
static int get_display(struct call *q) { CALL(200, ops_display(&q->oc, q->p[0], q->ret, err)); }
static int get_screenshot(struct call *q) { CALL(200, ops_screenshot(&q->oc, q->p[0], q->ret, err)); }

/* "qemu" names a binary to run: phyllo's own (in-process) request only;
 * phyllod runs no program on a caller's word. */
static int member_qemu(struct call *q, const char **ret) {
        int r = member_str(q->b, "qemu", ret, q->ret);
        if (r == 0 && *ret && !q->c->local)
                return api_fail(q->ret, EINVAL, "'qemu' names a binary for phyllo's own process; phyllod probes "
                            "only the QEMU it finds (run the command without a daemon: PHYLLOME_NO_DAEMON=1)");
        return r;
}

static int post_argv(struct call *q) {
        struct ops_argv_opts o = { 0 };
        int r;
        if ((r = member_bool(q->b, "paused", &o.paused, q->ret)) || (r = member_bool(q->b, "tcg", &o.tcg, q->ret)) ||
            (r = member_qemu(q, &o.qemu)) || (r = member_str(q->b, "boot_once", &o.boot_once, q->ret)))
                return r;
        CALL(200, ops_argv(&q->oc, q->p[0], &o, q->ret, err));
}

static int get_caps(struct call *q) {
        struct ops_caps_opts o = { 0 };
        CALL(200, ops_caps(&q->oc, &o, q->ret, err));
}

static int post_caps(struct call *q) {
        struct ops_caps_opts o = { 0 };
        int r;
        if ((r = member_bool(q->b, "refresh", &o.refresh, q->ret)) || (r = member_qemu(q, &o.qemu)))
                return r;
        CALL(200, ops_caps(&q->oc, &o, q->ret, err));
}

/* Without the Upgrade (server.c answers that), the console is refused. */
static int get_console(struct call *q) {
        return api_fail(q->ret, EINVAL, "the console of VM '%s' is a byte stream: send 'Connection: Upgrade' and "
                    "'Upgrade: %s' (docs/api.md)", q->p[0], API_CONSOLE_PROTOCOL);
}

/* start, stop, kill, pause, resume, restart, reconcile: the action is the last segment. */
static int post_action(struct call *q) {
        const char *slash = strrchr(q->path, '/');
        struct ops_action a = { .action = slash + 1, .timeout = 60 };
        json_object *b = q->b, **ret = q->ret;
        int r;
        if ((r = member_bool(b, "paused", &a.paused, ret)) || (r = member_bool(b, "force", &a.force, ret)) ||
            (r = member_uint(b, "timeout", 31 * 24 * 3600, &a.timeout, ret)) ||
            (r = member_str(b, "mode", &a.mode, ret)) || (r = member_str(b, "boot_once", &a.boot_once, ret)))
                return r;
        CALL(200, ops_act(&q->oc, q->p[0], &a, q->ret, err));
}

static int post_wait(struct call *q) {
        const char *state = NULL;
        unsigned timeout = 0;
        bool have = json_object_object_get_ex(q->b, "timeout", NULL);
        int r;
        if ((r = member_str(q->b, "for", &state, q->ret)) || (r = required("for", state, q->ret)) ||
            (r = member_uint(q->b, "timeout", 31 * 24 * 3600, &timeout, q->ret)))
                return r;
        CALL(200, ops_wait(&q->oc, q->p[0], state, have ? (int) timeout : -1, q->ret, err));
}

/* ---- storage ---- */

static int get_disks(struct call *q) { CALL(200, ops_disk_list(&q->oc, q->p[0], q->ret, err)); }

static int post_disk(struct call *q) {
        struct ops_disk_add o = { 0 };
        json_object *b = q->b, **ret = q->ret;
        int r;
        if ((r = member_size_unit(b, "size", SIZE_GIB, &o.size, ret)) || (r = member_str(b, "image", &o.image, ret)) ||
            (r = member_str(b, "bus", &o.bus, ret)) || (r = member_str(b, "name", &o.disk, ret)) ||
            (r = member_str(b, "key_file", &o.key_file, ret)) || (r = member_bool(b, "key_prompt", &o.key_prompt, ret)))
                return r;
        if (!!o.size == !!o.image)
                return api_fail(ret, EINVAL, "give either 'size' or 'image' in the request body");
        CALL(201, ops_disk_add(&q->oc, q->p[0], &o, q->ret, err));
}

static int post_disk_resize(struct call *q) {
        uint64_t size = 0;
        bool shrink = false;
        int r;
        if ((r = member_size_unit(q->b, "size", SIZE_GIB, &size, q->ret)) || (r = member_bool(q->b, "shrink", &shrink, q->ret)))
                return r;
        if (!size)
                return api_fail(q->ret, EINVAL, "'size' is required in the request body");
        CALL(200, ops_disk_resize(&q->oc, q->p[0], q->p[1], size, shrink, q->ret, err));
}

static int delete_disk(struct call *q) {
        bool keep = false;
        int r = member_bool(q->b, "keep_file", &keep, q->ret);
        if (r)
                return r;
        CALL(200, ops_disk_remove(&q->oc, q->p[0], q->p[1], keep, q->ret, err));
}

static int get_snapshots(struct call *q) { CALL(200, ops_snapshot_list(&q->oc, q->p[0], q->ret, err)); }

static int post_snapshot(struct call *q) {
        const char *snap = NULL;
        int r;
        if ((r = member_str(q->b, "name", &snap, q->ret)) || (r = required("name", snap, q->ret)))
                return r;
        CALL(201, ops_snapshot_create(&q->oc, q->p[0], snap, q->ret, err));
}

static int post_revert(struct call *q) {
        bool stop = false;
        int r = member_bool(q->b, "stop", &stop, q->ret);
        if (r)
                return r;
        CALL(200, ops_snapshot_revert(&q->oc, q->p[0], q->p[1], stop, q->ret, err));
}

static int delete_snapshot(struct call *q) { CALL(200, ops_snapshot_delete(&q->oc, q->p[0], q->p[1], q->ret, err)); }

static int post_clone(struct call *q) {
        const char *dst = NULL, *tpm = NULL;
        bool full = false;
        int r;
        if ((r = member_str(q->b, "name", &dst, q->ret)) || (r = member_bool(q->b, "full", &full, q->ret)) ||
            (r = member_str(q->b, "tpm", &tpm, q->ret)) || (r = required("name", dst, q->ret)))
                return r;
        CALL(201, ops_clone(&q->oc, q->p[0], dst, full, tpm, q->ret, err));
}

/* A migration's progress as "event: migrate" on /v1/events (the CLI's
 * progress bar through phyllod): {"name", "phase", "done", "total"}. */
struct migrate_events {
        const struct api_ctx *c;
        const char *name;
};

static void migrate_event(const char *phase, uint64_t done, uint64_t total, void *userdata) {
        const struct migrate_events *m = userdata;
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(m->name));
        json_object_object_add(o, "phase", json_object_new_string(phase));
        json_object_object_add(o, "done", json_object_new_int64((int64_t) done));
        json_object_object_add(o, "total", json_object_new_int64((int64_t) total));
        m->c->publish(m->c->events, "migrate", o);
}

static int post_migrate(struct call *q) {
        struct ops_migrate o = { 0 };
        struct migrate_events me = { q->c, q->p[0] };
        if (q->c->events && q->c->publish) {
                o.progress = migrate_event;
                o.userdata = &me;
        }
        unsigned timeout = 0;
        int r;
        if ((r = member_str(q->b, "dest_home", &o.dest_home, q->ret)) ||
            (r = member_str(q->b, "address", &o.address, q->ret)) ||
            (r = member_size(q->b, "max_bandwidth", &o.max_bandwidth, q->ret)) ||
            (r = member_uint(q->b, "timeout", 86400, &timeout, q->ret)) ||
            (r = required("dest_home", o.dest_home, q->ret)))
                return r;
        o.timeout_s = timeout;
        CALL(200, ops_migrate(&q->oc, q->p[0], &o, q->ret, err));
}

/* ---- moving VMs in and out (docs/interop.md) ---- */

static int post_import_foreign(struct call *q) {
        struct ops_import_foreign o = { 0 };
        bool descriptor = false, no_manifest = false;
        int r;
        if ((r = member_str(q->b, "file", &o.file, q->ret)) || (r = member_str(q->b, "uri", &o.uri, q->ret)) ||
            (r = member_str(q->b, "domain", &o.domain, q->ret)) || (r = member_str(q->b, "name", &o.name, q->ret)) ||
            (r = member_str(q->b, "profile", &o.profile, q->ret)) ||
            (r = member_str(q->b, "tpm_state", &o.tpm_state, q->ret)) ||
            (r = member_bool(q->b, "reference", &o.reference, q->ret)) ||
            (r = member_bool(q->b, "descriptor", &descriptor, q->ret)) ||
            (r = member_bool(q->b, "no_manifest", &no_manifest, q->ret)))
                return r;
        /* /v1/import/{kind} */
        o.kind = q->p[0];
        if (strcmp(o.kind, "ova") == 0 && descriptor)
                o.kind = "ovf";
        o.no_manifest = no_manifest;
        CALL(201, ops_import_foreign(&q->oc, &o, q->ret, err));
}

static int post_export_libvirt(struct call *q) {
        const char *dir = NULL, *target = NULL;
        int r;
        if ((r = member_str(q->b, "dir", &dir, q->ret)) || (r = member_str(q->b, "target", &target, q->ret)) ||
            (r = required("dir", dir, q->ret)))
                return r;
        CALL(200, ops_export_libvirt(&q->oc, q->p[0], dir, target, q->ret, err));
}

/* ---- networks, shares ---- */

static int get_forwards(struct call *q) { CALL(200, ops_forward_list(&q->oc, q->p[0], q->ret, err)); }

static int change_forward(struct call *q, bool add) {
        const char *spec = NULL, *nic = NULL;
        int r;
        if ((r = member_str(q->b, "spec", &spec, q->ret)) || (r = member_str(q->b, "nic", &nic, q->ret)) ||
            (r = required("spec", spec, q->ret)))
                return r;
        CALL(add ? 201 : 200, ops_forward_change(&q->oc, q->p[0], nic, spec, add, q->ret, err));
}
static int post_forward(struct call *q) { return change_forward(q, true); }
static int delete_forward(struct call *q) { return change_forward(q, false); }

static int post_nic(struct call *q) {
        const char *nic = NULL, *model = NULL, *mode = NULL;
        int r;
        if ((r = member_str(q->b, "name", &nic, q->ret)) || (r = member_str(q->b, "model", &model, q->ret)) ||
            (r = member_str(q->b, "mode", &mode, q->ret)) || (r = required("name", nic, q->ret)))
                return r;
        CALL(201, ops_nic_change(&q->oc, q->p[0], nic, true, model, mode, q->ret, err));
}

static int delete_nic(struct call *q) { CALL(200, ops_nic_change(&q->oc, q->p[0], q->p[1], false, NULL, NULL, q->ret, err)); }

static int get_shares(struct call *q) { CALL(200, ops_share_list(&q->oc, q->p[0], q->ret, err)); }

static int post_share(struct call *q) {
        const char *tag = NULL, *path = NULL, *type = NULL;
        bool ro = false;
        int r;
        if ((r = member_str(q->b, "tag", &tag, q->ret)) || (r = member_str(q->b, "path", &path, q->ret)) ||
            (r = member_str(q->b, "type", &type, q->ret)) || (r = member_bool(q->b, "readonly", &ro, q->ret)) ||
            (r = required("tag", tag, q->ret)) || (r = required("path", path, q->ret)))
                return r;
        CALL(201, ops_share_change(&q->oc, q->p[0], tag, path, ro, type, q->ret, err));
}

static int delete_share(struct call *q) {
        CALL(200, ops_share_change(&q->oc, q->p[0], q->p[1], NULL, false, NULL, q->ret, err));
}

/* ---- devices ---- */

static int get_devices(struct call *q) { CALL(200, ops_device_list(&q->oc, q->p[0], q->ret, err)); }

static int post_device(struct call *q) {
        struct ops_device_attach o = { 0 };
        json_object *b = q->b, **ret = q->ret;
        int r;
        if ((r = member_str(b, "address", &o.address, ret)) || (r = member_str(b, "rom", &o.rom, ret)) ||
            (r = member_bool(b, "with_group", &o.with_group, ret)) || (r = member_bool(b, "force", &o.force, ret)) ||
            (r = member_bool(b, "single_gpu", &o.single_gpu, ret)) || (r = required("address", o.address, ret)))
                return r;
        CALL(201, ops_device_attach(&q->oc, q->p[0], &o, q->ret, err));
}

static int delete_device(struct call *q) { CALL(200, ops_device_detach(&q->oc, q->p[0], q->p[1], q->ret, err)); }

static int post_mdev_attach(struct call *q) {
        const char *uuid = NULL;
        bool display = false;
        int r;
        if ((r = member_str(q->b, "uuid", &uuid, q->ret)) || (r = member_bool(q->b, "display", &display, q->ret)) ||
            (r = required("uuid", uuid, q->ret)))
                return r;
        CALL(201, ops_mdev_attach(&q->oc, q->p[0], uuid, display, q->ret, err));
}

static int post_give_back(struct call *q) { CALL(200, ops_device_give_back(&q->oc, q->p[0], q->ret, err)); }

static int post_usb(struct call *q) {
        const char *dev = NULL;
        int r;
        if ((r = member_str(q->b, "device", &dev, q->ret)) || (r = required("device", dev, q->ret)))
                return r;
        CALL(201, ops_usb_change(&q->oc, q->p[0], dev, true, q->ret, err));
}

static int delete_usb(struct call *q) { CALL(200, ops_usb_change(&q->oc, q->p[0], q->p[1], false, q->ret, err)); }

/* ---- install media, renames (issue 19) ---- */

static int post_cdrom(struct call *q) {
        const char *path = NULL, *drive = NULL;
        int r;
        if ((r = member_str(q->b, "path", &path, q->ret)) || (r = member_str(q->b, "drive", &drive, q->ret)) ||
            (r = required("path", path, q->ret)))
                return r;
        CALL(200, ops_cdrom_insert(&q->oc, q->p[0], drive, path, q->ret, err));
}

static int delete_cdrom(struct call *q) {
        const char *drive = NULL;
        int r = member_str(q->b, "drive", &drive, q->ret);
        if (r)
                return r;
        CALL(200, ops_cdrom_eject(&q->oc, q->p[0], drive, q->ret, err));
}

static int post_rename(struct call *q) {
        const char *to = NULL;
        int r;
        if ((r = member_str(q->b, "name", &to, q->ret)) || (r = required("name", to, q->ret)))
                return r;
        CALL(200, ops_rename(&q->oc, q->p[0], to, q->ret, err));
}

/* ---- the table ---- */

struct route {
        const char *method, *pattern;
        int (*fn)(struct call *q);
        const char *what;                       /* for "unknown member ... for <what>" */
        const char *known[8];                   /* the body's members */
};

#define N(...) { __VA_ARGS__, NULL }
static const struct route routes[] = {
        { "GET", "/v1/version", get_version, NULL, { NULL } },
        { "GET", "/v1/host", get_host, NULL, { NULL } },
        { "GET", "/v1/host/devices", get_host_devices, NULL, { NULL } },
        { "GET", "/v1/host/caps", get_caps, NULL, { NULL } },
        { "POST", "/v1/host/caps", post_caps, "a QEMU probe", N("refresh", "qemu") },
        { "GET", "/v1/host/devices/{addr}/mdev-types", get_mdev_types, NULL, { NULL } },
        { "POST", "/v1/host/devices/{addr}/sriov", post_sriov, "SR-IOV", N("count") },
        { "POST", "/v1/host/mdevs", post_mdev, "a mediated device", N("parent", "type", "uuid") },
        { "DELETE", "/v1/host/mdevs/{uuid}", delete_mdev, "a mediated device removal", { NULL } },
        { "GET", "/v1/profiles", get_profiles, NULL, { NULL } },
        { "GET", "/v1/vms", get_vms, NULL, { NULL } },
        { "POST", "/v1/vms", post_vms, "a new VM",
          N("name", "profile", "cpus", "memory", "disk", "no_disk", "iso") },  /* + below */
        { "GET", "/v1/vms/{name}", get_vm, NULL, { NULL } },
        { "PUT", "/v1/vms/{name}", put_vm, "a definition", N("config", "source", "base") },
        { "DELETE", "/v1/vms/{name}", delete_vm, "a deletion", N("force") },
        { "GET", "/v1/vms/{name}/status", get_status, NULL, { NULL } },
        { "POST", "/v1/vms/{name}/start", post_action, "'start'", N("paused", "boot_once") },
        { "POST", "/v1/vms/{name}/stop", post_action, "'stop'", N("timeout", "force", "mode") },
        { "POST", "/v1/vms/{name}/kill", post_action, "'kill'", { NULL } },
        { "POST", "/v1/vms/{name}/pause", post_action, "'pause'", { NULL } },
        { "POST", "/v1/vms/{name}/resume", post_action, "'resume'", { NULL } },
        { "POST", "/v1/vms/{name}/restart", post_action, "'restart'", N("timeout") },
        { "POST", "/v1/vms/{name}/reconcile", post_action, "'reconcile'", { NULL } },
        { "POST", "/v1/vms/{name}/wait", post_wait, "'wait'", N("for", "timeout") },
        { "GET", "/v1/vms/{name}/logs", get_logs, NULL, { NULL } },
        { "GET", "/v1/vms/{name}/console", get_console, NULL, { NULL } },
        { "GET", "/v1/vms/{name}/display", get_display, NULL, { NULL } },
        { "GET", "/v1/vms/{name}/screenshot", get_screenshot, NULL, { NULL } },
        { "POST", "/v1/vms/{name}/argv", post_argv, "'argv'", N("paused", "tcg", "qemu", "boot_once") },
        { "GET", "/v1/vms/{name}/disks", get_disks, NULL, { NULL } },
        { "POST", "/v1/vms/{name}/disks", post_disk, "a disk",
          N("size", "image", "bus", "name", "key_file", "key_prompt") },
        { "POST", "/v1/vms/{name}/disks/{disk}/resize", post_disk_resize, "a disk resize", N("size", "shrink") },
        { "DELETE", "/v1/vms/{name}/disks/{disk}", delete_disk, "a disk removal", N("keep_file") },
        { "GET", "/v1/vms/{name}/snapshots", get_snapshots, NULL, { NULL } },
        { "POST", "/v1/vms/{name}/snapshots", post_snapshot, "a snapshot", N("name") },
        { "POST", "/v1/vms/{name}/snapshots/{snap}/revert", post_revert, "a revert", N("stop") },
        { "DELETE", "/v1/vms/{name}/snapshots/{snap}", delete_snapshot, "a snapshot deletion", { NULL } },
        { "POST", "/v1/vms/{name}/clone", post_clone, "a clone", N("name", "full", "tpm") },
        { "POST", "/v1/vms/{name}/migrate", post_migrate, "a migration",
          N("dest_home", "address", "max_bandwidth", "timeout") },
        { "POST", "/v1/vms/{name}/export-libvirt", post_export_libvirt, "a libvirt export", N("dir", "target") },
        { "POST", "/v1/import/{kind}", post_import_foreign, "an import",
          N("file", "uri", "domain", "name", "profile", "tpm_state", "reference") },  /* + below */
        { "GET", "/v1/vms/{name}/forwards", get_forwards, NULL, { NULL } },
        { "POST", "/v1/vms/{name}/forwards", post_forward, "a forward", N("spec", "nic") },
        { "DELETE", "/v1/vms/{name}/forwards", delete_forward, "a forward removal", N("spec", "nic") },
        { "POST", "/v1/vms/{name}/nics", post_nic, "a network card", N("name", "model", "mode") },
        { "DELETE", "/v1/vms/{name}/nics/{nic}", delete_nic, "a network card removal", { NULL } },
        { "GET", "/v1/vms/{name}/shares", get_shares, NULL, { NULL } },
        { "POST", "/v1/vms/{name}/shares", post_share, "a share", N("tag", "path", "readonly", "type") },
        { "DELETE", "/v1/vms/{name}/shares/{tag}", delete_share, "a share removal", { NULL } },
        { "GET", "/v1/vms/{name}/devices", get_devices, NULL, { NULL } },
        { "POST", "/v1/vms/{name}/devices", post_device, "a PCI device",
          N("address", "rom", "with_group", "force", "single_gpu") },
        { "DELETE", "/v1/vms/{name}/devices/{addr}", delete_device, "a PCI device removal", { NULL } },
        { "POST", "/v1/vms/{name}/mdevs", post_mdev_attach, "a mediated device", N("uuid", "display") },
        { "POST", "/v1/vms/{name}/give-back", post_give_back, "'give-back'", { NULL } },
        { "POST", "/v1/vms/{name}/usb", post_usb, "a USB device", N("device") },
        { "DELETE", "/v1/vms/{name}/usb/{device}", delete_usb, "a USB device removal", { NULL } },
        { "POST", "/v1/vms/{name}/cdrom", post_cdrom, "a CD insert", N("path", "drive") },
        { "DELETE", "/v1/vms/{name}/cdrom", delete_cdrom, "a CD eject", N("drive") },
        { "POST", "/v1/vms/{name}/rename", post_rename, "a rename", N("name") },
};
/* POST /v1/vms takes more members than a row holds. */
static const char *const create_members[] = { "name", "profile", "cpus", "memory", "disk", "no_disk", "iso",
        "drivers", "display", "gpu", "kernel", "initrd", "append", "uefi", "force", "net", "forwards",
        "usb_redirect", "disk_bus", "nic", "install", NULL };

/* POST /v1/import/{kind} too. */
static const char *const import_members[] = { "file", "uri", "domain", "name", "profile", "tpm_state", "reference",
        "descriptor", "no_manifest", NULL };

/* Matches path against pattern: 1 when it does (the {…} segments copied to
 * q->p), 0 when not; a {name} that is no VM name is a 400 (-1, *ret set). */
static int match(const char *pattern, const char *path, struct call *q) {
        size_t n = 0;
        while (*pattern && *path) {
                if (*pattern != '/' || *path != '/')
                        return 0;
                pattern++, path++;
                const char *pe = strchrnul(pattern, '/'), *se = strchrnul(path, '/');
                size_t pl = (size_t) (pe - pattern), sl = (size_t) (se - path);
                if (pattern[0] == '{') {
                        if (sl == 0 || sl >= sizeof q->p[0] || n >= ELEMENTSOF(q->p))
                                return 0;
                        memcpy(q->p[n], path, sl);
                        q->p[n][sl] = '\0';
                        n++;
                } else if (pl != sl || strncmp(pattern, path, pl) != 0)
                        return 0;
                pattern = pe;
                path = se;
        }
        return !*pattern && !*path;
}

int api_handle(const struct api_ctx *c, const char *method, const char *path, const char *body, size_t body_len,
               json_object **ret) {
        *ret = NULL;
        struct call q = { .c = c, .path = path, .ret = ret,
                          .oc = { .root = c->root, .home = c->home, .uid = c->uid, .gid = c->gid,
                                  .groups = c->groups, .n_groups = c->n_groups, .env_cache = c->env_cache,
                                  .exits_after = c->local } };
        bool path_known = false;
        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                const struct route *rt = &routes[i];
                if (!match(rt->pattern, path, &q))
                        continue;
                /* /v1/vms/{name}...: names never hold '/', '..' is none. */
                phy_error nerr = { 0 };
                if (strncmp(rt->pattern, "/v1/vms/{name}", 14) == 0 && ops_name_check("VM name", q.p[0], &nerr) < 0)
                        return api_error_reply(&nerr, ret);
                path_known = true;
                if (strcmp(rt->method, method) != 0)
                        continue;
                _cleanup_json_ json_object *b = NULL;
                int r;
                if (strcmp(method, "GET") == 0)
                        b = json_object_new_object();
                else if ((r = body_object(body, body_len, &b, ret)))
                        return r;
                /* Unknown members are refused, so a misspelt option is never ignored. */
                const char *const *known = rt->fn == post_vms ? create_members
                                           : rt->fn == post_import_foreign ? import_members : rt->known;
                json_object_object_foreach(b, k, v) {
                        (void) v;
                        bool good = false;
                        for (size_t j = 0; known[j] && !good; j++)
                                good = strcmp(k, known[j]) == 0;
                        if (!good)
                                return api_fail(ret, EINVAL, "unknown member '%s' in the request body for %s", k,
                                            rt->what ? rt->what : "this request");
                }
                q.b = b;
                return rt->fn(&q);
        }
        if (path_known)
                return api_fail(ret, EOPNOTSUPP, "method %s is not allowed on '%s'; see docs/openapi.json", method, path);
        return api_fail(ret, ENOENT, "no such resource '%s'; the API is described in docs/openapi.json", path);
}

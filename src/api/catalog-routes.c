/* SPDX-License-Identifier: MIT */
/*
 * The OS catalog through phyllod (docs/api.md, docs/catalog.md):
 *
 *   GET  /v1/catalog              the catalog's entries
 *   GET  /v1/catalog/{os}         one entry, osinfo's facts and the VM plan
 *   POST /v1/downloads            {"os": ID, "unverified": false}: 202, the
 *                                 download runs in its own thread; "download"
 *                                 events on /v1/events report its progress
 *   GET  /v1/downloads[/{id}]     the downloads this phyllod started
 *   DELETE /v1/downloads/{id}     cancels a running download: its child
 *                                 ends, its partial file goes
 *   POST /v1/media/identify       {"iso": PATH}: the OS on an install ISO
 *                                 (`phyllo catalog identify --json`)
 *
 * Served by the daemon only (phyllo runs the worker itself).  What loads
 * osinfo-db (tens of MB) or downloads runs in a phyllome-catalog-worker
 * child (src/ops/worker.c; the verbs are src/catalog/verbs.c), so phyllod
 * stays small at idle, links none of the catalog's libraries, and a
 * download's memory and failures stay in its own process.  The worker
 * starts neither phyllo nor phyllod.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "api.h"
#include "catalog/catalog.h"
#include "catalog/verbs.h"
#include "cleanup.h"
#include "json-cleanup.h"
#include "ops/ops.h"
#include "ops/worker.h"

bool api_catalog_is(const char *path) {
        return strcmp(path, "/v1/catalog") == 0 || strncmp(path, "/v1/catalog/", 12) == 0 ||
               strcmp(path, "/v1/media/identify") == 0 || strcmp(path, "/v1/media/verify") == 0 ||
               strcmp(path, "/v1/downloads") == 0 || strncmp(path, "/v1/downloads/", 14) == 0;
}

/* A download job's change as "event: download" on /v1/events. */
static void publish_download(void *events, json_object *job) {
        if (events)
                api_events_publish(events, "download", job);
}

/* The request body as JSON, or NULL. */
static json_object *body_json(const char *body, size_t len) {
        json_object *b = NULL;
        if (body && len) {
                json_tokener *t = json_tokener_new();
                b = t ? json_tokener_parse_ex(t, body, (int) len) : NULL;
                if (t)
                        json_tokener_free(t);
        }
        return b;
}

static int post_download(const struct api_ctx *c, const char *body, size_t len, json_object **ret) {
        _cleanup_json_ json_object *b = body_json(body, len);
        json_object *os = NULL, *unv = NULL;
        if (!b || !json_object_is_type(b, json_type_object))
                return api_fail(ret, EINVAL, "the request body must be a JSON object like %s", "{\"os\": \"debian12\"}");
        json_object_object_foreach(b, k, v) {
                (void) v;
                if (strcmp(k, "os") != 0 && strcmp(k, "unverified") != 0)
                        return api_fail(ret, EINVAL, "unknown member '%s' in the request body for a download; "
                                         "allowed: os, unverified", k);
        }
        if (!json_object_object_get_ex(b, "os", &os) || !json_object_is_type(os, json_type_string))
                return api_fail(ret, EINVAL, "member '%s' (a string) is required", "os");
        if (json_object_object_get_ex(b, "unverified", &unv) && !json_object_is_type(unv, json_type_boolean))
                return api_fail(ret, EINVAL, "member '%s' must be true or false", "unverified");
        const char *id = json_object_get_string(os);
        _cleanup_catalog_ struct catalog cat = { 0 };
        phy_error err = { 0 };
        if (catalog_load(NULL, &cat, &err) < 0)
                return api_error_reply(&err, ret);
        const struct catalog_entry *e = catalog_find(&cat, id);
        if (!e)
                return api_fail(ret, ENOENT, "the catalog has no OS '%s'; see GET /v1/catalog", id);
        if (!e->url)
                return api_fail(ret, ENOENT, "%s has no direct download; its entry says where to get it", e->id);

        /* where the worker writes (catalog_download: <media dir>/<name>.part) */
        _cleanup_free_ char *dir = NULL, *name = NULL, *part = NULL;
        phy_error perr = { 0 };
        if (catalog_media_dir(&dir, &perr) >= 0 && catalog_media_name(e, &name, &perr) >= 0 &&
            asprintf(&part, "%s/%s.part", dir, name) < 0)
                part = NULL;
        struct ops_download_start o = { .os = e->id, .unverified = unv && json_object_get_boolean(unv), .part = part,
                                        .publish = publish_download, .userdata = c->events };
        return ops_download_start(&o, ret, &err) < 0 ? api_error_reply(&err, ret) : 202;
}

/* DELETE /v1/downloads/{id}: the worker is told to end (SIGTERM, SIGKILL
 * after 10 s) and the reply comes once the job has ended and its partial
 * file is gone: {id, state: "cancelled", ...}. */
static int delete_download(const char *id, const char *body, size_t len, json_object **ret) {
        if (body && len) {
                /* no member is known: a misspelt option is never ignored */
                _cleanup_json_ json_object *b = body_json(body, len);
                if (!b || !json_object_is_type(b, json_type_object))
                        return api_fail(ret, EINVAL, "the request body must be a JSON object (or none) for %s",
                                        "a download's cancellation");
                json_object_object_foreach(b, k, v) {
                        (void) v;
                        return api_fail(ret, EINVAL, "unknown member '%s' in the request body for a download's "
                                        "cancellation; it takes none", k);
                }
        }
        phy_error err = { 0 };
        return ops_download_cancel(id, ret, &err) < 0 ? api_error_reply(&err, ret) : 200;
}

/* POST /v1/media/identify {"iso": PATH} and POST /v1/media/verify {"file":
 * PATH}: the worker's identify or verify verb on a path the caller may
 * read.  identify: 404 with osinfo's sentence when no OS matches; verify:
 * 200 with "verified" false and "message" when the catalog knows no hash
 * of it. */
static int post_media(const struct api_ctx *c, const char *verb, const char *member, const char *body, size_t len,
                      json_object **ret) {
        _cleanup_json_ json_object *b = body_json(body, len);
        json_object *jpath = NULL;
        if (!b || !json_object_is_type(b, json_type_object))
                return api_fail(ret, EINVAL, "the request body must be a JSON object like {\"%s\": \"%s\"}", member,
                                strcmp(member, "iso") == 0 ? "/path/to/install.iso" : "/path/to/file");
        json_object_object_foreach(b, k, v) {
                (void) v;
                if (strcmp(k, member) != 0)
                        return api_fail(ret, EINVAL, "unknown member '%s' in the request body for %s; allowed: %s", k,
                                        strcmp(verb, "identify") == 0 ? "an identification" : "a verification",
                                        member);
        }
        if (!json_object_object_get_ex(b, member, &jpath) || !json_object_is_type(jpath, json_type_string))
                return api_fail(ret, EINVAL, "member '%s' (a string) is required", member);
        struct ops_ctx oc = { .root = c->root, .home = c->home, .uid = c->uid, .gid = c->gid, .groups = c->groups,
                              .n_groups = c->n_groups };
        phy_error err = { 0 };
        _cleanup_free_ char *path = NULL;
        const char *what = strcmp(member, "iso") == 0 ? "ISO" : "file";
        if (ops_input_path(&oc, what, json_object_get_string(jpath), &path, &err) < 0)
                return api_error_reply(&err, ret);
        struct stat st;
        if (stat(path, &st) < 0)
                return api_fail(ret, errno, "cannot read the %s '%s': %s", what, path, strerror(errno));
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
                return api_fail(ret, EINVAL, "the %s '%s' is not a file", what, path);
        const char *args[] = { verb, path, NULL };
        struct ops_worker_call wc = { .args = args, .quiet = true };
        json_object *j = NULL;
        if (ops_worker_run(&wc, &j, &err) < 0)
                return api_error_reply(&err, ret);
        json_object_object_del(j, "create");
        *ret = j;
        return 200;
}

static int get_catalog(const char *os, json_object **ret) {
        phy_error err = { 0 };
        json_object *j = NULL;
        if (!os) {
                if (catalog_verb_list(NULL, NULL, &j, &err) < 0)
                        return api_error_reply(&err, ret);
                *ret = json_object_new_object();
                json_object_object_add(*ret, "catalog", j);
                return 200;
        }
        /* osinfo's facts and the plan: the worker's show */
        const char *args[] = { "show", os, NULL };
        struct ops_worker_call c = { .args = args, .quiet = true };
        if (ops_worker_run(&c, &j, &err) < 0)
                return api_error_reply(&err, ret);
        json_object_object_del(j, "create");
        *ret = j;
        return 200;
}

int api_catalog_handle(const struct api_ctx *c, const char *method, const char *path, const char *body, size_t len,
                       json_object **ret) {
        *ret = NULL;
        bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
        const char *arg = NULL;
        if (strncmp(path, "/v1/media/", 10) == 0)
                return !post ? api_fail(ret, EOPNOTSUPP, "only POST is allowed on '%s'", path)
                       : strcmp(path + 10, "identify") == 0 ? post_media(c, "identify", "iso", body, len, ret)
                                                            : post_media(c, "verify", "file", body, len, ret);
        if (strncmp(path, "/v1/catalog", 11) == 0) {
                arg = path[11] ? path + 12 : NULL;
                if (arg && (!*arg || strchr(arg, '/')))
                        return api_fail(ret, ENOENT, "no such resource '%s'", path);
                return get ? get_catalog(arg, ret)
                           : api_fail(ret, EOPNOTSUPP, "only GET is allowed on '%s'", path);
        }
        arg = path[13] ? path + 14 : NULL;
        if (arg && (!*arg || strchr(arg, '/')))
                return api_fail(ret, ENOENT, "no such resource '%s'", path);
        if (get) {
                phy_error err = { 0 };
                return ops_download_get(arg, ret, &err) < 0 ? api_error_reply(&err, ret) : 200;
        }
        if (post && !arg)
                return post_download(c, body, len, ret);
        if (strcmp(method, "DELETE") == 0 && arg)
                return delete_download(arg, body, len, ret);
        return api_fail(ret, EOPNOTSUPP, "method not allowed on '%s'; see docs/api.md", path);
}

/* ---- POST /v1/vms with "unattended" ---- */

/*
 * {"unattended": {"os", "user", "password" | "password_file", "timezone",
 * "locale", "hostname", "edition"}} next to "iso" (and "drivers"): a `phyllo
 * catalog unattend --install-json` child makes the answer file (phyllod loads
 * no osinfo-db) and the body goes on to POST /v1/vms with "install" (and the
 * OS's profile when none was given) in its place.  The password reaches the
 * child on its stdin, never on a command line; a password_file is read only
 * when the caller may read it.  0 with *ret_body (NULL: no "unattended"), or
 * the HTTP status with *reply.
 */
int api_catalog_unattended(const struct api_ctx *c, const char *body, size_t len, char **ret_body, json_object **reply) {
        *ret_body = NULL;
        if (!body || !len || !memmem(body, len, "\"unattended\"", 12))
                return 0;
        _cleanup_json_ json_object *b = NULL;
        json_tokener *t = json_tokener_new();
        b = t ? json_tokener_parse_ex(t, body, (int) len) : NULL;
        if (t)
                json_tokener_free(t);
        json_object *u, *v;
        if (!b || !json_object_is_type(b, json_type_object) || !json_object_object_get_ex(b, "unattended", &u))
                return 0;       /* api_handle says what is wrong with it */
        if (!json_object_is_type(u, json_type_object))
                return api_fail(reply, EINVAL, "'unattended' in the request body must be an object");
        static const char *const keys[] = { "os", "user", "password", "password_file", "timezone", "locale", "hostname",
                                            "edition" };
        const char *val[ELEMENTSOF(keys)] = { 0 };
        json_object_object_foreach(u, k, jv) {
                size_t i = 0;
                while (i < ELEMENTSOF(keys) && strcmp(k, keys[i]) != 0)
                        i++;
                if (i == ELEMENTSOF(keys))
                        return api_fail(reply, EINVAL, "unknown member '%s' in 'unattended'; allowed: os, user, "
                                        "password, password_file, timezone, locale, hostname, edition", k);
                if (!json_object_is_type(jv, json_type_string))
                        return api_fail(reply, EINVAL, "'unattended.%s' must be a string", k);
                val[i] = json_object_get_string(jv);
        }
        if (!val[0] || !val[1])
                return api_fail(reply, EINVAL, "'unattended' needs 'os' (a catalog id) and 'user'");
        if (!val[2] == !val[3])
                return api_fail(reply, EINVAL, "'unattended' needs one of 'password' and 'password_file'");
        if (!json_object_object_get_ex(b, "iso", &v) || !json_object_is_type(v, json_type_string))
                return api_fail(reply, EINVAL, "an unattended install needs 'iso', the install media");
        struct ops_ctx oc = { .root = c->root, .home = c->home, .uid = c->uid, .gid = c->gid, .groups = c->groups,
                              .n_groups = c->n_groups };
        struct ops_unattended ua = { .os = val[0], .iso = json_object_get_string(v), .user = val[1],
                                     .password = val[2], .password_file = val[3], .timezone = val[4],
                                     .locale = val[5], .hostname = val[6], .edition = val[7],
                                     .drivers = json_object_object_get_ex(b, "drivers", NULL) };
        phy_error err = { 0 };
        _cleanup_json_ json_object *j = NULL;
        json_object *inst;
        if (ops_unattended_answer(&oc, &ua, &j, &err) < 0)
                return api_error_reply(&err, reply);
        json_object_object_get_ex(j, "install", &inst);
        json_object_object_del(b, "unattended");
        json_object_object_add(b, "install", json_object_get(inst));
        if (!json_object_object_get_ex(b, "profile", NULL) && json_object_object_get_ex(j, "profile", &v))
                json_object_object_add(b, "profile", json_object_get(v));
        if (!(*ret_body = strdup(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN))))
                return api_fail(reply, ENOMEM, "%s", "out of memory");
        return 0;
}

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
 *
 * Served by the daemon only (phyllo calls src/catalog directly).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "api.h"
#include "catalog/catalog.h"
#include "cleanup.h"

#define DOWNLOADS_MAX 64

static void json_putp(json_object **o) {
        if (*o)
                json_object_put(*o);
}

struct job {
        unsigned id;
        char os[72];
        bool unverified;
        struct api_events *events;
        /* under lock */
        char state[12];         /* running, done, failed */
        enum catalog_phase phase;
        uint64_t done, total;
        char *path;
        char error[1024];
        /* the thread's own */
        int last_pct;
        enum catalog_phase last_phase;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct job *jobs[DOWNLOADS_MAX];
static unsigned n_jobs;

bool api_catalog_is(const char *path) {
        return strcmp(path, "/v1/catalog") == 0 || strncmp(path, "/v1/catalog/", 12) == 0 ||
               strcmp(path, "/v1/downloads") == 0 || strncmp(path, "/v1/downloads/", 14) == 0;
}

static int reply_err(json_object **ret, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int reply_err(json_object **ret, int code, const char *fmt, ...) {
        phy_error e = { 0 };
        char msg[sizeof e.message];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        phy_error_set(&e, code, "%s", msg);
        return api_error_reply(&e, ret);
}

/* Under lock. */
static json_object *job_json(const struct job *j) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_int64(j->id));
        json_object_object_add(o, "os", json_object_new_string(j->os));
        json_object_object_add(o, "state", json_object_new_string(j->state));
        json_object_object_add(o, "phase", json_object_new_string(catalog_phase_name(j->phase)));
        json_object_object_add(o, "done", json_object_new_int64((int64_t) j->done));
        json_object_object_add(o, "total", json_object_new_int64((int64_t) j->total));
        if (j->path)
                json_object_object_add(o, "path", json_object_new_string(j->path));
        if (j->error[0])
                json_object_object_add(o, "error", json_object_new_string(j->error));
        return o;
}

static void publish(struct job *j) {
        pthread_mutex_lock(&lock);
        json_object *o = job_json(j);
        pthread_mutex_unlock(&lock);
        if (j->events)
                api_events_publish(j->events, "download", o);
        json_object_put(o);
}

/* Events at each phase and each whole percent (not at every MiB). */
static void on_progress(enum catalog_phase ph, uint64_t done, uint64_t total, void *u) {
        struct job *j = u;
        int pct = total ? (int) (done * 100 / total) : -1;
        pthread_mutex_lock(&lock);
        j->phase = ph;
        j->done = done;
        j->total = total;
        pthread_mutex_unlock(&lock);
        if (ph == j->last_phase && pct == j->last_pct)
                return;
        j->last_phase = ph;
        j->last_pct = pct;
        publish(j);
}

static void *job_thread(void *arg) {
        struct job *j = arg;
        _cleanup_catalog_ struct catalog c = { 0 };
        phy_error err = { 0 };
        char *path = NULL;
        const struct catalog_entry *e = NULL;
        int r = catalog_load(NULL, &c, &err);
        if (r >= 0 && !(e = catalog_find(&c, j->os)))
                r = phy_error_set(&err, ENOENT, "the catalog has no OS '%s'", j->os);
        if (r >= 0) {
                struct catalog_download_opts o = { .unverified = j->unverified, .progress = on_progress,
                                                   .userdata = j };
                r = catalog_download(e, &o, &path, &err);
        }
        pthread_mutex_lock(&lock);
        snprintf(j->state, sizeof j->state, "%s", r < 0 ? "failed" : "done");
        if (r < 0)
                snprintf(j->error, sizeof j->error, "%s", err.message);
        j->path = path;
        pthread_mutex_unlock(&lock);
        publish(j);
        return NULL;
}

static int post_download(const struct api_ctx *c, const char *body, size_t len, json_object **ret) {
        _cleanup_(json_putp) json_object *b = NULL;
        json_object *os = NULL, *unv = NULL;
        if (body && len) {
                json_tokener *t = json_tokener_new();
                b = t ? json_tokener_parse_ex(t, body, (int) len) : NULL;
                if (t)
                        json_tokener_free(t);
        }
        if (!b || !json_object_is_type(b, json_type_object))
                return reply_err(ret, EINVAL, "the request body must be a JSON object like %s", "{\"os\": \"debian12\"}");
        json_object_object_foreach(b, k, v) {
                (void) v;
                if (strcmp(k, "os") != 0 && strcmp(k, "unverified") != 0)
                        return reply_err(ret, EINVAL, "unknown member '%s' in the request body for a download; "
                                         "allowed: os, unverified", k);
        }
        if (!json_object_object_get_ex(b, "os", &os) || !json_object_is_type(os, json_type_string))
                return reply_err(ret, EINVAL, "member '%s' (a string) is required", "os");
        if (json_object_object_get_ex(b, "unverified", &unv) && !json_object_is_type(unv, json_type_boolean))
                return reply_err(ret, EINVAL, "member '%s' must be true or false", "unverified");
        const char *id = json_object_get_string(os);
        _cleanup_catalog_ struct catalog cat = { 0 };
        phy_error err = { 0 };
        if (catalog_load(NULL, &cat, &err) < 0)
                return api_error_reply(&err, ret);
        const struct catalog_entry *e = catalog_find(&cat, id);
        if (!e)
                return reply_err(ret, ENOENT, "the catalog has no OS '%s'; see GET /v1/catalog", id);
        if (!e->url)
                return reply_err(ret, ENOENT, "%s has no direct download; its entry says where to get it", e->id);

        struct job *j = calloc(1, sizeof *j);
        if (!j)
                return reply_err(ret, ENOMEM, "%s", "out of memory");
        snprintf(j->os, sizeof j->os, "%s", e->id);
        snprintf(j->state, sizeof j->state, "running");
        j->unverified = unv && json_object_get_boolean(unv);
        j->events = c->events;
        j->last_pct = -2;
        j->last_phase = CATALOG_PHASE_DONE;
        pthread_mutex_lock(&lock);
        /* the oldest finished job makes room */
        if (n_jobs == DOWNLOADS_MAX)
                for (unsigned i = 0; i < n_jobs; i++)
                        if (strcmp(jobs[i]->state, "running") != 0) {
                                free(jobs[i]->path);
                                free(jobs[i]);
                                memmove(&jobs[i], &jobs[i + 1], (n_jobs - i - 1) * sizeof *jobs);
                                n_jobs--;
                                break;
                        }
        bool busy = false;
        for (unsigned i = 0; i < n_jobs; i++)
                busy |= strcmp(jobs[i]->os, j->os) == 0 && strcmp(jobs[i]->state, "running") == 0;
        if (busy || n_jobs == DOWNLOADS_MAX) {
                pthread_mutex_unlock(&lock);
                free(j);
                if (busy)
                        return reply_err(ret, EBUSY, "%s is being downloaded already; see GET /v1/downloads", id);
                return reply_err(ret, EBUSY, "%s: too many downloads kept; try again when one ends", id);
        }
        static unsigned next_id;
        j->id = ++next_id;
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&t, &attr, job_thread, j);
        pthread_attr_destroy(&attr);
        if (r != 0) {
                pthread_mutex_unlock(&lock);
                free(j);
                return reply_err(ret, r, "cannot start a thread for the download of %s", id);
        }
        jobs[n_jobs++] = j;
        *ret = job_json(j);
        pthread_mutex_unlock(&lock);
        return 202;
}

static int get_downloads(const char *id, json_object **ret) {
        pthread_mutex_lock(&lock);
        json_object *a = json_object_new_array();
        for (unsigned i = 0; i < n_jobs; i++) {
                char buf[16];
                snprintf(buf, sizeof buf, "%u", jobs[i]->id);
                if (!id) {
                        json_object_array_add(a, job_json(jobs[i]));
                } else if (strcmp(buf, id) == 0) {
                        *ret = job_json(jobs[i]);
                        pthread_mutex_unlock(&lock);
                        json_object_put(a);
                        return 200;
                }
        }
        pthread_mutex_unlock(&lock);
        if (id) {
                json_object_put(a);
                return reply_err(ret, ENOENT, "no download '%s'; see GET /v1/downloads", id);
        }
        *ret = json_object_new_object();
        json_object_object_add(*ret, "downloads", a);
        return 200;
}

static int get_catalog(const char *os, json_object **ret) {
        _cleanup_catalog_ struct catalog c = { 0 };
        phy_error err = { 0 };
        if (catalog_load(NULL, &c, &err) < 0)
                return api_error_reply(&err, ret);
        if (!os) {
                json_object *a = json_object_new_array();
                for (size_t i = 0; i < c.n; i++)
                        json_object_array_add(a, catalog_entry_json(&c.entries[i]));
                *ret = json_object_new_object();
                json_object_object_add(*ret, "catalog", a);
                return 200;
        }
        const struct catalog_entry *e = catalog_find(&c, os);
        if (!e)
                return reply_err(ret, ENOENT, "the catalog has no OS '%s'; see GET /v1/catalog", os);
        _cleanup_osinfo_ struct catalog_osinfo o = { 0 };
        struct catalog_plan plan;
        if (catalog_osinfo_lookup(e->osinfo, &o, &err) < 0 || catalog_plan_for(&o, e->profile, &plan, &err) < 0)
                return api_error_reply(&err, ret);
        *ret = catalog_entry_json(e);
        json_object_object_add(*ret, "os", catalog_osinfo_json(&o));
        json_object_object_add(*ret, "plan", catalog_plan_json(&plan));
        return 200;
}

int api_catalog_handle(const struct api_ctx *c, const char *method, const char *path, const char *body, size_t len,
                       json_object **ret) {
        *ret = NULL;
        bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
        const char *arg = NULL;
        if (strncmp(path, "/v1/catalog", 11) == 0) {
                arg = path[11] ? path + 12 : NULL;
                if (arg && (!*arg || strchr(arg, '/')))
                        return reply_err(ret, ENOENT, "no such resource '%s'", path);
                return get ? get_catalog(arg, ret)
                           : reply_err(ret, EOPNOTSUPP, "only GET is allowed on '%s'", path);
        }
        arg = path[13] ? path + 14 : NULL;
        if (arg && (!*arg || strchr(arg, '/')))
                return reply_err(ret, ENOENT, "no such resource '%s'", path);
        if (get)
                return get_downloads(arg, ret);
        if (post && !arg)
                return post_download(c, body, len, ret);
        return reply_err(ret, EOPNOTSUPP, "method not allowed on '%s'; see docs/api.md", path);
}

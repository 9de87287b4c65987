/* SPDX-License-Identifier: MIT */
/* Background downloads by the catalog worker (worker.h): phyllod's
 * /v1/downloads, with progress, one per OS, cancel with no file left. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "json-cleanup.h"
#include "worker.h"

#define DOWNLOADS_MAX 64

/* The worker's phases, in order (src/catalog: enum catalog_phase). */
static const char *const phases[] = { "checksums", "image", "verify", "done" };

struct job {
        unsigned id;
        char os[72];
        bool unverified;
        void (*publish)(void *userdata, json_object *job);
        void *userdata;
        /* under lock */
        char state[12];         /* running, done, failed, cancelled */
        unsigned phase;         /* index in phases */
        uint64_t done, total;
        char *path;
        char error[1024];
        pid_t pid;              /* the child while it may be signalled, else 0 */
        bool cancel;            /* DELETE asked for its end */
        char *part;             /* the partial file the child writes */
        /* the thread's own */
        int last_pct;
        unsigned last_phase;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Broadcast when a job leaves "running" (a cancel waits for it). */
static pthread_cond_t job_ended = PTHREAD_COND_INITIALIZER;

static struct job *jobs[DOWNLOADS_MAX];
static unsigned n_jobs;

/* Under lock. */
static json_object *job_json(const struct job *j) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_int64(j->id));
        json_object_object_add(o, "os", json_object_new_string(j->os));
        json_object_object_add(o, "state", json_object_new_string(j->state));
        json_object_object_add(o, "phase", json_object_new_string(phases[j->phase]));
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
        if (j->publish)
                j->publish(j->userdata, o);
        json_object_put(o);
}

/* Events at each phase and each whole percent (not at every MiB). */
static void job_progress(json_object *p, void *u) {
        struct job *j = u;
        json_object *v;
        const char *ph = json_object_object_get_ex(p, "phase", &v) ? json_object_get_string(v) : "";
        unsigned phase = ELEMENTSOF(phases) - 1;
        for (unsigned i = 0; i < ELEMENTSOF(phases); i++)
                if (ph && strcmp(ph, phases[i]) == 0)
                        phase = i;
        uint64_t done = json_object_object_get_ex(p, "done", &v) ? (uint64_t) json_object_get_int64(v) : 0;
        uint64_t total = json_object_object_get_ex(p, "total", &v) ? (uint64_t) json_object_get_int64(v) : 0;
        int pct = total ? (int) (done * 100 / total) : -1;
        pthread_mutex_lock(&lock);
        j->phase = phase;
        j->done = done;
        j->total = total;
        pthread_mutex_unlock(&lock);
        if (phase == j->last_phase && pct == j->last_pct)
                return;
        j->last_phase = phase;
        j->last_pct = pct;
        publish(j);
}

/* A DELETE signals the worker from here until job_ended_child. */
static void job_started(pid_t pid, void *u) {
        struct job *j = u;
        pthread_mutex_lock(&lock);
        j->pid = pid;
        if (j->cancel)
                kill(pid, SIGTERM);
        pthread_mutex_unlock(&lock);
}

/* Ended, not reaped yet: no other process has its pid. */
static void job_ended_child(void *u) {
        struct job *j = u;
        pthread_mutex_lock(&lock);
        j->pid = 0;
        pthread_mutex_unlock(&lock);
}

/* The worker's download: progress records, then its result or error. */
static void *job_thread(void *arg) {
        struct job *j = arg;
        const char *args[] = { "download", j->os, j->unverified ? "--unverified" : NULL, NULL };
        struct ops_worker_call c = { .args = args, .quiet = true, .on_progress = job_progress,
                                     .on_started = job_started, .on_ended = job_ended_child, .userdata = j };
        _cleanup_json_ json_object *res = NULL;
        phy_error err = { 0 };
        int r = ops_worker_run(&c, &res, &err);
        json_object *v;
        char *path = r >= 0 && json_object_object_get_ex(res, "path", &v) ? strdup(json_object_get_string(v)) : NULL;
        pthread_mutex_lock(&lock);
        bool cancelled = j->cancel;
        pthread_mutex_unlock(&lock);
        /* A cancelled download leaves no partial file (the worker removes
         * it; this covers one that had to be killed).  A complete, verified
         * one stays: the worker had renamed it already. */
        if (cancelled && j->part)
                unlink(j->part);
        pthread_mutex_lock(&lock);
        bool good = path && !cancelled;
        snprintf(j->state, sizeof j->state, "%s", good ? "done" : cancelled ? "cancelled" : "failed");
        if (!good)
                snprintf(j->error, sizeof j->error, "%s",
                         cancelled ? "the download was cancelled; its partial file is removed"
                         : r < 0 ? phy_error_message(&err) : "the worker's answer names no file");
        j->path = good ? path : NULL;
        pthread_cond_broadcast(&job_ended);
        pthread_mutex_unlock(&lock);
        if (!good)
                free(path);
        publish(j);
        return NULL;
}

static void job_free(struct job *j) {
        free(j->path);
        free(j->part);
        free(j);
}

/* Under lock: the job of that id, or NULL. */
static struct job *find_job(const char *id) {
        for (unsigned i = 0; i < n_jobs; i++) {
                char buf[16];
                snprintf(buf, sizeof buf, "%u", jobs[i]->id);
                if (strcmp(buf, id) == 0)
                        return jobs[i];
        }
        return NULL;
}

int ops_download_start(const struct ops_download_start *o, json_object **ret, phy_error *err) {
        struct job *j = calloc(1, sizeof *j);
        if (!j || (o->part && !(j->part = strdup(o->part)))) {
                free(j);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        snprintf(j->os, sizeof j->os, "%s", o->os);
        snprintf(j->state, sizeof j->state, "running");
        j->unverified = o->unverified;
        j->publish = o->publish;
        j->userdata = o->userdata;
        j->last_pct = -2;
        j->last_phase = ELEMENTSOF(phases) - 1;
        j->phase = ELEMENTSOF(phases) - 1;
        pthread_mutex_lock(&lock);
        /* the oldest finished job makes room */
        if (n_jobs == DOWNLOADS_MAX)
                for (unsigned i = 0; i < n_jobs; i++)
                        if (strcmp(jobs[i]->state, "running") != 0) {
                                job_free(jobs[i]);
                                memmove(&jobs[i], &jobs[i + 1], (n_jobs - i - 1) * sizeof *jobs);
                                n_jobs--;
                                break;
                        }
        bool busy = false;
        for (unsigned i = 0; i < n_jobs; i++)
                busy |= strcmp(jobs[i]->os, j->os) == 0 && strcmp(jobs[i]->state, "running") == 0;
        if (busy || n_jobs == DOWNLOADS_MAX) {
                pthread_mutex_unlock(&lock);
                job_free(j);
                if (busy)
                        return phy_error_set(err, EBUSY, "%s is being downloaded already; see GET /v1/downloads", o->os);
                return phy_error_set(err, EBUSY, "%s: too many downloads kept; try again when one ends", o->os);
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
                job_free(j);
                return phy_error_set(err, r, "cannot start a thread for the download of %s", o->os);
        }
        jobs[n_jobs++] = j;
        *ret = job_json(j);
        pthread_mutex_unlock(&lock);
        return 0;
}

int ops_download_get(const char *id, json_object **ret, phy_error *err) {
        pthread_mutex_lock(&lock);
        if (id) {
                struct job *j = find_job(id);
                if (j)
                        *ret = job_json(j);
                pthread_mutex_unlock(&lock);
                return j ? 0 : phy_error_set(err, ENOENT, "no download '%s'; see GET /v1/downloads", id);
        }
        json_object *a = json_object_new_array();
        for (unsigned i = 0; i < n_jobs; i++)
                json_object_array_add(a, job_json(jobs[i]));
        pthread_mutex_unlock(&lock);
        *ret = json_object_new_object();
        json_object_object_add(*ret, "downloads", a);
        return 0;
}

int ops_download_cancel(const char *id, json_object **ret, phy_error *err) {
        pthread_mutex_lock(&lock);
        struct job *j = find_job(id);
        if (!j) {
                pthread_mutex_unlock(&lock);
                return phy_error_set(err, ENOENT, "no download '%s'; see GET /v1/downloads", id);
        }
        if (strcmp(j->state, "running") != 0) {
                int r = phy_error_set_kind(err, PHY_ERR_CONFLICT, EALREADY, "download %s of %s has ended already (%s)",
                                           id, j->os, j->state);
                pthread_mutex_unlock(&lock);
                return r;
        }
        j->cancel = true;
        if (j->pid > 0)
                kill(j->pid, SIGTERM);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        bool killed = false;
        while (strcmp(j->state, "running") == 0) {
                int r = pthread_cond_timedwait(&job_ended, &lock, &until);
                if (r == ETIMEDOUT && !killed && j->pid > 0) {
                        kill(j->pid, SIGKILL);
                        killed = true;
                        until.tv_sec += 10;
                } else if (r == ETIMEDOUT && strcmp(j->state, "running") == 0) {
                        r = phy_error_set(err, ETIMEDOUT, "download %s of %s did not end within 20 s", id, j->os);
                        pthread_mutex_unlock(&lock);
                        return r;
                }
        }
        *ret = job_json(j);
        pthread_mutex_unlock(&lock);
        return 0;
}

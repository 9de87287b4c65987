/* SPDX-License-Identifier: MIT */
/*
 * /v1/events: what the VM watcher (src/ops/watch.c) reports, as
 * server-sent events: "state" (STOP -> paused, RESUME -> running, SHUTDOWN
 * -> stopping, QEMU's exit -> stopped/crashed; the reconcile after a
 * crash), "guest" (RESET, SHUTDOWN, ... with QEMU's reason and the run's
 * count), "defined"; and what other parts of phyllod publish (downloads,
 * migration).  Each subscriber gets a pipe of whole SSE records.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "api.h"
#include "cleanup.h"
#include "fileio.h"
#include "ops/watch.h"

#define EVENTS_MAX_SUBS 256

struct sub {
        int rfd, wfd;           /* wfd -1 once dropped (slow reader) */
};

struct api_events {
        struct ops_watch *watch;
        pthread_mutex_t lock;   /* subs (taken inside the watcher's lock, never around it) */
        struct sub subs[EVENTS_MAX_SUBS];
        size_t n_subs;
};

/* One SSE record of o (compact JSON: no newline in the data line); takes o. */
static char *record(const char *event, json_object *o) {
        char *rec = NULL;
        if (o && asprintf(&rec, "event: %s\ndata: %s\n\n", event,
                          json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0)
                rec = NULL;
        json_object_put(o);
        return rec;
}

static char *state_record(const char *name, const char *state, const char *previous) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "state", json_object_new_string(state));
        json_object_object_add(o, "previous", previous && previous[0] ? json_object_new_string(previous) : NULL);
        return record("state", o);
}

/* Under lock.  A pipe that is full (a reader that does not read) is dropped:
 * its stream ends instead of stalling the others. */
static void broadcast(struct api_events *ev, const char *rec) {
        size_t len = strlen(rec);
        for (size_t i = 0; i < ev->n_subs; i++) {
                struct sub *s = &ev->subs[i];
                if (s->wfd < 0)
                        continue;
                ssize_t k = write(s->wfd, rec, len);
                if (k != (ssize_t) len) {
                        close(s->wfd);
                        s->wfd = -1;
                }
        }
}

/* Sends rec to every subscriber (and frees it). */
static void send_all(struct api_events *ev, char *rec) {
        if (!rec)
                return;
        pthread_mutex_lock(&ev->lock);
        broadcast(ev, rec);
        pthread_mutex_unlock(&ev->lock);
        free(rec);
}

static void on_state(void *u, const char *name, const char *state, const char *previous) {
        send_all(u, state_record(name, state, previous));
}

static void on_guest(void *u, const char *name, const char *event, const char *reason, unsigned long long count) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "event", json_object_new_string(event));
        json_object_object_add(o, "reason", reason && reason[0] ? json_object_new_string(reason) : NULL);
        json_object_object_add(o, "count", json_object_new_int64((int64_t) count));
        send_all(u, record("guest", o));
}

/* A VM defined or no longer (its directory renamed into or out of
 * <home>/vms: create, clone, import and delete all rename). */
static void on_defined(void *u, const char *name, bool defined) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "defined", json_object_new_boolean(defined));
        send_all(u, record("defined", o));
}

int api_events_start(const char *home, struct api_events **ret, phy_error *err) {
        struct api_events *ev = calloc(1, sizeof *ev);
        if (!ev)
                return phy_error_set(err, ENOMEM, "out of memory");
        pthread_mutex_init(&ev->lock, NULL);
        struct ops_watch_cb cb = { .state = on_state, .guest = on_guest, .defined = on_defined, .userdata = ev };
        int r = ops_watch_start(home, &cb, &ev->watch, err);
        if (r < 0) {
                pthread_mutex_destroy(&ev->lock);
                free(ev);
                return r;
        }
        *ret = ev;
        return 0;
}

void api_events_stop(struct api_events *ev) {
        if (!ev)
                return;
        ops_watch_stop(ev->watch);
        for (size_t i = 0; i < ev->n_subs; i++) {
                if (ev->subs[i].wfd >= 0)
                        close(ev->subs[i].wfd);
                close(ev->subs[i].rfd);
        }
        pthread_mutex_destroy(&ev->lock);
        free(ev);
}

struct subscribe { struct api_events *ev; int p[2]; int r; };

/* Under the watcher's lock: the stream opens with a comment, then each VM's
 * current state; then the subscriber is registered. */
static void subscribe_locked(void *u, const struct ops_watch_vm *vms, size_t n) {
        struct subscribe *s = u;
        struct api_events *ev = s->ev;
        pthread_mutex_lock(&ev->lock);
        if (ev->n_subs >= EVENTS_MAX_SUBS) {
                pthread_mutex_unlock(&ev->lock);
                s->r = -EMFILE;
                return;
        }
        static const char hello[] = ": phyllod events\n\n";
        (void) !write(s->p[1], hello, sizeof hello - 1);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *rec = state_record(vms[i].name, vms[i].state, NULL);
                if (rec)
                        (void) !write(s->p[1], rec, strlen(rec));
        }
        ev->subs[ev->n_subs++] = (struct sub) { .rfd = s->p[0], .wfd = s->p[1] };
        pthread_mutex_unlock(&ev->lock);
}

int api_events_subscribe(struct api_events *ev, int *ret_fd) {
        struct subscribe s = { .ev = ev };
        if (pipe2(s.p, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        ops_watch_snapshot(ev->watch, subscribe_locked, &s);
        if (s.r < 0) {
                close(s.p[0]);
                close(s.p[1]);
                return s.r;
        }
        *ret_fd = s.p[0];
        return 0;
}

void api_events_unsubscribe(struct api_events *ev, int fd) {
        pthread_mutex_lock(&ev->lock);
        for (size_t i = 0; i < ev->n_subs; i++)
                if (ev->subs[i].rfd == fd) {
                        if (ev->subs[i].wfd >= 0)
                                close(ev->subs[i].wfd);
                        close(fd);
                        ev->subs[i] = ev->subs[--ev->n_subs];
                        break;
                }
        pthread_mutex_unlock(&ev->lock);
}

void api_events_publish(struct api_events *ev, const char *event, json_object *data) {
        send_all(ev, record(event, json_object_get(data)));
}

/* SPDX-License-Identifier: MIT */
/*
 * State events for /v1/events.  Every VM's monitor replaces
 * <run dir>/state.json atomically on each change (src/run), QMP events
 * included: STOP -> paused, RESUME -> running, SHUTDOWN -> stopping, QEMU's
 * exit -> stopped/crashed; every guest event (RESET, SHUTDOWN...) is also
 * counted there and sent as "event: guest".  So one inotify fd over the run dirs sees them
 * all, also for VMs started before phyllod (re)started or by the CLI.  One
 * thread sleeps in poll(); each subscriber gets a pipe of whole SSE records.
 *
 * The thread also holds a pidfd on each active VM's monitor (its QEMU when
 * the monitor is gone): when that process ends without the record saying
 * so (kill -9, a crash), it runs the reconcile (run_reconcile: swtpm,
 * sockets, devices, state.json says crashed) that a status read no longer
 * makes, and the new state.json is an event like any other.
 */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <json-c/json.h>

#include "api.h"
#include "cleanup.h"
#include "fileio.h"
#include "run/run.h"
#include "vm/vm.h"

#define EVENTS_MAX_VMS 4096
#define EVENTS_MAX_SUBS 256

struct vm_watch {
        int wd;
        char name[VM_NAME_MAX + 1];
        char state[16];         /* last state seen, "" when none */
        unsigned guest_events;  /* state.json's guest event count last seen */
        bool seen;              /* read once: events before that are not news */
        int pidfd;              /* on the process run_watch_pid names, -1 when none */
        pid_t pid;
};

struct sub {
        int rfd, wfd;           /* wfd -1 once dropped (slow reader) */
};

struct api_events {
        char *home, *run_root;
        int ifd, stop_fd, root_wd, vms_wd;
        pthread_t thread;
        bool running;
        pthread_mutex_t lock;   /* vms[].state, subs */
        struct vm_watch *vms;
        size_t n_vms;
        struct sub subs[EVENTS_MAX_SUBS];
        size_t n_subs;
};

/* One SSE record; the data line is compact JSON (no newline in it). */
static char *state_record(const char *name, const char *state, const char *previous) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "state", json_object_new_string(state));
        json_object_object_add(o, "previous", previous && previous[0] ? json_object_new_string(previous) : NULL);
        char *rec = NULL;
        if (asprintf(&rec, "event: state\ndata: %s\n\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0)
                rec = NULL;
        json_object_put(o);
        return rec;
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

/* A VM defined or no longer (its directory renamed into or out of
 * <home>/vms: create, clone, import and delete all rename). */
static void defined_event(struct api_events *ev, const char *name, bool defined) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "defined", json_object_new_boolean(defined));
        char *rec = NULL;
        if (asprintf(&rec, "event: defined\ndata: %s\n\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0)
                rec = NULL;
        json_object_put(o);
        if (!rec)
                return;
        pthread_mutex_lock(&ev->lock);
        broadcast(ev, rec);
        pthread_mutex_unlock(&ev->lock);
        free(rec);
}

static struct vm_watch *find_wd(struct api_events *ev, int wd) {
        for (size_t i = 0; i < ev->n_vms; i++)
                if (ev->vms[i].wd == wd)
                        return &ev->vms[i];
        return NULL;
}

static char *guest_record(const char *name, const struct run_state *st) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "event", json_object_new_string(st->guest_event));
        json_object_object_add(o, "reason", st->guest_event_reason[0] ? json_object_new_string(st->guest_event_reason)
                                                                      : NULL);
        json_object_object_add(o, "count", json_object_new_int64(st->guest_events));
        char *rec = NULL;
        if (asprintf(&rec, "event: guest\ndata: %s\n\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0)
                rec = NULL;
        json_object_put(o);
        return rec;
}

/* Reads state.json of w and sends an event when the state changed, and one
 * for the latest guest event when their count moved (a new run starts from
 * zero again; events coalesced by inotify show as a jump in the count). */
static void check_state(struct api_events *ev, struct vm_watch *w);

static void unwatch_pid(struct vm_watch *w) {
        if (w->pidfd >= 0)
                close(w->pidfd);
        w->pidfd = -1;
        w->pid = 0;
}

/* Thread only.  Follows the process whose end calls for a reconcile; runs
 * the reconcile when none lives any more. */
static void watch_pid(struct api_events *ev, struct vm_watch *w, const struct run_state *st) {
        bool stale = false;
        pid_t pid = run_watch_pid(st, w->name, &stale);
        if (pid == w->pid && w->pidfd >= 0)
                return;
        unwatch_pid(w);
        if (pid > 0) {
                int fd = (int) syscall(SYS_pidfd_open, pid, 0);
                if (fd >= 0) {
                        w->pidfd = fd;
                        w->pid = pid;
                        return;
                }
                stale = errno == ESRCH;         /* ended between the check and the open */
        }
        if (stale) {
                /* The reconcile writes state.json: an inotify event follows. */
                phy_error err = { 0 };
                (void) run_reconcile(ev->home, w->name, NULL, &err);
        }
}

static void check_state(struct api_events *ev, struct vm_watch *w) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        phy_error err = { 0 };
        if (run_dir_path(ev->home, w->name, &dir, &err) < 0 || asprintf(&path, "%s/state.json", dir) < 0)
                return;
        _cleanup_run_state_ struct run_state st = { 0 };
        if (run_state_read_file(path, &st, &err) < 0)
                return;
        watch_pid(ev, w, &st);
        const char *now = run_state_name(st.state);
        pthread_mutex_lock(&ev->lock);
        if (strcmp(now, w->state) != 0) {
                _cleanup_free_ char *rec = state_record(w->name, now, w->state);
                snprintf(w->state, sizeof w->state, "%s", now);
                if (rec)
                        broadcast(ev, rec);
        }
        if (w->seen && st.guest_events > 0 && st.guest_events != w->guest_events) {
                _cleanup_free_ char *rec = guest_record(w->name, &st);
                if (rec)
                        broadcast(ev, rec);
        }
        w->guest_events = st.guest_events;
        w->seen = true;
        pthread_mutex_unlock(&ev->lock);
}

static void add_vm(struct api_events *ev, const char *name) {
        if (!vm_name_valid(name) || ev->n_vms >= EVENTS_MAX_VMS)
                return;
        _cleanup_free_ char *dir = NULL;
        phy_error err = { 0 };
        if (run_dir_path(ev->home, name, &dir, &err) < 0)
                return;
        /* The file is replaced by rename (IN_MOVED_TO); a command acting for
         * a dead monitor writes it the same way. */
        int wd = inotify_add_watch(ev->ifd, dir, IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR | IN_DONT_FOLLOW);
        if (wd < 0)
                return;
        struct vm_watch *w = find_wd(ev, wd);
        if (!w) {
                pthread_mutex_lock(&ev->lock);
                struct vm_watch *v = realloc(ev->vms, (ev->n_vms + 1) * sizeof *v);
                if (v) {
                        ev->vms = v;
                        w = &v[ev->n_vms++];
                        *w = (struct vm_watch) { .wd = wd, .pidfd = -1 };
                        snprintf(w->name, sizeof w->name, "%s", name);
                }
                pthread_mutex_unlock(&ev->lock);
                if (!w)
                        return;
        }
        /* Whatever happened before the watch existed. */
        check_state(ev, w);
}

static void remove_wd(struct api_events *ev, int wd) {
        pthread_mutex_lock(&ev->lock);
        for (size_t i = 0; i < ev->n_vms; i++)
                if (ev->vms[i].wd == wd) {
                        unwatch_pid(&ev->vms[i]);
                        ev->vms[i] = ev->vms[--ev->n_vms];
                        break;
                }
        pthread_mutex_unlock(&ev->lock);
}

static void scan(struct api_events *ev) {
        DIR *d = opendir(ev->run_root);
        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));)
                if (de->d_type == DT_DIR && de->d_name[0] != '.')
                        add_vm(ev, de->d_name);
        closedir(d);
}

/* Thread only: the pidfds of the watched processes that ended. */
static void reap_ended(struct api_events *ev, const struct pollfd *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (!p[i].revents)
                        continue;
                for (size_t k = 0; k < ev->n_vms; k++)
                        if (ev->vms[k].pidfd == p[i].fd) {
                                struct vm_watch *w = &ev->vms[k];
                                unwatch_pid(w);
                                /* Ended: a reconcile when the record still
                                 * says active (check_state sees to it). */
                                check_state(ev, w);
                                break;
                        }
        }
}

static void *events_thread(void *arg) {
        struct api_events *ev = arg;
        char buf[16 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
        for (;;) {
                /* inotify, the stop eventfd, then one pidfd per active VM. */
                size_t n_fds = 2;
                _cleanup_free_ struct pollfd *p = calloc(2 + ev->n_vms, sizeof *p);
                if (!p)
                        break;
                p[0] = (struct pollfd) { .fd = ev->ifd, .events = POLLIN };
                p[1] = (struct pollfd) { .fd = ev->stop_fd, .events = POLLIN };
                for (size_t i = 0; i < ev->n_vms; i++)
                        if (ev->vms[i].pidfd >= 0)
                                p[n_fds++] = (struct pollfd) { .fd = ev->vms[i].pidfd, .events = POLLIN };
                if (poll(p, n_fds, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        break;
                reap_ended(ev, p + 2, n_fds - 2);
                if (!p[0].revents)
                        continue;
                ssize_t n = read(ev->ifd, buf, sizeof buf);
                if (n <= 0)
                        continue;
                for (char *q = buf; q < buf + n;) {
                        const struct inotify_event *ie = (const struct inotify_event *) q;
                        q += sizeof *ie + ie->len;
                        if (ie->mask & IN_Q_OVERFLOW) {
                                scan(ev);
                                continue;
                        }
                        if (ie->wd == ev->vms_wd && ev->vms_wd >= 0) {
                                if ((ie->mask & IN_ISDIR) && ie->len && vm_name_valid(ie->name))
                                        defined_event(ev, ie->name, (ie->mask & (IN_MOVED_TO | IN_CREATE)) != 0);
                                continue;
                        }
                        if (ie->wd == ev->root_wd) {
                                if ((ie->mask & IN_ISDIR) && ie->len)
                                        add_vm(ev, ie->name);
                                continue;
                        }
                        if (ie->mask & IN_IGNORED) {
                                remove_wd(ev, ie->wd);
                                continue;
                        }
                        struct vm_watch *w = ie->len && strcmp(ie->name, "state.json") == 0 ? find_wd(ev, ie->wd) : NULL;
                        if (w)
                                check_state(ev, w);
                }
        }
        return NULL;
}

int api_events_start(const char *home, struct api_events **ret, phy_error *err) {
        /* Declared before the first goto: clang refuses a jump over a cleanup. */
        _cleanup_free_ char *probe = NULL, *vms = NULL;
        int r = run_dir_path(home, "x", &probe, err);
        if (r < 0)
                return r;
        struct api_events *ev = calloc(1, sizeof *ev);
        if (!ev)
                return phy_error_set(err, ENOMEM, "out of memory");
        ev->ifd = ev->stop_fd = ev->vms_wd = -1;
        pthread_mutex_init(&ev->lock, NULL);
        ev->home = strdup(home);
        ev->run_root = strdup(dirname(probe));
        if (!ev->home || !ev->run_root) {
                r = phy_error_set(err, ENOMEM, "out of memory");
                goto fail;
        }
        if ((r = mkdir_p(ev->run_root, 0755)) < 0) {
                r = phy_error_set(err, -r, "cannot create the runtime directory '%s': %s", ev->run_root, strerror(-r));
                goto fail;
        }
        ev->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        ev->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (ev->ifd < 0 || ev->stop_fd < 0) {
                r = phy_error_set(err, errno, "cannot create an inotify fd: %s", strerror(errno));
                goto fail;
        }
        ev->root_wd = inotify_add_watch(ev->ifd, ev->run_root, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
        if (ev->root_wd < 0) {
                r = phy_error_set(err, errno, "cannot watch '%s': %s", ev->run_root, strerror(errno));
                goto fail;
        }
        /* Definitions come and go by rename in <home>/vms: "defined" events. */
        if (asprintf(&vms, "%s/vms", home) < 0) {
                vms = NULL;
                r = phy_error_set(err, ENOMEM, "out of memory");
                goto fail;
        }
        if ((r = mkdir_p(vms, 0700)) < 0) {
                r = phy_error_set(err, -r, "cannot create the VM directory '%s': %s", vms, strerror(-r));
                goto fail;
        }
        ev->vms_wd = inotify_add_watch(ev->ifd, vms, IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                                                             IN_ONLYDIR | IN_DONT_FOLLOW);
        if (ev->vms_wd < 0) {
                r = phy_error_set(err, errno, "cannot watch '%s': %s", vms, strerror(errno));
                goto fail;
        }
        scan(ev);       /* rediscovers the VMs already running */
        if ((r = pthread_create(&ev->thread, NULL, events_thread, ev)) != 0) {
                r = phy_error_set(err, r, "cannot start the event thread: %s", strerror(r));
                goto fail;
        }
        ev->running = true;
        *ret = ev;
        return 0;
fail:
        api_events_stop(ev);
        return r;
}

void api_events_stop(struct api_events *ev) {
        if (!ev)
                return;
        if (ev->running) {
                uint64_t one = 1;
                (void) !write(ev->stop_fd, &one, sizeof one);
                pthread_join(ev->thread, NULL);
        }
        for (size_t i = 0; i < ev->n_subs; i++) {
                if (ev->subs[i].wfd >= 0)
                        close(ev->subs[i].wfd);
                close(ev->subs[i].rfd);
        }
        for (size_t i = 0; i < ev->n_vms; i++)
                unwatch_pid(&ev->vms[i]);
        if (ev->ifd >= 0)
                close(ev->ifd);
        if (ev->stop_fd >= 0)
                close(ev->stop_fd);
        pthread_mutex_destroy(&ev->lock);
        free(ev->vms);
        free(ev->home);
        free(ev->run_root);
        free(ev);
}

int api_events_subscribe(struct api_events *ev, int *ret_fd) {
        int p[2];
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        pthread_mutex_lock(&ev->lock);
        if (ev->n_subs >= EVENTS_MAX_SUBS) {
                pthread_mutex_unlock(&ev->lock);
                close(p[0]);
                close(p[1]);
                return -EMFILE;
        }
        /* The stream opens with a comment, then each VM's current state. */
        static const char hello[] = ": phyllod events\n\n";
        (void) !write(p[1], hello, sizeof hello - 1);
        for (size_t i = 0; i < ev->n_vms; i++) {
                if (!ev->vms[i].state[0])
                        continue;
                _cleanup_free_ char *rec = state_record(ev->vms[i].name, ev->vms[i].state, NULL);
                if (rec)
                        (void) !write(p[1], rec, strlen(rec));
        }
        ev->subs[ev->n_subs++] = (struct sub) { .rfd = p[0], .wfd = p[1] };
        pthread_mutex_unlock(&ev->lock);
        *ret_fd = p[0];
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
        char *rec = NULL;
        if (asprintf(&rec, "event: %s\ndata: %s\n\n", event,
                     json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN)) < 0)
                return;
        pthread_mutex_lock(&ev->lock);
        broadcast(ev, rec);
        pthread_mutex_unlock(&ev->lock);
        free(rec);
}

/* SPDX-License-Identifier: MIT */
/* The VM watcher (watch.h): inotify over the run dirs and <home>/vms, a
 * pidfd on each active VM's monitor, the reconcile when one dies unsaid. */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "fileio.h"
#include "run/run.h"
#include "vm/vm.h"
#include "watch.h"

#define WATCH_MAX_VMS 4096

struct vm_watch {
        int wd;
        char name[VM_NAME_MAX + 1];
        char state[16];         /* last state seen, "" when none */
        unsigned guest_events;  /* state.json's guest event count last seen */
        bool seen;              /* read once: events before that are not news */
        int pidfd;              /* on the process run_watch_pid names, -1 when none */
        pid_t pid;
};

struct ops_watch {
        char *home, *run_root;
        int ifd, stop_fd, root_wd, vms_wd;
        pthread_t thread;
        bool running;
        pthread_mutex_t lock;   /* vms[] (the thread alone writes it), and the callbacks' order */
        struct vm_watch *vms;
        size_t n_vms;
        struct ops_watch_cb cb;
};

static struct vm_watch *find_wd(struct ops_watch *ev, int wd) {
        for (size_t i = 0; i < ev->n_vms; i++)
                if (ev->vms[i].wd == wd)
                        return &ev->vms[i];
        return NULL;
}

/* Reads state.json of w and reports a change of state, and the latest
 * guest event when their count moved. */
static void check_state(struct ops_watch *ev, struct vm_watch *w);

static void unwatch_pid(struct vm_watch *w) {
        if (w->pidfd >= 0)
                close(w->pidfd);
        w->pidfd = -1;
        w->pid = 0;
}

/* Thread only.  Follows the process whose end calls for a reconcile; runs
 * the reconcile when none lives any more. */
static void watch_pid(struct ops_watch *ev, struct vm_watch *w, const struct run_state *st) {
        bool stale = false;
        pid_t pid = run_watch_pid(st, w->name, &stale);
        if (pid == w->pid && w->pidfd >= 0)
                return;
        unwatch_pid(w);
        if (pid > 0) {
                int fd = exec_pidfd_open(pid);
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

static void check_state(struct ops_watch *ev, struct vm_watch *w) {
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
                char previous[sizeof w->state];
                snprintf(previous, sizeof previous, "%s", w->state);
                snprintf(w->state, sizeof w->state, "%s", now);
                if (ev->cb.state)
                        ev->cb.state(ev->cb.userdata, w->name, now, previous);
        }
        if (w->seen && st.guest_events > 0 && st.guest_events != w->guest_events && ev->cb.guest)
                ev->cb.guest(ev->cb.userdata, w->name, st.guest_event, st.guest_event_reason, st.guest_events);
        w->guest_events = st.guest_events;
        w->seen = true;
        pthread_mutex_unlock(&ev->lock);
}

static void add_vm(struct ops_watch *ev, const char *name) {
        if (!vm_name_valid(name) || ev->n_vms >= WATCH_MAX_VMS)
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

static void remove_wd(struct ops_watch *ev, int wd) {
        pthread_mutex_lock(&ev->lock);
        for (size_t i = 0; i < ev->n_vms; i++)
                if (ev->vms[i].wd == wd) {
                        unwatch_pid(&ev->vms[i]);
                        ev->vms[i] = ev->vms[--ev->n_vms];
                        break;
                }
        pthread_mutex_unlock(&ev->lock);
}

static void scan(struct ops_watch *ev) {
        DIR *d = opendir(ev->run_root);
        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));)
                if (de->d_type == DT_DIR && de->d_name[0] != '.')
                        add_vm(ev, de->d_name);
        closedir(d);
}

/* Thread only: the pidfds of the watched processes that ended. */
static void reap_ended(struct ops_watch *ev, const struct pollfd *p, size_t n) {
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

static void *watch_thread(void *arg) {
        struct ops_watch *ev = arg;
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
                                if ((ie->mask & IN_ISDIR) && ie->len && vm_name_valid(ie->name) && ev->cb.defined)
                                        ev->cb.defined(ev->cb.userdata, ie->name,
                                                       (ie->mask & (IN_MOVED_TO | IN_CREATE)) != 0);
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

int ops_watch_start(const char *home, const struct ops_watch_cb *cb, struct ops_watch **ret, phy_error *err) {
        /* Declared before the first goto: clang refuses a jump over a cleanup. */
        _cleanup_free_ char *probe = NULL, *vms = NULL;
        int r = run_dir_path(home, "x", &probe, err);
        if (r < 0)
                return r;
        struct ops_watch *ev = calloc(1, sizeof *ev);
        if (!ev)
                return phy_error_set(err, ENOMEM, "out of memory");
        ev->ifd = ev->stop_fd = ev->vms_wd = -1;
        ev->cb = *cb;
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
        if ((r = pthread_create(&ev->thread, NULL, watch_thread, ev)) != 0) {
                r = phy_error_set(err, r, "cannot start the VM watcher thread: %s", strerror(r));
                goto fail;
        }
        ev->running = true;
        *ret = ev;
        return 0;
fail:
        ops_watch_stop(ev);
        return r;
}

void ops_watch_stop(struct ops_watch *ev) {
        if (!ev)
                return;
        if (ev->running) {
                uint64_t one = 1;
                (void) !write(ev->stop_fd, &one, sizeof one);
                pthread_join(ev->thread, NULL);
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

void ops_watch_snapshot(struct ops_watch *w, void (*fn)(void *u, const struct ops_watch_vm *vms, size_t n), void *u) {
        pthread_mutex_lock(&w->lock);
        _cleanup_free_ struct ops_watch_vm *a = calloc(w->n_vms + 1, sizeof *a);
        size_t n = 0;
        for (size_t i = 0; a && i < w->n_vms; i++)
                if (w->vms[i].state[0])
                        a[n++] = (struct ops_watch_vm) { .name = w->vms[i].name, .state = w->vms[i].state };
        fn(u, a, n);
        pthread_mutex_unlock(&w->lock);
}

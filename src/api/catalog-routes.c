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
 * Served by the daemon only (phyllo calls src/catalog directly).  What
 * loads osinfo-db (tens of MB) or downloads runs in a `phyllo` child
 * (`catalog show --json`, `download --json`), so phyllod stays small at
 * idle and a download's memory and failures stay in its own process.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "api.h"
#include "catalog/catalog.h"
#include "cleanup.h"
#include "exec.h"
#include "fileio.h"
#include "ops/ops.h"

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
        pid_t pid;              /* the child while it may be signalled, else 0 */
        bool cancel;            /* DELETE asked for its end */
        char *part;             /* the partial file the child writes */
        /* the thread's own */
        int last_pct;
        enum catalog_phase last_phase;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Broadcast when a job leaves "running" (DELETE waits for it). */
static pthread_cond_t job_ended = PTHREAD_COND_INITIALIZER;

/* $PHYLLOME_PHYLLO, else the phyllo next to this phyllod (the build dir),
 * else the one in $PATH. */
static char *phyllo_path(void) {
        const char *v = getenv("PHYLLOME_PHYLLO");
        if (v && v[0] == '/')
                return strdup(v);
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
                self[n] = '\0';
                char *slash = strrchr(self, '/');
                if (slash && (size_t) (slash - self) + sizeof "/phyllo" <= sizeof self) {
                        memcpy(slash, "/phyllo", sizeof "/phyllo");
                        if (access(self, X_OK) == 0)
                                return strdup(self);
                }
        }
        return exec_find_in_path("phyllo");
}

/* Starts phyllo with argv[1..]; its stdout in *ret_fd; input (may be NULL,
 * at most a pipe's buffer: a password) on its stdin, never on its command
 * line.  The child dies with phyllod (PDEATHSIG).  -errno. */
static int spawn_phyllo_with(char **argv, const char *input, pid_t *ret_pid, int *ret_fd) {
        _cleanup_free_ char *exe = phyllo_path();
        if (!exe)
                return -ENOENT;
        if (input && strlen(input) > 4096)
                return -E2BIG;
        argv[0] = exe;
        int p[2], in[2] = { -1, -1 };
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        if (input && pipe2(in, O_CLOEXEC) < 0) {
                int e = errno;
                close(p[0]);
                close(p[1]);
                return -e;
        }
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        pid_t pid = null < 0 ? -1 : fork();
        if (pid == 0) {
                /* async-signal-safe calls only; phyllod's threads block
                 * SIGTERM (main.c), which the child must not inherit: a
                 * cancelled download ends it with SIGTERM */
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (dup2(input ? in[0] : null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(null, 2) < 0)
                        _exit(127);
                execv(exe, argv);
                _exit(127);
        }
        int e = errno;
        close(p[1]);
        if (null >= 0)
                close(null);
        if (input) {
                close(in[0]);
                /* fits the pipe's buffer: no wait for the child to read */
                if (pid > 0 && write(in[1], input, strlen(input)) < 0)
                        e = errno;
                close(in[1]);
        }
        if (pid < 0) {
                close(p[0]);
                return -(null < 0 ? ENOENT : e);
        }
        *ret_pid = pid;
        *ret_fd = p[0];
        return 0;
}

static int spawn_phyllo(char **argv, pid_t *ret_pid, int *ret_fd) {
        return spawn_phyllo_with(argv, NULL, ret_pid, ret_fd);
}

/* All of fd (at most max bytes), then closed; NULL when nothing came. */
static char *read_all_close(int fd, size_t max) {
        char *out = NULL;
        size_t len = 0;
        for (;;) {
                char buf[8192];
                ssize_t n = read(fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0 || len + (size_t) n > max)
                        break;
                char *b2 = realloc(out, len + (size_t) n + 1);
                if (!b2)
                        break;
                out = b2;
                memcpy(out + len, buf, (size_t) n);
                len += (size_t) n;
                out[len] = '\0';
        }
        close(fd);
        return out;
}

static int reap(pid_t pid) {
        int st;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}
static struct job *jobs[DOWNLOADS_MAX];
static unsigned n_jobs;

bool api_catalog_is(const char *path) {
        return strcmp(path, "/v1/catalog") == 0 || strncmp(path, "/v1/catalog/", 12) == 0 ||
               strcmp(path, "/v1/media/identify") == 0 ||
               strcmp(path, "/v1/downloads") == 0 || strncmp(path, "/v1/downloads/", 14) == 0;
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

/* Reads `phyllo download OS --json`: progress lines, then done or error. */
static void *job_thread(void *arg) {
        struct job *j = arg;
        char *argv[] = { NULL, "download", j->os, "--json", j->unverified ? "--unverified" : NULL, NULL };
        pid_t pid;
        int fd, r = spawn_phyllo(argv, &pid, &fd);
        char *path = NULL, msg[1024] = "";
        if (r < 0)
                snprintf(msg, sizeof msg, "cannot run phyllo for the download of %s: %s", j->os, strerror(-r));
        else {
                pthread_mutex_lock(&lock);
                j->pid = pid;
                if (j->cancel)
                        kill(pid, SIGTERM);
                pthread_mutex_unlock(&lock);
        }
        FILE *f = r < 0 ? NULL : fdopen(fd, "r");
        if (r >= 0 && !f)
                close(fd);
        char *line = NULL;
        size_t cap = 0;
        while (f && getline(&line, &cap, f) > 0) {
                json_object *o = json_tokener_parse(line), *v;
                if (!o)
                        continue;
                const char *ev = json_object_object_get_ex(o, "event", &v) ? json_object_get_string(v) : "";
                if (strcmp(ev, "progress") == 0) {
                        static const char *const names[] = { "checksums", "image", "verify", "done" };
                        const char *ph = json_object_object_get_ex(o, "phase", &v) ? json_object_get_string(v) : "";
                        enum catalog_phase phase = CATALOG_PHASE_DONE;
                        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                                if (strcmp(ph, names[i]) == 0)
                                        phase = (enum catalog_phase) i;
                        uint64_t done = json_object_object_get_ex(o, "done", &v) ? (uint64_t) json_object_get_int64(v) : 0;
                        uint64_t total = json_object_object_get_ex(o, "total", &v) ? (uint64_t) json_object_get_int64(v) : 0;
                        on_progress(phase, done, total, j);
                } else if (strcmp(ev, "done") == 0 && json_object_object_get_ex(o, "path", &v)) {
                        free(path);
                        path = strdup(json_object_get_string(v));
                } else if (strcmp(ev, "error") == 0 && json_object_object_get_ex(o, "message", &v))
                        snprintf(msg, sizeof msg, "%s", json_object_get_string(v));
                json_object_put(o);
        }
        free(line);
        if (f)
                fclose(f);
        if (r >= 0) {
                /* Ended but not reaped: a DELETE until j->pid is 0 signals
                 * this child, never a process that took its pid. */
                siginfo_t si;
                while (waitid(P_PID, (id_t) pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
                        ;
                pthread_mutex_lock(&lock);
                j->pid = 0;
                pthread_mutex_unlock(&lock);
        }
        int status = r < 0 ? -1 : reap(pid);
        if (status != 0 && !msg[0])
                snprintf(msg, sizeof msg, "phyllo download %s ended with status %d", j->os, status);
        pthread_mutex_lock(&lock);
        bool cancelled = j->cancel;
        pthread_mutex_unlock(&lock);
        /* A cancelled download leaves no partial file (a complete,
         * verified one stays: the child had renamed it already). */
        if (cancelled && j->part)
                unlink(j->part);
        pthread_mutex_lock(&lock);
        bool good = status == 0 && path && !cancelled;
        snprintf(j->state, sizeof j->state, "%s", good ? "done" : cancelled ? "cancelled" : "failed");
        if (!good)
                snprintf(j->error, sizeof j->error, "%s",
                         cancelled ? "the download was cancelled; its partial file is removed" : msg);
        j->path = good ? path : NULL;
        pthread_cond_broadcast(&job_ended);
        pthread_mutex_unlock(&lock);
        if (!good)
                free(path);
        publish(j);
        return NULL;
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
        _cleanup_(json_putp) json_object *b = body_json(body, len);
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

        struct job *j = calloc(1, sizeof *j);
        if (!j)
                return api_fail(ret, ENOMEM, "%s", "out of memory");
        snprintf(j->os, sizeof j->os, "%s", e->id);
        snprintf(j->state, sizeof j->state, "running");
        {
                /* where the child writes (catalog_download: <media dir>/<name>.part) */
                _cleanup_free_ char *dir = NULL, *name = NULL;
                phy_error perr = { 0 };
                if (catalog_media_dir(&dir, &perr) >= 0 && catalog_media_name(e, &name, &perr) >= 0 &&
                    asprintf(&j->part, "%s/%s.part", dir, name) < 0)
                        j->part = NULL;
        }
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
                                free(jobs[i]->part);
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
                free(j->part);
                free(j);
                if (busy)
                        return api_fail(ret, EBUSY, "%s is being downloaded already; see GET /v1/downloads", id);
                return api_fail(ret, EBUSY, "%s: too many downloads kept; try again when one ends", id);
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
                free(j->part);
                free(j);
                return api_fail(ret, r, "cannot start a thread for the download of %s", id);
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
                return api_fail(ret, ENOENT, "no download '%s'; see GET /v1/downloads", id);
        }
        *ret = json_object_new_object();
        json_object_object_add(*ret, "downloads", a);
        return 200;
}

/* DELETE /v1/downloads/{id}: the child is told to end (SIGTERM, SIGKILL
 * after 10 s) and the reply comes once the job has ended and its partial
 * file is gone: {id, state: "cancelled", ...}. */
static int delete_download(const char *id, const char *body, size_t len, json_object **ret) {
        if (body && len) {
                /* no member is known: a misspelt option is never ignored */
                _cleanup_(json_putp) json_object *b = body_json(body, len);
                if (!b || !json_object_is_type(b, json_type_object))
                        return api_fail(ret, EINVAL, "the request body must be a JSON object (or none) for %s",
                                        "a download's cancellation");
                json_object_object_foreach(b, k, v) {
                        (void) v;
                        return api_fail(ret, EINVAL, "unknown member '%s' in the request body for a download's "
                                        "cancellation; it takes none", k);
                }
        }
        pthread_mutex_lock(&lock);
        struct job *j = NULL;
        for (unsigned i = 0; i < n_jobs && !j; i++) {
                char buf[16];
                snprintf(buf, sizeof buf, "%u", jobs[i]->id);
                if (strcmp(buf, id) == 0)
                        j = jobs[i];
        }
        if (!j) {
                pthread_mutex_unlock(&lock);
                return api_fail(ret, ENOENT, "no download '%s'; see GET /v1/downloads", id);
        }
        if (strcmp(j->state, "running") != 0) {
                phy_error e = { 0 };
                phy_error_set_kind(&e, PHY_ERR_CONFLICT, EALREADY, "download %s of %s has ended already (%s)", id,
                                   j->os, j->state);
                pthread_mutex_unlock(&lock);
                return api_error_reply(&e, ret);
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
                        pthread_mutex_unlock(&lock);
                        return api_fail(ret, ETIMEDOUT, "download %s of %s did not end within 20 s", id, j->os);
                }
        }
        *ret = job_json(j);
        pthread_mutex_unlock(&lock);
        return 200;
}

/* POST /v1/media/identify {"iso": PATH}: `phyllo catalog identify PATH
 * --json` in a child (phyllod loads no osinfo-db), for a path the caller may
 * read.  404 with osinfo's sentence when no OS matches. */
static int post_identify(const struct api_ctx *c, const char *body, size_t len, json_object **ret) {
        _cleanup_(json_putp) json_object *b = body_json(body, len);
        json_object *iso = NULL;
        if (!b || !json_object_is_type(b, json_type_object))
                return api_fail(ret, EINVAL, "the request body must be a JSON object like %s",
                                "{\"iso\": \"/path/to/install.iso\"}");
        json_object_object_foreach(b, k, v) {
                (void) v;
                if (strcmp(k, "iso") != 0)
                        return api_fail(ret, EINVAL, "unknown member '%s' in the request body for an "
                                        "identification; allowed: iso", k);
        }
        if (!json_object_object_get_ex(b, "iso", &iso) || !json_object_is_type(iso, json_type_string))
                return api_fail(ret, EINVAL, "member '%s' (a string) is required", "iso");
        struct ops_ctx oc = { .root = c->root, .home = c->home, .uid = c->uid, .gid = c->gid, .groups = c->groups,
                              .n_groups = c->n_groups };
        phy_error err = { 0 };
        _cleanup_free_ char *path = NULL;
        if (ops_input_path(&oc, "ISO", json_object_get_string(iso), &path, &err) < 0)
                return api_error_reply(&err, ret);
        struct stat st;
        if (stat(path, &st) < 0)
                return api_fail(ret, errno, "cannot read the ISO '%s': %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
                return api_fail(ret, EINVAL, "the ISO '%s' is not a file", path);
        char *argv[] = { NULL, "catalog", "identify", path, "--json", NULL };
        pid_t pid;
        int fd, r = spawn_phyllo(argv, &pid, &fd);
        if (r < 0)
                return api_fail(ret, -r, "cannot run phyllo to identify '%s': %s", path, strerror(-r));
        _cleanup_free_ char *out = read_all_close(fd, 1024 * 1024);
        int status = reap(pid);
        json_object *j = status == 0 && out ? json_tokener_parse(out) : NULL;
        if (!j) {
                /* what phyllo said on stderr is lost; say what is known */
                if (status == 1)
                        return api_fail(ret, ENOENT, "no OS that osinfo-db knows matches the ISO '%s' (its volume id, "
                                        "publisher and application ids); choose a profile", path);
                return api_fail(ret, EIO, "phyllo catalog identify '%s' failed (status %d)", path, status);
        }
        *ret = j;
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
                return api_fail(ret, ENOENT, "the catalog has no OS '%s'; see GET /v1/catalog", os);
        /* osinfo's facts and the plan: `phyllo catalog show OS --json` */
        char *argv[] = { NULL, "catalog", "show", e->id, "--json", NULL };
        pid_t pid;
        int fd, r = spawn_phyllo(argv, &pid, &fd);
        if (r < 0)
                return api_fail(ret, -r, "cannot run phyllo to show %s: %s", e->id, strerror(-r));
        _cleanup_free_ char *out = read_all_close(fd, 4u * 1024 * 1024);
        int status = reap(pid);
        json_object *j = status == 0 && out ? json_tokener_parse(out) : NULL;
        if (!j)
                return api_fail(ret, EIO, "phyllo catalog show %s failed (status %d)", e->id, status);
        *ret = j;
        return 200;
}

int api_catalog_handle(const struct api_ctx *c, const char *method, const char *path, const char *body, size_t len,
                       json_object **ret) {
        *ret = NULL;
        bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
        const char *arg = NULL;
        if (strcmp(path, "/v1/media/identify") == 0)
                return post ? post_identify(c, body, len, ret)
                            : api_fail(ret, EOPNOTSUPP, "only POST is allowed on '%s'", path);
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
        if (get)
                return get_downloads(arg, ret);
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
        _cleanup_(json_putp) json_object *b = NULL;
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
        static const char *const opts[] = { NULL, "--user", NULL, NULL, "--timezone", "--locale", "--hostname",
                                            "--edition" };
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
        phy_error err = { 0 };
        _cleanup_free_ char *iso = NULL, *pwfile = NULL, *pw = NULL;
        if (ops_input_path(&oc, "ISO", json_object_get_string(v), &iso, &err) < 0)
                return api_error_reply(&err, reply);
        if (val[3]) {
                size_t n = 0;
                int r;
                /* phyllod reads it for the caller: only a file the caller could read itself */
                if (ops_input_path(&oc, "password file", val[3], &pwfile, &err) < 0)
                        return api_error_reply(&err, reply);
                /* Opened as checked: no symlink on the way (a swap after the check
                 * would have root read another file into the guest's answer). */
                _cleanup_close_ int pfd = open_resolved(pwfile, O_RDONLY | O_NONBLOCK, 0);
                struct stat st;
                char self[64];
                if (pfd < 0 || fstat(pfd, &st) < 0 || !S_ISREG(st.st_mode))
                        return api_fail(reply, pfd < 0 ? -pfd : EINVAL, "cannot read the password file '%s': %s",
                                        pwfile, pfd < 0 ? strerror(-pfd) : "not a regular file");
                snprintf(self, sizeof self, "/proc/self/fd/%d", pfd);
                if ((r = file_read_all(self, 4096, &pw, &n)) < 0)
                        return api_fail(reply, -r, "cannot read the password file '%s': %s", pwfile, strerror(-r));
        }
        char *argv[24] = { NULL, "catalog", "unattend", (char *) val[0], "--install-json", "--iso", iso,
                           "--password-file", "/dev/stdin" };
        size_t n = 9;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (opts[i] && val[i]) {
                        argv[n++] = (char *) opts[i];
                        argv[n++] = (char *) val[i];
                }
        if (json_object_object_get_ex(b, "drivers", NULL))
                argv[n++] = "--drivers";
        argv[n] = NULL;
        pid_t pid;
        int fd, r = spawn_phyllo_with(argv, pw ? pw : val[2], &pid, &fd);
        if (pw)
                explicit_bzero(pw, strlen(pw));
        if (r < 0)
                return api_fail(reply, -r, "cannot run phyllo for the answer file: %s", strerror(-r));
        _cleanup_free_ char *out = read_all_close(fd, 1024u * 1024);
        int status = reap(pid);
        _cleanup_(json_putp) json_object *j = out ? json_tokener_parse(out) : NULL;
        if (out)
                explicit_bzero(out, strlen(out));
        json_object *inst, *e;
        if (j && json_object_object_get_ex(j, "error", &e)) {
                /* the child's own error: its kind and sentence */
                json_object *kj = json_object_object_get(e, "kind"), *m = json_object_object_get(e, "message");
                phy_error_set_kind(&err, phy_error_kind_from_name(kj ? json_object_get_string(kj) : ""), EINVAL, "%s",
                                   m ? json_object_get_string(m) : "the answer file could not be made");
                return api_error_reply(&err, reply);
        }
        if (status != 0 || !j || !json_object_object_get_ex(j, "install", &inst))
                return api_fail(reply, EIO, "phyllo catalog unattend %s failed (status %d)", val[0], status);
        json_object_object_del(b, "unattended");
        json_object_object_add(b, "install", json_object_get(inst));
        if (!json_object_object_get_ex(b, "profile", NULL) && json_object_object_get_ex(j, "profile", &v))
                json_object_object_add(b, "profile", json_object_get(v));
        if (!(*ret_body = strdup(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN))))
                return api_fail(reply, ENOMEM, "%s", "out of memory");
        return 0;
}

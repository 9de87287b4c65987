/* SPDX-License-Identifier: MIT */
/* The runtime directory, state.json and the reconciliation of the recorded
 * state with the processes that really exist. */
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "dev/dev.h"
#include "dev/single-gpu.h"
#include "fileio.h"
#include "run-internal.h"
#include "runfile.h"
#include "run.h"
#include "vm/vm.h"

static const char *const state_names[] = {
        [RUN_STOPPED] = "stopped", [RUN_STARTING] = "starting", [RUN_RUNNING] = "running",
        [RUN_PAUSED] = "paused",   [RUN_STOPPING] = "stopping", [RUN_CRASHED] = "crashed",
        [RUN_FAILED] = "failed",
};

const char *run_state_name(enum run_state_kind k) {
        return (size_t) k < ELEMENTSOF(state_names) ? state_names[k] : "unknown";
}

int run_state_from_name(const char *s, enum run_state_kind *ret) {
        for (size_t i = 0; i < ELEMENTSOF(state_names); i++)
                if (s && strcmp(s, state_names[i]) == 0) {
                        *ret = (enum run_state_kind) i;
                        return 0;
                }
        return -EINVAL;
}

bool run_state_active(enum run_state_kind k) {
        return k == RUN_STARTING || k == RUN_RUNNING || k == RUN_PAUSED || k == RUN_STOPPING;
}

void run_state_done(struct run_state *s) {
        if (!s)
                return;
        free(s->error);
        free(s->log_tail);
        free(s->audio);
        free(s->audio_why);
        s->error = s->log_tail = s->audio = s->audio_why = NULL;
}

/* The longest file name a socket in the run dir gets. */
#define RUN_LONGEST_SOCKET "console.sock"

int run_dir_path(const char *home, const char *name, char **ret, phy_error *err) {
        char *p = NULL;
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        int r;
        if (getenv("PHYLLOME_HOME") || ((!xdg || !*xdg) && geteuid() != 0))
                r = asprintf(&p, "%s/run/%s", home, name);
        else if (xdg && *xdg)
                r = asprintf(&p, "%s/phyllome/%s", xdg, name);
        else
                r = asprintf(&p, "/run/phyllome/%s", name);
        if (r < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        struct sockaddr_un sa;
        if (strlen(p) + 1 + strlen(RUN_LONGEST_SOCKET) >= sizeof sa.sun_path) {
                r = phy_error_set(err, ENAMETOOLONG,
                                  "the runtime directory '%s' of VM '%s' is too long for a unix socket path "
                                  "(at most %zu bytes with '/%s'); use a shorter PHYLLOME_HOME or XDG_RUNTIME_DIR",
                                  p, name, sizeof sa.sun_path - 1, RUN_LONGEST_SOCKET);
                free(p);
                return r;
        }
        *ret = p;
        return 0;
}

int run_boot_id(char buf[static 40]) {
        _cleanup_free_ char *s = NULL;
        int r = root_read_attr("/", "/proc/sys/kernel/random/boot_id", &s);
        if (r < 0)
                return r;
        snprintf(buf, 40, "%s", s);
        return 0;
}

json_object *run_state_to_json(const struct run_state *s) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "state", json_object_new_string(run_state_name(s->state)));
        json_object_object_add(o, "unsupervised", json_object_new_boolean(s->unsupervised));
        json_object_object_add(o, "monitor_pid", json_object_new_int(s->monitor_pid));
        json_object_object_add(o, "qemu_pid", json_object_new_int(s->qemu_pid));
        json_object_object_add(o, "swtpm_pid", json_object_new_int(s->swtpm_pid));
        json_object_object_add(o, "started", json_object_new_int64(s->started));
        json_object_object_add(o, "boot_id", json_object_new_string(s->boot_id));
        json_object_object_add(o, "exit_status", json_object_new_int(s->exit_status));
        json_object_object_add(o, "exit_signal", json_object_new_int(s->exit_signal));
        json_object_object_add(o, "error", s->error ? json_object_new_string(s->error) : NULL);
        json_object_object_add(o, "log_tail", s->log_tail ? json_object_new_string(s->log_tail) : NULL);
        if (s->audio) {
                json_object *a = json_object_new_object();
                json_object_object_add(a, "backend", json_object_new_string(s->audio));
                json_object_object_add(a, "why_none", s->audio_why ? json_object_new_string(s->audio_why) : NULL);
                json_object_object_add(o, "sound", a);
        }
        if (s->needs_repair)
                json_object_object_add(o, "needs_repair", json_object_new_boolean(true));
        json_object_object_add(o, "stopped_by", s->stopped_by[0] ? json_object_new_string(s->stopped_by) : NULL);
        if (s->guest_events > 0) {
                json_object *g = json_object_new_object();
                json_object_object_add(g, "event", json_object_new_string(s->guest_event));
                json_object_object_add(g, "reason",
                                       s->guest_event_reason[0] ? json_object_new_string(s->guest_event_reason) : NULL);
                json_object_object_add(g, "count", json_object_new_int64(s->guest_events));
                json_object_object_add(o, "guest_event", g);
        }
        return o;
}

char *run_state_to_json_string(const struct run_state *s) {
        json_object *o = run_state_to_json(s);
        char *r = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return r;
}

int run_state_write_file(const char *path, const struct run_state *s, phy_error *err) {
        _cleanup_free_ char *text = run_state_to_json_string(s);
        if (!text)
                return phy_error_set(err, ENOMEM, "out of memory");
        return runfile_write(path, text, 0644, err);
}

static int get_int(json_object *o, const char *key, int64_t *ret) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || v == NULL)
                return -ENOENT;
        if (!json_object_is_type(v, json_type_int))
                return -EINVAL;
        *ret = json_object_get_int64(v);
        return 0;
}

static char *get_str(json_object *o, const char *key) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return strdup(json_object_get_string(v));
}

int run_state_read_file(const char *path, struct run_state *ret, phy_error *err) {
        json_object *o = NULL;
        int r = runfile_read_json(path, 1024 * 1024, &o, err);
        if (r < 0)
                return r;
        struct run_state s = { .exit_status = -1 };
        _cleanup_free_ char *st = get_str(o, "state");
        if (run_state_from_name(st, &s.state) < 0) {
                json_object_put(o);
                return phy_error_set(err, EBADMSG, "the VM state file '%s' has an unknown state '%s'", path,
                                     st ? st : "(none)");
        }
        int64_t v;
        if (get_int(o, "monitor_pid", &v) == 0 && v > 0 && v <= INT_MAX)
                s.monitor_pid = (pid_t) v;
        if (get_int(o, "qemu_pid", &v) == 0 && v > 0 && v <= INT_MAX)
                s.qemu_pid = (pid_t) v;
        if (get_int(o, "swtpm_pid", &v) == 0 && v > 0 && v <= INT_MAX)
                s.swtpm_pid = (pid_t) v;
        if (get_int(o, "started", &v) == 0)
                s.started = v;
        if (get_int(o, "exit_status", &v) == 0 && v >= -1 && v <= 255)
                s.exit_status = (int) v;
        if (get_int(o, "exit_signal", &v) == 0 && v >= 0 && v < 128)
                s.exit_signal = (int) v;
        _cleanup_free_ char *boot = get_str(o, "boot_id");
        if (boot)
                snprintf(s.boot_id, sizeof s.boot_id, "%s", boot);
        s.error = get_str(o, "error");
        s.log_tail = get_str(o, "log_tail");
        _cleanup_free_ char *by = get_str(o, "stopped_by");
        if (by && run_stopped_by_text(by))
                snprintf(s.stopped_by, sizeof s.stopped_by, "%s", by);
        json_object *g;
        if (json_object_object_get_ex(o, "sound", &g) && json_object_is_type(g, json_type_object)) {
                s.audio = get_str(g, "backend");
                s.audio_why = s.audio ? get_str(g, "why_none") : NULL;
        }
        if (json_object_object_get_ex(o, "guest_event", &g) && json_object_is_type(g, json_type_object)) {
                _cleanup_free_ char *what = get_str(g, "event"), *why = get_str(g, "reason");
                if (what && get_int(g, "count", &v) == 0 && v > 0 && v <= UINT_MAX) {
                        snprintf(s.guest_event, sizeof s.guest_event, "%s", what);
                        snprintf(s.guest_event_reason, sizeof s.guest_event_reason, "%s", why ? why : "");
                        s.guest_events = (unsigned) v;
                }
        }
        json_object_put(o);
        *ret = s;
        return 0;
}

/* /proc/<pid>/cmdline as a NUL-separated buffer; empty for zombies. */
static int read_cmdline(pid_t pid, char **ret, size_t *ret_len) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int) pid);
        return file_read_all(path, 256 * 1024, ret, ret_len);
}

bool run_pid_is_qemu(pid_t pid, const char *name) {
        if (pid <= 0)
                return false;
        _cleanup_free_ char *cl = NULL;
        size_t len = 0;
        if (read_cmdline(pid, &cl, &len) < 0 || len == 0)
                return false;
        _cleanup_free_ char *want = NULL;
        if (asprintf(&want, "guest=%s", name) < 0)
                return false;
        size_t wl = strlen(want);
        bool prev_name = false;
        for (size_t i = 0; i < len; i += strlen(cl + i) + 1) {
                const char *a = cl + i;
                if (prev_name && strncmp(a, want, wl) == 0 && (a[wl] == '\0' || a[wl] == ','))
                        return true;
                prev_name = strcmp(a, "-name") == 0;
        }
        return false;
}

/* /proc/<pid>/comm (a zombie keeps it). */
static int read_comm(pid_t pid, char **ret) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/comm", (int) pid);
        return root_read_attr("/", path, ret);
}

/* With no command line: in execve (alive: the monitor's hand-over to
 * phyllo-monitor) rather than on its way out or a zombie.  An exit sets
 * PF_EXITING before it lets go of the memory that holds the command line;
 * an exec sets neither that nor the zombie's state. */
static bool in_exec(pid_t pid) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        _cleanup_free_ char *st = NULL;
        if (root_read_attr("/", path, &st) < 0)
                return false;
        const char *p = strrchr(st, ')');
        char state = 0;
        unsigned long long flags = 0;
        /* state ppid pgrp session tty_nr tpgid flags */
        if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %llu", &state, &flags) != 2)
                return false;
        return state != 'Z' && state != 'X' && state != 'x' && !(flags & 0x4 /* PF_EXITING */);
}

static bool comm_is(pid_t pid, const char *want) {
        if (pid <= 0)
                return false;
        _cleanup_free_ char *c = NULL;
        if (read_comm(pid, &c) < 0 || strcmp(c, want) != 0)
                return false;
        /* A zombie keeps its comm, and so does a process on its way out:
         * neither has a command line left. */
        _cleanup_free_ char *cl = NULL;
        size_t len = 0;
        if (read_cmdline(pid, &cl, &len) < 0)
                return false;
        return len > 0 || in_exec(pid);
}

bool run_pid_is_monitor(pid_t pid) {
        return comm_is(pid, RUN_MONITOR_COMM);
}

bool run_pid_is_swtpm(pid_t pid) {
        return comm_is(pid, "swtpm");
}

static const char *const run_files_stale[] = {
        "qmp.sock", "console.sock", "spice.sock", "spice/spice.sock", "hvc0.sock", "qga.sock", "swtpm.sock",
        "stop-requested", "forwards.pending", "state.json.next",
};

void run_dir_remove_sockets(const char *run_dir) {
        for (size_t i = 0; i < ELEMENTSOF(run_files_stale); i++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", run_dir, run_files_stale[i]) >= 0)
                        (void) unlink(p);
        }
}

int run_dir_make(const char *dir, phy_error *err) {
        _cleanup_free_ char *parent = strdup(dir);
        char *slash = parent ? strrchr(parent, '/') : NULL;
        if (!slash || slash == parent)
                return phy_error_set(err, !parent ? ENOMEM : EINVAL, "cannot create the runtime directory '%s'",
                                     dir);
        *slash = '\0';
        /* The dir first: at every start but the first it is there, and so
         * is its parent chain (no mkdir of each component). */
        bool made = mkdir(dir, 0700) == 0 || errno == EEXIST;
        int r = made ? 0 : mkdir_p(parent, 0755);
        if (r < 0)
                return phy_error_set(err, -r, "cannot create '%s' for the runtime directory '%s': %s", parent, dir,
                                     strerror(-r));
        /* Only the exact mode an older 'phyllo wait' gave it: a mode someone
         * chose otherwise is theirs. */
        _cleanup_close_ int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (pfd >= 0 && fstat(pfd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 07777) == 0700)
                (void) fchmod(pfd, 0755);
        if (!made && mkdir(dir, 0700) < 0 && errno != EEXIST)
                return phy_error_set(err, errno, "cannot create the runtime directory '%s': %s", dir, strerror(errno));
        return 0;
}

void run_state_record_failed(const char *dir, const char *why) {
        _cleanup_free_ char *path = run_file(dir, "state.json");
        if (!path)
                return;
        _cleanup_run_state_ struct run_state s = { 0 };
        phy_error e = { 0 };
        if (run_state_read_file(path, &s, &e) < 0) {
                run_state_done(&s);
                s = (struct run_state) { .exit_status = -1 };
        }
        /* Never over a record of a VM that runs: only a start holding the
         * lock calls this, and then nothing runs. */
        s.state = RUN_FAILED;
        s.unsupervised = s.needs_repair = false;
        s.monitor_pid = s.qemu_pid = s.swtpm_pid = 0;
        free(s.error);
        s.error = strdup(why && *why ? why : "the start failed");
        free(s.log_tail);
        s.log_tail = NULL;
        (void) run_boot_id(s.boot_id);
        (void) run_state_write_file(path, &s, &e);
}

static const struct {
        const char *word, *text;
} stop_ways[] = {
        { "agent", "the guest shut down when its agent asked" },
        { "acpi", "the guest shut down on the power button" },
        { "sigterm", "terminated (SIGTERM): it did not shut down in time, or the stop was forced" },
        { "sigkill", "killed (SIGKILL): it did not end on SIGTERM" },
        { "kill", "killed (SIGKILL) by 'phyllo kill'" },
};

const char *run_stopped_by_text(const char *by) {
        for (size_t i = 0; by && i < ELEMENTSOF(stop_ways); i++)
                if (strcmp(by, stop_ways[i].word) == 0)
                        return stop_ways[i].text;
        return NULL;
}

void run_state_record_stop(const char *dir, const char *by) {
        _cleanup_free_ char *path = run_file(dir, "state.json");
        _cleanup_close_ int lock = -1;
        phy_error e = { 0 };
        if (!path || !run_stopped_by_text(by) || run_lock_take(dir, &lock, &e) < 0)
                return;
        _cleanup_run_state_ struct run_state s = { 0 };
        if (run_state_read_file(path, &s, &e) < 0 || run_state_active(s.state))
                return;
        snprintf(s.stopped_by, sizeof s.stopped_by, "%s", by);
        (void) run_state_write_file(path, &s, &e);
}

#define PENDING_FORWARDS "forwards.pending"

/* A record like the others (runfile): rewritten whole, atomically, with
 * the lines of this QEMU's run (an earlier run's are stale) and the new one. */
void run_forward_pending_add(const char *dir, pid_t qemu_pid, const char *spec) {
        _cleanup_free_ char *path = run_file(dir, PENDING_FORWARDS), *text = NULL, *out = NULL;
        size_t len = 0;
        FILE *f = path ? open_memstream(&out, &len) : NULL;
        if (!f)
                return;
        char prefix[24];
        int n = snprintf(prefix, sizeof prefix, "%d ", (int) qemu_pid);
        if (runfile_read(path, 64 * 1024, &text, NULL, NULL) == 0)
                for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                        if (strncmp(l, prefix, (size_t) n) == 0)
                                fprintf(f, "%s\n", l);
        fprintf(f, "%s%s\n", prefix, spec);
        if (fclose(f) == 0)
                (void) runfile_write(path, out, 0600, NULL);
}

bool run_forward_pending(const char *dir, pid_t qemu_pid, const char *spec) {
        _cleanup_free_ char *path = run_file(dir, PENDING_FORWARDS), *text = NULL, *want = NULL;
        if (!path || runfile_read(path, 64 * 1024, &text, NULL, NULL) < 0 ||
            asprintf(&want, "%d %s", (int) qemu_pid, spec) < 0)
                return false;
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                if (strcmp(l, want) == 0)
                        return true;
        return false;
}

int run_dir_check(const char *dir, phy_error *err) {
        struct stat st;
        if (lstat(dir, &st) < 0)
                return errno == ENOENT ? 0 : phy_error_set(err, errno, "cannot read the runtime directory '%s': %s",
                                                           dir, strerror(errno));
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
                return phy_error_set(err, EPERM,
                                     "the runtime directory '%s' is %s (owner uid %u, mode %04o): files others can "
                                     "write there are not trusted; 'phyllo start' repairs it, or remove it",
                                     dir, S_ISDIR(st.st_mode) ? "writable by another user" : "not a directory",
                                     (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777));
        return 0;
}

int run_open_at(const char *dir, const char *file, int flags, mode_t mode) {
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        int fd = openat(dfd, file, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode);
        return fd < 0 ? -errno : fd;
}

char *run_file(const char *run_dir, const char *file) {
        char *p = NULL;
        return asprintf(&p, "%s/%s", run_dir, file) < 0 ? NULL : p;
}

/* What the record in state.json means now.  Reads only: the repairs it
 * calls for are run_reconcile's. */
enum repair { REPAIR_NONE, REPAIR_REBOOT, REPAIR_CRASH };

static const char crash_message[] = "the VM's supervisor and QEMU ended without recording an exit";

static int state_judge(const char *name, const char *dir, const char *path, struct run_state *ret,
                       enum repair *ret_repair, phy_error *err) {
        _cleanup_run_state_ struct run_state s = { .exit_status = -1 };
        if (!path)
                return phy_error_set(err, ENOMEM, "out of memory");
        *ret_repair = REPAIR_NONE;
        /* Nothing in a directory another user can write is believed. */
        int r = run_dir_check(dir, err);
        if (r < 0)
                return r;
        r = run_state_read_file(path, &s, err);
        if (r == -ENOENT) {
                phy_error_clear(err);
                *ret = (struct run_state) { .state = RUN_STOPPED, .exit_status = -1 };
                return 0;
        }
        if (r < 0)
                return r;

        char boot[40] = "";
        (void) run_boot_id(boot);
        if (s.boot_id[0] && boot[0] && strcmp(s.boot_id, boot) != 0) {
                /* Host rebooted: nothing recorded can still be running. */
                *ret = (struct run_state) { .state = RUN_STOPPED, .exit_status = -1, .needs_repair = true };
                *ret_repair = REPAIR_REBOOT;
                return 0;
        }

        if (run_state_active(s.state) && !run_pid_is_monitor(s.monitor_pid)) {
                if (run_pid_is_qemu(s.qemu_pid, name)) {
                        s.unsupervised = true;
                        /* The monitor followed pause/resume; without it ask QEMU. */
                        _cleanup_free_ char *qmp = run_file(dir, "qmp.sock");
                        _cleanup_qmp_ struct qmp *q = NULL;
                        phy_error e2 = { 0 };
                        _cleanup_free_ char *st = NULL;
                        if (qmp && qmp_open_path(qmp, 2000, &q, &e2) == 0 && qmp_query_status(q, &st, &e2) == 0)
                                s.state = strcmp(st, "paused") == 0 ? RUN_PAUSED : RUN_RUNNING;
                } else {
                        /* Monitor and QEMU are gone without recording an exit:
                         * crashed, as the reconcile will record it. */
                        s.state = RUN_CRASHED;
                        free(s.error);
                        s.error = strdup(crash_message);
                        s.monitor_pid = s.qemu_pid = 0;
                        s.needs_repair = true;
                        *ret_repair = REPAIR_CRASH;
                }
        }
        *ret = s;
        s = (struct run_state) { 0 };
        return 0;
}

/* The run dir and its state.json. */
static int state_paths(const char *home, const char *name, char **ret_dir, char **ret_path, phy_error *err) {
        int r = run_dir_path(home, name, ret_dir, err);
        if (r < 0)
                return r;
        if (!(*ret_path = run_file(*ret_dir, "state.json")))
                return phy_error_set(err, ENOMEM, "out of memory");
        return 0;
}

int run_state_get(const char *home, const char *name, struct run_state *ret, phy_error *err) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        enum repair repair;
        int r = state_paths(home, name, &dir, &path, err);
        return r < 0 ? r : state_judge(name, dir, path, ret, &repair, err);
}

/* A process of the dead run that was killed a moment ago has no command
 * line left (its memory went first) but may still hold its files until it
 * has wholly ended: QEMU its image locks (a start right after failed with
 * "Failed to get "write" lock" in a CI run), the monitor the run lock.
 * Waited for on a pidfd (opened first: no reused pid is hit), up to 10 s;
 * a live process with a command line is another's (a reused pid). */
static void wait_dying(pid_t pid, const char *comm_prefix) {
        if (pid <= 0)
                return;
        _cleanup_close_ int pidfd = exec_pidfd_open(pid);
        if (pidfd < 0)
                return;
        _cleanup_free_ char *c = NULL, *cl = NULL;
        size_t len = 0;
        if (read_comm(pid, &c) < 0 || strncmp(c, comm_prefix, strlen(comm_prefix)) != 0)
                return;
        if (read_cmdline(pid, &cl, &len) == 0 && len > 0)
                return;
        (void) exec_pidfd_wait(pidfd, 10000);
}

/* The dead run's swtpm, ended before this returns: a start that follows at
 * once runs a new swtpm on the same state, whose lock the old one holds
 * until it is gone.  The pidfd first, then the name: no reused pid is hit. */
static void end_swtpm(pid_t pid) {
        if (pid <= 0)
                return;
        _cleanup_close_ int pidfd = exec_pidfd_open(pid);
        if (pidfd < 0 || !run_pid_is_swtpm(pid))
                return;
        (void) kill(pid, SIGTERM);
        if (!exec_pidfd_wait(pidfd, 3000)) {
                (void) kill(pid, SIGKILL);
                (void) exec_pidfd_wait(pidfd, 2000);
        }
}

int run_reconcile_locked(const char *home, const char *name, struct run_state *ret, phy_error *err) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        _cleanup_run_state_ struct run_state s = { 0 };
        enum repair repair;
        int r = state_paths(home, name, &dir, &path, err);
        if (r < 0 || (r = state_judge(name, dir, path, &s, &repair, err)) < 0)
                return r;
        /* An install run whose monitor died (or a reboot): its answer files
         * go, and with them the definition's [install]. */
        if (repair != REPAIR_NONE && run_install_cleanup(dir)) {
                phy_error e2 = { 0 };
                (void) vm_install_finish(home, name, &e2);
        }
        if (repair == REPAIR_REBOOT) {
                run_dir_remove_sockets(dir);
                (void) unlink(path);
        } else if (repair == REPAIR_CRASH) {
                /* The recorded swtpm, the sockets and the passed-through
                 * devices of a run whose supervisor died. */
                _cleanup_run_state_ struct run_state rec = { 0 };
                phy_error e2 = { 0 };
                if (run_state_read_file(path, &rec, &e2) == 0) {
                        wait_dying(rec.qemu_pid, "qemu-system");
                        wait_dying(rec.monitor_pid, RUN_MONITOR_COMM);
                        end_swtpm(rec.swtpm_pid);
                }
                s.swtpm_pid = 0;
                run_dir_remove_sockets(dir);
                phy_error_clear(&e2);
                /* Nobody else will: passed-through devices go back to the host now. */
                if (dev_give_back_all_recorded(dir, &e2) < 0) {
                        char *msg = NULL;
                        if (asprintf(&msg, "%s; %s; 'phyllo device give-back %s' tries again", s.error,
                                     e2.message, name) >= 0) {
                                free(s.error);
                                s.error = msg;
                        }
                        phy_error_clear(&e2);
                }
                s.needs_repair = false;
                if ((r = run_state_write_file(path, &s, err)) < 0)
                        return r;
        }
        s.needs_repair = false;
        if (ret) {
                *ret = s;
                s = (struct run_state) { 0 };
        }
        return 0;
}

int run_reconcile(const char *home, const char *name, struct run_state *ret, phy_error *err) {
        _cleanup_free_ char *dir = NULL;
        int r = run_dir_path(home, name, &dir, err);
        if (r < 0)
                return r;
        /* No run dir: never started here, nothing to repair. */
        if (access(dir, F_OK) < 0)
                return ret ? run_state_get(home, name, ret, err) : 0;
        /* A live (or starting) monitor holds the run lock for its whole
         * life: then there is nothing to repair, and no race with it. */
        _cleanup_close_ int lock = -1;
        r = run_lock_take(dir, &lock, err);
        if (r == -EBUSY) {
                phy_error_clear(err);
                return ret ? run_state_get(home, name, ret, err) : 0;
        }
        if (r < 0)
                return r;
        return run_reconcile_locked(home, name, ret, err);
}

pid_t run_watch_pid(const struct run_state *recorded, const char *name, bool *ret_stale) {
        *ret_stale = false;
        if (!run_state_active(recorded->state))
                return 0;
        if (run_pid_is_monitor(recorded->monitor_pid))
                return recorded->monitor_pid;
        if (run_pid_is_qemu(recorded->qemu_pid, name))
                return recorded->qemu_pid;
        *ret_stale = true;
        return 0;
}

bool run_is_active(const char *home, const char *name) {
        _cleanup_run_state_ struct run_state s = { 0 };
        phy_error err = { 0 };
        if (run_state_get(home, name, &s, &err) < 0)
                return false;
        return run_state_active(s.state) &&
               (run_pid_is_monitor(s.monitor_pid) || run_pid_is_qemu(s.qemu_pid, name));
}

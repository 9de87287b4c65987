/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A running VM: its runtime directory, its state file, the per-VM lock and
 * the supervisor ("monitor") process that owns QEMU and swtpm, in the
 * spirit of podman's conmon and OpenBSD vmd's per-VM process.
 *
 * Runtime directory (run_dir_path): <home>/run/<name> when PHYLLOME_HOME is
 * set, else $XDG_RUNTIME_DIR/phyllome/<name>, else /run/phyllome/<name> for
 * root and <home>/run/<name> for others.  It holds
 *   state.json    the state, pids, boot id, exit status, last error
 *                 (replaced atomically on every change)
 *   lock          flock()ed by the monitor for its whole life
 *   qmp.sock      QMP for phyllo commands (QEMU listens on it)
 *   console.sock  the monitor's serial console relay
 *   qemu.log      QEMU's stderr;  console.log (+ .1) the serial output
 *   stop-requested  written by stop/kill so an exit is not called a crash
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "error.h"
#include "strv.h"

enum run_state_kind {
        RUN_STOPPED = 0,
        RUN_STARTING,
        RUN_RUNNING,
        RUN_PAUSED,
        RUN_STOPPING,
        RUN_CRASHED,
        RUN_FAILED,      /* the last start failed; error says why */
};

struct run_state {
        enum run_state_kind state;
        bool unsupervised;      /* monitor gone, QEMU still alive (reconciled) */
        bool needs_repair;      /* stale record (crash, reboot): run_reconcile cleans up */
        pid_t monitor_pid, qemu_pid, swtpm_pid;   /* 0 when none */
        int64_t started;        /* unix time of the start, 0 when unknown */
        char boot_id[40];
        int exit_status;        /* QEMU's exit code, -1 when none */
        int exit_signal;        /* signal that killed QEMU, 0 when none */
        char *error;            /* last error (failed, crashed), or NULL */
        char *log_tail;         /* last lines of qemu.log/console.log at a crash, or NULL */
        /* The last of QEMU's guest events this run (RESET, SHUTDOWN, STOP,
         * RESUME, POWERDOWN, SUSPEND, WAKEUP, GUEST_PANICKED), its reason
         * ("guest-reset", "host-qmp-system-reset"...), and how many so far:
         * phyllod's event stream tells subscribers from the count. */
        char guest_event[24];
        char guest_event_reason[40];
        unsigned guest_events;
        /* Issue 11: the -audiodev driver of this run ("pa", "spice",
         * "none"), NULL without a sound device; audio_why says why a VM
         * whose display could carry sound has none. */
        char *audio;
        char *audio_why;
        /* Issue 19: how the last 'phyllo stop' or 'kill' ended the VM:
         * "agent", "acpi" (the guest shut down on the power button),
         * "sigterm" or "sigkill" (it did not within the timeout, or
         * --force), "kill"; "" when the guest shut down by itself or the
         * VM has not stopped since its start. */
        char stopped_by[16];
};

void run_state_done(struct run_state *s);
static inline void run_state_donep(struct run_state *s) { run_state_done(s); }
#define _cleanup_run_state_ _cleanup_(run_state_donep)

const char *run_state_name(enum run_state_kind k);     /* "running", ... */
int run_state_from_name(const char *s, enum run_state_kind *ret);
/* True for starting, running, paused and stopping. */
bool run_state_active(enum run_state_kind k);

/* The runtime directory of VM name (malloc'd).  -ENAMETOOLONG with a clear
 * message when a socket path in it would not fit a sockaddr_un. */
int run_dir_path(const char *home, const char *name, char **ret, phy_error *err);

/* Makes the runtime directory dir (from run_dir_path) the one way every
 * command does, whichever comes first (start, wait, logs --follow, a typed
 * passphrase): its parents 0755 (QEMU run as another user must traverse
 * them), dir itself 0700 (a start's monitor then sets its group and mode).
 * A parent of ours left 0700 by an older Phyllome (its 'wait' made it so)
 * is opened to 0755 again.  An existing dir is left as it is. */
int run_dir_make(const char *dir, phy_error *err);

/* Records in dir's state.json that a start failed, and why (state failed,
 * no pids): for a start that failed before its monitor ran, under the VM's
 * lock.  Best effort: a record that cannot be written is not an error of
 * the start's. */
void run_state_record_failed(const char *dir, const char *why);
/* Records how a stop ended the VM (stopped_by) once it stopped, under the
 * VM's lock (skipped when a start holds it already).  Best effort. */
void run_state_record_stop(const char *dir, const char *by);
/* Forwards added to a running VM whose backend (passt) takes forwards at
 * its start only: recorded as "<qemu pid> <spec>" in <dir>/forwards.pending,
 * so that a list says they wait for the next start (a new QEMU pid makes
 * the old lines stale by themselves).  Best effort. */
void run_forward_pending_add(const char *dir, pid_t qemu_pid, const char *spec);
bool run_forward_pending(const char *dir, pid_t qemu_pid, const char *spec);
/* A sentence for stopped_by ("the guest shut down on the power button"),
 * NULL for an unknown word or "". */
const char *run_stopped_by_text(const char *by);

/* 0 when dir is missing or a directory of ours that nobody else can write;
 * else -EPERM saying so: nothing found in it may be trusted. */
int run_dir_check(const char *dir, phy_error *err);

/* state.json <-> struct (exposed for the unit tests). */
int run_state_read_file(const char *path, struct run_state *ret, phy_error *err);
int run_state_write_file(const char *path, const struct run_state *s, phy_error *err);
char *run_state_to_json_string(const struct run_state *s);
struct json_object;
struct json_object *run_state_to_json(const struct run_state *s);

/* This boot's id (/proc/sys/kernel/random/boot_id) into buf[40]. */
int run_boot_id(char buf[static 40]);

/* True when pid is a live QEMU started for VM name: /proc/<pid>/cmdline has
 * "-name guest=<name>,...".  Zombies and reused pids are not. */
bool run_pid_is_qemu(pid_t pid, const char *name);
/* True when pid is a live Phyllome monitor (comm "phyllo-monitor"). */
bool run_pid_is_monitor(pid_t pid);
/* True when pid is a live swtpm. */
bool run_pid_is_swtpm(pid_t pid);

/*
 * The truth about VM name, read only (list and status): reads state.json and
 * judges it against the processes, changing nothing.  After a reboot (boot
 * id differs) the VM is stopped; with the monitor gone and QEMU alive it is
 * running (unsupervised=true; paused when QMP says so); with both gone and
 * the state active it is crashed.  After a reboot and after a crash the
 * record is stale and needs_repair is set: run_reconcile cleans up.  No
 * state file: stopped.
 */
int run_state_get(const char *home, const char *name, struct run_state *ret, phy_error *err);
/*
 * The repairs after a crash or a reboot, explicit (run by start, by
 * phyllod's watcher when a monitor ends, by 'phyllo status --repair'):
 * after a reboot the sockets and state.json go; when monitor and QEMU died
 * without recording an exit, the recorded swtpm is ended, the sockets go,
 * passed-through devices are given back to the host and state.json says
 * crashed.  Nothing is done while a monitor holds the run lock.  ret (may be
 * NULL) gets the state after the repairs.
 */
int run_reconcile(const char *home, const char *name, struct run_state *ret, phy_error *err);
/* For a watcher (phyllod): the process whose end calls for run_reconcile,
 * from a record as state.json holds it: an active VM's live monitor, else
 * its live QEMU (unsupervised).  0 when the VM is not active, or when
 * neither lives (*ret_stale is then set when the record is active: a
 * reconcile is due now). */
pid_t run_watch_pid(const struct run_state *recorded, const char *name, bool *ret_stale);
/* True when VM name has a live QEMU or monitor (delete refuses then). */
bool run_is_active(const char *home, const char *name);

/* The answer file of an unattended install run (docs/catalog.md): its bytes,
 * which live in memory and in the run dir only, for that run. */
struct run_answer {
        const char *data;
        size_t len;
};

struct run_start_opts {
        const char *root;       /* host root prefix (host facts) */
        const char *home;
        const char *name;
        bool paused;            /* start with the CPUs stopped */
        bool boot_once_cdrom;   /* boot from the CD-ROMs this start, even when the disk has an OS (issue 19) */
        bool force_tcg;         /* also $PHYLLOME_FORCE_TCG=1 */
        /* Tests: plays the kernel's part of the passthrough sysfs writes in a
         * fixture root (a dev_kernel_hook, src/dev/dev.h); NULL otherwise. */
        int (*dev_hook)(const char *root, const char *path, const char *value, void *userdata);
        void *dev_hook_data;
        /* Issue 5 (migration): QEMU waits for an incoming migration
         * ("-incoming <incoming>", e.g. "defer"); use with paused. */
        const char *incoming;
        /* The install run of a definition with [install]: QEMU boots the
         * installer with this answer and exits at the guest's first reboot;
         * then the answer's files go and [install] leaves the definition.
         * At that reboot the VM starts again from its disk (a new monitor).
         * NULL: a definition with [install] starts from its disk (a warning). */
        const struct run_answer *answer;
        /* When non-NULL, set on success to the state the monitor reported
         * (running or paused), as state.json says it then. */
        enum run_state_kind *ret_state;
        /* The caller ends soon after (phyllo's own start, not phyllod): the
         * monitor is forked once (setsid) and re-parented when the caller
         * exits, instead of a double fork.  A long-lived caller leaves this
         * false: it reaps no monitor. */
        bool caller_exits;
        /* The TCG warning only when it is new for this VM (<run_dir>/tcg-warned). */
        bool tcg_warn_once;
};

/* The sound server QEMU will reach when started now (as the user it runs
 * as): *ret_path the PulseAudio socket, or NULL and *ret_why saying why
 * there is none (both malloc'd).  The start does the same before the
 * argv; 'phyllo argv' too, to print the same command line. */
int run_sound_find(char **ret_path, char **ret_why, phy_error *err);

/*
 * Starts VM name: takes the lock ("VM 'x' is already running" when held),
 * resolves the model, builds the argv and forks the monitor, which outlives
 * the caller.  Returns once the monitor reports running/paused or failure;
 * a failure carries QEMU's own error text and leaves nothing running.
 * Warnings (TCG is slow, ...) are appended to ret_warnings when non-NULL.
 */
int run_start(const struct run_start_opts *o, strv *ret_warnings, phy_error *err);

/* Stops VM name: run_stop_via with RUN_STOP_DEFAULT (the guest agent or the
 * ACPI power button, unless force), waits timeout_s for QEMU to exit, then
 * SIGTERM, then SIGKILL; returns when the VM is stopped.
 * A stopped VM is not an error (*ret_was_running false). */
int run_stop(const char *home, const char *name, unsigned timeout_s, bool force,
             bool *ret_was_running, phy_error *err);
/* How stop asks the guest (docs/lifecycle.md).  DEFAULT: the guest agent's
 * guest-shutdown when the guest opened the agent's port, else (or when the
 * agent refuses) the ACPI power button; ACPI: the power button only; AGENT:
 * the agent only, -ENOTCONN / its refusal (the VM left running) when there
 * is none.  Each then waits timeout_s before SIGTERM and SIGKILL. */
enum run_stop_mode { RUN_STOP_DEFAULT, RUN_STOP_ACPI, RUN_STOP_AGENT };
/* "default", "acpi", "agent"; -EINVAL for anything else. */
int run_stop_mode_parse(const char *s, enum run_stop_mode *ret);
/* run_stop with a mode; *ret_ended_by (when non-NULL, on success of a
 * running VM) names what ended QEMU: "agent", "acpi", "sigterm", "sigkill". */
int run_stop_via(const char *home, const char *name, unsigned timeout_s, bool force, enum run_stop_mode mode,
                 bool *ret_was_running, const char **ret_ended_by, phy_error *err);
/* SIGKILL to QEMU now; returns when the VM is stopped. */
int run_kill(const char *home, const char *name, phy_error *err);
/* QMP stop / cont; returns once the state says paused / running. */
int run_pause(const char *home, const char *name, phy_error *err);
int run_resume(const char *home, const char *name, phy_error *err);

/* Waits (inotify + pidfd, no polling) until the VM is in `want` (RUN_STOPPED
 * matches stopped, crashed and failed; RUN_STARTING any state but starting).  timeout_ms < 0: no bound.
 * -ETIMEDOUT.  The state reached is left in *ret when non-NULL. */
int run_wait(const char *home, const char *name, enum run_state_kind want, int timeout_ms,
             struct run_state *ret, phy_error *err);

/* Connects to the monitor's console socket (a connected fd, O_CLOEXEC). */
int run_console_connect(const char *home, const char *name, int *ret_fd, phy_error *err);

/* Runs the monitor in this (already detached) process; never returns.
 * Internal to run_start, exposed for the monitor's own code. */

/* The per-VM lock (lock.c): flock(LOCK_EX|LOCK_NB) on <run_dir>/lock.
 * -EBUSY when held by someone else. */
int run_lock_take(const char *run_dir, int *ret_fd, phy_error *err);
/* Deletes VM name (vm_delete) unless it runs: -EBUSY while its monitor or
 * QEMU lives; the run lock is held during the removal so that no start
 * races it; its runtime directory (logs, last state) goes too. */
int run_vm_delete(const char *home, const char *name, phy_error *err);
/* A renamed VM keeps its uid (issue 19): in <home>/vm-uids its lines name
 * it anew, and a line of a deleted VM of the new name goes.  No table: 0. */
int run_vm_uid_rename(const char *home, const char *old_name, const char *new_name, phy_error *err);

/* Size at which console.log is rotated to console.log.1 (one old file is
 * kept; $PHYLLOME_CONSOLE_LOG_MAX overrides it, in bytes). */
#define RUN_CONSOLE_LOG_MAX (4u * 1024 * 1024)

/* SPDX-License-Identifier: MIT */
/* Controlling a running VM: stop (the guest agent's shutdown or the power
 * button, then SIGTERM, then SIGKILL, in the manner of vmd), kill,
 * pause/resume over QMP, waiting for a state.
 * Every signal goes only to a pid recorded for this VM and verified through
 * /proc/<pid>/cmdline.  Waits are on pidfds and inotify, never sleeps. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "dev/dev.h"
#include "dev/single-gpu.h"
#include "fileio.h"
#include "net/net.h"
#include "qemu/qmp.h"
#include "run-internal.h"
#include "run.h"

#define TERM_GRACE_MS 10000
#define START_SETTLE_MS 130000

static int not_running(const char *name, phy_error *err) {
        return phy_error_set(err, ESRCH, "VM '%s' is not running", name);
}

/* Between `start` taking the lock and its monitor's first state write, the
 * lock is held while state.json still tells the previous story.  Waits
 * (inotify on the run dir: the state write, or the lock's close when the
 * start died) until the state is active or the lock is free. */
static int settle_early_start(const char *home, const char *name, struct run_state *st, phy_error *err) {
        _cleanup_free_ char *dir = NULL;
        int r = run_dir_path(home, name, &dir, err);
        if (r < 0)
                return r;
        _cleanup_close_ int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (ino < 0 || inotify_add_watch(ino, dir, IN_MOVED_TO | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE) < 0)
                return 0;       /* no run dir yet: nothing was started */
        int64_t deadline = run_mono_ms() + START_SETTLE_MS;
        char buf[4096];
        while (!run_state_active(st->state)) {
                {
                        _cleanup_close_ int lock = -1;
                        if (run_lock_take(dir, &lock, NULL) != -EBUSY)
                                return 0;
                }
                /* Our own probe's close is an event too: drop what is queued,
                 * then read the state, which covers anything dropped. */
                while (read(ino, buf, sizeof buf) > 0)
                        ;
                run_state_done(st);
                if ((r = run_state_get(home, name, st, err)) < 0)
                        return r;
                if (run_state_active(st->state))
                        break;
                int64_t left = deadline - run_mono_ms();
                struct pollfd p = { .fd = ino, .events = POLLIN };
                if (left <= 0 || poll(&p, 1, (int) left) == 0)
                        return phy_error_set(err, ETIMEDOUT, "VM '%s' is being started but did not say so within %d s",
                                             name, START_SETTLE_MS / 1000);
        }
        return 0;
}

/* The state of a VM that must be running, with its QEMU verified. */
static int get_running(const char *home, const char *name, struct run_state *st, char **ret_dir, phy_error *err) {
        int r = run_state_get(home, name, st, err);
        if (r < 0)
                return r;
        if ((r = settle_early_start(home, name, st, err)) < 0)
                return r;
        if (st->state == RUN_STARTING && run_pid_is_monitor(st->monitor_pid)) {
                /* A start in progress: act on what it ends in. */
                run_state_done(st);
                r = run_wait(home, name, RUN_STARTING, START_SETTLE_MS, st, err);
                if (r < 0)
                        return r;
        }
        if (!run_state_active(st->state) || !run_pid_is_qemu(st->qemu_pid, name))
                return not_running(name, err);
        return run_dir_path(home, name, ret_dir, err);
}

static void mark_stop(const char *dir) {
        _cleanup_free_ char *p = run_file(dir, "stop-requested");
        int fd = p ? open(p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600) : -1;

        /* Only the file's existence matters to the monitor. */
        if (fd >= 0)
                close(fd);
}

/* After QEMU ended: the monitor records it and cleans up; without a monitor
 * (it was killed) this command does the monitor's last work itself. */
static int finish_stop(const char *home, const char *name, const char *dir, const struct run_state *before,
                       phy_error *err) {
        if (run_pid_is_monitor(before->monitor_pid)) {
                _cleanup_close_ int pfd = exec_pidfd_open(before->monitor_pid);
                if (pfd >= 0 && !exec_pidfd_wait(pfd, TERM_GRACE_MS))
                        return phy_error_set(err, ETIMEDOUT, "QEMU of VM '%s' ended but its monitor (pid %d) did "
                                             "not finish within %d s", name, (int) before->monitor_pid,
                                             TERM_GRACE_MS / 1000);
                return 0;
        }
        _cleanup_free_ char *path = run_file(dir, "state.json");
        if (!path)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* A monitor that ended before we looked recorded the end itself
         * (how QEMU exited): its record stays. */
        _cleanup_run_state_ struct run_state now = { 0 };
        phy_error e0 = { 0 };
        if (run_state_read_file(path, &now, &e0) == 0 && !run_state_active(now.state) && now.monitor_pid == 0)
                return 0;
        if (before->swtpm_pid > 0 && run_pid_is_swtpm(before->swtpm_pid)) {
                _cleanup_close_ int pfd = exec_pidfd_open(before->swtpm_pid);
                (void) kill(before->swtpm_pid, SIGTERM);
                if (pfd >= 0 && !exec_pidfd_wait(pfd, 3000) && run_pid_is_swtpm(before->swtpm_pid))
                        (void) kill(before->swtpm_pid, SIGKILL);
        }
        run_dir_remove_sockets(dir);
        /* The monitor would have given passed-through devices back. */
        int r = dev_give_back_all_recorded(dir, err);
        if (r < 0)
                return phy_error_prefix(err, "VM '%s' stopped, but its passed-through devices are not back "
                                        "('phyllo device give-back %s' tries again)", name, name);
        struct run_state s = *before;
        s.state = RUN_STOPPED;
        s.unsupervised = false;
        s.monitor_pid = s.qemu_pid = s.swtpm_pid = 0;
        s.error = NULL;
        s.log_tail = NULL;
        (void) home;
        return run_state_write_file(path, &s, err);
}

static int qmp_simple(const char *dir, const char *name, const char *cmd, phy_error *err) {
        _cleanup_free_ char *path = run_file(dir, "qmp.sock");
        _cleanup_qmp_ struct qmp *q = NULL;
        if (!path)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = qmp_open_path(path, 10000, &q, err);
        if (r < 0)
                return phy_error_prefix(err, "cannot reach QEMU of VM '%s'", name);
        r = qmp_command(q, cmd, NULL, 10000, NULL, err);
        if (r < 0)
                return phy_error_prefix(err, "QMP '%s' to VM '%s' failed", cmd, name);
        return 0;
}

/* Sends sig to QEMU (verified again right before) and waits on its pidfd. */
static bool signal_and_wait(int pidfd, pid_t pid, const char *name, int sig, int timeout_ms) {
        if (!run_pid_is_qemu(pid, name))
                return true;
        (void) kill(pid, sig);
        return pidfd < 0 || exec_pidfd_wait(pidfd, timeout_ms);
}

/* Does the running VM have an agent that opened its port?  Asked of QEMU
 * (query-chardev), not of the definition: what matters is this run. */
static bool agent_running(const char *dir) {
        _cleanup_free_ char *path = run_file(dir, "qmp.sock");
        _cleanup_qmp_ struct qmp *q = NULL;
        phy_error e = { 0 };
        return path && qmp_open_path(path, 10000, &q, &e) >= 0 && net_agent_port_open(q);
}

int run_stop_mode_parse(const char *s, enum run_stop_mode *ret) {
        static const char *const names[] = { [RUN_STOP_DEFAULT] = "default", [RUN_STOP_ACPI] = "acpi",
                                             [RUN_STOP_AGENT] = "agent" };
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
                if (strcmp(s, names[i]) == 0) {
                        *ret = (enum run_stop_mode) i;
                        return 0;
                }
        return -EINVAL;
}

int run_stop(const char *home, const char *name, unsigned timeout_s, bool force, bool *ret_was_running,
             phy_error *err) {
        return run_stop_via(home, name, timeout_s, force, RUN_STOP_DEFAULT, ret_was_running, NULL, err);
}

int run_stop_via(const char *home, const char *name, unsigned timeout_s, bool force, enum run_stop_mode mode,
                 bool *ret_was_running, const char **ret_ended_by, phy_error *err) {
        _cleanup_run_state_ struct run_state st = { 0 };
        _cleanup_free_ char *dir = NULL;
        int r = get_running(home, name, &st, &dir, err);
        if (r == -ESRCH) {
                phy_error_clear(err);
                if (ret_was_running)
                        *ret_was_running = false;
                return 0;
        }
        if (r < 0)
                return r;
        if (ret_was_running)
                *ret_was_running = true;
        /* A paused guest can answer neither the agent nor the power button. */
        bool polite = !force && st.state != RUN_PAUSED;
        /* Like virsh shutdown: the agent when the guest runs one (unless
         * acpi was asked for), the power button when it has none or
         * refuses; --mode agent alone fails rather than pressing the button. */
        /* A guest left frozen by a killed snapshot cannot shut down cleanly. */
        if (polite) {
                phy_error ignored = { 0 };
                (void) net_agent_thaw_abandoned(dir, 5000, &ignored);
        }
        bool agent = polite && mode != RUN_STOP_ACPI && agent_running(dir);
        if (mode == RUN_STOP_AGENT && !force && !agent)
                return phy_error_set(err, ENOTCONN, st.state == RUN_PAUSED ?
                                     "VM '%s' is paused, so its guest agent cannot answer; resume it, or stop it "
                                     "with --force" :
                                     "VM '%s' runs no guest agent (its agent port is not open); stop it with "
                                     "--mode acpi or --force", name);
        int wait_ms = (int) (timeout_s > 86400 ? 86400 : timeout_s) * 1000;
        _cleanup_close_ int pidfd = exec_pidfd_open(st.qemu_pid);
        mark_stop(dir);
        const char *by = NULL;
        bool gone = false;
        if (agent) {
                _cleanup_free_ char *sock = run_file(dir, "qga.sock");
                phy_error e2 = { 0 };
                r = sock ? net_agent_shutdown(sock, "powerdown", wait_ms < 10000 ? wait_ms : 10000, &e2) : -ENOMEM;
                if (r >= 0) {
                        by = "agent";
                        gone = pidfd < 0 || exec_pidfd_wait(pidfd, wait_ms);
                } else if (mode == RUN_STOP_AGENT) {
                        _cleanup_free_ char *p = run_file(dir, "stop-requested");
                        if (p)
                                (void) unlink(p);
                        if (e2.message[0])
                                *err = e2;
                        else
                                phy_error_set(err, -r, "out of memory");
                        return phy_error_prefix(err, "the guest agent of VM '%s' did not take the shutdown", name);
                }
        }
        if (polite && !by) {
                phy_error e2 = { 0 };
                by = "acpi";
                if (qmp_simple(dir, name, "system_powerdown", &e2) == 0 && pidfd >= 0)
                        gone = exec_pidfd_wait(pidfd, wait_ms);
                else if (pidfd >= 0)
                        /* The button reached a quick guest, and QEMU ended
                         * before its reply (seen on QEMU 10.0: powered off in
                         * 0.17 s, then reported as terminated): not a forced
                         * end if QEMU goes now. */
                        gone = exec_pidfd_wait(pidfd, wait_ms < 5000 ? wait_ms : 5000);
        }
        if (!gone) {
                by = "sigterm";
                gone = signal_and_wait(pidfd, st.qemu_pid, name, SIGTERM, TERM_GRACE_MS);
        }
        if (!gone) {
                by = "sigkill";
                gone = signal_and_wait(pidfd, st.qemu_pid, name, SIGKILL, TERM_GRACE_MS);
        }
        if (!gone)
                return phy_error_set(err, ETIMEDOUT, "QEMU of VM '%s' (pid %d) did not end even after SIGKILL",
                                     name, (int) st.qemu_pid);
        if (ret_ended_by)
                *ret_ended_by = by;
        if ((r = finish_stop(home, name, dir, &st, err)) < 0)
                return r;
        run_state_record_stop(dir, by);
        return 0;
}

int run_kill(const char *home, const char *name, phy_error *err) {
        _cleanup_run_state_ struct run_state st = { 0 };
        _cleanup_free_ char *dir = NULL;
        int r = get_running(home, name, &st, &dir, err);
        if (r < 0)
                return r;
        _cleanup_close_ int pidfd = exec_pidfd_open(st.qemu_pid);
        mark_stop(dir);
        if (!signal_and_wait(pidfd, st.qemu_pid, name, SIGKILL, TERM_GRACE_MS))
                return phy_error_set(err, ETIMEDOUT, "QEMU of VM '%s' (pid %d) did not end after SIGKILL", name,
                                     (int) st.qemu_pid);
        if ((r = finish_stop(home, name, dir, &st, err)) < 0)
                return r;
        run_state_record_stop(dir, "kill");
        return 0;
}

static int pause_resume(const char *home, const char *name, bool pause, phy_error *err) {
        _cleanup_run_state_ struct run_state st = { 0 };
        _cleanup_free_ char *dir = NULL;
        int r = get_running(home, name, &st, &dir, err);
        if (r < 0)
                return r;
        r = qmp_simple(dir, name, pause ? "stop" : "cont", err);
        if (r < 0)
                return r;
        if (st.unsupervised)
                return 0;       /* status asks QEMU itself */
        /* The monitor records the STOP/RESUME event; return once it has. */
        return run_wait(home, name, pause ? RUN_PAUSED : RUN_RUNNING, 10000, NULL, err);
}

int run_pause(const char *home, const char *name, phy_error *err) {
        return pause_resume(home, name, true, err);
}

int run_resume(const char *home, const char *name, phy_error *err) {
        return pause_resume(home, name, false, err);
}

static bool state_matches(const struct run_state *s, enum run_state_kind want) {
        if (want == RUN_STOPPED)
                return !run_state_active(s->state);
        /* RUN_STARTING as a wish: anything but starting (the start settled). */
        if (want == RUN_STARTING)
                return s->state != RUN_STARTING;
        return s->state == want;
}

int run_wait(const char *home, const char *name, enum run_state_kind want, int timeout_ms, struct run_state *ret,
             phy_error *err) {
        _cleanup_free_ char *dir = NULL;
        int r = run_dir_path(home, name, &dir, err);
        if (r < 0)
                return r;
        if ((r = run_dir_make(dir, err)) < 0)
                return r;
        _cleanup_close_ int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (ino < 0 || inotify_add_watch(ino, dir, IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_CREATE) < 0)
                return phy_error_set(err, errno, "cannot watch '%s': %s", dir, strerror(errno));
        int64_t deadline = timeout_ms < 0 ? -1 : run_mono_ms() + timeout_ms;
        for (;;) {
                _cleanup_run_state_ struct run_state st = { 0 };
                r = run_state_get(home, name, &st, err);
                if (r < 0)
                        return r;
                if (state_matches(&st, want)) {
                        if (ret) {
                                *ret = st;
                                st = (struct run_state) { 0 };
                        }
                        return 0;
                }
                /* Processes can end without a state write (kill -9 of both):
                 * their pidfds wake us then. */
                struct pollfd p[3] = { { .fd = ino, .events = POLLIN }, { .fd = -1 }, { .fd = -1 } };
                if (run_pid_is_monitor(st.monitor_pid))
                        p[1] = (struct pollfd) { .fd = exec_pidfd_open(st.monitor_pid), .events = POLLIN };
                if (run_pid_is_qemu(st.qemu_pid, name))
                        p[2] = (struct pollfd) { .fd = exec_pidfd_open(st.qemu_pid), .events = POLLIN };
                int left = -1;
                if (deadline >= 0) {
                        int64_t l = deadline - run_mono_ms();
                        left = l < 0 ? 0 : (int) l;
                }
                int n;
                do
                        n = poll(p, 3, left);
                while (n < 0 && errno == EINTR);
                if (p[1].fd >= 0)
                        close(p[1].fd);
                if (p[2].fd >= 0)
                        close(p[2].fd);
                if (n == 0)
                        return phy_error_set(err, ETIMEDOUT, "VM '%s' did not become %s within %d ms (it is %s)",
                                             name, run_state_name(want), timeout_ms, run_state_name(st.state));
                char buf[4096];
                while (read(ino, buf, sizeof buf) > 0)
                        ;
        }
}

int run_console_connect(const char *home, const char *name, int *ret_fd, phy_error *err) {
        _cleanup_run_state_ struct run_state st = { 0 };
        _cleanup_free_ char *dir = NULL;
        int r = get_running(home, name, &st, &dir, err);
        if (r < 0)
                return r;
        if (st.unsupervised)
                return phy_error_set(err, ENOTCONN, "VM '%s' runs without its monitor, which relayed the console; "
                                     "restart the VM to get the console back", name);
        _cleanup_free_ char *path = run_file(dir, "console.sock");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (!path || strlen(path) >= sizeof sa.sun_path)
                return phy_error_set(err, ENAMETOOLONG, "the console socket path of VM '%s' is too long", name);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return phy_error_set(err, errno, "cannot create a socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return phy_error_set(err, errno, "cannot connect to the console of VM '%s' at '%s': %s", name, path,
                                     strerror(errno));
        *ret_fd = TAKE_FD(fd);
        return 0;
}

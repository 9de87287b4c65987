/* SPDX-License-Identifier: MIT */
/*
 * run_start() and the per-VM monitor.  The caller resolves the model and
 * takes the lock, then double-forks the monitor (setsid) so that it outlives
 * the command.  The monitor creates every socket and passes the fds to
 * swtpm and QEMU, reports "running" or the failure back through a pipe, and
 * then sleeps in one epoll loop (signalfd, pidfds, serial, console clients,
 * QMP events) with no timer: an idle VM costs its monitor no wakeups.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "dev/dev.h"
#include "dev/helper.h"
#include "dev/single-gpu.h"
#include "fileio.h"
#include "host/host.h"
#include "net/net.h"
#include "paths.h"
#include "qemu/argv.h"
#include "qemu/caps.h"
#include "qemu/tools.h"
#include "run-internal.h"
#include "run.h"
#include "vm/profile.h"
#include "vm/vm.h"

#define MAX_CONSOLE_CLIENTS 16
#define START_TIMEOUT_MS 120000

/* Everything the monitor needs, prepared by run_start before the fork. */
struct start_ctx {
        const char *name;
        const char *root;               /* host root prefix: where devices move to vfio-pci */
        dev_kernel_hook dev_hook;       /* tests only, see run_start_opts */
        void *dev_hook_data;
        char *run_dir;
        char *vm_dir;
        struct vm_model model;          /* vm_model_make: defaults filled, the disks' O_DIRECT probed */
        struct host_facts host;
        struct qemu_tools tools;
        struct qemu_caps caps;
        bool have_caps;
        struct run_creds creds;
        bool paused, force_tcg;
        const char *incoming;           /* -incoming (migration destination), or NULL */
        char *audio_server, *audio_why; /* the sound server QEMU's user reaches, or why none (sound.c) */
        bool run_dir_untrusted;         /* others could write it: emptied before use */
        int lock_fd;
        int report_fd;          /* pipe to the starting command */
};

struct monitor {
        struct start_ctx *c;
        struct run_state st;
        char *state_path, *qemu_log, *console_log, *console_log1, *stop_marker;
        int epfd, sigfd;
        int serial_fd;          /* our end of the serial socketpair */
        int console_listen;
        int clients[MAX_CONSOLE_CLIENTS];
        int qemu_pidfd, swtpm_pidfd;
        struct net_companions net;      /* passt, virtiofsd (src/net) */
        struct dev_vfio_owners vfio;    /* /dev/vfio/GROUP owners before QEMU got them */
        struct qmp *qmp;
        int clog_fd;
        size_t clog_size, clog_max;
        bool stop_requested;
        bool qemu_exited;
        int qemu_status;
};

/* --- the report pipe: records of a type byte, a length and the text --- */

static void report(int fd, char type, const char *text) {
        if (fd < 0)
                return;
        size_t n = strlen(text);
        unsigned char hdr[5] = { (unsigned char) type, (unsigned char) (n >> 24), (unsigned char) (n >> 16),
                                 (unsigned char) (n >> 8), (unsigned char) n };
        if (write(fd, hdr, sizeof hdr) != (ssize_t) sizeof hdr)
                return;
        for (size_t off = 0; off < n;) {
                ssize_t w = write(fd, text + off, n - off);
                if (w <= 0)
                        return;
                off += (size_t) w;
        }
}

/* --- state --- */

static void state_save(struct monitor *m) {
        phy_error e = { 0 };
        (void) run_state_write_file(m->state_path, &m->st, &e);
}

static void set_error(struct run_state *st, const char *msg) {
        free(st->error);
        st->error = msg ? strdup(msg) : NULL;
}

/* "qemu.log" and "console.log" tails for a crash report. */
static char *crash_tail(struct monitor *m) {
        _cleanup_free_ char *q = run_file_tail(m->qemu_log, 10);
        _cleanup_free_ char *c = run_file_tail(m->console_log, 10);
        char *r = NULL;
        if (asprintf(&r, "qemu.log:\n%s\nconsole.log:\n%s", q ? q : "", c ? c : "") < 0)
                return NULL;
        return r;
}

/* --- sockets --- */

static int listen_unix(const char *path, phy_error *err) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path)
                return phy_error_set(err, ENAMETOOLONG, "the socket path '%s' is too long", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return phy_error_set(err, errno, "cannot create a socket: %s", strerror(errno));
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(fd, 16) < 0)
                return phy_error_set(err, errno, "cannot listen on '%s': %s", path, strerror(errno));
        return TAKE_FD(fd);
}

static int epoll_add(int epfd, int fd, uint32_t events) {
        struct epoll_event ev = { .events = events, .data.fd = fd };
        return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* --- console --- */

static void clog_open(struct monitor *m, bool rotate) {
        if (m->clog_fd >= 0)
                close(m->clog_fd);
        if (rotate)
                (void) rename(m->console_log, m->console_log1);
        /* The run dir is ours alone; no symlink is followed all the same. */
        int fd = run_open_at(m->c->run_dir, "console.log", O_WRONLY | O_CREAT | O_APPEND | (rotate ? O_TRUNC : 0), 0640);
        m->clog_fd = fd < 0 ? -1 : fd;
        m->clog_size = 0;
        struct stat s;
        if (m->clog_fd >= 0 && fstat(m->clog_fd, &s) == 0)
                m->clog_size = (size_t) s.st_size;
}

static void write_all(int fd, const char *buf, size_t n) {
        while (n > 0) {
                ssize_t w = write(fd, buf, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return;
                buf += w;
                n -= (size_t) w;
        }
}

/* "-- start 2026-12-05 19:48:02 --" (local time) opens each run's console
 * log, so `phyllo logs` shows where the current run begins. */
static void clog_start_line(struct monitor *m) {
        char line[64];
        struct tm tm;
        time_t now = time(NULL);
        size_t n = localtime_r(&now, &tm) ? strftime(line, sizeof line, "-- start %Y-%m-%d %H:%M:%S --\n", &tm) : 0;
        if (n > 0 && m->clog_fd >= 0) {
                write_all(m->clog_fd, line, n);
                m->clog_size += n;
        }
}

static void client_drop(struct monitor *m, int i) {
        if (m->clients[i] >= 0) {
                (void) epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->clients[i], NULL);
                close(m->clients[i]);
                m->clients[i] = -1;
        }
}

/* Serial output: into console.log (rotated at RUN_CONSOLE_LOG_MAX) and to
 * every attached client; a client that cannot keep up is dropped rather than
 * stalling the guest's console. */
static bool serial_read(struct monitor *m) {
        char buf[8192];
        ssize_t n = read(m->serial_fd, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return true;
        if (n <= 0)
                return false;
        if (m->clog_size + (size_t) n > m->clog_max)
                clog_open(m, true);
        if (m->clog_fd >= 0) {
                write_all(m->clog_fd, buf, (size_t) n);
                m->clog_size += (size_t) n;
        }
        for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++) {
                if (m->clients[i] < 0)
                        continue;
                ssize_t w = send(m->clients[i], buf, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w != n)
                        client_drop(m, i);
        }
        return true;
}

static void console_accept(struct monitor *m) {
        int fd = accept4(m->console_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
                return;
        for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++)
                if (m->clients[i] < 0) {
                        if (epoll_add(m->epfd, fd, EPOLLIN) < 0)
                                break;
                        m->clients[i] = fd;
                        return;
                }
        close(fd);      /* too many clients */
}

static void client_input(struct monitor *m, int i) {
        char buf[4096];
        ssize_t n = read(m->clients[i], buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n <= 0) {
                client_drop(m, i);
                return;
        }
        if (m->serial_fd >= 0)
                write_all(m->serial_fd, buf, (size_t) n);
}

/* --- QMP events --- */

/* The guest's side of QEMU's events, kept in state.json for phyllod's
 * event stream (a RESET changes no state, so it would go unseen). */
static bool record_guest_event(struct monitor *m, const char *what, json_object *ev) {
        static const char *const kinds[] = { "RESET", "SHUTDOWN", "STOP", "RESUME", "POWERDOWN", "SUSPEND", "WAKEUP",
                                             "GUEST_PANICKED" };
        bool known = false;
        for (size_t i = 0; i < ELEMENTSOF(kinds) && !known; i++)
                known = strcmp(what, kinds[i]) == 0;
        if (!known)
                return false;
        json_object *data, *reason, *action;
        const char *why = "";
        if (json_object_object_get_ex(ev, "data", &data)) {
                if (json_object_object_get_ex(data, "reason", &reason) && json_object_is_type(reason, json_type_string))
                        why = json_object_get_string(reason);
                else if (json_object_object_get_ex(data, "action", &action) &&
                         json_object_is_type(action, json_type_string))
                        why = json_object_get_string(action);     /* GUEST_PANICKED */
        }
        snprintf(m->st.guest_event, sizeof m->st.guest_event, "%s", what);
        snprintf(m->st.guest_event_reason, sizeof m->st.guest_event_reason, "%s", why);
        m->st.guest_events++;
        return true;
}

static void qmp_events(struct monitor *m) {
        for (;;) {
                json_object *ev = NULL;
                phy_error e = { 0 };
                int r = qmp_next_event(m->qmp, 0, &ev, &e);
                if (r == -EAGAIN)
                        return;
                if (r < 0) {
                        /* QEMU is going away; its pidfd tells when. */
                        (void) epoll_ctl(m->epfd, EPOLL_CTL_DEL, qmp_fd(m->qmp), NULL);
                        qmp_close(m->qmp);
                        m->qmp = NULL;
                        return;
                }
                json_object *name;
                const char *what = json_object_object_get_ex(ev, "event", &name) ? json_object_get_string(name) : "";
                enum run_state_kind before = m->st.state;
                bool recorded = record_guest_event(m, what, ev);
                if (strcmp(what, "STOP") == 0 && m->st.state != RUN_STOPPING)
                        m->st.state = RUN_PAUSED;
                else if (strcmp(what, "RESUME") == 0 && m->st.state != RUN_STOPPING)
                        m->st.state = RUN_RUNNING;
                else if (strcmp(what, "SHUTDOWN") == 0)
                        m->st.state = RUN_STOPPING;
                json_object_put(ev);
                if (m->st.state != before || recorded)
                        state_save(m);
        }
}

/* --- children --- */

static void stop_swtpm(struct monitor *m) {
        if (m->st.swtpm_pid <= 0)
                return;
        /* --terminate ends swtpm once QEMU's end closes; give it a moment. */
        if (m->swtpm_pidfd < 0 || !run_pidfd_wait(m->swtpm_pidfd, 3000)) {
                (void) kill(m->st.swtpm_pid, SIGTERM);
                if (m->swtpm_pidfd < 0 || !run_pidfd_wait(m->swtpm_pidfd, 3000))
                        (void) kill(m->st.swtpm_pid, SIGKILL);
        }
        while (waitpid(m->st.swtpm_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        m->st.swtpm_pid = 0;
}

/* Reaps QEMU and swtpm by pid (the monitor has no other children).  A pid
 * already reaped (ECHILD) counts as ended, so a readable pidfd never spins. */
static bool reaped(pid_t pid, int *status) {
        pid_t r;
        do
                r = waitpid(pid, status, WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r < 0 && errno == ECHILD) {
                *status = 0;
                return true;
        }
        return r == pid;
}

static void reap(struct monitor *m) {
        int status;
        if (!m->qemu_exited && m->st.qemu_pid > 0 && reaped(m->st.qemu_pid, &status)) {
                m->qemu_exited = true;
                m->qemu_status = status;
        }
        if (m->st.swtpm_pid > 0 && reaped(m->st.swtpm_pid, &status)) {
                m->st.swtpm_pid = 0;
                if (m->swtpm_pidfd >= 0) {
                        (void) epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->swtpm_pidfd, NULL);
                        close(m->swtpm_pidfd);
                        m->swtpm_pidfd = -1;
                }
                if (!m->qemu_exited) {
                        set_error(&m->st, "swtpm ended while the VM was running; see swtpm.log");
                        state_save(m);
                }
        }
}

static bool stop_marker_exists(struct monitor *m) {
        return access(m->stop_marker, F_OK) == 0;
}

/* After 'phyllo migrate' the source QEMU is quit: <run_dir>/migrated
 * (written by store_migrate) holds "migrated to ...", kept as the note of
 * the stopped state so that status says where the VM went. */
static void record_migrated(struct monitor *m) {
        _cleanup_free_ char *p = run_file(m->c->run_dir, "migrated");
        _cleanup_free_ char *text = NULL;
        size_t len;
        if (!p || run_read_nofollow(p, 1024, &text, &len) < 0)
                return;
        (void) unlink(p);
        while (len > 0 && text[len - 1] == '\n')
                text[--len] = '\0';
        if (m->st.state == RUN_STOPPED && len > 0)
                set_error(&m->st, text);
}

/* Records how QEMU ended: a clean exit or a requested stop is "stopped",
 * anything else "crashed" with the status and the last log lines. */
static void record_exit(struct monitor *m) {
        int s = m->qemu_status;
        bool requested = m->stop_requested || stop_marker_exists(m);
        m->st.exit_status = WIFEXITED(s) ? WEXITSTATUS(s) : -1;
        m->st.exit_signal = WIFSIGNALED(s) ? WTERMSIG(s) : 0;
        free(m->st.log_tail);
        m->st.log_tail = NULL;
        if ((WIFEXITED(s) && WEXITSTATUS(s) == 0) || requested) {
                m->st.state = RUN_STOPPED;
                set_error(&m->st, NULL);
        } else {
                char msg[256];
                if (WIFSIGNALED(s))
                        snprintf(msg, sizeof msg, "QEMU was killed by signal %d (%s)", WTERMSIG(s),
                                 sigabbrev_np(WTERMSIG(s)) ? sigabbrev_np(WTERMSIG(s)) : "?");
                else
                        snprintf(msg, sizeof msg, "QEMU exited with status %d", WEXITSTATUS(s));
                m->st.state = RUN_CRASHED;
                set_error(&m->st, msg);
                m->st.log_tail = crash_tail(m);
        }
        m->st.qemu_pid = 0;
        record_migrated(m);
}

/* QEMU is gone: passed-through PCI devices go back to their host drivers
 * (a no-op without <run_dir>/devices.state).  A failure stays recorded for
 * the next try and is added to the VM's error. */
static void give_back_devices(struct monitor *m) {
        phy_error e = { 0 };
        /* The GPU is back on its driver before the host display takes it again. */
        int r = dev_passthrough_restore(m->c->root, m->c->run_dir, m->c->dev_hook, m->c->dev_hook_data, &e);
        phy_error e2 = { 0 };
        int r2 = dev_single_gpu_restore_host(m->c->run_dir, m->c->dev_hook, m->c->dev_hook_data, r < 0 ? &e2 : &e);
        if (r >= 0 && r2 >= 0)
                return;
        _cleanup_free_ char *msg = NULL;
        if (asprintf(&msg, "%s%s%s; 'phyllo device give-back %s' tries again", m->st.error ? m->st.error : "",
                     m->st.error ? "; " : "", e.message, m->c->name) >= 0)
                set_error(&m->st, msg);
}

/* Typed passphrases of key = prompt disks (written by the command that
 * started the VM, <run dir>/key-disk-<name>): QEMU's, then gone as soon as
 * it has read them. */
static int keys_for_qemu(const struct start_ctx *c, phy_error *err) {
        for (size_t i = 0; i < c->model.vm.n_disks; i++) {
                if (!c->model.vm.disks[i].key_prompt)
                        continue;
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/key-disk-%s", c->run_dir, c->model.vm.disks[i].name) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if (access(p, F_OK) < 0)
                        return phy_error_set(err, ENOKEY, "disk '%s' of VM '%s' is encrypted with a typed passphrase "
                                             "(key = prompt) and none was given; start it with 'phyllo start %s' on "
                                             "a terminal", c->model.vm.disks[i].name, c->name, c->name);
                if (c->creds.drop && lchown(p, c->creds.uid, c->creds.gid) < 0)
                        return phy_error_set(err, errno, "cannot hand '%s' to QEMU's user: %s", p, strerror(errno));
        }
        return 0;
}

/* A key file's contents in a sealed memfd that QEMU reads as
 * /proc/self/fd/N: the file itself stays the user's (0600), whichever uid
 * QEMU runs as.  -1 when the disk has no key file. */
static int key_memfd(const struct start_ctx *c, const struct vm_disk *d, phy_error *err) {
        if (!d->key_file)
                return -1;
        _cleanup_free_ char *path = vm_path_resolve(c->vm_dir, d->key_file);
        if (!path)
                return phy_error_set(err, ENOMEM, "out of memory");
        _cleanup_close_ int in = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (in < 0 || fstat(in, &st) < 0)
                return phy_error_set(err, errno, "cannot read the key file '%s' of disk '%s': %s", path, d->name,
                                     strerror(errno));
        if (!S_ISREG(st.st_mode) || st.st_size > 64 * 1024)
                return phy_error_set(err, EINVAL, "the key file '%s' of disk '%s' is not a regular file of at most "
                                     "64 KiB", path, d->name);
        char buf[64 * 1024];
        ssize_t n;
        do
                n = read(in, buf, sizeof buf);
        while (n < 0 && errno == EINTR);
        _cleanup_close_ int fd = memfd_create("phyllome-key", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        int r = n < 0 ? -errno : fd < 0 ? -errno : 0;
        if (r == 0 && write(fd, buf, (size_t) n) != n)
                r = errno ? -errno : -EIO;
        explicit_bzero(buf, sizeof buf);
        if (r == 0 && (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0 ||
                       lseek(fd, 0, SEEK_SET) < 0))
                r = -errno;
        if (r < 0)
                return phy_error_set(err, -r, "cannot pass the key file '%s' of disk '%s' to QEMU: %s", path, d->name,
                                     strerror(-r));
        return TAKE_FD(fd);
}

static void keys_forget(const struct start_ctx *c) {
        for (size_t i = 0; i < c->model.vm.n_disks; i++) {
                _cleanup_free_ char *p = NULL;
                if (c->model.vm.disks[i].key_prompt && asprintf(&p, "%s/key-disk-%s", c->run_dir, c->model.vm.disks[i].name) >= 0)
                        (void) unlink(p);
        }
}

/* Ends everything the VM had and records the final state. */
static void monitor_cleanup(struct monitor *m) {
        keys_forget(m->c);
        dev_vfio_restore_owners(m->c->root, &m->vfio);
        dev_vfio_owners_forget(m->c->run_dir);
        give_back_devices(m);
        for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++)
                client_drop(m, i);
        stop_swtpm(m);
        net_companions_stop(&m->net);
        run_dir_remove_sockets(m->c->run_dir);
        m->st.monitor_pid = 0;
        m->st.swtpm_pid = 0;
        state_save(m);
}

static _Noreturn void monitor_exit(struct monitor *m, int code) {
        monitor_cleanup(m);
        /* The lock goes with the process. */
        _exit(code);
}

/* Start failed: nothing may stay running. */
static _Noreturn void monitor_fail(struct monitor *m, const phy_error *e) {
        if (m->st.qemu_pid > 0 && !m->qemu_exited) {
                (void) kill(m->st.qemu_pid, SIGKILL);
                while (waitpid(m->st.qemu_pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        m->st.qemu_pid = 0;
        m->st.state = RUN_FAILED;
        set_error(&m->st, e->message);
        /* Everything before the report: when the start returns, the devices
         * are back, nothing runs, state.json says failed and the lock is
         * free, so the next command sees the truth at once. */
        monitor_cleanup(m);
        if (m->c->lock_fd >= 0) {
                close(m->c->lock_fd);
                m->c->lock_fd = -1;
        }
        report(m->c->report_fd, 'E', m->st.error ? m->st.error : e->message);
        close(m->c->report_fd);
        m->c->report_fd = -1;
        _exit(1);
}

/* QEMU's own words when it refused to start: the lines of qemu.log. */
static void qemu_start_error(struct monitor *m, phy_error *e) {
        _cleanup_free_ char *tail = run_file_tail(m->qemu_log, 12);
        char how[96] = "";
        if (m->qemu_exited) {
                int s = m->qemu_status;
                if (WIFEXITED(s))
                        snprintf(how, sizeof how, " (exit status %d)", WEXITSTATUS(s));
                else if (WIFSIGNALED(s))
                        snprintf(how, sizeof how, " (killed by signal %d)", WTERMSIG(s));
        }
        if (tail && *tail)
                phy_error_set(e, EIO, "QEMU could not start VM '%s'%s:\n%s", m->c->name, how, tail);
        else
                phy_error_prefix(e, "QEMU could not start VM '%s'%s (qemu.log is empty)", m->c->name, how);
}

static pid_t spawn_qemu(struct monitor *m, char *const argv[], const int *keep, size_t n_keep,
                        const struct run_sandbox *sb, phy_error *err) {
        _cleanup_close_ int logfd = run_open_at(m->c->run_dir, "qemu.log", O_WRONLY | O_CREAT | O_TRUNC, 0640);
        if (logfd < 0)
                return phy_error_set(err, -logfd, "cannot open '%s': %s", m->qemu_log, strerror(-logfd));
        _cleanup_close_ int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (nullfd < 0)
                return phy_error_set(err, errno, "cannot open /dev/null: %s", strerror(errno));
        extern char **environ;
        sigset_t none;
        sigemptyset(&none);
        pid_t pid = fork();
        if (pid < 0)
                return phy_error_set(err, errno, "cannot fork QEMU: %s", strerror(errno));
        if (pid == 0) {
                /* Async-signal-safe from here on. */
                if (dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
                        _exit(127);
                for (size_t i = 0; i < n_keep; i++) {
                        if (keep[i] < 0)
                                continue;
                        int fl = fcntl(keep[i], F_GETFD);
                        if (fl < 0 || fcntl(keep[i], F_SETFD, fl & ~FD_CLOEXEC) < 0)
                                _exit(127);
                }
                signal(SIGPIPE, SIG_DFL);
                sigprocmask(SIG_SETMASK, &none, NULL);
                if (run_creds_apply_child(&m->c->creds) < 0) {
                        static const char msg[] = "phyllo-monitor: cannot drop privileges before running QEMU\n";
                        (void) !write(2, msg, sizeof msg - 1);
                        _exit(126);
                }
                if (run_sandbox_apply_child(sb) < 0) {
                        static const char msg[] = "phyllo-monitor: cannot apply the Landlock ruleset to QEMU\n";
                        (void) !write(2, msg, sizeof msg - 1);
                        _exit(126);
                }
                execve(argv[0], argv, environ);
                static const char msg[] = "phyllo-monitor: cannot execute QEMU\n";
                (void) !write(2, msg, sizeof msg - 1);
                _exit(127);
        }
        return pid;
}

/* QEMU's Landlock ruleset: its code, data and modules (under /usr), a few
 * configuration files, the devices a VM may use, the VM's own directory,
 * its SPICE directory and key files, and each path the definition names
 * (disks, CDs, kernel, initrd, key files, option ROMs, 9p shares), read-only
 * where QEMU only reads.  A local window (gtk, sdl) also needs what a
 * desktop program reads: /etc, /tmp and /dev/shm. */
static int qemu_sandbox(const struct start_ctx *c, struct run_sandbox *sb, const char *spice_dir, phy_error *err) {
        static const char *const devs[] = { "/dev/kvm", "/dev/vfio", "/dev/dri", "/dev/net/tun", "/dev/vhost-net",
                                            "/dev/vhost-vsock", "/dev/ptmx", "/dev/pts", "/dev/hugepages",
                                            "/dev/bus/usb", "/dev/tpm0", "/dev/tpmrm0" };
        const struct vm_def *vm = &c->model.vm;
        int r;
        if ((r = run_sandbox_begin(sb, err)) < 0 || sb->fd < 0)
                return r;
        if ((r = run_sandbox_allow_base(sb, err)) < 0 || (r = run_sandbox_allow(sb, c->tools.qemu, RUN_SB_RX, err)) < 0 ||
            (r = run_sandbox_allow(sb, "/etc/qemu", RUN_SB_R, err)) < 0 ||
            (r = run_sandbox_allow(sb, c->vm_dir, RUN_SB_DIR, err)) < 0 ||
            (r = run_sandbox_allow(sb, spice_dir, RUN_SB_DIR, err)) < 0)
                return r;
        /* The run dir to read: a typed passphrase and a migration's TLS key
         * (<run_dir>/mig-tls.*), handed to the VM's uid; the rest is root's
         * by its modes, and nothing there is QEMU's to write. */
        if ((r = run_sandbox_allow(sb, c->run_dir, RUN_SB_R, err)) < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(devs); i++)
                if ((r = run_sandbox_allow(sb, devs[i], RUN_SB_RW, err)) < 0)
                        return r;
        const char *fw[] = { c->tools.ovmf_code, c->tools.ovmf_code_sb, vm->kernel, vm->initrd };
        for (size_t i = 0; i < ELEMENTSOF(fw); i++) {
                _cleanup_free_ char *p = fw[i] ? vm_path_resolve(c->vm_dir, fw[i]) : NULL;
                if ((r = run_sandbox_allow(sb, p, RUN_SB_R, err)) < 0)
                        return r;
        }
        for (size_t i = 0; i < vm->n_disks; i++) {
                const struct vm_disk *d = &vm->disks[i];
                _cleanup_free_ char *p = vm_path_resolve(c->vm_dir, d->path);
                /* (a key file reaches QEMU as a memfd: key_memfd) */
                if ((r = run_sandbox_allow(sb, p, d->readonly ? RUN_SB_R : RUN_SB_RW, err)) < 0)
                        return r;
        }
        for (size_t i = 0; i < vm->n_cdroms; i++) {
                _cleanup_free_ char *p = vm_path_resolve(c->vm_dir, vm->cdroms[i].path);
                if ((r = run_sandbox_allow(sb, p, RUN_SB_R, err)) < 0)
                        return r;
        }
        for (size_t i = 0; i < vm->passthrough_roms.n; i++) {
                const char *eq = strchr(vm->passthrough_roms.v[i], '=');
                _cleanup_free_ char *p = eq ? vm_path_resolve(c->vm_dir, eq + 1) : NULL;
                if ((r = run_sandbox_allow(sb, p, RUN_SB_R, err)) < 0)
                        return r;
        }
        for (size_t i = 0; i < vm->n_shares; i++) {
                if (vm->shares[i].type == VM_SHARE_VIRTIOFS)
                        continue;       /* virtiofsd serves it, not QEMU */
                _cleanup_free_ char *p = vm_path_resolve(c->vm_dir, vm->shares[i].path);
                if ((r = run_sandbox_allow(sb, p, vm->shares[i].readonly ? RUN_SB_R : RUN_SB_DIR, err)) < 0)
                        return r;
        }
        if (vm->display == VM_DISPLAY_GTK || vm->display == VM_DISPLAY_SDL) {
                const char *xdg = getenv("XDG_RUNTIME_DIR");
                if ((r = run_sandbox_allow(sb, "/etc", RUN_SB_R, err)) < 0 ||
                    (r = run_sandbox_allow(sb, "/tmp", RUN_SB_DIR, err)) < 0 ||
                    (r = run_sandbox_allow(sb, "/dev/shm", RUN_SB_DIR, err)) < 0 ||
                    (r = run_sandbox_allow(sb, xdg, RUN_SB_DIR, err)) < 0)
                        return r;
        }
        return 0;
}

static _Noreturn void monitor_main(struct start_ctx *c) {
        struct monitor mon = { .c = c, .epfd = -1, .sigfd = -1, .serial_fd = -1, .console_listen = -1,
                               .qemu_pidfd = -1, .swtpm_pidfd = -1, .clog_fd = -1 };
        struct monitor *m = &mon;
        phy_error err = { 0 };
        for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++)
                m->clients[i] = -1;

        (void) prctl(PR_SET_NAME, RUN_MONITOR_COMM, 0, 0, 0);
        int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (nullfd >= 0) {
                dup2(nullfd, 0);
                dup2(nullfd, 1);
                dup2(nullfd, 2);
                close(nullfd);
        }
        signal(SIGPIPE, SIG_IGN);
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        m->state_path = run_file(c->run_dir, "state.json");
        m->qemu_log = run_file(c->run_dir, "qemu.log");
        m->console_log = run_file(c->run_dir, "console.log");
        m->console_log1 = run_file(c->run_dir, "console.log.1");
        m->stop_marker = run_file(c->run_dir, "stop-requested");
        _cleanup_free_ char *qmp_path = run_file(c->run_dir, "qmp.sock");
        _cleanup_free_ char *console_path = run_file(c->run_dir, "console.sock");
        _cleanup_free_ char *hvc0_path = run_file(c->run_dir, "hvc0.sock");
        _cleanup_free_ char *qga_path = run_file(c->run_dir, "qga.sock");
        _cleanup_free_ char *swtpm_log = run_file(c->run_dir, "swtpm.log");
        _cleanup_free_ char *spice_dir = c->model.vm.display == VM_DISPLAY_SPICE ? run_file(c->run_dir, "spice") : NULL;
        _cleanup_free_ char *spice_sock = spice_dir ? run_file(spice_dir, "spice.sock") : NULL;
        if (!m->state_path || !m->qemu_log || !m->console_log || !m->console_log1 || !m->stop_marker ||
            !qmp_path || !console_path || !hvc0_path || !qga_path || !swtpm_log ||
            (c->model.vm.display == VM_DISPLAY_SPICE && !spice_sock)) {
                phy_error_set(&err, ENOMEM, "out of memory");
                monitor_fail(m, &err);
        }
        /* $PHYLLOME_CONSOLE_LOG_MAX (bytes, at least 4 KiB) lets tests see a rotation. */
        m->clog_max = RUN_CONSOLE_LOG_MAX;
        const char *cap = getenv("PHYLLOME_CONSOLE_LOG_MAX");
        unsigned long long capv;
        if (cap && parse_uint(cap, 1ULL << 40, &capv) == 0 && capv >= 4096)
                m->clog_max = (size_t) capv;
        m->st = (struct run_state) { .state = RUN_STARTING, .monitor_pid = getpid(), .started = time(NULL),
                                     .exit_status = -1 };
        (void) run_boot_id(m->st.boot_id);
        state_save(m);

        m->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        m->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (m->sigfd < 0 || m->epfd < 0) {
                phy_error_set(&err, errno, "cannot set up the monitor's event loop: %s", strerror(errno));
                monitor_fail(m, &err);
        }

        /* Sockets: QMP for phyllo commands (QEMU listens on our socket), a
         * private QMP pair for the monitor, the serial pair, the console relay. */
        int qmp_listen = listen_unix(qmp_path, &err);
        if (qmp_listen < 0)
                monitor_fail(m, &err);
        m->console_listen = listen_unix(console_path, &err);
        if (m->console_listen < 0)
                monitor_fail(m, &err);
        /* The hvc0 console and the guest agent: our sockets too, so that QEMU
         * needs no write access to the run dir. */
        int hvc0_listen = listen_unix(hvc0_path, &err);
        if (hvc0_listen < 0)
                monitor_fail(m, &err);
        int qga_listen = -1;
        if (c->model.vm.agent == VM_ON && (qga_listen = listen_unix(qga_path, &err)) < 0)
                monitor_fail(m, &err);
        int monqmp[2], serial[2], tpm[2] = { -1, -1 };
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, monqmp) < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, serial) < 0) {
                phy_error_set(&err, errno, "cannot create a socket pair: %s", strerror(errno));
                monitor_fail(m, &err);
        }
        m->serial_fd = serial[0];
        /* PCI passthrough first: the devices move to vfio-pci (and a failure
         * half-way moves them back) before anything else runs.  What an
         * earlier run left recorded goes back first, so that its drivers,
         * not vfio-pci, are the ones recorded now. */
        if (c->model.vm.passthrough.n > 0 &&
            (dev_passthrough_restore(c->root, c->run_dir, c->dev_hook, c->dev_hook_data, &err) < 0 ||
             dev_single_gpu_restore_host(c->run_dir, c->dev_hook, c->dev_hook_data, &err) < 0))
                monitor_fail(m, &err);
        /* Single-GPU mode: the host display lets go of the card before it moves. */
        if (c->model.vm.single_gpu == VM_ON &&
            dev_single_gpu_stop_host(c->root, c->run_dir, &c->model.vm.passthrough, c->dev_hook, c->dev_hook_data,
                                     &err) < 0)
                monitor_fail(m, &err);
        if (c->model.vm.passthrough.n > 0 &&
            dev_passthrough_prepare(c->root, c->run_dir, &c->model.vm.passthrough, c->dev_hook, c->dev_hook_data,
                                    &err) < 0)
                monitor_fail(m, &err); /* its cleanup gives back the devices, then the host display */
        /* A QEMU run as another user (nobody) opens /dev/vfio/GROUP itself. */
        if (c->model.vm.passthrough.n > 0 && c->creds.drop &&
            (dev_vfio_chown_groups(c->root, &c->model.vm.passthrough, c->creds.uid, c->creds.gid, &m->vfio, &err) < 0 ||
             dev_vfio_owners_save(c->run_dir, &m->vfio, &err) < 0))
                monitor_fail(m, &err);
        if (keys_for_qemu(c, &err) < 0)
                monitor_fail(m, &err);
        /* swtpm first: QEMU connects to the TPM while it initialises. */
        if (c->model.vm.tpm == VM_TPM_EMULATED) {
                _cleanup_free_ char *tpm_dir = run_file(c->vm_dir, "tpm");
                if (!tpm_dir) {
                        phy_error_set(&err, ENOMEM, "out of memory");
                        monitor_fail(m, &err);
                }
                if (run_swtpm_setup(c->tools.swtpm_setup, tpm_dir, &c->creds, swtpm_log, &err) < 0)
                        monitor_fail(m, &err);
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tpm) < 0) {
                        phy_error_set(&err, errno, "cannot create a socket pair: %s", strerror(errno));
                        monitor_fail(m, &err);
                }
                if (run_swtpm_spawn(c->tools.swtpm, tpm_dir, tpm[1], swtpm_log, &c->creds, &m->st.swtpm_pid,
                                    &err) < 0)
                        monitor_fail(m, &err);
                close(tpm[1]);
                m->swtpm_pidfd = run_pidfd_open(m->st.swtpm_pid);
        }

        /* passt and virtiofsd before QEMU: QEMU connects to them as it starts. */
        if (net_companions_start(&m->net, &c->model.vm, c->vm_dir, c->run_dir, c->creds.drop ? c->creds.uid : (uid_t) -1,
                                 c->creds.gid, &err) < 0)
                monitor_fail(m, &err);

        _cleanup_free_ int *key_fds = calloc(c->model.vm.n_disks + 1, sizeof *key_fds);
        if (!key_fds) {
                phy_error_set(&err, ENOMEM, "out of memory");
                monitor_fail(m, &err);
        }
        for (size_t i = 0; i < c->model.vm.n_disks; i++)
                key_fds[i] = -1;
        for (size_t i = 0; i < c->model.vm.n_disks; i++)
                if (c->model.vm.disks[i].key_file && (key_fds[i] = key_memfd(c, &c->model.vm.disks[i], &err)) < 0)
                        monitor_fail(m, &err);

        struct qemu_argv_env env;
        qemu_argv_env_init(&env);
        env.key_fds = key_fds;
        env.n_key_fds = c->model.vm.n_disks;
        env.nic_fds = m->net.nic_fds;
        env.n_nic_fds = m->net.n_nics;
        env.share_fds = m->net.share_fds;
        env.n_share_fds = m->net.n_shares;
        env.host = &c->host;
        env.caps = c->have_caps ? &c->caps : NULL;
        env.tools = &c->tools;
        env.vm_dir = c->vm_dir;
        env.run_dir = c->run_dir;
        env.qmp_fd = qmp_listen;
        env.serial_fd = serial[1];
        env.tpm_fd = tpm[0];
        env.hvc0_fd = hvc0_listen;
        env.qga_fd = qga_listen;
        env.spice_sock = spice_sock;
        env.paused = c->paused;
        env.incoming = c->incoming;
        env.force_tcg = c->force_tcg;
        _cleanup_strv_ strv argv = { 0 };
        _cleanup_strv_ strv warnings = { 0 };
        env.audio_server = c->audio_server;
        env.audio_why = c->audio_why;
        if (qemu_argv_build(&c->model, &env, &argv, &warnings, &err) < 0)
                monitor_fail(m, &err);
        /* status says where the sound goes, and why nowhere when so. */
        char audio_why[600];
        const char *audio = qemu_argv_audio(&c->model.vm, &env, audio_why, sizeof audio_why);
        m->st.audio = audio ? strdup(audio) : NULL;
        m->st.audio_why = audio_why[0] ? strdup(audio_why) : NULL;
        /* The monitor's own QMP connection, so that phyllo commands always
         * find qmp.sock free (QEMU serves one client per QMP socket). */
        _cleanup_free_ char *phymon = NULL;
        if (asprintf(&phymon, "socket,id=phymon,fd=%d,server=off", monqmp[1]) < 0 ||
            strv_push_many(&argv, "-chardev", phymon, "-mon", "chardev=phymon,mode=control", NULL) < 0) {
                phy_error_set(&err, ENOMEM, "out of memory");
                monitor_fail(m, &err);
        }
        for (size_t i = 0; i < warnings.n; i++)
                report(c->report_fd, 'W', warnings.v[i]);

        struct run_sandbox sb;
        run_sandbox_init(&sb);
        if (qemu_sandbox(c, &sb, spice_dir, &err) < 0)
                monitor_fail(m, &err);
        if (sb.abi <= 0)
                report(c->report_fd, 'W', "this kernel has no Landlock: QEMU runs without its filesystem sandbox "
                       "(Linux 5.13 or later with lsm=landlock; 'phyllo host check' says more)");

        clog_open(m, true);
        clog_start_line(m);
        size_t n_keep = 6 + m->net.n_nics + m->net.n_shares + c->model.vm.n_disks;
        _cleanup_free_ int *keep = calloc(n_keep, sizeof *keep);
        if (!keep) {
                phy_error_set(&err, ENOMEM, "out of memory");
                monitor_fail(m, &err);
        }
        keep[0] = qmp_listen, keep[1] = serial[1], keep[2] = tpm[0], keep[3] = monqmp[1];
        keep[4] = hvc0_listen, keep[5] = qga_listen;
        for (size_t i = 0; i < m->net.n_nics; i++)
                keep[6 + i] = m->net.nic_fds[i];
        for (size_t i = 0; i < m->net.n_shares; i++)
                keep[6 + m->net.n_nics + i] = m->net.share_fds[i];
        for (size_t i = 0; i < c->model.vm.n_disks; i++)
                keep[6 + m->net.n_nics + m->net.n_shares + i] = key_fds[i];
        pid_t pid = spawn_qemu(m, argv.v, keep, n_keep, &sb, &err);
        run_sandbox_done(&sb);
        net_companions_close_qemu_fds(&m->net);
        close(hvc0_listen);
        for (size_t i = 0; i < c->model.vm.n_disks; i++)
                if (key_fds[i] >= 0)
                        close(key_fds[i]);
        if (qga_listen >= 0)
                close(qga_listen);
        close(qmp_listen);
        close(serial[1]);
        if (tpm[0] >= 0)
                close(tpm[0]);
        close(monqmp[1]);
        if (pid < 0)
                monitor_fail(m, &err);
        m->st.qemu_pid = pid;
        m->qemu_pidfd = run_pidfd_open(pid);
        state_save(m);

        /* QEMU greets on QMP once it initialised; EOF means it gave up. */
        if (qmp_open_fd(monqmp[0], 60000, &m->qmp, &err) < 0) {
                int status;
                if (waitpid(pid, &status, 0) == pid) {
                        m->qemu_exited = true;
                        m->qemu_status = status;
                }
                qemu_start_error(m, &err);
                monitor_fail(m, &err);
        }
        keys_forget(c);         /* QEMU opened its disks: the passphrases are not needed any more */
        _cleanup_free_ char *qstatus = NULL;
        if (qmp_query_status(m->qmp, &qstatus, &err) < 0)
                monitor_fail(m, &err);
        m->st.state = strcmp(qstatus, "running") == 0 ? RUN_RUNNING : RUN_PAUSED;
        state_save(m);

        if (epoll_add(m->epfd, m->sigfd, EPOLLIN) < 0 || epoll_add(m->epfd, m->serial_fd, EPOLLIN) < 0 ||
            epoll_add(m->epfd, m->console_listen, EPOLLIN) < 0 || epoll_add(m->epfd, qmp_fd(m->qmp), EPOLLIN) < 0 ||
            (m->qemu_pidfd >= 0 && epoll_add(m->epfd, m->qemu_pidfd, EPOLLIN) < 0) ||
            (m->swtpm_pidfd >= 0 && epoll_add(m->epfd, m->swtpm_pidfd, EPOLLIN) < 0)) {
                phy_error_set(&err, errno, "cannot set up the monitor's event loop: %s", strerror(errno));
                monitor_fail(m, &err);
        }
        /* Isolated networks: the monitor is the hub port (src/net/isolated.c). */
        _cleanup_free_ int *netfds = NULL;
        size_t n_netfds = net_companions_fds(&m->net, &netfds);
        for (size_t i = 0; i < n_netfds; i++)
                if (epoll_add(m->epfd, netfds[i], EPOLLIN) < 0) {
                        phy_error_set(&err, errno, "cannot watch the isolated network's sockets: %s", strerror(errno));
                        monitor_fail(m, &err);
                }
        report(c->report_fd, 'R', run_state_name(m->st.state));
        close(c->report_fd);
        c->report_fd = -1;
        /* Events QEMU sent while we reported are already queued. */
        qmp_events(m);

        while (!m->qemu_exited) {
                struct epoll_event evs[16];
                int n = epoll_wait(m->epfd, evs, ELEMENTSOF(evs), -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                for (int k = 0; k < n; k++) {
                        int fd = evs[k].data.fd;
                        if (fd == m->sigfd) {
                                struct signalfd_siginfo si;
                                while (read(m->sigfd, &si, sizeof si) == (ssize_t) sizeof si) {
                                        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                                                /* Asked to go: end QEMU as a stop, not a crash. */
                                                m->stop_requested = true;
                                                m->st.state = RUN_STOPPING;
                                                state_save(m);
                                                (void) kill(m->st.qemu_pid, SIGTERM);
                                        }
                                }
                                reap(m);
                        } else if (fd == m->qemu_pidfd || fd == m->swtpm_pidfd) {
                                reap(m);
                        } else if (fd == m->serial_fd) {
                                if (!serial_read(m)) {
                                        (void) epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->serial_fd, NULL);
                                        close(m->serial_fd);
                                        m->serial_fd = -1;
                                }
                        } else if (fd == m->console_listen) {
                                console_accept(m);
                        } else if (m->qmp && fd == qmp_fd(m->qmp)) {
                                qmp_events(m);
                        } else if (net_companions_event(&m->net, fd)) {
                                /* a frame moved through the isolated network's hub */
                        } else {
                                for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++)
                                        if (m->clients[i] == fd) {
                                                client_input(m, i);
                                                break;
                                        }
                        }
                }
        }
        /* Drain what QEMU wrote to the console before it ended. */
        while (m->serial_fd >= 0 && serial_read(m))
                ;
        if (m->qmp)
                qmp_events(m);
        record_exit(m);
        monitor_exit(m, 0);
}

/* --- run_start: the caller's side --- */

static void start_ctx_done(struct start_ctx *c) {
        free(c->run_dir);
        free(c->vm_dir);
        vm_model_done(&c->model);
        host_facts_done(&c->host);
        qemu_tools_done(&c->tools);
        if (c->have_caps)
                qemu_caps_done(&c->caps);
        free(c->audio_server);
        free(c->audio_why);
        if (c->lock_fd >= 0)
                close(c->lock_fd);
}

/* chown when QEMU runs as another user, so that it can use its own files. */
static int hand_over(const struct run_creds *cr, const char *path, phy_error *err) {
        if (!cr->drop)
                return 0;
        if (chown(path, cr->uid, cr->gid) < 0 && errno != ENOENT)
                return phy_error_set(err, errno, "cannot hand '%s' to the QEMU user '%s': %s", path, cr->user,
                                     strerror(errno));
        return 0;
}

/* hand_over for rel inside the VM dir: opened beneath it with no symlink on
 * the way, chowned through that fd (issue 12: a '..' disk path or a planted
 * symlink made root chown any file). */
static int hand_over_beneath(const struct run_creds *cr, const char *vmdir, const char *rel, phy_error *err) {
        if (!cr->drop)
                return 0;
        _cleanup_close_ int dfd = open(vmdir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int fd = dfd < 0 ? -errno : open_beneath(dfd, rel, O_PATH | O_NOFOLLOW, 0);
        struct stat st;
        if (fd == -ENOENT)
                return 0;
        if (fd >= 0 && fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
                close(fd);      /* the symlink itself (O_PATH|O_NOFOLLOW), or a device or FIFO */
                fd = -ELOOP;
        }
        if (fd < 0 || fchownat(fd, "", cr->uid, cr->gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                return phy_error_set(err, fd < 0 ? -fd : errno, "cannot hand '%s/%s' to the QEMU user '%s': %s%s",
                                     vmdir, rel, cr->user, strerror(fd < 0 ? -fd : errno),
                                     fd == -EXDEV || fd == -ELOOP ? " (it leaves the VM's directory, is a symlink "
                                     "or goes through one)" : "");
        return 0;
}

/* Checks, as the QEMU user, that QEMU can reach what it needs.  A missing
 * file is left for QEMU to report in its own words. */
static int check_access(const struct run_creds *cr, const char *const *paths, const int *modes, size_t n,
                        phy_error *err) {
        if (!cr->drop || n == 0)
                return 0;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return phy_error_set(err, errno, "cannot create a pipe: %s", strerror(errno));
        pid_t pid = fork();
        if (pid < 0) {
                close(p[0]);
                close(p[1]);
                return phy_error_set(err, errno, "cannot fork: %s", strerror(errno));
        }
        if (pid == 0) {
                close(p[0]);
                if (run_creds_apply_child(cr) < 0)
                        _exit(1);
                for (size_t i = 0; i < n; i++)
                        if (paths[i] && access(paths[i], modes[i]) < 0 && errno == EACCES) {
                                unsigned char b = (unsigned char) i;
                                (void) !write(p[1], &b, 1);
                                _exit(0);
                        }
                _exit(0);
        }
        close(p[1]);
        unsigned char b;
        ssize_t r;
        do
                r = read(p[0], &b, 1);
        while (r < 0 && errno == EINTR);
        close(p[0]);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        if (r == 1 && b < n)
                return phy_error_set(err, EACCES,
                                     "QEMU runs as the unprivileged user '%s' and cannot use '%s': make it and "
                                     "every directory above it reachable for that user (chmod o+x on the "
                                     "directories, o+r on the file), or set PHYLLOME_HOME to a directory such "
                                     "as /var/lib/phyllome",
                                     cr->user, paths[b]);
        return 0;
}

/* Hands a directory tree to uid:gid, never following a symlink (a link
 * itself is re-owned, not what it points to).  -errno; -ENOENT when path
 * does not exist. */
static int chown_tree_at(int dfd, uid_t uid, gid_t gid, unsigned depth) {
        if (fchown(dfd, uid, gid) < 0)
                return -errno;
        if (depth > 16)
                return -ELOOP;
        int dup_fd = dup(dfd);
        if (dup_fd < 0)
                return -errno;
        DIR *d = fdopendir(dup_fd);
        if (!d) {
                close(dup_fd);
                return -errno;
        }
        int r = 0;
        struct dirent *e;
        while (r == 0 && (e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                int sub = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub >= 0) {
                        r = chown_tree_at(sub, uid, gid, depth + 1);
                        close(sub);
                } else if (fchownat(dfd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                        r = -errno;
        }
        closedir(d);
        return r;
}

static int chown_tree(const char *path, uid_t uid, gid_t gid) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return chown_tree_at(fd, uid, gid, 0);
}

/* Removes every entry of dir but keep (no symlink followed). */
static int purge_dir(const char *dir, const char *keep) {
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        int dup_fd = dup(dfd);
        DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
        if (!d) {
                if (dup_fd >= 0)
                        close(dup_fd);
                return -errno;
        }
        int r = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, keep) == 0)
                        continue;
                if (unlinkat(dfd, e->d_name, 0) == 0)
                        continue;
                _cleanup_free_ char *p = NULL;
                if (errno != EISDIR || asprintf(&p, "%s/%s", dir, e->d_name) < 0 || rm_rf(p) < 0)
                        r = -EIO;
        }
        closedir(d);
        return r;
}

/*
 * The run dir belongs to root (or the user running phyllo) and nobody else
 * writes there: QEMU and its companions get their sockets and logs as file
 * descriptors.  A run dir another user could write (an older Phyllome made
 * it root:QEMU-group 0770) is emptied first: anything in it may be forged.
 * QEMU may read it (its typed passphrases) through the group of its uid.
 * SPICE alone takes no fd: QEMU makes its socket in <run_dir>/spice, its
 * own directory, and <run_dir>/spice.sock points there.
 */
static int prepare_run_dir(struct start_ctx *c, phy_error *err) {
        const struct run_creds *cr = &c->creds;
        struct stat st;
        _cleanup_close_ int dfd = open(c->run_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0 || fstat(dfd, &st) < 0)
                return phy_error_set(err, errno, "cannot open the runtime directory '%s': %s", c->run_dir,
                                     strerror(errno));
        if (st.st_uid != geteuid())
                return phy_error_set(err, EPERM, "the runtime directory '%s' belongs to uid %u, not to uid %u; "
                                     "remove it", c->run_dir, (unsigned) st.st_uid, (unsigned) geteuid());
        bool untrusted = c->run_dir_untrusted || (st.st_mode & 022) != 0;
        if (fchown(dfd, geteuid(), cr->drop ? cr->gid : getegid()) < 0 || fchmod(dfd, cr->drop ? 0710 : 0700) < 0)
                return phy_error_set(err, errno, "cannot secure the runtime directory '%s': %s", c->run_dir,
                                     strerror(errno));
        if (untrusted && purge_dir(c->run_dir, "lock") < 0)
                return phy_error_set(err, EIO, "cannot empty the runtime directory '%s', which other users could "
                                     "write; remove it", c->run_dir);
        (void) unlinkat(dfd, "spice.sock", 0);
        _cleanup_free_ char *spice = run_file(c->run_dir, "spice");
        if (!spice)
                return phy_error_set(err, ENOMEM, "out of memory");
        (void) rm_rf(spice);
        if (c->model.vm.display != VM_DISPLAY_SPICE)
                return 0;
        if (mkdirat(dfd, "spice", 0700) < 0)
                return phy_error_set(err, errno, "cannot create '%s': %s", spice, strerror(errno));
        _cleanup_close_ int sfd = openat(dfd, "spice", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sfd < 0 || (cr->drop && fchown(sfd, cr->uid, cr->gid) < 0) ||
            symlinkat("spice/spice.sock", dfd, "spice.sock") < 0)
                return phy_error_set(err, errno, "cannot prepare the SPICE directory '%s': %s", spice, strerror(errno));
        return 0;
}

static int prepare_files(struct start_ctx *c, phy_error *err) {
        const struct run_creds *cr = &c->creds;
        int r;
        /* The per-VM UEFI vars, copied once from the template. */
        _cleanup_free_ char *vars = NULL;
        if (c->model.vm.firmware == VM_FW_UEFI) {
                vars = qemu_vars_path(c->vm_dir);
                if (!vars)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if (access(vars, F_OK) < 0) {
                        const char *tmpl = c->model.vm.secure_boot == VM_ON ? c->tools.ovmf_vars_ms : c->tools.ovmf_vars;
                        if (!tmpl)
                                return phy_error_set(err, ENOENT, "VM '%s' boots with UEFI but no OVMF vars template "
                                                     "was found; install ovmf (apt-get install ovmf)", c->name);
                        r = file_copy_atomic(tmpl, vars, 0600, err);
                        if (r < 0)
                                return r;
                }
                if ((r = hand_over(cr, vars, err)) < 0)
                        return r;
        }
        if ((r = prepare_run_dir(c, err)) < 0)
                return r;
        if (cr->drop) {
                /* The VM dir and <home>/vms: traversable by the QEMU user's group. */
                _cleanup_free_ char *vms = strdup(c->vm_dir);
                char *slash = vms ? strrchr(vms, '/') : NULL;
                if (slash)
                        *slash = '\0';
                const char *dirs[] = { c->vm_dir, slash ? vms : NULL };
                for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                        struct stat st;
                        if (!dirs[i] || lstat(dirs[i], &st) < 0 || !S_ISDIR(st.st_mode))
                                continue;
                        mode_t mode = st.st_mode & 07777;
                        gid_t gid = st.st_gid;
                        if (cr->per_vm && i == 0) {
                                /* The VM's own group only: no other VM's uid gets in. */
                                gid = cr->gid;
                                mode = (mode & ~(mode_t) (S_IRWXO | S_IWGRP)) | S_IXGRP;
                        } else if (cr->per_vm) {
                                mode |= S_IXOTH;        /* every VM's uid passes through <home>/vms */
                        } else if (!(mode & S_IXOTH) && !(gid == cr->gid && (mode & S_IXGRP))) {
                                gid = cr->gid;
                                mode |= S_IXGRP;
                        }
                        if ((gid != st.st_gid && lchown(dirs[i], st.st_uid, gid) < 0) ||
                            (mode != (st.st_mode & 07777) && chmod(dirs[i], mode) < 0))
                                return phy_error_set(err, errno, "cannot open '%s' to the QEMU user '%s': %s",
                                                     dirs[i], cr->user, strerror(errno));
                }
                /* The TPM state, made by an earlier uid perhaps: all of it the VM's. */
                _cleanup_free_ char *tpm = run_file(c->vm_dir, "tpm");
                if (!tpm)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if ((r = chown_tree(tpm, cr->uid, cr->gid)) < 0 && r != -ENOENT)
                        return phy_error_set(err, -r, "cannot hand '%s' to the QEMU user '%s': %s", tpm, cr->user,
                                             strerror(-r));
        }
        const char *paths[64];
        int modes[64];
        size_t n = 0;
        char *owned[64];
        size_t n_owned = 0;
        for (size_t i = 0; i < c->model.vm.n_disks && n < 60; i++) {
                char *p = vm_path_resolve(c->vm_dir, c->model.vm.disks[i].path);
                if (!p)
                        continue;
                owned[n_owned++] = p;
                /* Images inside the VM dir belong to the VM: hand them over,
                 * anchored there (never a file a '..' or a symlink leads to). */
                const char *in = vm_dir_relative(c->vm_dir, c->model.vm.disks[i].path);
                if (in && (r = hand_over_beneath(cr, c->vm_dir, in, err)) < 0)
                        goto out;
                paths[n] = p;
                modes[n++] = c->model.vm.disks[i].readonly ? R_OK : R_OK | W_OK;
        }
        for (size_t i = 0; i < c->model.vm.n_cdroms && n < 60; i++) {
                char *p = vm_path_resolve(c->vm_dir, c->model.vm.cdroms[i].path);
                if (!p)
                        continue;
                owned[n_owned++] = p;
                paths[n] = p;
                modes[n++] = R_OK;
        }
        if (c->model.vm.kernel) {
                paths[n] = c->model.vm.kernel;
                modes[n++] = R_OK;
        }
        if (c->model.vm.initrd) {
                paths[n] = c->model.vm.initrd;
                modes[n++] = R_OK;
        }
        if (vars) {
                paths[n] = vars;
                modes[n++] = R_OK | W_OK;
        }
        paths[n] = c->run_dir;
        modes[n++] = X_OK;
        r = check_access(cr, paths, modes, n, err);
out:
        for (size_t i = 0; i < n_owned; i++)
                free(owned[i]);
        return r;
}

/* Reads exactly n bytes before the deadline: 0, -ETIMEDOUT, or -EPIPE on EOF. */
static int read_full(int fd, void *buf, size_t n, int64_t deadline_ms) {
        size_t off = 0;
        while (off < n) {
                int64_t left = deadline_ms - run_mono_ms();
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int r = poll(&p, 1, (int) left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
                ssize_t k = read(fd, (char *) buf + off, n - off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EPIPE;
                off += (size_t) k;
        }
        return 0;
}

/* The monitor lives long: it must not keep the caller's fds (a shell's
 * command-substitution pipe would never see EOF).  Keeps 0-2 and a < b. */
static void close_inherited(int a, int b) {
        int lo = a < b ? a : b, hi = a < b ? b : a;
        if (lo > 3)
                (void) close_range(3, (unsigned) lo - 1, 0);
        if (hi > lo + 1)
                (void) close_range((unsigned) lo + 1, (unsigned) hi - 1, 0);
        (void) close_range((unsigned) hi + 1, ~0U, 0);
}

int run_start(const struct run_start_opts *o, strv *ret_warnings, phy_error *err) {
        struct start_ctx c = { .name = o->name, .lock_fd = -1, .report_fd = -1, .paused = o->paused,
                               .incoming = o->incoming, .root = o->root, .dev_hook = o->dev_hook, .dev_hook_data = o->dev_hook_data };
        int r;
        const char *tcg = getenv("PHYLLOME_FORCE_TCG");
        c.force_tcg = o->force_tcg || (tcg && strcmp(tcg, "1") == 0);

        if (!vm_name_valid(o->name))
                return phy_error_usage(err, "'%s' is not a valid VM name", o->name);
        _cleanup_vm_def_ struct vm_def def = { 0 };
        r = vm_load_by_name(o->home, o->name, &def, err);
        if (r < 0)
                return r;
        r = run_dir_path(o->home, o->name, &c.run_dir, err);
        if (r < 0)
                return r;
        c.vm_dir = vm_dir(o->home, o->name);
        if (!c.vm_dir) {
                r = phy_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        /* Checked at save, checked again at use (a file saved before the rules). */
        if ((r = vm_def_check_here(&def, c.vm_dir, err)) < 0)
                goto out;
        /* Parents traversable (the QEMU user needs that), the dir itself private. */
        {
                phy_error e2 = { 0 };
                c.run_dir_untrusted = run_dir_check(c.run_dir, &e2) < 0;
        }
        /* No chmod of an existing dir here: a running VM's monitor set its
         * mode, and only the lock holder may change it (prepare_run_dir). */
        {
                _cleanup_free_ char *parent = strdup(c.run_dir);
                char *slash = parent ? strrchr(parent, '/') : NULL;
                if (slash)
                        *slash = '\0';
                r = !slash ? -ENOMEM : mkdir_p(parent, 0755);
                if (r == 0 && mkdir(c.run_dir, 0700) < 0 && errno != EEXIST)
                        r = -errno;
        }
        if (r < 0) {
                r = phy_error_set(err, -r, "cannot create the runtime directory '%s': %s", c.run_dir, strerror(-r));
                goto out;
        }
        r = run_lock_take(c.run_dir, &c.lock_fd, err);
        if (r == -EBUSY) {
                r = phy_error_set(err, EBUSY, "VM '%s' is already running", o->name);
                goto out;
        }
        if (r < 0)
                goto out;
        {
                /* The lock is free: what a run before left behind (a crash,
                 * a reboot) is repaired first; a QEMU whose monitor died
                 * may still run. */
                _cleanup_run_state_ struct run_state st = { 0 };
                if (run_reconcile_locked(o->home, o->name, &st, err) == 0 && run_state_active(st.state) &&
                    run_pid_is_qemu(st.qemu_pid, o->name)) {
                        r = phy_error_set(err, EBUSY, "VM '%s' is already running (unsupervised: its monitor "
                                          "ended; 'phyllo stop %s' stops it)", o->name, o->name);
                        goto out;
                }
                phy_error_clear(err);
        }

        if ((r = host_facts_load(o->root, &c.host, err)) < 0)
                goto out;
        if ((r = qemu_tools_find(&c.tools, err)) < 0)
                goto out;
        if (!c.tools.qemu) {
                r = phy_error_set(err, ENOENT, "qemu-system-x86_64 was not found; install qemu-system-x86 "
                                  "(apt-get install qemu-system-x86)");
                goto out;
        }
        {
                _cleanup_free_ char *cache = NULL;
                phy_error e2 = { 0 };
                (void) phy_cache_dir(&cache, &e2);
                if ((r = qemu_caps_probe(c.tools.qemu, cache, &c.caps, err)) < 0)
                        goto out;
                c.have_caps = true;
        }
        if ((r = vm_model_make(&def, &c.host, &c.caps, c.vm_dir, &c.model, err)) < 0)
                goto out;
        /* A shared directory may have gone or moved since 'share add'. */
        if ((r = net_shares_check(&c.model.vm, o->home, err)) < 0)
                goto out;
        if (c.model.vm.tpm == VM_TPM_PASSTHROUGH && (r = dev_tpm_passthrough_check(o->root, err)) < 0)
                goto out;
        if ((r = run_creds_get(o->home, o->name, &c.host, &c.creds, err)) < 0)
                goto out;
        /* Sound never fails a start: a window's sound goes to a server QEMU's
         * user can reach, else nowhere (-audiodev none) with a warning. */
        if ((c.model.vm.display == VM_DISPLAY_GTK || c.model.vm.display == VM_DISPLAY_SDL) &&
            c.model.vm.sound != VM_SOUND_NONE && run_sound_find_for(&c.creds, &c.audio_server, &c.audio_why) < 0) {
                r = phy_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        run_dir_remove_sockets(c.run_dir);
        if ((r = prepare_files(&c, err)) < 0)
                goto out;

        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0) {
                r = phy_error_set(err, errno, "cannot create a pipe: %s", strerror(errno));
                goto out;
        }
        pid_t child = fork();
        if (child < 0) {
                close(pfd[0]);
                close(pfd[1]);
                r = phy_error_set(err, errno, "cannot fork the VM monitor: %s", strerror(errno));
                goto out;
        }
        if (child == 0) {
                /* Double fork: the monitor is re-parented and leads no terminal. */
                close(pfd[0]);
                if (setsid() < 0)
                        _exit(1);
                pid_t mon = fork();
                if (mon < 0)
                        _exit(1);
                if (mon > 0)
                        _exit(0);
                c.report_fd = pfd[1];
                close_inherited(c.lock_fd, c.report_fd);
                monitor_main(&c);
        }
        close(pfd[1]);
        close(c.lock_fd);       /* the monitor holds the lock now */
        c.lock_fd = -1;
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
                ;

        /* The monitor's report: warnings, then running/paused or the error. */
        int64_t deadline = run_mono_ms() + START_TIMEOUT_MS;
        r = phy_error_set(err, EIO, "the monitor of VM '%s' ended without reporting; see '%s/qemu.log'", o->name,
                          c.run_dir);
        for (;;) {
                unsigned char hdr[5];
                int k = read_full(pfd[0], hdr, sizeof hdr, deadline);
                if (k == -ETIMEDOUT) {
                        r = phy_error_set(err, ETIMEDOUT, "VM '%s' did not finish starting within %d s; see '%s/qemu.log'",
                                          o->name, START_TIMEOUT_MS / 1000, c.run_dir);
                        break;
                }
                if (k < 0)
                        break;
                size_t len = ((size_t) hdr[1] << 24) | ((size_t) hdr[2] << 16) | ((size_t) hdr[3] << 8) | hdr[4];
                if (len > 1024 * 1024)
                        break;
                _cleanup_free_ char *text = calloc(1, len + 1);
                if (!text || read_full(pfd[0], text, len, deadline) < 0)
                        break;
                if (hdr[0] == 'W') {
                        if (ret_warnings)
                                (void) strv_push(ret_warnings, text);
                } else if (hdr[0] == 'R') {
                        phy_error_clear(err);
                        r = 0;
                        break;
                } else if (hdr[0] == 'E') {
                        r = phy_error_set(err, EIO, "%s", text);
                        break;
                }
        }
        close(pfd[0]);
out:
        start_ctx_done(&c);
        return r;
}

/* SPDX-License-Identifier: MIT */
/* src/run without QEMU: state.json round trip, the runtime dir path, the
 * lock, process identification through /proc, and the reconciliation of a
 * recorded state with processes that are gone or from another boot, the
 * monitor's handover record, the serial console's batch reads. */
#include <fcntl.h>
#include <limits.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdlib.h>
#include <pwd.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "cleanup.h"
#include "exec.h"
#include "fileio.h"
#include "run/monitor.h"
#include "run/run-internal.h"
#include "run/run.h"

static char home[] = "/tmp/phyllome-test-run.XXXXXX";

static void test_names(void) {
        enum run_state_kind k;
        for (int i = RUN_STOPPED; i <= RUN_FAILED; i++) {
                ok(run_state_from_name(run_state_name((enum run_state_kind) i), &k) == 0 && (int) k == i,
                   "state %s round-trips", run_state_name((enum run_state_kind) i));
        }
        ok(run_state_from_name("runnin", &k) == -EINVAL, "an unknown state name is refused");
        ok(run_state_active(RUN_PAUSED) && run_state_active(RUN_STOPPING) && !run_state_active(RUN_CRASHED) &&
           !run_state_active(RUN_FAILED) && !run_state_active(RUN_STOPPED), "active states");
}

static void test_dir(void) {
        phy_error err = { 0 };
        _cleanup_free_ char *d = NULL;
        setenv("PHYLLOME_HOME", home, 1);
        ok(run_dir_path(home, "vm1", &d, &err) == 0, "run dir path");
        _cleanup_free_ char *want = NULL;
        ok(asprintf(&want, "%s/run/vm1", home) > 0, "asprintf");
        is_str(d, want, "with PHYLLOME_HOME the run dir is <home>/run/<name>");
        char longhome[200];
        memset(longhome, 'x', sizeof longhome - 1);
        longhome[0] = '/';
        longhome[sizeof longhome - 1] = '\0';
        _cleanup_free_ char *d2 = NULL;
        is_int(run_dir_path(longhome, "vm1", &d2, &err), -ENAMETOOLONG, "a run dir too long for sockets is refused");
        ok(strstr(err.message, "too long for a unix socket path") != NULL, "with a clear message: %s", err.message);
}

static void test_state_file(void) {
        phy_error err = { 0 };
        _cleanup_free_ char *path = NULL;
        ok(asprintf(&path, "%s/state.json", home) > 0, "asprintf");
        struct run_state s = { .state = RUN_CRASHED, .monitor_pid = 11, .qemu_pid = 22, .swtpm_pid = 33,
                               .started = 1700000000, .exit_status = -1, .exit_signal = 9,
                               .error = (char *) "QEMU was killed by signal 9 (KILL)",
                               .log_tail = (char *) "line \"1\"\nline 2", .audio = (char *) "none",
                               .audio_why = (char *) "no PulseAudio or PipeWire server" };
        snprintf(s.boot_id, sizeof s.boot_id, "0123");
        snprintf(s.guest_event, sizeof s.guest_event, "RESET");
        snprintf(s.guest_event_reason, sizeof s.guest_event_reason, "guest-reset");
        s.guest_events = 7;
        ok(run_state_write_file(path, &s, &err) == 0, "state.json written");
        _cleanup_run_state_ struct run_state r = { 0 };
        ok(run_state_read_file(path, &r, &err) == 0, "state.json read back");
        is_str(run_state_name(r.state), "crashed", "state");
        is_int(r.monitor_pid, 11, "monitor pid");
        is_int(r.qemu_pid, 22, "qemu pid");
        is_int(r.swtpm_pid, 33, "swtpm pid");
        is_int(r.started, 1700000000, "start time");
        is_int(r.exit_status, -1, "exit status");
        is_int(r.exit_signal, 9, "exit signal");
        is_str(r.boot_id, "0123", "boot id");
        is_str(r.error, s.error, "error");
        is_str(r.log_tail, s.log_tail, "log tail with quotes and newlines");
        is_str(r.guest_event, "RESET", "last guest event");
        is_str(r.guest_event_reason, "guest-reset", "its reason");
        is_int(r.guest_events, 7, "the guest event count");
        is_str(r.audio, "none", "the sound backend");
        is_str(r.audio_why, "no PulseAudio or PipeWire server", "why no sound");

        ok(file_write_atomic(path, "[1]", 3, 0644, &err) == 0, "write a non-object");
        _cleanup_run_state_ struct run_state bad = { 0 };
        is_int(run_state_read_file(path, &bad, &err), -EBADMSG, "a state file that is not an object is refused");
        ok(file_write_atomic(path, "{\"state\":\"dancing\"}", 19, 0644, &err) == 0, "write an unknown state");
        is_int(run_state_read_file(path, &bad, &err), -EBADMSG, "an unknown state is refused");
        ok(strstr(err.message, "dancing") != NULL, "naming it: %s", err.message);
        unlink(path);
}

/* A listening unix socket at path (the stand-in needs only to accept a
 * connection: the finder connects and hangs up). */
static int listen_at(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(fd, 4) < 0)
                abort();
        return fd;
}

/* Issue 11: the sound server QEMU's user can reach, found by connecting as
 * that user; none is an answer with a reason, not an error. */
static void test_sound_find(void) {
        _cleanup_free_ char *xdg = NULL, *pulse = NULL, *sock = NULL;
        if (asprintf(&xdg, "%s/xdg", home) < 0 || asprintf(&pulse, "%s/pulse", xdg) < 0 ||
            asprintf(&sock, "%s/native", pulse) < 0)
                abort();
        mkdir_p(pulse, 0700);
        setenv("XDG_RUNTIME_DIR", xdg, 1);
        unsetenv("PULSE_SERVER");
        struct run_creds me = { .uid = geteuid(), .gid = getegid(), .kvm_gid = (gid_t) -1 };
        char *path = NULL, *why = NULL;
        bool system_pulse = access("/run/pulse/native", F_OK) == 0 ||
                            access("/run/user/0/pulse/native", F_OK) == 0;
        is_int(run_sound_find_for(&me, &path, &why), 0, "no server: not an error");
        if (!system_pulse) {
                ok(!path && why && strstr(why, "no PulseAudio or PipeWire server that QEMU's user") && strstr(why, sock),
                   "none found, saying where it looked: %s", why ? why : "(null)");
        }
        free(path);
        free(why);

        int lfd = listen_at(sock);
        is_int(run_sound_find_for(&me, &path, &why), 0, "a listening socket in $XDG_RUNTIME_DIR/pulse");
        is_str(path, sock, "found, as the same user");
        ok(!why, "no reason then");
        free(path);
        free(why);
        close(lfd);
        /* A socket file whose server is gone is not a server. */
        is_int(run_sound_find_for(&me, &path, &why), 0, "a socket file without its server");
        ok(system_pulse || (!path && why), "is not found");
        free(path);
        free(why);
        unlink(sock);

        /* As root, QEMU runs as another user: this process's environment
         * does not count, and a socket it cannot reach is not found. */
        struct passwd *nobody = getpwnam("nobody");
        if (geteuid() == 0 && nobody) {
                lfd = listen_at(sock);
                setenv("PULSE_SERVER", sock, 1);
                struct run_creds other = { .drop = true, .uid = nobody->pw_uid, .gid = nobody->pw_gid,
                                           .kvm_gid = (gid_t) -1 };
                snprintf(other.user, sizeof other.user, "nobody");
                is_int(run_sound_find_for(&other, &path, &why), 0, "as nobody");
                ok(!path && why && strstr(why, "QEMU's user 'nobody'") && !strstr(why, sock),
                   "root's PULSE_SERVER and XDG_RUNTIME_DIR are not nobody's: %s", why ? why : "(null)");
                free(path);
                free(why);
                close(lfd);
                unlink(sock);
                unsetenv("PULSE_SERVER");
        } else
                ok(true, "# skip as root only: QEMU's own user");
        unsetenv("XDG_RUNTIME_DIR");
}

static void test_lock(void) {
        phy_error err = { 0 };
        int fd1 = -1, fd2 = -1;
        ok(run_lock_take(home, &fd1, &err) == 0, "the lock is taken");
        is_int(run_lock_take(home, &fd2, &err), -EBUSY, "a second taker gets EBUSY");
        ok((fcntl(fd1, F_GETFD) & FD_CLOEXEC) != 0, "the lock fd is O_CLOEXEC");
        close(fd1);
        ok(run_lock_take(home, &fd2, &err) == 0, "free again once closed");
        close(fd2);
}

/* A process whose command line looks like our QEMU's: bash -c with
 * "-name guest=<name>,..." as its positional arguments.  It says "up" once
 * it runs (so it has exec'd) and ends when *ret_wfd is closed. */
static pid_t fake_qemu(const char *guest_arg, int *ret_wfd) {
        int in[2], out[2];
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                dup2(in[0], 0);
                dup2(out[1], 1);
                execl("/bin/bash", "bash", "-c", "echo up; read x", "-name", guest_arg, (char *) NULL);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        char buf[3];
        ssize_t n = read(out[0], buf, sizeof buf);
        close(out[0]);
        *ret_wfd = in[1];
        return n == 3 ? pid : -1;
}

static void test_pids(void) {
        int wfd = -1;
        pid_t pid = fake_qemu("guest=vm1,debug-threads=on", &wfd);
        ok(pid > 0, "a process posing as QEMU of vm1");
        ok(run_pid_is_qemu(pid, "vm1"), "it is recognised as vm1's QEMU");
        ok(!run_pid_is_qemu(pid, "vm"), "not as QEMU of a prefix of the name");
        ok(!run_pid_is_qemu(pid, "vm12"), "nor of a longer name");
        ok(!run_pid_is_qemu(getpid(), "vm1"), "this test is not QEMU");
        ok(!run_pid_is_monitor(pid), "nor a monitor");
        ok(!run_pid_is_qemu(0, "vm1") && !run_pid_is_qemu(-1, "vm1"), "pids <= 0 are nothing");
        close(wfd);     /* read sees EOF: the process ends */
        _cleanup_close_ int pfd = exec_pidfd_open(pid);
        /* No pidfd_open (valgrind 3.19, old kernels): wait for the exit
         * and leave the zombie, as the pidfd wait does. */
        siginfo_t si;
        if (pfd < 0 && errno == ENOSYS)
                ok(waitid(P_PID, (id_t) pid, &si, WEXITED | WNOWAIT) == 0, "it exits # SKIP no pidfd_open here");
        else
                ok(pfd >= 0 && exec_pidfd_wait(pfd, 10000), "its pidfd reports the exit");
        ok(!run_pid_is_qemu(pid, "vm1"), "a zombie is not a live QEMU");
        waitpid(pid, NULL, 0);
        ok(!run_pid_is_qemu(pid, "vm1"), "nor is a reaped pid");
}

static void test_reconcile(void) {
        phy_error err = { 0 };
        _cleanup_free_ char *dir = NULL, *state = NULL, *sock = NULL;
        ok(run_dir_path(home, "vm2", &dir, &err) == 0 && mkdir_p(dir, 0700) == 0, "run dir of vm2");
        state = run_file(dir, "state.json");
        sock = run_file(dir, "qmp.sock");

        _cleanup_run_state_ struct run_state none = { 0 };
        ok(run_state_get(home, "vm2", &none, &err) == 0 && none.state == RUN_STOPPED, "no state file: stopped");
        ok(!run_is_active(home, "vm2"), "and not active");

        /* Recorded running, but monitor and QEMU are gone: crashed. */
        int wfd = -1;
        pid_t gone = fake_qemu("guest=vm2", &wfd);
        close(wfd);
        waitpid(gone, NULL, 0);
        struct run_state s = { .state = RUN_RUNNING, .monitor_pid = gone, .qemu_pid = gone, .exit_status = -1 };
        ok(run_boot_id(s.boot_id) == 0 && strlen(s.boot_id) == 36, "this boot's id");
        ok(run_state_write_file(state, &s, &err) == 0, "write a running state");
        ok(file_write_atomic(sock, "", 0, 0600, &err) == 0, "and a leftover qmp.sock");
        /* A read reports it and changes nothing (issue 13: reads are reads). */
        _cleanup_run_state_ struct run_state seen = { 0 }, rec = { 0 };
        ok(run_state_get(home, "vm2", &seen, &err) == 0, "status read");
        is_str(run_state_name(seen.state), "crashed", "a read says crashed");
        ok(seen.needs_repair, "and that a repair is due");
        ok(access(sock, F_OK) == 0, "a read leaves the socket");
        ok(run_state_read_file(state, &rec, &err) == 0 && rec.state == RUN_RUNNING, "a read leaves state.json");
        _cleanup_run_state_ struct run_state r = { 0 };
        ok(run_reconcile(home, "vm2", &r, &err) == 0, "reconcile");
        is_str(run_state_name(r.state), "crashed", "monitor and QEMU gone: crashed");
        ok(r.error && strstr(r.error, "without recording an exit"), "with the reason");
        ok(!r.needs_repair, "repaired");
        ok(access(sock, F_OK) < 0, "leftover sockets removed");
        _cleanup_run_state_ struct run_state again = { 0 };
        ok(run_state_read_file(state, &again, &err) == 0 && again.state == RUN_CRASHED, "crashed was written back");

        /* Monitor gone, QEMU alive: running, unsupervised (QMP unreachable here). */
        pid_t alive = fake_qemu("guest=vm2,debug-threads=on", &wfd);
        s.qemu_pid = alive;
        ok(run_state_write_file(state, &s, &err) == 0, "write a running state with a live QEMU");
        _cleanup_run_state_ struct run_state u = { 0 };
        ok(run_reconcile(home, "vm2", &u, &err) == 0, "reconcile");
        is_str(run_state_name(u.state), "running", "QEMU alive: running");
        ok(u.unsupervised, "unsupervised");
        ok(run_is_active(home, "vm2"), "active: delete must refuse");
        close(wfd);
        waitpid(alive, NULL, 0);

        /* Another boot: stale, cleared, stopped. */
        snprintf(s.boot_id, sizeof s.boot_id, "00000000-0000-0000-0000-000000000000");
        s.qemu_pid = getpid();  /* whatever it names cannot be ours after a reboot */
        ok(run_state_write_file(state, &s, &err) == 0, "write a state from another boot");
        ok(file_write_atomic(sock, "", 0, 0600, &err) == 0, "and a stale qmp.sock");
        _cleanup_run_state_ struct run_state b = { 0 }, b0 = { 0 };
        ok(run_state_get(home, "vm2", &b0, &err) == 0 && b0.state == RUN_STOPPED && b0.needs_repair,
           "a read after a reboot: stopped, repair due");
        ok(access(state, F_OK) == 0 && access(sock, F_OK) == 0, "a read removes nothing");
        ok(run_reconcile(home, "vm2", &b, &err) == 0 && b.state == RUN_STOPPED, "another boot: stopped");
        ok(access(state, F_OK) < 0 && access(sock, F_OK) < 0, "stale files removed");
        _cleanup_run_state_ struct run_state b2 = { 0 };
        ok(run_reconcile(home, "vm2", &b2, &err) == 0 && b2.state == RUN_STOPPED, "a second reconcile: no-op");
}

static void test_tail(void) {
        phy_error err = { 0 };
        _cleanup_free_ char *p = NULL;
        ok(asprintf(&p, "%s/log", home) > 0, "asprintf");
        ok(file_write_atomic(p, "a\nb\nc\nd\n\n", 9, 0644, &err) == 0, "a log");
        _cleanup_free_ char *t2 = run_file_tail(p, 2);
        is_str(t2, "c\nd", "last two lines (trailing newlines dropped)");
        _cleanup_free_ char *t9 = run_file_tail(p, 9);
        is_str(t9, "a\nb\nc\nd", "more lines than there are: all");
        ok(run_file_tail("/nonexistent/log", 3) == NULL, "an unreadable file: NULL");
}

/* phyllo-monitor's handover record (src/run/handover.c): what is not a
 * record, or names an fd it does not hold or another monitor's state, is
 * refused with what is wrong, and nothing is taken. */
static int record_fd(const char *text) {
        int fd = memfd_create("test-handover", MFD_CLOEXEC);
        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t) strlen(text))
                return -1;
        return fd;
}

static int handover_try(const char *text, phy_error *err) {
        struct start_ctx c = { .lock_fd = -1, .report_fd = -1 };
        struct monitor m;
        monitor_init(&m, &c);
        json_object *keep = NULL;
        _cleanup_close_ int fd = text ? record_fd(text) : open("/dev/null", O_RDONLY | O_CLOEXEC);
        int r = monitor_handover_load(fd, &m, &c, &keep, err);
        free(m.state_path), free(m.qemu_log), free(m.console_log), free(m.console_log1), free(m.stop_marker);
        json_object_put(keep);
        return r;
}

static void test_handover(void) {
        _cleanup_free_ char *dir = NULL, *state = NULL, *head = NULL, *rec = NULL;
        phy_error err = { 0 };
        ok(run_dir_path(home, "hand", &dir, &err) == 0 && run_dir_make(dir, &err) == 0, "a run dir for the record");
        ok(handover_try(NULL, &err) == -EINVAL && strstr(err.message, "not a monitor handover record"),
           "/dev/null is not a record: %s", err.message);
        phy_error_clear(&err);
        ok(handover_try("{\"version\":2", &err) == -EINVAL && strstr(err.message, "version 2 JSON object"),
           "a cut record is refused: %s", err.message);
        phy_error_clear(&err);
        ok(handover_try("{\"version\":1}", &err) == -EINVAL, "version 1 (the serial console on a socket) is refused");
        phy_error_clear(&err);
        ok(handover_try("{\"version\":3}", &err) == -EINVAL, "another version is refused");
        phy_error_clear(&err);
        ok(asprintf(&head, "{\"version\":2,\"name\":\"hand\",\"home\":\"%s\",\"run_dir\":\"%s\",\"qemu_pid\":0,"
                    "\"swtpm_pid\":0,\"clog_max\":65536,\"qemu_status\":0", home, dir) > 0, "record head");
        ok(asprintf(&rec, "%s,\"report_fd\":987,\"lock_fd\":-1}", head) > 0 && handover_try(rec, &err) == -EBADF &&
           strstr(err.message, "'report_fd'") && strstr(err.message, "fd 987"),
           "an fd it does not hold is refused, by name: %s", err.message);
        phy_error_clear(&err);
        free(rec), rec = NULL;
        ok(asprintf(&rec, "%s,\"report_fd\":1,\"lock_fd\":-1}", head) > 0 && handover_try(rec, &err) == -EBADF &&
           strstr(err.message, "stdio"), "stdout is no fd of a handover: %s", err.message);
        phy_error_clear(&err);
        free(rec), rec = NULL;
        ok(asprintf(&rec, "%s,\"report_fd\":-1,\"lock_fd\":-1,\"serial_fd\":-1}", head) > 0 &&
           handover_try(rec, &err) == -EINVAL && strstr(err.message, "'serial_in'"),
           "a record without the serial input is refused, by name: %s", err.message);
        phy_error_clear(&err);
        /* Every fd -1 and state.json naming another monitor. */
        free(rec), rec = NULL;
        state = run_file(dir, "state.json");
        struct run_state st = { .state = RUN_RUNNING, .monitor_pid = getpid() + 1, .exit_status = -1 };
        ok(run_state_write_file(state, &st, &err) == 0, "a state.json of another monitor");
        ok(asprintf(&rec, "%s,\"report_fd\":-1,\"lock_fd\":-1,\"serial_fd\":-1,\"serial_in\":-1,"
                    "\"console_listen\":-1,\"qemu_pidfd\":-1,\"swtpm_pidfd\":-1,\"clog_fd\":-1,\"clients\":[]}", head) > 0 &&
           handover_try(rec, &err) == -ESRCH && strstr(err.message, "does not name this monitor"),
           "a state.json of another monitor is refused: %s", err.message);
        phy_error_clear(&err);
}

/* The serial console's batches (src/run/console.c) on real pipes and epoll,
 * driven the way the monitor's loop drives them: after a read that found
 * something the pipe is not watched and the timer brings the next read; a
 * read that finds nothing watches the pipe again; an idle console wakes
 * nobody; what a client types reaches QEMU's stdin and never blocks the
 * monitor; EOF and the drain at QEMU's end. */
static int next_event(int epfd, int timeout_ms) {
        struct epoll_event ev;
        int n;
        while ((n = epoll_wait(epfd, &ev, 1, timeout_ms)) < 0 && errno == EINTR)
                ;
        return n == 1 ? ev.data.fd : -1;
}

static bool log_is(const char *dir, const char *want) {
        _cleanup_free_ char *path = run_file(dir, "console.log"), *got = NULL;
        return file_read_all(path, 0, &got, NULL) >= 0 && strcmp(got, want) == 0;
}

static void test_console(void) {
        _cleanup_free_ char *dir = NULL;
        phy_error err = { 0 };
        ok(run_dir_path(home, "cons", &dir, &err) == 0 && run_dir_make(dir, &err) == 0, "a run dir for the console");
        struct start_ctx c = { .lock_fd = -1, .report_fd = -1, .run_dir = dir };
        struct monitor m;
        monitor_init(&m, &c);
        m.console_log = run_file(dir, "console.log");
        m.console_log1 = run_file(dir, "console.log.1");
        m.clog_max = 1 << 20;
        console_log_open(&m, true);
        m.epfd = epoll_create1(EPOLL_CLOEXEC);
        int client[2];
        ok(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, client) == 0, "a console client");
        m.clients[0] = client[0];
        ok(console_serial_pipes(&m, &err) == 0 && console_serial_watch(&m) == 0, "the serial pipes, watched: %s",
           err.message);
        int qemu_out = m.serial_qemu[1], qemu_in = m.serial_qemu[0];
        ok((fcntl(qemu_out, F_GETFL) & O_NONBLOCK) && fcntl(m.serial_fd, F_GETPIPE_SZ) >= 256 * 1024,
           "QEMU's end does not block; the pipe holds 256 KiB");

        ok(write(qemu_out, "hel", 3) == 3 && write(qemu_out, "lo", 2) == 2, "the guest writes");
        int fd = next_event(m.epfd, -1);
        ok(fd == m.serial_fd, "the pipe wakes the monitor");
        console_serial_event(&m, fd);
        char buf[64] = { 0 };
        ok(log_is(dir, "hello") && recv(client[1], buf, sizeof buf, MSG_DONTWAIT) == 5 && memcmp(buf, "hello", 5) == 0,
           "both writes in one read, into console.log and to the client");
        ok(write(qemu_out, "world", 5) == 5, "more output");
        fd = next_event(m.epfd, -1);
        ok(fd == m.serial_timer, "while output comes, the timer, not the pipe, wakes the monitor");
        console_serial_event(&m, fd);
        ok(log_is(dir, "helloworld"), "the timer's read");
        fd = next_event(m.epfd, -1);
        ok(fd == m.serial_timer, "the timer once more after a read that found something");
        console_serial_event(&m, fd);
        ok(next_event(m.epfd, 100) == -1, "a read that found nothing: an idle console wakes nobody");
        ok(write(qemu_out, "!", 1) == 1 && (fd = next_event(m.epfd, -1)) == m.serial_fd,
           "the pipe is watched again");
        console_serial_event(&m, fd);
        ok(log_is(dir, "helloworld!"), "and read");

        /* Input: into QEMU's stdin; more than the pipe takes is dropped,
         * the monitor never blocks (a blocked one would hang this test). */
        ok(send(client[1], "typed", 5, 0) == 5, "a client types");
        console_client_input(&m, 0);
        memset(buf, 0, sizeof buf);
        ok(read(qemu_in, buf, sizeof buf) == 5 && memcmp(buf, "typed", 5) == 0, "it reaches QEMU's stdin");
        static char junk[4096];
        size_t sent = 0;
        for (int i = 0; i < 64 && send(client[1], junk, sizeof junk, 0) == (ssize_t) sizeof junk; i++) {
                console_client_input(&m, 0);
                sent += sizeof junk;
        }
        ok(sent == 64 * sizeof junk, "%zu bytes typed into a guest that reads nothing: the monitor goes on", sent);

        /* QEMU's end: what it wrote is read to its EOF. */
        ok(write(qemu_out, "bye", 3) == 3, "last words");
        close(m.serial_qemu[1]), m.serial_qemu[1] = -1;
        close(m.serial_qemu[0]), m.serial_qemu[0] = -1;
        console_serial_drain(&m);
        ok(log_is(dir, "helloworld!bye"), "drained to its EOF");
        console_serial_close(&m);
        ok(m.serial_in == -1 && m.serial_timer == -1, "everything closed");
        console_clients_drop(&m);
        close(client[1]);
        console_log_close(&m);
        close(m.epfd);
        free(m.console_log), free(m.console_log1);
}

/* The answer as QEMU's user would get it: access() in a child with those creds. */
static bool reachable_as(const struct run_creds *cr, const char *path, int mode) {
        pid_t pid = fork();
        if (pid == 0)
                _exit(run_creds_apply_child(cr) == 0 && access(path, mode) == 0 ? 0 : 1);
        int st;
        return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* prepare.c's shortcut before the check as QEMU's user: it may say "don't
 * know" where the user gets in, never "gets in" where the user does not. */
static void test_reachable(void) {
        if (geteuid() != 0) {
                ok(true, "# SKIP the check as another user needs root");
                return;
        }
        struct run_creds cr = { .drop = true, .uid = 6001234, .gid = 6001234, .kvm_gid = (gid_t) -1 };
        char d[PATH_MAX], f[PATH_MAX + 16], l[PATH_MAX + 16];
        snprintf(d, sizeof d, "%s/reach", home);
        mkdir(d, 0755);
        chmod(home, 0755);      /* mkdtemp made it 0700 */
        snprintf(f, sizeof f, "%s/f", d);
        phy_error err = { 0 };
        ok(file_write_atomic(f, "x", 1, 0644, &err) == 0, "a file to reach");
        struct { mode_t dmode, fmode; uid_t fuid; gid_t fgid; int mode; bool expect; const char *what; } cases[] = {
                { 0755, 0644, 0, 0, R_OK, true, "a world-readable file" },
                { 0755, 0644, 0, 0, R_OK | W_OK, false, "not for writing" },
                { 0700, 0644, 0, 0, R_OK, false, "not through a directory closed to others" },
                { 0755, 0064, 6001234, 0, R_OK, false, "the owner's own bits deny (other's allow)" },
                { 0755, 0604, 0, 6001234, R_OK, false, "the group's bits deny (other's allow)" },
                { 0755, 0640, 0, 6001234, R_OK, true, "the group's bits allow" },
                { 0755, 0600, 6001234, 0, R_OK | W_OK, true, "the owner's bits allow" },
                { 0751, 0644, 0, 0, R_OK, true, "through a directory others may only search" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                chmod(d, cases[i].dmode);
                if (chown(f, cases[i].fuid, cases[i].fgid) < 0 || chmod(f, cases[i].fmode) < 0)
                        ok(false, "chown/chmod %s", f);
                bool fast = run_reachable_by_modes(&cr, f, cases[i].mode);
                ok(fast == cases[i].expect && (!fast || reachable_as(&cr, f, cases[i].mode)), "reachable by modes: %s",
                   cases[i].what);
        }
        chmod(d, 0755);
        snprintf(l, sizeof l, "%s/link", d);
        ok(chown(f, 0, 0) == 0 && chmod(f, 0644) == 0 && symlink(f, l) == 0, "a symlink to it");
        ok(!run_reachable_by_modes(&cr, l, R_OK) && reachable_as(&cr, l, R_OK),
           "a symlink is left to the check as the user");
        snprintf(l, sizeof l, "%s/../reach/f", d);
        ok(!run_reachable_by_modes(&cr, l, R_OK), "so is a path with '..'");
        snprintf(l, sizeof l, "%s/missing", d);
        ok(!run_reachable_by_modes(&cr, l, R_OK), "and a missing file");
        ok(!run_reachable_by_modes(&cr, "relative/f", R_OK), "and a relative path");
        chmod(home, 0700);
}

int main(void) {
        if (!mkdtemp(home))
                return 99;
        test_names();
        test_dir();
        test_state_file();
        test_sound_find();
        test_lock();
        test_pids();
        test_reconcile();
        test_tail();
        test_handover();
        test_console();
        test_reachable();
        rm_rf(home);
        return tap_done();
}

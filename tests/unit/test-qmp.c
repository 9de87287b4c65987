/* SPDX-License-Identifier: MIT */
/*
 * The QMP client against replayed sessions (tests/fixtures/qmp/<name>.txt, see
 * the README there) served by a forked fake server over a socketpair, and
 * against the real qemu-system-x86_64.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "cleanup.h"
#include "fileio.h"
#include "qemu/qmp.h"
#include "replay.h"

extern char **environ;

/* ---- the fake server (runs in a forked child) --------------------------- */

static int srv_fd = -1;
static char srv_buf[65536];
static size_t srv_len;

static void srv_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void srv_fail(const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        dprintf(1, "# fake server: %s\n", msg);
        _exit(1);
}

static void srv_send(const char *data, size_t len) {
        while (len > 0) {
                ssize_t n = send(srv_fd, data, len, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)      /* the client gave up on the session: its business */
                        _exit(0);
                data += n;
                len -= (size_t) n;
        }
}

/* One line from the client, or NULL at EOF. */
static char *srv_read_line(void) {
        for (;;) {
                char *nl = memchr(srv_buf, '\n', srv_len);
                if (nl) {
                        size_t n = (size_t) (nl - srv_buf);
                        char *line = strndup(srv_buf, n);
                        srv_len -= n + 1;
                        memmove(srv_buf, nl + 1, srv_len);
                        return line;
                }
                if (srv_len == sizeof srv_buf)
                        srv_fail("client line longer than 64 KiB");
                ssize_t n = read(srv_fd, srv_buf + srv_len, sizeof srv_buf - srv_len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return NULL;
                srv_len += (size_t) n;
        }
}

static void srv_run(char *script) {
        char id[256] = "";
        alarm(20);      /* a wedged test must not hang the suite */
        char *save = NULL;
        for (char *line = strtok_r(script, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (line[0] == '#' || line[0] == '\0')
                        continue;
                if (strncmp(line, "S: ", 3) == 0) {
                        char out[8192];
                        size_t o = 0;
                        for (const char *p = line + 3; *p && o < sizeof out - 3; p++) {
                                if (strncmp(p, "$ID", 3) == 0) {
                                        size_t il = strlen(id);
                                        if (o + il >= sizeof out - 3)
                                                break;
                                        memcpy(out + o, id, il);
                                        o += il;
                                        p += 2;
                                } else
                                        out[o++] = *p;
                        }
                        out[o++] = '\r';
                        out[o++] = '\n';
                        srv_send(out, o);
                } else if (strncmp(line, "S~ ", 3) == 0) {
                        srv_send(line + 3, strlen(line + 3));
                } else if (strncmp(line, "S* ", 3) == 0) {
                        size_t n = strtoul(line + 3, NULL, 10);
                        char *big = malloc(n + 2);
                        memcpy(big, "{\"return\": \"", 12);
                        memset(big + 12, 'x', n - 14);
                        memcpy(big + n - 2, "\"}\n", 3);
                        srv_send(big, n + 1);
                        free(big);
                } else if (strncmp(line, "E ", 2) == 0) {
                        unsigned long n = strtoul(line + 2, NULL, 10);
                        for (unsigned long i = 0; i < n; i++) {
                                char ev[128];
                                int l = snprintf(ev, sizeof ev, "{\"event\": \"SEQ\", \"data\": {\"n\": %lu}}\r\n", i);
                                srv_send(ev, (size_t) l);
                        }
                } else if (strncmp(line, "C: ", 3) == 0) {
                        _cleanup_free_ char *got = srv_read_line();
                        if (!got)
                                srv_fail("client closed; expected %s", line + 3);
                        json_object *g = json_tokener_parse(got), *want = json_tokener_parse(line + 3), *gid = NULL;
                        if (!g || !want)
                                srv_fail("cannot parse client line '%s' or script line '%s'", got, line + 3);
                        if (!json_object_object_get_ex(g, "id", &gid) || !json_object_is_type(gid, json_type_string))
                                srv_fail("client line has no string id: %s", got);
                        snprintf(id, sizeof id, "%s", json_object_get_string(gid));
                        json_object_object_del(g, "id");
                        if (!json_object_equal(g, want))
                                srv_fail("client sent '%s', script expects '%s'", got, line + 3);
                        json_object_put(g);
                        json_object_put(want);
                } else if (strcmp(line, "HOLD") == 0) {
                        for (char *l; (l = srv_read_line());)
                                free(l);
                } else
                        srv_fail("bad script line '%s'", line);
        }
        _exit(0);
}

static void srv_main(int fd, char *script) {
        srv_fd = fd;
        srv_run(script);
}

/* Starts the fake server for a fixture; returns the client's socket end. */
static int replay_start(const char *name, pid_t *ret_pid) {
        return replay_start_with(name, srv_main, ret_pid);
}

static const char *event_name(json_object *ev) {
        json_object *n = NULL;
        return json_object_object_get_ex(ev, "event", &n) ? json_object_get_string(n) : "";
}

static int64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- replayed cases ----------------------------------------------------- */

static void test_normal(void) {
        pid_t pid;
        int fd = replay_start("normal.txt", &pid);
        phy_error err = { 0 };
        struct qmp *q = NULL;
        is_int(qmp_open_fd(fd, 2000, &q, &err), 0, "normal: greeting read and capabilities negotiated");
        if (!q) {
                printf("# %s\n", err.message);
                replay_end(pid);
                return;
        }
        json_object *v = NULL;
        ok(json_object_object_get_ex(qmp_greeting(q), "version", &v), "normal: greeting kept");
        _cleanup_free_ char *st = NULL;
        is_int(qmp_query_status(q, &st, &err), 0, "normal: query-status answered");
        is_str(st, "running", "normal: status is running");
        is_int(qmp_command(q, "stop", NULL, 2000, NULL, &err), 0, "normal: stop answered");
        is_int(qmp_command(q, "quit", NULL, 2000, NULL, &err), 0, "normal: quit answered");
        json_object *ev = NULL;
        is_int(qmp_next_event(q, 0, &ev, &err), 0, "normal: STOP event queued during 'stop'");
        is_str(event_name(ev), "STOP", "normal: first event is STOP");
        json_object_put(ev);
        ev = NULL;
        is_int(qmp_next_event(q, 2000, &ev, &err), 0, "normal: SHUTDOWN event read after the reply");
        is_str(event_name(ev), "SHUTDOWN", "normal: then SHUTDOWN");
        json_object_put(ev);
        ev = NULL;
        int r = qmp_next_event(q, 2000, &ev, &err);
        is_int(r, -ECONNRESET, "normal: EOF after quit is reported as a closed connection");
        ok(strstr(err.message, "closed the QMP connection") != NULL, "normal: EOF message says so: %s", err.message);
        qmp_close(q);
        ok(replay_end(pid), "normal: server saw the expected commands");
}

static void test_events(void) {
        pid_t pid;
        int fd = replay_start("events.txt", &pid);
        phy_error err = { 0 };
        _cleanup_qmp_ struct qmp *q = NULL;
        is_int(qmp_open_fd(fd, 2000, &q, &err), 0, "events: open with events around the capabilities reply");
        _cleanup_free_ char *st = NULL;
        is_int(q ? qmp_query_status(q, &st, &err) : -1, 0, "events: query-status answered");
        is_str(st, "paused", "events: status is paused");
        const char *want[] = { "EV1", "EV2", "EV3", "EV4" };
        for (size_t i = 0; q && i < ELEMENTSOF(want); i++) {
                json_object *ev = NULL;
                int r = qmp_next_event(q, 0, &ev, &err);
                ok(r == 0 && strcmp(event_name(ev), want[i]) == 0, "events: queued event %zu is %s", i + 1, want[i]);
                json_object_put(ev);
        }
        json_object *ev = NULL;
        is_int(q ? qmp_next_event(q, 2000, &ev, &err) : -1, 0, "events: EV5 read from the socket");
        is_str(event_name(ev), "EV5", "events: EV5 is last");
        json_object_put(ev);
        ev = NULL;
        int64_t t0 = mono_ms();
        is_int(q ? qmp_next_event(q, 0, &ev, &err) : -1, -EAGAIN, "events: none left: -EAGAIN without waiting");
        ok(mono_ms() - t0 < 100, "events: timeout 0 does not wait");
        is_int(q ? qmp_next_event(q, 200, &ev, &err) : -1, -ETIMEDOUT, "events: none within 200 ms: -ETIMEDOUT");
        qmp_close(TAKE_PTR(q));
        ok(replay_end(pid), "events: server saw the expected commands");
}

static void test_errors(void) {
        pid_t pid;
        int fd = replay_start("error.txt", &pid);
        phy_error err = { 0 };
        _cleanup_qmp_ struct qmp *q = NULL;
        is_int(qmp_open_fd(fd, 2000, &q, &err), 0, "error: open");
        if (!q) {
                replay_end(pid);
                return;
        }
        json_object *args = json_object_new_object();
        json_object_object_add(args, "id", json_object_new_string("nosuch"));
        is_int(qmp_command(q, "device_del", args, 2000, NULL, &err), -ENODEV, "error: DeviceNotFound is -ENODEV");
        ok(strstr(err.message, "Device 'nosuch' not found") && strstr(err.message, "device_del"),
           "error: message has QEMU's desc and the command: %s", err.message);
        is_int(qmp_command(q, "x-nosuch-command", NULL, 2000, NULL, &err), -EOPNOTSUPP, "error: CommandNotFound is -EOPNOTSUPP");
        is_int(qmp_command(q, "cont", NULL, 2000, NULL, &err), -EREMOTEIO, "error: GenericError is -EREMOTEIO");
        ok(strstr(err.message, "Resetting the Virtual Machine is required") != NULL, "error: desc kept: %s", err.message);
        _cleanup_free_ char *st = NULL;
        is_int(qmp_query_status(q, &st, &err), 0, "error: the session goes on after error replies");
        is_str(st, "paused", "error: and answers correctly");
        qmp_close(TAKE_PTR(q));
        ok(replay_end(pid), "error: server saw the expected commands");
}

static void test_unknown_keys(void) {
        pid_t pid;
        int fd = replay_start("unknown-keys.txt", &pid);
        phy_error err = { 0 };
        _cleanup_qmp_ struct qmp *q = NULL;
        is_int(qmp_open_fd(fd, 2000, &q, &err), 0, "unknown keys: greeting and reply with extra members accepted");
        _cleanup_free_ char *st = NULL;
        is_int(q ? qmp_query_status(q, &st, &err) : -1, 0, "unknown keys: query-status answered");
        is_str(st, "running", "unknown keys: status read past unknown members");
        qmp_close(TAKE_PTR(q));
        ok(replay_end(pid), "unknown keys: server saw the expected commands");
}

/* Opens a session and expects the first query-status to fail with want. */
static void expect_status_failure(const char *fixture, int timeout_ms, int want, const char *needle, int64_t *ret_ms) {
        pid_t pid;
        int fd = replay_start(fixture, &pid);
        phy_error err = { 0 };
        _cleanup_qmp_ struct qmp *q = NULL;
        is_int(qmp_open_fd(fd, 2000, &q, &err), 0, "%s: open", fixture);
        if (q) {
                int64_t t0 = mono_ms();
                int r = qmp_command(q, "query-status", NULL, timeout_ms, NULL, &err);
                if (ret_ms)
                        *ret_ms = mono_ms() - t0;
                is_int(r, want, "%s: query-status fails with the expected errno", fixture);
                ok(strstr(err.message, needle) != NULL, "%s: message says '%s': %s", fixture, needle, err.message);
        }
        qmp_close(TAKE_PTR(q));
        ok(replay_end(pid), "%s: server saw the expected commands", fixture);
}

static void test_bad_lines(void) {
        expect_status_failure("malformed.txt", 2000, -EBADMSG, "not a JSON object", NULL);
        expect_status_failure("truncated.txt", 2000, -ECONNRESET, "in the middle of a line", NULL);
        char limit[32];
        snprintf(limit, sizeof limit, "%u bytes", QMP_LINE_MAX);
        expect_status_failure("overlong.txt", 5000, -EMSGSIZE, limit, NULL);
        int64_t ms = 0;
        expect_status_failure("noanswer.txt", 300, -ETIMEDOUT, "within 300 ms", &ms);
        ok(ms >= 290 && ms < 2000, "noanswer: gave up after about 300 ms (%lld ms)", (long long) ms);
}

static void test_other_id(void) {
        pid_t pid;
        int fd = replay_start("other-id.txt", &pid);
        phy_error err = { 0 };
        _cleanup_qmp_ struct qmp *q = NULL;
        is_int(qmp_open_fd(fd, 2000, &q, &err), 0, "other id: open");
        _cleanup_free_ char *st = NULL;
        is_int(q ? qmp_query_status(q, &st, &err) : -1, 0, "other id: query-status answered");
        is_str(st, "running", "other id: the reply with our id is the one taken");
        json_object *ev = NULL;
        is_int(q ? qmp_next_event(q, 0, &ev, &err) : -1, 0, "other id: the event in between is queued");
        is_str(event_name(ev), "MID", "other id: it is MID");
        json_object_put(ev);
        qmp_close(TAKE_PTR(q));
        ok(replay_end(pid), "other id: server saw the expected commands");
}

static void test_event_flood(void) {
        pid_t pid;
        int fd = replay_start("event-flood.txt", &pid);
        phy_error err = { 0 };
        _cleanup_qmp_ struct qmp *q = NULL;
        is_int(qmp_open_fd(fd, 2000, &q, &err), 0, "flood: open");
        _cleanup_free_ char *st = NULL;
        is_int(q ? qmp_query_status(q, &st, &err) : -1, 0, "flood: reply found behind 1030 events");
        is_int(q ? (long long) qmp_events_dropped(q) : -1, 1030 - QMP_EVENTS_MAX, "flood: the overflow is counted");
        json_object *ev = NULL, *data = NULL, *n = NULL;
        is_int(q ? qmp_next_event(q, 0, &ev, &err) : -1, 0, "flood: an event is there");
        ok(json_object_object_get_ex(ev, "data", &data) && json_object_object_get_ex(data, "n", &n) &&
           json_object_get_int(n) == 1030 - QMP_EVENTS_MAX, "flood: the oldest were dropped, the next is kept");
        json_object_put(ev);
        size_t left = 0;
        while (q && qmp_next_event(q, 0, &ev, &err) == 0) {
                left++;
                json_object_put(ev);
        }
        is_int(left, QMP_EVENTS_MAX - 1, "flood: the queue held exactly its bound");
        qmp_close(TAKE_PTR(q));
        ok(replay_end(pid), "flood: server saw the expected commands");
}

static void test_no_greeting(void) {
        pid_t pid;
        int fd = replay_start("no-greeting.txt", &pid);
        phy_error err = { 0 };
        struct qmp *q = NULL;
        is_int(qmp_open_fd(fd, 2000, &q, &err), -EPROTO, "no greeting: refused");
        ok(strstr(err.message, "greeting") != NULL, "no greeting: message says so: %s", err.message);
        ok(q == NULL, "no greeting: nothing returned");
        ok(replay_end(pid), "no greeting: server done");

        /* A peer that says nothing at all: the greeting wait is bounded too. */
        int sv[2];
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
        int64_t t0 = mono_ms();
        is_int(qmp_open_fd(sv[0], 200, &q, &err), -ETIMEDOUT, "silent peer: greeting wait times out");
        ok(mono_ms() - t0 < 2000, "silent peer: within the bound");
        close(sv[1]);
}

/* ---- the real QEMU ------------------------------------------------------ */

static void test_real_qemu(void) {
        const char *qemu = getenv("PHYLLOME_QEMU");
        if (!qemu || !*qemu)
                qemu = "/usr/bin/qemu-system-x86_64";
        if (access(qemu, X_OK) < 0) {
                ok(0, "real QEMU: '%s' must be installed (qemu-system-x86)", qemu);
                return;
        }
        char dir[] = "/tmp/phyllome-test-qmp-XXXXXX";
        if (!mkdtemp(dir)) {
                ok(0, "real QEMU: mkdtemp");
                return;
        }
        char path[sizeof ((struct sockaddr_un *) 0)->sun_path];
        snprintf(path, sizeof path, "%s/qmp.sock", dir);

        /* We listen; QEMU accepts on the fd we pass (no path polling): the
         * connect below queues in the backlog until QEMU is up. */
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        memcpy(sa.sun_path, path, sizeof path);
        ok(lfd >= 0 && bind(lfd, (struct sockaddr *) &sa, sizeof sa) == 0 && listen(lfd, 1) == 0, "real QEMU: listening socket");
        char chardev[64];
        snprintf(chardev, sizeof chardev, "socket,id=qmp,fd=%d,server=on,wait=off", lfd);
        char *argv[] = { (char *) qemu, "-machine", "none", "-nodefaults", "-display", "none", "-no-user-config",
                         "-chardev", chardev, "-mon", "chardev=qmp,mode=control", NULL };
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDWR);
                dup2(devnull, 0);
                dup2(devnull, 1);
                fcntl(lfd, F_SETFD, 0);
                execve(qemu, argv, environ);
                _exit(127);
        }
        close(lfd);

        phy_error err = { 0 };
        _cleanup_qmp_ struct qmp *q = NULL;
        is_int(qmp_open_path(path, 10000, &q, &err), 0, "real QEMU: connected over '%s'", path);
        if (!q)
                printf("# %s\n", err.message);
        _cleanup_free_ char *st = NULL, *st2 = NULL;
        is_int(q ? qmp_query_status(q, &st, &err) : -1, 0, "real QEMU: query-status");
        is_str(st, "running", "real QEMU: a machine started without -S runs");
        is_int(q ? qmp_command(q, "stop", NULL, 5000, NULL, &err) : -1, 0, "real QEMU: stop");
        json_object *ev = NULL;
        is_int(q ? qmp_next_event(q, 5000, &ev, &err) : -1, 0, "real QEMU: an event after stop");
        is_str(event_name(ev), "STOP", "real QEMU: it is STOP");
        json_object_put(ev);
        is_int(q ? qmp_query_status(q, &st2, &err) : -1, 0, "real QEMU: query-status again");
        is_str(st2, "paused", "real QEMU: paused after stop");
        json_object *ver = NULL, *qv = NULL;
        is_int(q ? qmp_command(q, "query-version", NULL, 5000, &ver, &err) : -1, 0, "real QEMU: query-version");
        ok(json_object_object_get_ex(ver, "qemu", &qv) && json_object_object_get_ex(qv, "major", NULL),
           "real QEMU: version has qemu.major");
        json_object_put(ver);
        is_int(q ? qmp_command(q, "no-such-command", NULL, 5000, NULL, &err) : -1, -EOPNOTSUPP,
               "real QEMU: unknown command is CommandNotFound");
        ok(strstr(err.message, "no-such-command") != NULL, "real QEMU: message names it: %s", err.message);
        /* An fd passed with add-fd (SCM_RIGHTS on the command): query-fdsets
         * lists it in the set QEMU made, with the opaque string given. */
        int pfd[2] = { -1, -1 };
        ok(pipe2(pfd, O_CLOEXEC) == 0, "real QEMU: a pipe to pass");
        json_object *a = json_object_new_object(), *added = NULL, *sets = NULL, *v = NULL;
        json_object_object_add(a, "opaque", json_object_new_string("test-qmp"));
        is_int(q ? qmp_command_fd(q, "add-fd", a, pfd[1], 5000, &added, &err) : -1, 0,
               "real QEMU: add-fd with an fd passed");
        int64_t set = json_object_object_get_ex(added, "fdset-id", &v) ? json_object_get_int64(v) : -1;
        ok(set >= 0, "real QEMU: add-fd answers its fdset-id (%" PRId64 ")", set);
        is_int(q ? qmp_command(q, "query-fdsets", NULL, 5000, &sets, &err) : -1, 0, "real QEMU: query-fdsets");
        bool listed = false;
        for (size_t i = 0; sets && i < json_object_array_length(sets); i++) {
                json_object *s = json_object_array_get_idx(sets, i), *id = NULL, *fds = NULL, *op = NULL;
                if (json_object_object_get_ex(s, "fdset-id", &id) && json_object_get_int64(id) == set &&
                    json_object_object_get_ex(s, "fds", &fds) && json_object_array_length(fds) == 1 &&
                    json_object_object_get_ex(json_object_array_get_idx(fds, 0), "opaque", &op))
                        listed = strcmp(json_object_get_string(op), "test-qmp") == 0;
        }
        ok(listed, "real QEMU: the passed fd is in its fdset: %s", json_object_to_json_string(sets));
        json_object *rm = json_object_new_object();
        json_object_object_add(rm, "fdset-id", json_object_new_int64(set));
        is_int(q ? qmp_command(q, "remove-fd", rm, 5000, NULL, &err) : -1, 0, "real QEMU: remove-fd");
        json_object_put(added);
        json_object_put(sets);
        close(pfd[0]);
        close(pfd[1]);
        is_int(q ? qmp_command(q, "quit", NULL, 5000, NULL, &err) : -1, 0, "real QEMU: quit");
        qmp_close(TAKE_PTR(q));

        /* Bounded wait for our child (pidfd, no sleep loop); SIGKILL it,
         * by pid, past the bound. */
        int status = 0;
        int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        bool exited = pidfd >= 0 && poll(&p, 1, 10000) == 1;
        /* No pidfd_open (valgrind 3.19, old kernels): QEMU acked quit, so a
         * blocking wait that leaves the zombie for waitpid below is bounded. */
        siginfo_t si;
        if (pidfd < 0 && errno == ENOSYS)
                exited = waitid(P_PID, (id_t) pid, &si, WEXITED | WNOWAIT) == 0;
        if (!exited)
                kill(pid, SIGKILL);
        if (pidfd >= 0)
                close(pidfd);
        pid_t w = waitpid(pid, &status, 0);
        ok(exited && w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "real QEMU: exited by itself after quit");
        unlink(path);
        rmdir(dir);
}

int main(void) {
        test_normal();
        test_events();
        test_errors();
        test_unknown_keys();
        test_bad_lines();
        test_other_id();
        test_event_flood();
        test_no_greeting();
        test_real_qemu();
        return tap_done();
}

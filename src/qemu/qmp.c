/* SPDX-License-Identifier: MIT */
#include "qmp.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "sock.h"

struct qmp {
        int fd;
        /* Bytes read but not yet split into lines; never more than
         * QMP_LINE_MAX + 1 without a newline among them. */
        char *buf;
        size_t len, cap;
        /* Event FIFO as a ring buffer. */
        json_object *events[QMP_EVENTS_MAX];
        size_t ev_head, ev_count, ev_dropped;
        uint64_t next_id;
        json_object *greeting;
};

/* ---- deadlines ---------------------------------------------------------- */

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Deadline for a timeout: INT64_MAX when unbounded (timeout < 0). */
static int64_t deadline_of(int timeout_ms) {
        return timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
}

/* Milliseconds left for poll(): -1 when unbounded, 0 when passed. */
static int remaining_ms(int64_t deadline) {
        if (deadline == INT64_MAX)
                return -1;
        int64_t left = deadline - now_ms();
        if (left <= 0)
                return 0;
        return left > INT_MAX ? INT_MAX : (int) left;
}

/* Waits for `events` on the socket until the deadline: 1 ready, 0 timeout. */
static int wait_fd(int fd, short events, int64_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                int r = poll(&p, 1, remaining_ms(deadline));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                return r > 0;
        }
}

/* ---- events ------------------------------------------------------------- */

static void event_push(struct qmp *q, json_object *ev) {
        if (q->ev_count == QMP_EVENTS_MAX) {
                /* Full: drop the oldest, so the newest state is what a
                 * consumer catching up sees; the loss is counted. */
                json_object_put(q->events[q->ev_head]);
                q->ev_head = (q->ev_head + 1) % QMP_EVENTS_MAX;
                q->ev_count--;
                q->ev_dropped++;
        }
        q->events[(q->ev_head + q->ev_count) % QMP_EVENTS_MAX] = ev;
        q->ev_count++;
}

static json_object *event_pop(struct qmp *q) {
        if (q->ev_count == 0)
                return NULL;
        json_object *ev = q->events[q->ev_head];
        q->events[q->ev_head] = NULL;
        q->ev_head = (q->ev_head + 1) % QMP_EVENTS_MAX;
        q->ev_count--;
        return ev;
}

/* ---- line I/O ----------------------------------------------------------- */

/* Sends with pass_fd (>= 0) attached to the first bytes (SCM_RIGHTS). */
static ssize_t send_fd(int sock, const char *p, size_t n, int pass_fd) {
        struct iovec iov = { .iov_base = (void *) p, .iov_len = n };
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } u = { 0 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
        return sendmsg(sock, &mh, MSG_NOSIGNAL);
}

static int write_line(struct qmp *q, const char *what, const char *line, int pass_fd, int64_t deadline,
                      phy_error *err) {
        /* The command and its newline in one write: QEMU's monitor thread
         * wakes once for it, not a second time for the newline. */
        size_t len = strlen(line) + 1, off = 0;
        _cleanup_free_ char *buf = malloc(len);
        if (!buf)
                return phy_error_set(err, ENOMEM, "out of memory");
        memcpy(buf, line, len - 1);
        buf[len - 1] = '\n';
        bool is_socket = true;
        while (off < len) {
                const char *p = buf + off;
                size_t n_left = len - off;
                ssize_t n = pass_fd >= 0 && off == 0 ? send_fd(q->fd, p, n_left, pass_fd)
                            : is_socket ? send(q->fd, p, n_left, MSG_NOSIGNAL) : write(q->fd, p, n_left);
                if (n < 0 && errno == ENOTSOCK && pass_fd >= 0)
                        return phy_error_set(err, ENOTSOCK, "cannot pass a file descriptor with '%s': QMP is not "
                                             "on a socket", what);
                if (n < 0 && errno == ENOTSOCK && is_socket) {
                        is_socket = false;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        int r = wait_fd(q->fd, POLLOUT, deadline);
                        if (r < 0)
                                return phy_error_set(err, r, "cannot wait to send '%s' to QEMU: %s", what, strerror(-r));
                        if (r == 0)
                                return phy_error_set(err, ETIMEDOUT, "QEMU did not accept the command '%s' in time (its QMP socket stayed full)", what);
                        continue;
                }
                if (n < 0) {
                        int r = -errno;
                        if (r == -EPIPE || r == -ECONNRESET)
                                return phy_error_set(err, ECONNRESET, "cannot send '%s': QEMU closed the QMP connection", what);
                        return phy_error_set(err, r, "cannot send '%s' to QEMU: %s", what, strerror(-r));
                }
                off += (size_t) n;
        }
        return 0;
}

/* Cuts the next complete line out of the buffer into *ret (malloc'd, NUL
 * terminated, trailing CR stripped).  0 when no complete line is buffered. */
static int take_line(struct qmp *q, char **ret) {
        char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;
        if (!nl)
                return 0;
        size_t n = (size_t) (nl - q->buf);
        if (n > QMP_LINE_MAX)
                return -EMSGSIZE;
        char *line = malloc(n + 1);
        if (!line)
                return -ENOMEM;
        memcpy(line, q->buf, n);
        line[n] = '\0';
        if (n > 0 && line[n - 1] == '\r')
                line[n - 1] = '\0';
        q->len -= n + 1;
        memmove(q->buf, nl + 1, q->len);
        *ret = line;
        return 1;
}

/* Reads what the socket has.  1 data read, 0 nothing available now. */
static int fill(struct qmp *q, phy_error *err) {
        if (q->len > QMP_LINE_MAX)
                return phy_error_set(err, EMSGSIZE, "QEMU sent a QMP line longer than the limit of %u bytes; refusing it",
                                     QMP_LINE_MAX);
        if (q->cap - q->len < 4096) {
                /* Grow up to one full line plus its newline and a read's worth. */
                size_t cap = q->cap ? q->cap * 2 : 8192;
                if (cap > QMP_LINE_MAX + 65536)
                        cap = QMP_LINE_MAX + 65536;
                if (cap > q->cap) {
                        char *b = realloc(q->buf, cap);
                        if (!b)
                                return phy_error_set(err, ENOMEM, "out of memory reading from QEMU");
                        q->buf = b;
                        q->cap = cap;
                }
        }
        for (;;) {
                ssize_t n = read(q->fd, q->buf + q->len, q->cap - q->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return 0;
                if (n < 0 && errno == ECONNRESET)
                        n = 0;
                if (n < 0)
                        return phy_error_set(err, errno, "cannot read from QEMU's QMP socket: %s", strerror(errno));
                if (n == 0) {
                        if (q->len > 0)
                                return phy_error_set(err, ECONNRESET,
                                                     "QEMU closed the QMP connection in the middle of a line (%zu bytes without a newline)",
                                                     q->len);
                        return phy_error_set(err, ECONNRESET, "QEMU closed the QMP connection");
                }
                q->len += (size_t) n;
                return 1;
        }
}

/* Next message from QEMU as a JSON object.  1 got one, 0 deadline passed
 * (with nothing complete buffered). */
static int read_message(struct qmp *q, int64_t deadline, json_object **ret, phy_error *err) {
        for (;;) {
                _cleanup_free_ char *line = NULL;
                int r = take_line(q, &line);
                if (r == -EMSGSIZE)
                        return phy_error_set(err, EMSGSIZE, "QEMU sent a QMP line longer than the limit of %u bytes; refusing it",
                                             QMP_LINE_MAX);
                if (r < 0)
                        return phy_error_set(err, r, "out of memory reading from QEMU");
                if (r > 0) {
                        if (line[strspn(line, " \t\r")] == '\0')
                                continue;
                        json_tokener *tok = json_tokener_new_ex(64);
                        if (!tok)
                                return phy_error_set(err, ENOMEM, "out of memory parsing a QMP message");
                        size_t len = strlen(line);
                        json_object *o = json_tokener_parse_ex(tok, line, (int) len);
                        enum json_tokener_error jerr = json_tokener_get_error(tok);
                        size_t used = json_tokener_get_parse_end(tok);
                        json_tokener_free(tok);
                        if (jerr == json_tokener_continue)
                                jerr = json_tokener_error_parse_eof;
                        if (!o || jerr != json_tokener_success || line[used + strspn(line + used, " \t\r")] != '\0' ||
                            !json_object_is_type(o, json_type_object)) {
                                json_object_put(o);
                                return phy_error_set(err, EBADMSG, "QEMU sent a QMP line that is not a JSON object (%s): '%.80s%s'",
                                                     jerr != json_tokener_success ? json_tokener_error_desc(jerr) : "unexpected content",
                                                     line, len > 80 ? "..." : "");
                        }
                        *ret = o;
                        return 1;
                }
                r = fill(q, err);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (deadline != INT64_MIN) {
                        r = wait_fd(q->fd, POLLIN, deadline);
                        if (r < 0)
                                return phy_error_set(err, r, "cannot wait for QEMU's QMP socket: %s", strerror(-r));
                }
                if (deadline == INT64_MIN || r == 0)
                        return 0;
        }
}

/* ---- setup -------------------------------------------------------------- */

static void qmp_free(struct qmp *q) {
        while (q->ev_count)
                json_object_put(event_pop(q));
        json_object_put(q->greeting);
        free(q->buf);
        if (q->fd >= 0)
                close(q->fd);
        free(q);
}

void qmp_close(struct qmp *q) {
        if (q)
                qmp_free(q);
}

const char *qmp_pending(const struct qmp *q, size_t *ret_len) {
        *ret_len = q->len;
        return q->buf;
}

/* A connection over fd (taken: closed on failure), made non-blocking, so no
 * read or write can outlive a deadline, and close-on-exec, as the fd may
 * come from a socketpair the caller made or from the monitor's hand-over. */
static int qmp_wrap(int fd, struct qmp **ret, phy_error *err) {
        _cleanup_close_ int owned = fd;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                return phy_error_set(err, errno, "cannot set up the QMP socket (fd %d): %s", fd, strerror(errno));
        struct qmp *q = calloc(1, sizeof *q);
        if (!q)
                return phy_error_set(err, ENOMEM, "out of memory");
        q->fd = TAKE_FD(owned);
        q->next_id = 1;
        *ret = q;
        return 0;
}

int qmp_adopt_fd(int fd, const char *pending, size_t len, struct qmp **ret, phy_error *err) {
        _cleanup_close_ int owned = fd;
        if (fd < 0)
                return phy_error_set(err, EBADF, "no QMP socket to take over");
        if (len > QMP_LINE_MAX)
                return phy_error_set(err, EMSGSIZE, "%zu bytes of a QMP line to take over: more than the limit of %u",
                                     len, QMP_LINE_MAX);
        _cleanup_(qmp_closep) struct qmp *q = NULL;
        int r = qmp_wrap(TAKE_FD(owned), &q, err);
        if (r < 0)
                return r;
        if (len > 0) {
                if (!(q->buf = malloc(len)))
                        return phy_error_set(err, ENOMEM, "out of memory");
                memcpy(q->buf, pending, len);
                q->len = q->cap = len;
        }
        *ret = TAKE_PTR(q);
        return 0;
}

int qmp_open_fd(int fd, int timeout_ms, struct qmp **ret, phy_error *err) {
        _cleanup_close_ int owned = fd;
        if (fd < 0)
                return phy_error_set(err, EBADF, "no QMP socket to talk to QEMU over");
        if (timeout_ms <= 0)
                timeout_ms = QMP_DEFAULT_TIMEOUT_MS;
        int64_t deadline = deadline_of(timeout_ms);
        _cleanup_(qmp_closep) struct qmp *guard = NULL;
        int r0 = qmp_wrap(TAKE_FD(owned), &guard, err);
        if (r0 < 0)
                return r0;
        struct qmp *q = guard;

        /* The greeting comes first; tolerate events ahead of it all the same. */
        for (;;) {
                json_object *m = NULL;
                int r = read_message(q, deadline, &m, err);
                if (r < 0)
                        return phy_error_prefix(err, "cannot read the QMP greeting");
                if (r == 0)
                        return phy_error_set(err, ETIMEDOUT, "QEMU sent no QMP greeting within %d ms", timeout_ms);
                json_object *g = NULL;
                if (json_object_object_get_ex(m, "QMP", &g) && json_object_is_type(g, json_type_object)) {
                        q->greeting = json_object_get(g);
                        json_object_put(m);
                        break;
                }
                if (json_object_object_get_ex(m, "event", NULL)) {
                        event_push(q, m);
                        continue;
                }
                json_object_put(m);
                return phy_error_set(err, EPROTO, "the QMP peer did not start with a greeting ({\"QMP\": ...}); is this a QMP socket?");
        }

        int r = qmp_command(q, "qmp_capabilities", NULL, remaining_ms(deadline) > 0 ? remaining_ms(deadline) : 1, NULL, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(guard);
        return 0;
}

int qmp_open_path(const char *path, int timeout_ms, struct qmp **ret, phy_error *err) {
        struct sockaddr_un sa;
        /* A unix stream connect completes at once or fails (no handshake to wait for). */
        int fd = sock_connect_unix(path, SOCK_STREAM);
        if (fd == -ENAMETOOLONG)
                return phy_error_set(err, ENAMETOOLONG, "QMP socket path '%s' is longer than the %zu bytes a unix socket allows",
                                     path, sizeof sa.sun_path - 1);
        if (fd < 0)
                return phy_error_set(err, -fd, "cannot connect to QMP socket '%s': %s", path, strerror(-fd));
        int r = qmp_open_fd(fd, timeout_ms, ret, err);
        if (r < 0)
                return phy_error_prefix(err, "QMP socket '%s'", path);
        return 0;
}

/* ---- commands ----------------------------------------------------------- */

static int error_reply(const char *cmd, json_object *e, phy_error *err) {
        json_object *cls = NULL, *desc = NULL;
        json_object_object_get_ex(e, "class", &cls);
        json_object_object_get_ex(e, "desc", &desc);
        const char *c = cls && json_object_is_type(cls, json_type_string) ? json_object_get_string(cls) : "GenericError";
        const char *d = desc && json_object_is_type(desc, json_type_string) ? json_object_get_string(desc) : "(no description)";
        int code = EREMOTEIO;
        if (strcmp(c, "CommandNotFound") == 0)
                code = EOPNOTSUPP;
        else if (strcmp(c, "DeviceNotFound") == 0)
                code = ENODEV;
        return phy_error_set(err, code, "QEMU refused the QMP command '%s': %s (%s)", cmd, d, c);
}

static int command(struct qmp *q, const char *cmd, json_object *args, int pass_fd, int timeout_ms,
                   json_object **ret_return, phy_error *err) {
        if (timeout_ms <= 0)
                timeout_ms = QMP_DEFAULT_TIMEOUT_MS;
        int64_t deadline = deadline_of(timeout_ms);
        char id[32];
        snprintf(id, sizeof id, "phy-%" PRIu64, q->next_id++);

        json_object *m = json_object_new_object();
        if (!m) {
                json_object_put(args);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        json_object_object_add(m, "execute", json_object_new_string(cmd));
        if (args)
                json_object_object_add(m, "arguments", args);
        json_object_object_add(m, "id", json_object_new_string(id));
        /* PLAIN output has no newlines: strings escape them. */
        int r = write_line(q, cmd, json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN), pass_fd, deadline, err);
        json_object_put(m);
        if (r < 0)
                return r;

        for (;;) {
                json_object *msg = NULL;
                r = read_message(q, deadline, &msg, err);
                if (r < 0)
                        return phy_error_prefix(err, "QMP command '%s'", cmd);
                if (r == 0)
                        return phy_error_set(err, ETIMEDOUT, "QEMU did not answer the QMP command '%s' within %d ms", cmd, timeout_ms);
                if (json_object_object_get_ex(msg, "event", NULL)) {
                        event_push(q, msg);
                        continue;
                }
                json_object *mid = NULL, *ret = NULL, *e = NULL;
                bool has_id = json_object_object_get_ex(msg, "id", &mid);
                bool ours = has_id && json_object_is_type(mid, json_type_string) &&
                            strcmp(json_object_get_string(mid), id) == 0;
                json_object_object_get_ex(msg, "return", &ret);
                json_object_object_get_ex(msg, "error", &e);
                /* QEMU omits the id only when it could not parse the request,
                 * which with one command in flight can only be this one. */
                if (!ours && !(e && !has_id)) {
                        json_object_put(msg);   /* a late reply to an abandoned command */
                        continue;
                }
                if (e) {
                        r = error_reply(cmd, e, err);
                        json_object_put(msg);
                        return r;
                }
                if (!ret) {
                        json_object_put(msg);
                        return phy_error_set(err, EBADMSG, "QEMU's reply to the QMP command '%s' has neither \"return\" nor \"error\"", cmd);
                }
                if (ret_return)
                        *ret_return = json_object_get(ret);
                json_object_put(msg);
                return 0;
        }
}

int qmp_command(struct qmp *q, const char *cmd, json_object *args, int timeout_ms,
                json_object **ret_return, phy_error *err) {
        return command(q, cmd, args, -1, timeout_ms, ret_return, err);
}

int qmp_command_fd(struct qmp *q, const char *cmd, json_object *args, int fd, int timeout_ms,
                   json_object **ret_return, phy_error *err) {
        return command(q, cmd, args, fd, timeout_ms, ret_return, err);
}

int qmp_next_event(struct qmp *q, int timeout_ms, json_object **ret_event, phy_error *err) {
        /* 0: no waiting at all (INT64_MIN tells read_message not to poll). */
        int64_t deadline = timeout_ms == 0 ? INT64_MIN : deadline_of(timeout_ms);
        for (;;) {
                json_object *ev = event_pop(q);
                if (ev) {
                        *ret_event = ev;
                        return 0;
                }
                json_object *msg = NULL;
                int r = read_message(q, deadline, &msg, err);
                if (r < 0)
                        return r;
                if (r == 0) {
                        if (timeout_ms == 0)
                                return -EAGAIN;
                        return phy_error_set(err, ETIMEDOUT, "no QMP event from QEMU within %d ms", timeout_ms);
                }
                if (json_object_object_get_ex(msg, "event", NULL))
                        event_push(q, msg);
                else
                        json_object_put(msg);   /* a late reply nobody waits for */
        }
}

int qmp_fd(const struct qmp *q) {
        return q->fd;
}

json_object *qmp_greeting(const struct qmp *q) {
        return q->greeting;
}

size_t qmp_events_dropped(const struct qmp *q) {
        return q->ev_dropped;
}

int qmp_query_status(struct qmp *q, char **ret_status, phy_error *err) {
        json_object *ret = NULL, *st = NULL;
        int r = qmp_command(q, "query-status", NULL, 0, &ret, err);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(ret, "status", &st) || !json_object_is_type(st, json_type_string)) {
                json_object_put(ret);
                return phy_error_set(err, EBADMSG, "QEMU's reply to 'query-status' has no \"status\" string");
        }
        char *s = strdup(json_object_get_string(st));
        json_object_put(ret);
        if (!s)
                return phy_error_set(err, ENOMEM, "out of memory");
        *ret_status = s;
        return 0;
}

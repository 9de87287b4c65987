/* SPDX-License-Identifier: MIT */
/* The QEMU guest agent's protocol (qemu-ga-ref): JSON lines over the
 * virtio-serial port, no greeting and no ids.  A client first sends a 0xFF
 * byte (flushes the agent's parser of a previous client's half line) and
 * guest-sync-delimited with a random id; the agent answers with 0xFF before
 * the reply, so everything older in the channel is skipped up to it. */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "runfile.h"
#include "net.h"
#include "sock.h"
#include "qemu/qmp.h"

/* The interface list of a guest with many NICs stays far below this. */
#define AGENT_LINE_MAX (256u * 1024)

struct agent {
        int fd;
        int64_t deadline;
        char *buf;
        size_t len;
};

static int64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(struct agent *a, short events, phy_error *err) {
        for (;;) {
                int64_t left = a->deadline - mono_ms();
                if (left <= 0)
                        return phy_error_set(err, ETIMEDOUT, "the guest agent did not answer in time (the guest "
                                             "may not run qemu-guest-agent)");
                struct pollfd p = { .fd = a->fd, .events = events };
                int r = poll(&p, 1, (int) left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return phy_error_set(err, errno, "cannot wait for the guest agent: %s", strerror(errno));
                if (r > 0)
                        return 0;
        }
}

static int agent_send(struct agent *a, const char *data, size_t n, phy_error *err) {
        while (n > 0) {
                int r = wait_fd(a, POLLOUT, err);
                if (r < 0)
                        return r;
                ssize_t k = send(a->fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k < 0)
                        return phy_error_set(err, errno, "cannot write to the guest agent: %s", strerror(errno));
                data += k;
                n -= (size_t) k;
        }
        return 0;
}

static int agent_fill(struct agent *a, phy_error *err) {
        if (a->len >= AGENT_LINE_MAX)
                return phy_error_set(err, EMSGSIZE, "the guest agent sent a line over %u bytes", AGENT_LINE_MAX);
        if (!a->buf && !(a->buf = malloc(AGENT_LINE_MAX + 1)))
                return phy_error_set(err, ENOMEM, "out of memory");
        for (;;) {
                int r = wait_fd(a, POLLIN, err);
                if (r < 0)
                        return r;
                ssize_t k = recv(a->fd, a->buf + a->len, AGENT_LINE_MAX - a->len, MSG_DONTWAIT);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k < 0)
                        return phy_error_set(err, errno, "cannot read from the guest agent: %s", strerror(errno));
                if (k == 0)
                        return phy_error_set(err, ECONNRESET, "the guest agent channel closed");
                a->len += (size_t) k;
                return 0;
        }
}

/* Drops input up to and including the agent's 0xFF delimiter. */
static int agent_skip_to_delimiter(struct agent *a, phy_error *err) {
        for (;;) {
                char *ff = a->buf ? memchr(a->buf, 0xff, a->len) : NULL;
                if (ff) {
                        size_t n = (size_t) (ff - a->buf) + 1;
                        memmove(a->buf, a->buf + n, a->len - n);
                        a->len -= n;
                        return 0;
                }
                a->len = 0;
                int r = agent_fill(a, err);
                if (r < 0)
                        return r;
        }
}

/* One JSON object line; a line that is not one is -EBADMSG. */
static int agent_read(struct agent *a, json_object **ret, phy_error *err) {
        for (;;) {
                char *nl = a->buf ? memchr(a->buf, '\n', a->len) : NULL;
                if (nl) {
                        *nl = '\0';
                        json_object *o = json_tokener_parse(a->buf);
                        size_t n = (size_t) (nl - a->buf) + 1;
                        memmove(a->buf, a->buf + n, a->len - n);
                        a->len -= n;
                        if (!o || !json_object_is_type(o, json_type_object)) {
                                json_object_put(o);
                                return phy_error_set(err, EBADMSG, "the guest agent sent a line that is not a JSON object");
                        }
                        *ret = o;
                        return 0;
                }
                int r = agent_fill(a, err);
                if (r < 0)
                        return r;
        }
}

/* The "return" member of a reply (new reference), or the agent's error. */
static int agent_return(json_object *reply, const char *cmd, json_object **ret, phy_error *err) {
        json_object *v = NULL, *e = NULL, *desc = NULL;
        if (json_object_object_get_ex(reply, "return", &v)) {
                *ret = json_object_get(v);
                return 0;
        }
        if (json_object_object_get_ex(reply, "error", &e) && json_object_object_get_ex(e, "desc", &desc))
                return phy_error_set(err, EREMOTEIO, "the guest agent refused '%s': %s", cmd,
                                     json_object_get_string(desc));
        return phy_error_set(err, EBADMSG, "the guest agent answered '%s' without a return or an error", cmd);
}

static int agent_sync(struct agent *a, phy_error *err) {
        uint32_t id = 0;
        if (getrandom(&id, sizeof id, 0) != sizeof id)
                id = (uint32_t) mono_ms();
        id &= 0x7fffffff;       /* the agent takes an int */
        char line[128];
        int n = snprintf(line, sizeof line, "\xff{\"execute\": \"guest-sync-delimited\", \"arguments\": {\"id\": %u}}\n",
                         id);
        int r = agent_send(a, line, (size_t) n, err);
        if (r < 0)
                return r;
        /* A reply with another id is an older client's: skip to the next delimiter. */
        for (;;) {
                if ((r = agent_skip_to_delimiter(a, err)) < 0)
                        return r;
                json_object *reply = NULL, *v = NULL;
                r = agent_read(a, &reply, err);
                if (r == -EBADMSG) {
                        phy_error_clear(err);
                        continue;
                }
                if (r < 0)
                        return r;
                r = agent_return(reply, "guest-sync-delimited", &v, err);
                json_object_put(reply);
                if (r < 0)
                        return r;
                bool match = json_object_is_type(v, json_type_int) && (uint32_t) json_object_get_int64(v) == id;
                json_object_put(v);
                if (match)
                        return 0;
        }
}

static const char *member_string(json_object *o, const char *key) {
        json_object *v = NULL;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ?
                       json_object_get_string(v) : NULL;
}

/* guest-network-get-interfaces' answer, reduced to what status shows. */
static json_object *interfaces_simplify(json_object *ifs) {
        json_object *out = json_object_new_array();
        size_t n = json_object_is_type(ifs, json_type_array) ? json_object_array_length(ifs) : 0;
        for (size_t i = 0; i < n; i++) {
                json_object *it = json_object_array_get_idx(ifs, i), *ips = NULL;
                const char *name = member_string(it, "name"), *mac = member_string(it, "hardware-address");
                if (!name)
                        continue;
                json_object *o = json_object_new_object(), *addrs = json_object_new_array();
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "mac", mac ? json_object_new_string(mac) : NULL);
                size_t m = json_object_object_get_ex(it, "ip-addresses", &ips) &&
                                           json_object_is_type(ips, json_type_array) ?
                                   json_object_array_length(ips) : 0;
                for (size_t k = 0; k < m; k++) {
                        json_object *ip = json_object_array_get_idx(ips, k), *pfx = NULL;
                        const char *addr = member_string(ip, "ip-address");
                        if (!addr)
                                continue;
                        char text[96];
                        if (json_object_object_get_ex(ip, "prefix", &pfx))
                                snprintf(text, sizeof text, "%s/%d", addr, json_object_get_int(pfx));
                        else
                                snprintf(text, sizeof text, "%s", addr);
                        json_object_array_add(addrs, json_object_new_string(text));
                }
                json_object_object_add(o, "addresses", addrs);
                json_object_array_add(out, o);
        }
        return out;
}

int net_agent_interfaces_fd(int fd, int timeout_ms, json_object **ret, phy_error *err) {
        struct agent a = { .fd = fd, .deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 2000) };
        int r = agent_sync(&a, err);
        json_object *reply = NULL, *v = NULL;
        if (r < 0)
                goto out;
        static const char cmd[] = "{\"execute\": \"guest-network-get-interfaces\"}\n";
        if ((r = agent_send(&a, cmd, sizeof cmd - 1, err)) < 0 || (r = agent_read(&a, &reply, err)) < 0)
                goto out;
        r = agent_return(reply, "guest-network-get-interfaces", &v, err);
        json_object_put(reply);
        if (r < 0)
                goto out;
        *ret = interfaces_simplify(v);
        json_object_put(v);
out:
        free(a.buf);
        close(fd);
        return r;
}

static int agent_connect(const char *sock_path, phy_error *err) {
        int fd = sock_connect_unix(sock_path, SOCK_STREAM);
        if (fd == -ENAMETOOLONG)
                return phy_error_set(err, ENAMETOOLONG, "the guest agent socket path '%s' is too long", sock_path);
        if (fd < 0)
                return phy_error_set(err, -fd, "cannot reach the guest agent socket '%s': %s", sock_path, strerror(-fd));
        return fd;
}

int net_agent_interfaces(const char *sock_path, int timeout_ms, json_object **ret, phy_error *err) {
        int fd = agent_connect(sock_path, err);
        return fd < 0 ? fd : net_agent_interfaces_fd(fd, timeout_ms, ret, err);
}

/* Sends one command line and reads its reply's "return" (new reference). */
static int agent_call(struct agent *a, const char *line, const char *cmd, json_object **ret, phy_error *err) {
        json_object *reply = NULL;
        int r = agent_send(a, line, strlen(line), err);
        if (r < 0 || (r = agent_read(a, &reply, err)) < 0)
                return r;
        r = agent_return(reply, cmd, ret, err);
        json_object_put(reply);
        return r;
}

/* guest-fsfreeze-freeze / -thaw: both answer the number of filesystems. */
static int agent_fs_count(struct agent *a, const char *cmd, phy_error *err) {
        char line[96];
        snprintf(line, sizeof line, "{\"execute\": \"%s\"}\n", cmd);
        json_object *v = NULL;
        int r = agent_call(a, line, cmd, &v, err);
        if (r < 0)
                return r;
        r = json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0 &&
                            json_object_get_int64(v) <= INT32_MAX ?
                    (int) json_object_get_int64(v) :
                    phy_error_set(err, EBADMSG, "the guest agent answered '%s' without a count of filesystems", cmd);
        json_object_put(v);
        return r;
}

int net_agent_fsfreeze_fd(int fd, int timeout_ms, phy_error *err) {
        struct agent a = { .fd = fd, .deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 30000) };
        int r = agent_sync(&a, err);
        if (r >= 0 && (r = agent_fs_count(&a, "guest-fsfreeze-freeze", err)) < 0 && r != -ETIMEDOUT &&
            r != -ECONNRESET) {
                /* A freeze that failed part way may leave some filesystems
                 * frozen (qemu-ga thaws them itself, other agents may not):
                 * thaw on the same channel before reporting the failure. */
                phy_error e2 = { 0 };
                a.len = 0;
                a.deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 30000);
                if (agent_sync(&a, &e2) >= 0)
                        (void) agent_fs_count(&a, "guest-fsfreeze-thaw", &e2);
        }
        free(a.buf);
        close(fd);
        return r;
}

int net_agent_fsthaw_fd(int fd, int timeout_ms, phy_error *err) {
        struct agent a = { .fd = fd, .deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 30000) };
        int r = agent_sync(&a, err);
        if (r >= 0)
                r = agent_fs_count(&a, "guest-fsfreeze-thaw", err);
        free(a.buf);
        close(fd);
        return r;
}

int net_agent_fsfreeze(const char *sock_path, int timeout_ms, phy_error *err) {
        int fd = agent_connect(sock_path, err);
        return fd < 0 ? fd : net_agent_fsfreeze_fd(fd, timeout_ms, err);
}

int net_agent_fsthaw(const char *sock_path, int timeout_ms, phy_error *err) {
        int fd = agent_connect(sock_path, err);
        return fd < 0 ? fd : net_agent_fsthaw_fd(fd, timeout_ms, err);
}

static char *run_file_path(const char *run_dir, const char *file) {
        char *p = NULL;
        return asprintf(&p, "%s/%s", run_dir, file) < 0 ? NULL : p;
}

int net_agent_freeze_mark(const char *run_dir, phy_error *err) {
        _cleanup_free_ char *p = run_file_path(run_dir, "fsfrozen");
        char pid[24];
        snprintf(pid, sizeof pid, "%ld\n", (long) getpid());
        if (!p)
                return phy_error_set(err, ENOMEM, "out of memory");
        return runfile_write(p, pid, 0644, err);
}

void net_agent_freeze_unmark(const char *run_dir) {
        _cleanup_free_ char *p = run_file_path(run_dir, "fsfrozen");
        if (p)
                (void) unlink(p);
}

int net_agent_thaw_abandoned(const char *run_dir, int timeout_ms, phy_error *err) {
        _cleanup_free_ char *p = run_file_path(run_dir, "fsfrozen"), *text = NULL, *sock = NULL;
        if (!p || !(sock = run_file_path(run_dir, "qga.sock")))
                return phy_error_set(err, ENOMEM, "out of memory");
        if (runfile_read(p, 64, &text, NULL, NULL) < 0)
                return 0;
        unsigned long long pid = 0;
        char *nl = strchr(text, '\n');
        if (nl)
                *nl = '\0';
        /* Its freezer still runs (a snapshot under way): its thaw is coming. */
        if (parse_uint(text, INT32_MAX, &pid) == 0 && pid > 0 && (pid_t) pid != getpid() &&
            (kill((pid_t) pid, 0) == 0 || errno == EPERM))
                return 0;
        int r = net_agent_fsthaw(sock, timeout_ms, err);
        if (r < 0)
                return phy_error_prefix(err, "the guest's filesystems were left frozen by process %llu, which is "
                                        "gone, and the thaw failed", pid);
        net_agent_freeze_unmark(run_dir);
        return 1;
}

/* guest-shutdown answers only an error (the schema's success-response is
 * false).  A second guest-sync-delimited right behind it tells the two
 * outcomes apart: the agent handles commands in order, so a line before the
 * sync's delimiter is the shutdown's error, and the sync's answer alone
 * means it was taken.  This sync goes without the client's 0xFF: qemu-ga
 * 7.2 answers that byte with its own error line ("JSON parse error, stray
 * '\uFFFD'"), which would read as the shutdown's.  A channel that closes
 * (QEMU exited) or stays silent (the guest is going down) means taken too. */
int net_agent_shutdown_fd(int fd, const char *mode, int timeout_ms, phy_error *err) {
        struct agent a = { .fd = fd, .deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 10000) };
        const char *m = mode ? mode : "powerdown";
        int r;
        if (strcmp(m, "powerdown") != 0 && strcmp(m, "halt") != 0 && strcmp(m, "reboot") != 0) {
                r = phy_error_usage(err, "unknown guest shutdown mode '%s'; use powerdown, halt or reboot", m);
                goto out;
        }
        if ((r = agent_sync(&a, err)) < 0)
                goto out;
        char line[160];
        uint32_t id = 0;
        if (getrandom(&id, sizeof id, 0) != sizeof id)
                id = (uint32_t) mono_ms() ^ 0x5a5a5a5a;
        id &= 0x7fffffff;
        int n = snprintf(line, sizeof line, "{\"execute\": \"guest-shutdown\", \"arguments\": {\"mode\": \"%s\"}}\n"
                         "{\"execute\": \"guest-sync-delimited\", \"arguments\": {\"id\": %u}}\n", m, id);
        phy_error e2 = { 0 };
        if ((r = agent_send(&a, line, (size_t) n, &e2)) == -EPIPE || r == -ECONNRESET || r == -ETIMEDOUT) {
                r = 0;  /* the guest is gone or going: taken */
                goto out;
        }
        if (r < 0) {
                *err = e2;
                goto out;
        }
        for (;;) {
                char *ff = a.buf ? memchr(a.buf, 0xff, a.len) : NULL;
                char *nl = a.buf ? memchr(a.buf, '\n', ff ? (size_t) (ff - a.buf) : a.len) : NULL;
                if (nl) {
                        /* A line before the delimiter: the shutdown's answer. */
                        *nl = '\0';
                        json_object *reply = json_tokener_parse(a.buf), *v = NULL;
                        r = reply ? agent_return(reply, "guest-shutdown", &v, err) :
                                    phy_error_set(err, EBADMSG, "the guest agent answered 'guest-shutdown' with a "
                                                  "line that is not JSON");
                        json_object_put(v);
                        json_object_put(reply);
                        /* An agent that does answer success: taken. */
                        goto out;
                }
                if (ff) {
                        /* Read the sync's answer too: the agent is done with
                         * the shutdown and the channel is left clean. */
                        json_object *reply = NULL;
                        if (agent_skip_to_delimiter(&a, &e2) >= 0 && agent_read(&a, &reply, &e2) >= 0)
                                json_object_put(reply);
                        r = 0;
                        goto out;
                }
                if ((r = agent_fill(&a, &e2)) < 0) {
                        if (r != -ECONNRESET && r != -ETIMEDOUT && r != -EMSGSIZE) {
                                *err = e2;
                                goto out;
                        }
                        r = 0;
                        goto out;
                }
        }
out:
        free(a.buf);
        close(fd);
        return r;
}

int net_agent_shutdown(const char *sock_path, const char *mode, int timeout_ms, phy_error *err) {
        int fd = agent_connect(sock_path, err);
        return fd < 0 ? fd : net_agent_shutdown_fd(fd, mode, timeout_ms, err);
}

/* query-chardev's frontend-open for the agent's port: true once the guest
 * opened it, i.e. an agent runs.  Saves a timeout on guests without one. */
bool net_agent_port_open(struct qmp *q) {
        phy_error err = { 0 };
        json_object *list = NULL;
        bool open = false;
        if (qmp_command(q, "query-chardev", NULL, 2000, &list, &err) < 0)
                return false;
        for (size_t i = 0; json_object_is_type(list, json_type_array) && i < json_object_array_length(list); i++) {
                json_object *c = json_object_array_get_idx(list, i), *fo = NULL;
                const char *label = member_string(c, "label");
                if (label && strcmp(label, "qga0") == 0 && json_object_object_get_ex(c, "frontend-open", &fo))
                        open = json_object_get_boolean(fo);
        }
        json_object_put(list);
        return open;
}

/* The backend each NIC runs with now, from HMP "info network" lines
 * "net-NAME: index=0,type=user,..." (slirp) or "type=stream" (passt);
 * "absent" for a NIC of the definition that the running VM lacks. */
static void nics_live(struct qmp *q, json_object *nets) {
        phy_error err = { 0 };
        json_object *args = json_object_new_object(), *ret = NULL;
        json_object_object_add(args, "command-line", json_object_new_string("info network"));
        if (qmp_command(q, "human-monitor-command", args, 2000, &ret, &err) < 0)
                return;
        const char *text = json_object_get_string(ret);
        for (size_t i = 0; text && i < json_object_array_length(nets); i++) {
                json_object *n = json_object_array_get_idx(nets, i);
                const char *name = member_string(n, "name"), *mode = member_string(n, "mode");
                if (!name || !mode || strcmp(mode, "user") != 0)
                        continue;
                char key[96];
                snprintf(key, sizeof key, "net-%s: ", name);
                const char *at = strstr(text, key), *type = at ? strstr(at, "type=") : NULL;
                const char *be = !type ? "absent" : strncmp(type, "type=user", 9) == 0 ? "slirp" :
                                 strncmp(type, "type=stream", 11) == 0 ? "passt" : NULL;
                if (be)
                        json_object_object_add(n, "backend", json_object_new_string(be));
        }
        json_object_put(ret);
}

json_object *net_status_json(const struct vm_def *d, const char *run_dir) {
        json_object *o = json_object_new_object(), *ifs = NULL, *nets = net_nics_to_json(d);
        json_object_object_add(o, "networks", nets);
        _cleanup_free_ char *qsock = NULL, *sock = NULL;
        _cleanup_qmp_ struct qmp *q = NULL;
        phy_error err = { 0 };
        if (!run_dir || asprintf(&qsock, "%s/qmp.sock", run_dir) < 0 || qmp_open_path(qsock, 2000, &q, &err) < 0)
                return o;
        nics_live(q, nets);
        if (d->agent != VM_OFF && net_agent_port_open(q) && asprintf(&sock, "%s/qga.sock", run_dir) >= 0 &&
            net_agent_interfaces(sock, 2000, &ifs, &err) == 0)
                json_object_object_add(o, "guest_interfaces", ifs);
        return o;
}

/* SPDX-License-Identifier: MIT */
/*
 * The HTTP side of phyllod: libmicrohttpd on a unix socket we created (or
 * systemd passed), one thread per connection so that a long action (a start
 * waits for QEMU, a stop for the guest) or an event stream never holds up
 * another client.  Every request is refused with 403 unless the peer's
 * credentials (SO_PEERCRED) pass; headers, bodies, connections and idle time
 * are capped.
 */
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <microhttpd.h>
#include <json-c/json.h>

#include "api.h"
#include "cleanup.h"
#include "fileio.h"
#include "mem.h"
#include "paths.h"
#include "ops/ops.h"
#include "store/store.h"
#include "vm/vm.h"

/* Headers and the upload buffer of one connection share this pool: a
 * request whose headers do not fit is answered 431 by libmicrohttpd. */
#define API_CONNECTION_MEMORY (32u * 1024)

struct api_server {
        struct MHD_Daemon *d;
        struct MHD_Daemon *tcp;         /* --listen-tcp, or NULL */
        struct api_server_opts o;
        uid_t self_uid;
        gid_t phyllome_gid;
        uint64_t import_max;
        int quit_fd;                    /* eventfd: readable once phyllod stops (ends console relays) */
};

struct import_job;

struct request {
        char *body;
        size_t len;
        bool too_big;
        struct import_job *imp;         /* POST /v1/vms/import: the body goes here instead */
        struct api_ctx ctx;             /* the server's, with this peer as the caller */
        struct sock_peer peer;
        int console_fd;                 /* the console being upgraded to, or -1 */
};

/* Who a TCP peer of a system-mode phyllod is to the verbs' file checks:
 * the overflow id ("nobody"), with group phyllome when it exists. */
#define API_TCP_MEMBER_ID ((uid_t) 65534)

/* An import body may be a whole disk image; this bounds it (--import-max). */
#define API_IMPORT_MAX_DEFAULT (64ull << 30)

/* ---- peers ---- */

bool api_peer_allowed(const struct sock_peer *p, bool system, uid_t self_uid, gid_t phyllome_gid) {
        if (!system)
                return p->uid == self_uid;
        if (p->uid == 0)
                return true;
        if (phyllome_gid == (gid_t) -1)
                return false;
        if (p->gid == phyllome_gid)
                return true;
        for (size_t i = 0; i < p->n_groups; i++)
                if (p->groups[i] == phyllome_gid)
                        return true;
        return false;
}

/* ---- responses ---- */

static enum MHD_Result reply_json(struct MHD_Connection *conn, int status, json_object *o) {
        const char *s = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "";
        size_t len = strlen(s);
        char *copy = malloc(len + 2);
        if (!copy) {
                json_object_put(o);
                return MHD_NO;
        }
        memcpy(copy, s, len);
        copy[len++] = '\n';
        copy[len] = '\0';
        json_object_put(o);
        struct MHD_Response *r = MHD_create_response_from_buffer(len, copy, MHD_RESPMEM_MUST_FREE);
        if (!r) {
                free(copy);
                return MHD_NO;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        enum MHD_Result ret = MHD_queue_response(conn, (unsigned) status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *conn, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* A verb's error as api_handle answers it: its kind decides the status. */
static enum MHD_Result reply_phy_error(struct MHD_Connection *conn, const phy_error *e) {
        json_object *o = NULL;
        int status = api_error_reply(e, &o);
        return reply_json(conn, status, o);
}

static struct ops_ctx ops_of(const struct api_ctx *c) {
        return (struct ops_ctx) { .root = c->root, .home = c->home, .uid = c->uid, .gid = c->gid, .groups = c->groups,
                                  .n_groups = c->n_groups, .env_cache = c->env_cache };
}

/* A 200 whose JSON body the library wrote as text (text is freed with the
 * response). */
static enum MHD_Result reply_text(struct MHD_Connection *conn, char *text, size_t len) {
        struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
        if (!r) {
                free(text);
                return MHD_NO;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
}

/* GET /v1/vms: ops_list's body written as text by the library (10,000 VMs:
 * json-c objects cost two thirds of the request), the same bytes api_handle
 * would send. */
static enum MHD_Result reply_vm_list(const struct api_ctx *c, struct MHD_Connection *conn) {
        struct ops_ctx oc = ops_of(c);
        phy_error e = { 0 };
        char *text = NULL;
        size_t len = 0;
        if (ops_list_text(&oc, &text, &len, &e) < 0)
                return reply_phy_error(conn, &e);
        return reply_text(conn, text, len);
}

/* GET /v1/vms/NAME: ops_show's body as text, the part its definition and
 * the host decide kept between requests by the library
 * (src/ops/show-cache.h): the same bytes as api_handle's route. */
static enum MHD_Result reply_vm_show(const struct api_ctx *c, struct MHD_Connection *conn, const char *name) {
        struct ops_ctx oc = ops_of(c);
        phy_error e = { 0 };
        char *text = NULL;
        size_t len = 0;
        if (ops_show_text(&oc, name, &text, &len, &e) < 0)
                return reply_phy_error(conn, &e);
        return reply_text(conn, text, len);
}

static enum MHD_Result reply_error(struct MHD_Connection *conn, int code, const char *fmt, ...) {
        json_object *o = NULL;
        va_list ap;
        va_start(ap, fmt);
        int status = api_failv(&o, code, fmt, ap);
        va_end(ap);
        return reply_json(conn, status, o);
}

/* ---- /v1/events: a stream fed by a pipe from events.c ---- */

struct stream {
        struct api_events *ev;
        int pipe_fd;
        int client_fd;
};

/* Waits until pipe_fd is readable or at EOF (its revents returned, > 0) or
 * the client went away (-1).  Runs in the connection's own thread: sleeping
 * in poll() here holds up no one, and nothing wakes it on a timer. */
static int wait_pipe(int pipe_fd, int client_fd) {
        struct pollfd p[2] = { { .fd = pipe_fd, .events = POLLIN }, { .fd = client_fd, .events = POLLRDHUP } };
        for (;;) {
                int n = poll(p, 2, -1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 || (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)))
                        return -1;
                if (p[0].revents)
                        return p[0].revents;
        }
}

/* Wakes on an event or on the client going away. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
        struct stream *s = cls;
        for (;;) {
                if (wait_pipe(s->pipe_fd, s->client_fd) < 0)
                        return MHD_CONTENT_READER_END_WITH_ERROR;
                ssize_t k = read(s->pipe_fd, buf, max);
                if (k < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                /* EOF: the reader was too slow and was dropped, or shutdown. */
                return k > 0 ? k : MHD_CONTENT_READER_END_OF_STREAM;
        }
}

static void stream_free(void *cls) {
        struct stream *s = cls;
        api_events_unsubscribe(s->ev, s->pipe_fd);
        free(s);
}

/* A 200 whose body reader produces until the end (chunked); cls is freed
 * by free_cb, also when the response cannot be made. */
static enum MHD_Result queue_stream(struct MHD_Connection *conn, size_t block, MHD_ContentReaderCallback reader,
                                    void *cls, MHD_ContentReaderFreeCallback free_cb, const char *type) {
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, block, reader, cls, free_cb);
        if (!resp) {
                free_cb(cls);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        /* A stream may stay quiet for longer than the idle timeout (a log
         * while the guest boots, events while nothing happens): with the
         * timeout, libmicrohttpd cut it at the next line after a quiet
         * spell.  It ends when its client leaves or phyllod stops. */
        (void) MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
        enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result reply_stream(struct api_server *srv, struct MHD_Connection *conn, int client_fd) {
        if (!srv->o.ctx.events)
                return reply_error(conn, ENOSYS, "events are not available from this phyllod");
        struct stream *s = calloc(1, sizeof *s);
        if (!s)
                return MHD_NO;
        s->ev = srv->o.ctx.events;
        s->client_fd = client_fd;
        int r = api_events_subscribe(s->ev, &s->pipe_fd);
        if (r < 0) {
                free(s);
                return reply_error(conn, -r, "cannot subscribe to events: %s", strerror(-r));
        }
        return queue_stream(conn, 4096, stream_read, s, stream_free, "text/event-stream");
}

/* ---- GET /v1/vms/{name}/export and POST /v1/vms/import: bundles streamed
 * through a pipe to or from a thread running the store, so neither a whole
 * bundle nor a temporary file is ever held here ---- */

struct export_job {
        pthread_t thread;
        bool joined;
        int rfd, wfd, client_fd;
        struct ops_ctx oc;
        char name[VM_NAME_MAX + 1];
        int r;
        phy_error err;
};

static void *export_thread(void *userdata) {
        struct export_job *j = userdata;
        j->r = ops_export(&j->oc, j->name, j->wfd, NULL, NULL, &j->err);
        /* EOF for the reader; a reader that left made our writes fail with
         * EPIPE (phyllod ignores SIGPIPE), which ends store_export early. */
        close(j->wfd);
        j->wfd = -1;
        return NULL;
}

static void export_join(struct export_job *j) {
        if (!j->joined) {
                pthread_join(j->thread, NULL);
                j->joined = true;
        }
}

static ssize_t export_read(void *cls, uint64_t pos, char *buf, size_t max) {
        struct export_job *j = cls;
        for (;;) {
                if (wait_pipe(j->rfd, j->client_fd) < 0)
                        return MHD_CONTENT_READER_END_WITH_ERROR;
                ssize_t k = read(j->rfd, buf, max);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k > 0)
                        return k;
                export_join(j);
                /* A failure after the 200 went out: the client sees the body
                 * cut short (no final chunk), never a bundle that looks whole. */
                return k == 0 && j->r >= 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
        }
}

static void export_free(void *cls) {
        struct export_job *j = cls;
        close(j->rfd);  /* first: a thread blocked writing gets EPIPE */
        export_join(j);
        free(j);
        /* The store's buffers (zstd windows, MiBs) sat in that thread's arena:
         * give them back, an idle phyllod stays small. */
        malloc_trim(0);
}

/* "/v1/vms/{name}<tail>" with a valid name: true, the name in name. */
static bool vm_path(const char *url, const char *tail, char name[static VM_NAME_MAX + 1]) {
        if (strncmp(url, "/v1/vms/", 8) != 0)
                return false;
        const char *rest = url + 8, *slash = strchrnul(rest, '/');
        if (strcmp(slash, tail) != 0 || slash == rest || (size_t) (slash - rest) > VM_NAME_MAX)
                return false;
        memcpy(name, rest, (size_t) (slash - rest));
        name[slash - rest] = '\0';
        return vm_name_valid(name);
}

static enum MHD_Result reply_export(const struct api_ctx *c, struct MHD_Connection *conn, const char *name,
                                    int client_fd) {
        struct export_job *j = calloc(1, sizeof *j);
        if (!j)
                return MHD_NO;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
                free(j);
                return reply_error(conn, errno, "cannot create a pipe for the export of VM '%s': %s", name, strerror(errno));
        }
        *j = (struct export_job) { .rfd = p[0], .wfd = p[1], .client_fd = client_fd, .oc = ops_of(c) };
        memcpy(j->name, name, strlen(name) + 1);
        int r = pthread_create(&j->thread, NULL, export_thread, j);
        if (r != 0) {
                close(p[0]);
                close(p[1]);
                free(j);
                return reply_error(conn, r, "cannot start a thread for the export of VM '%s': %s", name, strerror(r));
        }
        /* The store refuses (no such VM, VM running) before its first byte:
         * wait for that byte or the end, so a refusal is a JSON error with
         * its own status rather than a 200 with an empty body. */
        int ev = wait_pipe(j->rfd, client_fd);
        if (ev < 0) {
                export_free(j);
                return MHD_NO;
        }
        if ((ev & POLLHUP) && !(ev & POLLIN)) {
                export_join(j);
                if (j->r < 0) {
                        phy_error e = j->err;
                        export_free(j);
                        return reply_error(conn, e.code ? e.code : EIO, "%s", e.message);
                }
        }
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, export_read, j,
                                                                      export_free);
        if (!resp) {
                export_free(j);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/zstd");
        char disp[VM_NAME_MAX + 64];
        snprintf(disp, sizeof disp, "attachment; filename=\"%s.tar.zst\"", name);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disp);
        enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return ret;
}

struct import_job {
        pthread_t thread;
        bool joined, write_failed, too_big;
        int rfd, wfd, client_fd;
        uint64_t len;
        struct ops_ctx oc;
        struct store_import_opts opts;
        volatile int cancel;            /* set when the client leaves: the store stops at once */
        char *new_name;
        struct store_import_result res;
        int r;
        phy_error err;
};

static void *import_thread(void *userdata) {
        struct import_job *j = userdata;
        j->r = ops_import(&j->oc, j->rfd, &j->opts, &j->res, &j->err);
        /* The uploader's next write fails with EPIPE: the rest is discarded. */
        close(j->rfd);
        j->rfd = -1;
        return NULL;
}

static void import_finish(struct import_job *j) {
        if (j->wfd >= 0) {
                close(j->wfd);  /* EOF: a bundle cut short is refused by the store */
                j->wfd = -1;
        }
        if (!j->joined) {
                pthread_join(j->thread, NULL);
                j->joined = true;
        }
}

static void import_free(struct import_job *j) {
        if (!j)
                return;
        j->cancel = 1;  /* a client gone mid-upload: no waiting for the rest of the bundle */
        import_finish(j);
        free(j->new_name);
        store_import_result_done(&j->res);
        free(j);
        malloc_trim(0);  /* as after an export */
}

static bool is_import(const char *method, const char *url) {
        return strcmp(method, "POST") == 0 && strcmp(url, "/v1/vms/import") == 0;
}

/* ?trust=1 keeps a bundle's host paths: a peer who could not name them
 * itself (a group member of a system phyllod) may not. */
static int import_start(struct api_server *srv, const struct api_ctx *c, struct MHD_Connection *conn, int client_fd,
                        bool may_trust, struct import_job **ret, phy_error *err) {
        const char *n = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "name");
        const char *t = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "trust");
        bool trust = t && (strcmp(t, "1") == 0 || strcmp(t, "true") == 0);
        if (trust && !may_trust)
                return phy_error_set(err, EACCES, "only root may import a bundle with trust=1 through a system "
                                     "phyllod (it keeps the bundle's host paths and devices)");
        struct import_job *j = calloc(1, sizeof *j);
        if (!j || (n && !(j->new_name = strdup(n)))) {
                free(j);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
                int r = phy_error_set(err, errno, "cannot create a pipe for an import: %s", strerror(errno));
                free(j->new_name);
                free(j);
                return r;
        }
        j->rfd = p[0];
        j->wfd = p[1];
        j->client_fd = client_fd;
        /* Non-blocking: import_feed waits in poll() for room or for the client to hang up. */
        (void) fcntl(j->wfd, F_SETFL, O_NONBLOCK);
        j->oc = ops_of(c);
        /* The cap counts what the bundle unpacks to, not what it sends. */
        j->opts = (struct store_import_opts) { .new_name = j->new_name, .trust = trust, .max_bytes = srv->import_max,
                                               .cancel = &j->cancel };
        int r = pthread_create(&j->thread, NULL, import_thread, j);
        if (r != 0) {
                close(p[0]);
                close(p[1]);
                free(j->new_name);
                free(j);
                return phy_error_set(err, r, "cannot start a thread for an import: %s", strerror(r));
        }
        *ret = j;
        return 0;
}

/* One upload chunk into the pipe; waiting is fine in this connection's own
 * thread and paces the client to the store.  A client that hangs up while we
 * wait cancels the import at once, not after what its socket still holds. */
static void import_feed(struct import_job *j, const char *data, size_t k, uint64_t max) {
        if (j->too_big || j->write_failed)
                return;
        if (j->len + k > max) {
                j->too_big = true;
                import_finish(j);
                return;
        }
        j->len += k;
        while (k > 0) {
                ssize_t w = write(j->wfd, data, k);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN) {
                        struct pollfd p[2] = { { .fd = j->wfd, .events = POLLOUT }, { .fd = j->client_fd } };
                        if (poll(p, j->client_fd >= 0 ? 2 : 1, -1) < 0 && errno != EINTR)
                                return;
                        if (p[1].revents & (POLLHUP | POLLERR)) {
                                j->cancel = 1;
                                j->write_failed = true;
                                return;
                        }
                        continue;
                }
                if (w < 0) {
                        /* EPIPE: the store stopped reading; its error is the answer. */
                        j->write_failed = true;
                        return;
                }
                data += w;
                k -= (size_t) w;
        }
}

static enum MHD_Result reply_import(struct api_server *srv, struct MHD_Connection *conn, struct import_job *j) {
        import_finish(j);
        if (j->too_big)
                return reply_error(conn, E2BIG, "the bundle is larger than %llu bytes; phyllod --import-max raises the "
                                   "limit", (unsigned long long) srv->import_max);
        /* The store says EIO for a bundle it cannot read: here that is the
         * body the client sent, so a 400 rather than a server fault. */
        if (j->r < 0)
                return reply_error(conn, !j->err.code || j->err.code == EIO ? EINVAL : j->err.code, "%s",
                                   j->err.message);
        return reply_json(conn, 201, ops_import_json(&j->opts, &j->res));
}

/* ---- GET /v1/vms/{name}/console with an Upgrade: the serial console as a
 * raw byte stream both ways, relayed in the connection's own thread ---- */

static bool header_has(struct MHD_Connection *conn, const char *header, const char *word) {
        const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, header);
        size_t n = strlen(word);
        for (const char *p = v; p && *p; p++)
                if (strncasecmp(p, word, n) == 0 && (p == v || strchr(" ,", p[-1])) && strchr(" ,", p[n] ? p[n] : ' '))
                        return true;
        return false;
}

static bool wants_console(struct MHD_Connection *conn) {
        return header_has(conn, MHD_HTTP_HEADER_CONNECTION, "upgrade") &&
               header_has(conn, MHD_HTTP_HEADER_UPGRADE, API_CONSOLE_PROTOCOL);
}

static bool write_all(int fd, const char *buf, size_t n) {
        while (n > 0) {
                ssize_t k = send(fd, buf, n, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return false;
                buf += k;
                n -= (size_t) k;
        }
        return true;
}

/* Both ways until the console ends: the client's end of input is passed on
 * (shutdown), so the monitor relays what the guest still prints, then
 * closes; blocking here is allowed in thread-per-connection mode. */
static void console_relay(int client, int console, int quit, const char *extra, size_t extra_len) {
        char buf[8192];
        bool client_open = true;
        if (extra_len && !write_all(console, extra, extra_len))
                return;
        /* quit: phyllod stops; the relay ends so that its thread can be joined. */
        struct pollfd p[3] = { { .fd = client, .events = POLLIN }, { .fd = console, .events = POLLIN },
                               { .fd = quit, .events = POLLIN } };
        for (;;) {
                int n = poll(p, 3, -1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 || p[2].revents)
                        return;
                if (p[1].revents) {
                        ssize_t k = read(console, buf, sizeof buf);
                        if (k <= 0 || !write_all(client, buf, (size_t) k))
                                return;
                }
                if (client_open && p[0].revents) {
                        ssize_t k = read(client, buf, sizeof buf);
                        if (k <= 0) {
                                client_open = false;
                                p[0].fd = -1;
                                (void) shutdown(console, SHUT_WR);
                        } else if (!write_all(console, buf, (size_t) k))
                                return;
                }
        }
}

static void console_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                             size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
        struct api_server *srv = cls;
        struct request *req = con_cls;
        _cleanup_close_ int console = req->console_fd;
        req->console_fd = -1;
        console_relay(sock, console, srv->quit_fd, extra_in, extra_in_size);
        (void) shutdown(sock, SHUT_RDWR);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

static enum MHD_Result reply_console(struct api_server *srv, struct request *req, struct MHD_Connection *conn,
                                    const char *name) {
        struct ops_ctx oc = ops_of(&req->ctx);
        phy_error e = { 0 };
        /* Connected before the 101, so a refusal is an ordinary JSON error. */
        if (ops_console_open(&oc, name, &req->console_fd, &e) < 0)
                return reply_error(conn, e.code, "%s", e.message);
        struct MHD_Response *resp = MHD_create_response_for_upgrade(console_upgraded, srv);
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, API_CONSOLE_PROTOCOL);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
        enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* ---- GET /v1/vms/{name}/logs?follow=1: the log lines as they come, a
 * chunked text reply that ends when the client leaves (or phyllod stops);
 * the follower (src/ops/logs.c) wakes this thread on inotify only ---- */

struct follow_job {
        struct ops_log_follow *f;
        int client_fd, quit_fd;
};

static ssize_t follow_read(void *cls, uint64_t pos, char *buf, size_t max) {
        struct follow_job *j = cls;
        struct pollfd p[3] = { { .fd = ops_log_follow_fd(j->f), .events = POLLIN },
                               { .fd = j->client_fd, .events = POLLRDHUP }, { .fd = j->quit_fd, .events = POLLIN } };
        for (;;) {
                phy_error e = { 0 };
                ssize_t k = ops_log_follow_read(j->f, buf, max, &e);
                if (k != 0)
                        return k > 0 ? k : MHD_CONTENT_READER_END_WITH_ERROR;
                int n = poll(p, 3, -1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 || (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) || p[2].revents)
                        return MHD_CONTENT_READER_END_WITH_ERROR;
        }
}

static void follow_free(void *cls) {
        struct follow_job *j = cls;
        ops_log_follow_free(j->f);
        free(j);
}

/* ?follow=1|true: 1; =0|false or none: 0; anything else: -1. */
static int follow_wanted(struct MHD_Connection *conn) {
        const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "follow");
        if (!v || strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
                return 0;
        return strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || !*v ? 1 : -1;
}

static enum MHD_Result reply_follow(struct api_server *srv, const struct api_ctx *c, struct MHD_Connection *conn,
                                    const char *name, int client_fd) {
        struct ops_ctx oc = ops_of(c);
        phy_error e = { 0 };
        struct follow_job *j = calloc(1, sizeof *j);
        if (!j)
                return MHD_NO;
        *j = (struct follow_job) { .client_fd = client_fd, .quit_fd = srv->quit_fd };
        /* Opened before the 200, so that no such VM is an ordinary JSON error. */
        if (ops_log_follow_open(&oc, name, &j->f, &e) < 0) {
                free(j);
                return reply_error(conn, e.code, "%s", e.message);
        }
        return queue_stream(conn, 16 * 1024, follow_read, j, follow_free, "text/plain; charset=utf-8");
}

/* ---- the access handler ---- */

static bool has_body(const char *method) {
        return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0 ||
               strcmp(method, "DELETE") == 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls) {
        struct api_server *srv = cls;
        struct request *req = *con_cls;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        int fd = ci ? ci->connect_fd : -1;

        if (!req) {
                /* Before anything else, on every request: who is asking.  No
                 * credentials on TCP: the token stands for them there. */
                _cleanup_(sock_peer_done) struct sock_peer peer = { 0 };
                bool tcp = fd >= 0 && api_fd_is_tcp(fd);
                const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
                if (tcp && !api_token_matches(auth, srv->o.token))
                        return reply_error(conn, EACCES, "%s; send 'Authorization: Bearer' with the token in "
                                           "phyllod's token file", auth ? "wrong API token" : "no API token");
                if (!tcp && (fd < 0 || sock_peer_get(fd, &peer) < 0))
                        return reply_error(conn, EACCES, "cannot read the peer credentials of this connection");
                if (!tcp && !api_peer_allowed(&peer, srv->o.system, srv->self_uid, srv->phyllome_gid)) {
                        if (srv->o.system)
                                return reply_error(conn, EACCES, "uid %u may not use phyllod; only root and members "
                                                   "of group 'phyllome' may", (unsigned) peer.uid);
                        return reply_error(conn, EACCES, "uid %u may not use this phyllod; it serves uid %u only",
                                           (unsigned) peer.uid, (unsigned) srv->self_uid);
                }
                if (!(req = calloc(1, sizeof *req)))
                        return MHD_NO;
                *con_cls = req;
                req->console_fd = -1;
                /* The verbs act for this peer.  A TCP peer holds the token: per
                 * user it stands for the daemon's own user; in system mode every
                 * member of group phyllome can read the token, so it stands for
                 * some member, never for root (issue 12): nobody in that group. */
                req->ctx = srv->o.ctx;
                req->peer = peer;       /* its groups now belong to req (freed in request_done) */
                peer = (struct sock_peer) { 0 };
                bool tcp_member = tcp && srv->o.system;
                req->ctx.uid = tcp_member ? API_TCP_MEMBER_ID : tcp ? srv->self_uid : req->peer.uid;
                req->ctx.gid = tcp_member ? (srv->phyllome_gid != (gid_t) -1 ? srv->phyllome_gid : API_TCP_MEMBER_ID)
                               : tcp ? getegid() : req->peer.gid;
                req->ctx.groups = req->peer.groups;
                req->ctx.n_groups = tcp ? 0 : req->peer.n_groups;
                /* A declared size over the cap is refused before the body is read. */
                const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                unsigned long long n;
                bool import = is_import(method, url);
                if (import && cl && (parse_uint(cl, UINT64_MAX, &n) < 0 || n > srv->import_max))
                        return reply_error(conn, E2BIG, "the bundle is larger than %llu bytes; phyllod --import-max "
                                           "raises the limit", (unsigned long long) srv->import_max);
                if (!import && cl && (parse_uint(cl, UINT64_MAX, &n) < 0 || n > API_BODY_MAX))
                        return reply_error(conn, E2BIG, "the request body is larger than %u bytes", API_BODY_MAX);
                if (import) {
                        phy_error e = { 0 };
                        if (import_start(srv, &req->ctx, conn, fd, !srv->o.system || (!tcp && req->peer.uid == 0),
                                         &req->imp, &e) < 0)
                                return reply_error(conn, e.code, "%s", e.message);
                }
                return MHD_YES;
        }
        if (*upload_data_size) {
                size_t k = *upload_data_size;
                *upload_data_size = 0;
                if (req->imp) {
                        import_feed(req->imp, upload_data, k, srv->import_max);
                        return MHD_YES;
                }
                if (req->too_big || !has_body(method))
                        return MHD_YES;
                if (req->len + k > API_BODY_MAX) {
                        /* Chunked past the cap: keep reading to the end, store nothing. */
                        req->too_big = true;
                        free(req->body);
                        req->body = NULL;
                        return MHD_YES;
                }
                char *b = realloc(req->body, req->len + k + 1);
                if (!b)
                        return MHD_NO;
                memcpy(b + req->len, upload_data, k);
                req->len += k;
                b[req->len] = '\0';
                req->body = b;
                return MHD_YES;
        }
        if (req->too_big)
                return reply_error(conn, E2BIG, "the request body is larger than %u bytes", API_BODY_MAX);
        if (req->imp)
                return reply_import(srv, conn, req->imp);
        if (api_is_events(method, url))
                return reply_stream(srv, conn, fd);
        char name[VM_NAME_MAX + 1];
        if (strcmp(method, "GET") == 0 && vm_path(url, "/export", name))
                return reply_export(&req->ctx, conn, name, fd);
        if (strcmp(method, "GET") == 0 && vm_path(url, "/logs", name) && follow_wanted(conn)) {
                if (follow_wanted(conn) < 0)
                        return reply_error(conn, EINVAL, "follow wants 1, true, 0 or false");
                return reply_follow(srv, &req->ctx, conn, name, fd);
        }
        if (strcmp(method, "GET") == 0 && vm_path(url, "/console", name) && wants_console(conn))
                return reply_console(srv, req, conn, name);
        if (strcmp(method, "GET") == 0 && strcmp(url, "/v1/vms") == 0)
                return reply_vm_list(&req->ctx, conn);
        if (strcmp(method, "GET") == 0 && vm_path(url, "", name))
                return reply_vm_show(&req->ctx, conn, name);
        json_object *o = NULL;
        _cleanup_free_ char *unattended = NULL;
        if (strcmp(method, "POST") == 0 && strcmp(url, "/v1/vms") == 0) {
                int st = api_catalog_unattended(&req->ctx, req->body, req->len, &unattended, &o);
                if (st)
                        return reply_json(conn, st, o);
        }
        const char *body = unattended ? unattended : req->body;
        size_t body_len = unattended ? strlen(unattended) : req->len;
        int status = api_catalog_is(url) ? api_catalog_handle(&req->ctx, method, url, body, body_len, &o)
                                         : api_handle(&req->ctx, method, url, body, body_len, &o);
        if (unattended)
                explicit_bzero(unattended, strlen(unattended));
        return reply_json(conn, status, o);
}

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
        struct request *req = *con_cls;
        if (req) {
                /* A console the client left before the switch. */
                if (req->console_fd >= 0)
                        close(req->console_fd);
                sock_peer_done(&req->peer);
                /* A client gone mid-upload: the store sees a short bundle and cleans up. */
                import_free(req->imp);
                free(req->body);
                free(req);
                *con_cls = NULL;
        }
}

/* Connections open on both listeners.  When the last one closes, what the
 * burst brought in goes back (mem_shed: the free heap, and the library
 * pages only requests touch): with a thread per connection, glibc gave each
 * thread an arena of its own (16 on 2 cores), and each kept the pages its
 * requests had used (9.2 MiB after 100 connections, from 2.4 idle).  The
 * arenas are capped as well (api_server_start), so that a long burst does
 * not spread over more of them. */
static unsigned api_connections;
static long api_rss_shed;       /* resident pages after the last shed */

/* Resident pages (statm: one small read), 0 when unknown. */
static long rss_pages(void) {
        _cleanup_close_ int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
        char buf[128];
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        long size, rss;
        return sscanf(buf, "%ld %ld", &size, &rss) == 2 ? rss : 0;
}

static void connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe) {
        if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
                __atomic_add_fetch(&api_connections, 1, __ATOMIC_RELAXED);
                return;
        }
        if (__atomic_sub_fetch(&api_connections, 1, __ATOMIC_RELAXED) != 0)
                return;
        /* mem_shed reads smaps (~5 M instructions): only once RSS grew by
         * 1 MiB since the last time, not after every quiet moment. */
        long rss = rss_pages();
        if (rss && rss < __atomic_load_n(&api_rss_shed, __ATOMIC_RELAXED) + 256)
                return;
        mem_shed();
        __atomic_store_n(&api_rss_shed, rss_pages(), __ATOMIC_RELAXED);
}

/* Arenas for the connection threads: two keep 10 connections on 2 cores
 * from queueing on one lock (GET /v1/vms/NAME: within noise of 16 arenas),
 * and a burst's freed memory in few places for malloc_trim. */
#define API_MALLOC_ARENAS 2

int api_server_start(const struct api_server_opts *o, struct api_server **ret, phy_error *err) {
        (void) mallopt(M_ARENA_MAX, API_MALLOC_ARENAS);
        struct api_server *s = calloc(1, sizeof *s);
        if (!s)
                return phy_error_set(err, ENOMEM, "out of memory");
        s->o = *o;
        s->self_uid = geteuid();
        struct group *g = getgrnam("phyllome");
        s->phyllome_gid = g ? g->gr_gid : (gid_t) -1;
        s->import_max = o->import_max ? o->import_max : API_IMPORT_MAX_DEFAULT;
        if ((s->quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
                int e = errno;
                free(s);
                return phy_error_set(err, e, "cannot create an eventfd: %s", strerror(e));
        }
        unsigned limit = o->max_connections ? o->max_connections : 256, timeout = o->timeout_s ? o->timeout_s : 30;
        /* Thread per connection: blocking library calls stay in their thread.
         * poll(), not select(): fd numbers are not capped at 1024. */
        s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                                MHD_ALLOW_UPGRADE,
                                0, NULL, NULL, handle, s,
                                MHD_OPTION_LISTEN_SOCKET, o->listen_fd,
                                MHD_OPTION_CONNECTION_LIMIT, limit,
                                MHD_OPTION_CONNECTION_TIMEOUT, timeout,
                                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) API_CONNECTION_MEMORY,
                                MHD_OPTION_NOTIFY_COMPLETED, request_done, s,
                                MHD_OPTION_NOTIFY_CONNECTION, connection_notify, s,
                                MHD_OPTION_END);
        if (!s->d) {
                close(s->quit_fd);
                free(s);
                return phy_error_set(err, EIO, "cannot start the HTTP server on the phyllod socket");
        }
        if (o->tcp) {
                s->tcp = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                          MHD_USE_POLL | MHD_ALLOW_UPGRADE,
                                          0, NULL, NULL, handle, s,
                                          MHD_OPTION_LISTEN_SOCKET, o->tcp_fd,
                                          MHD_OPTION_CONNECTION_LIMIT, limit,
                                          MHD_OPTION_CONNECTION_TIMEOUT, timeout,
                                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) API_CONNECTION_MEMORY,
                                          MHD_OPTION_NOTIFY_COMPLETED, request_done, s,
                                          MHD_OPTION_NOTIFY_CONNECTION, connection_notify, s,
                                          MHD_OPTION_END);
                if (!s->tcp) {
                        MHD_stop_daemon(s->d);
                        close(s->quit_fd);
                        free(s);
                        return phy_error_set(err, EIO, "cannot start the HTTP server on the TCP listener");
                }
        }
        *ret = s;
        return 0;
}

void api_server_stop(struct api_server *s) {
        if (!s)
                return;
        (void) eventfd_write(s->quit_fd, 1);    /* consoles end: their threads can be joined */
        if (s->tcp)
                MHD_stop_daemon(s->tcp);
        MHD_stop_daemon(s->d);
        close(s->quit_fd);
        free(s);
}

/* ---- the socket ---- */

int api_listen(const char *path, bool system, int *ret_fd, phy_error *err) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t plen = strlen(path);
        int r;
        if (plen >= sizeof sa.sun_path)
                return phy_error_set(err, ENAMETOOLONG, "the socket path '%s' is longer than %zu bytes", path,
                                     sizeof sa.sun_path - 1);
        memcpy(sa.sun_path, path, plen + 1);
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return phy_error_set(err, ENOMEM, "out of memory");
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                if ((r = mkdir_p(dir, 0755)) < 0)
                        return phy_error_set(err, -r, "cannot create '%s' for the phyllod socket: %s", dir, strerror(-r));
        }
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return phy_error_set(err, errno, "cannot create a socket: %s", strerror(errno));
        /* A socket file left by a phyllod that died is replaced; a live one is not. */
        {
                _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe >= 0 && connect(probe, (struct sockaddr *) &sa, sizeof sa) == 0)
                        return phy_error_set(err, EADDRINUSE, "another phyllod already answers on '%s'", path);
                struct stat st;
                if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
                        (void) unlink(path);
        }
        /* Never reachable by others, not even for an instant (phyllod
         * listens before its server starts any thread). */
        int saved;
        if ((r = sock_bind_unix(fd, &sa, system ? 0660 : 0600)) < 0)
                return phy_error_set(err, -r, "cannot bind the phyllod socket '%s': %s", path, strerror(-r));
        if (system) {
                struct group *g = getgrnam("phyllome");
                if (g && chown(path, 0, g->gr_gid) < 0) {
                        saved = errno;
                        (void) unlink(path);
                        return phy_error_set(err, saved, "cannot give '%s' to group 'phyllome': %s", path, strerror(saved));
                }
        }
        if (listen(fd, 128) < 0) {
                saved = errno;
                (void) unlink(path);
                return phy_error_set(err, saved, "cannot listen on '%s': %s", path, strerror(saved));
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

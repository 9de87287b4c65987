/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * phyllod: the library served as HTTP/1.1 + JSON on a unix socket
 * (docs/api.md, docs/openapi.json).  The routes call the same library
 * functions as the CLI; errors carry the sentence the CLI prints.
 *
 *   server.c   libmicrohttpd, peer credentials, limits, request bodies
 *   routes.c   method + path -> one verb of src/ops -> status + JSON (no HTTP here)
 *   events.c   one inotify fd over the run dirs -> server-sent events
 *   systemd.c  sd_notify and socket activation without libsystemd
 *   client.c   the CLI's side: one request over the socket
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "error.h"
#include "sock.h"

struct ops_env_cache;

struct json_object;

/* Request bodies above this are refused with 413. */
#define API_BODY_MAX (1024u * 1024)

/* The default socket: /run/phyllome/phyllod.sock in system mode, else
 * <home>/phyllod.sock when $PHYLLOME_HOME is set (one daemon per home, as for
 * the run dirs), else $XDG_RUNTIME_DIR/phyllome/phyllod.sock, else (root)
 * /run/phyllome/phyllod.sock.  $PHYLLOME_SOCKET overrides all of them. */
int api_socket_path(const char *home, bool system, char **ret, phy_error *err);

/* Who may talk to the daemon.  Per-user mode: the daemon's own uid.  System
 * mode: root and members of group `phyllome` (primary or supplementary). */
bool api_peer_allowed(const struct sock_peer *p, bool system, uid_t self_uid, gid_t phyllome_gid);

/* What the routes act on. */
struct api_ctx {
        const char *root;       /* host root prefix */
        const char *home;       /* Phyllome home */
        struct api_events *events;      /* may be NULL (no /v1/events) */
        /* api_events_publish, in phyllod (routes.c is also linked into phyllo,
         * which has no event stream): NULL when events is */
        void (*publish)(struct api_events *ev, const char *event, struct json_object *data);
        uid_t uid;              /* the caller (the peer of this request; phyllo: itself) */
        gid_t gid;
        const gid_t *groups;    /* its supplementary groups (SO_PEERGROUPS) */
        size_t n_groups;
        struct ops_env_cache *env_cache;        /* phyllod's (ops_ctx.env_cache), or NULL */
        bool local;             /* phyllo's own request, in-process (it may name a binary to run) */
};

/* GET /v1/vms/{name}/console with "Connection: Upgrade" and this "Upgrade":
 * 101, then the connection is the VM's serial console, raw bytes both ways
 * (docs/api.md). */
#define API_CONSOLE_PROTOCOL "phyllome-console"

/*
 * One request, without HTTP: method ("GET"), path ("/v1/vms/x/start", no
 * query), the body (may be NULL).  Returns the HTTP status and sets *ret to
 * the JSON body (owned by the caller; NULL for 204).  Errors are
 * {"error": {"code": "ENOENT", "message": "..."}}.
 */
int api_handle(const struct api_ctx *c, const char *method, const char *path, const char *body, size_t body_len,
               struct json_object **ret);
/* The error body and the status for it (404 ENOENT, 409 EBUSY/EEXIST/ESRCH,
 * 400 EINVAL, ...). */
int api_error_reply(const phy_error *e, struct json_object **ret);
/* An error the API finds in a request itself: EINVAL is a usage error (400),
 * any other code takes the kind of its errno.  Fills *ret, returns the status. */
int api_fail(struct json_object **ret, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int api_failv(struct json_object **ret, int code, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
/* True when the path is /v1/events (answered as a stream by the server). */
bool api_is_events(const char *method, const char *path);

/* ---- events (events.c) ---- */
struct api_events;
/* Watches every VM's run dir under home with one inotify fd and a thread. */
int api_events_start(const char *home, struct api_events **ret, phy_error *err);
void api_events_stop(struct api_events *ev);
/* A subscriber: a pipe read end receiving whole SSE records ("event: state\n
 * data: {...}\n\n"); the current state of every VM is queued first.
 * api_events_unsubscribe closes it. */
int api_events_subscribe(struct api_events *ev, int *ret_fd);
void api_events_unsubscribe(struct api_events *ev, int fd);

/* Sends "event: <event>\ndata: <compact JSON>\n\n" to every subscriber. */
void api_events_publish(struct api_events *ev, const char *event, struct json_object *data);

/* ---- the OS catalog (catalog-routes.c, docs/catalog.md) ---- */
/* /v1/catalog[/{os}], /v1/downloads[/{id}]: answered by api_catalog_handle
 * (phyllod only; phyllo calls src/catalog itself). */
bool api_catalog_is(const char *path);
int api_catalog_handle(const struct api_ctx *c, const char *method, const char *path, const char *body, size_t len,
                       struct json_object **ret);
/* POST /v1/vms with "unattended": the body with "install" (the answer file
 * made by a phyllo child) in its place in *ret_body (NULL: the body has no
 * "unattended"); 0, or the HTTP status of the error in *reply. */
int api_catalog_unattended(const struct api_ctx *c, const char *body, size_t len, char **ret_body,
                           struct json_object **reply);

/* ---- server (server.c) ---- */
struct api_server_opts {
        int listen_fd;          /* bound, listening AF_UNIX socket (ours or systemd's) */
        bool tcp;               /* also tcp_fd: a listening loopback TCP socket (--listen-tcp) */
        int tcp_fd;
        const char *token;      /* what TCP requests must send as "Authorization: Bearer" */
        bool system;
        unsigned max_connections;       /* 0: 256 */
        unsigned timeout_s;             /* idle connection timeout, 0: 30 */
        uint64_t import_max;            /* largest POST /v1/vms/import body, 0: 64 GiB */
        struct api_ctx ctx;
};
struct api_server;
int api_server_start(const struct api_server_opts *o, struct api_server **ret, phy_error *err);
void api_server_stop(struct api_server *s);

/* Creates the socket at path (parents made 0755, the socket's dir 0700 per
 * user / 0750 system), SOCK_CLOEXEC, mode 0600 per user or 0660 group
 * phyllome in system mode.  A stale socket is replaced; a live one (another
 * phyllod answers) is -EADDRINUSE. */
int api_listen(const char *path, bool system, int *ret_fd, phy_error *err);

/* ---- the loopback TCP listener (tcp.c) ---- */
#define API_TOKEN_LEN 64
/* Listens on "ADDRESS:PORT" or "[IPv6]:PORT"; anything but a loopback
 * address is refused (-EPERM) with the reason. */
int api_listen_tcp(const char *spec, int *ret_fd, phy_error *err);
bool api_fd_is_tcp(int fd);
/* A new random token (hex) written to path: 0600, or 0640 group phyllome
 * in system mode. */
int api_token_create(const char *path, bool system, char token[static API_TOKEN_LEN + 1], phy_error *err);
/* header is "Bearer <token>" (compared in constant time). */
bool api_token_matches(const char *header, const char *token);

/* ---- systemd (systemd.c) ---- */
/* Sends state ("READY=1") to $NOTIFY_SOCKET (path or abstract "@name");
 * 0 without one. */
int api_sd_notify(const char *state);
/* The socket systemd passed (LISTEN_PID = us, LISTEN_FDS = 1: fd 3), made
 * O_CLOEXEC; -ENOENT when not socket-activated. */
int api_sd_listen_fd(int *ret_fd);

/* ---- client (client.c) ---- */
/*
 * GET path with "Upgrade: protocol": 101 and *ret_fd the connection, now a
 * raw byte stream (the reply's headers read byte by byte, so nothing of the
 * stream is lost); another status with its JSON body in *ret; -ENOENT or
 * -ECONNREFUSED when no daemon answers.
 */
int api_client_upgrade(const char *socket_path, const char *path, const char *protocol, int *ret_fd,
                       struct json_object **ret, phy_error *err);
typedef void (*api_progress_fn)(uint64_t done, uint64_t total, void *userdata);
/*
 * A request with a streamed body: in_fd's bytes sent chunked (in_fd < 0:
 * no body), and a 200 reply's body written to out_fd (out_fd < 0 or another
 * status: parsed as JSON into *ret).  A chunked reply cut short (phyllod
 * ended an export with an error) is -EPROTO.  Returns the HTTP status, or
 * -ENOENT/-ECONNREFUSED when no daemon answers.
 */
int api_client_stream(const char *socket_path, const char *method, const char *path, int in_fd, int out_fd,
                      api_progress_fn progress, void *userdata, struct json_object **ret, phy_error *err);
/*
 * GET /v1/events as a client: _open returns once phyllod answered 200 (the
 * subscription is in place; -ENOENT/-ECONNREFUSED: no daemon); _run calls
 * fn for each record (its event name and data) until the stream ends or
 * _cancel (from another thread) ends it: 0 or -errno.
 */
struct api_event_stream;
typedef void (*api_event_fn)(const char *event, struct json_object *data, void *userdata);
int api_client_events_open(const char *socket_path, struct api_event_stream **ret, phy_error *err);
int api_client_events_run(struct api_event_stream *s, api_event_fn fn, void *userdata);
void api_client_events_cancel(struct api_event_stream *s);
void api_client_events_free(struct api_event_stream *s);
/*
 * One request to phyllod at socket_path: returns the HTTP status (and the
 * parsed JSON body in *ret, NULL when none), -ECONNREFUSED/-ENOENT when no
 * daemon answers (the CLI then works directly), other -errno on failure.
 * timeout_ms bounds the whole exchange (< 0: none).
 */
int api_client_request(const char *socket_path, const char *method, const char *path, const char *body,
                       int timeout_ms, struct json_object **ret, phy_error *err);
/* The same, the reply's body as text (*ret, *ret_len; malloc'd, NUL-ended), not parsed. */
int api_client_request_text(const char *socket_path, const char *method, const char *path, const char *body,
                            int timeout_ms, char **ret, size_t *ret_len, phy_error *err);

/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A QMP client following QEMU's qmp-spec (docs/interop/qmp-spec):
 *   - the server speaks first with a greeting {"QMP": {...}};
 *   - the client must send qmp_capabilities before anything else;
 *   - every command carries an "id" and its reply echoes it;
 *   - asynchronous events {"event": ...} may arrive at any point, also
 *     between a command and its reply: they are queued and handed out by
 *     qmp_next_event();
 *   - unknown keys are ignored (QEMU may add members at any time).
 * Every peer line is size-checked (QMP_LINE_MAX) and every wait has a
 * deadline (poll() on the socket, CLOCK_MONOTONIC), never a sleep loop.
 * One command in flight at a time; a late reply to an abandoned command
 * (after a timeout) is recognised by its id and dropped.
 */
#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>
#include "cleanup.h"
#include "error.h"

/* Longest line accepted from QEMU (query-qmp-schema is ~200 KiB on 7.2). */
#define QMP_LINE_MAX (1024u * 1024)
/* Events kept while nobody takes them; the oldest are dropped beyond this. */
#define QMP_EVENTS_MAX 1024u
/* Used when a caller passes timeout_ms <= 0 to qmp_command/qmp_open_*. */
#define QMP_DEFAULT_TIMEOUT_MS 30000

struct qmp;

/* Connects to a QMP unix socket, reads the greeting and negotiates
 * capabilities (qmp_capabilities) within timeout_ms. */
int qmp_open_path(const char *path, int timeout_ms, struct qmp **ret, phy_error *err);
/* Same over an already-connected stream socket (socketpair end, accepted
 * connection).  Takes ownership of fd, also on failure. */
int qmp_open_fd(int fd, int timeout_ms, struct qmp **ret, phy_error *err);
/* A connection handed to another process (the per-VM monitor's exec): the
 * bytes read but not yet a whole line (borrowed), and the taking over of
 * the negotiated connection with them.  qmp_adopt_fd takes fd, also on
 * failure. */
const char *qmp_pending(const struct qmp *q, size_t *ret_len);
int qmp_adopt_fd(int fd, const char *pending, size_t len, struct qmp **ret, phy_error *err);

/* Runs one command.  args (an object, or NULL) is taken.  On success the
 * "return" member is stored in *ret_return (a new reference; may be NULL
 * when the caller does not want it).  An {"error": {"class","desc"}} reply
 * fails with QEMU's desc in the message: -EOPNOTSUPP for CommandNotFound,
 * -ENODEV for DeviceNotFound, -EREMOTEIO otherwise.  -ETIMEDOUT when no
 * reply came within timeout_ms, -ECONNRESET on EOF, -EMSGSIZE for a line
 * over QMP_LINE_MAX, -EBADMSG for a line that is not a JSON object. */
int qmp_command(struct qmp *q, const char *cmd, json_object *args, int timeout_ms,
                json_object **ret_return, phy_error *err);

/* The same with fd passed along (SCM_RIGHTS on the command's first bytes),
 * for add-fd and getfd; fd stays the caller's. */
int qmp_command_fd(struct qmp *q, const char *cmd, json_object *args, int fd, int timeout_ms,
                   json_object **ret_return, phy_error *err);

/* Takes the oldest queued event (a new reference to the whole event
 * object: "event", "data", "timestamp").  timeout_ms == 0: only what is
 * queued or already readable on the socket, -EAGAIN when none (the call
 * to make after epoll says qmp_fd() is readable, in a loop until -EAGAIN);
 * > 0: waits up to that long, then -ETIMEDOUT; < 0: waits without bound. */
int qmp_next_event(struct qmp *q, int timeout_ms, json_object **ret_event, phy_error *err);

/* The socket, for epoll users.  Still owned by the qmp object. */
int qmp_fd(const struct qmp *q);
/* The greeting's {"QMP": {...}} member (borrowed). */
json_object *qmp_greeting(const struct qmp *q);
/* How many events were dropped because the queue was full. */
size_t qmp_events_dropped(const struct qmp *q);

/* query-status: "running", "paused", "shutdown", ... (malloc'd). */
int qmp_query_status(struct qmp *q, char **ret_status, phy_error *err);

void qmp_close(struct qmp *q);
DEFINE_CLEANUP_FUNC(struct qmp, qmp_close)
#define _cleanup_qmp_ _cleanup_(qmp_closep)

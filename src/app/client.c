/* SPDX-License-Identifier: MIT */
/* The app's only way to Phyllome: HTTP over phyllod's unix socket.
 * Requests run in GTask threads (HTTP/1.0, so a reply ends with the
 * connection and is never chunked); the event stream is read in the main
 * loop with asynchronous reads; when phyllod goes away, an inotify watch on
 * its socket's directory says when it is back (no polling). */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "app.h"

/* Replies above this are refused (a screenshot is a few MiB at most). */
#define REPLY_MAX (96u << 20)

static char *socket_path;

void phy_set_socket_path(const char *path) {
        g_free(socket_path);
        socket_path = g_strdup(path);
}

/* As api_socket_path (src/api/client.c) finds it for a per-user phyllod. */
const char *phy_socket_path(void) {
        if (socket_path)
                return socket_path;
        const char *s = g_getenv("PHYLLOME_SOCKET"), *home = g_getenv("PHYLLOME_HOME"),
                   *run = g_getenv("XDG_RUNTIME_DIR");
        if (s && *s)
                socket_path = g_strdup(s);
        else if (home && *home)
                socket_path = g_build_filename(home, "phyllod.sock", NULL);
        else if (run && *run)
                socket_path = g_build_filename(run, "phyllome", "phyllod.sock", NULL);
        else if (getuid() == 0)
                socket_path = g_strdup("/run/phyllome/phyllod.sock");
        else
                socket_path = g_strdup_printf("/run/user/%u/phyllome/phyllod.sock", (unsigned) getuid());
        return socket_path;
}

void phy_reply_free(PhyReply *r) {
        if (!r)
                return;
        if (r->body)
                json_object_put(r->body);
        g_free(r->error);
        g_free(r);
}

char *phy_escape(const char *segment) {
        return g_uri_escape_string(segment, NULL, FALSE);
}

const char *phy_json_str(json_object *o, const char *key) {
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

int64_t phy_json_int(json_object *o, const char *key, int64_t dflt) {
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) ||
            !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
                return dflt;
        return json_object_get_int64(v);
}

static GSocketConnection *connect_socket(GCancellable *cancellable, GError **error) {
        g_autoptr(GSocketClient) sc = g_socket_client_new();
        g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(phy_socket_path());
        return g_socket_client_connect(sc, G_SOCKET_CONNECTABLE(addr), cancellable, error);
}

/* Splits an HTTP reply into its status and body (from the first blank line). */
static int parse_reply(const char *buf, gsize len, const char **body, gsize *body_len) {
        int status = 0;
        if (len < 12 || sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
                return 0;
        const char *end = g_strstr_len(buf, (gssize) len, "\r\n\r\n");
        if (!end)
                return 0;
        *body = end + 4;
        *body_len = len - (gsize) (*body - buf);
        return status;
}

/* A connection for a request, or NULL with r->error saying why not. */
static GSocketConnection *connect_reply(PhyReply *r, GCancellable *cancellable) {
        g_autoptr(GError) e = NULL;
        GSocketConnection *conn = connect_socket(cancellable, &e);
        if (!conn)
                r->error = g_strdup_printf(_("Phyllome's service (phyllod) does not answer on '%s': %s"),
                                           phy_socket_path(), e->message);
        return conn;
}

/* body_file: a file sent as the body instead (a bundle to import). */
static PhyReply *call_sync(const char *method, const char *path, const char *body, const char *body_file,
                           GCancellable *cancellable) {
        PhyReply *r = g_new0(PhyReply, 1);
        g_autoptr(GError) e = NULL;
        g_autoptr(GSocketConnection) conn = connect_reply(r, cancellable);
        if (!conn)
                return r;
        guint64 blen = body ? strlen(body) : 0;
        g_autoptr(GFileInputStream) fin = NULL;
        if (body_file) {
                g_autoptr(GFile) f = g_file_new_for_path(body_file);
                g_autoptr(GFileInfo) fi = NULL;
                if (!(fin = g_file_read(f, cancellable, &e)) ||
                    !(fi = g_file_input_stream_query_info(fin, G_FILE_ATTRIBUTE_STANDARD_SIZE, cancellable, &e))) {
                        r->error = g_strdup_printf(_("Cannot read '%s': %s"), body_file, e->message);
                        return r;
                }
                blen = (guint64) g_file_info_get_size(fi);
        }
        g_autofree char *head = g_strdup_printf("%s %s HTTP/1.0\r\nHost: phyllod\r\nAccept: application/json\r\n"
                                                "Content-Type: %s\r\nContent-Length: %" G_GUINT64_FORMAT "\r\n\r\n",
                                                method, path, body_file ? "application/zstd" : "application/json", blen);
        GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
        GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(conn));
        if (!g_output_stream_write_all(out, head, strlen(head), NULL, cancellable, &e) ||
            (body && blen && !g_output_stream_write_all(out, body, blen, NULL, cancellable, &e)) ||
            (fin && g_output_stream_splice(out, G_INPUT_STREAM(fin), G_OUTPUT_STREAM_SPLICE_NONE, cancellable, &e) < 0)) {
                r->error = g_strdup_printf(_("Cannot send a request to phyllod: %s"), e->message);
                return r;
        }
        g_autoptr(GByteArray) buf = g_byte_array_new();
        guint8 chunk[65536];
        for (;;) {
                gssize n = g_input_stream_read(in, chunk, sizeof chunk, cancellable, &e);
                if (n < 0) {
                        r->error = g_strdup_printf(_("Cannot read phyllod's reply: %s"), e->message);
                        return r;
                }
                if (n == 0)
                        break;
                if (buf->len + (gsize) n > REPLY_MAX) {
                        r->error = g_strdup_printf(_("phyllod's reply to %s %s is larger than %u MiB"), method, path,
                                                   REPLY_MAX >> 20);
                        return r;
                }
                g_byte_array_append(buf, chunk, (guint) n);
        }
        g_byte_array_append(buf, (const guint8 *) "", 1);
        const char *b = NULL;
        gsize bl = 0;
        r->status = parse_reply((const char *) buf->data, buf->len - 1, &b, &bl);
        if (!r->status) {
                r->error = g_strdup_printf(_("phyllod sent a reply that is not HTTP to %s %s"), method, path);
                return r;
        }
        if (bl > 0) {
                json_tokener *tok = json_tokener_new_ex(64);
                r->body = json_tokener_parse_ex(tok, b, (int) bl);
                json_tokener_free(tok);
        }
        if (r->status >= 300) {
                json_object *eo = NULL;
                const char *msg = r->body && json_object_object_get_ex(r->body, "error", &eo) ? phy_json_str(eo, "message")
                                                                                           : NULL;
                /* The sentence the CLI prints, as phyllod gives it. */
                r->error = msg ? g_strdup(msg) : g_strdup_printf(_("phyllod answered %s %s with status %d"), method,
                                                                 path, r->status);
        }
        return r;
}

PhyReply *phy_call_sync(const char *method, const char *path, const char *body, GCancellable *cancellable) {
        return call_sync(method, path, body, NULL, cancellable);
}

struct call {
        char *method, *path, *body, *file;
        PhyReplyFunc cb;
        gpointer data;
};

static void call_free(gpointer p) {
        struct call *c = p;
        g_free(c->method);
        g_free(c->path);
        g_free(c->body);
        g_free(c->file);
        g_free(c);
}

static void call_thread(GTask *task, gpointer src, gpointer task_data, GCancellable *cancellable) {
        struct call *c = task_data;
        g_task_return_pointer(task, call_sync(c->method, c->path, c->body, c->file, cancellable),
                              (GDestroyNotify) phy_reply_free);
}

static void call_done(GObject *src, GAsyncResult *res, gpointer data) {
        GTask *task = G_TASK(res);
        struct call *c = g_task_get_task_data(task);
        GCancellable *cancellable = g_task_get_cancellable(task);
        PhyReply *r = g_task_propagate_pointer(task, NULL);
        if (r && !(cancellable && g_cancellable_is_cancelled(cancellable)) && c->cb)
                c->cb(r, c->data);
        phy_reply_free(r);
}

/* Runs thread(data) in a GLib worker; done in the main loop. */
static void run_task(gpointer data, GDestroyNotify free_data, GTaskThreadFunc thread, GAsyncReadyCallback done,
                     GCancellable *cancellable) {
        GTask *task = g_task_new(NULL, cancellable, done, NULL);
        g_task_set_task_data(task, data, free_data);
        g_task_run_in_thread(task, thread);
        g_object_unref(task);
}

static void call_start(const char *method, const char *path, char *body, char *file, GCancellable *cancellable,
                       PhyReplyFunc cb, gpointer data) {
        struct call *c = g_new0(struct call, 1);
        c->method = g_strdup(method);
        c->path = g_strdup(path);
        c->body = body;
        c->file = file;
        c->cb = cb;
        c->data = data;
        run_task(c, call_free, call_thread, call_done, cancellable);
}

void phy_call(const char *method, const char *path, json_object *body, GCancellable *cancellable, PhyReplyFunc cb,
              gpointer data) {
        char *text = body ? g_strdup(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN)) : NULL;
        if (body)
                json_object_put(body);
        call_start(method, path, text, NULL, cancellable, cb, data);
}

void phy_upload(const char *method, const char *path, const char *file, GCancellable *cancellable, PhyReplyFunc cb,
                gpointer data) {
        call_start(method, path, NULL, g_strdup(file), cancellable, cb, data);
}

/* ---- a reply saved to a file (a bundle) ---- */

/* Copies the reply's body (chunked or to the end) into fd; FALSE with *why
 * when it was cut short (chunked: no last chunk). */
static gboolean copy_body(GDataInputStream *in, gboolean chunked, int fd, GCancellable *cancellable, char **why) {
        g_autoptr(GError) e = NULL;
        guint8 buf[65536];
        for (;;) {
                gsize want = sizeof buf;
                if (chunked) {
                        g_autofree char *line = g_data_input_stream_read_line(in, NULL, cancellable, &e);
                        if (!line) {
                                *why = g_strdup(e ? e->message : _("the bundle ends before its last chunk"));
                                return FALSE;
                        }
                        guint64 size = g_ascii_strtoull(line, NULL, 16);
                        if (size == 0) {
                                /* the trailer, up to its empty line */
                                for (;;) {
                                        g_autofree char *t = g_data_input_stream_read_line(in, NULL, cancellable, NULL);
                                        if (!t || !*g_strstrip(t))
                                                return TRUE;
                                }
                        }
                        while (size > 0) {
                                gsize n = 0, part = size < sizeof buf ? (gsize) size : sizeof buf;
                                if (!g_input_stream_read_all(G_INPUT_STREAM(in), buf, part, &n, cancellable, &e) ||
                                    n != part) {
                                        *why = g_strdup(e ? e->message : _("the bundle ends in the middle of a chunk"));
                                        return FALSE;
                                }
                                if (write(fd, buf, n) != (gssize) n) {
                                        *why = g_strdup(g_strerror(errno));
                                        return FALSE;
                                }
                                size -= n;
                        }
                        /* the CRLF after the chunk's data */
                        g_free(g_data_input_stream_read_line(in, NULL, cancellable, NULL));
                        continue;
                }
                gssize n = g_input_stream_read(G_INPUT_STREAM(in), buf, want, cancellable, &e);
                if (n < 0) {
                        *why = g_strdup(e->message);
                        return FALSE;
                }
                if (n == 0)
                        return TRUE;
                if (write(fd, buf, (size_t) n) != n) {
                        *why = g_strdup(g_strerror(errno));
                        return FALSE;
                }
        }
}

/* GET path into file, written as FILE.partial and linked into place once
 * whole (an existing file is never replaced); a refusal is the JSON error. */
static PhyReply *save_sync(const char *path, const char *file, GCancellable *cancellable) {
        PhyReply *r = g_new0(PhyReply, 1);
        g_autoptr(GError) e = NULL;
        g_autoptr(GSocketConnection) conn = connect_reply(r, cancellable);
        if (!conn)
                return r;
        g_autofree char *head = g_strdup_printf("GET %s HTTP/1.1\r\nHost: phyllod\r\nConnection: close\r\n\r\n", path);
        if (!g_output_stream_write_all(g_io_stream_get_output_stream(G_IO_STREAM(conn)), head, strlen(head), NULL,
                                       cancellable, &e)) {
                r->error = g_strdup_printf(_("Cannot send a request to phyllod: %s"), e->message);
                return r;
        }
        g_autoptr(GDataInputStream) in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(conn)));
        g_data_input_stream_set_newline_type(in, G_DATA_STREAM_NEWLINE_TYPE_CR_LF);
        gboolean chunked = FALSE;
        for (int i = 0;; i++) {
                g_autofree char *line = g_data_input_stream_read_line(in, NULL, cancellable, &e);
                if (!line) {
                        r->error = g_strdup_printf(_("Cannot read phyllod's reply: %s"),
                                                   e ? e->message : _("the connection ended"));
                        return r;
                }
                if (i == 0 && sscanf(line, "HTTP/1.%*d %d", &r->status) != 1) {
                        r->error = g_strdup_printf(_("phyllod sent a reply that is not HTTP to GET %s"), path);
                        return r;
                }
                if (!*line)
                        break;
                g_autofree char *low = g_ascii_strdown(line, -1);
                if (g_str_has_prefix(low, "transfer-encoding:") && strstr(low, "chunked"))
                        chunked = TRUE;
        }
        g_autofree char *partial = g_strdup_printf("%s.partial", file);
        if (r->status == 200 && g_file_test(file, G_FILE_TEST_EXISTS)) {
                r->status = 0;
                r->error = g_strdup_printf(_("'%s' exists already; choose a new file (nothing was written)"), file);
                return r;
        }
        if (r->status != 200) {
                /* the error as JSON, read whole (small) */
                int p[2];
                g_autofree char *why = NULL;
                g_autoptr(GByteArray) b = g_byte_array_new();
                if (pipe2(p, O_CLOEXEC) == 0) {
                        copy_body(in, chunked, p[1], cancellable, &why);
                        close(p[1]);
                        guint8 c[4096];
                        gssize n;
                        while ((n = read(p[0], c, sizeof c)) > 0)
                                g_byte_array_append(b, c, (guint) n);
                        close(p[0]);
                }
                g_byte_array_append(b, (const guint8 *) "", 1);
                json_object *o = json_tokener_parse((const char *) b->data), *eo = NULL;
                const char *msg = o && json_object_object_get_ex(o, "error", &eo) ? phy_json_str(eo, "message") : NULL;
                r->error = msg ? g_strdup(msg) : g_strdup_printf(_("phyllod answered GET %s with status %d"), path,
                                                                 r->status);
                if (o)
                        json_object_put(o);
                return r;
        }
        int fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                r->error = g_strdup_printf(_("Cannot create '%s': %s"), partial, g_strerror(errno));
                r->status = 0;
                return r;
        }
        g_autofree char *why = NULL;
        gboolean good = copy_body(in, chunked, fd, cancellable, &why);
        if (good && fsync(fd) < 0)
                good = FALSE, why = g_strdup(g_strerror(errno));
        close(fd);
        if (good && link(partial, file) < 0)
                good = FALSE, why = g_strdup_printf(_("cannot create '%s': %s"), file, g_strerror(errno));
        unlink(partial);
        if (!good) {
                r->status = 0;
                r->error = g_strdup_printf(_("The export to '%s' failed: %s; nothing is kept"), file, why);
        }
        return r;
}

static void save_thread(GTask *task, gpointer src, gpointer task_data, GCancellable *cancellable) {
        struct call *c = task_data;
        g_task_return_pointer(task, save_sync(c->path, c->file, cancellable), (GDestroyNotify) phy_reply_free);
}

void phy_save(const char *path, const char *file, GCancellable *cancellable, PhyReplyFunc cb, gpointer data) {
        struct call *c = g_new0(struct call, 1);
        c->path = g_strdup(path);
        c->file = g_strdup(file);
        c->cb = cb;
        c->data = data;
        run_task(c, call_free, save_thread, call_done, cancellable);
}

/* ---- starting phyllod ---- */

static void child_setup(gpointer data) {
        setsid();
}

gboolean phy_spawn_phyllod(GError **error) {
        g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
        g_autofree char *dir = exe ? g_path_get_dirname(exe) : NULL;
        g_autofree char *near = dir ? g_build_filename(dir, "phyllod", NULL) : NULL;
        g_autofree char *sbin = g_build_filename(PHY_SBINDIR, "phyllod", NULL);
        const char *env = g_getenv("PHYLLOME_PHYLLOD");
        const char *bin = env && *env ? env
                          : near && g_file_test(near, G_FILE_TEST_IS_EXECUTABLE) ? near
                          : g_file_test(sbin, G_FILE_TEST_IS_EXECUTABLE) ? sbin : "phyllod";
        /* Its own socket (as the app finds it), in a session of its own,
         * reparented away from the app (GLib's double fork): the per-user
         * phyllod outlives the window that started it. */
        const char *argv[] = { bin, "--socket", phy_socket_path(), NULL };
        g_autofree char *sockdir = g_path_get_dirname(phy_socket_path());
        g_mkdir_with_parents(sockdir, 0700);
        return g_spawn_async(NULL, (char **) argv, NULL,
                             G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                             child_setup, NULL, NULL, error);
}

/* ---- the event stream ---- */

static struct {
        PhyEventFunc ev;
        PhyLinkFunc link;
        gpointer user;
        GSocketConnection *conn;
        GDataInputStream *in;
        GCancellable *cancel;
        GFileMonitor *mon;
        gboolean up, in_headers;
        char *event;
        GString *data;
        guint retry_id, retries;
} es;

static void es_connect(void);

static void es_down(const char *why) {
        g_clear_object(&es.in);
        g_clear_object(&es.conn);
        g_clear_object(&es.cancel);
        if (es.up || es.retries == 0) {
                es.up = FALSE;
                es.link(FALSE, why, es.user);
        }
}

static gboolean es_retry(gpointer data) {
        es.retry_id = 0;
        es_connect();
        return G_SOURCE_REMOVE;
}

/* The socket's directory changed: phyllod may be back.  A socket is bound
 * before it listens, so a refused connect right after its creation is
 * tried again a few times (bounded, only after an inotify event). */
static void dir_changed(GFileMonitor *m, GFile *file, GFile *other, GFileMonitorEvent ev, gpointer data) {
        if (es.up || es.conn)
                return;
        g_autofree char *base = g_file_get_basename(file);
        g_autofree char *want = g_path_get_basename(phy_socket_path());
        if (g_strcmp0(base, want) != 0 || ev == G_FILE_MONITOR_EVENT_DELETED)
                return;
        es.retries = 0;
        if (!es.retry_id)
                es_connect();
}

static void es_watch(void) {
        if (es.mon)
                return;
        g_autofree char *dir = g_path_get_dirname(phy_socket_path());
        g_mkdir_with_parents(dir, 0700);
        g_autoptr(GFile) f = g_file_new_for_path(dir);
        es.mon = g_file_monitor_directory(f, G_FILE_MONITOR_NONE, NULL, NULL);
        if (es.mon)
                g_signal_connect(es.mon, "changed", G_CALLBACK(dir_changed), NULL);
}

static void es_dispatch(void) {
        if (es.data->len) {
                json_tokener *tok = json_tokener_new_ex(64);
                json_object *o = json_tokener_parse_ex(tok, es.data->str, (int) es.data->len);
                json_tokener_free(tok);
                if (o) {
                        es.ev(es.event ? es.event : "message", o, es.user);
                        json_object_put(o);
                }
        }
        g_clear_pointer(&es.event, g_free);
        g_string_truncate(es.data, 0);
}

static void es_line(GObject *src, GAsyncResult *res, gpointer data) {
        g_autoptr(GError) e = NULL;
        gsize len = 0;
        g_autofree char *line = g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(src), res, &len, &e);
        if (!line) {
                if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                        return;
                es_down(e ? e->message : _("phyllod closed the event stream"));
                return;
        }
        if (len && line[len - 1] == '\r')
                line[--len] = '\0';
        if (es.in_headers) {
                if (len == 0) {
                        es.in_headers = FALSE;
                        es.up = TRUE;
                        es.retries = 0;
                        es.link(TRUE, NULL, es.user);
                } else if (g_str_has_prefix(line, "HTTP/") && !strstr(line, " 200")) {
                        es_down(line);
                        return;
                }
        } else if (len == 0) {
                es_dispatch();
        } else if (g_str_has_prefix(line, "event:")) {
                g_free(es.event);
                es.event = g_strstrip(g_strdup(line + 6));
        } else if (g_str_has_prefix(line, "data:")) {
                if (es.data->len)
                        g_string_append_c(es.data, '\n');
                g_string_append(es.data, line[5] == ' ' ? line + 6 : line + 5);
        }
        g_data_input_stream_read_line_async(es.in, G_PRIORITY_DEFAULT, es.cancel, es_line, NULL);
}

static void es_connected(GObject *src, GAsyncResult *res, gpointer data) {
        g_autoptr(GError) e = NULL;
        GSocketConnection *conn = g_socket_client_connect_finish(G_SOCKET_CLIENT(src), res, &e);
        if (!conn) {
                if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                        return;
                g_clear_object(&es.cancel);
                /* Refused just after the socket appeared: a few more tries. */
                if (es.retries < 20 && g_file_test(phy_socket_path(), G_FILE_TEST_EXISTS) &&
                    g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED)) {
                        es.retries++;
                        es.retry_id = g_timeout_add(100 * es.retries, es_retry, NULL);
                        return;
                }
                es_down(e->message);
                return;
        }
        es.conn = conn;
        static const char req[] = "GET /v1/events HTTP/1.0\r\nHost: phyllod\r\nAccept: text/event-stream\r\n\r\n";
        GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
        if (!g_output_stream_write_all(out, req, sizeof req - 1, NULL, es.cancel, &e)) {
                es_down(e->message);
                return;
        }
        es.in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(conn)));
        g_data_input_stream_set_newline_type(es.in, G_DATA_STREAM_NEWLINE_TYPE_LF);
        g_buffered_input_stream_set_buffer_size(G_BUFFERED_INPUT_STREAM(es.in), 65536);
        es.in_headers = TRUE;
        g_string_truncate(es.data, 0);
        g_data_input_stream_read_line_async(es.in, G_PRIORITY_DEFAULT, es.cancel, es_line, NULL);
}

static void es_connect(void) {
        if (es.conn || es.cancel)
                return;
        es_watch();
        es.cancel = g_cancellable_new();
        g_autoptr(GSocketClient) sc = g_socket_client_new();
        g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(phy_socket_path());
        g_socket_client_connect_async(sc, G_SOCKET_CONNECTABLE(addr), es.cancel, es_connected, NULL);
}

void phy_events_start(PhyEventFunc ev, PhyLinkFunc link, gpointer user) {
        es.ev = ev;
        es.link = link;
        es.user = user;
        es.data = g_string_new(NULL);
        es_connect();
}

/* ---- the serial console ---- */

struct console {
        char *vm;
        PhyConsoleFunc cb;
        gpointer data;
};

static void console_free(gpointer p) {
        struct console *c = p;
        g_free(c->vm);
        g_free(c);
}

/* Connects and upgrades in a thread; the reply head is read byte by byte
 * so that no console byte after it is lost. */
static void console_thread(GTask *task, gpointer src, gpointer task_data, GCancellable *cancellable) {
        struct console *c = task_data;
        g_autoptr(GError) e = NULL;
        g_autoptr(GSocketConnection) conn = connect_socket(cancellable, &e);
        if (!conn) {
                g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED,
                                        _("Phyllome's service (phyllod) does not answer: %s"), e->message);
                return;
        }
        g_autofree char *vm = phy_escape(c->vm);
        g_autofree char *req = g_strdup_printf("GET /v1/vms/%s/console HTTP/1.1\r\nHost: phyllod\r\n"
                                               "Connection: Upgrade\r\nUpgrade: phyllome-console\r\n\r\n", vm);
        GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(conn));
        if (!g_output_stream_write_all(g_io_stream_get_output_stream(G_IO_STREAM(conn)), req, strlen(req), NULL,
                                       cancellable, &e)) {
                g_task_return_error(task, g_steal_pointer(&e));
                return;
        }
        g_autoptr(GString) head = g_string_new(NULL);
        while (!g_str_has_suffix(head->str, "\r\n\r\n") && head->len < 32768) {
                char b;
                gssize n = g_input_stream_read(in, &b, 1, cancellable, &e);
                if (n <= 0) {
                        if (!e)
                                g_set_error(&e, G_IO_ERROR, G_IO_ERROR_CLOSED, _("phyllod closed the connection"));
                        g_task_return_error(task, g_steal_pointer(&e));
                        return;
                }
                g_string_append_c(head, b);
        }
        if (!g_str_has_prefix(head->str, "HTTP/1.1 101")) {
                /* An ordinary JSON error: read it for its sentence. */
                g_autoptr(GByteArray) body = g_byte_array_new();
                guint8 chunk[4096];
                gssize n;
                while ((n = g_input_stream_read(in, chunk, sizeof chunk, cancellable, NULL)) > 0 && body->len < 65536)
                        g_byte_array_append(body, chunk, (guint) n);
                g_byte_array_append(body, (const guint8 *) "", 1);
                json_object *o = json_tokener_parse((const char *) body->data), *eo = NULL;
                const char *msg = o && json_object_object_get_ex(o, "error", &eo) ? phy_json_str(eo, "message") : NULL;
                g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "%s",
                                        msg ? msg : _("phyllod refused the console"));
                if (o)
                        json_object_put(o);
                return;
        }
        g_task_return_pointer(task, g_steal_pointer(&conn), g_object_unref);
}

static void console_done(GObject *src, GAsyncResult *res, gpointer data) {
        GTask *task = G_TASK(res);
        struct console *c = g_task_get_task_data(task);
        g_autoptr(GError) e = NULL;
        GSocketConnection *conn = g_task_propagate_pointer(task, &e);
        if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        c->cb(conn ? G_IO_STREAM(conn) : NULL, e ? e->message : NULL, c->data);
        if (conn)
                g_object_unref(conn);
}

void phy_console_open(const char *vm, GCancellable *cancellable, PhyConsoleFunc cb, gpointer data) {
        struct console *c = g_new0(struct console, 1);
        c->vm = g_strdup(vm);
        c->cb = cb;
        c->data = data;
        run_task(c, console_free, console_thread, console_done, cancellable);
}

void phy_a11y(GtkWidget *w, const char *name) {
        AtkObject *a = gtk_widget_get_accessible(w);
        if (a)
                atk_object_set_name(a, name);
        if (GTK_IS_BUTTON(w) && !gtk_widget_get_tooltip_text(w))
                gtk_widget_set_tooltip_text(w, name);
}

static void name_buttons(GtkWidget *w, gpointer name) {
        if (GTK_IS_BUTTON(w)) {
                AtkObject *a = gtk_widget_get_accessible(w);
                if (a && !(atk_object_get_name(a) && *atk_object_get_name(a)))
                        phy_a11y(w, name);
        } else if (GTK_IS_CONTAINER(w))
                gtk_container_forall(GTK_CONTAINER(w), name_buttons, (gpointer) name);
}

void phy_a11y_buttons(GtkWidget *w, const char *name) {
        name_buttons(w, (gpointer) name);
}

/* SPDX-License-Identifier: MIT */
/* The client side: one HTTP/1.1 request over phyllod's socket, for the CLI.
 * JSON replies come with Content-Length; the connection is closed after it. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <json-c/json.h>

#include "api.h"
#include "cleanup.h"
#include "json-cleanup.h"
#include "fileio.h"

#define CLIENT_REPLY_MAX (16u * 1024 * 1024)

static int wait_fd(int fd, short events, int64_t deadline_left_ms) {
        struct pollfd p = { .fd = fd, .events = events };
        int r;
        while ((r = poll(&p, 1, deadline_left_ms < 0 ? -1 : (int) deadline_left_ms)) < 0 && errno == EINTR)
                ;
        return r < 0 ? -errno : r == 0 ? -ETIMEDOUT : 0;
}

/* -ENOENT/-ECONNREFUSED when no daemon answers: the caller works directly. */
static int client_connect(const char *socket_path, int *ret_fd, phy_error *err) {
        int fd = sock_connect_unix(socket_path, SOCK_STREAM);
        if (fd == -ENAMETOOLONG)
                return phy_error_set(err, ENAMETOOLONG, "the socket path '%s' is too long", socket_path);
        if (fd < 0) {
                phy_error_set(err, -fd, "phyllod does not answer on '%s': %s", socket_path, strerror(-fd));
                return fd;
        }
        *ret_fd = fd;
        return 0;
}

static int send_all(int fd, const char *buf, size_t n, phy_error *err) {
        for (size_t off = 0; off < n;) {
                ssize_t k = send(fd, buf + off, n - off, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return phy_error_set(err, errno, "cannot send to phyllod: %s", strerror(errno));
                off += (size_t) k;
        }
        return 0;
}

int api_client_request_text(const char *socket_path, const char *method, const char *path, const char *body,
                            int timeout_ms, char **ret, size_t *ret_len, phy_error *err) {
        *ret = NULL;
        *ret_len = 0;
        _cleanup_close_ int fd = -1;
        int r = client_connect(socket_path, &fd, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *req = NULL;
        size_t blen = body ? strlen(body) : 0;
        int n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: phyllod\r\nConnection: close\r\n"
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                         method, path, blen, body ? body : "");
        if (n < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if ((r = send_all(fd, req, (size_t) n, err)) < 0)
                return r;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                if ((r = wait_fd(fd, POLLIN, timeout_ms)) < 0)
                        return phy_error_set(err, -r, "no reply from phyllod on '%s': %s", socket_path, strerror(-r));
                if (cap - len < 4096) {
                        if (cap >= CLIENT_REPLY_MAX)
                                return phy_error_set(err, E2BIG, "the reply of phyllod is larger than %u bytes",
                                                     CLIENT_REPLY_MAX);
                        cap = cap ? cap * 2 : 16384;
                        char *b = realloc(buf, cap + 1);
                        if (!b)
                                return phy_error_set(err, ENOMEM, "out of memory");
                        buf = b;
                }
                ssize_t k = read(fd, buf + len, cap - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return phy_error_set(err, errno, "cannot read the reply of phyllod: %s", strerror(errno));
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        if (!buf)
                return phy_error_set(err, EPROTO, "phyllod closed the connection without a reply");
        buf[len] = '\0';
        unsigned long long status;
        char code[4] = { 0 };
        char *hdr_end = strstr(buf, "\r\n\r\n");
        if (strncmp(buf, "HTTP/1.", 7) != 0 || len < 12 || !hdr_end)
                return phy_error_set(err, EPROTO, "phyllod sent a malformed reply");
        memcpy(code, buf + 9, 3);
        if (parse_uint(code, 999, &status) < 0)
                return phy_error_set(err, EPROTO, "phyllod sent a malformed status line");
        /* The body moved to the buffer's start: one allocation, no copy kept. */
        size_t off = (size_t) (hdr_end + 4 - buf);
        memmove(buf, buf + off, len - off + 1);
        *ret_len = len - off;
        *ret = TAKE_PTR(buf);
        return (int) status;
}

int api_client_request(const char *socket_path, const char *method, const char *path, const char *body,
                       int timeout_ms, json_object **ret, phy_error *err) {
        *ret = NULL;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int status = api_client_request_text(socket_path, method, path, body, timeout_ms, &text, &len, err);
        if (status < 0 || len == 0)
                return status;
        json_object *o = json_tokener_parse(text);
        if (!o)
                return phy_error_set(err, EPROTO, "phyllod sent a reply that is not JSON");
        *ret = o;
        return status;
}

/* ---- streamed bodies (export/import) ---- */

struct reader {
        int fd;
        int watch;              /* the body's destination, or -1: a pipe whose reader left ends the wait */
        char buf[65536];
        size_t pos, len;
};

/* 1 with a byte, 0 at the end, -errno. */
static int rd_byte(struct reader *r, char *c) {
        if (r->pos == r->len) {
                /* A stream that may stay quiet for long (logs --follow): wait
                 * for it and for the reader of our output to go away. */
                struct pollfd p[2] = { { .fd = r->fd, .events = POLLIN }, { .fd = r->watch, .events = 0 } };
                while (r->watch >= 0) {
                        int n = poll(p, 2, -1);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return -errno;
                        if (p[1].revents & (POLLERR | POLLHUP))
                                return -EPIPE;
                        if (p[0].revents)
                                break;
                }
                ssize_t k;
                while ((k = read(r->fd, r->buf, sizeof r->buf)) < 0 && errno == EINTR)
                        ;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return 0;
                r->pos = 0;
                r->len = (size_t) k;
        }
        *c = r->buf[r->pos++];
        return 1;
}

/* A line without its CRLF, at most max - 1 bytes: -EPROTO when longer or cut. */
static int rd_line(struct reader *r, char *line, size_t max) {
        size_t n = 0;
        for (;;) {
                char c;
                int k = rd_byte(r, &c);
                if (k <= 0)
                        return k < 0 ? k : -EPROTO;
                if (c == '\n')
                        break;
                if (n + 1 >= max)
                        return -EPROTO;
                line[n++] = c;
        }
        if (n > 0 && line[n - 1] == '\r')
                n--;
        line[n] = '\0';
        return 0;
}

/* Up to want bytes of the body into out (a fd) or text (a growing buffer). */
static int rd_body(struct reader *r, uint64_t want, bool until_eof, int out, char **text, size_t *tlen,
                   api_progress_fn progress, void *userdata, uint64_t *done) {
        while (until_eof || want > 0) {
                if (r->pos == r->len) {
                        char c;
                        int k = rd_byte(r, &c);
                        if (k < 0)
                                return k;
                        if (k == 0)
                                return until_eof ? 0 : -EPROTO;
                        r->pos--;
                }
                size_t n = r->len - r->pos;
                if (!until_eof && n > want)
                        n = (size_t) want;
                if (out >= 0) {
                        for (size_t off = 0; off < n;) {
                                ssize_t k = write(out, r->buf + r->pos + off, n - off);
                                if (k < 0 && errno == EINTR)
                                        continue;
                                if (k < 0)
                                        return -errno;
                                off += (size_t) k;
                        }
                } else {
                        if (*tlen + n > CLIENT_REPLY_MAX)
                                return -E2BIG;
                        char *t = realloc(*text, *tlen + n + 1);
                        if (!t)
                                return -ENOMEM;
                        memcpy(t + *tlen, r->buf + r->pos, n);
                        *tlen += n;
                        t[*tlen] = '\0';
                        *text = t;
                }
                r->pos += n;
                want -= until_eof ? 0 : n;
                *done += n;
                if (progress && out >= 0)
                        progress(*done, 0, userdata);
        }
        return 0;
}

/* Sends in_fd's bytes as chunks, then the last chunk. */
static int send_chunked(int fd, int in_fd, api_progress_fn progress, void *userdata, phy_error *err) {
        _cleanup_free_ char *buf = malloc(65536);
        uint64_t done = 0;
        if (!buf)
                return phy_error_set(err, ENOMEM, "out of memory");
        for (;;) {
                ssize_t k = read(in_fd, buf, 65536);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return phy_error_set(err, errno, "cannot read the bundle: %s", strerror(errno));
                char head[32];
                int hl = snprintf(head, sizeof head, "%zx\r\n", (size_t) k);
                int r;
                if ((r = send_all(fd, head, (size_t) hl, err)) < 0 ||
                    (r = send_all(fd, buf, (size_t) k, err)) < 0 || (r = send_all(fd, "\r\n", 2, err)) < 0)
                        return r;
                if (k == 0)
                        return 0;
                done += (uint64_t) k;
                if (progress)
                        progress(done, 0, userdata);
        }
}

int api_client_stream(const char *socket_path, const char *method, const char *path, int in_fd, int out_fd,
                      api_progress_fn progress, void *userdata, json_object **ret, phy_error *err) {
        *ret = NULL;
        _cleanup_close_ int fd = -1;
        int r = client_connect(socket_path, &fd, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *head = NULL;
        int n = asprintf(&head, "%s %s HTTP/1.1\r\nHost: phyllod\r\nConnection: close\r\n%s\r\n", method, path,
                         in_fd >= 0 ? "Content-Type: application/zstd\r\nTransfer-Encoding: chunked\r\n" : "");
        if (n < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* A refusal may come before the body is read (413, 409): a failed
         * send then still leaves that reply to read. */
        phy_error send_err = { 0 };
        int sr = send_all(fd, head, (size_t) n, &send_err);
        if (sr >= 0 && in_fd >= 0)
                sr = send_chunked(fd, in_fd, progress, userdata, &send_err);
        if (sr < 0 && send_err.code != EPIPE && send_err.code != ECONNRESET) {
                *err = send_err;
                return sr;
        }
        struct reader *rd = calloc(1, sizeof *rd);
        _cleanup_free_ char *text = NULL;
        if (!rd)
                return phy_error_set(err, ENOMEM, "out of memory");
        rd->fd = fd;
        rd->watch = -1;
        char line[8192];
        unsigned long long status = 0, clen = 0;
        bool chunked = false, have_len = false;
        if ((r = rd_line(rd, line, sizeof line)) < 0 || strncmp(line, "HTTP/1.", 7) != 0 || strlen(line) < 12 ||
            (line[12] = '\0', parse_uint(line + 9, 999, &status) < 0)) {
                free(rd);
                if (sr < 0) {
                        *err = send_err;
                        return sr;
                }
                return phy_error_set(err, EPROTO, "phyllod sent a malformed reply");
        }
        while ((r = rd_line(rd, line, sizeof line)) == 0 && line[0]) {
                if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 && strstr(line + 18, "chunked"))
                        chunked = true;
                else if (strncasecmp(line, "Content-Length:", 15) == 0) {
                        const char *v = line + 15;
                        while (*v == ' ')
                                v++;
                        have_len = parse_uint(v, UINT64_MAX, &clen) == 0;
                }
        }
        int out = status == 200 ? out_fd : -1;
        rd->watch = out;
        size_t tlen = 0;
        uint64_t done = 0;
        while (r == 0 && chunked) {
                unsigned long long size;
                char *semi;
                if ((r = rd_line(rd, line, sizeof line)) < 0)
                        break;
                if ((semi = strchr(line, ';')))
                        *semi = '\0';
                char *end = NULL;
                errno = 0;
                size = strtoull(line, &end, 16);
                if (errno || end == line || *end) {
                        r = -EPROTO;
                        break;
                }
                if (size == 0) {
                        while ((r = rd_line(rd, line, sizeof line)) == 0 && line[0])
                                ;       /* trailers */
                        break;
                }
                if ((r = rd_body(rd, size, false, out, &text, &tlen, progress, userdata, &done)) < 0 ||
                    (r = rd_line(rd, line, sizeof line)) < 0)
                        break;
        }
        if (r == 0 && !chunked)
                r = rd_body(rd, clen, !have_len, out, &text, &tlen, progress, userdata, &done);
        free(rd);
        if (r < 0)
                return phy_error_set(err, -r, r == -EPROTO ? "the reply of phyllod ended early or is malformed (the "
                                     "transfer was cut short)" : "cannot read the reply of phyllod: %s", strerror(-r));
        if (text && *text && !(*ret = json_tokener_parse(text)))
                return phy_error_set(err, EPROTO, "phyllod sent a reply that is not JSON");
        return (int) status;
}

/* ---- the event stream (GET /v1/events) ---- */

struct api_event_stream {
        struct reader rd;
        bool chunked, in_chunk;
        uint64_t left;          /* bytes left in the current chunk */
};

int api_client_events_open(const char *socket_path, struct api_event_stream **ret, phy_error *err) {
        _cleanup_close_ int fd = -1;
        int r = client_connect(socket_path, &fd, err);
        if (r < 0)
                return r;
        static const char head[] = "GET /v1/events HTTP/1.1\r\nHost: phyllod\r\nConnection: close\r\n\r\n";
        if ((r = send_all(fd, head, sizeof head - 1, err)) < 0)
                return r;
        struct api_event_stream *s = calloc(1, sizeof *s);
        if (!s)
                return phy_error_set(err, ENOMEM, "out of memory");
        s->rd.fd = fd;
        s->rd.watch = -1;
        char line[8192];
        unsigned long long status = 0;
        if ((r = rd_line(&s->rd, line, sizeof line)) < 0 || strncmp(line, "HTTP/1.", 7) != 0 || strlen(line) < 12 ||
            (line[12] = '\0', parse_uint(line + 9, 999, &status) < 0)) {
                free(s);
                return phy_error_set(err, EPROTO, "phyllod sent a malformed reply to GET /v1/events");
        }
        while ((r = rd_line(&s->rd, line, sizeof line)) == 0 && line[0])
                if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 && strstr(line + 18, "chunked"))
                        s->chunked = true;
        if (r < 0 || status != 200) {
                free(s);
                return phy_error_set(err, r < 0 ? -r : EPROTO, "phyllod refused its event stream (HTTP status %llu)",
                                     status);
        }
        fd = -1;
        *ret = s;
        return 0;
}

/* One byte of the body, chunked or not: 1, 0 at its end, -errno. */
static int ev_byte(struct api_event_stream *s, char *c) {
        char line[64];
        int r;
        while (s->chunked && s->left == 0) {
                if (s->in_chunk && ((r = rd_line(&s->rd, line, sizeof line)) < 0 || line[0]))
                        return r < 0 ? r : -EPROTO;
                s->in_chunk = true;
                if ((r = rd_line(&s->rd, line, sizeof line)) < 0)
                        return r;
                char *end = NULL;
                errno = 0;
                unsigned long long n = strtoull(line, &end, 16);
                if (errno || end == line || (*end && *end != ';'))
                        return -EPROTO;
                if (n == 0)
                        return 0;
                s->left = n;
        }
        r = rd_byte(&s->rd, c);
        if (r > 0 && s->chunked)
                s->left--;
        return r;
}

int api_client_events_run(struct api_event_stream *s, api_event_fn fn, void *userdata) {
        _cleanup_free_ char *line = malloc(65536), *event = NULL, *data = NULL;
        if (!line)
                return -ENOMEM;
        size_t len = 0;
        for (;;) {
                char c;
                int r = ev_byte(s, &c);
                if (r <= 0)
                        return r;
                if (c != '\n') {
                        if (len + 1 >= 65536)
                                return -EPROTO;
                        line[len++] = c;
                        continue;
                }
                line[len] = '\0';
                len = 0;
                if (strncmp(line, "event: ", 7) == 0) {
                        free(event);
                        if (!(event = strdup(line + 7)))
                                return -ENOMEM;
                } else if (strncmp(line, "data: ", 6) == 0) {
                        free(data);
                        if (!(data = strdup(line + 6)))
                                return -ENOMEM;
                } else if (!line[0] && event && data) {
                        /* A record's end. */
                        _cleanup_json_ json_object *o = json_tokener_parse(data);
                        if (o)
                                fn(event, o, userdata);
                        free(event);
                        free(data);
                        event = data = NULL;
                }
        }
}

void api_client_events_cancel(struct api_event_stream *s) {
        (void) shutdown(s->rd.fd, SHUT_RDWR);
}

void api_client_events_free(struct api_event_stream *s) {
        if (s) {
                close(s->rd.fd);
                free(s);
        }
}

/* ---- an upgraded connection (the console) ---- */

int api_client_upgrade(const char *socket_path, const char *path, const char *protocol, int *ret_fd,
                       json_object **ret, phy_error *err) {
        *ret = NULL;
        _cleanup_close_ int fd = -1;
        int r = client_connect(socket_path, &fd, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *head = NULL;
        int n = asprintf(&head, "GET %s HTTP/1.1\r\nHost: phyllod\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n",
                         path, protocol);
        if (n < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if ((r = send_all(fd, head, (size_t) n, err)) < 0)
                return r;
        /* The headers one byte at a time: what follows them is the stream. */
        char line[8192];
        unsigned long long status = 0, clen = 0;
        size_t len = 0;
        bool first = true;
        for (;;) {
                char c;
                ssize_t k = read(fd, &c, 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return phy_error_set(err, EPROTO, "phyllod closed the connection in its reply's headers");
                if (c != '\n') {
                        if (len + 1 >= sizeof line)
                                return phy_error_set(err, EPROTO, "phyllod sent a header line that is too long");
                        line[len++] = c;
                        continue;
                }
                if (len && line[len - 1] == '\r')
                        len--;
                line[len] = '\0';
                if (len == 0)
                        break;
                if (first) {
                        if (strncmp(line, "HTTP/1.", 7) != 0 || len < 12 ||
                            (line[12] = '\0', parse_uint(line + 9, 999, &status) < 0))
                                return phy_error_set(err, EPROTO, "phyllod sent a malformed status line");
                        first = false;
                } else if (strncasecmp(line, "Content-Length:", 15) == 0) {
                        const char *v = line + 15;
                        while (*v == ' ')
                                v++;
                        if (parse_uint(v, CLIENT_REPLY_MAX, &clen) < 0)
                                return phy_error_set(err, EPROTO, "phyllod sent a bad Content-Length");
                }
                len = 0;
        }
        if (status == 101) {
                *ret_fd = TAKE_FD(fd);
                return 101;
        }
        /* A refusal: its JSON body. */
        _cleanup_free_ char *body = malloc(clen + 1);
        size_t got = 0;
        if (!body)
                return phy_error_set(err, ENOMEM, "out of memory");
        while (got < clen) {
                ssize_t k = read(fd, body + got, clen - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                got += (size_t) k;
        }
        body[got] = '\0';
        if (got && !(*ret = json_tokener_parse(body)))
                return phy_error_set(err, EPROTO, "phyllod sent a reply that is not JSON");
        return (int) status;
}

/* Here rather than in server.c: the CLI links this file without libmicrohttpd. */
int api_socket_path(const char *home, bool system, char **ret, phy_error *err) {
        const char *env = getenv("PHYLLOME_SOCKET"), *xdg = getenv("XDG_RUNTIME_DIR");
        char *p = NULL;
        int r;
        if (env && *env)
                r = asprintf(&p, "%s", env);
        else if (system)
                r = asprintf(&p, "/run/phyllome/phyllod.sock");
        else if (getenv("PHYLLOME_HOME") && home)
                r = asprintf(&p, "%s/phyllod.sock", home);
        else if ((!xdg || !*xdg) && geteuid() == 0)
                r = asprintf(&p, "/run/phyllome/phyllod.sock");
        else if (xdg && *xdg)
                r = asprintf(&p, "%s/phyllome/phyllod.sock", xdg);
        else
                return phy_error_set(err, ENOENT, "$XDG_RUNTIME_DIR is not set; give the socket with --socket PATH "
                                     "or $PHYLLOME_SOCKET");
        if (r < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        struct sockaddr_un sa;
        if (strlen(p) >= sizeof sa.sun_path) {
                r = phy_error_set(err, ENAMETOOLONG, "the socket path '%s' is longer than %zu bytes; give a shorter "
                                  "one with --socket PATH", p, sizeof sa.sun_path - 1);
                free(p);
                return r;
        }
        *ret = p;
        return 0;
}

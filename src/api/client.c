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
#include "fileio.h"

#define CLIENT_REPLY_MAX (16u * 1024 * 1024)

static int wait_fd(int fd, short events, int64_t deadline_left_ms) {
        struct pollfd p = { .fd = fd, .events = events };
        int r;
        while ((r = poll(&p, 1, deadline_left_ms < 0 ? -1 : (int) deadline_left_ms)) < 0 && errno == EINTR)
                ;
        return r < 0 ? -errno : r == 0 ? -ETIMEDOUT : 0;
}

int api_client_request(const char *socket_path, const char *method, const char *path, const char *body,
                       int timeout_ms, json_object **ret, phy_error *err) {
        *ret = NULL;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(socket_path) >= sizeof sa.sun_path)
                return phy_error_set(err, ENAMETOOLONG, "the socket path '%s' is too long", socket_path);
        memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return phy_error_set(err, errno, "cannot create a socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int e = errno;
                /* No daemon: the caller works directly. */
                phy_error_set(err, e, "phyllod does not answer on '%s': %s", socket_path, strerror(e));
                return -e;
        }
        _cleanup_free_ char *req = NULL;
        size_t blen = body ? strlen(body) : 0;
        int n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: phyllod\r\nConnection: close\r\n"
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                         method, path, blen, body ? body : "");
        if (n < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        for (size_t off = 0; off < (size_t) n;) {
                ssize_t k = send(fd, req + off, (size_t) n - off, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return phy_error_set(err, errno, "cannot send to phyllod: %s", strerror(errno));
                off += (size_t) k;
        }
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                int r = wait_fd(fd, POLLIN, timeout_ms);
                if (r < 0)
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
        const char *payload = hdr_end + 4;
        if (*payload) {
                json_object *o = json_tokener_parse(payload);
                if (!o)
                        return phy_error_set(err, EPROTO, "phyllod sent a reply that is not JSON");
                *ret = o;
        }
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

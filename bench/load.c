/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-load: requests per second against phyllod's unix socket, measured
 * by a client that is not itself the bottleneck (bench/run's Python client
 * was: 18-20k req/s quiet, 4.4k under load).
 *
 *   bench-load SOCKET PATH CONNECTIONS SECONDS
 *
 * Opens CONNECTIONS keep-alive connections, keeps one GET PATH in flight on
 * each (HTTP/1.1, no pipelining), and drives them all from one epoll loop
 * for SECONDS after a short warm-up.  Prints one JSON object:
 *   {"requests": N, "seconds": S, "rate": R, "errors": E, "status": [..]}
 * Exits 1 when a connection fails or a reply is not 200 (its status and
 * the count are in the object), 2 on bad arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BUF_MAX (8u << 20)

struct conn {
        int fd;
        char *buf;
        size_t len;
        size_t want; /* bytes of the whole reply, 0 while headers are incomplete */
        int status;
};

static const char *req;
static size_t req_len;

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int conn_open(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        /* Non-blocking only after connect: a unix connect completes at once
         * or fails, and the loop below must never block on one socket. */
        if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static int conn_send(struct conn *c) {
        c->len = c->want = 0;
        c->status = 0;
        size_t off = 0;
        while (off < req_len) { /* a request is far below the socket's buffer */
                ssize_t n = send(c->fd, req + off, req_len - off, MSG_NOSIGNAL);
                if (n < 0)
                        return -errno;
                off += (size_t)n;
        }
        return 0;
}

/* Headers complete: the status and the whole reply's size.  -EPROTO for
 * what this client does not speak (chunked, no Content-Length). */
static int parse_head(struct conn *c) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end)
                return c->len >= BUF_MAX ? -E2BIG : 0;
        size_t head = (size_t)(end - c->buf) + 4;
        if (sscanf(c->buf, "HTTP/1.%*d %d", &c->status) != 1)
                return -EPROTO;
        long long clen = -1;
        for (char *l = strstr(c->buf, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n")) {
                if (!strncasecmp(l + 2, "Content-Length:", 15))
                        clen = atoll(l + 17);
                else if (!strncasecmp(l + 2, "Transfer-Encoding:", 18))
                        return -EPROTO;
        }
        if (clen < 0 || (size_t)clen > BUF_MAX - head)
                return -EPROTO;
        c->want = head + (size_t)clen;
        return 1;
}

int main(int argc, char **argv) {
        if (argc != 5) {
                fprintf(stderr, "usage: bench-load SOCKET PATH CONNECTIONS SECONDS\n");
                return 2;
        }
        const char *sock = argv[1];
        int nconn = atoi(argv[3]);
        double seconds = atof(argv[4]);
        if (nconn < 1 || nconn > 1000 || seconds <= 0) {
                fprintf(stderr, "bench-load: CONNECTIONS must be 1-1000 and SECONDS above 0\n");
                return 2;
        }
        char *r = NULL;
        if (asprintf(&r, "GET %s HTTP/1.1\r\nHost: phyllod\r\n\r\n", argv[2]) < 0)
                return 1;
        req = r;
        req_len = strlen(r);

        int ep = epoll_create1(EPOLL_CLOEXEC);
        int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
        struct conn *cs = calloc((size_t)nconn, sizeof *cs);
        if (ep < 0 || tfd < 0 || !cs) {
                perror("bench-load");
                return 1;
        }
        for (int i = 0; i < nconn; i++) {
                cs[i].buf = malloc(BUF_MAX);
                cs[i].fd = conn_open(sock);
                if (cs[i].fd < 0 || !cs[i].buf) {
                        fprintf(stderr, "bench-load: connecting to %s: %s\n", sock,
                                strerror(cs[i].fd < 0 ? -cs[i].fd : ENOMEM));
                        return 1;
                }
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &cs[i] };
                if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) < 0 || conn_send(&cs[i]) < 0) {
                        perror("bench-load");
                        return 1;
                }
        }
        /* Warm-up (a tenth of the window, at most 0.5 s), then the window:
         * the timer fires twice. */
        double warm = seconds / 10 > 0.5 ? 0.5 : seconds / 10;
        struct itimerspec its = { .it_value = { .tv_sec = (time_t)warm, .tv_nsec = (long)((warm - (time_t)warm) * 1e9) + 1 } };
        timerfd_settime(tfd, 0, &its, NULL);
        struct epoll_event tev = { .events = EPOLLIN, .data.ptr = NULL };
        epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);

        int phase = 0; /* 0 warm-up, 1 measuring, 2 done */
        uint64_t done = 0, errors = 0;
        int bad_status = 0;
        double t0 = 0, t1 = 0;
        struct epoll_event evs[64];
        while (phase < 2) {
                int n = epoll_wait(ep, evs, 64, -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("bench-load: epoll_wait");
                        return 1;
                }
                for (int k = 0; k < n; k++) {
                        struct conn *c = evs[k].data.ptr;
                        if (!c) {
                                uint64_t x;
                                if (read(tfd, &x, sizeof x) < 0) {}
                                if (phase == 0) {
                                        phase = 1;
                                        done = 0;
                                        t0 = now();
                                        struct itimerspec w = { .it_value = { .tv_sec = (time_t)seconds,
                                                                              .tv_nsec = (long)((seconds - (time_t)seconds) * 1e9) + 1 } };
                                        timerfd_settime(tfd, 0, &w, NULL);
                                } else {
                                        t1 = now();
                                        phase = 2;
                                }
                                continue;
                        }
                        for (;;) {
                                ssize_t got = recv(c->fd, c->buf + c->len, BUF_MAX - c->len, 0);
                                if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                                        break;
                                if (got <= 0) {
                                        fprintf(stderr, "bench-load: phyllod closed a connection%s%s\n",
                                                got < 0 ? ": " : "", got < 0 ? strerror(errno) : "");
                                        return 1;
                                }
                                c->len += (size_t)got;
                                int h = c->want ? 1 : parse_head(c);
                                if (h < 0) {
                                        fprintf(stderr, "bench-load: a reply this client cannot read (%s)\n", strerror(-h));
                                        return 1;
                                }
                                if (h == 0 || c->len < c->want)
                                        continue;
                                if (c->len > c->want) {
                                        fprintf(stderr, "bench-load: more bytes than one reply (no pipelining asked)\n");
                                        return 1;
                                }
                                done++;
                                if (c->status != 200) {
                                        errors++;
                                        bad_status = c->status;
                                }
                                if (conn_send(c) < 0) {
                                        perror("bench-load: send");
                                        return 1;
                                }
                                break;
                        }
                }
        }
        double el = t1 - t0;
        printf("{\"requests\": %llu, \"seconds\": %.3f, \"rate\": %.1f, \"errors\": %llu, \"status\": %d}\n",
               (unsigned long long)done, el, el > 0 ? (double)done / el : 0.0, (unsigned long long)errors,
               bad_status ? bad_status : 200);
        for (int i = 0; i < nconn; i++) {
                close(cs[i].fd);
                free(cs[i].buf);
        }
        free(cs);
        free(r);
        close(tfd);
        close(ep);
        return errors ? 1 : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * A client of phyllome-devhelper for tests/integration/devhelper.sh:
 *   devhelper-send SOCKET to-vfio|give-back|chown|status [VM ADDRESS [DRIVER]]
 *   devhelper-send SOCKET raw N                  N garbage bytes as one message
 *   devhelper-send SOCKET bad-version|unterminated|bad-op|bad-driver
 *   devhelper-send SOCKET idle                   connect, say "connected", send nothing
 * Prints "ERRNO MESSAGE" of the reply; exits 0 when ERRNO is 0, 1 when the
 * helper refused, 3 when there was no reply.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dev/helper.h"

static int connect_to(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                perror("connect");
                exit(3);
        }
        return fd;
}

/* Sends len bytes as one message and prints the reply. */
static int send_raw(const char *path, const void *buf, size_t len) {
        int fd = connect_to(path);
        if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t) len) {
                perror("send");
                return 3;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        struct dev_helper_reply r;
        ssize_t n = poll(&p, 1, 10000) == 1 ? recv(fd, &r, sizeof r, MSG_TRUNC) : -1;
        close(fd);
        if (n != (ssize_t) sizeof r) {
                printf("no reply (%zd bytes)\n", n);
                return 3;
        }
        r.message[sizeof r.message - 1] = '\0';
        printf("%d %s\n", r.error, r.message);
        return r.error ? 1 : 0;
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fputs("usage: devhelper-send SOCKET OP [VM ADDRESS [DRIVER]]\n", stderr);
                return 2;
        }
        const char *sock = argv[1], *op = argv[2];
        struct dev_helper_request q;
        phy_error err = { 0 };
        if (strcmp(op, "idle") == 0) {
                int fd = connect_to(sock);
                puts("connected");
                fflush(stdout);
                for (;;)
                        pause();
                close(fd);
        }
        if (strcmp(op, "raw") == 0 && argc == 4) {
                size_t n = strtoul(argv[3], NULL, 10);
                unsigned char *b = malloc(n ? n : 1);
                memset(b, 0xaa, n);
                int r = send_raw(sock, b, n);
                free(b);
                return r;
        }
        if (dev_helper_request_init(&q, DEV_HELPER_TO_VFIO, "t", "0000:00:02.0", "", &err) < 0)
                return 2;
        if (strcmp(op, "bad-version") == 0) {
                q.version = DEV_HELPER_VERSION + 1;
                return send_raw(sock, &q, sizeof q);
        }
        if (strcmp(op, "unterminated") == 0) {
                memset(q.vm, 'a', sizeof q.vm);
                return send_raw(sock, &q, sizeof q);
        }
        if (strcmp(op, "bad-op") == 0) {
                q.op = 99;
                return send_raw(sock, &q, sizeof q);
        }
        if (strcmp(op, "bad-driver") == 0) {
                q.op = DEV_HELPER_GIVE_BACK;
                snprintf(q.driver, sizeof q.driver, "%s", "../../x");
                return send_raw(sock, &q, sizeof q);
        }
        static const struct { const char *name; enum dev_helper_op op; } ops[] = {
                { "to-vfio", DEV_HELPER_TO_VFIO }, { "give-back", DEV_HELPER_GIVE_BACK },
                { "chown", DEV_HELPER_CHOWN_VFIO_GROUP }, { "status", DEV_HELPER_STATUS },
        };
        for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
                if (strcmp(op, ops[i].name) == 0) {
                        if (dev_helper_request_init(&q, ops[i].op, argc > 3 ? argv[3] : "", argc > 4 ? argv[4] : "",
                                                    argc > 5 ? argv[5] : "", &err) < 0) {
                                printf("%d %s\n", err.code, err.message);
                                return 2;
                        }
                        struct dev_helper_reply r = { 0 };
                        int rc = dev_helper_call(sock, &q, &r, &err);
                        if (rc < 0 && r.version != DEV_HELPER_VERSION) {
                                printf("%d %s\n", err.code, err.message);
                                return 3;
                        }
                        printf("%d %s\n", r.error, r.message);
                        return r.error ? 1 : 0;
                }
        fprintf(stderr, "devhelper-send: unknown op '%s'\n", op);
        return 2;
}

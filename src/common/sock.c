/* SPDX-License-Identifier: MIT */
#include "sock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"

int sock_connect_unix(const char *path, int type) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t n = strlen(path);
        if (n >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, n + 1);
        int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        return fd;
}

int sock_bind_unix(int fd, const struct sockaddr_un *sa, mode_t mode) {
        mode_t old = umask(~mode & 0777);
        int r = bind(fd, (const struct sockaddr *) sa, sizeof *sa);
        int e = errno;
        umask(old);
        return r < 0 ? -e : 0;
}

void sock_peer_done(struct sock_peer *p) {
        if (!p)
                return;
        free(p->groups);
        p->groups = NULL;
        p->n_groups = 0;
}

int sock_peer_get(int fd, struct sock_peer *ret) {
        struct ucred uc;
        socklen_t l = sizeof uc;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &l) < 0)
                return -errno;
        /* The groups are fixed at connect time; ERANGE says (in l) how much room
         * they need.  Never guess: a short or zeroed array would make gid 0 a group. */
        _cleanup_free_ gid_t *groups = NULL;
        size_t cap = 64;
        for (int tries = 0;; tries++) {
                gid_t *g = realloc(groups, cap * sizeof(gid_t));
                if (!g)
                        return -ENOMEM;
                groups = g;
                l = (socklen_t) (cap * sizeof(gid_t));
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &l) == 0)
                        break;
                if (errno != ERANGE || tries >= 3 || l <= cap * sizeof(gid_t))
                        return errno == ERANGE ? -EIO : -errno;
                cap = l / sizeof(gid_t) + 1;
        }
        *ret = (struct sock_peer) { .pid = uc.pid, .uid = uc.uid, .gid = uc.gid, .n_groups = l / sizeof(gid_t) };
        ret->groups = TAKE_PTR(groups);
        return 0;
}

int sock_listen_fd_from_systemd(int type, int *ret_fd) {
        const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
        unsigned long long p, n;
        if (!pid || !fds || parse_uint(pid, INT32_MAX, &p) < 0 || (pid_t) p != getpid() ||
            parse_uint(fds, 1024, &n) < 0 || n == 0)
                return -ENOENT;
        /* Not for our children (the VM monitors). */
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        if (n != 1)
                return -E2BIG;
        int fd = 3, got = 0, listening = 0;
        socklen_t l = sizeof got;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &got, &l) < 0 || got != type)
                return -ENOTSOCK;
        l = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l) < 0 || !listening)
                return -EINVAL;
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

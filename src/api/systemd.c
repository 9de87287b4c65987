/* SPDX-License-Identifier: MIT */
/* sd_notify(3) and sd_listen_fds(3) by their documented protocols, so that
 * phyllod needs no libsystemd. */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "api.h"
#include "cleanup.h"
#include "fileio.h"

int api_sd_notify(const char *state) {
        const char *path = getenv("NOTIFY_SOCKET");
        if (!path || !*path)
                return 0;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t n = strlen(path);
        if (n >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@'))
                return -EINVAL;
        memcpy(sa.sun_path, path, n);
        if (path[0] == '@')
                sa.sun_path[0] = '\0';  /* abstract namespace: no NUL terminator counted */
        socklen_t len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *) &sa, len) < 0)
                return -errno;
        return 1;
}

int api_sd_listen_fd(int *ret_fd) {
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
        int fd = 3;
        int type = 0, listening = 0;
        socklen_t l = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0 || type != SOCK_STREAM)
                return -ENOTSOCK;
        l = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l) < 0 || !listening)
                return -EINVAL;
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A real peer process for the peer-credential tests (issue 12, finding 6):
 * a child that takes uid/gid 4242 and n supplementary groups first_gid,
 * first_gid+1, ... then connects to a listening unix socket of ours.  Root
 * only (setgroups).  peer_start returns our accepted end; peer_stop lets the
 * child exit, reaps it and says whether it ran as planned.
 */
#include <fcntl.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

struct test_peer {
        char dir[64];
        pid_t pid;
        int fd, listen_fd, release;
};

static inline int peer_start(struct test_peer *t, size_t n, gid_t first_gid) {
        snprintf(t->dir, sizeof t->dir, "/tmp/phyllome-test-peer-XXXXXX");
        t->pid = -1;
        t->fd = t->listen_fd = t->release = -1;
        if (!mkdtemp(t->dir) || chmod(t->dir, 0755) < 0)
                return -1;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s/s", t->dir);
        int go[2];
        t->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (t->listen_fd < 0 || bind(t->listen_fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
            chmod(sa.sun_path, 0666) < 0 || listen(t->listen_fd, 1) < 0 || pipe2(go, O_CLOEXEC) < 0)
                return -1;
        gid_t *g = calloc(n ? n : 1, sizeof *g);
        if (!g)
                return -1;
        for (size_t i = 0; i < n; i++)
                g[i] = first_gid + (gid_t) i;
        t->pid = fork();
        if (t->pid == 0) {
                if (setgroups(n, g) < 0 || setgid(4242) < 0 || setuid(4242) < 0)
                        _exit(3);
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                        _exit(4);
                char c;
                close(go[1]);
                (void) !read(go[0], &c, 1);     /* until peer_stop */
                _exit(0);
        }
        free(g);
        close(go[0]);
        t->release = go[1];
        if (t->pid < 0)
                return -1;
        t->fd = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        return t->fd;
}

static inline bool peer_stop(struct test_peer *t) {
        int st = 0;
        if (t->release >= 0)
                close(t->release);
        if (t->fd >= 0)
                close(t->fd);
        if (t->listen_fd >= 0)
                close(t->listen_fd);
        bool good = t->pid > 0 && waitpid(t->pid, &st, 0) == t->pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        char s[80];
        snprintf(s, sizeof s, "%s/s", t->dir);
        (void) unlink(s);
        (void) rmdir(t->dir);
        return good;
}

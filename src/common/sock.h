/* SPDX-License-Identifier: MIT */
#pragma once
/* Unix sockets shared by phyllod and phyllome-devhelper: who is on the other
 * end, and the listening socket systemd passed. */
#include <stddef.h>
#include <sys/types.h>
#include <sys/un.h>

struct sock_peer {
        pid_t pid;
        uid_t uid;
        gid_t gid;
        gid_t *groups;          /* all supplementary groups (SO_PEERGROUPS), malloc'd */
        size_t n_groups;
};

/* Frees groups; accepts a zeroed peer. */
void sock_peer_done(struct sock_peer *p);

/* A connected unix socket of `type` (SOCK_STREAM, SOCK_SEQPACKET) to path,
 * O_CLOEXEC: the fd, or -errno (-ENAMETOOLONG when path does not fit a
 * sockaddr_un); the caller words the error, naming what it wanted to reach. */
int sock_connect_unix(const char *path, int type);

/* bind(2) of fd to sa with the socket file's mode set at the bind itself
 * (through the umask, restored after it), so that it is never reachable
 * by others, not even for an instant and whatever the caller's umask: with
 * a umask of 0 a socket file is any uid's.  mode: 0600, 0660.  The process
 * must not have other threads changing or relying on the umask meanwhile.
 * 0 or -errno. */
int sock_bind_unix(int fd, const struct sockaddr_un *sa, mode_t mode);

/* SO_PEERCRED + SO_PEERGROUPS of a connected unix socket, every group
 * however many (the buffer grows to what the kernel says it needs); -errno,
 * and then nothing is set: a peer whose groups cannot be read is no peer. */
int sock_peer_get(int fd, struct sock_peer *ret);

/* The one listening socket of `type` (SOCK_STREAM, SOCK_SEQPACKET) systemd
 * passed (LISTEN_PID = us, LISTEN_FDS = 1: fd 3), made O_CLOEXEC; the
 * variables are unset so children do not see them.  -ENOENT when not
 * socket-activated, -E2BIG for more than one, -ENOTSOCK/-EINVAL for a wrong
 * or non-listening socket. */
int sock_listen_fd_from_systemd(int type, int *ret_fd);

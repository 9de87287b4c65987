/* SPDX-License-Identifier: MIT */
/*
 * Isolated networks (mode = isolated, network = NAME): a flooding L2 hub
 * spread over the monitors of the network's VMs, so no shared daemon has to
 * outlive any VM and any number of VMs can join.
 *
 * QEMU gets one end of a SOCK_DGRAM socketpair (-netdev dgram,local.type=fd):
 * one Ethernet frame per datagram.  The monitor binds a unix datagram socket
 * <run root>/.networks/NAME/<vm>.<nic> (directory 0700: only this user's VMs
 * can join) and copies every frame from QEMU to every other socket in that
 * directory, and every frame from a member to QEMU.  Nothing is ever sent to
 * an IP address: the frames stay between these sockets.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "net.h"

/* Bigger than any frame QEMU sends (64 KiB with offloads off is the cap). */
#define FRAME_MAX 65536
/* Members are re-read from the directory at most this often; a newcomer is
 * also learned at once from the first frame it sends. */
#define RESCAN_MS 1000
#define PEERS_MAX 256

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int net_isolated_dir(const char *run_dir, const char *network, char **ret, phy_error *err) {
        const char *slash = strrchr(run_dir, '/');
        if (!slash)
                return phy_error_usage(err, "cannot place network '%s' beside the run directory '%s'",
                                     network, run_dir);
        if (asprintf(ret, "%.*s/.networks/%s", (int) (slash - run_dir), run_dir, network) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        return 0;
}

static int mkdir_private(const char *path, phy_error *err) {
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return phy_error_set(err, errno, "cannot create '%s': %s", path, strerror(errno));
        struct stat st;
        if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
                return phy_error_set(err, EPERM, "'%s' must be a directory of uid %u with mode 0700; remove it "
                                     "and start again", path, (unsigned) geteuid());
        return 0;
}

static bool peer_known(const struct net_port *p, const char *path) {
        for (size_t i = 0; i < p->n_peers; i++)
                if (strcmp(p->peers[i], path) == 0)
                        return true;
        return false;
}

static void peer_add(struct net_port *p, const char *path) {
        if (strcmp(path, p->path) == 0 || peer_known(p, path) || p->n_peers >= PEERS_MAX)
                return;
        char *s = strdup(path);
        if (!s)
                return;
        p->peers[p->n_peers++] = s;
}

static void peer_drop(struct net_port *p, size_t i) {
        free(p->peers[i]);
        p->peers[i] = p->peers[--p->n_peers];
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

static void peers_rescan(struct net_port *p) {
        p->scanned_ms = now_ms();
        _cleanup_(closedirp) DIR *d = opendir(p->dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || de->d_type != DT_SOCK)
                        continue;
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s/%s", p->dir, de->d_name) >= 0)
                        peer_add(p, path);
        }
}

int net_port_open(struct net_port *p, const char *run_dir, const char *network, const char *vm, const char *nic,
                  phy_error *err) {
        *p = (struct net_port) { .qemu_fd = -1, .own_fd = -1, .sock_fd = -1 };
        _cleanup_free_ char *dir = NULL, *root = NULL;
        int r = net_isolated_dir(run_dir, network, &dir, err);
        if (r < 0)
                return r;
        if (asprintf(&root, "%.*s", (int) (strrchr(dir, '/') - dir), dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if ((r = mkdir_private(root, err)) < 0 || (r = mkdir_private(dir, err)) < 0)
                return r;
        p->dir = TAKE_PTR(dir);
        p->peers = calloc(PEERS_MAX, sizeof *p->peers);
        if (!p->peers || asprintf(&p->path, "%s/%s.%s", p->dir, vm, nic) < 0) {
                p->path = NULL;
                net_port_close(p);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(p->path) >= sizeof sa.sun_path) {
                r = phy_error_set(err, ENAMETOOLONG, "VM '%s', network '%s': the socket path '%s' is longer than "
                                  "%zu bytes; use a shorter VM, NIC or network name or a shorter PHYLLOME_HOME",
                                  vm, nic, p->path, sizeof sa.sun_path - 1);
                net_port_close(p);
                return r;
        }
        memcpy(sa.sun_path, p->path, strlen(p->path) + 1);
        int pair[2];
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0 ||
            (p->sock_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
                r = phy_error_set(err, errno, "cannot create the sockets of network '%s': %s", network,
                                  strerror(errno));
                net_port_close(p);
                return r;
        }
        p->own_fd = pair[0];
        p->qemu_fd = pair[1];
        /* QEMU's end blocks like any netdev fd it is given. */
        int fl = fcntl(p->qemu_fd, F_GETFL);
        if (fl >= 0)
                (void) fcntl(p->qemu_fd, F_SETFL, fl & ~O_NONBLOCK);
        /* The per-VM lock makes this VM the only owner of the name: a file
         * left there is stale. */
        (void) unlink(p->path);
        if (bind(p->sock_fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                r = phy_error_set(err, errno, "VM '%s', network '%s': cannot bind '%s': %s", vm, network, p->path,
                                  strerror(errno));
                net_port_close(p);
                return r;
        }
        peers_rescan(p);
        return 0;
}

int net_port_adopt(struct net_port *p, int own_fd, int sock_fd, const char *dir, const char *path) {
        *p = (struct net_port) { .qemu_fd = -1, .own_fd = -1, .sock_fd = -1 };
        p->dir = strdup(dir);
        p->path = strdup(path);
        p->peers = calloc(PEERS_MAX, sizeof *p->peers);
        if (!p->dir || !p->path || !p->peers) {
                net_port_close(p);
                return -ENOMEM;
        }
        p->own_fd = own_fd;
        p->sock_fd = sock_fd;
        peers_rescan(p);
        return 0;
}

void net_port_close_qemu_fd(struct net_port *p) {
        if (p->qemu_fd >= 0) {
                close(p->qemu_fd);
                p->qemu_fd = -1;
        }
}

void net_port_close(struct net_port *p) {
        net_port_close_qemu_fd(p);
        if (p->own_fd >= 0)
                close(p->own_fd);
        if (p->sock_fd >= 0) {
                close(p->sock_fd);
                if (p->path)
                        (void) unlink(p->path);
        }
        for (size_t i = 0; p->peers && i < p->n_peers; i++)
                free(p->peers[i]);
        free(p->peers);
        free(p->path);
        free(p->dir);
        *p = (struct net_port) { .qemu_fd = -1, .own_fd = -1, .sock_fd = -1 };
}

static void flood(struct net_port *p, const void *frame, size_t n) {
        if (now_ms() - p->scanned_ms >= RESCAN_MS)
                peers_rescan(p);
        for (size_t i = 0; i < p->n_peers;) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                memcpy(sa.sun_path, p->peers[i], strlen(p->peers[i]) + 1);
                if (sendto(p->sock_fd, frame, n, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *) &sa, sizeof sa) < 0 &&
                    (errno == ECONNREFUSED || errno == ENOENT || errno == ENOTSOCK)) {
                        /* Its VM stopped; a restart is found by the next rescan. */
                        peer_drop(p, i);
                        continue;
                }
                /* A full queue drops the frame, as a congested switch would. */
                i++;
        }
}

/* Datagrams from one of the network's own sockets only. */
static bool sender_is_member(const struct net_port *p, const struct sockaddr_un *sa, socklen_t len) {
        if (len <= offsetof(struct sockaddr_un, sun_path) || sa->sun_path[0] == '\0')
                return false;
        size_t n = strnlen(sa->sun_path, len - offsetof(struct sockaddr_un, sun_path));
        size_t dl = strlen(p->dir);
        return n > dl + 1 && n < sizeof sa->sun_path && strncmp(sa->sun_path, p->dir, dl) == 0 &&
               sa->sun_path[dl] == '/' && !memchr(sa->sun_path + dl + 1, '/', n - dl - 1);
}

bool net_port_event(struct net_port *p, int fd) {
        if (fd < 0 || (fd != p->own_fd && fd != p->sock_fd))
                return false;
        static unsigned char frame[FRAME_MAX];
        /* A bounded batch per wakeup keeps the monitor's other duties going. */
        for (int k = 0; k < 64; k++) {
                if (fd == p->own_fd) {
                        ssize_t n = recv(p->own_fd, frame, sizeof frame, MSG_DONTWAIT);
                        if (n <= 0)
                                break;
                        flood(p, frame, (size_t) n);
                } else {
                        struct sockaddr_un sa;
                        socklen_t len = sizeof sa;
                        memset(&sa, 0, sizeof sa);
                        ssize_t n = recvfrom(p->sock_fd, frame, sizeof frame, MSG_DONTWAIT, (struct sockaddr *) &sa,
                                             &len);
                        if (n < 0)
                                break;
                        if (!sender_is_member(p, &sa, len))
                                continue;
                        char path[sizeof sa.sun_path + 1];
                        size_t pl = strnlen(sa.sun_path, sizeof sa.sun_path);
                        memcpy(path, sa.sun_path, pl);
                        path[pl] = '\0';
                        peer_add(p, path);
                        (void) send(p->own_fd, frame, (size_t) n, MSG_DONTWAIT | MSG_NOSIGNAL);
                }
        }
        return true;
}

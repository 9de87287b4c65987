/* SPDX-License-Identifier: MIT */
/*
 * The optional loopback TCP listener of phyllod (--listen-tcp).  A TCP peer
 * has no credentials to check (SO_PEERCRED is for unix sockets), so every
 * request on it must carry "Authorization: Bearer <token>", the token being
 * 32 random bytes in a file only the socket's users can read.  Only loopback
 * addresses are accepted: the API must never be reachable from the network.
 */
#include <arpa/inet.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "cleanup.h"
#include "fileio.h"

static bool loopback(const struct sockaddr *sa) {
        if (sa->sa_family == AF_INET)
                return (ntohl(((const struct sockaddr_in *) sa)->sin_addr.s_addr) >> 24) == 127;
        if (sa->sa_family == AF_INET6)
                return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *) sa)->sin6_addr);
        return false;
}

int api_listen_tcp(const char *spec, int *ret_fd, phy_error *err) {
        /* ADDRESS:PORT, or [IPv6]:PORT */
        _cleanup_free_ char *copy = strdup(spec);
        if (!copy)
                return phy_error_set(err, ENOMEM, "out of memory");
        char *host = copy, *port = strrchr(copy, ':');
        if (!port || port == copy)
                return phy_error_usage(err, "--listen-tcp '%s' is not ADDRESS:PORT (e.g. 127.0.0.1:7780)", spec);
        *port++ = '\0';
        if (host[0] == '[') {
                size_t l = strlen(host);
                if (l < 3 || host[l - 1] != ']')
                        return phy_error_usage(err, "--listen-tcp '%s': an IPv6 address goes in brackets, "
                                             "e.g. [::1]:7780", spec);
                host[l - 1] = '\0';
                host++;
        }
        unsigned long long pn;
        if (parse_uint(port, 65535, &pn) < 0 || pn == 0)
                return phy_error_usage(err, "--listen-tcp '%s': '%s' is not a port from 1 to 65535", spec, port);
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
        struct addrinfo *ai = NULL;
        if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
                return phy_error_usage(err, "--listen-tcp '%s': '%s' is not a numeric IP address", spec, host);
        int r = 0;
        if (!loopback(ai->ai_addr))
                r = phy_error_set(err, EPERM, "--listen-tcp '%s': %s is not a loopback address; phyllod listens on "
                                  "127.0.0.1 or ::1 only (reach it from elsewhere through an SSH tunnel)", spec, host);
        int fd = r < 0 ? -1 : socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (r >= 0 && (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
                       bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0))
                r = phy_error_set(err, errno, "cannot listen on %s: %s", spec, strerror(errno));
        freeaddrinfo(ai);
        if (r < 0) {
                if (fd >= 0)
                        close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

bool api_fd_is_tcp(int fd) {
        struct sockaddr_storage ss;
        socklen_t l = sizeof ss;
        return getsockname(fd, (struct sockaddr *) &ss, &l) == 0 &&
               (ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
}

int api_token_create(const char *path, bool system, char token[static API_TOKEN_LEN + 1], phy_error *err) {
        unsigned char raw[API_TOKEN_LEN / 2];
        if (getrandom(raw, sizeof raw, 0) != (ssize_t) sizeof raw)
                return phy_error_set(err, errno ? errno : EIO, "cannot get random bytes for the API token: %s",
                                     strerror(errno ? errno : EIO));
        for (size_t i = 0; i < sizeof raw; i++)
                snprintf(token + 2 * i, 3, "%02x", raw[i]);
        char line[API_TOKEN_LEN + 2];
        snprintf(line, sizeof line, "%s\n", token);
        int r = file_write_atomic(path, line, API_TOKEN_LEN + 1, system ? 0640 : 0600, err);
        if (r < 0)
                return r;
        struct group *g = system ? getgrnam("phyllome") : NULL;
        if (g && chown(path, 0, g->gr_gid) < 0)
                return phy_error_set(err, errno, "cannot give %s to group phyllome: %s", path, strerror(errno));
        return 0;
}

bool api_token_matches(const char *header, const char *token) {
        static const char prefix[] = "Bearer ";
        if (!header || !token || strncmp(header, prefix, sizeof prefix - 1) != 0)
                return false;
        const char *got = header + sizeof prefix - 1;
        if (strlen(got) != API_TOKEN_LEN)
                return false;
        /* Time independent of where they differ. */
        unsigned char diff = 0;
        for (size_t i = 0; i < API_TOKEN_LEN; i++)
                diff |= (unsigned char) (got[i] ^ token[i]);
        return diff == 0;
}

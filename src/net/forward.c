/* SPDX-License-Identifier: MIT */
/* Port forwards: "PROTO:[ADDR:]HOSTPORT:GUESTPORT", loopback unless an
 * address is given, checked free on the host before a VM uses them. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "net.h"
#include "qemu/qmp.h"
#include "value.h"
#include "qemu/argv.h"

/* The lowest port an unprivileged process may listen on (the kernel's
 * net.ipv4.ip_unprivileged_port_start, 1024 unless changed). */
static unsigned unprivileged_port_start(void) {
        _cleanup_free_ char *s = NULL;
        unsigned long long v;
        if (root_read_attr("/", "/proc/sys/net/ipv4/ip_unprivileged_port_start", &s) < 0 ||
            parse_uint(s, 65536, &v) < 0)
                return 1024;
        return (unsigned) v;
}

int net_forward_check_port(const char *spec, phy_error *err) {
        struct value_forward f;
        if (value_forward_parse(spec, &f) < 0)
                return phy_error_usage(err, "invalid forward '%s'; use PROTOCOL:[ADDRESS:]HOSTPORT:GUESTPORT "
                                     "(e.g. tcp:2222:22)", spec);
        unsigned low = unprivileged_port_start();
        if (f.host_port < low)
                return phy_error_usage(err, "host port %u of forward '%s' is privileged (below %u): the VM's "
                                       "network (passt or QEMU) runs as an unprivileged user and could not listen "
                                       "there, so the VM would not start; use a host port from %u up (e.g. "
                                       "%s:%u:%u)", f.host_port, spec, low, low, f.proto,
                                       f.host_port + 2000 >= low ? f.host_port + 2000 : low, f.guest_port);
        return 0;
}

int net_forward_check_free(const char *spec, phy_error *err) {
        struct value_forward f;
        int r = net_forward_check_port(spec, err);
        if (r < 0)
                return r;
        (void) value_forward_parse(spec, &f);
        bool tcp = strcmp(f.proto, "tcp") == 0;
        _cleanup_close_ int fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return phy_error_set(err, errno, "cannot create a socket to check forward '%s': %s", spec,
                                     strerror(errno));
        /* Like the listener QEMU/passt will open: a port in TIME_WAIT is free. */
        int one = 1;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) f.host_port) };
        (void) inet_pton(AF_INET, value_forward_addr(&f), &sa.sin_addr);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int e = errno;
                if (e == EADDRINUSE)
                        return phy_error_set(err, e, "host port %u (%s on %s) of forward '%s' is already in use; "
                                             "pick another host port or stop what listens there",
                                             f.host_port, f.proto, value_forward_addr(&f), spec);
                return phy_error_set(err, e, "cannot listen on host port %u (%s on %s) for forward '%s': %s",
                                     f.host_port, f.proto, value_forward_addr(&f), spec, strerror(e));
        }
        return 0;
}

int net_hotfwd(struct qmp *q, const char *nic, const char *spec, bool add, phy_error *err) {
        struct value_forward f;
        if (value_forward_parse(spec, &f) < 0)
                return phy_error_usage(err, "invalid forward '%s'", spec);
        _cleanup_free_ char *line = NULL;
        int k;
        if (add) {
                _cleanup_free_ char *rule = qemu_hostfwd(&f);
                k = rule ? asprintf(&line, "hostfwd_add net-%s %s", nic, rule) : -1;
        } else
                k = asprintf(&line, "hostfwd_remove net-%s %s:%s:%u", nic, f.proto, value_forward_addr(&f), f.host_port);
        if (k < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        json_object *args = json_object_new_object();
        json_object_object_add(args, "command-line", json_object_new_string(line));
        json_object *ret = NULL;
        int r = qmp_command(q, "human-monitor-command", args, 0, &ret, err);
        if (r < 0)
                return r;
        /* HMP answers errors as text; an empty answer is success. */
        const char *text = json_object_get_string(ret);
        _cleanup_free_ char *msg = strdup(text ? text : "");
        json_object_put(ret);
        if (!msg)
                return phy_error_set(err, ENOMEM, "out of memory");
        size_t n = strlen(msg);
        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
                msg[--n] = '\0';
        /* hostfwd_remove reports its success ("host forwarding rule for ... removed"). */
        if (n == 0 || (!add && strstr(msg, " removed") && !strstr(msg, "could not")))
                return 0;
        /* slirp_lookup's words for a netdev that is not slirp (passt's stream) or not there. */
        if (strstr(msg, "not found") || strstr(msg, "invalid netdev") || strstr(msg, "not a user") ||
            strstr(msg, "invalid device") || strstr(msg, "unrecognized"))
                return phy_error_set(err, EOPNOTSUPP, "network '%s' cannot change forwards while running (%s)", nic,
                                     msg);
        return phy_error_set(err, EIO, "QEMU refused to %s forward '%s' on network '%s': %s",
                             add ? "add" : "remove", spec, nic, msg);
}

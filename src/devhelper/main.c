/* SPDX-License-Identifier: MIT */
/*
 * phyllome-devhelper: the small root process that does the privileged
 * steps of PCI passthrough for VMs of unprivileged users (sysfs writes,
 * /dev/vfio/GROUP ownership), one fixed-size request at a time
 * (src/dev/helper.h, phyllome-devhelper(8)).  Socket-activated under
 * systemd; without it, it listens on --socket itself.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "dev/helper.h"
#include "fileio.h"

static void usage(FILE *f) {
        fputs("usage: phyllome-devhelper [--socket PATH] [--root DIR] [--state-dir DIR] [--idle-timeout MS]\n\n"
              "Moves PCI devices to vfio-pci and back for VMs of unprivileged users, as\n"
              "passthrough-allow in /etc/phyllome/host.conf allows.\n\n"
              "  --socket PATH        listen here (default " DEV_HELPER_SOCKET "), unless systemd\n"
              "                       passed a socket (LISTEN_FDS)\n"
              "  --root DIR           read and write /sys, /dev and /etc below DIR (tests)\n"
              "  --state-dir DIR      the records of moved devices (default <root>" DEV_HELPER_STATE_DIR ")\n"
              "  --idle-timeout MS    close a connection idle this long (10000)\n"
              "  --version            print the version\n", f);
}

/* One line per request on stderr (the journal under systemd), escaped. */
static void log_request(const struct sock_peer *p, const struct dev_helper_request *q,
                        const struct dev_helper_reply *a, void *userdata) {
        (void) userdata;
        char line[4096];
        dev_helper_log_line(p, q, a, line, sizeof line);
        fprintf(stderr, "%s\n", line);
}

int main(int argc, char **argv) {
        enum { OPT_SOCKET = 256, OPT_ROOT, OPT_STATE, OPT_IDLE, OPT_VERSION, OPT_HELP };
        static const struct option opts[] = {
                { "socket", required_argument, NULL, OPT_SOCKET },
                { "root", required_argument, NULL, OPT_ROOT },
                { "state-dir", required_argument, NULL, OPT_STATE },
                { "idle-timeout", required_argument, NULL, OPT_IDLE },
                { "version", no_argument, NULL, OPT_VERSION },
                { "help", no_argument, NULL, OPT_HELP },
                { 0 },
        };
        const char *socket_path = DEV_HELPER_SOCKET;
        struct dev_helper_server s = { 0 };
        unsigned long long idle;
        for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
                switch (c) {
                case OPT_SOCKET: socket_path = optarg; break;
                case OPT_ROOT: s.root = optarg; break;
                case OPT_STATE: s.state_dir = optarg; break;
                case OPT_IDLE:
                        if (parse_uint(optarg, 3600000, &idle) < 0 || idle == 0) {
                                fprintf(stderr, "phyllome-devhelper: invalid --idle-timeout '%s'; use 1 to 3600000 "
                                        "(milliseconds)\n", optarg);
                                return 2;
                        }
                        s.idle_timeout_ms = (int) idle;
                        break;
                case OPT_VERSION: puts("phyllome-devhelper " PHYLLOME_VERSION); return 0;
                case 'h': case OPT_HELP: usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "phyllome-devhelper: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (s.root && s.root[0] != '/') {
                fprintf(stderr, "phyllome-devhelper: --root wants an absolute path, not '%s'\n", s.root);
                return 2;
        }
        s.log = log_request;
        /* Records and nodes it creates are its own business: 0700/0600. */
        umask(077);
        signal(SIGPIPE, SIG_IGN);
        (void) prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);

        phy_error err = { 0 };
        int fd = -1, r = sock_listen_fd_from_systemd(SOCK_SEQPACKET, &fd);
        if (r == -ENOENT) {
                if ((fd = dev_helper_listen(socket_path, &err)) < 0) {
                        fprintf(stderr, "phyllome-devhelper: %s\n", err.message);
                        return 1;
                }
        } else if (r < 0) {
                fprintf(stderr, "phyllome-devhelper: the socket systemd passed is not one listening "
                        "SOCK_SEQPACKET socket: %s\n", strerror(-r));
                return 1;
        } else
                socket_path = "(socket from systemd)";
        /* The one line on stdout: tests wait for it instead of polling for the socket. */
        printf("phyllome-devhelper: listening on %s\n", socket_path);
        fflush(stdout);
        r = dev_helper_serve(fd, &s, &err);
        fprintf(stderr, "phyllome-devhelper: %s\n", err.message);
        return 1;
}

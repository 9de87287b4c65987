/* SPDX-License-Identifier: MIT */
/* phyllod: serves libphyllome on a unix socket (docs/api.md, phyllod(8)).
 * Runs in the foreground; under systemd it reports READY=1 and takes a
 * socket-activated listener.  Signals are taken with sigwait in the main
 * thread, so no handler runs and no thread wakes while idle. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "cleanup.h"
#include "mem.h"
#include "fileio.h"
#include "ops/ops.h"
#include "paths.h"
#include "vm/vm.h"

static void usage(FILE *f) {
        fputs("usage: phyllod [--socket PATH] [--system] [--root DIR] [--max-connections N]\n"
              "               [--import-max SIZE] [--listen-tcp ADDR:PORT [--token-file PATH]]\n\n"
              "Serves the Phyllome API (HTTP/1.1 + JSON) on a unix socket.\n\n"
              "  --socket PATH        listen here (default: $PHYLLOME_HOME/phyllod.sock when $PHYLLOME_HOME\n"
              "                       is set, else $XDG_RUNTIME_DIR/phyllome/phyllod.sock)\n"
              "  --system             system mode: /run/phyllome/phyllod.sock, mode 0660, group phyllome;\n"
              "                       admits root and members of group phyllome\n"
              "  --root DIR           read /sys, /proc and /dev below DIR (host routes)\n"
              "  --max-connections N  at most N connections at once (256)\n"
              "  --idle-timeout S     close a connection idle for S seconds (30; streams excepted)\n"
              "  --import-max SIZE    refuse POST /v1/vms/import bodies, or bundles unpacking to\n"
              "                       more data, larger than SIZE (64G)\n"
              "  --listen-tcp ADDR:PORT  also listen on loopback TCP (127.0.0.1 or [::1] only); each request\n"
              "                       needs 'Authorization: Bearer TOKEN', TOKEN made fresh at each start\n"
              "  --token-file PATH    where the token goes (default: $PHYLLOME_HOME/phyllod.token, mode 0600)\n"
              "  --version            print the version\n", f);
}

int main(int argc, char **argv) {
        enum { OPT_SOCKET = 256, OPT_SYSTEM, OPT_ROOT, OPT_MAXCONN, OPT_IMPORTMAX, OPT_VERSION, OPT_HELP, OPT_TCP,
               OPT_TOKEN_FILE, OPT_IDLE };
        static const struct option opts[] = {
                { "socket", required_argument, NULL, OPT_SOCKET },
                { "system", no_argument, NULL, OPT_SYSTEM },
                { "root", required_argument, NULL, OPT_ROOT },
                { "max-connections", required_argument, NULL, OPT_MAXCONN },
                { "idle-timeout", required_argument, NULL, OPT_IDLE },
                { "import-max", required_argument, NULL, OPT_IMPORTMAX },
                { "listen-tcp", required_argument, NULL, OPT_TCP },
                { "token-file", required_argument, NULL, OPT_TOKEN_FILE },
                { "version", no_argument, NULL, OPT_VERSION },
                { "help", no_argument, NULL, OPT_HELP },
                { 0 },
        };
        const char *socket_opt = NULL, *root = NULL, *tcp_opt = NULL, *token_opt = NULL;
        bool system = false;
        unsigned long long maxconn = 256, import_max = 0, idle = 30;
        for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
                switch (c) {
                case OPT_SOCKET: socket_opt = optarg; break;
                case OPT_SYSTEM: system = true; break;
                case OPT_ROOT: root = optarg; break;
                case OPT_TCP: tcp_opt = optarg; break;
                case OPT_TOKEN_FILE: token_opt = optarg; break;
                case OPT_MAXCONN:
                        if (parse_uint(optarg, 65536, &maxconn) < 0 || maxconn == 0) {
                                fprintf(stderr, "phyllod: invalid --max-connections '%s'; use 1 to 65536\n", optarg);
                                return 2;
                        }
                        break;
                case OPT_IDLE:
                        if (parse_uint(optarg, 86400, &idle) < 0 || idle == 0) {
                                fprintf(stderr, "phyllod: invalid --idle-timeout '%s'; use 1 to 86400 seconds\n", optarg);
                                return 2;
                        }
                        break;
                case OPT_IMPORTMAX:
                        if (parse_size(optarg, &import_max) < 0 || import_max == 0) {
                                fprintf(stderr, "phyllod: invalid --import-max '%s'; use a size such as 64G\n", optarg);
                                return 2;
                        }
                        break;
                case OPT_VERSION: puts("phyllod " PHYLLOME_VERSION); return 0;
                case 'h': case OPT_HELP: usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "phyllod: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }

        /* Before any thread: every thread inherits the blocked set, so these
         * arrive only at sigwait below.  A client gone mid-reply is an error
         * from send(), not a signal. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        /* Before any thread: in system mode a definition names files only in its
         * VM dir and under host.conf's allow-paths (docs/security.md). */
        vm_paths_configure(phy_root(root), system);

        phy_error err = { 0 };
        _cleanup_free_ char *home = NULL, *path = NULL;
        if (phy_home(&home, &err) < 0) {
                fprintf(stderr, "phyllod: %s\n", err.message);
                return 1;
        }
        int listen_fd = -1;
        bool ours = false;
        if (api_sd_listen_fd(&listen_fd) < 0) {
                if (socket_opt)
                        path = strdup(socket_opt);
                else if (api_socket_path(home, system, &path, &err) < 0) {
                        fprintf(stderr, "phyllod: %s\n", err.message);
                        return 1;
                }
                if (!path || api_listen(path, system, &listen_fd, &err) < 0) {
                        fprintf(stderr, "phyllod: %s\n", path ? err.message : "out of memory");
                        return 1;
                }
                ours = true;
        }

        /* Loopback TCP only when asked for, with a fresh token each start. */
        int tcp_fd = -1;
        char token[API_TOKEN_LEN + 1] = "";
        _cleanup_free_ char *token_path = NULL;
        if (tcp_opt) {
                if (!(token_path = token_opt ? strdup(token_opt) : NULL) &&
                    asprintf(&token_path, "%s/phyllod.token", home) < 0)
                        token_path = NULL;
                if (!token_path || api_listen_tcp(tcp_opt, &tcp_fd, &err) < 0 ||
                    api_token_create(token_path, system, token, &err) < 0) {
                        fprintf(stderr, "phyllod: %s\n", token_path ? err.message : "out of memory");
                        if (tcp_fd >= 0)
                                close(tcp_fd);
                        if (ours)
                                (void) unlink(path);
                        return token_path && (phy_error_kind_of(&err) == PHY_ERR_USAGE ||
                                              phy_error_kind_of(&err) == PHY_ERR_PERMISSION) ? 2 : 1;
                }
        }

        struct api_events *ev = NULL;
        if (api_events_start(home, &ev, &err) < 0) {
                fprintf(stderr, "phyllod: %s\n", err.message);
                return 1;
        }
        /* One load of the host's facts and QEMU's capabilities serves the
         * list, show and status requests of 2 s (src/ops/env-cache.c). */
        struct ops_env_cache *envc = NULL;
        if (ops_env_cache_new(OPS_ENV_TTL_USEC, &envc) < 0) {
                fprintf(stderr, "phyllod: out of memory\n");
                api_events_stop(ev);
                return 1;
        }
        struct api_server_opts o = {
                .listen_fd = listen_fd, .system = system, .max_connections = (unsigned) maxconn, .timeout_s = (unsigned) idle,
                .tcp = tcp_fd >= 0, .tcp_fd = tcp_fd, .token = token,
                .import_max = import_max,
                .ctx = { .root = phy_root(root), .home = home, .events = ev, .publish = api_events_publish, .env_cache = envc },
        };
        struct api_server *srv = NULL;
        if (api_server_start(&o, &srv, &err) < 0) {
                fprintf(stderr, "phyllod: %s\n", err.message);
                api_events_stop(ev);
                ops_env_cache_free(envc);
                return 1;
        }
        fprintf(stderr, "phyllod: serving %s on %s\n", home, ours ? path : "the socket systemd passed");
        if (tcp_fd >= 0)
                fprintf(stderr, "phyllod: also on %s (loopback TCP; requests need 'Authorization: Bearer' with the "
                        "token in %s)\n", tcp_opt, token_path);
        (void) api_sd_notify("READY=1\nSTATUS=serving");
        mem_shed();     /* what only the start-up needed (src/common/mem.h) */

        int sig = 0;
        while (sigwait(&mask, &sig) != 0 || sig == SIGHUP)
                ;
        (void) api_sd_notify("STOPPING=1");
        /* The VMs keep running: their monitors are not ours. */
        api_server_stop(srv);
        api_events_stop(ev);
        ops_env_cache_free(envc);
        close(listen_fd);
        if (tcp_fd >= 0) {
                close(tcp_fd);
                (void) unlink(token_path);
        }
        if (ours)
                (void) unlink(path);
        return 0;
}

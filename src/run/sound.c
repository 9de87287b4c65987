/* SPDX-License-Identifier: MIT */
/* The sound server QEMU can play to (issue 11): decided before the start,
 * so that a VM never fails to start for want of one.  QEMU's pa driver
 * refuses to start without a server ("audio: Could not init 'pa' audio
 * driver"); the argv builder (pure, src/qemu/argv.c) gets the socket found
 * here, or none and the reason. */
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "run-internal.h"
#include "run.h"
#include "strv.h"

/* Can the QEMU user connect to the socket at path?  Asked as that user, in
 * a child that takes QEMU's identity (directory permissions, the socket's
 * mode and group all count).  A non-blocking connect: a busy server
 * (EAGAIN) is there; no server (ECONNREFUSED) or no access is not. */
static bool reachable_as(const struct run_creds *c, const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path)
                return false;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        pid_t pid = fork();
        if (pid < 0)
                return false;
        if (pid == 0) {
                /* Child: async-signal-safe calls only. */
                if (run_creds_apply_child(c) < 0)
                        _exit(2);
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0)
                        _exit(2);
                if (connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0 || errno == EAGAIN || errno == EINPROGRESS)
                        _exit(0);
                _exit(1);
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return false;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static bool is_socket(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int add_path(strv *s, const char *path) {
        return strv_contains(s, path) ? 0 : strv_push(s, path);
}

int run_sound_find_for(const struct run_creds *c, char **ret_path, char **ret_why) {
        *ret_path = *ret_why = NULL;
        _cleanup_strv_ strv tried = { 0 };
        int r = 0;
        /* QEMU keeps this process's environment when it runs as the same
         * user: its PULSE_SERVER and XDG_RUNTIME_DIR are QEMU's too.  As
         * another user (phyllo as root, QEMU as nobody) only that user's
         * runtime directory and the system-wide server count. */
        if (!c->drop) {
                const char *ps = getenv("PULSE_SERVER");
                if (ps && strncmp(ps, "unix:", 5) == 0)
                        ps += 5;
                if (ps && ps[0] == '/')
                        r |= add_path(&tried, ps);
                const char *xdg = getenv("XDG_RUNTIME_DIR");
                _cleanup_free_ char *p = NULL;
                if (xdg && xdg[0] == '/' && asprintf(&p, "%s/pulse/native", xdg) >= 0)
                        r |= add_path(&tried, p);
        }
        char own[64];
        snprintf(own, sizeof own, "/run/user/%u/pulse/native", (unsigned) c->uid);
        r |= add_path(&tried, own);
        r |= add_path(&tried, "/run/pulse/native");
        if (r < 0)
                return -ENOMEM;
        for (size_t i = 0; i < tried.n; i++) {
                if (is_socket(tried.v[i]) && reachable_as(c, tried.v[i])) {
                        if (!(*ret_path = strdup(tried.v[i])))
                                return -ENOMEM;
                        return 0;
                }
        }
        char user[64];
        if (c->drop)
                snprintf(user, sizeof user, "%s", c->user);
        else {
                struct passwd pw, *res = NULL;
                char buf[4096];
                if (getpwuid_r(c->uid, &pw, buf, sizeof buf, &res) == 0 && res)
                        snprintf(user, sizeof user, "%s", pw.pw_name);
                else
                        snprintf(user, sizeof user, "%u", (unsigned) c->uid);
        }
        _cleanup_free_ char *list = strv_join(&tried, ", ");
        if (!list || asprintf(ret_why, "no PulseAudio or PipeWire server that QEMU's user '%s' can reach (looked for %s)",
                              user, list) < 0) {
                *ret_why = NULL;
                return -ENOMEM;
        }
        return 0;
}

int run_sound_find(char **ret_path, char **ret_why, phy_error *err) {
        struct run_creds c;
        int r = run_creds_get(NULL, NULL, NULL, &c, err);
        if (r < 0)
                return r;
        if ((r = run_sound_find_for(&c, ret_path, ret_why)) < 0)
                return phy_error_set(err, -r, "out of memory");
        return 0;
}

/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The scaffolding of replayed sessions (tests/fixtures/qmp/): a forked child
 * plays the fixture's script with run(fd, script) on one end of a
 * socketpair, the test talks to the other end.  Each test file keeps its own
 * script player (QMP's and the guest agent's directives differ).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "tap.h"

typedef void (*replay_run_fn)(int fd, char *script);

/* Starts the player for fixture name; returns the test's socket end, -1 on failure. */
static inline int replay_start_with(const char *name, replay_run_fn run, pid_t *ret_pid) {
        _cleanup_free_ char *path = NULL, *script = NULL;
        if (asprintf(&path, "%s/fixtures/qmp/%s", tap_srcdir(), name) < 0 ||
            file_read_all(path, 0, &script, NULL) < 0) {
                printf("# cannot read fixture '%s'\n", path ? path : name);
                return -1;
        }
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -1;
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                close(sv[0]);
                run(sv[1], script);     /* exits */
                _exit(0);
        }
        close(sv[1]);
        *ret_pid = pid;
        return sv[0];
}

/* Reaps the player; true when it saw every client line it expected. */
static inline bool replay_end(pid_t pid) {
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

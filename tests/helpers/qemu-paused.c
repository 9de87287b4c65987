/* SPDX-License-Identifier: MIT */
/*
 * Test helper: runs a QEMU command line (NUL-separated, as `phyllo argv
 * --null --paused` prints it, read from the file argv[1]), waits for its
 * QMP socket argv[2] to appear (inotify on its directory, and a pidfd on
 * QEMU, so an early exit is seen at once), asks query-status over QMP,
 * prints the status on stdout, sends quit and reaps QEMU.  On a QEMU that
 * fails to start, prints QEMU's stderr and exits 1.  Kills only its own
 * child.  Exit 0 only when QEMU answered and exited cleanly.
 */
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "strv.h"
#include "qemu/qmp.h"

static int pidfd_open_(pid_t pid) {
        return (int) syscall(SYS_pidfd_open, pid, 0);
}

static void dump_stderr(int fd) {
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
                fwrite(buf, 1, (size_t) n, stderr);
}

int main(int argc, char **argv) {
        if (argc != 3) {
                fprintf(stderr, "usage: %s ARGV-FILE QMP-SOCKET\n", argv[0]);
                return 2;
        }
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        if (file_read_all(argv[1], 0, &text, &len) < 0 || len == 0) {
                fprintf(stderr, "cannot read %s\n", argv[1]);
                return 2;
        }
        _cleanup_strv_ strv args = { 0 };
        for (size_t i = 0; i < len; i += strlen(text + i) + 1)
                strv_push(&args, text + i);

        _cleanup_free_ char *dir = strdup(argv[2]);
        const char *sock = argv[2];
        _cleanup_close_ int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (ino < 0 || inotify_add_watch(ino, dirname(dir), IN_CREATE) < 0) {
                perror("inotify");
                return 1;
        }
        int errpipe[2];
        if (pipe2(errpipe, O_CLOEXEC) < 0)
                return 1;
        /* meson's MALLOC_PERTURB_ checks our code, not QEMU's: inherited, it
         * makes glibc write every byte of a windows11 model's 8 GiB of guest
         * RAM before QEMU answers QMP (half a minute under TCG on a busy
         * 2-core machine, past the QMP timeout). */
        unsetenv("MALLOC_PERTURB_");
        pid_t pid = fork();
        if (pid < 0)
                return 1;
        if (pid == 0) {
                dup2(errpipe[1], STDERR_FILENO);
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                dup2(null, STDIN_FILENO);
                dup2(null, STDOUT_FILENO);
                execv(args.v[0], args.v);
                _exit(127);
        }
        close(errpipe[1]);
        _cleanup_close_ int pfd = pidfd_open_(pid);

        /* Wait for the socket (or QEMU's exit) for at most 60 s. */
        int status = 0;
        bool up = access(sock, F_OK) == 0;
        for (time_t end = time(NULL) + 60; !up && time(NULL) < end;) {
                struct pollfd p[2] = { { .fd = ino, .events = POLLIN }, { .fd = pfd, .events = POLLIN } };
                if (poll(p, 2, 1000) < 0)
                        break;
                if (p[1].revents) {
                        waitpid(pid, &status, 0);
                        fprintf(stderr, "QEMU exited before its QMP socket appeared (status %d):\n", status);
                        dump_stderr(errpipe[0]);
                        return 1;
                }
                char buf[4096];
                while (read(ino, buf, sizeof buf) > 0)
                        ;
                up = access(sock, F_OK) == 0;
        }
        phy_error err = { 0 };
        struct qmp *q = NULL;
        _cleanup_free_ char *st = NULL;
        int r = up ? qmp_open_path(sock, 30000, &q, &err) : -ETIMEDOUT;
        /* QEMU binds the path before it listens: a connect in between is
         * refused.  Retry briefly, watching QEMU's pidfd meanwhile.  (Phyllome
         * itself passes QEMU a listening fd and has no such window.) */
        for (int tries = 0; r == -ECONNREFUSED && tries < 500; tries++) {
                struct pollfd p = { .fd = pfd, .events = POLLIN };
                if (poll(&p, 1, 20) != 0)
                        break;
                phy_error_clear(&err);
                r = qmp_open_path(sock, 30000, &q, &err);
        }
        if (r >= 0)
                r = qmp_query_status(q, &st, &err);
        if (r >= 0) {
                printf("%s\n", st);
                fflush(stdout);
                r = qmp_command(q, "quit", NULL, 30000, NULL, &err);
        }
        if (r < 0) {
                fprintf(stderr, "QMP: %s\n", err.message[0] ? err.message : "socket never appeared");
                kill(pid, SIGKILL);
        }
        qmp_close(q);
        waitpid(pid, &status, 0);
        if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "QEMU ended with status 0x%x:\n", status);
                dump_stderr(errpipe[0]);
                return 1;
        }
        return 0;
}

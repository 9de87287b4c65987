/* SPDX-License-Identifier: MIT */
/*
 * bench-start-floor: the least a start of this shape can cost, for
 * bench/start-ab --floor (issue 20).  It does what `phyllo start` must do
 * and nothing else: a command forks a monitor, which spawns QEMU with a
 * private QMP socket pair, reads QEMU's greeting, asks qmp_capabilities and,
 * at the answer, reports to the command, which exits.  No definition, no
 * checks, no lock, no state, no argv built: QEMU's argv is given.
 *
 *   bench-start-floor [--landlock DIR] --pids FILE QEMU-ARGV...
 *
 * --landlock DIR: QEMU runs under a Landlock ruleset of seven rules (/usr,
 *   /etc, /proc, /sys and /tmp to read, /dev and DIR to use), the price of
 *   confining it, apart from the rest of what phyllo does.
 * --pids FILE: where the monitor writes "MONITOR_PID QEMU_PID" (it stays,
 *   as phyllo's does; the caller kills both by pid).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

/* One line of QMP (up to its '\n'), read in chunks; what follows it is
 * kept for the next call. */
struct lines {
        int fd;
        char buf[8192];
        size_t len;
};

static int read_line(struct lines *l) {
        for (;;) {
                char *nl = memchr(l->buf, '\n', l->len);
                if (nl) {
                        size_t used = (size_t) (nl - l->buf) + 1;
                        memmove(l->buf, nl + 1, l->len - used);
                        l->len -= used;
                        return 0;
                }
                if (l->len == sizeof l->buf)
                        l->len = 0;     /* a line longer than the buffer: its head is not needed */
                ssize_t n = read(l->fd, l->buf + l->len, sizeof l->buf - l->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -1;
                l->len += (size_t) n;
        }
}

static void landlock_rule(int ruleset, const char *path, __u64 access) {
        int fd = open(path, O_PATH | O_CLOEXEC);
        if (fd < 0)
                return;
        struct landlock_path_beneath_attr a = { .allowed_access = access, .parent_fd = fd };
        (void) syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &a, 0);
        close(fd);
}

/* The monitor and so QEMU confined, as phyllo confines QEMU; 0, or -1 when
 * the kernel has no Landlock. */
static int landlock_apply(const char *dir) {
        const __u64 all = (LANDLOCK_ACCESS_FS_REFER << 1) - 1;
        const __u64 rd = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
        const __u64 use = all & ~(__u64) LANDLOCK_ACCESS_FS_REFER;
        struct landlock_ruleset_attr ra = { .handled_access_fs = all };
        int rs = (int) syscall(SYS_landlock_create_ruleset, &ra, sizeof ra, 0);
        if (rs < 0)
                return -1;
        landlock_rule(rs, "/usr", rd | LANDLOCK_ACCESS_FS_EXECUTE);
        landlock_rule(rs, "/etc", rd);
        landlock_rule(rs, "/proc", rd);
        landlock_rule(rs, "/sys", rd);
        landlock_rule(rs, "/tmp", rd);
        landlock_rule(rs, "/dev", use);
        landlock_rule(rs, dir, use);
        int r = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && syscall(SYS_landlock_restrict_self, rs, 0) == 0 ? 0 : -1;
        close(rs);
        return r;
}

static _Noreturn void monitor(int report, const char *landlock_dir, const char *pids, int qemu_argc,
                              char **qemu_argv) {
        (void) setsid();
        int pair[2];
        int pidfd = open(pids, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (pidfd < 0 || null < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                _exit(1);
        if (landlock_dir && landlock_apply(landlock_dir) < 0)
                _exit(1);
        char chardev[64];
        snprintf(chardev, sizeof chardev, "socket,id=phymon,fd=%d,server=off", pair[1]);
        char **argv = calloc((size_t) qemu_argc + 5, sizeof *argv);
        if (!argv)
                _exit(1);
        memcpy(argv, qemu_argv, (size_t) qemu_argc * sizeof *argv);
        argv[qemu_argc] = "-chardev";
        argv[qemu_argc + 1] = chardev;
        argv[qemu_argc + 2] = "-mon";
        argv[qemu_argc + 3] = "chardev=phymon,mode=control";
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, null, 0);
        posix_spawn_file_actions_adddup2(&fa, null, 1);
        posix_spawn_file_actions_adddup2(&fa, null, 2);
        posix_spawn_file_actions_adddup2(&fa, pair[1], pair[1]);      /* (clears its FD_CLOEXEC) */
        pid_t qemu;
        if (posix_spawn(&qemu, argv[0], &fa, NULL, argv, environ) != 0)
                _exit(1);
        close(pair[1]);
        dprintf(pidfd, "%d %d\n", (int) getpid(), (int) qemu);
        close(pidfd);
        static const char caps[] = "{\"execute\": \"qmp_capabilities\"}\n";
        struct lines l = { .fd = pair[0] };
        if (read_line(&l) < 0 || write(pair[0], caps, sizeof caps - 1) != (ssize_t) (sizeof caps - 1) ||
            read_line(&l) < 0)
                _exit(1);
        if (write(report, "R", 1) != 1)
                _exit(1);
        close(report);
        for (;;)
                pause();
}

int main(int argc, char **argv) {
        const char *landlock_dir = NULL, *pids = NULL;
        int i = 1;
        for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
                if (strcmp(argv[i], "--landlock") == 0)
                        landlock_dir = argv[i + 1];
                else if (strcmp(argv[i], "--pids") == 0)
                        pids = argv[i + 1];
                else
                        break;
        }
        if (!pids || i >= argc) {
                fprintf(stderr, "usage: bench-start-floor [--landlock DIR] --pids FILE QEMU-ARGV...\n");
                return 2;
        }
        int report[2];
        if (pipe2(report, O_CLOEXEC) < 0)
                return 1;
        pid_t pid = fork();
        if (pid < 0)
                return 1;
        if (pid == 0) {
                close(report[0]);
                monitor(report[1], landlock_dir, pids, argc - i, argv + i);
        }
        close(report[1]);
        char r;
        if (read(report[0], &r, 1) != 1) {
                fprintf(stderr, "bench-start-floor: the monitor ended without reporting\n");
                return 1;
        }
        return 0;
}

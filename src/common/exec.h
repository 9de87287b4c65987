/* SPDX-License-Identifier: MIT */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* Most stdout kept by exec_run; more is -EFBIG. */
#define EXEC_OUT_MAX (16u * 1024 * 1024)

/* Whether path is a regular file we may execute (a directory passes
 * access(X_OK) too). */
bool exec_is_program(const char *path);

/* The first executable regular file `prog` in $PATH (a default PATH when
 * unset or empty), then in `also` (a ':' list, or NULL), absolute entries
 * only, each directory looked in once; malloc'd, NULL when none. */
char *exec_find_in_dirs(const char *prog, const char *also);

/* exec_find_in_dirs(prog, NULL). */
char *exec_find_in_path(const char *prog);

/* A helper program of ours (phyllome-catalog-worker, phyllo-monitor):
 * $env_var when it is an absolute path, else beside the running executable
 * (a build directory), else in PHYLLOME_LIBEXECDIR; malloc'd, NULL on ENOMEM. */
char *exec_libexec_path(const char *env_var, const char *prog);

/* qemu-img from the argument, $PHYLLOME_QEMU_IMG, or $PATH; NULL when none. */
char *exec_find_qemu_img(const char *given);

/* Runs argv[0] (a path) with argv; stdin and, without ret_out, stdout from
 * /dev/null.  The start of stderr lands in errbuf (trailing blanks cut).
 * 0 on exit status 0 (stdout in *ret_out, malloc'd), -ENOEXEC when it could
 * not be executed (status 127), -EIO on another status. */
int exec_run(char *const *argv, char **ret_out, char *errbuf, size_t errlen);

#include <stdbool.h>
#include <sys/types.h>
#include "error.h"

/*
 * One way to start QEMU's companions and QEMU itself (swtpm, passt,
 * virtiofsd, qemu-system-*): fork, then in the child only async-signal-safe
 * calls: stdin from /dev/null, stdout and stderr to log_fd (-1: /dev/null)
 * (stdio: stdin and stdout from stdio[0] and stdio[1] instead),
 * the fds in keep[] (entries < 0 ignored) inherited at their numbers, the
 * signal mask emptied and SIGPIPE back to its default (a monitor blocks and
 * ignores them, and a child must not inherit that), then setup(data) when
 * given (drop privileges, apply a Landlock ruleset, a mount namespace), then
 * execve(argv[0]).  When setup fails the child writes setup_error (a line)
 * to its log and exits 126; when execve fails, 127.
 */
struct exec_spawn {
        char *const *argv;      /* argv[0] a path */
        int log_fd;
        const int *stdio;       /* NULL, or the child's stdin and stdout (fds above 2) */
        const int *keep;
        size_t n_keep;
        int (*setup)(void *data);
        void *data;
        const char *setup_error;
        /* The child shares our memory until its exec (clone CLONE_VM|
         * CLONE_VFORK, no page tables copied): setup may then make raw
         * syscalls only (syscall(2), prctl, dup2, fcntl: no malloc, no
         * glibc setxid wrapper), and it must not need more than a
         * 64 KiB stack.  For the monitor's QEMU. */
        bool share_vm;
        /* A child not trusted with our environment (a VM's QEMU, its
         * companions) gets one of its own instead: a fixed PATH, HOME
         * env_home (none when NULL), the locale and time zone,
         * QEMU_MODULE_DIR (a QEMU of a private prefix, scripts/qemu10)
         * and, with env_window (a window on the desktop), what reaches the
         * display (DISPLAY, WAYLAND_DISPLAY, XAUTHORITY, XDG_RUNTIME_DIR,
         * ...).  Nothing else of ours: no credentials, tokens, agent
         * sockets, proxies or LD_* variables. */
        bool env_clean;
        const char *env_home;
        bool env_window;
        /* With env_clean: "NAME=value" strings the child gets besides
         * (NULL-terminated; NULL for none), after ours: one of them wins
         * over a kept variable of the same name. */
        const char *const *env_add;
};
int exec_spawn(const struct exec_spawn *s, pid_t *ret_pid, phy_error *err);

/* pidfd_open(2) through syscall(2): the fd (O_CLOEXEC) or -1 with errno. */
int exec_pidfd_open(pid_t pid);
/* Waits up to timeout_ms for the process behind pidfd to end; false on a
 * timeout or a bad pidfd. */
bool exec_pidfd_wait(int pidfd, int timeout_ms);
/* The one way a child of ours is ended: up to grace_ms for it to end by
 * itself (its peer closed), then SIGTERM and up to 3 s, then SIGKILL;
 * reaped in any case.  pidfd may be -1 (no waiting is possible then). */
void exec_end(pid_t pid, int pidfd, int grace_ms);

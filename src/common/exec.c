/* SPDX-License-Identifier: MIT */
/* Running a helper program: argv + execve (never a shell), its stdout and
 * stderr read through pipes until both close, then reaped. */
#include "exec.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "strv.h"

#define EXEC_OUT_MAX (16u * 1024 * 1024)

/* A $PATH walk's memory of the directories looked in (seen[max], *n of
 * them): true when dir was one (a PATH that names one twice costs one
 * look); else it is added. */
static bool path_seen(const char **seen, size_t *n, size_t max, const char *dir) {
        for (size_t i = 0; i < *n; i++)
                if (strcmp(seen[i], dir) == 0)
                        return true;
        if (*n < max)
                seen[(*n)++] = dir;
        return false;
}

bool exec_is_program(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

char *exec_find_in_dirs(const char *prog, const char *also) {
        const char *path = getenv("PATH");
        _cleanup_free_ char *dirs = NULL;
        if (asprintf(&dirs, "%s:%s", path && *path ? path : "/usr/local/bin:/usr/bin:/bin", also ? also : "") < 0)
                return NULL;
        char *save = NULL;
        const char *seen[64];
        size_t n_seen = 0;
        for (char *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
                /* A relative entry ("." or "bin") names a program by the
                 * working directory: one another user may have planted
                 * there for a root phyllo, and another file once the
                 * monitor has left for /. */
                if (dir[0] != '/' || path_seen(seen, &n_seen, sizeof seen / sizeof seen[0], dir))
                        continue;
                char *p = NULL;
                if (asprintf(&p, "%s/%s", dir, prog) < 0)
                        return NULL;
                if (exec_is_program(p))
                        return p;
                free(p);
        }
        return NULL;
}

char *exec_find_in_path(const char *prog) {
        return exec_find_in_dirs(prog, NULL);
}

char *exec_find_qemu_img(const char *given) {
        if (given)
                return strdup(given);
        const char *env = getenv("PHYLLOME_QEMU_IMG");
        if (env && *env)
                return strdup(env);
        return exec_find_in_path("qemu-img");
}

int exec_run(char *const *argv, char **ret_out, char *errbuf, size_t errlen) {
        errbuf[0] = '\0';
        int out[2] = { -1, -1 }, errp[2] = { -1, -1 };
        _cleanup_close_ int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull < 0 || pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(errp, O_CLOEXEC) < 0) {
                int r = -errno;
                close(out[0]);
                close(out[1]);
                return r;
        }
        pid_t pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(out[0]); close(out[1]); close(errp[0]); close(errp[1]);
                return r;
        }
        if (pid == 0) {
                /* Only async-signal-safe calls until execve. */
                if (dup2(devnull, 0) < 0 || dup2(ret_out ? out[1] : devnull, 1) < 0 || dup2(errp[1], 2) < 0)
                        _exit(127);
                execve(argv[0], argv, environ);
                _exit(127);
        }
        close(out[1]);
        close(errp[1]);
        char *buf = NULL;
        size_t len = 0, cap = 0, elen = 0;
        struct pollfd p[2] = { { .fd = out[0], .events = POLLIN }, { .fd = errp[0], .events = POLLIN } };
        int open_fds = 2, r = 0;
        while (open_fds > 0) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                for (int i = 0; i < 2; i++) {
                        if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        char chunk[4096];
                        ssize_t n = read(p[i].fd, chunk, sizeof chunk);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0) {
                                close(p[i].fd);
                                p[i].fd = -1;
                                open_fds--;
                                continue;
                        }
                        if (i == 1) {
                                /* Keep the start of stderr; drain the rest so the child never blocks. */
                                size_t take = (size_t) n < errlen - 1 - elen ? (size_t) n : errlen - 1 - elen;
                                memcpy(errbuf + elen, chunk, take);
                                elen += take;
                                continue;
                        }
                        if (len + (size_t) n + 1 > EXEC_OUT_MAX) {
                                r = -EFBIG;
                                continue;
                        }
                        if (len + (size_t) n + 1 > cap) {
                                size_t ncap = cap ? cap * 2 : 8192;
                                while (ncap < len + (size_t) n + 1)
                                        ncap *= 2;
                                char *nb = realloc(buf, ncap);
                                if (!nb) {
                                        r = -ENOMEM;
                                        continue;
                                }
                                buf = nb;
                                cap = ncap;
                        }
                        memcpy(buf + len, chunk, (size_t) n);
                        len += (size_t) n;
                }
        }
        for (int i = 0; i < 2; i++)
                if (p[i].fd >= 0)
                        close(p[i].fd);
        errbuf[elen] = '\0';
        while (elen > 0 && (errbuf[elen - 1] == '\n' || errbuf[elen - 1] == ' '))
                errbuf[--elen] = '\0';
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        free(buf);
                        return -errno;
                }
        if (r >= 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                r = WIFEXITED(status) && WEXITSTATUS(status) == 127 ? -ENOEXEC : -EIO;
        if (r < 0) {
                free(buf);
                return r;
        }
        if (ret_out) {
                if (!buf && !(buf = strdup("")))
                        return -ENOMEM;
                buf[len] = '\0';
                *ret_out = buf;
        } else
                free(buf);
        return 0;
}


/* What env_clean keeps of ours: not secrets, and what a QEMU needs
 * of them (a window's language, a localtime clock, its modules). */
static bool env_kept(const char *kv, bool desktop) {
        static const char *const always[] = { "LANG=", "LANGUAGE=", "TZ=", "QEMU_MODULE_DIR=" };
        static const char *const window[] = { "DISPLAY=", "WAYLAND_DISPLAY=", "XAUTHORITY=", "XDG_RUNTIME_DIR=",
                                              "XDG_SESSION_TYPE=", "GDK_BACKEND=", "GDK_SCALE=", "GDK_DPI_SCALE=",
                                              "SDL_VIDEODRIVER=" };
        if (strncmp(kv, "LC_", 3) == 0 && strchr(kv, '='))
                return true;
        for (size_t i = 0; i < sizeof always / sizeof *always; i++)
                if (strncmp(kv, always[i], strlen(always[i])) == 0)
                        return true;
        for (size_t i = 0; desktop && i < sizeof window / sizeof *window; i++)
                if (strncmp(kv, window[i], strlen(window[i])) == 0)
                        return true;
        return false;
}

/* Whether "NAME=..." kv is named in add (NULL-terminated "NAME=value"s). */
static bool env_named(const char *kv, const char *const *add) {
        size_t n = strcspn(kv, "=");
        for (; add && *add; add++)
                if (strncmp(kv, *add, n) == 0 && (*add)[n] == '=')
                        return true;
        return false;
}

/* exec_spawn's env_clean and env_add (exec.h): -ENOMEM. */
static int env_clean(const char *home, bool desktop, const char *const *add, strv *ret) {
        _cleanup_strv_ strv e = { 0 };
        if (strv_push(&e, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") < 0 ||
            (home && strv_pushf(&e, "HOME=%s", home) < 0))
                return -ENOMEM;
        for (char **p = environ; p && *p; p++)
                if (env_kept(*p, desktop) && !env_named(*p, add) && strv_push(&e, *p) < 0)
                        return -ENOMEM;
        for (; add && *add; add++)
                if (strv_push(&e, *add) < 0)
                        return -ENOMEM;
        *ret = e;
        e = (strv) { 0 };
        return 0;
}

struct spawn_child {
        const struct exec_spawn *s;
        int nullfd, out;
        char *const *envp;
};

/* The child's side: async-signal-safe calls only (and, with share_vm,
 * only what may run on memory the caller shares: no malloc, no glibc
 * wrapper with process-wide state; errno is the caller's, which waits). */
static _Noreturn int spawn_child(void *data) {
        const struct spawn_child *k = data;
        const struct exec_spawn *s = k->s;
        if (dup2(s->stdio ? s->stdio[0] : k->nullfd, 0) < 0 || dup2(s->stdio ? s->stdio[1] : k->out, 1) < 0 ||
            dup2(k->out, 2) < 0)
                _exit(127);
        for (size_t i = 0; i < s->n_keep; i++) {
                if (s->keep[i] < 0)
                        continue;
                /* FD_CLOEXEC is the one fd flag: cleared without reading it first. */
                if (fcntl(s->keep[i], F_SETFD, 0) < 0)
                        _exit(127);
        }
        /* The handler table is the child's own (no CLONE_SIGHAND). */
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        (void) sigaction(SIGPIPE, &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        if (s->setup && s->setup(s->data) < 0) {
                const char *m = s->setup_error ? s->setup_error : "cannot prepare the process";
                (void) !write(2, m, strlen(m));
                (void) !write(2, "\n", 1);
                _exit(126);
        }
        execve(s->argv[0], s->argv, k->envp);
        static const char msg[] = "cannot execute the program\n";
        (void) !write(2, msg, sizeof msg - 1);
        _exit(127);
}

int exec_spawn(const struct exec_spawn *s, pid_t *ret_pid, phy_error *err) {
        _cleanup_close_ int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (nullfd < 0)
                return phy_error_set(err, errno, "cannot open /dev/null: %s", strerror(errno));
        _cleanup_strv_ strv env = { 0 };
        if (s->env_clean && env_clean(s->env_home, s->env_window, s->env_add, &env) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        struct spawn_child k = { .s = s, .nullfd = nullfd, .out = s->log_fd >= 0 ? s->log_fd : nullfd,
                                 .envp = s->env_clean ? env.v : environ };
        pid_t pid;
        if (s->share_vm) {
                /* posix_spawn's way: the child runs on our memory, on a stack
                 * of ours, while we wait (CLONE_VFORK) until it has exec'd or
                 * exited; no page table is copied (~0.3 ms of a start).  All
                 * signals stay blocked until the child has set its own
                 * handlers and mask: none of ours may run on its stack. */
                _Alignas(16) char stack_mem[64 * 1024];     /* ours waits while the child uses it */
                sigset_t all, old;
                sigfillset(&all);
                (void) pthread_sigmask(SIG_SETMASK, &all, &old);
                pid = clone(spawn_child, stack_mem + sizeof stack_mem, CLONE_VM | CLONE_VFORK | SIGCHLD, &k);
                int e = errno;
                (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
                errno = e;
        } else {
                pid = fork();
                if (pid == 0)
                        spawn_child(&k);
        }
        if (pid < 0)
                return phy_error_set(err, errno, "cannot fork for '%s': %s", s->argv[0], strerror(errno));
        *ret_pid = pid;
        return 0;
}

int exec_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
        return (int) syscall(SYS_pidfd_open, pid, 0);
#else
        errno = ENOSYS;
        return -1;
#endif
}

bool exec_pidfd_wait(int pidfd, int timeout_ms) {
        if (pidfd < 0)
                return false;
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        int r;
        do
                r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        return r > 0;
}

void exec_end(pid_t pid, int pidfd, int grace_ms) {
        if (pid <= 0)
                return;
        if (grace_ms <= 0 || !exec_pidfd_wait(pidfd, grace_ms)) {
                (void) kill(pid, SIGTERM);
                if (!exec_pidfd_wait(pidfd, 3000))
                        (void) kill(pid, SIGKILL);
        }
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

char *exec_libexec_path(const char *env_var, const char *prog) {
        const char *v = getenv(env_var);
        if (v && v[0] == '/')
                return strdup(v);
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
                self[n] = '\0';
                char *slash = strrchr(self, '/');
                size_t len = strlen(prog);
                if (slash && (size_t) (slash - self) + len + 2 <= sizeof self) {
                        slash[1] = '\0';
                        strcat(slash, prog);
                        if (access(self, X_OK) == 0)
                                return strdup(self);
                }
        }
        char *r = NULL;
        return asprintf(&r, "%s/%s", PHYLLOME_LIBEXECDIR, prog) < 0 ? NULL : r;
}

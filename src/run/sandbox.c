/* SPDX-License-Identifier: MIT */
/*
 * Landlock rulesets for QEMU and swtpm.  The monitor builds a ruleset (a
 * list of paths, each opened O_PATH, with what may be done beneath it) before
 * it forks; the child, after dropping to the VM's uid and setting
 * no-new-privileges, calls landlock_restrict_self() on it just before
 * execve().  From then on the process and everything it starts can open
 * only the paths the ruleset names, whatever their file modes say.
 *
 * The rights handled are the filesystem ones of Landlock ABI 1-3 (the kernel
 * tells which it knows); network rules and scoping are not used (passt and
 * the VNC listener need the network, and connecting to a display's socket is
 * not a filesystem access).
 */
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "host/host.h"
#include "host/qemu-modules.h"
#include "qemu/caps.h"
#include "run-internal.h"

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

#define FS_FILE (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | \
                 LANDLOCK_ACCESS_FS_TRUNCATE)
#define FS_ABI1 ((LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1)

static uint64_t handled_for(int abi) {
        uint64_t h = FS_ABI1;
        if (abi >= 2)
                h |= LANDLOCK_ACCESS_FS_REFER;
        if (abi >= 3)
                h |= LANDLOCK_ACCESS_FS_TRUNCATE;
        return h;
}

void run_sandbox_init(struct run_sandbox *s) {
        *s = (struct run_sandbox) { .fd = -1 };
}

void run_sandbox_done(struct run_sandbox *s) {
        if (s->fd >= 0)
                close(s->fd);
        s->fd = -1;
}

int run_sandbox_begin(struct run_sandbox *s, phy_error *err) {
        run_sandbox_init(s);
        s->abi = host_landlock_abi();
        if (s->abi <= 0)
                return 0;       /* no Landlock: the caller warns */
        s->handled = handled_for(s->abi);
        struct landlock_ruleset_attr attr = { .handled_access_fs = s->handled };
        int fd = (int) syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
        if (fd < 0)
                return phy_error_set(err, errno, "cannot create a Landlock ruleset: %s", strerror(errno));
        s->fd = fd;
        return 0;
}

/* Allows `access` beneath path (or on it, for a file).  A path that does not
 * exist is skipped: nothing there to allow.  Symlinks are followed, so the
 * rule lands on what the process will really open. */
/* run_sandbox_allow; *ret_added (when given) says whether a rule was added. */
static int allow(struct run_sandbox *s, const char *path, uint64_t access, bool *ret_added, phy_error *err) {
        if (s->fd < 0 || !path || !*path)
                return 0;
        _cleanup_close_ int fd = open(path, O_PATH | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT || errno == ENOTDIR || errno == EACCES)
                        return 0;
                return phy_error_set(err, errno, "cannot open '%s' for the sandbox: %s", path, strerror(errno));
        }
        /* Directory-only rights on a file are refused (EINVAL): then the
         * file's share of them.  No stat: a directory, the usual case, costs
         * one call. */
        access &= s->handled;
        struct landlock_path_beneath_attr pb = { .allowed_access = access, .parent_fd = fd };
        int r = access ? (int) syscall(SYS_landlock_add_rule, s->fd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) : 0;
        if (r < 0 && errno == EINVAL && (access & ~(uint64_t) FS_FILE)) {
                pb.allowed_access = access & FS_FILE;
                r = pb.allowed_access ? (int) syscall(SYS_landlock_add_rule, s->fd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) : 0;
        }
        if (r < 0)
                return phy_error_set(err, errno, "cannot add '%s' to the sandbox: %s", path, strerror(errno));
        if (ret_added)
                *ret_added = access != 0;
        return 0;
}

int run_sandbox_allow(struct run_sandbox *s, const char *path, uint64_t access, phy_error *err) {
        return allow(s, path, access, NULL, err);
}

/* What every sandboxed program needs: its code and libraries, the loader's
 * and libc's configuration, a few harmless devices, /proc and /sys to read. */
int run_sandbox_allow_base(struct run_sandbox *s, phy_error *err) {
        static const char *const code[] = { "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin" };
        static const char *const conf[] = { "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime",
                                            "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/hosts",
                                            "/etc/host.conf", "/etc/resolv.conf", "/etc/gai.conf", "/etc/machine-id" };
        static const char *const conf_dirs[] = { "/etc/ld.so.conf.d", "/proc", "/sys" };
        static const char *const devs[] = { "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom" };
        int r;
        bool usr = false;
        for (size_t i = 0; i < ELEMENTSOF(code); i++) {
                /* A merged /usr (Debian 12: /lib -> usr/lib, /bin -> usr/bin):
                 * the link leads beneath /usr, allowed alike, and Landlock
                 * judges the path the link resolves to.  One readlink
                 * instead of a rule. */
                char link[64];
                ssize_t n = usr ? readlink(code[i], link, sizeof link - 1) : -1;
                if (n > 4) {
                        link[n] = '\0';
                        if (strncmp(link, "usr/", 4) == 0 && !strchr(link + 4, '/') && strcmp(link + 4, "..") != 0 &&
                            strcmp(link + 4, ".") != 0)
                                continue;
                }
                if ((r = allow(s, code[i], RUN_SB_RX, i == 0 ? &usr : NULL, err)) < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(conf); i++)
                if ((r = run_sandbox_allow(s, conf[i], RUN_SB_FILE_R, err)) < 0)
                        return r;
        for (size_t i = 0; i < ELEMENTSOF(conf_dirs); i++)
                if ((r = run_sandbox_allow(s, conf_dirs[i], RUN_SB_R, err)) < 0)
                        return r;
        for (size_t i = 0; i < ELEMENTSOF(devs); i++)
                if ((r = run_sandbox_allow(s, devs[i], RUN_SB_FILE_RW, err)) < 0)
                        return r;
        s->usr_rx = usr;
        return 0;
}

/* A QEMU binary and, when it lives in an installation prefix of its own
 * (<prefix>/bin/qemu-system-x86_64 beside <prefix>/lib/.../qemu: a build in
 * /opt, QEMU 10.0 unpacked by scripts/qemu10), that prefix to read and
 * run: its modules, firmware data and whatever its binary path leads to.
 * A binary without a module directory beside it gets only itself. */
int run_sandbox_allow_qemu(struct run_sandbox *s, const char *binary, phy_error *err) {
        if (s->fd < 0 || !binary)
                return 0;
        _cleanup_free_ char *real = realpath(binary, NULL);
        if (!real)
                return run_sandbox_allow(s, binary, RUN_SB_RX, err);
        /* What the base's /usr rule covers needs no rule of its own: the
         * real path has no symlink left, so beneath "/usr/" lexically is
         * beneath it in fact. */
        bool in_usr = s->usr_rx && strncmp(real, "/usr/", 5) == 0;
        int r = in_usr ? 0 : run_sandbox_allow(s, real, RUN_SB_RX, err);
        if (r < 0)
                return r;
        for (int i = 0; i < 2; i++) {
                char *slash = strrchr(real, '/');
                if (!slash)
                        return 0;
                *slash = '\0';         /* <prefix>/bin/qemu -> <prefix> */
        }
        if (!real[0] || (in_usr && strcmp(real, "/usr") == 0))
                return 0;               /* a binary in /bin: its prefix is everything; /usr: allowed */
        _cleanup_free_ char *mods = host_qemu_module_dir(real);
        return mods ? run_sandbox_allow(s, real, RUN_SB_RX, err) : 0;
}

int run_sandbox_apply_child(const struct run_sandbox *s) {
        if (s->fd < 0)
                return 0;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        if (syscall(SYS_landlock_restrict_self, s->fd, 0) < 0)
                return -errno;
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* Process helpers: the unprivileged identity QEMU and swtpm run under,
 * pidfds, and the tail of a log file. */
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "run-internal.h"

int run_creds_get(struct run_creds *ret, phy_error *err) {
        struct run_creds c = { .uid = geteuid(), .gid = getegid(), .kvm_gid = (gid_t) -1 };
        if (geteuid() != 0) {
                *ret = c;
                return 0;
        }
        const char *user = getenv("PHYLLOME_QEMU_USER");
        if (!user || !*user)
                user = "nobody";
        struct passwd pw, *res = NULL;
        char buf[4096];
        int r = getpwnam_r(user, &pw, buf, sizeof buf, &res);
        if (r != 0 || !res)
                return phy_error_set(err, r ? r : ENOENT,
                                     "QEMU must not run as root, but the user '%s' to run it as does not exist; "
                                     "create it or set PHYLLOME_QEMU_USER to an unprivileged user", user);
        if (pw.pw_uid == 0)
                return phy_error_set(err, EPERM, "PHYLLOME_QEMU_USER names '%s', which is root; "
                                     "QEMU must run as an unprivileged user", user);
        c.drop = true;
        c.uid = pw.pw_uid;
        c.gid = pw.pw_gid;
        /* Like a distribution's qemu user in group kvm: /dev/kvm is usually 0660 root:kvm. */
        struct stat st;
        c.kvm_gid = stat("/dev/kvm", &st) == 0 && st.st_gid != 0 ? st.st_gid : (gid_t) -1;
        snprintf(c.user, sizeof c.user, "%s", user);
        *ret = c;
        return 0;
}

int run_creds_apply_child(const struct run_creds *c) {
        if (c->drop) {
                gid_t groups[1] = { c->kvm_gid };
                if (setgroups(c->kvm_gid != (gid_t) -1 ? 1 : 0, groups) < 0 || setresgid(c->gid, c->gid, c->gid) < 0 ||
                    setresuid(c->uid, c->uid, c->uid) < 0)
                        return -errno;
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        return 0;
}

int run_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
        return (int) syscall(SYS_pidfd_open, pid, 0);
#else
        errno = ENOSYS;
        return -1;
#endif
}

bool run_pidfd_wait(int pidfd, int timeout_ms) {
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        int r;
        do
                r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        return r > 0;
}

int64_t run_mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *run_file_tail(const char *path, unsigned lines) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        if (file_read_all(path, 64u * 1024 * 1024, &text, &len) < 0)
                return NULL;
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
                text[--len] = '\0';
        size_t i = len;
        unsigned n = 0;
        while (i > 0) {
                if (text[i - 1] == '\n' && ++n == lines)
                        break;
                i--;
        }
        return strdup(text + i);
}

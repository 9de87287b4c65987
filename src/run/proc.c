/* SPDX-License-Identifier: MIT */
/* Process helpers: the unprivileged identity QEMU and swtpm run under,
 * pidfds, and the tail of a log file. */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "runfile.h"
#include "fileio.h"
#include "host/host.h"
#include "run-internal.h"
#include "run.h"

/* The VM's uid from <home>/vm-uids ("UID NAME" lines, flock()ed while read
 * and appended): the one recorded for name, else the lowest uid of the
 * range that no other VM of this home holds and no account or group on
 * the host uses, recorded now.  Stable for the VM's life (and a VM made
 * again under the same name gets it back). */
/* The VM uid table (<home>/vm-uids, "UID NAME" lines): opened without
 * following a link, checked to be a regular file only its owner (us) can
 * write, locked, and read whole from the locked fd.  Without create, a
 * missing table is *ret_fd = -1 and no text. */
static int uid_table_open(const char *home, bool create, char **ret_path, int *ret_fd, char **ret_text,
                          size_t *ret_len, phy_error *err) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/vm-uids", home) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0644);
        if (fd < 0 && !create && errno == ENOENT) {
                *ret_path = TAKE_PTR(path);
                *ret_fd = -1;
                *ret_text = NULL;
                *ret_len = 0;
                return 0;
        }
        if (fd < 0)
                return phy_error_set(err, errno, "cannot open the VM uid table '%s': %s", path, strerror(errno));
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
                return phy_error_set(err, EPERM, "the VM uid table '%s' is not a regular file that only its owner "
                                     "(uid %u) can write; remove it", path, (unsigned) geteuid());
        if (flock(fd, LOCK_EX) < 0)
                return phy_error_set(err, errno, "cannot lock '%s': %s", path, strerror(errno));
        if ((uint64_t) st.st_size > 16u * 1024 * 1024)
                return phy_error_set(err, EFBIG, "the VM uid table '%s' is too large", path);
        _cleanup_free_ char *text = calloc(1, (size_t) st.st_size + 1);
        if (!text)
                return phy_error_set(err, ENOMEM, "out of memory");
        ssize_t k = fd_read_full(fd, text, (size_t) st.st_size);       /* just opened: from its start */
        if (k < 0)
                return phy_error_set(err, (int) -k, "cannot read '%s': %s", path, strerror((int) -k));
        *ret_path = TAKE_PTR(path);
        *ret_fd = TAKE_FD(fd);
        *ret_text = TAKE_PTR(text);
        *ret_len = (size_t) k;
        return 0;
}

static int vm_uid_allocate(const char *home, const char *name, uint32_t first, uint32_t count, uid_t *ret,
                           phy_error *err) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_close_ int fd = -1;
        size_t len;
        int r = uid_table_open(home, true, &path, &fd, &text, &len, err);
        if (r < 0)
                return r;
        _cleanup_free_ uint32_t *used = calloc(len / 4 + 1, sizeof *used);
        if (!used)
                return phy_error_set(err, ENOMEM, "out of memory");
        size_t n_used = 0;
        for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
                nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                char *sp = strchr(line, ' ');
                unsigned long long v;
                if (!sp)
                        continue;
                *sp = '\0';
                if (parse_uint(line, UINT32_MAX, &v) < 0 || v < first || v - first >= count)
                        continue;
                if (strcmp(sp + 1, name) == 0) {
                        *ret = (uid_t) v;
                        return 0;
                }
                used[n_used++] = (uint32_t) v;
        }
        for (uint64_t u = first; u < (uint64_t) first + count; u++) {
                bool taken = false;
                for (size_t i = 0; i < n_used && !taken; i++)
                        taken = used[i] == u;
                if (taken || getpwuid((uid_t) u) || getgrgid((gid_t) u))
                        continue;
                _cleanup_free_ char *line = NULL;
                int n = asprintf(&line, "%llu %s\n", (unsigned long long) u, name);
                if (n < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if (pwrite(fd, line, (size_t) n, (off_t) len) != n || fsync(fd) < 0)
                        return phy_error_set(err, errno ? errno : EIO, "cannot write '%s': %s", path,
                                             strerror(errno ? errno : EIO));
                *ret = (uid_t) u;
                return 0;
        }
        return phy_error_set(err, ENOSPC, "every uid of the range vm-uids = %u-%u in /etc/phyllome/host.conf is "
                             "taken (see '%s'); widen the range", first, first + count - 1, path);
}

/* The group QEMU keeps for /dev/kvm, or -1: like a distribution's qemu user
 * in group kvm (/dev/kvm is usually 0660 root:kvm).  Only a group this host
 * names "kvm": a device node whose gid names another group here (seen: a
 * container's /dev/kvm with gid 103, which is ssl-cert in its /etc/group)
 * would hand every VM's QEMU that group's files (ssl-cert's private keys). */
static gid_t kvm_group(void) {
        struct stat st;
        if (stat("/dev/kvm", &st) < 0 || !S_ISCHR(st.st_mode) || st.st_gid == 0)
                return (gid_t) -1;
        struct group g, *found = NULL;
        char buf[16384];
        if (getgrgid_r(st.st_gid, &g, buf, sizeof buf, &found) != 0 || !found || strcmp(found->gr_name, "kvm") != 0)
                return (gid_t) -1;
        return st.st_gid;
}

int run_creds_get(const char *home, const char *name, const struct host_facts *host, struct run_creds *ret,
                  phy_error *err) {
        struct run_creds c = { .uid = geteuid(), .gid = getegid(), .kvm_gid = (gid_t) -1 };
        if (geteuid() != 0) {
                *ret = c;
                return 0;
        }
        c.drop = true;
        const char *user = getenv("PHYLLOME_QEMU_USER");
        if ((!user || !*user) && (!host || host->vm_uid_count > 0)) {
                /* One uid (and the gid of the same number) per VM; without a
                 * VM, any uid of the range (they all see the same files). */
                uid_t u = host ? host->vm_uid_first : HOST_VM_UIDS_FIRST;
                int r = home && name && host ? vm_uid_allocate(home, name, host->vm_uid_first, host->vm_uid_count, &u, err)
                                             : 0;
                if (r < 0)
                        return r;
                c.uid = u;
                c.gid = (gid_t) u;
                c.per_vm = true;
                snprintf(c.user, sizeof c.user, "%u", (unsigned) u);
                *ret = c;
                return 0;
        }
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
        c.uid = pw.pw_uid;
        c.gid = pw.pw_gid;
        snprintf(c.user, sizeof c.user, "%s", user);
        *ret = c;
        return 0;
}

void run_creds_kvm(struct run_creds *c) {
        if (c->drop)
                c->kvm_gid = kvm_group();
}

/* Raw syscalls: glibc's setgroups/setresgid/setresuid apply to every
 * thread of the process (setxid), which a child sharing its caller's memory
 * (exec_spawn's share_vm) must not attempt. */
int run_creds_apply_child(const struct run_creds *c) {
        if (c->drop) {
                gid_t groups[1] = { c->kvm_gid };
                if (syscall(SYS_setgroups, c->kvm_gid != (gid_t) -1 ? 1 : 0, groups) < 0 ||
                    syscall(SYS_setresgid, c->gid, c->gid, c->gid) < 0 ||
                    syscall(SYS_setresuid, c->uid, c->uid, c->uid) < 0)
                        return -errno;
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        return 0;
}

int run_child_setup(void *data) {
        const struct run_child *c = data;
        int r = run_creds_apply_child(c->creds);
        if (r == 0 && c->sb)
                r = run_sandbox_apply_child(c->sb);
        return r;
}

int64_t run_mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *run_file_tail(const char *path, unsigned lines) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        if (runfile_read_raw(path, 64u * 1024 * 1024, &text, &len, NULL) < 0)
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

int run_vm_uid_rename(const char *home, const char *old_name, const char *new_name, phy_error *err) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_close_ int fd = -1;
        size_t len;
        int r = uid_table_open(home, false, &path, &fd, &text, &len, err);
        if (r < 0 || fd < 0)
                return r;
        /* The VM keeps its uid: its lines name it anew; a line of an earlier
         * VM of the new name (deleted since) goes. */
        /* Each line of at least 4 bytes grows by at most a name (64): 17 times as much. */
        _cleanup_free_ char *out = calloc(17, len + 128);
        if (!out)
                return phy_error_set(err, ENOMEM, "out of memory");
        size_t at = 0;
        bool changed = false;
        for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
                nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                char *sp = strchr(line, ' ');
                const char *who = sp ? sp + 1 : "";
                if (strcmp(who, new_name) == 0) {
                        changed = true;
                        continue;
                }
                bool mine = strcmp(who, old_name) == 0;
                size_t head = sp ? (size_t) (sp - line) + 1 : strlen(line);
                memcpy(out + at, line, head);
                at += head;
                at += (size_t) sprintf(out + at, "%s\n", mine ? new_name : who);
                changed = changed || mine;
        }
        if (!changed)
                return 0;
        if (pwrite(fd, out, at, 0) != (ssize_t) at || ftruncate(fd, (off_t) at) < 0 || fsync(fd) < 0)
                return phy_error_set(err, errno ? errno : EIO, "cannot write '%s': %s", path,
                                     strerror(errno ? errno : EIO));
        return 0;
}

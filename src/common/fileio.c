/* SPDX-License-Identifier: MIT */
#include "fileio.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"

char *root_path(const char *root, const char *path) {
        char *r = NULL;
        if (!root || !*root || strcmp(root, "/") == 0)
                return strdup(path);
        size_t rl = strlen(root);
        while (rl > 1 && root[rl - 1] == '/')
                rl--;
        if (asprintf(&r, "%.*s%s%s", (int) rl, root, path[0] == '/' ? "" : "/", path) < 0)
                return NULL;
        return r;
}

int file_read_all(const char *path, size_t max, char **ret, size_t *ret_len) {
        if (max == 0)
                max = FILE_READ_MAX;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        size_t cap = 4096, len = 0;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len + 1 >= cap) {
                        if (cap > max)
                                return -EFBIG;
                        cap *= 2;
                        char *nb = realloc(buf, cap);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                }
                ssize_t n = read(fd, buf + len, cap - len - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = '\0';
        if (ret_len)
                *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

int root_read_attr(const char *root, const char *path, char **ret) {
        _cleanup_free_ char *p = root_path(root, path);
        if (!p)
                return -ENOMEM;
        char *buf = NULL;
        size_t len = 0;
        int r = file_read_all(p, 1024 * 1024, &buf, &len);
        if (r < 0)
                return r;
        while (len > 0 && isspace((unsigned char) buf[len - 1]))
                buf[--len] = '\0';
        *ret = buf;
        return 0;
}

bool root_exists(const char *root, const char *path) {
        _cleanup_free_ char *p = root_path(root, path);
        return p && access(p, F_OK) == 0;
}

static int fsync_parent(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        if (!slash)
                strcpy(dir, ".");
        else if (slash == dir)
                dir[1] = '\0';
        else
                *slash = '\0';
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return fsync(fd) < 0 ? -errno : 0;
}

static int write_all(int fd, const void *data, size_t len) {
        const char *p = data;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

ssize_t fd_read_full(int fd, void *buf, size_t len) {
        size_t got = 0;
        while (got < len) {
                ssize_t k = read(fd, (char *) buf + got, len - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                got += (size_t) k;
        }
        return (ssize_t) got;
}

static int tmp_open_for(const char *path, mode_t mode, char **ret_tmp) {
        char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
                return -ENOMEM;
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;
                free(tmp);
                return r;
        }
        if (fchmod(fd, mode) < 0) {
                int r = -errno;
                close(fd);
                unlink(tmp);
                free(tmp);
                return r;
        }
        *ret_tmp = tmp;
        return fd;
}

static int tmp_commit(int fd, const char *tmp, const char *path) {
        if (fsync(fd) < 0 || rename(tmp, path) < 0)
                return -errno;
        return fsync_parent(path);
}

/* The temporary file written, then renamed over path (synced first when sync). */
static int replace(const char *path, const void *data, size_t len, mode_t mode, bool sync, phy_error *err) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = tmp_open_for(path, mode, &tmp);
        if (fd < 0)
                return phy_error_set(err, fd, "cannot create a temporary file beside '%s': %s", path, strerror(-fd));
        int r = write_all(fd, data, len);
        if (r >= 0)
                r = sync ? tmp_commit(fd, tmp, path) : rename(tmp, path) < 0 ? -errno : 0;
        if (r < 0) {
                unlink(tmp);
                return phy_error_set(err, r, "cannot write '%s': %s", path, strerror(-r));
        }
        return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, phy_error *err) {
        return replace(path, data, len, mode, true, err);
}

int file_replace(const char *path, const void *data, size_t len, mode_t mode, phy_error *err) {
        return replace(path, data, len, mode, false, err);
}

static int copy_fd_atomic(int in, const char *src, const char *dst, mode_t mode, phy_error *err);

int file_copy_atomic(const char *src, const char *dst, mode_t mode, phy_error *err) {
        _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return phy_error_set(err, errno, "cannot open '%s': %s", src, strerror(errno));
        return copy_fd_atomic(in, src, dst, mode, err);
}

int file_copy_at(int dfd, const char *name, const char *src, const char *dst, mode_t mode, struct stat *ret_st,
                 phy_error *err) {
        _cleanup_close_ int in = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (in < 0 || fstat(in, &st) < 0)
                return phy_error_set(err, errno, "cannot open '%s': %s", src, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return phy_error_set(err, EPERM, "'%s' is not a regular file; refusing to copy it", src);
        if (ret_st)
                *ret_st = st;
        return copy_fd_atomic(in, src, dst, mode, err);
}

static int copy_fd_atomic(int in, const char *src, const char *dst, mode_t mode, phy_error *err) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = tmp_open_for(dst, mode, &tmp);
        if (fd < 0)
                return phy_error_set(err, fd, "cannot create a temporary file beside '%s': %s", dst, strerror(-fd));
        char buf[65536];
        int r = 0;
        for (;;) {
                ssize_t n = read(in, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n == 0)
                        break;
                if ((r = write_all(fd, buf, (size_t) n)) < 0)
                        break;
        }
        if (r >= 0)
                r = tmp_commit(fd, tmp, dst);
        if (r < 0) {
                unlink(tmp);
                return phy_error_set(err, r, "cannot copy '%s' to '%s': %s", src, dst, strerror(-r));
        }
        return 0;
}

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int rm_rf_at(int dfd, const char *name) {
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISDIR(st.st_mode))
                return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        int r = 0;
        for (struct dirent *de; (de = readdir(d));) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                int k = rm_rf_at(dirfd(d), de->d_name);
                if (k < 0 && r == 0)
                        r = k;
        }
        closedir(d);
        if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
                r = -errno;
        return r;
}

int rm_rf(const char *path) {
        return rm_rf_at(AT_FDCWD, path);
}

int parse_uint(const char *s, unsigned long long max, unsigned long long *ret) {
        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        char *end = NULL;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno == ERANGE || v > max)
                return -ERANGE;
        if (*end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_size_unit(const char *s, unsigned bare_shift, unsigned long long *ret) {
        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        char *end = NULL;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        unsigned shift = bare_shift;
        if (*end) {
                switch (*end) {
                case 'b': case 'B': shift = 0; break;
                case 'k': case 'K': shift = 10; break;
                case 'm': case 'M': shift = 20; break;
                case 'g': case 'G': shift = 30; break;
                case 't': case 'T': shift = 40; break;
                default: return -EINVAL;
                }
                end++;
                /* 8G, 8GB, 8gb, 8GiB, 8gib: the same binary size. */
                if (shift && (*end == 'i' || *end == 'I') && (end[1] == 'b' || end[1] == 'B'))
                        end += 2;
                else if (shift && (*end == 'b' || *end == 'B'))
                        end++;
                if (*end)
                        return -EINVAL;
        }
        if (shift && v > (~0ULL >> shift))
                return -ERANGE;
        *ret = v << shift;
        return 0;
}

int parse_size(const char *s, unsigned long long *ret) {
        return parse_size_unit(s, 0, ret);
}

void format_size(unsigned long long v, char *buf, size_t len) {
        static const char units[] = "KMGT";
        int u = -1;
        while (v != 0 && v % 1024 == 0 && u < 3) {
                v /= 1024;
                u++;
        }
        if (u < 0)
                snprintf(buf, len, "%llu", v);
        else
                snprintf(buf, len, "%llu%c", v, units[u]);
}

static int openat2_resolve(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve) {
        struct open_how how = { .flags = (uint64_t) (flags | O_CLOEXEC), .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
                                .resolve = resolve | RESOLVE_NO_MAGICLINKS };
        long fd;
        do
                fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        while (fd < 0 && errno == EINTR);
        return fd < 0 ? -errno : (int) fd;
}

int open_beneath(int dirfd, const char *rel, int flags, mode_t mode) {
        if (!*rel || rel[0] == '/')
                return -EXDEV;
        return openat2_resolve(dirfd, rel, flags, mode, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
}

int open_resolved(const char *abs, int flags, mode_t mode) {
        if (abs[0] != '/')
                return -EINVAL;
        return openat2_resolve(AT_FDCWD, abs, flags, mode, RESOLVE_NO_SYMLINKS);
}

int unlink_beneath(int dirfd, const char *rel) {
        const char *slash = strrchr(rel, '/');
        const char *base = slash ? slash + 1 : rel;
        if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || rel[0] == '/')
                return -EXDEV;
        _cleanup_close_ int parent = -1;
        if (slash) {
                _cleanup_free_ char *dir = strndup(rel, (size_t) (slash - rel));
                if (!dir)
                        return -ENOMEM;
                parent = open_beneath(dirfd, dir, O_PATH | O_DIRECTORY, 0);
                if (parent < 0)
                        return parent;
        }
        return unlinkat(slash ? parent : dirfd, base, 0) < 0 ? -errno : 0;
}

bool path_is_below(const char *path, const char *dir) {
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/')
                n--;
        if (n == 1 && dir[0] == '/')
                return path[0] == '/';
        return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

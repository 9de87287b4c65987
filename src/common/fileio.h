/* SPDX-License-Identifier: MIT */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "error.h"

/* Hard cap for any file read whole: definitions, sysfs attributes, caches. */
#define FILE_READ_MAX (16u * 1024 * 1024)

/*
 * "root" is a root prefix for host discovery ("/" or NULL for the real host,
 * a fixture tree in tests).  path is absolute ("/sys/...").  Returns a
 * malloc'd string; never NULL on success.
 */
char *root_path(const char *root, const char *path);

/* Reads a whole file (NUL-terminated) into *ret, capped at max bytes
 * (0 = FILE_READ_MAX).  -ENOENT etc. on failure, *ret untouched. */
int file_read_all(const char *path, size_t max, char **ret, size_t *ret_len);

/* Same through a root prefix, with trailing whitespace stripped: the usual
 * way to read a sysfs or procfs attribute. */
int root_read_attr(const char *root, const char *path, char **ret);
bool root_exists(const char *root, const char *path);

/* Reads up to len bytes from fd's position, fewer only at its end: the
 * count, or -errno. */
ssize_t fd_read_full(int fd, void *buf, size_t len);

/* Atomically replaces path with data: temp file in the same directory,
 * fsync, rename, fsync of the directory.  Nothing is left on failure. */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, phy_error *err);
/* The same without the fsyncs, for runtime state and caches: readers see
 * the old file or the new one, never a part; a power cut may lose both
 * (what is under /run or a cache is not kept across one anyway). */
int file_replace(const char *path, const void *data, size_t len, mode_t mode, phy_error *err);

/* mkdir -p with mode for the created directories. */
int mkdir_p(const char *path, mode_t mode);

/* Removes a directory tree (no symlink following).  -errno. */
int rm_rf(const char *path);

/* Copies a file (used for the per-VM OVMF vars copy); atomic like above. */
int file_copy_atomic(const char *src, const char *dst, mode_t mode, phy_error *err);
/* The same for the entry name of directory dfd, opened O_NOFOLLOW and only
 * when it is a regular file (a file another uid may swap for a symlink:
 * nothing is followed); src names it in messages; its stat to *ret_st. */
struct stat;
int file_copy_at(int dfd, const char *name, const char *src, const char *dst, mode_t mode, struct stat *ret_st,
                 phy_error *err);

/* Parses "4G", "512M", "1024K", "4096" (bytes), "1.5G" not accepted.
 * Binary units (K=1024), in any case, with or without B or iB after them
 * (8G = 8GB = 8gb = 8GiB); "512B" is bytes.  Returns -EINVAL / -ERANGE. */
int parse_size(const char *s, unsigned long long *ret);
/* The same, with a bare number in units of 1 << bare_shift: the sizes a
 * user types (memory in MiB, disks in GiB, as quickemu and virt-install). */
#define SIZE_MIB 20u
#define SIZE_GIB 30u
int parse_size_unit(const char *s, unsigned bare_shift, unsigned long long *ret);
/* Formats bytes as the largest exact unit: "4G", "1536M", "100". */
void format_size(unsigned long long v, char *buf, size_t len);
/* Strict unsigned integer parse (no sign, no junk, range-checked). */
int parse_uint(const char *s, unsigned long long max, unsigned long long *ret);

/*
 * Anchored opens (issue 12): a path checked as a string is not a checked
 * file.  open_beneath opens rel below the directory dirfd with openat2
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: a ".." that
 * leaves dirfd is -EXDEV, a symlink anywhere on the way -ELOOP.  rel must be
 * relative.  Returns the fd (O_CLOEXEC added) or -errno.
 */
int open_beneath(int dirfd, const char *rel, int flags, mode_t mode);
/* The same from "/" for an absolute path that realpath already resolved:
 * no symlink may have appeared on the way since. */
int open_resolved(const char *abs, int flags, mode_t mode);
/* Removes the file rel below dirfd (its parent opened with open_beneath):
 * never a file outside dirfd, never through a symlink.  -errno. */
int unlink_beneath(int dirfd, const char *rel);
/* True when path is dir or below it (a whole-component prefix: /home/al is
 * not below /home/alice).  Both should be canonical (realpath). */
bool path_is_below(const char *path, const char *dir);

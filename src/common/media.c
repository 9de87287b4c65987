/* SPDX-License-Identifier: MIT */
/* Install media: cpio for initrds, ISO images through xorriso (media.h). */
#include "media.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "fileio.h"

int media_append(char **buf, size_t *len, const void *s, size_t n) {
        char *b = realloc(*buf, *len + n + 1);
        if (!b)
                return -ENOMEM;
        memcpy(b + *len, s, n);
        *len += n;
        b[*len] = '\0';
        *buf = b;
        return 0;
}

static int cpio_member(char **buf, size_t *len, const char *name, const void *data, size_t size, unsigned ino) {
        char hdr[128];
        size_t namesize = strlen(name) + 1;
        if (size > 0xffffffu || namesize > 4096)
                return -EFBIG;
        snprintf(hdr, sizeof hdr, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino,
                 data ? 0100644u : 0u, 0u, 0u, 1u, 0u, (unsigned) size, 0u, 0u, 0u, 0u, (unsigned) namesize, 0u);
        static const char zeros[4] = { 0 };
        if (media_append(buf, len, hdr, 110) < 0 || media_append(buf, len, name, namesize) < 0 ||
            media_append(buf, len, zeros, (4 - (110 + namesize) % 4) % 4) < 0 ||
            (size && media_append(buf, len, data, size) < 0) || media_append(buf, len, zeros, (4 - size % 4) % 4) < 0)
                return -ENOMEM;
        return 0;
}

int media_cpio_one(char **buf, size_t *len, const char *name, const void *data, size_t size) {
        int r = cpio_member(buf, len, name, data, size, 1);
        return r < 0 ? r : cpio_member(buf, len, "TRAILER!!!", NULL, 0, 0);
}

int media_initrd_with(const char *initrd, size_t olen, const char *name, const char *data, size_t len, char **ret,
                      size_t *ret_len) {
        _cleanup_free_ char *all = NULL;
        size_t alen = 0;
        static const char zeros[4] = { 0 };
        int r;
        if (media_append(&all, &alen, initrd, olen) < 0 ||
            media_append(&all, &alen, zeros, (4 - olen % 4) % 4) < 0)
                return -ENOMEM;
        if ((r = media_cpio_one(&all, &alen, name, data, len)) < 0)
                return r;
        *ret = TAKE_PTR(all);
        *ret_len = alen;
        return 0;
}

static int xorriso_path(char **ret, phy_error *err) {
        if (!(*ret = exec_find_in_path("xorriso")))
                return phy_error_set(err, ENOENT, "xorriso is not installed (Debian package xorriso); it makes and "
                                     "reads the install media");
        return 0;
}

int media_iso_one(const char *name, const char *data, size_t len, const char *volid, const char *out_iso,
                  phy_error *err) {
        _cleanup_free_ char *xorriso = NULL, *dir = NULL, *file = NULL;
        int r = xorriso_path(&xorriso, err);
        if (r < 0)
                return r;
        if (asprintf(&dir, "%s.d-XXXXXX", out_iso) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (!mkdtemp(dir))
                return phy_error_set(err, errno, "cannot make a directory next to '%s': %s", out_iso, strerror(errno));
        r = asprintf(&file, "%s/%s", dir, name) < 0 ? phy_error_set(err, ENOMEM, "out of memory")
                                                    : file_write_atomic(file, data, len, 0600, err);
        if (r >= 0) {
                char *const argv[] = { xorriso, "-as", "mkisofs", "-quiet", "-J", "-r", "-V", (char *) volid, "-o",
                                       (char *) out_iso, dir, NULL };
                char errbuf[512] = "";
                if ((r = exec_run(argv, NULL, errbuf, sizeof errbuf)) < 0)
                        r = phy_error_set(err, EIO, "xorriso could not make '%s': %s", out_iso, errbuf);
                else if (chmod(out_iso, 0600) < 0)
                        r = phy_error_set(err, errno, "cannot restrict '%s': %s", out_iso, strerror(errno));
        }
        rm_rf(dir);
        if (r < 0)
                (void) unlink(out_iso);
        return r;
}

int media_iso_extract(const char *iso, const char *inner, const char *out, phy_error *err) {
        _cleanup_free_ char *xorriso = NULL, *src = NULL, *tmp = NULL;
        int r = xorriso_path(&xorriso, err);
        if (r < 0)
                return r;
        while (*inner == '/')
                inner++;
        if (asprintf(&src, "/%s", inner) < 0 || asprintf(&tmp, "%s.tmp-%d", out, (int) getpid()) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        (void) unlink(tmp);
        char *const argv[] = { xorriso, "-osirrox", "on", "-indev", (char *) iso, "-extract", src, tmp, NULL };
        char errbuf[512] = "";
        struct stat st;
        if ((r = exec_run(argv, NULL, errbuf, sizeof errbuf)) < 0 || lstat(tmp, &st) < 0 || !S_ISREG(st.st_mode)) {
                (void) rm_rf(tmp);
                return phy_error_set(err, ENOENT, "cannot copy '%s' out of '%s' (xorriso: %s)", src, iso,
                                     errbuf[0] ? errbuf : "no such regular file in the image");
        }
        if (chmod(tmp, 0644) < 0 || rename(tmp, out) < 0) {
                r = phy_error_set(err, errno, "cannot write '%s': %s", out, strerror(errno));
                (void) unlink(tmp);
                return r;
        }
        return 0;
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "net.h"

/* True when a is b or below it (both canonical). */
static bool path_within(const char *a, const char *b) {
        size_t n = strlen(b);
        if (n == 1)
                return true;
        return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

int net_share_check_dir(const char *path, const char *home, phy_error *err) {
        _cleanup_free_ char *real = realpath(path, NULL);
        if (!real)
                return phy_error_set(err, errno, "cannot share '%s': %s; give an existing directory", path,
                                     strerror(errno));
        struct stat st;
        if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
                return phy_error_set(err, ENOTDIR, "cannot share '%s': it is not a directory", path);
        if (strcmp(real, "/") == 0)
                return phy_error_set(err, EPERM, "refusing to share the host's root directory '/'; "
                                     "share a directory below it");
        if (home) {
                _cleanup_free_ char *h = realpath(home, NULL);
                /* Either way the guest would reach Phyllome's own files (disks, definitions). */
                if (h && (path_within(real, h) || path_within(h, real)))
                        return phy_error_set(err, EPERM, "refusing to share '%s': it %s the Phyllome home '%s'; "
                                             "share a directory outside it", path,
                                             path_within(real, h) ? "is inside" : "contains", h);
        }
        return 0;
}

int net_shares_check(const struct vm_def *d, const char *home, phy_error *err) {
        for (size_t i = 0; i < d->n_shares; i++) {
                int r = net_share_check_dir(d->shares[i].path, home, err);
                if (r < 0)
                        return phy_error_prefix(err, "VM '%s', share '%s'", d->name, d->shares[i].tag);
        }
        return 0;
}

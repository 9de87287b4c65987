/* SPDX-License-Identifier: MIT */
/* `phyllo edit`'s working copies (edit.h). */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "edit.h"
#include "vm/vm.h"

int ops_edit_copy_new(const struct ops_ctx *c, const char *name, const char *text, char **ret_path, phy_error *err) {
        _cleanup_free_ char *conf = vm_conf_path(c->home, name), *tmp = NULL;
        if (!conf || asprintf(&tmp, "%s.edit.XXXXXX", conf) < 0) {
                tmp = NULL;
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return phy_error_set(err, errno, "cannot create '%s': %s", tmp, strerror(errno));
        size_t len = strlen(text);
        if (write(fd, text, len) != (ssize_t) len) {
                int r = phy_error_set(err, errno ? errno : EIO, "cannot write '%s'", tmp);
                unlink(tmp);
                return r;
        }
        *ret_path = TAKE_PTR(tmp);
        return 0;
}

void ops_edit_copies_remove(const struct ops_ctx *c, const char *name, const char *keep) {
        _cleanup_free_ char *dir = vm_conf_path(c->home, name);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (!slash)
                return;
        *slash = '\0';
        const char *base = slash + 1;
        size_t bl = strlen(base);
        const char *keep_base = keep && strrchr(keep, '/') ? strrchr(keep, '/') + 1 : keep;
        DIR *d = opendir(dir);
        for (struct dirent *e; d && (e = readdir(d));) {
                if (strncmp(e->d_name, base, bl) != 0 || strncmp(e->d_name + bl, ".edit.", 6) != 0 ||
                    strlen(e->d_name + bl + 6) != 6)
                        continue;
                if (keep_base && strcmp(keep_base, e->d_name) == 0)
                        continue;
                (void) unlinkat(dirfd(d), e->d_name, 0);
        }
        if (d)
                closedir(d);
}

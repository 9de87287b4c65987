/* SPDX-License-Identifier: MIT */
#include "paths.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *home_dir(void) {
        const char *h = getenv("HOME");
        if (h && *h == '/')
                return h;
        struct passwd *pw = getpwuid(getuid());
        return pw ? pw->pw_dir : NULL;
}

static int xdg_dir(const char *own_env, const char *xdg_env, const char *fallback,
                   char **ret, phy_error *err) {
        const char *v = getenv(own_env);
        char *p = NULL;
        if (v && *v) {
                if (v[0] != '/')
                        return phy_error_usage(err, "%s must be an absolute path, not '%s'", own_env, v);
                p = strdup(v);
        } else if ((v = getenv(xdg_env)) && v[0] == '/') {
                if (asprintf(&p, "%s/phyllome", v) < 0)
                        p = NULL;
        } else {
                const char *h = home_dir();
                if (!h)
                        return phy_error_set(err, ENOENT, "cannot find a home directory; set %s", own_env);
                if (asprintf(&p, "%s/%s/phyllome", h, fallback) < 0)
                        p = NULL;
        }
        if (!p)
                return phy_error_set(err, ENOMEM, "out of memory");
        *ret = p;
        return 0;
}

int phy_home(char **ret, phy_error *err) {
        return xdg_dir("PHYLLOME_HOME", "XDG_DATA_HOME", ".local/share", ret, err);
}

int phy_cache_dir(char **ret, phy_error *err) {
        return xdg_dir("PHYLLOME_CACHE", "XDG_CACHE_HOME", ".cache", ret, err);
}

const char *phy_root(const char *given) {
        if (given && *given)
                return given;
        const char *v = getenv("PHYLLOME_ROOT");
        return v && *v ? v : "/";
}

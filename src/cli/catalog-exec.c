/* SPDX-License-Identifier: MIT */
/*
 * The catalog commands of the lean `phyllo`: they execute `phyllo-catalog`
 * with this process's own arguments.
 *
 * Why two binaries: libosinfo, GLib and libcurl (with gnutls, nghttp2, LDAP,
 * Kerberos: 57 shared objects in all) cost every phyllo command ~100
 * million cycles in the dynamic loader before main, ~40 ms of CPU, and
 * most commands (start, stop, list, status) never touch them.  So
 * `phyllo` is built without them, and the commands that need them
 * (catalog, download, create --os/--iso) run the same sources built with
 * them (src/cli/meson.build: phyllo-catalog, from catalog.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Next to this phyllo (the build tree), else the installed one. */
static const char *full_binary(char *buf, size_t len) {
        const char *env = getenv("PHYLLOME_PHYLLO_CATALOG");
        if (env && *env)
                return env;
        ssize_t n = readlink("/proc/self/exe", buf, len - 1);
        if (n > 0) {
                buf[n] = '\0';
                char *slash = strrchr(buf, '/');
                if (slash && (size_t) (slash - buf) + sizeof "/phyllo-catalog" <= len) {
                        memcpy(slash, "/phyllo-catalog", sizeof "/phyllo-catalog");
                        if (access(buf, X_OK) == 0)
                                return buf;
                }
        }
        return PHYLLOME_LIBEXECDIR "/phyllo-catalog";
}

/* Replaces this process; returns only when that failed (exit status 1). */
static int exec_full(void) {
        char buf[PATH_MAX];
        const char *bin = full_binary(buf, sizeof buf);
        char **argv = cli_orig_argv;
        const char *saved = argv[0];
        argv[0] = (char *) "phyllo";
        execv(bin, argv);
        int e = errno;
        argv[0] = (char *) saved;
        fprintf(stderr, "phyllo: the catalog's commands run '%s', which cannot be executed: %s "
                "(reinstall Phyllome, or set PHYLLOME_PHYLLO_CATALOG)\n", bin, strerror(e));
        return 1;
}

int cmd_catalog_list(struct cli_ctx *ctx, int argc, char **argv) { return exec_full(); }
int cmd_catalog_search(struct cli_ctx *ctx, int argc, char **argv) { return exec_full(); }
int cmd_catalog_show(struct cli_ctx *ctx, int argc, char **argv) { return exec_full(); }
int cmd_catalog_verify(struct cli_ctx *ctx, int argc, char **argv) { return exec_full(); }
int cmd_catalog_identify(struct cli_ctx *ctx, int argc, char **argv) { return exec_full(); }
int cmd_catalog_unattend(struct cli_ctx *ctx, int argc, char **argv) { return exec_full(); }
int cmd_download(struct cli_ctx *ctx, int argc, char **argv) { return exec_full(); }

/* create --os / --iso: the whole create runs in phyllo-catalog, which
 * returns through its own cli_catalog_for_create; here nothing of it has
 * been done yet (cmd_create asks before it writes anything). */
int cli_catalog_for_create(struct cli_ctx *ctx, const char *os, const char *iso, bool unverified,
                           struct catalog_plan *plan, char **ret_iso) {
        return exec_full();
}

/* create --unattended: the answer file is made in phyllo-catalog too (the
 * whole create runs there; nothing has been written yet). */
int cli_catalog_unattended(const char *os, const char *iso, const char *profile, const char *password_file,
                           struct catalog_unattend *u, struct json_object *b) {
        return exec_full();
}

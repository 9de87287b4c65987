/* SPDX-License-Identifier: MIT */
/* An unattended install's answer by the catalog worker (worker.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "fileio.h"
#include "json-cleanup.h"
#include "worker.h"

/* password_file read for the caller: opened as checked, no symlink on the way
 * (a swap after the check would have root read another file into the
 * guest's answer). */
static int read_for_caller(const char *path, char **ret, phy_error *err) {
        _cleanup_close_ int fd = open_resolved(path, O_RDONLY | O_NONBLOCK, 0);
        struct stat st;
        char self[64];
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return phy_error_set(err, fd < 0 ? -fd : EINVAL, "cannot read the password file '%s': %s", path,
                                     fd < 0 ? strerror(-fd) : "not a regular file");
        snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
        size_t n = 0;
        int r = file_read_all(self, 4096, ret, &n);
        if (r < 0)
                return phy_error_set(err, -r, "cannot read the password file '%s': %s", path, strerror(-r));
        return 0;
}

int ops_unattended_answer(const struct ops_ctx *c, const struct ops_unattended *u, json_object **ret, phy_error *err) {
        _cleanup_free_ char *iso = NULL, *pwfile = NULL, *pw = NULL;
        int r;
        if (!u->iso)
                return phy_error_usage(err, "an unattended install needs the install media: give --iso FILE (or "
                                       "--os with a direct download)");
        if (!u->user || !u->password == !u->password_file)
                return phy_error_usage(err, "an unattended install needs a user and one of a password and a "
                                       "password file");
        if ((r = ops_input_path(c, "ISO", u->iso, &iso, err)) < 0)
                return r;
        /* the worker runs as us: as the caller when the caller is us */
        bool self = c->uid == geteuid();
        if (u->password_file && ((r = ops_input_path(c, "password file", u->password_file, &pwfile, err)) < 0 ||
                                 (!self && (r = read_for_caller(pwfile, &pw, err)) < 0)))
                return r;
        const char *args[32] = { "install", "--iso", iso, "--user", u->user };
        size_t n = 5;
        const char *const opt[][2] = {
                { "--os", u->os }, { "--profile", u->profile }, { "--timezone", u->timezone },
                { "--locale", u->locale }, { "--hostname", u->hostname }, { "--edition", u->edition },
                { "--password-file", pwfile && self ? pwfile : "/dev/stdin" },
        };
        for (size_t i = 0; i < ELEMENTSOF(opt); i++)
                if (opt[i][1]) {
                        args[n++] = opt[i][0];
                        args[n++] = opt[i][1];
                }
        if (u->drivers)
                args[n++] = "--drivers";
        args[n] = NULL;
        const char *input = pwfile && self ? NULL : pw ? pw : u->password;
        struct ops_worker_call wc = { .args = args, .input = input, .quiet = true };
        _cleanup_json_ json_object *j = NULL;
        r = ops_worker_run(&wc, &j, err);
        if (pw)
                explicit_bzero(pw, strlen(pw));
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(j, "install", NULL))
                return phy_error_set_kind(err, PHY_ERR_HOST, EPROTO, "the catalog worker's answer for an unattended "
                                          "install came without 'install'");
        *ret = TAKE_PTR(j);
        return 0;
}

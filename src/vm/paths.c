/* SPDX-License-Identifier: MIT */
/*
 * Where a definition's files may be (issue 12, docs/security.md).  A path
 * that is not in the VM's own directory is resolved (realpath) and must lie
 * under a directory the host administrator allowed (host.conf allow-paths);
 * without that key, per user: the user's home and the Phyllome home; in
 * system mode (phyllod --system): nothing beyond the VM dir.  A relative
 * path is relative to the VM dir and may not leave it.
 */
#include "vm.h"

#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "paths.h"
#include "host/host.h"

/* Process-wide, set once at startup before any thread (phyllo, phyllod). */
static struct {
        bool system;
        char *root;
} mode;

void vm_paths_configure(const char *root, bool system) {
        free(mode.root);
        mode.root = root ? strdup(root) : NULL;
        mode.system = system;
}

bool vm_paths_system(void) {
        return mode.system;
}

/* dir made canonical and pushed; a directory that does not exist is no
 * place a file can be in, and "/" is never pushed (it would allow all). */
static int push_real(strv *out, const char *dir) {
        char buf[PATH_MAX];
        if (!dir || dir[0] != '/' || !realpath(dir, buf) || strcmp(buf, "/") == 0)
                return 0;
        return strv_contains(out, buf) ? 0 : strv_push(out, buf);
}

static int allowed_from(const struct host_facts *conf, bool system, strv *ret, phy_error *err) {
        _cleanup_strv_ strv out = { 0 };
        int r;
        for (size_t i = 0; i < conf->allow_paths.n; i++)
                if ((r = push_real(&out, conf->allow_paths.v[i])) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
        if (!conf->allow_paths_set && !system) {
                /* The user's own files: $HOME (the user's to set), else passwd's. */
                const char *h = getenv("HOME");
                char buf[4096];
                struct passwd pw, *pwr = NULL;
                if ((!h || h[0] != '/') && getpwuid_r(geteuid(), &pw, buf, sizeof buf, &pwr) == 0 && pwr)
                        h = pwr->pw_dir;
                _cleanup_free_ char *home = NULL;
                phy_error ignore = { 0 };
                if (push_real(&out, h) < 0 ||
                    (phy_home(&home, &ignore) >= 0 && push_real(&out, home) < 0))
                        return phy_error_set(err, ENOMEM, "out of memory");
        }
        *ret = out;
        out = (strv) { 0 };
        return 0;
}

int vm_paths_allowed(const char *root, bool system, strv *ret, phy_error *err) {
        _cleanup_(host_facts_done) struct host_facts conf = { 0 };
        int r = host_conf_load(root, &conf, err);
        return r < 0 ? r : allowed_from(&conf, system, ret, err);
}

/* rel (relative to the VM dir) leaves it lexically: more ".." than names. */
static bool escapes(const char *rel) {
        int depth = 0;
        for (const char *p = rel; *p;) {
                size_t n = strcspn(p, "/");
                if (n == 2 && p[0] == '.' && p[1] == '.') {
                        if (--depth < 0)
                                return true;
                } else if (n > 0 && !(n == 1 && p[0] == '.'))
                        depth++;
                p += n;
                while (*p == '/')
                        p++;
        }
        return false;
}

/* path canonical: realpath, or for a file not made yet its directory's
 * realpath and its name (which may not be "." or ".."). */
static int canonical(const char *path, char out[static PATH_MAX]) {
        if (realpath(path, out))
                return 0;
        if (errno != ENOENT)
                return -errno;
        const char *slash = strrchr(path, '/');
        if (!slash || !slash[1] || strcmp(slash + 1, ".") == 0 || strcmp(slash + 1, "..") == 0)
                return -ENOENT;
        _cleanup_free_ char *dir = slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
        char d[PATH_MAX];
        if (!dir)
                return -ENOMEM;
        if (!realpath(dir, d))
                return -errno;
        if ((size_t) snprintf(out, PATH_MAX, "%s/%s", strcmp(d, "/") == 0 ? "" : d, slash + 1) >= PATH_MAX)
                return -ENAMETOOLONG;
        return 0;
}

/* vm_path_check with the VM dir's realpath already made (vd; NULL when it
 * has none): a definition's paths share it. */
static int path_check(const char *vmdir, const char *vd, const char *what, const char *path, const strv *allow,
                      char **ret_real, phy_error *err) {
        char real[PATH_MAX];
        if (path[0] != '/' && escapes(path))
                return phy_error_set(err, EPERM, "%s: the relative path '%s' leaves the VM's directory; a relative "
                                     "path names a file in the VM's directory", what, path);
        _cleanup_free_ char *abs = vm_path_resolve(vmdir, path);
        if (!abs)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = canonical(abs, real);
        if (r < 0)
                return phy_error_set(err, -r, "%s: cannot resolve '%s': %s", what, path, strerror(-r));
        bool ok = vd && path_is_below(real, vd);
        for (size_t i = 0; !ok && i < allow->n; i++)
                ok = path_is_below(real, allow->v[i]);
        if (!ok) {
                _cleanup_free_ char *list = allow->n ? strv_join(allow, ", ") : NULL;
                return phy_error_set(err, EPERM, "%s: '%s'%s%s%s is outside the VM's directory and the directories "
                                     "this host allows (%s); the administrator may add its directory to allow-paths "
                                     "in /etc/phyllome/host.conf (docs/security.md)", what, path,
                                     strcmp(real, path) ? " (" : "", strcmp(real, path) ? real : "",
                                     strcmp(real, path) ? ")" : "", list ? list : "none");
        }
        if (ret_real && !(*ret_real = strdup(real)))
                return phy_error_set(err, ENOMEM, "out of memory");
        return 0;
}

int vm_path_check(const char *vmdir, const char *what, const char *path, const strv *allow, char **ret_real,
                  phy_error *err) {
        char vd[PATH_MAX];
        return path_check(vmdir, realpath(vmdir, vd) ? vd : NULL, what, path, allow, ret_real, err);
}

static int check_one(const char *vmdir, const char *vd, const strv *allow, const char *section, const char *label,
                     const char *key, const char *path, phy_error *err) {
        char what[200];
        if (!path)
                return 0;
        snprintf(what, sizeof what, "[%s%s%s] %s", section, label ? " " : "", label ? label : "", key);
        return path_check(vmdir, vd, what, path, allow, NULL, err);
}

int vm_def_check_paths(const struct vm_def *d, const char *vmdir, const strv *allow, phy_error *err) {
        int r;
        char vd_buf[PATH_MAX];
        const char *vd = NULL;  /* made at the first path (a definition may name none) */
        bool vd_made = false;
#define ONE(section, label, key, path)                                                          \
        do {                                                                                    \
                if ((path) && !vd_made) {                                                       \
                        vd = realpath(vmdir, vd_buf) ? vd_buf : NULL;                           \
                        vd_made = true;                                                         \
                }                                                                               \
                if ((r = check_one(vmdir, vd, allow, section, label, key, path, err)) < 0)      \
                        return r;                                                               \
        } while (0)
        ONE("boot", NULL, "kernel", d->kernel);
        ONE("boot", NULL, "initrd", d->initrd);
        ONE("install", NULL, "media", d->install.media);
        ONE("install", NULL, "kernel", d->install.kernel);
        ONE("install", NULL, "initrd", d->install.initrd);
        for (size_t i = 0; i < d->n_disks; i++) {
                ONE("disk", d->disks[i].name, "path", d->disks[i].path);
                ONE("disk", d->disks[i].name, "key-file", d->disks[i].key_file);
        }
        for (size_t i = 0; i < d->n_cdroms; i++)
                ONE("cdrom", d->cdroms[i].name, "path", d->cdroms[i].path);
        for (size_t i = 0; i < d->n_shares; i++) {
                const struct vm_share *s = &d->shares[i];
                char real[PATH_MAX];
                _cleanup_free_ char *abs = vm_path_resolve(vmdir, s->path);
                /* The host's root is never shared, whatever allow-paths says. */
                if (abs && realpath(abs, real) && strcmp(real, "/") == 0)
                        return phy_error_set(err, EPERM, "[share %s] path: '%s' is the host's root directory; a "
                                             "share names a directory of its own", s->tag, s->path);
                ONE("share", s->tag, "path", s->path);
        }
        for (size_t i = 0; i < d->passthrough_roms.n; i++) {
                const char *eq = strchr(d->passthrough_roms.v[i], '=');
                ONE("passthrough", NULL, "rom", eq ? eq + 1 : NULL);
        }
#undef ONE
        return 0;
}

int vm_path_check_here_real(const char *vmdir, const char *what, const char *path, char **ret_real,
                            phy_error *err) {
        _cleanup_strv_ strv allow = { 0 };
        int r = vm_paths_allowed(phy_root(mode.root), mode.system, &allow, err);
        return r < 0 ? r : vm_path_check(vmdir, what, path, &allow, ret_real, err);
}

int vm_path_check_here(const char *vmdir, const char *what, const char *path, phy_error *err) {
        return vm_path_check_here_real(vmdir, what, path, NULL, err);
}

/* True when host.conf's passthrough-allow names address (or its device). */
static bool passthrough_listed(const struct host_facts *conf, const char *address) {
        for (size_t i = 0; i < conf->passthrough_allow.n; i++) {
                const char *e = conf->passthrough_allow.v[i];
                if (strncmp(e, address, 12) == 0 || (strncmp(e, address, 10) == 0 && e[10] == '.'))
                        return true;
        }
        return false;
}

int vm_def_check_devices_system(const struct vm_def *d, const struct host_facts *conf, phy_error *err) {
        for (size_t i = 0; i < d->passthrough.n; i++)
                if (!passthrough_listed(conf, d->passthrough.v[i]))
                        return phy_error_set(err, EPERM, "[passthrough] devices: PCI device %s is not in "
                                             "passthrough-allow of %s; in system mode a VM gets only host devices "
                                             "the administrator listed there (docs/security.md)",
                                             d->passthrough.v[i], conf->conf_path ? conf->conf_path : "host.conf");
        if (d->mdevs.n)
                return phy_error_set(err, EPERM, "[passthrough] mdev: mediated devices are root's to give in system "
                                     "mode; run phyllo as root for this VM (docs/security.md)");
        if (d->usb.n)
                return phy_error_set(err, EPERM, "[usb] devices: host USB devices are root's to give in system "
                                     "mode; use USB redirection over SPICE, or run phyllo as root (docs/security.md)");
        return 0;
}

int vm_def_check_here(const struct vm_def *d, const char *vmdir, phy_error *err) {
        _cleanup_(host_facts_done) struct host_facts conf = { 0 };
        _cleanup_strv_ strv allow = { 0 };
        int r = host_conf_load(phy_root(mode.root), &conf, err);
        if (r < 0 || (r = allowed_from(&conf, mode.system, &allow, err)) < 0 ||
            (r = vm_def_check_paths(d, vmdir, &allow, err)) < 0)
                return r;
        return mode.system ? vm_def_check_devices_system(d, &conf, err) : 0;
}

/* SPDX-License-Identifier: MIT */
#include "tools.h"

#include <dirent.h>
#include <stddef.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "caps.h"
#include "cleanup.h"
#include "fileio.h"
#include "exec.h"
#include "strv.h"

static bool is_file(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* $PATH first, then the usual places (a service's PATH may be minimal). */
static char *find_program(const char *name) {
        return exec_find_in_dirs(name, "/usr/bin:/usr/libexec:/usr/sbin");
}

static int find_one(const char *env, const char *name, char **ret, phy_error *err) {
        const char *v = getenv(env);
        if (v && *v) {
                if (!exec_is_program(v))
                        return phy_error_set(err, ENOENT, "%s is set to '%s', which is not an executable file; fix or unset it",
                                             env, v);
                *ret = strdup(v);
        } else
                *ret = find_program(name);
        return 0;
}

static bool json_strv_has(json_object *arr, const char *s) {
        if (!arr || !json_object_is_type(arr, json_type_array))
                return false;
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                if (json_object_is_type(e, json_type_string) && strcmp(json_object_get_string(e), s) == 0)
                        return true;
        }
        return false;
}

static const char *json_path_str(json_object *o, const char *a, const char *b) {
        json_object *x = NULL;
        if (!json_object_object_get_ex(o, a, &x))
                return NULL;
        if (b && !json_object_object_get_ex(x, b, &x))
                return NULL;
        return json_object_is_type(x, json_type_string) ? json_object_get_string(x) : NULL;
}

/* Does the descriptor target x86_64 q35 machines?  Patterns are globs such
 * as "pc-q35-*"; a generic q35 machine name stands for all versions. */
static bool targets_q35(json_object *d) {
        json_object *targets = NULL;
        if (!json_object_object_get_ex(d, "targets", &targets) || !json_object_is_type(targets, json_type_array))
                return false;
        for (size_t i = 0; i < json_object_array_length(targets); i++) {
                json_object *t = json_object_array_get_idx(targets, i), *machines = NULL;
                const char *arch = json_path_str(t, "architecture", NULL);
                if (!arch || strcmp(arch, "x86_64") != 0 || !json_object_object_get_ex(t, "machines", &machines) ||
                    !json_object_is_type(machines, json_type_array))
                        continue;
                for (size_t k = 0; k < json_object_array_length(machines); k++) {
                        const char *pat = json_object_get_string(json_object_array_get_idx(machines, k));
                        if (pat && fnmatch(pat, "pc-q35-99.0", 0) == 0)
                                return true;
                }
        }
        return false;
}

/* Looks at one descriptor; fills the pair of slots it qualifies for. */
static void consider_descriptor(const char *path, struct qemu_tools *t) {
        _cleanup_free_ char *text = NULL;
        if (file_read_all(path, 1024 * 1024, &text, NULL) < 0)
                return;
        json_object *d = json_tokener_parse(text);
        if (!d)
                return;         /* QEMU skips a broken descriptor too */
        json_object *ifaces = NULL, *features = NULL;
        json_object_object_get_ex(d, "interface-types", &ifaces);
        json_object_object_get_ex(d, "features", &features);
        const char *device = json_path_str(d, "mapping", "device");
        json_object *mapping = NULL;
        json_object_object_get_ex(d, "mapping", &mapping);
        const char *code = json_path_str(mapping, "executable", "filename");
        const char *code_fmt = json_path_str(mapping, "executable", "format");
        const char *vars = json_path_str(mapping, "nvram-template", "filename");
        const char *vars_fmt = json_path_str(mapping, "nvram-template", "format");
        /* Raw split flash images only: that is what the argv builder maps. */
        if (!json_strv_has(ifaces, "uefi") || !device || strcmp(device, "flash") != 0 || !code || !vars ||
            (code_fmt && strcmp(code_fmt, "raw") != 0) || (vars_fmt && strcmp(vars_fmt, "raw") != 0) ||
            !targets_q35(d) || !is_file(code) || !is_file(vars)) {
                json_object_put(d);
                return;
        }
        bool sb = json_strv_has(features, "secure-boot");
        bool keys = json_strv_has(features, "enrolled-keys");
        bool smm = json_strv_has(features, "requires-smm");
        char **slot_code = NULL, **slot_vars = NULL;
        if (!sb && !smm) {
                slot_code = &t->ovmf_code;
                slot_vars = &t->ovmf_vars;
        } else if (sb && keys && smm) {
                slot_code = &t->ovmf_code_sb;
                slot_vars = &t->ovmf_vars_ms;
        }
        if (slot_code && !*slot_code && !*slot_vars) {
                *slot_code = strdup(code);
                *slot_vars = strdup(vars);
        }
        json_object_put(d);
}

static int cmp_base(const void *a, const void *b) {
        return strcmp(strrchr(*(char *const *) a, '/'), strrchr(*(char *const *) b, '/'));
}

int qemu_ovmf_from_descriptors(const char *const *dirs, struct qemu_tools *t, phy_error *err) {
        /* QEMU's firmware.json rules: descriptors from all directories are
         * ordered by file name; a name in an earlier (higher priority)
         * directory hides the same name in later ones, and an empty file
         * hides it altogether. */
        _cleanup_strv_ strv names = { 0 };
        _cleanup_strv_ strv paths = { 0 };
        for (size_t i = 0; dirs[i]; i++) {
                DIR *d = opendir(dirs[i]);
                if (!d)
                        continue;
                for (struct dirent *de; (de = readdir(d));) {
                        size_t l = strlen(de->d_name);
                        if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0 || strv_contains(&names, de->d_name))
                                continue;
                        if (strv_push(&names, de->d_name) < 0 || strv_pushf(&paths, "%s/%s", dirs[i], de->d_name) < 0) {
                                closedir(d);
                                return phy_error_set(err, ENOMEM, "out of memory");
                        }
                }
                closedir(d);
        }
        /* Sort the full paths by their base name. */
        _cleanup_free_ char **order = calloc(paths.n + 1, sizeof *order);
        if (!order)
                return phy_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < paths.n; i++)
                order[i] = paths.v[i];
        qsort(order, paths.n, sizeof *order, cmp_base);
        for (size_t i = 0; i < paths.n; i++) {
                struct stat st;
                if (stat(order[i], &st) < 0 || st.st_size == 0)
                        continue;
                consider_descriptor(order[i], t);
        }
        return 0;
}

static void ovmf_fallback(const char *dir, struct qemu_tools *t) {
        static const struct {
                size_t off_code, off_vars;
                const char *code, *vars;
        } known[] = {
                { offsetof(struct qemu_tools, ovmf_code), offsetof(struct qemu_tools, ovmf_vars),
                  "OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd" },
                { offsetof(struct qemu_tools, ovmf_code_sb), offsetof(struct qemu_tools, ovmf_vars_ms),
                  "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd" },
        };
        for (size_t i = 0; i < ELEMENTSOF(known); i++) {
                char **code = (char **) ((char *) t + known[i].off_code);
                char **vars = (char **) ((char *) t + known[i].off_vars);
                if (*code || *vars)
                        continue;
                _cleanup_free_ char *c = NULL, *v = NULL;
                if (asprintf(&c, "%s/%s", dir, known[i].code) < 0 || asprintf(&v, "%s/%s", dir, known[i].vars) < 0)
                        return;
                if (is_file(c) && is_file(v)) {
                        *code = TAKE_PTR(c);
                        *vars = TAKE_PTR(v);
                }
        }
}

int qemu_tools_find_some(struct qemu_tools *t, unsigned what, phy_error *err) {
        int r;
        if (((what & QEMU_TOOL_QEMU) && !t->qemu &&
             (r = find_one("PHYLLOME_QEMU", "qemu-system-x86_64", &t->qemu, err)) < 0) ||
            ((what & QEMU_TOOL_QEMU_IMG) && !t->qemu_img &&
             (r = find_one("PHYLLOME_QEMU_IMG", "qemu-img", &t->qemu_img, err)) < 0) ||
            ((what & QEMU_TOOL_SWTPM) && !t->swtpm &&
             (r = find_one("PHYLLOME_SWTPM", "swtpm", &t->swtpm, err)) < 0) ||
            ((what & QEMU_TOOL_SWTPM) && !t->swtpm_setup &&
             (r = find_one("PHYLLOME_SWTPM_SETUP", "swtpm_setup", &t->swtpm_setup, err)) < 0))
                return r;
        if ((what & QEMU_TOOL_QEMU) && t->qemu && !t->qboot)
                t->qboot = qemu_tools_qboot(t->qemu);
        if (!(what & QEMU_TOOL_OVMF) || t->ovmf_looked)
                return 0;
        t->ovmf_looked = true;
        const char *ovmf_dir = getenv("PHYLLOME_OVMF_DIR");
        if (ovmf_dir && *ovmf_dir) {
                /* A test or a hand-built firmware: Debian's names in that folder only. */
                ovmf_fallback(ovmf_dir, t);
                return 0;
        }
        /* Highest priority first, as QEMU's firmware.json orders them. */
        _cleanup_free_ char *user = NULL;
        const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
        if (xdg && xdg[0] == '/' ? asprintf(&user, "%s/qemu/firmware", xdg) < 0 :
            home && home[0] == '/' ? asprintf(&user, "%s/.config/qemu/firmware", home) < 0 : false)
                user = NULL;
        const char *dirs[4] = { 0 };
        size_t nd = 0;
        if (user)
                dirs[nd++] = user;
        dirs[nd++] = "/etc/qemu/firmware";
        dirs[nd++] = "/usr/share/qemu/firmware";
        if ((r = qemu_ovmf_from_descriptors(dirs, t, err)) < 0)
                return r;
        ovmf_fallback("/usr/share/OVMF", t);
        return 0;
}

int qemu_tools_find(struct qemu_tools *ret, phy_error *err) {
        struct qemu_tools t = { 0 };
        int r = qemu_tools_find_some(&t, QEMU_TOOL_ALL, err);
        if (r < 0) {
                qemu_tools_done(&t);
                return r;
        }
        *ret = t;
        return 0;
}

void qemu_tools_done(struct qemu_tools *t) {
        if (!t)
                return;
        free(t->qemu);
        free(t->qemu_img);
        free(t->swtpm);
        free(t->swtpm_setup);
        free(t->ovmf_code);
        free(t->ovmf_vars);
        free(t->ovmf_code_sb);
        free(t->ovmf_vars_ms);
        free(t->qboot);
        *t = (struct qemu_tools) { 0 };
}

char *qemu_tools_qboot(const char *qemu) {
        _cleanup_free_ char *prefix = qemu_binary_prefix(qemu);
        char *p = NULL;
        if (!prefix || asprintf(&p, "%s/share/qemu/qboot.rom", prefix) < 0)
                return NULL;
        struct stat st;
        if (stat(p, &st) < 0 || !S_ISREG(st.st_mode)) {
                free(p);
                return NULL;
        }
        return p;
}

int qemu_img_create(const char *qemu_img, const char *path, const char *format, uint64_t size, phy_error *err) {
        char sizebuf[32], msg[1024];
        snprintf(sizebuf, sizeof sizebuf, "%llu", (unsigned long long) size);
        char *argv[] = { (char *) qemu_img, (char *) "create", (char *) "-q", (char *) "-f", (char *) format,
                         (char *) path, sizebuf, NULL };
        int r = exec_run(argv, NULL, msg, sizeof msg);
        if (r == -ENOEXEC)
                return phy_error_set(err, r, "cannot run '%s' to create the disk image '%s'", qemu_img, path);
        if (r < 0)
                return phy_error_set(err, r, "'%s create' failed for the disk image '%s': %s", qemu_img, path,
                                     msg[0] ? msg : strerror(-r));
        return 0;
}

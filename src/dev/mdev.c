/* SPDX-License-Identifier: MIT */
/* Mediated devices (mdev_supported_types) and SR-IOV virtual functions. */
#include "dev.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "host/pci.h"
#include "value.h"

void dev_mdev_types_done(struct dev_mdev_types *t) {
        if (!t)
                return;
        for (size_t i = 0; i < t->n; i++) {
                free(t->v[i].id);
                free(t->v[i].name);
                free(t->v[i].description);
                free(t->v[i].device_api);
        }
        free(t->v);
        t->v = NULL;
        t->n = 0;
}

static char *type_attr(const char *root, const char *parent, const char *type, const char *attr) {
        _cleanup_free_ char *rel = NULL;
        char *v = NULL;
        if (asprintf(&rel, "/sys/bus/pci/devices/%s/mdev_supported_types/%s/%s", parent, type, attr) < 0)
                return NULL;
        if (root_read_attr(root, rel, &v) < 0)
                return NULL;
        return v;
}

static int cmp_type(const void *a, const void *b) {
        return strcmp(((const struct dev_mdev_type *) a)->id, ((const struct dev_mdev_type *) b)->id);
}

static int check_parent(const char *root, const char *parent, phy_error *err) {
        _cleanup_free_ char *rel = NULL;
        if (!value_pci_addr_valid(parent, true))
                return phy_error_usage(err, "'%s' is not a PCI address (want the form 0000:00:02.0)", parent);
        if (asprintf(&rel, "/sys/bus/pci/devices/%s", parent) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (!root_exists(root, rel))
                return phy_error_set(err, ENODEV, "there is no PCI device %s on this host (see 'phyllo host devices')",
                                     parent);
        return 0;
}

int dev_mdev_types(const char *root, const char *parent, struct dev_mdev_types *ret, phy_error *err) {
        _cleanup_(dev_mdev_types_done) struct dev_mdev_types t = { 0 };
        _cleanup_free_ char *rel = NULL, *dir = NULL;
        int r = check_parent(root, parent, err);
        if (r < 0)
                return r;
        if (asprintf(&rel, "/sys/bus/pci/devices/%s/mdev_supported_types", parent) < 0 || !(dir = root_path(root, rel)))
                return phy_error_set(err, ENOMEM, "out of memory");
        DIR *d = opendir(dir);
        if (!d) {
                *ret = t;
                return 0;  /* no mediated devices on this one */
        }
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_name[0] == '.')
                        continue;
                struct dev_mdev_type *v = realloc(t.v, (t.n + 1) * sizeof *v);
                if (!v) {
                        closedir(d);
                        return phy_error_set(err, ENOMEM, "out of memory");
                }
                t.v = v;
                struct dev_mdev_type *m = &t.v[t.n++];
                *m = (struct dev_mdev_type) { .id = strdup(de->d_name), .available = -1 };
                m->name = type_attr(root, parent, de->d_name, "name");
                m->description = type_attr(root, parent, de->d_name, "description");
                m->device_api = type_attr(root, parent, de->d_name, "device_api");
                _cleanup_free_ char *avail = type_attr(root, parent, de->d_name, "available_instances");
                unsigned long long n;
                if (avail && parse_uint(avail, LONG_MAX, &n) >= 0)
                        m->available = (long) n;
                if (!m->id) {
                        closedir(d);
                        return phy_error_set(err, ENOMEM, "out of memory");
                }
        }
        closedir(d);
        if (t.n > 1)
                qsort(t.v, t.n, sizeof *t.v, cmp_type);
        *ret = t;
        t = (struct dev_mdev_types) { 0 };
        return 0;
}

static int write_attr(const char *root, const char *path, const char *value, dev_kernel_hook hook, void *userdata,
                      phy_error *err) {
        struct dev_write w = { .path = (char *) path, .value = (char *) value };
        struct dev_plan p = { .v = &w, .n = 1 };
        return dev_plan_execute(root, &p, false, hook, userdata, err);
}

int dev_mdev_create(const char *root, const char *parent, const char *type, const char *uuid, dev_kernel_hook hook,
                    void *userdata, phy_error *err) {
        _cleanup_(dev_mdev_types_done) struct dev_mdev_types t = { 0 };
        if (!value_uuid_valid(uuid, true))
                return phy_error_usage(err, "'%s' is not a UUID (lower-case, 8-4-4-4-12 hex digits)", uuid);
        int r = dev_mdev_types(root, parent, &t, err);
        if (r < 0)
                return r;
        const struct dev_mdev_type *m = NULL;
        for (size_t i = 0; i < t.n; i++)
                if (strcmp(t.v[i].id, type) == 0)
                        m = &t.v[i];
        if (!m)
                return phy_error_set(err, ENOENT, "PCI device %s offers no mediated device type '%s' (see 'phyllo "
                                     "device mdev-types %s')", parent, type, parent);
        if (m->available == 0)
                return phy_error_set(err, ENOSPC, "mediated device type '%s' of PCI device %s has no instance left "
                                     "(available_instances is 0); remove one first", type, parent);
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "/sys/bus/pci/devices/%s/mdev_supported_types/%s/create", parent, type) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        return write_attr(root, path, uuid, hook, userdata, err);
}

int dev_mdev_remove(const char *root, const char *uuid, dev_kernel_hook hook, void *userdata, phy_error *err) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        if (!value_uuid_valid(uuid, true))
                return phy_error_usage(err, "'%s' is not a UUID (lower-case, 8-4-4-4-12 hex digits)", uuid);
        if (asprintf(&dir, "/sys/bus/mdev/devices/%s", uuid) < 0 || asprintf(&path, "%s/remove", dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (!root_exists(root, dir))
                return phy_error_set(err, ENOENT, "there is no mediated device %s on this host", uuid);
        return write_attr(root, path, "1", hook, userdata, err);
}

static int read_uint_attr(const char *root, const char *pf, const char *attr, unsigned long long *ret) {
        _cleanup_free_ char *rel = NULL, *v = NULL;
        if (asprintf(&rel, "/sys/bus/pci/devices/%s/%s", pf, attr) < 0)
                return -ENOMEM;
        int r = root_read_attr(root, rel, &v);
        return r < 0 ? r : parse_uint(v, UINT_MAX, ret);
}

int dev_sriov_set(const char *root, const char *pf, unsigned n, dev_kernel_hook hook, void *userdata,
                  phy_error *err) {
        unsigned long long total, cur;
        int r = check_parent(root, pf, err);
        if (r < 0)
                return r;
        if (read_uint_attr(root, pf, "sriov_totalvfs", &total) < 0 || read_uint_attr(root, pf, "sriov_numvfs", &cur) < 0)
                return phy_error_set(err, EOPNOTSUPP, "PCI device %s has no SR-IOV (no sriov_totalvfs / sriov_numvfs)",
                                     pf);
        if (n > total)
                return phy_error_set_kind(err, PHY_ERR_USAGE, ERANGE, "PCI device %s supports at most %llu virtual functions, not %u", pf,
                                     total, n);
        if (cur == n)
                return 0;
        _cleanup_free_ char *path = NULL;
        char val[16];
        if (asprintf(&path, "/sys/bus/pci/devices/%s/sriov_numvfs", pf) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* The kernel refuses to change a non-zero count directly: 0 first. */
        if (cur > 0 && n > 0 && (r = write_attr(root, path, "0", hook, userdata, err)) < 0)
                return r;
        snprintf(val, sizeof val, "%u", n);
        return write_attr(root, path, val, hook, userdata, err);
}

int dev_sriov_vfs(const char *root, const char *pf, strv *ret, phy_error *err) {
        _cleanup_strv_ strv out = { 0 };
        int r = check_parent(root, pf, err);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < 256; i++) {
                _cleanup_free_ char *rel = NULL, *path = NULL;
                if (asprintf(&rel, "/sys/bus/pci/devices/%s/virtfn%u", pf, i) < 0 || !(path = root_path(root, rel)))
                        return phy_error_set(err, ENOMEM, "out of memory");
                char buf[PATH_MAX];
                ssize_t n = readlink(path, buf, sizeof buf - 1);
                if (n <= 0)
                        break;
                buf[n] = '\0';
                const char *slash = strrchr(buf, '/');
                if ((r = strv_push(&out, slash ? slash + 1 : buf)) < 0)
                        return r;
        }
        *ret = out;
        out = (strv) { 0 };
        return 0;
}

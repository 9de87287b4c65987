/* SPDX-License-Identifier: MIT */
#include "pci.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "value.h"

static int read_hex_attr(const char *root, const char *address, const char *attr, unsigned long *ret) {
        _cleanup_free_ char *path = NULL, *v = NULL;
        if (asprintf(&path, "/sys/bus/pci/devices/%s/%s", address, attr) < 0)
                return -ENOMEM;
        int r = root_read_attr(root, path, &v);
        if (r < 0)
                return r;
        char *end = NULL;
        errno = 0;
        unsigned long x = strtoul(v, &end, 16);
        if (errno || end == v || *end)
                return -EINVAL;
        *ret = x;
        return 0;
}

/* Basename of a symlink's target below the device directory, or NULL. */
char *host_pci_link_basename(const char *root, const char *address, const char *name) {
        _cleanup_free_ char *rel = NULL, *path = NULL;
        if (asprintf(&rel, "/sys/bus/pci/devices/%s/%s", address, name) < 0)
                return NULL;
        if (!(path = root_path(root, rel)))
                return NULL;
        char buf[PATH_MAX];
        ssize_t n = readlink(path, buf, sizeof buf - 1);
        if (n <= 0)
                return NULL;
        buf[n] = '\0';
        char *slash = strrchr(buf, '/');
        return strdup(slash ? slash + 1 : buf);
}

static int device_group(const char *root, const char *address) {
        _cleanup_free_ char *g = host_pci_link_basename(root, address, "iommu_group");
        unsigned long long v;
        if (!g || parse_uint(g, INT_MAX, &v) < 0)
                return -1;
        return (int) v;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sorted names of a directory's entries (no dot entries). */
static int list_dir(const char *root, const char *dir, strv *ret) {
        _cleanup_free_ char *p = root_path(root, dir);
        if (!p)
                return -ENOMEM;
        DIR *d = opendir(p);
        if (!d)
                return -errno;
        int r = 0;
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_name[0] == '.')
                        continue;
                if ((r = strv_push(ret, de->d_name)) < 0)
                        break;
        }
        closedir(d);
        if (r < 0)
                return r;
        if (ret->n > 1)
                qsort(ret->v, ret->n, sizeof *ret->v, cmp_str);
        return 0;
}

void host_iommu_group_done(struct host_iommu_group *g) {
        if (!g)
                return;
        strv_done(&g->members);
        strv_done(&g->with);
        strv_done(&g->blockers);
        g->group = -1;
}

static bool same_device(const char *a, const char *b) {
        /* domain:bus:slot is everything before the '.' */
        const char *dot = strrchr(a, '.');
        size_t n = dot ? (size_t) (dot - a) : strlen(a);
        return strncmp(a, b, n) == 0 && b[n] == '.';
}

int host_iommu_group_check(const char *root, const char *address, struct host_iommu_group *ret, phy_error *err) {
        struct host_iommu_group g = { .group = -1 };
        _cleanup_free_ char *dev = NULL;
        if (!value_pci_addr_valid(address, true))
                return phy_error_usage(err, "'%s' is not a PCI address (want the form 0000:01:00.0)", address ? address : "");
        if (asprintf(&dev, "/sys/bus/pci/devices/%s", address) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (!root_exists(root, dev))
                return phy_error_set(err, ENODEV, "there is no PCI device %s on this host (see 'phyllo host devices')", address);
        g.group = device_group(root, address);
        if (g.group < 0) {
                *ret = g;
                return 0;
        }
        _cleanup_free_ char *gdir = NULL;
        if (asprintf(&gdir, "/sys/kernel/iommu_groups/%d/devices", g.group) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = list_dir(root, gdir, &g.members);
        if (r < 0) {
                host_iommu_group_done(&g);
                return phy_error_set(err, r, "cannot list IOMMU group %d of PCI device %s (%s): %s", g.group, address,
                                     gdir, strerror(-r));
        }
        for (size_t i = 0; i < g.members.n && r >= 0; i++) {
                const char *m = g.members.v[i];
                unsigned long cls = 0;
                if (strcmp(m, address) == 0)
                        continue;
                if (same_device(address, m))
                        r = strv_push(&g.with, m);
                else if (read_hex_attr(root, m, "class", &cls) >= 0 && (cls >> 8) == 0x0604)
                        continue;  /* bridges carry no DMA of their own */
                else
                        r = strv_push(&g.blockers, m);
        }
        if (r < 0) {
                host_iommu_group_done(&g);
                return r;
        }
        *ret = g;
        return 0;
}

int host_iommu_group_require_alone(const char *root, const char *address, phy_error *err) {
        _cleanup_(host_iommu_group_done) struct host_iommu_group g = { .group = -1 };
        int r = host_iommu_group_check(root, address, &g, err);
        if (r < 0)
                return r;
        if (g.group < 0)
                return phy_error_set(err, ENODEV,
                                     "PCI device %s has no IOMMU group: enable VT-d/AMD-Vi in the firmware setup and "
                                     "the IOMMU on the kernel command line (see 'phyllo host check')", address);
        if (g.blockers.n == 0)
                return 0;
        _cleanup_free_ char *others = strv_join(&g.blockers, ", ");
        return phy_error_set(err, EBUSY,
                             "PCI device %s shares IOMMU group %d with %s; give all of them to the VM, or move the "
                             "card to a slot with its own group", address, g.group, others ? others : "other devices");
}

/* ---- pci.ids ---- */

static const char *base_class_name(unsigned base) {
        static const char *const names[] = {
                "Unclassified device", "Mass storage controller", "Network controller", "Display controller",
                "Multimedia controller", "Memory controller", "Bridge", "Communication controller",
                "Generic system peripheral", "Input device controller", "Docking station", "Processor",
                "Serial bus controller", "Wireless controller", "Intelligent controller",
                "Satellite communications controller", "Encryption controller", "Signal processing controller",
                "Processing accelerators", "Non-Essential Instrumentation",
        };
        return base < ELEMENTSOF(names) ? names[base] : "Unassigned class";
}

static bool hex4_at(const char *s) {
        for (int i = 0; i < 4; i++)
                if (!isxdigit((unsigned char) s[i]))
                        return false;
        return true;
}

static char *dup_name(const char *s) {
        while (*s == ' ')
                s++;
        size_t n = strcspn(s, "\n");
        return strndup(s, n);
}

int pci_ids_lookup(const char *root, struct pci_ids_query *q, size_t n) {
        _cleanup_free_ char *path = root_path(root, "/usr/share/misc/pci.ids");
        if (!path)
                return -ENOMEM;
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (f) {
                /* One pass: vendor blocks, then "C xx" class blocks at the end. */
                char line[512];
                bool vendor_wanted = false, in_classes = false;
                char vendor[5] = "", cls[3] = "";
                while (fgets(line, sizeof line, f)) {
                        if (line[0] == '#' || line[0] == '\n')
                                continue;
                        if (line[0] == 'C' && line[1] == ' ') {
                                in_classes = true;
                                vendor_wanted = false;
                                memcpy(cls, line + 2, 2);
                                cls[2] = '\0';
                                continue;
                        }
                        if (in_classes) {
                                /* "\txx  Subclass name" */
                                if (line[0] != '\t' || line[1] == '\t')
                                        continue;
                                for (size_t i = 0; i < n; i++) {
                                        char want[5];
                                        snprintf(want, sizeof want, "%02x%02x", (q[i].class_code >> 16) & 0xff,
                                                 (q[i].class_code >> 8) & 0xff);
                                        if (!q[i].class_name && strncasecmp(want, cls, 2) == 0 &&
                                            strncasecmp(want + 2, line + 1, 2) == 0 && line[3] == ' ')
                                                q[i].class_name = dup_name(line + 4);
                                }
                                continue;
                        }
                        if (line[0] != '\t' && hex4_at(line) && line[4] == ' ') {
                                memcpy(vendor, line, 4);
                                vendor[4] = '\0';
                                vendor_wanted = false;
                                for (size_t i = 0; i < n; i++)
                                        if (strcasecmp(q[i].vendor_id, vendor) == 0) {
                                                vendor_wanted = true;
                                                if (!q[i].vendor_name)
                                                        q[i].vendor_name = dup_name(line + 5);
                                        }
                                continue;
                        }
                        if (vendor_wanted && line[0] == '\t' && line[1] != '\t' && hex4_at(line + 1) && line[5] == ' ')
                                for (size_t i = 0; i < n; i++)
                                        if (!q[i].device_name && strcasecmp(q[i].vendor_id, vendor) == 0 &&
                                            strncasecmp(q[i].device_id, line + 1, 4) == 0)
                                                q[i].device_name = dup_name(line + 6);
                }
        }
        for (size_t i = 0; i < n; i++)
                if (!q[i].class_name && !(q[i].class_name = strdup(base_class_name(q[i].class_code >> 16))))
                        return -ENOMEM;
        return 0;
}

/* ---- listing ---- */

static void pci_device_done(struct host_pci_device *d) {
        free(d->vendor_name);
        free(d->device_name);
        free(d->class_name);
        free(d->driver);
        strv_done(&d->group_with);
        strv_done(&d->group_blockers);
}

void host_pci_list_done(struct host_pci_list *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++)
                pci_device_done(&l->v[i]);
        free(l->v);
        l->v = NULL;
        l->n = 0;
}

static int read_id(const char *root, const char *address, const char *attr, char out[8]) {
        unsigned long v;
        int r = read_hex_attr(root, address, attr, &v);
        if (r < 0)
                return r;
        snprintf(out, 8, "%04lx", v & 0xffff);
        return 0;
}

/* base_class < 0: every device; else only those of that base class (the
 * rest is never read further, nor looked up in pci.ids). */
static int pci_list(const char *root, int base_class, struct host_pci_list *ret, phy_error *err) {
        _cleanup_strv_ strv names = { 0 };
        _cleanup_(host_pci_list_done) struct host_pci_list l = { 0 };
        int r = list_dir(root, "/sys/bus/pci/devices", &names);
        if (r == -ENOENT) {
                *ret = l;
                return 0;  /* no PCI bus (some VMs): an empty list */
        }
        if (r < 0)
                return phy_error_set(err, r, "cannot list /sys/bus/pci/devices below '%s': %s", root ? root : "/", strerror(-r));
        if (names.n == 0) {
                *ret = l;
                return 0;
        }
        l.v = calloc(names.n, sizeof *l.v);
        _cleanup_free_ struct pci_ids_query *q = calloc(names.n, sizeof *q);
        if (!l.v || !q)
                return phy_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < names.n; i++) {
                const char *a = names.v[i];
                struct host_pci_device *d = &l.v[l.n];
                unsigned long cls = 0;
                if (!value_pci_addr_valid(a, true) || strlen(a) >= sizeof d->address)
                        continue;
                snprintf(d->address, sizeof d->address, "%s", a);
                /* The class first: a device of another class costs one read
                 * (a start lists the GPUs: issue 20). */
                if (read_hex_attr(root, a, "class", &cls) < 0)
                        return phy_error_set(err, EIO, "cannot read the class of PCI device %s below '%s'", a,
                                             root ? root : "/");
                if (base_class >= 0 && (int) ((cls >> 16) & 0xff) != base_class) {
                        *d = (struct host_pci_device) { 0 };
                        continue;
                }
                if (read_id(root, a, "vendor", d->vendor_id) < 0 || read_id(root, a, "device", d->device_id) < 0)
                        return phy_error_set(err, EIO, "cannot read class, vendor and device of PCI device %s below '%s'",
                                             a, root ? root : "/");
                d->class_code = (uint32_t) cls;
                d->driver = host_pci_link_basename(root, a, "driver");
                l.n++;
                _cleanup_(host_iommu_group_done) struct host_iommu_group g = { .group = -1 };
                if ((r = host_iommu_group_check(root, a, &g, err)) < 0)
                        return r;
                d->iommu_group = g.group;
                d->assignable = g.group >= 0 && g.blockers.n == 0;
                d->group_with = g.with;
                d->group_blockers = g.blockers;
                g.with = (strv) { 0 };
                g.blockers = (strv) { 0 };
        }
        for (size_t i = 0; i < l.n; i++)
                q[i] = (struct pci_ids_query) { .vendor_id = l.v[i].vendor_id, .device_id = l.v[i].device_id,
                                                .class_code = l.v[i].class_code };
        if (l.n > 0 && (r = pci_ids_lookup(root, q, l.n)) < 0)
                return r;
        for (size_t i = 0; i < l.n; i++) {
                l.v[i].vendor_name = q[i].vendor_name;
                l.v[i].device_name = q[i].device_name;
                l.v[i].class_name = q[i].class_name;
        }
        *ret = l;
        l = (struct host_pci_list) { 0 };
        return 0;
}

int host_pci_list(const char *root, struct host_pci_list *ret, phy_error *err) {
        return pci_list(root, -1, ret, err);
}

int host_pci_list_class(const char *root, unsigned base_class, struct host_pci_list *ret, phy_error *err) {
        return pci_list(root, (int) (base_class & 0xff), ret, err);
}

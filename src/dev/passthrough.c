/* SPDX-License-Identifier: MIT */
/* PCI passthrough: which devices attaching one means, and what the host needs itself. */
#include "dev.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "host/host.h"
#include "host/pci.h"

char *dev_pci_driver(const char *root, const char *address) {
        return host_pci_link_basename(root, address, "driver");
}

/* True when the resolved sysfs path of block device `disk` passes through
 * the PCI device `address` (a path component equal to it). */
static bool disk_behind(const char *root, const char *disk, const char *address) {
        static const char *const links[] = { "", "/device", "/device/device" };
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                _cleanup_free_ char *rel = NULL, *p = NULL, *real = NULL;
                if (asprintf(&rel, "/sys/block/%s%s", disk, links[i]) < 0 || !(p = root_path(root, rel)))
                        return false;
                if (!(real = realpath(p, NULL)))
                        continue;
                size_t al = strlen(address);
                for (char *s = real; (s = strstr(s, address)); s += al)
                        if (s[-1] == '/' && (s[al] == '/' || s[al] == '\0'))
                                return true;
        }
        return false;
}

char *dev_pci_host_use(const char *root, const char *address) {
        char *why = NULL;
        _cleanup_free_ char *drv = dev_pci_driver(root, address), *rel = NULL, *bv = NULL;
        if (asprintf(&rel, "/sys/bus/pci/devices/%s/boot_vga", address) < 0)
                return NULL;
        if (drv && strcmp(drv, "vfio-pci") != 0 && root_read_attr(root, rel, &bv) >= 0 && strcmp(bv, "1") == 0) {
                if (asprintf(&why, "it is the host's boot display (boot_vga) and driver '%s' drives it", drv) < 0)
                        return NULL;
                return why;
        }
        _cleanup_(host_facts_done) struct host_facts h = { 0 };
        phy_error e = { 0 };
        if (host_facts_load(root, &h, &e) >= 0 && h.storage_device && disk_behind(root, h.storage_device, address))
                if (asprintf(&why, "it holds the host's root filesystem (/dev/%s)", h.storage_device) < 0)
                        return NULL;
        return why;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* "0000:00:14.2 (xhci_hcd)" or "0000:00:14.2 (no driver)" for each. */
static char *describe_members(const char *root, const strv *s) {
        _cleanup_strv_ strv parts = { 0 };
        for (size_t i = 0; i < s->n; i++) {
                _cleanup_free_ char *d = dev_pci_driver(root, s->v[i]);
                if (d ? strv_pushf(&parts, "%s (driver %s)", s->v[i], d) : strv_pushf(&parts, "%s (no driver)", s->v[i]))
                        return NULL;
        }
        return strv_join(&parts, ", ");
}

int dev_pci_attach_plan(const char *root, const char *address, const struct dev_attach_opts *opts, strv *ret_add,
                        phy_error *err) {
        _cleanup_(host_iommu_group_done) struct host_iommu_group g = { .group = -1 };
        _cleanup_strv_ strv add = { 0 }, others = { 0 };
        int r = host_iommu_group_check(root, address, &g, err);
        if (r < 0)
                return r;
        if (g.group < 0)
                return host_iommu_group_require_alone(root, address, err);
        if ((r = strv_push(&add, address)) < 0)
                return r;
        for (size_t i = 0; i < g.with.n; i++)
                if ((r = strv_push(&add, g.with.v[i])) < 0)
                        return r;
        for (size_t i = 0; i < g.blockers.n; i++)
                if (!(opts->attached && strv_contains(opts->attached, g.blockers.v[i])) &&
                    (r = strv_push(&others, g.blockers.v[i])) < 0)
                        return r;
        if (others.n > 0 && !opts->with_group) {
                _cleanup_free_ char *list = describe_members(root, &others);
                return phy_error_set(err, EBUSY,
                                     "PCI device %s shares IOMMU group %d with %s; these would be taken from the "
                                     "host too: pass --with-group to give the VM the whole group, or move the card to "
                                     "a slot with its own group", address, g.group, list ? list : "other devices");
        }
        for (size_t i = 0; i < others.n; i++)
                if ((r = strv_push(&add, others.v[i])) < 0)
                        return r;
        for (size_t i = 0; i < add.n && !opts->force; i++) {
                _cleanup_free_ char *why = dev_pci_host_use(root, add.v[i]);
                if (why)
                        return phy_error_set(err, EPERM,
                                             "PCI device %s (IOMMU group %d) is in use by the host: %s; pass --force "
                                             "to give it to the VM anyway (the host loses it while the VM runs)",
                                             add.v[i], g.group, why);
        }
        _cleanup_strv_ strv out = { 0 };
        for (size_t i = 0; i < add.n; i++)
                if (!(opts->attached && strv_contains(opts->attached, add.v[i])) && (r = strv_push(&out, add.v[i])) < 0)
                        return r;
        if (out.n > 1)
                qsort(out.v, out.n, sizeof *out.v, cmp_str);
        *ret_add = out;
        out = (strv) { 0 };
        return 0;
}

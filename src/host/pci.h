/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * PCI devices and IOMMU groups, read through a root prefix from
 * /sys/bus/pci/devices and /sys/kernel/iommu_groups; names from
 * <root>/usr/share/misc/pci.ids when present.
 */
#include <stdbool.h>
#include <stdint.h>
#include "error.h"
#include "strv.h"

struct host_pci_device {
        char address[16];      /* "0000:01:00.0" */
        uint32_t class_code;   /* 0x030000 */
        char vendor_id[8];     /* "10de" */
        char device_id[8];
        char *vendor_name;     /* pci.ids names, NULL when unknown */
        char *device_name;
        char *class_name;      /* subclass name, else a built-in base class name */
        char *driver;          /* bound driver, NULL when none */
        int iommu_group;       /* -1 when none */
        bool assignable;       /* can be given to a VM on its own */
        strv group_with;       /* its other functions that must go along */
        strv group_blockers;   /* other group members that prevent it */
};

struct host_pci_list {
        struct host_pci_device *v;
        size_t n;
};

/* Every PCI device, sorted by address, with names and the group verdict. */
int host_pci_list(const char *root, struct host_pci_list *ret, phy_error *err);
/* The same, only the devices of one base class (0x03: display): the others'
 * IOMMU groups and pci.ids names are never read (a start needs the GPUs). */
int host_pci_list_class(const char *root, unsigned base_class, struct host_pci_list *ret, phy_error *err);
void host_pci_list_done(struct host_pci_list *l);

/*
 * The IOMMU group of one device and whether the device can be given to a VM
 * alone: its group may hold only it, other functions of the same device
 * (same domain:bus:slot) and PCIe bridges (class 0x0604).
 */
struct host_iommu_group {
        int group;             /* -1: no IOMMU group (IOMMU off) */
        strv members;          /* every device in the group, sorted */
        strv with;             /* the device's own other functions in it */
        strv blockers;         /* members that are neither: these prevent it */
};
/* -ENODEV when the device does not exist; a device without a group is not
 * an error (group = -1). */
int host_iommu_group_check(const char *root, const char *address, struct host_iommu_group *ret, phy_error *err);
void host_iommu_group_done(struct host_iommu_group *g);
/* For passthrough: 0 when assignable, else -EBUSY (shared group) or -ENODEV
 * (no IOMMU group) with a sentence naming the group and its other members. */
int host_iommu_group_require_alone(const char *root, const char *address, phy_error *err);

/* Looks up names in pci.ids in one pass; only the ids asked for.  Each
 * query's out fields are malloc'd or left NULL.  Missing file: 0, no names. */
struct pci_ids_query {
        const char *vendor_id, *device_id;  /* "8086", "3e98" */
        uint32_t class_code;
        char *vendor_name, *device_name, *class_name;
};
int pci_ids_lookup(const char *root, struct pci_ids_query *q, size_t n);

/* The last path component of the symlink /sys/bus/pci/devices/<address>/<name>
 * ("driver" -> "vfio-pci", "iommu_group" -> "13"), or NULL. */
char *host_pci_link_basename(const char *root, const char *address, const char *name);

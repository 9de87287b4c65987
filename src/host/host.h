/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Host discovery, always through a root prefix ("/" for the real host, a
 * fixture tree in tests): /proc, /sys and /dev are read below `root`.
 * Tools and firmware (QEMU, OVMF, swtpm, qemu-img) are looked up on the real
 * filesystem by host_tools_find(), since they must really run.
 */
#include <stdbool.h>
#include <stdint.h>
#include "error.h"

enum host_cpu_vendor { HOST_CPU_OTHER, HOST_CPU_INTEL, HOST_CPU_AMD };

struct host_gpu {
        char address[16];      /* "0000:01:00.0" */
        char vendor_id[8];     /* "10de" */
        char device_id[8];
        char *name;            /* from pci.ids, may be NULL */
        char *driver;          /* bound driver, may be NULL */
        char *render_node;     /* "/dev/dri/renderD128" or NULL */
        int iommu_group;       /* -1 when none */
        unsigned sriov_totalvfs;
        bool has_mdev;
        bool boot_vga;
};

struct host_facts {
        char *root;
        enum host_cpu_vendor cpu_vendor;
        char *cpu_model;       /* "model name" from /proc/cpuinfo */
        bool vmx, svm;         /* hardware virtualization flags */
        unsigned cpus;         /* online logical CPUs */
        unsigned cores;        /* physical cores (unique core ids); = cpus when unknown */
        uint64_t mem_total;    /* bytes, MemTotal */
        bool kvm_present;      /* /dev/kvm exists */
        bool kvm_usable;       /* /dev/kvm readable and writable by us */
        int nested;            /* -1 unknown, 0/1 */
        int ignore_msrs;       /* -1 unknown, 0/1 */
        bool iommu_firmware;   /* DMAR or IVRS table */
        bool iommu_enabled;    /* /sys/kernel/iommu_groups non-empty */
        char *cmdline;         /* /proc/cmdline */
        bool apple;            /* DMI sys_vendor is Apple */
        char *dmi_vendor, *dmi_product;
        bool tpm_device;       /* /dev/tpm0 */
        struct host_gpu *gpus;
        size_t n_gpus;
        /* The host budget: what the host keeps; the rest is what VMs get. */
        unsigned reserve_cpus;     /* default 1 */
        uint64_t reserve_mem;      /* default 1 GiB */
        unsigned vm_cpus_max;      /* cpus - reserve, at least 1 */
        uint64_t vm_mem_max;       /* mem_total - reserve, at least 512 MiB */
};

/* Reads everything above from root.  The host config file
 * (<root>/etc/phyllome/host.conf, keys reserve-cpus= and reserve-memory=)
 * may change the budget. */
int host_facts_load(const char *root, struct host_facts *ret, phy_error *err);
void host_facts_done(struct host_facts *h);

/* The first render node of any GPU, or NULL. */
const char *host_render_node(const struct host_facts *h);

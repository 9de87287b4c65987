/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Host discovery, always through a root prefix ("/" for the real host, a
 * fixture tree in tests): /proc, /sys and /dev are read below `root`.
 * Tools and firmware (QEMU, OVMF, swtpm, qemu-img) are looked up on the real
 * filesystem by qemu_tools_find() (src/qemu/tools.h), since they must really run.
 */
#include <stdbool.h>
#include <stdint.h>
#include "error.h"
#include "strv.h"

enum host_cpu_vendor { HOST_CPU_OTHER, HOST_CPU_INTEL, HOST_CPU_AMD };

/* What the root filesystem sits on (decides the storage tier). */
enum host_storage { HOST_STORAGE_UNKNOWN, HOST_STORAGE_ROTATIONAL, HOST_STORAGE_SSD, HOST_STORAGE_NVME };

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

        /* Added after the first interface; all read through root too. */
        bool hypervisor;           /* "hypervisor" cpu flag: we are a guest */
        bool dmar, ivrs;           /* which firmware table (iommu_firmware = either) */
        bool iommu_class;          /* /sys/class/iommu has an entry */
        unsigned iommu_groups;     /* number of /sys/kernel/iommu_groups entries */
        bool vhost_net, tun;       /* /dev/vhost-net, /dev/net/tun */
        char *cgroup_controllers;  /* /sys/fs/cgroup/cgroup.controllers; NULL without cgroup v2 */
        uint64_t hugepages_total;  /* HugePages_Total (pages) */
        uint64_t hugepage_size;    /* Hugepagesize, bytes */
        char *thp;                 /* selected transparent_hugepage mode, or NULL */
        int ksm;                   /* /sys/kernel/mm/ksm/run, -1 when absent */
        enum host_storage storage; /* of the device holding "/" */
        char *storage_device;      /* its /sys/block name ("nvme0n1"), or NULL */
        char *conf_path;           /* host.conf that set the budget, or NULL */
        strv passthrough_allow;    /* host.conf passthrough-allow: "ADDRESS USER" or "ADDRESS @GROUP" each */
        /* host.conf allow-paths (issue 12): the directories a definition may
         * name files in outside its VM dir, absolute, as written (real host
         * paths, not below root); allow_paths_set when the key appears. */
        strv allow_paths;
        bool allow_paths_set;
        /* host.conf vm-uids: the uids (and gids) VMs run as when Phyllome
         * runs as root, one per VM (src/run); count 0: "off", one
         * unprivileged user for all.  Default HOST_VM_UIDS_FIRST, _COUNT. */
        uint32_t vm_uid_first, vm_uid_count;
        /* host.conf qemu-malloc-thp = off: QEMU's malloc keeps glibc's
         * defaults (src/run/boot.c); on (the default): it asks for
         * transparent huge pages. */
        bool qemu_malloc_plain;
};

#define HOST_VM_UIDS_FIRST 6000000u
#define HOST_VM_UIDS_COUNT 65536u

/* Reads everything above from root.  The host config file
 * (<root>/etc/phyllome/host.conf, keys reserve-cpus= and reserve-memory=)
 * may change the budget; its passthrough-allow= lines say which PCI device
 * phyllome-devhelper may give to which user or group; its allow-paths= lines
 * where a definition's files may be (docs/host.md, docs/security.md). */
int host_facts_load(const char *root, struct host_facts *ret, phy_error *err);
/* What a start uses only: always the CPU, memory, /dev/kvm, DMI vendor,
 * /dev/tpm0 and host.conf; with HOST_FACTS_GPUS the GPUs (PCI scan); with
 * HOST_FACTS_REST the facts only 'host check' and 'host show' report
 * (nested, ignore_msrs, IOMMU, cmdline, vhost-net, tun, cgroups, THP, KSM,
 * storage), left at their unknown/zero values otherwise. */
enum {
        HOST_FACTS_GPUS = 1 << 0,
        HOST_FACTS_REST = 1 << 1,
        HOST_FACTS_ALL = HOST_FACTS_GPUS | HOST_FACTS_REST,
};
int host_facts_load_some(const char *root, unsigned what, struct host_facts *ret, phy_error *err);
void host_facts_done(struct host_facts *h);
/* Only <root>/etc/phyllome/host.conf: the budget keys, passthrough_allow,
 * allow_paths (the rest of *ret zero); the file checked as above. */
int host_conf_load(const char *root, struct host_facts *ret, phy_error *err);

/* The Landlock ABI of the running kernel (landlock_create_ruleset with
 * LANDLOCK_CREATE_RULESET_VERSION), 0 when it has none. */
int host_landlock_abi(void);

/* The first render node of any GPU, or NULL. */
const char *host_render_node(const struct host_facts *h);

/* True when the kernel command line has `key` (e.g. "iommu") and, when
 * value is not NULL, that value ("pt"); the last occurrence wins. */
bool host_cmdline_has(const struct host_facts *h, const char *key, const char *value);

const char *host_storage_name(enum host_storage s);   /* "NVMe", "SSD", ... */
const char *host_cpu_vendor_name(enum host_cpu_vendor v);

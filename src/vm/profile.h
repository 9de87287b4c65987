/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The profiles: the Phyllome VM model.  A profile fills every field the
 * user left unset, sized from the host budget, then the model is checked
 * (Windows 11's minimums, GL needs, macOS licence).  docs/vm-format.md has
 * the table of defaults.
 */
#include <stdint.h>
#include "vm.h"

struct host_facts;
struct qemu_caps;

struct vm_profile {
        const char *name;               /* "windows11" */
        const char *os;                 /* "Windows 11", for messages */
        const char *summary;            /* one line */
        unsigned cores;                 /* default vCPUs (threads 1), capped to the budget */
        uint64_t memory;                /* default memory, capped to the budget */
        uint64_t disk_size;             /* default size of a disk without one */
        unsigned min_cores;             /* refused below (0: no minimum) */
        uint64_t min_memory;
        uint64_t min_disk;              /* first disk; decimal bytes as the vendor states it */
        enum vm_bus disk_bus;           /* without a [cdrom drivers] */
        enum vm_bus disk_bus_drivers;   /* with one */
        enum vm_nic_model nic;
        enum vm_nic_model nic_drivers;
        enum vm_gpu gpu;                /* when the display cannot do GL */
        enum vm_gpu gpu_gl;             /* when it can */
        enum vm_sound sound;            /* when QEMU has virtio-sound-pci */
        enum vm_sound sound_fallback;
        enum vm_display display;
        enum vm_input input;
        enum vm_tpm tpm;
        bool secure_boot, smm, hyperv, rtc_localtime, balloon, rng, agent;
        bool require_secure_boot_tpm;   /* windows11 */
        bool require_apple;             /* macos */
};

/* All profiles, in the order `phyllo profiles` shows them. */
const struct vm_profile *vm_profile_list(size_t *ret_n);
const struct vm_profile *vm_profile_find(const char *name);
/* "windows11, windows10, linux, freebsd, other, macos" (static string). */
const char *vm_profile_names(void);

/*
 * Copies def into ret_model and fills every unset field from the profile,
 * sized from host's budget (vm_cpus_max, vm_mem_max), recording each filled
 * "section.key" (labelled sections: "disk.system.bus") in
 * ret_model->defaulted; then validates the model.  caps may be NULL
 * (assume QEMU has everything).
 *
 * Guaranteed in a model on success: profile, machine ("q35" or a pc-q35-*
 * version) set; cores, threads >= 1; memory > 0; every enum (firmware,
 * smm, hyperv, rtc_localtime, balloon, rng, agent, input, secure_boot,
 * display, gl, gpu, sound, tpm) not UNSET; every disk has path, format,
 * size > 0 and bus; every cdrom has path and bus (sata, scsi or ide);
 * every nic has mode, model and mac.  cpu_model stays NULL unless the user
 * set it (host under KVM, max under TCG).  uuid may be "" when the file has
 * none.  Consistency: secure_boot on => firmware uefi and smm on;
 * gpu virgl => gl on; gl on => display gtk, sdl, or spice with a host
 * render node; tpm passthrough => the host has a TPM.
 */
int vm_model_resolve(const struct vm_def *def, const struct host_facts *host,
                     const struct qemu_caps *caps, struct vm_def *ret_model, phy_error *err);

/* What a resolved model does that is allowed but worth a word: more vCPUs
 * than the host's budget gives VMs (they time-share the host's CPUs: CPUs
 * are overcommitted, memory never is).  Each sentence pushed onto *ret;
 * -ENOMEM. */
int vm_model_warnings(const struct vm_def *m, const struct host_facts *host, strv *ret);

/*
 * The model the argv builder takes: vm_model_resolve (above: the one place
 * defaults are filled and the model checked) into ret->vm, then, when vm_dir
 * is given (the start path), the facts about the VM's files: each disk
 * image opened once with O_DIRECT (relative paths against vm_dir) to learn
 * whether its file system takes it.  A disk that cannot be opened counts as
 * "no" (QEMU's own open names the problem).  Nothing is written.
 */
int vm_model_make(const struct vm_def *def, const struct host_facts *host, const struct qemu_caps *caps,
                  const char *vm_dir, struct vm_model *ret, phy_error *err);

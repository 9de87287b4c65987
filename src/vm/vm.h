/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The VM definition (what the user wrote, <home>/vms/<name>/vm.conf, format
 * in docs/vm-format.md and phyllome-vm(5)) and the VM model (the definition
 * with the profile's defaults filled in for this host).  Both use struct
 * vm_def; vm_def.defaulted lists the "section.key" names a profile filled.
 */
#include <stdbool.h>
#include <stdint.h>
#include "error.h"
#include "strv.h"

#define VM_NAME_MAX 64

enum vm_firmware { VM_FW_UNSET = 0, VM_FW_UEFI, VM_FW_BIOS };
enum vm_bus { VM_BUS_UNSET = 0, VM_BUS_VIRTIO, VM_BUS_SCSI, VM_BUS_SATA, VM_BUS_NVME, VM_BUS_IDE };
enum vm_display { VM_DISPLAY_UNSET = 0, VM_DISPLAY_NONE, VM_DISPLAY_SPICE, VM_DISPLAY_GTK,
                  VM_DISPLAY_SDL, VM_DISPLAY_VNC };
enum vm_gpu { VM_GPU_UNSET = 0, VM_GPU_NONE, VM_GPU_STD, VM_GPU_VIRTIO, VM_GPU_VIRGL };
enum vm_sound { VM_SOUND_UNSET = 0, VM_SOUND_NONE, VM_SOUND_VIRTIO, VM_SOUND_HDA, VM_SOUND_AC97 };
enum vm_tpm { VM_TPM_UNSET = 0, VM_TPM_NONE, VM_TPM_EMULATED, VM_TPM_PASSTHROUGH };
enum vm_nic_model { VM_NIC_UNSET = 0, VM_NIC_VIRTIO, VM_NIC_E1000E, VM_NIC_RTL8139 };
enum vm_net_mode { VM_NET_UNSET = 0, VM_NET_NONE, VM_NET_USER };
enum vm_input { VM_INPUT_UNSET = 0, VM_INPUT_USB_TABLET, VM_INPUT_VIRTIO };
enum vm_tristate { VM_UNSET = 0, VM_OFF, VM_ON };

struct vm_disk {
        char *name;             /* section label: [disk system] */
        char *path;             /* relative paths are relative to the VM dir */
        char *format;           /* "qcow2" (default), "raw" */
        uint64_t size;          /* bytes; used when creating the image */
        enum vm_bus bus;
        bool readonly;
};

struct vm_cdrom {
        char *name;             /* [cdrom install], [cdrom drivers] */
        char *path;             /* ISO */
        enum vm_bus bus;        /* sata (default) or scsi */
};

struct vm_nic {
        char *name;             /* [network net0] */
        enum vm_net_mode mode;
        enum vm_nic_model model;
        char mac[18];           /* "52:54:00:xx:xx:xx", stable, made at create */
        strv forwards;          /* "tcp:2222:22" (issue 4) */
};

struct vm_share {
        char *tag;
        char *path;
        bool readonly;
};

struct vm_def {
        char *path;             /* file it was read from, for messages */
        char name[VM_NAME_MAX + 1];
        char *profile;          /* "windows11", "linux", ... */
        char uuid[37];

        /* [machine] */
        char *machine;          /* "q35" */
        enum vm_tristate smm;
        enum vm_tristate hyperv;        /* Hyper-V enlightenments */
        enum vm_tristate rtc_localtime;
        enum vm_tristate balloon;
        enum vm_tristate rng;
        enum vm_tristate agent;         /* QEMU guest agent channel */
        enum vm_input input;

        /* [cpu] */
        unsigned cores;
        unsigned threads;
        char *cpu_model;        /* NULL: host under KVM, max under TCG */

        /* [memory] */
        uint64_t memory;

        /* [firmware] */
        enum vm_firmware firmware;
        enum vm_tristate secure_boot;

        /* [boot]: direct kernel boot (issue 3) */
        char *kernel, *initrd, *append;

        struct vm_disk *disks;   size_t n_disks;
        struct vm_cdrom *cdroms; size_t n_cdroms;
        struct vm_nic *nics;     size_t n_nics;
        struct vm_share *shares; size_t n_shares;
        strv passthrough;        /* PCI addresses, [passthrough] devices = ... */
        strv usb;                /* "vendor:product" ([usb] devices = ...) */

        /* [display] */
        enum vm_display display;
        enum vm_tristate gl;
        /* [gpu] */
        enum vm_gpu gpu;
        /* [sound] */
        enum vm_sound sound;
        /* [tpm] */
        enum vm_tpm tpm;

        /* The model: "section.key" names filled by the profile, not the user. */
        strv defaulted;
};

void vm_def_done(struct vm_def *d);

/* Names: [A-Za-z0-9._-]{1,64}, not "." or "..". */
bool vm_name_valid(const char *name);

/* Parses a definition.  Errors: "<file>:<line>: <what>" naming the key and
 * what is allowed; unknown sections and keys are errors. */
int vm_def_parse(const char *path, const char *text, struct vm_def *ret, phy_error *err);
int vm_def_load(const char *path, struct vm_def *ret, phy_error *err);
/* Formats a definition as the text format (what the user set, not the
 * defaults, unless with_defaults, which marks each default with a comment). */
char *vm_def_format(const struct vm_def *d, bool with_defaults);
/* Writes <home>/vms/<name>/vm.conf atomically. */
int vm_def_save(const struct vm_def *d, const char *file, phy_error *err);
struct json_object;
struct json_object *vm_def_to_json(const struct vm_def *d);

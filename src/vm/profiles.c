/* SPDX-License-Identifier: MIT */
/*
 * The profiles' table: names and defaults, data only.  The definition parser
 * (def.c) checks a profile name here; the model (profile.c) reads the
 * defaults.  Kept apart so that def.c and profile.c do not call each other.
 */
#include "profile.h"

#include <string.h>

#include "cleanup.h"

#define KiB 1024ULL
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)

static const struct vm_profile profiles[] = {
        {
                .name = "windows11", .os = "Windows 11",
                .summary = "Windows 11: Secure Boot, TPM 2.0, Hyper-V enlightenments; needs 2 vCPUs, 4 GiB, 64 GB",
                .cores = 4, .memory = 8 * GiB, .disk_size = 64 * GiB,
                .min_cores = 2, .min_memory = 4 * GiB, .min_disk = 64000000000ULL,
                /* Windows has in-box drivers for SATA and e1000e; virtio needs the driver ISO. */
                .disk_bus = VM_BUS_SATA, .disk_bus_drivers = VM_BUS_VIRTIO,
                .nic = VM_NIC_E1000E, .nic_drivers = VM_NIC_VIRTIO,
                .gpu = VM_GPU_STD, .gpu_gl = VM_GPU_STD,
                .sound = VM_SOUND_HDA, .sound_fallback = VM_SOUND_HDA,
                .display = VM_DISPLAY_SPICE, .input = VM_INPUT_USB_TABLET, .tpm = VM_TPM_EMULATED,
                .secure_boot = true, .smm = true, .hyperv = true, .rtc_localtime = true,
                .balloon = false, .rng = true, .agent = true, .require_secure_boot_tpm = true,
        },
        {
                .name = "windows10", .os = "Windows 10",
                .summary = "Windows 10: as windows11 without the Secure Boot and TPM requirement",
                .cores = 4, .memory = 4 * GiB, .disk_size = 64 * GiB,
                .disk_bus = VM_BUS_SATA, .disk_bus_drivers = VM_BUS_VIRTIO,
                .nic = VM_NIC_E1000E, .nic_drivers = VM_NIC_VIRTIO,
                .gpu = VM_GPU_STD, .gpu_gl = VM_GPU_STD,
                .sound = VM_SOUND_HDA, .sound_fallback = VM_SOUND_HDA,
                .display = VM_DISPLAY_SPICE, .input = VM_INPUT_USB_TABLET, .tpm = VM_TPM_NONE,
                /* SMM on so that turning Secure Boot on needs only one key. */
                .secure_boot = false, .smm = true, .hyperv = true, .rtc_localtime = true,
                .balloon = false, .rng = true, .agent = true,
        },
        {
                .name = "linux", .os = "Linux",
                .summary = "Linux: virtio everywhere, virgl 3D when the display can do GL, balloon",
                .cores = 2, .memory = 2 * GiB, .disk_size = 20 * GiB,
                .disk_bus = VM_BUS_VIRTIO, .disk_bus_drivers = VM_BUS_VIRTIO,
                .nic = VM_NIC_VIRTIO, .nic_drivers = VM_NIC_VIRTIO,
                .gpu = VM_GPU_VIRTIO, .gpu_gl = VM_GPU_VIRGL,
                .sound = VM_SOUND_VIRTIO, .sound_fallback = VM_SOUND_HDA,
                .display = VM_DISPLAY_SPICE, .input = VM_INPUT_VIRTIO, .tpm = VM_TPM_NONE,
                .balloon = true, .rng = true, .agent = true,
        },
        {
                .name = "freebsd", .os = "FreeBSD",
                .summary = "FreeBSD and the other BSDs: virtio disk and network, standard VGA, HDA sound",
                .cores = 2, .memory = 2 * GiB, .disk_size = 20 * GiB,
                .disk_bus = VM_BUS_VIRTIO, .disk_bus_drivers = VM_BUS_VIRTIO,
                .nic = VM_NIC_VIRTIO, .nic_drivers = VM_NIC_VIRTIO,
                .gpu = VM_GPU_STD, .gpu_gl = VM_GPU_STD,
                .sound = VM_SOUND_HDA, .sound_fallback = VM_SOUND_HDA,
                .display = VM_DISPLAY_SPICE, .input = VM_INPUT_USB_TABLET, .tpm = VM_TPM_NONE,
                .balloon = true, .rng = true, .agent = true,
        },
        {
                .name = "other", .os = "the OS",
                .summary = "Any other OS: conservative emulated devices (SATA, e1000e, VGA, HDA)",
                .cores = 2, .memory = 2 * GiB, .disk_size = 20 * GiB,
                .disk_bus = VM_BUS_SATA, .disk_bus_drivers = VM_BUS_SATA,
                .nic = VM_NIC_E1000E, .nic_drivers = VM_NIC_E1000E,
                .gpu = VM_GPU_STD, .gpu_gl = VM_GPU_STD,
                .sound = VM_SOUND_HDA, .sound_fallback = VM_SOUND_HDA,
                .display = VM_DISPLAY_SPICE, .input = VM_INPUT_USB_TABLET, .tpm = VM_TPM_NONE,
                .balloon = false, .rng = true, .agent = false,
        },
        {
                .name = "macos", .os = "macOS",
                .summary = "macOS: only on Apple hardware (Apple's licence); SATA disk, VGA, HDA",
                .cores = 4, .memory = 8 * GiB, .disk_size = 64 * GiB,
                .disk_bus = VM_BUS_SATA, .disk_bus_drivers = VM_BUS_SATA,
                .nic = VM_NIC_VIRTIO, .nic_drivers = VM_NIC_VIRTIO,
                .gpu = VM_GPU_STD, .gpu_gl = VM_GPU_STD,
                .sound = VM_SOUND_HDA, .sound_fallback = VM_SOUND_HDA,
                .display = VM_DISPLAY_SPICE, .input = VM_INPUT_USB_TABLET, .tpm = VM_TPM_NONE,
                .balloon = false, .rng = true, .agent = true, .require_apple = true,
        },
};

const struct vm_profile *vm_profile_list(size_t *ret_n) {
        *ret_n = ELEMENTSOF(profiles);
        return profiles;
}

const struct vm_profile *vm_profile_find(const char *name) {
        for (size_t i = 0; name && i < ELEMENTSOF(profiles); i++)
                if (strcmp(profiles[i].name, name) == 0)
                        return &profiles[i];
        return NULL;
}

const char *vm_profile_names(void) {
        return "windows11, windows10, linux, freebsd, other, macos";
}

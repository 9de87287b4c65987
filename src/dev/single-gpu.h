/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Single-GPU passthrough: giving a VM the GPU that drives the host's own
 * display.  The host display has to let go of the card first: the display
 * manager stops, the VT consoles leave the framebuffer and the firmware
 * framebuffer (efifb, simpledrm's simple-framebuffer, vesafb) is unbound;
 * after the VM, all of it comes back in reverse order.  What was stopped is
 * recorded in <run_dir>/host-display.state BEFORE the first step, so the
 * restore also happens after a kill -9 of the monitor (like devices.state).
 *
 * Everything goes through a root prefix; the display manager is only
 * stopped and started through systemctl on the real host (root "/" or
 * NULL): under a fixture root that step is recorded and planned, not run.
 */
#include <stdbool.h>
#include "dev.h"
#include "error.h"
#include "strv.h"

#define DEV_DISPLAY_MANAGER_UNIT "display-manager.service"

/* The device is a display controller (class 0x03) the firmware booted on (boot_vga = 1). */
bool dev_pci_is_boot_display(const char *root, const char *address);

/* What of the host display is up now. */
struct dev_host_display {
        strv vtcons;            /* "vtcon1": VT consoles bound now (bind = 1) */
        strv fbs;               /* "efi-framebuffer efi-framebuffer.0": DRIVER DEVICE, bound now */
        char *unit;             /* DEV_DISPLAY_MANAGER_UNIT when the host has one, else NULL */
};
void dev_host_display_done(struct dev_host_display *d);

/* Reads <root>/sys/class/vtconsole/vtcon* /bind, the platform framebuffer
 * drivers' devices and <root>/etc/systemd/system/display-manager.service. */
int dev_host_display_probe(const char *root, struct dev_host_display *ret, phy_error *err);

/* The sysfs writes that release the display (vtcon bind := 0, then each
 * framebuffer's driver unbind := device) and that bring it back (the
 * framebuffers bound again, then the consoles), in order. */
int dev_plan_host_display_stop(const struct dev_host_display *d, struct dev_plan *ret);
int dev_plan_host_display_restore(const struct dev_host_display *d, struct dev_plan *ret);

/* The whole plan as text, the display manager step included
 * ("systemctl stop display-manager.service" first, "... start ..." last). */
char *dev_host_display_plan_format(const struct dev_host_display *d, bool stop);

/*
 * Stops the host display: probes, records <run_dir>/host-display.state
 * (with the root prefix), stops the display manager (real host only), then
 * executes the stop plan.  A failure half-way restores what was stopped.
 * Refused (-EPERM) unless the addresses include the host's boot display
 * GPU: single-GPU mode is for that card only.
 */
int dev_single_gpu_stop_host(const char *root, const char *run_dir, const strv *addresses, dev_kernel_hook hook,
                             void *userdata, phy_error *err);

/*
 * Brings back what <run_dir>/host-display.state records (framebuffers,
 * consoles, then the display manager) through the root it was recorded
 * with, trying every step; removes the state only when all succeeded.
 * No state: 0.  Call it after the GPU went back to its driver.
 */
int dev_single_gpu_restore_host(const char *run_dir, dev_kernel_hook hook, void *userdata, phy_error *err);

/* For whoever finds a VM whose monitor and QEMU are gone: the /dev/vfio
 * owners a root monitor changed (vfio.owners), the devices
 * (dev_passthrough_give_back_recorded), then the host display.  The first
 * error is returned; all are tried. */
int dev_give_back_all_recorded(const char *run_dir, phy_error *err);

/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Devices given to a VM: PCI passthrough (VFIO) with IOMMU-group safety,
 * mediated devices (mdev), SR-IOV virtual functions, USB and TPM checks.
 *
 * Everything reads and writes through a root prefix ("/" or NULL for the real
 * host, a copy of a fixture tree in tests).  The sysfs work is split in two:
 * a pure plan (an ordered list of path/value writes, checked exactly by the
 * tests) and a small executor that performs the writes.  Tests pass the
 * executor a "kernel" hook that plays the kernel's part (moving the driver
 * symlink after an unbind, making an mdev appear after a create).
 */
#include <stdbool.h>
#include <stdint.h>
#include "error.h"
#include "strv.h"

/* ---- PCI passthrough: what attaching a device means ---- */

struct dev_attach_opts {
        bool with_group;       /* take every member of the IOMMU group */
        bool force;            /* allow the host's display or boot-disk device */
        const strv *attached;  /* PCI addresses already given to this VM */
};

/*
 * Decides which PCI addresses attaching `address` adds to a VM, before
 * anything is changed: the device, its other functions in the same IOMMU
 * group (a GPU's audio function goes with it), and with --with-group every
 * other non-bridge member.  Refused (-EBUSY) when the group has other
 * members that are not bridges, not functions of the same device and not
 * already attached; the message names each of them with its driver.
 * Refused (-EPERM) unless opts->force when a device is the host's display
 * (boot_vga with a bound driver other than vfio-pci) or holds the host's
 * root filesystem.  -ENODEV: no such device or no IOMMU group.
 * ret_add gets the sorted addresses to add (those in opts->attached left out).
 */
int dev_pci_attach_plan(const char *root, const char *address, const struct dev_attach_opts *opts,
                        strv *ret_add, phy_error *err);

/* The reason the host needs `address` itself ("it drives the host's
 * display", "it holds the root filesystem"), malloc'd, or NULL when none. */
char *dev_pci_host_use(const char *root, const char *address);

/* The bound driver of a PCI device (malloc'd) or NULL when none. */
char *dev_pci_driver(const char *root, const char *address);

/* ---- the sysfs plan ---- */

struct dev_write {
        char *path;            /* absolute, below the root prefix: "/sys/bus/pci/..." */
        char *value;
};

struct dev_plan {
        struct dev_write *v;
        size_t n;
};

void dev_plan_done(struct dev_plan *p);
static inline void dev_plan_donep(struct dev_plan *p) { dev_plan_done(p); }
#define _cleanup_dev_plan_ _cleanup_(dev_plan_donep)

/* Appends the write of value to the path fmt makes; -ENOMEM. */
int dev_plan_add(struct dev_plan *p, const char *value, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* One write a line: "<path> <value>" with the value C-escaped ("\n"). */
char *dev_plan_format(const struct dev_plan *p);

/*
 * The moves to vfio-pci, in order, for each address: driver_override :=
 * "vfio-pci", <current driver>/unbind := address (skipped when none is
 * bound), /sys/bus/pci/drivers_probe := address.  Devices already on
 * vfio-pci are left out.  ret_drivers (parallel to addresses) gets each
 * device's driver before the move ("" for none): the state to give back.
 */
int dev_plan_to_vfio(const char *root, const strv *addresses, struct dev_plan *ret, strv *ret_drivers,
                     phy_error *err);

/*
 * The give-back, in reverse order of the addresses: driver_override := "\n"
 * (clears it), vfio-pci/unbind := address, then <recorded driver>/bind :=
 * address (nothing when the device had no driver: it stays unbound).
 * With root, writes the current state makes pointless are left out (not on
 * vfio-pci: no unbind; already on the recorded driver: nothing); NULL root
 * assumes every device is on vfio-pci.
 * Devices recorded as already on vfio-pci are left where they are.
 */
int dev_plan_give_back(const char *root, const strv *addresses, const strv *drivers, struct dev_plan *ret, phy_error *err);

/* The kernel's side of a write (tests); 0 or -errno like the kernel's write. */
typedef int (*dev_kernel_hook)(const char *root, const char *path, const char *value, void *userdata);

/*
 * Performs the writes through root, in order, each opened O_WRONLY (never
 * created: a missing attribute is an error naming it).  After each write the
 * hook, when not NULL, plays the kernel.  Stops at the first failure unless
 * keep_going (the give-back tries every device).
 */
int dev_plan_execute(const char *root, const struct dev_plan *p, bool keep_going, dev_kernel_hook hook,
                     void *userdata, phy_error *err);

/* ---- recorded state: the drivers to give back, survives kill -9 ---- */

/* <run_dir>/devices.state: one "ADDRESS DRIVER" line per device ("-" for no
 * driver), written atomically BEFORE the first sysfs write. */
int dev_state_save(const char *run_dir, const strv *addresses, const strv *drivers, phy_error *err);
/* -ENOENT when there is no state file. */
int dev_state_load(const char *run_dir, strv *ret_addresses, strv *ret_drivers, phy_error *err);

/* Moves the addresses to vfio-pci: records the state, then executes. */
int dev_passthrough_prepare(const char *root, const char *run_dir, const strv *addresses, dev_kernel_hook hook,
                            void *userdata, phy_error *err);
/* Gives back what <run_dir>/devices.state records and removes the file
 * once every write succeeded.  No state file: 0 (nothing to do). */
int dev_passthrough_restore(const char *root, const char *run_dir, dev_kernel_hook hook, void *userdata,
                            phy_error *err);

/* The root prefix dev_passthrough_prepare recorded in <run_dir>/devices.root
 * (only when it was not "/"), malloc'd, or NULL for the real host. */
char *dev_state_root(const char *run_dir);
/* dev_passthrough_restore through the recorded root, without a kernel hook:
 * for whoever finds a VM whose monitor and QEMU are gone. */
int dev_passthrough_give_back_recorded(const char *run_dir, phy_error *err);

/* ---- mediated devices ---- */

struct dev_mdev_type {
        char *id;              /* directory name: "i915-GVTg_V5_4" */
        char *name;            /* "name" attribute, may be NULL */
        char *description;     /* may be NULL */
        char *device_api;      /* "vfio-pci", may be NULL */
        long available;        /* available_instances, -1 unknown */
};

struct dev_mdev_types {
        struct dev_mdev_type *v;
        size_t n;
};
void dev_mdev_types_done(struct dev_mdev_types *t);

/* The mdev types a PCI device offers (sorted by id); none: n = 0. */
int dev_mdev_types(const char *root, const char *parent, struct dev_mdev_types *ret, phy_error *err);
/* Writes uuid to mdev_supported_types/<type>/create of parent, after checking
 * the type exists and has an instance available. */
int dev_mdev_create(const char *root, const char *parent, const char *type, const char *uuid, dev_kernel_hook hook,
                    void *userdata, phy_error *err);
/* Writes "1" to /sys/bus/mdev/devices/<uuid>/remove. */
int dev_mdev_remove(const char *root, const char *uuid, dev_kernel_hook hook, void *userdata, phy_error *err);

/* ---- SR-IOV ---- */

/* Writes n to sriov_numvfs (0 first when VFs exist: the kernel wants that),
 * checked against sriov_totalvfs. */
int dev_sriov_set(const char *root, const char *pf, unsigned n, dev_kernel_hook hook, void *userdata,
                  phy_error *err);
/* The VF addresses of a PF (virtfnN links, in N order). */
int dev_sriov_vfs(const char *root, const char *pf, strv *ret, phy_error *err);

/* ---- USB and TPM ---- */

/* Hot-plugs (device_add) or unplugs (device_del) the usb-host device of
 * spec over QMP of a running VM, as its -device would have added it
 * (qemu_usb_id, qemu_usb_host_opts). */
struct qmp;
int dev_usb_hotplug(struct qmp *q, const char *spec, bool attach, int timeout_ms, phy_error *err);

/* Checks <root>/dev/tpm0 exists and is not in use (opened O_RDWR|O_EXCL
 * semantics: the kernel allows one opener; EBUSY is "busy"). */
int dev_tpm_passthrough_check(const char *root, phy_error *err);

/* ---- 3D display modes ---- */

struct dev_gl_modes {
        char *render_node;     /* first usable /dev/dri/renderD*, or NULL */
        bool display;          /* $DISPLAY or $WAYLAND_DISPLAY is set */
        bool libegl;           /* Mesa's libEGL.so.1 is installed */
        bool virgl_gtk_sdl;    /* virtio-vga-gl with gtk/sdl gl=on */
        bool egl_headless;     /* egl-headless,rendernode= */
        bool spice_gl;         /* spice gl=on,rendernode= */
        char *why_not;         /* sentence for the unusable modes, or NULL */
};
void dev_gl_modes_done(struct dev_gl_modes *m);
/* render_node: from host facts (may be NULL).  Looks for libEGL on the real
 * filesystem, since QEMU must really load it. */
int dev_gl_modes_probe(const char *root, const char *render_node, struct dev_gl_modes *ret);

struct host_facts;
struct host_check_report;
/* Adds one line per 3D mode to a host check report: "gl.virgl-gtk-sdl",
 * "gl.egl-headless", "gl.spice"; PASS when usable, else INFO with the
 * reason and a remedy.  Render node from the facts, display and libEGL
 * from the real environment. */
int dev_gl_modes_check(const char *root, const struct host_facts *h, struct host_check_report *rep);

/* SPDX-License-Identifier: MIT */
/* Devices given to a VM: PCI passthrough (with its IOMMU group), mediated
 * devices, SR-IOV, giving devices back, USB (hot-plugged when the VM runs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <json-c/json.h>

#include "ops.h"
#include "value.h"
#include "fileio.h"
#include "dev/dev.h"
#include "dev/single-gpu.h"
#include "qemu/qmp.h"
#include "run/run.h"

static json_object *str_array(const strv *s) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < s->n; i++)
                json_object_array_add(a, json_object_new_string(s->v[i]));
        return a;
}

/* Removes "ADDR=..." ROM entries of addr. */
static void roms_remove(strv *roms, const char *addr) {
        size_t l = strlen(addr);
        for (size_t i = 0; i < roms->n;)
                if (strncmp(roms->v[i], addr, l) == 0 && roms->v[i][l] == '=')
                        strv_remove_at(roms, i);
                else
                        i++;
}

int ops_device_list(const struct ops_ctx *c, const char *name, json_object **ret, phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        int r = ops_vm_open(c, name, OPS_READ, &vm, err);
        if (r < 0)
                return r;
        const struct vm_def *d = &vm.def;
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < d->passthrough.n; i++) {
                const char *a = d->passthrough.v[i];
                _cleanup_free_ char *drv = dev_pci_driver(c->root, a), *why = dev_pci_host_use(c->root, a);
                const char *rom = NULL;
                for (size_t j = 0; j < d->passthrough_roms.n; j++)
                        if (strncmp(d->passthrough_roms.v[j], a, 12) == 0 && d->passthrough_roms.v[j][12] == '=')
                                rom = d->passthrough_roms.v[j] + 13;
                json_object *o = json_object_new_object();
                json_object_object_add(o, "kind", json_object_new_string("pci"));
                json_object_object_add(o, "address", json_object_new_string(a));
                json_object_object_add(o, "driver", drv ? json_object_new_string(drv) : NULL);
                if (rom)
                        json_object_object_add(o, "rom", json_object_new_string(rom));
                if (why)
                        json_object_object_add(o, "host_use", json_object_new_string(why));
                json_object_array_add(arr, o);
        }
        for (size_t i = 0; i < d->mdevs.n; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "kind", json_object_new_string("mdev"));
                json_object_object_add(o, "uuid", json_object_new_string(d->mdevs.v[i]));
                json_object_object_add(o, "display", json_object_new_boolean(d->mdev_display == VM_ON));
                json_object_array_add(arr, o);
        }
        for (size_t i = 0; i < d->usb.n; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "kind", json_object_new_string("usb"));
                json_object_object_add(o, "device", json_object_new_string(d->usb.v[i]));
                json_object_array_add(arr, o);
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "devices", arr);
        *ret = o;
        return 0;
}

int ops_device_attach(const struct ops_ctx *c, const char *name, const struct ops_device_attach *o,
                      json_object **ret, phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        _cleanup_free_ char *rom = NULL;
        _cleanup_strv_ strv add = { 0 };
        const char *addr = o->address;
        int r;
        if (!addr)
                return phy_error_usage(err, "a PCI address is required");
        if (o->rom && (strchr(o->rom, ' ') || strchr(o->rom, '\t')))
                return phy_error_usage(err, "the ROM path '%s' may not contain spaces", o->rom);
        if ((r = ops_vm_open(c, name, OPS_WRITE, &vm, err)) < 0)
                return r;
        if (o->rom && (r = ops_input_path(c, "ROM file", o->rom, &rom, err)) < 0)
                return r;
        struct dev_attach_opts ao = { .with_group = o->with_group, .force = o->force, .attached = &vm.def.passthrough };
        /* Single-GPU mode takes the host's display GPU on purpose; the other
         * host-use reasons (the boot disk) still need force. */
        if (o->single_gpu) {
                if (!dev_pci_is_boot_display(c->root, addr))
                        return phy_error_set(err, EPERM, "PCI device %s is not the GPU of the host's display "
                                             "(boot_vga); --single-gpu is for that card only: attach it without "
                                             "--single-gpu", addr);
                ao.force = true;
        }
        if ((r = dev_pci_attach_plan(c->root, addr, &ao, &add, err)) < 0)
                return r;
        for (size_t i = 0; i < add.n && o->single_gpu && !o->force; i++) {
                _cleanup_free_ char *why = dev_pci_is_boot_display(c->root, add.v[i]) ? NULL
                                                                                        : dev_pci_host_use(c->root, add.v[i]);
                if (why)
                        return phy_error_set(err, EPERM, "PCI device %s is in use by the host: %s; pass --force to "
                                             "give it to the VM anyway", add.v[i], why);
        }
        if (o->single_gpu)
                vm.def.single_gpu = VM_ON;
        for (size_t i = 0; i < add.n; i++)
                if (strv_push(&vm.def.passthrough, add.v[i]) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
        if (rom) {
                roms_remove(&vm.def.passthrough_roms, addr);
                if (strv_pushf(&vm.def.passthrough_roms, "%s=%s", addr, rom) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
        }
        if ((r = ops_vm_save(&vm, err)) < 0)
                return r;
        json_object *x = json_object_new_object();
        json_object_object_add(x, "name", json_object_new_string(vm.name));
        json_object_object_add(x, "address", json_object_new_string(addr));
        json_object_object_add(x, "attached", str_array(&add));
        json_object_object_add(x, "single_gpu", json_object_new_boolean(o->single_gpu));
        *ret = x;
        return 0;
}

static bool same_device(const char *a, const char *b) {
        return strlen(a) == 12 && strlen(b) == 12 && strncmp(a, b, 10) == 0;
}

int ops_device_detach(const struct ops_ctx *c, const char *name, const char *addr, json_object **ret,
                      phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        _cleanup_strv_ strv gone = { 0 };
        int r = ops_vm_open(c, name, OPS_WRITE, &vm, err);
        if (r < 0)
                return r;
        struct vm_def *d = &vm.def;
        if (!strv_contains(&d->passthrough, addr))
                return phy_error_set(err, ENOENT, "PCI device %s is not attached to VM '%s' (see 'phyllo device list "
                                     "%s')", addr, vm.name, vm.name);
        /* The functions of one device went together; they leave together. */
        for (size_t i = 0; i < d->passthrough.n; i++)
                if (same_device(d->passthrough.v[i], addr) && strv_push(&gone, d->passthrough.v[i]) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < gone.n; i++) {
                strv_remove(&d->passthrough, gone.v[i]);
                roms_remove(&d->passthrough_roms, gone.v[i]);
        }
        /* Single-GPU mode goes with the host's display GPU. */
        bool display_left = false;
        for (size_t i = 0; i < d->passthrough.n; i++)
                display_left |= dev_pci_is_boot_display(c->root, d->passthrough.v[i]);
        if (!display_left)
                d->single_gpu = VM_UNSET;
        if ((r = ops_vm_save(&vm, err)) < 0)
                return r;
        json_object *x = json_object_new_object();
        json_object_object_add(x, "name", json_object_new_string(vm.name));
        json_object_object_add(x, "detached", str_array(&gone));
        *ret = x;
        return 0;
}

int ops_device_give_back(const struct ops_ctx *c, const char *name, json_object **ret, phy_error *err) {
        _cleanup_free_ char *rd = NULL;
        int r = ops_name_check("VM name", name, err);
        if (r < 0)
                return r;
        if (run_is_active(c->home, name))
                return phy_error_set(err, EBUSY, "VM '%s' is running; its devices go back when it stops", name);
        if ((r = run_dir_path(c->home, name, &rd, err)) < 0)
                return r;
        /* A VM deleted with its devices still recorded may give them back;
         * a name that names nothing gets the one answer. */
        if (access(rd, F_OK) < 0 && (r = vm_exists(c->home, name, err)) < 0)
                return r;
        /* What devices.state records is believed only in a run dir nobody else can write. */
        if ((r = run_dir_check(rd, err)) < 0 ||
            (r = dev_passthrough_restore(c->root, rd, NULL, NULL, err)) < 0 ||
            (r = dev_single_gpu_restore_host(rd, NULL, NULL, err)) < 0)
                return r;
        json_object *x = json_object_new_object();
        json_object_object_add(x, "name", json_object_new_string(name));
        json_object_object_add(x, "given_back", json_object_new_boolean(true));
        *ret = x;
        return 0;
}

int ops_mdev_types(const struct ops_ctx *c, const char *parent, json_object **ret, phy_error *err) {
        _cleanup_(dev_mdev_types_done) struct dev_mdev_types t = { 0 };
        int r = dev_mdev_types(c->root, parent, &t, err);
        if (r < 0)
                return r;
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < t.n; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "type", json_object_new_string(t.v[i].id));
                json_object_object_add(o, "name", t.v[i].name ? json_object_new_string(t.v[i].name) : NULL);
                json_object_object_add(o, "available_instances", json_object_new_int64(t.v[i].available));
                json_object_object_add(o, "description",
                                       t.v[i].description ? json_object_new_string(t.v[i].description) : NULL);
                json_object_array_add(arr, o);
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "parent", json_object_new_string(parent));
        json_object_object_add(o, "types", arr);
        *ret = o;
        return 0;
}

static void uuid_v4(char out[37]) {
        unsigned char b[16];
        if (getrandom(b, sizeof b, 0) != sizeof b)
                abort();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

int ops_mdev_create(const struct ops_ctx *c, const char *parent, const char *type, const char *uuid,
                    json_object **ret, phy_error *err) {
        char made[37];
        if (!parent || !type)
                return phy_error_usage(err, "a parent PCI address and an mdev type are required");
        if (!uuid) {
                uuid_v4(made);
                uuid = made;
        }
        int r = dev_mdev_create(c->root, parent, type, uuid, NULL, NULL, err);
        if (r < 0)
                return r;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "uuid", json_object_new_string(uuid));
        json_object_object_add(o, "parent", json_object_new_string(parent));
        json_object_object_add(o, "type", json_object_new_string(type));
        *ret = o;
        return 0;
}

int ops_mdev_remove(const struct ops_ctx *c, const char *uuid, json_object **ret, phy_error *err) {
        int r = dev_mdev_remove(c->root, uuid, NULL, NULL, err);
        if (r < 0)
                return r;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "removed", json_object_new_string(uuid));
        *ret = o;
        return 0;
}

int ops_mdev_attach(const struct ops_ctx *c, const char *name, const char *uuid, bool display, json_object **ret,
                    phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        _cleanup_free_ char *dir = NULL;
        int r;
        if (!uuid || !value_uuid_valid(uuid, true))
                return phy_error_usage(err, "'%s' is not a UUID", uuid ? uuid : "");
        if (asprintf(&dir, "/sys/bus/mdev/devices/%s", uuid) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (!root_exists(c->root, dir))
                return phy_error_set(err, ENOENT, "there is no mediated device %s on this host (create it with "
                                     "'phyllo device mdev-create')", uuid);
        if ((r = ops_vm_open(c, name, OPS_WRITE, &vm, err)) < 0)
                return r;
        if (!strv_contains(&vm.def.mdevs, uuid) && strv_push(&vm.def.mdevs, uuid) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (display)
                vm.def.mdev_display = VM_ON;
        if ((r = ops_vm_save(&vm, err)) < 0)
                return r;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(vm.name));
        json_object_object_add(o, "mdev", json_object_new_string(uuid));
        json_object_object_add(o, "display", json_object_new_boolean(display));
        *ret = o;
        return 0;
}

int ops_sriov(const struct ops_ctx *c, const char *pf, unsigned count, json_object **ret, phy_error *err) {
        _cleanup_strv_ strv vfs = { 0 };
        int r;
        if ((r = dev_sriov_set(c->root, pf, count, NULL, NULL, err)) < 0 || (r = dev_sriov_vfs(c->root, pf, &vfs, err)) < 0)
                return r;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "device", json_object_new_string(pf));
        json_object_object_add(o, "vfs", str_array(&vfs));
        *ret = o;
        return 0;
}

int ops_usb_change(const struct ops_ctx *c, const char *name, const char *spec_in, bool attach, json_object **ret,
                   phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        _cleanup_qmp_ struct qmp *q = NULL;
        char spec[32];
        int r;
        if (!spec_in)
                return phy_error_usage(err, "a USB device is required");
        snprintf(spec, sizeof spec, "%s", spec_in);
        for (char *p = spec; *p; p++)
                *p = (char) (*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
        if (strlen(spec_in) >= sizeof spec || !value_usb_id_valid(spec))
                return phy_error_usage(err, "'%s' is not VENDOR:PRODUCT (hex, 046d:c52b) or BUS-PORT (1-2, "
                                     "3-1.4)", spec_in);
        if ((r = ops_vm_open(c, name, OPS_WRITE, &vm, err)) < 0)
                return r;
        if (attach == strv_contains(&vm.def.usb, spec))
                return phy_error_set(err, attach ? EEXIST : ENOENT, "USB device %s is %s VM '%s'", spec,
                                     attach ? "already attached to" : "not attached to", vm.name);
        if ((r = ops_vm_qmp(&vm, &q, err)) < 0)
                return r;
        if (q && (r = dev_usb_hotplug(q, spec, attach, 5000, err)) < 0)
                return phy_error_prefix(err, "%s on running VM '%s'", attach ? "device_add" : "device_del", vm.name);
        if (attach ? strv_push(&vm.def.usb, spec) < 0 : strv_remove(&vm.def.usb, spec) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if ((r = ops_vm_save(&vm, err)) < 0)
                return r;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(vm.name));
        json_object_object_add(o, attach ? "attached" : "detached", json_object_new_string(spec));
        json_object_object_add(o, "hotplugged", json_object_new_boolean(q != NULL));
        *ret = o;
        return 0;
}

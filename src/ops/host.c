/* SPDX-License-Identifier: MIT */
/* The host: `host check` (virtualization support, tiers, the host budget,
 * the 3D display modes) and its PCI devices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "ops.h"
#include "dev/dev.h"
#include "host/check.h"
#include "host/host.h"
#include "host/json.h"
#include "host/pci.h"
#include "paths.h"
#include "qemu/caps.h"
#include "qemu/report.h"
#include "qemu/tools.h"

int ops_host_check(const struct ops_ctx *c, json_object **ret, phy_error *err) {
        _cleanup_(host_facts_done) struct host_facts h = { 0 };
        int r;
        if ((r = host_facts_load(c->root, &h, err)) < 0)
                return r;
        /* Tools are about the real host; under a fixture root the report
         * stays the fixture's own, so they are reported as not checked. */
        bool real = !c->root || strcmp(c->root, "/") == 0;
        struct qemu_tools tools = { 0 };
        if (real && (r = qemu_tools_find(&tools, err)) < 0) {
                qemu_tools_done(&tools);
                return r;
        }
        _cleanup_(host_check_report_done) struct host_check_report rep = { 0 };
        r = host_check_run(&h, real ? &tools : NULL, &rep, err);
        if (r < 0) {
                qemu_tools_done(&tools);
                return r;
        }
        /* The 3D modes come from src/dev (which itself builds on src/host). */
        if ((r = dev_gl_modes_check(c->root, &h, &rep)) < 0) {
                qemu_tools_done(&tools);
                return phy_error_set(err, -r, "cannot check the 3D display modes: %s", strerror(-r));
        }
        /* What the model uses from this QEMU and what a newer one adds (its
         * probed capabilities, cached per binary). */
        json_object *qj = NULL;
        if (real && tools.qemu) {
                _cleanup_free_ char *cache = NULL;
                _cleanup_qemu_caps_ struct qemu_caps caps = { 0 };
                phy_error e = { 0 };
                if (phy_cache_dir(&cache, &e) >= 0 && qemu_caps_probe(tools.qemu, cache, &caps, &e) >= 0)
                        r = qemu_caps_report(&caps, &rep, &qj);
                else
                        r = host_check_report_add(&rep, "qemu.uses", "What the VM model uses from this QEMU", HOST_CHECK_WARN,
                                                  e.message, "run 'phyllo caps --refresh' to see why QEMU cannot be probed");
        }
        qemu_tools_done(&tools);
        if (r < 0) {
                json_object_put(qj);
                return phy_error_set(err, -r, "cannot report QEMU's features: %s", strerror(-r));
        }
        *ret = host_check_report_to_json(&h, &rep);
        json_object_object_add(*ret, "qemu", qj);
        return 0;
}

int ops_host_devices(const struct ops_ctx *c, json_object **ret, phy_error *err) {
        _cleanup_(host_pci_list_done) struct host_pci_list l = { 0 };
        int r = host_pci_list(c->root, &l, err);
        if (r < 0)
                return r;
        *ret = host_pci_list_to_json(&l);
        return 0;
}

/* The QEMU binary o->qemu names (or the one found), probed over QMP (cached
 * per binary; o->refresh probes again). */
int ops_caps(const struct ops_ctx *c, const struct ops_caps_opts *o, json_object **ret, phy_error *err) {
        struct qemu_tools tools = { 0 };
        const char *binary = o->qemu;
        int r;
        if (!binary) {
                if ((r = qemu_tools_find(&tools, err)) < 0) {
                        qemu_tools_done(&tools);
                        return r;
                }
                if (!tools.qemu) {
                        qemu_tools_done(&tools);
                        return phy_error_set(err, ENOENT, "qemu-system-x86_64 is not installed or not in $PATH; "
                                             "install it (Debian: qemu-system-x86) or pass --qemu PATH");
                }
                binary = tools.qemu;
        }
        _cleanup_free_ char *cache = NULL;
        _cleanup_qemu_caps_ struct qemu_caps caps = { 0 };
        if ((r = phy_cache_dir(&cache, err)) >= 0)
                r = qemu_caps_probe_ex(binary, cache, o->refresh ? QEMU_CAPS_REFRESH : 0, &caps, err);
        qemu_tools_done(&tools);
        if (r < 0)
                return r;
        _cleanup_free_ char *text = qemu_caps_to_json(&caps);
        json_object *probed = text ? json_tokener_parse(text) : NULL;
        if (!probed)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* What Phyllome looks for, answered here so that every face says the same. */
        static const struct { const char *label, *kind, *name, *prop; } rows[] = {
                { "machine q35", "machine", "q35", NULL },
                { "accel kvm", "accel", "kvm", NULL },
                { "accel tcg", "accel", "tcg", NULL },
                { "tpm-crb", "device", "tpm-crb", NULL },
                { "virtio-vga-gl", "device", "virtio-vga-gl", NULL },
                { "virtio-sound-pci", "device", "virtio-sound-pci", NULL },
                { "virtio-blk-pci", "device", "virtio-blk-pci", NULL },
                { "virtio-net-pci", "device", "virtio-net-pci", NULL },
                { "nvme", "device", "nvme", NULL },
                { "vfio-pci", "device", "vfio-pci", NULL },
                { "free page reporting", "prop", "virtio-balloon-pci", "free-page-reporting" },
                { "display gtk", "display", "gtk", NULL },
                { "display sdl", "display", "sdl", NULL },
                { "audio pa", "audio", "pa", NULL },
                { "audio spice", "audio", "spice", NULL },
        };
        json_object *summary = json_object_new_array(), *absent = json_object_new_array();
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                bool have;
                if (strcmp(rows[i].kind, "machine") == 0)
                        have = qemu_caps_has_machine(&caps, rows[i].name);
                else if (strcmp(rows[i].kind, "accel") == 0)
                        have = qemu_caps_has_accel(&caps, rows[i].name);
                else if (strcmp(rows[i].kind, "device") == 0)
                        have = qemu_caps_has_device(&caps, rows[i].name);
                else if (strcmp(rows[i].kind, "display") == 0)
                        have = qemu_caps_has_display(&caps, rows[i].name);
                else if (strcmp(rows[i].kind, "audio") == 0)
                        have = qemu_caps_has_audiodev(&caps, rows[i].name);
                else
                        have = qemu_caps_has_prop(&caps, rows[i].name, rows[i].prop);
                json_object *row = json_object_new_object();
                json_object_object_add(row, "what", json_object_new_string(rows[i].label));
                json_object_object_add(row, "have", json_object_new_boolean(have));
                json_object_array_add(summary, row);
        }
        /* Listed by QEMU but not creatable: a module it needs is missing. */
        for (size_t i = 0; i < caps.absent.n; i++) {
                char dev[128], why[512], needs[600];
                snprintf(dev, sizeof dev, "%.*s", (int) strcspn(caps.absent.v[i], " "), caps.absent.v[i]);
                static const char lacks[] = "which this QEMU lacks: ";
                const char *fix = qemu_caps_lacks(&caps, "any", "device", dev, why, sizeof why) ? strstr(why, lacks) : NULL;
                if (fix)
                        snprintf(needs, sizeof needs, "%s", fix + strlen(lacks));
                else
                        snprintf(needs, sizeof needs, "needs %s", caps.absent.v[i] + strlen(dev) + 1);
                json_object *row = json_object_new_object();
                json_object_object_add(row, "device", json_object_new_string(dev));
                json_object_object_add(row, "why", json_object_new_string(needs));
                json_object_array_add(absent, row);
        }
        json_object *x = json_object_new_object();
        json_object_object_add(x, "caps", probed);
        json_object_object_add(x, "from_cache", json_object_new_boolean(caps.from_cache));
        json_object_object_add(x, "summary", summary);
        json_object_object_add(x, "absent", absent);
        *ret = x;
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* The host: `host check` (virtualization support, tiers, the host budget,
 * the 3D display modes) and its PCI devices. */
#include <string.h>
#include <json-c/json.h>

#include "ops.h"
#include "dev/dev.h"
#include "host/check.h"
#include "host/host.h"
#include "host/json.h"
#include "host/pci.h"
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
        qemu_tools_done(&tools);
        if (r < 0)
                return r;
        /* The 3D modes come from src/dev (which itself builds on src/host). */
        if ((r = dev_gl_modes_check(c->root, &h, &rep)) < 0)
                return phy_error_set(err, -r, "cannot check the 3D display modes: %s", strerror(-r));
        *ret = host_check_report_to_json(&h, &rep);
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

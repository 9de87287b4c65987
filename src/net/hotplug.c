/* SPDX-License-Identifier: MIT */
/* NIC hot-plug and unplug over QMP.  Hot-plugged NICs use QEMU's slirp:
 * passt would need the monitor to start and supervise it mid-run. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "net.h"
#include "qemu/qmp.h"
#include "value.h"
#include "qemu/argv.h"

static const char *nic_driver(enum vm_nic_model m) {
        switch (m) {
        case VM_NIC_E1000E: return "e1000e";
        case VM_NIC_RTL8139: return "rtl8139";
        default: return "virtio-net-pci";
        }
}

static int64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int netdev_del(struct qmp *q, const char *netdev, int timeout_ms, phy_error *err) {
        json_object *args = json_object_new_object();
        json_object_object_add(args, "id", json_object_new_string(netdev));
        return qmp_command(q, "netdev_del", args, timeout_ms, NULL, err);
}

static int plug(struct qmp *q, const struct vm_nic *n, const char *netdev, const char *dev, int timeout_ms,
                phy_error *err) {
        json_object *args = json_object_new_object(), *fwd = json_object_new_array();
        json_object_object_add(args, "type", json_object_new_string("user"));
        json_object_object_add(args, "id", json_object_new_string(netdev));
        for (size_t i = 0; i < n->forwards.n; i++) {
                struct value_forward f;
                _cleanup_free_ char *rule = NULL;
                if (value_forward_parse(n->forwards.v[i], &f) < 0 || !(rule = qemu_hostfwd(&f))) {
                        json_object_put(args);
                        json_object_put(fwd);
                        return phy_error_usage(err, "network '%s': bad forward '%s'", n->name,
                                             n->forwards.v[i]);
                }
                json_object *s = json_object_new_object();
                json_object_object_add(s, "str", json_object_new_string(rule));
                json_object_array_add(fwd, s);
        }
        if (json_object_array_length(fwd) > 0)
                json_object_object_add(args, "hostfwd", fwd);
        else
                json_object_put(fwd);
        int r = qmp_command(q, "netdev_add", args, timeout_ms, NULL, err);
        if (r < 0)
                return phy_error_prefix(err, "cannot add network '%s' to the running VM", n->name);
        /* q35's pcie.0 takes no hot-plug: the first spare root port with room. */
        for (unsigned port = 0; port <= QEMU_HOTPLUG_PORTS; port++) {
                char bus[32];
                snprintf(bus, sizeof bus, "phy-hotplug%u", port);
                args = json_object_new_object();
                json_object_object_add(args, "driver", json_object_new_string(nic_driver(n->model)));
                json_object_object_add(args, "id", json_object_new_string(dev));
                json_object_object_add(args, "netdev", json_object_new_string(netdev));
                json_object_object_add(args, "mac", json_object_new_string(n->mac));
                /* The last try has no bus: the i440fx machine's pci.0 takes hot-plug itself. */
                if (port < QEMU_HOTPLUG_PORTS)
                        json_object_object_add(args, "bus", json_object_new_string(bus));
                phy_error_clear(err);
                r = qmp_command(q, "device_add", args, timeout_ms, NULL, err);
                if (r == 0)
                        return 0;
        }
        phy_error e2 = { 0 };
        (void) netdev_del(q, netdev, timeout_ms, &e2);
        return phy_error_prefix(err, "cannot plug network '%s' into the running VM (every spare hot-plug port is "
                                "taken?)", n->name);
}

static int unplug(struct qmp *q, const struct vm_nic *n, const char *netdev, const char *dev, int timeout_ms,
                  phy_error *err) {
        json_object *args = json_object_new_object();
        json_object_object_add(args, "id", json_object_new_string(dev));
        int r = qmp_command(q, "device_del", args, timeout_ms, NULL, err);
        if (r < 0)
                return phy_error_prefix(err, "cannot unplug network '%s' from the running VM", n->name);
        /* The guest acknowledges the unplug; DEVICE_DELETED says it did. */
        int64_t deadline = mono_ms() + timeout_ms;
        for (;;) {
                int64_t left = deadline - mono_ms();
                json_object *ev = NULL, *v = NULL, *data = NULL;
                if (left <= 0)
                        return phy_error_set(err, ETIMEDOUT, "the guest did not release network '%s' within %d s; "
                                             "it goes at the next start", n->name, timeout_ms / 1000);
                r = qmp_next_event(q, (int) left, &ev, err);
                if (r == -ETIMEDOUT)
                        continue;
                if (r < 0)
                        return r;
                bool done = json_object_object_get_ex(ev, "event", &v) &&
                            strcmp(json_object_get_string(v), "DEVICE_DELETED") == 0 &&
                            json_object_object_get_ex(ev, "data", &data) &&
                            json_object_object_get_ex(data, "device", &v) &&
                            strcmp(json_object_get_string(v), dev) == 0;
                json_object_put(ev);
                if (done)
                        break;
        }
        return netdev_del(q, netdev, timeout_ms, err);
}

int net_nic_hotplug(struct qmp *q, const struct vm_nic *n, bool add, int timeout_ms, phy_error *err) {
        char netdev[64], dev[64];
        /* The ids the argv builder gives a NIC of the definition. */
        snprintf(netdev, sizeof netdev, "net-%s", n->name);
        snprintf(dev, sizeof dev, "nic-%s", n->name);
        if (timeout_ms <= 0)
                timeout_ms = 10000;
        return add ? plug(q, n, netdev, dev, timeout_ms, err) : unplug(q, n, netdev, dev, timeout_ms, err);
}

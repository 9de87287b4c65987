/* SPDX-License-Identifier: MIT */
/* Networks and shared folders: the definition changed and checked first,
 * then saved; a running VM gets the change over QMP where its backend
 * allows (src/net). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "ops.h"
#include "value.h"
#include "net/net.h"
#include "qemu/qmp.h"
#include "run/run.h"

int ops_forward_list(const struct ops_ctx *c, const char *name, json_object **ret, phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        _cleanup_run_state_ struct run_state st = { 0 };
        int r = ops_vm_open(c, name, OPS_READ, &vm, err);
        if (r < 0 || (r = run_state_get(c->home, name, &st, err)) < 0)
                return r;
        bool active = run_state_active(st.state) && st.qemu_pid > 0;
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < vm.def.n_nics; i++)
                for (size_t k = 0; k < vm.def.nics[i].forwards.n; k++) {
                        const char *spec = vm.def.nics[i].forwards.v[k];
                        struct value_forward f;
                        if (value_forward_parse(spec, &f) < 0)
                                continue;
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "nic", json_object_new_string(vm.def.nics[i].name));
                        json_object_object_add(o, "spec", json_object_new_string(spec));
                        json_object_object_add(o, "protocol", json_object_new_string(f.proto));
                        json_object_object_add(o, "address", json_object_new_string(value_forward_addr(&f)));
                        json_object_object_add(o, "host_port", json_object_new_int((int) f.host_port));
                        json_object_object_add(o, "guest_port", json_object_new_int((int) f.guest_port));
                        /* On a running VM: listening now, or pending (its
                         * backend takes it at the next start); null when stopped. */
                        json_object_object_add(o, "live", !active ? NULL :
                                               json_object_new_string(run_forward_pending(vm.run_dir, st.qemu_pid, spec)
                                                                      ? "pending" : "active"));
                        json_object_array_add(a, o);
                }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "forwards", a);
        *ret = o;
        return 0;
}

int ops_forward_change(const struct ops_ctx *c, const char *name, const char *nic, const char *spec, bool add,
                       json_object **ret, phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        _cleanup_qmp_ struct qmp *q = NULL;
        int r;
        if (!spec)
                return phy_error_usage(err, "a forward (tcp:[ADDR:]HOSTPORT:GUESTPORT) is required");
        if ((r = ops_vm_open(c, name, OPS_WRITE, &vm, err)) < 0)
                return r;
        r = add ? net_def_forward_add(&vm.def, nic, spec, err) : net_def_forward_remove(&vm.def, nic, spec, err);
        if (r < 0 || (add && (r = net_forward_check_free(spec, err)) < 0))
                return r;
        const char *nic_name = net_def_nic(&vm.def, nic)->name;
        if ((r = ops_vm_qmp(&vm, &q, err)) < 0)
                return r;
        /* live: applied to the running VM; next-start: its backend (passt
         * holds the forwards on its own command line) cannot change live. */
        const char *live = NULL;
        if (q) {
                r = net_hotfwd(q, nic_name, spec, add, err);
                if (r == -EOPNOTSUPP) {
                        phy_error_clear(err);
                        live = "next-start";
                } else if (r < 0)
                        return r;
                else
                        live = "applied";
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(vm.name));
        json_object_object_add(o, "nic", json_object_new_string(nic_name));
        json_object_object_add(o, add ? "added" : "removed", json_object_new_string(spec));
        json_object_object_add(o, "live", live ? json_object_new_string(live) : NULL);
        if ((r = ops_vm_save(&vm, err)) < 0) {
                json_object_put(o);
                return r;
        }
        if (add && live && strcmp(live, "next-start") == 0) {
                _cleanup_run_state_ struct run_state st = { 0 };
                phy_error e2 = { 0 };
                if (run_state_get(c->home, vm.name, &st, &e2) == 0 && st.qemu_pid > 0)
                        run_forward_pending_add(vm.run_dir, st.qemu_pid, spec);
        }
        *ret = o;
        return 0;
}

int ops_nic_change(const struct ops_ctx *c, const char *name, const char *nic, bool add, const char *model_s,
                   const char *mode, json_object **ret, phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        _cleanup_qmp_ struct qmp *q = NULL;
        enum vm_nic_model model = VM_NIC_UNSET;
        int r;
        if (!nic)
                return phy_error_usage(err, "a network name is required");
        if (model_s && (int) (model = (enum vm_nic_model) vm_nic_model_from_name(model_s)) < 0)
                return phy_error_usage(err, "unknown model '%s'", model_s);
        if ((r = ops_vm_open(c, name, OPS_WRITE, &vm, err)) < 0)
                return r;
        /* The NIC as it was, for the unplug (its forwards, ids). */
        struct vm_nic *old = add ? NULL : net_def_nic(&vm.def, nic);
        if (!add && !old)
                return phy_error_set(err, ENOENT, "VM '%s' has no network named '%s'", vm.name, nic);
        if (add && (r = net_def_nic_add(&vm.def, nic, model, err)) < 0)
                return r;
        if (add && mode && (r = vm_nic_mode_parse(mode, net_def_nic(&vm.def, nic), err)) < 0)
                return r;
        if ((r = ops_vm_qmp(&vm, &q, err)) < 0)
                return r;
        /* Hot-plug brings user networking only: an isolated or bridged NIC
         * needs its hub or tap set up by the monitor at start. */
        const struct vm_nic *nn = add ? net_def_nic(&vm.def, nic) : NULL;
        if (q && nn && nn->mode != VM_NET_USER)
                return phy_error_set(err, EBUSY, "VM '%s' is running and a %s network cannot be hot-plugged (only "
                                     "user networking can); stop the VM and add it again, or use --mode user",
                                     vm.name, vm_net_mode_name(nn->mode));
        if (q && (r = net_nic_hotplug(q, add ? net_def_nic(&vm.def, nic) : old, add, 15000, err)) < 0)
                return r;
        char mac[18];
        snprintf(mac, sizeof mac, "%s", net_def_nic(&vm.def, nic)->mac);
        if ((!add && (r = net_def_nic_remove(&vm.def, nic, err)) < 0) || (r = ops_vm_save(&vm, err)) < 0)
                return r;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(vm.name));
        json_object_object_add(o, add ? "added" : "removed", json_object_new_string(nic));
        json_object_object_add(o, "mac", json_object_new_string(mac));
        json_object_object_add(o, "hotplugged", json_object_new_boolean(q != NULL));
        *ret = o;
        return 0;
}

int ops_share_list(const struct ops_ctx *c, const char *name, json_object **ret, phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        int r = ops_vm_open(c, name, OPS_READ, &vm, err);
        if (r < 0)
                return r;
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < vm.def.n_shares; i++) {
                const struct vm_share *s = &vm.def.shares[i];
                const char *type = vm_share_type_name(s->type);
                json_object *o = json_object_new_object();
                json_object_object_add(o, "tag", json_object_new_string(s->tag));
                json_object_object_add(o, "path", json_object_new_string(s->path));
                json_object_object_add(o, "type", json_object_new_string(type ? type : "virtiofs"));
                json_object_object_add(o, "readonly", json_object_new_boolean(s->readonly));
                json_object_array_add(a, o);
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "shares", a);
        *ret = o;
        return 0;
}

int ops_share_change(const struct ops_ctx *c, const char *name, const char *tag, const char *dir, bool readonly,
                     const char *type_s, json_object **ret, phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        enum vm_share_type type = VM_SHARE_UNSET;
        int r;
        if (!tag)
                return phy_error_usage(err, "a share tag is required");
        if (dir && dir[0] != '/')
                return phy_error_usage(err, "the directory to share '%s' must be an absolute path", dir);
        if (type_s && (int) (type = (enum vm_share_type) vm_share_type_from_name(type_s)) < 0)
                return phy_error_usage(err, "unknown share type '%s'", type_s);
        if ((r = ops_vm_open(c, name, OPS_WRITE, &vm, err)) < 0)
                return r;
        r = dir ? net_def_share_add(&vm.def, tag, dir, readonly, type, c->home, err)
                : net_def_share_remove(&vm.def, tag, err);
        if (r < 0 || (r = ops_vm_save(&vm, err)) < 0)
                return r;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(vm.name));
        json_object_object_add(o, dir ? "added" : "removed", json_object_new_string(tag));
        /* virtiofsd and -virtfs are set up before QEMU starts: no hot-add. */
        json_object_object_add(o, "running", json_object_new_boolean(ops_vm_active(&vm)));
        *ret = o;
        return 0;
}

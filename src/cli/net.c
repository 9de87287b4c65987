/* SPDX-License-Identifier: MIT */
/* phyllo net forward add|remove|list, phyllo net nic add|remove (src/net).
 * The definition changes first-checked, then saved atomically; a running
 * VM gets the change over QMP where its backend allows. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cleanup.h"
#include "net/net.h"
#include "qemu/qmp.h"
#include "run/run.h"
#include "vm/vm.h"
#include "value.h"

static const char forward_usage[] = "net forward add|remove NAME [NIC] SPEC | net forward list NAME [--json]";
static const char nic_usage[] = "net nic add NAME NIC [--model virtio|e1000e|rtl8139] "
                                "[--mode none|user|isolated:NAME|bridge:BR] | net nic remove NAME NIC";

/* QMP on a running (or paused) VM; *ret NULL when it does not run. */
static int open_running(const char *home, const char *name, struct qmp **ret, phy_error *err) {
        _cleanup_run_state_ struct run_state st = { 0 };
        _cleanup_free_ char *rd = NULL, *sock = NULL;
        *ret = NULL;
        int r = run_state_get(home, name, &st, err);
        if (r < 0 || (st.state != RUN_RUNNING && st.state != RUN_PAUSED))
                return r;
        if ((r = run_dir_path(home, name, &rd, err)) < 0)
                return r;
        if (asprintf(&sock, "%s/qmp.sock", rd) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if ((r = qmp_open_path(sock, 5000, ret, err)) < 0)
                return phy_error_prefix(err, "cannot reach QEMU of running VM '%s'", name);
        return 0;
}

/* With ret_lock: under the VM's edit lock, held until *ret_lock is closed. */
static int load(struct cli_ctx *ctx, const char *name, struct vm_def *d, const char **ret_home, int *ret_lock,
                phy_error *err) {
        if (cli_home(ctx, ret_home) < 0)
                return -1;
        if ((ret_lock && vm_edit_lock(*ret_home, name, ret_lock, err) < 0) ||
            vm_load_by_name(*ret_home, name, d, err) < 0) {
                cli_fail(err);
                return -1;
        }
        return 0;
}

static int save(const char *home, const struct vm_def *d, phy_error *err) {
        _cleanup_free_ char *conf = vm_conf_path(home, d->name);
        if (!conf)
                return phy_error_set(err, ENOMEM, "out of memory");
        return vm_def_save(d, conf, err);
}

static int forward_list(struct cli_ctx *ctx, int argc, char **argv) {
        bool json = false;
        const char *name = NULL;
        for (int i = 2; i < argc; i++) {
                if (strcmp(argv[i], "--json") == 0)
                        json = true;
                else if (!name && argv[i][0] != '-')
                        name = argv[i];
                else
                        return cli_usage_error(forward_usage, "unexpected argument '%s'", argv[i]);
        }
        if (!name)
                return cli_usage_error(forward_usage, "expected a VM name");
        const char *home;
        phy_error err = { 0 };
        _cleanup_vm_def_ struct vm_def d = { 0 };
        if (load(ctx, name, &d, &home, NULL, &err) < 0)
                return 1;
        if (json) {
                json_object *a = json_object_new_array();
                for (size_t i = 0; i < d.n_nics; i++)
                        for (size_t k = 0; k < d.nics[i].forwards.n; k++) {
                                struct value_forward f;
                                if (value_forward_parse(d.nics[i].forwards.v[k], &f) < 0)
                                        continue;
                                json_object *o = json_object_new_object();
                                json_object_object_add(o, "nic", json_object_new_string(d.nics[i].name));
                                json_object_object_add(o, "spec", json_object_new_string(d.nics[i].forwards.v[k]));
                                json_object_object_add(o, "protocol", json_object_new_string(f.proto));
                                json_object_object_add(o, "address", json_object_new_string(value_forward_addr(&f)));
                                json_object_object_add(o, "host_port", json_object_new_int((int) f.host_port));
                                json_object_object_add(o, "guest_port", json_object_new_int((int) f.guest_port));
                                json_object_array_add(a, o);
                        }
                cli_print_json(a);
                return 0;
        }
        for (size_t i = 0; i < d.n_nics; i++)
                for (size_t k = 0; k < d.nics[i].forwards.n; k++) {
                        struct value_forward f;
                        if (value_forward_parse(d.nics[i].forwards.v[k], &f) == 0)
                                printf("%-8s %s %s:%u -> guest port %u\n", d.nics[i].name, f.proto,
                                       value_forward_addr(&f), f.host_port, f.guest_port);
                }
        return 0;
}

static int forward_change(struct cli_ctx *ctx, int argc, char **argv, bool add) {
        /* forward add NAME [NIC] SPEC */
        if (argc != 4 && argc != 5)
                return cli_usage_error(forward_usage, "expected a VM name, an optional network and a forward");
        const char *name = argv[2], *nic = argc == 5 ? argv[3] : NULL, *spec = argv[argc - 1];
        const char *home;
        phy_error err = { 0 };
        _cleanup_vm_def_ struct vm_def d = { 0 };
        _cleanup_close_ int lock = -1;
        if (load(ctx, name, &d, &home, &lock, &err) < 0)
                return 1;
        int r = add ? net_def_forward_add(&d, nic, spec, &err) : net_def_forward_remove(&d, nic, spec, &err);
        if (r < 0 || (add && net_forward_check_free(spec, &err) < 0))
                return cli_fail(&err);
        const char *nic_name = net_def_nic(&d, nic)->name;
        _cleanup_qmp_ struct qmp *q = NULL;
        if (open_running(home, name, &q, &err) < 0)
                return cli_fail(&err);
        const char *live = "";
        if (q) {
                r = net_hotfwd(q, nic_name, spec, add, &err);
                if (r == -EOPNOTSUPP)   /* passt holds the forwards: its own command line */
                        live = "; the running VM's backend cannot change forwards live: it applies at the next start";
                else if (r < 0)
                        return cli_fail(&err);
                else
                        live = " (applied to the running VM)";
        }
        if (save(home, &d, &err) < 0)
                return cli_fail(&err);
        printf("%s forward %s on network '%s' of VM '%s'%s\n", add ? "added" : "removed", spec, nic_name, name, live);
        return 0;
}

int cmd_net_forward(struct cli_ctx *ctx, int argc, char **argv) {
        if (argc < 2)
                return cli_usage_error(forward_usage, "expected add, remove or list");
        if (strcmp(argv[1], "add") == 0)
                return forward_change(ctx, argc, argv, true);
        if (strcmp(argv[1], "remove") == 0)
                return forward_change(ctx, argc, argv, false);
        if (strcmp(argv[1], "list") == 0)
                return forward_list(ctx, argc, argv);
        return cli_usage_error(forward_usage, "unknown 'net forward' command '%s'", argv[1]);
}

int cmd_net_nic(struct cli_ctx *ctx, int argc, char **argv) {
        if (argc < 4)
                return cli_usage_error(nic_usage, "expected add or remove, a VM name and a network name");
        bool add = strcmp(argv[1], "add") == 0;
        if (!add && strcmp(argv[1], "remove") != 0)
                return cli_usage_error(nic_usage, "unknown 'net nic' command '%s'", argv[1]);
        const char *name = argv[2], *nic = argv[3];
        enum vm_nic_model model = VM_NIC_UNSET;
        const char *mode = NULL;
        for (int i = 4; i < argc; i++) {
                if (add && strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
                        const char *m = argv[++i];
                        model = strcmp(m, "virtio") == 0 ? VM_NIC_VIRTIO : strcmp(m, "e1000e") == 0 ? VM_NIC_E1000E :
                                strcmp(m, "rtl8139") == 0 ? VM_NIC_RTL8139 : VM_NIC_UNSET;
                        if (model == VM_NIC_UNSET)
                                return cli_usage_error(nic_usage, "unknown model '%s'", m);
                } else if (add && strcmp(argv[i], "--mode") == 0 && i + 1 < argc)
                        mode = argv[++i];
                else
                        return cli_usage_error(nic_usage, "unexpected argument '%s'", argv[i]);
        }
        const char *home;
        phy_error err = { 0 };
        _cleanup_vm_def_ struct vm_def d = { 0 };
        _cleanup_close_ int lock = -1;
        if (load(ctx, name, &d, &home, &lock, &err) < 0)
                return 1;
        /* The NIC as it was, for the unplug (its forwards, ids). */
        struct vm_nic *old = add ? NULL : net_def_nic(&d, nic);
        if (!add && !old) {
                phy_error_set(&err, ENOENT, "VM '%s' has no network named '%s'", name, nic);
                return cli_fail(&err);
        }
        if (add && net_def_nic_add(&d, nic, model, &err) < 0)
                return cli_fail(&err);
        if (add && mode && vm_nic_mode_parse(mode, net_def_nic(&d, nic), &err) < 0)
                return cli_usage_error(nic_usage, "%s", err.message);
        _cleanup_qmp_ struct qmp *q = NULL;
        if (open_running(home, name, &q, &err) < 0)
                return cli_fail(&err);
        /* Hot-plug brings user networking only: an isolated or bridged NIC
         * needs its hub or tap set up by the monitor at start. */
        const struct vm_nic *nn = add ? net_def_nic(&d, nic) : NULL;
        if (q && nn && nn->mode != VM_NET_USER) {
                phy_error_set(&err, EBUSY, "VM '%s' is running and a %s network cannot be hot-plugged (only user "
                              "networking can); stop the VM and add it again, or use --mode user",
                              name, vm_net_mode_name(nn->mode));
                return cli_fail(&err);
        }
        if (q && net_nic_hotplug(q, add ? net_def_nic(&d, nic) : old, add, 15000, &err) < 0)
                return cli_fail(&err);
        char mac[18];
        snprintf(mac, sizeof mac, "%s", net_def_nic(&d, nic)->mac);
        if (!add && net_def_nic_remove(&d, nic, &err) < 0)
                return cli_fail(&err);
        if (save(home, &d, &err) < 0)
                return cli_fail(&err);
        printf("%s network '%s' (%s) %s VM '%s'%s\n", add ? "added" : "removed", nic, mac, add ? "to" : "from", name,
               q ? (add ? " (hot-plugged into the running VM, user networking through slirp)" :
                          " (unplugged from the running VM)") : "");
        return 0;
}

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

static const char forward_usage[] = "net forward add|remove NAME [NIC] SPEC | net forward list NAME [--json]";
static const char nic_usage[] = "net nic add NAME NIC [--model virtio|e1000e|rtl8139] "
                                "[--mode none|user|isolated:NAME|bridge:BR] | net nic remove NAME NIC";

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
        json_object *r = NULL, *a = NULL;
        int st = cli_name_arg(name);
        if (st || (st = cli_call(ctx, "GET", NULL, &r, "/v1/vms/%s/forwards", name)))
                return st;
        json_object_object_get_ex(r, "forwards", &a);
        if (json)
                cli_print_json(json_object_get(a));
        for (size_t i = 0; !json && i < json_object_array_length(a); i++) {
                json_object *f = json_object_array_get_idx(a, i);
                printf("%-8s %s %s:%d -> guest port %d\n", cli_jstr(f, "nic"), cli_jstr(f, "protocol"),
                       cli_jstr(f, "address"), (int) cli_jint(f, "host_port"), (int) cli_jint(f, "guest_port"));
        }
        json_object_put(r);
        return 0;
}

static int forward_change(struct cli_ctx *ctx, int argc, char **argv, bool add) {
        /* forward add NAME [NIC] SPEC */
        if (argc != 4 && argc != 5)
                return cli_usage_error(forward_usage, "expected a VM name, an optional network and a forward");
        const char *name = argv[2], *nic = argc == 5 ? argv[3] : NULL, *spec = argv[argc - 1];
        int st = cli_name_arg(name);
        if (st)
                return st;
        json_object *b = json_object_new_object(), *o = NULL;
        json_object_object_add(b, "spec", json_object_new_string(spec));
        if (nic)
                json_object_object_add(b, "nic", json_object_new_string(nic));
        if ((st = cli_call(ctx, add ? "POST" : "DELETE", b, &o, "/v1/vms/%s/forwards", name)))
                return st;
        const char *live = cli_jstr(o, "live");
        printf("%s forward %s on network '%s' of VM '%s'%s\n", add ? "added" : "removed", spec, cli_jstr(o, "nic"),
               name, strcmp(live, "applied") == 0 ? " (applied to the running VM)"
                     : strcmp(live, "next-start") == 0 ? "; the running VM's backend cannot change forwards live: "
                                                         "it applies at the next start" : "");
        json_object_put(o);
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
        json_object *b = json_object_new_object(), *o = NULL;
        json_object_object_add(b, "name", json_object_new_string(nic));
        for (int i = 4; i < argc; i++) {
                if (add && (strcmp(argv[i], "--model") == 0 || strcmp(argv[i], "--mode") == 0) && i + 1 < argc) {
                        json_object_object_add(b, argv[i] + 2, json_object_new_string(argv[i + 1]));
                        i++;
                } else {
                        json_object_put(b);
                        return cli_usage_error(nic_usage, "unexpected argument '%s'", argv[i]);
                }
        }
        int st = cli_name_arg(name);
        if (!st && !add)
                st = cli_word_arg("network name", nic);
        if (st) {
                json_object_put(b);
                return st;
        }
        if (add)
                st = cli_call(ctx, "POST", b, &o, "/v1/vms/%s/nics", name);
        else {
                json_object_put(b);
                st = cli_call(ctx, "DELETE", NULL, &o, "/v1/vms/%s/nics/%s", name, nic);
        }
        if (st)
                return st;
        bool hot = cli_jbool(o, "hotplugged");
        printf("%s network '%s' (%s) %s VM '%s'%s\n", add ? "added" : "removed", nic, cli_jstr(o, "mac"),
               add ? "to" : "from", name,
               hot ? (add ? " (hot-plugged into the running VM, user networking through slirp)"
                          : " (unplugged from the running VM)") : "");
        json_object_put(o);
        return 0;
}

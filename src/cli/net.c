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


/* The options of 'net forward' (--json, for list) and 'net nic' (--model,
 * --mode, for add), parsed before the operands: argv[optind] is the verb. */
static int forward_list(struct cli_ctx *ctx, int n, char **ops, bool json) {
        if (n != 2)
                return cli_usage_error(cli_usage(), n < 2 ? "expected a VM name" : "unexpected argument '%s'",
                                       n < 2 ? "" : ops[2]);
        const char *name = ops[1];
        json_object *r = NULL, *a = NULL;
        int st = cli_name_arg(name);
        if (st || (st = cli_call(ctx, "GET", NULL, &r, "/v1/vms/%s/forwards", name)))
                return st;
        json_object_object_get_ex(r, "forwards", &a);
        if (json)
                cli_print_json(json_object_get(a));
        for (size_t i = 0; !json && i < json_object_array_length(a); i++) {
                json_object *f = json_object_array_get_idx(a, i);
                printf("%-8s %s %s:%d -> guest port %d%s\n", cli_jstr(f, "nic"), cli_jstr(f, "protocol"),
                       cli_jstr(f, "address"), (int) cli_jint(f, "host_port"), (int) cli_jint(f, "guest_port"),
                       strcmp(cli_jstr(f, "live"), "pending") == 0 ? " (pending: applies at the next start)" : "");
        }
        json_object_put(r);
        return 0;
}

static int forward_change(struct cli_ctx *ctx, int n, char **ops, bool add) {
        /* forward add NAME [NIC] SPEC */
        if (n != 3 && n != 4)
                return cli_usage_error(cli_usage(), "expected a VM name, an optional network and a forward");
        const char *name = ops[1], *nic = n == 4 ? ops[2] : NULL, *spec = ops[n - 1];
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
        static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
        bool json = false;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                if (c != 'j')
                        return cli_usage_error(cli_usage(), "unknown option for 'net forward'");
                json = true;
        }
        int n = argc - optind;
        char **ops = argv + optind;
        if (n < 1)
                return cli_usage_error(cli_usage(), "expected add, remove or list");
        bool list = strcmp(ops[0], "list") == 0, add = strcmp(ops[0], "add") == 0;
        if (!list && !add && strcmp(ops[0], "remove") != 0)
                return cli_usage_error(cli_usage(), "unknown 'net forward' command '%s'", ops[0]);
        if (json && !list)
                return cli_usage_error(cli_usage(), "--json goes with 'net forward list'");
        return list ? forward_list(ctx, n, ops, json) : forward_change(ctx, n, ops, add);
}

int cmd_net_nic(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "model", required_argument, NULL, 'm' },
                                              { "mode", required_argument, NULL, 'o' }, { 0 } };
        json_object *b = json_object_new_object(), *o = NULL;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                if (c != 'm' && c != 'o') {
                        json_object_put(b);
                        return cli_usage_error(cli_usage(), "unknown option for 'net nic'");
                }
                json_object_object_add(b, c == 'm' ? "model" : "mode", json_object_new_string(optarg));
        }
        int n = argc - optind;
        char **ops = argv + optind;
        bool add = n > 0 && strcmp(ops[0], "add") == 0;
        if (n != 3 || (!add && strcmp(ops[0], "remove") != 0) || (!add && json_object_object_length(b) > 0)) {
                json_object_put(b);
                return cli_usage_error(cli_usage(), n > 0 && !add && strcmp(ops[0], "remove") != 0
                                       ? "unknown 'net nic' command" : "expected add or remove, a VM name and a "
                                       "network name (--model and --mode go with add)");
        }
        const char *name = ops[1], *nic = ops[2];
        json_object_object_add(b, "name", json_object_new_string(nic));
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

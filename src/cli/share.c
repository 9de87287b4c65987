/* SPDX-License-Identifier: MIT */
/* phyllo share add|remove|list: shared folders of a VM (src/net). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cleanup.h"
#include "net/net.h"
#include "run/run.h"
#include "vm/vm.h"

static const char add_usage[] = "share add NAME HOSTDIR TAG [--readonly] [--type virtiofs|9p]";
static const char remove_usage[] = "share remove NAME TAG";
static const char list_usage[] = "share list NAME [--json]";

static int change(struct cli_ctx *ctx, const char *name, const char *tag, const char *dir, bool readonly,
                  enum vm_share_type type) {
        const char *home;
        phy_error err = { 0 };
        _cleanup_vm_edit_ struct vm_edit e = { 0 };
        if (cli_home(ctx, &home) < 0)
                return 1;
        if (vm_edit_begin(home, name, &e, &err) < 0)
                return cli_fail(&err);
        int r = dir ? net_def_share_add(&e.def, tag, dir, readonly, type, home, &err)
                    : net_def_share_remove(&e.def, tag, &err);
        if (r < 0 || vm_edit_save(&e, &err) < 0)
                return cli_fail(&err);
        printf("%s share '%s' %s VM '%s'", dir ? "added" : "removed", tag, dir ? "to" : "from", name);
        /* virtiofsd and -virtfs are set up before QEMU starts; no simple hot-add. */
        if (run_is_active(home, name))
                printf("; VM '%s' is running: this applies at its next start", name);
        putchar('\n');
        return 0;
}

int cmd_share_add(struct cli_ctx *ctx, int argc, char **argv) {
        enum { OPT_RO = 1, OPT_TYPE };
        static const struct option opts[] = {
                { "readonly", no_argument, NULL, OPT_RO },
                { "type", required_argument, NULL, OPT_TYPE },
                { NULL, 0, NULL, 0 },
        };
        bool ro = false;
        enum vm_share_type type = VM_SHARE_UNSET;
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                if (c == OPT_RO)
                        ro = true;
                else if (c == OPT_TYPE && strcmp(optarg, "virtiofs") == 0)
                        type = VM_SHARE_VIRTIOFS;
                else if (c == OPT_TYPE && strcmp(optarg, "9p") == 0)
                        type = VM_SHARE_9P;
                else
                        return cli_usage_error(add_usage, c == OPT_TYPE ? "unknown share type '%s'" : "unknown option",
                                               optarg);
        }
        if (argc - optind != 3)
                return cli_usage_error(add_usage, "expected a VM name, a host directory and a tag");
        return change(ctx, argv[optind], argv[optind + 2], argv[optind + 1], ro, type);
}

int cmd_share_remove(struct cli_ctx *ctx, int argc, char **argv) {
        if (argc != 3)
                return cli_usage_error(remove_usage, "expected a VM name and a tag");
        return change(ctx, argv[1], argv[2], NULL, false, VM_SHARE_UNSET);
}

int cmd_share_list(struct cli_ctx *ctx, int argc, char **argv) {
        bool json = argc == 3 && strcmp(argv[2], "--json") == 0;
        if (argc != 2 && !json)
                return cli_usage_error(list_usage, "expected a VM name");
        const char *home;
        phy_error err = { 0 };
        _cleanup_vm_def_ struct vm_def d = { 0 };
        if (cli_home(ctx, &home) < 0)
                return 1;
        if (vm_load_by_name(home, argv[1], &d, &err) < 0)
                return cli_fail(&err);
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < d.n_shares; i++) {
                const struct vm_share *s = &d.shares[i];
                const char *type = vm_share_type_name(s->type);
                if (!json) {
                        printf("%-16s %-8s %-3s %s\n", s->tag, type ? type : "virtiofs", s->readonly ? "ro" : "rw",
                               s->path);
                        continue;
                }
                json_object *o = json_object_new_object();
                json_object_object_add(o, "tag", json_object_new_string(s->tag));
                json_object_object_add(o, "path", json_object_new_string(s->path));
                json_object_object_add(o, "type", json_object_new_string(type ? type : "virtiofs"));
                json_object_object_add(o, "readonly", json_object_new_boolean(s->readonly));
                json_object_array_add(a, o);
        }
        if (json)
                cli_print_json(a);
        else
                json_object_put(a);
        return 0;
}

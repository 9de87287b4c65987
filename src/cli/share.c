/* SPDX-License-Identifier: MIT */
/* phyllo share add|remove|list: shared folders of a VM (src/net). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cleanup.h"


static int change(struct cli_ctx *ctx, const char *name, const char *tag, const char *dir, bool readonly,
                  const char *type) {
        int st = cli_name_arg(name);
        if (st || (!dir && (st = cli_word_arg("share tag", tag))))
                return st;
        json_object *o = NULL;
        if (dir) {
                _cleanup_free_ char *abs = cli_abs_path(dir);
                if (!abs)
                        return 1;
                json_object *b = json_object_new_object();
                json_object_object_add(b, "tag", json_object_new_string(tag));
                json_object_object_add(b, "path", json_object_new_string(abs));
                json_object_object_add(b, "readonly", json_object_new_boolean(readonly));
                if (type)
                        json_object_object_add(b, "type", json_object_new_string(type));
                st = cli_call(ctx, "POST", b, &o, "/v1/vms/%s/shares", name);
        } else
                st = cli_call(ctx, "DELETE", NULL, &o, "/v1/vms/%s/shares/%s", name, tag);
        if (st)
                return st;
        printf("%s share '%s' %s VM '%s'", dir ? "added" : "removed", tag, dir ? "to" : "from", name);
        /* virtiofsd and -virtfs are set up before QEMU starts; no simple hot-add. */
        if (cli_jbool(o, "running"))
                printf("; VM '%s' is running: this applies at its next start", name);
        putchar('\n');
        json_object_put(o);
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
        const char *type = NULL;
        int c;
        while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
                if (c == OPT_RO)
                        ro = true;
                else if (c == OPT_TYPE && (strcmp(optarg, "virtiofs") == 0 || strcmp(optarg, "9p") == 0))
                        type = optarg;
                else
                        return cli_usage_error(cli_usage(), c == OPT_TYPE ? "unknown share type '%s'" : "unknown option",
                                               optarg);
        }
        if (argc - optind != 3)
                return cli_usage_error(cli_usage(), "expected a VM name, a host directory and a tag");
        return change(ctx, argv[optind], argv[optind + 2], argv[optind + 1], ro, type);
}

int cmd_share_remove(struct cli_ctx *ctx, int argc, char **argv) {
        if (argc != 3)
                return cli_usage_error(cli_usage(), "expected a VM name and a tag");
        return change(ctx, argv[1], argv[2], NULL, false, NULL);
}

int cmd_share_list(struct cli_ctx *ctx, int argc, char **argv) {
        bool json;
        int st = cli_json_operands(argc, argv, 1, &json);
        if (st)
                return st;
        json_object *r = NULL, *a = NULL;
        if ((st = cli_name_arg(argv[optind])) || (st = cli_call(ctx, "GET", NULL, &r, "/v1/vms/%s/shares", argv[optind])))
                return st;
        json_object_object_get_ex(r, "shares", &a);
        if (json)
                cli_print_json(json_object_get(a));
        for (size_t i = 0; !json && i < json_object_array_length(a); i++) {
                json_object *s = json_object_array_get_idx(a, i);
                printf("%-16s %-8s %-3s %s\n", cli_jstr(s, "tag"), cli_jstr(s, "type"),
                       cli_jbool(s, "readonly") ? "ro" : "rw", cli_jstr(s, "path"));
        }
        json_object_put(r);
        return 0;
}

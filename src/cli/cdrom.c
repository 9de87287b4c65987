/* SPDX-License-Identifier: MIT */
/* phyllo cdrom insert|eject and phyllo rename (issue 19): POST/DELETE
 * /v1/vms/NAME/cdrom and POST /v1/vms/NAME/rename, the verbs of
 * src/ops/cdrom.c and src/ops/rename.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cleanup.h"

/* --drive DRIVE and --json, then `operands` operands. */
static int parse(int argc, char **argv, int operands, const char **ret_drive, bool *ret_json) {
        static const struct option opts[] = {
                { "drive", required_argument, NULL, 'd' },
                { "json", no_argument, NULL, 'j' },
                { NULL, 0, NULL, 0 },
        };
        *ret_drive = NULL;
        *ret_json = false;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                switch (c) {
                case 'd': *ret_drive = optarg; break;
                case 'j': *ret_json = true; break;
                default: return cli_usage_error(cli_usage(), "unknown option '%s'", argv[optind - 1]);
                }
        }
        if (argc - optind < operands)
                return cli_usage_error(cli_usage(), operands == 1 ? "expected a VM name" : "expected a VM name and an ISO");
        if (argc - optind > operands)
                return cli_usage_error(cli_usage(), "unexpected argument '%s'", argv[optind + operands]);
        int st = cli_name_arg(argv[optind]);
        if (!st && *ret_drive)
                st = cli_word_arg("CD drive name", *ret_drive);
        return st;
}

static int done(json_object *o, bool json) {
        cli_print_warnings(o);
        if (json)
                cli_print_json(o);
        else
                json_object_put(o);
        return 0;
}

int cmd_cdrom_insert(struct cli_ctx *ctx, int argc, char **argv) {
        const char *drive;
        bool json;
        int st = parse(argc, argv, 2, &drive, &json);
        if (st)
                return st;
        const char *name = argv[optind];
        _cleanup_free_ char *iso = cli_abs_path(argv[optind + 1]);
        if (!iso)
                return cli_usage_error(cli_usage(), "out of memory");
        json_object *b = json_object_new_object(), *o = NULL;
        json_object_object_add(b, "path", json_object_new_string(iso));
        if (drive)
                json_object_object_add(b, "drive", json_object_new_string(drive));
        if ((st = cli_call(ctx, "POST", b, &o, "/v1/vms/%s/cdrom", name)))
                return st;
        if (!json) {
                const char *d = cli_jstr(o, "drive");
                printf("inserted '%s' into CD drive '%s' of VM '%s'", cli_jstr(o, "path"), d, name);
                if (cli_jbool(o, "live"))
                        printf(" (the running guest sees it now)");
                else if (cli_jbool(o, "pending"))
                        printf(" (a new drive: it appears at the VM's next start)");
                putchar('\n');
        }
        return done(o, json);
}

int cmd_cdrom_eject(struct cli_ctx *ctx, int argc, char **argv) {
        const char *drive;
        bool json;
        int st = parse(argc, argv, 1, &drive, &json);
        if (st)
                return st;
        const char *name = argv[optind];
        json_object *b = json_object_new_object(), *o = NULL;
        if (drive)
                json_object_object_add(b, "drive", json_object_new_string(drive));
        if ((st = cli_call(ctx, "DELETE", b, &o, "/v1/vms/%s/cdrom", name)))
                return st;
        if (!json) {
                const char *d = cli_jstr(o, "drive"), *was = cli_jstr(o, "ejected");
                if (*was)
                        printf("ejected '%s' from CD drive '%s' of VM '%s'%s\n", was, d, name,
                               cli_jbool(o, "live") ? " (also from the running guest)" : "");
                else
                        printf("CD drive '%s' of VM '%s' was empty already\n", d, name);
        }
        return done(o, json);
}

int cmd_rename(struct cli_ctx *ctx, int argc, char **argv) {
        bool json;
        int st = cli_json_operands(argc, argv, 2, &json);
        if (st)
                return st;
        const char *from = argv[optind], *to = argv[optind + 1];
        if ((st = cli_name_arg(from)) || (st = cli_name_arg(to)))
                return st;
        json_object *b = json_object_new_object(), *o = NULL;
        json_object_object_add(b, "name", json_object_new_string(to));
        if ((st = cli_call(ctx, "POST", b, &o, "/v1/vms/%s/rename", from)))
                return st;
        if (!json)
                printf("VM '%s' is now '%s'\n", from, to);
        return done(o, json);
}

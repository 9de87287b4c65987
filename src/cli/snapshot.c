/* SPDX-License-Identifier: MIT */
/* phyllo snapshot create|list|revert|delete: disks, UEFI vars and TPM state together. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "run/run.h"
#include "store/store.h"

static const char create_usage[] = "snapshot create NAME SNAP";
/* vmstate in --json: the snapshot holds the memory of a running VM. */
static const char list_usage[] = "snapshot list NAME [--json]";
static const char revert_usage[] = "snapshot revert NAME SNAP [--stop]";
static const char delete_usage[] = "snapshot delete NAME SNAP";

/* Parses the flags named in opts (each sets *flags[i]); then wants exactly n operands. */
static int operands(int argc, char **argv, const char *usage, const char *long1, bool *flag1, int n) {
        const struct option opts[] = { { long1 ? long1 : "-", no_argument, NULL, 'f' }, { 0 } };
        for (int c; (c = getopt_long(argc, argv, "", long1 ? opts : opts + 1, NULL)) != -1;) {
                if (c != 'f')
                        return cli_usage_error(usage, "unknown option");
                *flag1 = true;
        }
        if (argc - optind != n)
                return cli_usage_error(usage, n == 1 ? "expected a VM name" : "expected a VM name and a snapshot name");
        return 0;
}

/* create and delete: NAME SNAP, the disks opened with their keys. */
typedef int (*snap_fn)(const char *home, const char *name, const char *snap, const char *qemu_img, phy_error *err);
static int snapshot_op(struct cli_ctx *ctx, int argc, char **argv, const char *usage, snap_fn fn, const char *done) {
        const char *home;
        int st = operands(argc, argv, usage, NULL, NULL, 2);
        if (st || cli_home(ctx, &home) < 0)
                return st ? st : 1;
        phy_error err = { 0 };
        bool keys = false;
        if ((st = cli_keys_unlock(ctx, argv[optind], false, &keys)))
                return st;
        int r = fn(home, argv[optind], argv[optind + 1], NULL, &err);
        if (keys)
                cli_keys_forget(ctx, argv[optind]);
        if (r < 0)
                return cli_fail(&err);
        printf("%s snapshot '%s' of VM '%s'\n", done, argv[optind + 1], argv[optind]);
        return 0;
}

int cmd_snapshot_create(struct cli_ctx *ctx, int argc, char **argv) {
        return snapshot_op(ctx, argc, argv, create_usage, store_snapshot_create, "created");
}

int cmd_snapshot_list(struct cli_ctx *ctx, int argc, char **argv) {
        const char *home;
        bool json = false;
        int st = operands(argc, argv, list_usage, "json", &json, 1);
        if (st || cli_home(ctx, &home) < 0)
                return st ? st : 1;
        phy_error err = { 0 };
        json_object *a = NULL;
        if (store_snapshot_list(home, argv[optind], &a, &err) < 0)
                return cli_fail(&err);
        if (json) {
                cli_print_json(a);
                return 0;
        }
        printf("%-20s %-20s %-5s %-5s %-6s %s\n", "SNAPSHOT", "CREATED", "VARS", "TPM", "MEMORY", "DISKS");
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *o = json_object_array_get_idx(a, i), *n, *c, *v, *t, *d, *m = NULL;
                json_object_object_get_ex(o, "name", &n);
                json_object_object_get_ex(o, "created", &c);
                json_object_object_get_ex(o, "vars", &v);
                json_object_object_get_ex(o, "tpm", &t);
                json_object_object_get_ex(o, "disks", &d);
                json_object_object_get_ex(o, "vmstate", &m);
                time_t when = (time_t) json_object_get_int64(c);
                char ts[32];
                struct tm tm;
                strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", localtime_r(&when, &tm));
                printf("%-20s %-20s %-5s %-5s %-6s", json_object_get_string(n), ts, json_object_get_boolean(v) ? "yes" : "no",
                       json_object_get_boolean(t) ? "yes" : "no", json_object_get_boolean(m) ? "yes" : "no");
                for (size_t k = 0; k < json_object_array_length(d); k++)
                        printf("%s%s", k ? "," : " ", json_object_get_string(json_object_array_get_idx(d, k)));
                putchar('\n');
        }
        json_object_put(a);
        return 0;
}

int cmd_snapshot_revert(struct cli_ctx *ctx, int argc, char **argv) {
        const char *home;
        bool stop = false;
        int st = operands(argc, argv, revert_usage, "stop", &stop, 2);
        if (st || cli_home(ctx, &home) < 0)
                return st ? st : 1;
        phy_error err = { 0 };
        struct run_start_opts o = { .root = ctx->root, .home = home, .name = argv[optind] };
        bool keys = false;
        if ((st = cli_keys_unlock(ctx, argv[optind], stop, &keys)))
                return st;
        int r = store_snapshot_revert(home, argv[optind], argv[optind + 1], stop, &o, NULL, &err);
        if (keys)
                cli_keys_forget(ctx, argv[optind]);
        if (r < 0)
                return cli_fail(&err);
        printf("VM '%s' is back at snapshot '%s' (disks, UEFI vars, TPM state)\n", argv[optind], argv[optind + 1]);
        return 0;
}

int cmd_snapshot_delete(struct cli_ctx *ctx, int argc, char **argv) {
        return snapshot_op(ctx, argc, argv, delete_usage, store_snapshot_delete, "deleted");
}

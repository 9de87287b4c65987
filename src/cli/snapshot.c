/* SPDX-License-Identifier: MIT */
/* phyllo snapshot create|list|revert|delete: disks, UEFI vars and TPM state together. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* Parses the flags named in opts (each sets *flags[i]); then wants exactly n operands. */
static int operands(int argc, char **argv, const char *usage, const char *long1, bool *flag1, int n) {
        const struct option opts[] = { { long1 ? long1 : "-", no_argument, NULL, 'f' }, { 0 } };
        for (int c; (c = cli_getopt(argc, argv, "", long1 ? opts : opts + 1)) != -1;) {
                if (c != 'f')
                        return cli_usage_error(usage, "unknown option");
                *flag1 = true;
        }
        if (argc - optind != n)
                return cli_usage_error(usage, n == 1 ? "expected a VM name" : "expected a VM name and a snapshot name");
        return 0;
}

/* NAME and SNAP go into the path: checked first. */
static int names(const char *name, const char *snap) {
        int st = cli_name_arg(name);
        return st || !snap ? st : cli_word_arg("snapshot name", snap);
}

/* create and delete: NAME SNAP, the disks opened with their keys. */
static int snapshot_op(struct cli_ctx *ctx, int argc, char **argv, const char *usage, bool create, const char *done) {
        bool json = false;
        int st = operands(argc, argv, usage, create ? "json" : NULL, &json, 2);
        const char *name = argv[optind], *snap = argv[optind + 1];
        if (st || (st = names(name, snap)))
                return st;
        bool keys = false;
        if ((st = cli_keys_unlock(ctx, name, false, &keys)))
                return st;
        json_object *o = NULL, *b = NULL;
        if (create) {
                b = json_object_new_object();
                json_object_object_add(b, "name", json_object_new_string(snap));
                st = cli_call(ctx, "POST", b, &o, "/v1/vms/%s/snapshots", name);
        } else
                st = cli_call(ctx, "DELETE", NULL, &o, "/v1/vms/%s/snapshots/%s", name, snap);
        if (keys)
                cli_keys_forget(ctx, name);
        if (st)
                return st;
        if (json) {
                cli_print_json(o);
                return 0;
        }
        json_object_put(o);
        printf("%s snapshot '%s' of VM '%s'\n", done, snap, name);
        return 0;
}

int cmd_snapshot_create(struct cli_ctx *ctx, int argc, char **argv) {
        return snapshot_op(ctx, argc, argv, cli_usage(), true, "created");
}

int cmd_snapshot_list(struct cli_ctx *ctx, int argc, char **argv) {
        bool json = false;
        int st = operands(argc, argv, cli_usage(), "json", &json, 1);
        json_object *r = NULL, *a = NULL;
        if (st || (st = names(argv[optind], NULL)) ||
            (st = cli_call(ctx, "GET", NULL, &r, "/v1/vms/%s/snapshots", argv[optind])))
                return st;
        json_object_object_get_ex(r, "snapshots", &a);
        a = json_object_get(a);
        json_object_put(r);
        if (json) {
                cli_print_json(a);
                return 0;
        }
        printf("%-20s %-20s %-5s %-5s %-6s %s\n", "SNAPSHOT", "CREATED", "VARS", "TPM", "MEMORY", "DISKS");
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *o = json_object_array_get_idx(a, i), *d = NULL;
                json_object_object_get_ex(o, "disks", &d);
                time_t when = (time_t) cli_jint(o, "created");
                char ts[32];
                struct tm tm;
                strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", localtime_r(&when, &tm));
                printf("%-20s %-20s %-5s %-5s %-6s", cli_jstr(o, "name"), ts, cli_jbool(o, "vars") ? "yes" : "no",
                       cli_jbool(o, "tpm") ? "yes" : "no", cli_jbool(o, "vmstate") ? "yes" : "no");
                for (size_t k = 0; k < json_object_array_length(d); k++)
                        printf("%s%s", k ? "," : " ", json_object_get_string(json_object_array_get_idx(d, k)));
                putchar('\n');
                json_object *rv = NULL;
                if (json_object_object_get_ex(o, "revertible", &rv) && !json_object_get_boolean(rv))
                        printf("  cannot be reverted: %s\n", cli_jstr(o, "why_not"));
        }
        json_object_put(a);
        return 0;
}

int cmd_snapshot_revert(struct cli_ctx *ctx, int argc, char **argv) {
        bool stop = false;
        int st = operands(argc, argv, cli_usage(), "stop", &stop, 2);
        const char *name = argv[optind], *snap = argv[optind + 1];
        if (st || (st = names(name, snap)))
                return st;
        bool keys = false;
        if ((st = cli_keys_unlock(ctx, name, stop, &keys)))
                return st;
        json_object *b = json_object_new_object(), *o = NULL;
        json_object_object_add(b, "stop", json_object_new_boolean(stop));
        st = cli_call(ctx, "POST", b, &o, "/v1/vms/%s/snapshots/%s/revert", name, snap);
        if (keys)
                cli_keys_forget(ctx, name);
        if (st)
                return st;
        /* Only what the snapshot held (a BIOS VM has no UEFI vars). */
        char what[128] = "";
        json_object *got = NULL;
        json_object_object_get_ex(o, "restored", &got);
        for (size_t i = 0; got && i < json_object_array_length(got); i++) {
                size_t n = strlen(what);
                snprintf(what + n, sizeof what - n, "%s%s", i ? ", " : "",
                         json_object_get_string(json_object_array_get_idx(got, i)));
        }
        json_object_put(o);
        printf("VM '%s' is back at snapshot '%s' (%s)\n", name, snap, what[0] ? what : "disks");
        return 0;
}

int cmd_snapshot_delete(struct cli_ctx *ctx, int argc, char **argv) {
        return snapshot_op(ctx, argc, argv, cli_usage(), false, "deleted");
}

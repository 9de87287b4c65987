/* SPDX-License-Identifier: MIT */
/* phyllo argv: the exact QEMU command line of a VM (POST /v1/vms/NAME/argv). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cleanup.h"


int cmd_argv(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = {
                { "json", no_argument, NULL, 'j' },
                { "null", no_argument, NULL, '0' },
                { "paused", no_argument, NULL, 'S' },
                { "tcg", no_argument, NULL, 't' },
                { "qemu", required_argument, NULL, 'q' },
                { "boot-once", required_argument, NULL, 'b' },
                {}
        };
        bool json = false, nul = false;
        json_object *b = json_object_new_object();
        for (int c; (c = cli_getopt(argc, argv, "0", opts)) != -1;) {
                switch (c) {
                case 'j': json = true; break;
                case '0': nul = true; break;
                case 'S': json_object_object_add(b, "paused", json_object_new_boolean(true)); break;
                case 't': json_object_object_add(b, "tcg", json_object_new_boolean(true)); break;
                case 'b': json_object_object_add(b, "boot_once", json_object_new_string(optarg)); break;
                case 'q':
                        /* A binary of the caller's: run here, never by phyllod. */
                        json_object_object_add(b, "qemu", json_object_new_string(optarg));
                        ctx->local = true;
                        break;
                default: json_object_put(b); return cli_usage_error(cli_usage(), "bad option");
                }
        }
        if (optind + 1 != argc) {
                json_object_put(b);
                return cli_usage_error(cli_usage(), "expected one VM name");
        }
        _cleanup_json_ json_object *o = NULL;
        int st = cli_name_arg(argv[optind]);
        if (st) {
                json_object_put(b);
                return st;
        }
        if ((st = cli_call(ctx, "POST", b, &o, "/v1/vms/%s/argv", argv[optind])))
                return st;
        json_object *a = json_object_object_get(o, "argv"), *w = json_object_object_get(o, "warnings");
        for (size_t i = 0; i < json_object_array_length(w); i++)
                fprintf(stderr, "phyllo: warning: %s\n", json_object_get_string(json_object_array_get_idx(w, i)));
        if (json) {
                cli_print_json(json_object_get(o));
                return 0;
        }
        size_t n = json_object_array_length(a);
        _cleanup_free_ const char **args = calloc(n + 1, sizeof *args);
        if (!args) {
                phy_error err = { 0 };
                phy_error_set(&err, ENOMEM, "out of memory");
                return cli_fail(&err);
        }
        for (size_t i = 0; i < n; i++)
                args[i] = json_object_get_string(json_object_array_get_idx(a, i));
        if (nul) {
                for (size_t i = 0; i < n; i++)
                        fwrite(args[i], 1, strlen(args[i]) + 1, stdout);
                return 0;
        }
        /* One option per line with its value, shell-quoted: readable and pasteable. */
        for (size_t i = 0; i < n; i++) {
                bool opt_with_value = args[i][0] == '-' && i + 1 < n && args[i + 1][0] != '-';
                strv two = { .v = (char *[]) { (char *) args[i], opt_with_value ? (char *) args[i + 1] : NULL, NULL },
                             .n = opt_with_value ? 2 : 1 };
                _cleanup_free_ char *q = strv_join(&two, NULL);
                i += opt_with_value;
                printf("%s%s\n", q, i + 1 < n ? " \\" : "");
        }
        return 0;
}

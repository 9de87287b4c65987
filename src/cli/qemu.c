/* SPDX-License-Identifier: MIT */
/* phyllo caps: what the QEMU binary can do, as probed over QMP (GET or
 * POST /v1/host/caps). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cleanup.h"


static const char *str(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

int cmd_caps(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = {
                { "json", no_argument, NULL, 'j' },
                { "qemu", required_argument, NULL, 'q' },
                { "refresh", no_argument, NULL, 'r' },
                { 0 },
        };
        bool json = false;
        json_object *b = json_object_new_object();
        for (int c; (c = cli_getopt(argc, argv, "+", opts)) != -1;) {
                switch (c) {
                case 'j': json = true; break;
                case 'q':
                        /* A binary of the caller's: probed here, never by phyllod. */
                        json_object_object_add(b, "qemu", json_object_new_string(optarg));
                        ctx->local = true;
                        break;
                case 'r': json_object_object_add(b, "refresh", json_object_new_boolean(true)); break;
                default: json_object_put(b); return cli_usage_error(cli_usage(), "unknown option for 'caps'");
                }
        }
        if (optind < argc) {
                json_object_put(b);
                return cli_usage_error(cli_usage(), "unexpected argument '%s'", argv[optind]);
        }
        _cleanup_json_ json_object *o = NULL;
        int st = cli_call(ctx, "POST", b, &o, "/v1/host/caps");
        if (st)
                return st;
        json_object *caps = json_object_object_get(o, "caps");
        if (json) {
                /* As the cache file has it (qemu_caps_to_json). */
                puts(json_object_to_json_string_ext(caps, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
                return 0;
        }
        json_object *v;
        bool cached = json_object_object_get_ex(o, "from_cache", &v) && json_object_get_boolean(v);
        printf("binary:    %s%s\n", str(caps, "binary"), cached ? " (cached)" : "");
        printf("version:   %s (informational)\n", str(caps, "version"));
        printf("machines:  %zu\n", json_object_array_length(json_object_object_get(caps, "machines")));
        printf("devices:   %zu\n", json_object_array_length(json_object_object_get(caps, "devices")));
        printf("accels:    ");
        json_object *accels = json_object_object_get(caps, "accels");
        for (size_t i = 0; i < json_object_array_length(accels); i++)
                printf("%s%s", i ? " " : "", json_object_get_string(json_object_array_get_idx(accels, i)));
        printf("\n");
        json_object *rows = json_object_object_get(o, "summary"), *absent = json_object_object_get(o, "absent");
        for (size_t i = 0; i < json_object_array_length(rows); i++) {
                json_object *row = json_object_array_get_idx(rows, i);
                bool have = json_object_object_get_ex(row, "have", &v) && json_object_get_boolean(v);
                printf("  %-22s %s\n", str(row, "what"), have ? "yes" : "no");
        }
        for (size_t i = 0; i < json_object_array_length(absent); i++) {
                json_object *row = json_object_array_get_idx(absent, i);
                const char *why = str(row, "why");
                if (strncmp(why, "needs ", 6) == 0)
                        printf("absent:    %s (%s)\n", str(row, "device"), why);
                else
                        printf("absent:    %s: %s\n", str(row, "device"), why);
        }
        return 0;
}

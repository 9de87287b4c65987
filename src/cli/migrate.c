/* SPDX-License-Identifier: MIT */
/* phyllo migrate NAME DEST_HOME: live migration with disk mirroring (docs/storage.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fileio.h"
#include "store/store.h"

static const char migrate_usage[] =
        "migrate NAME DEST_HOME [--address IPV4] [--max-bandwidth SIZE] [--timeout SECONDS]";

/* One line per update: rewritten in place on a terminal, appended otherwise
 * (so that a log or a test sees each phase). */
static void progress(const char *phase, uint64_t done, uint64_t total, void *userdata) {
        bool tty = *(bool *) userdata;
        if (strcmp(phase, "prepare") == 0)
                fprintf(stderr, "preparing the destination%s", tty ? "" : "\n");
        else if (total)
                fprintf(stderr, "%s%-6s %5.1f%%  %llu / %llu MiB%s", tty ? "\r" : "", phase,
                        100.0 * (double) done / (double) total, (unsigned long long) (done >> 20),
                        (unsigned long long) (total >> 20), tty ? "   " : "\n");
        else
                fprintf(stderr, "%s%-6s %llu MiB%s", tty ? "\r" : "", phase, (unsigned long long) (done >> 20),
                        tty ? "   " : "\n");
        fflush(stderr);
}

int cmd_migrate(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "address", required_argument, NULL, 'a' },
                                              { "max-bandwidth", required_argument, NULL, 'b' },
                                              { "timeout", required_argument, NULL, 't' },
                                              { 0 } };
        struct store_migrate_opts o = { .root = ctx->root };
        unsigned long long v;
        for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
                switch (c) {
                case 'a':
                        o.address = optarg;
                        break;
                case 'b':
                        if (parse_size(optarg, &v) < 0 || v == 0)
                                return cli_usage_error(migrate_usage, "--max-bandwidth wants a size per second, "
                                                       "e.g. 100M");
                        o.max_bandwidth = v;
                        break;
                case 't':
                        if (parse_uint(optarg, 86400, &v) < 0 || v == 0)
                                return cli_usage_error(migrate_usage, "--timeout wants seconds (1 to 86400)");
                        o.timeout_s = (unsigned) v;
                        break;
                default:
                        return cli_usage_error(migrate_usage, "unknown option for 'migrate'");
                }
        }
        if (optind + 2 != argc)
                return cli_usage_error(migrate_usage, "expected a VM name and the destination's Phyllome home");
        const char *home;
        if (cli_home(ctx, &home) < 0)
                return 1;
        o.dest_home = argv[optind + 1];
        bool tty = isatty(2);
        o.progress = progress;
        o.userdata = &tty;
        struct store_migrate_result res;
        phy_error err = { 0 };
        int r = store_migrate(home, argv[optind], &o, &res, &err);
        if (tty)
                fputc('\n', stderr);
        if (r < 0)
                return cli_fail(&err);
        printf("VM '%s' migrated to '%s': downtime %lld ms, total %lld ms, %llu MiB of memory sent\n", argv[optind],
               o.dest_home, (long long) res.downtime_ms, (long long) res.total_ms,
               (unsigned long long) (res.ram_bytes >> 20));
        return 0;
}

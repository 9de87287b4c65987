/* SPDX-License-Identifier: MIT */
/* phyllo migrate NAME DEST_HOME: live migration with disk mirroring (docs/storage.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fileio.h"
#include "cleanup.h"


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
        struct ops_migrate o = { 0 };
        unsigned long long v;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                switch (c) {
                case 'a':
                        o.address = optarg;
                        break;
                case 'b':
                        if (parse_size(optarg, &v) < 0 || v == 0)
                                return cli_usage_error(cli_usage(), "--max-bandwidth wants a size per second, "
                                                       "e.g. 100M");
                        o.max_bandwidth = v;
                        break;
                case 't':
                        if (parse_uint(optarg, 86400, &v) < 0 || v == 0)
                                return cli_usage_error(cli_usage(), "--timeout wants seconds (1 to 86400)");
                        o.timeout_s = (unsigned) v;
                        break;
                default:
                        return cli_usage_error(cli_usage(), "unknown option for 'migrate'");
                }
        }
        if (optind + 2 != argc)
                return cli_usage_error(cli_usage(), "expected a VM name and the destination's Phyllome home");
        const char *name = argv[optind];
        _cleanup_free_ char *dest = cli_abs_path(argv[optind + 1]), *path = NULL;
        int st = cli_name_arg(name);
        if (st || !dest || asprintf(&path, "/v1/vms/%s/migrate", name) < 0)
                return st ? st : 1;
        o.dest_home = dest;
        /* Through phyllod when it answers (the progress from its event
         * stream); else here.  The progress goes to stderr either way. */
        _cleanup_json_ json_object *b = json_object_new_object();
        json_object_object_add(b, "dest_home", json_object_new_string(dest));
        if (o.address)
                json_object_object_add(b, "address", json_object_new_string(o.address));
        if (o.max_bandwidth)
                json_object_object_add(b, "max_bandwidth", json_object_new_int64((int64_t) o.max_bandwidth));
        if (o.timeout_s)
                json_object_object_add(b, "timeout", json_object_new_int64(o.timeout_s));
        json_object *res = NULL;
        bool direct = false, tty = isatty(2);
        struct cli_events *w = cli_events_watch(ctx, name, progress, &tty);
        st = cli_api_try(ctx, "POST", path, b, &res, &direct);
        cli_events_end(w);
        if (w && tty)
                fputc('\n', stderr);
        if (st)
                return st;
        if (direct) {
                struct ops_ctx oc;
                phy_error err = { 0 };
                if (cli_ops(ctx, &oc))
                        return 1;
                o.progress = progress;
                o.userdata = &tty;
                int r = ops_migrate(&oc, name, &o, &res, &err);
                if (tty)
                        fputc('\n', stderr);
                if (r < 0)
                        return cli_fail(&err);
        }
        printf("VM '%s' migrated to '%s': downtime %lld ms, total %lld ms, %llu MiB of memory sent\n", name, dest,
               (long long) cli_jint(res, "downtime_ms"), (long long) cli_jint(res, "total_ms"),
               (unsigned long long) (cli_jint(res, "ram_bytes") >> 20));
        json_object_put(res);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* phyllo export NAME FILE|-, phyllo import FILE|- [--name NEW]. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cleanup.h"
#include "store/store.h"
#include "vm/vm.h"


/* A progress line on a terminal, at most ~10 updates a second. */
static void progress(uint64_t done, uint64_t total, void *userdata) {
        struct timespec *last = userdata, now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t ms = (now.tv_sec - last->tv_sec) * 1000 + (now.tv_nsec - last->tv_nsec) / 1000000;
        if (ms < 100 && !(total && done == total))
                return;
        *last = now;
        if (total)
                fprintf(stderr, "\r%6.1f%%  %llu / %llu MiB ", 100.0 * (double) done / (double) total,
                        (unsigned long long) (done >> 20), (unsigned long long) (total >> 20));
        else
                fprintf(stderr, "\r%llu MiB ", (unsigned long long) (done >> 20));
}

int cmd_export(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "yes", no_argument, NULL, 'y' }, { 0 } };
        bool yes = false;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                if (c != 'y')
                        return cli_usage_error(cli_usage(), "unknown option for 'export'");
                yes = true;
        }
        if (optind + 2 != argc)
                return cli_usage_error(cli_usage(), "expected a VM name and a file (- for standard output)");
        const char *home, *file = argv[optind + 1];
        if (cli_home(ctx, &home) < 0)
                return 1;
        bool to_stdout = strcmp(file, "-") == 0;
        int st;
        if (!to_stdout && access(file, F_OK) == 0 &&
            (st = cli_confirm(yes, "replace the existing file '%s' with the bundle of VM '%s'", file, argv[optind])))
                return st;
        if (to_stdout && isatty(1)) {
                fputs("phyllo: standard output is a terminal; give a file or pipe it (phyllo export vm - | ...)\n", stderr);
                return 2;
        }
        _cleanup_free_ char *part = NULL;
        _cleanup_close_ int fd = -1;
        if (!to_stdout) {
                /* Written beside the target and renamed at the end: no half bundle under the real name. */
                if (asprintf(&part, "%s.partial", file) < 0)
                        return 1;
                fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd < 0) {
                        fprintf(stderr, "phyllo: cannot create '%s': %m\n", part);
                        return 1;
                }
        }
        struct timespec last = { 0 };
        bool tty = isatty(2);
        phy_error err = { 0 };
        /* Through phyllod when one answers (the VM name is checked first:
         * it becomes part of the URL), else directly. */
        bool direct = true;
        _cleanup_free_ char *url = NULL;
        int r = 0;
        if (vm_name_valid(argv[optind])) {
                json_object *o = NULL;
                if (asprintf(&url, "/v1/vms/%s/export", argv[optind]) < 0)
                        return 1;
                int rc = cli_api_stream(ctx, "GET", url, -1, to_stdout ? 1 : fd, tty ? progress : NULL, &last, &o,
                                        &direct);
                json_object_put(o);
                if (rc != 0) {
                        if (part)
                                unlink(part);
                        return rc;
                }
        }
        struct ops_ctx oc = ops_ctx_self(ctx->root, home);
        if (direct)
                r = ops_export(&oc, argv[optind], to_stdout ? 1 : fd, tty ? progress : NULL, &last, &err);
        if (tty)
                fputc('\n', stderr);
        if (r >= 0 && !to_stdout && (fsync(fd) < 0 || rename(part, file) < 0))
                r = phy_error_set(&err, errno, "cannot write '%s': %s", file, strerror(errno));
        if (r < 0) {
                if (part)
                        unlink(part);
                return cli_fail(&err);
        }
        if (!to_stdout)
                printf("exported VM '%s' to %s\n", argv[optind], file);
        return 0;
}

int cmd_import(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "name", required_argument, NULL, 'n' },
                                              { "trust", no_argument, NULL, 't' },
                                              { "json", no_argument, NULL, 'j' },
                                              { 0 } };
        const char *new_name = NULL;
        bool trust = false, json = false;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                if (c == 'n')
                        new_name = optarg;
                else if (c == 't')
                        trust = true;
                else if (c == 'j')
                        json = true;
                else
                        return cli_usage_error(cli_usage(), "unknown option for 'import'");
        }
        if (optind + 1 != argc)
                return cli_usage_error(cli_usage(), "expected a bundle file (- for standard input)");
        const char *home, *file = argv[optind];
        if (cli_home(ctx, &home) < 0)
                return 1;
        _cleanup_close_ int fd = -1;
        if (strcmp(file, "-") != 0 && (fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
                fprintf(stderr, "phyllo: cannot open '%s': %m\n", file);
                return 1;
        }
        struct timespec last = { 0 };
        bool tty = isatty(2);
        phy_error err = { 0 };
        _cleanup_free_ char *url = NULL;
        if (new_name && !vm_name_valid(new_name))
                return cli_usage_error(cli_usage(), "invalid VM name '%s'; use 1 to 64 of A-Z a-z 0-9 . _ -", new_name);
        if (asprintf(&url, "/v1/vms/import%s%s%s%s", new_name || trust ? "?" : "", new_name ? "name=" : "",
                     new_name ? new_name : "", trust ? (new_name ? "&trust=1" : "trust=1") : "") < 0)
                return 1;
        json_object *o = NULL;
        bool direct = true;
        int r = cli_api_stream(ctx, "POST", url, fd >= 0 ? fd : 0, -1, tty ? progress : NULL, &last, &o, &direct);
        if (r != 0)
                return r;
        struct store_import_result res = { 0 };
        if (direct) {
                struct store_import_opts io = { .new_name = new_name, .trust = trust, .progress = tty ? progress : NULL,
                                                .userdata = &last };
                struct ops_ctx oc = ops_ctx_self(ctx->root, home);
                r = ops_import(&oc, fd >= 0 ? fd : 0, &io, &res, &err);
                if (r >= 0)
                        o = ops_import_json(&io, &res);
                store_import_result_done(&res);
        }
        if (tty)
                fputc('\n', stderr);
        if (r < 0)
                return cli_fail(&err);
        if (json) {
                cli_print_json(o);
                return 0;
        }
        json_object *nm = NULL, *st = NULL;
        printf("imported VM '%s'\n", json_object_object_get_ex(o, "name", &nm) ? json_object_get_string(nm) : "?");
        if (json_object_object_get_ex(o, "stripped", &st) && json_object_array_length(st) > 0) {
                printf("removed from the untrusted bundle's definition (phyllo import --trust keeps them, for a "
                       "bundle you made yourself):\n");
                for (size_t i = 0; i < json_object_array_length(st); i++)
                        printf("  %s\n", json_object_get_string(json_object_array_get_idx(st, i)));
        }
        json_object_put(o);
        return 0;
}

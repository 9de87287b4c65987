/* SPDX-License-Identifier: MIT */
/* phyllo host check | host devices */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "cli.h"
#include "cleanup.h"
#include "fileio.h"
#include "host/check.h"

static int parse_json_flag(int argc, char **argv, const char *usage, bool *json) {
        static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
        int c;
        opterr = 0;
        while ((c = cli_getopt(argc, argv, "+", opts)) != -1) {
                if (c == 'j')
                        *json = true;
                else
                        return cli_usage_error(usage, "unknown option '%s'", argv[optind - 1]);
        }
        if (optind < argc)
                return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);
        return 0;
}

static void print_budget(json_object *b) {
        char keep[32], vm[32];
        int64_t cpus = cli_jint(b, "reserve_cpus"), vcpus = cli_jint(b, "vm_cpus_max");
        const char *conf = cli_jstr(b, "config");
        format_size((uint64_t) cli_jint(b, "reserve_memory"), keep, sizeof keep);
        /* round down to MiB so the figure reads as a size a user would type */
        format_size((uint64_t) cli_jint(b, "vm_memory_max") / (1024 * 1024) * 1024 * 1024, vm, sizeof vm);
        printf("host budget: the host keeps %lld CPU%s and %s; VMs get up to %lld CPU%s and %s by default (%s); "
               "memory is never overcommitted, CPUs may be (a VM given more vCPUs is created with a warning)\n",
               (long long) cpus, cpus == 1 ? "" : "s", keep, (long long) vcpus, vcpus == 1 ? "" : "s", vm,
               *conf ? conf : "defaults; set reserve-cpus and reserve-memory in /etc/phyllome/host.conf");
}

static char *joined(json_object *a, const char *sep) {
        _cleanup_strv_ strv v = { 0 };
        for (size_t i = 0; i < json_object_array_length(a); i++)
                if (strv_push(&v, json_object_get_string(json_object_array_get_idx(a, i))) < 0)
                        return NULL;
        return strv_join(&v, sep);
}

/* Exit status: 0 whenever the check ran, whatever it found (QEMU still runs
 * VMs without KVM, in TCG); 1 or 2 only when it could not run. */
int cmd_host_check(struct cli_ctx *ctx, int argc, char **argv) {
        const char *usage = cli_usage();
        bool json = false;
        int r = parse_json_flag(argc, argv, usage, &json);
        json_object *o = NULL, *checks = NULL, *verdict = NULL, *budget = NULL, *so = NULL;
        if (r || (r = cli_call(ctx, "GET", NULL, &o, "/v1/host")))
                return r;
        if (json) {
                cli_print_json(o);
                return 0;
        }
        json_object_object_get_ex(o, "checks", &checks);
        json_object_object_get_ex(o, "verdict", &verdict);
        json_object_object_get_ex(o, "budget", &budget);
        json_object_object_get_ex(verdict, "short_of", &so);
        for (size_t i = 0; i < json_object_array_length(checks); i++) {
                json_object *c = json_object_array_get_idx(checks, i);
                printf("%-4s  %s: %s\n", cli_jstr(c, "status"), cli_jstr(c, "title"), cli_jstr(c, "detail"));
                if (*cli_jstr(c, "remedy"))
                        printf("      remedy: %s\n", cli_jstr(c, "remedy"));
        }
        _cleanup_free_ char *short_of = joined(so, "; ");
        const char *tier = cli_jstr(verdict, "tier");
        if (strcmp(tier, host_tier_name(HOST_TIER_NONE)) == 0)
                printf("verdict: below the minimum tier: %s\n", short_of ? short_of : "");
        else if (strcmp(tier, host_tier_name(HOST_TIER_MINIMUM)) == 0)
                printf("verdict: meets the minimum tier; short of recommended: %s\n", short_of ? short_of : "");
        else
                puts("verdict: meets the recommended tier");
        print_budget(budget);
        json_object_put(o);
        return 0;
}

static const char *class_name_of(json_object *blockers, const char *address) {
        for (size_t i = 0; i < json_object_array_length(blockers); i++) {
                json_object *b = json_object_array_get_idx(blockers, i);
                if (strcmp(cli_jstr(b, "address"), address) == 0)
                        return cli_jstr(b, "class_name");
        }
        return "";
}

int cmd_host_devices(struct cli_ctx *ctx, int argc, char **argv) {
        const char *usage = cli_usage();
        bool json = false;
        int r = parse_json_flag(argc, argv, usage, &json);
        json_object *o = NULL, *devs = NULL;
        if (r || (r = cli_call(ctx, "GET", NULL, &o, "/v1/host/devices")))
                return r;
        if (json) {
                cli_print_json(o);
                return 0;
        }
        json_object_object_get_ex(o, "devices", &devs);
        if (json_object_array_length(devs) == 0)
                puts("no PCI devices");
        for (size_t i = 0; i < json_object_array_length(devs); i++) {
                json_object *d = json_object_array_get_idx(devs, i), *with = NULL, *blk = NULL, *grp = NULL;
                unsigned long cls = strtoul(cli_jstr(d, "class"), NULL, 16);
                const char *cn = cli_jstr(d, "class_name"), *vn = cli_jstr(d, "vendor"), *dn = cli_jstr(d, "device"),
                           *drv = cli_jstr(d, "driver");
                printf("%s %s [%04lx]: %s %s [%s:%s]\n", cli_jstr(d, "address"), *cn ? cn : "?", cls >> 8,
                       *vn ? vn : "unknown vendor", *dn ? dn : "unknown device", cli_jstr(d, "vendor_id"),
                       cli_jstr(d, "device_id"));
                printf("    driver %s; ", *drv ? drv : "none");
                json_object_object_get_ex(d, "with", &with);
                json_object_object_get_ex(d, "blockers", &blk);
                json_object_object_get_ex(d, "iommu_group", &grp);
                int g = grp ? json_object_get_int(grp) : -1;
                if (!grp)
                        puts("no IOMMU group: cannot be given to a VM (the IOMMU is off; see 'phyllo host check')");
                else if (cli_jbool(d, "assignable")) {
                        printf("IOMMU group %d: can be given to a VM", g);
                        if (json_object_array_length(with)) {
                                _cleanup_free_ char *w = joined(with, ", ");
                                printf(" together with its functions %s", w ? w : "");
                        }
                        putchar('\n');
                } else {
                        printf("IOMMU group %d: cannot be given to a VM alone; the group also holds", g);
                        for (size_t j = 0; j < json_object_array_length(blk); j++) {
                                const char *a = cli_jstr(json_object_array_get_idx(blk, j), "address"),
                                           *bn = class_name_of(blk, a);
                                printf("%s %s (%s)", j ? "," : "", a, *bn ? bn : "?");
                        }
                        putchar('\n');
                }
        }
        json_object_put(o);
        return 0;
}

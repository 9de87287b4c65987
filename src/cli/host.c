/* SPDX-License-Identifier: MIT */
/* phyllo host check | host devices */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cleanup.h"
#include "dev/dev.h"
#include "fileio.h"
#include "host/check.h"
#include "host/host.h"
#include "host/json.h"
#include "host/pci.h"
#include "qemu/tools.h"

static int parse_json_flag(int argc, char **argv, const char *usage, bool *json) {
        static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
                if (c == 'j')
                        *json = true;
                else
                        return cli_usage_error(usage, "unknown option '%s'", argv[optind - 1]);
        }
        if (optind < argc)
                return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);
        return 0;
}

static void print_budget(const struct host_facts *h) {
        char keep[32], vm[32];
        format_size(h->reserve_mem, keep, sizeof keep);
        /* round down to MiB so the figure reads as a size a user would type */
        format_size(h->vm_mem_max / (1024 * 1024) * 1024 * 1024, vm, sizeof vm);
        printf("host budget: the host keeps %u CPU%s and %s; VMs get up to %u CPU%s and %s by default (%s)\n",
               h->reserve_cpus, h->reserve_cpus == 1 ? "" : "s", keep, h->vm_cpus_max, h->vm_cpus_max == 1 ? "" : "s", vm,
               h->conf_path ? h->conf_path : "defaults; set reserve-cpus and reserve-memory in /etc/phyllome/host.conf");
}

/* Exit status: 0 whenever the check ran, whatever it found (QEMU still runs
 * VMs without KVM, in TCG); 1 or 2 only when it could not run. */
int cmd_host_check(struct cli_ctx *ctx, int argc, char **argv) {
        static const char usage[] = "host check [--json]";
        bool json = false;
        int r = parse_json_flag(argc, argv, usage, &json);
        if (r)
                return r;
        phy_error err = { 0 };
        _cleanup_(host_facts_done) struct host_facts h = { 0 };
        if (host_facts_load(ctx->root, &h, &err) < 0)
                return cli_fail(&err);

        /* Tools are about the real host; under --root the report stays the
         * fixture's own, so they are reported as not checked. */
        bool real = !ctx->root || strcmp(ctx->root, "/") == 0;
        struct qemu_tools tools = { 0 };
        if (real && qemu_tools_find(&tools, &err) < 0) {
                qemu_tools_done(&tools);
                return cli_fail(&err);
        }
        _cleanup_(host_check_report_done) struct host_check_report rep = { 0 };
        r = host_check_run(&h, real ? &tools : NULL, &rep, &err);
        qemu_tools_done(&tools);
        if (r < 0)
                return cli_fail(&err);
        /* The 3D modes come from src/dev (which itself builds on src/host). */
        if ((r = dev_gl_modes_check(ctx->root, &h, &rep)) < 0) {
                phy_error_set(&err, -r, "cannot check the 3D display modes: %s", strerror(-r));
                return cli_fail(&err);
        }

        if (json) {
                cli_print_json(host_check_report_to_json(&h, &rep));
                return 0;
        }

        for (size_t i = 0; i < rep.n; i++) {
                const struct host_check_result *c = &rep.v[i];
                printf("%-4s  %s: %s\n", host_check_status_name(c->status), c->title, c->detail);
                if (c->remedy)
                        printf("      remedy: %s\n", c->remedy);
        }
        _cleanup_free_ char *short_of = strv_join(&rep.short_of, "; ");
        if (rep.tier == HOST_TIER_NONE)
                printf("verdict: below the minimum tier: %s\n", short_of ? short_of : "");
        else if (rep.tier == HOST_TIER_MINIMUM)
                printf("verdict: meets the minimum tier; short of recommended: %s\n", short_of ? short_of : "");
        else
                puts("verdict: meets the recommended tier");
        print_budget(&h);
        return 0;
}

static const char *class_name_of(const struct host_pci_list *l, const char *address) {
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->v[i].address, address) == 0)
                        return l->v[i].class_name;
        return NULL;
}

int cmd_host_devices(struct cli_ctx *ctx, int argc, char **argv) {
        static const char usage[] = "host devices [--json]";
        bool json = false;
        int r = parse_json_flag(argc, argv, usage, &json);
        if (r)
                return r;
        phy_error err = { 0 };
        _cleanup_(host_pci_list_done) struct host_pci_list l = { 0 };
        if (host_pci_list(ctx->root, &l, &err) < 0)
                return cli_fail(&err);

        if (json) {
                cli_print_json(host_pci_list_to_json(&l));
                return 0;
        }

        if (l.n == 0)
                puts("no PCI devices");
        for (size_t i = 0; i < l.n; i++) {
                const struct host_pci_device *d = &l.v[i];
                printf("%s %s [%04x]: %s %s [%s:%s]\n", d->address, d->class_name ? d->class_name : "?",
                       d->class_code >> 8, d->vendor_name ? d->vendor_name : "unknown vendor",
                       d->device_name ? d->device_name : "unknown device", d->vendor_id, d->device_id);
                printf("    driver %s; ", d->driver ? d->driver : "none");
                if (d->iommu_group < 0)
                        puts("no IOMMU group: cannot be given to a VM (the IOMMU is off; see 'phyllo host check')");
                else if (d->assignable) {
                        printf("IOMMU group %d: can be given to a VM", d->iommu_group);
                        if (d->group_with.n) {
                                _cleanup_free_ char *w = strv_join(&d->group_with, ", ");
                                printf(" together with its functions %s", w ? w : "");
                        }
                        putchar('\n');
                } else {
                        printf("IOMMU group %d: cannot be given to a VM alone; the group also holds", d->iommu_group);
                        for (size_t j = 0; j < d->group_blockers.n; j++) {
                                const char *cn = class_name_of(&l, d->group_blockers.v[j]);
                                printf("%s %s (%s)", j ? "," : "", d->group_blockers.v[j], cn ? cn : "?");
                        }
                        putchar('\n');
                }
        }
        return 0;
}

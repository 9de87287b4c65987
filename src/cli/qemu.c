/* SPDX-License-Identifier: MIT */
/* phyllo caps: what the QEMU binary can do, as probed over QMP. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cleanup.h"
#include "paths.h"
#include "qemu/caps.h"
#include "qemu/tools.h"


int cmd_caps(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = {
                { "json", no_argument, NULL, 'j' },
                { "qemu", required_argument, NULL, 'q' },
                { "refresh", no_argument, NULL, 'r' },
                { 0 },
        };
        bool json = false, refresh = false;
        const char *binary = NULL;
        for (int c; (c = cli_getopt(argc, argv, "+", opts)) != -1;) {
                switch (c) {
                case 'j': json = true; break;
                case 'q': binary = optarg; break;
                case 'r': refresh = true; break;
                default: return cli_usage_error(cli_usage(), "unknown option for 'caps'");
                }
        }
        if (optind < argc)
                return cli_usage_error(cli_usage(), "unexpected argument '%s'", argv[optind]);

        phy_error err = { 0 };
        struct qemu_tools tools = { 0 };
        if (!binary) {
                if (qemu_tools_find(&tools, &err) < 0)
                        return cli_fail(&err);
                if (!tools.qemu) {
                        qemu_tools_done(&tools);
                        phy_error_set(&err, ENOENT, "qemu-system-x86_64 is not installed or not in $PATH; "
                                                    "install it (Debian: qemu-system-x86) or pass --qemu PATH");
                        return cli_fail(&err);
                }
                binary = tools.qemu;
        }

        _cleanup_free_ char *cache = NULL;
        if (phy_cache_dir(&cache, &err) < 0) {
                qemu_tools_done(&tools);
                return cli_fail(&err);
        }
        _cleanup_qemu_caps_ struct qemu_caps caps = { 0 };
        int r = qemu_caps_probe_ex(binary, cache, refresh ? QEMU_CAPS_REFRESH : 0, &caps, &err);
        qemu_tools_done(&tools);
        if (r < 0)
                return cli_fail(&err);

        if (json) {
                _cleanup_free_ char *s = qemu_caps_to_json(&caps);
                if (!s) {
                        phy_error_set(&err, ENOMEM, "out of memory");
                        return cli_fail(&err);
                }
                puts(s);
                return 0;
        }

        static const struct { const char *label, *kind, *name, *prop; } rows[] = {
                { "machine q35", "machine", "q35", NULL },
                { "accel kvm", "accel", "kvm", NULL },
                { "accel tcg", "accel", "tcg", NULL },
                { "tpm-crb", "device", "tpm-crb", NULL },
                { "virtio-vga-gl", "device", "virtio-vga-gl", NULL },
                { "virtio-sound-pci", "device", "virtio-sound-pci", NULL },
                { "virtio-blk-pci", "device", "virtio-blk-pci", NULL },
                { "virtio-net-pci", "device", "virtio-net-pci", NULL },
                { "nvme", "device", "nvme", NULL },
                { "vfio-pci", "device", "vfio-pci", NULL },
                { "free page reporting", "prop", "virtio-balloon-pci", "free-page-reporting" },
                { "display gtk", "display", "gtk", NULL },
                { "display sdl", "display", "sdl", NULL },
                { "audio pa", "audio", "pa", NULL },
                { "audio spice", "audio", "spice", NULL },
        };
        printf("binary:    %s%s\n", caps.binary, caps.from_cache ? " (cached)" : "");
        printf("version:   %s (informational)\n", caps.version);
        printf("machines:  %zu\n", caps.machines.n);
        printf("devices:   %zu\n", caps.devices.n);
        printf("accels:    ");
        for (size_t i = 0; i < caps.accels.n; i++)
                printf("%s%s", i ? " " : "", caps.accels.v[i]);
        printf("\n");
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                bool have;
                if (strcmp(rows[i].kind, "machine") == 0)
                        have = qemu_caps_has_machine(&caps, rows[i].name);
                else if (strcmp(rows[i].kind, "accel") == 0)
                        have = qemu_caps_has_accel(&caps, rows[i].name);
                else if (strcmp(rows[i].kind, "device") == 0)
                        have = qemu_caps_has_device(&caps, rows[i].name);
                else if (strcmp(rows[i].kind, "display") == 0)
                        have = qemu_caps_has_display(&caps, rows[i].name);
                else if (strcmp(rows[i].kind, "audio") == 0)
                        have = qemu_caps_has_audiodev(&caps, rows[i].name);
                else
                        have = qemu_caps_has_prop(&caps, rows[i].name, rows[i].prop);
                printf("  %-22s %s\n", rows[i].label, have ? "yes" : "no");
        }
        /* Listed by QEMU but not creatable: a module it needs is missing. */
        for (size_t i = 0; i < caps.absent.n; i++) {
                char dev[128], why[512];
                snprintf(dev, sizeof dev, "%.*s", (int) strcspn(caps.absent.v[i], " "), caps.absent.v[i]);
                static const char lacks[] = "which this QEMU lacks: ";
                const char *fix = qemu_caps_lacks(&caps, "any", "device", dev, why, sizeof why) ? strstr(why, lacks) : NULL;
                if (fix)
                        printf("absent:    %s: %s\n", dev, fix + strlen(lacks));
                else
                        printf("absent:    %s (needs %s)\n", dev, caps.absent.v[i] + strlen(dev) + 1);
        }
        (void) ctx;
        return 0;
}

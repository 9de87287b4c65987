/* SPDX-License-Identifier: MIT */
/* phyllo device ... / phyllo usb ...: devices given to a VM (src/dev). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cleanup.h"
#include "fileio.h"


int cmd_device_attach(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "with-group", no_argument, NULL, 'g' },
                                               { "rom", required_argument, NULL, 'r' },
                                               { "force", no_argument, NULL, 'f' },
                                               { "single-gpu", no_argument, NULL, 's' }, { 0 } };
        _cleanup_json_ json_object *b = json_object_new_object();
        _cleanup_free_ char *rom = NULL;
        bool single_gpu = false;
        optind = 1;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;)
                switch (c) {
                case 'g': json_object_object_add(b, "with_group", json_object_new_boolean(true)); break;
                case 'r': free(rom); rom = cli_abs_path(optarg); break;
                case 'f': json_object_object_add(b, "force", json_object_new_boolean(true)); break;
                case 's': single_gpu = true; json_object_object_add(b, "single_gpu", json_object_new_boolean(true)); break;
                default: return cli_usage_error(cli_usage(), "unknown option");
                }
        if (optind + 2 != argc)
                return cli_usage_error(cli_usage(), "expected a VM name and a PCI address");
        const char *name = argv[optind], *addr = argv[optind + 1];
        int st = cli_name_arg(name);
        if (st)
                return st;
        json_object_object_add(b, "address", json_object_new_string(addr));
        if (rom)
                json_object_object_add(b, "rom", json_object_new_string(rom));
        json_object *o = NULL, *added = NULL;
        if ((st = cli_call(ctx, "POST", json_object_get(b), &o, "/v1/vms/%s/devices", name)))
                return st;
        json_object_object_get_ex(o, "attached", &added);
        for (size_t i = 0; i < json_object_array_length(added); i++)
                printf("attached %s to VM '%s'\n", json_object_get_string(json_object_array_get_idx(added, i)), name);
        if (json_object_array_length(added) == 0)
                printf("%s is already attached to VM '%s'\n", addr, name);
        printf("it moves to vfio-pci when the VM starts and goes back to its driver when it stops\n");
        if (single_gpu)
                printf("single-GPU mode: while VM '%s' runs, the host's display manager and consoles stop (use ssh "
                       "or the VM to get back); see docs/devices.md\n", name);
        json_object_put(o);
        return 0;
}

/* A PCI address, a UUID or a USB id goes into a path: no '/' in it. */
static int path_word(const char *usage, const char *what, const char *w) {
        if (!*w || strchr(w, '/') || strchr(w, '?') || strlen(w) > 64)
                return cli_usage_error(usage, "'%s' is not a %s", w, what);
        return 0;
}

int cmd_device_detach(struct cli_ctx *ctx, int argc, char **argv) {
        if (cli_wants_help(argc, argv, cli_usage(), "detach a PCI device (and its other functions) from a VM"))
                return 0;
        if (argc != 3)
                return cli_usage_error(cli_usage(), "expected a VM name and a PCI address");
        const char *name = argv[1], *addr = argv[2];
        json_object *o = NULL, *gone = NULL;
        int st = cli_name_arg(name);
        if (st || (st = path_word(cli_usage(), "PCI address", addr)) ||
            (st = cli_call(ctx, "DELETE", NULL, &o, "/v1/vms/%s/devices/%s", name, addr)))
                return st;
        json_object_object_get_ex(o, "detached", &gone);
        for (size_t i = 0; i < json_object_array_length(gone); i++)
                printf("detached %s from VM '%s'\n", json_object_get_string(json_object_array_get_idx(gone, i)), name);
        json_object_put(o);
        return 0;
}

int cmd_device_list(struct cli_ctx *ctx, int argc, char **argv) {
        bool json;
        int st = cli_json_operands(argc, argv, 1, &json);
        if (st)
                return st;
        json_object *r = NULL, *arr = NULL;
        const char *name = argv[optind];
        if ((st = cli_name_arg(name)) || (st = cli_call(ctx, "GET", NULL, &r, "/v1/vms/%s/devices", name)))
                return st;
        json_object_object_get_ex(r, "devices", &arr);
        if (json) {
                cli_print_json(json_object_get(arr));
                json_object_put(r);
                return 0;
        }
        printf("%-5s %-38s %s\n", "KIND", "DEVICE", "HOST DRIVER / NOTE");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *o = json_object_array_get_idx(arr, i), *v;
                const char *kind = cli_jstr(o, "kind");
                const char *dev = json_object_object_get_ex(o, "address", &v) || json_object_object_get_ex(o, "uuid", &v) ||
                                                  json_object_object_get_ex(o, "device", &v)
                                          ? json_object_get_string(v) : "";
                const char *drv = json_object_object_get_ex(o, "driver", &v) && v ? json_object_get_string(v) : "-";
                printf("%-5s %-38s %s", kind, dev, strcmp(kind, "pci") == 0 ? drv : "-");
                if (json_object_object_get_ex(o, "rom", &v))
                        printf(", rom %s", json_object_get_string(v));
                if (json_object_object_get_ex(o, "host_use", &v))
                        printf(" (host uses it: %s)", json_object_get_string(v));
                printf("\n");
        }
        json_object_put(r);
        return 0;
}

int cmd_device_mdev_types(struct cli_ctx *ctx, int argc, char **argv) {
        bool json;
        int st = cli_json_operands(argc, argv, 1, &json);
        if (st)
                return st;
        json_object *r = NULL, *t = NULL;
        const char *addr = argv[optind];
        if ((st = path_word(cli_usage(), "PCI address", addr)) ||
            (st = cli_call(ctx, "GET", NULL, &r, "/v1/host/devices/%s/mdev-types", addr)))
                return st;
        json_object_object_get_ex(r, "types", &t);
        if (json) {
                cli_print_json(json_object_get(t));
                json_object_put(r);
                return 0;
        }
        if (json_object_array_length(t) == 0)
                printf("PCI device %s offers no mediated device types\n", addr);
        else
                printf("%-20s %-12s %-9s %s\n", "TYPE", "NAME", "AVAILABLE", "DESCRIPTION");
        for (size_t i = 0; i < json_object_array_length(t); i++) {
                json_object *x = json_object_array_get_idx(t, i);
                _cleanup_free_ char *desc = strdup(cli_jstr(x, "description"));
                for (char *c = desc; c && *c; c++)
                        if (*c == '\n')
                                *c = ' ';
                const char *nm = cli_jstr(x, "name");
                printf("%-20s %-12s %-9ld %s\n", cli_jstr(x, "type"), *nm ? nm : "-", (long) cli_jint(x, "available_instances"),
                       desc && *desc ? desc : "-");
        }
        json_object_put(r);
        return 0;
}

int cmd_device_mdev_create(struct cli_ctx *ctx, int argc, char **argv) {
        if (cli_wants_help(argc, argv, cli_usage(), "create a mediated device instance"))
                return 0;
        if (argc != 3 && argc != 4)
                return cli_usage_error(cli_usage(), "expected a PCI address, a type and an optional UUID");
        json_object *b = json_object_new_object(), *o = NULL;
        json_object_object_add(b, "parent", json_object_new_string(argv[1]));
        json_object_object_add(b, "type", json_object_new_string(argv[2]));
        if (argc == 4)
                json_object_object_add(b, "uuid", json_object_new_string(argv[3]));
        int st = cli_call(ctx, "POST", b, &o, "/v1/host/mdevs");
        if (st)
                return st;
        printf("%s\n", cli_jstr(o, "uuid"));
        json_object_put(o);
        return 0;
}

int cmd_device_mdev_remove(struct cli_ctx *ctx, int argc, char **argv) {
        if (cli_wants_help(argc, argv, cli_usage(), "remove a mediated device instance"))
                return 0;
        if (argc != 2)
                return cli_usage_error(cli_usage(), "expected a UUID");
        json_object *o = NULL;
        int st = path_word(cli_usage(), "UUID", argv[1]);
        if (st || (st = cli_call(ctx, "DELETE", NULL, &o, "/v1/host/mdevs/%s", argv[1])))
                return st;
        json_object_put(o);
        return 0;
}

int cmd_device_mdev_attach(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "display", no_argument, NULL, 'd' }, { 0 } };
        bool display = false;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                if (c != 'd')
                        return cli_usage_error(cli_usage(), "unknown option for 'device mdev-attach'");
                display = true;
        }
        if (optind + 2 != argc)
                return cli_usage_error(cli_usage(), "expected a VM name and a UUID");
        const char *name = argv[optind], *uuid = argv[optind + 1];
        int st = cli_name_arg(name);
        if (st)
                return st;
        json_object *b = json_object_new_object(), *o = NULL;
        json_object_object_add(b, "uuid", json_object_new_string(uuid));
        json_object_object_add(b, "display", json_object_new_boolean(display));
        if ((st = cli_call(ctx, "POST", b, &o, "/v1/vms/%s/mdevs", name)))
                return st;
        printf("attached mediated device %s to VM '%s'%s\n", uuid, name, display ? " with its display" : "");
        json_object_put(o);
        return 0;
}

int cmd_device_sriov(struct cli_ctx *ctx, int argc, char **argv) {
        if (cli_wants_help(argc, argv, cli_usage(), "set the number of SR-IOV virtual functions of a device"))
                return 0;
        unsigned long long n;
        if (argc != 3 || parse_uint(argv[2], 4096, &n) < 0)
                return cli_usage_error(cli_usage(), "expected a PCI address and a count");
        json_object *b = json_object_new_object(), *o = NULL, *vfs = NULL;
        json_object_object_add(b, "count", json_object_new_int((int) n));
        int st = path_word(cli_usage(), "PCI address", argv[1]);
        if (st) {
                json_object_put(b);
                return st;
        }
        if ((st = cli_call(ctx, "POST", b, &o, "/v1/host/devices/%s/sriov", argv[1])))
                return st;
        json_object_object_get_ex(o, "vfs", &vfs);
        for (size_t i = 0; i < json_object_array_length(vfs); i++)
                printf("%s\n", json_object_get_string(json_object_array_get_idx(vfs, i)));
        json_object_put(o);
        return 0;
}

int cmd_device_give_back(struct cli_ctx *ctx, int argc, char **argv) {
        if (cli_wants_help(argc, argv, cli_usage(), "give a stopped VM's devices back to their host drivers"))
                return 0;
        if (argc != 2)
                return cli_usage_error(cli_usage(), "expected a VM name");
        json_object *o = NULL;
        int st = cli_name_arg(argv[1]);
        if (st || (st = cli_call(ctx, "POST", NULL, &o, "/v1/vms/%s/give-back", argv[1])))
                return st;
        json_object_put(o);
        return 0;
}

static int usb_change(struct cli_ctx *ctx, int argc, char **argv, bool attach) {
        const char *usage = attach ? cli_usage() : cli_usage();
        if (cli_wants_help(argc, argv, usage, attach ? "give a host USB device to a VM" : "take a USB device from a VM"))
                return 0;
        if (argc != 3)
                return cli_usage_error(usage, "expected a VM name and a USB device");
        const char *name = argv[1];
        json_object *o = NULL, *b = NULL;
        int st = cli_name_arg(name);
        if (st || (!attach && (st = path_word(usage, "USB device", argv[2]))))
                return st;
        if (attach) {
                b = json_object_new_object();
                json_object_object_add(b, "device", json_object_new_string(argv[2]));
                st = cli_call(ctx, "POST", b, &o, "/v1/vms/%s/usb", name);
        } else
                st = cli_call(ctx, "DELETE", NULL, &o, "/v1/vms/%s/usb/%s", name, argv[2]);
        if (st)
                return st;
        printf("%s USB device %s %s VM '%s'%s\n", attach ? "attached" : "detached",
               cli_jstr(o, attach ? "attached" : "detached"), attach ? "to" : "from", name,
               cli_jbool(o, "hotplugged") ? " (hot-plugged into the running VM)" : "");
        json_object_put(o);
        return 0;
}

int cmd_usb_attach(struct cli_ctx *ctx, int argc, char **argv) {
        return usb_change(ctx, argc, argv, true);
}

int cmd_usb_detach(struct cli_ctx *ctx, int argc, char **argv) {
        return usb_change(ctx, argc, argv, false);
}

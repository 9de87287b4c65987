/* SPDX-License-Identifier: MIT */
/* phyllo device ... / phyllo usb ...: devices given to a VM (src/dev). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cli.h"
#include "cleanup.h"
#include "fileio.h"
#include "dev/dev.h"
#include "dev/single-gpu.h"
#include "host/pci.h"
#include "qemu/qmp.h"
#include "run/run.h"
#include "vm/vm.h"
#include "value.h"
#include "qemu/argv.h"

static const char attach_usage[] = "device attach NAME PCI_ADDR [--with-group] [--rom FILE] [--single-gpu] [--force]";
static const char detach_usage[] = "device detach NAME PCI_ADDR";
static const char list_usage[] = "device list NAME [--json]";
static const char types_usage[] = "device mdev-types PCI_ADDR [--json]";
static const char mcreate_usage[] = "device mdev-create PCI_ADDR TYPE [UUID]";
static const char mremove_usage[] = "device mdev-remove UUID";
static const char mattach_usage[] = "device mdev-attach NAME UUID [--display]";
static const char sriov_usage[] = "device sriov PCI_ADDR COUNT";
static const char giveback_usage[] = "device give-back NAME";
static const char usb_attach_usage[] = "usb attach NAME VENDOR:PRODUCT|BUS-PORT";
static const char usb_detach_usage[] = "usb detach NAME VENDOR:PRODUCT|BUS-PORT";

/* Loads VM name's definition and its file path; with ret_lock, under the
 * VM's edit lock (held until *ret_lock is closed) for a change to save. */
static int load_vm(struct cli_ctx *ctx, const char *name, struct vm_def *d, char **ret_conf, const char **ret_home,
                   int *ret_lock) {
        const char *home;
        phy_error err = { 0 };
        if (cli_home(ctx, &home) < 0)
                return -1;
        if (ret_lock && vm_edit_lock(home, name, ret_lock, &err) < 0) {
                cli_fail(&err);
                return -1;
        }
        if (vm_load_by_name(home, name, d, &err) < 0) {
                cli_fail(&err);
                return -1;
        }
        if (ret_conf && !(*ret_conf = vm_conf_path(home, name)))
                return -1;
        if (ret_home)
                *ret_home = home;
        return 0;
}

static int save_vm(const struct vm_def *d, const char *conf) {
        phy_error err = { 0 };
        if (vm_def_save(d, conf, &err) < 0)
                return cli_fail(&err);
        return 0;
}


/* Removes "ADDR=..." ROM entries of addr. */
static void roms_remove(strv *roms, const char *addr) {
        size_t l = strlen(addr);
        for (size_t i = 0; i < roms->n;)
                if (strncmp(roms->v[i], addr, l) == 0 && roms->v[i][l] == '=')
                        strv_remove_at(roms, i);
                else
                        i++;
}

int cmd_device_attach(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "with-group", no_argument, NULL, 'g' },
                                               { "rom", required_argument, NULL, 'r' },
                                               { "force", no_argument, NULL, 'f' },
                                               { "single-gpu", no_argument, NULL, 's' },
                                               { "help", no_argument, NULL, 'h' }, { 0 } };
        struct dev_attach_opts o = { 0 };
        bool single_gpu = false;
        const char *rom = NULL;
        optind = 1;
        for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;)
                switch (c) {
                case 'g': o.with_group = true; break;
                case 'r': rom = optarg; break;
                case 'f': o.force = true; break;
                case 's': single_gpu = true; break;
                case 'h': printf("usage: phyllo %s\n", attach_usage); return 0;
                default: return cli_usage_error(attach_usage, "unknown option");
                }
        if (optind + 2 != argc)
                return cli_usage_error(attach_usage, "expected a VM name and a PCI address");
        const char *name = argv[optind], *addr = argv[optind + 1];
        _cleanup_vm_def_ struct vm_def d = { 0 };
        _cleanup_free_ char *conf = NULL, *rom_abs = NULL;
        _cleanup_close_ int lock = -1;
        if (load_vm(ctx, name, &d, &conf, NULL, &lock) < 0)
                return 1;
        phy_error err = { 0 };
        if (rom) {
                if (strchr(rom, ' ') || strchr(rom, '\t'))
                        return cli_usage_error(attach_usage, "the ROM path '%s' may not contain spaces", rom);
                if (!(rom_abs = realpath(rom, NULL))) {
                        phy_error_set(&err, errno, "cannot use ROM file '%s': %s", rom, strerror(errno));
                        return cli_fail(&err);
                }
        }
        _cleanup_strv_ strv add = { 0 };
        o.attached = &d.passthrough;
        /* Single-GPU mode takes the host's display GPU on purpose; the other
         * host-use reasons (the boot disk) still need --force. */
        bool user_force = o.force;
        if (single_gpu) {
                if (!dev_pci_is_boot_display(ctx->root, addr)) {
                        phy_error_set(&err, EPERM, "PCI device %s is not the GPU of the host's display (boot_vga); "
                                      "--single-gpu is for that card only: attach it without --single-gpu", addr);
                        return cli_fail(&err);
                }
                o.force = true;
        }
        if (dev_pci_attach_plan(ctx->root, addr, &o, &add, &err) < 0)
                return cli_fail(&err);
        for (size_t i = 0; i < add.n && single_gpu && !user_force; i++) {
                _cleanup_free_ char *why = dev_pci_is_boot_display(ctx->root, add.v[i]) ? NULL
                                                                                          : dev_pci_host_use(ctx->root, add.v[i]);
                if (why) {
                        phy_error_set(&err, EPERM, "PCI device %s is in use by the host: %s; pass --force to give it "
                                      "to the VM anyway", add.v[i], why);
                        return cli_fail(&err);
                }
        }
        if (single_gpu)
                d.single_gpu = VM_ON;
        for (size_t i = 0; i < add.n; i++)
                if (strv_push(&d.passthrough, add.v[i]) < 0)
                        return 1;
        if (rom_abs) {
                roms_remove(&d.passthrough_roms, addr);
                if (strv_pushf(&d.passthrough_roms, "%s=%s", addr, rom_abs) < 0)
                        return 1;
        }
        if (save_vm(&d, conf))
                return 1;
        for (size_t i = 0; i < add.n; i++)
                printf("attached %s to VM '%s'\n", add.v[i], name);
        if (add.n == 0)
                printf("%s is already attached to VM '%s'\n", addr, name);
        printf("it moves to vfio-pci when the VM starts and goes back to its driver when it stops\n");
        if (single_gpu)
                printf("single-GPU mode: while VM '%s' runs, the host's display manager and consoles stop (use ssh "
                       "or the VM to get back); see docs/devices.md\n", name);
        return 0;
}

static bool same_device(const char *a, const char *b) {
        return strlen(a) == 12 && strlen(b) == 12 && strncmp(a, b, 10) == 0;
}

int cmd_device_detach(struct cli_ctx *ctx, int argc, char **argv) {
        if (cli_wants_help(argc, argv, detach_usage, "detach a PCI device (and its other functions) from a VM"))
                return 0;
        if (argc != 3)
                return cli_usage_error(detach_usage, "expected a VM name and a PCI address");
        const char *name = argv[1], *addr = argv[2];
        _cleanup_vm_def_ struct vm_def d = { 0 };
        _cleanup_free_ char *conf = NULL;
        _cleanup_close_ int lock = -1;
        if (load_vm(ctx, name, &d, &conf, NULL, &lock) < 0)
                return 1;
        _cleanup_strv_ strv gone = { 0 };
        /* The functions of one device went together; they leave together. */
        for (size_t i = 0; i < d.passthrough.n; i++)
                if (same_device(d.passthrough.v[i], addr) && strv_push(&gone, d.passthrough.v[i]) < 0)
                        return 1;
        if (!strv_contains(&d.passthrough, addr)) {
                phy_error err = { 0 };
                phy_error_set(&err, ENOENT, "PCI device %s is not attached to VM '%s' (see 'phyllo device list %s')",
                              addr, name, name);
                return cli_fail(&err);
        }
        for (size_t i = 0; i < gone.n; i++) {
                strv_remove(&d.passthrough, gone.v[i]);
                roms_remove(&d.passthrough_roms, gone.v[i]);
        }
        /* Single-GPU mode goes with the host's display GPU. */
        bool display_left = false;
        for (size_t i = 0; i < d.passthrough.n; i++)
                display_left |= dev_pci_is_boot_display(ctx->root, d.passthrough.v[i]);
        if (!display_left)
                d.single_gpu = VM_UNSET;
        if (save_vm(&d, conf))
                return 1;
        for (size_t i = 0; i < gone.n; i++)
                printf("detached %s from VM '%s'\n", gone.v[i], name);
        return 0;
}

int cmd_device_list(struct cli_ctx *ctx, int argc, char **argv) {
        bool json = argc == 3 && strcmp(argv[2], "--json") == 0;
        if (cli_wants_help(argc, argv, list_usage, "list the devices given to a VM"))
                return 0;
        if (argc != 2 && !json)
                return cli_usage_error(list_usage, "expected a VM name");
        _cleanup_vm_def_ struct vm_def d = { 0 };
        if (load_vm(ctx, argv[1], &d, NULL, NULL, NULL) < 0)
                return 1;
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < d.passthrough.n; i++) {
                const char *a = d.passthrough.v[i];
                _cleanup_free_ char *drv = dev_pci_driver(ctx->root, a), *why = dev_pci_host_use(ctx->root, a);
                const char *rom = NULL;
                for (size_t j = 0; j < d.passthrough_roms.n; j++)
                        if (strncmp(d.passthrough_roms.v[j], a, 12) == 0 && d.passthrough_roms.v[j][12] == '=')
                                rom = d.passthrough_roms.v[j] + 13;
                json_object *o = json_object_new_object();
                json_object_object_add(o, "kind", json_object_new_string("pci"));
                json_object_object_add(o, "address", json_object_new_string(a));
                json_object_object_add(o, "driver", drv ? json_object_new_string(drv) : NULL);
                if (rom)
                        json_object_object_add(o, "rom", json_object_new_string(rom));
                if (why)
                        json_object_object_add(o, "host_use", json_object_new_string(why));
                json_object_array_add(arr, o);
        }
        for (size_t i = 0; i < d.mdevs.n; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "kind", json_object_new_string("mdev"));
                json_object_object_add(o, "uuid", json_object_new_string(d.mdevs.v[i]));
                json_object_object_add(o, "display", json_object_new_boolean(d.mdev_display == VM_ON));
                json_object_array_add(arr, o);
        }
        for (size_t i = 0; i < d.usb.n; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "kind", json_object_new_string("usb"));
                json_object_object_add(o, "device", json_object_new_string(d.usb.v[i]));
                json_object_array_add(arr, o);
        }
        if (json) {
                cli_print_json(arr);
                return 0;
        }
        printf("%-5s %-38s %s\n", "KIND", "DEVICE", "HOST DRIVER / NOTE");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *o = json_object_array_get_idx(arr, i), *v;
                const char *kind = json_object_get_string(json_object_object_get(o, "kind"));
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
        json_object_put(arr);
        return 0;
}

int cmd_device_mdev_types(struct cli_ctx *ctx, int argc, char **argv) {
        bool json = argc == 3 && strcmp(argv[2], "--json") == 0;
        if (cli_wants_help(argc, argv, types_usage, "list the mediated device types a GPU offers"))
                return 0;
        if (argc != 2 && !json)
                return cli_usage_error(types_usage, "expected a PCI address");
        _cleanup_(dev_mdev_types_done) struct dev_mdev_types t = { 0 };
        phy_error err = { 0 };
        if (dev_mdev_types(ctx->root, argv[1], &t, &err) < 0)
                return cli_fail(&err);
        if (json) {
                json_object *arr = json_object_new_array();
                for (size_t i = 0; i < t.n; i++) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "type", json_object_new_string(t.v[i].id));
                        json_object_object_add(o, "name", t.v[i].name ? json_object_new_string(t.v[i].name) : NULL);
                        json_object_object_add(o, "available_instances", json_object_new_int64(t.v[i].available));
                        json_object_object_add(o, "description",
                                               t.v[i].description ? json_object_new_string(t.v[i].description) : NULL);
                        json_object_array_add(arr, o);
                }
                cli_print_json(arr);
                return 0;
        }
        if (t.n == 0) {
                printf("PCI device %s offers no mediated device types\n", argv[1]);
                return 0;
        }
        printf("%-20s %-12s %-9s %s\n", "TYPE", "NAME", "AVAILABLE", "DESCRIPTION");
        for (size_t i = 0; i < t.n; i++) {
                char *desc = t.v[i].description;
                for (char *c = desc; c && *c; c++)
                        if (*c == '\n')
                                *c = ' ';
                printf("%-20s %-12s %-9ld %s\n", t.v[i].id, t.v[i].name ? t.v[i].name : "-", t.v[i].available,
                       desc ? desc : "-");
        }
        return 0;
}

static void uuid_v4(char out[37]) {
        unsigned char b[16];
        if (getrandom(b, sizeof b, 0) != sizeof b)
                abort();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

int cmd_device_mdev_create(struct cli_ctx *ctx, int argc, char **argv) {
        if (cli_wants_help(argc, argv, mcreate_usage, "create a mediated device instance"))
                return 0;
        if (argc != 3 && argc != 4)
                return cli_usage_error(mcreate_usage, "expected a PCI address, a type and an optional UUID");
        char uuid[37];
        if (argc == 4)
                snprintf(uuid, sizeof uuid, "%s", argv[3]);
        else
                uuid_v4(uuid);
        phy_error err = { 0 };
        if (dev_mdev_create(ctx->root, argv[1], argv[2], argc == 4 ? argv[3] : uuid, NULL, NULL, &err) < 0)
                return cli_fail(&err);
        printf("%s\n", argc == 4 ? argv[3] : uuid);
        return 0;
}

int cmd_device_mdev_remove(struct cli_ctx *ctx, int argc, char **argv) {
        if (cli_wants_help(argc, argv, mremove_usage, "remove a mediated device instance"))
                return 0;
        if (argc != 2)
                return cli_usage_error(mremove_usage, "expected a UUID");
        phy_error err = { 0 };
        if (dev_mdev_remove(ctx->root, argv[1], NULL, NULL, &err) < 0)
                return cli_fail(&err);
        return 0;
}

int cmd_device_mdev_attach(struct cli_ctx *ctx, int argc, char **argv) {
        if (cli_wants_help(argc, argv, mattach_usage, "give a mediated device to a VM"))
                return 0;
        bool display = argc == 4 && strcmp(argv[3], "--display") == 0;
        if (argc != 3 && !display)
                return cli_usage_error(mattach_usage, "expected a VM name and a UUID");
        phy_error err = { 0 };
        _cleanup_free_ char *dir = NULL, *conf = NULL;
        if (!value_uuid_valid(argv[2], true))
                return cli_usage_error(mattach_usage, "'%s' is not a UUID", argv[2]);
        if (asprintf(&dir, "/sys/bus/mdev/devices/%s", argv[2]) < 0)
                return 1;
        if (!root_exists(ctx->root, dir)) {
                phy_error_set(&err, ENOENT, "there is no mediated device %s on this host (create it with 'phyllo "
                              "device mdev-create')", argv[2]);
                return cli_fail(&err);
        }
        _cleanup_vm_def_ struct vm_def d = { 0 };
        _cleanup_close_ int lock = -1;
        if (load_vm(ctx, argv[1], &d, &conf, NULL, &lock) < 0)
                return 1;
        if (!strv_contains(&d.mdevs, argv[2]) && strv_push(&d.mdevs, argv[2]) < 0)
                return 1;
        if (display)
                d.mdev_display = VM_ON;
        if (save_vm(&d, conf))
                return 1;
        printf("attached mediated device %s to VM '%s'%s\n", argv[2], argv[1], display ? " with its display" : "");
        return 0;
}

int cmd_device_sriov(struct cli_ctx *ctx, int argc, char **argv) {
        if (cli_wants_help(argc, argv, sriov_usage, "set the number of SR-IOV virtual functions of a device"))
                return 0;
        unsigned long long n;
        if (argc != 3 || parse_uint(argv[2], 4096, &n) < 0)
                return cli_usage_error(sriov_usage, "expected a PCI address and a count");
        phy_error err = { 0 };
        _cleanup_strv_ strv vfs = { 0 };
        if (dev_sriov_set(ctx->root, argv[1], (unsigned) n, NULL, NULL, &err) < 0 ||
            dev_sriov_vfs(ctx->root, argv[1], &vfs, &err) < 0)
                return cli_fail(&err);
        for (size_t i = 0; i < vfs.n; i++)
                printf("%s\n", vfs.v[i]);
        return 0;
}

int cmd_device_give_back(struct cli_ctx *ctx, int argc, char **argv) {
        if (cli_wants_help(argc, argv, giveback_usage, "give a stopped VM's devices back to their host drivers"))
                return 0;
        if (argc != 2)
                return cli_usage_error(giveback_usage, "expected a VM name");
        const char *home;
        if (cli_home(ctx, &home) < 0)
                return 1;
        phy_error err = { 0 };
        _cleanup_free_ char *rd = NULL;
        if (run_is_active(home, argv[1])) {
                phy_error_set(&err, EBUSY, "VM '%s' is running; its devices go back when it stops", argv[1]);
                return cli_fail(&err);
        }
        if (run_dir_path(home, argv[1], &rd, &err) < 0 || dev_passthrough_restore(ctx->root, rd, NULL, NULL, &err) < 0 ||
            dev_single_gpu_restore_host(rd, NULL, NULL, &err) < 0)
                return cli_fail(&err);
        return 0;
}

static void json_putp(json_object **o) {
        json_object_put(*o);
}

/* device_add / device_del over the VM's QMP socket when it runs.  Takes
 * args (qmp_command does when it runs; otherwise it is dropped here). */
static int usb_hotplug(const char *home, const char *name, const char *cmd, json_object *args_in, bool *ret_live,
                       phy_error *err) {
        _cleanup_(json_putp) json_object *args = args_in;
        _cleanup_run_state_ struct run_state st = { 0 };
        _cleanup_free_ char *rd = NULL, *sock = NULL;
        _cleanup_qmp_ struct qmp *q = NULL;
        *ret_live = false;
        int r = run_state_get(home, name, &st, err);
        if (r < 0)
                return r;
        if (st.state != RUN_RUNNING && st.state != RUN_PAUSED)
                return 0;
        if ((r = run_dir_path(home, name, &rd, err)) < 0)
                return r;
        if (asprintf(&sock, "%s/qmp.sock", rd) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if ((r = qmp_open_path(sock, 5000, &q, err)) < 0 || (r = qmp_command(q, cmd, TAKE_PTR(args), 5000, NULL, err)) < 0)
                return phy_error_prefix(err, "%s on running VM '%s'", cmd, name);
        *ret_live = true;
        return 0;
}

static int usb_change(struct cli_ctx *ctx, int argc, char **argv, bool attach) {
        const char *usage = attach ? usb_attach_usage : usb_detach_usage;
        if (cli_wants_help(argc, argv, usage, attach ? "give a host USB device to a VM" : "take a USB device from a VM"))
                return 0;
        if (argc != 3)
                return cli_usage_error(usage, "expected a VM name and a USB device");
        const char *name = argv[1];
        char spec[32], id[40];
        snprintf(spec, sizeof spec, "%s", argv[2]);
        for (char *c = spec; *c; c++)
                *c = (char) (*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
        if (!value_usb_id_valid(spec))
                return cli_usage_error(usage, "'%s' is not VENDOR:PRODUCT (hex, 046d:c52b) or BUS-PORT (1-2, 3-1.4)",
                                       argv[2]);
        const char *home;
        _cleanup_vm_def_ struct vm_def d = { 0 };
        _cleanup_free_ char *conf = NULL, *opts = NULL;
        _cleanup_close_ int lock = -1;
        if (load_vm(ctx, name, &d, &conf, &home, &lock) < 0)
                return 1;
        phy_error err = { 0 };
        bool has = strv_contains(&d.usb, spec), live = false;
        if (attach == has) {
                phy_error_set(&err, attach ? EEXIST : ENOENT, "USB device %s is %s VM '%s'", spec,
                              attach ? "already attached to" : "not attached to", name);
                return cli_fail(&err);
        }
        qemu_usb_id(spec, id);
        json_object *args = json_object_new_object();
        if (attach) {
                if (qemu_usb_host_opts(spec, id, &opts, &err) < 0) {
                        json_object_put(args);
                        return cli_fail(&err);
                }
                /* "usb-host,id=..,bus=..,k=v": QMP wants the same as separate members. */
                char *save = NULL, *tok = strtok_r(opts, ",", &save);
                json_object_object_add(args, "driver", json_object_new_string(tok));
                while ((tok = strtok_r(NULL, ",", &save))) {
                        char *eq = strchr(tok, '=');
                        if (!eq)
                                continue;
                        *eq = '\0';
                        json_object_object_add(args, tok, json_object_new_string(eq + 1));
                }
        } else
                json_object_object_add(args, "id", json_object_new_string(id));
        int r = usb_hotplug(home, name, attach ? "device_add" : "device_del", args, &live, &err);
        if (r < 0)
                return cli_fail(&err);
        if (attach ? strv_push(&d.usb, spec) < 0 : strv_remove(&d.usb, spec) < 0)
                return 1;
        if (save_vm(&d, conf))
                return 1;
        printf("%s USB device %s %s VM '%s'%s\n", attach ? "attached" : "detached", spec, attach ? "to" : "from",
               name, live ? " (hot-plugged into the running VM)" : "");
        return 0;
}

int cmd_usb_attach(struct cli_ctx *ctx, int argc, char **argv) {
        return usb_change(ctx, argc, argv, true);
}

int cmd_usb_detach(struct cli_ctx *ctx, int argc, char **argv) {
        return usb_change(ctx, argc, argv, false);
}

/* SPDX-License-Identifier: MIT */
/* phyllo disk add|list|resize|remove. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cleanup.h"
#include "fileio.h"
#include "store/store.h"
#include "vm/vm.h"

static const char add_usage[] =
        "disk add NAME (--size SIZE [--encrypt [--key-file FILE]] | --image PATH) [--bus virtio|scsi|sata|nvme] [--name DISK]";
static const char list_usage[] = "disk list NAME [--json]";
static const char resize_usage[] = "disk resize NAME DISK SIZE [--shrink]";
static const char remove_usage[] = "disk remove NAME DISK [--keep-file]";

static int bus_from_name(const char *s) {
        static const struct { const char *n; int v; } t[] = {
                { "virtio", VM_BUS_VIRTIO }, { "scsi", VM_BUS_SCSI }, { "sata", VM_BUS_SATA }, { "nvme", VM_BUS_NVME },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                if (strcmp(s, t[i].n) == 0)
                        return t[i].v;
        return -1;
}

int cmd_disk_add(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = {
                { "size", required_argument, NULL, 's' }, { "image", required_argument, NULL, 'i' },
                { "bus", required_argument, NULL, 'b' },  { "name", required_argument, NULL, 'n' },
                { "encrypt", no_argument, NULL, 'e' },    { "key-file", required_argument, NULL, 'k' }, { 0 } };
        struct store_disk_add o = { 0 };
        bool encrypt = false;
        for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
                unsigned long long v;
                switch (c) {
                case 's':
                        if (parse_size(optarg, &v) < 0 || v == 0)
                                return cli_usage_error(add_usage, "invalid size '%s'; use e.g. 64G or 512M", optarg);
                        o.size = v;
                        break;
                case 'i': o.image = optarg; break;
                case 'n': o.disk = optarg; break;
                case 'e': encrypt = true; break;
                case 'k': o.key_file = optarg; break;
                case 'b':
                        if ((o.bus = bus_from_name(optarg)) < 0)
                                return cli_usage_error(add_usage, "invalid bus '%s'; use virtio, scsi, sata or nvme", optarg);
                        break;
                default: return cli_usage_error(add_usage, "unknown option for 'disk add'");
                }
        }
        if (optind + 1 != argc)
                return cli_usage_error(add_usage, "expected one VM name");
        if (!!o.size == !!o.image)
                return cli_usage_error(add_usage, "give either --size or --image");
        if (o.key_file && !encrypt)
                return cli_usage_error(add_usage, "--key-file goes with --encrypt");
        const char *home;
        if (cli_home(ctx, &home) < 0)
                return 1;
        phy_error err = { 0 };
        _cleanup_free_ char *disk = NULL, *tmpkey = NULL;
        bool pending = false;
        if (encrypt && !o.key_file) {
                /* A typed passphrase ([disk] key = prompt): asked again at each start. */
                char pass[512];
                int r = cli_new_passphrase(o.disk ? o.disk : "(new)", argv[optind], pass, sizeof pass);
                if (r < 0) {
                        phy_error_set_kind(&err, r == -EINVAL ? PHY_ERR_USAGE : PHY_ERR_NONE, -r, r == -EINVAL ? "the two passphrases differ; nothing was changed"
                                      : r == -ENOTTY ? "--encrypt without --key-file asks for a passphrase on the "
                                      "terminal, and there is none; give --key-file FILE (a file only you can read, "
                                      "e.g. made with: head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE)"
                                      : "no passphrase was typed; nothing was changed");
                        return cli_fail(&err);
                }
                _cleanup_close_ int kfd = -1;
                if (asprintf(&tmpkey, "%s/.#key.XXXXXX", home) < 0 || (kfd = mkostemp(tmpkey, O_CLOEXEC)) < 0 ||
                    write(kfd, pass, strlen(pass)) != (ssize_t) strlen(pass)) {
                        explicit_bzero(pass, sizeof pass);
                        phy_error_set(&err, errno ? errno : EIO, "cannot keep the passphrase for qemu-img in %s: %s",
                                      home, strerror(errno ? errno : EIO));
                        if (kfd >= 0)
                                unlink(tmpkey);
                        return cli_fail(&err);
                }
                explicit_bzero(pass, sizeof pass);
                o.key_file = tmpkey;
                o.key_prompt = true;
        }
        int r = store_disk_add(home, argv[optind], &o, NULL, &disk, &pending, &err);
        if (tmpkey)
                unlink(tmpkey);
        if (r < 0)
                return cli_fail(&err);
        printf("added disk '%s' to VM '%s'%s\n", disk, argv[optind],
               pending ? " (the running VM sees it after its next start)" : "");
        return 0;
}

int cmd_disk_list(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
        bool json = false;
        for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
                if (c != 'j')
                        return cli_usage_error(list_usage, "unknown option for 'disk list'");
                json = true;
        }
        if (optind + 1 != argc)
                return cli_usage_error(list_usage, "expected one VM name");
        const char *home;
        if (cli_home(ctx, &home) < 0)
                return 1;
        phy_error err = { 0 };
        json_object *a = NULL;
        if (store_disk_list(home, argv[optind], NULL, &a, &err) < 0)
                return cli_fail(&err);
        if (json) {
                cli_print_json(a);
                return 0;
        }
        printf("%-12s %-7s %-6s %8s %8s  %s\n", "DISK", "BUS", "FORMAT", "SIZE", "ON DISK", "PATH");
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *o = json_object_array_get_idx(a, i), *v;
                char vs[32], as[32];
                json_object_object_get_ex(o, "virtual-size", &v);
                format_size((unsigned long long) json_object_get_int64(v), vs, sizeof vs);
                json_object_object_get_ex(o, "actual-size", &v);
                /* Usage is rarely an exact unit: show MiB. */
                snprintf(as, sizeof as, "%.1fM", (double) json_object_get_int64(v) / (1024.0 * 1024.0));
                json_object *name, *bus, *fmt, *path, *back;
                json_object_object_get_ex(o, "name", &name);
                json_object_object_get_ex(o, "bus", &bus);
                json_object_object_get_ex(o, "format", &fmt);
                json_object_object_get_ex(o, "path", &path);
                json_object_object_get_ex(o, "backing", &back);
                printf("%-12s %-7s %-6s %8s %8s  %s%s%s\n", json_object_get_string(name), json_object_get_string(bus),
                       json_object_get_string(fmt), vs, as, json_object_get_string(path), back ? " <- " : "",
                       back ? json_object_get_string(back) : "");
        }
        json_object_put(a);
        return 0;
}

int cmd_disk_resize(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "shrink", no_argument, NULL, 's' }, { 0 } };
        bool shrink = false;
        for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
                if (c != 's')
                        return cli_usage_error(resize_usage, "unknown option for 'disk resize'");
                shrink = true;
        }
        if (optind + 3 != argc)
                return cli_usage_error(resize_usage, "expected a VM name, a disk name and a size");
        unsigned long long size;
        if (parse_size(argv[optind + 2], &size) < 0 || size == 0)
                return cli_usage_error(resize_usage, "invalid size '%s'; use e.g. 64G", argv[optind + 2]);
        const char *home;
        if (cli_home(ctx, &home) < 0)
                return 1;
        phy_error err = { 0 };
        bool keys = false;
        int r = cli_keys_unlock(ctx, argv[optind], false, &keys);
        if (r)
                return r;
        r = store_disk_resize(home, argv[optind], argv[optind + 1], size, shrink, NULL, &err);
        if (keys)
                cli_keys_forget(ctx, argv[optind]);
        if (r < 0)
                return cli_fail(&err);
        printf("disk '%s' of VM '%s' is now %s\n", argv[optind + 1], argv[optind], argv[optind + 2]);
        return 0;
}

int cmd_disk_remove(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "keep-file", no_argument, NULL, 'k' }, { 0 } };
        bool keep = false;
        for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
                if (c != 'k')
                        return cli_usage_error(remove_usage, "unknown option for 'disk remove'");
                keep = true;
        }
        if (optind + 2 != argc)
                return cli_usage_error(remove_usage, "expected a VM name and a disk name");
        const char *home;
        if (cli_home(ctx, &home) < 0)
                return 1;
        phy_error err = { 0 };
        if (store_disk_remove(home, argv[optind], argv[optind + 1], keep, &err) < 0)
                return cli_fail(&err);
        printf("removed disk '%s' from VM '%s'\n", argv[optind + 1], argv[optind]);
        return 0;
}

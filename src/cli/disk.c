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
#include "vm/vm.h"


int cmd_disk_add(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = {
                { "size", required_argument, NULL, 's' }, { "image", required_argument, NULL, 'i' },
                { "bus", required_argument, NULL, 'b' },  { "name", required_argument, NULL, 'n' },
                { "encrypt", no_argument, NULL, 'e' },    { "key-file", required_argument, NULL, 'k' }, { 0 } };
        _cleanup_json_ json_object *b = json_object_new_object();
        _cleanup_free_ char *image = NULL, *key = NULL, *tmpkey = NULL;
        const char *disk = NULL;
        bool encrypt = false;
        unsigned long long size = 0;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                switch (c) {
                case 's':
                        if (parse_size_unit(optarg, SIZE_GIB, &size) < 0 || size == 0)
                                return cli_usage_error(cli_usage(), "invalid size '%s'; use e.g. 64G or 512M (a bare "
                                                       "number is GiB)", optarg);
                        json_object_object_add(b, "size", json_object_new_int64((int64_t) size));
                        break;
                case 'i': free(image); image = cli_abs_path(optarg); break;
                case 'n': disk = optarg; json_object_object_add(b, "name", json_object_new_string(optarg)); break;
                case 'e': encrypt = true; break;
                case 'k': free(key); key = cli_abs_path(optarg); break;
                case 'b': json_object_object_add(b, "bus", json_object_new_string(optarg)); break;
                default: return cli_usage_error(cli_usage(), "unknown option for 'disk add'");
                }
        }
        if (optind + 1 != argc)
                return cli_usage_error(cli_usage(), "expected one VM name");
        if (!!size == !!image)
                return cli_usage_error(cli_usage(), "give either --size or --image");
        if (key && !encrypt)
                return cli_usage_error(cli_usage(), "--key-file goes with --encrypt");
        const char *home, *name = argv[optind];
        int st = cli_name_arg(name);
        if (st || cli_home(ctx, &home) < 0)
                return st ? st : 1;
        phy_error err = { 0 };
        if (encrypt && !key) {
                /* A typed passphrase ([disk] key = prompt): asked again at each start. */
                char pass[512];
                int r = cli_new_passphrase(disk ? disk : "(new)", name, pass, sizeof pass);
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
                json_object_object_add(b, "key_file", json_object_new_string(tmpkey));
                json_object_object_add(b, "key_prompt", json_object_new_boolean(true));
        } else if (key)
                json_object_object_add(b, "key_file", json_object_new_string(key));
        if (image)
                json_object_object_add(b, "image", json_object_new_string(image));
        json_object *o = NULL;
        st = cli_call(ctx, "POST", json_object_get(b), &o, "/v1/vms/%s/disks", name);
        if (tmpkey)
                unlink(tmpkey);
        if (st)
                return st;
        printf("added disk '%s' to VM '%s'%s\n", cli_jstr(o, "disk"), name,
               cli_jbool(o, "pending") ? " (the running VM sees it after its next start)" : "");
        json_object_put(o);
        return 0;
}

int cmd_disk_list(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
        bool json = false;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                if (c != 'j')
                        return cli_usage_error(cli_usage(), "unknown option for 'disk list'");
                json = true;
        }
        if (optind + 1 != argc)
                return cli_usage_error(cli_usage(), "expected one VM name");
        json_object *r = NULL, *a = NULL;
        int st = cli_name_arg(argv[optind]);
        if (st || (st = cli_call(ctx, "GET", NULL, &r, "/v1/vms/%s/disks", argv[optind])))
                return st;
        json_object_object_get_ex(r, "disks", &a);
        a = json_object_get(a);
        json_object_put(r);
        if (json) {
                cli_print_json(a);
                return 0;
        }
        printf("%-12s %-7s %-6s %8s %8s  %s\n", "DISK", "BUS", "FORMAT", "SIZE", "ON DISK", "PATH");
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *o = json_object_array_get_idx(a, i), *back = NULL;
                char vs[32], as[32];
                format_size((unsigned long long) cli_jint(o, "virtual-size"), vs, sizeof vs);
                /* Usage is rarely an exact unit: show MiB. */
                snprintf(as, sizeof as, "%.1fM", (double) cli_jint(o, "actual-size") / (1024.0 * 1024.0));
                json_object_object_get_ex(o, "backing", &back);
                printf("%-12s %-7s %-6s %8s %8s  %s%s%s\n", cli_jstr(o, "name"), cli_jstr(o, "bus"),
                       cli_jstr(o, "format"), vs, as, cli_jstr(o, "path"), back ? " <- " : "",
                       back ? json_object_get_string(back) : "");
        }
        json_object_put(a);
        return 0;
}

int cmd_disk_resize(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "shrink", no_argument, NULL, 's' }, { 0 } };
        bool shrink = false;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                if (c != 's')
                        return cli_usage_error(cli_usage(), "unknown option for 'disk resize'");
                shrink = true;
        }
        if (optind + 3 != argc)
                return cli_usage_error(cli_usage(), "expected a VM name, a disk name and a size");
        unsigned long long size;
        if (parse_size_unit(argv[optind + 2], SIZE_GIB, &size) < 0 || size == 0)
                return cli_usage_error(cli_usage(), "invalid size '%s'; use e.g. 64G (a bare number is GiB)",
                                       argv[optind + 2]);
        const char *name = argv[optind], *disk = argv[optind + 1];
        int st = cli_name_arg(name);
        if (st || (st = cli_word_arg("disk name", disk)))
                return st;
        bool keys = false;
        if ((st = cli_keys_unlock(ctx, name, false, &keys)))
                return st;
        json_object *b = json_object_new_object(), *o = NULL;
        json_object_object_add(b, "size", json_object_new_int64((int64_t) size));
        json_object_object_add(b, "shrink", json_object_new_boolean(shrink));
        st = cli_call(ctx, "POST", b, &o, "/v1/vms/%s/disks/%s/resize", name, disk);
        if (keys)
                cli_keys_forget(ctx, name);
        if (st)
                return st;
        json_object_put(o);
        printf("disk '%s' of VM '%s' is now %s\n", disk, name, argv[optind + 2]);
        return 0;
}

int cmd_disk_remove(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "keep-file", no_argument, NULL, 'k' },
                                              { "yes", no_argument, NULL, 'y' }, { 0 } };
        bool keep = false, yes = false;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                if (c == 'k')
                        keep = true;
                else if (c == 'y')
                        yes = true;
                else
                        return cli_usage_error(cli_usage(), "unknown option for 'disk remove'");
        }
        if (optind + 2 != argc)
                return cli_usage_error(cli_usage(), "expected a VM name and a disk name");
        const char *name = argv[optind], *disk = argv[optind + 1];
        int st = cli_name_arg(name);
        if (st || (st = cli_word_arg("disk name", disk)))
                return st;
        /* Its image goes, with the snapshots inside it: asked first.  A VM or
         * disk that does not exist gets its own answer from the removal. */
        if (!keep && !yes) {
                json_object *l = NULL, *disks = NULL;
                if ((st = cli_call(ctx, "GET", NULL, &l, "/v1/vms/%s/disks", name)))
                        return st;
                json_object_object_get_ex(l, "disks", &disks);
                for (size_t i = 0; disks && i < json_object_array_length(disks); i++) {
                        json_object *d = json_object_array_get_idx(disks, i);
                        if (strcmp(cli_jstr(d, "name"), disk) != 0)
                                continue;
                        st = cli_confirm(false, "remove disk '%s' from VM '%s' and delete its image '%s' with the "
                                         "snapshots in it (--keep-file keeps the image)", disk, name,
                                         cli_jstr(d, "path"));
                        break;
                }
                json_object_put(l);
                if (st)
                        return st;
        }
        json_object *b = json_object_new_object(), *o = NULL;
        json_object_object_add(b, "keep_file", json_object_new_boolean(keep));
        if ((st = cli_call(ctx, "DELETE", b, &o, "/v1/vms/%s/disks/%s", name, disk)))
                return st;
        json_object_put(o);
        printf("removed disk '%s' from VM '%s'\n", disk, name);
        return 0;
}

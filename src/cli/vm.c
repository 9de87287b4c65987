/* SPDX-License-Identifier: MIT */
/* phyllo create, list, show, edit, delete, profiles: the VM definitions. */
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "cleanup.h"
#include "fileio.h"
#include "host/host.h"
#include "net/net.h"
#include "paths.h"
#include "qemu/caps.h"
#include "qemu/tools.h"
#include "vm/profile.h"
#include "run/run.h"
#include "store/store.h"
#include "vm/env.h"
#include "vm/vm.h"
#include "value.h"

/* The model is checked without QEMU's capabilities when they cannot be
 * probed: say so. */
static int env_load(struct cli_ctx *ctx, struct vm_env *e, bool with_caps, phy_error *err) {
        int r = vm_env_load(ctx->root, with_caps, e, err);
        if (r >= 0 && e->warning[0])
                fprintf(stderr, "phyllo: warning: %s; checking the definition without QEMU's capabilities\n",
                        e->warning);
        return r;
}

/* ---- create ------------------------------------------------------------- */

static const char create_usage[] =
        "create NAME --profile P [--cpus N] [--memory SIZE] [--disk SIZE|--no-disk] [--iso PATH] "
        "[--drivers PATH] [--display none|spice|gtk|sdl|vnc] [--gpu none|std|virtio|virgl] "
        "[--kernel PATH [--initrd PATH] [--append ARGS]] [--uefi|--no-uefi] [--net none|user|isolated:NAME|bridge:BR] [--forward tcp:HOSTPORT:GUESTPORT]... [--usb-redirect N] [--force]";

/* Input files are recorded as absolute paths: the VM dir is not the cwd. */
static int absolute_input(const char *what, const char *path, char **ret, phy_error *err) {
        char buf[PATH_MAX];
        if (!realpath(path, buf))
                return phy_error_set(err, errno, "cannot use the %s '%s': %s", what, path, strerror(errno));
        if (!(*ret = strdup(buf)))
                return phy_error_set(err, ENOMEM, "out of memory");
        return 0;
}

static int add_cdrom(struct vm_def *d, const char *name, const char *path, phy_error *err) {
        struct vm_cdrom *c = realloc(d->cdroms, (d->n_cdroms + 1) * sizeof *c);
        if (!c)
                return phy_error_set(err, ENOMEM, "out of memory");
        d->cdroms = c;
        c = &d->cdroms[d->n_cdroms];
        *c = (struct vm_cdrom) { 0 };
        if (!(c->name = strdup(name)))
                return phy_error_set(err, ENOMEM, "out of memory");
        d->n_cdroms++;
        return absolute_input(strcmp(name, "drivers") == 0 ? "driver ISO" : "ISO", path, &c->path, err);
}

int cmd_create(struct cli_ctx *ctx, int argc, char **argv) {
        enum { OPT_PROFILE = 256, OPT_CPUS, OPT_MEMORY, OPT_DISK, OPT_NO_DISK, OPT_ISO, OPT_DRIVERS, OPT_DISPLAY, OPT_GPU,
               OPT_KERNEL, OPT_INITRD, OPT_APPEND, OPT_UEFI, OPT_NO_UEFI, OPT_FORCE, OPT_FORWARD,
               OPT_USB_REDIRECT, OPT_NET };
        static const struct option opts[] = {
                { "profile", required_argument, NULL, OPT_PROFILE },
                { "cpus", required_argument, NULL, OPT_CPUS },
                { "memory", required_argument, NULL, OPT_MEMORY },
                { "disk", required_argument, NULL, OPT_DISK },
                { "no-disk", no_argument, NULL, OPT_NO_DISK },
                { "iso", required_argument, NULL, OPT_ISO },
                { "drivers", required_argument, NULL, OPT_DRIVERS },
                { "display", required_argument, NULL, OPT_DISPLAY },
                { "gpu", required_argument, NULL, OPT_GPU },
                { "kernel", required_argument, NULL, OPT_KERNEL },
                { "initrd", required_argument, NULL, OPT_INITRD },
                { "append", required_argument, NULL, OPT_APPEND },
                { "uefi", no_argument, NULL, OPT_UEFI },
                { "no-uefi", no_argument, NULL, OPT_NO_UEFI },
                { "force", no_argument, NULL, OPT_FORCE },
                { "forward", required_argument, NULL, OPT_FORWARD },
                { "usb-redirect", required_argument, NULL, OPT_USB_REDIRECT },
                { "net", required_argument, NULL, OPT_NET },
                { 0 },
        };
        const char *profile = NULL, *iso = NULL, *drivers = NULL, *kernel = NULL, *initrd = NULL, *append = NULL;
        _cleanup_vm_def_ struct vm_def d = { 0 };
        unsigned long long n;
        uint64_t disk = 0;
        bool no_disk = false, force = false;
        _cleanup_strv_ strv forwards = { 0 };   /* --forward, repeatable (issue 4) */
        const char *net = NULL;                 /* --net: net0's mode */
        const char *allowed;
        int v;

        for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
                switch (c) {
                case OPT_PROFILE: profile = optarg; break;
                case OPT_CPUS:
                        if (parse_uint(optarg, 255, &n) < 0 || n < 1)
                                return cli_usage_error(create_usage, "invalid --cpus '%s'; use a whole number "
                                                       "from 1 to 255", optarg);
                        d.cores = (unsigned) n;
                        d.threads = 1;
                        break;
                case OPT_MEMORY:
                        if (parse_size(optarg, &n) < 0 || n == 0)
                                return cli_usage_error(create_usage, "invalid --memory '%s'; use a number with "
                                                       "K, M, G or T (e.g. 4G)", optarg);
                        d.memory = n;
                        break;
                case OPT_DISK:
                        if (parse_size(optarg, &n) < 0 || n == 0)
                                return cli_usage_error(create_usage, "invalid --disk '%s'; use a number with "
                                                       "K, M, G or T (e.g. 64G)", optarg);
                        disk = n;
                        break;
                case OPT_NO_DISK: no_disk = true; break;
                case OPT_ISO: iso = optarg; break;
                case OPT_DRIVERS: drivers = optarg; break;
                case OPT_DISPLAY:
                        if ((v = vm_display_from_name(optarg, &allowed)) < 0)
                                return cli_usage_error(create_usage, "invalid --display '%s'; allowed: %s",
                                                       optarg, allowed);
                        d.display = (enum vm_display) v;
                        break;
                case OPT_GPU:
                        if ((v = vm_gpu_from_name(optarg, &allowed)) < 0)
                                return cli_usage_error(create_usage, "invalid --gpu '%s'; allowed: %s",
                                                       optarg, allowed);
                        d.gpu = (enum vm_gpu) v;
                        break;
                case OPT_KERNEL: kernel = optarg; break;
                case OPT_INITRD: initrd = optarg; break;
                case OPT_APPEND: append = optarg; break;
                case OPT_UEFI: d.firmware = VM_FW_UEFI; break;
                case OPT_NO_UEFI: d.firmware = VM_FW_BIOS; break;
                case OPT_FORCE: force = true; break;
                case OPT_FORWARD:
                        if (value_forward_parse(optarg, NULL) < 0)
                                return cli_usage_error(create_usage, "invalid --forward '%s'; use "
                                                       "tcp|udp:[ADDRESS:]HOSTPORT:GUESTPORT (e.g. tcp:2222:22)", optarg);
                        if (!strv_contains(&forwards, optarg) && strv_push(&forwards, optarg) < 0)
                                return cli_usage_error(create_usage, "out of memory");
                        break;
                case OPT_NET: net = optarg; break;
                case OPT_USB_REDIRECT: {
                        unsigned long long channels;
                        if (parse_uint(optarg, VM_USB_REDIRECT_MAX, &channels) < 0)
                                return cli_usage_error(create_usage, "invalid --usb-redirect '%s'; use 0 to %u "
                                                       "(USB redirection channels over SPICE)", optarg,
                                                       VM_USB_REDIRECT_MAX);
                        d.usb_redirect = (unsigned) channels;
                        d.usb_redirect_set = true;
                        break;
                }
                default: return cli_usage_error(create_usage, "unknown option for 'create'");
                }
        }
        if (optind + 1 != argc)
                return cli_usage_error(create_usage, optind + 1 > argc ? "missing the VM name"
                                                                        : "more than one VM name given");
        const char *name = argv[optind];
        if (!vm_name_valid(name))
                return cli_usage_error(create_usage, "invalid VM name '%s'; use 1 to 64 of A-Z a-z 0-9 . _ -", name);
        if (!profile)
                return cli_usage_error(create_usage, "--profile is required; one of: %s", vm_profile_names());
        const struct vm_profile *prof = vm_profile_find(profile);
        if (!prof)
                return cli_usage_error(create_usage, "unknown profile '%s'; use one of: %s", profile,
                                       vm_profile_names());
        if (no_disk && disk)
                return cli_usage_error(create_usage, "--disk and --no-disk contradict each other");
        if ((initrd || append) && !kernel)
                return cli_usage_error(create_usage, "--initrd and --append need --kernel");

        phy_error err = { 0 };
        snprintf(d.name, sizeof d.name, "%s", name);
        if (!(d.profile = strdup(prof->name))) {
                phy_error_set(&err, ENOMEM, "out of memory");
                return cli_fail(&err);
        }
        if (!no_disk) {
                /* The system disk: path and size recorded, since the image is made now. */
                if (!(d.disks = calloc(1, sizeof *d.disks)) || !(d.disks[0].name = strdup("system")) ||
                    !(d.disks[0].path = strdup("disk-system.qcow2"))) {
                        phy_error_set(&err, ENOMEM, "out of memory");
                        d.n_disks = d.disks ? 1 : 0;
                        return cli_fail(&err);
                }
                d.n_disks = 1;
                d.disks[0].size = disk ? disk : prof->disk_size;
        }
        if ((iso && add_cdrom(&d, "install", iso, &err) < 0) || (drivers && add_cdrom(&d, "drivers", drivers, &err) < 0))
                return cli_fail(&err);
        if ((kernel && absolute_input("kernel", kernel, &d.kernel, &err) < 0) ||
            (initrd && absolute_input("initrd", initrd, &d.initrd, &err) < 0))
                return cli_fail(&err);
        if (append && !(d.append = strdup(append))) {
                phy_error_set(&err, ENOMEM, "out of memory");
                return cli_fail(&err);
        }
        if (!(d.nics = calloc(1, sizeof *d.nics)) || !(d.nics[0].name = strdup("net0"))) {
                phy_error_set(&err, ENOMEM, "out of memory");
                d.n_nics = d.nics ? 1 : 0;
                return cli_fail(&err);
        }
        d.n_nics = 1;
        d.nics[0].forwards = forwards;
        forwards = (strv) { 0 };
        if (net && vm_nic_mode_parse(net, &d.nics[0], &err) < 0)
                return cli_usage_error(create_usage, "%s", err.message);
        if (vm_def_make_identity(&d, &err) < 0)
                return cli_fail(&err);

        const char *home;
        if (cli_home(ctx, &home) < 0)
                return 1;
        struct vm_env e = { 0 };
        int r = env_load(ctx, &e, true, &err);
        if (r >= 0)
                r = vm_create(home, &d, &e.host, vm_env_caps(&e), e.tools.qemu_img, force, &err);
        if (r >= 0) {
                _cleanup_vm_def_ struct vm_def m = { 0 };
                if (vm_model_resolve(&d, &e.host, vm_env_caps(&e), &m, &err) >= 0) {
                        char mem[32], dsk[48] = "no disk";
                        format_size(m.memory, mem, sizeof mem);
                        if (m.n_disks) {
                                char s[32];
                                format_size(m.disks[0].size, s, sizeof s);
                                snprintf(dsk, sizeof dsk, "%s disk", s);
                        }
                        printf("created VM '%s' (profile %s: %u vCPU%s, %s memory, %s) in %s/vms/%s\n",
                               name, prof->name, m.cores * m.threads, m.cores * m.threads == 1 ? "" : "s", mem, dsk, home, name);
                }
        }
        vm_env_done(&e);
        return r < 0 ? cli_fail(&err) : 0;
}

/* ---- list, show --------------------------------------------------------- */

static const char list_usage[] = "list [--json]";

static bool json_flag(int argc, char **argv, const char *usage, int *ret_status) {
        static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
        bool json = false;
        *ret_status = 0;
        for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
                if (c == 'j')
                        json = true;
                else
                        *ret_status = cli_usage_error(usage, "unknown option");
        }
        return json;
}

int cmd_list(struct cli_ctx *ctx, int argc, char **argv) {
        int st;
        bool json = json_flag(argc, argv, list_usage, &st);
        if (st)
                return st;
        if (optind < argc)
                return cli_usage_error(list_usage, "unexpected argument '%s'", argv[optind]);
        /* GET /v1/vms through phyllod or directly (src/cli/api.c). */
        json_object *reply = NULL, *vms = NULL;
        int r = cli_api_call(ctx, "GET", "/v1/vms", NULL, &reply);
        if (r)
                return r;
        if (!json_object_object_get_ex(reply, "vms", &vms) || !json_object_is_type(vms, json_type_array)) {
                json_object_put(reply);
                phy_error err = { 0 };
                phy_error_set(&err, EPROTO, "the VM list has no 'vms' array");
                return cli_fail(&err);
        }
        if (!json)
                printf("%-24s %-10s %5s %8s  %s\n", "NAME", "PROFILE", "CPUS", "MEMORY", "STATE");
        for (size_t i = 0; i < json_object_array_length(vms); i++) {
                json_object *o = json_object_array_get_idx(vms, i), *v = NULL;
                /* A VM whose definition does not load is listed as invalid, its
                 * error on stderr (not in --json's objects). */
                if (json_object_object_get_ex(o, "error", &v)) {
                        fprintf(stderr, "phyllo: %s\n", json_object_get_string(v));
                        json_object_object_del(o, "error");
                }
                if (json)
                        continue;
                char mem[32] = "-", cpus[16] = "-";
                if (json_object_object_get_ex(o, "memory", &v))
                        format_size((uint64_t) json_object_get_int64(v), mem, sizeof mem);
                if (json_object_object_get_ex(o, "cpus", &v))
                        snprintf(cpus, sizeof cpus, "%d", json_object_get_int(v));
                json_object *nm = NULL, *pr = NULL, *stt = NULL;
                json_object_object_get_ex(o, "name", &nm);
                json_object_object_get_ex(o, "state", &stt);
                printf("%-24s %-10s %5s %8s  %s\n", json_object_get_string(nm),
                       json_object_object_get_ex(o, "profile", &pr) ? json_object_get_string(pr) : "-", cpus, mem,
                       json_object_get_string(stt));
        }
        if (json)
                cli_print_json(json_object_get(vms));
        json_object_put(reply);
        return 0;
}

static const char show_usage[] = "show NAME [--json]";

/* Exit status for a VM name given on the command line that is not valid, 0 when valid. */
static int bad_name_arg(const char *name) {
        if (vm_name_valid(name))
                return 0;
        phy_error err = { 0 };
        phy_error_usage(&err, "'%s' is not a valid VM name; use 1 to 64 of A-Z a-z 0-9 . _ -", name);
        return cli_fail(&err);
}

int cmd_show(struct cli_ctx *ctx, int argc, char **argv) {
        int st;
        bool json = json_flag(argc, argv, show_usage, &st);
        if (st)
                return st;
        if (optind + 1 != argc)
                return cli_usage_error(show_usage, "expected one VM name");
        if ((st = bad_name_arg(argv[optind])))
                return st;
        /* GET /v1/vms/NAME through phyllod or directly (src/cli/api.c). */
        char path[128];
        snprintf(path, sizeof path, "/v1/vms/%s", argv[optind]);
        json_object *reply = NULL, *v = NULL;
        int r = cli_api_call(ctx, "GET", path, NULL, &reply);
        if (r)
                return r;
        if (json) {
                if (json_object_object_get_ex(reply, "model", &v))
                        cli_print_json(json_object_get(v));
        } else if (json_object_object_get_ex(reply, "model_text", &v))
                fputs(json_object_get_string(v), stdout);
        json_object_put(reply);
        return 0;
}

/* ---- edit --------------------------------------------------------------- */

static const char edit_usage[] = "edit NAME";

/* Runs $EDITOR (words split on blanks, no shell) on path; 0 when it exits 0. */
static int run_editor(const char *path, phy_error *err) {
        const char *ed = getenv("EDITOR");
        if (!ed || !*ed)
                ed = "vi";
        _cleanup_free_ char *copy = strdup(ed);
        _cleanup_strv_ strv args = { 0 };
        if (!copy)
                return phy_error_set(err, ENOMEM, "out of memory");
        char *save = NULL;
        for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
                if (strv_push(&args, w) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
        if (args.n == 0 || strv_push(&args, path) < 0)
                return phy_error_usage(err, "$EDITOR is empty");
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
                return phy_error_set(err, errno, "cannot start the editor: %s", strerror(errno));
        if (pid == 0) {
                execvp(args.v[0], args.v);
                _exit(127);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return phy_error_set(err, errno, "cannot wait for the editor: %s", strerror(errno));
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                return phy_error_set(err, ENOENT, "cannot run the editor '%s'; set $EDITOR", args.v[0]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return phy_error_set(err, EIO, "the editor '%s' failed (status %d)", args.v[0],
                                     WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        return 0;
}

int cmd_edit(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { 0 } };
        for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;)
                return cli_usage_error(edit_usage, "unknown option for 'edit'");
        if (optind + 1 != argc)
                return cli_usage_error(edit_usage, "expected one VM name");
        const char *name = argv[optind], *home;
        if (cli_home(ctx, &home) < 0)
                return 1;
        phy_error err = { 0 };
        _cleanup_vm_def_ struct vm_def cur = { 0 };
        if (vm_load_by_name(home, name, &cur, &err) < 0)
                return cli_fail(&err);
        _cleanup_free_ char *conf = vm_conf_path(home, name), *text = NULL, *tmp = NULL, *edited = NULL;
        if (!conf || asprintf(&tmp, "%s.edit.XXXXXX", conf) < 0) {
                phy_error_set(&err, ENOMEM, "out of memory");
                return cli_fail(&err);
        }
        int r = file_read_all(conf, 1024 * 1024, &text, NULL);
        if (r < 0) {
                phy_error_set(&err, r, "cannot read '%s': %s", conf, strerror(-r));
                return cli_fail(&err);
        }
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                phy_error_set(&err, errno, "cannot create '%s': %s", tmp, strerror(errno));
                return cli_fail(&err);
        }
        size_t len = strlen(text);
        if (write(fd, text, len) != (ssize_t) len) {
                phy_error_set(&err, errno ? errno : EIO, "cannot write '%s'", tmp);
                unlink(tmp);
                return cli_fail(&err);
        }
        if (run_editor(tmp, &err) < 0) {
                unlink(tmp);
                phy_error_prefix(&err, "the definition of '%s' was not changed", name);
                return cli_fail(&err);
        }
        if ((r = file_read_all(tmp, 1024 * 1024, &edited, NULL)) < 0) {
                phy_error_set(&err, r, "cannot read the edited copy '%s': %s", tmp, strerror(-r));
                return cli_fail(&err);
        }
        if (strcmp(edited, text) == 0) {
                unlink(tmp);
                printf("no changes to VM '%s'\n", name);
                return 0;
        }

        /* Checked as a whole before it replaces the original: parse, name, model. */
        _cleanup_vm_def_ struct vm_def d = { 0 }, m = { 0 };
        r = vm_def_parse(tmp, edited, &d, &err);
        if (r >= 0 && d.name[0] && strcmp(d.name, name) != 0)
                r = phy_error_usage(&err, "%s: [vm] name cannot change from '%s' to '%s' here; create a "
                                  "new VM instead", tmp, name, d.name);
        if (r >= 0)
                r = vm_def_check_save(&d, conf, &err);
        if (r >= 0) {
                snprintf(d.name, sizeof d.name, "%s", name);
                struct vm_env e = { 0 };
                r = env_load(ctx, &e, true, &err);
                if (r >= 0)
                        r = vm_model_resolve(&d, &e.host, vm_env_caps(&e), &m, &err);
                vm_env_done(&e);
        }
        /* Saved under the edit lock, and only over the text the editor
         * started from: a change made meanwhile (phyllo net forward add, ...)
         * is not overwritten. */
        _cleanup_close_ int lock = -1;
        _cleanup_free_ char *now = NULL;
        if (r >= 0 && (r = vm_edit_lock(home, name, &lock, &err)) >= 0) {
                if ((r = file_read_all(conf, 1024 * 1024, &now, NULL)) < 0)
                        phy_error_set(&err, r, "cannot read '%s': %s", conf, strerror(-r));
                else if (strcmp(now, text) != 0)
                        r = phy_error_set_kind(&err, PHY_ERR_CONFLICT, EBUSY, "'%s' was changed by someone else "
                                               "while you edited it", conf);
        }
        if (r >= 0)
                r = file_write_atomic(conf, edited, strlen(edited), 0644, &err);
        if (r < 0) {
                int status = cli_fail(&err);
                fprintf(stderr, "phyllo: the definition of '%s' was not changed; your edited copy is %s\n",
                        name, tmp);
                return status == 2 ? 1 : status;
        }
        unlink(tmp);
        printf("saved VM '%s'\n", name);
        return 0;
}

/* ---- delete, profiles --------------------------------------------------- */

static const char delete_usage[] = "delete NAME [--force]";

int cmd_delete(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "force", no_argument, NULL, 'f' }, { 0 } };
        bool force = false;
        for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
                if (c != 'f')
                        return cli_usage_error(delete_usage, "unknown option for 'delete'");
                force = true;
        }
        if (optind + 1 != argc)
                return cli_usage_error(delete_usage, "expected one VM name");
        int st = bad_name_arg(argv[optind]);
        if (st)
                return st;
        /* DELETE /v1/vms/NAME through phyllod or directly (src/cli/api.c);
         * linked clones reading its frozen disks protect it (src/store/clone.c). */
        char path[128];
        snprintf(path, sizeof path, "/v1/vms/%s", argv[optind]);
        json_object *body = json_object_new_object(), *reply = NULL;
        if (force)
                json_object_object_add(body, "force", json_object_new_boolean(true));
        int r = cli_api_call(ctx, "DELETE", path, body, &reply);
        json_object_put(body);
        if (r)
                return r;
        json_object_put(reply);
        printf("deleted VM '%s'\n", argv[optind]);
        return 0;
}

static const char profiles_usage[] = "profiles [--json]";

int cmd_profiles(struct cli_ctx *ctx, int argc, char **argv) {
        int st;
        bool json = json_flag(argc, argv, profiles_usage, &st);
        if (st)
                return st;
        if (optind < argc)
                return cli_usage_error(profiles_usage, "unexpected argument '%s'", argv[optind]);
        size_t n;
        const struct vm_profile *p = vm_profile_list(&n);
        json_object *arr = json ? json_object_new_array() : NULL;
        if (!json)
                printf("%-10s %4s %6s %5s  %-14s %-8s  %s\n", "PROFILE", "CPUS", "MEMORY", "DISK", "DISK BUS", "NIC",
                       "SUMMARY");
        for (size_t i = 0; i < n; i++) {
                char mem[32], dsk[32], bus[32];
                format_size(p[i].memory, mem, sizeof mem);
                format_size(p[i].disk_size, dsk, sizeof dsk);
                if (p[i].disk_bus == p[i].disk_bus_drivers)
                        snprintf(bus, sizeof bus, "%s", vm_bus_name(p[i].disk_bus));
                else
                        snprintf(bus, sizeof bus, "%s/%s", vm_bus_name(p[i].disk_bus), vm_bus_name(p[i].disk_bus_drivers));
                if (!json) {
                        printf("%-10s %4u %6s %5s  %-14s %-8s  %s\n", p[i].name, p[i].cores, mem, dsk, bus,
                               vm_nic_model_name(p[i].nic), p[i].summary);
                        continue;
                }
                json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(p[i].name));
                json_object_object_add(o, "summary", json_object_new_string(p[i].summary));
                json_object_object_add(o, "cpus", json_object_new_int((int) p[i].cores));
                json_object_object_add(o, "memory", json_object_new_int64((int64_t) p[i].memory));
                json_object_object_add(o, "disk_size", json_object_new_int64((int64_t) p[i].disk_size));
                json_object_object_add(o, "disk_bus", json_object_new_string(vm_bus_name(p[i].disk_bus)));
                json_object_object_add(o, "disk_bus_with_drivers",
                                       json_object_new_string(vm_bus_name(p[i].disk_bus_drivers)));
                json_object_object_add(o, "nic", json_object_new_string(vm_nic_model_name(p[i].nic)));
                json_object_object_add(o, "gpu", json_object_new_string(vm_gpu_name(p[i].gpu)));
                json_object_object_add(o, "display", json_object_new_string(vm_display_name(p[i].display)));
                json_object_object_add(o, "tpm", json_object_new_string(vm_tpm_name(p[i].tpm)));
                json_object_object_add(o, "secure_boot", json_object_new_boolean(p[i].secure_boot));
                json_object_array_add(arr, o);
        }
        if (json)
                cli_print_json(arr);
        return 0;
}

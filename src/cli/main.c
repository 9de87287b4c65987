/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cleanup.h"
#include "paths.h"
#include "vm/vm.h"

static int cmd_version(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
        bool json = false;
        (void) ctx;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                if (c != 'j')
                        return cli_usage_error(cli_usage(), "unknown option for 'version'");
                json = true;
        }
        if (optind < argc)
                return cli_usage_error(cli_usage(), "unexpected argument '%s'", argv[optind]);
        if (json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "version", json_object_new_string(PHYLLOME_VERSION));
                cli_print_json(o);
        } else
                puts("phyllo " PHYLLOME_VERSION);
        return 0;
}

static int cmd_help(struct cli_ctx *ctx, int argc, char **argv);

/* The command table: kvmtool/vmctl style.  Keep it sorted by group. */
static const struct cli_cmd commands[] = {
        /* host: src/cli/host.c */
        { "host", "check", cmd_host_check, "host check [--json]",
          "check this host for virtualization: PASS/WARN/FAIL with remedies, tier verdict, host budget" },
        { "host", "devices", cmd_host_devices, "host devices [--json]",
          "list PCI devices with IOMMU groups and whether each can be given to a VM" },
        /* VM definitions: src/cli/vm.c */
        { NULL, "create", cmd_create,
          "create NAME --profile P [--cpus N] [--memory SIZE] [--disk SIZE|--no-disk] [--iso PATH] [--drivers PATH] "
          "[--display none|spice|gtk|sdl|vnc] [--gpu none|std|virtio|virgl] [--kernel PATH [--initrd PATH] "
          "[--append ARGS]] [--uefi|--no-uefi] [--net none|user|isolated:NAME|bridge:BR] [--forward tcp:HOSTPORT:GUESTPORT]... "
          "[--usb-redirect N] [--force] [--os OS [--unverified]] [--unattended --user U --password-file F "
          "[--timezone Z] [--locale L] [--hostname H] [--edition E]] [--json]",
          "define a new VM from a profile (or the catalog's OS, or what osinfo finds on --iso) and create its disk" },
        { NULL, "list", cmd_list, "list [--json]", "list the defined VMs" },
        { NULL, "show", cmd_show, "show NAME [--json]", "print a VM's effective definition, defaults marked" },
        { NULL, "edit", cmd_edit, "edit NAME", "edit a VM's definition in $EDITOR; checked before it is saved" },
        { NULL, "rename", cmd_rename, "rename OLD NEW [--json]",
          "rename a stopped VM: its directory moves with disks, snapshots, UEFI vars and TPM state" },
        { NULL, "delete", cmd_delete, "delete NAME [--force] [--yes]",
          "delete a VM and its files, asking first on a terminal (--yes: do not ask; --force: even with linked "
          "clones, which get their own copy of the data)" },
        { NULL, "profiles", cmd_profiles, "profiles [--json]", "list the profiles and their defaults" },
        /* QEMU: src/cli/qemu.c, src/cli/argv.c */
        { NULL, "argv", cmd_argv, "argv NAME [--json] [--null] [--paused] [--tcg] [--qemu PATH] [--boot-once cdrom]",
          "print the exact QEMU command line of a VM" },
        { NULL, "caps", cmd_caps, "caps [--json] [--qemu PATH] [--refresh]",
          "what the QEMU binary supports, probed over QMP and cached" },
        /* lifecycle: src/cli/run.c */
        { NULL, "start", cmd_start, "start NAME [--console] [--paused] [--boot-once cdrom] [--json]",
          "start a VM (its monitor keeps it running); --paused: CPUs stopped until 'resume' (time to attach "
          "'view' and answer \"press any key to boot from CD\"); --boot-once cdrom: boot from the CD this start" },
        { NULL, "stop", cmd_stop, "stop NAME [--timeout S] [--force] [--mode acpi|agent] [--json]",
          "guest agent or power button, wait (a countdown on a terminal), then SIGTERM, then SIGKILL" },
        { NULL, "kill", cmd_kill, "kill NAME", "end a VM's QEMU at once (SIGKILL)" },
        { NULL, "restart", cmd_restart, "restart NAME [--timeout S]", "stop, then start a VM" },
        { NULL, "pause", cmd_pause, "pause NAME", "stop a VM's CPUs" },
        { NULL, "resume", cmd_resume, "resume NAME", "let a paused VM run again" },
        { NULL, "status", cmd_status, "status NAME [--json] [--repair]",
          "state, pids, exit status and last error of a VM (--repair: clean up after a crash first)" },
        { NULL, "console", cmd_console, "console NAME", "attach to a VM's serial console (Ctrl-] detaches)" },
        { NULL, "logs", cmd_logs, "logs NAME [--follow]", "serial console output and QEMU's messages" },
        { NULL, "view", cmd_view, "view NAME", "open a VM's SPICE display with remote-viewer" },
        { NULL, "wait", cmd_wait, "wait NAME --for stopped|running|paused [--timeout S]", "wait until a VM is in a state" },
        /* storage: src/cli/disk.c */
        { "disk", "add", cmd_disk_add,
          "disk add NAME (--size SIZE [--encrypt [--key-file FILE]] | --image PATH) [--bus virtio|scsi|sata|nvme] "
          "[--name DISK]",
          "add a new qcow2 disk, or attach an image (raw and qcow2 in place, other formats converted)" },
        { "disk", "list", cmd_disk_list, "disk list NAME [--json]", "a VM's disks: format, virtual size, space used, backing file" },
        { "disk", "resize", cmd_disk_resize, "disk resize NAME DISK SIZE [--shrink]", "grow (or shrink) a disk of a stopped VM" },
        { "disk", "remove", cmd_disk_remove, "disk remove NAME DISK [--keep-file] [--yes]",
          "remove a disk from a stopped VM and delete its image (asked first on a terminal; --yes: do not ask)" },
        /* storage: src/cli/snapshot.c */
        { "snapshot", "create", cmd_snapshot_create, "snapshot create NAME SNAP [--json]",
          "snapshot a VM: every disk, the UEFI vars and the TPM state; a running VM's memory too (a live snapshot)" },
        { "snapshot", "list", cmd_snapshot_list, "snapshot list NAME [--json]", "list a VM's snapshots" },
        { "snapshot", "revert", cmd_snapshot_revert, "snapshot revert NAME SNAP [--stop]",
          "bring disks, UEFI vars and TPM state back to a snapshot" },
        { "snapshot", "delete", cmd_snapshot_delete, "snapshot delete NAME SNAP", "delete a snapshot" },
        /* devices: src/cli/device.c */
        { "device", "attach", cmd_device_attach,
          "device attach NAME PCI_ADDR [--with-group] [--rom FILE] [--single-gpu] [--force]",
          "give a PCI device (a GPU with its audio function) to a VM after checking its IOMMU group" },
        { "device", "detach", cmd_device_detach, "device detach NAME PCI_ADDR", "take a PCI device from a VM" },
        { "device", "list", cmd_device_list, "device list NAME [--json]", "list the devices given to a VM" },
        { "device", "mdev-types", cmd_device_mdev_types, "device mdev-types PCI_ADDR [--json]",
          "list the mediated device types a GPU offers" },
        { "device", "mdev-create", cmd_device_mdev_create, "device mdev-create PCI_ADDR TYPE [UUID]",
          "create a mediated device instance; prints its UUID" },
        { "device", "mdev-remove", cmd_device_mdev_remove, "device mdev-remove UUID", "remove a mediated device" },
        { "device", "mdev-attach", cmd_device_mdev_attach, "device mdev-attach NAME UUID [--display]",
          "give a mediated device to a VM (with its display and ramfb)" },
        { "device", "sriov", cmd_device_sriov, "device sriov PCI_ADDR COUNT",
          "set the number of SR-IOV virtual functions; prints their addresses" },
        { "device", "give-back", cmd_device_give_back, "device give-back NAME",
          "give a stopped VM's passed-through devices back to their host drivers" },
        /* install media: src/cli/cdrom.c */
        { "cdrom", "insert", cmd_cdrom_insert, "cdrom insert NAME ISO [--drive DRIVE] [--json]",
          "put an ISO into a VM's CD drive: live while it runs, and in its definition" },
        { "cdrom", "eject", cmd_cdrom_eject, "cdrom eject NAME [--drive DRIVE] [--json]",
          "take the ISO out of a VM's CD drive (live while it runs); the drive stays, empty" },
        { "usb", "attach", cmd_usb_attach, "usb attach NAME VENDOR:PRODUCT|BUS-PORT",
          "give a host USB device to a VM; hot-plugged when it runs" },
        { "usb", "detach", cmd_usb_detach, "usb detach NAME VENDOR:PRODUCT|BUS-PORT",
          "take a USB device from a VM; unplugged when it runs" },
        /* networking and shared folders: src/cli/net.c, src/cli/share.c */
        { "net", "forward", cmd_net_forward, "net forward add|remove NAME [NIC] SPEC | net forward list NAME [--json]",
          "add or remove a port forward (tcp:[ADDR:]HOSTPORT:GUESTPORT, loopback by default); live on slirp" },
        { "net", "nic", cmd_net_nic, "net nic add NAME NIC [--model virtio|e1000e|rtl8139] [--mode none|user|isolated:NAME|bridge:BR] | "
          "net nic remove NAME NIC",
          "add or remove a network card; hot-plugged when the VM runs" },
        { "share", "add", cmd_share_add, "share add NAME HOSTDIR TAG [--readonly] [--type virtiofs|9p]",
          "share a host directory with a VM (applies at its next start)" },
        { "share", "remove", cmd_share_remove, "share remove NAME TAG", "stop sharing a directory with a VM" },
        { "share", "list", cmd_share_list, "share list NAME [--json]", "list a VM's shared directories" },
        /* storage: src/cli/clone.c */
        { NULL, "clone", cmd_clone, "clone SRC DST [--full] [--tpm fresh|copy] [--json]",
          "copy a stopped VM with a new identity: linked (instant, thin) or --full" },
        /* storage: src/cli/bundle.c */
        { NULL, "export", cmd_export,
          "export NAME FILE|- [--yes] | export NAME --format libvirt DIR [--target PATH] [--json]",
          "write a stopped VM (definition, disks, UEFI vars, TPM state) as one tar+zstd bundle (over an existing "
          "FILE: asked first on a terminal, --yes: do not ask), or as a libvirt domain with its files in "
          "/var/lib/libvirt's layout" },
        { NULL, "import", cmd_import, "import FILE|- [--name NEW] [--trust] [--json]",
          "create a VM from a bundle; every member is checked before the VM appears" },
        /* moving VMs in: src/cli/interop.c (docs/interop.md) */
        { NULL, "import-libvirt", cmd_import_libvirt,
          "import-libvirt FILE.xml | --from URI DOMAIN [--name NEW] [--profile P] [--reference] [--tpm-state DIR] "
          "[--json]",
          "create a VM from a libvirt domain (virt-manager's, virsh dumpxml's); reports what it did not map" },
        { NULL, "import-quickemu", cmd_import_quickemu,
          "import-quickemu FILE.conf [--name NEW] [--profile P] [--reference] [--json]",
          "create a VM from a quickemu configuration, its disk, UEFI vars and TPM state" },
        { NULL, "import-ova", cmd_import_ova, "import-ova FILE.ova|FILE.ovf [--name NEW] [--profile P] [--no-manifest] "
          "[--json]",
          "create a VM from a VirtualBox/VMware appliance: manifest checked, VMDKs converted" },
        /* storage: src/cli/migrate.c */
        { NULL, "migrate", cmd_migrate, "migrate NAME DEST_HOME [--address IPV4] [--max-bandwidth SIZE] [--timeout S]",
          "move a running VM to another Phyllome home: disks mirrored over NBD, then a live migration" },
        /* the OS catalog: src/cli/catalog.c */
        { "catalog", "list", cmd_catalog_list, "catalog list [--json] [--catalog FILE]",
          "the OSes Phyllome recommends and how each download is verified" },
        { "catalog", "search", cmd_catalog_search, "catalog search WORD [--json] [--catalog FILE]",
          "the catalog's OSes whose id, name or osinfo id contains WORD" },
        { "catalog", "show", cmd_catalog_show, "catalog show OS [--json] [--catalog FILE]",
          "an OS: download, signature, key, osinfo facts and the VM create would make" },
        { "catalog", "verify", cmd_catalog_verify, "catalog verify FILE [--json] [--catalog FILE]",
          "check a file against the hashes the catalog knows (vendor-signed checksum files, published hashes)" },
        { "catalog", "identify", cmd_catalog_identify, "catalog identify FILE [--json] [--catalog FILE]",
          "the OS an install ISO holds (libosinfo's media detection) and the VM create --iso would make" },
        { "catalog", "unattend", cmd_catalog_unattend,
          "catalog unattend OS --user U --password-file F --out DIR [--timezone Z] [--locale L] [--hostname H] "
          "[--edition E] [--drivers] [--initrd FILE] [--iso FILE --install-json] [--json] [--catalog FILE]",
          "write the answer file for an unattended install: osinfo's script (preseed into --initrd) or Phyllome's "
          "autounattend.xml on a small ISO" },
        { NULL, "download", cmd_download, "download OS [--to DIR] [--unverified] [--json] [--catalog FILE]",
          "download an OS's install media into the cache, resumable, verified with the vendor's signature" },
        { NULL, "version", cmd_version, "version [--json]", "print the version" },
        { NULL, "help", cmd_help, "help [COMMAND [VERB]]", "this list, or the usage of one command or group" },
};

/* The command being run: its usage line is the one every message shows. */
static const struct cli_cmd *current;
/* `phyllo help --options COMMAND`: the handler's first cli_getopt prints
 * the options its parser takes and ends the process (the usage test). */
static bool list_options;

const char *cli_usage(void) {
        return current ? current->usage : "COMMAND [ARGS...]";
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *opts) {
        if (list_options) {
                json_object *a = json_object_new_array();
                for (const struct option *o = opts; o && o->name; o++) {
                        json_object *x = json_object_new_object();
                        json_object_object_add(x, "name", json_object_new_string(o->name));
                        json_object_object_add(x, "argument", json_object_new_boolean(o->has_arg != no_argument));
                        json_object_array_add(a, x);
                }
                cli_print_json(a);
                exit(0);
        }
        return getopt_long(argc, argv, shortopts, opts, NULL);
}

int cli_json_operands(int argc, char **argv, int n, bool *json) {
        static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
        *json = false;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                if (c != 'j')
                        return cli_usage_error(cli_usage(), "unknown option '%s'", argv[optind - 1]);
                *json = true;
        }
        if (argc - optind < n)
                return cli_usage_error(cli_usage(), n == 1 ? "expected one operand" : "expected %d operands", n);
        if (argc - optind > n)
                return cli_usage_error(cli_usage(), "unexpected argument '%s'", argv[optind + n]);
        return 0;
}

void cli_print_warnings(json_object *o) {
        json_object *w = NULL;
        json_object_object_get_ex(o, "warnings", &w);
        for (size_t i = 0; w && i < json_object_array_length(w); i++)
                fprintf(stderr, "phyllo: warning: %s\n", json_object_get_string(json_object_array_get_idx(w, i)));
}

int cli_confirm(bool yes, const char *fmt, ...) {
        if (yes)
                return 0;
        char what[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        /* Only a person at a terminal is asked; a script says --yes. */
        if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO)) {
                fprintf(stderr, "phyllo: this would %s; there is no terminal to ask on, so nothing was done: "
                        "add --yes to go ahead\n", what);
                return 2;
        }
        fprintf(stderr, "This will %s.  Go ahead? [y/N] ", what);
        char line[64];
        if (!fgets(line, sizeof line, stdin))
                line[0] = '\0';
        if (strcmp(line, "y\n") == 0 || strcmp(line, "Y\n") == 0 || strcmp(line, "yes\n") == 0)
                return 0;
        fputs("phyllo: nothing was done\n", stderr);
        return 1;
}

int cli_fail(const phy_error *e) {
        fprintf(stderr, "phyllo: %s\n", phy_error_message(e));
        return phy_error_exit_status(e);
}

int cli_usage_error(const char *usage, const char *fmt, ...) {
        va_list ap;
        fputs("phyllo: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nusage: phyllo %s\n", usage);
        return 2;
}

int cli_home(struct cli_ctx *ctx, const char **ret) {
        if (!ctx->home) {
                phy_error err = { 0 };
                if (phy_home(&ctx->home, &err) < 0) {
                        cli_fail(&err);
                        return -1;
                }
        }
        *ret = ctx->home;
        return 0;
}

void cli_print_json(json_object *o) {
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
}

bool cli_wants_help(int argc, char **argv, const char *usage, const char *summary) {
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--") == 0)
                        break;
                if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        printf("usage: phyllo %s\n\n%s\n", usage, summary);
                        return true;
                }
        }
        return false;
}

static const char *cmd_head(const struct cli_cmd *c, char *buf, size_t len) {
        snprintf(buf, len, "%s%s%s", c->group ? c->group : "", c->group ? " " : "", c->verb);
        return buf;
}

static void usage(FILE *f) {
        fputs("usage: phyllo [--root DIR] COMMAND [ARGS...]\n\n"
              "Phyllome: run Windows, Linux and the BSDs in KVM/QEMU virtual machines.\n\n"
              "Commands:\n", f);
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                char head[64];
                fprintf(f, "  %-20s %s\n", cmd_head(&commands[i], head, sizeof head), commands[i].summary);
        }
        fputs("\nGlobal options:\n"
              "  --root DIR       read /sys, /proc and /dev below DIR (also $PHYLLOME_ROOT)\n"
              "  --version        print the version\n"
              "  --help           this text; 'phyllo COMMAND --help' for one command\n"
              "\nVMs live under $PHYLLOME_HOME (default $XDG_DATA_HOME/phyllome).\n"
              "See phyllo(1) and phyllome-vm(5).\n", f);
}

static bool is_group(const char *word) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (commands[i].group && strcmp(commands[i].group, word) == 0)
                        return true;
        return false;
}

/* The commands of a group, each with its usage and what it does. */
static void group_usage(FILE *f, const char *group) {
        fprintf(f, "usage: phyllo %s VERB ...\n\n", group);
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (commands[i].group && strcmp(commands[i].group, group) == 0)
                        fprintf(f, "  phyllo %s\n      %s\n", commands[i].usage, commands[i].summary);
}

static const struct cli_cmd *find_cmd(const char *word, const char *verb) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                const struct cli_cmd *c = &commands[i];
                if (c->group ? (strcmp(c->group, word) == 0 && verb && strcmp(c->verb, verb) == 0)
                             : strcmp(c->verb, word) == 0)
                        return c;
        }
        return NULL;
}

/* phyllo help [COMMAND [VERB]]; help --options COMMAND [VERB] lists what
 * the command's parser takes (JSON), which tests compare with its usage. */
static int cmd_help(struct cli_ctx *ctx, int argc, char **argv) {
        bool options = argc > 1 && strcmp(argv[1], "--options") == 0;
        int at = options ? 2 : 1;
        if (at >= argc) {
                if (options)
                        return cli_usage_error(cli_usage(), "--options wants a command");
                usage(stdout);
                return 0;
        }
        if (argc > at + 2)
                return cli_usage_error(cli_usage(), "unexpected argument '%s'", argv[at + 2]);
        const struct cli_cmd *c = find_cmd(argv[at], at + 1 < argc ? argv[at + 1] : NULL);
        if (!c && !options && at + 1 >= argc && is_group(argv[at])) {
                group_usage(stdout, argv[at]);
                return 0;
        }
        if (!c || (!c->group && at + 1 < argc)) {
                fprintf(stderr, "phyllo: no command '%s%s%s'; see 'phyllo help'\n", argv[at], at + 1 < argc ? " " : "",
                        at + 1 < argc ? argv[at + 1] : "");
                return 2;
        }
        if (!options) {
                printf("usage: phyllo %s\n\n%s\n", c->usage, c->summary);
                return 0;
        }
        /* The handler with no operands: its first cli_getopt lists and exits. */
        char *args[2] = { (char *) c->verb, NULL };
        current = c;
        list_options = true;
        optind = 0;
        int r = c->fn(ctx, 1, args);
        /* A handler that parsed no option before failing takes none. */
        (void) r;
        cli_print_json(json_object_new_array());
        return 0;
}


int main(int argc, char **argv) {
        struct cli_ctx ctx = { 0 };
        const char *root = NULL;
        int i = 1;

        /* Global options come before the command. */
        for (; i < argc && argv[i][0] == '-'; i++) {
                if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
                        root = argv[++i];
                else if (strncmp(argv[i], "--root=", 7) == 0)
                        root = argv[i] + 7;
                else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        usage(stdout);
                        return 0;
                } else if (strcmp(argv[i], "--version") == 0) {
                        puts("phyllo " PHYLLOME_VERSION);
                        return 0;
                } else {
                        fprintf(stderr, "phyllo: unknown option '%s'\n", argv[i]);
                        usage(stderr);
                        return 2;
                }
        }
        if (i >= argc) {
                usage(stderr);
                return 2;
        }
        ctx.root = phy_root(root);
        /* Per user: files of definitions under allow-paths or the user's homes. */
        vm_paths_configure(ctx.root, false);

        const char *word = argv[i];
        /* A group alone, or with --help: its commands. */
        if (is_group(word) && (i + 1 >= argc || strcmp(argv[i + 1], "--help") == 0 || strcmp(argv[i + 1], "-h") == 0)) {
                group_usage(i + 1 >= argc ? stderr : stdout, word);
                return i + 1 >= argc ? 2 : 0;
        }
        bool group_seen = false;
        for (size_t c = 0; c < ELEMENTSOF(commands); c++) {
                const struct cli_cmd *cmd = &commands[c];
                int r;
                if (cmd->group) {
                        if (strcmp(cmd->group, word) != 0)
                                continue;
                        group_seen = true;
                        if (i + 1 >= argc || strcmp(argv[i + 1], cmd->verb) != 0)
                                continue;
                        if (cli_wants_help(argc - i - 1, argv + i + 1, cmd->usage, cmd->summary))
                                return 0;
                        current = cmd;
                        optind = 0;
                        r = cmd->fn(&ctx, argc - i - 1, argv + i + 1);
                } else {
                        if (strcmp(cmd->verb, word) != 0)
                                continue;
                        if (cli_wants_help(argc - i, argv + i, cmd->usage, cmd->summary))
                                return 0;
                        current = cmd;
                        optind = 0;
                        r = cmd->fn(&ctx, argc - i, argv + i);
                }
                free(ctx.home);
                return r;
        }
        if (group_seen)
                fprintf(stderr, "phyllo: unknown '%s' command '%s'; see 'phyllo --help'\n", word,
                        i + 1 < argc ? argv[i + 1] : "");
        else
                fprintf(stderr, "phyllo: unknown command '%s'; see 'phyllo --help'\n", word);
        return 2;
}

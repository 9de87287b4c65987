/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The operations layer: every verb of Phyllome written once, over a context
 * (home, root prefix, caller) and a VM handle.  `phyllo` (src/cli) and
 * `phyllod` (src/api) only translate arguments into these calls and their
 * results into text or HTTP; so both say the same things (docs/api.md).
 *
 * Each verb fills *ret with its result as a JSON object (the body phyllod
 * answers with, from which phyllo prints) and returns 0, or returns a
 * negative errno with err set to the sentence both faces show.
 *
 *   vm.c      the handle; create, list, show, set (edit), delete, profiles
 *   run.c     start, stop, kill, restart, pause, resume, wait, status,
 *             logs, console, display
 *   logs.c    logs --follow
 *   store.c   disks, snapshots, clone, export/import, migrate
 *   net.c     port forwards, NICs, shared folders
 *   dev.c     PCI devices, mdev, SR-IOV, give-back, USB
 *   host.c    host check, host devices
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "cleanup.h"
#include "error.h"
#include "strv.h"
#include "vm/vm.h"

struct json_object;
struct vm_env;
struct qmp;

/* Who acts, on what. */
struct ops_ctx {
        const char *root;       /* host root prefix ("/" or a fixture tree) */
        const char *home;       /* Phyllome home */
        uid_t uid;              /* the caller: phyllod's peer, or phyllo itself */
        gid_t gid;
        const gid_t *groups;    /* the caller's supplementary groups (phyllod: SO_PEERGROUPS) */
        size_t n_groups;
        struct ops_env_cache *env_cache;        /* a long-lived caller's (phyllod), or NULL (env-cache.c) */
        bool exits_after;       /* the process ends after its verb (phyllo): see run_start_opts.caller_exits */
};
/* The context of this process acting for itself (phyllo without a daemon). */
struct ops_ctx ops_ctx_self(const char *root, const char *home);

/* ---- host facts and capabilities for read verbs (env-cache.c) ----
 * With c->env_cache, list, show and status share one load for 2 s; without, each
 * call loads its own.  ops_env_put releases what ops_env_get gave. */
struct ops_env_cache;
struct ops_env;
#define OPS_ENV_TTL_USEC (2ull * 1000000ull)
int ops_env_cache_new(uint64_t ttl_usec, struct ops_env_cache **ret);
void ops_env_cache_free(struct ops_env_cache *c);
int ops_env_get(const struct ops_ctx *c, bool with_caps, struct ops_env **ret, phy_error *err);
void ops_env_put(struct ops_env *e);
const struct vm_env *ops_env_of(const struct ops_env *e);

/* ---- list's lines, cached on each vm.conf's stat (summary-cache.c) ----
 * The "vms" array of ops_list: name, profile, cpus, memory (or error), state. */
int ops_list_summaries(const struct ops_ctx *c, struct json_object **ret, phy_error *err);
/* ops_list's result as JSON text ({"vms": [...]} and a newline, as phyllod
 * sends it), written without json-c objects: GET /v1/vms. */
int ops_list_text(const struct ops_ctx *c, char **ret, size_t *ret_len, phy_error *err);

/* ---- the VM handle (vm.c) ---- */

enum ops_access {
        OPS_READ = 0,
        OPS_WRITE,      /* the definition will be saved: the edit lock is taken here */
};

struct ops_vm {
        const struct ops_ctx *ctx;
        const char *name;       /* = def.name */
        struct vm_def def;      /* as written in vm.conf */
        char *conf;             /* <home>/vms/<name>/vm.conf */
        char *run_dir;          /* <home>/run/<name> */
        int lock_fd;            /* the edit lock while OPS_WRITE (-1: none) */
};

/* Checks the name, loads the definition once, computes its paths once; for
 * OPS_WRITE takes the edit lock (held until ops_vm_close). */
int ops_vm_open(const struct ops_ctx *c, const char *name, enum ops_access access, struct ops_vm *ret, phy_error *err);
/* Writes vm->def back to vm->conf atomically (OPS_WRITE handles only). */
int ops_vm_save(struct ops_vm *vm, phy_error *err);
void ops_vm_close(struct ops_vm *vm);
#define _cleanup_ops_vm_ _cleanup_(ops_vm_close)
/* QMP of the VM when it runs or is paused; *ret NULL when it does not. */
int ops_vm_qmp(struct ops_vm *vm, struct qmp **ret, phy_error *err);
bool ops_vm_active(const struct ops_vm *vm);

/* Whether the caller may reach path (every directory above it searchable)
 * and open it for R_OK or W_OK.  Root may; the process itself asks the
 * kernel (faccessat); another caller (a peer of phyllod in system mode) is
 * checked against the mode bits with its uid, gid and groups. */
bool ops_caller_may(const struct ops_ctx *c, const char *path, int mode);
/* A VM name from a caller: -EINVAL with the sentence when not valid. */
int ops_name_check(const char *what, const char *name, phy_error *err);
/* An input file named by a caller, recorded in a definition: it must be an
 * absolute path (phyllo makes relative ones absolute against its own
 * directory; phyllod has no directory of the caller's), exist, and be
 * readable by the caller (phyllod must not lend a file the caller could not
 * read itself).  *ret: the resolved path. */
int ops_input_path(const struct ops_ctx *c, const char *what, const char *path, char **ret, phy_error *err);

/* ---- VM definitions (vm.c) ---- */

/* An unattended install (docs/catalog.md): create saves [install] and starts
 * the install run at once with the answer, which lives in memory and in the
 * run dir only (never in the definition, never on a command line). */
#define OPS_ANSWER_MAX (256u * 1024)
struct ops_install {
        const char *answer_name;        /* the file name the installer looks for: preseed.cfg, autounattend.xml */
        const char *answer;             /* its text */
        size_t answer_len;
        const char *delivery;           /* "initrd" (Linux: the media's kernel booted directly) or "cdrom" (Windows) */
        const char *kernel, *initrd;    /* initrd delivery: their paths inside the media (install.amd/vmlinuz) */
        const char *append;             /* initrd delivery: the kernel's arguments */
};

struct ops_create {
        const char *name, *profile;
        unsigned cpus;                  /* 0: the profile's */
        uint64_t memory;                /* 0: the profile's */
        uint64_t disk;                  /* 0: the profile's */
        bool no_disk, force;
        const char *iso, *drivers, *kernel, *initrd, *append;   /* paths absolute */
        const char *display, *gpu;      /* words, NULL: the profile's */
        int uefi;                       /* -1 unset, 0 BIOS, 1 UEFI */
        const char *net;                /* net0's mode: none, user, isolated:NAME, bridge:BR */
        strv forwards;                  /* net0's forwards */
        int usb_redirect;               /* -1 unset */
        const char *disk_bus, *nic;     /* the system disk's bus, net0's model (words); NULL: the profile's */
        const struct ops_install *install;      /* with iso: install unattended; NULL: no */
};
int ops_create(const struct ops_ctx *c, const struct ops_create *o, struct json_object **ret, phy_error *err);
int ops_list(const struct ops_ctx *c, struct json_object **ret, phy_error *err);
int ops_show(const struct ops_ctx *c, const char *name, struct json_object **ret, phy_error *err);
/* The same as JSON text with a newline (what phyllod sends for GET
 * /v1/vms/NAME); with c->env_cache, the part its definition and the host
 * decide is kept between calls (show-cache.h). */
int ops_show_text(const struct ops_ctx *c, const char *name, char **ret, size_t *ret_len, phy_error *err);
/* Replaces the definition with text after checking it whole (parse, name,
 * model); source names the text in messages (NULL: the VM's vm.conf).
 * With base (the text the edit started from), it is saved only when vm.conf
 * still holds base, under the edit lock: a change made meanwhile (phyllo net
 * forward add, ...) is not overwritten (a conflict error). */
int ops_set_config(const struct ops_ctx *c, const char *name, const char *text, const char *source,
                   const char *base, struct json_object **ret, phy_error *err);
int ops_delete(const struct ops_ctx *c, const char *name, bool force, struct json_object **ret, phy_error *err);
int ops_profiles(struct json_object **ret, phy_error *err);

/* ---- lifecycle (run.c) ---- */

struct ops_action {
        const char *action;     /* start stop kill restart pause resume */
        bool paused, force;
        unsigned timeout;       /* stop, restart: seconds */
        const char *mode;       /* stop: default acpi agent */
        const char *boot_once;  /* start: "cdrom" boots from the CD-ROMs this start (issue 19); NULL: the
                                 * usual order (CDs first until the system disk has a partition table) */
};
int ops_act(const struct ops_ctx *c, const char *name, const struct ops_action *a, struct json_object **ret,
            phy_error *err);
int ops_status(const struct ops_ctx *c, const char *name, struct json_object **ret, phy_error *err);
/* Waits until the VM is stopped, running or paused (timeout_s < 0: no limit). */
int ops_wait(const struct ops_ctx *c, const char *name, const char *state, int timeout_s, struct json_object **ret,
             phy_error *err);
/* {"logs": [{"source": "console"|"qemu", "line": "..."}]}: console.log.1,
 * console.log and qemu.log, in that order. */
int ops_logs(const struct ops_ctx *c, const char *name, struct json_object **ret, phy_error *err);
/* The VM's run dir and its three log files (for a follower). */
int ops_log_paths(const struct ops_ctx *c, const char *name, char **ret_dir, char *ret_paths[3], phy_error *err);
/* logs --follow (logs.c): console.log's and qemu.log's lines as text
 * ("[console] LINE\n", "[qemu] LINE\n"), what they hold first, then what
 * is added.  ops_log_follow_read hands out up to max bytes of what is there
 * (0: nothing new; wait until ops_log_follow_fd, an inotify fd, is readable,
 * then call again).  Nothing here waits on a timer. */
struct ops_log_follow;
int ops_log_follow_open(const struct ops_ctx *c, const char *name, struct ops_log_follow **ret, phy_error *err);
int ops_log_follow_fd(const struct ops_log_follow *f);
ssize_t ops_log_follow_read(struct ops_log_follow *f, char *buf, size_t max, phy_error *err);
void ops_log_follow_free(struct ops_log_follow *f);
DEFINE_CLEANUP_FUNC(struct ops_log_follow, ops_log_follow_free)
/* A connection to the VM's serial console (the monitor relays it). */
int ops_console_open(const struct ops_ctx *c, const char *name, int *ret_fd, phy_error *err);
/* {"spice_socket": PATH, "uri": "spice+unix://PATH"} of a running VM with a
 * SPICE display, after checking the caller may connect to it. */
int ops_display(const struct ops_ctx *c, const char *name, struct json_object **ret, phy_error *err);
/* The VM's screen as QEMU's screendump makes it: {name, format ("png", or
 * "ppm" from a QEMU without PNG), size, data (base64)}. */
#define OPS_SCREENSHOT_MAX (64ll << 20)
int ops_screenshot(const struct ops_ctx *c, const char *name, struct json_object **ret, phy_error *err);
/* {"name", "accel": "kvm"|"tcg", "argv": [...], "warnings": [...]}: the QEMU
 * command line a start would run (the fds a start passes aside). */
struct ops_argv_opts {
        bool paused, tcg;
        const char *boot_once;  /* as ops_action's */
        const char *qemu;       /* a binary to use instead of the one found (the API's own process only) */
};
int ops_argv(const struct ops_ctx *c, const char *name, const struct ops_argv_opts *o, struct json_object **ret,
             phy_error *err);

/* ---- install media and renames (cdrom.c, rename.c; issue 19) ---- */

/* Puts the ISO at path (absolute; the checks a [cdrom] path gets: the
 * caller may read it, allow-paths) into VM name's CD drive `drive` (NULL:
 * its first; a VM without one gets [cdrom install]), in the definition and,
 * while the VM runs, live: phyllo opens the file and hands QEMU the fd
 * (add-fd), then the drive's medium is swapped (blockdev-open-tray,
 * -remove-medium, -insert-medium, -close-tray).  {name, drive, path, live,
 * pending}: pending when the VM runs but has no such drive yet (a new
 * drive appears at its next start). */
int ops_cdrom_insert(const struct ops_ctx *c, const char *name, const char *drive, const char *path,
                     struct json_object **ret, phy_error *err);
/* Empties the drive: the definition keeps [cdrom NAME] without a path, a
 * running VM's drive is emptied live.  {name, drive, ejected (the path or
 * null), live}. */
int ops_cdrom_eject(const struct ops_ctx *c, const char *name, const char *drive, struct json_object **ret,
                    phy_error *err);
/* start/argv --boot-once: NULL (false), or "cdrom" for a VM with a CD-ROM
 * holding media (true); anything else a usage error. */
int ops_boot_once_check(const struct ops_ctx *c, const char *name, const char *boot_once, bool *ret_cdrom,
                        phy_error *err);
/* Renames the stopped VM old to new (docs/lifecycle.md): refused while it
 * runs or starts (its run lock held throughout); its directory moves with
 * renameat2(RENAME_NOREPLACE), so its disks, snapshots, UEFI vars and TPM
 * state follow; vm.conf gets the new name (paths inside the old directory
 * made relative); qcow2 backing files named by absolute path in the old
 * directory (its own frozen bases, its linked clones' overlays) are
 * rewritten (qemu-img rebase -u), which needs those clones stopped; its
 * run dir (logs, last state) follows.  {name, old_name}. */
int ops_rename(const struct ops_ctx *c, const char *old_name, const char *new_name, struct json_object **ret,
               phy_error *err);

/* ---- storage (store.c) ---- */

struct ops_disk_add {
        uint64_t size;
        const char *image;      /* absolute */
        const char *bus;        /* virtio scsi sata nvme, NULL: the profile's */
        const char *disk;       /* its name, NULL: made up */
        const char *key_file;   /* absolute; with key_prompt a passphrase typed by the caller */
        bool key_prompt;
};
int ops_disk_list(const struct ops_ctx *c, const char *name, struct json_object **ret, phy_error *err);
int ops_disk_add(const struct ops_ctx *c, const char *name, const struct ops_disk_add *o, struct json_object **ret,
                 phy_error *err);
int ops_disk_resize(const struct ops_ctx *c, const char *name, const char *disk, uint64_t size, bool shrink,
                    struct json_object **ret, phy_error *err);
int ops_disk_remove(const struct ops_ctx *c, const char *name, const char *disk, bool keep_file,
                    struct json_object **ret, phy_error *err);
/* Encrypted disks whose passphrase is typed ([disk] key = prompt): ask
 * (the caller's terminal) for each that VM name's next command needs, kept
 * in its run dir for that command (phyllod's too); how many were asked for.
 * Nothing while the VM runs unless even_running; nothing for a VM that does
 * not exist (the command says so).  forget removes them. */
typedef int (*ops_ask_fn)(const char *disk, char *buf, size_t len, void *userdata);
int ops_keys_unlock(const struct ops_ctx *c, const char *name, bool even_running, ops_ask_fn ask, void *userdata,
                    phy_error *err);
void ops_keys_forget(const struct ops_ctx *c, const char *name);
int ops_snapshot_list(const struct ops_ctx *c, const char *name, struct json_object **ret, phy_error *err);
int ops_snapshot_create(const struct ops_ctx *c, const char *name, const char *snap, struct json_object **ret,
                        phy_error *err);
int ops_snapshot_revert(const struct ops_ctx *c, const char *name, const char *snap, bool stop,
                        struct json_object **ret, phy_error *err);
int ops_snapshot_delete(const struct ops_ctx *c, const char *name, const char *snap, struct json_object **ret,
                        phy_error *err);
/* tpm: NULL, "fresh" or "copy". */
int ops_clone(const struct ops_ctx *c, const char *name, const char *dst, bool full, const char *tpm,
              struct json_object **ret, phy_error *err);
typedef void (*ops_progress_fn)(uint64_t done, uint64_t total, void *userdata);
int ops_export(const struct ops_ctx *c, const char *name, int fd, ops_progress_fn progress, void *userdata,
               phy_error *err);
/* The store's options and result (src/store/store.h): trust, a cap, a
 * cancel flag; the name and what was stripped from an untrusted bundle. */
struct store_import_opts;
struct store_import_result;
int ops_import(const struct ops_ctx *c, int fd, const struct store_import_opts *o, struct store_import_result *ret,
               phy_error *err);
/* {name, trusted, stripped: [sentences]} of an import that succeeded. */
struct json_object *ops_import_json(const struct store_import_opts *o, const struct store_import_result *r);
struct ops_migrate {
        const char *dest_home, *address;
        uint64_t max_bandwidth;
        unsigned timeout_s;
        void (*progress)(const char *phase, uint64_t done, uint64_t total, void *userdata);
        void *userdata;
};
int ops_migrate(const struct ops_ctx *c, const char *name, const struct ops_migrate *o, struct json_object **ret,
                phy_error *err);

/* ---- moving VMs in and out (interop.c, docs/interop.md) ---- */

struct ops_import_foreign {
        const char *kind;               /* libvirt, quickemu, ova (or ovf: a descriptor beside its files) */
        const char *file;               /* absolute */
        const char *uri, *domain;       /* libvirt: virsh -c URI dumpxml DOMAIN instead of a file */
        const char *name, *profile;     /* NULL: the description's, a guess (reported) */
        const char *tpm_state;          /* libvirt: swtpm's state directory of the domain */
        bool reference;                 /* disks used where they are (qcow2, raw), not copied */
        bool no_manifest;               /* ova: accept an appliance without a .mf (reported) */
};
/* {name, profile, uuid, dir, source, report: {changed, not_modelled, implied,
 * notes, guest_visible, items: [{element, line, status, guest_visible, message}]}} */
int ops_import_foreign(const struct ops_ctx *c, const struct ops_import_foreign *o, struct json_object **ret,
                       phy_error *err);
/* A stopped VM into dir in /var/lib/libvirt's layout (docs/interop.md);
 * target: where dir will be on the libvirt host (NULL: dir). */
int ops_export_libvirt(const struct ops_ctx *c, const char *name, const char *dir, const char *target,
                       struct json_object **ret, phy_error *err);

/* ---- networks and shared folders (net.c) ---- */

int ops_forward_list(const struct ops_ctx *c, const char *name, struct json_object **ret, phy_error *err);
/* nic NULL: the first NIC. */
int ops_forward_change(const struct ops_ctx *c, const char *name, const char *nic, const char *spec, bool add,
                       struct json_object **ret, phy_error *err);
/* model and mode (add only) may be NULL. */
int ops_nic_change(const struct ops_ctx *c, const char *name, const char *nic, bool add, const char *model,
                   const char *mode, struct json_object **ret, phy_error *err);
int ops_share_list(const struct ops_ctx *c, const char *name, struct json_object **ret, phy_error *err);
/* dir NULL: remove tag; type NULL, "virtiofs" or "9p". */
int ops_share_change(const struct ops_ctx *c, const char *name, const char *tag, const char *dir, bool readonly,
                     const char *type, struct json_object **ret, phy_error *err);

/* ---- devices (dev.c) ---- */

struct ops_device_attach {
        const char *address;
        bool with_group, force, single_gpu;
        const char *rom;        /* absolute */
};
int ops_device_list(const struct ops_ctx *c, const char *name, struct json_object **ret, phy_error *err);
int ops_device_attach(const struct ops_ctx *c, const char *name, const struct ops_device_attach *o,
                      struct json_object **ret, phy_error *err);
int ops_device_detach(const struct ops_ctx *c, const char *name, const char *address, struct json_object **ret,
                      phy_error *err);
int ops_device_give_back(const struct ops_ctx *c, const char *name, struct json_object **ret, phy_error *err);
int ops_mdev_types(const struct ops_ctx *c, const char *parent, struct json_object **ret, phy_error *err);
/* uuid NULL: a new random one. */
int ops_mdev_create(const struct ops_ctx *c, const char *parent, const char *type, const char *uuid,
                    struct json_object **ret, phy_error *err);
int ops_mdev_remove(const struct ops_ctx *c, const char *uuid, struct json_object **ret, phy_error *err);
int ops_mdev_attach(const struct ops_ctx *c, const char *name, const char *uuid, bool display,
                    struct json_object **ret, phy_error *err);
int ops_sriov(const struct ops_ctx *c, const char *pf, unsigned count, struct json_object **ret, phy_error *err);
/* spec VENDOR:PRODUCT or BUS-PORT; hot-plugged when the VM runs. */
int ops_usb_change(const struct ops_ctx *c, const char *name, const char *spec, bool attach,
                   struct json_object **ret, phy_error *err);

/* ---- the host (host.c) ---- */

int ops_host_check(const struct ops_ctx *c, struct json_object **ret, phy_error *err);
int ops_host_devices(const struct ops_ctx *c, struct json_object **ret, phy_error *err);
/* {"caps": what the QEMU binary can do (qemu_caps_to_json), "from_cache", "summary":
 * [{what, have}] for what Phyllome looks for, "absent": [{device, why}]
 * for devices listed but not creatable (a module missing)}. */
struct ops_caps_opts {
        const char *qemu;       /* a binary to probe; NULL: the one found (the API's own process only) */
        bool refresh;           /* probe again, not from the cache */
};
int ops_caps(const struct ops_ctx *c, const struct ops_caps_opts *o, struct json_object **ret, phy_error *err);

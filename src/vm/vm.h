/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The VM definition (what the user wrote, <home>/vms/<name>/vm.conf, format
 * in docs/vm-format.md and phyllome-vm(5); its keys are one table,
 * src/vm/keys.c) and the VM model (struct vm_model: the definition with the
 * profile's defaults filled in for this host, and what the resolve step
 * learnt about the VM's files; the argv builder takes only a model).  A
 * filled definition (vm_model_resolve) lists in vm_def.defaulted the
 * "section.key" names a profile filled; in a definition read from a file
 * it is empty.
 */
#include <stdbool.h>
#include <stdint.h>
#include "cleanup.h"
#include "error.h"
#include "strv.h"

#define VM_NAME_MAX 64

enum vm_firmware { VM_FW_UNSET = 0, VM_FW_UEFI, VM_FW_BIOS };
enum vm_bus { VM_BUS_UNSET = 0, VM_BUS_VIRTIO, VM_BUS_SCSI, VM_BUS_SATA, VM_BUS_NVME, VM_BUS_IDE };
enum vm_display { VM_DISPLAY_UNSET = 0, VM_DISPLAY_NONE, VM_DISPLAY_SPICE, VM_DISPLAY_GTK,
                  VM_DISPLAY_SDL, VM_DISPLAY_VNC };
enum vm_gpu { VM_GPU_UNSET = 0, VM_GPU_NONE, VM_GPU_STD, VM_GPU_VIRTIO, VM_GPU_VIRGL };
enum vm_sound { VM_SOUND_UNSET = 0, VM_SOUND_NONE, VM_SOUND_VIRTIO, VM_SOUND_HDA, VM_SOUND_AC97 };
enum vm_tpm { VM_TPM_UNSET = 0, VM_TPM_NONE, VM_TPM_EMULATED, VM_TPM_PASSTHROUGH };
enum vm_nic_model { VM_NIC_UNSET = 0, VM_NIC_VIRTIO, VM_NIC_E1000E, VM_NIC_RTL8139 };
/* isolated: VMs of one named network see each other only; bridge: a tap on a host bridge (issue 4). */
enum vm_net_mode { VM_NET_UNSET = 0, VM_NET_NONE, VM_NET_USER, VM_NET_ISOLATED, VM_NET_BRIDGE };
/* User networking's backend (issue 4): auto = passt when installed, else slirp. */
enum vm_net_backend { VM_NETBE_AUTO = 0, VM_NETBE_PASST, VM_NETBE_SLIRP };
/* How a shared folder reaches the guest (issue 4). */
enum vm_share_type { VM_SHARE_UNSET = 0, VM_SHARE_VIRTIOFS, VM_SHARE_9P };
enum vm_input { VM_INPUT_UNSET = 0, VM_INPUT_USB_TABLET, VM_INPUT_VIRTIO };
enum vm_tristate { VM_UNSET = 0, VM_OFF, VM_ON };

struct vm_disk {
        char *name;             /* section label: [disk system] */
        char *path;             /* relative paths are relative to the VM dir */
        char *format;           /* "qcow2" (default), "raw" */
        uint64_t size;          /* bytes; used when creating the image */
        enum vm_bus bus;
        bool readonly;
        char *key_file;         /* LUKS-encrypted qcow2: file holding the key (issue 5) */
        bool key_prompt;        /* LUKS, the passphrase typed when needed ([disk] key = prompt);
                                 * it lives in <run dir>/key-disk-<name> while a command uses it */
};

struct vm_cdrom {
        char *name;             /* [cdrom install], [cdrom drivers] */
        char *path;             /* ISO */
        enum vm_bus bus;        /* sata (default) or scsi */
};

/* [install]: a one-shot unattended install boot (docs/vm-format.md,
 * docs/catalog.md).  Present from `create --unattended` until the install run
 * ends; the answer file itself is never here: it lives in the run dir for
 * that run only. */
enum vm_install_delivery {
        VM_INSTALL_NONE = 0,
        VM_INSTALL_INITRD,      /* appended to the media's initrd; its kernel booted directly (Linux) */
        VM_INSTALL_CDROM,       /* at the root of a small CD next to the media (Windows) */
};

struct vm_install {
        char *media;            /* the installer ISO: attached for the install run only */
        char *kernel, *initrd;  /* initrd delivery: the media's, copied into the VM dir */
        char *append;           /* initrd delivery: the kernel's arguments */
        char *answer;           /* the answer file's name: preseed.cfg, autounattend.xml */
        enum vm_install_delivery delivery;
};

/* The install run's files in the run dir (root:<VM gid> 0640), its CD-ROMs'
 * names in the model, and the VM dir's folder for the media's kernel and initrd. */
#define VM_INSTALL_INITRD_FILE "install-initrd"
#define VM_INSTALL_ISO_FILE "install-answer.iso"
#define VM_INSTALL_MEDIA_CDROM "install-media"
#define VM_INSTALL_ANSWER_CDROM "install-answer"
#define VM_INSTALL_KERNEL_COPY "install-kernel"
#define VM_INSTALL_INITRD_COPY "install-initrd.img"

struct vm_nic {
        char *name;             /* [network net0] */
        enum vm_net_mode mode;
        enum vm_nic_model model;
        char mac[18];           /* "52:54:00:xx:xx:xx", stable, made at create */
        strv forwards;          /* "tcp:2222:22" (issue 4) */
        enum vm_net_backend backend;    /* mode = user only */
        char *network;          /* mode = isolated: the network's name */
        char *bridge;           /* mode = bridge: the host bridge, e.g. br0 */
};

struct vm_share {
        char *tag;
        char *path;
        bool readonly;
        enum vm_share_type type;
};

struct vm_def {
        char *path;             /* file it was read from, for messages */
        char name[VM_NAME_MAX + 1];
        char *profile;          /* "windows11", "linux", ... */
        char uuid[37];

        /* [machine] */
        char *machine;          /* "q35" */
        enum vm_tristate smm;
        enum vm_tristate hyperv;        /* Hyper-V enlightenments */
        enum vm_tristate kvm_hidden;    /* KVM's CPUID signature hidden from the guest (-cpu ...,kvm=off) */
        enum vm_tristate rtc_localtime;
        enum vm_tristate balloon;
        enum vm_tristate rng;
        enum vm_tristate agent;         /* QEMU guest agent channel */
        enum vm_input input;

        /* [cpu] */
        unsigned cores;
        unsigned threads;
        char *cpu_model;        /* NULL: host under KVM, max under TCG */

        /* [memory] */
        uint64_t memory;

        /* [firmware] */
        enum vm_firmware firmware;
        enum vm_tristate secure_boot;

        /* [boot]: direct kernel boot (issue 3) */
        char *kernel, *initrd, *append;

        struct vm_install install;      /* [install]; install.delivery 0: none */
        bool install_run;       /* the model of an install run (vm_install_apply): -no-reboot */

        struct vm_disk *disks;   size_t n_disks;
        struct vm_cdrom *cdroms; size_t n_cdroms;
        struct vm_nic *nics;     size_t n_nics;
        struct vm_share *shares; size_t n_shares;
        strv passthrough;        /* PCI addresses, [passthrough] devices = ... */
        strv usb;                /* "vendor:product" or "bus-port" ([usb] devices = ...) */
        unsigned usb_redirect;   /* USB redirection channels over SPICE ([usb] redirect = N) */
        bool usb_redirect_set;   /* false: the profile picks (2 with SPICE, else 0) */
        strv passthrough_roms;   /* "0000:01:00.0=FILE" ([passthrough] rom = ...) */
        strv mdevs;              /* mediated device UUIDs ([passthrough] mdev = ...) */
        enum vm_tristate mdev_display;  /* display=on,ramfb=on for the mdevs */
        enum vm_tristate single_gpu;    /* the host display stops while the VM has its GPU */

        /* [display] */
        enum vm_display display;
        enum vm_tristate gl;
        /* [gpu] */
        enum vm_gpu gpu;
        /* [sound] */
        enum vm_sound sound;
        /* [tpm] */
        enum vm_tpm tpm;

        /* The model: "section.key" names filled by the profile, not the user. */
        strv defaulted;
};

/*
 * The model (src/vm/profile.h, vm_model_make): what the QEMU argv builder
 * (src/qemu/argv.h) takes, and nothing else.  vm is the definition with every
 * default filled (vm_model_resolve's guarantees: no UNSET enum, every disk
 * with path, format, size and bus, ...).  The facts below are the resolve
 * step's I/O, so that the argv builder does none.
 */
struct vm_model {
        struct vm_def vm;
        /* Per disk of vm (n_disks entries): the image's file system takes
         * O_DIRECT, so QEMU gets cache.direct=on,aio=native (tmpfs refuses
         * O_DIRECT and QEMU would then fail to open it).  NULL: not probed
         * (no VM directory given: golden files, `phyllo argv`): QEMU's
         * defaults. */
        bool *disk_direct;
        /* The system disk (the first) holds a partition table, so an OS is
         * installed: its CD-ROMs then boot after the disks (issue 19).
         * false: not probed, no CD-ROM, or an empty disk (CDs first). */
        bool disk_has_os;
};
/* Sets m->disk_has_os (vm_model_make does with a VM dir; `phyllo argv`
 * too): whether the first disk's sector 0 ends in the MBR boot signature
 * 55 AA (a GPT disk keeps a protective MBR).  raw images are read, qcow2
 * through `qemu-img dd -U` (its backing chain too); an encrypted disk, a
 * VM without a CD-ROM with media, and any failure leave it false. */
void vm_model_probe_boot(struct vm_model *m, const char *vm_dir);
void vm_model_done(struct vm_model *m);
#define _cleanup_vm_model_ _cleanup_(vm_model_done)

/* At most this many USB redirection channels (QEMU's xHCI has 4 ports by default
 * besides the tablet: more would need a second controller). */
#define VM_USB_REDIRECT_MAX 4u

void vm_def_done(struct vm_def *d);
/* Removes element I of the labelled section SECTION ("disk", "network",
 * "share", "cdrom"), freeing all it owns; an unknown SECTION aborts (a bug). */
void vm_def_remove_elem(struct vm_def *d, const char *section, size_t i);

/* An isolated network's (max 32) or a host bridge's (max 15) name:
 * [A-Za-z0-9._-], not starting with '.' or '-'. */
bool vm_net_name_valid(const char *s, size_t max);

/*
 * "none", "user", "isolated:NAME" or "bridge:BRIDGE" (create --net, net nic
 * add --mode) into a NIC's mode and its network or bridge (malloc'd).
 * -EINVAL with a sentence in err naming what is allowed.
 */
int vm_nic_mode_parse(const char *spec, struct vm_nic *nic, phy_error *err);

/* Names: [A-Za-z0-9._-]{1,64}, not "." or "..". */
bool vm_name_valid(const char *name);

/* Parses a definition.  Errors: "<file>:<line>: <what>" naming the key and
 * what is allowed; unknown sections and keys are errors. */
int vm_def_parse(const char *path, const char *text, struct vm_def *ret, phy_error *err);
int vm_def_load(const char *path, struct vm_def *ret, phy_error *err);
/* The same, also giving the text the definition was parsed from (malloc'd). */
int vm_def_load_text(const char *path, char **ret_text, struct vm_def *ret, phy_error *err);
/* Formats a definition as the text format (what the user set, not the
 * defaults, unless with_defaults, which marks each default with a comment).
 * NULL with errno EINVAL when a value has a control character. */
char *vm_def_format(const struct vm_def *d, bool with_defaults);
/* Values are single lines (issue 12): -EINVAL naming the section and key of
 * the first value with a control character (a newline would add keys or
 * sections to the file); the parser and the formatter refuse them too. */
int vm_def_check_values(const struct vm_def *d, phy_error *err);
/*
 * Paths (issue 12, docs/security.md).  vm_paths_configure sets the process's
 * mode once at startup (phyllo: per user; phyllod --system: system) and the
 * root prefix whose etc/phyllome/host.conf holds allow-paths.
 * vm_paths_allowed: the canonical directories a definition may name files in
 * outside its VM dir: host.conf's allow-paths when set, else per user the
 * user's home and the Phyllome home, in system mode none.
 * vm_path_check: path (relative ones against vmdir, which they may not leave)
 * resolved and checked; -EPERM with what (e.g. "[disk data] path") named.
 * vm_def_check_paths: every path of d (kernel, initrd, disks and their key
 * files, cdroms, shares, passthrough ROMs); a share of "/" is always refused.
 * vm_def_check_devices_system: in system mode a VM gets only the PCI devices
 * host.conf's passthrough-allow lists (for anyone), and no host USB or mdev:
 * group phyllome may not give itself the host's devices.
 * vm_def_check_here: paths and, in system mode, devices, against this
 * process's mode and host.conf.
 */
void vm_paths_configure(const char *root, bool system);
bool vm_paths_system(void);
int vm_paths_allowed(const char *root, bool system, strv *ret, phy_error *err);
int vm_path_check(const char *vmdir, const char *what, const char *path, const strv *allow, char **ret_real,
                  phy_error *err);
int vm_def_check_paths(const struct vm_def *d, const char *vmdir, const strv *allow, phy_error *err);
/* vm_path_check against this process's mode, for a file read before it is
 * in a definition (disk add --image, --key-file). */
int vm_path_check_here(const char *vmdir, const char *what, const char *path, phy_error *err);
/* The same, with the resolved path in *ret_real (malloc'd): what a reader
 * of the file opens, so that a link changed after the check is not followed. */
int vm_path_check_here_real(const char *vmdir, const char *what, const char *path, char **ret_real,
                            phy_error *err);
struct host_facts;
int vm_def_check_devices_system(const struct vm_def *d, const struct host_facts *conf, phy_error *err);
int vm_def_check_here(const struct vm_def *d, const char *vmdir, phy_error *err);

/* What every save checks: vm_def_check_values and vm_def_check_here
 * (the VM dir: file's directory).  For those who write the user's own text. */
int vm_def_check_save(const struct vm_def *d, const char *file, phy_error *err);
/* Writes <home>/vms/<name>/vm.conf atomically, after vm_def_check_save. */
int vm_def_save(const struct vm_def *d, const char *file, phy_error *err);
struct json_object;
/* JSON for --json: the sections as objects, labelled sections as arrays
 * ("disks", "cdroms", "networks", "shares"), sizes in bytes, and
 * "defaulted": the "section.key" names a profile filled. */
struct json_object *vm_def_to_json(const struct vm_def *d);

/* [install] (src/vm/install.c).  The answer file's name: 1 to 64 of
 * [A-Za-z0-9._-], not starting with '.'. */
bool vm_install_answer_valid(const char *s);
/* After a parse: [install] all or nothing (usage errors naming file). */
int vm_install_check(const char *file, const struct vm_install *in, phy_error *err);
void vm_install_done(struct vm_install *in);
/* d (a definition with [install]) becomes the install run's: the media as
 * the first CD-ROM (VM_INSTALL_MEDIA_CDROM); initrd delivery: the media's
 * kernel, run_dir/VM_INSTALL_INITRD_FILE and the install's append; cdrom
 * delivery: run_dir/VM_INSTALL_ISO_FILE as a CD-ROM after the others;
 * install_run set (QEMU exits at the guest's first reboot). */
int vm_install_apply(struct vm_def *d, const char *run_dir, phy_error *err);
/* The install run ended (whichever way): under the edit lock, [install]
 * leaves vm.conf and the kernel and initrd copied into the VM dir go. */
int vm_install_finish(const char *home, const char *name, phy_error *err);

/* Deep copy (path and defaulted included). */
int vm_def_copy(const struct vm_def *src, struct vm_def *ret);
/* Frees what vm_def_done frees; for _cleanup_vm_def_. */
static inline void vm_def_donep(struct vm_def *d) { vm_def_done(d); }
#define _cleanup_vm_def_ _cleanup_(vm_def_donep)

/* A window of QEMU's own on the host's desktop (gtk, sdl): what a desktop
 * program needs (a session bus, /etc, ptys, render nodes, a sound server). */
static inline bool vm_display_is_window(enum vm_display d) {
        return d == VM_DISPLAY_GTK || d == VM_DISPLAY_SDL;
}
/* 3D in the guest's display: gl = on, or the virgl GPU. */
static inline bool vm_def_gl(const struct vm_def *vm) {
        return vm->gl == VM_ON || vm->gpu == VM_GPU_VIRGL;
}

/* The words used in the file for each enum value ("virtio", "sata", ...);
 * NULL for UNSET.  The argv builder may use them for ids and messages. */
const char *vm_bus_name(enum vm_bus v);
const char *vm_display_name(enum vm_display v);
const char *vm_gpu_name(enum vm_gpu v);
const char *vm_sound_name(enum vm_sound v);
const char *vm_tpm_name(enum vm_tpm v);
const char *vm_nic_model_name(enum vm_nic_model v);
const char *vm_net_mode_name(enum vm_net_mode v);
const char *vm_input_name(enum vm_input v);
const char *vm_firmware_name(enum vm_firmware v);
const char *vm_net_backend_name(enum vm_net_backend v);
const char *vm_share_type_name(enum vm_share_type v);
/* The reverse for command-line options: the enum value, or -1 when word is
 * not one; ret_allowed (may be NULL) gets "none, spice, ..." (static). */
int vm_display_from_name(const char *word, const char **ret_allowed);
int vm_gpu_from_name(const char *word, const char **ret_allowed);
/* The enum of a word of the definition's tables ("nvme", "e1000e", "9p");
 * -1 when it names none. */
int vm_bus_from_name(const char *word);
int vm_nic_model_from_name(const char *word);
int vm_share_type_from_name(const char *word);

/* Fills what makes a new VM unique: a random (v4) uuid when d has none and a
 * random locally administered 52:54:00:xx:xx:xx MAC for each NIC without one. */
int vm_def_make_identity(struct vm_def *d, phy_error *err);

/*
 * The layout of a Phyllome home: <home>/vms/<name>/vm.conf, disk images
 * beside it (relative paths in the definition are relative to the VM dir).
 * Names must be valid (vm_name_valid); these return malloc'd paths or NULL.
 */
char *vm_dir(const char *home, const char *name);
/* The one answer to a VM name that names no VM (every command, both faces):
 * "no VM named 'x' (looked in HOME/vms)", kind not-found. */
int vm_not_found(const char *home, const char *name, phy_error *err);
/* 0 when VM name is defined in home (its vm.conf exists, whether or not it
 * parses), else the error vm_not_found sets (or a usage error for an
 * invalid name). */
int vm_exists(const char *home, const char *name, phy_error *err);
char *vm_conf_path(const char *home, const char *name);
/* A relative path of the definition (disk, ISO, share) made absolute
 * against the VM dir; absolute paths are copied. */
char *vm_path_resolve(const char *vmdir, const char *path);
/* The part of path inside vmdir: path itself when relative, the rest after
 * "<vmdir>/" when absolute and written below it, else NULL.  For anchored
 * opens (open_beneath) that refuse what leaves the directory. */
const char *vm_dir_relative(const char *vmdir, const char *path);
/* Names of the defined VMs (directories with a vm.conf), sorted. */
int vm_list(const char *home, strv *ret, phy_error *err);
/* Loads <home>/vms/<name>/vm.conf.  No VM: -ENOENT, "no VM named 'x'
 * (looked in /path)".  The [vm] name, when set, must match the directory. */
int vm_load_by_name(const char *home, const char *name, struct vm_def *ret, phy_error *err);
/* The same, also giving the text of vm.conf it was parsed from (one read). */
int vm_load_by_name_text(const char *home, const char *name, char **ret_text, struct vm_def *ret, phy_error *err);
/*
 * A temporary directory for a VM being made (create, clone, import):
 * <home>/vms/.#<kind>.<name>.XXXXXX (".#<kind>.XXXXXX" without a name),
 * mode 0700, held with flock(LOCK_EX) on *ret_lock until the caller renames
 * it into place or removes it and closes the fd.  Before it is made, the
 * ones whose maker died (lock free; older than a minute) are removed.
 */
int vm_tmpdir_make(const char *home, const char *kind, const char *name, char **ret_path, int *ret_lock,
                   phy_error *err);
/* Removes the abandoned temporary directories of <home>/vms (see above);
 * returns how many went. */
int vm_home_sweep(const char *home);

/*
 * The per-VM edit lock: every change of a definition loads, changes and
 * saves it under flock(LOCK_EX) on the VM's directory (<home>/vms/<name>
 * itself: no lock file to copy, export or leave behind), so two edits at
 * once both land instead of the later save dropping the earlier change.
 * vm_delete takes the same lock.  The lock is waited for; it is released
 * when its fd is closed (vm_edit_done), or when the process dies.
 */
int vm_edit_lock(const char *home, const char *name, int *ret_fd, phy_error *err);
struct vm_edit {
        int lock;               /* held while conf is set and lock >= 0 */
        char *conf;             /* <home>/vms/<name>/vm.conf */
        struct vm_def def;      /* as loaded under the lock */
};
/* Takes the lock, then loads the definition into ret->def. */
int vm_edit_begin(const char *home, const char *name, struct vm_edit *ret, phy_error *err);
/* Saves ret->def (atomically) to its vm.conf; the lock stays held. */
int vm_edit_save(struct vm_edit *e, phy_error *err);
/* Frees the definition and releases the lock (accepts a zeroed or done edit:
 * declare one as `_cleanup_vm_edit_ struct vm_edit e = { 0 };`). */
void vm_edit_done(struct vm_edit *e);
#define _cleanup_vm_edit_ _cleanup_(vm_edit_done)

/* Removes <home>/vms/<name>, whatever runs: run_vm_delete (src/run) is the
 * delete that refuses a running VM and removes its runtime files too. */
int vm_delete(const char *home, const char *name, phy_error *err);

struct host_facts;
struct qemu_caps;
/*
 * Creates <home>/vms/<def->name>: resolves def against host and caps
 * (vm_model_resolve) first, then writes vm.conf with what def holds and
 * creates each disk image that does not exist yet with `qemu_img create -f
 * <format> <path> <size>` (qemu_img: the qemu-img binary, NULL = look in
 * $PHYLLOME_QEMU_IMG then $PATH).  An existing VM is refused unless force
 * (then replaced once the new one is complete).  A failed create leaves
 * nothing behind.
 */
int vm_create(const char *home, const struct vm_def *def, const struct host_facts *host,
              const struct qemu_caps *caps, const char *qemu_img, bool force, phy_error *err);

/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The QEMU command line: a pure function of the VM model (struct vm_model,
 * made by vm_model_make: every default filled, the files' facts probed),
 * the host facts, the QEMU capabilities and the tool paths.  It returns an
 * argv array (never a shell string) and does no I/O, so golden tests can
 * pin it exactly.
 */
#include <stdbool.h>
#include "error.h"
#include "strv.h"

struct vm_def;
struct vm_model;
struct host_facts;
struct qemu_caps;
struct qemu_tools;

struct qemu_argv_env {
        const struct host_facts *host;
        const struct qemu_caps *caps;       /* NULL: assume everything is there */
        const struct qemu_tools *tools;
        const char *vm_dir;                 /* <home>/vms/<name>: relative disk paths, vars file */
        const char *run_dir;                /* sockets and runtime files */
        /* Sockets the supervisor created and passes to QEMU; -1: a path in run_dir. */
        int qmp_fd;
        int tpm_fd;
        /* Listening sockets for the hvc0 console and the guest agent; -1: QEMU
         * makes them in run_dir itself. */
        int hvc0_fd;
        int qga_fd;
        /* Per disk, an fd holding its key_file's contents (QEMU reads
         * /proc/self/fd/N), so that the VM's uid needs no access to the key
         * file; -1 or NULL: QEMU reads key_file itself. */
        const int *key_fds;
        size_t n_key_fds;
        /* Issue 12: per disk, its backing chain as fds the monitor opened and
         * checked (vm/chain.h), the nearest first.  Each link reaches QEMU as
         * -add-fd and a read-only -blockdev node on /dev/fdset/N, the disk's
         * node names the first (backing=), each link the next: QEMU opens no
         * backing file by name.  NULL or a disk with no links: QEMU opens
         * what the image names itself (a disk without a backing file). */
        const struct qemu_backing *backing;
        size_t n_backing;
        /* Where QEMU makes its SPICE socket (SPICE takes no fd); NULL:
         * <run_dir>/spice.sock. */
        const char *spice_sock;
        /* Issue 4: per NIC the passt socket (-1 or NULL: slirp), per share
         * the virtiofsd socket (-1 or NULL: a path in run_dir). */
        const int *nic_fds;
        size_t n_nic_fds;
        const int *share_fds;
        size_t n_share_fds;
        bool force_tcg;                     /* never use KVM, even when usable */
        bool paused;                        /* -S: start with the CPUs stopped */
        bool boot_once_cdrom;               /* CD-ROMs first in the boot order, even when the model's
                                             * disk_has_os (start --boot-once cdrom) */
        /* Issue 5 (migration): "-incoming <incoming>" (e.g. "defer") when non-NULL. */
        const char *incoming;
        /* Issue 11: the sound server the start path found (src/run/sound.c)
         * for a gtk or sdl window: the PulseAudio socket QEMU's user can
         * reach (-audiodev pa,server=unix:...), or NULL with audio_why
         * saying why there is none (-audiodev none and a warning). */
        const char *audio_server;
        const char *audio_why;
};

/* One backing file of a disk, held open by the monitor. */
struct qemu_backing_link {
        int fd;
        const char *format;     /* "qcow2" or "raw" */
};
struct qemu_backing {
        const struct qemu_backing_link *links;
        size_t n;
};

/* Empty pcie-root-ports the argv adds on q35 for NIC hot-plug (src/net/hotplug.c). */
#define QEMU_HOTPLUG_PORTS 2

/* Initialises env with every fd set to -1. */
void qemu_argv_env_init(struct qemu_argv_env *env);

/* Builds the argv.  Warnings a person should see (TCG is slow, a device the
 * QEMU build lacks was replaced) are appended to ret_warnings when non-NULL. */
int qemu_argv_build(const struct vm_model *model, const struct qemu_argv_env *env,
                    strv *ret_argv, strv *ret_warnings, phy_error *err);

/* The -audiodev driver the argv uses for the VM's sound device: "spice"
 * with a SPICE display, "pa" in a gtk/sdl window when env has a sound
 * server and QEMU has the pa driver, else "none"; NULL when the VM has no
 * sound device.  When "none" although the display could carry sound, why
 * (len > 0) gets the reason, else "". */
const char *qemu_argv_audio(const struct vm_def *vm, const struct qemu_argv_env *env, char *why, size_t len);

/* True when the argv builder will use KVM for this host and QEMU. */
bool qemu_argv_use_kvm(const struct qemu_argv_env *env);

/* The per-VM UEFI vars file: <vm_dir>/OVMF_VARS.fd. */
char *qemu_vars_path(const char *vm_dir);

/* Escapes a value for QEMU's key=value option syntax (',' doubled). */
char *qemu_opt_escape(const char *value);

/* QEMU's spelling of the values of src/common/value.h, shared by the argv
 * builder and the hot-plug paths (QMP device_add, HMP hostfwd_add). */
struct value_forward;
/* slirp's hostfwd rule "tcp:127.0.0.1:2222-:22" (malloc'd; NULL: no memory). */
char *qemu_hostfwd(const struct value_forward *f);
/* The -device / QMP device_add option string for a usb-host: "usb-host,
 * id=<id>,bus=usb0.0,vendorid=0x..,productid=0x.." or hostbus/hostport. */
int qemu_usb_host_opts(const char *spec, const char *id, char **ret, phy_error *err);
/* The QEMU id of a USB passthrough device, the same at start and for QMP
 * device_add/device_del: "usb-" + spec with ':' '-' '.' made '_'. */
void qemu_usb_id(const char *spec, char out[static 40]);

/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * phyllome-devhelper: the one small root process that moves PCI devices to
 * vfio-pci and back and hands /dev/vfio/GROUP to the user whose VM uses it
 * (docs/devices.md, phyllome-devhelper(8)), in the spirit of OpenBSD vmd's
 * privilege separation.  One fixed-size request per SOCK_SEQPACKET message,
 * one fixed-size reply; a message of any other size is refused.  Who may
 * have which device is the administrator's word in host.conf
 * (passthrough-allow = ADDRESS USER|@GROUP).
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "dev.h"
#include "error.h"
#include "sock.h"

#define DEV_HELPER_VERSION 1u
#define DEV_HELPER_SOCKET "/run/phyllome/devhelper.sock"
#define DEV_HELPER_STATE_DIR "/run/phyllome/devhelper"

enum dev_helper_op {
        DEV_HELPER_TO_VFIO = 1,          /* move to vfio-pci, /dev/vfio/GROUP to the caller */
        DEV_HELPER_GIVE_BACK = 2,        /* back to the recorded driver and owner */
        DEV_HELPER_CHOWN_VFIO_GROUP = 3, /* already on vfio-pci: only /dev/vfio/GROUP */
        DEV_HELPER_STATUS = 4,           /* what the caller holds, in the message */
};

/* Every string is NUL-terminated inside its field (checked). */
struct dev_helper_request {
        uint32_t version;        /* DEV_HELPER_VERSION */
        uint32_t op;             /* enum dev_helper_op */
        char vm[72];             /* the VM's name (vm_name_valid, at most 64); "" for STATUS */
        char address[16];        /* "0000:01:00.0"; "" for STATUS */
        char driver[68];         /* GIVE_BACK: the driver the caller recorded, or "" */
};

struct dev_helper_reply {
        uint32_t version;
        int32_t error;           /* 0, or a positive errno */
        int32_t iommu_group;     /* -1 when not known */
        char driver[68];         /* TO_VFIO: the driver before the move ("" none) */
        char message[512];       /* a whole sentence; NUL-terminated */
};

_Static_assert(sizeof(struct dev_helper_request) == 164, "the request's size is part of the protocol");
_Static_assert(sizeof(struct dev_helper_reply) == 592, "the reply's size is part of the protocol");

/* [A-Za-z0-9_-]{1,64} */
bool dev_driver_name_valid(const char *s);

/*
 * Checks one received message: exactly sizeof(struct dev_helper_request)
 * bytes (len is what recv with MSG_TRUNC returned, so a longer message
 * shows), the version, the op, every string terminated inside its field,
 * the VM name, the PCI address and the driver name.  0 and *ret filled, or
 * -EINVAL / -EPROTO with a sentence saying what was wrong.
 */
int dev_helper_request_check(const void *buf, size_t len, struct dev_helper_request *ret, phy_error *err);

/* Fills a request; -EINVAL (with a sentence) when a string does not fit. */
int dev_helper_request_init(struct dev_helper_request *req, enum dev_helper_op op, const char *vm,
                            const char *address, const char *driver, phy_error *err);

/* ---- the helper's side ---- */

struct dev_helper_server {
        const char *root;        /* "/" or NULL: the real host; a fixture copy in tests */
        const char *state_dir;   /* one record per device it moved; NULL: <root>/run/phyllome/devhelper */
        dev_kernel_hook hook;    /* tests only: plays the kernel */
        void *hook_data;
        int idle_timeout_ms;     /* a connection that sends nothing that long is closed; 0: 10 s */
        /* Told of every answered message (req NULL: refused unread); may be NULL. */
        void (*log)(const struct sock_peer *peer, const struct dev_helper_request *req,
                    const struct dev_helper_reply *reply, void *userdata);
        void *log_data;
};

/*
 * The journal line for one answered message (req NULL: refused unread),
 * without its newline.  Every field that came from the peer (VM name,
 * address, and the reply, which may quote them) has its control characters
 * escaped: a peer cannot write a line of its own (issue 12).
 */
void dev_helper_log_line(const struct sock_peer *peer, const struct dev_helper_request *req,
                         const struct dev_helper_reply *reply, char *buf, size_t n);

/*
 * Serves one checked request from peer: the host.conf allow check, the
 * IOMMU-group and host-use checks (never forced), the sysfs writes, the
 * state record and /dev/vfio/GROUP ownership.  Always fills *reply.
 */
void dev_helper_handle(const struct dev_helper_server *s, const struct sock_peer *peer,
                       const struct dev_helper_request *req, struct dev_helper_reply *reply);

/* A listening SOCK_SEQPACKET socket at path (mode 0666: host.conf decides
 * who may do what), its directory created 0755. */
int dev_helper_listen(const char *path, phy_error *err);

/*
 * Accepts connections and answers requests until an error of the listening
 * socket.  One process, poll(2) over every connection: each request's work
 * is bounded, a connection idle longer than idle_timeout_ms is closed, and
 * at most 64 connections are open at once (the oldest idle one goes).
 */
int dev_helper_serve(int listen_fd, const struct dev_helper_server *s, phy_error *err);

/* ---- the caller's side ---- */

/* $PHYLLOME_DEVHELPER_SOCKET, else DEV_HELPER_SOCKET. */
const char *dev_helper_socket_path(void);

/* True when passthrough work through root should go to the helper: not
 * root, and the real host ("/" or NULL) or $PHYLLOME_DEVHELPER_SOCKET set. */
bool dev_helper_wanted(const char *root);

/*
 * Sends one request and waits (30 s at most: an unbind can take seconds)
 * for the reply.  0 when the helper did it; otherwise a negative errno with
 * the helper's own sentence in err (the reply is filled too), or a sentence
 * naming the socket when the helper is not running.
 */
int dev_helper_call(const char *socket_path, const struct dev_helper_request *req, struct dev_helper_reply *ret,
                    phy_error *err);

/*
 * The moves of dev_passthrough_prepare / _restore through the helper, for
 * the VM whose run dir is run_dir (its name is the VM's): TO_VFIO for each
 * address in order (a failure gives back what moved), GIVE_BACK in reverse
 * order with the drivers devices.state recorded (every device is tried; a
 * device the helper has no record of was never moved by it).
 */
int dev_helper_move(const char *run_dir, const strv *addresses, phy_error *err);
int dev_helper_give_back(const char *run_dir, const strv *addresses, const strv *drivers, phy_error *err);

/* ---- /dev/vfio/GROUP for a QEMU that runs as another user ---- */

struct dev_vfio_owner {
        char path[64];           /* "/dev/vfio/13" below root */
        uid_t uid;
        gid_t gid;
        mode_t mode;
};
struct dev_vfio_owners {
        struct dev_vfio_owner v[32];
        size_t n;
};

/* The IOMMU group number of a PCI device, or -1. */
int dev_pci_iommu_group(const char *root, const char *address);

/*
 * chowns <root>/dev/vfio/GROUP of each address (each group once) to
 * uid:gid, mode 0600, recording what was there in *saved.  A missing node
 * is skipped (the device is not on vfio-pci: QEMU says so in its own
 * words); a link is refused.  On failure what was changed is put back.
 */
int dev_vfio_chown_groups(const char *root, const strv *addresses, uid_t uid, gid_t gid, struct dev_vfio_owners *saved,
                          phy_error *err);
/* Puts back what dev_vfio_chown_groups recorded (a node gone is fine). */
void dev_vfio_restore_owners(const char *root, struct dev_vfio_owners *saved);
/* The same record in <run_dir>/vfio.owners ("PATH UID GID MODE" lines), so
 * that whoever finds the monitor gone (kill -9) puts the owners back:
 * save after the chown, forget after the restore; restore_recorded reads
 * it, restores through root and removes it (0 when there is none). */
int dev_vfio_owners_save(const char *run_dir, const struct dev_vfio_owners *o, phy_error *err);
void dev_vfio_owners_forget(const char *run_dir);
int dev_vfio_restore_recorded(const char *root, const char *run_dir);

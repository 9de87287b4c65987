/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Networking and shared folders around QEMU (issue 4, docs/networking.md):
 * port forwards, MAC addresses, the companion daemons (passt for user
 * networking, virtiofsd for virtiofs shares) that the monitor starts before
 * QEMU and stops after it, and the checks on shared directories.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "error.h"
#include "strv.h"
#include "vm/vm.h"

struct qmp;
struct json_object;

/* Refuses a forward whose host port is taken: tries to bind it.
 * -EADDRINUSE with "host port 127.0.0.1:2222 (tcp) ... is already in use". */
int net_forward_check_free(const char *spec, phy_error *err);
/* A forward's host port can be listened on by the VM's network, which runs
 * unprivileged: below net.ipv4.ip_unprivileged_port_start (1024) it cannot
 * (a usage error naming the port, the reason and a port that works).
 * net_forward_check_free checks this first. */
int net_forward_check_port(const char *spec, phy_error *err);
/* Gives every NIC of d a new random locally administered 52:54:00 MAC,
 * different from the ones it had (for clones). */
int net_new_macs(struct vm_def *d, phy_error *err);

/* The passt binary: $PHYLLOME_PASST, else passt in $PATH; NULL when none. */
char *net_passt_path(void);
/* virtiofsd: $PHYLLOME_VIRTIOFSD, else /usr/lib/qemu/virtiofsd, /usr/libexec/virtiofsd. */
char *net_virtiofsd_path(void);
/* True when NIC n (mode user, or unset: user is the default) will use passt
 * on this host. */
bool net_nic_uses_passt(const struct vm_nic *n);

/* A shared directory must exist, be a directory, and be neither / nor
 * inside-or-above the Phyllome home (home may be NULL). */
int net_share_check_dir(const char *path, const char *home, phy_error *err);

/*
 * Isolated networks (src/net/isolated.c): a flooding L2 hub spread over the
 * monitors of the network's VMs.  QEMU gets qemu_fd (-netdev dgram,
 * local.type=fd: one frame per datagram); the monitor binds sock_fd at
 * <run root>/.networks/NETWORK/<vm>.<nic> (directory 0700) and copies frames
 * between QEMU and every other member socket there.  No IP traffic at all.
 */
struct net_port {
        int qemu_fd, own_fd, sock_fd;
        char *dir, *path;
        char **peers;
        size_t n_peers;
        int64_t scanned_ms;
};
/* <dirname of run_dir>/.networks/NETWORK (malloc'd). */
int net_isolated_dir(const char *run_dir, const char *network, char **ret, phy_error *err);
int net_port_open(struct net_port *p, const char *run_dir, const char *network, const char *vm, const char *nic,
                  phy_error *err);
/* A port another process opened (the per-VM monitor's exec): its fds are
 * taken, dir and path copied; -ENOMEM (the fds still the caller's). */
int net_port_adopt(struct net_port *p, int own_fd, int sock_fd, const char *dir, const char *path);
void net_port_close_qemu_fd(struct net_port *p);
/* Unbinds and frees; p may be zeroed or closed already. */
void net_port_close(struct net_port *p);
/* The monitor calls it when fd is readable: true when fd was p's. */
bool net_port_event(struct net_port *p, int fd);

/* Bridge mode (src/net/tap.c): a non-persistent tap (phytapN) from
 * /dev/net/tun, added to bridge and up; *ret_fd for -netdev tap,fd=N.
 * Needs CAP_NET_ADMIN: -EPERM with that said otherwise. */
int net_tap_open(const char *bridge, int *ret_fd, char ret_name[16], phy_error *err);

/* The daemons of one run.  nic_fds[i]/share_fds[i]: the socket QEMU gets
 * for NIC i (passt, isolated hub port, bridge tap) / share i (virtiofs),
 * -1 when QEMU needs none.  ports[i]: NIC i's isolated hub port (qemu_fd
 * -1 and own_fd -1 for other NICs); the monitor polls net_companions_fds. */
struct net_companions {
        pid_t *pids;
        int *pidfds;
        size_t n_pids;
        int *nic_fds;
        size_t n_nics;
        int *share_fds;
        size_t n_shares;
        struct net_port *ports;         /* n_nics of them */
        struct net_deferred *deferred;  /* passt, made ready but not yet run */
        size_t n_deferred;
        bool gated;                     /* pids from gated_first on wait at the gate before exec */
        int gate_fd;                    /* the gate's write end (valid when gated) */
        size_t gated_first;
};
/* The fds the monitor must watch for readability (hub ports); *ret malloc'd. */
size_t net_companions_fds(const struct net_companions *nc, int **ret);
/* Handles a readable fd of net_companions_fds; false when it is not one. */
bool net_companions_event(struct net_companions *nc, int fd);

/* Checks every forward's host port, then starts passt per user NIC that
 * uses it and virtiofsd per virtiofs share (read-only shares in a private
 * mount namespace where the directory is mounted read-only).  Logs go to
 * <run_dir>/passt-<nic>.log and virtiofsd-<tag>.log.  passt runs as uid:gid
 * (the VM's, when uid is not -1).  On failure nothing started stays running. */
int net_companions_start(struct net_companions *nc, const struct vm_def *model, const char *vm_dir,
                         const char *run_dir, uid_t uid, gid_t gid, phy_error *err);
/* passt is only made ready by net_companions_start (its socket pair, QEMU's
 * end in nic_fds): QEMU needs nothing from it to start, and the ~20 ms of
 * CPU of its own start-up would compete with QEMU's.  This forks it (a fork
 * that fails fails the start) but holds it at a gate before its exec, so
 * that its start-up does not compete with the report to the starting
 * command either; net_companions_release opens the gate.  The monitor calls
 * it once QEMU answered.  Frames the guest sends before wait in the socket. */
int net_companions_start_deferred(struct net_companions *nc, phy_error *err);
/* Lets the daemons held at the gate run (their exec); a no-op without one. */
void net_companions_release(struct net_companions *nc);
/* Closes QEMU's ends once QEMU has them. */
void net_companions_close_qemu_fds(struct net_companions *nc);
/* Waits up to 3 s for each daemon to end on its own (they end with QEMU's
 * end of the socket), then SIGTERM, then SIGKILL; reaps them. */
void net_companions_stop(struct net_companions *nc);

/* Adds/removes a slirp forward on a running VM (QMP hostfwd_add/remove).
 * -EOPNOTSUPP when the NIC's backend cannot (passt). */
int net_hotfwd(struct qmp *q, const char *nic, const char *spec, bool add, phy_error *err);

/*
 * Definition edits for phyllo net/share (src/net/edit.c).  They change d
 * only; the caller saves it (vm_def_save).  nic NULL means the first NIC.
 */
struct vm_nic *net_def_nic(struct vm_def *d, const char *nic);
/* Refuses a bad spec, a NIC not in mode user and a host port the VM already
 * forwards (-EEXIST).  Whether the host port is free is net_forward_check_free. */
int net_def_forward_add(struct vm_def *d, const char *nic, const char *spec, phy_error *err);
/* Removes the forward with the same protocol, listener and guest port; -ENOENT. */
int net_def_forward_remove(struct vm_def *d, const char *nic, const char *spec, phy_error *err);
/* 1..31 of [A-Za-z0-9._-] (9p's mount tag limit, the smaller one). */
bool net_share_tag_valid(const char *tag);
/* Checks the directory (net_share_check_dir against home) and stores it
 * absolute; -EEXIST for a tag in use. */
int net_def_share_add(struct vm_def *d, const char *tag, const char *path, bool readonly, enum vm_share_type type,
                      const char *home, phy_error *err);
int net_def_share_remove(struct vm_def *d, const char *tag, phy_error *err);
/* A new NIC in mode user with a fresh MAC; -EEXIST when the name is taken. */
int net_def_nic_add(struct vm_def *d, const char *name, enum vm_nic_model model, phy_error *err);
int net_def_nic_remove(struct vm_def *d, const char *name, phy_error *err);
/* Every share directory of d must pass net_share_check_dir (start path). */
int net_shares_check(const struct vm_def *d, const char *home, phy_error *err);

/* The NICs of d for status/--json: name, mode, backend ("passt"/"slirp"
 * resolved for this host, or "-" when the NIC is not user mode), model,
 * mac and forwards. */
struct json_object *net_nics_to_json(const struct vm_def *d);

/*
 * NIC hot-plug over QMP (src/net/hotplug.c).  Add: netdev_add (slirp user
 * networking with n's forwards: passt needs the monitor) and device_add on
 * a free spare root port (q35's pcie.0 takes no hot-plug; the argv builder
 * adds QEMU_HOTPLUG_PORTS of them, qemu/argv.h).  Remove: device_del, the guest's
 * DEVICE_DELETED (within timeout_ms), then netdev_del.
 */
int net_nic_hotplug(struct qmp *q, const struct vm_nic *n, bool add, int timeout_ms, phy_error *err);

/*
 * The QEMU guest agent (src/net/agent.c) on <run dir>/qga.sock: syncs with
 * guest-sync-delimited (a 0xFF sentinel, then replies up to the matching
 * id are skipped), then asks guest-network-get-interfaces.  A guest without
 * an agent never answers: -ETIMEDOUT after timeout_ms.  *ret: an array of
 * {"name", "mac", "addresses": ["10.0.2.15/24", ...]}.
 */
int net_agent_interfaces(const char *sock_path, int timeout_ms, struct json_object **ret, phy_error *err);
/* The same over a connected stream socket (taken, also on failure). */
int net_agent_interfaces_fd(int fd, int timeout_ms, struct json_object **ret, phy_error *err);
/* True when the running QEMU behind q has the agent's port (chardev qga0)
 * and the guest opened it (query-chardev frontend-open), i.e. an agent runs. */
bool net_agent_port_open(struct qmp *q);
/*
 * guest-shutdown with mode "powerdown" (NULL), "halt" or "reboot", after the
 * sync.  The agent answers only an error; a second sync sent right behind
 * tells "taken" (0) from refused (-EREMOTEIO with the agent's words).  A
 * channel that closes or stays silent until timeout_ms after the request
 * counts as taken: the guest is going down.  0 does not mean QEMU ended;
 * the caller waits for that.
 */
int net_agent_shutdown(const char *sock_path, const char *mode, int timeout_ms, phy_error *err);
int net_agent_shutdown_fd(int fd, const char *mode, int timeout_ms, phy_error *err);
/*
 * guest-fsfreeze-freeze / guest-fsfreeze-thaw: the number of filesystems
 * frozen / thawed (0 on a guest with no freezable filesystem), or negative
 * errno.  A freeze the agent refuses is followed by a thaw on the same
 * channel before the error returns; after any failed freeze the caller
 * still calls net_agent_fsthaw (a timed-out freeze may finish later).
 */
int net_agent_fsfreeze(const char *sock_path, int timeout_ms, phy_error *err);
int net_agent_fsthaw(const char *sock_path, int timeout_ms, phy_error *err);
int net_agent_fsfreeze_fd(int fd, int timeout_ms, phy_error *err);
/*
 * qemu-ga never thaws by itself: a command killed between freeze and thaw
 * would leave the guest hanging on its next write.  So a freeze is marked
 * in <run_dir>/fsfrozen (the freezer's pid) before it is asked for and the
 * mark removed after the thaw; whoever next finds a mark whose process is
 * gone thaws (the next snapshot, stop).  thaw_abandoned: 1 when it thawed,
 * 0 when there was nothing to do (no mark, or its process still runs).
 */
int net_agent_freeze_mark(const char *run_dir, phy_error *err);
void net_agent_freeze_unmark(const char *run_dir);
int net_agent_thaw_abandoned(const char *run_dir, int timeout_ms, phy_error *err);
int net_agent_fsthaw_fd(int fd, int timeout_ms, phy_error *err);
/* For status: {"networks": net_nics_to_json(d)} and, when run_dir is
 * given (the VM runs), each user NIC's backend as QEMU runs it ("absent"
 * when not plugged) and, when the guest opened the agent's port (QMP
 * query-chardev), "guest_interfaces" from the agent. */
struct json_object *net_status_json(const struct vm_def *d, const char *run_dir);

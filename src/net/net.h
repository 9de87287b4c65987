/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Networking and shared folders around QEMU (issue 4, docs/networking.md):
 * port forwards, MAC addresses, the companion daemons (passt for user
 * networking, virtiofsd for virtiofs shares) that the monitor starts before
 * QEMU and stops after it, and the checks on shared directories.
 */
#include <stdbool.h>
#include <sys/types.h>
#include "error.h"
#include "strv.h"

struct vm_def;
struct vm_nic;
struct qmp;

/* "tcp:2222:22" or "tcp:ADDR:2222:22"; addr is "" when none was given. */
struct net_forward {
        char proto[4];          /* "tcp", "udp" */
        char addr[16];          /* IPv4, "" = loopback */
        unsigned host_port, guest_port;
};

/* Parses a forward; ret may be NULL (just validate).  -EINVAL when bad. */
int net_forward_parse(const char *spec, struct net_forward *ret);
/* The address a forward listens on: its own, else 127.0.0.1. */
const char *net_forward_addr(const struct net_forward *f);
/* Refuses a forward whose host port is taken: tries to bind it.
 * -EADDRINUSE with "host port 127.0.0.1:2222 (tcp) ... is already in use". */
int net_forward_check_free(const char *spec, phy_error *err);
/* QEMU slirp's hostfwd rule "tcp:127.0.0.1:2222-:22" (malloc'd). */
char *net_forward_hostfwd(const struct net_forward *f);

/* Gives every NIC of d a new random locally administered 52:54:00 MAC,
 * different from the ones it had (for clones). */
int net_new_macs(struct vm_def *d, phy_error *err);

/* The passt binary: $PHYLLOME_PASST, else passt in $PATH; NULL when none. */
char *net_passt_path(void);
/* virtiofsd: $PHYLLOME_VIRTIOFSD, else /usr/lib/qemu/virtiofsd, /usr/libexec/virtiofsd. */
char *net_virtiofsd_path(void);
/* True when NIC n (mode user) will use passt on this host. */
bool net_nic_uses_passt(const struct vm_nic *n);

/* A shared directory must exist, be a directory, and be neither / nor
 * inside-or-above the Phyllome home (home may be NULL). */
int net_share_check_dir(const char *path, const char *home, phy_error *err);

/* The daemons of one run.  nic_fds[i]/share_fds[i]: the socket QEMU gets
 * for NIC i (passt) / share i (virtiofs), -1 when QEMU needs none. */
struct net_companions {
        pid_t *pids;
        int *pidfds;
        size_t n_pids;
        int *nic_fds;
        size_t n_nics;
        int *share_fds;
        size_t n_shares;
};

/* Checks every forward's host port, then starts passt per user NIC that
 * uses it and virtiofsd per virtiofs share (read-only shares in a private
 * mount namespace where the directory is mounted read-only).  Logs go to
 * <run_dir>/passt-<nic>.log and virtiofsd-<tag>.log.  On failure nothing
 * started stays running. */
int net_companions_start(struct net_companions *nc, const struct vm_def *model, const char *vm_dir,
                         const char *run_dir, phy_error *err);
/* Closes QEMU's ends once QEMU has them. */
void net_companions_close_qemu_fds(struct net_companions *nc);
/* Waits up to 3 s for each daemon to end on its own (they end with QEMU's
 * end of the socket), then SIGTERM, then SIGKILL; reaps them. */
void net_companions_stop(struct net_companions *nc);

/* Adds/removes a slirp forward on a running VM (QMP hostfwd_add/remove).
 * -EOPNOTSUPP when the NIC's backend cannot (passt). */
int net_hotfwd(struct qmp *q, const char *nic, const char *spec, bool add, phy_error *err);

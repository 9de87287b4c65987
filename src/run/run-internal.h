/* SPDX-License-Identifier: MIT */
#pragma once
/* Shared between the files of src/run; not part of the library interface. */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "error.h"
#include "qemu/qmp.h"
#include "strv.h"

/* The monitor's comm (prctl PR_SET_NAME): how status recognises it. */
#define RUN_MONITOR_COMM "phyllo-monitor"

/* <run_dir>/<file>, malloc'd (NULL on OOM). */
char *run_file(const char *run_dir, const char *file);
struct run_state;
/* run_reconcile for a caller that holds the run lock already (run_start). */
int run_reconcile_locked(const char *home, const char *name, struct run_state *ret, phy_error *err);
/* Removes the sockets and markers a run leaves (not the logs or the state). */
void run_dir_remove_sockets(const char *run_dir);

/* Who QEMU and swtpm run as: the caller unless root, then an unprivileged
 * user ($PHYLLOME_QEMU_USER, default "nobody"). */
struct run_creds {
        bool drop;
        uid_t uid;
        gid_t gid;
        gid_t kvm_gid;          /* group of /dev/kvm, kept as a supplementary group; -1: none */
        char user[64];
};
int run_creds_get(struct run_creds *ret, phy_error *err);
/* In a forked child, before execve: drop to creds (when drop), set
 * no-new-privileges.  Async-signal-safe; -errno. */
int run_creds_apply_child(const struct run_creds *c);

/* sound.c: the PulseAudio socket (PulseAudio, or PipeWire's
 * pipewire-pulse) QEMU can connect to as the user c names: *ret_path, or
 * NULL and *ret_why (a sentence).  -ENOMEM. */
int run_sound_find_for(const struct run_creds *c, char **ret_path, char **ret_why);

/* pidfd_open(2) through syscall(2) (glibc 2.36 has no wrapper everywhere). */
int run_pidfd_open(pid_t pid);
/* Waits up to timeout_ms for the process behind pidfd to end (poll). */
bool run_pidfd_wait(int pidfd, int timeout_ms);

/* CLOCK_MONOTONIC in milliseconds, for deadlines. */
int64_t run_mono_ms(void);

/* swtpm.c */
int run_swtpm_setup(const char *swtpm_setup, const char *state_dir, const struct run_creds *c,
                    const char *log_path, phy_error *err);
int run_swtpm_spawn(const char *swtpm, const char *state_dir, int ctrl_fd, const char *log_path,
                    const struct run_creds *c, pid_t *ret_pid, phy_error *err);

/* Last `lines` lines of a file (malloc'd, may be ""), NULL when unreadable. */
char *run_file_tail(const char *path, unsigned lines);

/* SPDX-License-Identifier: MIT */
#pragma once
/* Shared between the files of src/run; not part of the library interface. */
#include <stdbool.h>
#include <stdint.h>
#include <linux/landlock.h>
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

/* Who QEMU and its companions run as: the caller unless root; as root a
 * uid of the VM's own from host.conf's vm-uids range (per_vm; gid = uid),
 * else ($PHYLLOME_QEMU_USER, or vm-uids = off) one unprivileged user.
 * home, name or host NULL: no VM, no uid is given out (a uid of the
 * default range stands for any VM's). */
struct run_creds {
        bool drop;
        bool per_vm;
        uid_t uid;
        gid_t gid;
        gid_t kvm_gid;          /* group of /dev/kvm, kept as a supplementary group; -1: none (run_creds_kvm) */
        char user[64];
};
struct host_facts;
int run_creds_get(const char *home, const char *name, const struct host_facts *host, struct run_creds *ret,
                  phy_error *err);
/* QEMU's creds when it runs under KVM: c with /dev/kvm's group as its one
 * supplementary group, when it drops to a uid of its own and this host
 * names that group "kvm".  Only QEMU, and only under KVM: a QEMU under TCG,
 * swtpm and the companions get no group (run_creds_get gives none). */
void run_creds_kvm(struct run_creds *c);
/* In a forked child, before execve: drop to creds (when drop), set
 * no-new-privileges.  Async-signal-safe; -errno. */
int run_creds_apply_child(const struct run_creds *c);
/* prepare.c: true when the permission bits alone prove that c's user
 * reaches path for mode (R_OK/W_OK/X_OK): no symlink, '.', '..' or ACL on
 * the way.  False proves nothing (the start then asks as that user). */
bool run_reachable_by_modes(const struct run_creds *c, const char *path, int mode);

/* sound.c: the PulseAudio socket (PulseAudio, or PipeWire's
 * pipewire-pulse) QEMU can connect to as the user c names: *ret_path, or
 * NULL and *ret_why (a sentence).  -ENOMEM. */
int run_sound_find_for(const struct run_creds *c, char **ret_path, char **ret_why);
/* sandbox.c: Landlock.  A ruleset built before fork (begin, allow...),
 * applied in the child after the creds and before execve.  abi 0: the
 * kernel has no Landlock, and the ruleset is empty (fd -1). */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)      /* ABI 3; older headers lack it */
#endif
#define RUN_SB_R (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define RUN_SB_RX (RUN_SB_R | LANDLOCK_ACCESS_FS_EXECUTE)
#define RUN_SB_RW (RUN_SB_R | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE)
/* The same for a path known to be a file (no directory-only right: the
 * rule is added at the first try, run_sandbox_allow). */
#define RUN_SB_FILE_R LANDLOCK_ACCESS_FS_READ_FILE
#define RUN_SB_FILE_RW (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE)
/* Everything in a directory of the VM's own but devices. */
#define RUN_SB_DIR (RUN_SB_RW | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE | \
                    LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | \
                    LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_REFER)
struct run_sandbox {
        int fd;                 /* the ruleset, -1 when none */
        int abi;
        uint64_t handled;
        bool usr_rx;            /* run_sandbox_allow_base allowed /usr to read and run */
};
void run_sandbox_init(struct run_sandbox *s);
void run_sandbox_done(struct run_sandbox *s);
int run_sandbox_begin(struct run_sandbox *s, phy_error *err);
int run_sandbox_allow(struct run_sandbox *s, const char *path, uint64_t access, phy_error *err);
int run_sandbox_allow_base(struct run_sandbox *s, phy_error *err);
/* The QEMU binary, and its own installation prefix when it has one (sandbox.c). */
int run_sandbox_allow_qemu(struct run_sandbox *s, const char *binary, phy_error *err);
/* In the child: no-new-privileges and landlock_restrict_self.  Async-signal-safe; -errno. */
int run_sandbox_apply_child(const struct run_sandbox *s);

/* The setup in a child of exec_spawn (src/common/exec.h) that runs as the
 * VM's user: creds applied, then the Landlock ruleset sb (may be NULL). */
struct run_child {
        const struct run_creds *creds;
        const struct run_sandbox *sb;
};
int run_child_setup(void *data);

/* CLOCK_MONOTONIC in milliseconds, for deadlines. */
int64_t run_mono_ms(void);

/* swtpm.c */
int run_swtpm_setup(const char *swtpm_setup, const char *state_dir, const struct run_creds *c,
                    const char *log_path, phy_error *err);
int run_swtpm_spawn(const char *swtpm, const char *state_dir, int ctrl_fd, const char *log_path,
                    const struct run_creds *c, pid_t *ret_pid, phy_error *err);

/* openat(dir, file, flags | O_NOFOLLOW | O_CLOEXEC) with dir opened
 * O_NOFOLLOW: the fd or -errno. */
int run_open_at(const char *dir, const char *file, int flags, mode_t mode);

/* Last `lines` lines of a file (malloc'd, may be ""), NULL when unreadable. */
char *run_file_tail(const char *path, unsigned lines);

/* Unattended install runs (install.c).  run_install_prepare writes the
 * answer's carrier into the run dir: VM_INSTALL_INITRD_FILE (the media's
 * initrd + a cpio archive holding the answer) or VM_INSTALL_ISO_FILE (a CD
 * with the answer at its root), 0640 root:<VM gid> (0600 when QEMU runs as
 * ourselves).  run_install_cleanup removes them (true when one was there);
 * run_install_end also ends [install] in the definition (vm_install_finish). */
struct vm_install;
struct run_answer;
int run_install_prepare(const char *vm_dir, const char *run_dir, const struct vm_install *in,
                        const struct run_answer *a, const struct run_creds *cr, phy_error *err);
bool run_install_cleanup(const char *run_dir);
void run_install_end(const char *home, const char *name, const char *run_dir);

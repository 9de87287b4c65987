/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The per-VM monitor, by role (internal to src/run):
 *
 *   start.c      the caller's run_start: checks, lock, model, files, the
 *                fork (setsid), then waits for the monitor's report
 *   prepare.c    the files QEMU's user must reach (run dir, vars, TPM
 *                state, disks), prepared by the caller before the fork
 *   boot.c       the monitor's startup: an ordered table of steps, each
 *                with its undo; a failure at step k undoes k..0
 *   supervise.c  the monitor's epoll loop once QEMU runs, and its end
 *   console.c    the serial console: console.log and the relay's clients
 *   record.c     what the monitor records: state.json, QEMU's events, how
 *                QEMU ended, the report to the starting command
 *   handover.c   the forked monitor's exec into phyllo-monitor
 *                (src/libexec/monitor.c, libc only, json-c linked in), which runs
 *                supervise.c's loop and end for the weeks a VM runs
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "dev/dev.h"
#include "dev/helper.h"
#include "host/host.h"
#include "net/net.h"
#include "qemu/caps.h"
#include "qemu/qmp.h"
#include "qemu/tools.h"
#include "run-internal.h"
#include "backing.h"
#include "run.h"
#include "strv.h"
#include "vm/vm.h"

#define MAX_CONSOLE_CLIENTS 16
#define RUN_PHASES_MAX 40

/* timing.c: CLOCK_MONOTONIC stamps of a start's phases (names are static
 * strings), written to <run_dir>/start-phases.json for bench/run. */
struct run_phase {
        const char *name;
        int64_t ns;
};
struct run_phases {
        size_t n;
        struct run_phase v[RUN_PHASES_MAX];
};
int64_t run_mono_ns(void);
void run_phase_mark(struct run_phases *p, const char *name);
void run_phases_write(const char *run_dir, const struct run_phases *p);
void run_phases_forget(const char *run_dir);
#define START_TIMEOUT_MS 120000

/* Everything the monitor needs, prepared by run_start before the fork. */
struct start_ctx {
        const char *name;
        const char *home;
        bool install_run;               /* [install] with its answer: the files in the run dir are made */
        const char *root;               /* host root prefix: where devices move to vfio-pci */
        dev_kernel_hook dev_hook;       /* tests only, see run_start_opts */
        void *dev_hook_data;
        char *run_dir;
        char *vm_dir;
        struct vm_model model;          /* vm_model_make: defaults filled, the disks' O_DIRECT probed */
        struct host_facts host;
        struct qemu_tools tools;
        struct qemu_caps caps;
        bool have_caps;
        struct run_creds creds;
        bool paused, force_tcg;
        bool boot_once_cdrom;   /* issue 19: CD-ROMs first this start, even with an OS on the disk */
        const char *incoming;           /* -incoming (migration destination), or NULL */
        char *audio_server, *audio_why; /* the sound server QEMU's user reaches, or why none (sound.c) */
        bool run_dir_untrusted;         /* others could write it: emptied before use */
        int lock_fd;
        int report_fd;          /* pipe to the starting command */
        struct run_phases phases;       /* the caller's, then the monitor's (timing.c) */
};

struct monitor {
        struct start_ctx *c;
        struct run_state st;
        bool staged;                    /* state.json.next holds a record (staged_state's, or the former) */
        enum run_state_kind staged_state;
        char *state_path, *qemu_log, *console_log, *console_log1, *stop_marker;
        int epfd, sigfd;
        /* The serial console (ttyS0): QEMU's stdout and stdin are pipes
         * (console.c); ours are the output's read end and the input's write
         * end, and a timer for the next batch read of the output. */
        int serial_fd, serial_in, serial_timer;
        int console_listen;
        int clients[MAX_CONSOLE_CLIENTS];
        int qemu_pidfd, swtpm_pidfd;
        struct net_companions net;      /* passt, virtiofsd (src/net) */
        struct dev_vfio_owners vfio;    /* /dev/vfio/GROUP owners before QEMU got them */
        struct qmp *qmp;
        int clog_fd;
        size_t clog_size, clog_max;
        bool stop_requested;
        bool qemu_exited;
        int qemu_status;

        /* The startup's own (boot.c): QEMU's ends of the sockets, closed
         * once QEMU holds its copies, and what builds its command line. */
        char *qmp_path, *console_path, *hvc0_path, *qga_path, *swtpm_log, *spice_dir, *spice_sock;
        int qmp_listen, hvc0_listen, qga_listen;
        int monqmp[2], serial_qemu[2], tpm[2];     /* serial_qemu: QEMU's stdin, stdout */
        int *key_fds;           /* model.vm.n_disks of them, -1 for none */
        struct run_backing backing;     /* the disks' backing chains, opened as root (backing.c) */
        strv argv;
        struct run_sandbox sb;
        bool sb_made;
        bool kvm;                       /* QEMU runs under KVM (qemu_argv_use_kvm): /dev/kvm in its sandbox */
        struct run_creds qemu_creds;    /* c->creds, with /dev/kvm's group under KVM only (run_creds_kvm) */
        size_t steps_begun;     /* steps whose run began: their undos end the VM */
        bool first_output;      /* the guest's first serial byte was stamped */
};

/* start.c / prepare.c: the caller's side */
void start_ctx_done(struct start_ctx *c);
int prepare_files(struct start_ctx *c, phy_error *err);

/* boot.c: the monitor's startup.  The names of the steps, in order
 * (NULL-terminated), and the check of $PHYLLOME_FAULT_STEP (test builds:
 * the start fails right after the step it names, to prove the undos). */
const char *const *monitor_boot_steps(void);
int monitor_fault_check(phy_error *err);
_Noreturn void monitor_main(struct start_ctx *c);

/* supervise.c */
/* All fds -1, nothing held. */
void monitor_init(struct monitor *m, struct start_ctx *c);
/* Adds every fd the loop waits on to m->epfd. */
int monitor_watch(struct monitor *m, phy_error *err);
/* The 'R' record to the starting command (the start succeeded). */
void monitor_report_ready(struct monitor *m);
/* After it: waits until the starting command has closed its end of the
 * report pipe (it is done), 1 s at most. */
void monitor_report_read(struct monitor *m);
/* Then: passt leaves its gate; the start's phases are written. */
void monitor_report_settle(struct monitor *m);
/* Once every start step ran: becomes the lean executable when it can
 * (handover.c), which reports the start; else reports and runs the loop
 * here. */
_Noreturn void monitor_supervise(struct monitor *m);
/* The loop until QEMU has ended, then its end recorded; true when an
 * install run's guest rebooted into the installed system. */
bool monitor_loop(struct monitor *m);
/* monitor_cleanup, then the process ends (and with it the lock). */
_Noreturn void monitor_end(struct monitor *m);
/* Ends everything the VM had (every startup step's undo, last first) and
 * records the final state. */
void monitor_cleanup(struct monitor *m);
/* Whether 'phyllo stop' left its marker (record.c). */
bool record_stop_marker_exists(struct monitor *m);
void monitor_undo_all(struct monitor *m);
void monitor_reap(struct monitor *m);

/* handover.c: the fat monitor's exec of the lean one (phyllo-monitor,
 * src/libexec/monitor.c) with the fds it holds and a state record in a
 * sealed memfd; returns only when that failed (then nothing changed).
 * monitor_handover_load rebuilds the monitor from the record in the lean
 * one (m initialised, c zeroed; its strings are borrowed from *ret_keep,
 * which is set, the caller's, also on a failure after the record was read). */
void monitor_handover_exec(struct monitor *m);
int monitor_handover_load(int fd, struct monitor *m, struct start_ctx *c, struct json_object **ret_keep,
                          phy_error *err);
char *monitor_lean_path(void);

/* console.c */
void console_log_open(struct monitor *m, bool rotate);
void console_log_start_line(struct monitor *m);
void console_log_close(struct monitor *m);
/* The serial pipes, made for QEMU's stdin and stdout (boot.c). */
int console_serial_pipes(struct monitor *m, phy_error *err);
/* Adds the serial output and its batch timer to m->epfd. */
int console_serial_watch(struct monitor *m);
/* The serial output or its batch timer is readable. */
void console_serial_event(struct monitor *m, int fd);
/* What QEMU wrote before it ended, to its EOF. */
void console_serial_drain(struct monitor *m);
void console_serial_close(struct monitor *m);
void console_accept(struct monitor *m);
void console_client_input(struct monitor *m, int i);
void console_client_drop(struct monitor *m, int i);
void console_clients_drop(struct monitor *m);

/* record.c */
/* A record to the starting command: a type byte ('W' warning, 'R' ready,
 * 'E' error), a 4-byte length and the text. */
void record_report(int fd, char type, const char *text);
void record_state_save(struct monitor *m);
/* The record as it will be once `state` holds, written beside state.json
 * (state.json.next) ahead of the moment; commit puts it in place (the
 * former record then at state.json.next), forget removes what is there. */
void record_state_stage(struct monitor *m, enum run_state_kind state);
void record_state_commit(struct monitor *m, enum run_state_kind state);
void record_state_forget(struct monitor *m);
void record_set_error(struct run_state *st, const char *msg);
void record_qmp_events(struct monitor *m);
void record_exit(struct monitor *m);

int monitor_epoll_add(int epfd, int fd, uint32_t events);

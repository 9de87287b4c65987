/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The VM watcher (watch.c), phyllod's eyes: every VM's monitor replaces
 * <run dir>/state.json atomically on each change (src/run), QMP events
 * included, and counts the guest's events there; definitions come and go by
 * rename in <home>/vms.  So one inotify fd over the run dirs and <home>/vms
 * sees them all, also for VMs started before the watcher or by the CLI.  One
 * thread sleeps in poll().
 *
 * The thread also holds a pidfd on each active VM's monitor (its QEMU when
 * the monitor is gone): when that process ends without the record saying so
 * (kill -9, a crash), it runs the reconcile (run_reconcile: swtpm, sockets,
 * devices, state.json says crashed) that a status read never makes, and the
 * new state.json is a change like any other.
 */
#include <stdbool.h>
#include "error.h"

struct ops_watch_cb {
        /* A VM's state changed (previous "" for the first one seen). */
        void (*state)(void *u, const char *name, const char *state, const char *previous);
        /* The latest guest event of a VM whose count moved (a new run starts
         * from zero; events inotify coalesced show as a jump in count). */
        void (*guest)(void *u, const char *name, const char *event, const char *reason, unsigned long long count);
        /* A VM defined (its directory renamed into <home>/vms) or no longer. */
        void (*defined)(void *u, const char *name, bool defined);
        void *userdata;
};

struct ops_watch;
/* Starts watching home; the callbacks run on the watcher's thread, state
 * and guest with its lock held (they may take their own locks, and must not
 * call back into the watcher). */
int ops_watch_start(const char *home, const struct ops_watch_cb *cb, struct ops_watch **ret, phy_error *err);
void ops_watch_stop(struct ops_watch *w);

struct ops_watch_vm { const char *name, *state; };
/* fn with every VM's last state seen, under the watcher's lock: no change is
 * reported while it runs (a subscriber queues the states and registers in one
 * step, so it misses no change and sees none twice). */
void ops_watch_snapshot(struct ops_watch *w, void (*fn)(void *u, const struct ops_watch_vm *vms, size_t n), void *u);

/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The catalog worker, as phyllod and phyllo start it (worker.c): one
 * `phyllome-catalog-worker` process per call, started with an argv array,
 * its records read from a pipe with every size checked (the record format:
 * src/libexec/catalog-worker.c).  Neither phyllod nor phyllo links the
 * catalog's libraries; the worker starts neither of them, so no call can
 * come back around.
 */
#include <stdbool.h>
#include <sys/types.h>
#include "error.h"
#include "ops.h"

struct json_object;

/* One record's longest line, and all of a run's output. */
#define OPS_WORKER_RECORD_MAX (1024u * 1024)
#define OPS_WORKER_OUTPUT_MAX (16u * 1024 * 1024)

struct ops_worker_call {
        const char *const *args;        /* after the program name, NULL-terminated */
        const char *input;              /* on the worker's stdin (at most 4 KiB: a password), or NULL */
        bool quiet;                     /* its stderr to /dev/null (else inherited) */
        /* each {"progress": P} record's P */
        void (*on_progress)(struct json_object *p, void *userdata);
        /* the worker runs as pid; it may be signalled until on_ended */
        void (*on_started)(pid_t pid, void *userdata);
        /* it has ended and is not reaped yet: nothing else has its pid */
        void (*on_ended)(void *userdata);
        void *userdata;
};

/* $PHYLLOME_CATALOG_WORKER (absolute), else the one next to this program (the
 * build tree), else the installed one (libexecdir/phyllome).  Malloc'd. */
char *ops_worker_path(void);

/* Runs the worker: 0 with *ret its result, or its error (kind, errno and
 * sentence as it said them).  A record over OPS_WORKER_RECORD_MAX, more than
 * OPS_WORKER_OUTPUT_MAX in all, a line that is not one of its records, or an
 * end without its last record ends the worker (SIGKILL) and is an error
 * naming the worker (kind host).  The worker is reaped in every case. */
int ops_worker_run(const struct ops_worker_call *c, struct json_object **ret, phy_error *err);

/* ---- background downloads (downloads.c): phyllod's /v1/downloads ----
 * Each runs the worker's download verb in a thread of its own; its progress
 * records become the job's phase, done and total, published (publish) at
 * each phase and each whole percent.  One download per OS at a time; the
 * 64 latest jobs are kept (a finished one makes room).  Jobs are
 * {id, os, state: running|done|failed|cancelled, phase, done, total, path?,
 * error?}. */
struct ops_download_start {
        const char *os;                 /* the catalog's id (checked by the caller) */
        bool unverified;
        const char *part;               /* the partial file the worker writes (removed on cancel), or NULL */
        void (*publish)(void *userdata, struct json_object *job);
        void *userdata;
};
/* 0 with *ret the new job (running); -EBUSY (conflict) when os downloads
 * already or too many jobs are kept. */
int ops_download_start(const struct ops_download_start *o, struct json_object **ret, phy_error *err);
/* id NULL: {"downloads": [job, ...]}; else the job, -ENOENT when none. */
int ops_download_get(const char *id, struct json_object **ret, phy_error *err);
/* Cancels a running job: its worker gets SIGTERM (SIGKILL after 10 s); 0 with
 * *ret the job once it has ended and its partial file is gone (cancelled).
 * -ENOENT, -EALREADY (conflict: it has ended), -ETIMEDOUT. */
int ops_download_cancel(const char *id, struct json_object **ret, phy_error *err);

/* ---- an unattended install's answer (unattended.c) ---- */
struct ops_unattended {
        const char *os;                 /* a catalog id, or NULL: osinfo identifies the ISO */
        const char *iso;                /* the install media, a path the caller may read */
        const char *profile;            /* the VM's (Windows or not), NULL: the OS's */
        const char *user, *timezone, *locale, *hostname, *edition;
        const char *password;           /* or password_file, a path the caller may read */
        const char *password_file;
        bool drivers;                   /* virtio-win's drivers in Windows setup */
};
/* {"profile": the OS's, "install": POST /v1/vms's "install" member}, made by
 * the worker's install verb.  The password reaches it on its stdin, never on
 * a command line; a password_file is read by the worker itself when it runs
 * as the caller, else read here for the caller (a file they may read, opened
 * without following a symlink, at most 4 KiB). */
int ops_unattended_answer(const struct ops_ctx *c, const struct ops_unattended *u, struct json_object **ret,
                          phy_error *err);

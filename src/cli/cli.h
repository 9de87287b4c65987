/* SPDX-License-Identifier: MIT */
#pragma once
/* The phyllo CLI: a command table in main.c, one file per command group.
 * Only this layer prints.  Handlers return a process exit status. */
#include <stdbool.h>
#include <json-c/json.h>
#include "error.h"
#include "cleanup.h"
#include "json-cleanup.h"
#include "ops/ops.h"


struct cli_ctx {
        const char *root;      /* root prefix for host discovery */
        char *home;            /* Phyllome home (resolved lazily by cli_home) */
        bool local;            /* work in this process, not through phyllod (--qemu PATH) */
};


typedef int (*cli_fn)(struct cli_ctx *ctx, int argc, char **argv);

struct cli_cmd {
        const char *group;     /* "host", or NULL for top-level verbs */
        const char *verb;
        cli_fn fn;
        const char *usage;     /* one line after "phyllo " */
        const char *summary;
};

/* The exit status of a stop that had to terminate the VM: it did not shut
 * down within the timeout (not an error, not a clean stop either). */
#define CLI_EXIT_FORCED 3

/* Prints "phyllo: <message>" to stderr and returns the exit status for it. */
int cli_fail(const phy_error *e);
/* The usage line of the command being run (its row of the command table in
 * main.c, the one place it is written). */
const char *cli_usage(void);
/* getopt_long for a command's options: every handler parses through it, so
 * that `phyllo help --options COMMAND` can list what the parser takes and a
 * test can compare that with the usage line. */
struct option;
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *opts);
/* Parses --json, a command's only option, and wants exactly n operands
 * (argv[optind]...): 0, or the exit status after the usage error. */
int cli_json_operands(int argc, char **argv, int n, bool *json);
/* Before a destructive step ("delete VM 'x' and its files"): 0 to go
 * ahead when yes (--yes) or when the person at the terminal answers y;
 * else the exit status after saying why nothing was done (1: they said
 * no; 2: no terminal to ask on and no --yes). */
int cli_confirm(bool yes, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints a usage error naming the command and returns 2. */
int cli_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Resolves the home directory; on failure prints and returns <0. */
int cli_home(struct cli_ctx *ctx, const char **ret);
/* Prints each of a reply's "warnings" to stderr ("phyllo: warning: ..."). */
void cli_print_warnings(json_object *o);
/* Prints a json object (pretty) followed by a newline; takes ownership. */
void cli_print_json(json_object *o);
/* One request to phyllod's API (docs/api.md) when a daemon answers for this
 * home, else the same route run in-process (src/cli/api.c).  Returns 0 with
 * *ret the reply's JSON (owned by the caller), or the exit status after
 * printing the error.  body may be NULL; PHYLLOME_NO_DAEMON=1: never the daemon. */
int cli_api_call(struct cli_ctx *ctx, const char *method, const char *path, json_object *body, json_object **ret);
/* Through phyllod only: no daemon (or a direct case, see cli_api_call) is
 * 0 with *ret_direct, for a command that then calls src/ops itself with what
 * only works in this process (progress on the terminal). */
int cli_api_try(struct cli_ctx *ctx, const char *method, const char *path, json_object *body, json_object **ret,
                bool *ret_direct);
/* GET path from phyllod, its body as text (*ret, malloc'd): for a reply
 * too large to be worth json-c's objects.  No daemon: 0 with *ret_direct,
 * as cli_api_try. */
int cli_api_get_text(struct cli_ctx *ctx, const char *path, char **ret, size_t *ret_len, bool *ret_direct);
/* cli_api_call on a path made from fmt; takes body (may be NULL). */
int cli_call(struct cli_ctx *ctx, const char *method, json_object *body, json_object **ret, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
/* The VM name of a command line, checked before it goes into a path: 0, or
 * the exit status after printing why not (the sentence of src/ops). */
int cli_name_arg(const char *name);
/* The same for another name that goes into a path ("disk name", ...). */
int cli_word_arg(const char *what, const char *word);
/* A path given on the command line, made absolute against our directory
 * (phyllod has none of ours); NULL when out of memory. */
char *cli_abs_path(const char *path);
/* Members of a reply: a string ("" when absent), a number, a flag. */
const char *cli_jstr(json_object *o, const char *key);
int64_t cli_jint(json_object *o, const char *key);
bool cli_jbool(json_object *o, const char *key);
/* The serial console of VM name: a connection through phyllod (an HTTP
 * Upgrade) or straight to the monitor.  0 and *ret_fd, or the exit status. */
int cli_console_open(struct cli_ctx *ctx, const char *name, int *ret_fd);
/* The same for what only works here (a log follower): the ops context. */
int cli_ops(struct cli_ctx *ctx, struct ops_ctx *ret);
/* The streamed routes (export, import) the same way: in_fd sent as the body
 * (-1: none), a 200 reply's body to out_fd (-1: JSON into *ret).  No daemon
 * (and PHYLLOME_REQUIRE_DAEMON unset): 0 with *ret_direct true, the caller
 * works directly.  Else 0 or the exit status after printing the error. */
int cli_api_stream(struct cli_ctx *ctx, const char *method, const char *path, int in_fd, int out_fd,
                   void (*progress)(uint64_t, uint64_t, void *), void *userdata, json_object **ret, bool *ret_direct);
/* A body that grows until one side leaves (GET .../logs?follow=1) to out_fd:
 * like cli_api_stream, but the reader of out_fd going away ends it quietly (0). */
int cli_api_follow(struct cli_ctx *ctx, const char *path, int out_fd, bool *ret_direct);
/* Migration progress from phyllod's event stream (src/cli/api.c): a thread
 * calls fn for each "migrate" event of VM name while the request runs.
 * NULL when no daemon answers (the caller then works directly). */
struct cli_events;
struct cli_events *cli_events_watch(struct cli_ctx *ctx, const char *name,
                                    void (*fn)(const char *phase, uint64_t done, uint64_t total, void *userdata),
                                    void *userdata);
void cli_events_end(struct cli_events *w);
/* Encrypted disks with a typed passphrase ([disk] key = prompt,
 * src/cli/passphrase.c): ask for one on /dev/tty (-ENOTTY without a
 * terminal), a new one twice (-EINVAL when they differ); unlock asks for
 * VM name's disks that need one, for the command about to run (0, or the
 * exit status after printing why not; nothing while the VM runs unless
 * even_running); forget removes what unlock kept. */
int cli_ask_passphrase(const char *disk, char *buf, size_t len, void *userdata);
int cli_new_passphrase(const char *disk, const char *vm, char *buf, size_t len);
int cli_keys_unlock(struct cli_ctx *ctx, const char *name, bool even_running, bool *ret_any);
void cli_keys_forget(struct cli_ctx *ctx, const char *name);
/* True when argv[i] is --help/-h; prints usage for the command. */
bool cli_wants_help(int argc, char **argv, const char *usage, const char *summary);

/* create --os OS / --iso FILE (src/cli/catalog.c): in *ret_create the
 * members of POST /v1/vms the catalog's plan sets (profile, resources,
 * devices), the downloaded media in *ret_iso (NULL when iso was given or
 * there is no direct download).  0, or the exit status after printing why
 * not.  apply adds to b, the body of POST /v1/vms, what the user left unset. */
struct json_object;
int cli_catalog_for_create(struct cli_ctx *ctx, const char *os, const char *iso, bool unverified,
                           struct json_object **ret_create, char **ret_iso);
void cli_catalog_apply(struct json_object *create, struct json_object *b);
/* create --unattended: POST /v1/vms's "install" member (the answer file for
 * os, or the OS osinfo finds on iso) added to b; 0 or the exit status after
 * printing why not.  The password comes from password_file, never argv. */
struct catalog_unattend;
int cli_catalog_unattended(struct cli_ctx *ctx, const char *os, const char *iso, const char *profile,
                           const char *password_file, struct catalog_unattend *u, struct json_object *b);

/* Command handlers, one file per group. */
int cmd_host_check(struct cli_ctx *, int, char **);
int cmd_host_devices(struct cli_ctx *, int, char **);
int cmd_create(struct cli_ctx *, int, char **);
int cmd_list(struct cli_ctx *, int, char **);
int cmd_show(struct cli_ctx *, int, char **);
int cmd_rename(struct cli_ctx *, int, char **);
int cmd_cdrom_insert(struct cli_ctx *, int, char **);
int cmd_cdrom_eject(struct cli_ctx *, int, char **);
int cmd_edit(struct cli_ctx *, int, char **);
int cmd_delete(struct cli_ctx *, int, char **);
int cmd_profiles(struct cli_ctx *, int, char **);
int cmd_argv(struct cli_ctx *, int, char **);
int cmd_caps(struct cli_ctx *, int, char **);
/* lifecycle: src/cli/run.c */
int cmd_start(struct cli_ctx *, int, char **);
int cmd_stop(struct cli_ctx *, int, char **);
int cmd_kill(struct cli_ctx *, int, char **);
int cmd_restart(struct cli_ctx *, int, char **);
int cmd_pause(struct cli_ctx *, int, char **);
int cmd_resume(struct cli_ctx *, int, char **);
int cmd_status(struct cli_ctx *, int, char **);
int cmd_console(struct cli_ctx *, int, char **);
int cmd_logs(struct cli_ctx *, int, char **);
int cmd_view(struct cli_ctx *, int, char **);
int cmd_wait(struct cli_ctx *, int, char **);
/* storage: src/cli/disk.c, snapshot.c, clone.c, bundle.c */
int cmd_disk_add(struct cli_ctx *, int, char **);
int cmd_disk_list(struct cli_ctx *, int, char **);
int cmd_disk_resize(struct cli_ctx *, int, char **);
int cmd_disk_remove(struct cli_ctx *, int, char **);
int cmd_snapshot_create(struct cli_ctx *, int, char **);
int cmd_snapshot_list(struct cli_ctx *, int, char **);
int cmd_snapshot_revert(struct cli_ctx *, int, char **);
int cmd_snapshot_delete(struct cli_ctx *, int, char **);
/* devices: src/cli/device.c */
int cmd_device_attach(struct cli_ctx *, int, char **);
int cmd_device_detach(struct cli_ctx *, int, char **);
int cmd_device_list(struct cli_ctx *, int, char **);
int cmd_device_mdev_types(struct cli_ctx *, int, char **);
int cmd_device_mdev_create(struct cli_ctx *, int, char **);
int cmd_device_mdev_remove(struct cli_ctx *, int, char **);
int cmd_device_mdev_attach(struct cli_ctx *, int, char **);
int cmd_device_sriov(struct cli_ctx *, int, char **);
int cmd_device_give_back(struct cli_ctx *, int, char **);
int cmd_usb_attach(struct cli_ctx *, int, char **);
int cmd_usb_detach(struct cli_ctx *, int, char **);
int cmd_clone(struct cli_ctx *, int, char **);
int cmd_export(struct cli_ctx *, int, char **);
int cmd_import(struct cli_ctx *, int, char **);
int cmd_import_libvirt(struct cli_ctx *, int, char **);
int cmd_import_quickemu(struct cli_ctx *, int, char **);
int cmd_import_ova(struct cli_ctx *, int, char **);
int cmd_migrate(struct cli_ctx *, int, char **);
/* networking and shared folders: src/cli/net.c, share.c */
int cmd_net_forward(struct cli_ctx *, int, char **);
int cmd_net_nic(struct cli_ctx *, int, char **);
int cmd_share_add(struct cli_ctx *, int, char **);
int cmd_share_remove(struct cli_ctx *, int, char **);
int cmd_share_list(struct cli_ctx *, int, char **);
/* the OS catalog: src/cli/catalog.c */
int cmd_catalog_list(struct cli_ctx *, int, char **);
int cmd_catalog_search(struct cli_ctx *, int, char **);
int cmd_catalog_show(struct cli_ctx *, int, char **);
int cmd_catalog_verify(struct cli_ctx *, int, char **);
int cmd_catalog_identify(struct cli_ctx *, int, char **);
int cmd_catalog_unattend(struct cli_ctx *, int, char **);
int cmd_download(struct cli_ctx *, int, char **);

/* src/cli/interop.c: the import report as text; export --format libvirt. */
void cli_print_report(json_object *report);
int cli_export_libvirt(struct cli_ctx *ctx, const char *name, const char *dir, const char *target, bool json);

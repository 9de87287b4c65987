/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * What a QEMU binary can do, probed from the binary itself over QMP
 * (query-machines, qom-list-types, device-list-properties) and from its
 * -display help and -audiodev help, cached per binary (path + size + mtime
 * + the contents of its module directory) — never parsed from its version
 * string.  The JSON form (qemu_caps_to_json, fixtures) is what tests and
 * 'phyllo caps --json' read; the cache entry is a plain list of lines, which
 * a start reads in one pass without a JSON parse.
 *
 * A partial QEMU is normal: Debian ships displays, 3D and audio drivers as
 * modules, some in packages that are only recommended.  A device QEMU lists
 * but cannot create (its module is there, one it needs is not: virtio-vga-gl
 * without hw-display-virtio-gpu-gl.so) is recorded in `absent` and left out
 * of `devices`; the probe itself never fails for it.
 */
#include <stdbool.h>
#include "error.h"
#include "strv.h"

struct qemu_caps {
        char *binary;
        strv machines;          /* "pc-q35-7.2", "q35", ... (aliases included) */
        strv devices;           /* every qom type usable with -device */
        strv accels;            /* "tcg", "kvm" as compiled in */
        strv props;             /* "<device>.<property>" for the devices probed */
        strv displays;          /* -display help: "none", "gtk", "sdl", "egl-headless", ... */
        strv audiodevs;         /* -audiodev help: "none", "pa", "spice", "alsa", ... */
        strv absent;            /* "<device> <type it lacks>": listed by QEMU, but creating it failed */
        char *version;          /* informational only, never interpreted */
        bool from_cache;        /* qemu_caps_probe answered from the cache */
        char *blob;             /* a cache entry's text, which the lists' strings point into (NULL: each is its own) */
};

/* Probes `binary` (or loads the cache entry under cache_dir when it matches
 * the binary's path, size and mtime and its module directory's listing).
 * cache_dir may be NULL (no cache). */
int qemu_caps_probe(const char *binary, const char *cache_dir, struct qemu_caps *ret, phy_error *err);
/* Flags for qemu_caps_probe_ex. */
enum {
        QEMU_CAPS_REFRESH = 1 << 0,     /* ignore a matching cache entry (re-probe and store) */
};
int qemu_caps_probe_ex(const char *binary, const char *cache_dir, unsigned flags, struct qemu_caps *ret,
                       phy_error *err);
/* Loads a caps JSON file (a cache entry or a test fixture). */
int qemu_caps_load_file(const char *path, struct qemu_caps *ret, phy_error *err);
/* Serialises to the cache/fixture JSON format (malloc'd string). */
char *qemu_caps_to_json(const struct qemu_caps *c);
void qemu_caps_done(struct qemu_caps *c);
static inline void qemu_caps_donep(struct qemu_caps *c) { qemu_caps_done(c); }
#define _cleanup_qemu_caps_ _cleanup_(qemu_caps_donep)

/* Devices whose properties the probe lists (device-list-properties). */
extern const char *const qemu_caps_probed_devices[];

bool qemu_caps_has_machine(const struct qemu_caps *c, const char *machine);
bool qemu_caps_has_device(const struct qemu_caps *c, const char *type);
bool qemu_caps_has_prop(const struct qemu_caps *c, const char *type, const char *prop);
bool qemu_caps_has_accel(const struct qemu_caps *c, const char *accel);
bool qemu_caps_has_display(const struct qemu_caps *c, const char *display);    /* "gtk", "sdl" */
bool qemu_caps_has_audiodev(const struct qemu_caps *c, const char *driver);    /* "pa", "spice" */

/* When this QEMU lacks kind:name ("device", "display" or "audio") and the
 * module that brings it is known (src/host/qemu-modules.c): writes
 * "VM '<vm>' asks for <name> (<feature>), which this QEMU lacks: install
 * <package> (...)" into buf and returns true.  False when QEMU has it or
 * no package is known (callers then say it their own way). */
bool qemu_caps_lacks(const struct qemu_caps *c, const char *vm, const char *kind, const char *name, char *buf,
                     size_t len);

/*
 * The QEMU features the VM model knows, newest last.  For messages and
 * 'phyllo host check' only: the argv builder and the profiles ask
 * qemu_caps_has_device/_prop and never read `since` (a version string is
 * never interpreted).
 */
struct qemu_feature {
        const char *id;         /* "virtio-sound": stable, in host check's JSON */
        const char *device;     /* the -device type that brings it ... */
        const char *prop;       /* ... or, when set, that device's property */
        const char *since;      /* the QEMU release that brought it: "8.2" */
        const char *what;       /* what the VM model does with it */
        const char *unused;     /* NULL when the model uses it; else why not */
};
extern const struct qemu_feature qemu_features[];
extern const size_t qemu_features_n;
bool qemu_caps_has_feature(const struct qemu_caps *c, const struct qemu_feature *f);
/* The feature a device type brings (NULL when the table has none). */
const struct qemu_feature *qemu_feature_of_device(const char *type);

/* QEMU refuses to save or migrate a running VM with a device it cannot
 * migrate ("State blocked by non-migratable device '0000:00:0b.0/
 * virtio-sound-device'"; QEMU 10.0's virtio sound is one).  When err holds
 * such a refusal, appends what to do for the device it names (which the
 * definition chose); else leaves err as it is. */
void qemu_migration_blocker_hint(phy_error *err);

/* QEMU's module directory for a binary: <prefix>/lib/x86_64-linux-gnu/qemu
 * (or lib64/qemu, lib/qemu) where the binary is <prefix>/bin/qemu-...,
 * as QEMU itself finds it.  NULL when there is none. */
char *qemu_caps_module_dir(const char *binary);
/* The install prefix of a QEMU binary, <prefix> of <prefix>/bin/qemu-...,
 * from its real path (QEMU relocates its module and data dirs from its own
 * executable, symlinks resolved): a new string ("" for a binary in /bin),
 * or NULL when the path does not resolve. */
char *qemu_binary_prefix(const char *binary);

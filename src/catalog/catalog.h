/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The OS catalog (docs/catalog.md): which OSes Phyllome recommends, where
 * their install media come from and how each is verified; what osinfo-db
 * (through libosinfo) knows about each OS; verified downloads with libcurl.
 *
 *   catalog.c   the curated catalog file (data/catalog.conf): parse, find, search
 *   osinfo.c    libosinfo: OS facts, media identification, profile and devices
 *   download.c  libcurl: resumable download with the SHA-256 taken as bytes arrive
 *   verify.c    gpgv, checksum files, HTML/ISO sniffing, known hashes
 *
 * Layer: above vm and qemu (it proposes profiles), below api and cli.
 */
#include <stdbool.h>
#include <stdint.h>
#include "error.h"
#include "strv.h"
#include "vm/vm.h"

struct json_object;
struct vm_profile;

/* How the vendor signs: a detached signature over the checksum file
 * (Debian, Ubuntu, openSUSE), a clearsigned checksum file (Fedora, FreeBSD),
 * a detached signature over the image itself (Arch), or nothing. */
enum catalog_signed { CATALOG_SIGNED_NONE = 0, CATALOG_SIGNED_CHECKSUMS, CATALOG_SIGNED_INLINE, CATALOG_SIGNED_IMAGE };

struct catalog_entry {
        char *id;               /* [os debian12]: the name users type */
        char *osinfo;           /* "http://debian.org/debian/12" */
        char *name;             /* "Debian 12 (netinst)" */
        char *profile;          /* optional: overrides the profile osinfo suggests */
        char *url;              /* install media; NULL when the vendor has no direct download */
        char *get;              /* where the user gets it when there is no url */
        char *checksums;        /* URL of the vendor's checksum file */
        char *signature;        /* URL of the detached signature (checksums or image) */
        enum catalog_signed sig;
        char *key;              /* absolute path of the OpenPGP keyring (binary) */
        char *key_source;       /* where the key came from */
        char *hash_source;      /* where the published hashes are (Windows) */
        strv sha256;            /* hashes recorded in the catalog (lower-case hex) */
        uint64_t size;          /* exact size in bytes, 0: unknown */
        unsigned line;          /* of the [os] header */
};

struct catalog {
        char *path;
        struct catalog_entry *entries;
        size_t n;
};

/* The catalog in use: path, else $PHYLLOME_CATALOG, else <data dir>/catalog.conf. */
int catalog_load(const char *path, struct catalog *ret, phy_error *err);
int catalog_parse(const char *path, const char *text, struct catalog *ret, phy_error *err);
void catalog_done(struct catalog *c);
static inline void catalog_donep(struct catalog *c) { catalog_done(c); }
#define _cleanup_catalog_ _cleanup_(catalog_donep)
/* By id, or by osinfo id or short id ("debian12", "http://debian.org/debian/12"). */
const struct catalog_entry *catalog_find(const struct catalog *c, const char *name);
/* Case-insensitive match on id, name and osinfo id. */
bool catalog_entry_matches(const struct catalog_entry *e, const char *words);
/* id, name, osinfo, signed, url|get, checksums, signature, key, key_source,
 * hash_source, size, sha256[] (docs/api.md). */
struct json_object *catalog_entry_json(const struct catalog_entry *e);
/* Phyllome's data directory: $PHYLLOME_DATA_DIR, else the installed one,
 * else the source tree's data/ (running from the build dir).  Static string. */
const char *catalog_data_dir(void);
/* <cache>/media ($XDG_CACHE_HOME/phyllome/media), created 0700. */
int catalog_media_dir(char **ret, phy_error *err);
/* The file name the download of e gets (the URL's last segment, checked). */
int catalog_media_name(const struct catalog_entry *e, char **ret, phy_error *err);

/* ---- osinfo.c ---- */
struct catalog_osinfo {
        char *id, *short_id, *name, *vendor, *family, *distro, *version, *release_date, *eol_date;
        unsigned min_cpus, rec_cpus;
        uint64_t min_ram, rec_ram, min_storage, rec_storage;
        bool virtio_block, virtio_net, virtio_gpu, virtio_input;
        bool has_media;         /* osinfo knows volume ids for it */
        bool known;             /* found in osinfo-db */
};
void catalog_osinfo_done(struct catalog_osinfo *o);
/* Loads osinfo-db now (it is loaded once per process, on first use). */
void catalog_osinfo_preload(void);
static inline void catalog_osinfo_donep(struct catalog_osinfo *o) { catalog_osinfo_done(o); }
#define _cleanup_osinfo_ _cleanup_(catalog_osinfo_donep)
/* From osinfo-db plus Phyllome's overlay (<data dir>/osinfo): by full id or short id.  -ENOENT. */
int catalog_osinfo_lookup(const char *id, struct catalog_osinfo *ret, phy_error *err);
/* Identifies an ISO by its volume, system, publisher and application ids
 * (libosinfo's media detection).  -ENOENT (message says what the ISO holds)
 * when no OS in the database matches; ret_volume_id may be NULL. */
int catalog_media_identify(const char *path, struct catalog_osinfo *ret, char **ret_volume_id, phy_error *err);

/* What create takes from the catalog and osinfo: the profile, sizes from
 * osinfo's recommended (else minimum) resources, and emulated devices where
 * the OS has no virtio driver. */
struct catalog_plan {
        const struct vm_profile *profile;
        unsigned cores;         /* 0: the profile's */
        uint64_t memory, disk;  /* 0: the profile's */
        enum vm_bus disk_bus;   /* UNSET: the profile's */
        enum vm_nic_model nic;
        enum vm_gpu gpu;
};
/* profile: the catalog's override or NULL. */
int catalog_plan_for(const struct catalog_osinfo *o, const char *profile, struct catalog_plan *ret, phy_error *err);
struct json_object *catalog_osinfo_json(const struct catalog_osinfo *o);
struct json_object *catalog_plan_json(const struct catalog_plan *p);

/* ---- download.c ---- */
enum catalog_phase { CATALOG_PHASE_CHECKSUMS, CATALOG_PHASE_IMAGE, CATALOG_PHASE_VERIFY, CATALOG_PHASE_DONE };
const char *catalog_phase_name(enum catalog_phase p);
/* Called in order; done never goes down within one phase (a restart from 0
 * after a server that ignores Range is a new IMAGE phase report with done 0
 * only when nothing was kept). total 0: unknown. */
typedef void (*catalog_progress_fn)(enum catalog_phase phase, uint64_t done, uint64_t total, void *userdata);

struct catalog_download_opts {
        const char *dir;                /* NULL: catalog_media_dir() */
        bool unverified;                /* allow entries without checksum or signature */
        catalog_progress_fn progress;
        void *userdata;
        const volatile int *cancel;     /* non-zero: stop (the partial file is kept for resuming) */
};
/* Downloads (resuming <name>.part), checks and verifies e's media: HTML, size
 * and volume id before any checksum is trusted, then the checksum file
 * against its signature with gpgv, then the image against the checksum.
 * Any failed check deletes the file and says which check failed.  An
 * already verified file in dir is returned at once.  *ret_path: the file. */
int catalog_download(const struct catalog_entry *e, const struct catalog_download_opts *o, char **ret_path,
                     phy_error *err);

/* ---- verify.c ---- */
struct catalog_match {
        char *os;               /* catalog id */
        char *file;             /* the vendor's name for it */
        char *how;              /* "vendor checksum file, signature verified", "catalog hash" */
        char sha256[65];
};
void catalog_match_done(struct catalog_match *m);
/* Hashes path and looks the hash up in the catalog's recorded hashes and in
 * the verified checksum files kept in the media dir.  -ENOENT: no match
 * (sha256 still filled). */
int catalog_verify_file(const struct catalog *c, const char *path, struct catalog_match *ret, phy_error *err);

/* SPDX-License-Identifier: MIT */
/*
 * Bundles: one tar (pax, sparse-aware) compressed with zstd, via libarchive.
 *   vm.conf              the definition, disk paths rewritten to the members
 *   disk-<name>.<fmt>    each disk; an overlay (linked clone) flattened to one qcow2
 *   OVMF_VARS.fd         the UEFI vars, when the VM has them
 *   tpm/<file>           the TPM state, when the VM has one
 *   manifest.json        last: size and sha256 of every other member
 * Import extracts into a temporary directory, checks everything, and only
 * then renames it into <home>/vms/<name>.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "fileio.h"
#include "lazylib.h"
#include "store.h"
#include "store-internal.h"
#include "vm/vm.h"
#include "vm/chain.h"

#define BUNDLE_FORMAT "phyllome-bundle"
/* Version 2: a member's sha256 covers its data regions only and "sparse"
 * its map (docs/storage.md); version 1 hashed holes as zeros. */
#define BUNDLE_VERSION 2
#define BUNDLE_SMALL_MAX (64u * 1024 * 1024)     /* any member that is not a disk */
#define BUNDLE_MEMBERS_MAX 4096
#define CHUNK (1u << 20)

static void archive_freep(struct archive **a) {
        if (*a)
                archive_write_free(*a);
}
static void archive_read_freep(struct archive **a) {
        if (*a)
                archive_read_free(*a);
}

static void hex(const uint8_t *d, size_t n, char *out) {
        static const char x[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = x[d[i] >> 4];
                out[2 * i + 1] = x[d[i] & 15];
        }
        out[2 * n] = '\0';
}

struct progress {
        store_progress_fn fn;
        void *userdata;
        uint64_t done, total;
};

static void progress_add(struct progress *p, uint64_t n) {
        p->done += n;
        if (p->fn)
                p->fn(p->done, p->total, p->userdata);
}

/* ---- export -------------------------------------------------------------- */

/* A regular-file header: every member is 0600, its size and time as given. */
static struct archive_entry *file_entry(const char *path, int64_t size, time_t mtime) {
        struct archive_entry *e = archive_entry_new();
        if (!e)
                return NULL;
        archive_entry_set_pathname(e, path);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0600);
        archive_entry_set_size(e, size);
        archive_entry_set_mtime(e, mtime, 0);
        return e;
}

struct member {
        char *path;     /* inside the bundle */
        char *src;      /* file on this host */
};

/* The sparse map of a member, as the manifest covers it: its data regions,
 * adjacent ones merged, each as two little-endian u64 (offset, length),
 * hashed.  Export feeds the regions it wrote, import the blocks it read. */
struct map_hash {
        struct sha256_ctx h;
        uint64_t off, len;      /* the region being merged; len 0: none yet */
};

static void map_put(struct map_hash *m) {
        uint8_t b[16];
        for (int i = 0; i < 8; i++) {
                b[i] = (uint8_t) (m->off >> (8 * i));
                b[8 + i] = (uint8_t) (m->len >> (8 * i));
        }
        lazy_sha256_update(&m->h, sizeof b, b);
}

static void map_add(struct map_hash *m, uint64_t off, uint64_t len) {
        if (len == 0)
                return;
        if (m->len && m->off + m->len == off) {
                m->len += len;
                return;
        }
        if (m->len)
                map_put(m);
        m->off = off;
        m->len = len;
}

static void map_digest(struct map_hash *m, char out[static 2 * SHA256_DIGEST_SIZE + 1]) {
        if (m->len)
                map_put(m);
        uint8_t dig[SHA256_DIGEST_SIZE];
        lazy_sha256_digest(&m->h, sizeof dig, dig);
        hex(dig, sizeof dig, out);
}

static bool all_zero(const char *b, size_t n) {
        return n == 0 || (b[0] == 0 && memcmp(b, b + 1, n - 1) == 0);
}

/* What the manifest (version 2) says of a member's content, however it is
 * stored: its 4 KiB pieces (aligned to the file) that are not all zeros are
 * hashed in order and make its map; a hole and a stored run of zeros are the
 * same, so a bundle re-packed with or without holes checks the same, and no
 * hole is ever read or hashed. */
#define PIECE 4096u
struct content {
        struct sha256_ctx h;
        struct map_hash m;
        uint64_t n;             /* bytes in non-zero pieces */
};

static void content_init(struct content *c) {
        *c = (struct content) { 0 };
        lazy_sha256_init(&c->h);
        lazy_sha256_init(&c->m.h);
}

static void content_add(struct content *c, uint64_t off, const void *buf, size_t len) {
        const char *b = buf;
        while (len > 0) {
                size_t k = PIECE - (size_t) (off % PIECE);
                if (k > len)
                        k = len;
                if (!all_zero(b, k)) {
                        lazy_sha256_update(&c->h, k, (const uint8_t *) b);
                        map_add(&c->m, off, k);
                        c->n += k;
                }
                off += k;
                b += k;
                len -= k;
        }
}

static void content_digest(struct content *c, char sha[static 2 * SHA256_DIGEST_SIZE + 1],
                           char map[static 2 * SHA256_DIGEST_SIZE + 1]) {
        uint8_t dig[SHA256_DIGEST_SIZE];
        lazy_sha256_digest(&c->h, sizeof dig, dig);
        hex(dig, sizeof dig, sha);
        map_digest(&c->m, map);
}

struct region {
        off_t off, len;
};

/* The data regions of fd (SEEK_DATA/SEEK_HOLE); a file system that cannot
 * tell gives one region, the whole file.  A file that is all hole gets its
 * last byte as data, so that its tar entry is a sparse one. */
static int data_regions(int fd, off_t size, struct region **ret, size_t *ret_n) {
        struct region *v = NULL;
        size_t n = 0;
        for (off_t off = 0; off < size;) {
                off_t d = lseek(fd, off, SEEK_DATA), h;
                if (d < 0 && errno == ENXIO)
                        break;
                if (d < 0 || (h = lseek(fd, d, SEEK_HOLE)) < 0) {
                        n = 0;  /* no map: all of it */
                        d = 0;
                        h = size;
                }
                struct region *nv = realloc(v, (n + 1) * sizeof *v);
                if (!nv) {
                        free(v);
                        return -ENOMEM;
                }
                v = nv;
                v[n++] = (struct region) { d, h - d };
                off = h;
        }
        if (n == 0 && size > 0) {
                if (!(v = malloc(sizeof *v)))
                        return -ENOMEM;
                v[n++] = (struct region) { size - 1, 1 };
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int write_member(struct archive *a, const char *path, const char *src, json_object *manifest,
                        struct progress *pg, phy_error *err) {
        _cleanup_close_ int fd = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return phy_error_set(err, errno, "cannot read '%s': %s", src, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return phy_error_usage(err, "'%s' is not a regular file", src);
        _cleanup_free_ struct region *reg = NULL;
        size_t n_reg = 0;
        if (data_regions(fd, st.st_size, &reg, &n_reg) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        struct archive_entry *e = file_entry(path, st.st_size, st.st_mtime);
        if (!e)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* Holes stay holes in the bundle and on import. */
        bool sparse = !(n_reg == 0 || (n_reg == 1 && reg[0].off == 0 && reg[0].len == st.st_size));
        for (size_t i = 0; sparse && i < n_reg; i++)
                archive_entry_sparse_add_entry(e, reg[i].off, reg[i].len);
        int r = archive_write_header(a, e);
        archive_entry_free(e);
        if (r != ARCHIVE_OK)
                return phy_error_set(err, EIO, "cannot write the bundle (member '%s'): %s", path, archive_error_string(a));
        struct content c;
        content_init(&c);
        _cleanup_free_ char *buf = malloc(CHUNK);
        if (!buf)
                return phy_error_set(err, ENOMEM, "out of memory");
        static const char zeros[65536];
        off_t pos = 0;
        /* The pax writer takes the whole logical content and drops the holes:
         * they are fed as zeros, never read, never hashed. */
        for (size_t i = 0; i <= n_reg; i++) {
                off_t start = i < n_reg ? reg[i].off : st.st_size;
                for (; pos < start;) {
                        size_t z = (uint64_t) (start - pos) < sizeof zeros ? (size_t) (start - pos) : sizeof zeros;
                        if (archive_write_data(a, zeros, z) != (la_ssize_t) z)
                                return phy_error_set(err, EIO, "cannot write the bundle (member '%s'): %s", path,
                                                     archive_error_string(a));
                        pos += (off_t) z;
                }
                if (i == n_reg)
                        break;
                for (off_t end = reg[i].off + reg[i].len; pos < end;) {
                        size_t want = (uint64_t) (end - pos) < CHUNK ? (size_t) (end - pos) : CHUNK;
                        ssize_t k = pread(fd, buf, want, pos);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0)
                                return phy_error_set(err, k < 0 ? errno : EIO, "cannot read '%s': %s", src,
                                                     k < 0 ? strerror(errno) : "it shrank while being exported");
                        content_add(&c, (uint64_t) pos, buf, (size_t) k);
                        if (archive_write_data(a, buf, (size_t) k) != k)
                                return phy_error_set(err, EIO, "cannot write the bundle (member '%s'): %s", path,
                                                     archive_error_string(a));
                        pos += k;
                        progress_add(pg, (uint64_t) k);
                }
        }
        char hx[2 * SHA256_DIGEST_SIZE + 1], mx[2 * SHA256_DIGEST_SIZE + 1];
        content_digest(&c, hx, mx);
        json_object *m = json_object_new_object();
        json_object_object_add(m, "path", json_object_new_string(path));
        json_object_object_add(m, "size", json_object_new_int64(st.st_size));
        json_object_object_add(m, "data", json_object_new_int64((int64_t) c.n));
        json_object_object_add(m, "sha256", json_object_new_string(hx));
        json_object_object_add(m, "sparse", json_object_new_string(mx));
        json_object_array_add(manifest, m);
        return 0;
}

static int write_buffer(struct archive *a, const char *path, const char *data, size_t len, phy_error *err) {
        struct archive_entry *e = file_entry(path, (int64_t) len, time(NULL));
        if (!e)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = archive_write_header(a, e);
        archive_entry_free(e);
        if (r != ARCHIVE_OK || archive_write_data(a, data, len) != (la_ssize_t) len)
                return phy_error_set(err, EIO, "cannot write the bundle (member '%s'): %s", path, archive_error_string(a));
        return 0;
}

static void members_free(struct member *m, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(m[i].path);
                free(m[i].src);
        }
        free(m);
}

static int members_add(struct member **m, size_t *n, const char *path, const char *src) {
        struct member *nm = realloc(*m, (*n + 1) * sizeof **m);
        if (!nm)
                return -ENOMEM;
        *m = nm;
        nm[*n] = (struct member) { strdup(path), strdup(src) };
        (*n)++;
        return nm[*n - 1].path && nm[*n - 1].src ? 0 : -ENOMEM;
}

int store_export(const char *home, const char *name, int fd, const char *qemu_img_given, store_progress_fn progress,
                 void *userdata, phy_error *err) {
        _cleanup_vm_def_ struct vm_def d = { 0 };
        _cleanup_free_ char *dir = NULL, *qemu_img = NULL, *stage = NULL;
        int r = lazy_archive_load(err);
        if (r < 0 || (r = vm_load_by_name(home, name, &d, err)) < 0)
                return r;
        if ((r = store_refuse_running(home, name, "export it (a running VM's disks are not consistent)", err)) < 0 ||
            (r = store_need_qemu_img(qemu_img_given, &qemu_img, err)) < 0)
                return r;
        if (!(dir = vm_dir(home, name)) || asprintf(&stage, "%s/.#export.XXXXXX", dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* Never a file outside the VM dir and the allowed ones (issue 12). */
        if ((r = vm_def_check_here(&d, dir, err)) < 0)
                return r;
        if (!mkdtemp(stage))
                return phy_error_set(err, errno, "cannot create a directory in '%s': %s", dir, strerror(errno));

        struct member *m = NULL;
        size_t n = 0;
        struct progress pg = { progress, userdata, 0, 0 };
        for (size_t i = 0; r >= 0 && i < d.n_disks; i++) {
                struct vm_disk *k = &d.disks[i];
                _cleanup_free_ char *p = vm_path_resolve(dir, k->path), *mp = NULL, *flat = NULL;
                bool backed = false;
                if (!p || asprintf(&mp, "disk-%s.%s", k->name, k->format ? k->format : "qcow2") < 0) {
                        r = phy_error_set(err, ENOMEM, "out of memory");
                        break;
                }
                /* Read as its format, every link checked first (issue 12). */
                struct vm_chain ch;
                if ((r = vm_disk_chain_open(dir, name, d.uuid, k, p, &ch, err)) < 0)
                        break;
                backed = ch.n > 0;
                if (backed) {
                        /* A linked clone: its chain flattened into one standalone qcow2, read
                         * through the files checked, never what a header names. */
                        _cleanup_free_ char *opts = store_chain_image_opts(&ch, store_disk_format(k));
                        if (!opts || asprintf(&flat, "%s/%s", stage, mp) < 0) {
                                vm_chain_done(&ch);
                                r = phy_error_set(err, ENOMEM, "out of memory");
                                break;
                        }
                        char *argv[] = { qemu_img, "convert", "-q", "--image-opts", opts, "-O", "qcow2", flat, NULL };
                        r = store_qemu_img(qemu_img, "flattening a disk for export", argv, NULL, err);
                }
                vm_chain_done(&ch);
                if (r < 0)
                        break;
                if (backed) {
                        free(k->format);
                        free(mp);
                        k->format = strdup("qcow2");
                        if (asprintf(&mp, "disk-%s.qcow2", k->name) < 0 || !k->format) {
                                r = phy_error_set(err, ENOMEM, "out of memory");
                                break;
                        }
                }
                free(k->path);
                k->path = strdup(mp);
                if (!k->path || members_add(&m, &n, mp, flat ? flat : p) < 0)
                        r = phy_error_set(err, ENOMEM, "out of memory");
        }
        _cleanup_free_ char *vars = NULL, *tpm = NULL;
        if (r >= 0 && (asprintf(&vars, "%s/OVMF_VARS.fd", dir) < 0 || asprintf(&tpm, "%s/tpm", dir) < 0))
                r = phy_error_set(err, ENOMEM, "out of memory");
        if (r >= 0 && access(vars, F_OK) == 0 && members_add(&m, &n, "OVMF_VARS.fd", vars) < 0)
                r = phy_error_set(err, ENOMEM, "out of memory");
        DIR *td = r >= 0 ? opendir(tpm) : NULL;
        for (struct dirent *e; td && r >= 0 && (e = readdir(td));) {
                _cleanup_free_ char *mp = NULL, *src = NULL;
                struct stat st;
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                if (asprintf(&mp, "tpm/%s", e->d_name) < 0 || asprintf(&src, "%s/%s", tpm, e->d_name) < 0)
                        r = phy_error_set(err, ENOMEM, "out of memory");
                else if (lstat(src, &st) == 0 && S_ISREG(st.st_mode) && members_add(&m, &n, mp, src) < 0)
                        r = phy_error_set(err, ENOMEM, "out of memory");
        }
        if (td)
                closedir(td);
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                /* What is allocated: about what is read (holes are skipped). */
                if (stat(m[i].src, &st) == 0)
                        pg.total += (uint64_t) st.st_blocks * 512 < (uint64_t) st.st_size ? (uint64_t) st.st_blocks * 512
                                                                                          : (uint64_t) st.st_size;
        }

        _cleanup_(archive_freep) struct archive *a = archive_write_new();
        _cleanup_free_ char *conf = vm_def_format(&d, false);
        json_object *manifest = json_object_new_array();
        if (r >= 0 && (!a || !conf))
                r = phy_error_set(err, ENOMEM, "out of memory");
        /* No zero padding after the last block (libarchive pads pipes and stdout): it is not zstd data. */
        if (r >= 0 && (archive_write_add_filter_zstd(a) != ARCHIVE_OK || archive_write_set_format_pax(a) != ARCHIVE_OK ||
                       archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
                       archive_write_open_fd(a, fd) != ARCHIVE_OK))
                r = phy_error_set(err, EIO, "cannot start the bundle: %s", archive_error_string(a));
        if (r >= 0) {
                /* vm.conf is hashed like every member: written to the stage first. */
                _cleanup_free_ char *cp = NULL;
                if (asprintf(&cp, "%s/vm.conf", stage) < 0)
                        r = phy_error_set(err, ENOMEM, "out of memory");
                else if ((r = file_write_atomic(cp, conf, strlen(conf), 0600, err)) >= 0)
                        r = write_member(a, "vm.conf", cp, manifest, &pg, err);
        }
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = write_member(a, m[i].path, m[i].src, manifest, &pg, err);
        if (r >= 0) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "format", json_object_new_string(BUNDLE_FORMAT));
                json_object_object_add(o, "version", json_object_new_int(BUNDLE_VERSION));
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "members", json_object_get(manifest));
                const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
                r = write_buffer(a, "manifest.json", s, strlen(s), err);
                json_object_put(o);
        }
        if (r >= 0 && archive_write_close(a) != ARCHIVE_OK)
                r = phy_error_set(err, EIO, "cannot finish the bundle: %s", archive_error_string(a));
        json_object_put(manifest);
        members_free(m, n);
        (void) rm_rf(stage);
        return r;
}

/* ---- import -------------------------------------------------------------- */

/* A member name we accept: relative, no "." or ".." part, at most "tpm/<file>". */
bool store_bundle_member_name_ok(const char *p) {
        if (!*p || p[0] == '/' || strlen(p) > 255)
                return false;
        const char *slash = strchr(p, '/');
        if (slash && (strncmp(p, "tpm/", 4) != 0 || strchr(slash + 1, '/')))
                return false;
        const char *base = slash ? slash + 1 : p;
        if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
                return false;
        for (const char *c = base; *c; c++)
                if (!(((*c | 32) >= 'a' && (*c | 32) <= 'z') || (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' ||
                      *c == '-' || *c == '+'))
                        return false;
        return true;
}

#define SHA_HEX (2 * SHA256_DIGEST_SIZE + 1)
/* A member larger than this (its apparent size, holes included) is refused:
 * qcow2's own limit is 64 TiB of virtual size. */
#define BUNDLE_APPARENT_MAX (1ull << 46)
/* Version 1 hashed holes as zeros: at most this much of them is hashed in
 * one import (seconds of CPU); a version 1 bundle with more is refused. */
#define BUNDLE_V1_HOLES_MAX (4ull << 30)
#define BUNDLE_CHAIN_MAX 16

struct got {
        char *path;
        uint64_t size, data;
        char sha[SHA_HEX];      /* non-zero pieces (version 2) */
        char map[SHA_HEX];      /* their map (version 2) */
        char sha1[SHA_HEX];     /* holes as zeros (version 1); "" when too costly */
};

struct importer {
        struct archive *a;
        int dfd;
        const char *tmp;
        uint64_t cap, used;             /* data bytes: cap (0: none) and written so far */
        uint64_t v1_holes;              /* zeros hashed for a version 1 manifest so far */
        const volatile int *cancel;
        struct progress pg;
};

static int cancelled(const struct importer *im, phy_error *err) {
        if (im->cancel && *im->cancel)
                return phy_error_set(err, ECANCELED, "the import was cancelled");
        return 0;
}

static char *size_str(uint64_t v, char buf[static 32]) {
        if (v >= (1ull << 30))
                snprintf(buf, 32, "%.1f GiB", (double) v / (double) (1ull << 30));
        else
                snprintf(buf, 32, "%.1f MiB", (double) v / (double) (1ull << 20));
        return buf;
}

/* The data a member declares (its sparse map, else its size), checked
 * against the cap and the free space before a byte of it is written. */
static int declared_data(struct importer *im, struct archive_entry *e, const char *path, uint64_t size,
                         uint64_t *ret, phy_error *err) {
        uint64_t data = 0, end = 0;
        if (archive_entry_sparse_reset(e) > 0) {
                la_int64_t o, l;
                while (archive_entry_sparse_next(e, &o, &l) == ARCHIVE_OK) {
                        if (o < 0 || l < 0 || (uint64_t) o < end || (uint64_t) o + (uint64_t) l > size)
                                return phy_error_usage(err, "the bundle's member '%s' has a bad sparse map; it "
                                                     "is damaged or forged", path);
                        data += (uint64_t) l;
                        end = (uint64_t) o + (uint64_t) l;
                }
        } else
                data = size;
        char b1[32], b2[32];
        if (im->cap && (data > im->cap || im->used + data > im->cap))
                return phy_error_set(err, E2BIG, "the bundle's member '%s' holds %s of data; with the members before "
                                     "it that is more than the %s this import may write", path, size_str(data, b1),
                                     size_str(im->cap, b2));
        struct statvfs sv;
        if (fstatvfs(im->dfd, &sv) == 0 && data > (uint64_t) sv.f_bavail * sv.f_frsize)
                return phy_error_set(err, ENOSPC, "the bundle's member '%s' holds %s of data but only %s are free "
                                     "in '%s'", path, size_str(data, b1),
                                     size_str((uint64_t) sv.f_bavail * sv.f_frsize, b2), im->tmp);
        *ret = data;
        return 0;
}

/* A hole between pos and off: nothing written, nothing hashed for version 2;
 * for version 1 the zeros it reads as, within BUNDLE_V1_HOLES_MAX. */
/* Version 1 hashed the whole content, holes read as zeros: a hole between
 * from and to is hashed for it within BUNDLE_V1_HOLES_MAX per import; past
 * that the version 1 hash is given up (a version 1 manifest is then refused). */
static int v1_hole(struct importer *im, struct sha256_ctx *v1, bool *v1_lost, uint64_t from, uint64_t to,
                   phy_error *err) {
        static const uint8_t zeros[65536];
        if (to <= from || *v1_lost)
                return 0;
        if (to - from > BUNDLE_V1_HOLES_MAX - im->v1_holes) {
                *v1_lost = true;
                return 0;
        }
        im->v1_holes += to - from;
        for (uint64_t pos = from; pos < to;) {
                if ((pos & ((64u << 20) - 1)) == 0 && cancelled(im, err) < 0)
                        return -ECANCELED;
                size_t z = to - pos < sizeof zeros ? (size_t) (to - pos) : sizeof zeros;
                lazy_sha256_update(v1, z, zeros);
                pos += z;
        }
        return 0;
}

static int extract(struct importer *im, struct archive_entry *e, const char *path, struct got *g, phy_error *err) {
        bool small = strncmp(path, "disk-", 5) != 0;
        la_int64_t size = archive_entry_size(e);
        if (!archive_entry_size_is_set(e) || size < 0 || (small && size > (la_int64_t) BUNDLE_SMALL_MAX) ||
            (uint64_t) size > BUNDLE_APPARENT_MAX)
                return phy_error_usage(err, "the bundle's member '%s' has no valid size (at most %u MiB for "
                                     "anything but a disk, 64 TiB for a disk)", path, BUNDLE_SMALL_MAX >> 20);
        uint64_t declared = 0;
        int r = declared_data(im, e, path, (uint64_t) size, &declared, err);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = openat(im->dfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return errno == EEXIST
                        ? phy_error_set(err, EEXIST, "the bundle holds the member '%s' twice; it is damaged or forged", path)
                        : phy_error_set(err, errno, "cannot create '%s' for the import: %s", path, strerror(errno));
        struct content c;
        struct sha256_ctx v1;
        bool v1_lost = false;
        content_init(&c);
        lazy_sha256_init(&v1);
        uint64_t pos = 0, data = 0;
        for (;;) {
                const void *buf;
                size_t len;
                la_int64_t off;
                if ((r = cancelled(im, err)) < 0)
                        return r;
                r = archive_read_data_block(im->a, &buf, &len, &off);
                if (r == ARCHIVE_EOF)
                        break;
                if (r != ARCHIVE_OK)
                        return phy_error_set_kind(err, PHY_ERR_USAGE, EIO,
                                                  "the bundle is truncated or damaged (in member '%s'): %s", path,
                                                  archive_error_string(im->a));
                if (off < (la_int64_t) pos || (uint64_t) off + len > (uint64_t) size)
                        return phy_error_usage(err, "the bundle's member '%s' has data outside its size", path);
                if (len > declared - data)
                        return phy_error_usage(err, "the bundle's member '%s' holds more data than its header "
                                             "declares; it is damaged or forged", path);
                if ((r = v1_hole(im, &v1, &v1_lost, pos, (uint64_t) off, err)) < 0)
                        return r;
                /* Zeros are not written: they read back as the hole they leave. */
                for (size_t w = 0; w < len && !all_zero(buf, len);) {
                        ssize_t n = pwrite(fd, (const char *) buf + w, len - w, (off_t) (off + (la_int64_t) w));
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return phy_error_set(err, errno, "cannot write '%s': %s", path, strerror(errno));
                        w += (size_t) n;
                }
                content_add(&c, (uint64_t) off, buf, len);
                if (!v1_lost)
                        lazy_sha256_update(&v1, len, buf);
                pos = (uint64_t) off + len;
                data += len;
                im->used += len;
                progress_add(&im->pg, len);
        }
        if ((r = v1_hole(im, &v1, &v1_lost, pos, (uint64_t) size, err)) < 0)
                return r;
        if (ftruncate(fd, (off_t) size) < 0 || fsync(fd) < 0)
                return phy_error_set(err, errno, "cannot write '%s': %s", path, strerror(errno));
        if (!v1_lost) {
                uint8_t dig[SHA256_DIGEST_SIZE];
                lazy_sha256_digest(&v1, sizeof dig, dig);
                hex(dig, sizeof dig, g->sha1);
        }
        content_digest(&c, g->sha, g->map);
        g->size = (uint64_t) size;
        g->data = c.n;
        return 0;
}

static int verify(json_object *man, const struct got *got, size_t n, phy_error *err) {
        json_object *members;
        const char *fmt = store_json_str(man, "format");
        int64_t version = store_json_int(man, "version");
        if (!fmt || strcmp(fmt, BUNDLE_FORMAT) != 0 || version < 1 || version > BUNDLE_VERSION ||
            !json_object_object_get_ex(man, "members", &members) || !json_object_is_type(members, json_type_array))
                return phy_error_usage(err, "the bundle's manifest.json is not a Phyllome bundle manifest "
                                     "(versions 1 to %d)", BUNDLE_VERSION);
        size_t mn = json_object_array_length(members);
        if (mn != n)
                return phy_error_usage(err, "the bundle's manifest lists %zu members but the bundle holds %zu; "
                                     "it is damaged or was changed", mn, n);
        for (size_t i = 0; i < mn; i++) {
                json_object *o = json_object_array_get_idx(members, i);
                const char *p = store_json_str(o, "path"), *sha = store_json_str(o, "sha256");
                const char *map = store_json_str(o, "sparse");
                int64_t size = store_json_int(o, "size"), data = store_json_int(o, "data");
                const struct got *g = NULL;
                for (size_t k = 0; p && k < n; k++)
                        if (strcmp(got[k].path, p) == 0)
                                g = &got[k];
                if (!g)
                        return phy_error_usage(err, "the bundle's manifest lists '%s', which the bundle does not "
                                             "hold; it is damaged or was changed", p ? p : "?");
                if (version == 1 && !g->sha1[0])
                        return phy_error_set(err, EFBIG, "the bundle's member '%s' is in the old bundle format "
                                             "(version 1), whose check hashes every hole, and its holes are larger "
                                             "than %llu GiB; export the VM again with this version of Phyllome", p,
                                             BUNDLE_V1_HOLES_MAX >> 30);
                bool ok = size >= 0 && (uint64_t) size == g->size && sha &&
                          (version == 1 ? strcmp(sha, g->sha1) == 0
                                        : strcmp(sha, g->sha) == 0 && data >= 0 && (uint64_t) data == g->data &&
                                                  map && strcmp(map, g->map) == 0);
                if (!ok)
                        return phy_error_usage(err, "the bundle's member '%s' does not match its manifest "
                                             "(size, sha256 or sparse map); it is damaged or was changed", p);
        }
        return 0;
}

static const struct got *member_find(const struct got *got, size_t n, const char *p) {
        for (size_t k = 0; k < n; k++)
                if (strcmp(got[k].path, p) == 0)
                        return &got[k];
        return NULL;
}

/* A disk's image, or a backing file, must be one of the bundle's disk members. */
static bool disk_member(const struct got *got, size_t n, const char *p) {
        return p && strncmp(p, "disk-", 5) == 0 && !strchr(p, '/') && member_find(got, n, p);
}

/* The first bytes of a member: is it a qcow2 (for a backing file of unknown format)? */
static bool looks_qcow2(int dfd, const char *p) {
        _cleanup_close_ int fd = openat(dfd, p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        uint8_t m[4];
        return fd >= 0 && pread(fd, m, sizeof m, 0) == (ssize_t) sizeof m && memcmp(m, "QFI\xfb", 4) == 0;
}

/*
 * The backing chain of a disk, link by link: `qemu-img info -f FMT` on the
 * member alone (info never opens a backing file), its backing-filename
 * checked to be another disk member before it is followed; no external data
 * file.  Each link is rewritten (`rebase -u`, which opens nothing but the
 * image) to the plain member name and an explicit format, so QEMU never
 * probes one.
 */
static int check_chain(const char *qemu_img, const char *tmp, int dfd, const struct got *got, size_t n,
                       const struct vm_disk *k, phy_error *err) {
        char cur[256], fmt[16];
        snprintf(cur, sizeof cur, "%s", k->path);
        snprintf(fmt, sizeof fmt, "%s", k->format ? k->format : "qcow2");
        strv seen = { 0 };
        int r = 0;
        for (unsigned depth = 0; r >= 0 && strcmp(fmt, "qcow2") == 0; depth++) {
                _cleanup_free_ char *file = NULL, *out = NULL, *what = NULL;
                _cleanup_(json_object_putp) json_object *info = NULL;
                if (depth >= BUNDLE_CHAIN_MAX || strv_contains(&seen, cur)) {
                        r = phy_error_set(err, ELOOP, "the backing chain of the bundle's disk '%s' loops or is deeper "
                                          "than %u images", k->name, BUNDLE_CHAIN_MAX);
                        break;
                }
                if (strv_push(&seen, cur) < 0 || asprintf(&file, "%s/%s", tmp, cur) < 0 ||
                    asprintf(&what, "the bundle's image '%s'", cur) < 0) {
                        r = phy_error_set(err, ENOMEM, "out of memory");
                        break;
                }
                char *info_argv[] = { (char *) qemu_img, "info", "--output=json", "-U", "-f", fmt, file, NULL };
                if ((r = store_qemu_img(qemu_img, what, info_argv, &out, err)) < 0)
                        break;
                if (!(info = json_tokener_parse(out)) || !json_object_is_type(info, json_type_object)) {
                        r = phy_error_set(err, EIO, "'%s info' printed something that is not JSON for '%s'", qemu_img, file);
                        break;
                }
                json_object *fs, *fsd, *df;
                if (json_object_object_get_ex(info, "format-specific", &fs) &&
                    json_object_object_get_ex(fs, "data", &fsd) && json_object_object_get_ex(fsd, "data-file", &df)) {
                        r = phy_error_set(err, EPERM, "the bundle's image '%s' (disk '%s') keeps its data in the "
                                          "external file '%s'; a bundle's images must be whole; refusing the bundle",
                                          cur, k->name, json_object_get_string(df));
                        break;
                }
                const char *back = store_json_str(info, "backing-filename");
                if (!back)
                        break;
                if (!disk_member(got, n, back) || !store_bundle_member_name_ok(back)) {
                        r = phy_error_set(err, EPERM, "the bundle's image '%s' (disk '%s') has the backing file "
                                          "'%s', which is not one of the bundle's disk members; refusing the bundle "
                                          "(it would give the guest a file of this host)", cur, k->name, back);
                        break;
                }
                const char *bf = store_json_str(info, "backing-filename-format");
                char next_fmt[16];
                if (bf && (strcmp(bf, "qcow2") == 0 || strcmp(bf, "raw") == 0))
                        snprintf(next_fmt, sizeof next_fmt, "%s", bf);
                else if (!bf)
                        snprintf(next_fmt, sizeof next_fmt, "%s", looks_qcow2(dfd, back) ? "qcow2" : "raw");
                else {
                        r = phy_error_set(err, EPERM, "the bundle's image '%s' (disk '%s') names the backing format "
                                          "'%s'; only qcow2 and raw are accepted", cur, k->name, bf);
                        break;
                }
                char *rebase_argv[] = { (char *) qemu_img, "rebase", "-q", "-u", "-f", "qcow2", "-b", (char *) back,
                                        "-F", next_fmt, file, NULL };
                if ((r = store_qemu_img(qemu_img, what, rebase_argv, NULL, err)) < 0)
                        break;
                snprintf(cur, sizeof cur, "%s", back);
                snprintf(fmt, sizeof fmt, "%s", next_fmt);
        }
        strv_done(&seen);
        return r;
}

static void free_str(char **p) {
        free(*p);
        *p = NULL;
}

/*
 * An untrusted bundle's definition keeps only what stays inside the VM's own
 * files: everything that names a host file, opens a host port or hands the
 * guest a host device or network is removed (or changed to its contained
 * form), one sentence each in *out.  Disks are checked, not stripped.
 */
static int untrust(struct vm_def *d, strv *out) {
        int r = 0;
#define NOTE(...) do { if (strv_pushf(out, __VA_ARGS__) < 0) r = -ENOMEM; } while (0)
        if (d->kernel || d->initrd) {
                NOTE("[boot] kernel, initrd and append removed: they name files of the exporting host");
                free_str(&d->kernel);
                free_str(&d->initrd);
                free_str(&d->append);
        }
        if (d->install.delivery) {
                NOTE("[install] removed: an unattended install of the exporting host, with its files");
                vm_install_done(&d->install);
        }
        for (size_t i = 0; i < d->n_disks; i++)
                if (d->disks[i].key_file) {
                        NOTE("[disk %s] key-file '%s' removed: a file of the exporting host; the disk asks for its "
                             "passphrase instead (key = prompt)", d->disks[i].name, d->disks[i].key_file);
                        free_str(&d->disks[i].key_file);
                        d->disks[i].key_prompt = true;
                }
        for (size_t i = 0; i < d->n_cdroms; i++) {
                NOTE("[cdrom %s] removed: its path '%s' is a file of the exporting host", d->cdroms[i].name,
                     d->cdroms[i].path ? d->cdroms[i].path : "");
                free(d->cdroms[i].name);
                free(d->cdroms[i].path);
        }
        d->n_cdroms = 0;
        for (size_t i = 0; i < d->n_shares; i++) {
                NOTE("[share %s] removed: it would give the guest the host directory '%s'", d->shares[i].tag,
                     d->shares[i].path ? d->shares[i].path : "");
                free(d->shares[i].tag);
                free(d->shares[i].path);
        }
        d->n_shares = 0;
        for (size_t i = 0; i < d->n_nics; i++) {
                struct vm_nic *nic = &d->nics[i];
                for (size_t j = 0; j < nic->forwards.n; j++)
                        NOTE("[network %s] forward '%s' removed: it would open a port on this host", nic->name,
                             nic->forwards.v[j]);
                strv_done(&nic->forwards);
                if (nic->mode == VM_NET_BRIDGE || nic->mode == VM_NET_ISOLATED) {
                        NOTE("[network %s] mode %s:%s changed to user: it would join a network of this host",
                             nic->name, vm_net_mode_name(nic->mode),
                             nic->mode == VM_NET_BRIDGE ? (nic->bridge ? nic->bridge : "") : (nic->network ? nic->network : ""));
                        nic->mode = VM_NET_USER;
                        free_str(&nic->bridge);
                        free_str(&nic->network);
                }
        }
        for (size_t i = 0; i < d->usb.n; i++)
                NOTE("[usb] device '%s' removed: a device of this host", d->usb.v[i]);
        strv_done(&d->usb);
        for (size_t i = 0; i < d->passthrough.n; i++)
                NOTE("[passthrough] device '%s' removed: a device of this host", d->passthrough.v[i]);
        strv_done(&d->passthrough);
        for (size_t i = 0; i < d->passthrough_roms.n; i++)
                NOTE("[passthrough] rom '%s' removed: a file of this host", d->passthrough_roms.v[i]);
        strv_done(&d->passthrough_roms);
        for (size_t i = 0; i < d->mdevs.n; i++)
                NOTE("[passthrough] mdev '%s' removed: a device of this host", d->mdevs.v[i]);
        strv_done(&d->mdevs);
        d->mdev_display = VM_UNSET;
        if (d->single_gpu == VM_ON)
                NOTE("[passthrough] single-gpu removed: it would stop this host's display");
        d->single_gpu = VM_UNSET;
        if (d->tpm == VM_TPM_PASSTHROUGH) {
                NOTE("[tpm] passthrough changed to emulated: it would give the guest this host's TPM");
                d->tpm = VM_TPM_EMULATED;
        }
#undef NOTE
        return r;
}

void store_import_result_done(struct store_import_result *r) {
        if (!r)
                return;
        free(r->name);
        strv_done(&r->stripped);
        r->name = NULL;
}

int store_import(const char *home, int fd, const struct store_import_opts *o, struct store_import_result *ret,
                 phy_error *err) {
        static const struct store_import_opts none = { 0 };
        if (!o)
                o = &none;
        int r = lazy_archive_load(err);
        if (r < 0)
                return r;
        const char *new_name = o->new_name;
        _cleanup_free_ char *vms = NULL, *tmp = NULL, *qemu_img = NULL;
        _cleanup_close_ int tmp_lock = -1;
        _cleanup_strv_ strv stripped = { 0 };
        if (new_name && !vm_name_valid(new_name))
                return phy_error_usage(err, "invalid VM name '%s'; use up to 64 letters, digits, '.', '_' and '-'",
                                     new_name);
        if (asprintf(&vms, "%s/vms", home) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        r = vm_tmpdir_make(home, "import", NULL, &tmp, &tmp_lock, err);
        if (r < 0)
                return r;
        _cleanup_close_ int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                r = phy_error_set(err, errno, "cannot open '%s': %s", tmp, strerror(errno));
                (void) rm_rf(tmp);
                return r;
        }
        _cleanup_(archive_read_freep) struct archive *a = archive_read_new();
        struct got *got = NULL;
        size_t n = 0;
        bool tpm_dir = false;
        json_object *man = NULL;
        struct importer im = { .a = a, .dfd = dfd, .tmp = tmp, .cap = o->max_bytes, .cancel = o->cancel,
                               .pg = { o->progress, o->userdata, 0, 0 } };
        if (!a)
                r = phy_error_set(err, ENOMEM, "out of memory");
        else if (archive_read_support_filter_zstd(a) != ARCHIVE_OK || archive_read_support_format_tar(a) != ARCHIVE_OK ||
                 archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK)
                r = phy_error_usage(err, "cannot read the bundle: %s", archive_error_string(a));
        while (r >= 0 && (r = cancelled(&im, err)) >= 0) {
                struct archive_entry *e;
                int ar = archive_read_next_header(a, &e);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar != ARCHIVE_OK) {
                        r = phy_error_set_kind(err, PHY_ERR_USAGE, EIO, "the bundle is truncated or damaged: %s",
                                               archive_error_string(a));
                        break;
                }
                const char *p = archive_entry_pathname(e);
                if (!p || !store_bundle_member_name_ok(p)) {
                        r = phy_error_usage(err, "the bundle's member '%s' is not a name a bundle holds (it may "
                                          "point outside the VM's directory); refusing the bundle", p ? p : "?");
                        break;
                }
                if (man) {
                        r = phy_error_usage(err, "the bundle has the member '%s' after its manifest; refusing it", p);
                        break;
                }
                if (archive_entry_filetype(e) == AE_IFDIR && strcmp(p, "tpm") == 0)
                        continue;
                if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) || archive_entry_symlink(e)) {
                        r = phy_error_usage(err, "the bundle's member '%s' is not a regular file; refusing the bundle", p);
                        break;
                }
                if (strcmp(p, "manifest.json") == 0) {
                        la_int64_t sz = archive_entry_size(e);
                        if (sz <= 0 || sz > 16 * 1024 * 1024) {
                                r = phy_error_usage(err, "the bundle's manifest.json has a bad size");
                                break;
                        }
                        _cleanup_free_ char *text = calloc(1, (size_t) sz + 1);
                        if (!text || archive_read_data(a, text, (size_t) sz) != sz) {
                                r = phy_error_set_kind(err, PHY_ERR_USAGE, EIO,
                                                       "the bundle is truncated or damaged (in manifest.json): %s",
                                                       archive_error_string(a));
                                break;
                        }
                        man = json_tokener_parse(text);
                        if (!man || !json_object_is_type(man, json_type_object)) {
                                r = phy_error_usage(err, "the bundle's manifest.json is not a JSON object");
                                break;
                        }
                        continue;
                }
                if (n >= BUNDLE_MEMBERS_MAX) {
                        r = phy_error_set(err, E2BIG, "the bundle has more than %u members", BUNDLE_MEMBERS_MAX);
                        break;
                }
                if (strncmp(p, "tpm/", 4) == 0 && !tpm_dir) {
                        if (mkdirat(dfd, "tpm", 0700) < 0 && errno != EEXIST) {
                                r = phy_error_set(err, errno, "cannot create '%s/tpm': %s", tmp, strerror(errno));
                                break;
                        }
                        tpm_dir = true;
                }
                struct got *ng = realloc(got, (n + 1) * sizeof *got);
                if (ng)
                        ng[n] = (struct got) { 0 };
                if (!ng || !(ng[n].path = strdup(p))) {
                        got = ng ? ng : got;
                        r = phy_error_set(err, ENOMEM, "out of memory");
                        break;
                }
                got = ng;
                n++;
                r = extract(&im, e, p, &got[n - 1], err);
        }
        if (r >= 0 && !man)
                r = phy_error_usage(err, "the bundle has no manifest.json at its end: it is truncated or not a "
                                  "Phyllome bundle");
        if (r >= 0)
                r = verify(man, got, n, err);

        /* The definition, checked like any other, and its disks present. */
        _cleanup_vm_def_ struct vm_def d = { 0 };
        _cleanup_free_ char *conf = NULL, *dst = NULL;
        if (r >= 0 && asprintf(&conf, "%s/vm.conf", tmp) < 0)
                r = phy_error_set(err, ENOMEM, "out of memory");
        if (r >= 0 && (r = vm_def_load(conf, &d, err)) < 0)
                phy_error_prefix(err, "the bundle's definition is not valid");
        /* Disks are the bundle's own disk members, their chains too; the
         * rest of the definition is made to stay inside the VM's files. */
        for (size_t i = 0; r >= 0 && i < d.n_disks; i++)
                if (!disk_member(got, n, d.disks[i].path))
                        r = phy_error_usage(err, "the bundle's disk '%s' ('%s') is not one of its disk members "
                                          "(disk-*); refusing the bundle", d.disks[i].name, d.disks[i].path);
        if (r >= 0 && d.n_disks > 0 && (r = store_need_qemu_img(o->qemu_img, &qemu_img, err)) >= 0)
                for (size_t i = 0; r >= 0 && i < d.n_disks; i++)
                        r = check_chain(qemu_img, tmp, dfd, got, n, &d.disks[i], err);
        if (r >= 0 && !o->trust && untrust(&d, &stripped) < 0)
                r = phy_error_set(err, ENOMEM, "out of memory");
        bool renamed = false;
        if (r >= 0 && !d.name[0])
                snprintf(d.name, sizeof d.name, "%s", store_json_str(man, "name") ? store_json_str(man, "name") : "");
        if (r >= 0 && new_name && strcmp(new_name, d.name) != 0) {
                /* Under another name it is a copy beside the original: a new identity. */
                snprintf(d.name, sizeof d.name, "%s", new_name);
                d.uuid[0] = '\0';
                for (size_t i = 0; i < d.n_nics; i++)
                        d.nics[i].mac[0] = '\0';
                r = vm_def_make_identity(&d, err);
                renamed = true;
        }
        /* Checked like every saved definition (allow-paths; devices in system
         * mode): what --trust kept must be allowed here too. */
        if (r >= 0)
                r = renamed || stripped.n > 0 ? vm_def_save(&d, conf, err) : vm_def_check_save(&d, conf, err);
        if (r < 0 && o->trust)
                phy_error_prefix(err, "the trusted bundle's definition");
        if (r >= 0 && !vm_name_valid(d.name))
                r = phy_error_usage(err, "the bundle names its VM '%s', which is not a valid name; import with --name",
                                  d.name);
        if (r >= 0 && !(dst = vm_dir(home, d.name)))
                r = phy_error_set(err, ENOMEM, "out of memory");
        if (r >= 0 && fchmod(dfd, 0755) < 0)
                r = phy_error_set(err, errno, "cannot set the mode of '%s': %s", tmp, strerror(errno));
        if (r >= 0 && rename(tmp, dst) < 0)
                r = errno == EEXIST || errno == ENOTEMPTY
                        ? phy_error_set(err, EEXIST, "a VM named '%s' already exists; import with --name NEW", d.name)
                        : phy_error_set(err, errno, "cannot rename '%s' to '%s': %s", tmp, dst, strerror(errno));
        if (r < 0)
                (void) rm_rf(tmp);
        else if (ret) {
                *ret = (struct store_import_result) { .name = strdup(d.name), .stripped = stripped };
                stripped = (strv) { 0 };
                if (!ret->name)
                        r = -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                free(got[i].path);
        free(got);
        json_object_put(man);
        return r;
}

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
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "fileio.h"
#include "store.h"
#include "store-internal.h"
#include "vm/vm.h"

#define BUNDLE_FORMAT "phyllome-bundle"
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

static int write_member(struct archive *a, const char *path, const char *src, json_object *manifest,
                        struct progress *pg, phy_error *err) {
        _cleanup_close_ int fd = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return phy_error_set(err, errno, "cannot read '%s': %s", src, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return phy_error_set(err, EINVAL, "'%s' is not a regular file", src);
        struct archive_entry *e = file_entry(path, st.st_size, st.st_mtime);
        if (!e)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* The data regions (SEEK_DATA/SEEK_HOLE): holes stay holes in the bundle and on import. */
        bool sparse = false;
        for (off_t off = 0; off < st.st_size;) {
                off_t d = lseek(fd, off, SEEK_DATA);
                if (d < 0)
                        break;
                off_t h = lseek(fd, d, SEEK_HOLE);
                if (h < 0)
                        h = st.st_size;
                if (d > 0 || h < st.st_size)
                        sparse = true;
                archive_entry_sparse_add_entry(e, d, h - d);
                off = h;
        }
        if (!sparse)
                archive_entry_sparse_clear(e);
        int r = archive_write_header(a, e);
        archive_entry_free(e);
        if (r != ARCHIVE_OK)
                return phy_error_set(err, EIO, "cannot write the bundle (member '%s'): %s", path, archive_error_string(a));
        struct sha256_ctx h;
        sha256_init(&h);
        _cleanup_free_ char *buf = malloc(CHUNK);
        if (!buf)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* The whole logical content goes in (holes as zeros); the pax writer drops the holes. */
        for (off_t off = 0; off < st.st_size;) {
                size_t want = (uint64_t) (st.st_size - off) < CHUNK ? (size_t) (st.st_size - off) : CHUNK;
                ssize_t n = pread(fd, buf, want, off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return phy_error_set(err, n < 0 ? errno : EIO, "cannot read '%s': %s", src,
                                             n < 0 ? strerror(errno) : "it shrank while being exported");
                sha256_update(&h, (size_t) n, (const uint8_t *) buf);
                if (archive_write_data(a, buf, (size_t) n) != n)
                        return phy_error_set(err, EIO, "cannot write the bundle (member '%s'): %s", path,
                                             archive_error_string(a));
                off += n;
                progress_add(pg, (uint64_t) n);
        }
        uint8_t dig[SHA256_DIGEST_SIZE];
        char hx[2 * SHA256_DIGEST_SIZE + 1];
        sha256_digest(&h, sizeof dig, dig);
        hex(dig, sizeof dig, hx);
        json_object *m = json_object_new_object();
        json_object_object_add(m, "path", json_object_new_string(path));
        json_object_object_add(m, "size", json_object_new_int64(st.st_size));
        json_object_object_add(m, "sha256", json_object_new_string(hx));
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
        int r = vm_load_by_name(home, name, &d, err);
        if (r < 0)
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
                _cleanup_(json_object_putp) json_object *info = NULL;
                if (!p || asprintf(&mp, "disk-%s.%s", k->name, k->format ? k->format : "qcow2") < 0) {
                        r = phy_error_set(err, ENOMEM, "out of memory");
                        break;
                }
                if ((r = store_image_info(qemu_img, p, &info, err)) < 0)
                        break;
                if (store_json_str(info, "backing-filename")) {
                        /* A linked clone: its chain flattened into one standalone qcow2. */
                        if (asprintf(&flat, "%s/%s", stage, mp) < 0) {
                                r = phy_error_set(err, ENOMEM, "out of memory");
                                break;
                        }
                        char *argv[] = { qemu_img, "convert", "-q", "-O", "qcow2", p, flat, NULL };
                        if ((r = store_qemu_img(qemu_img, "flattening a disk for export", argv, NULL, err)) < 0)
                                break;
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
                if (stat(m[i].src, &st) == 0)
                        pg.total += (uint64_t) st.st_size;
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
                json_object_object_add(o, "version", json_object_new_int(1));
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

struct got {
        char *path;
        uint64_t size;
        char sha[2 * SHA256_DIGEST_SIZE + 1];
};

static int extract(struct archive *a, struct archive_entry *e, int dirfd, const char *path, struct got *g,
                   struct progress *pg, phy_error *err) {
        bool small = strncmp(path, "disk-", 5) != 0;
        la_int64_t size = archive_entry_size(e);
        if (!archive_entry_size_is_set(e) || size < 0 || (small && size > (la_int64_t) BUNDLE_SMALL_MAX))
                return phy_error_set(err, EINVAL, "the bundle's member '%s' has no valid size (at most %u MiB for "
                                     "anything but a disk)", path, BUNDLE_SMALL_MAX >> 20);
        _cleanup_close_ int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return errno == EEXIST
                        ? phy_error_set(err, EEXIST, "the bundle holds the member '%s' twice; it is damaged or forged", path)
                        : phy_error_set(err, errno, "cannot create '%s' for the import: %s", path, strerror(errno));
        struct sha256_ctx h;
        sha256_init(&h);
        static const uint8_t zeros[65536];
        uint64_t pos = 0;
        for (;;) {
                const void *buf;
                size_t len;
                la_int64_t off;
                int r = archive_read_data_block(a, &buf, &len, &off);
                if (r == ARCHIVE_EOF)
                        break;
                if (r != ARCHIVE_OK)
                        return phy_error_set(err, EIO, "the bundle is truncated or damaged (in member '%s'): %s", path,
                                             archive_error_string(a));
                if (off < (la_int64_t) pos || (uint64_t) off + len > (uint64_t) size)
                        return phy_error_set(err, EINVAL, "the bundle's member '%s' has data outside its size", path);
                /* A hole: hashed as the zeros it reads as, not written. */
                for (; pos < (uint64_t) off;) {
                        size_t z = (uint64_t) off - pos < sizeof zeros ? (size_t) ((uint64_t) off - pos) : sizeof zeros;
                        sha256_update(&h, z, zeros);
                        pos += z;
                }
                for (size_t w = 0; w < len;) {
                        ssize_t n = pwrite(fd, (const char *) buf + w, len - w, (off_t) (off + (la_int64_t) w));
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return phy_error_set(err, errno, "cannot write '%s': %s", path, strerror(errno));
                        w += (size_t) n;
                }
                sha256_update(&h, len, buf);
                pos += len;
                progress_add(pg, len);
        }
        for (; pos < (uint64_t) size;) {
                size_t z = (uint64_t) size - pos < sizeof zeros ? (size_t) ((uint64_t) size - pos) : sizeof zeros;
                sha256_update(&h, z, zeros);
                pos += z;
        }
        if (ftruncate(fd, (off_t) size) < 0 || fsync(fd) < 0)
                return phy_error_set(err, errno, "cannot write '%s': %s", path, strerror(errno));
        uint8_t dig[SHA256_DIGEST_SIZE];
        sha256_digest(&h, sizeof dig, dig);
        hex(dig, sizeof dig, g->sha);
        g->size = (uint64_t) size;
        return 0;
}

static int verify(json_object *man, const struct got *got, size_t n, phy_error *err) {
        json_object *members;
        const char *fmt = store_json_str(man, "format");
        if (!fmt || strcmp(fmt, BUNDLE_FORMAT) != 0 || store_json_int(man, "version") != 1 ||
            !json_object_object_get_ex(man, "members", &members) || !json_object_is_type(members, json_type_array))
                return phy_error_set(err, EINVAL, "the bundle's manifest.json is not a Phyllome bundle manifest (version 1)");
        size_t mn = json_object_array_length(members);
        if (mn != n)
                return phy_error_set(err, EINVAL, "the bundle's manifest lists %zu members but the bundle holds %zu; "
                                     "it is damaged or was changed", mn, n);
        for (size_t i = 0; i < mn; i++) {
                json_object *o = json_object_array_get_idx(members, i);
                const char *p = store_json_str(o, "path"), *sha = store_json_str(o, "sha256");
                int64_t size = store_json_int(o, "size");
                const struct got *g = NULL;
                for (size_t k = 0; p && k < n; k++)
                        if (strcmp(got[k].path, p) == 0)
                                g = &got[k];
                if (!g)
                        return phy_error_set(err, EINVAL, "the bundle's manifest lists '%s', which the bundle does not "
                                             "hold; it is damaged or was changed", p ? p : "?");
                if (size < 0 || (uint64_t) size != g->size || !sha || strcmp(sha, g->sha) != 0)
                        return phy_error_set(err, EINVAL, "the bundle's member '%s' does not match its manifest "
                                             "(size or sha256); it is damaged or was changed", p);
        }
        return 0;
}

int store_import(const char *home, int fd, const char *new_name, store_progress_fn progress, void *userdata,
                 char **ret_name, phy_error *err) {
        _cleanup_free_ char *vms = NULL, *tmp = NULL;
        _cleanup_close_ int tmp_lock = -1;
        if (new_name && !vm_name_valid(new_name))
                return phy_error_set(err, EINVAL, "invalid VM name '%s'; use up to 64 letters, digits, '.', '_' and '-'",
                                     new_name);
        if (asprintf(&vms, "%s/vms", home) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = vm_tmpdir_make(home, "import", NULL, &tmp, &tmp_lock, err);
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
        struct progress pg = { progress, userdata, 0, 0 };
        if (!a)
                r = phy_error_set(err, ENOMEM, "out of memory");
        else if (archive_read_support_filter_zstd(a) != ARCHIVE_OK || archive_read_support_format_tar(a) != ARCHIVE_OK ||
                 archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK)
                r = phy_error_set(err, EINVAL, "cannot read the bundle: %s", archive_error_string(a));
        while (r >= 0) {
                struct archive_entry *e;
                int ar = archive_read_next_header(a, &e);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar != ARCHIVE_OK) {
                        r = phy_error_set(err, EIO, "the bundle is truncated or damaged: %s", archive_error_string(a));
                        break;
                }
                const char *p = archive_entry_pathname(e);
                if (!p || !store_bundle_member_name_ok(p)) {
                        r = phy_error_set(err, EINVAL, "the bundle's member '%s' is not a name a bundle holds (it may "
                                          "point outside the VM's directory); refusing the bundle", p ? p : "?");
                        break;
                }
                if (man) {
                        r = phy_error_set(err, EINVAL, "the bundle has the member '%s' after its manifest; refusing it", p);
                        break;
                }
                if (archive_entry_filetype(e) == AE_IFDIR && strcmp(p, "tpm") == 0)
                        continue;
                if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) || archive_entry_symlink(e)) {
                        r = phy_error_set(err, EINVAL, "the bundle's member '%s' is not a regular file; refusing the bundle", p);
                        break;
                }
                if (strcmp(p, "manifest.json") == 0) {
                        la_int64_t sz = archive_entry_size(e);
                        if (sz <= 0 || sz > 16 * 1024 * 1024) {
                                r = phy_error_set(err, EINVAL, "the bundle's manifest.json has a bad size");
                                break;
                        }
                        _cleanup_free_ char *text = calloc(1, (size_t) sz + 1);
                        if (!text || archive_read_data(a, text, (size_t) sz) != sz) {
                                r = phy_error_set(err, EIO, "the bundle is truncated or damaged (in manifest.json): %s",
                                                  archive_error_string(a));
                                break;
                        }
                        man = json_tokener_parse(text);
                        if (!man || !json_object_is_type(man, json_type_object)) {
                                r = phy_error_set(err, EINVAL, "the bundle's manifest.json is not a JSON object");
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
                if (!ng || !(ng[n].path = strdup(p))) {
                        got = ng ? ng : got;
                        r = phy_error_set(err, ENOMEM, "out of memory");
                        break;
                }
                got = ng;
                n++;
                r = extract(a, e, dfd, p, &got[n - 1], &pg, err);
        }
        if (r >= 0 && !man)
                r = phy_error_set(err, EINVAL, "the bundle has no manifest.json at its end: it is truncated or not a "
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
        for (size_t i = 0; r >= 0 && i < d.n_disks; i++)
                if (d.disks[i].path[0] == '/' || strchr(d.disks[i].path, '/') ||
                    faccessat(dfd, d.disks[i].path, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                        r = phy_error_set(err, EINVAL, "the bundle's disk '%s' ('%s') is not among its members",
                                          d.disks[i].name, d.disks[i].path);
        if (r >= 0 && !d.name[0])
                snprintf(d.name, sizeof d.name, "%s", store_json_str(man, "name") ? store_json_str(man, "name") : "");
        if (r >= 0 && new_name && strcmp(new_name, d.name) != 0) {
                /* Under another name it is a copy beside the original: a new identity. */
                snprintf(d.name, sizeof d.name, "%s", new_name);
                d.uuid[0] = '\0';
                for (size_t i = 0; i < d.n_nics; i++)
                        d.nics[i].mac[0] = '\0';
                if ((r = vm_def_make_identity(&d, err)) >= 0)
                        r = vm_def_save(&d, conf, err);
        }
        if (r >= 0 && !vm_name_valid(d.name))
                r = phy_error_set(err, EINVAL, "the bundle names its VM '%s', which is not a valid name; import with --name",
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
        else if (ret_name && !(*ret_name = strdup(d.name)))
                r = -ENOMEM;
        for (size_t i = 0; i < n; i++)
                free(got[i].path);
        free(got);
        json_object_put(man);
        return r;
}

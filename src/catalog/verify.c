/* SPDX-License-Identifier: MIT */
/*
 * Verification: checksum files (GNU "HEX  name" and BSD "SHA256 (name) =
 * HEX" lines), gpgv with the vendor's keyring, HTML and ISO sniffing, and
 * `catalog verify FILE` against known hashes.
 */
#include "verify.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "fileio.h"

void verify_hex(const uint8_t dig[32], char out[65]) {
        static const char hx[] = "0123456789abcdef";
        for (int i = 0; i < 32; i++) {
                out[2 * i] = hx[dig[i] >> 4];
                out[2 * i + 1] = hx[dig[i] & 15];
        }
        out[64] = '\0';
}

int verify_hash_fd(int fd, uint64_t len, struct sha256_ctx *h, phy_error *err) {
        _cleanup_free_ uint8_t *buf = malloc(1 << 20);
        if (!buf)
                return phy_error_set(err, ENOMEM, "out of memory");
        uint64_t off = 0;
        while (off < len) {
                size_t want = len - off < (1 << 20) ? (size_t) (len - off) : (1 << 20);
                ssize_t n = pread(fd, buf, want, (off_t) off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return phy_error_set(err, n < 0 ? errno : EIO, "cannot read the file being hashed: %s",
                                             n < 0 ? strerror(errno) : "it is shorter than expected");
                sha256_update(h, (size_t) n, buf);
                off += (uint64_t) n;
        }
        return 0;
}

static bool is_hex64(const char *s, size_t n) {
        if (n != 64)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isxdigit((unsigned char) s[i]))
                        return false;
        return true;
}

/* One line: "HEX  name", "HEX *name", or "SHA256 (name) = HEX".  Fills
 * hash (lower-case) and a pointer/length into the line for the name. */
static bool parse_sum_line(const char *l, size_t len, char hash[65], const char **name, size_t *name_len) {
        if (len > 72 && strncmp(l, "SHA256 (", 8) == 0) {
                const char *close = NULL;
                for (size_t i = len; i-- > 8;)
                        if (i + 4 + 64 <= len && strncmp(l + i, ") = ", 4) == 0) {
                                close = l + i;
                                break;
                        }
                if (!close || !is_hex64(close + 4, (size_t) (l + len - close - 4)))
                        return false;
                *name = l + 8;
                *name_len = (size_t) (close - *name);
                for (int i = 0; i < 64; i++)
                        hash[i] = (char) tolower((unsigned char) close[4 + i]);
                hash[64] = '\0';
                return true;
        }
        if (len > 66 && is_hex64(l, 64) && (l[64] == ' ' || l[64] == '\t')) {
                size_t i = 65;
                if (i < len && (l[i] == ' ' || l[i] == '*'))
                        i++;
                *name = l + i;
                *name_len = len - i;
                for (int k = 0; k < 64; k++)
                        hash[k] = (char) tolower((unsigned char) l[k]);
                hash[64] = '\0';
                return true;
        }
        return false;
}

void verify_sums_each(const char *text, bool (*fn)(const char *hash, const char *name, size_t name_len, void *), void *u) {
        for (const char *l = text; l && *l;) {
                const char *nl = strchr(l, '\n');
                size_t len = nl ? (size_t) (nl - l) : strlen(l);
                while (len && (l[len - 1] == '\r' || l[len - 1] == ' '))
                        len--;
                char hash[65];
                const char *name;
                size_t nlen;
                if (parse_sum_line(l, len, hash, &name, &nlen) && fn(hash, name, nlen, u))
                        return;
                l = nl ? nl + 1 : NULL;
        }
}

struct find { const char *name; char hash[65]; unsigned n_entries; char only[65]; bool found; };

static bool find_cb(const char *hash, const char *name, size_t len, void *u) {
        struct find *f = u;
        f->n_entries++;
        memcpy(f->only, hash, 65);
        /* "./name" and "name" are the same file */
        if (len > 2 && name[0] == '.' && name[1] == '/') {
                name += 2;
                len -= 2;
        }
        if (strlen(f->name) == len && memcmp(f->name, name, len) == 0) {
                memcpy(f->hash, hash, 65);
                f->found = true;
                return true;
        }
        return false;
}

int verify_sums_lookup(const char *text, const char *what, const char *name, char ret[65], phy_error *err) {
        struct find f = { .name = name };
        verify_sums_each(text, find_cb, &f);
        if (f.found) {
                memcpy(ret, f.hash, 65);
                return 0;
        }
        /* openSUSE's "-Current" links: the .sha256 holds one line with the build's name. */
        if (f.n_entries == 1) {
                memcpy(ret, f.only, 65);
                return 0;
        }
        return phy_error_set(err, ENOENT, "the checksum file %s lists no SHA-256 for '%s'", what, name);
}

int verify_gpgv(const char *keyring, const char *sig, const char *data, const char *output, phy_error *err) {
        _cleanup_free_ char *gpgv = exec_find_in_path("gpgv");
        if (!gpgv)
                return phy_error_set(err, ENOENT, "gpgv is not installed (Debian package gpgv); it checks the "
                                     "vendor's signature");
        char home[] = "/tmp/phyllome-gpgv-XXXXXX";
        if (!mkdtemp(home))
                return phy_error_set(err, errno, "cannot make a directory for gpgv: %s", strerror(errno));
        strv a = { 0 };
        int r = strv_push_many(&a, gpgv, "--homedir", home, "--keyring", keyring, NULL);
        if (r >= 0 && output)
                r = strv_push_many(&a, "--output", output, NULL);
        if (r >= 0)
                r = strv_push_many(&a, sig, data, NULL);
        char errbuf[512] = "";
        if (r >= 0)
                r = exec_run(a.v, NULL, errbuf, sizeof errbuf);
        else
                phy_error_set(err, ENOMEM, "out of memory");
        strv_done(&a);
        rm_rf(home);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                /* keep the first line of gpgv's complaint that says why */
                char *bad = strstr(errbuf, "BAD signature");
                char *no = strstr(errbuf, "No public key");
                return phy_error_set(err, EBADMSG, "%s", bad ? "BAD signature" : no ? "made by a key that is not "
                                     "the vendor's" : errbuf[0] ? errbuf : "gpgv failed");
        }
        return 0;
}

bool verify_looks_html(const uint8_t *b, size_t n) {
        size_t i = 0;
        if (n >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf)
                i = 3;
        while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n'))
                i++;
        if (i >= n || b[i] != '<')
                return false;
        static const char *const tags[] = { "<!doctype", "<html", "<head", "<body", "<?xml", "<!--", "<title" };
        for (size_t t = 0; t < ELEMENTSOF(tags); t++) {
                size_t l = strlen(tags[t]);
                if (n - i >= l && strncasecmp((const char *) b + i, tags[t], l) == 0)
                        return true;
        }
        return false;
}

int verify_iso_volume_id(int fd, char out[33], phy_error *err) {
        uint8_t pvd[2048];
        ssize_t n = pread(fd, pvd, sizeof pvd, 16 * 2048);
        if (n != (ssize_t) sizeof pvd || pvd[0] != 1 || memcmp(pvd + 1, "CD001", 5) != 0)
                return phy_error_set(err, EINVAL, "no ISO 9660 primary volume descriptor");
        memcpy(out, pvd + 40, 32);
        out[32] = '\0';
        for (int i = 31; i >= 0 && out[i] == ' '; i--)
                out[i] = '\0';
        return 0;
}

void catalog_match_done(struct catalog_match *m) {
        free(m->os);
        free(m->file);
        free(m->how);
        *m = (struct catalog_match) { 0 };
}

struct want { const char *hash; char *name; };

static bool want_cb(const char *hash, const char *name, size_t len, void *u) {
        struct want *w = u;
        if (strcmp(hash, w->hash) != 0)
                return false;
        w->name = strndup(name, len);
        return true;
}

int catalog_verify_file(const struct catalog *c, const char *path, struct catalog_match *ret, phy_error *err) {
        _cleanup_free_ char *media = NULL;      /* up here: the goto below must not jump over it */
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return phy_error_set(err, errno, "cannot read '%s': %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return phy_error_set(err, EINVAL, "'%s' is not a regular file", path);
        struct sha256_ctx h;
        uint8_t dig[32];
        sha256_init(&h);
        int r = verify_hash_fd(fd, (uint64_t) st.st_size, &h, err);
        if (r < 0)
                return phy_error_prefix(err, "'%s'", path);
        sha256_digest(&h, sizeof dig, dig);
        struct catalog_match m = { 0 };
        verify_hex(dig, m.sha256);

        for (size_t i = 0; i < c->n; i++) {
                const struct catalog_entry *e = &c->entries[i];
                if (!strv_contains(&e->sha256, m.sha256))
                        continue;
                m.os = strdup(e->id);
                m.how = strdup(e->hash_source ? "the hash the vendor publishes, recorded in the catalog"
                                              : "a hash recorded in the catalog");
                goto found;
        }
        /* The checksum files whose signature a download verified. */
        if (catalog_media_dir(&media, NULL) >= 0)
                for (size_t i = 0; i < c->n; i++) {
                        _cleanup_free_ char *p = NULL, *text = NULL;
                        if (asprintf(&p, "%s/.checksums/%s", media, c->entries[i].id) < 0)
                                break;
                        if (file_read_all(p, 1024 * 1024, &text, NULL) < 0)
                                continue;
                        struct want w = { .hash = m.sha256 };
                        verify_sums_each(text, want_cb, &w);
                        if (!w.name)
                                continue;
                        m.os = strdup(c->entries[i].id);
                        m.file = w.name;
                        m.how = strdup(c->entries[i].sig == CATALOG_SIGNED_IMAGE
                                               ? "the vendor's checksum file, with the image's signature verified"
                                               : "the vendor's checksum file, its signature verified");
                        goto found;
                }
        *ret = m;
        return phy_error_set(err, ENOENT, "'%s' (SHA-256 %s) matches no hash the catalog knows", path, m.sha256);
found:
        if (!m.os || !m.how) {
                catalog_match_done(&m);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        *ret = m;
        return 0;
}

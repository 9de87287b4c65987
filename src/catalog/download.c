/* SPDX-License-Identifier: MIT */
/*
 * Verified downloads with libcurl.  The vendor's checksum file and its
 * signature come first (small; gpgv checks them before a byte of the image
 * is fetched), then the image into <name>.part: resumed with an HTTP Range
 * after an interruption, its SHA-256 taken as the bytes arrive.  An HTML
 * page, a wrong size or a volume id osinfo does not know for the OS is
 * refused before the checksum is compared.  Any failed check deletes the
 * file.  Proxies come from the usual environment variables (libcurl).
 */
#include "catalog.h"
#include "verify.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"

#define SMALL_MAX (1024 * 1024)                 /* checksum files and signatures */
#define IMAGE_MAX (64ULL * 1024 * 1024 * 1024)  /* without a size in the catalog */
#define ATTEMPTS 8                              /* resumes within one download */
#define PROGRESS_STEP (1024 * 1024)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

static CURL *easy(const char *url, char *errbuf) {
        pthread_once(&curl_once, curl_init);
        CURL *c = curl_easy_init();
        if (!c)
                return NULL;
        errbuf[0] = '\0';
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "phyllome/" PHYLLOME_VERSION);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
        /* a stalled server: under 1 byte/s for 60 s */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
        return c;
}

static void easy_freep(CURL **c) {
        if (*c)
                curl_easy_cleanup(*c);
}

/* ---- small files ---- */

struct small { char *buf; size_t len; bool over; };

static size_t small_write(char *p, size_t size, size_t n, void *u) {
        struct small *s = u;
        size_t len = size * n;
        if (s->len + len > SMALL_MAX) {
                s->over = true;
                return 0;
        }
        char *b = realloc(s->buf, s->len + len + 1);
        if (!b)
                return 0;
        memcpy(b + s->len, p, len);
        s->buf = b;
        s->len += len;
        b[s->len] = '\0';
        return len;
}

static int fetch_small(const char *url, const char *what, struct small *ret, phy_error *err) {
        char eb[CURL_ERROR_SIZE];
        _cleanup_(easy_freep) CURL *c = easy(url, eb);
        struct small s = { 0 };
        if (!c)
                return phy_error_set(err, ENOMEM, "out of memory");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, small_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
        CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK) {
                free(s.buf);
                return phy_error_set(err, rc == CURLE_HTTP_RETURNED_ERROR ? ENOENT : EIO,
                                     "cannot download the %s '%s': %s", what, url,
                                     s.over ? "it is larger than 1 MiB" : eb[0] ? eb : curl_easy_strerror(rc));
        }
        if (!s.buf && !(s.buf = calloc(1, 1)))
                return phy_error_set(err, ENOMEM, "out of memory");
        *ret = s;
        return 0;
}

/* ---- the image ---- */

struct xfer {
        const struct catalog_entry *e;
        const struct catalog_download_opts *o;
        CURL *c;
        int fd;
        uint64_t start;         /* offset this request asked for */
        uint64_t off;           /* bytes in the file */
        uint64_t total;         /* expected size, 0 unknown */
        uint64_t reported;
        struct sha256_ctx h;
        bool checked;           /* status and headers looked at */
        bool html;              /* Content-Type: text/html */
        long range_start;       /* from Content-Range, -1 none */
        phy_error *err;
        int fail;               /* our own refusal (negative errno), the message in err */
        bool fatal;             /* the file must go */
};

static size_t header_cb(char *b, size_t size, size_t n, void *u) {
        struct xfer *x = u;
        size_t len = size * n;
        if (len > 14 && strncasecmp(b, "content-type:", 13) == 0) {
                const char *v = b + 13;
                while (*v == ' ')
                        v++;
                x->html = strncasecmp(v, "text/html", 9) == 0;
        } else if (len > 20 && strncasecmp(b, "content-range:", 14) == 0) {
                unsigned long long s;
                if (sscanf(b + 14, " bytes %llu-", &s) == 1)
                        x->range_start = (long) s;
        } else if (len >= 5 && strncmp(b, "HTTP/", 5) == 0) {
                /* a redirect's headers come first: start again */
                x->html = false;
                x->range_start = -1;
        }
        return len;
}

static void refuse(struct xfer *x, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void refuse(struct xfer *x, int code, const char *fmt, ...) {
        char msg[700];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        x->fail = phy_error_set(x->err, code, "%s", msg);
        x->fatal = true;
}

static void report(struct xfer *x, bool force) {
        if (x->o->progress && (force || x->off - x->reported >= PROGRESS_STEP || x->off < x->reported)) {
                x->reported = x->off;
                x->o->progress(CATALOG_PHASE_IMAGE, x->off, x->total, x->o->userdata);
        }
}

/* The first bytes of a response decide: resumed or restarted, right size,
 * not a web page. */
static int check_response(struct xfer *x) {
        long code = 0;
        curl_off_t clen = -1;
        curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(x->c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
        if (x->start > 0 && code == 200) {
                /* the server ignores Range: start from 0 */
                if (ftruncate(x->fd, 0) < 0)
                        return -errno;
                x->start = x->off = 0;
                sha256_init(&x->h);
        } else if (x->start > 0 && (code != 206 || x->range_start != (long) x->start)) {
                x->fail = phy_error_set(x->err, EPROTO, "the server answered a request for the bytes from %llu "
                                        "of '%s' with other bytes (HTTP %ld)", (unsigned long long) x->start,
                                        x->e->url, code);
                return 0;
        }
        if (x->html) {
                refuse(x, EINVAL, "refused '%s': the server sent a web page (Content-Type: text/html), not a disk "
                       "image (content check)", x->e->url);
                return 0;
        }
        if (clen >= 0) {
                uint64_t full = x->start + (uint64_t) clen;
                if (x->e->size && full != x->e->size) {
                        refuse(x, EINVAL, "refused '%s': its size is %llu bytes, the catalog says %llu (size check)",
                               x->e->url, (unsigned long long) full, (unsigned long long) x->e->size);
                        return 0;
                }
                if (full > IMAGE_MAX) {
                        refuse(x, EFBIG, "refused '%s': %llu bytes is more than the %llu an image may have",
                               x->e->url, (unsigned long long) full, IMAGE_MAX);
                        return 0;
                }
                x->total = full;
        } else if (x->e->size)
                x->total = x->e->size;
        x->checked = true;
        report(x, true);
        return 0;
}

static size_t write_cb(char *b, size_t size, size_t n, void *u) {
        struct xfer *x = u;
        size_t len = size * n;
        if (!x->checked) {
                int r = check_response(x);
                if (r < 0) {
                        x->fail = phy_error_set(x->err, -r, "cannot restart the download: %s", strerror(-r));
                        return 0;
                }
                if (x->fail)
                        return 0;
        }
        if (x->off == 0 && verify_looks_html((const uint8_t *) b, len)) {
                refuse(x, EINVAL, "refused '%s': the server sent a web page, not a disk image (content check)",
                       x->e->url);
                return 0;
        }
        uint64_t limit = x->e->size ? x->e->size : IMAGE_MAX;
        if (x->off + len > limit) {
                refuse(x, EINVAL, "refused '%s': more than %llu bytes arrived (size check)", x->e->url,
                       (unsigned long long) limit);
                return 0;
        }
        for (size_t done = 0; done < len;) {
                ssize_t w = pwrite(x->fd, b + done, len - done, (off_t) (x->off + done));
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0) {
                        x->fail = phy_error_set(x->err, w < 0 ? errno : EIO, "cannot write the download: %s",
                                                w < 0 ? strerror(errno) : "short write");
                        return 0;
                }
                done += (size_t) w;
        }
        sha256_update(&x->h, len, (const uint8_t *) b);
        x->off += len;
        report(x, false);
        return len;
}

static int xferinfo_cb(void *u, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
        struct xfer *x = u;
        return x->o->cancel && *x->o->cancel;
}

static bool transient(CURLcode rc) {
        return rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
               rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_GOT_NOTHING || rc == CURLE_COULDNT_CONNECT;
}

/* Fetches into fd from its current end; keeps what arrived on a network error. */
static int fetch_image(struct xfer *x) {
        char eb[CURL_ERROR_SIZE];
        uint64_t before = (uint64_t) -1;
        for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
                _cleanup_(easy_freep) CURL *c = easy(x->e->url, eb);
                if (!c)
                        return phy_error_set(x->err, ENOMEM, "out of memory");
                x->c = c;
                x->start = x->off;
                x->checked = x->html = false;
                x->range_start = -1;
                char range[48];
                if (x->off > 0) {
                        snprintf(range, sizeof range, "%llu-", (unsigned long long) x->off);
                        curl_easy_setopt(c, CURLOPT_RANGE, range);
                }
                curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
                curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
                curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
                curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
                curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
                curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
                curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
                CURLcode rc = curl_easy_perform(c);
                x->c = NULL;
                if (x->fail)
                        return x->fail;
                long code = 0;
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
                /* 416: nothing after what we have; the checks that follow decide */
                if (rc == CURLE_HTTP_RETURNED_ERROR && code == 416 && x->off > 0)
                        return 0;
                if (rc == CURLE_OK) {
                        int r = x->checked ? 0 : check_response(x);
                        if (r < 0)
                                return phy_error_set(x->err, -r, "cannot restart the download: %s", strerror(-r));
                        if (x->fail)
                                return x->fail;
                        if (x->total && x->off != x->total)
                                continue;
                        return 0;
                }
                if (rc == CURLE_ABORTED_BY_CALLBACK)
                        return phy_error_set(x->err, ECANCELED, "the download of '%s' was cancelled at %llu bytes; "
                                             "the same command resumes it", x->e->url, (unsigned long long) x->off);
                /* a resume that brings nothing twice in a row gives up */
                if (!transient(rc) || (attempt > 0 && x->off == before))
                        return phy_error_set(x->err, rc == CURLE_HTTP_RETURNED_ERROR ? ENOENT : EIO,
                                             "cannot download '%s': %s (%llu bytes kept; the same command resumes)",
                                             x->e->url, eb[0] ? eb : curl_easy_strerror(rc),
                                             (unsigned long long) x->off);
                before = x->off;
        }
        return phy_error_set(x->err, EIO, "cannot download '%s': the connection broke %d times", x->e->url, ATTEMPTS);
}

/* ---- the whole download ---- */

static int write_text(const char *path, const char *text, size_t len, phy_error *err) {
        return file_write_atomic(path, text, len, 0600, err);
}

static void progress(const struct catalog_download_opts *o, enum catalog_phase ph, uint64_t done, uint64_t total) {
        if (o->progress)
                o->progress(ph, done, total, o->userdata);
}

/* The signed checksum file's text (the signed part only for clearsigned
 * ones), verified with gpgv; NULL text when the entry has none. */
static int verified_checksums(const struct catalog_entry *e, const char *dir, char **ret_text, phy_error *err) {
        *ret_text = NULL;
        if (!e->checksums)
                return 0;
        struct small sums = { 0 }, sig = { 0 };
        int r = fetch_small(e->checksums, "checksum file", &sums, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *sums_text = sums.buf;
        if (e->sig == CATALOG_SIGNED_IMAGE || e->sig == CATALOG_SIGNED_NONE) {
                /* not signed: the image's own signature (or nothing) is the proof */
                *ret_text = TAKE_PTR(sums_text);
                return 0;
        }
        _cleanup_free_ char *tmp = NULL, *p_sums = NULL, *p_sig = NULL, *p_out = NULL;
        if (asprintf(&tmp, "%s/.verify-XXXXXX", dir) < 0 || !mkdtemp(tmp))
                return phy_error_set(err, errno ? errno : ENOMEM, "cannot make a directory in '%s': %s", dir,
                                     strerror(errno));
        if (asprintf(&p_sums, "%s/sums", tmp) < 0 || asprintf(&p_sig, "%s/sig", tmp) < 0 ||
            asprintf(&p_out, "%s/signed", tmp) < 0) {
                rm_rf(tmp);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        r = write_text(p_sums, sums_text, sums.len, err);
        if (r >= 0 && e->sig == CATALOG_SIGNED_CHECKSUMS) {
                r = fetch_small(e->signature, "signature", &sig, err);
                if (r >= 0)
                        r = write_text(p_sig, sig.buf, sig.len, err);
                free(sig.buf);
                if (r >= 0 && (r = verify_gpgv(e->key, p_sig, p_sums, NULL, err)) < 0)
                        phy_error_prefix(err, "refused %s: the checksum file '%s' does not verify against its "
                                         "signature '%s' with the key %s (signature check)", e->id, e->checksums,
                                         e->signature, e->key);
                if (r >= 0)
                        *ret_text = TAKE_PTR(sums_text);
        } else if (r >= 0) {
                /* clearsigned: only what gpgv writes out was signed */
                if ((r = verify_gpgv(e->key, p_sums, NULL, p_out, err)) < 0)
                        phy_error_prefix(err, "refused %s: the clearsigned checksum file '%s' does not verify with "
                                         "the key %s (signature check)", e->id, e->checksums, e->key);
                else if ((r = file_read_all(p_out, SMALL_MAX, ret_text, NULL)) < 0)
                        r = phy_error_set(err, -r, "cannot read what gpgv verified: %s", strerror(-r));
        }
        rm_rf(tmp);
        return r;
}

/* Content checks before any checksum is trusted: size, ISO, volume id. */
static int check_media(const struct catalog_entry *e, int fd, const char *part, uint64_t len, phy_error *err) {
        if (e->size && len != e->size)
                return phy_error_set(err, EINVAL, "refused %s: %llu bytes arrived, the catalog says %llu (size check)",
                                     e->id, (unsigned long long) len, (unsigned long long) e->size);
        uint8_t head[512];
        ssize_t n = pread(fd, head, sizeof head, 0);
        if (n > 0 && verify_looks_html(head, (size_t) n))
                return phy_error_set(err, EINVAL, "refused %s: '%s' is a web page, not a disk image (content check)",
                                     e->id, e->url);
        char vol[33];
        if (verify_iso_volume_id(fd, vol, err) < 0)
                return phy_error_prefix(err, "refused %s: '%s' is not an ISO image (content check)", e->id, e->url);
        _cleanup_osinfo_ struct catalog_osinfo want = { 0 }, got = { 0 };
        if (catalog_osinfo_lookup(e->osinfo, &want, NULL) < 0 || !want.has_media)
                return 0;       /* osinfo has no volume ids for it: nothing to compare */
        phy_error ierr = { 0 };
        if (catalog_media_identify(part, &got, NULL, &ierr) < 0 || strcmp(got.id, want.id) != 0)
                return phy_error_set(err, EINVAL, "refused %s: the volume id '%s' is not one osinfo-db knows for %s%s%s "
                                     "(volume id check)", e->id, vol, want.name, got.id ? "; it looks like " : "",
                                     got.id ? got.name : "");
        return 0;
}

static void *osinfo_preload(void *unused) {
        catalog_osinfo_preload();
        return NULL;
}

struct marker { char hash[65]; unsigned long long size, mtime; };

static bool already_verified(const char *final, const char *mark) {
        _cleanup_free_ char *text = NULL;
        struct stat st;
        struct marker m;
        if (stat(final, &st) < 0 || file_read_all(mark, 4096, &text, NULL) < 0)
                return false;
        if (sscanf(text, "%64s %llu %llu", m.hash, &m.size, &m.mtime) != 3)
                return false;
        return m.size == (unsigned long long) st.st_size && m.mtime == (unsigned long long) st.st_mtime;
}

int catalog_download(const struct catalog_entry *e, const struct catalog_download_opts *o, char **ret_path,
                     phy_error *err) {
        _cleanup_free_ char *dir = NULL, *name = NULL, *final = NULL, *part = NULL, *mark = NULL, *sums = NULL,
                           *sums_dir = NULL, *sums_path = NULL;
        int r = catalog_media_name(e, &name, err);
        if (r < 0)
                return r;
        if (e->sig == CATALOG_SIGNED_NONE && !e->sha256.n && !o->unverified)
                return phy_error_set(err, EPERM, "%s has no checksum or signature to verify its download against; "
                                     "download it only with --unverified", e->id);
        if (o->dir) {
                if (mkdir_p(o->dir, 0700) < 0)
                        return phy_error_set(err, errno, "cannot create '%s': %s", o->dir, strerror(errno));
                dir = strdup(o->dir);
        } else if ((r = catalog_media_dir(&dir, err)) < 0)
                return r;
        if (!dir || asprintf(&final, "%s/%s", dir, name) < 0 || asprintf(&part, "%s/%s.part", dir, name) < 0 ||
            asprintf(&mark, "%s/.%s.verified", dir, name) < 0 || asprintf(&sums_dir, "%s/.checksums", dir) < 0 ||
            asprintf(&sums_path, "%s/%s", sums_dir, e->id) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (already_verified(final, mark)) {
                progress(o, CATALOG_PHASE_DONE, 1, 1);
                *ret_path = TAKE_PTR(final);
                return 0;
        }
        unlink(mark);

        /* 1. the vendor's checksum file, verified against its signature */
        progress(o, CATALOG_PHASE_CHECKSUMS, 0, 0);
        if ((r = verified_checksums(e, dir, &sums, err)) < 0)
                return r;
        char expect[65] = "";
        if (sums && e->sig != CATALOG_SIGNED_IMAGE &&
            (r = verify_sums_lookup(sums, e->checksums, name, expect, err)) < 0)
                return phy_error_prefix(err, "refused %s (checksum check)", e->id);
        progress(o, CATALOG_PHASE_CHECKSUMS, 1, 1);

        /* osinfo-db (a few thousand XML files) loads on the other core while
         * the bytes arrive: the volume id check needs it at the end */
        pthread_t preload;
        bool preloading = pthread_create(&preload, NULL, osinfo_preload, NULL) == 0;

        /* 2. the image, resumed from what a broken download left */
        struct xfer x = { .e = e, .o = o, .err = err, .fd = -1 };
        sha256_init(&x.h);
        x.fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        struct stat st;
        if (x.fd < 0 || fstat(x.fd, &st) < 0) {
                r = phy_error_set(err, errno, "cannot open '%s': %s", part, strerror(errno));
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = phy_error_set(err, EINVAL, "'%s' is not a regular file", part);
                goto out;
        }
        x.off = (uint64_t) st.st_size;
        if (e->size && x.off > e->size) {
                if (ftruncate(x.fd, 0) < 0) {
                        r = phy_error_set(err, errno, "cannot truncate '%s': %s", part, strerror(errno));
                        goto out;
                }
                x.off = 0;
        }
        /* what the last run kept is hashed from the disk, never fetched again */
        if (x.off && (r = verify_hash_fd(x.fd, x.off, &x.h, err)) < 0)
                goto out;
        if ((!e->size || x.off < e->size) && (r = fetch_image(&x)) < 0) {
                if (x.fatal)
                        unlink(part);
                goto out;
        }
        report(&x, true);
        if (fsync(x.fd) < 0) {
                r = phy_error_set(err, errno, "cannot write '%s': %s", part, strerror(errno));
                goto out;
        }

        /* 3. content checks, then the checksum */
        progress(o, CATALOG_PHASE_VERIFY, 0, 1);
        uint8_t dig[32];
        char got[65];
        sha256_digest(&x.h, sizeof dig, dig);
        verify_hex(dig, got);
        if ((r = check_media(e, x.fd, part, x.off, err)) < 0)
                goto bad;
        if (e->sig == CATALOG_SIGNED_IMAGE) {
                struct small sig = { 0 };
                _cleanup_free_ char *p_sig = NULL;
                if (asprintf(&p_sig, "%s/.%s.sig", dir, name) < 0) {
                        r = phy_error_set(err, ENOMEM, "out of memory");
                        goto bad;
                }
                if ((r = fetch_small(e->signature, "signature", &sig, err)) < 0)
                        goto out;       /* not the file's fault: keep it for the next try */
                r = write_text(p_sig, sig.buf, sig.len, err);
                free(sig.buf);
                if (r >= 0 && (r = verify_gpgv(e->key, p_sig, part, NULL, err)) < 0)
                        phy_error_prefix(err, "refused %s: the image does not verify against its signature '%s' "
                                         "with the key %s (signature check)", e->id, e->signature, e->key);
                unlink(p_sig);
                if (r < 0)
                        goto bad;
                /* the unsigned checksum file, when there is one, is kept for catalog verify */
        } else if (expect[0]) {
                if (strcmp(expect, got) != 0) {
                        r = phy_error_set(err, EBADMSG, "refused %s: the SHA-256 of the download is %s, the vendor's "
                                          "verified checksum file says %s (checksum check)", e->id, got, expect);
                        goto bad;
                }
        } else if (e->sha256.n && !strv_contains(&e->sha256, got)) {
                r = phy_error_set(err, EBADMSG, "refused %s: the SHA-256 of the download is %s, not one the catalog "
                                  "records (checksum check)", e->id, got);
                goto bad;
        }
        if (rename(part, final) < 0) {
                r = phy_error_set(err, errno, "cannot rename '%s': %s", part, strerror(errno));
                goto bad;
        }
        if (sums && mkdir_p(sums_dir, 0700) == 0)
                (void) write_text(sums_path, sums, strlen(sums), NULL);
        if (stat(final, &st) == 0) {
                char m[160];
                int n = snprintf(m, sizeof m, "%s %llu %llu\n", got, (unsigned long long) st.st_size,
                                 (unsigned long long) st.st_mtime);
                (void) write_text(mark, m, (size_t) n, NULL);
        }
        progress(o, CATALOG_PHASE_DONE, x.off, x.off);
        *ret_path = TAKE_PTR(final);
        r = 0;
        goto out;
bad:
        unlink(part);
out:
        if (preloading)
                pthread_join(preload, NULL);
        if (x.fd >= 0)
                close(x.fd);
        return r;
}

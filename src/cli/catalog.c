/* SPDX-License-Identifier: MIT */
/*
 * phyllo catalog list|search|show|verify|identify|unattend, phyllo download,
 * and what create --os / --iso takes from the catalog (docs/catalog.md).
 *
 * Each command is one call of phyllome-catalog-worker (src/ops/worker.c runs
 * it; src/catalog/verbs.c is the verb) and its result printed.  The worker
 * runs here, as the caller, not through phyllod: these verbs act on the
 * caller's own files (its media cache, --to DIR, --catalog FILE, the file to
 * verify, --out DIR), which the kernel then checks as for any command of
 * theirs, and phyllod (root in system mode) would have to check each path
 * in their name.  Nothing of the catalog's libraries is linked into phyllo.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog/unattend.h"
#include "cli.h"
#include "cleanup.h"
#include "ops/worker.h"

enum { OPT_JSON = 256, OPT_CATALOG, OPT_TO, OPT_UNVERIFIED, OPT_USER, OPT_PASSWORD_FILE, OPT_TIMEZONE, OPT_LOCALE,
       OPT_HOSTNAME, OPT_EDITION, OPT_DRIVERS, OPT_OUT, OPT_INITRD, OPT_ISO, OPT_INSTALL_JSON };

/* The worker's argv: a verb's words, then options given as pairs. */
struct wargs { const char *v[40]; size_t n; };

static void warg(struct wargs *w, const char *a, const char *b) {
        if (w->n + 2 < ELEMENTSOF(w->v)) {
                w->v[w->n++] = a;
                if (b)
                        w->v[w->n++] = b;
        }
        w->v[w->n] = NULL;
}

/* The verb's result in *ret: 0, or the exit status after printing its error. */
static int run_worker(struct wargs *w, void (*on_progress)(json_object *, void *), void *u, json_object **ret) {
        phy_error err = { 0 };
        struct ops_worker_call c = { .args = w->v, .on_progress = on_progress, .userdata = u };
        return ops_worker_run(&c, ret, &err) < 0 ? cli_fail(&err) : 0;
}

/* Options (--json, --catalog FILE and the command's own, which go to the
 * worker as given), then n operands: 0, or the exit status. */
static int parse(int argc, char **argv, const struct option *extra, int n, bool *json, struct wargs *w) {
        struct option opts[24] = {
                { "json", no_argument, NULL, OPT_JSON },
                { "catalog", required_argument, NULL, OPT_CATALOG },
        };
        size_t k = 2;
        for (size_t i = 0; extra && extra[i].name && k < ELEMENTSOF(opts) - 1; i++)
                opts[k++] = extra[i];
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                if (c == OPT_JSON) {
                        *json = true;
                        continue;
                }
                const struct option *o = NULL;
                for (size_t i = 1; i < k && !o; i++)
                        if (opts[i].val == c)
                                o = &opts[i];
                if (!o)
                        return cli_usage_error(cli_usage(), "unknown option");
                /* "--name" as the worker spells it: the option table's name */
                static char names[24][24];
                snprintf(names[o - opts], sizeof names[0], "--%s", o->name);
                warg(w, names[o - opts], o->has_arg ? optarg : NULL);
        }
        if (n >= 0 && optind + n != argc)
                return cli_usage_error(cli_usage(), n == 0 ? "no arguments expected" : "give one %s",
                                       strcmp(w->v[0], "verify") == 0 || strcmp(w->v[0], "identify") == 0 ? "file"
                                       : strcmp(w->v[0], "list") == 0 ? "search word" : "OS");
        for (int i = optind; i < argc; i++)
                warg(w, argv[i], NULL);
        return 0;
}

static const char *verified_how(json_object *e) {
        const char *s = cli_jstr(e, "signed");
        json_object *h = json_object_object_get(e, "sha256");
        if (strcmp(s, "checksums") == 0)
                return "signed checksum file";
        if (strcmp(s, "inline") == 0)
                return "clearsigned checksum file";
        if (strcmp(s, "image") == 0)
                return "signed image";
        return h && json_object_array_length(h) ? "published hash" : "NOT VERIFIED";
}

static int list_or_search(int argc, char **argv, bool search) {
        bool json = false;
        struct wargs w = { .v = { "list" }, .n = 1 };
        _cleanup_json_ json_object *a = NULL;
        int r = parse(argc, argv, NULL, search ? 1 : 0, &json, &w);
        if (r || (r = run_worker(&w, NULL, NULL, &a)))
                return r;
        if (json)
                cli_print_json(json_object_get(a));
        else {
                printf("%-14s %-48s %s\n", "OS", "NAME", "VERIFIED BY");
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        json_object *e = json_object_array_get_idx(a, i);
                        printf("%-14s %-48s %s%s\n", cli_jstr(e, "id"), cli_jstr(e, "name"), verified_how(e),
                               json_object_object_get_ex(e, "url", NULL) ? "" : " (bring your own)");
                }
        }
        if (search && json_object_array_length(a) == 0) {
                fprintf(stderr, "phyllo: no OS in the catalog matches '%s'\n", argv[argc - 1]);
                return 1;
        }
        return 0;
}

int cmd_catalog_list(struct cli_ctx *ctx, int argc, char **argv) { return list_or_search(argc, argv, false); }
int cmd_catalog_search(struct cli_ctx *ctx, int argc, char **argv) { return list_or_search(argc, argv, true); }

static void size_str(uint64_t v, char *buf, size_t len) {
        if (v >= (1ULL << 30))
                snprintf(buf, len, "%.1f GiB", (double) v / (1ULL << 30));
        else
                snprintf(buf, len, "%.0f MiB", (double) v / (1ULL << 20));
}

int cmd_catalog_show(struct cli_ctx *ctx, int argc, char **argv) {
        bool json = false;
        struct wargs w = { .v = { "show" }, .n = 1 };
        _cleanup_json_ json_object *j = NULL;
        int r = parse(argc, argv, NULL, 1, &json, &w);
        if (r || (r = run_worker(&w, NULL, NULL, &j)))
                return r;
        if (json) {
                json_object_object_del(j, "create");
                cli_print_json(json_object_get(j));
                return 0;
        }
        json_object *o = json_object_object_get(j, "os"), *pj = json_object_object_get(j, "plan");
        char a[32], b[32];
        const char *vendor = cli_jstr(o, "vendor"), *rel = cli_jstr(o, "release_date");
        printf("%s: %s\n", cli_jstr(j, "id"), cli_jstr(j, "name"));
        printf("  osinfo:       %s (%s, %s%s%s)\n", cli_jstr(o, "id"), cli_jstr(o, "name"), *vendor ? vendor : "?",
               *rel ? ", released " : "", rel);
        if (*cli_jstr(j, "url"))
                printf("  download:     %s\n", cli_jstr(j, "url"));
        else
                printf("  get it from:  %s\n", cli_jstr(j, "get"));
        printf("  verified by:  %s\n", verified_how(j));
        if (*cli_jstr(j, "checksums"))
                printf("  checksums:    %s\n", cli_jstr(j, "checksums"));
        if (*cli_jstr(j, "signature"))
                printf("  signature:    %s\n", cli_jstr(j, "signature"));
        if (*cli_jstr(j, "key"))
                printf("  key:          %s\n                (%s)\n", cli_jstr(j, "key"), cli_jstr(j, "key_source"));
        if (*cli_jstr(j, "hash_source")) {
                json_object *h = json_object_object_get(j, "sha256");
                printf("  hashes:       %s (%zu recorded)\n", cli_jstr(j, "hash_source"),
                       h ? json_object_array_length(h) : 0);
        }
        size_str((uint64_t) cli_jint(pj, "memory"), a, sizeof a);
        size_str((uint64_t) cli_jint(pj, "disk"), b, sizeof b);
        printf("  VM:           profile %s, %lld vCPUs, %s memory, %s disk (%s), network %s, graphics %s\n",
               cli_jstr(pj, "profile"), (long long) cli_jint(pj, "cpus"), a, b, cli_jstr(pj, "disk_bus"),
               cli_jstr(pj, "nic"), cli_jstr(pj, "gpu"));
        return 0;
}

int cmd_catalog_verify(struct cli_ctx *ctx, int argc, char **argv) {
        bool json = false;
        struct wargs w = { .v = { "verify" }, .n = 1 };
        _cleanup_json_ json_object *j = NULL;
        int r = parse(argc, argv, NULL, 1, &json, &w);
        if (r || (r = run_worker(&w, NULL, NULL, &j)))
                return r;
        bool ok = cli_jbool(j, "verified");
        if (json) {
                json_object *m = json_object_get(json_object_object_get(j, "message"));
                json_object_object_del(j, "message");
                cli_print_json(json_object_get(j));
                if (m)
                        fprintf(stderr, "phyllo: %s\n", json_object_get_string(m));
                json_object_put(m);
        } else if (ok) {
                const char *vn = cli_jstr(j, "vendor_name");
                printf("%s: OK, %s%s%s%s (SHA-256 %s, %s)\n", cli_jstr(j, "file"), cli_jstr(j, "os"), *vn ? " (" : "",
                       vn, *vn ? ")" : "", cli_jstr(j, "sha256"), cli_jstr(j, "how"));
        } else
                fprintf(stderr, "phyllo: %s\n", cli_jstr(j, "message"));
        return ok ? 0 : 1;
}

/* What an ISO holds, by libosinfo's media detection: the OS, the plan
 * create --iso would follow, the catalog entry of that OS, whether an
 * unattended install can be made. */
int cmd_catalog_identify(struct cli_ctx *ctx, int argc, char **argv) {
        bool json = false;
        struct wargs w = { .v = { "identify" }, .n = 1 };
        _cleanup_json_ json_object *j = NULL;
        int r = parse(argc, argv, NULL, 1, &json, &w);
        if (r || (r = run_worker(&w, NULL, NULL, &j)))
                return r;
        json_object_object_del(j, "create");
        if (json) {
                cli_print_json(json_object_get(j));
                return 0;
        }
        const char *cat = cli_jstr(j, "catalog");
        printf("%s: %s (volume id '%s'): profile %s%s%s%s\n", cli_jstr(j, "file"),
               cli_jstr(json_object_object_get(j, "os"), "name"), cli_jstr(j, "volume_id"),
               cli_jstr(json_object_object_get(j, "plan"), "profile"), *cat ? ", catalog " : "", cat,
               cli_jbool(j, "unattended") ? ", unattended install possible" : "");
        return 0;
}

/* ---- download ----------------------------------------------------------- */

struct bar {
        bool tty, json;
        const char *phase;
        struct timespec t0, last;
        int width;
};

static double since(const struct timespec *a, const struct timespec *b) {
        return (double) (b->tv_sec - a->tv_sec) + (double) (b->tv_nsec - a->tv_nsec) / 1e9;
}

/* JSON lines on stdout with --json; a bar on a terminal; nothing else. */
static void on_progress(json_object *p, void *u) {
        struct bar *b = u;
        const char *ph = cli_jstr(p, "phase");
        uint64_t done = (uint64_t) cli_jint(p, "done"), total = (uint64_t) cli_jint(p, "total");
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (b->json) {
                printf("{\"event\":\"progress\",\"phase\":\"%s\",\"done\":%llu,\"total\":%llu}\n", ph,
                       (unsigned long long) done, (unsigned long long) total);
                fflush(stdout);
                return;
        }
        if (!b->tty)
                return;
        bool image = strcmp(ph, "image") == 0, was_image = strcmp(b->phase, "image") == 0;
        if (!image) {
                if (was_image)
                        fputc('\n', stderr);
                if (strcmp(ph, "checksums") == 0 && done == 0)
                        fputs("checking the vendor's checksum file and signature...\n", stderr);
                else if (strcmp(ph, "verify") == 0 && strcmp(b->phase, "verify") != 0)
                        fputs("checking the image...\n", stderr);
                b->phase = strcmp(ph, "checksums") == 0 ? "checksums" : strcmp(ph, "verify") == 0 ? "verify" : "done";
                return;
        }
        if (!was_image) {
                b->t0 = now;
                b->phase = "image";
        } else if (since(&b->last, &now) < 0.2 && done != total)
                return;
        b->last = now;
        char d[32], t[32];
        size_str(done, d, sizeof d);
        size_str(total, t, sizeof t);
        double rate = since(&b->t0, &now) > 0 ? (double) done / since(&b->t0, &now) / (1 << 20) : 0;
        int pct = total ? (int) (done * 100 / total) : 0, fill = total ? pct * b->width / 100 : 0;
        fprintf(stderr, "\r[%.*s%*s] %3d%% %s / %s %.1f MiB/s ", fill, "########################################",
                b->width - fill, "", pct, d, total ? t : "?", rate);
}

/* The download of w's OS: 0 with *ret its result, or the exit status. */
static int download(struct wargs *w, bool json, json_object **ret) {
        struct bar b = { .tty = isatty(2), .json = json, .phase = "done", .width = 40 };
        phy_error err = { 0 };
        struct ops_worker_call c = { .args = w->v, .on_progress = on_progress, .userdata = &b };
        if (ops_worker_run(&c, ret, &err) >= 0)
                return 0;
        if (json) {
                json_object *s = json_object_new_string(phy_error_message(&err));
                printf("{\"event\":\"error\",\"message\":%s}\n", json_object_to_json_string(s));
                json_object_put(s);
        }
        return cli_fail(&err);
}

int cmd_download(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option extra[] = {
                { "to", required_argument, NULL, OPT_TO },
                { "unverified", no_argument, NULL, OPT_UNVERIFIED },
                { 0 },
        };
        bool json = false;
        struct wargs w = { .v = { "download" }, .n = 1 };
        _cleanup_json_ json_object *j = NULL;
        int r = parse(argc, argv, extra, 1, &json, &w);
        if (r || (r = download(&w, json, &j)))
                return r;
        if (json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "event", json_object_new_string("done"));
                json_object_object_add(o, "os", json_object_get(json_object_object_get(j, "os")));
                json_object_object_add(o, "path", json_object_get(json_object_object_get(j, "path")));
                puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
        } else
                printf("%s: %s (%s)\n", cli_jstr(j, "os"), cli_jstr(j, "path"), cli_jbool(j, "verified") ? "verified"
                       : "NOT verified: the catalog has no checksum or signature for it");
        return 0;
}

/* ---- create --os / --iso ------------------------------------------------- */

int cli_catalog_for_create(struct cli_ctx *ctx, const char *os, const char *iso, bool unverified,
                           json_object **ret_create, char **ret_iso) {
        _cleanup_json_ json_object *j = NULL;
        struct wargs w = { .n = 0 };
        int r;
        *ret_iso = NULL;
        if (os) {
                warg(&w, "show", os);
                if ((r = run_worker(&w, NULL, NULL, &j)))
                        return r;
                if (!iso && json_object_object_get_ex(j, "url", NULL)) {
                        _cleanup_json_ json_object *d = NULL;
                        struct wargs dw = { .n = 0 };
                        warg(&dw, "download", cli_jstr(j, "id"));
                        if (unverified)
                                warg(&dw, "--unverified", NULL);
                        if ((r = download(&dw, false, &d)))
                                return r;
                        if (!(*ret_iso = strdup(cli_jstr(d, "path"))))
                                return cli_usage_error(cli_usage(), "out of memory");
                } else if (!iso)
                        fprintf(stderr, "phyllo: %s has no direct download: get it from %s and give it with --iso "
                                "(phyllo catalog verify FILE checks it)\n", cli_jstr(j, "name"), cli_jstr(j, "get"));
        } else {
                warg(&w, "identify", iso);
                phy_error err = { 0 };
                struct ops_worker_call c = { .args = w.v };
                if (ops_worker_run(&c, &j, &err) < 0) {
                        if (err.code == ENOENT) {
                                fprintf(stderr, "phyllo: %s; give --profile\n", err.message);
                                return 2;
                        }
                        return cli_fail(&err);
                }
                fprintf(stderr, "phyllo: '%s' is %s (volume id '%s'): profile %s\n", iso,
                        cli_jstr(json_object_object_get(j, "os"), "name"), cli_jstr(j, "volume_id"),
                        cli_jstr(json_object_object_get(j, "plan"), "profile"));
        }
        *ret_create = json_object_get(json_object_object_get(j, "create"));
        return 0;
}

void cli_catalog_apply(json_object *create, json_object *b) {
        /* what the user left unset; no disk when they asked for none */
        json_object_object_foreach(create, k, v)
                if (!json_object_object_get_ex(b, k, NULL) &&
                    !(strcmp(k, "disk") == 0 && json_object_object_get_ex(b, "no_disk", NULL)))
                        json_object_object_add(b, k, json_object_get(v));
}

/* ---- unattended installs ------------------------------------------------- */

static const struct option unattend_opts[] = {
        { "user", required_argument, NULL, OPT_USER }, { "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
        { "timezone", required_argument, NULL, OPT_TIMEZONE }, { "locale", required_argument, NULL, OPT_LOCALE },
        { "hostname", required_argument, NULL, OPT_HOSTNAME }, { "edition", required_argument, NULL, OPT_EDITION },
        { "drivers", no_argument, NULL, OPT_DRIVERS }, { "out", required_argument, NULL, OPT_OUT },
        { "initrd", required_argument, NULL, OPT_INITRD }, { "iso", required_argument, NULL, OPT_ISO },
        { "install-json", no_argument, NULL, OPT_INSTALL_JSON }, { 0 },
};

static bool has(const struct wargs *w, const char *opt) {
        for (size_t i = 0; i < w->n; i++)
                if (strcmp(w->v[i], opt) == 0)
                        return true;
        return false;
}

int cmd_catalog_unattend(struct cli_ctx *ctx, int argc, char **argv) {
        bool json = false;
        struct wargs w = { .v = { "unattend" }, .n = 1 };
        _cleanup_json_ json_object *j = NULL;
        int r = parse(argc, argv, unattend_opts, 1, &json, &w);
        if (r)
                return r;
        if (has(&w, "--install-json")) {
                /* the answer as POST /v1/vms's "install" member: the install verb */
                struct wargs iw = { .n = 0 };
                warg(&iw, "install", NULL);
                for (size_t i = 1; i + 1 < w.n; i++)
                        if (strcmp(w.v[i], "--install-json") != 0 && strcmp(w.v[i], "--out") != 0 &&
                            strcmp(w.v[i], "--initrd") != 0)
                                warg(&iw, w.v[i], NULL);
                        else if (strcmp(w.v[i], "--install-json") != 0)
                                i++;
                warg(&iw, "--os", w.v[w.n - 1]);
                if ((r = run_worker(&iw, NULL, NULL, &j)))
                        return r;
                puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                return 0;
        }
        if (!has(&w, "--user") || !has(&w, "--password-file") || !has(&w, "--out"))
                return cli_usage_error(cli_usage(), "--user, --password-file and --out are required");
        if (has(&w, "--iso"))
                return cli_usage_error(cli_usage(), "--iso goes with --install-json");
        if ((r = run_worker(&w, NULL, NULL, &j)))
                return r;
        if (json) {
                cli_print_json(json_object_get(j));
                return 0;
        }
        const char *image = cli_jstr(j, "image"), *initrd = cli_jstr(j, "initrd");
        printf("%s: %s%s%s%s%s\n", cli_jstr(j, "os"), cli_jstr(j, "answer_file"), *image ? ", " : "", image,
               *initrd ? ", " : "", initrd);
        return 0;
}

int cli_catalog_unattended(struct cli_ctx *ctx, const char *os, const char *iso, const char *profile,
                           const char *password_file, struct catalog_unattend *u, json_object *b) {
        struct ops_ctx oc;
        _cleanup_free_ char *pwfile = cli_abs_path(password_file);
        if (!pwfile || cli_ops(ctx, &oc))
                return 1;
        struct ops_unattended ua = { .os = os, .iso = iso, .profile = profile, .user = u->user,
                                     .password_file = pwfile, .timezone = u->timezone, .locale = u->locale,
                                     .hostname = u->hostname, .edition = u->edition, .drivers = u->drivers };
        phy_error err = { 0 };
        _cleanup_json_ json_object *j = NULL;
        if (ops_unattended_answer(&oc, &ua, &j, &err) < 0)
                return cli_fail(&err);
        json_object_object_add(b, "install", json_object_get(json_object_object_get(j, "install")));
        return 0;
}

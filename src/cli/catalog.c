/* SPDX-License-Identifier: MIT */
/* phyllo catalog list|search|show|verify, phyllo download, and what
 * create --os / --iso takes from the catalog (docs/catalog.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "catalog/unattend.h"
#include "cli.h"
#include "cleanup.h"
#include "fileio.h"
#include "vm/profile.h"

enum { OPT_JSON = 256, OPT_CATALOG, OPT_TO, OPT_UNVERIFIED };

/* --json and --catalog FILE, the options every catalog command has; the
 * rest of argv left in place for the caller (optind). */
static int common_opts(int argc, char **argv, const char *usage, const struct option *extra, size_t n_extra,
                       bool *json, const char **catalog, int (*on_extra)(int c, void *), void *u) {
        struct option opts[16] = {
                { "json", no_argument, NULL, OPT_JSON },
                { "catalog", required_argument, NULL, OPT_CATALOG },
        };
        for (size_t i = 0; i < n_extra && i < ELEMENTSOF(opts) - 3; i++)
                opts[2 + i] = extra[i];
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                if (c == OPT_JSON)
                        *json = true;
                else if (c == OPT_CATALOG)
                        *catalog = optarg;
                else if (c == '?' || !on_extra || on_extra(c, u) < 0)
                        return cli_usage_error(usage, "unknown option");
        }
        return 0;
}

/* Options, then exactly one operand (what), then the catalog loaded into c.
 * 0, or the exit status after printing why not. */
static int one_operand(int argc, char **argv, const char *usage, const char *what, const struct option *extra,
                       size_t n_extra, int (*on_extra)(int c, void *), void *u, bool *json, struct catalog *c) {
        const char *path = NULL;
        int r = common_opts(argc, argv, usage, extra, n_extra, json, &path, on_extra, u);
        if (r)
                return r;
        if (optind + 1 != argc)
                return cli_usage_error(usage, "give one %s", what);
        phy_error err = { 0 };
        return catalog_load(path, c, &err) < 0 ? cli_fail(&err) : 0;
}

static const struct catalog_entry *find_entry(const struct catalog *c, const char *name, phy_error *err) {
        const struct catalog_entry *e = catalog_find(c, name);
        if (!e)
                phy_error_set(err, ENOENT, "the catalog %s has no OS '%s'; see 'phyllo catalog list'", c->path, name);
        return e;
}

static const char *verified_how(const struct catalog_entry *e) {
        switch (e->sig) {
        case CATALOG_SIGNED_CHECKSUMS: return "signed checksum file";
        case CATALOG_SIGNED_INLINE: return "clearsigned checksum file";
        case CATALOG_SIGNED_IMAGE: return "signed image";
        default: return e->sha256.n ? "published hash" : "NOT VERIFIED";
        }
}

static int list_or_search(struct cli_ctx *ctx, int argc, char **argv, const char *usage, bool search) {
        bool json = false;
        const char *path = NULL;
        int r = common_opts(argc, argv, usage, NULL, 0, &json, &path, NULL, NULL);
        if (r)
                return r;
        if (search ? optind + 1 != argc : optind != argc)
                return cli_usage_error(usage, search ? "give one search word" : "no arguments expected");
        _cleanup_catalog_ struct catalog c = { 0 };
        phy_error err = { 0 };
        if (catalog_load(path, &c, &err) < 0)
                return cli_fail(&err);
        json_object *arr = json ? json_object_new_array() : NULL;
        size_t shown = 0;
        if (!json)
                printf("%-14s %-48s %s\n", "OS", "NAME", "VERIFIED BY");
        for (size_t i = 0; i < c.n; i++) {
                const struct catalog_entry *e = &c.entries[i];
                if (search && !catalog_entry_matches(e, argv[optind]))
                        continue;
                shown++;
                if (json)
                        json_object_array_add(arr, catalog_entry_json(e));
                else
                        printf("%-14s %-48s %s%s\n", e->id, e->name, verified_how(e), e->url ? "" : " (bring your own)");
        }
        if (json)
                cli_print_json(arr);
        if (search && !shown) {
                fprintf(stderr, "phyllo: no OS in the catalog matches '%s'\n", argv[optind]);
                return 1;
        }
        return 0;
}

int cmd_catalog_list(struct cli_ctx *ctx, int argc, char **argv) {
        return list_or_search(ctx, argc, argv, "catalog list [--json] [--catalog FILE]", false);
}

int cmd_catalog_search(struct cli_ctx *ctx, int argc, char **argv) {
        return list_or_search(ctx, argc, argv, "catalog search WORD [--json] [--catalog FILE]", true);
}

static void size_str(uint64_t v, char *buf, size_t len) {
        if (v >= (1ULL << 30))
                snprintf(buf, len, "%.1f GiB", (double) v / (1ULL << 30));
        else
                snprintf(buf, len, "%.0f MiB", (double) v / (1ULL << 20));
}

/* os, plan and unattended (whether an answer file can be made) into j. */
static void add_os_plan(json_object *j, const struct catalog_osinfo *o, const struct catalog_plan *plan) {
        json_object_object_add(j, "os", catalog_osinfo_json(o));
        json_object_object_add(j, "plan", catalog_plan_json(plan));
        json_object_object_add(j, "unattended", json_object_new_boolean(catalog_unattend_supported(
                o->id, strncmp(plan->profile->name, "windows", 7) == 0)));
}

int cmd_catalog_show(struct cli_ctx *ctx, int argc, char **argv) {
        const char *usage = cli_usage();
        bool json = false;
        _cleanup_catalog_ struct catalog c = { 0 };
        int r = one_operand(argc, argv, usage, "OS", NULL, 0, NULL, NULL, &json, &c);
        if (r)
                return r;
        _cleanup_osinfo_ struct catalog_osinfo o = { 0 };
        struct catalog_plan plan;
        phy_error err = { 0 };
        const struct catalog_entry *e = find_entry(&c, argv[optind], &err);
        if (!e || catalog_osinfo_lookup(e->osinfo, &o, &err) < 0 || catalog_plan_for(&o, e->profile, &plan, &err) < 0)
                return cli_fail(&err);
        if (json) {
                json_object *j = catalog_entry_json(e);
                add_os_plan(j, &o, &plan);
                cli_print_json(j);
                return 0;
        }
        char a[32], b[32];
        printf("%s: %s\n", e->id, e->name);
        printf("  osinfo:       %s (%s, %s%s%s)\n", o.id, o.name, o.vendor ? o.vendor : "?",
               o.release_date ? ", released " : "", o.release_date ? o.release_date : "");
        if (e->url)
                printf("  download:     %s\n", e->url);
        else
                printf("  get it from:  %s\n", e->get);
        printf("  verified by:  %s\n", verified_how(e));
        if (e->checksums)
                printf("  checksums:    %s\n", e->checksums);
        if (e->signature)
                printf("  signature:    %s\n", e->signature);
        if (e->key)
                printf("  key:          %s\n                (%s)\n", e->key, e->key_source);
        if (e->hash_source)
                printf("  hashes:       %s (%zu recorded)\n", e->hash_source, e->sha256.n);
        json_object *pj = catalog_plan_json(&plan);
        size_str((uint64_t) json_object_get_int64(json_object_object_get(pj, "memory")), a, sizeof a);
        size_str((uint64_t) json_object_get_int64(json_object_object_get(pj, "disk")), b, sizeof b);
        printf("  VM:           profile %s, %lld vCPUs, %s memory, %s disk (%s), network %s, graphics %s\n",
               plan.profile->name, (long long) json_object_get_int64(json_object_object_get(pj, "cpus")), a, b,
               json_object_get_string(json_object_object_get(pj, "disk_bus")),
               json_object_get_string(json_object_object_get(pj, "nic")),
               json_object_get_string(json_object_object_get(pj, "gpu")));
        json_object_put(pj);
        return 0;
}

int cmd_catalog_verify(struct cli_ctx *ctx, int argc, char **argv) {
        const char *usage = cli_usage();
        bool json = false;
        _cleanup_catalog_ struct catalog c = { 0 };
        int r = one_operand(argc, argv, usage, "file", NULL, 0, NULL, NULL, &json, &c);
        if (r)
                return r;
        phy_error err = { 0 };
        struct catalog_match m = { 0 };
        r = catalog_verify_file(&c, argv[optind], &m, &err);
        if (json && (r >= 0 || r == -ENOENT)) {
                json_object *j = json_object_new_object();
                json_object_object_add(j, "file", json_object_new_string(argv[optind]));
                json_object_object_add(j, "sha256", json_object_new_string(m.sha256));
                json_object_object_add(j, "verified", json_object_new_boolean(r >= 0));
                if (m.os)
                        json_object_object_add(j, "os", json_object_new_string(m.os));
                if (m.file)
                        json_object_object_add(j, "vendor_name", json_object_new_string(m.file));
                if (m.how)
                        json_object_object_add(j, "how", json_object_new_string(m.how));
                cli_print_json(j);
        } else if (r >= 0)
                printf("%s: OK, %s%s%s%s (SHA-256 %s, %s)\n", argv[optind], m.os, m.file ? " (" : "",
                       m.file ? m.file : "", m.file ? ")" : "", m.sha256, m.how);
        catalog_match_done(&m);
        return r < 0 ? cli_fail(&err) : 0;
}

/* What an ISO holds, by libosinfo's media detection (the app's "local ISO"
 * source, through phyllod's POST /v1/media/identify): the OS, the plan
 * create --iso would follow, the catalog entry of that OS, whether an
 * unattended install can be made. */
int cmd_catalog_identify(struct cli_ctx *ctx, int argc, char **argv) {
        _cleanup_catalog_ struct catalog c = { 0 };
        bool json = false;
        int r = one_operand(argc, argv, cli_usage(), "file", NULL, 0, NULL, NULL, &json, &c);
        if (r)
                return r;
        const char *iso = argv[optind];
        _cleanup_osinfo_ struct catalog_osinfo o = { 0 };
        _cleanup_free_ char *vol = NULL;
        struct catalog_plan plan;
        phy_error err = { 0 };
        if (catalog_media_identify(iso, &o, &vol, &err) < 0 || catalog_plan_for(&o, NULL, &plan, &err) < 0)
                return cli_fail(&err);
        const struct catalog_entry *e = NULL;
        for (size_t i = 0; i < c.n && !e; i++)
                if (strcmp(c.entries[i].osinfo, o.id) == 0)
                        e = &c.entries[i];
        json_object *j = json_object_new_object();
        json_object_object_add(j, "file", json_object_new_string(iso));
        json_object_object_add(j, "volume_id", json_object_new_string(vol ? vol : ""));
        if (e)
                json_object_object_add(j, "catalog", json_object_new_string(e->id));
        add_os_plan(j, &o, &plan);
        if (json) {
                cli_print_json(j);
                return 0;
        }
        bool unattended = json_object_get_boolean(json_object_object_get(j, "unattended"));
        json_object_put(j);
        printf("%s: %s (volume id '%s'): profile %s%s%s%s\n", iso, o.name, vol ? vol : "", plan.profile->name,
               e ? ", catalog " : "", e ? e->id : "", unattended ? ", unattended install possible" : "");
        return 0;
}

/* ---- download ----------------------------------------------------------- */

struct bar {
        bool tty, json;
        enum catalog_phase phase;
        struct timespec t0, last;
        int width;
};

static double since(const struct timespec *a, const struct timespec *b) {
        return (double) (b->tv_sec - a->tv_sec) + (double) (b->tv_nsec - a->tv_nsec) / 1e9;
}

/* JSON lines on stdout with --json; a bar on a terminal; nothing else. */
static void on_progress(enum catalog_phase ph, uint64_t done, uint64_t total, void *u) {
        struct bar *b = u;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (b->json) {
                printf("{\"event\":\"progress\",\"phase\":\"%s\",\"done\":%llu,\"total\":%llu}\n",
                       catalog_phase_name(ph), (unsigned long long) done, (unsigned long long) total);
                fflush(stdout);
                return;
        }
        if (!b->tty)
                return;
        if (ph != CATALOG_PHASE_IMAGE) {
                if (b->phase == CATALOG_PHASE_IMAGE)
                        fputc('\n', stderr);
                if (ph == CATALOG_PHASE_CHECKSUMS && done == 0)
                        fputs("checking the vendor's checksum file and signature...\n", stderr);
                else if (ph == CATALOG_PHASE_VERIFY)
                        fputs("checking the image...\n", stderr);
                b->phase = ph;
                return;
        }
        if (b->phase != CATALOG_PHASE_IMAGE) {
                b->t0 = now;
                b->phase = ph;
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

struct dl_opts { const char *to; bool unverified; };

static int dl_extra(int c, void *u) {
        struct dl_opts *o = u;
        if (c == OPT_TO)
                o->to = optarg;
        else if (c == OPT_UNVERIFIED)
                o->unverified = true;
        else
                return -1;
        return 0;
}

static int download(const struct catalog_entry *e, const char *to, bool unverified, bool json, char **ret,
                    phy_error *err) {
        struct bar b = { .tty = isatty(2), .json = json, .phase = CATALOG_PHASE_DONE, .width = 40 };
        struct catalog_download_opts o = { .dir = to, .unverified = unverified, .progress = on_progress,
                                           .userdata = &b };
        return catalog_download(e, &o, ret, err);
}

int cmd_download(struct cli_ctx *ctx, int argc, char **argv) {
        const char *usage = cli_usage();
        static const struct option extra[] = {
                { "to", required_argument, NULL, OPT_TO },
                { "unverified", no_argument, NULL, OPT_UNVERIFIED },
        };
        bool json = false;
        struct dl_opts d = { 0 };
        _cleanup_catalog_ struct catalog c = { 0 };
        int r = one_operand(argc, argv, usage, "OS", extra, ELEMENTSOF(extra), dl_extra, &d, &json, &c);
        if (r)
                return r;
        phy_error err = { 0 };
        const struct catalog_entry *e = find_entry(&c, argv[optind], &err);
        if (!e)
                return cli_fail(&err);
        _cleanup_free_ char *file = NULL;
        if (download(e, d.to, d.unverified, json, &file, &err) < 0) {
                if (json) {
                        printf("{\"event\":\"error\",\"message\":");
                        json_object *s = json_object_new_string(err.message);
                        printf("%s}\n", json_object_to_json_string(s));
                        json_object_put(s);
                }
                return cli_fail(&err);
        }
        if (json) {
                json_object *j = json_object_new_object(), *s;
                json_object_object_add(j, "event", json_object_new_string("done"));
                json_object_object_add(j, "os", json_object_new_string(e->id));
                json_object_object_add(j, "path", s = json_object_new_string(file));
                puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(j);
        } else
                printf("%s: %s (%s)\n", e->id, file, e->sig == CATALOG_SIGNED_NONE && !e->sha256.n
                       ? "NOT verified: the catalog has no checksum or signature for it" : "verified");
        return 0;
}

/* ---- create --os / --iso ------------------------------------------------- */

int cli_catalog_for_create(struct cli_ctx *ctx, const char *os, const char *iso, bool unverified,
                           struct catalog_plan *plan, char **ret_iso) {
        phy_error err = { 0 };
        _cleanup_osinfo_ struct catalog_osinfo o = { 0 };
        *ret_iso = NULL;
        if (os) {
                _cleanup_catalog_ struct catalog c = { 0 };
                if (catalog_load(NULL, &c, &err) < 0)
                        return cli_fail(&err);
                const struct catalog_entry *e = find_entry(&c, os, &err);
                if (!e || catalog_osinfo_lookup(e->osinfo, &o, &err) < 0 || catalog_plan_for(&o, e->profile, plan, &err) < 0)
                        return cli_fail(&err);
                if (!iso && e->url && download(e, NULL, unverified, false, ret_iso, &err) < 0)
                        return cli_fail(&err);
                if (!iso && !e->url)
                        fprintf(stderr, "phyllo: %s has no direct download: get it from %s and give it with --iso "
                                "(phyllo catalog verify FILE checks it)\n", e->name, e->get);
                return 0;
        }
        _cleanup_free_ char *vol = NULL;
        if (catalog_media_identify(iso, &o, &vol, &err) < 0) {
                if (err.code == ENOENT) {
                        fprintf(stderr, "phyllo: %s; give --profile\n", err.message);
                        return 2;
                }
                return cli_fail(&err);
        }
        if (catalog_plan_for(&o, NULL, plan, &err) < 0)
                return cli_fail(&err);
        fprintf(stderr, "phyllo: '%s' is %s (volume id '%s'): profile %s\n", iso, o.name, vol, plan->profile->name);
        return 0;
}

/* ---- unattended installs ------------------------------------------------- */

struct un_opts { struct catalog_unattend u; const char *password_file, *out, *initrd, *iso; bool install_json; };

static int un_extra(int c, void *p) {
        struct un_opts *o = p;
        switch (c) {
        case 'u': o->u.user = optarg; break;
        case 'p': o->password_file = optarg; break;
        case 'z': o->u.timezone = optarg; break;
        case 'l': o->u.locale = optarg; break;
        case 'h': o->u.hostname = optarg; break;
        case 'e': o->u.edition = optarg; break;
        case 'd': o->u.drivers = true; break;
        case 'o': o->out = optarg; break;
        case 'i': o->initrd = optarg; break;
        case 'I': o->iso = optarg; break;
        case 'J': o->install_json = true; break;
        default: return -1;
        }
        return 0;
}

/* Writes name under dir (0600), atomically. */
static int out_file(const char *dir, const char *name, const char *data, size_t len, char **ret, phy_error *err) {
        if (asprintf(ret, "%s/%s", dir, name) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        return file_write_atomic(*ret, data, len, 0600, err);
}

/* --install-json: POST /v1/vms's "install" member and the profile, for
 * phyllod (which loads no osinfo-db): {"profile": P, "install": {...}}.  The
 * answer holds the password: it goes to stdout, a pipe to phyllod. */
static int install_json_fail(const phy_error *err) {
        json_object *j = json_object_new_object(), *e = json_object_new_object();
        json_object_object_add(e, "kind", json_object_new_string(phy_error_kind_name(phy_error_kind_of(err))));
        json_object_object_add(e, "message", json_object_new_string(phy_error_message(err)));
        json_object_object_add(j, "error", e);
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(j);
        return cli_fail(err);
}

static int install_json(const struct catalog *c, const char *os, struct un_opts *o) {
        phy_error err = { 0 };
        _cleanup_osinfo_ struct catalog_osinfo info = { 0 };
        struct catalog_plan plan;
        _cleanup_free_ char *pw = NULL;
        const struct catalog_entry *e = find_entry(c, os, &err);
        if (!o->iso || !o->u.user || !o->password_file)
                return install_json_fail(&(phy_error) { .code = EINVAL, .kind = PHY_ERR_USAGE,
                                                        .message = "--install-json needs --iso, --user and "
                                                                   "--password-file" });
        if (!e || catalog_osinfo_lookup(e->osinfo, &info, &err) < 0 ||
            catalog_plan_for(&info, e->profile, &plan, &err) < 0 ||
            catalog_unattend_read_password(o->password_file, &pw, &err) < 0)
                return install_json_fail(&err);
        o->u.password = pw;
        struct catalog_install in = { 0 };
        if (catalog_unattend_install(e->osinfo, strncmp(plan.profile->name, "windows", 7) == 0, o->iso, &o->u, &in,
                                     &err) < 0)
                return install_json_fail(&err);
        json_object *j = json_object_new_object();
        json_object_object_add(j, "profile", json_object_new_string(plan.profile->name));
        json_object_object_add(j, "install", catalog_install_json(&in));
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(j);
        explicit_bzero(in.answer, strlen(in.answer));
        explicit_bzero(pw, strlen(pw));
        catalog_install_done(&in);
        return 0;
}

int cmd_catalog_unattend(struct cli_ctx *ctx, int argc, char **argv) {
        const char *usage = cli_usage();
        static const struct option extra[] = {
                { "user", required_argument, NULL, 'u' }, { "password-file", required_argument, NULL, 'p' },
                { "timezone", required_argument, NULL, 'z' }, { "locale", required_argument, NULL, 'l' },
                { "hostname", required_argument, NULL, 'h' },
        };
        /* more options than common_opts' table holds: a second pass takes the rest */
        static const struct option extra2[] = {
                { "edition", required_argument, NULL, 'e' }, { "drivers", no_argument, NULL, 'd' },
                { "out", required_argument, NULL, 'o' }, { "initrd", required_argument, NULL, 'i' },
                { "iso", required_argument, NULL, 'I' }, { "install-json", no_argument, NULL, 'J' },
        };
        struct option all[ELEMENTSOF(extra) + ELEMENTSOF(extra2)];
        memcpy(all, extra, sizeof extra);
        memcpy(all + ELEMENTSOF(extra), extra2, sizeof extra2);
        bool json = false;
        struct un_opts o = { 0 };
        _cleanup_catalog_ struct catalog c = { 0 };
        int r = one_operand(argc, argv, usage, "OS", all, ELEMENTSOF(all), un_extra, &o, &json, &c);
        if (r)
                return r;
        if (o.install_json)
                return install_json(&c, argv[optind], &o);
        if (!o.u.user || !o.password_file || !o.out)
                return cli_usage_error(usage, "--user, --password-file and --out are required");
        phy_error err = { 0 };
        const struct catalog_entry *e = find_entry(&c, argv[optind], &err);
        _cleanup_osinfo_ struct catalog_osinfo os = { 0 };
        struct catalog_plan plan;
        _cleanup_free_ char *pw = NULL, *text = NULL, *fname = NULL, *answer = NULL, *image = NULL, *initrd = NULL;
        if (!e || catalog_osinfo_lookup(e->osinfo, &os, &err) < 0 || catalog_plan_for(&os, e->profile, &plan, &err) < 0 ||
            catalog_unattend_read_password(o.password_file, &pw, &err) < 0)
                return cli_fail(&err);
        o.u.password = pw;
        if (mkdir_p(o.out, 0700) < 0) {
                phy_error_set(&err, errno, "cannot create '%s': %s", o.out, strerror(errno));
                return cli_fail(&err);
        }
        bool windows = strncmp(plan.profile->name, "windows", 7) == 0;
        if (windows) {
                if (catalog_unattend_windows(&o.u, &text, &err) < 0 ||
                    out_file(o.out, "autounattend.xml", text, strlen(text), &answer, &err) < 0 ||
                    asprintf(&image, "%s/unattend.iso", o.out) < 0 || catalog_unattend_iso(text, image, &err) < 0)
                        return cli_fail(&err);
        } else {
                if (catalog_unattend_osinfo(e->osinfo, &o.u, &text, &fname, &err) < 0 ||
                    out_file(o.out, fname, text, strlen(text), &answer, &err) < 0)
                        return cli_fail(&err);
                if (o.initrd && (asprintf(&initrd, "%s/initrd-unattended.gz", o.out) < 0 ||
                                 catalog_initrd_inject(o.initrd, initrd, fname, text, strlen(text), &err) < 0))
                        return cli_fail(&err);
        }
        if (json) {
                json_object *j = json_object_new_object();
                json_object_object_add(j, "os", json_object_new_string(e->id));
                json_object_object_add(j, "answer_file", json_object_new_string(answer));
                if (image)
                        json_object_object_add(j, "image", json_object_new_string(image));
                if (initrd)
                        json_object_object_add(j, "initrd", json_object_new_string(initrd));
                cli_print_json(j);
        } else
                printf("%s: %s%s%s%s%s\n", e->id, answer, image ? ", " : "", image ? image : "",
                       initrd ? ", " : "", initrd ? initrd : "");
        return 0;
}

int cli_catalog_unattended(const char *os, const char *iso, const char *profile, const char *password_file,
                           struct catalog_unattend *u, json_object *b) {
        phy_error err = { 0 };
        _cleanup_free_ char *pw = NULL;
        _cleanup_osinfo_ struct catalog_osinfo o = { 0 };
        const char *osinfo_id = NULL;
        _cleanup_catalog_ struct catalog c = { 0 };
        if (!iso) {
                fprintf(stderr, "phyllo: an unattended install needs the install media: give --iso FILE (or --os "
                        "with a direct download)\n");
                return 2;
        }
        if (os) {
                const struct catalog_entry *e = NULL;
                if (catalog_load(NULL, &c, &err) < 0 || !(e = find_entry(&c, os, &err)))
                        return cli_fail(&err);
                osinfo_id = e->osinfo;
        } else {
                if (catalog_media_identify(iso, &o, NULL, &err) < 0)
                        return cli_fail(&err);
                osinfo_id = o.id;
        }
        if (catalog_unattend_read_password(password_file, &pw, &err) < 0)
                return cli_fail(&err);
        u->password = pw;
        struct catalog_install in = { 0 };
        if (catalog_unattend_install(osinfo_id, strncmp(profile, "windows", 7) == 0, iso, u, &in, &err) < 0)
                return cli_fail(&err);
        json_object_object_add(b, "install", catalog_install_json(&in));
        /* the password's copies in this process go as soon as the request is built */
        explicit_bzero(in.answer, strlen(in.answer));
        explicit_bzero(pw, strlen(pw));
        catalog_install_done(&in);
        u->password = NULL;
        return 0;
}

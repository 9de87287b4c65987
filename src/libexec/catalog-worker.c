/* SPDX-License-Identifier: MIT */
/*
 * phyllome-catalog-worker: one catalog verb (src/catalog/verbs.h) per run,
 * for phyllod and phyllo, neither of which loads libosinfo, GLib or libcurl
 * itself (docs/architecture.md, "Binaries").  It is started with an argv
 * array by src/ops/worker.c and answers on stdout with records, one JSON
 * object a line:
 *
 *   {"progress": {"phase": "image", "done": N, "total": N}}   (download only)
 *   {"result": ...}                                           the last record, exit 0
 *   {"error": {"code": "ENOENT", "kind": "not-found", "message": "..."}}
 *                                                             the last record, exit 1 (2: usage)
 *
 *   phyllome-catalog-worker [--catalog FILE] VERB ...
 *     list [WORD] | show OS | identify ISO | verify FILE
 *     download OS [--to DIR] [--unverified]       SIGTERM cancels: the partial file goes
 *     install [--os OS] --iso ISO [--profile P] --user U --password-file F [--timezone Z]
 *             [--locale L] [--hostname H] [--edition E] [--drivers]
 *     unattend OS --user U --password-file F --out DIR [--initrd FILE] [--timezone ...]
 *
 * The password comes from a file (phyllod: /dev/stdin, at most 4 KiB),
 * never from the command line.  Any other input is refused as a usage
 * error: an unknown verb or option, a missing or extra operand, an
 * argument over PATH_MAX bytes.  It never starts phyllo or phyllod.
 */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "catalog/verbs.h"
#include "cleanup.h"
#include "error-json.h"
#include "json-cleanup.h"

static const char *const usage =
        "phyllome-catalog-worker [--catalog FILE] list [WORD] | show OS | identify ISO | verify FILE | "
        "download OS [--to DIR] [--unverified] | install [--os OS] --iso ISO [--profile P] --user U "
        "--password-file F [...] | unattend OS --user U --password-file F --out DIR [--initrd FILE] [...]";

/* One record, whole, on stdout; false when stdout is gone. */
static bool emit(const char *member, json_object *v) {
        _cleanup_json_ json_object *o = json_object_new_object();
        if (!o)
                return false;
        json_object_object_add(o, member, v);
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        size_t len = strlen(s);
        _cleanup_free_ char *line = malloc(len + 1);
        if (!line)
                return false;
        memcpy(line, s, len);
        line[len] = '\n';
        for (size_t off = 0; off < len + 1;) {
                ssize_t w = write(1, line + off, len + 1 - off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return false;
                off += (size_t) w;
        }
        return true;
}

static int fail(const phy_error *err) {
        emit("error", phy_error_to_json(err));
        return phy_error_exit_status(err);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...) {
        phy_error err = { 0 };
        char what[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        phy_error_usage(&err, "%s; usage: %s", what, usage);
        return fail(&err);
}

/* Progress: at each phase, each whole percent, the end, else at most 10 a second. */
struct pace { enum catalog_phase phase; int pct; struct timespec last; };

static void on_progress(enum catalog_phase ph, uint64_t done, uint64_t total, void *u) {
        struct pace *p = u;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int pct = total ? (int) (done * 100 / total) : -1;
        double dt = (double) (now.tv_sec - p->last.tv_sec) + (double) (now.tv_nsec - p->last.tv_nsec) / 1e9;
        if (ph == p->phase && pct == p->pct && done != total && dt < 0.1)
                return;
        p->phase = ph;
        p->pct = pct;
        p->last = now;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "phase", json_object_new_string(catalog_phase_name(ph)));
        json_object_object_add(o, "done", json_object_new_int64((int64_t) done));
        json_object_object_add(o, "total", json_object_new_int64((int64_t) total));
        emit("progress", o);
}

static volatile int cancelled;
static void on_term(int sig) {
        cancelled = 1;
}

enum { O_CATALOG = 256, O_TO, O_UNVERIFIED, O_OS, O_ISO, O_PROFILE, O_USER, O_PASSWORD_FILE, O_TIMEZONE, O_LOCALE,
       O_HOSTNAME, O_EDITION, O_DRIVERS, O_OUT, O_INITRD };

struct args {
        const char *catalog, *to, *os, *iso, *profile, *password_file, *out, *initrd;
        bool unverified;
        struct catalog_unattend u;
        /* which options each verb takes */
        unsigned given;
};

#define BIT(o) (1u << ((o) - O_CATALOG))

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "catalog", required_argument, NULL, O_CATALOG }, { "to", required_argument, NULL, O_TO },
                { "unverified", no_argument, NULL, O_UNVERIFIED }, { "os", required_argument, NULL, O_OS },
                { "iso", required_argument, NULL, O_ISO }, { "profile", required_argument, NULL, O_PROFILE },
                { "user", required_argument, NULL, O_USER },
                { "password-file", required_argument, NULL, O_PASSWORD_FILE },
                { "timezone", required_argument, NULL, O_TIMEZONE }, { "locale", required_argument, NULL, O_LOCALE },
                { "hostname", required_argument, NULL, O_HOSTNAME }, { "edition", required_argument, NULL, O_EDITION },
                { "drivers", no_argument, NULL, O_DRIVERS }, { "out", required_argument, NULL, O_OUT },
                { "initrd", required_argument, NULL, O_INITRD }, { 0 },
        };
        for (int i = 1; i < argc; i++)
                if (strlen(argv[i]) >= PATH_MAX)
                        return usage_error("argument %s is over PATH_MAX bytes", argv[i][0] == '-' ? "(an option)" : "");
        if (argc < 2)
                return usage_error("no verb given");
        struct args a = { 0 };
        opterr = 0;
        for (int c; (c = getopt_long(argc, argv, "+", opts, NULL)) != -1;) {
                if (c == O_CATALOG)
                        a.catalog = optarg;
                else
                        return usage_error("'%s' goes after the verb, or is not an option", argv[optind - 1]);
        }
        if (optind >= argc)
                return usage_error("no verb given");
        const char *verb = argv[optind];
        /* the rest: the verb's options and operands, in any order */
        int vargc = argc - optind;
        char **vargv = argv + optind;
        optind = 0;     /* glibc: a fresh scan, options and operands in any order */
        for (int c; (c = getopt_long(vargc, vargv, "", opts, NULL)) != -1;) {
                switch (c) {
                case O_CATALOG: a.catalog = optarg; break;
                case O_TO: a.to = optarg; break;
                case O_UNVERIFIED: a.unverified = true; break;
                case O_OS: a.os = optarg; break;
                case O_ISO: a.iso = optarg; break;
                case O_PROFILE: a.profile = optarg; break;
                case O_USER: a.u.user = optarg; break;
                case O_PASSWORD_FILE: a.password_file = optarg; break;
                case O_TIMEZONE: a.u.timezone = optarg; break;
                case O_LOCALE: a.u.locale = optarg; break;
                case O_HOSTNAME: a.u.hostname = optarg; break;
                case O_EDITION: a.u.edition = optarg; break;
                case O_DRIVERS: a.u.drivers = true; break;
                case O_OUT: a.out = optarg; break;
                case O_INITRD: a.initrd = optarg; break;
                default: return usage_error("unknown option '%s'", vargv[optind - 1]);
                }
                if (c != O_CATALOG)
                        a.given |= BIT(c);
        }
        int n = vargc - optind;
        const char *operand = n >= 1 ? vargv[optind] : NULL;
        static const struct verb {
                const char *name;
                int min, max;           /* operands */
                unsigned allowed, required;
        } verbs[] = {
                { "list", 0, 1, 0, 0 },
                { "show", 1, 1, 0, 0 },
                { "identify", 1, 1, 0, 0 },
                { "verify", 1, 1, 0, 0 },
                { "download", 1, 1, BIT(O_TO) | BIT(O_UNVERIFIED), 0 },
                { "install", 0, 0,
                  BIT(O_OS) | BIT(O_ISO) | BIT(O_PROFILE) | BIT(O_USER) | BIT(O_PASSWORD_FILE) | BIT(O_TIMEZONE) |
                          BIT(O_LOCALE) | BIT(O_HOSTNAME) | BIT(O_EDITION) | BIT(O_DRIVERS),
                  BIT(O_ISO) | BIT(O_USER) | BIT(O_PASSWORD_FILE) },
                { "unattend", 1, 1,
                  BIT(O_USER) | BIT(O_PASSWORD_FILE) | BIT(O_TIMEZONE) | BIT(O_LOCALE) | BIT(O_HOSTNAME) |
                          BIT(O_EDITION) | BIT(O_DRIVERS) | BIT(O_OUT) | BIT(O_INITRD),
                  BIT(O_USER) | BIT(O_PASSWORD_FILE) | BIT(O_OUT) },
        };
        const struct verb *v = NULL;
        for (size_t i = 0; i < ELEMENTSOF(verbs) && !v; i++)
                if (strcmp(verbs[i].name, verb) == 0)
                        v = &verbs[i];
        if (!v)
                return usage_error("unknown verb '%s'", verb);
        if (n < v->min || n > v->max)
                return usage_error(n < v->min ? "'%s' needs an operand" : "too many operands for '%s'", verb);
        if (a.given & ~v->allowed)
                return usage_error("an option '%s' does not take was given", verb);
        if ((a.given & v->required) != v->required)
                return usage_error("'%s' is missing a required option", verb);

        phy_error err = { 0 };
        json_object *res = NULL;
        int r;
        if (strcmp(verb, "list") == 0)
                r = catalog_verb_list(a.catalog, operand, &res, &err);
        else if (strcmp(verb, "show") == 0)
                r = catalog_verb_show(a.catalog, operand, &res, &err);
        else if (strcmp(verb, "identify") == 0)
                r = catalog_verb_identify(a.catalog, operand, &res, &err);
        else if (strcmp(verb, "verify") == 0)
                r = catalog_verb_verify(a.catalog, operand, &res, &err);
        else if (strcmp(verb, "download") == 0) {
                /* SIGTERM (phyllod's DELETE /v1/downloads/{id}) cancels and
                 * removes the partial file; SIGINT (^C) ends the process and
                 * keeps it, so that the same command resumes */
                struct sigaction sa = { .sa_handler = on_term };
                sigemptyset(&sa.sa_mask);
                sigaction(SIGTERM, &sa, NULL);
                struct pace p = { .phase = CATALOG_PHASE_DONE, .pct = -2 };
                struct catalog_verb_download d = { .dir = a.to, .unverified = a.unverified, .progress = on_progress,
                                                   .userdata = &p, .cancel = &cancelled, .drop_partial = true };
                r = catalog_verb_download(a.catalog, operand, &d, &res, &err);
        } else if (strcmp(verb, "install") == 0)
                r = catalog_verb_install(a.catalog, a.os, a.iso, a.profile, &a.u, a.password_file, &res, &err);
        else
                r = catalog_verb_unattend(a.catalog, operand, &a.u, a.password_file, a.out, a.initrd, &res, &err);
        if (r < 0)
                return fail(&err);
        bool ok = emit("result", res);
        return ok ? 0 : 1;
}

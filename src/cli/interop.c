/* SPDX-License-Identifier: MIT */
/* phyllo import-libvirt, import-quickemu, import-ova and export --format
 * libvirt (docs/interop.md): each one request to phyllod's API (or the same
 * route in-process); the import report printed as text or --json. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cleanup.h"
#include "vm/vm.h"

/* The report as lines: "  changed  [guest-visible] ELEMENT (line N): message". */
void cli_print_report(json_object *report) {
        json_object *items = NULL;
        if (!report || !json_object_object_get_ex(report, "items", &items))
                return;
        size_t n = json_object_array_length(items);
        if (!n)
                return;
        printf("report: %lld changed, %lld not modelled, %lld implied, %lld notes; %lld the guest will notice "
               "([guest])\n", (long long) cli_jint(report, "changed"), (long long) cli_jint(report, "not_modelled"),
               (long long) cli_jint(report, "implied"), (long long) cli_jint(report, "notes"),
               (long long) cli_jint(report, "guest_visible"));
        static const char *const order[] = { "not-modelled", "changed", "note", "implied" };
        for (size_t o = 0; o < ELEMENTSOF(order); o++)
                for (size_t i = 0; i < n; i++) {
                        json_object *it = json_object_array_get_idx(items, i);
                        if (strcmp(cli_jstr(it, "status"), order[o]) != 0)
                                continue;
                        int64_t line = cli_jint(it, "line");
                        char where[64] = "";
                        if (line > 0)
                                snprintf(where, sizeof where, " (line %lld)", (long long) line);
                        printf("  %-12s %s%s%s: %s\n", order[o], cli_jbool(it, "guest_visible") ? "[guest] " : "",
                               cli_jstr(it, "element"), where, cli_jstr(it, "message"));
                }
}

#define IMPORT_COMMON { "name", required_argument, NULL, 'n' }, { "profile", required_argument, NULL, 'p' }, \
                      { "json", no_argument, NULL, 'j' }
/* Each kind's own options (the usage check compares them with the command table). */
static const struct option libvirt_opts[] = { IMPORT_COMMON, { "reference", no_argument, NULL, 'r' },
                                              { "tpm-state", required_argument, NULL, 't' },
                                              { "from", required_argument, NULL, 'f' }, { 0 } };
static const struct option quickemu_opts[] = { IMPORT_COMMON, { "reference", no_argument, NULL, 'r' }, { 0 } };
static const struct option ova_opts[] = { IMPORT_COMMON, { "no-manifest", no_argument, NULL, 'm' }, { 0 } };

static int import(struct cli_ctx *ctx, const char *kind, int argc, char **argv) {
        const char *name = NULL, *profile = NULL, *tpm = NULL, *uri = NULL;
        bool reference = false, json = false, no_manifest = false;
        bool lv = strcmp(kind, "libvirt") == 0, ova = strcmp(kind, "ova") == 0;
        const struct option *opts = lv ? libvirt_opts : ova ? ova_opts : quickemu_opts;
        const char *usage = cli_usage();
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                if (c == 'n')
                        name = optarg;
                else if (c == 'p')
                        profile = optarg;
                else if (c == 'r' && !ova)
                        reference = true;
                else if (c == 't' && lv)
                        tpm = optarg;
                else if (c == 'f' && lv)
                        uri = optarg;
                else if (c == 'm' && ova)
                        no_manifest = true;
                else if (c == 'j')
                        json = true;
                else
                        return cli_usage_error(usage, "unknown option for 'import-%s'", kind);
        }
        if (optind + 1 != argc)
                return cli_usage_error(usage, uri ? "expected the domain's name after --from URI"
                                                  : "expected one file to import");
        json_object *b = json_object_new_object();
        if (uri) {
                json_object_object_add(b, "uri", json_object_new_string(uri));
                json_object_object_add(b, "domain", json_object_new_string(argv[optind]));
        } else {
                _cleanup_free_ char *abs = cli_abs_path(argv[optind]);
                if (!abs) {
                        json_object_put(b);
                        return 1;
                }
                bool ovf = ova && strlen(abs) > 4 && strcmp(abs + strlen(abs) - 4, ".ovf") == 0;
                json_object_object_add(b, "file", json_object_new_string(abs));
                if (ovf)
                        json_object_object_add(b, "descriptor", json_object_new_boolean(true));
        }
        if (name)
                json_object_object_add(b, "name", json_object_new_string(name));
        if (profile)
                json_object_object_add(b, "profile", json_object_new_string(profile));
        if (reference)
                json_object_object_add(b, "reference", json_object_new_boolean(true));
        if (no_manifest)
                json_object_object_add(b, "no_manifest", json_object_new_boolean(true));
        if (tpm) {
                _cleanup_free_ char *abs = cli_abs_path(tpm);
                json_object_object_add(b, "tpm_state", json_object_new_string(abs ? abs : tpm));
        }
        _cleanup_json_ json_object *o = NULL;
        int r = cli_call(ctx, "POST", b, &o, "/v1/import/%s", kind);
        if (r != 0)
                return r;
        if (json) {
                cli_print_json(json_object_get(o));
                return 0;
        }
        printf("imported VM '%s' (profile %s) from %s\n", cli_jstr(o, "name"), cli_jstr(o, "profile"),
               cli_jstr(o, "source"));
        json_object *rep = NULL;
        if (json_object_object_get_ex(o, "report", &rep))
                cli_print_report(rep);
        return 0;
}

int cmd_import_libvirt(struct cli_ctx *ctx, int argc, char **argv) {
        return import(ctx, "libvirt", argc, argv);
}

int cmd_import_quickemu(struct cli_ctx *ctx, int argc, char **argv) {
        return import(ctx, "quickemu", argc, argv);
}

int cmd_import_ova(struct cli_ctx *ctx, int argc, char **argv) {
        return import(ctx, "ova", argc, argv);
}

int cli_export_libvirt(struct cli_ctx *ctx, const char *name, const char *dir, const char *target, bool json) {
        if (cli_name_arg(name))
                return 2;
        _cleanup_free_ char *abs = cli_abs_path(dir), *tabs = target ? cli_abs_path(target) : NULL;
        if (!abs || (target && !tabs))
                return 1;
        json_object *b = json_object_new_object();
        json_object_object_add(b, "dir", json_object_new_string(abs));
        if (tabs)
                json_object_object_add(b, "target", json_object_new_string(tabs));
        _cleanup_json_ json_object *o = NULL;
        int r = cli_call(ctx, "POST", b, &o, "/v1/vms/%s/export-libvirt", name);
        if (r != 0)
                return r;
        if (json) {
                cli_print_json(json_object_get(o));
                return 0;
        }
        printf("exported VM '%s' to %s (domain type %s): virsh define %s\n", name, abs, cli_jstr(o, "domain_type"),
               cli_jstr(o, "xml"));
        json_object *rep = NULL;
        if (json_object_object_get_ex(o, "report", &rep))
                cli_print_report(rep);
        return 0;
}

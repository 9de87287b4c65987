/* SPDX-License-Identifier: MIT */
/* phyllo argv: the exact QEMU command line of a VM. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cleanup.h"
#include "paths.h"
#include "host/host.h"
#include "qemu/argv.h"
#include "qemu/caps.h"
#include "qemu/tools.h"
#include "run/run.h"
#include "vm/profile.h"
#include "vm/vm.h"

static const char argv_usage[] = "argv NAME [--json] [--null] [--paused] [--tcg] [--qemu PATH]";

int cmd_argv(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = {
                { "json", no_argument, NULL, 'j' },
                { "null", no_argument, NULL, '0' },
                { "paused", no_argument, NULL, 'S' },
                { "tcg", no_argument, NULL, 't' },
                { "qemu", required_argument, NULL, 'q' },
                {}
        };
        bool json = false, nul = false, paused = false, tcg = false;
        const char *qemu = NULL;
        for (int c; (c = getopt_long(argc, argv, "0", opts, NULL)) != -1;) {
                switch (c) {
                case 'j': json = true; break;
                case '0': nul = true; break;
                case 'S': paused = true; break;
                case 't': tcg = true; break;
                case 'q': qemu = optarg; break;
                default: return cli_usage_error(argv_usage, "bad option");
                }
        }
        if (optind + 1 != argc)
                return cli_usage_error(argv_usage, "expected one VM name");
        const char *name = argv[optind], *home;
        if (cli_home(ctx, &home) < 0)
                return 1;

        phy_error err = { 0 };
        _cleanup_vm_def_ struct vm_def def = { 0 };
        _cleanup_vm_model_ struct vm_model model = { 0 };
        _cleanup_qemu_caps_ struct qemu_caps caps = { 0 };
        struct qemu_tools tools = { 0 };
        struct host_facts host = { 0 };
        _cleanup_free_ char *cache = NULL, *vmdir = NULL, *rundir = NULL, *audio_server = NULL, *audio_why = NULL;
        _cleanup_strv_ strv args = { 0 };
        _cleanup_strv_ strv warnings = { 0 };
        int r;

        if ((r = vm_load_by_name(home, name, &def, &err)) < 0 ||
            (r = host_facts_load(ctx->root, &host, &err)) < 0 ||
            (r = qemu_tools_find(&tools, &err)) < 0)
                goto fail;
        if (qemu) {
                free(tools.qemu);
                tools.qemu = strdup(qemu);
        }
        if (!tools.qemu) {
                r = phy_error_set(&err, ENOENT, "no QEMU found; install it with 'apt-get install qemu-system-x86'");
                goto fail;
        }
        if ((r = phy_cache_dir(&cache, &err)) < 0 || (r = qemu_caps_probe(tools.qemu, cache, &caps, &err)) < 0 ||
            (r = vm_model_make(&def, &host, &caps, NULL, &model, &err)) < 0)
                goto fail;

        vmdir = vm_dir(home, name);
        if (asprintf(&rundir, "%s/run/%s", home, name) < 0)
                rundir = NULL;
        struct qemu_argv_env env;
        qemu_argv_env_init(&env);
        env.host = &host;
        env.caps = &caps;
        env.tools = &tools;
        env.vm_dir = vmdir;
        env.run_dir = rundir;
        env.paused = paused;
        env.force_tcg = tcg;
        /* The sound server the start would find (src/run/sound.c). */
        if ((model.vm.display == VM_DISPLAY_GTK || model.vm.display == VM_DISPLAY_SDL) && model.vm.sound != VM_SOUND_NONE &&
            (r = run_sound_find(&audio_server, &audio_why, &err)) < 0)
                goto fail;
        env.audio_server = audio_server;
        env.audio_why = audio_why;
        if ((r = qemu_argv_build(&model, &env, &args, &warnings, &err)) < 0)
                goto fail;

        for (size_t i = 0; i < warnings.n; i++)
                fprintf(stderr, "phyllo: warning: %s\n", warnings.v[i]);
        if (json) {
                json_object *o = json_object_new_object(), *a = json_object_new_array(), *w = json_object_new_array();
                for (size_t i = 0; i < args.n; i++)
                        json_object_array_add(a, json_object_new_string(args.v[i]));
                for (size_t i = 0; i < warnings.n; i++)
                        json_object_array_add(w, json_object_new_string(warnings.v[i]));
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "accel", json_object_new_string(qemu_argv_use_kvm(&env) ? "kvm" : "tcg"));
                json_object_object_add(o, "argv", a);
                json_object_object_add(o, "warnings", w);
                cli_print_json(o);
        } else if (nul) {
                for (size_t i = 0; i < args.n; i++)
                        fwrite(args.v[i], 1, strlen(args.v[i]) + 1, stdout);
        } else {
                /* One option per line with its value, shell-quoted: readable and pasteable. */
                for (size_t i = 0; i < args.n; i++) {
                        strv one = { .v = (char *[]) { args.v[i], NULL }, .n = 1 };
                        _cleanup_free_ char *q = strv_join(&one, NULL);
                        bool opt_with_value = args.v[i][0] == '-' && i + 1 < args.n && args.v[i + 1][0] != '-';
                        if (opt_with_value) {
                                strv two = { .v = (char *[]) { args.v[i], args.v[i + 1], NULL }, .n = 2 };
                                _cleanup_free_ char *q2 = strv_join(&two, NULL);
                                printf("%s%s\n", q2, i + 2 < args.n ? " \\" : "");
                                i++;
                        } else
                                printf("%s%s\n", q, i + 1 < args.n ? " \\" : "");
                }
        }
        host_facts_done(&host);
        qemu_tools_done(&tools);
        return 0;
fail:
        host_facts_done(&host);
        qemu_tools_done(&tools);
        return cli_fail(&err);
}

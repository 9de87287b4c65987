/* SPDX-License-Identifier: MIT */
/* phyllo clone SRC DST [--full] [--tpm fresh|copy]. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"


int cmd_clone(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = {
                { "full", no_argument, NULL, 'f' }, { "tpm", required_argument, NULL, 't' },
                { "json", no_argument, NULL, 'j' }, { 0 } };
        bool full = false, json = false;
        const char *tpm = NULL;
        for (int c; (c = cli_getopt(argc, argv, "", opts)) != -1;) {
                if (c == 'f')
                        full = true;
                else if (c == 'j')
                        json = true;
                else if (c == 't' && (strcmp(optarg, "fresh") == 0 || strcmp(optarg, "copy") == 0))
                        tpm = optarg;
                else if (c == 't')
                        return cli_usage_error(cli_usage(), "invalid --tpm '%s'; use fresh or copy", optarg);
                else
                        return cli_usage_error(cli_usage(), "unknown option for 'clone'");
        }
        if (optind + 2 != argc)
                return cli_usage_error(cli_usage(), "expected the source VM and the new VM's name");
        const char *src = argv[optind], *dst = argv[optind + 1];
        int st = cli_name_arg(src);
        if (st)
                return st;
        json_object *b = json_object_new_object(), *o = NULL;
        json_object_object_add(b, "name", json_object_new_string(dst));
        json_object_object_add(b, "full", json_object_new_boolean(full));
        if (tpm)
                json_object_object_add(b, "tpm", json_object_new_string(tpm));
        if ((st = cli_call(ctx, "POST", b, &o, "/v1/vms/%s/clone", src)))
                return st;
        if (json) {
                cli_print_json(o);
                return 0;
        }
        const char *tpm_how = cli_jstr(o, "tpm");
        printf("cloned VM '%s' to '%s' (%s%s)\n", src, dst, full ? "full copy" : "linked",
               !*tpm_how ? "" : strcmp(tpm_how, "copy") == 0 ? ", copied TPM" : ", fresh TPM");
        json_object_put(o);
        return 0;
}

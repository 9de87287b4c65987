/* SPDX-License-Identifier: MIT */
/* phyllo clone SRC DST [--full] [--tpm fresh|copy]. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "store/store.h"

static const char clone_usage[] = "clone SRC DST [--full] [--tpm fresh|copy]";

int cmd_clone(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = {
                { "full", no_argument, NULL, 'f' }, { "tpm", required_argument, NULL, 't' }, { 0 } };
        bool full = false;
        enum store_tpm_mode tpm = STORE_TPM_DEFAULT;
        for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
                if (c == 'f')
                        full = true;
                else if (c == 't' && strcmp(optarg, "fresh") == 0)
                        tpm = STORE_TPM_FRESH;
                else if (c == 't' && strcmp(optarg, "copy") == 0)
                        tpm = STORE_TPM_COPY;
                else if (c == 't')
                        return cli_usage_error(clone_usage, "invalid --tpm '%s'; use fresh or copy", optarg);
                else
                        return cli_usage_error(clone_usage, "unknown option for 'clone'");
        }
        if (optind + 2 != argc)
                return cli_usage_error(clone_usage, "expected the source VM and the new VM's name");
        const char *home;
        if (cli_home(ctx, &home) < 0)
                return 1;
        phy_error err = { 0 };
        if (store_clone(home, argv[optind], argv[optind + 1], full, tpm, NULL, &err) < 0)
                return cli_fail(&err);
        printf("cloned VM '%s' to '%s' (%s, %s TPM)\n", argv[optind], argv[optind + 1], full ? "full copy" : "linked",
               tpm == STORE_TPM_COPY ? "copied" : "fresh");
        return 0;
}

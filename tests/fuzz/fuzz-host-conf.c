/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: host.conf (docs/host.md) read by host_facts_load through a
 * temporary root: proc/sys/dev link to the ci-debian12-tcg host fixture and
 * etc/phyllome/host.conf holds the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "host/host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char root[] = "/tmp/phyllome-fuzz-host-XXXXXX";
static char conf[sizeof root + 64];

static void root_remove(void) {
        char p[sizeof root + 64];
        static const char *const links[] = { "proc", "sys", "dev", "usr" };
        for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
                snprintf(p, sizeof p, "%s/%s", root, links[i]);
                unlink(p);
        }
        unlink(conf);
        snprintf(p, sizeof p, "%s/etc/phyllome", root);
        rmdir(p);
        snprintf(p, sizeof p, "%s/etc", root);
        rmdir(p);
        rmdir(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        if (!mkdtemp(root))
                abort();
        atexit(root_remove);
        static const char *const links[] = { "proc", "sys", "dev", "usr" };
        char p[sizeof root + 64], target[4096];
        for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
                snprintf(p, sizeof p, "%s/%s", root, links[i]);
                snprintf(target, sizeof target, "%s/tests/fixtures/host/ci-debian12-tcg/%s", FUZZ_SRCDIR, links[i]);
                if (symlink(target, p) < 0)
                        abort();
        }
        snprintf(p, sizeof p, "%s/etc", root);
        mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/etc/phyllome", root);
        mkdir(p, 0755);
        snprintf(conf, sizeof conf, "%s/etc/phyllome/host.conf", root);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 128 * 1024)
                return 0;
        FILE *f = fopen(conf, "we");
        if (!f)
                abort();
        fwrite(data, 1, size, f);
        fclose(f);

        phy_error err = { 0 };
        struct host_facts h = { 0 };
        if (host_facts_load(root, &h, &err) == 0) {
                /* What the budget became must be a budget. */
                if (h.vm_cpus_max == 0 || h.vm_mem_max == 0)
                        __builtin_trap();
                host_facts_done(&h);
        } else if (err.message[0] == '\0')
                __builtin_trap();
        return 0;
}

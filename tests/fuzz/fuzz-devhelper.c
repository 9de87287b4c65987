/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: one message as phyllome-devhelper receives it (the bytes
 * of one SOCK_SEQPACKET recv) to dev_helper_request_check, and what passes
 * to dev_helper_handle for a peer (uid 4242) that host.conf allows nothing,
 * under a temporary root linking proc/sys/dev to the intel-desktop-iommu
 * fixture: every request must end refused or harmless, before any write.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dev/helper.h"
#include "fileio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char root[] = "/tmp/phyllome-fuzz-devhelper-XXXXXX";
static char state[sizeof root + 16];

static void root_remove(void) {
        (void) rm_rf(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        if (!mkdtemp(root))
                abort();
        atexit(root_remove);
        static const char *const links[] = { "proc", "sys", "dev" };
        char p[sizeof root + 64], target[4096];
        for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
                snprintf(p, sizeof p, "%s/%s", root, links[i]);
                snprintf(target, sizeof target, "%s/tests/fixtures/host/intel-desktop-iommu/%s", FUZZ_SRCDIR,
                         links[i]);
                if (symlink(target, p) < 0)
                        abort();
        }
        snprintf(p, sizeof p, "%s/etc/phyllome", root);
        if (mkdir_p(p, 0755) < 0)
                abort();
        snprintf(p, sizeof p, "%s/etc/phyllome/host.conf", root);
        static const char conf[] = "passthrough-allow = 0000:00:02.0 root\npassthrough-allow = 0000:01:00.0 @root\n";
        phy_error e = { 0 };
        if (file_write_atomic(p, conf, sizeof conf - 1, 0644, &e) < 0)
                abort();
        snprintf(state, sizeof state, "%s/state", root);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct dev_helper_request q;
        phy_error err = { 0 };
        if (dev_helper_request_check(data, size, &q, &err) < 0) {
                if (err.message[0] == '\0')
                        __builtin_trap();
                return 0;
        }
        /* What passed is what the rest of the helper relies on. */
        if (size != sizeof q || q.version != DEV_HELPER_VERSION || q.op < DEV_HELPER_TO_VFIO ||
            q.op > DEV_HELPER_STATUS || !memchr(q.vm, 0, sizeof q.vm) || !memchr(q.address, 0, sizeof q.address) ||
            !memchr(q.driver, 0, sizeof q.driver) || strchr(q.vm, '/') || strchr(q.address, '/') ||
            strchr(q.driver, '/'))
                __builtin_trap();
        struct dev_helper_server s = { .root = root, .state_dir = state };
        struct sock_peer peer = { .uid = 4242, .gid = 4242 };
        struct dev_helper_reply a;
        dev_helper_handle(&s, &peer, &q, &a);
        /* Nothing is allowed to uid 4242 and it holds nothing: only STATUS succeeds. */
        if ((q.op == DEV_HELPER_STATUS) != (a.error == 0) || !memchr(a.message, 0, sizeof a.message) ||
            a.message[0] == '\0')
                __builtin_trap();
        return 0;
}

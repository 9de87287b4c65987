/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: bundle import (docs/storage.md), store_import() reading
 * the input from a memfd as it would a file or a pipe, into a temporary home
 * that holds one VM ("keep").  Beyond "no crash, no leak, no UB": a refusal
 * has a message and leaves the home's vms/ exactly as it was (no temp dir, no
 * half-imported VM, "keep" untouched); an accepted bundle is one new VM dir
 * whose definition names no host file, port, device or network (untrusted).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "store/store.h"
#include "vm/vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char home[] = "/tmp/phyllome-fuzz-import-XXXXXX";
static char vms[sizeof home + 16];
static const char keep_conf[] = "[vm]\nname = keep\nprofile = linux\n"
                                "uuid = 6b1f1e0c-3d2a-4f5e-9a7b-0c1d2e3f4a5b\n[memory]\nsize = 256M\n";

static void home_remove(void) {
        (void) rm_rf(home);
}

/* vms/ as one string: each entry's name, sorted by readdir order made stable
 * by the caller comparing before and after in the same directory. */
static size_t vms_list(char *buf, size_t len) {
        DIR *d = opendir(vms);
        if (!d)
                abort();
        size_t n = 0, used = 0;
        buf[0] = '\0';
        struct dirent *e;
        while ((e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                int w = snprintf(buf + used, len - used, "%s\n", e->d_name);
                if (w < 0 || (size_t) w >= len - used)
                        abort();
                used += (size_t) w;
                n++;
        }
        closedir(d);
        return n;
}

static void keep_check(void) {
        char p[sizeof vms + 32], got[sizeof keep_conf + 16];
        snprintf(p, sizeof p, "%s/keep/vm.conf", vms);
        FILE *f = fopen(p, "re");
        if (!f)
                __builtin_trap();
        size_t n = fread(got, 1, sizeof got, f);
        fclose(f);
        if (n != sizeof keep_conf - 1 || memcmp(got, keep_conf, n) != 0)
                __builtin_trap();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc;
        (void) argv;
        if (!mkdtemp(home))
                abort();
        atexit(home_remove);
        snprintf(vms, sizeof vms, "%s/vms", home);
        char p[sizeof vms + 32];
        snprintf(p, sizeof p, "%s/keep", vms);
        if (mkdir_p(p, 0700) < 0)
                abort();
        snprintf(p, sizeof p, "%s/keep/vm.conf", vms);
        FILE *f = fopen(p, "we");
        if (!f || fputs(keep_conf, f) < 0 || fclose(f) != 0)
                abort();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        int fd = memfd_create("fuzz-import", MFD_CLOEXEC);
        if (fd < 0 || (size && write(fd, data, size) != (ssize_t) size) || lseek(fd, 0, SEEK_SET) != 0)
                abort();
        char before[4096], after[4096];
        size_t n_before = vms_list(before, sizeof before);

        phy_error err = { 0 };
        /* Untrusted, and a cap that keeps each run short (64 MiB of data). */
        struct store_import_opts o = { .max_bytes = 64u << 20 };
        struct store_import_result res = { 0 };
        int r = store_import(home, fd, &o, &res, &err);
        char *name = res.name;
        close(fd);
        size_t n_after = vms_list(after, sizeof after);
        if (r < 0) {
                /* Refused: a reason, and nothing left behind. */
                if (err.message[0] == '\0' || name)
                        __builtin_trap();
                if (n_after != n_before || strcmp(before, after) != 0)
                        __builtin_trap();
        } else {
                /* Accepted: exactly one new VM, never over "keep". */
                if (!name || strcmp(name, "keep") == 0 || n_after != n_before + 1)
                        __builtin_trap();
                char p[sizeof vms + 128];
                snprintf(p, sizeof p, "%s/%s/vm.conf", vms, name);
                if (access(p, F_OK) != 0)
                        __builtin_trap();
                /* Untrusted: nothing of the definition reaches outside the VM's own files. */
                struct vm_def d = { 0 };
                if (vm_load_by_name(home, name, &d, &err) < 0)
                        __builtin_trap();
                if (d.kernel || d.initrd || d.n_cdroms || d.n_shares || d.usb.n || d.passthrough.n ||
                    d.passthrough_roms.n || d.mdevs.n || d.tpm == VM_TPM_PASSTHROUGH)
                        __builtin_trap();
                for (size_t i = 0; i < d.n_disks; i++)
                        if (d.disks[i].key_file || strchr(d.disks[i].path, '/') ||
                            strncmp(d.disks[i].path, "disk-", 5) != 0)
                                __builtin_trap();
                for (size_t i = 0; i < d.n_nics; i++)
                        if (d.nics[i].forwards.n || d.nics[i].mode == VM_NET_BRIDGE ||
                            d.nics[i].mode == VM_NET_ISOLATED)
                                __builtin_trap();
                vm_def_done(&d);
                snprintf(p, sizeof p, "%s/%s", vms, name);
                (void) rm_rf(p);
        }
        keep_check();
        store_import_result_done(&res);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Single-GPU passthrough on a temporary copy of the Intel desktop fixture
 * (its NVIDIA card drives the host display through efifb, vtcon1 is on the
 * framebuffer, gdm3 is the display manager): the probe, the exact stop and
 * restore plans, the recorded state, the refusal for a card that is not the
 * host's display, and a failure half-way that brings the display back.
 * A small kernel hook moves the platform driver links as the kernel does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "fixture.h"
#include "cleanup.h"
#include "exec.h"
#include "fileio.h"
#include "dev/single-gpu.h"

static char *temp_copy(void) {
        char *root = fixture_copy("intel-desktop-iommu", "/tmp/phyllome-test-sgpu");
        /* The write-only attributes a fixture does not hold. */
        fixture_put(root, "/sys/bus/platform/drivers/efi-framebuffer/bind", "");
        fixture_put(root, "/sys/bus/platform/drivers/efi-framebuffer/unbind", "");
        return root;
}

static bool is_link(const char *root, const char *rel) {
        _cleanup_free_ char *p = root_path(root, rel);
        struct stat st;
        return p && lstat(p, &st) == 0 && S_ISLNK(st.st_mode);
}

struct kernel {
        const char *fail_suffix;    /* refuse the write to a path ending so (EBUSY) */
        unsigned writes;
};

/* The kernel's part for platform driver bind/unbind: the links move. */
static int kernel(const char *root, const char *path, const char *value, void *userdata) {
        struct kernel *k = userdata;
        k->writes++;
        size_t n = strlen(path), m = k->fail_suffix ? strlen(k->fail_suffix) : 0;
        if (m && n >= m && strcmp(path + n - m, k->fail_suffix) == 0)
                return -EBUSY;
        char drv[64];
        const char *op = strrchr(path, '/') + 1;
        if (sscanf(path, "/sys/bus/platform/drivers/%63[^/]/", drv) != 1)
                return 0;
        _cleanup_free_ char *l1 = NULL, *l2 = NULL, *t1 = NULL, *t2 = NULL;
        if (asprintf(&l1, "%s/sys/bus/platform/drivers/%s/%s", root, drv, value) < 0 ||
            asprintf(&l2, "%s/sys/devices/platform/%s/driver", root, value) < 0 ||
            asprintf(&t1, "../../../../devices/platform/%s", value) < 0 ||
            asprintf(&t2, "../../../bus/platform/drivers/%s", drv) < 0)
                return -ENOMEM;
        if (strcmp(op, "unbind") == 0)
                return unlink(l1) < 0 || unlink(l2) < 0 ? -ENODEV : 0;
        return symlink(t1, l1) < 0 || symlink(t2, l2) < 0 ? -EBUSY : 0;
}

static const char stop_golden[] =
        "systemctl stop display-manager.service\n"
        "/sys/class/vtconsole/vtcon1/bind 0\n"
        "/sys/bus/platform/drivers/efi-framebuffer/unbind efi-framebuffer.0\n";
static const char restore_golden[] =
        "/sys/bus/platform/drivers/efi-framebuffer/bind efi-framebuffer.0\n"
        "/sys/class/vtconsole/vtcon1/bind 1\n"
        "systemctl start display-manager.service\n";

static void test_probe_and_plans(const char *root) {
        _cleanup_(dev_host_display_done) struct dev_host_display d = { 0 };
        phy_error err = { 0 };
        is_int(dev_host_display_probe(root, &d, &err), 0, "the host display of the fixture is probed");
        is_int(d.vtcons.n, 1, "one console is bound (vtcon0 is the dummy, unbound)");
        is_str(d.vtcons.n ? d.vtcons.v[0] : NULL, "vtcon1", "... vtcon1");
        is_int(d.fbs.n, 1, "one firmware framebuffer is bound");
        is_str(d.fbs.n ? d.fbs.v[0] : NULL, "efi-framebuffer efi-framebuffer.0", "... efifb");
        is_str(d.unit, DEV_DISPLAY_MANAGER_UNIT, "the display manager alias is found");
        _cleanup_free_ char *stop = dev_host_display_plan_format(&d, true);
        _cleanup_free_ char *back = dev_host_display_plan_format(&d, false);
        is_str(stop, stop_golden, "the stop plan, exactly");
        is_str(back, restore_golden, "the restore plan, exactly (the reverse)");

        ok(dev_pci_is_boot_display(root, "0000:01:00.0"), "the NVIDIA card is the boot display");
        ok(!dev_pci_is_boot_display(root, "0000:00:02.0"), "the iGPU is not (boot_vga 0)");
        ok(!dev_pci_is_boot_display(root, "0000:01:00.1"), "its audio function is not (class 0x04)");
}

static void test_stop_restore(const char *root) {
        char rd[] = "/tmp/phyllome-test-sgpu-run-XXXXXX";
        if (!mkdtemp(rd))
                abort();
        _cleanup_free_ char *state = NULL;
        if (asprintf(&state, "%s/host-display.state", rd) < 0)
                abort();
        struct kernel k = { 0 };
        phy_error err = { 0 };
        strv gpu = { 0 }, igpu = { 0 };
        strv_push(&gpu, "0000:01:00.0");
        strv_push(&gpu, "0000:01:00.1");
        strv_push(&igpu, "0000:00:02.0");

        /* Not the host's display: refused before anything is touched. */
        is_int(dev_single_gpu_stop_host(root, rd, &igpu, kernel, &k, &err), -EPERM, "the iGPU is refused");
        ok(strstr(err.message, "0000:00:02.0") && strstr(err.message, "boot_vga"),
           "the refusal names the device and the reason: %s", err.message);
        ok(access(state, F_OK) < 0 && k.writes == 0, "nothing recorded, nothing written");
        phy_error_clear(&err);

        is_int(dev_single_gpu_stop_host(root, rd, &gpu, kernel, &k, &err), 0, "the host display stops");
        _cleanup_free_ char *rec = NULL;
        file_read_all(state, 0, &rec, NULL);
        _cleanup_free_ char *want = NULL;
        if (asprintf(&want, "root %s\nunit display-manager.service\nvtcon vtcon1\nfb efi-framebuffer efi-framebuffer.0\n",
                     root) < 0)
                abort();
        is_str(rec, want, "what was stopped is recorded, with the root");
        _cleanup_free_ char *b1 = fixture_get(root, "/sys/class/vtconsole/vtcon1/bind");
        is_str(b1, "0", "vtcon1 left the framebuffer");
        ok(!is_link(root, "/sys/devices/platform/efi-framebuffer.0/driver"), "efifb is unbound");
        is_int(k.writes, 2, "two sysfs writes");

        is_int(dev_single_gpu_restore_host(rd, kernel, &k, &err), 0, "the host display comes back");
        ok(is_link(root, "/sys/devices/platform/efi-framebuffer.0/driver"), "efifb is bound again");
        _cleanup_free_ char *b2 = fixture_get(root, "/sys/class/vtconsole/vtcon1/bind");
        is_str(b2, "1", "vtcon1 is on the framebuffer again");
        ok(access(state, F_OK) < 0, "the state is gone once all went back");
        is_int(dev_single_gpu_restore_host(rd, NULL, NULL, &err), 0, "a second restore has nothing to do");

        /* The framebuffer refuses to let go: the console comes back at once. */
        struct kernel busy = { .fail_suffix = "/efi-framebuffer/unbind" };
        int r = dev_single_gpu_stop_host(root, rd, &gpu, kernel, &busy, &err);
        is_int(r, -EBUSY, "a framebuffer that stays busy fails the stop");
        ok(strstr(err.message, "single-GPU") && strstr(err.message, "efi-framebuffer"),
           "the error says what failed: %s", err.message);
        _cleanup_free_ char *b3 = fixture_get(root, "/sys/class/vtconsole/vtcon1/bind");
        is_str(b3, "1", "the console was brought back");
        ok(access(state, F_OK) < 0, "and nothing stays recorded");
        phy_error_clear(&err);

        /* The recorded give-back, as after a kill -9 of the monitor (no kernel
         * hook there: the writes land in the fixture's plain files). */
        is_int(dev_single_gpu_stop_host(root, rd, &gpu, kernel, &k, &err), 0, "stopped again");
        is_int(dev_give_back_all_recorded(rd, &err), 0, "the recorded give-back (no PCI state) brings it back");
        _cleanup_free_ char *bound = fixture_get(root, "/sys/bus/platform/drivers/efi-framebuffer/bind");
        is_str(bound, "efi-framebuffer.0", "efifb's driver was asked to bind it");
        ok(access(state, F_OK) < 0, "the state is gone");

        /* A state file that is not ours is refused, not followed. */
        file_write_atomic(state, "fb ../../etc passwd\n", 20, 0644, NULL);
        is_int(dev_single_gpu_restore_host(rd, NULL, NULL, &err), -EINVAL, "a forged record is refused");
        ok(strstr(err.message, "host-display.state:1"), "naming the file and line: %s", err.message);
        phy_error_clear(&err);
        strv_done(&gpu);
        strv_done(&igpu);
        rm_rf(rd);
}

int main(void) {
        char *root = temp_copy();
        test_probe_and_plans(root);
        test_stop_restore(root);
        rm_rf(root);
        free(root);
        return tap_done();
}

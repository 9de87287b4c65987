/* SPDX-License-Identifier: MIT */
/* Host discovery against the fixture trees in tests/fixtures/host/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "cleanup.h"
#include "fileio.h"
#include "host/check.h"
#include "host/host.h"
#include "host/pci.h"
#include "qemu/tools.h"

static char *fixture(const char *name) {
        char *p = NULL;
        if (asprintf(&p, "%s/fixtures/host/%s", tap_srcdir(), name) < 0)
                abort();
        return p;
}

static bool load(const char *name, struct host_facts *h) {
        _cleanup_free_ char *root = fixture(name);
        phy_error err = { 0 };
        int r = host_facts_load(root, h, &err);
        if (!ok(r == 0, "%s: facts load", name))
                printf("#   %s\n", err.message);
        return r == 0;
}

static bool run_check(const struct host_facts *h, const struct qemu_tools *t, struct host_check_report *rep) {
        phy_error err = { 0 };
        int r = host_check_run(h, t, rep, &err);
        if (!ok(r == 0, "%s: check runs", h->root))
                printf("#   %s\n", err.message);
        return r == 0;
}

static void is_status(const struct host_check_report *rep, const char *id, enum host_check_status want) {
        const struct host_check_result *c = host_check_find(rep, id);
        if (!ok(c && c->status == want, "check %s is %s", id, host_check_status_name(want)))
                printf("#   got %s: %s\n", c ? host_check_status_name(c->status) : "(missing)", c ? c->detail : "");
}

static bool remedy_has(const struct host_check_report *rep, const char *id, const char *needle) {
        const struct host_check_result *c = host_check_find(rep, id);
        return c && c->remedy && strstr(c->remedy, needle);
}

static const struct host_gpu *gpu(const struct host_facts *h, const char *addr) {
        for (size_t i = 0; i < h->n_gpus; i++)
                if (strcmp(h->gpus[i].address, addr) == 0)
                        return &h->gpus[i];
        return NULL;
}

static void test_ci(void) {
        _cleanup_(host_facts_done) struct host_facts h = { 0 };
        if (!load("ci-debian12-tcg", &h))
                return;
        is_int(h.cpu_vendor, HOST_CPU_AMD, "ci: AMD vendor");
        ok(!h.vmx && !h.svm && h.hypervisor, "ci: no vmx/svm, hypervisor flag");
        is_int(h.cpus, 2, "ci: 2 CPUs");
        is_int(h.cores, 2, "ci: 2 cores");
        is_int(h.mem_total, 24684100ULL * 1024, "ci: MemTotal in bytes");
        ok(!h.kvm_present && !h.kvm_usable, "ci: no /dev/kvm");
        ok(!h.iommu_firmware && !h.iommu_enabled && h.iommu_groups == 0, "ci: no IOMMU");
        ok(!h.apple && !h.dmi_vendor, "ci: no DMI");
        is_int(h.n_gpus, 0, "ci: no GPU");
        ok(host_render_node(&h) == NULL, "ci: no render node");
        is_int(h.storage, HOST_STORAGE_ROTATIONAL, "ci: virtio disk says rotational");
        is_str(h.storage_device, "vda", "ci: root on vda");
        ok(h.cgroup_controllers == NULL, "ci: no cgroup v2 at /sys/fs/cgroup");
        ok(h.tun && !h.vhost_net, "ci: tun but no vhost-net");
        is_int(h.reserve_cpus, 1, "ci: default reserve 1 CPU");
        is_int(h.reserve_mem, 1ULL << 30, "ci: default reserve 1 GiB");
        is_int(h.vm_cpus_max, 1, "ci: VMs get 1 CPU");
        is_int(h.vm_mem_max, 24684100ULL * 1024 - (1ULL << 30), "ci: VMs get the rest of memory");
        ok(host_cmdline_has(&h, "console", "ttyS0") && !host_cmdline_has(&h, "iommu", NULL), "ci: cmdline words");

        _cleanup_(host_check_report_done) struct host_check_report rep = { 0 };
        if (!run_check(&h, NULL, &rep))
                return;
        is_status(&rep, "cpu.virt", HOST_CHECK_FAIL);
        ok(remedy_has(&rep, "cpu.virt", "nested"), "ci: a guest is told to enable nested virtualization");
        is_status(&rep, "kvm.device", HOST_CHECK_FAIL);
        is_status(&rep, "iommu.groups", HOST_CHECK_WARN);
        is_status(&rep, "storage.root", HOST_CHECK_WARN);
        is_status(&rep, "cgroup.v2", HOST_CHECK_WARN);
        is_status(&rep, "net.vhost", HOST_CHECK_WARN);
        is_status(&rep, "gpu", HOST_CHECK_WARN);
        is_status(&rep, "tools.qemu", HOST_CHECK_INFO);
        ok(strstr(host_check_find(&rep, "tools.qemu")->detail, "--root") != NULL, "ci: tools not checked under --root");
        is_int(rep.tier, HOST_TIER_NONE, "ci: below the minimum tier");
        ok(rep.short_of.n == 2 && strstr(rep.short_of.v[0], "AMD-V") && strstr(rep.short_of.v[1], "rotational"),
           "ci: short of minimum names AMD-V and the storage");
        for (size_t i = 0; i < rep.n; i++)
                if (!ok((rep.v[i].status == HOST_CHECK_PASS) == (rep.v[i].remedy == NULL) ||
                                (rep.v[i].status == HOST_CHECK_INFO && !rep.v[i].remedy),
                        "ci: %s has a remedy exactly when not PASS", rep.v[i].id))
                        break;
}

static void test_intel(void) {
        _cleanup_(host_facts_done) struct host_facts h = { 0 };
        if (!load("intel-desktop-iommu", &h))
                return;
        is_int(h.cpu_vendor, HOST_CPU_INTEL, "intel: vendor");
        is_str(h.cpu_model, "Intel(R) Core(TM) i7-9700K CPU @ 3.60GHz", "intel: model name");
        ok(h.vmx && !h.svm && !h.hypervisor, "intel: vmx");
        ok(h.cpus == 8 && h.cores == 8, "intel: 8 CPUs, 8 cores");
        ok(h.kvm_present && h.kvm_usable, "intel: /dev/kvm usable");
        is_int(h.nested, 1, "intel: nested");
        is_int(h.ignore_msrs, 1, "intel: ignore_msrs");
        ok(h.dmar && !h.ivrs && h.iommu_firmware && h.iommu_class, "intel: DMAR and an IOMMU");
        is_int(h.iommu_groups, 8, "intel: 8 IOMMU groups");
        ok(h.iommu_enabled, "intel: IOMMU enabled");
        ok(h.tpm_device && !h.apple, "intel: TPM, not Apple");
        is_int(h.storage, HOST_STORAGE_NVME, "intel: NVMe root");
        is_str(h.storage_device, "nvme0n1", "intel: partition mapped to its disk");
        is_int(h.n_gpus, 2, "intel: two GPUs");
        const struct host_gpu *ig = gpu(&h, "0000:00:02.0"), *dg = gpu(&h, "0000:01:00.0");
        if (ok(ig && dg, "intel: iGPU and dGPU found")) {
                is_str(ig->vendor_id, "8086", "intel: iGPU vendor");
                is_str(ig->driver, "i915", "intel: iGPU driver");
                is_str(ig->render_node, "/dev/dri/renderD128", "intel: iGPU render node");
                is_int(ig->iommu_group, 2, "intel: iGPU group");
                ok(ig->has_mdev && !ig->boot_vga, "intel: iGPU offers mediated devices");
                ok(ig->name && strstr(ig->name, "UHD Graphics 630"), "intel: iGPU name from pci.ids");
                is_str(dg->driver, "nvidia", "intel: dGPU driver");
                is_str(dg->render_node, "/dev/dri/renderD129", "intel: dGPU render node");
                is_int(dg->iommu_group, 1, "intel: dGPU group");
                ok(dg->boot_vga && !dg->has_mdev && dg->sriov_totalvfs == 0, "intel: dGPU is boot VGA");
        }
        is_str(host_render_node(&h), "/dev/dri/renderD128", "intel: first render node");
        /* etc/phyllome/host.conf of the fixture */
        is_int(h.reserve_cpus, 2, "intel: host.conf reserve-cpus");
        is_int(h.reserve_mem, 4ULL << 30, "intel: host.conf reserve-memory");
        is_int(h.vm_cpus_max, 6, "intel: VMs get 6 CPUs");
        is_int(h.vm_mem_max, 32775580ULL * 1024 - (4ULL << 30), "intel: VMs get memory less 4G");
        ok(h.conf_path && strstr(h.conf_path, "etc/phyllome/host.conf"), "intel: config path kept");

        _cleanup_(host_check_report_done) struct host_check_report rep = { 0 };
        if (!run_check(&h, NULL, &rep))
                return;
        static const char *const pass[] = { "cpu.virt", "kvm.device", "kvm.access", "kvm.nested", "kvm.ignore_msrs",
                                            "iommu.firmware", "iommu.cmdline", "iommu.active", "iommu.groups",
                                            "net.vhost", "net.tun", "cgroup.v2", "storage.root", "host.tpm",
                                            "gpu.0000:00:02.0", "gpu.0000:01:00.0" };
        for (size_t i = 0; i < ELEMENTSOF(pass); i++)
                is_status(&rep, pass[i], HOST_CHECK_PASS);
        is_int(rep.tier, HOST_TIER_RECOMMENDED, "intel: recommended tier");
        is_int(rep.short_of.n, 0, "intel: nothing missing");
}

static void test_amd_off(void) {
        _cleanup_(host_facts_done) struct host_facts h = { 0 };
        if (!load("amd-laptop-iommu-off", &h))
                return;
        ok(h.cpu_vendor == HOST_CPU_AMD && h.svm && !h.vmx, "amd-off: AMD with svm");
        ok(h.cpus == 16 && h.cores == 8, "amd-off: 16 threads on 8 cores");
        ok(!h.ivrs && !h.iommu_firmware && !h.iommu_enabled && !h.iommu_class, "amd-off: no IVRS, no groups");
        is_int(h.nested, 1, "amd-off: kvm_amd nested read");
        is_int(h.ignore_msrs, 0, "amd-off: ignore_msrs off");
        is_str(h.dmi_vendor, "LENOVO", "amd-off: DMI vendor");
        is_int(h.n_gpus, 2, "amd-off: two GPUs");
        const struct host_gpu *dg = gpu(&h, "0000:01:00.0");
        ok(dg && dg->iommu_group == -1, "amd-off: no group for the dGPU");

        _cleanup_(host_check_report_done) struct host_check_report rep = { 0 };
        if (!run_check(&h, NULL, &rep))
                return;
        is_status(&rep, "cpu.virt", HOST_CHECK_PASS);
        is_status(&rep, "iommu.firmware", HOST_CHECK_WARN);
        is_status(&rep, "iommu.groups", HOST_CHECK_WARN);
        is_status(&rep, "kvm.ignore_msrs", HOST_CHECK_WARN);
        ok(remedy_has(&rep, "iommu.firmware", "amd_iommu=on iommu=pt") &&
                   !remedy_has(&rep, "iommu.firmware", "intel_iommu"),
           "amd-off: remedy names the AMD kernel arguments");
        ok(remedy_has(&rep, "iommu.firmware", "AMD-Vi") && remedy_has(&rep, "iommu.firmware", "firmware setup"),
           "amd-off: remedy names the firmware setting");
        ok(remedy_has(&rep, "kvm.ignore_msrs", "ignore_msrs=1"), "amd-off: ignore_msrs remedy");
        is_int(rep.tier, HOST_TIER_MINIMUM, "amd-off: minimum tier");
        ok(rep.short_of.n == 1 && strstr(rep.short_of.v[0], "AMD-Vi"), "amd-off: short of recommended by AMD-Vi only");

        _cleanup_free_ char *root = fixture("amd-laptop-iommu-off");
        phy_error err = { 0 };
        int r = host_iommu_group_require_alone(root, "0000:01:00.0", &err);
        is_int(r, -ENODEV, "amd-off: passthrough refused without a group");
        ok(strstr(err.message, "0000:01:00.0") && strstr(err.message, "no IOMMU group"), "amd-off: message names it");
}

static void test_amd_shared(void) {
        _cleanup_(host_facts_done) struct host_facts h = { 0 };
        if (!load("amd-laptop-shared-group", &h))
                return;
        ok(h.ivrs && h.iommu_enabled && h.iommu_groups == 7, "shared: IVRS and 7 groups");
        ok(h.cpus == 8 && h.cores == 4, "shared: 8 threads on 4 cores");

        _cleanup_(host_check_report_done) struct host_check_report rep = { 0 };
        if (run_check(&h, NULL, &rep)) {
                is_status(&rep, "iommu.firmware", HOST_CHECK_PASS);
                is_status(&rep, "iommu.groups", HOST_CHECK_PASS);
                is_status(&rep, "iommu.cmdline", HOST_CHECK_WARN);
                ok(remedy_has(&rep, "iommu.cmdline", "amd_iommu=on iommu=pt"), "shared: cmdline remedy for AMD");
                is_status(&rep, "cpu.cores", HOST_CHECK_WARN);
                is_status(&rep, "mem.total", HOST_CHECK_WARN);
                is_int(rep.tier, HOST_TIER_MINIMUM, "shared: minimum tier");
        }

        _cleanup_free_ char *root = fixture("amd-laptop-shared-group");
        _cleanup_(host_pci_list_done) struct host_pci_list l = { 0 };
        phy_error err = { 0 };
        if (!ok(host_pci_list(root, &l, &err) == 0, "shared: PCI list"))
                return;
        is_int(l.n, 20, "shared: 20 devices");
        const struct host_pci_device *d = NULL, *usb = NULL;
        for (size_t i = 0; i < l.n; i++) {
                if (strcmp(l.v[i].address, "0000:01:00.0") == 0)
                        d = &l.v[i];
                if (strcmp(l.v[i].address, "0000:02:00.0") == 0)
                        usb = &l.v[i];
        }
        if (ok(d && usb, "shared: dGPU and USB controller listed")) {
                ok(!d->assignable, "shared: dGPU cannot be given alone");
                is_int(d->iommu_group, 3, "shared: dGPU group 3");
                ok(strv_contains(&d->group_blockers, "0000:02:00.0"), "shared: the USB controller blocks it");
                ok(strv_contains(&d->group_with, "0000:01:00.1") && !strv_contains(&d->group_blockers, "0000:01:00.1"),
                   "shared: its audio function goes along, it does not block");
                ok(!strv_contains(&d->group_blockers, "0000:00:01.1"), "shared: bridges do not block");
                is_str(usb->class_name, "USB controller", "shared: class name from pci.ids");
                is_str(usb->vendor_name, "ASMedia Technology Inc.", "shared: vendor name from pci.ids");
                is_int(usb->class_code, 0x0c0330, "shared: class code");
                is_str(usb->driver, "xhci_hcd", "shared: driver");
        }
        /* What a start reads: the display devices alone, with the same facts. */
        _cleanup_(host_pci_list_done) struct host_pci_list g = { 0 };
        if (ok(host_pci_list_class(root, 0x03, &g, &err) == 0, "shared: display devices listed")) {
                bool all_display = g.n > 0;
                for (size_t i = 0; i < g.n; i++)
                        all_display = all_display && (g.v[i].class_code >> 16) == 0x03;
                ok(all_display, "shared: only display devices (%zu)", g.n);
                const struct host_pci_device *gd = NULL;
                for (size_t i = 0; i < g.n; i++)
                        if (strcmp(g.v[i].address, "0000:01:00.0") == 0)
                                gd = &g.v[i];
                if (ok(gd && d, "shared: the dGPU is one of them")) {
                        is_int(gd->iommu_group, d->iommu_group, "shared: the same IOMMU group");
                        is_str(gd->device_name, d->device_name, "shared: the same pci.ids name");
                        is_str(gd->driver, d->driver, "shared: the same driver");
                }
        }
        int r = host_iommu_group_require_alone(root, "0000:01:00.0", &err);
        is_int(r, -EBUSY, "shared: passthrough refused");
        ok(strstr(err.message, "IOMMU group 3") && strstr(err.message, "0000:02:00.0"),
           "shared: refusal names the group and the USB controller");
        /* the iGPU's group holds only its own functions and a bridge */
        ok(host_iommu_group_require_alone(root, "0000:05:00.0", &err) == 0, "shared: iGPU assignable with its functions");
        is_int(host_iommu_group_require_alone(root, "0000:09:00.0", &err), -ENODEV, "shared: unknown device");
        is_int(host_iommu_group_require_alone(root, "01:00.0", &err), -EINVAL, "shared: malformed address");
}

static void test_intel_devices(void) {
        _cleanup_free_ char *root = fixture("intel-desktop-iommu");
        phy_error err = { 0 };
        _cleanup_(host_iommu_group_done) struct host_iommu_group g = { .group = -1 };
        if (!ok(host_iommu_group_check(root, "0000:01:00.0", &g, &err) == 0, "intel: group check"))
                return;
        is_int(g.group, 1, "intel: dGPU in group 1");
        is_int(g.members.n, 3, "intel: group 1 has the root port, GPU and audio");
        ok(g.blockers.n == 0 && g.with.n == 1 && strcmp(g.with.v[0], "0000:01:00.1") == 0,
           "intel: dGPU isolated: assignable with its audio function");
        ok(host_iommu_group_require_alone(root, "0000:00:02.0", &err) == 0, "intel: iGPU assignable");
}

static void test_apple(void) {
        _cleanup_(host_facts_done) struct host_facts h = { 0 };
        if (!load("apple-mac", &h))
                return;
        ok(h.apple, "apple: Apple hardware");
        is_str(h.dmi_product, "MacPro7,1", "apple: product");
        ok(h.dmar && !h.iommu_enabled, "apple: DMAR but no groups");
        ok(!h.tpm_device, "apple: no TPM");
        ok(h.cpus == 16 && h.cores == 8, "apple: 16 threads on 8 cores");
        _cleanup_(host_check_report_done) struct host_check_report rep = { 0 };
        if (!run_check(&h, NULL, &rep))
                return;
        is_status(&rep, "iommu.firmware", HOST_CHECK_PASS);
        is_status(&rep, "iommu.cmdline", HOST_CHECK_WARN);
        ok(remedy_has(&rep, "iommu.cmdline", "intel_iommu=on iommu=pt"), "apple: Intel kernel arguments named");
        ok(remedy_has(&rep, "iommu.groups", "intel_iommu=on") && !remedy_has(&rep, "iommu.groups", "firmware setup"),
           "apple: firmware already on, so only the command line is asked for");
        ok(strstr(host_check_find(&rep, "host.dmi")->detail, "Apple hardware") != NULL, "apple: reported");
        is_status(&rep, "host.tpm", HOST_CHECK_INFO);
}

static int write_file(const char *root, const char *path, const char *data) {
        _cleanup_free_ char *p = root_path(root, path);
        _cleanup_free_ char *dir = strdup(p);
        *strrchr(dir, '/') = '\0';
        if (mkdir_p(dir, 0755) < 0)
                return -1;
        return file_write_atomic(p, data, strlen(data), 0644, NULL);
}

static void conf_case(const char *root, const char *conf, const char *want) {
        write_file(root, "/etc/phyllome/host.conf", conf);
        struct host_facts h = { 0 };
        phy_error err = { 0 };
        int r = host_facts_load(root, &h, &err);
        ok(r == -EINVAL && strstr(err.message, want) != NULL, "bad host.conf: '%s'", want);
        if (r != -EINVAL || !strstr(err.message, want))
                printf("#   r=%d message: %s\n", r, err.message);
        host_facts_done(&h);
}

static void test_conf(void) {
        char root[] = "/tmp/phyllome-test-host.XXXXXX";
        if (!ok(mkdtemp(root), "temporary root"))
                return;
        write_file(root, "/proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vmx\n\n"
                                          "processor\t: 1\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vmx\n");
        write_file(root, "/proc/meminfo", "MemTotal:        8000000 kB\n");
        {
                struct host_facts h = { 0 };
                phy_error err = { 0 };
                ok(host_facts_load(root, &h, &err) == 0 && h.cpus == 2 && h.cores == 2 && h.vmx,
                   "minimal root: no core ids means cores = CPUs");
                ok(h.conf_path == NULL && h.reserve_cpus == 1, "minimal root: defaults without host.conf");
                host_facts_done(&h);
        }
        write_file(root, "/etc/phyllome/host.conf", "# comment\n\nreserve-memory=512M   # trailing\n reserve-cpus = 3\n");
        {
                struct host_facts h = { 0 };
                phy_error err = { 0 };
                ok(host_facts_load(root, &h, &err) == 0, "host.conf with comments loads");
                is_int(h.reserve_mem, 512ULL << 20, "host.conf: reserve-memory=512M");
                is_int(h.vm_cpus_max, 1, "host.conf: reserving more CPUs than exist leaves VMs 1");
                host_facts_done(&h);
        }
        conf_case(root, "reserve-cpus = 1\nreserve-gpus = 1\n", "etc/phyllome/host.conf:2: unknown key 'reserve-gpus'");
        conf_case(root, "reserve-memory = 2X\n", "etc/phyllome/host.conf:1: reserve-memory: '2X' is not a size");
        conf_case(root, "\n\nreserve-cpus = two\n", "etc/phyllome/host.conf:3: reserve-cpus: 'two'");
        conf_case(root, "reserve-cpus\n", "etc/phyllome/host.conf:1: expected 'key = value'");
        /* allow-paths (issue 12): absolute directories, never '/' itself. */
        conf_case(root, "allow-paths = /\n", "host.conf:1: allow-paths: '/' is not an absolute directory other than '/'");
        conf_case(root, "allow-paths = /srv/iso srv\n", "host.conf:1: allow-paths: 'srv' is not an absolute directory");
        conf_case(root, "allow-paths = /srv/../etc\n", "host.conf:1: allow-paths: '/srv/../etc'");
        write_file(root, "/etc/phyllome/host.conf", "allow-paths = /srv/iso /data/images/\nallow-paths = /opt/fw\n");
        {
                struct host_facts h = { 0 };
                phy_error err = { 0 };
                ok(host_conf_load(root, &h, &err) == 0 && h.allow_paths_set && h.allow_paths.n == 3 &&
                   strcmp(h.allow_paths.v[0], "/srv/iso") == 0 && strcmp(h.allow_paths.v[1], "/data/images") == 0 &&
                   strcmp(h.allow_paths.v[2], "/opt/fw") == 0, "allow-paths: repeatable, several a line, trailing '/' dropped");
                host_facts_done(&h);
        }
        {
                struct host_facts h = { 0 };
                phy_error err = { 0 };
                write_file(root, "/etc/phyllome/host.conf", "reserve-cpus = 1\n");
                ok(host_facts_load(root, &h, &err) == 0 && h.vm_uid_first == 6000000 && h.vm_uid_count == 65536,
                   "vm-uids: 6000000-6065535 by default");
                host_facts_done(&h);
                write_file(root, "/etc/phyllome/host.conf", "vm-uids = 700000-700009\n");
                ok(host_facts_load(root, &h, &err) == 0 && h.vm_uid_first == 700000 && h.vm_uid_count == 10,
                   "vm-uids = 700000-700009: ten uids from 700000");
                host_facts_done(&h);
                write_file(root, "/etc/phyllome/host.conf", "vm-uids = off\n");
                ok(host_facts_load(root, &h, &err) == 0 && h.vm_uid_count == 0, "vm-uids = off: none");
                ok(!h.qemu_malloc_plain, "qemu-malloc-thp: on by default");
                host_facts_done(&h);
                write_file(root, "/etc/phyllome/host.conf", "qemu-malloc-thp = off\n");
                ok(host_facts_load(root, &h, &err) == 0 && h.qemu_malloc_plain, "qemu-malloc-thp = off");
                host_facts_done(&h);
                write_file(root, "/etc/phyllome/host.conf", "qemu-malloc-thp = on\n");
                ok(host_facts_load(root, &h, &err) == 0 && !h.qemu_malloc_plain, "qemu-malloc-thp = on");
                host_facts_done(&h);
        }
        conf_case(root, "\nqemu-malloc-thp = yes\n", "etc/phyllome/host.conf:2: qemu-malloc-thp: 'yes' is neither 'on' nor 'off'");
        conf_case(root, "vm-uids = 1000-2000\n", "etc/phyllome/host.conf:1: vm-uids: '1000-2000' is not a range");
        conf_case(root, "vm-uids = 700000-700000\n", "host.conf:1: vm-uids: '700000-700000' is not a range");
        conf_case(root, "vm-uids = 700000\n", "host.conf:1: vm-uids: '700000' is not a range FIRST-LAST");
        conf_case(root, "vm-uids = 700000-x\n", "host.conf:1: vm-uids: '700000-x'");
        _cleanup_free_ char *cpuinfo = root_path(root, "/proc/cpuinfo");
        unlink(cpuinfo);
        {
                struct host_facts h = { 0 };
                phy_error err = { 0 };
                int r = host_facts_load(root, &h, &err);
                ok(r == -ENOENT && strstr(err.message, "/proc/cpuinfo"), "missing cpuinfo is an error naming it");
        }
        rm_rf(root);
}

static void test_cmdline(void) {
        struct host_facts h = { .cmdline = (char *) "ro intel_iommu=on,sm_on iommu=soft iommu=pt quiet -- iommu=off" };
        ok(host_cmdline_has(&h, "intel_iommu", "on"), "cmdline: comma list value");
        ok(host_cmdline_has(&h, "iommu", "pt"), "cmdline: last occurrence wins");
        ok(!host_cmdline_has(&h, "iommu", "soft"), "cmdline: earlier value overridden");
        ok(!host_cmdline_has(&h, "iommu", "off"), "cmdline: init arguments after -- ignored");
        ok(host_cmdline_has(&h, "quiet", NULL) && !host_cmdline_has(&h, "quiet", "1"), "cmdline: bare word");
        ok(!host_cmdline_has(&h, "intel", NULL), "cmdline: no prefix match");
}

static void test_tools(void) {
        _cleanup_(host_facts_done) struct host_facts h = { 0 };
        if (!load("intel-desktop-iommu", &h))
                return;
        /* a QEMU that does not run: a real program that exits 1 */
        struct qemu_tools bad = { .qemu = (char *) "/bin/false" };
        _cleanup_(host_check_report_done) struct host_check_report rep = { 0 };
        if (run_check(&h, &bad, &rep)) {
                is_status(&rep, "tools.qemu", HOST_CHECK_FAIL);
                ok(strstr(host_check_find(&rep, "tools.qemu")->detail, "exited with status 1") != NULL,
                   "tools: the failure says how it failed");
                is_status(&rep, "tools.swtpm", HOST_CHECK_WARN);
                ok(remedy_has(&rep, "tools.swtpm", "apt-get install swtpm swtpm-tools"), "tools: swtpm remedy");
                is_status(&rep, "tools.qemu_img", HOST_CHECK_FAIL);
        }
        host_check_report_done(&rep);
        struct qemu_tools none = { 0 };
        if (run_check(&h, &none, &rep)) {
                is_status(&rep, "tools.qemu", HOST_CHECK_FAIL);
                ok(remedy_has(&rep, "tools.qemu", "qemu-system-x86"), "tools: install remedy");
        }
        host_check_report_done(&rep);
        /* the real QEMU of this machine */
        const char *q = getenv("PHYLLOME_QEMU") ? getenv("PHYLLOME_QEMU") : "/usr/bin/qemu-system-x86_64";
        if (access(q, X_OK) == 0) {
                struct qemu_tools real = { .qemu = (char *) q };
                if (run_check(&h, &real, &rep)) {
                        is_status(&rep, "tools.qemu", HOST_CHECK_PASS);
                        ok(strstr(host_check_find(&rep, "tools.qemu")->detail, "QEMU emulator version") != NULL,
                           "tools: the real QEMU's version line");
                }
        } else
                ok(1, "# SKIP no %s", q);
}

/* A start's load (host_facts_load_some): the same CPU, memory, KVM, DMI
 * and TPM facts as the full one; the GPUs only on request; none of what
 * only 'host check' reports. */
static void test_some(void) {
        _cleanup_free_ char *root = fixture("intel-desktop-iommu");
        phy_error err = { 0 };
        _cleanup_(host_facts_done) struct host_facts all = { 0 }, lean = { 0 }, gpus = { 0 };
        if (!ok(host_facts_load(root, &all, &err) == 0 && host_facts_load_some(root, 0, &lean, &err) == 0 &&
                host_facts_load_some(root, HOST_FACTS_GPUS, &gpus, &err) == 0, "intel: the three loads"))
                return;
        ok(lean.cpus == all.cpus && lean.cores == all.cores && lean.vmx == all.vmx && lean.mem_total == all.mem_total &&
           lean.kvm_usable == all.kvm_usable && lean.tpm_device == all.tpm_device && lean.apple == all.apple &&
           lean.vm_cpus_max == all.vm_cpus_max && lean.vm_mem_max == all.vm_mem_max &&
           lean.vm_uid_first == all.vm_uid_first && lean.dmi_vendor && all.dmi_vendor &&
           strcmp(lean.dmi_vendor, all.dmi_vendor) == 0, "lean: a start's facts as the full load has them");
        ok(all.n_gpus == 2 && lean.n_gpus == 0 && gpus.n_gpus == 2, "the GPUs only with HOST_FACTS_GPUS");
        ok(lean.nested == -1 && lean.ignore_msrs == -1 && !lean.iommu_enabled && !lean.cmdline && lean.ksm == -1 &&
           lean.storage_device == NULL && all.nested == 1 && all.iommu_enabled && all.storage_device,
           "lean: host check's facts unknown, the full load has them");
}

/* A start reads the first processor's record of /proc/cpuinfo and counts
 * the CPUs from sysfs's online list: the kernel formats a record per CPU as
 * the file is read, so a full read grows with the host.  The records after
 * the first here are 2 MiB, more than a whole read takes (1 MiB): only a
 * read that stops at the first blank line gets through.  Without the list
 * (or with a malformed one), every record, as before. */
static void test_cpuinfo_first(void) {
        char root[] = "/tmp/phyllome-test-host.XXXXXX";
        if (!ok(mkdtemp(root), "temporary root"))
                return;
        const char *head = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD Test 64-Core\n"
                           "physical id\t: 0\ncore id\t\t: 0\nflags\t\t: fpu svm hypervisor\n\n";
        size_t big = 2 << 20;
        _cleanup_free_ char *text = malloc(strlen(head) + big + 256);
        if (!text)
                abort();
        char *p = stpcpy(text, head);
        p = stpcpy(p, "processor\t: 1\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vmx\nbugs\t\t: ");
        memset(p, 'x', big);
        strcpy(p + big, "\n\n");
        write_file(root, "/proc/cpuinfo", text);
        write_file(root, "/proc/meminfo", "MemTotal:        8000000 kB\n");
        write_file(root, "/sys/devices/system/cpu/online", "0-2,4-63\n");
        {
                _cleanup_(host_facts_done) struct host_facts h = { 0 };
                phy_error err = { 0 };
                int r = host_facts_load_some(root, 0, &h, &err);
                if (!ok(r == 0, "a start's load reads the first record only (the rest is too long to read)"))
                        printf("#   %s\n", err.message);
                ok(h.cpus == 63 && h.cores == 63 && h.vm_cpus_max == 62, "the CPUs from sysfs's online list: %u",
                   h.cpus);
                ok(h.cpu_vendor == HOST_CPU_AMD && h.svm && !h.vmx && h.hypervisor && h.cpu_model &&
                   strcmp(h.cpu_model, "AMD Test 64-Core") == 0, "vendor, model and flags of the first record");
        }
        {
                _cleanup_(host_facts_done) struct host_facts h = { 0 };
                phy_error err = { 0 };
                ok(host_facts_load(root, &h, &err) == -EFBIG, "host check's load reads every record (here: too long)");
        }
        write_file(root, "/proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vmx\n\n"
                                          "processor\t: 1\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu svm\n");
        write_file(root, "/sys/devices/system/cpu/online", "0-x\n");
        {
                _cleanup_(host_facts_done) struct host_facts h = { 0 };
                phy_error err = { 0 };
                ok(host_facts_load_some(root, 0, &h, &err) == 0 && h.cpus == 2 && h.cpu_vendor == HOST_CPU_INTEL &&
                   h.vmx && !h.svm, "a malformed online list: the records counted; the first one's vendor and flags");
        }
        rm_rf(root);
}

int main(void) {
        test_ci();
        test_some();
        test_cpuinfo_first();
        test_intel();
        test_intel_devices();
        test_amd_off();
        test_amd_shared();
        test_apple();
        test_conf();
        test_cmdline();
        test_tools();
        return tap_done();
}

/* SPDX-License-Identifier: MIT */
#include "check.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "qemu/tools.h"

extern char **environ;

/* The founding documents' tiers.  RAM is in decimal GB compared with
 * MemTotal, which is below the installed RAM by what the firmware and kernel
 * keep: an "8 GB" machine shows 7.6 GiB = 8.2e9 bytes. */
#define MIN_CORES 2
#define REC_CORES 8
#define MIN_MEM 8000000000ULL
#define REC_MEM 16000000000ULL

const char *host_check_status_name(enum host_check_status s) {
        static const char *const n[] = { "PASS", "INFO", "WARN", "FAIL" };
        return s <= HOST_CHECK_FAIL ? n[s] : "?";
}

const char *host_tier_name(enum host_tier t) {
        return t == HOST_TIER_RECOMMENDED ? "recommended" : t == HOST_TIER_MINIMUM ? "minimum" : "none";
}

void host_check_report_done(struct host_check_report *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n; i++) {
                free(r->v[i].id);
                free(r->v[i].title);
                free(r->v[i].detail);
                free(r->v[i].remedy);
        }
        free(r->v);
        strv_done(&r->short_of);
        host_qemu_modules_done(&r->modules);
        *r = (struct host_check_report) { 0 };
}

const struct host_check_result *host_check_find(const struct host_check_report *r, const char *id) {
        for (size_t i = 0; r && i < r->n; i++)
                if (strcmp(r->v[i].id, id) == 0)
                        return &r->v[i];
        return NULL;
}

/* remedy_fmt may be NULL.  Formats with the same va_list would be awkward:
 * the detail is pre-formatted by the caller through dfmt(). */
static int add(struct host_check_report *r, const char *id, const char *title, enum host_check_status st,
               char *detail, const char *remedy) {
        _cleanup_free_ char *d = detail;
        struct host_check_result *v = realloc(r->v, (r->n + 1) * sizeof *v);
        if (!v)
                return -ENOMEM;
        r->v = v;
        struct host_check_result *x = &r->v[r->n];
        *x = (struct host_check_result) { .status = st };
        x->id = strdup(id);
        x->title = strdup(title);
        x->detail = d ? TAKE_PTR(d) : strdup("");
        x->remedy = st != HOST_CHECK_PASS && remedy ? strdup(remedy) : NULL;
        r->n++;
        if (!x->id || !x->title || !x->detail || (st != HOST_CHECK_PASS && remedy && !x->remedy))
                return -ENOMEM;
        return 0;
}

int host_check_report_add(struct host_check_report *r, const char *id, const char *title, enum host_check_status st,
                          const char *detail, const char *remedy) {
        char *d = strdup(detail ? detail : "");
        return d ? add(r, id, title, st, d, remedy) : -ENOMEM;
}

static char *dfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dfmt(const char *fmt, ...) {
        char *s = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        return s;
}

int host_program_version(const char *program, char *out, size_t len, phy_error *err) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return phy_error_set(err, errno, "cannot create a pipe to run '%s': %s", program, strerror(errno));
        _cleanup_close_ int rd = p[0], wr = p[1];
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, wr, 1);
        posix_spawn_file_actions_adddup2(&fa, wr, 2);
        char *argv[] = { (char *) program, (char *) "--version", NULL };
        pid_t pid;
        int r = posix_spawn(&pid, program, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return phy_error_set(err, r, "cannot run '%s': %s", program, strerror(r));
        close(TAKE_FD(wr));
        char buf[4096];
        size_t got = 0;
        for (;;) {
                ssize_t n = read(rd, buf + got, sizeof buf - 1 - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += (size_t) n;
                if (got == sizeof buf - 1) {
                        /* enough for the first line; drain so the child never blocks */
                        char sink[4096];
                        while (read(rd, sink, sizeof sink) > 0)
                                ;
                        break;
                }
        }
        buf[got] = '\0';
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return phy_error_set(err, errno, "cannot wait for '%s': %s", program, strerror(errno));
        buf[strcspn(buf, "\n")] = '\0';
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                if (WIFEXITED(status))
                        return phy_error_set(err, ECHILD, "'%s --version' exited with status %d%s%s", program,
                                             WEXITSTATUS(status), buf[0] ? ": " : "", buf);
                return phy_error_set(err, ECHILD, "'%s --version' was killed by signal %d", program, WTERMSIG(status));
        }
        snprintf(out, len, "%s", buf);
        return 0;
}

static const char *virt_name(const struct host_facts *h) {
        return h->cpu_vendor == HOST_CPU_AMD ? "AMD-V (SVM)" : "Intel VT-x";
}

static const char *iommu_name(const struct host_facts *h) {
        return h->cpu_vendor == HOST_CPU_AMD ? "AMD-Vi" : "Intel VT-d";
}

/* The kernel arguments that turn the IOMMU on, per vendor. */
static const char *iommu_args(const struct host_facts *h) {
        return h->cpu_vendor == HOST_CPU_AMD ? "amd_iommu=on iommu=pt" : "intel_iommu=on iommu=pt";
}

static int check_cpu(const struct host_facts *h, struct host_check_report *r) {
        int k;
        k = add(r, "cpu.vendor", "CPU", h->cpu_vendor == HOST_CPU_OTHER ? HOST_CHECK_WARN : HOST_CHECK_PASS,
                dfmt("%s, %s; %u logical CPUs, %u cores", host_cpu_vendor_name(h->cpu_vendor),
                     h->cpu_model ? h->cpu_model : "unknown model", h->cpus, h->cores),
                "Phyllome supports x86-64 Intel and AMD CPUs");
        if (k < 0)
                return k;

        _cleanup_free_ char *remedy = NULL;
        if (h->vmx || h->svm)
                k = add(r, "cpu.virt", "hardware virtualization", HOST_CHECK_PASS,
                        dfmt("%s (flag %s)", h->vmx ? "Intel VT-x" : "AMD-V", h->vmx ? "vmx" : "svm"), NULL);
        else {
                if (h->hypervisor)
                        remedy = dfmt("this host is itself a virtual machine: enable nested virtualization for it on "
                                      "the outer host (e.g. 'options %s nested=1' there); without it VMs run in "
                                      "software emulation (TCG), many times slower",
                                      h->cpu_vendor == HOST_CPU_AMD ? "kvm_amd" : "kvm_intel");
                else
                        remedy = dfmt("enable %s in the firmware setup (%s)", virt_name(h),
                                      h->cpu_vendor == HOST_CPU_AMD ? "often named 'SVM Mode'"
                                                                    : "often named 'Intel Virtualization Technology'");
                k = add(r, "cpu.virt", "hardware virtualization", HOST_CHECK_FAIL,
                        dfmt("neither the vmx nor the svm CPU flag is present%s",
                             h->hypervisor ? " (the 'hypervisor' flag is: this is a guest)" : ""),
                        remedy);
        }
        if (k < 0)
                return k;

        enum host_check_status st = h->cores >= REC_CORES ? HOST_CHECK_PASS : h->cores >= MIN_CORES ? HOST_CHECK_WARN : HOST_CHECK_FAIL;
        k = add(r, "cpu.cores", "CPU cores", st,
                dfmt("%u cores (minimum %d, recommended %d)", h->cores, MIN_CORES, REC_CORES),
                "a host with more cores runs more or larger VMs; the host itself keeps reserve-cpus of them");
        if (k < 0)
                return k;

        char mem[32];
        format_size(h->mem_total / (1024 * 1024) * 1024 * 1024, mem, sizeof mem);
        st = h->mem_total >= REC_MEM ? HOST_CHECK_PASS : h->mem_total >= MIN_MEM ? HOST_CHECK_WARN : HOST_CHECK_FAIL;
        return add(r, "mem.total", "memory", st,
                   dfmt("%s (%.1f GB; minimum 8 GB, recommended 16 GB)", mem, (double) h->mem_total / 1e9),
                   "add RAM: VMs get what the host does not keep");
}

static int check_kvm(const struct host_facts *h, struct host_check_report *r) {
        const char *mod = h->cpu_vendor == HOST_CPU_AMD ? "kvm_amd" : "kvm_intel";
        _cleanup_free_ char *remedy = NULL;
        int k;
        if (h->kvm_present)
                k = add(r, "kvm.device", "KVM device /dev/kvm", HOST_CHECK_PASS, dfmt("present"), NULL);
        else {
                if (h->vmx || h->svm)
                        remedy = dfmt("load the KVM module: modprobe %s (and check dmesg for 'disabled by bios')", mod);
                else
                        remedy = dfmt("enable %s in the firmware setup, then modprobe %s", virt_name(h), mod);
                k = add(r, "kvm.device", "KVM device /dev/kvm", HOST_CHECK_FAIL,
                        dfmt("no /dev/kvm: VMs can only run in software emulation (TCG)"), remedy);
        }
        if (k < 0)
                return k;
        if (h->kvm_present)
                k = add(r, "kvm.access", "KVM access", h->kvm_usable ? HOST_CHECK_PASS : HOST_CHECK_FAIL,
                        dfmt(h->kvm_usable ? "/dev/kvm opens read-write" : "/dev/kvm cannot be opened read-write by this user"),
                        "add your user to group kvm (sudo usermod -aG kvm $USER), then log in again");
        else
                k = add(r, "kvm.access", "KVM access", HOST_CHECK_INFO, dfmt("not checked: no /dev/kvm"), NULL);
        if (k < 0)
                return k;

        free(remedy);
        remedy = dfmt("echo 'options %s nested=1' | sudo tee /etc/modprobe.d/kvm-nested.conf, then reload %s "
                      "(or reboot)", mod, mod);
        if (h->nested == 1)
                k = add(r, "kvm.nested", "nested virtualization", HOST_CHECK_PASS, dfmt("%s nested=Y", mod), NULL);
        else if (h->nested == 0)
                k = add(r, "kvm.nested", "nested virtualization", HOST_CHECK_WARN,
                        dfmt("%s nested=N: VMs cannot run hypervisors (WSL2, Hyper-V, Docker Desktop)", mod), remedy);
        else
                k = add(r, "kvm.nested", "nested virtualization", HOST_CHECK_INFO,
                        dfmt("/sys/module/%s/parameters/nested not found (%s not loaded)", mod, mod), remedy);
        if (k < 0)
                return k;

        const char *msr_remedy = "echo 'options kvm ignore_msrs=1 report_ignored_msrs=0' | sudo tee "
                                 "/etc/modprobe.d/kvm-msrs.conf, then reboot (at once: echo 1 | sudo tee "
                                 "/sys/module/kvm/parameters/ignore_msrs)";
        if (h->ignore_msrs == 1)
                return add(r, "kvm.ignore_msrs", "KVM ignore_msrs", HOST_CHECK_PASS, dfmt("ignore_msrs=Y"), NULL);
        return add(r, "kvm.ignore_msrs", "KVM ignore_msrs", HOST_CHECK_WARN,
                   dfmt(h->ignore_msrs == 0 ? "ignore_msrs=N: Windows and macOS guests may crash on unknown MSRs"
                                            : "/sys/module/kvm/parameters/ignore_msrs not found (kvm not loaded)"),
                   msr_remedy);
}

static int check_iommu(const struct host_facts *h, struct host_check_report *r) {
        bool amd = h->cpu_vendor == HOST_CPU_AMD;
        const char *table = amd ? "IVRS" : "DMAR";
        bool table_ok = amd ? h->ivrs : h->dmar;
        int k;
        _cleanup_free_ char *fw_remedy = dfmt("enable %s in the firmware setup (%s), then add %s to the kernel command "
                                              "line (GRUB_CMDLINE_LINUX in /etc/default/grub, update-grub, reboot)",
                                              iommu_name(h), amd ? "often 'IOMMU' or 'AMD-Vi'" : "often 'VT-d'",
                                              iommu_args(h));
        _cleanup_free_ char *args_remedy = dfmt("add %s to the kernel command line (GRUB_CMDLINE_LINUX in "
                                                "/etc/default/grub, then update-grub and reboot)", iommu_args(h));
        if (!fw_remedy || !args_remedy)
                return -ENOMEM;

        k = add(r, "iommu.firmware", "IOMMU firmware table", table_ok ? HOST_CHECK_PASS : HOST_CHECK_WARN,
                dfmt(table_ok ? "ACPI %s table present" : "no ACPI %s table: the firmware has the IOMMU off or none",
                     table),
                fw_remedy);
        if (k < 0)
                return k;

        /* The command line: what the kernel was told, per vendor. */
        const char *vendor_key = amd ? "amd_iommu" : "intel_iommu";
        bool off = host_cmdline_has(h, vendor_key, "off") || host_cmdline_has(h, "iommu", "off");
        bool on = amd ? !off : host_cmdline_has(h, "intel_iommu", "on");
        bool pt = host_cmdline_has(h, "iommu", "pt");
        enum host_check_status st = off ? HOST_CHECK_FAIL : on && pt ? HOST_CHECK_PASS : HOST_CHECK_WARN;
        _cleanup_free_ char *cmd_remedy = NULL;
        if (off)
                cmd_remedy = dfmt("remove %s=off / iommu=off and add %s to the kernel command line (GRUB_CMDLINE_LINUX "
                                  "in /etc/default/grub, then update-grub and reboot)", vendor_key, iommu_args(h));
        k = add(r, "iommu.cmdline", "IOMMU kernel arguments", st,
                dfmt("%s%s; %s", off ? "the IOMMU is turned off on the kernel command line" : "",
                     off ? "" : amd ? "amd_iommu not off (on by default)" : on ? "intel_iommu=on" : "no intel_iommu=on",
                     pt ? "iommu=pt" : "no iommu=pt (passthrough mode spares host devices the IOMMU's cost)"),
                cmd_remedy ? cmd_remedy : args_remedy);
        if (k < 0)
                return k;

        k = add(r, "iommu.active", "IOMMU active (/sys/class/iommu)", h->iommu_class ? HOST_CHECK_PASS : HOST_CHECK_WARN,
                dfmt(h->iommu_class ? "an IOMMU is registered" : "no IOMMU registered with the kernel"),
                table_ok ? args_remedy : fw_remedy);
        if (k < 0)
                return k;
        return add(r, "iommu.groups", "IOMMU groups", h->iommu_groups ? HOST_CHECK_PASS : HOST_CHECK_WARN,
                   h->iommu_groups ? dfmt("%u groups: PCI passthrough possible (see 'phyllo host devices')", h->iommu_groups)
                                   : dfmt("/sys/kernel/iommu_groups is empty: no PCI passthrough"),
                   table_ok ? args_remedy : fw_remedy);
}

static int check_system(const struct host_facts *h, struct host_check_report *r) {
        int k;
        k = add(r, "net.vhost", "vhost-net", h->vhost_net ? HOST_CHECK_PASS : HOST_CHECK_WARN,
                dfmt(h->vhost_net ? "/dev/vhost-net present" : "no /dev/vhost-net: network in user space, slower"),
                "sudo modprobe vhost_net, and add vhost_net to /etc/modules");
        if (k < 0)
                return k;
        k = add(r, "net.tun", "TUN/TAP", h->tun ? HOST_CHECK_PASS : HOST_CHECK_WARN,
                dfmt(h->tun ? "/dev/net/tun present" : "no /dev/net/tun: only user-mode networking"),
                "sudo modprobe tun, and add tun to /etc/modules");
        if (k < 0)
                return k;

        if (!h->cgroup_controllers)
                k = add(r, "cgroup.v2", "cgroup v2 controllers", HOST_CHECK_WARN,
                        dfmt("no cgroup v2 hierarchy at /sys/fs/cgroup: no per-VM CPU and memory limits"),
                        "boot with systemd.unified_cgroup_hierarchy=1 on the kernel command line (the default "
                        "since Debian 11)");
        else {
                static const char *const want[] = { "cpu", "memory", "io", "cpuset" };
                _cleanup_free_ char *missing = NULL;
                size_t ml = 0, n_missing = 0;
                FILE *f = open_memstream(&missing, &ml);
                if (!f)
                        return -ENOMEM;
                for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                        const char *p = h->cgroup_controllers;
                        size_t wl = strlen(want[i]);
                        bool found = false;
                        while (*p && !found) {
                                size_t l = strcspn(p, " ");
                                found = l == wl && strncmp(p, want[i], l) == 0;
                                p += l;
                                p += strspn(p, " ");
                        }
                        if (!found)
                                fprintf(f, "%s%s", n_missing++ ? " " : "", want[i]);
                }
                fclose(f);
                _cleanup_free_ char *remedy = dfmt("enable the missing controllers (%s) in the root cgroup: "
                                                   "boot with systemd (cgroup v2) and a kernel that has them",
                                                   missing && *missing ? missing : "");
                k = add(r, "cgroup.v2", "cgroup v2 controllers", missing && *missing ? HOST_CHECK_WARN : HOST_CHECK_PASS,
                        missing && *missing ? dfmt("controllers: %s; missing: %s", h->cgroup_controllers, missing)
                                            : dfmt("controllers: %s", h->cgroup_controllers),
                        remedy);
        }
        if (k < 0)
                return k;

        char hp[32];
        format_size(h->hugepage_size, hp, sizeof hp);
        bool thp_on = h->thp && strcmp(h->thp, "never") != 0;
        k = add(r, "mem.hugepages", "huge pages", thp_on || h->hugepages_total ? HOST_CHECK_PASS : HOST_CHECK_WARN,
                dfmt("transparent huge pages: %s; %llu preallocated %s pages", h->thp ? h->thp : "not available",
                     (unsigned long long) h->hugepages_total, hp),
                "echo madvise | sudo tee /sys/kernel/mm/transparent_hugepage/enabled (QEMU asks for huge pages "
                "with madvise)");
        if (k < 0)
                return k;
        k = add(r, "mem.ksm", "KSM (same-page merging)", h->ksm == 1 ? HOST_CHECK_PASS : HOST_CHECK_INFO,
                dfmt(h->ksm == 1 ? "KSM is merging pages" : h->ksm == 0 ? "KSM is off" : "the kernel has no KSM"),
                h->ksm == 0 ? "to share identical pages between many similar VMs: echo 1 | sudo tee /sys/kernel/mm/ksm/run "
                              "(costs CPU time; unsafe for VMs of different trust)"
                            : NULL);
        if (k < 0)
                return k;

        enum host_check_status st = h->storage == HOST_STORAGE_NVME || h->storage == HOST_STORAGE_SSD ? HOST_CHECK_PASS
                                  : h->storage == HOST_STORAGE_ROTATIONAL                         ? HOST_CHECK_WARN
                                                                                                  : HOST_CHECK_INFO;
        k = add(r, "storage.root", "storage of /", st,
                dfmt("%s (%s)", host_storage_name(h->storage), h->storage_device ? h->storage_device : "device unknown"),
                st == HOST_CHECK_INFO ? "could not tell the kind of disk under /; VM disks want an SSD, NVMe recommended"
                                      : "keep VM disks on an SSD (NVMe recommended): a rotating disk makes VMs slow");
        if (k < 0)
                return k;

        k = add(r, "host.tpm", "physical TPM", h->tpm_device ? HOST_CHECK_PASS : HOST_CHECK_INFO,
                dfmt(h->tpm_device ? "/dev/tpm0 present" : "no /dev/tpm0 (VMs get a software TPM from swtpm anyway)"),
                h->tpm_device ? NULL : "enable the TPM (fTPM / Intel PTT) in the firmware setup if you want the host's own");
        if (k < 0)
                return k;
        return add(r, "host.dmi", "machine", HOST_CHECK_INFO,
                   dfmt("%s %s%s", h->dmi_vendor ? h->dmi_vendor : "unknown vendor",
                        h->dmi_product ? h->dmi_product : "unknown model",
                        h->apple ? " (Apple hardware: macOS guests are licensed here)" : ""),
                   NULL);
}

/* Landlock confines QEMU and swtpm to their VM's files (src/run/sandbox.c);
 * a property of the running kernel, so not under --root. */
static int check_landlock(const struct host_facts *h, struct host_check_report *r) {
        if (strcmp(h->root, "/") != 0)
                return add(r, "sec.landlock", "Landlock", HOST_CHECK_INFO,
                           dfmt("not checked under --root: Landlock is a property of the running kernel"), NULL);
        int abi = host_landlock_abi();
        return add(r, "sec.landlock", "Landlock", abi > 0 ? HOST_CHECK_PASS : HOST_CHECK_WARN,
                   abi > 0 ? dfmt("Landlock ABI %d: QEMU and swtpm are confined to their VM's files", abi)
                           : dfmt("this kernel has no Landlock: QEMU and swtpm run without their filesystem "
                                  "sandbox (uids and seccomp still apply)"),
                   "use Linux 5.13 or later with Landlock enabled (CONFIG_SECURITY_LANDLOCK, and landlock in "
                   "lsm= on the kernel command line)");
}

static int check_gpus(const struct host_facts *h, struct host_check_report *r) {
        if (h->n_gpus == 0)
                return add(r, "gpu", "GPUs", HOST_CHECK_WARN, dfmt("no PCI display controller (class 0x03)"),
                           "VMs get a virtual display only; a GPU with a render node enables accelerated virtio-gpu");
        for (size_t i = 0; i < h->n_gpus; i++) {
                const struct host_gpu *g = &h->gpus[i];
                char id[32], group[32] = "no IOMMU group";
                snprintf(id, sizeof id, "gpu.%s", g->address);
                if (g->iommu_group >= 0)
                        snprintf(group, sizeof group, "IOMMU group %d", g->iommu_group);
                int k = add(r, id, "GPU", g->driver ? HOST_CHECK_PASS : HOST_CHECK_INFO,
                            dfmt("%s [%s:%s], driver %s, render node %s, %s%s%s%s", g->name ? g->name : "unknown",
                                 g->vendor_id, g->device_id, g->driver ? g->driver : "none",
                                 g->render_node ? g->render_node : "none", group,
                                 g->sriov_totalvfs ? ", SR-IOV" : "", g->has_mdev ? ", mediated devices" : "",
                                 g->boot_vga ? ", boot VGA" : ""),
                            "no driver is bound: install the GPU's driver for the host, or bind vfio-pci to pass it through");
                if (k < 0)
                        return k;
        }
        return 0;
}

static int check_tools(const struct host_facts *h, const struct qemu_tools *t, struct host_check_report *r) {
        struct {
                const char *id, *title;
                bool found;
                const char *what, *remedy;
                enum host_check_status missing;
        } rows[] = {
                { "tools.qemu_img", "qemu-img", t && t->qemu_img, t ? t->qemu_img : NULL,
                  "install qemu-utils (apt-get install qemu-utils)", HOST_CHECK_FAIL },
                { "tools.ovmf", "UEFI firmware (OVMF)", t && t->ovmf_code && t->ovmf_vars, t ? t->ovmf_code : NULL,
                  "install ovmf (apt-get install ovmf)", HOST_CHECK_WARN },
                { "tools.ovmf_secboot", "UEFI Secure Boot firmware (Microsoft keys)", t && t->ovmf_code_sb && t->ovmf_vars_ms,
                  t ? t->ovmf_vars_ms : NULL,
                  "install ovmf (apt-get install ovmf): it ships OVMF_CODE_4M.ms.fd and OVMF_VARS_4M.ms.fd", HOST_CHECK_WARN },
                { "tools.swtpm", "swtpm (software TPM)", t && t->swtpm && t->swtpm_setup, t ? t->swtpm : NULL,
                  "install swtpm swtpm-tools (apt-get install swtpm swtpm-tools)", HOST_CHECK_WARN },
        };
        int k;
        if (!t) {
                const char *why = strcmp(h->root, "/") != 0 ? "not checked under --root: tools are looked up on the real host"
                                                            : "not checked";
                k = add(r, "tools.qemu", "QEMU", HOST_CHECK_INFO, dfmt("%s", why), NULL);
                for (size_t i = 0; i < ELEMENTSOF(rows) && k >= 0; i++)
                        k = add(r, rows[i].id, rows[i].title, HOST_CHECK_INFO, dfmt("%s", why), NULL);
                return k;
        }
        if (!t->qemu)
                k = add(r, "tools.qemu", "QEMU", HOST_CHECK_FAIL, dfmt("qemu-system-x86_64 not found"),
                        "install qemu-system-x86 (apt-get install qemu-system-x86)");
        else {
                char version[256];
                phy_error e = { 0 };
                if (host_program_version(t->qemu, version, sizeof version, &e) >= 0)
                        k = add(r, "tools.qemu", "QEMU", HOST_CHECK_PASS, dfmt("%s: %s", t->qemu, version), NULL);
                else
                        k = add(r, "tools.qemu", "QEMU", HOST_CHECK_FAIL, dfmt("%s", e.message),
                                "reinstall qemu-system-x86 (apt-get install --reinstall qemu-system-x86), or point "
                                "PHYLLOME_QEMU at a working qemu-system-x86_64");
        }
        for (size_t i = 0; i < ELEMENTSOF(rows) && k >= 0; i++)
                k = add(r, rows[i].id, rows[i].title, rows[i].found ? HOST_CHECK_PASS : rows[i].missing,
                        rows[i].found ? dfmt("%s", rows[i].what) : dfmt("not found"), rows[i].remedy);
        return k;
}

/* QEMU's modules, through the root prefix (a fixture tree has its own):
 * one line for what is there, one per missing module naming its package. */
static int check_qemu_modules(const struct host_facts *h, struct host_check_report *r) {
        phy_error e = { 0 };
        if (host_qemu_modules_scan(h->root, &r->modules, &e) < 0)
                return -e.code;
        const struct host_qemu_modules *m = &r->modules;
        if (!m->dir)
                return add(r, "qemu.modules", "QEMU modules", HOST_CHECK_INFO,
                           dfmt("no QEMU module directory (/usr/lib/x86_64-linux-gnu/qemu): QEMU is not installed, "
                                "or was built without modules"),
                           NULL);
        _cleanup_free_ char *found = strv_join(&m->found, ", ");
        _cleanup_strv_ strv pkgs = { 0 };
        for (size_t i = 0; i < host_qemu_modules_n; i++)
                if (strv_contains(&m->missing, host_qemu_modules[i].file) && !strv_contains(&pkgs, host_qemu_modules[i].package) &&
                    strv_push(&pkgs, host_qemu_modules[i].package) < 0)
                        return -ENOMEM;
        _cleanup_free_ char *pkgl = strv_join(&pkgs, " ");
        _cleanup_free_ char *remedy = NULL;
        if (!found || !pkgl || (pkgs.n && asprintf(&remedy, "apt-get install %s", pkgl) < 0))
                return -ENOMEM;
        int k = add(r, "qemu.modules", "QEMU modules", m->missing.n ? HOST_CHECK_WARN : HOST_CHECK_PASS,
                    dfmt("%zu of the %zu modules Phyllome uses are in %s%s%s", m->found.n, host_qemu_modules_n, m->dir,
                         m->found.n ? ": " : "", found),
                    remedy);
        for (size_t i = 0; i < host_qemu_modules_n && k >= 0; i++) {
                const struct host_qemu_module *x = &host_qemu_modules[i];
                if (!strv_contains(&m->missing, x->file))
                        continue;
                char id[96], title[96];
                _cleanup_free_ char *fix = NULL;
                snprintf(id, sizeof id, "qemu.module.%s", x->file);
                snprintf(title, sizeof title, "QEMU module %s", x->file);
                if (asprintf(&fix, "apt-get install %s", x->package) < 0)
                        return -ENOMEM;
                k = add(r, id, title, HOST_CHECK_WARN,
                        dfmt("not in %s: no %s (package %s)", m->dir, x->feature, x->package), fix);
        }
        return k;
}

static int tier_verdict(const struct host_facts *h, struct host_check_report *r) {
        strv min = { 0 }, rec = { 0 };
        int k = 0;
        if (!h->vmx && !h->svm)
                k |= strv_pushf(&min, "%s not enabled", virt_name(h));
        if (h->cores < MIN_CORES)
                k |= strv_pushf(&min, "%u core(s) (2 needed)", h->cores);
        if (h->mem_total < MIN_MEM)
                k |= strv_pushf(&min, "%.1f GB RAM (8 GB needed)", (double) h->mem_total / 1e9);
        if (h->storage != HOST_STORAGE_SSD && h->storage != HOST_STORAGE_NVME)
                k |= strv_pushf(&min, "%s storage (an SSD needed)", host_storage_name(h->storage));

        bool gpus_ok = h->n_gpus >= 2;
        for (size_t i = 0; i < h->n_gpus; i++)
                gpus_ok = gpus_ok || h->gpus[i].sriov_totalvfs > 0 || h->gpus[i].has_mdev;
        if (!h->iommu_firmware || !h->iommu_enabled)
                k |= strv_pushf(&rec, "%s not enabled", iommu_name(h));
        if (h->cores < REC_CORES)
                k |= strv_pushf(&rec, "%u cores (8 recommended)", h->cores);
        if (h->mem_total < REC_MEM)
                k |= strv_pushf(&rec, "%.1f GB RAM (16 GB recommended)", (double) h->mem_total / 1e9);
        if (h->storage != HOST_STORAGE_NVME)
                k |= strv_pushf(&rec, "%s storage (NVMe recommended)", host_storage_name(h->storage));
        if (!gpus_ok)
                k |= strv_pushf(&rec, "%zu GPU(s) without SR-IOV or mediated devices (two GPUs, or one offering "
                                "SR-IOV or mediated devices, recommended)", h->n_gpus);
        if (k < 0) {
                strv_done(&min);
                strv_done(&rec);
                return -ENOMEM;
        }
        if (min.n) {
                r->tier = HOST_TIER_NONE;
                r->short_of = min;
                strv_done(&rec);
        } else {
                r->tier = rec.n ? HOST_TIER_MINIMUM : HOST_TIER_RECOMMENDED;
                r->short_of = rec;
        }
        return 0;
}

int host_check_run(const struct host_facts *h, const struct qemu_tools *tools, struct host_check_report *ret,
                   phy_error *err) {
        _cleanup_(host_check_report_done) struct host_check_report r = { 0 };
        int k;
        if ((k = check_cpu(h, &r)) < 0 || (k = check_kvm(h, &r)) < 0 || (k = check_iommu(h, &r)) < 0 ||
            (k = check_system(h, &r)) < 0 || (k = check_landlock(h, &r)) < 0 || (k = check_gpus(h, &r)) < 0 ||
            (k = check_tools(h, tools, &r)) < 0 || (k = check_qemu_modules(h, &r)) < 0 || (k = tier_verdict(h, &r)) < 0)
                return phy_error_set(err, k, "cannot run the host check: %s", strerror(-k));
        *ret = r;
        r = (struct host_check_report) { 0 };
        return 0;
}

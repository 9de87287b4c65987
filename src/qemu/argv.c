/* SPDX-License-Identifier: MIT */
#include "argv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "cleanup.h"
#include "fileio.h"
#include "host/host.h"
#include "tools.h"
#include "vm/vm.h"
#include "value.h"

void qemu_argv_env_init(struct qemu_argv_env *env) {
        *env = (struct qemu_argv_env) { .qmp_fd = -1, .tpm_fd = -1, .hvc0_fd = -1, .qga_fd = -1 };
}

char *qemu_opt_escape(const char *value) {
        size_t n = strlen(value), commas = 0;
        for (size_t i = 0; i < n; i++)
                commas += value[i] == ',';
        char *out = malloc(n + commas + 1), *o = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                *o++ = value[i];
                if (value[i] == ',')
                        *o++ = ',';
        }
        *o = '\0';
        return out;
}

char *qemu_vars_path(const char *vm_dir) {
        char *p = NULL;
        return asprintf(&p, "%s/OVMF_VARS.fd", vm_dir) < 0 ? NULL : p;
}

bool qemu_argv_use_kvm(const struct qemu_argv_env *env) {
        /* /dev/kvm alone is not enough: a CPU that hides vmx/svm (a guest
         * without nested virtualization exposed) has a KVM that fails at the
         * first MSR write; such a host is told why by 'host check'. */
        if (env->force_tcg || !env->host || !env->host->kvm_usable || !(env->host->vmx || env->host->svm))
                return false;
        return !env->caps || qemu_caps_has_accel(env->caps, "kvm");
}

/* Builder state: the argv under construction and the first error. */
struct builder {
        const struct vm_def *vm;        /* &model->vm */
        const struct vm_model *model;
        const struct qemu_argv_env *env;
        strv *argv;
        strv *warnings;
        phy_error *err;
        int r;
        unsigned sata_port;     /* next free ICH9 AHCI port (ide.N) */
        bool have_scsi;
        bool have_vser;
        bool have_xhci;
        bool kvm;
        unsigned fdsets;        /* -add-fd sets given out so far */
};

static void add(struct builder *b, const char *a) {
        if (b->r >= 0 && strv_push(b->argv, a) < 0)
                b->r = phy_error_set(b->err, ENOMEM, "out of memory");
}

static void add2(struct builder *b, const char *opt, const char *value) {
        add(b, opt);
        add(b, value);
}

__attribute__((format(printf, 3, 4)))
static void addf(struct builder *b, const char *opt, const char *fmt, ...) {
        if (b->r < 0)
                return;
        char *v = NULL;
        va_list ap;
        va_start(ap, fmt);
        int k = vasprintf(&v, fmt, ap);
        va_end(ap);
        if (k < 0) {
                b->r = phy_error_set(b->err, ENOMEM, "out of memory");
                return;
        }
        if (opt)
                add(b, opt);
        add(b, v);
        free(v);
}

__attribute__((format(printf, 2, 3)))
static void warn(struct builder *b, const char *fmt, ...) {
        if (!b->warnings || b->r < 0)
                return;
        char *v = NULL;
        va_list ap;
        va_start(ap, fmt);
        int k = vasprintf(&v, fmt, ap);
        va_end(ap);
        if (k >= 0 && !strv_contains(b->warnings, v))
                strv_push(b->warnings, v);
        free(v);
}

/* Refuses a device the QEMU binary does not have, naming both. */
static bool need_device(struct builder *b, const char *type) {
        if (b->r < 0)
                return false;
        if (!b->env->caps || qemu_caps_has_device(b->env->caps, type))
                return true;
        char why[512];
        if (qemu_caps_lacks(b->env->caps, b->vm->name, "device", type, why, sizeof why)) {
                b->r = phy_error_set(b->err, ENOTSUP, "%s", why);
                return false;
        }
        b->r = phy_error_set(b->err, ENOTSUP,
                             "VM '%s' needs QEMU device '%s', which '%s' does not provide; "
                             "install a QEMU build with it or change the definition",
                             b->vm->name, type, b->env->caps->binary ? b->env->caps->binary : "qemu");
        return false;
}

/* Refuses a -display (gtk, sdl) the QEMU binary lacks: its module is not installed. */
static bool need_display(struct builder *b, const char *display) {
        if (b->r < 0)
                return false;
        if (!b->env->caps || qemu_caps_has_display(b->env->caps, display))
                return true;
        char why[512];
        if (qemu_caps_lacks(b->env->caps, b->vm->name, "display", display, why, sizeof why))
                b->r = phy_error_set(b->err, ENOTSUP, "%s", why);
        else
                b->r = phy_error_set(b->err, ENOTSUP, "VM '%s' asks for the %s display, which '%s' does not provide",
                                     b->vm->name, display, b->env->caps->binary ? b->env->caps->binary : "qemu");
        return false;
}

/* -device ARG when QEMU has device TYPE (else the error need_device sets). */
static void add_device(struct builder *b, const char *type, const char *arg) {
        if (need_device(b, type))
                add2(b, "-device", arg);
}

/* Paths in the definition may be relative to the VM directory. */
/* A path of the definition made absolute against the VM dir, as it is
 * (for -kernel and -initrd, which QEMU takes literally: no comma doubling). */
static char *vm_path_plain(struct builder *b, const char *path) {
        char *p = NULL;
        if (path[0] == '/' || !b->env->vm_dir)
                p = strdup(path);
        else if (asprintf(&p, "%s/%s", b->env->vm_dir, path) < 0)
                p = NULL;
        if (!p && b->r >= 0)
                b->r = phy_error_set(b->err, ENOMEM, "out of memory");
        return p;
}

/* The same escaped once for a -drive/-device option value (',' doubled). */
static char *vm_path(struct builder *b, const char *path) {
        _cleanup_free_ char *plain = vm_path_plain(b, path);
        char *p = plain ? qemu_opt_escape(plain) : NULL;
        if (plain && !p && b->r >= 0)
                b->r = phy_error_set(b->err, ENOMEM, "out of memory");
        return p;
}

static char *run_path(struct builder *b, const char *file) {
        char *p = NULL;
        _cleanup_free_ char *full = NULL;
        if (asprintf(&full, "%s/%s", b->env->run_dir ? b->env->run_dir : ".", file) >= 0)
                p = qemu_opt_escape(full);
        if (!p && b->r >= 0)
                b->r = phy_error_set(b->err, ENOMEM, "out of memory");
        return p;
}

static void add_machine(struct builder *b) {
        const struct vm_def *vm = b->vm;
        const char *machine = vm->machine;     /* the model always names one */
        if (b->env->caps && !qemu_caps_has_machine(b->env->caps, machine)) {
                b->r = phy_error_set(b->err, ENOTSUP, "VM '%s' asks for machine type '%s', which '%s' does not provide",
                                     vm->name, machine, b->env->caps->binary ? b->env->caps->binary : "qemu");
                return;
        }
        bool uefi = vm->firmware == VM_FW_UEFI;
        bool smm = vm->smm == VM_ON || (uefi && vm->secure_boot == VM_ON);
        addf(b, "-machine", "%s,smm=%s,vmport=off%s", machine, smm ? "on" : "off",
             uefi ? ",pflash0=fw-code,pflash1=fw-vars" : "");
        addf(b, "-accel", "%s", b->kvm ? "kvm" : "tcg");
        if (!b->kvm && b->env->force_tcg)
                warn(b, "VM '%s' runs under software emulation (TCG) as asked, and will be slow", vm->name);
        else if (!b->kvm)
                warn(b, "KVM is not usable on this host: VM '%s' runs under software emulation (TCG) and will be slow; "
                     "'phyllo host check' says why",
                     vm->name);
}

/* A BIOS VM that boots its kernel directly and has nothing to show gets
 * qboot (QEMU's minimal firmware, as microvm uses) instead of SeaBIOS: it
 * loads the kernel from fw_cfg and installs QEMU's ACPI and SMBIOS tables,
 * without SeaBIOS's POST (under TCG ~80 ms of every boot here).  It runs no
 * option ROMs (no VGA BIOS: so only without a display or a GPU, and with no
 * passed-through device, whose ROM a guest may need) and has no S3 resume
 * path, so such a guest is not offered S3.  QEMU finds it in its own data
 * dir; without it, SeaBIOS as before. */
static bool use_qboot(const struct builder *b) {
        const struct vm_def *vm = b->vm;
        return vm->firmware == VM_FW_BIOS && vm->kernel && vm->display == VM_DISPLAY_NONE &&
               (vm->gpu == VM_GPU_NONE || vm->gpu == VM_GPU_UNSET) && vm->passthrough.n == 0 &&
               vm->passthrough_roms.n == 0 && vm->mdevs.n == 0 && b->env->tools && b->env->tools->qboot;
}

static void add_firmware(struct builder *b) {
        const struct vm_def *vm = b->vm;
        if (use_qboot(b)) {
                add2(b, "-bios", b->env->tools->qboot);   /* a file name, not an option list */
                /* The q35 machines' power management is ICH9-LPC's; i440fx's PIIX4_PM. */
                add2(b, "-global", strstr(vm->machine, "q35") ? "ICH9-LPC.disable_s3=1" : "PIIX4_PM.disable_s3=1");
                return;
        }
        if (vm->firmware != VM_FW_UEFI)
                return;
        const struct qemu_tools *t = b->env->tools;
        bool sb = vm->secure_boot == VM_ON;
        const char *code = t ? (sb ? t->ovmf_code_sb : t->ovmf_code) : NULL;
        if (!code) {
                b->r = phy_error_set(b->err, ENOENT,
                                     "VM '%s' needs UEFI firmware%s, but no OVMF %s was found; install it with 'apt-get install ovmf'",
                                     vm->name, sb ? " with Secure Boot" : "", sb ? "Secure Boot code file" : "code file");
                return;
        }
        _cleanup_free_ char *code_esc = qemu_opt_escape(code);
        _cleanup_free_ char *vars = b->env->vm_dir ? qemu_vars_path(b->env->vm_dir) : strdup("OVMF_VARS.fd");
        _cleanup_free_ char *vars_esc = vars ? qemu_opt_escape(vars) : NULL;
        if (!code_esc || !vars_esc) {
                b->r = phy_error_set(b->err, ENOMEM, "out of memory");
                return;
        }
        addf(b, "-blockdev", "driver=file,node-name=fw-code,filename=%s,read-only=on", code_esc);
        addf(b, "-blockdev", "driver=file,node-name=fw-vars,filename=%s", vars_esc);
        if (sb)
                add2(b, "-global", "driver=cfi.pflash01,property=secure,value=on");
}

/* Hyper-V enlightenments.  Under TCG, hv-vpindex is refused by QEMU 7.2
 * ("kernel doesn't allow setting HyperV VP_INDEX") and synic, stimer,
 * tlbflush and ipi depend on it, so only the independent ones remain. */
static const char *const hv_kvm[] = {
        "hv-relaxed", "hv-vapic", "hv-spinlocks=0x1fff", "hv-vpindex", "hv-runtime", "hv-synic",
        "hv-stimer", "hv-reset", "hv-frequencies", "hv-reenlightenment", "hv-tlbflush", "hv-ipi", NULL,
};
static const char *const hv_tcg[] = {
        "hv-relaxed", "hv-vapic", "hv-spinlocks=0x1fff", "hv-runtime", "hv-reset", "hv-frequencies", NULL,
};

/* The CPU model under TCG when the definition names none (add_cpu says why). */
#define QEMU_TCG_CPU_MODEL "max,la57=off,erms=off,fsrm=off"

static void add_cpu(struct builder *b) {
        const struct vm_def *vm = b->vm;
        /* Under TCG, 'max' without 5-level paging: with LA57 Debian 12's
         * kernel under QEMU 7.2's TCG names mount points '/xxxx' in
         * /proc/self/mountinfo, and systemd in its initramfs never sees the
         * root mounted (the host image's boot hung there; issue 16).
         * And without ERMS and FSRM (fast 'rep movsb'/'rep stosb'): with them
         * the guest's kernel clears pages and copies with 'rep stosb'/'rep
         * movsb', and glibc its large copies, which TCG runs one byte per
         * pass through its translated code, where without them it takes 8
         * bytes a pass ('rep stosq') or unrolled moves.  Debian's installer
         * ran 8% fewer guest instructions to its first screen (12.6 G to
         * 11.6 G; bench/README.md).  The rest of 'max' stays (AVX2 and the
         * x86-64-v3 level some guests need). */
        const char *model = vm->cpu_model ? vm->cpu_model : b->kvm ? "host" : QEMU_TCG_CPU_MODEL;
        _cleanup_free_ char *cpu = strdup(model);
        if (vm->hyperv == VM_ON) {
                for (const char *const *f = b->kvm ? hv_kvm : hv_tcg; cpu && *f; f++) {
                        char *n = NULL;
                        if (asprintf(&n, "%s,%s", cpu, *f) < 0)
                                n = NULL;
                        free(cpu);
                        cpu = n;
                }
                if (!b->kvm)
                        warn(b, "under TCG only some Hyper-V enlightenments are available to VM '%s'", vm->name);
        }
        /* KVM's signature hidden (kvm-hidden): some guest drivers refuse to run under a hypervisor. */
        if (cpu && vm->kvm_hidden == VM_ON) {
                char *n = NULL;
                if (asprintf(&n, "%s,kvm=off", cpu) < 0)
                        n = NULL;
                free(cpu);
                cpu = n;
        }
        if (!cpu) {
                b->r = phy_error_set(b->err, ENOMEM, "out of memory");
                return;
        }
        addf(b, "-cpu", "%s", cpu);
        unsigned cores = vm->cores, threads = vm->threads;
        addf(b, "-smp", "%u,sockets=1,cores=%u,threads=%u", cores * threads, cores, threads);
        addf(b, "-m", "size=%lluk", (unsigned long long) (vm->memory / 1024));
        addf(b, "-rtc", "base=%s%s", vm->rtc_localtime == VM_ON ? "localtime" : "utc",
             vm->rtc_localtime == VM_ON ? ",driftfix=slew" : "");
        if (b->kvm && vm->hyperv == VM_ON)
                add2(b, "-global", "kvm-pit.lost_tick_policy=delay");
}

static void add_virtio_serial(struct builder *b) {
        if (b->have_vser)
                return;
        add_device(b, "virtio-serial-pci", "virtio-serial-pci,id=vser0");
        b->have_vser = true;
}

static void add_chardevs(struct builder *b) {
        const struct qemu_argv_env *env = b->env;
        /* QMP: a listening socket the supervisor made, else a path. */
        if (env->qmp_fd >= 0)
                addf(b, "-chardev", "socket,id=qmp,fd=%d,server=on,wait=off", env->qmp_fd);
        else {
                _cleanup_free_ char *p = run_path(b, "qmp.sock");
                addf(b, "-chardev", "socket,id=qmp,path=%s,server=on,wait=off", p);
        }
        add(b, "-mon");
        add(b, "chardev=qmp,mode=control");

        /* The serial console (ttyS0) on QEMU's stdin and stdout: pipes the
         * supervisor logs and relays (src/run/console.c); run by hand, the
         * terminal. */
        add2(b, "-chardev", "stdio,id=serial0");
        add(b, "-serial");
        add(b, "chardev:serial0");

        /* A virtio-serial console (hvc0) for guests that prefer it, and the
         * guest agent channel. */
        add_virtio_serial(b);
        if (env->hvc0_fd >= 0)
                addf(b, "-chardev", "socket,id=vcon0,fd=%d,server=on,wait=off", env->hvc0_fd);
        else {
                _cleanup_free_ char *p = run_path(b, "hvc0.sock");
                addf(b, "-chardev", "socket,id=vcon0,path=%s,server=on,wait=off", p);
        }
        add(b, "-device");
        add(b, "virtconsole,bus=vser0.0,chardev=vcon0,name=org.phyllome.console.0");
        if (b->vm->agent == VM_ON) {
                if (env->qga_fd >= 0)
                        addf(b, "-chardev", "socket,id=qga0,fd=%d,server=on,wait=off", env->qga_fd);
                else {
                        _cleanup_free_ char *p = run_path(b, "qga.sock");
                        addf(b, "-chardev", "socket,id=qga0,path=%s,server=on,wait=off", p);
                }
                add(b, "-device");
                add(b, "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0");
        }
}

static const char *bus_name(enum vm_bus bus) {
        switch (bus) {
        case VM_BUS_VIRTIO: return "virtio";
        case VM_BUS_SCSI: return "scsi";
        case VM_BUS_SATA: return "sata";
        case VM_BUS_NVME: return "nvme";
        case VM_BUS_IDE: return "ide";
        default: return "unset";
        }
}

static void add_scsi_controller(struct builder *b) {
        if (b->have_scsi)
                return;
        add_device(b, "virtio-scsi-pci", "virtio-scsi-pci,id=scsi0");
        b->have_scsi = true;
}

/* Attaches block node `node` on `bus` (the device's id is node too); cdrom
 * selects the CD device kinds; an empty CD drive (no node: the device
 * only, its id still node) takes media later over QMP (ops/cdrom.c). */
static void add_block_device(struct builder *b, const char *node, enum vm_bus bus, bool cdrom, int bootindex,
                             bool empty) {
        char boot[32] = "", drive[112] = "";
        if (bootindex > 0)
                snprintf(boot, sizeof boot, ",bootindex=%d", bootindex);
        if (!empty)
                snprintf(drive, sizeof drive, ",drive=%s", node);
        switch (bus) {
        case VM_BUS_VIRTIO:
                if (cdrom)
                        goto bad;
                /* Its own I/O thread per virtio disk: disk I/O leaves the main loop (issue 5). */
                if (need_device(b, "virtio-blk-pci")) {
                        addf(b, "-object", "iothread,id=io-%s", node);
                        addf(b, "-device", "virtio-blk-pci,id=%s%s,iothread=io-%s%s", node, drive, node, boot);
                }
                return;
        case VM_BUS_SCSI:
                add_scsi_controller(b);
                if (need_device(b, cdrom ? "scsi-cd" : "scsi-hd"))
                        addf(b, "-device", "%s,id=%s%s,bus=scsi0.0%s", cdrom ? "scsi-cd" : "scsi-hd", node, drive,
                             boot);
                return;
        case VM_BUS_SATA:
        case VM_BUS_IDE:
                /* Q35's ICH9 AHCI controller has six ports, ide.0 .. ide.5. */
                if (b->sata_port >= 6) {
                        b->r = phy_error_set(b->err, ENOSPC,
                                             "VM '%s' has more than 6 SATA disks and CD drives; move some to bus virtio or scsi",
                                             b->vm->name);
                        return;
                }
                if (need_device(b, cdrom ? "ide-cd" : "ide-hd"))
                        addf(b, "-device", "%s,id=%s%s,bus=ide.%u%s", cdrom ? "ide-cd" : "ide-hd", node, drive,
                             b->sata_port++, boot);
                return;
        case VM_BUS_NVME:
                if (cdrom)
                        goto bad;
                if (need_device(b, "nvme"))
                        addf(b, "-device", "nvme,id=%s%s,serial=%s%s", node, drive, node, boot);
                return;
        default:
                break;
        }
bad:
        b->r = phy_error_usage(b->err, "VM '%s': bus '%s' cannot hold a %s", b->vm->name, bus_name(bus),
                             cdrom ? "CD drive" : "disk");
}

/* ",cache.direct=on,aio=..." for disk i, or "" (QEMU's defaults): from the
 * model's facts (vm_model_make probed the image's file system). */
static void disk_io_opts(struct builder *b, size_t i, char *buf, size_t len) {
        /* Linux AIO with O_DIRECT, the long-proven pair (libvirt's cache=none,io=native).
         * Not io_uring: a live snapshot once hung QEMU 7.2 in CI with it, in a drain of
         * the disks; native AIO needs O_DIRECT, so without it QEMU's thread pool. */
        bool direct = b->model->disk_direct && b->model->disk_direct[i];
        snprintf(buf, len, "%s", direct ? ",cache.direct=on,aio=native" : "");
}

/* Disk i's backing chain (env->backing) as fd-backed read-only nodes,
 * the farthest first; back gets ",backing=<the nearest>" for the disk's
 * node, or stays "" (issue 12: QEMU opens no backing file by name). */
static void add_backing(struct builder *b, size_t i, const char *node, char *back, size_t len) {
        const struct qemu_backing *bk = b->env->backing && i < b->env->n_backing ? &b->env->backing[i] : NULL;
        if (!bk || bk->n == 0)
                return;
        for (size_t j = bk->n; j-- > 0 && b->r >= 0;) {
                char bn[128], next[144] = "";
                unsigned set = ++b->fdsets;
                snprintf(bn, sizeof bn, "%s-b%zu", node, j + 1);
                if (j + 1 < bk->n)
                        snprintf(next, sizeof next, ",backing=%s-b%zu", node, j + 2);
                addf(b, "-add-fd", "fd=%d,set=%u,opaque=%s", bk->links[j].fd, set, bn);
                addf(b, "-blockdev", "driver=file,node-name=%s-file,filename=/dev/fdset/%u,read-only=on", bn, set);
                addf(b, "-blockdev", "driver=%s,node-name=%s,file=%s-file,read-only=on%s", bk->links[j].format, bn,
                     bn, next);
        }
        snprintf(back, len, ",backing=%s-b1", node);
}

static void add_disks(struct builder *b) {
        const struct vm_def *vm = b->vm;
        /* Install media first in the boot order while the disk is still empty:
         * firmware falls through to the disk once the CD is removed or not
         * bootable.  Once the system disk holds a partition table (the
         * model's fact), the disks come first, unless this start boots
         * from the CD once (start --boot-once cdrom). */
        bool cd_first = !b->model->disk_has_os || b->env->boot_once_cdrom;
        int boot = cd_first ? 1 : (int) vm->n_disks + 1;
        for (size_t i = 0; i < vm->n_cdroms && b->r >= 0; i++) {
                const struct vm_cdrom *cd = &vm->cdroms[i];
                char node[96];
                snprintf(node, sizeof node, "cd-%s", cd->name);
                if (cd->path) {
                        _cleanup_free_ char *p = vm_path(b, cd->path);
                        addf(b, "-blockdev", "driver=file,node-name=%s-file,filename=%s,read-only=on", node, p);
                        addf(b, "-blockdev", "driver=raw,node-name=%s,file=%s-file,read-only=on", node, node);
                }
                add_block_device(b, node, cd->bus, true, boot++, !cd->path);
        }
        if (!cd_first)
                boot = 1;
        for (size_t i = 0; i < vm->n_disks && b->r >= 0; i++) {
                const struct vm_disk *d = &vm->disks[i];
                char node[96];
                snprintf(node, sizeof node, "disk-%s", d->name);
                _cleanup_free_ char *p = vm_path(b, d->path);
                const char *ro = d->readonly ? ",read-only=on" : "";
                char io[64], enc[160] = "";
                disk_io_opts(b, i, io, sizeof io);
                if (d->key_file || d->key_prompt) {
                        /* LUKS: QEMU reads the key from the file itself; it never appears on the command line.
                         * A typed passphrase waits in the run dir until QEMU has read it. */
                        char kname[96];
                        snprintf(kname, sizeof kname, "key-disk-%s", d->name);
                        int kfd = b->env->key_fds && i < b->env->n_key_fds ? b->env->key_fds[i] : -1;
                        _cleanup_free_ char *k = NULL;
                        if (kfd < 0 || !d->key_file)
                                k = d->key_prompt ? run_path(b, kname) : vm_path(b, d->key_file);
                        else if (asprintf(&k, "/proc/self/fd/%d", kfd) < 0)
                                k = NULL;
                        addf(b, "-object", "secret,id=sec-%s,file=%s", node, k ? k : "");
                        snprintf(enc, sizeof enc, ",encrypt.format=luks,encrypt.key-secret=sec-%s", node);
                }
                char back[160] = "";
                add_backing(b, i, node, back, sizeof back);
                /* discard=unmap frees host space when the guest trims; detect-zeroes turns zero writes into it. */
                addf(b, "-blockdev", "driver=file,node-name=%s-file,filename=%s%s,discard=unmap%s", node, p, io, ro);
                addf(b, "-blockdev", "driver=%s,node-name=%s,file=%s-file,discard=unmap,detect-zeroes=unmap%s%s%s",
                     d->format, node, node, enc, back, ro);
                add_block_device(b, node, d->bus, false, boot++, false);
        }
}

static const char *nic_device(enum vm_nic_model m) {
        switch (m) {
        case VM_NIC_E1000E: return "e1000e";
        case VM_NIC_RTL8139: return "rtl8139";
        default: return "virtio-net-pci";
        }
}

static void add_network(struct builder *b) {
        const struct vm_def *vm = b->vm;
        for (size_t i = 0; i < vm->n_nics && b->r >= 0; i++) {
                const struct vm_nic *n = &vm->nics[i];
                if (n->mode == VM_NET_NONE)
                        continue;
                int pfd = b->env->nic_fds && i < b->env->n_nic_fds ? b->env->nic_fds[i] : -1;
                if (n->mode == VM_NET_ISOLATED || n->mode == VM_NET_BRIDGE) {
                        /* The monitor's hub port (one frame per datagram) or the tap it
                         * made (src/net); without a monitor (phyllo argv) the fd shows as -1. */
                        if (n->mode == VM_NET_ISOLATED)
                                addf(b, "-netdev", "dgram,id=net-%s,local.type=fd,local.str=%d", n->name, pfd);
                        else
                                addf(b, "-netdev", "tap,id=net-%s,fd=%d", n->name, pfd);
                } else if (pfd >= 0) {
                        /* passt holds the other end and does the forwards itself. */
                        addf(b, "-netdev", "stream,id=net-%s,server=off,addr.type=fd,addr.str=%d", n->name, pfd);
                } else {
                        _cleanup_free_ char *fwd = strdup("");
                        for (size_t f = 0; fwd && f < n->forwards.n; f++) {
                                /* "tcp:2222:22" -> hostfwd=tcp:127.0.0.1:2222-:22: loopback only unless asked. */
                                struct value_forward fw;
                                if (value_forward_parse(n->forwards.v[f], &fw) < 0) {
                                        b->r = phy_error_usage(b->err,
                                                             "VM '%s', network '%s': bad forward '%s'; use tcp:HOSTPORT:GUESTPORT",
                                                             vm->name, n->name, n->forwards.v[f]);
                                        return;
                                }
                                _cleanup_free_ char *rule = qemu_hostfwd(&fw);
                                char *nf = NULL;
                                if (!rule || asprintf(&nf, "%s,hostfwd=%s", fwd, rule) < 0)
                                        nf = NULL;
                                free(fwd);
                                fwd = nf;
                        }
                        if (!fwd) {
                                b->r = phy_error_set(b->err, ENOMEM, "out of memory");
                                return;
                        }
                        addf(b, "-netdev", "user,id=net-%s%s", n->name, fwd);
                }
                const char *dev = nic_device(n->model);
                /* A kernel booted directly never boots from the network: no
                 * iPXE option ROM for the firmware to load and run (under
                 * TCG ~0.1 s of CPU before the guest's first word; bench/). */
                if (need_device(b, dev))
                        addf(b, "-device", "%s,id=nic-%s,netdev=net-%s%s%s%s", dev, n->name, n->name,
                             n->mac[0] ? ",mac=" : "", n->mac, vm->kernel ? ",romfile=" : "");
        }
        /* q35's pcie.0 takes no hot-plug: empty root ports for 'phyllo net nic add' (src/net/hotplug.c). */
        if (strstr(vm->machine, "q35") && need_device(b, "pcie-root-port"))
                for (unsigned k = 0; k < QEMU_HOTPLUG_PORTS; k++)
                        addf(b, "-device", "pcie-root-port,id=phy-hotplug%u,chassis=%u", k, 200 + k);
}

static void add_display(struct builder *b) {
        const struct vm_def *vm = b->vm;
        bool gl = vm_def_gl(vm);
        switch (vm->gpu) {
        case VM_GPU_STD:
                add_device(b, "VGA", "VGA,id=video0");
                break;
        case VM_GPU_VIRTIO:
                add_device(b, "virtio-vga", "virtio-vga,id=video0");
                break;
        case VM_GPU_VIRGL:
                /* Not blob=true,hostmem=: no property tells whether QEMU's
                 * virglrenderer has blob resources, and Debian 12's has not
                 * (docs/host.md, "Which QEMU"). */
                add_device(b, "virtio-vga-gl", "virtio-vga-gl,id=video0");
                break;
        default:
                break;
        }
        const char *render = b->env->host ? host_render_node(b->env->host) : NULL;
        switch (vm->display) {
        case VM_DISPLAY_SPICE: {
                _cleanup_free_ char *p = b->env->spice_sock ? qemu_opt_escape(b->env->spice_sock)
                                                            : run_path(b, "spice.sock");
                _cleanup_free_ char *rn = render ? qemu_opt_escape(render) : NULL;
                if (gl && !render) {
                        b->r = phy_error_set(b->err, ENODEV,
                                             "VM '%s' wants 3D (virgl) over SPICE, but this host has no GPU render node "
                                             "(/dev/dri/renderD*); use --gpu virtio or --display gtk",
                                             vm->name);
                        return;
                }
                addf(b, "-spice", "unix=on,addr=%s,disable-ticketing=on%s%s", p, gl ? ",gl=on,rendernode=" : "",
                     gl ? rn : "");
                add_virtio_serial(b);
                add(b, "-chardev");
                add(b, "spicevmc,id=vdagent0,name=vdagent");
                add(b, "-device");
                add(b, "virtserialport,bus=vser0.0,chardev=vdagent0,name=com.redhat.spice.0");
                add(b, "-display");
                add(b, "none");
                break;
        }
        case VM_DISPLAY_GTK:
                if (need_display(b, "gtk"))
                        addf(b, "-display", "gtk%s", gl ? ",gl=on" : "");
                break;
        case VM_DISPLAY_SDL:
                if (need_display(b, "sdl"))
                        addf(b, "-display", "sdl%s", gl ? ",gl=on" : "");
                break;
        case VM_DISPLAY_VNC:
                /* Loopback only: a VNC console must never be reachable from the network. */
                add(b, "-vnc");
                add(b, "127.0.0.1:0,to=99");
                add(b, "-display");
                add(b, "none");
                break;
        default:
                add(b, "-display");
                add(b, "none");
                break;
        }
}

static void add_input(struct builder *b) {
        const struct vm_def *vm = b->vm;
        bool graphical = vm->display != VM_DISPLAY_NONE && vm->display != VM_DISPLAY_UNSET;
        /* The pointer and keyboard only where a display can drive them, as
         * for the USB tablet: without one nothing sends them events, and the
         * guest still probes them and loads their drivers (Debian's installer
         * under TCG: 1.7% of its guest instructions to its first screen;
         * bench/README.md, "What the profile's devices cost"). */
        if (vm->input == VM_INPUT_VIRTIO && graphical) {
                add_device(b, "virtio-tablet-pci", "virtio-tablet-pci,id=input0");
                add_device(b, "virtio-keyboard-pci", "virtio-keyboard-pci,id=input1");
        }
        /* An xHCI controller for the tablet, any USB device passed through and
         * the SPICE redirection channels. */
        if ((vm->input == VM_INPUT_USB_TABLET && graphical) || vm->usb.n > 0 || vm->usb_redirect > 0) {
                add_device(b, "qemu-xhci", "qemu-xhci,id=usb0");
                b->have_xhci = true;
        }
        if (vm->input == VM_INPUT_USB_TABLET && graphical && need_device(b, "usb-tablet"))
                add2(b, "-device", "usb-tablet,id=input0,bus=usb0.0");
        for (size_t i = 0; i < vm->usb.n && b->r >= 0; i++) {
                /* By VENDOR:PRODUCT or BUS-PORT; the id matches 'phyllo usb detach' (src/dev). */
                char id[40];
                _cleanup_free_ char *o = NULL;
                qemu_usb_id(vm->usb.v[i], id);
                if ((b->r = qemu_usb_host_opts(vm->usb.v[i], id, &o, b->err)) < 0) {
                        phy_error_prefix(b->err, "VM '%s'", vm->name);
                        return;
                }
                if (need_device(b, "usb-host"))
                        addf(b, "-device", "%s", o);
        }
        /* USB devices of the viewer's machine, over the SPICE connection
         * (remote-viewer's "USB device selection"); the profile refused
         * redirect > 0 without SPICE. */
        for (unsigned i = 0; i < vm->usb_redirect && vm->display == VM_DISPLAY_SPICE; i++) {
                if (!need_device(b, "usb-redir"))
                        return;
                addf(b, "-chardev", "spicevmc,id=usbredir%u,name=usbredir", i);
                addf(b, "-device", "usb-redir,id=usbredir%u,chardev=usbredir%u,bus=usb0.0", i, i);
        }
}

const char *qemu_argv_audio(const struct vm_def *vm, const struct qemu_argv_env *env, char *why, size_t len) {
        if (len)
                why[0] = '\0';
        if (vm->sound == VM_SOUND_NONE || vm->sound == VM_SOUND_UNSET)
                return NULL;
        /* The audio backend follows the display: SPICE carries sound to its
         * client; a local window plays through PulseAudio (or PipeWire's
         * pulse server) when QEMU's user can reach one; headless drops it.
         * Sound never stops a start: without a way out it plays into none. */
        const char *want = vm->display == VM_DISPLAY_SPICE ? "spice"
                         : vm_display_is_window(vm->display) ? "pa" : NULL;
        if (!want)
                return "none";
        char lack[512];
        if (env->caps && qemu_caps_lacks(env->caps, vm->name, "audio", want, lack, sizeof lack)) {
                snprintf(why, len, "%s", lack);
                return "none";
        }
        if (env->caps && !qemu_caps_has_audiodev(env->caps, want)) {
                snprintf(why, len, "QEMU (%s) has no '%s' audio driver", env->caps->binary ? env->caps->binary : "qemu",
                         want);
                return "none";
        }
        if (strcmp(want, "pa") == 0 && !env->audio_server) {
                snprintf(why, len, "%s", env->audio_why ? env->audio_why : "no sound server was looked for");
                return "none";
        }
        return want;
}

static void add_sound(struct builder *b) {
        const struct vm_def *vm = b->vm;
        char why[600];
        const char *backend = qemu_argv_audio(vm, b->env, why, sizeof why);
        if (!backend)
                return;
        if (why[0])
                warn(b, "VM '%s' has no sound (-audiodev none): %s", vm->name, why);
        if (strcmp(backend, "pa") == 0) {
                _cleanup_free_ char *server = qemu_opt_escape(b->env->audio_server);
                if (!server) {
                        b->r = phy_error_set(b->err, ENOMEM, "out of memory");
                        return;
                }
                addf(b, "-audiodev", "pa,id=snd0,server=unix:%s", server);
        } else
                addf(b, "-audiodev", "%s,id=snd0", backend);
        switch (vm->sound) {
        case VM_SOUND_VIRTIO:
                add_device(b, "virtio-sound-pci", "virtio-sound-pci,id=sound0,audiodev=snd0");
                break;
        case VM_SOUND_AC97:
                add_device(b, "AC97", "AC97,id=sound0,audiodev=snd0");
                break;
        default:
                add_device(b, "ich9-intel-hda", "ich9-intel-hda,id=sound0");
                add_device(b, "hda-duplex", "hda-duplex,id=sound0-codec0,bus=sound0.0,audiodev=snd0");
                break;
        }
}

static void add_tpm(struct builder *b) {
        const struct vm_def *vm = b->vm;
        if (vm->tpm == VM_TPM_EMULATED) {
                if (b->env->tpm_fd >= 0)
                        addf(b, "-chardev", "socket,id=chrtpm,fd=%d,server=off", b->env->tpm_fd);
                else {
                        _cleanup_free_ char *p = run_path(b, "swtpm.sock");
                        addf(b, "-chardev", "socket,id=chrtpm,path=%s", p);
                }
                add(b, "-tpmdev");
                add(b, "emulator,id=tpm0,chardev=chrtpm");
        } else if (vm->tpm == VM_TPM_PASSTHROUGH) {
                add(b, "-tpmdev");
                add(b, "passthrough,id=tpm0,path=/dev/tpm0,cancel-path=/sys/class/tpm/tpm0/device/cancel");
        } else
                return;
        add_device(b, "tpm-crb", "tpm-crb,id=tpm-crb0,tpmdev=tpm0");
}

/* Shared folders (issue 4): 9p through QEMU's own server (readonly=on is
 * enforced there); virtiofs through virtiofsd, which needs the guest RAM
 * in a shared memfd so that the daemon can map it. */
static void add_shares(struct builder *b) {
        const struct vm_def *vm = b->vm;
        bool vfs = false;
        for (size_t i = 0; i < vm->n_shares && b->r >= 0; i++) {
                const struct vm_share *s = &vm->shares[i];
                if (s->type != VM_SHARE_VIRTIOFS) {
                        _cleanup_free_ char *p = vm_path(b, s->path);
                        addf(b, "-virtfs", "local,id=share%zu,path=%s,mount_tag=%s,security_model=mapped-xattr%s", i, p,
                             s->tag, s->readonly ? ",readonly=on" : "");
                        continue;
                }
                if (!vfs) {
                        addf(b, "-object", "memory-backend-memfd,id=mem,size=%lluk,share=on",
                             (unsigned long long) (vm->memory / 1024));
                        add2(b, "-numa", "node,memdev=mem");
                        vfs = true;
                }
                int fd = b->env->share_fds && i < b->env->n_share_fds ? b->env->share_fds[i] : -1;
                if (fd >= 0)
                        addf(b, "-chardev", "socket,id=vfs%zu,fd=%d", i, fd);
                else {
                        _cleanup_free_ char *p = NULL;
                        if (asprintf(&p, "vfs-%zu.sock", i) < 0) {
                                b->r = phy_error_set(b->err, ENOMEM, "out of memory");
                                return;
                        }
                        _cleanup_free_ char *rp = run_path(b, p);
                        addf(b, "-chardev", "socket,id=vfs%zu,path=%s", i, rp);
                }
                if (need_device(b, "vhost-user-fs-pci"))
                        addf(b, "-device", "vhost-user-fs-pci,id=share%zu,chardev=vfs%zu,tag=%s", i, i, s->tag);
        }
}

static void add_misc(struct builder *b) {
        const struct vm_def *vm = b->vm;
        if (vm->rng == VM_ON && need_device(b, "virtio-rng-pci")) {
                add2(b, "-object", "rng-random,id=rng0,filename=/dev/urandom");
                add2(b, "-device", "virtio-rng-pci,id=rng0-dev,rng=rng0");
        }
        if (vm->balloon == VM_ON && need_device(b, "virtio-balloon-pci")) {
                /* Free page reporting hands memory the guest freed back to the host. */
                bool fpr = !b->env->caps || qemu_caps_has_prop(b->env->caps, "virtio-balloon-pci", "free-page-reporting");
                addf(b, "-device", "virtio-balloon-pci,id=balloon0%s", fpr ? ",free-page-reporting=on" : "");
        }
        /* A guest's kernel panic reaches QEMU (GUEST_PANICKED, reason
         * guest-panic) instead of a silent hang; vmcoreinfo gives a guest
         * memory dump the kernel's crash notes.  Both in 7.2 already. */
        if (!b->env->caps || qemu_caps_has_device(b->env->caps, "pvpanic"))
                add2(b, "-device", "pvpanic,id=panic0");
        if (!b->env->caps || qemu_caps_has_device(b->env->caps, "vmcoreinfo"))
                add2(b, "-device", "vmcoreinfo");
        add_shares(b);
}

/* ---- passthrough (issue 6, src/dev) ---- */

static const char *passthrough_rom(const struct vm_def *vm, const char *addr) {
        for (size_t i = 0; i < vm->passthrough_roms.n; i++)
                if (strncmp(vm->passthrough_roms.v[i], addr, 12) == 0 && vm->passthrough_roms.v[i][12] == '=')
                        return vm->passthrough_roms.v[i] + 13;
        return NULL;
}

/* Index of the passthrough entry holding function 0 of addr's slot, or -1. */
static ssize_t slot_leader(const struct vm_def *vm, const char *addr) {
        for (size_t i = 0; i < vm->passthrough.n; i++)
                if (strncmp(vm->passthrough.v[i], addr, 10) == 0 && vm->passthrough.v[i][11] == '0')
                        return (ssize_t) i;
        return -1;
}

static void add_passthrough(struct builder *b) {
        const struct vm_def *vm = b->vm;
        for (size_t i = 0; i < vm->passthrough.n && b->r >= 0; i++) {
                const char *a = vm->passthrough.v[i];
                if (!need_device(b, "vfio-pci"))
                        return;
                bool gpu = false;
                for (size_t g = 0; b->env->host && g < b->env->host->n_gpus; g++)
                        gpu = gpu || strcmp(b->env->host->gpus[g].address, a) == 0;
                const char *rom = passthrough_rom(vm, a);
                _cleanup_free_ char *rome = rom ? vm_path(b, rom) : NULL;     /* escaped once */
                /* The functions of one host device stay one multifunction device
                 * behind their own root port, as the guest driver expects. */
                ssize_t lead = slot_leader(vm, a);
                char where[64] = "";
                if (lead >= 0) {
                        if ((size_t) lead == i)
                                addf(b, "-device", "pcie-root-port,id=hostport%zu,chassis=%zu", i, 100 + i);
                        snprintf(where, sizeof where, ",bus=hostport%zd,addr=0x0.%c%s", lead, a[11],
                                 (size_t) lead == i ? ",multifunction=on" : "");
                }
                /* x-vga: legacy VGA ranges for a GPU booted by SeaBIOS; UEFI needs none. */
                addf(b, "-device", "vfio-pci,id=hostdev%zu,host=%s%s%s%s%s", i, a, where,
                     gpu && vm->firmware == VM_FW_BIOS ? ",x-vga=on" : "", rome ? ",romfile=" : "", rome ? rome : "");
        }
        /* ramfb (the boot display of a vGPU) is a property of QEMU's
         * vfio-pci-nohotplug only: vfio-pci refuses it ("Property
         * 'vfio-pci.ramfb' not found"), so a displayed mdev is that type. */
        const char *mdev_type = vm->mdev_display == VM_ON ? "vfio-pci-nohotplug" : "vfio-pci";
        for (size_t i = 0; i < vm->mdevs.n && b->r >= 0; i++)
                if (need_device(b, mdev_type))
                        addf(b, "-device", "%s,id=mdev%zu,sysfsdev=/sys/bus/mdev/devices/%s%s", mdev_type, i,
                             vm->mdevs.v[i], vm->mdev_display == VM_ON ? ",display=on,ramfb=on" : "");
}

static void add_boot(struct builder *b) {
        const struct vm_def *vm = b->vm;
        if (!vm->kernel)
                return;
        /* -kernel and -initrd are plain file names to QEMU (no option parsing). */
        _cleanup_free_ char *k = vm_path_plain(b, vm->kernel);
        addf(b, "-kernel", "%s", k);
        if (vm->initrd) {
                _cleanup_free_ char *i = vm_path_plain(b, vm->initrd);
                addf(b, "-initrd", "%s", i);
        }
        if (vm->append)
                addf(b, "-append", "%s", vm->append);
}

/* An unattended install run (vm_install_apply) ends at the guest's first
 * reboot: the installer is done, or (Windows) setup has copied itself and the
 * answer to the disk.  The monitor then deletes the answer file, the
 * definition loses [install] and the VM starts again from its disk. */
static void add_install(struct builder *b) {
        if (b->vm->install_run)
                add(b, "-no-reboot");
}

int qemu_argv_build(const struct vm_model *model, const struct qemu_argv_env *env, strv *ret_argv,
                    strv *ret_warnings, phy_error *err) {
        _cleanup_strv_ strv argv = { 0 };
        const struct vm_def *vm = &model->vm;
        struct builder b = { .vm = vm, .model = model, .env = env, .argv = &argv, .warnings = ret_warnings, .err = err };
        b.kvm = qemu_argv_use_kvm(env);

        const char *qemu = env->tools && env->tools->qemu ? env->tools->qemu : "qemu-system-x86_64";
        add(&b, qemu);
        addf(&b, "-name", "guest=%s,debug-threads=on", vm->name);
        if (vm->uuid[0])
                addf(&b, "-uuid", "%s", vm->uuid);
        /* Only the devices the model names: no default NIC, VGA, floppy or CD. */
        add(&b, "-nodefaults");
        add(&b, "-no-user-config");
        add_machine(&b);
        add_firmware(&b);
        add_cpu(&b);
        add_chardevs(&b);
        add_disks(&b);
        add_network(&b);
        add_display(&b);
        add_input(&b);
        add_sound(&b);
        add_tpm(&b);
        add_misc(&b);
        add_passthrough(&b);
        add_boot(&b);
        add_install(&b);
        /* Seccomp: QEMU may not exec, change privileges or scheduling, or use obsolete syscalls. */
        add(&b, "-sandbox");
        /* A window runs the toolkit and the window system's client inside
         * QEMU, and they fork (GTK and SDL autolaunch a D-Bus session bus
         * without one; Mesa with gl=on): spawn=deny kills QEMU with SIGSYS
         * at start (gtk and sdl, with or without gl=on, under Xvfb), so that
         * one filter is left out there. */
        bool window = vm_display_is_window(vm->display);
        add(&b, window ? "on,obsolete=deny,elevateprivileges=deny,resourcecontrol=deny"
                       : "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
        add(&b, "-msg");
        add(&b, "timestamp=on");
        if (env->paused)
                add(&b, "-S");
        if (env->incoming)
                add2(&b, "-incoming", env->incoming);
        if (b.r < 0)
                return b.r;
        *ret_argv = argv;
        argv = (strv) { 0 };
        return 0;
}

char *qemu_hostfwd(const struct value_forward *f) {
        char *s = NULL;
        if (asprintf(&s, "%s:%s:%u-:%u", f->proto, value_forward_addr(f), f->host_port, f->guest_port) < 0)
                return NULL;
        return s;
}

int qemu_usb_host_opts(const char *spec, const char *id, char **ret, phy_error *err) {
        if (!value_usb_id_valid(spec))
                return phy_error_usage(err, "'%s' is not a USB device: use VENDOR:PRODUCT in hex (046d:c52b) or "
                                     "BUS-PORT (1-2, 3-1.4; see lsusb -t)", spec);
        int r;
        if (value_usb_is_busport(spec)) {
                const char *dash = strchr(spec, '-');
                r = asprintf(ret, "usb-host,id=%s,bus=usb0.0,hostbus=%.*s,hostport=%s", id, (int) (dash - spec), spec,
                             dash + 1);
        } else {
                unsigned vid, pid;
                if (sscanf(spec, "%4x:%4x", &vid, &pid) != 2)
                        return phy_error_usage(err, "'%s' is not a USB VENDOR:PRODUCT", spec);
                r = asprintf(ret, "usb-host,id=%s,bus=usb0.0,vendorid=0x%04x,productid=0x%04x", id, vid, pid);
        }
        return r < 0 ? phy_error_set(err, ENOMEM, "out of memory") : 0;
}

void qemu_usb_id(const char *spec, char out[static 40]) {
        snprintf(out, 40, "usb-%.32s", spec);
        for (char *c = out + 4; *c; c++)
                if (*c == ':' || *c == '-' || *c == '.')
                        *c = '_';
}

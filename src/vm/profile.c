/* SPDX-License-Identifier: MIT */
/*
 * The profiles (the Phyllome VM model): a definition plus a profile plus the
 * host's budget gives a complete, checked model for the argv builder.
 */
#include "profile.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qemu/caps.h"
#include "cleanup.h"
#include "fileio.h"
#include "host/host.h"

#define KiB 1024ULL
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)

/* ---- helpers ------------------------------------------------------------ */

/* host_render_node() without depending on the host module's object: the
 * first GPU with a render node. */
static const char *render_node(const struct host_facts *h) {
        for (size_t i = 0; h && i < h->n_gpus; i++)
                if (h->gpus[i].render_node)
                        return h->gpus[i].render_node;
        return NULL;
}

/* NULL caps means "assume QEMU has everything". */
static bool caps_device(const struct qemu_caps *caps, const char *type) {
        return !caps || strv_contains(&caps->devices, type);
}

static bool display_can_gl(enum vm_display d, const struct host_facts *h) {
        return vm_display_is_window(d) || (d == VM_DISPLAY_SPICE && render_node(h));
}

static int merr(const struct vm_def *m, phy_error *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int merr(const struct vm_def *m, phy_error *err, const char *fmt, ...) {
        char msg[900];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (m->path)
                return phy_error_usage(err, "%s: %s", m->path, msg);
        return phy_error_usage(err, "%s", msg);
}

static int mark(struct vm_def *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int mark(struct vm_def *m, const char *fmt, ...) {
        char name[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(name, sizeof name, fmt, ap);
        va_end(ap);
        if (strv_contains(&m->defaulted, name))
                return 0;
        return strv_push(&m->defaulted, name);
}

static bool is_defaulted(const struct vm_def *m, const char *name) {
        return strv_contains(&m->defaulted, name);
}

/* Fills field with value when unset and records name. */
#define FILL(m, field, unset, value, ...) do {                                  \
                if ((field) == (unset)) {                                       \
                        (field) = (value);                                      \
                        if (mark(m, __VA_ARGS__) < 0)                           \
                                return -ENOMEM;                                 \
                }                                                               \
        } while (0)
#define TRI(b) ((b) ? VM_ON : VM_OFF)

/* Sizes in messages: "4 GiB", "1536 MiB", else the file's own notation. */
/* A memory figure of a budget message, in one unit: GiB when whole, else
 * MiB (rounded down), never the K of an odd total. */
static void mib(uint64_t v, char *buf, size_t len) {
        if (v && v % GiB == 0)
                snprintf(buf, len, "%llu GiB", (unsigned long long) (v / GiB));
        else
                snprintf(buf, len, "%llu MiB", (unsigned long long) (v / MiB));
}

static void sz(uint64_t v, char *buf, size_t len) {
        if (v && v % GiB == 0)
                snprintf(buf, len, "%llu GiB", (unsigned long long) (v / GiB));
        else if (v && v % MiB == 0)
                snprintf(buf, len, "%llu MiB", (unsigned long long) (v / MiB));
        else
                format_size(v, buf, len);
}

/* A stable MAC for a NIC whose definition has none: FNV-1a of the VM's
 * identity and the NIC name, in QEMU's 52:54:00 range. */
static void derive_mac(const struct vm_def *m, const char *nic, char mac[18]) {
        uint64_t h = 0xcbf29ce484222325ULL;
        const char *parts[] = { m->uuid[0] ? m->uuid : m->name, "\n", nic };
        for (size_t p = 0; p < ELEMENTSOF(parts); p++)
                for (const unsigned char *c = (const unsigned char *) parts[p]; *c; c++)
                        h = (h ^ *c) * 0x100000001b3ULL;
        snprintf(mac, 18, "52:54:00:%02x:%02x:%02x", (unsigned) (h >> 16) & 0xff,
                 (unsigned) (h >> 8) & 0xff, (unsigned) h & 0xff);
}

static bool ends_with(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- filling ------------------------------------------------------------ */

static int fill(struct vm_def *m, const struct vm_profile *p, const struct host_facts *host,
                const struct qemu_caps *caps) {
        bool drivers = false;
        for (size_t i = 0; i < m->n_cdroms; i++)
                if (strcmp(m->cdroms[i].name, "drivers") == 0)
                        drivers = true;

        if (!m->machine) {
                if (!(m->machine = strdup("q35")) || mark(m, "machine.type") < 0)
                        return -ENOMEM;
        }
        FILL(m, m->hyperv, VM_UNSET, TRI(p->hyperv), "machine.hyperv");
        FILL(m, m->kvm_hidden, VM_UNSET, VM_OFF, "machine.kvm-hidden");
        FILL(m, m->rtc_localtime, VM_UNSET, TRI(p->rtc_localtime), "machine.rtc");
        FILL(m, m->balloon, VM_UNSET, TRI(p->balloon), "machine.balloon");
        FILL(m, m->rng, VM_UNSET, TRI(p->rng), "machine.rng");
        FILL(m, m->agent, VM_UNSET, TRI(p->agent), "machine.agent");
        FILL(m, m->input, VM_INPUT_UNSET, p->input, "machine.input");

        /* Sized from the budget: the profile's figure, capped to what VMs get. */
        unsigned cores = p->cores;
        if (host && host->vm_cpus_max && cores > host->vm_cpus_max)
                cores = host->vm_cpus_max;
        /* The OS's own minimum wins over the budget while the host has that
         * many CPUs at all: vCPUs time-share host CPUs, a guest below its
         * minimum does not install (Windows 11 on a 2-CPU host). */
        if (p->min_cores && cores < p->min_cores && (!host || host->cpus >= p->min_cores))
                cores = p->min_cores;
        FILL(m, m->cores, 0u, cores, "cpu.cores");
        FILL(m, m->threads, 0u, 1u, "cpu.threads");
        uint64_t mem = p->memory;
        if (host && host->vm_mem_max && mem > host->vm_mem_max)
                mem = host->vm_mem_max / MiB * MiB;
        FILL(m, m->memory, 0, mem, "memory.size");

        /* A direct kernel boot without a request for UEFI takes the fastest
         * correct path, no firmware stage (under TCG booting through OVMF's
         * EFI stub took 8 s against 4.7 s); Windows 11 always needs UEFI. */
        FILL(m, m->firmware, VM_FW_UNSET, m->kernel && !p->require_secure_boot_tpm ? VM_FW_BIOS : VM_FW_UEFI,
             "firmware.type");
        FILL(m, m->secure_boot, VM_UNSET, TRI(p->secure_boot && m->firmware == VM_FW_UEFI), "firmware.secure-boot");
        /* Secure Boot's variable store is protected by SMM. */
        FILL(m, m->smm, VM_UNSET, TRI(p->smm || m->secure_boot == VM_ON), "machine.smm");

        for (size_t i = 0; i < m->n_disks; i++) {
                struct vm_disk *k = &m->disks[i];
                if (!k->format) {
                        bool raw = k->path && (ends_with(k->path, ".raw") || ends_with(k->path, ".img"));
                        if (!(k->format = strdup(raw ? "raw" : "qcow2")) || mark(m, "disk.%s.format", k->name) < 0)
                                return -ENOMEM;
                }
                if (!k->path) {
                        if (asprintf(&k->path, "disk-%s.%s", k->name,
                                     strcmp(k->format, "raw") == 0 ? "img" : "qcow2") < 0) {
                                k->path = NULL;
                                return -ENOMEM;
                        }
                        if (mark(m, "disk.%s.path", k->name) < 0)
                                return -ENOMEM;
                }
                FILL(m, k->size, 0, p->disk_size, "disk.%s.size", k->name);
                FILL(m, k->bus, VM_BUS_UNSET, drivers ? p->disk_bus_drivers : p->disk_bus, "disk.%s.bus", k->name);
        }
        for (size_t i = 0; i < m->n_cdroms; i++)
                FILL(m, m->cdroms[i].bus, VM_BUS_UNSET, VM_BUS_SATA, "cdrom.%s.bus", m->cdroms[i].name);
        /* virtiofs: a real POSIX file system for the guest; 9p where the definition asks. */
        for (size_t i = 0; i < m->n_shares; i++)
                FILL(m, m->shares[i].type, VM_SHARE_UNSET, VM_SHARE_VIRTIOFS, "share.%s.type", m->shares[i].tag);
        for (size_t i = 0; i < m->n_nics; i++) {
                struct vm_nic *n = &m->nics[i];
                FILL(m, n->mode, VM_NET_UNSET, VM_NET_USER, "network.%s.mode", n->name);
                FILL(m, n->model, VM_NIC_UNSET, drivers ? p->nic_drivers : p->nic, "network.%s.model", n->name);
                if (!n->mac[0]) {
                        derive_mac(m, n->name, n->mac);
                        if (mark(m, "network.%s.mac", n->name) < 0)
                                return -ENOMEM;
                }
        }

        FILL(m, m->display, VM_DISPLAY_UNSET, p->display, "display.type");
        bool can_gl = display_can_gl(m->display, host);
        enum vm_gpu gpu = can_gl && caps_device(caps, "virtio-vga-gl") ? p->gpu_gl : p->gpu;
        /* No display, no GPU: nothing shows its picture, and a guest with a
         * DRM driver still sets up a framebuffer console on it and draws
         * every console line there (Debian's installer under TCG: 5% of its
         * guest instructions to its first screen, and more of QEMU's time;
         * bench/README.md).  The guest's console is the serial one; [gpu]
         * type = std or virtio gives one back (screenshots of such a VM). */
        if (m->display == VM_DISPLAY_NONE)
                gpu = VM_GPU_NONE;
        FILL(m, m->gpu, VM_GPU_UNSET, gpu, "gpu.type");
        FILL(m, m->gl, VM_UNSET, TRI(m->gpu == VM_GPU_VIRGL && can_gl), "display.gl");
        /* No display, no sound card: the sound goes where the picture does
         * (SPICE's client, the window's sound server), so without a display
         * it would play into QEMU's 'none' backend, heard by no one. */
        FILL(m, m->sound, VM_SOUND_UNSET,
             m->display == VM_DISPLAY_NONE ? VM_SOUND_NONE
             : caps_device(caps, "virtio-sound-pci") ? p->sound : p->sound_fallback,
             "sound.type");
        FILL(m, m->tpm, VM_TPM_UNSET, p->tpm, "tpm.type");
        /* Two redirection channels with SPICE, as virt-manager adds: a USB stick
         * and a webcam from the viewer's machine, without touching the host's USB. */
        if (!m->usb_redirect_set) {
                m->usb_redirect = m->display == VM_DISPLAY_SPICE && caps_device(caps, "usb-redir") ? 2 : 0;
                m->usb_redirect_set = true;
                if (mark(m, "usb.redirect") < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* ---- checks ------------------------------------------------------------- */

/* The QEMU device each choice needs, to refuse early with a clear message. */
struct need {
        bool when;
        const char *device;
        const char *what;
        const char *instead;
};

static int check_caps(const struct vm_def *m, const struct qemu_caps *caps, phy_error *err) {
        if (!caps)
                return 0;
        if (!strv_contains(&caps->machines, m->machine))
                return merr(m, err, "QEMU (%s) has no machine type '%s' ([machine] type); use q35",
                            caps->binary ? caps->binary : "qemu-system-x86_64", m->machine);
        bool disk_bus[8] = { false };
        for (size_t i = 0; i < m->n_disks; i++)
                disk_bus[m->disks[i].bus] = true;
        bool nic[4] = { false };
        for (size_t i = 0; i < m->n_nics; i++)
                nic[m->nics[i].model] = true;
        const struct need needs[] = {
                { m->gpu == VM_GPU_STD, "VGA", "[gpu] type = std", "none" },
                { m->gpu == VM_GPU_VIRTIO, "virtio-vga", "[gpu] type = virtio", "std" },
                { m->gpu == VM_GPU_VIRGL, "virtio-vga-gl", "[gpu] type = virgl", "virtio" },
                { m->sound == VM_SOUND_VIRTIO, "virtio-sound-pci", "[sound] type = virtio", "hda" },
                { m->sound == VM_SOUND_HDA, "ich9-intel-hda", "[sound] type = hda", "none" },
                { m->sound == VM_SOUND_AC97, "AC97", "[sound] type = ac97", "hda" },
                { m->tpm == VM_TPM_EMULATED || m->tpm == VM_TPM_PASSTHROUGH, "tpm-crb", "[tpm]", "none" },
                { m->usb_redirect > 0, "usb-redir", "[usb] redirect", "0" },
                { nic[VM_NIC_VIRTIO], "virtio-net-pci", "a network with model = virtio", "e1000e" },
                { nic[VM_NIC_E1000E], "e1000e", "a network with model = e1000e", "virtio" },
                { nic[VM_NIC_RTL8139], "rtl8139", "a network with model = rtl8139", "e1000e" },
                { disk_bus[VM_BUS_VIRTIO], "virtio-blk-pci", "a disk with bus = virtio", "sata" },
                { disk_bus[VM_BUS_SCSI], "virtio-scsi-pci", "a disk with bus = scsi", "virtio" },
                { disk_bus[VM_BUS_NVME], "nvme", "a disk with bus = nvme", "virtio" },
        };
        char why[512];
        for (size_t i = 0; i < ELEMENTSOF(needs); i++) {
                if (!needs[i].when || strv_contains(&caps->devices, needs[i].device))
                        continue;
                /* A module not installed: name the package that brings it. */
                if (qemu_caps_lacks(caps, m->name, "device", needs[i].device, why, sizeof why))
                        return merr(m, err, "%s; or use %s instead of %s", why, needs[i].instead, needs[i].what);
                /* A device newer QEMUs have: say which (the choice itself is by capability). */
                const struct qemu_feature *f = qemu_feature_of_device(needs[i].device);
                char ver[48] = "", since[48] = "";
                if (caps->version && *caps->version)    /* "7.2.22 (Debian ...)": the number, for people */
                        snprintf(ver, sizeof ver, " (QEMU %.*s)", (int) strcspn(caps->version, " "), caps->version);
                if (f)
                        snprintf(since, sizeof since, "; QEMU %s and later have it", f->since);
                return merr(m, err, "%s needs QEMU's device '%s', which %s%s does not have%s; use %s instead",
                            needs[i].what, needs[i].device, caps->binary ? caps->binary : "this QEMU", ver, since,
                            needs[i].instead);
        }
        /* A window needs QEMU's gtk or sdl display (modules in Debian's qemu-system-gui). */
        const char *window = m->display == VM_DISPLAY_GTK ? "gtk" : m->display == VM_DISPLAY_SDL ? "sdl" : NULL;
        if (window && qemu_caps_lacks(caps, m->name, "display", window, why, sizeof why))
                return merr(m, err, "%s; or use [display] type = spice", why);
        if (window && !qemu_caps_has_display(caps, window))
                return merr(m, err, "[display] type = %s needs QEMU's %s display, which %s does not have; use spice instead",
                            window, window, caps->binary ? caps->binary : "this QEMU");
        return 0;
}

static int check(const struct vm_def *m, const struct vm_profile *p, const struct host_facts *host,
                 const struct qemu_caps *caps, phy_error *err) {
        char a[32], b[32], c[32];
        unsigned vcpus = m->cores * m->threads;

        /* Below the OS's own minimum: say whether the host budget is why. */
        if (p->min_cores && vcpus < p->min_cores) {
                if (is_defaulted(m, "cpu.cores") && host)
                        return merr(m, err, "profile %s needs at least %u vCPUs (%s's own minimum), but this "
                                    "host has only %u CPU%s; use a bigger host",
                                    p->name, p->min_cores, p->os, host->cpus, host->cpus == 1 ? "" : "s");
                return merr(m, err, "profile %s needs at least %u vCPUs (%s's own minimum), got %u "
                            "(cores %u, threads %u); set [cpu] cores = %u or more",
                            p->name, p->min_cores, p->os, vcpus, m->cores, m->threads, p->min_cores);
        }
        if (p->min_memory && m->memory < p->min_memory) {
                sz(p->min_memory, a, sizeof a);
                sz(m->memory, b, sizeof b);
                if (is_defaulted(m, "memory.size") && host) {
                        mib(m->memory, b, sizeof b);
                        mib(host->mem_total, c, sizeof c);
                        char r[32];
                        mib(host->reserve_mem, r, sizeof r);
                        return merr(m, err, "profile %s needs at least %s of memory (%s's own minimum), but "
                                    "this host's VM budget is %s (%s total, %s kept for the host); use a bigger "
                                    "host or lower reserve-memory in /etc/phyllome/host.conf",
                                    p->name, a, p->os, b, c, r);
                }
                return merr(m, err, "profile %s needs at least %s of memory (%s's own minimum), got %s; "
                            "set [memory] size = %lluG or more", p->name, a, p->os, b,
                            (unsigned long long) ((p->min_memory + GiB - 1) / GiB));
        }
        if (p->min_disk) {
                if (m->n_disks == 0)
                        return merr(m, err, "profile %s needs a system disk of at least %llu GB (%s's own "
                                    "minimum); add a [disk system] section", p->name, p->min_disk / 1000000000ULL, p->os);
                if (m->disks[0].size < p->min_disk) {
                        sz(m->disks[0].size, b, sizeof b);
                        return merr(m, err, "profile %s needs a system disk of at least %llu GB (%s's own "
                                    "minimum), but disk '%s' is %s; set its size = %lluG or more", p->name,
                                    p->min_disk / 1000000000ULL, p->os, m->disks[0].name, b,
                                    p->min_disk / 1000000000ULL);
                }
        }
        if (p->require_secure_boot_tpm) {
                if (m->firmware != VM_FW_UEFI || m->secure_boot != VM_ON)
                        return merr(m, err, "profile %s requires UEFI with Secure Boot (%s's own minimum); "
                                    "remove '[firmware] type = bios' and 'secure-boot = off', or use profile windows10",
                                    p->name, p->os);
                if (m->tpm == VM_TPM_NONE)
                        return merr(m, err, "profile %s requires a TPM 2.0 (%s's own minimum); set [tpm] "
                                    "type = emulated, or use profile windows10", p->name, p->os);
        }

        /* The host budget: what the host keeps is not for VMs. */
        /* vCPUs may exceed the budget (they time-share), not the host's CPUs. */
        if (host && host->cpus && vcpus > host->cpus)
                return merr(m, err, "the VM asks for %u vCPUs (cores %u, threads %u), more than this host's %u "
                            "CPUs; lower [cpu] cores to %u or less",
                            vcpus, m->cores, m->threads, host->cpus, host->cpus);
        if (host && host->vm_mem_max && m->memory > host->vm_mem_max) {
                char r[32];
                mib(m->memory, a, sizeof a);
                mib(host->vm_mem_max, b, sizeof b);
                mib(host->mem_total, c, sizeof c);
                mib(host->reserve_mem, r, sizeof r);
                return merr(m, err, "the VM asks for %s of memory, more than this host's VM budget of %s "
                            "(%s total, %s kept for the host); lower [memory] size (phyllo create --memory), "
                            "or reserve-memory in /etc/phyllome/host.conf", a, b, c, r);
        }
        if (m->memory < 16 * MiB) {
                sz(m->memory, a, sizeof a);
                return merr(m, err, "[memory] size is %s, too little for any OS; use at least 16M", a);
        }

        if (m->secure_boot == VM_ON && m->firmware != VM_FW_UEFI)
                return merr(m, err, "[firmware] secure-boot = on needs type = uefi");
        if (m->secure_boot == VM_ON && m->smm != VM_ON)
                return merr(m, err, "[firmware] secure-boot = on needs [machine] smm = on (SMM protects the "
                            "Secure Boot variables)");

        bool can_gl = display_can_gl(m->display, host);
        const char *why = m->display == VM_DISPLAY_SPICE ? " and the host has no render node (/dev/dri/renderD*)" : "";
        if (m->gpu == VM_GPU_VIRGL && !can_gl)
                return merr(m, err, "[gpu] type = virgl needs a display that can do GL (gtk, sdl, or spice with a "
                            "render node on the host), but [display] type is %s%s; use [gpu] type = virtio",
                            vm_display_name(m->display), why);
        if (m->gl == VM_ON && !can_gl)
                return merr(m, err, "[display] gl = on needs a display that can do GL (gtk, sdl, or spice with a "
                            "render node on the host), but [display] type is %s%s", vm_display_name(m->display), why);
        if (m->gpu == VM_GPU_VIRGL && m->gl != VM_ON)
                return merr(m, err, "[gpu] type = virgl needs [display] gl = on");

        /* Single-GPU: the host's display is gone while the VM runs, so the VM
         * cannot show its screen in a window on it. */
        if (m->single_gpu == VM_ON && m->passthrough.n == 0)
                return merr(m, err, "[passthrough] single-gpu = on needs the host's GPU in [passthrough] devices "
                            "('phyllo device attach NAME ADDRESS --single-gpu')");
        if (m->single_gpu == VM_ON && vm_display_is_window(m->display))
                return merr(m, err, "[passthrough] single-gpu = on stops the host's display, so [display] type = %s "
                            "would have nowhere to show; use type = none (the monitor on the GPU shows the VM), "
                            "spice or vnc", vm_display_name(m->display));

        if (m->usb_redirect > 0 && m->display != VM_DISPLAY_SPICE)
                return merr(m, err, "[usb] redirect = %u needs [display] type = spice (USB redirection travels over "
                            "the SPICE connection), but it is %s; use redirect = 0 or type = spice",
                            m->usb_redirect, vm_display_name(m->display));

        if (m->tpm == VM_TPM_PASSTHROUGH && host && !host->tpm_device)
                return merr(m, err, "[tpm] type = passthrough needs a TPM on the host (/dev/tpm0), and this host "
                            "has none; use type = emulated");
        if ((m->initrd || m->append) && !m->kernel)
                return merr(m, err, "[boot] initrd and append need a kernel; add kernel = PATH");
        /* A [cdrom] without a path is an empty drive (phyllo cdrom eject): media can go in while the VM runs. */
        for (size_t i = 0; i < m->n_shares; i++)
                if (!m->shares[i].path)
                        return merr(m, err, "[share %s] has no path; set path = /a/host/directory", m->shares[i].tag);
        for (size_t i = 0; i < m->n_nics; i++) {
                const struct vm_nic *n = &m->nics[i];
                if (n->mode == VM_NET_ISOLATED && !n->network)
                        return merr(m, err, "[network %s] is isolated but names no network; add network = NAME "
                                    "(VMs with the same name see each other)", n->name);
                if (n->mode == VM_NET_BRIDGE && !n->bridge)
                        return merr(m, err, "[network %s] is in bridge mode but names no bridge; add bridge = br0",
                                    n->name);
                if (n->mode != VM_NET_USER && n->forwards.n)
                        return merr(m, err, "[network %s] has forwards but mode %s; forwards need mode = user",
                                    n->name, vm_net_mode_name(n->mode));
        }
        for (size_t i = 0; i < m->n_nics; i++)
                for (size_t j = 0; j < i; j++)
                        if (strcmp(m->nics[i].mac, m->nics[j].mac) == 0)
                                return merr(m, err, "[network %s] and [network %s] have the same MAC address %s",
                                            m->nics[j].name, m->nics[i].name, m->nics[i].mac);
        return check_caps(m, caps, err);
}

int vm_model_resolve(const struct vm_def *def, const struct host_facts *host, const struct qemu_caps *caps,
                     struct vm_def *ret_model, phy_error *err) {
        if (!def->profile)
                return merr(def, err, "the definition names no profile; add 'profile = NAME' to [vm] "
                            "(one of: %s)", vm_profile_names());
        const struct vm_profile *p = vm_profile_find(def->profile);
        if (!p)
                return merr(def, err, "unknown profile '%s'; use one of: %s", def->profile, vm_profile_names());
        if (p->require_apple && !(host && host->apple))
                return merr(def, err, "profile macos is refused on this host: Apple's licence (the macOS EULA) "
                            "permits running macOS only on Apple-branded hardware, and this host's DMI vendor "
                            "is '%s', not Apple", host && host->dmi_vendor ? host->dmi_vendor : "unknown");

        _cleanup_vm_def_ struct vm_def m = { 0 };
        if (vm_def_copy(def, &m) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = fill(&m, p, host, caps);
        if (r < 0)
                return phy_error_set(err, r, "out of memory");
        r = check(&m, p, host, caps, err);
        if (r < 0)
                return r;
        *ret_model = m;
        m = (struct vm_def) { 0 };
        return 0;
}

int vm_model_warnings(const struct vm_def *m, const struct host_facts *host, strv *ret) {
        unsigned vcpus = m->cores * m->threads;
        if (!host || !host->vm_cpus_max || vcpus <= host->vm_cpus_max)
                return 0;
        _cleanup_free_ char *w = NULL;
        if (asprintf(&w, "the VM gets %u vCPUs, more than the %u CPU%s this host's budget gives VMs (%u CPUs, %u "
                     "kept for the host): CPUs are overcommitted, its vCPUs time-share the host's CPUs; lower "
                     "[cpu] cores (phyllo create --cpus) to %u for none, or reserve-cpus in /etc/phyllome/host.conf",
                     vcpus, host->vm_cpus_max, host->vm_cpus_max == 1 ? "" : "s", host->cpus, host->reserve_cpus,
                     host->vm_cpus_max) < 0)
                return -ENOMEM;
        return strv_push(ret, w);
}

/* ---- the model: the resolve step's I/O ------------------------------------ */

void vm_model_done(struct vm_model *m) {
        if (!m)
                return;
        vm_def_done(&m->vm);
        free(m->disk_direct);
        m->disk_direct = NULL;
}

/* O_DIRECT is a property of the file system holding the image: tmpfs
 * refuses it, and cache.direct=on would then fail to open. */
static bool image_allows_direct(const char *path) {
        int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return false;
        close(fd);
        return true;
}

int vm_model_make(const struct vm_def *def, const struct host_facts *host, const struct qemu_caps *caps,
                  const char *vm_dir, struct vm_model *ret, phy_error *err) {
        _cleanup_vm_model_ struct vm_model m = { 0 };
        int r = vm_model_resolve(def, host, caps, &m.vm, err);
        if (r < 0)
                return r;
        if (vm_dir) {
                if (!(m.disk_direct = calloc(m.vm.n_disks + 1, sizeof *m.disk_direct)))
                        return phy_error_set(err, ENOMEM, "out of memory");
                for (size_t i = 0; i < m.vm.n_disks; i++) {
                        _cleanup_free_ char *p = vm_path_resolve(vm_dir, m.vm.disks[i].path);
                        if (!p)
                                return phy_error_set(err, ENOMEM, "out of memory");
                        m.disk_direct[i] = image_allows_direct(p);
                }
                vm_model_probe_boot(&m, vm_dir);
        }
        *ret = m;
        m = (struct vm_model) { 0 };
        return 0;
}

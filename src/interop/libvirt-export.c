/* SPDX-License-Identifier: MIT */
/*
 * A Phyllome VM as a libvirt domain (docs/interop.md): the XML libvirt 9
 * accepts (virt-xml-validate), the disks, UEFI vars and TPM state in
 * /var/lib/libvirt's layout under the export directory:
 *
 *   DIR/NAME.xml
 *   DIR/images/NAME-DISK.qcow2         (or .img for raw)
 *   DIR/qemu/nvram/NAME_VARS.fd
 *   DIR/swtpm/UUID/tpm2/...            (libvirt's swtpm state directory)
 *
 * The XML names files under the target (where DIR will be on the libvirt
 * host; DIR itself by default).  What libvirt cannot express is reported.
 * Phyllome's own facts (the profile) ride in <metadata> under Phyllome's
 * namespace, which libvirt keeps, so an import back is lossless.
 */
#include "interop.h"

#include <dirent.h>
#include <fcntl.h>
#include <libxml/tree.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "vm/chain.h"
#include "fileio.h"
#include "lazylib.h"
#include "store/store.h"
#include "value.h"

#define PHYLLOME_NS "https://phyllome.org/xmlns/libvirt/1"

DEFINE_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)

static xmlNodePtr el(xmlNodePtr parent, const char *name, const char *content) {
        return xmlNewTextChild(parent, NULL, (const xmlChar *) name, (const xmlChar *) content);
}

static void at(xmlNodePtr n, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void at(xmlNodePtr n, const char *name, const char *fmt, ...) {
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        xmlNewProp(n, (const xmlChar *) name, (const xmlChar *) buf);
}

static void report(struct interop_report *r, const char *what, bool gv, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void report(struct interop_report *r, const char *what, bool gv, const char *fmt, ...) {
        char msg[700];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (r)
                interop_report_add(r, what, 0, INTEROP_CHANGED, gv, "%s", msg);
}

/* "vda", "sdb", "hdc": libvirt's target names per bus. */
static void target_dev(char *buf, size_t len, const char *prefix, unsigned index) {
        if (index < 26)
                snprintf(buf, len, "%s%c", prefix, 'a' + index);
        else
                snprintf(buf, len, "%s%c%c", prefix, 'a' + index / 26 - 1, 'a' + index % 26);
}

/* <disk type='file' device=DEVICE><driver name='qemu' type=FORMAT/> */
static xmlNodePtr disk_el(xmlNodePtr devs, const char *device, const char *format) {
        xmlNodePtr dk = el(devs, "disk", NULL);
        at(dk, "type", "file");
        at(dk, "device", "%s", device);
        xmlNodePtr drv = el(dk, "driver", NULL);
        at(drv, "name", "qemu");
        at(drv, "type", "%s", format);
        if (strcmp(device, "disk") == 0)
                at(drv, "discard", "unmap");
        return dk;
}

static const char *disk_ext(const char *format) {
        return strcmp(format, "raw") == 0 ? "img" : "qcow2";
}

int interop_libvirt_format(const struct vm_def *d, const struct vm_def *m, const struct interop_export_opts *o,
                           const char *disk_dir, const char *nvram, const char *log_dir,
                           struct interop_report *rep, char **ret, phy_error *err) {
        int loaded = lazy_xml_load(err);
        if (loaded < 0)
                return loaded;
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = xmlNewDoc((const xmlChar *) "1.0");
        if (!doc)
                return phy_error_set(err, ENOMEM, "out of memory");
        xmlNodePtr dom = xmlNewNode(NULL, (const xmlChar *) "domain");
        xmlDocSetRootElement(doc, dom);
        at(dom, "type", "%s", o->kvm ? "kvm" : "qemu");
        el(dom, "name", m->name);
        if (m->uuid[0])
                el(dom, "uuid", m->uuid);
        xmlNodePtr md = el(dom, "metadata", NULL);
        xmlNodePtr pv = xmlNewChild(md, NULL, (const xmlChar *) "vm", NULL);
        xmlNsPtr ns = xmlNewNs(pv, (const xmlChar *) PHYLLOME_NS, (const xmlChar *) "phyllome");
        xmlSetNs(pv, ns);
        at(pv, "profile", "%s", m->profile ? m->profile : "other");
        /* libvirt pins "q35" to its current version (pc-q35-7.2): the VM's own word. */
        at(pv, "machine", "%s", m->machine ? m->machine : "q35");

        char buf[64];
        snprintf(buf, sizeof buf, "%llu", (unsigned long long) (m->memory / 1024));
        at(el(dom, "memory", buf), "unit", "KiB");
        at(el(dom, "currentMemory", buf), "unit", "KiB");
        /* The project's shape: guest RAM in a shared memfd (virtiofs needs it). */
        xmlNodePtr mb = el(dom, "memoryBacking", NULL);
        at(el(mb, "source", NULL), "type", "memfd");
        at(el(mb, "access", NULL), "mode", "shared");
        snprintf(buf, sizeof buf, "%u", m->cores * m->threads);
        at(el(dom, "vcpu", buf), "placement", "static");

        /* <os> */
        xmlNodePtr os = el(dom, "os", NULL);
        bool uefi = m->firmware == VM_FW_UEFI;
        if (uefi)
                at(os, "firmware", "efi");
        xmlNodePtr type = el(os, "type", "hvm");
        at(type, "arch", "x86_64");
        at(type, "machine", "%s", m->machine ? m->machine : "q35");
        if (uefi) {
                xmlNodePtr fw = el(os, "firmware", NULL);
                xmlNodePtr f = el(fw, "feature", NULL);
                at(f, "enabled", "%s", m->secure_boot == VM_ON ? "yes" : "no");
                at(f, "name", "secure-boot");
                if (m->secure_boot == VM_ON) {
                        f = el(fw, "feature", NULL);
                        at(f, "enabled", "yes");
                        at(f, "name", "enrolled-keys");
                }
                xmlNodePtr ld = el(os, "loader", NULL);
                at(ld, "secure", "%s", m->secure_boot == VM_ON ? "yes" : "no");
                if (nvram)
                        el(os, "nvram", nvram);
        }
        if (m->kernel) {
                el(os, "kernel", m->kernel);
                if (m->initrd)
                        el(os, "initrd", m->initrd);
                if (m->append)
                        el(os, "cmdline", m->append);
        }

        /* <features> */
        xmlNodePtr feat = el(dom, "features", NULL);
        el(feat, "acpi", NULL);
        el(feat, "apic", NULL);
        if (m->hyperv == VM_ON) {
                xmlNodePtr hv = el(feat, "hyperv", NULL);
                at(hv, "mode", "custom");
                static const char *const set[] = { "relaxed", "vapic", "spinlocks", "vpindex", "runtime", "synic",
                                                   "stimer", "reset", "frequencies", "reenlightenment", "tlbflush",
                                                   "ipi" };
                for (size_t i = 0; i < ELEMENTSOF(set); i++) {
                        xmlNodePtr h = el(hv, set[i], NULL);
                        at(h, "state", "on");
                        if (strcmp(set[i], "spinlocks") == 0)
                                at(h, "retries", "8191");
                }
        }
        if (m->kvm_hidden == VM_ON)
                at(el(el(feat, "kvm", NULL), "hidden", NULL), "state", "on");
        at(el(feat, "smm", NULL), "state", "%s", m->smm == VM_ON ? "on" : "off");

        /* <cpu> */
        xmlNodePtr cpu = el(dom, "cpu", NULL);
        if (m->cpu_model) {
                at(cpu, "mode", "custom");
                at(cpu, "match", "exact");
                _cleanup_free_ char *spec = strdup(m->cpu_model);
                if (!spec)
                        return phy_error_set(err, ENOMEM, "out of memory");
                char *save = NULL, *tok = strtok_r(spec, ",", &save);
                xmlNodePtr model = el(cpu, "model", tok);
                at(model, "fallback", "forbid");
                while ((tok = strtok_r(NULL, ",", &save))) {
                        if (tok[0] != '+' && tok[0] != '-') {
                                report(rep, "[cpu] model", true, "the CPU option '%s' has no libvirt form and is "
                                       "left out", tok);
                                continue;
                        }
                        xmlNodePtr f = el(cpu, "feature", NULL);
                        at(f, "policy", "%s", tok[0] == '+' ? "require" : "disable");
                        at(f, "name", "%s", tok + 1);
                }
        } else
                at(cpu, "mode", "%s", o->kvm ? "host-passthrough" : "maximum");
        xmlNodePtr topo = el(cpu, "topology", NULL);
        at(topo, "sockets", "1");
        at(topo, "dies", "1");
        at(topo, "cores", "%u", m->cores);
        at(topo, "threads", "%u", m->threads);

        at(el(dom, "clock", NULL), "offset", "%s", m->rtc_localtime == VM_ON ? "localtime" : "utc");
        el(dom, "on_poweroff", "destroy");
        el(dom, "on_reboot", "restart");
        el(dom, "on_crash", "destroy");
        xmlNodePtr pm = el(dom, "pm", NULL);
        at(el(pm, "suspend-to-mem", NULL), "enabled", "no");
        at(el(pm, "suspend-to-disk", NULL), "enabled", "no");

        /* <devices> */
        xmlNodePtr devs = el(dom, "devices", NULL);
        unsigned n_vd = 0, n_sd = 0, n_hd = 0;
        for (size_t i = 0; i < m->n_disks; i++) {
                const struct vm_disk *k = &m->disks[i];
                xmlNodePtr dk = disk_el(devs, "disk", k->format);
                if (disk_dir)
                        at(el(dk, "source", NULL), "file", "%s/%s-%s.%s", disk_dir, m->name, k->name,
                           disk_ext(k->format));
                else
                        at(el(dk, "source", NULL), "file", "%s", k->path);
                enum vm_bus bus = k->bus;
                if (bus == VM_BUS_NVME) {
                        report(rep, "[disk] bus", true, "disk '%s' on NVMe moves to virtio (libvirt 9 has no NVMe "
                               "disk bus)", k->name);
                        bus = VM_BUS_VIRTIO;
                }
                xmlNodePtr tg = el(dk, "target", NULL);
                char dev[8];
                if (bus == VM_BUS_VIRTIO)
                        target_dev(dev, sizeof dev, "vd", n_vd++);
                else if (bus == VM_BUS_IDE)
                        target_dev(dev, sizeof dev, "hd", n_hd++);
                else
                        target_dev(dev, sizeof dev, "sd", n_sd++);
                at(tg, "dev", "%s", dev);
                at(tg, "bus", "%s", vm_bus_name(bus));
                if (k->readonly)
                        el(dk, "readonly", NULL);
                at(el(dk, "alias", NULL), "name", "ua-disk-%s", k->name);
                if (k->key_file || k->key_prompt)
                        report(rep, "[disk] key", false, "disk '%s' is LUKS-encrypted: libvirt needs its secret "
                               "(virsh secret-define) and an <encryption> element added by hand", k->name);
        }
        for (size_t i = 0; i < m->n_cdroms; i++) {
                const struct vm_cdrom *cd = &m->cdroms[i];
                xmlNodePtr dk = disk_el(devs, "cdrom", "raw");
                if (cd->path)   /* an empty drive has no <source> */
                        at(el(dk, "source", NULL), "file", "%s", cd->path);
                xmlNodePtr tg = el(dk, "target", NULL);
                char dev[8];
                if (cd->bus == VM_BUS_IDE)
                        target_dev(dev, sizeof dev, "hd", n_hd++);
                else
                        target_dev(dev, sizeof dev, "sd", n_sd++);
                at(tg, "dev", "%s", dev);
                at(tg, "bus", "%s", vm_bus_name(cd->bus));
                el(dk, "readonly", NULL);
                at(el(dk, "alias", NULL), "name", "ua-cdrom-%s", cd->name);
                if (cd->path && cd->path[0] != '/' && rep)
                        interop_report_add(rep, "[cdrom] path", 0, INTEROP_NOTE, false, "the ISO '%s' is named "
                                           "relative to the VM's directory; copy it beside the domain", cd->path);
        }
        if (m->n_cdroms && rep)
                interop_report_add(rep, "[cdrom]", 0, INTEROP_NOTE, false, "ISOs are referenced where they are, not "
                                   "copied");
        if (m->usb_redirect || m->usb.n || m->input == VM_INPUT_USB_TABLET) {
                xmlNodePtr c = el(devs, "controller", NULL);
                at(c, "type", "usb");
                at(c, "model", "qemu-xhci");
        }
        for (size_t i = 0; i < m->n_disks; i++)
                if (m->disks[i].bus == VM_BUS_SCSI) {
                        xmlNodePtr c = el(devs, "controller", NULL);
                        at(c, "type", "scsi");
                        at(c, "model", "virtio-scsi");
                        break;
                }
        for (size_t i = 0; i < m->n_nics; i++) {
                const struct vm_nic *n = &m->nics[i];
                if (n->mode == VM_NET_NONE) {
                        report(rep, "[network] mode", true, "NIC '%s' is disconnected (mode none): libvirt gets no "
                               "interface for it", n->name);
                        continue;
                }
                xmlNodePtr ifc = el(devs, "interface", NULL);
                if (n->mode == VM_NET_BRIDGE) {
                        at(ifc, "type", "bridge");
                        at(el(ifc, "source", NULL), "bridge", "%s", n->bridge);
                } else if (n->mode == VM_NET_ISOLATED) {
                        at(ifc, "type", "network");
                        at(el(ifc, "source", NULL), "network", "%s", n->network);
                        report(rep, "[network] mode", false, "NIC '%s' is on Phyllome's isolated network '%s': it "
                               "becomes the libvirt network of that name, which must be defined there "
                               "(an isolated one: <forward> left out)", n->name, n->network);
                } else
                        at(ifc, "type", "user");
                at(el(ifc, "mac", NULL), "address", "%s", n->mac);
                at(el(ifc, "model", NULL), "type", "%s", vm_nic_model_name(n->model));
                /* libvirt 9.0's user networking is slirp without forwards (passt
                 * and <portForward> came with 9.2): they ride in <metadata>. */
                for (size_t f = 0; f < n->forwards.n; f++) {
                        xmlNodePtr fw = xmlNewChild(pv, ns, (const xmlChar *) "forward", NULL);
                        at(fw, "nic", "%s", n->name);
                        at(fw, "spec", "%s", n->forwards.v[f]);
                        report(rep, "[network] forward", false, "NIC '%s': the port forward %s is kept in "
                               "<metadata> only (libvirt 9.0's user networking has no forwards; passt's "
                               "<portForward> needs libvirt 9.2)", n->name, n->forwards.v[f]);
                }
                at(el(ifc, "alias", NULL), "name", "ua-net-%s", n->name);
        }
        /* The serial console, logged as phyllo logs shows it. */
        xmlNodePtr ser = el(devs, "serial", NULL);
        at(ser, "type", "pty");
        if (log_dir) {
                xmlNodePtr lg = el(ser, "log", NULL);
                at(lg, "file", "%s/%s-serial0.log", log_dir, m->name);
                at(lg, "append", "off");
        }
        at(el(ser, "target", NULL), "port", "0");
        xmlNodePtr con = el(devs, "console", NULL);
        at(con, "type", "pty");
        at(el(con, "target", NULL), "type", "serial");
        if (m->agent == VM_ON) {
                xmlNodePtr ch = el(devs, "channel", NULL);
                at(ch, "type", "unix");
                xmlNodePtr t = el(ch, "target", NULL);
                at(t, "type", "virtio");
                at(t, "name", "org.qemu.guest_agent.0");
        }
        bool spice = m->display == VM_DISPLAY_SPICE;
        if (spice) {
                xmlNodePtr ch = el(devs, "channel", NULL);
                at(ch, "type", "spicevmc");
                xmlNodePtr t = el(ch, "target", NULL);
                at(t, "type", "virtio");
                at(t, "name", "com.redhat.spice.0");
        }
        if (m->input == VM_INPUT_VIRTIO) {
                xmlNodePtr in = el(devs, "input", NULL);
                at(in, "type", "tablet");
                at(in, "bus", "virtio");
                in = el(devs, "input", NULL);
                at(in, "type", "keyboard");
                at(in, "bus", "virtio");
        } else {
                xmlNodePtr in = el(devs, "input", NULL);
                at(in, "type", "tablet");
                at(in, "bus", "usb");
        }
        if (m->tpm == VM_TPM_EMULATED || m->tpm == VM_TPM_PASSTHROUGH) {
                xmlNodePtr t = el(devs, "tpm", NULL);
                at(t, "model", "tpm-crb");
                xmlNodePtr be = el(t, "backend", NULL);
                if (m->tpm == VM_TPM_EMULATED) {
                        at(be, "type", "emulator");
                        at(be, "version", "2.0");
                } else {
                        at(be, "type", "passthrough");
                        at(el(be, "device", NULL), "path", "/dev/tpm0");
                }
        }
        switch (m->display) {
        case VM_DISPLAY_SPICE: {
                xmlNodePtr g = el(devs, "graphics", NULL);
                at(g, "type", "spice");
                at(el(g, "listen", NULL), "type", "none");
                if (m->gl == VM_ON)
                        at(el(g, "gl", NULL), "enable", "yes");
                break;
        }
        case VM_DISPLAY_VNC: {
                xmlNodePtr g = el(devs, "graphics", NULL);
                at(g, "type", "vnc");
                at(g, "autoport", "yes");
                xmlNodePtr l = el(g, "listen", NULL);
                at(l, "type", "address");
                at(l, "address", "127.0.0.1");
                break;
        }
        case VM_DISPLAY_SDL:
        case VM_DISPLAY_GTK: {
                xmlNodePtr g = el(devs, "graphics", NULL);
                at(g, "type", "sdl");
                if (m->gl == VM_ON)
                        at(el(g, "gl", NULL), "enable", "yes");
                if (m->display == VM_DISPLAY_GTK)
                        report(rep, "[display] type", false, "the GTK window becomes an SDL window (libvirt has no "
                               "GTK display)");
                break;
        }
        default:
                break;
        }
        if (m->sound == VM_SOUND_HDA || m->sound == VM_SOUND_AC97 || m->sound == VM_SOUND_VIRTIO) {
                xmlNodePtr s = el(devs, "sound", NULL);
                at(s, "model", "%s", m->sound == VM_SOUND_AC97 ? "ac97" : "ich9");
                if (m->sound == VM_SOUND_VIRTIO) {
                        report(rep, "[sound] type", true, "virtio sound becomes ICH9 HD Audio under libvirt (9.0 "
                               "has no virtio sound); the VM's own choice rides in <metadata>");
                        at(pv, "sound", "virtio");
                }
        }
        {
                xmlNodePtr v = el(devs, "video", NULL);
                xmlNodePtr vm = el(v, "model", NULL);
                switch (m->gpu) {
                case VM_GPU_VIRTIO:
                        at(vm, "type", "virtio");
                        break;
                case VM_GPU_VIRGL:
                        at(vm, "type", "virtio");
                        at(el(vm, "acceleration", NULL), "accel3d", "yes");
                        break;
                case VM_GPU_NONE:
                        at(vm, "type", "none");
                        break;
                default:
                        at(vm, "type", "vga");
                        break;
                }
        }
        for (unsigned i = 0; spice && i < m->usb_redirect; i++) {
                xmlNodePtr r = el(devs, "redirdev", NULL);
                at(r, "bus", "usb");
                at(r, "type", "spicevmc");
        }
        for (size_t i = 0; i < m->passthrough.n; i++) {
                const char *a = m->passthrough.v[i];
                unsigned dm, b, s, f;
                if (sscanf(a, "%x:%x:%x.%x", &dm, &b, &s, &f) != 4)
                        continue;
                xmlNodePtr h = el(devs, "hostdev", NULL);
                at(h, "mode", "subsystem");
                at(h, "type", "pci");
                at(h, "managed", "yes");
                xmlNodePtr ad = el(el(h, "source", NULL), "address", NULL);
                at(ad, "domain", "0x%04x", dm);
                at(ad, "bus", "0x%02x", b);
                at(ad, "slot", "0x%02x", s);
                at(ad, "function", "0x%x", f);
                for (size_t j = 0; j < m->passthrough_roms.n; j++) {
                        const char *e = m->passthrough_roms.v[j], *eq = strchr(e, '=');
                        if (eq && (size_t) (eq - e) == strlen(a) && strncmp(e, a, strlen(a)) == 0)
                                at(el(h, "rom", NULL), "file", "%s", eq + 1);
                }
        }
        for (size_t i = 0; i < m->usb.n; i++) {
                const char *u = m->usb.v[i];
                if (value_usb_is_busport(u)) {
                        report(rep, "[usb] devices", true, "the USB device at port %s has no libvirt form (libvirt "
                               "names host USB devices by vendor:product or bus/device number) and is left out", u);
                        continue;
                }
                xmlNodePtr h = el(devs, "hostdev", NULL);
                at(h, "mode", "subsystem");
                at(h, "type", "usb");
                at(h, "managed", "yes");
                xmlNodePtr src = el(h, "source", NULL);
                at(el(src, "vendor", NULL), "id", "0x%.4s", u);
                at(el(src, "product", NULL), "id", "0x%.4s", u + 5);
        }
        for (size_t i = 0; i < m->mdevs.n; i++) {
                xmlNodePtr h = el(devs, "hostdev", NULL);
                at(h, "mode", "subsystem");
                at(h, "type", "mdev");
                at(h, "model", "vfio-pci");
                if (m->mdev_display == VM_ON)
                        at(h, "display", "on");
                at(el(el(h, "source", NULL), "address", NULL), "uuid", "%s", m->mdevs.v[i]);
        }
        for (size_t i = 0; i < m->n_shares; i++) {
                const struct vm_share *s = &m->shares[i];
                xmlNodePtr fs = el(devs, "filesystem", NULL);
                at(fs, "type", "mount");
                at(fs, "accessmode", "%s", s->type == VM_SHARE_VIRTIOFS ? "passthrough" : "mapped");
                at(el(fs, "driver", NULL), "type", "%s", s->type == VM_SHARE_VIRTIOFS ? "virtiofs" : "path");
                at(el(fs, "source", NULL), "dir", "%s", s->path);
                at(el(fs, "target", NULL), "dir", "%s", s->tag);
                if (s->readonly)
                        el(fs, "readonly", NULL);
        }
        if (m->rng == VM_ON) {
                xmlNodePtr r = el(devs, "rng", NULL);
                at(r, "model", "virtio");
                at(el(r, "backend", "/dev/urandom"), "model", "random");
        }
        at(el(devs, "memballoon", NULL), "model", "%s", m->balloon == VM_ON ? "virtio" : "none");
        if (m->single_gpu == VM_ON)
                report(rep, "[passthrough] single-gpu", false, "single-GPU mode (the host display stops) is "
                       "Phyllome's; libvirt needs hook scripts for it");

        xmlChar *out = NULL;
        int len = 0;
        xmlDocDumpFormatMemoryEnc(doc, &out, &len, "UTF-8", 1);
        if (!out)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* Without the XML declaration: virsh and virt-install write none. */
        const char *body = (const char *) out;
        if (strncmp(body, "<?xml", 5) == 0 && strchr(body, '\n'))
                body = strchr(body, '\n') + 1;
        *ret = strdup(body);
        xmlFree(out);
        return *ret ? 0 : phy_error_set(err, ENOMEM, "out of memory");
}

/*
 * dir made (0755) or found empty, and held open: everything below is
 * written through "/proc/PID/fd/N/...", so a rename of dir, or a symlink
 * put in its place while the disks are copied, leads nowhere else.  An
 * existing dir must be ours and writable by no one else (our own group
 * aside: a user-private group with umask 002): phyllod writes
 * as root for a client, who could otherwise plant a symlink (qemu ->
 * /etc/...) inside it between the check and the write (issue 12).
 */
static int export_dir_open(const char *dir, int *ret_fd, phy_error *err) {
        bool made = mkdir(dir, 0755) == 0;
        if (!made && errno != EEXIST)
                return phy_error_set(err, errno, "cannot create '%s': %s", dir, strerror(errno));
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return phy_error_set(err, errno == ELOOP ? ENOTDIR : errno, "'%s' is not a directory: %s", dir,
                                     strerror(errno));
        if (st.st_uid != geteuid() || (st.st_mode & S_IWOTH) || ((st.st_mode & S_IWGRP) && st.st_gid != getegid()))
                return phy_error_set(err, EPERM, "the export directory '%s' belongs to uid %u or others may write "
                                     "to it; name a new directory, which the export makes", dir,
                                     (unsigned) st.st_uid);
        int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
        if (!d) {
                if (dup_fd >= 0)
                        close(dup_fd);
                return phy_error_set(err, errno, "cannot read '%s': %s", dir, strerror(errno));
        }
        struct dirent *e;
        bool empty = true;
        while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                        empty = false;
        closedir(d);
        if (!empty)
                return phy_error_set(err, EEXIST, "the export directory '%s' is not empty; name a new one", dir);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int copy_tpm(const char *src, const char *dst, phy_error *err) {
        _cleanup_close_ int fd = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d)
                return errno == ENOENT ? 0 : phy_error_set(err, errno, "cannot read '%s': %s", src, strerror(errno));
        fd = -1;
        int r = mkdir_p(dst, 0700) < 0 ? phy_error_set(err, errno, "cannot create '%s': %s", dst, strerror(errno)) : 0;
        struct dirent *e;
        while (r >= 0 && (e = readdir(d))) {
                struct stat st;
                if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISREG(st.st_mode))
                        continue;
                _cleanup_free_ char *s = NULL, *t = NULL;
                if (asprintf(&s, "%s/%s", src, e->d_name) < 0 || asprintf(&t, "%s/%s", dst, e->d_name) < 0)
                        r = phy_error_set(err, ENOMEM, "out of memory");
                else
                        r = file_copy_at(dirfd(d), e->d_name, s, t, 0600, NULL, err);
        }
        closedir(d);
        return r;
}

int interop_libvirt_export(const struct vm_def *d, const struct vm_def *m, const char *vmdir, const char *dir,
                           const struct interop_export_opts *o, struct interop_report *rep, char **ret_xml_path,
                           phy_error *err) {
        /* libxml2 before a file is copied */
        int r = lazy_xml_load(err);
        if (r < 0)
                return r;
        _cleanup_free_ char *qemu_img = exec_find_qemu_img(o->qemu_img);
        if (!qemu_img)
                return phy_error_set(err, ENOENT, "cannot find qemu-img to copy the disks; install qemu-utils");
        _cleanup_close_ int dfd = -1;
        if ((r = export_dir_open(dir, &dfd, err)) < 0)
                return r;
        const char *target = o->target ? o->target : dir;
        _cleanup_free_ char *xml_real = NULL;
        if (asprintf(&xml_real, "%s/%s.xml", dir, m->name) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* From here on, dir is the directory held open. */
        char held[64];
        snprintf(held, sizeof held, "/proc/%d/fd/%d", (int) getpid(), dfd);
        dir = held;
        _cleanup_free_ char *images = NULL, *nvdir = NULL, *nvram = NULL, *nvram_t = NULL, *images_t = NULL,
                            *xml = NULL, *xml_path = NULL, *vars = NULL, *tpm_src = NULL, *tpm_dst = NULL;
        if (asprintf(&images, "%s/images", dir) < 0 || asprintf(&images_t, "%s/images", target) < 0 ||
            asprintf(&nvdir, "%s/qemu/nvram", dir) < 0 ||
            asprintf(&nvram, "%s/qemu/nvram/%s_VARS.fd", dir, m->name) < 0 ||
            asprintf(&nvram_t, "%s/qemu/nvram/%s_VARS.fd", target, m->name) < 0 ||
            asprintf(&xml_path, "%s/%s.xml", dir, m->name) < 0 || asprintf(&vars, "%s/OVMF_VARS.fd", vmdir) < 0 ||
            asprintf(&tpm_src, "%s/tpm", vmdir) < 0 ||
            asprintf(&tpm_dst, "%s/swtpm/%s/tpm2", dir, m->uuid[0] ? m->uuid : "UUID") < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        bool have_vars = m->firmware == VM_FW_UEFI && access(vars, R_OK) == 0;
        if ((r = interop_libvirt_format(d, m, o, images_t, m->firmware == VM_FW_UEFI ? nvram_t : NULL, target, rep,
                                        &xml, err)) < 0)
                goto fail;
        if (mkdir(images, 0755) < 0) {
                r = phy_error_set(err, errno, "cannot create '%s': %s", images, strerror(errno));
                goto fail;
        }
        for (size_t i = 0; i < m->n_disks; i++) {
                const struct vm_disk *k = &m->disks[i];
                _cleanup_free_ char *src = vm_path_resolve(vmdir, k->path), *dst = NULL;
                if (!src || asprintf(&dst, "%s/%s-%s.%s", images, m->name, k->name, disk_ext(k->format)) < 0) {
                        r = phy_error_set(err, ENOMEM, "out of memory");
                        goto fail;
                }
                if (k->key_file || k->key_prompt) {
                        r = phy_error_set_kind(err, PHY_ERR_UNSUPPORTED, ENOTSUP, "disk '%s' is encrypted; export "
                                               "to libvirt copies plain images only (decrypt it with qemu-img "
                                               "convert first)", k->name);
                        goto fail;
                }
                /* Every link of its chain checked before it is read (issue 12: QEMU's uid owns the image). */
                if ((r = vm_disk_chain_check(vmdir, m->name, m->uuid, k, src, NULL, err)) < 0)
                        goto fail;
                char *argv[] = { qemu_img, "convert", "-f", k->format, "-O", k->format, src, dst, NULL };
                char msg[1024];
                if ((r = exec_run(argv, NULL, msg, sizeof msg)) < 0) {
                        r = phy_error_set(err, -r, "cannot copy disk '%s' ('%s') into '%s': %s", k->name, src, dst,
                                          msg[0] ? msg : strerror(-r));
                        goto fail;
                }
        }
        if (m->firmware == VM_FW_UEFI && have_vars) {
                if (mkdir_p(nvdir, 0755) < 0) {
                        r = phy_error_set(err, errno, "cannot create '%s': %s", nvdir, strerror(errno));
                        goto fail;
                }
                if ((r = file_copy_atomic(vars, nvram, 0600, err)) < 0)
                        goto fail;
        } else if (m->firmware == VM_FW_UEFI && rep)
                interop_report_add(rep, "OVMF_VARS.fd", 0, INTEROP_NOTE, false, "the VM has not started yet: libvirt "
                                   "makes its UEFI vars from its template");
        if (m->tpm == VM_TPM_EMULATED) {
                if ((r = copy_tpm(tpm_src, tpm_dst, err)) < 0)
                        goto fail;
                if (rep)
                        interop_report_add(rep, "tpm", 0, INTEROP_NOTE, false, "the TPM state is in swtpm/%s/tpm2: "
                                           "libvirt reads it from its swtpm directory (/var/lib/libvirt/swtpm/%s/tpm2 "
                                           "for qemu:///system, ~/.config/libvirt/qemu/swtpm/%s/tpm2 for "
                                           "qemu:///session)", m->uuid, m->uuid, m->uuid);
        }
        if ((r = file_write_atomic(xml_path, xml, strlen(xml), 0644, err)) < 0)
                goto fail;
        *ret_xml_path = TAKE_PTR(xml_real);
        return 0;
fail:
        /* What this export made (dir was empty or new). */
        {
                _cleanup_free_ char *sw = NULL, *q = NULL;
                (void) rm_rf(images);
                if (asprintf(&q, "%s/qemu", dir) >= 0)
                        (void) rm_rf(q);
                if (asprintf(&sw, "%s/swtpm", dir) >= 0)
                        (void) rm_rf(sw);
        }
        return r;
}

/* SPDX-License-Identifier: MIT */
/* src/interop: libvirt domains (virt-install's real output, the project's
 * own shapes, hostile ones), the export's XML read back, quickemu files,
 * OVF descriptors.  Fixtures in tests/fixtures/interop (README there). */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "cleanup.h"
#include "fileio.h"
#include "interop/interop.h"

static char dir[64];

static const char *srcdir(void) {
        const char *s = getenv("PHYLLOME_TEST_SRCDIR");
        return s ? s : "tests";
}

static void touch(const char *rel, size_t size) {
        char p[256];
        snprintf(p, sizeof p, "%s/%s", dir, rel);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
                if (size && ftruncate(fd, (off_t) size) < 0)
                        perror("ftruncate");
                close(fd);
        }
}

/* A fixture with @DIR@ replaced by the test's directory (malloc'd). */
static char *fixture(const char *rel) {
        char p[512];
        snprintf(p, sizeof p, "%s/fixtures/interop/%s", srcdir(), rel);
        char *raw = NULL;
        if (file_read_all(p, 0, &raw, NULL) < 0)
                return NULL;
        size_t n = 0;
        for (const char *c = raw; (c = strstr(c, "@DIR@")); c += 5)
                n++;
        char *out = malloc(strlen(raw) + n * strlen(dir) + 1), *o = out;
        for (const char *c = raw; *c;) {
                if (strncmp(c, "@DIR@", 5) == 0) {
                        o = stpcpy(o, dir);
                        c += 5;
                } else
                        *o++ = *c++;
        }
        *o = '\0';
        free(raw);
        return out;
}

static int parse_lv(const char *rel, const struct interop_opts *o, struct interop_plan *p, phy_error *err) {
        _cleanup_free_ char *x = fixture(rel);
        if (!x)
                return phy_error_set(err, ENOENT, "no fixture %s", rel);
        return interop_libvirt_parse(rel, x, strlen(x), o, p, err);
}

static size_t count(const struct interop_plan *p, enum interop_status st, bool only_visible) {
        size_t n = 0, len = p->report.items ? json_object_array_length(p->report.items) : 0;
        for (size_t i = 0; i < len; i++) {
                json_object *it = json_object_array_get_idx(p->report.items, i), *s, *g;
                json_object_object_get_ex(it, "status", &s);
                json_object_object_get_ex(it, "guest_visible", &g);
                if (strcmp(json_object_get_string(s), interop_status_name(st)) == 0 &&
                    (!only_visible || json_object_get_boolean(g)))
                        n++;
        }
        return n;
}

static bool reported(const struct interop_plan *p, enum interop_status st, const char *element) {
        size_t len = p->report.items ? json_object_array_length(p->report.items) : 0;
        for (size_t i = 0; i < len; i++) {
                json_object *it = json_object_array_get_idx(p->report.items, i), *s, *e;
                json_object_object_get_ex(it, "status", &s);
                json_object_object_get_ex(it, "element", &e);
                if (strcmp(json_object_get_string(s), interop_status_name(st)) == 0 &&
                    strcmp(json_object_get_string(e), element) == 0)
                        return true;
        }
        return false;
}

static void diag_report(const struct interop_plan *p) {
        size_t len = p->report.items ? json_object_array_length(p->report.items) : 0;
        for (size_t i = 0; i < len; i++)
                printf("#   %s\n", json_object_to_json_string(json_object_array_get_idx(p->report.items, i)));
}

static void test_project_windows11(void) {
        char tpm[128];
        snprintf(tpm, sizeof tpm, "%s/tpm2", dir);
        mkdir(tpm, 0700);
        touch("tpm2/tpm2-00.permall", 4096);
        struct interop_opts o = { .tpm_state = tpm };
        _cleanup_interop_plan_ struct interop_plan p = { 0 };
        phy_error err = { 0 };
        int r = parse_lv("libvirt/project-windows11.xml", &o, &p, &err);
        if (!ok(r == 0, "the project's Windows 11 shape parses"))
                printf("#   %s\n", err.message);
        struct vm_def *d = &p.def;
        is_str(d->profile, "windows11", "profile from libosinfo's win/11");
        ok(d->firmware == VM_FW_UEFI && d->secure_boot == VM_ON && d->smm == VM_ON, "UEFI, Secure Boot, SMM");
        ok(d->hyperv == VM_ON && d->rtc_localtime == VM_ON && d->balloon == VM_OFF, "Hyper-V, localtime, no balloon");
        ok(d->tpm == VM_TPM_EMULATED, "tpm-crb 2.0 emulated");
        ok(d->cores == 2 && d->threads == 2 && d->memory == 8ull << 30, "2 cores x 2 threads, 8 GiB");
        ok(d->n_disks == 1 && d->disks[0].bus == VM_BUS_VIRTIO && strcmp(d->disks[0].path, "disk-system.qcow2") == 0,
           "the disk: virtio, copied to disk-system.qcow2");
        ok(d->n_cdroms == 1 && strcmp(d->cdroms[0].name, "drivers") == 0, "the virtio-win CD-ROM is [cdrom drivers]");
        ok(d->agent == VM_ON && d->display == VM_DISPLAY_SPICE && d->usb_redirect == 2, "agent, SPICE, 2 redirections");
        is_str(d->nics[0].mac, "52:54:00:6a:11:0b", "the MAC is kept");
        is_str(d->uuid, "3a6e1c52-8d4f-4b1e-9f0a-7c2d5e6f8a91", "the UUID is kept");
        bool vars = false;
        for (size_t i = 0; i < p.n_files; i++)
                vars = vars || (p.files[i].how == INTEROP_FILE && strcmp(p.files[i].dst, "OVMF_VARS.fd") == 0);
        ok(vars, "the NVRAM file is brought as OVMF_VARS.fd");
        ok(d->kvm_hidden == VM_ON, "kvm hidden: [machine] kvm-hidden = on");
        /* Without loss. */
        is_int(count(&p, INTEROP_CHANGED, false) + count(&p, INTEROP_DROPPED, false), 0,
               "imported without loss (nothing changed, nothing left out)");
        if (count(&p, INTEROP_CHANGED, false) + count(&p, INTEROP_DROPPED, false))
                diag_report(&p);
}

static void test_project_linux(void) {
        struct interop_opts o = { 0 };
        _cleanup_interop_plan_ struct interop_plan p = { 0 };
        phy_error err = { 0 };
        int r = parse_lv("libvirt/project-linux.xml", &o, &p, &err);
        if (!ok(r == 0, "the project's Linux shape parses"))
                printf("#   %s\n", err.message);
        struct vm_def *d = &p.def;
        is_str(d->profile, "linux", "profile from libosinfo's debian");
        ok(d->gpu == VM_GPU_VIRGL && d->gl == VM_ON && d->display == VM_DISPLAY_SPICE,
           "virtio-gpu with accel3d and SPICE gl: virgl, gl on");
        ok(d->sound == VM_SOUND_VIRTIO && d->balloon == VM_ON && d->rng == VM_ON, "virtio sound, balloon, rng");
        ok(d->input == VM_INPUT_VIRTIO && d->hyperv == VM_OFF && d->rtc_localtime == VM_OFF, "virtio input, UTC");
        ok(d->n_shares == 1 && d->shares[0].type == VM_SHARE_VIRTIOFS && strcmp(d->shares[0].tag, "hostshare") == 0,
           "the virtiofs filesystem is a share");
        ok(d->firmware == VM_FW_UEFI && d->secure_boot == VM_OFF, "automatic EFI firmware");
        is_int(count(&p, INTEROP_CHANGED, false) + count(&p, INTEROP_DROPPED, false), 0,
               "imported without loss (nothing changed, nothing left out)");
        if (count(&p, INTEROP_CHANGED, false) + count(&p, INTEROP_DROPPED, false))
                diag_report(&p);
}

static void test_virt_install(void) {
        struct interop_opts o = { 0 };
        phy_error err = { 0 };
        {
                _cleanup_interop_plan_ struct interop_plan p = { 0 };
                ok(parse_lv("libvirt/virt-install-w11.xml", &o, &p, &err) == 0, "virt-install's Windows 11 parses");
                ok(p.def.tpm == VM_TPM_EMULATED && p.def.secure_boot == VM_ON && p.def.hyperv == VM_ON &&
                   p.def.balloon == VM_OFF, "TPM, Secure Boot, Hyper-V, no balloon");
                is_int(count(&p, INTEROP_DROPPED, false), 0, "nothing is left out (kvm hidden is kvm-hidden)");
                ok(p.def.kvm_hidden == VM_ON, "kvm hidden");
                ok(reported(&p, INTEROP_CHANGED, "/domain/devices/tpm/backend"),
                   "the TPM state that was not given is reported (a fresh TPM)");
        }
        {
                _cleanup_interop_plan_ struct interop_plan p = { 0 };
                ok(parse_lv("libvirt/virt-install-w10.xml", &o, &p, &err) == 0, "virt-install's Windows 10 parses");
                ok(p.def.gpu == VM_GPU_STD && reported(&p, INTEROP_CHANGED, "/domain/devices/video/model"),
                   "QXL becomes std VGA, reported");
                ok(p.def.sound == VM_SOUND_HDA && reported(&p, INTEROP_CHANGED, "/domain/devices/sound"),
                   "ICH6 becomes HDA, reported");
        }
        {
                _cleanup_interop_plan_ struct interop_plan p = { 0 };
                ok(parse_lv("libvirt/virt-install-lin.xml", &o, &p, &err) == 0, "virt-install's Linux parses");
                ok(p.def.kernel && strstr(p.def.kernel, "/vmlinux") && p.def.append &&
                   strcmp(p.def.append, "console=ttyS0") == 0, "direct kernel boot");
                ok(p.def.agent == VM_ON && p.def.rng == VM_ON && p.def.balloon == VM_ON, "agent, rng, balloon");
        }
}

/* The devices and choices of a hand-made domain, each to its key. */
static void test_mapping(void) {
        const char *x =
                "<domain type='kvm'><name>odds</name><memory unit='GiB'>2</memory><vcpu>8</vcpu>"
                "<os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>"
                "<cpu mode='custom'><model>Skylake-Client</model><feature policy='require' name='vmx'/>"
                "<feature policy='disable' name='hle'/><topology sockets='2' dies='1' cores='2' threads='2'/></cpu>"
                "<clock offset='variable'/><devices>"
                "<disk type='file' device='cdrom'><target dev='sdc' bus='sata'/></disk>"
                "<interface type='bridge'><source bridge='br0'/><mac address='52:54:00:AA:BB:CC'/>"
                "<model type='e1000'/></interface>"
                "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x01' "
                "slot='0x00' function='0x1'/></source></hostdev>"
                "<hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/><product id='0xc52b'/></source>"
                "</hostdev>"
                "<filesystem type='mount' accessmode='mapped'><source dir='@S@'/><target dir='docs'/><readonly/>"
                "</filesystem>"
                "<sound model='ac97'/><video><model type='none'/></video><memballoon model='none'/>"
                "<tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>"
                "</devices></domain>";
        char share[128], *xml = NULL;
        snprintf(share, sizeof share, "%s/share", dir);
        const char *at = strstr(x, "@S@");
        if (asprintf(&xml, "%.*s%s%s", (int) (at - x), x, share, at + 3) < 0)
                return;
        struct interop_opts o = { 0 };
        _cleanup_interop_plan_ struct interop_plan p = { 0 };
        phy_error err = { 0 };
        int r = interop_libvirt_parse("odds.xml", xml, strlen(xml), &o, &p, &err);
        free(xml);
        if (!ok(r == 0, "a domain of odd devices parses"))
                printf("#   %s\n", err.message);
        struct vm_def *d = &p.def;
        is_str(d->machine, "q35", "i440FX becomes q35 ...");
        ok(reported(&p, INTEROP_CHANGED, "/domain/os/type"), "... reported");
        is_str(d->cpu_model, "Skylake-Client,+vmx,-hle", "a custom CPU model with its features");
        ok(d->cores == 4 && d->threads == 2 && reported(&p, INTEROP_CHANGED, "/domain/cpu/topology"),
           "2 sockets x 2 cores x 2 threads: 4 cores x 2 threads, reported");
        ok(reported(&p, INTEROP_CHANGED, "/domain/clock"), "a variable clock offset is reported");
        ok(d->n_cdroms == 1 && !d->cdroms[0].path && reported(&p, INTEROP_NOTE, "/domain/devices/disk"),
           "an empty CD-ROM drive is kept empty, reported (issue 19)");
        ok(d->nics[0].mode == VM_NET_BRIDGE && strcmp(d->nics[0].bridge, "br0") == 0 &&
           strcmp(d->nics[0].mac, "52:54:00:aa:bb:cc") == 0, "a bridge NIC with its MAC");
        ok(d->nics[0].model == VM_NIC_E1000E && reported(&p, INTEROP_CHANGED, "/domain/devices/interface/model"),
           "e1000 becomes e1000e, reported");
        ok(d->passthrough.n == 1 && strcmp(d->passthrough.v[0], "0000:01:00.1") == 0, "a PCI host device");
        ok(d->usb.n == 1 && strcmp(d->usb.v[0], "046d:c52b") == 0, "a USB host device by vendor:product");
        ok(d->n_shares == 1 && d->shares[0].type == VM_SHARE_9P && d->shares[0].readonly &&
           strcmp(d->shares[0].tag, "docs") == 0, "a read-only 9p share");
        ok(d->sound == VM_SOUND_AC97 && d->gpu == VM_GPU_NONE && d->balloon == VM_OFF, "ac97, no video, no balloon");
        ok(d->tpm == VM_TPM_PASSTHROUGH && reported(&p, INTEROP_CHANGED, "/domain/devices/tpm"),
           "a TIS passthrough TPM: passthrough, the interface change reported");
        ok(d->display == VM_DISPLAY_NONE && d->memory == 2ull << 30, "no graphics: headless; 2 GiB");
}

/* project-linux.xml read, its disk made one of the VM dir (its image there). */
static struct vm_def *project_linux(const struct interop_opts *o, struct interop_plan *p, phy_error *err) {
        parse_lv("libvirt/project-linux.xml", o, p, err);
        free(p->def.disks[0].path);
        p->def.disks[0].path = strdup("disk-system.qcow2");
        touch("linux-desk-system.qcow2", 0);
        return &p->def;
}

/* The export's XML read back: every field as it was. */
static void test_round_trip(void) {
        struct interop_opts o = { 0 };
        _cleanup_interop_plan_ struct interop_plan p = { 0 }, back = { 0 };
        phy_error err = { 0 };
        struct vm_def *d = project_linux(&o, &p, &err);
        d->disks[0].size = 1ull << 30;
        strv_push(&d->nics[0].forwards, "tcp:2222:22");
        strv_push(&d->passthrough, "0000:01:00.0");
        strv_push(&d->usb, "046d:c52b");
        strv_push(&d->mdevs, "4b20d080-1b54-4048-85b3-a6a62d165c01");
        d->usb_redirect_set = true;
        struct interop_export_opts eo = { .kvm = true };
        _cleanup_free_ char *xml = NULL;
        int r = interop_libvirt_format(d, d, &eo, dir, NULL, NULL, NULL, &xml, &err);
        ok(r == 0 && xml && strstr(xml, "ua-disk-system") && strstr(xml, "accel3d=\"yes\""),
           "the export's XML names the disk and keeps accel3d");
        r = interop_libvirt_parse("export", xml, strlen(xml), &o, &back, &err);
        if (!ok(r == 0, "the export's XML parses")) {
                printf("#   %s\n", err.message);
                return;
        }
        back.def.disks[0].size = d->disks[0].size;      /* (from the image, which this test has not) */
        json_object *a = vm_def_to_json(d), *b = vm_def_to_json(&back.def);
        is_str(json_object_to_json_string(b), json_object_to_json_string(a),
               "read back, the definition equals the original field by field");
        json_object_put(a);
        json_object_put(b);
        is_int(count(&back, INTEROP_CHANGED, false) + count(&back, INTEROP_DROPPED, false), 0,
               "and the way back reports no loss");
        if (count(&back, INTEROP_CHANGED, false) + count(&back, INTEROP_DROPPED, false))
                diag_report(&back);
}

/* Issue 12: forwards a domain asks for (Phyllome's metadata, libvirt's
 * <portForward>) listen on loopback only; one on another address keeps its
 * ports on loopback, and the report says so.  Every forward is listed. */
static void test_forwards(void) {
        struct interop_opts o = { 0 };
        _cleanup_interop_plan_ struct interop_plan p = { 0 }, back = { 0 };
        phy_error err = { 0 };
        struct vm_def *d = project_linux(&o, &p, &err);
        strv_push(&d->nics[0].forwards, "tcp:0.0.0.0:2222:22");
        strv_push(&d->nics[0].forwards, "udp:5353:53");
        struct interop_export_opts eo = { .kvm = true };
        _cleanup_free_ char *xml = NULL, *hostile = NULL;
        if (!ok(interop_libvirt_format(d, d, &eo, dir, NULL, NULL, NULL, &xml, &err) == 0, "exported: %s",
                err.message))
                return;
        /* A libvirt 9.2 <portForward> on every address of the host, too. */
        char *end = strstr(xml, "</interface>");
        if (!ok(end != NULL, "the export has an <interface>"))
                return;
        asprintf(&hostile, "%.*s<portForward proto='tcp' address='0.0.0.0'><range start='8080' to='80'/>"
                 "</portForward>%s", (int) (end - xml), xml, end);
        int r = interop_libvirt_parse("forwards.xml", hostile, strlen(hostile), &o, &back, &err);
        if (!ok(r == 0, "the domain parses: %s", err.message))
                return;
        const strv *f = &back.def.nics[0].forwards;
        ok(f->n == 3 && strv_contains(f, "tcp:2222:22") && strv_contains(f, "udp:5353:53") &&
           strv_contains(f, "tcp:8080:80"), "every forward listens on loopback (%zu forwards)", f->n);
        for (size_t i = 0; i < f->n; i++)
                ok(!strstr(f->v[i], "0.0.0.0"), "  not on 0.0.0.0: %s", f->v[i]);
        size_t len = back.report.items ? json_object_array_length(back.report.items) : 0, said = 0, listed = 0;
        for (size_t i = 0; i < len; i++) {
                const char *m = json_object_get_string(
                        json_object_object_get(json_object_array_get_idx(back.report.items, i), "message"));
                said += strstr(m, "listened on 0.0.0.0, which an imported domain may not choose") != NULL;
                listed += strstr(m, "the forward 'udp:5353:53'") != NULL;
        }
        is_int((long long) said, 2, "the report names both forwards moved to loopback (metadata, <portForward>)");
        is_int((long long) listed, 1, "and lists the loopback one as kept");
}

static void refused(const char *what, const char *xml, size_t len, int code, const char *want) {
        struct interop_opts o = { 0 };
        _cleanup_interop_plan_ struct interop_plan p = { 0 };
        phy_error err = { 0 };
        int r = interop_libvirt_parse("hostile.xml", xml, len == SIZE_MAX ? strlen(xml) : len, &o, &p, &err);
        ok(r == -code, "%s is refused (%s)", what, strerrorname_np(code));
        if (!ok(strstr(err.message, want) != NULL, "  naming it: %s", want))
                printf("#   got: %s\n", err.message);
}

static void test_hostile(void) {
        refused("an external entity",
                "<?xml version=\"1.0\"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n"
                "<domain><name>&x;</name></domain>", SIZE_MAX, EINVAL, "hostile.xml:2: <!DOCTYPE> is refused");
        refused("billion laughs",
                "<!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
                "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><domain><name>&c;</name></domain>", SIZE_MAX, EINVAL,
                "<!DOCTYPE> is refused");
        refused("a parameter entity", "<!DOCTYPE d [<!ENTITY % p SYSTEM \"http://127.0.0.1:9/x\"> %p;]><domain/>",
                SIZE_MAX, EINVAL, "<!DOCTYPE> is refused");
        size_t big = INTEROP_TEXT_MAX + 1;
        char *huge = malloc(big + 1);
        memset(huge, ' ', big);
        huge[big] = '\0';
        refused("a huge file", huge, big, EFBIG, "at most 1048576 are read");
        free(huge);
        refused("a NUL byte", "<domain>\0</domain>", 19, EINVAL, "NUL byte");
        refused("another root", "<vm/>", SIZE_MAX, EINVAL, "the root element is <vm>, not <domain>");
        refused("a network disk",
                "<domain><name>x</name><memory>1024</memory><os><type>hvm</type></os><devices>\n"
                "<disk type='network' device='disk'><source protocol='nbd' name='x'/></disk></devices></domain>",
                SIZE_MAX, EINVAL, "hostile.xml:2: <disk> (/domain/devices/disk)");
        refused("a disk outside the allowed directories",
                "<domain><name>x</name><memory>1024</memory><os><type>hvm</type></os><devices>\n"
                "<disk type='file' device='disk'><driver type='raw'/>\n<source file='/etc/shadow'/></disk>"
                "</devices></domain>", SIZE_MAX, EPERM,
                "hostile.xml:3: <source> (/domain/devices/disk/source): '/etc/shadow' is outside the VM's directory");
        refused("a relative kernel path",
                "<domain><name>x</name><memory>1024</memory><os><type>hvm</type><kernel>../k</kernel></os></domain>",
                SIZE_MAX, EINVAL, "<kernel> (/domain/os/kernel): the path '../k' is relative");
        refused("a bad VM name", "<domain><name>a/b</name><memory>1</memory><os/></domain>", SIZE_MAX, EINVAL,
                "'a/b' is no valid VM name");
        /* Unknown elements are reported, not dropped silently. */
        const char *w = "<domain><name>x</name><memory>1024</memory><os><type>hvm</type></os><devices>"
                        "<watchdog model='i6300esb'/><panic model='isa'/></devices><iothreads>2</iothreads></domain>";
        struct interop_opts o = { 0 };
        _cleanup_interop_plan_ struct interop_plan p = { 0 };
        phy_error err = { 0 };
        ok(interop_libvirt_parse("w.xml", w, strlen(w), &o, &p, &err) == 0, "a domain with unknown elements parses");
        ok(reported(&p, INTEROP_DROPPED, "/domain/devices/watchdog") &&
           reported(&p, INTEROP_DROPPED, "/domain/devices/panic") && reported(&p, INTEROP_DROPPED, "/domain/iothreads"),
           "each unknown element is in the report as not modelled, by its path");
}

static void test_quickemu(void) {
        char qe[256], conf[300];
        snprintf(qe, sizeof qe, "%s/qe", dir);
        mkdir(qe, 0755);
        snprintf(conf, sizeof conf, "%s/debian-12", qe);
        mkdir(conf, 0755);
        touch("qe/debian-12/disk.qcow2", 1024);
        touch("qe/debian-12/debian-12.iso", 1024);
        touch("qe/debian-12/OVMF_VARS.fd", 1024);
        _cleanup_free_ char *text = fixture("quickemu.conf");
        struct interop_opts o = { .base_dir = qe };
        phy_error err = { 0 };
        {
                _cleanup_interop_plan_ struct interop_plan p = { 0 };
                int r = interop_quickemu_parse("debian-12.conf", text, &o, &p, &err);
                if (!ok(r == 0, "quickemu.conf parses"))
                        printf("#   %s\n", err.message);
                struct vm_def *d = &p.def;
                is_str(d->name, "debian-12", "the name is the file's");
                ok(d->cores == 2 && d->memory == 2ull << 30 && d->firmware == VM_FW_UEFI, "cpu_cores, ram, EFI");
                ok(d->n_disks == 1 && d->disks[0].bus == VM_BUS_VIRTIO && d->nics[0].model == VM_NIC_VIRTIO,
                   "virtio-blk and virtio-net as quickemu gives linux");
                ok(d->n_cdroms == 1 && strcmp(d->cdroms[0].name, "install") == 0, "iso is [cdrom install]");
                ok(d->nics[0].forwards.n == 4, "port_forwards: tcp and udp each");
                ok(p.n_files == 2, "the disk and the UEFI vars are brought");
        }
        static const struct { const char *text, *want; } bad[] = {
                { "guest_os=\"linux\"\ndisk_img=\"$(id)\"\n", "x.conf:2: '$' in a value" },
                { "guest_os=linux\nrm -rf /\n", "x.conf:2: not an assignment" },
                { "ram=\"2G\"\nram=\"4G\"\n", "x.conf:2: 'ram' is set twice (first on line 1)" },
                { "disk_img=`id`\n", "x.conf:1: '`' in a value" },
                { "port_forwards=(\"8123:8123\"\n", "x.conf:1: the array of 'port_forwards' is not closed" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_interop_plan_ struct interop_plan p = { 0 };
                phy_error e = { 0 };
                int r = interop_quickemu_parse("x.conf", bad[i].text, &o, &p, &e);
                ok(r == -EINVAL && strstr(e.message, bad[i].want), "quickemu refuses: %s", bad[i].want);
                if (!strstr(e.message, bad[i].want))
                        printf("#   got: %s\n", e.message);
        }
}

static void test_ovf(void) {
        char ova[256];
        snprintf(ova, sizeof ova, "%s/ova", dir);
        mkdir(ova, 0755);
        touch("ova/tiny-disk001.vmdk", 4096);
        _cleanup_free_ char *text = fixture("virtualbox.ovf");
        struct interop_opts o = { 0 };
        phy_error err = { 0 };
        {
                _cleanup_interop_plan_ struct interop_plan p = { 0 };
                int r = interop_ovf_parse("tiny.ovf", text, strlen(text), ova, &o, &p, &err);
                if (!ok(r == 0, "VirtualBox's OVF parses"))
                        printf("#   %s\n", err.message);
                struct vm_def *d = &p.def;
                is_str(d->name, "tiny", "the name is the VirtualSystem's id");
                is_str(d->profile, "linux", "Debian_64 is the linux profile");
                ok(d->cores == 1 && d->memory == 256ull << 20, "1 CPU, 256 MiB (MegaBytes)");
                ok(d->n_disks == 1 && d->disks[0].bus == VM_BUS_SATA && p.n_files == 1 &&
                   strcmp(p.files[0].src_format, "vmdk") == 0, "one SATA disk, its VMDK to convert");
                is_str(d->nics[0].mac, "08:00:27:a1:b2:c3", "the MAC from VirtualBox's own section");
                ok(d->sound == VM_SOUND_HDA, "the sound card becomes HDA");
                ok(reported(&p, INTEROP_CHANGED, "/*/*[5]/*[3]/*[6]") ||
                   count(&p, INTEROP_CHANGED, true) >= 2, "the NIC and sound changes are reported as guest-visible");
        }
        {
                _cleanup_free_ char *evil = strdup(text);
                char *h = strstr(evil, "tiny-disk001.vmdk");
                memcpy(h, "../../etc/passwd!", 17);
                _cleanup_interop_plan_ struct interop_plan p = { 0 };
                phy_error e = { 0 };
                int r = interop_ovf_parse("evil.ovf", evil, strlen(evil), ova, &o, &p, &e);
                ok(r == -EINVAL && strstr(e.message, "<File> (/*/*[1]/*): the file '../../etc/passwd!' is not a member"),
                   "an OVF naming a file outside the appliance is refused, naming the element");
                if (r != -EINVAL)
                        printf("#   got: %s\n", e.message);
        }
        {
                /* 2^34 + 1 GiB: the product wraps around 2^64 to 1 GiB (issue 12, session 5's audit). */
                char *q = strstr(text, "<rasd:VirtualQuantity>256<"), *u = strstr(text, ">MegaBytes<");
                _cleanup_free_ char *big = NULL;
                ok(q && u && u < q, "the fixture's memory item");
                if (q && u && u < q &&
                    asprintf(&big, "%.*s>GigaBytes<%.*s<rasd:VirtualQuantity>17179869185<%s", (int) (u - text), text,
                             (int) (q - (u + 11)), u + 11, q + strlen("<rasd:VirtualQuantity>256<")) > 0) {
                        _cleanup_interop_plan_ struct interop_plan p = { 0 };
                        phy_error e = { 0 };
                        int r = interop_ovf_parse("big.ovf", big, strlen(big), ova, &o, &p, &e);
                        ok(r == -EINVAL && strstr(e.message, "memory size"),
                           "a memory size whose bytes overflow 64 bits is refused, not wrapped (%s)",
                           r == 0 ? "parsed" : e.message);
                        if (r == 0)
                                printf("#   memory became %llu bytes\n", (unsigned long long) p.def.memory);
                }
        }
}

int main(void) {
        snprintf(dir, sizeof dir, "/tmp/phyllome-test-interop.XXXXXX");
        if (!mkdtemp(dir))
                return 1;
        /* The containment rules: per user, $HOME and the Phyllome home are allowed. */
        setenv("HOME", dir, 1);
        char home[128];
        snprintf(home, sizeof home, "%s/home", dir);
        mkdir(home, 0755);
        setenv("PHYLLOME_HOME", home, 1);
        vm_paths_configure("/nonexistent-root", false);
        touch("win11.qcow2", 0);
        touch("linux.qcow2", 0);
        touch("deb.qcow2", 0);
        touch("virtio-win.iso", 0);
        touch("win11_VARS.fd", 540672);
        touch("vmlinux", 0);
        touch("initrd.img", 0);
        char share[128];
        snprintf(share, sizeof share, "%s/share", dir);
        mkdir(share, 0755);

        test_project_windows11();
        test_project_linux();
        test_virt_install();
        test_mapping();
        test_round_trip();
        test_forwards();
        test_hostile();
        test_quickemu();
        test_ovf();
        rm_rf(dir);
        return tap_done();
}

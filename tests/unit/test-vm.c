/* SPDX-License-Identifier: MIT */
/*
 * The VM definition and the profiles.  Fixtures (vmd's config regress
 * style): tests/fixtures/conf/bad/X.conf must fail to parse with exactly
 * X.err; refused/X.conf parses but the model is refused with exactly X.err;
 * good/X.conf parses, round-trips, and its model (on the test host below)
 * formats exactly as good/X.model.  PHYLLOME_UPDATE_GOLDEN=1 rewrites the
 * .model files.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <json-c/json.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "cleanup.h"
#include "fileio.h"
#include "host/host.h"
#include "qemu/caps.h"
#include "vm/profile.h"
#include "vm/keys.h"
#include "vm/vm.h"

#define GiB (1024ULL * 1024 * 1024)

static struct host_gpu test_gpu = { .address = "0000:00:02.0", .vendor_id = "8086", .device_id = "46a6",
                                    .render_node = (char *) "/dev/dri/renderD128", .iommu_group = 1 };

/* The fixtures' host: 8 CPUs, 16 GiB, 1 CPU and 1 GiB kept, an Intel GPU
 * with a render node, not Apple, no TPM. */
static struct host_facts test_host(unsigned cpus, uint64_t mem) {
        return (struct host_facts) {
                .cpu_vendor = HOST_CPU_INTEL, .cpus = cpus, .cores = cpus, .mem_total = mem,
                .kvm_present = true, .kvm_usable = true, .dmi_vendor = (char *) "Dell Inc.",
                .gpus = &test_gpu, .n_gpus = 1,
                .reserve_cpus = 1, .reserve_mem = 1 * GiB,
                .vm_cpus_max = cpus > 1 ? cpus - 1 : 1, .vm_mem_max = mem - 1 * GiB,
        };
}

static char *fixture(const char *rel) {
        char *p = NULL;
        if (asprintf(&p, "%s/fixtures/conf/%s", tap_srcdir(), rel) < 0)
                abort();
        return p;
}

static char *read_text(const char *path) {
        char *t = NULL;
        if (file_read_all(path, 0, &t, NULL) < 0)
                return NULL;
        size_t n = strlen(t);
        while (n > 0 && t[n - 1] == '\n')
                t[--n] = '\0';
        return t;
}

/* Sorted *.conf names of a fixture folder. */
static strv conf_files(const char *dir) {
        strv out = { 0 };
        _cleanup_free_ char *path = fixture(dir);
        DIR *d = opendir(path);
        if (!d)
                return out;
        for (struct dirent *de; (de = readdir(d));) {
                size_t n = strlen(de->d_name);
                if (n > 5 && strcmp(de->d_name + n - 5, ".conf") == 0)
                        strv_push(&out, de->d_name);
        }
        closedir(d);
        for (size_t i = 0; i + 1 < out.n; i++)
                for (size_t j = i + 1; j < out.n; j++)
                        if (strcmp(out.v[i], out.v[j]) > 0) {
                                char *t = out.v[i];
                                out.v[i] = out.v[j];
                                out.v[j] = t;
                        }
        return out;
}

static char *sibling(const char *dir, const char *conf, const char *ext) {
        char *p = NULL;
        if (asprintf(&p, "%s/fixtures/conf/%s/%.*s%s", tap_srcdir(), dir, (int) (strlen(conf) - 5), conf, ext) < 0)
                abort();
        return p;
}

static int parse_fixture(const char *dir, const char *name, struct vm_def *d, phy_error *err) {
        char rel[512];
        snprintf(rel, sizeof rel, "%s/%s", dir, name);
        _cleanup_free_ char *path = fixture(rel), *text = NULL;
        if (file_read_all(path, 0, &text, NULL) < 0)
                return phy_error_set(err, ENOENT, "cannot read %s", path);
        /* The basename as the file name keeps the expected messages portable. */
        return vm_def_parse(name, text, d, err);
}

static void test_bad(void) {
        _cleanup_strv_ strv files = conf_files("bad");
        ok(files.n >= 20, "bad fixtures found (%zu)", files.n);
        for (size_t i = 0; i < files.n; i++) {
                _cleanup_free_ char *errfile = sibling("bad", files.v[i], ".err");
                _cleanup_free_ char *want = read_text(errfile);
                struct vm_def d = { 0 };
                phy_error err = { 0 };
                int r = parse_fixture("bad", files.v[i], &d, &err);
                ok(r == -EINVAL, "bad/%s is refused", files.v[i]);
                is_str(err.message, want, "bad/%s: the exact message", files.v[i]);
                vm_def_done(&d);
        }
}

static void test_refused(void) {
        _cleanup_strv_ strv files = conf_files("refused");
        struct host_facts h = test_host(8, 16 * GiB);
        ok(files.n >= 10, "refused fixtures found (%zu)", files.n);
        for (size_t i = 0; i < files.n; i++) {
                _cleanup_free_ char *errfile = sibling("refused", files.v[i], ".err");
                _cleanup_free_ char *want = read_text(errfile);
                _cleanup_vm_def_ struct vm_def d = { 0 }, m = { 0 };
                phy_error err = { 0 };
                int r = parse_fixture("refused", files.v[i], &d, &err);
                if (!ok(r == 0, "refused/%s parses", files.v[i]))
                        printf("#   %s\n", err.message);
                r = vm_model_resolve(&d, &h, NULL, &m, &err);
                ok(r == -EINVAL, "refused/%s: the model is refused", files.v[i]);
                is_str(err.message, want, "refused/%s: the exact message", files.v[i]);
        }
}

/* "  # default (profile x)" markers removed: what show prints, as a plain definition. */
static char *strip_marks(const char *text) {
        char *out = strdup(text), *w = out;
        for (const char *s = text; *s;) {
                const char *mark = strstr(s, "  # default (profile ");
                const char *nl = strchr(s, '\n');
                if (mark && (!nl || mark < nl)) {
                        memcpy(w, s, (size_t) (mark - s));
                        w += mark - s;
                        s = nl ? nl : mark + strlen(mark);
                } else {
                        size_t n = nl ? (size_t) (nl - s + 1) : strlen(s);
                        memcpy(w, s, n);
                        w += n;
                        s += n;
                }
        }
        *w = '\0';
        return out;
}

static void test_good(const struct qemu_caps *caps) {
        _cleanup_strv_ strv files = conf_files("good");
        struct host_facts h = test_host(8, 16 * GiB);
        ok(files.n >= 5, "good fixtures found (%zu)", files.n);
        for (size_t i = 0; i < files.n; i++) {
                const char *f = files.v[i];
                _cleanup_vm_def_ struct vm_def d = { 0 }, d2 = { 0 }, m = { 0 }, m2 = { 0 }, again = { 0 };
                phy_error err = { 0 };
                if (!ok(parse_fixture("good", f, &d, &err) == 0, "good/%s parses", f)) {
                        printf("#   %s\n", err.message);
                        continue;
                }
                /* format -> parse -> format is stable. */
                _cleanup_free_ char *t1 = vm_def_format(&d, false);
                ok(vm_def_parse("round-trip", t1, &d2, &err) == 0, "good/%s: formatted text parses", f);
                _cleanup_free_ char *t2 = vm_def_format(&d2, false);
                is_str(t2, t1, "good/%s: format/parse round trip is stable", f);

                if (!ok(vm_model_resolve(&d, &h, caps, &m, &err) == 0, "good/%s: model resolves", f)) {
                        printf("#   %s\n", err.message);
                        continue;
                }
                _cleanup_free_ char *shown = vm_def_format(&m, true);
                _cleanup_free_ char *golden = sibling("good", f, ".model");
                if (getenv("PHYLLOME_UPDATE_GOLDEN"))
                        file_write_atomic(golden, shown, strlen(shown), 0644, NULL);
                _cleanup_free_ char *want = NULL;
                if (file_read_all(golden, 0, &want, NULL) < 0)
                        want = NULL;
                is_str(shown, want, "good/%s: the model matches good/%.*s.model", f, (int) (strlen(f) - 5), f);

                /* The model without defaults is the definition again. */
                _cleanup_free_ char *bare = vm_def_format(&m, false);
                is_str(bare, t1, "good/%s: the model minus its defaults is the definition", f);

                /* What show prints is itself a definition resolving to the same model. */
                _cleanup_free_ char *plain = strip_marks(shown);
                ok(vm_def_parse("shown", plain, &again, &err) == 0 &&
                   vm_model_resolve(&again, &h, caps, &m2, &err) == 0, "good/%s: shown text is a valid definition", f);
                _cleanup_free_ char *t3 = vm_def_format(&m2, true);
                is_str(t3, plain, "good/%s: shown text resolves to the same model, nothing defaulted", f);
                is_int(m2.defaulted.n, 0, "good/%s: nothing left to default", f);
        }
}

static int resolve_text(const char *text, const struct host_facts *h, const struct qemu_caps *caps,
                        struct vm_def *m, phy_error *err) {
        _cleanup_vm_def_ struct vm_def d = { 0 };
        int r = vm_def_parse("t.conf", text, &d, err);
        return r < 0 ? r : vm_model_resolve(&d, h, caps, m, err);
}

/* Every enum set, so the argv builder never sees UNSET. */
static bool complete(const struct vm_def *m) {
        bool okay = m->machine && m->cores && m->threads && m->memory && m->firmware && m->smm && m->hyperv &&
                    m->rtc_localtime && m->balloon && m->rng && m->agent && m->input && m->secure_boot &&
                    m->display && m->gl && m->gpu && m->sound && m->tpm && m->profile;
        for (size_t i = 0; i < m->n_disks; i++)
                okay = okay && m->disks[i].path && m->disks[i].format && m->disks[i].size && m->disks[i].bus;
        for (size_t i = 0; i < m->n_cdroms; i++)
                okay = okay && m->cdroms[i].path && m->cdroms[i].bus;
        for (size_t i = 0; i < m->n_nics; i++)
                okay = okay && m->nics[i].mode && m->nics[i].model && m->nics[i].mac[0];
        return okay;
}

static void test_windows11(void) {
        struct host_facts h = test_host(8, 16 * GiB);
        phy_error err = { 0 };
        _cleanup_vm_def_ struct vm_def m = { 0 }, md = { 0 };
        const char *base = "[vm]\nprofile = windows11\n[disk system]\n[cdrom install]\npath = /w.iso\n[network net0]\n";
        ok(resolve_text(base, &h, NULL, &m, &err) == 0, "windows11 resolves");
        ok(complete(&m), "windows11 model is complete");
        is_int(m.secure_boot, VM_ON, "windows11: Secure Boot on");
        is_int(m.smm, VM_ON, "windows11: SMM on");
        is_int(m.tpm, VM_TPM_EMULATED, "windows11: TPM emulated");
        is_int(m.hyperv, VM_ON, "windows11: Hyper-V enlightenments");
        is_int(m.rtc_localtime, VM_ON, "windows11: RTC in localtime");
        is_int(m.balloon, VM_OFF, "windows11: no balloon");
        is_int(m.firmware, VM_FW_UEFI, "windows11: UEFI");
        is_int(m.disks[0].bus, VM_BUS_SATA, "windows11 without drivers: SATA disk");
        is_int(m.nics[0].model, VM_NIC_E1000E, "windows11 without drivers: e1000e NIC");
        is_int(m.cdroms[0].bus, VM_BUS_SATA, "windows11: install CD on SATA");
        is_int(m.cores, 4, "windows11: 4 vCPUs on a big host");
        is_int(m.memory, 8 * GiB, "windows11: 8 GiB on a big host");
        is_int(m.disks[0].size, 64 * GiB, "windows11: 64G disk by default");
        ok(m.cpu_model == NULL, "cpu model left to the argv builder");
        ok(strv_contains(&m.defaulted, "firmware.secure-boot") && strv_contains(&m.defaulted, "disk.system.bus") &&
           strv_contains(&m.defaulted, "network.net0.mac"), "defaults recorded by section.key");

        _cleanup_free_ char *drv = NULL;
        if (asprintf(&drv, "%s[cdrom drivers]\npath = /virtio-win.iso\n", base) < 0)
                abort();
        ok(resolve_text(drv, &h, NULL, &md, &err) == 0, "windows11 with a driver ISO resolves");
        is_int(md.disks[0].bus, VM_BUS_VIRTIO, "windows11 with drivers: virtio disk");
        is_int(md.nics[0].model, VM_NIC_VIRTIO, "windows11 with drivers: virtio NIC");
        is_int(md.cdroms[0].bus, VM_BUS_SATA, "windows11 with drivers: install CD still on SATA");

        /* Microsoft's 64 GB is decimal: 60G (64.4e9 bytes) passes, 59G does not. */
        _cleanup_vm_def_ struct vm_def m60 = { 0 }, m59 = { 0 };
        ok(resolve_text("[vm]\nprofile = windows11\n[disk system]\nsize = 60G\n", &h, NULL, &m60, &err) == 0,
           "windows11: a 60 GiB disk is 64.4 GB, accepted");
        ok(resolve_text("[vm]\nprofile = windows11\n[disk system]\nsize = 59G\n", &h, NULL, &m59, &err) < 0,
           "windows11: a 59 GiB disk is refused");
        _cleanup_vm_def_ struct vm_def mt = { 0 };
        ok(resolve_text("[vm]\nprofile = windows11\n[disk system]\n[cpu]\ncores = 1\nthreads = 2\n", &h, NULL, &mt,
                        &err) == 0, "windows11: 1 core x 2 threads is 2 vCPUs, accepted");
}

static void test_budget(void) {
        phy_error err = { 0 };
        /* A 2-CPU / 4-GiB host: VMs get 1 vCPU and 3 GiB. */
        struct host_facts small = test_host(2, 4 * GiB);
        _cleanup_vm_def_ struct vm_def lin = { 0 }, w10 = { 0 }, w11 = { 0 }, w11b = { 0 };
        ok(resolve_text("[vm]\nprofile = linux\n", &small, NULL, &lin, &err) == 0, "linux on a small host");
        is_int(lin.cores, 1, "linux: 2 vCPUs capped to the budget of 1");
        is_int(lin.memory, 2 * GiB, "linux: 2 GiB fits the budget");
        ok(resolve_text("[vm]\nprofile = windows10\n", &small, NULL, &w10, &err) == 0, "windows10 on a small host");
        is_int(w10.memory, 3 * GiB, "windows10: 4 GiB capped to the budget of 3 GiB");
        /* The OS minimum wins over the CPU budget while the host has the CPUs:
         * 2 vCPUs on a 2-CPU host.  Only the host's own count refuses. */
        struct host_facts one = test_host(1, 16 * GiB);
        ok(resolve_text("[vm]\nprofile = windows11\n[disk system]\n", &one, NULL, &w11, &err) < 0,
           "windows11 refused on a 1-CPU host");
        is_str(err.message, "t.conf: profile windows11 needs at least 2 vCPUs (Windows 11's own minimum), but "
               "this host has only 1 CPU; use a bigger host", "the refusal names the host's CPUs");
        struct host_facts two = test_host(2, 16 * GiB);
        _cleanup_vm_def_ struct vm_def w11c = { 0 };
        ok(resolve_text("[vm]\nprofile = windows11\n[disk system]\n", &two, NULL, &w11c, &err) == 0,
           "windows11 accepted on a 2-CPU host");
        is_int(w11c.cores, 2, "windows11 on a 2-CPU host: its minimum of 2 vCPUs, above the budget of 1");
        /* Issue 19: not silently; CPUs are overcommitted with a warning. */
        _cleanup_strv_ strv warns = { 0 };
        ok(vm_model_warnings(&w11c, &two, &warns) == 0 && warns.n == 1, "windows11's 2 vCPUs over a budget of 1: a warning");
        ok(warns.n == 1 && strstr(warns.v[0], "2 vCPUs, more than the 1 CPU this host's budget gives VMs") &&
           strstr(warns.v[0], "overcommitted"), "... saying CPUs are overcommitted");
        _cleanup_strv_ strv none = { 0 };
        ok(vm_model_warnings(&lin, &small, &none) == 0 && none.n == 0, "a VM within the budget: no warning");
        struct host_facts four = test_host(4, 4 * GiB);
        ok(resolve_text("[vm]\nprofile = windows11\n[disk system]\n", &four, NULL, &w11b, &err) < 0,
           "windows11 refused on a 4-GiB host");
        is_str(err.message, "t.conf: profile windows11 needs at least 4 GiB of memory (Windows 11's own minimum), "
               "but this host's VM budget is 3 GiB (4 GiB total, 1 GiB kept for the host); use a bigger host or "
               "lower reserve-memory in /etc/phyllome/host.conf", "the memory refusal names the host budget");
        /* An odd budget is rounded down to whole MiB. */
        struct host_facts odd = test_host(8, 2 * GiB + 12345);
        _cleanup_vm_def_ struct vm_def w = { 0 };
        ok(resolve_text("[vm]\nprofile = windows10\n", &odd, NULL, &w, &err) == 0, "windows10 on an odd budget");
        is_int(w.memory, 1 * GiB, "memory capped to whole MiB of the budget");
}

static void test_macos(void) {
        phy_error err = { 0 };
        struct host_facts h = test_host(8, 16 * GiB);
        _cleanup_vm_def_ struct vm_def m = { 0 }, m2 = { 0 };
        ok(resolve_text("[vm]\nprofile = macos\n", &h, NULL, &m, &err) < 0, "macos refused on a Dell");
        ok(strstr(err.message, "Apple-branded hardware") != NULL, "the refusal explains the licence");
        h.apple = true;
        h.dmi_vendor = (char *) "Apple Inc.";
        ok(resolve_text("[vm]\nprofile = macos\n[disk system]\n", &h, NULL, &m2, &err) == 0, "macos accepted on a Mac");
        ok(complete(&m2), "macos model is complete");
}

static void test_linux_display(const struct qemu_caps *caps) {
        phy_error err = { 0 };
        struct host_facts h = test_host(8, 16 * GiB);
        _cleanup_vm_def_ struct vm_def gl = { 0 }, nogl = { 0 }, vnc = { 0 }, snd = { 0 }, gtk = { 0 };
        ok(resolve_text("[vm]\nprofile = linux\n", &h, NULL, &gl, &err) == 0, "linux with a render node");
        is_int(gl.gpu, VM_GPU_VIRGL, "spice + render node: virgl");
        is_int(gl.gl, VM_ON, "spice + render node: gl on");
        is_int(gl.sound, VM_SOUND_VIRTIO, "caps unknown: virtio sound assumed");
        is_int(gl.balloon, VM_ON, "linux: balloon on");
        is_int(gl.input, VM_INPUT_VIRTIO, "linux: virtio input");
        h.n_gpus = 0;
        ok(resolve_text("[vm]\nprofile = linux\n", &h, NULL, &nogl, &err) == 0, "linux without a render node");
        is_int(nogl.gpu, VM_GPU_VIRTIO, "spice without render node: virtio-vga");
        is_int(nogl.gl, VM_OFF, "spice without render node: gl off");
        ok(resolve_text("[vm]\nprofile = linux\n[display]\ntype = gtk\n", &h, NULL, &gtk, &err) == 0, "linux on gtk");
        is_int(gtk.gpu, VM_GPU_VIRGL, "gtk can do GL: virgl");
        ok(resolve_text("[vm]\nprofile = linux\n[display]\ntype = spice\n[gpu]\ntype = virgl\n", &h, NULL, &vnc,
                        &err) < 0, "virgl on spice without a render node refused");
        is_str(err.message, "t.conf: [gpu] type = virgl needs a display that can do GL (gtk, sdl, or spice with a "
               "render node on the host), but [display] type is spice and the host has no render node "
               "(/dev/dri/renderD*); use [gpu] type = virtio", "the message names both");
        if (caps) {
                ok(resolve_text("[vm]\nprofile = linux\n", &h, caps, &snd, &err) == 0, "linux against QEMU 7.2 caps");
                is_int(snd.sound, qemu_caps_has_device(caps, "virtio-sound-pci") ? VM_SOUND_VIRTIO : VM_SOUND_HDA,
                       "sound follows the caps (QEMU 7.2 has no virtio-sound: hda)");
                is_int(snd.sound, VM_SOUND_HDA, "QEMU 7.2: ich9 HDA");
                /* Asked for explicitly, it is refused, naming the QEMU that has it. */
                _cleanup_vm_def_ struct vm_def v = { 0 };
                ok(resolve_text("[vm]\nprofile = linux\n[sound]\ntype = virtio\n", &h, caps, &v, &err) < 0,
                   "[sound] type = virtio against QEMU 7.2 refused");
                is_str(err.message, "t.conf: [sound] type = virtio needs QEMU's device 'virtio-sound-pci', which "
                       "/usr/bin/qemu-system-x86_64 (QEMU 7.2.22) does not have; QEMU 8.2 and later have it; use hda instead",
                       "the message names this QEMU's version and the one that has it");
        }
        /* QEMU 10.0 (bookworm-backports): the profile's virtio sound. */
        _cleanup_free_ char *f10 = NULL;
        _cleanup_qemu_caps_ struct qemu_caps c10 = { 0 };
        _cleanup_vm_def_ struct vm_def s10 = { 0 }, w10 = { 0 };
        if (asprintf(&f10, "%s/fixtures/caps/qemu-10.0-debian12-backports.json", tap_srcdir()) < 0)
                abort();
        ok(qemu_caps_load_file(f10, &c10, &err) == 0, "QEMU 10.0 caps fixture loads");
        ok(resolve_text("[vm]\nprofile = linux\n", &h, &c10, &s10, &err) == 0, "linux against QEMU 10.0 caps");
        is_int(s10.sound, VM_SOUND_VIRTIO, "QEMU 10.0: virtio sound");
        ok(resolve_text("[vm]\nprofile = windows11\n[disk system]\n", &h, &c10, &w10, &err) == 0 &&
           w10.sound == VM_SOUND_HDA, "windows11 keeps HDA (virtio sound is an option there): %s", err.message);
}

static void test_profiles_all(void) {
        size_t n;
        const struct vm_profile *p = vm_profile_list(&n);
        is_int(n, 6, "six profiles");
        struct host_facts h = test_host(8, 16 * GiB);
        h.apple = true;
        for (size_t i = 0; i < n; i++) {
                char text[256];
                snprintf(text, sizeof text, "[vm]\nprofile = %s\n[disk system]\n[network net0]\n[cdrom install]\n"
                         "path = /i.iso\n", p[i].name);
                _cleanup_vm_def_ struct vm_def m = { 0 };
                phy_error err = { 0 };
                ok(resolve_text(text, &h, NULL, &m, &err) == 0 && complete(&m), "profile %s: complete model", p[i].name);
                is_int(m.rng, VM_ON, "profile %s: virtio-rng on", p[i].name);
                is_str(m.machine, "q35", "profile %s: Q35", p[i].name);
                is_int(m.firmware, VM_FW_UEFI, "profile %s: UEFI", p[i].name);
        }
        ok(vm_profile_find("other") && !vm_profile_find("dos"), "profile lookup");
}

static void test_names(void) {
        ok(vm_name_valid("web-1.example_x"), "ordinary name valid");
        ok(!vm_name_valid("") && !vm_name_valid(".") && !vm_name_valid(".."), "empty, . and .. refused");
        ok(!vm_name_valid("a/b") && !vm_name_valid("a b") && !vm_name_valid("é"), "slash, space, non-ASCII refused");
        char n64[65], n65[66];
        memset(n64, 'a', 64);
        n64[64] = '\0';
        memset(n65, 'a', 65);
        n65[65] = '\0';
        ok(vm_name_valid(n64) && !vm_name_valid(n65), "64 characters at most");
}

static void test_json(void) {
        struct host_facts h = test_host(8, 16 * GiB);
        phy_error err = { 0 };
        _cleanup_vm_def_ struct vm_def m = { 0 };
        ok(resolve_text("[vm]\nname = j\nprofile = linux\n[memory]\nsize = 1G\n[disk system]\n", &h, NULL, &m, &err) == 0,
           "json model resolves");
        json_object *o = vm_def_to_json(&m), *v = NULL, *a = NULL;
        ok(json_object_object_get_ex(o, "memory", &v) && json_object_object_get_ex(v, "size", &v) &&
           json_object_get_int64(v) == (int64_t) GiB, "memory in bytes");
        ok(json_object_object_get_ex(o, "defaulted", &a) && json_object_array_length(a) == m.defaulted.n,
           "defaulted array");
        bool cores = false, mem = false;
        for (size_t i = 0; a && i < json_object_array_length(a); i++) {
                const char *s = json_object_get_string(json_object_array_get_idx(a, i));
                cores |= strcmp(s, "cpu.cores") == 0;
                mem |= strcmp(s, "memory.size") == 0;
        }
        ok(cores && !mem, "cpu.cores defaulted, memory.size given");
        ok(json_object_object_get_ex(o, "disks", &a) && json_object_array_length(a) == 1, "disks array");
        json_object_put(o);
}

static void test_copy(void) {
        _cleanup_vm_def_ struct vm_def d = { 0 }, c = { 0 };
        phy_error err = { 0 };
        _cleanup_free_ char *path = fixture("good/full.conf"), *text = NULL;
        ok(file_read_all(path, 0, &text, NULL) == 0 && vm_def_parse("full.conf", text, &d, &err) == 0, "full parses");
        ok(vm_def_copy(&d, &c) == 0, "copy");
        _cleanup_free_ char *a = vm_def_format(&d, false);
        free(d.disks[0].path);
        d.disks[0].path = strdup("changed");
        _cleanup_free_ char *b = vm_def_format(&c, false);
        is_str(b, a, "copy is deep and equal");
        is_int(c.nics[0].forwards.n, 2, "forwards copied");
        is_str(c.usb.v[1], "1050:0407", "usb list copied");
        is_str(c.uuid, "2f1e6b7a-3c1d-4e8f-9a0b-1c2d3e4f5a6b", "uuid lower-cased");
}

static void test_home(const struct qemu_caps *caps) {
        char tmpl[] = "/tmp/phyllome-test-vm-XXXXXX";
        const char *home = mkdtemp(tmpl);
        if (!ok(home != NULL, "temporary home"))
                return;
        struct host_facts h = test_host(8, 16 * GiB);
        phy_error err = { 0 };
        _cleanup_strv_ strv names = { 0 };
        ok(vm_list(home, &names, &err) == 0 && names.n == 0, "empty home lists nothing");

        const char *defs[] = { "zeta", "alpha", "mid" };
        for (size_t i = 0; i < ELEMENTSOF(defs); i++) {
                _cleanup_vm_def_ struct vm_def d = { 0 };
                char text[160];
                snprintf(text, sizeof text, "[vm]\nname = %s\nprofile = linux\n[disk system]\nsize = 1G\n[network net0]\n",
                         defs[i]);
                ok(vm_def_parse(NULL, text, &d, &err) == 0 && vm_def_make_identity(&d, &err) == 0, "def %s", defs[i]);
                ok(vm_create(home, &d, &h, caps, NULL, false, &err) == 0, "create %s", defs[i]);
                if (err.message[0])
                        printf("#   %s\n", err.message);
        }
        strv_done(&names);
        ok(vm_list(home, &names, &err) == 0 && names.n == 3, "three VMs listed");
        ok(names.n == 3 && strcmp(names.v[0], "alpha") == 0 && strcmp(names.v[2], "zeta") == 0, "sorted by name");

        char img[512];
        snprintf(img, sizeof img, "%s/vms/alpha/disk-system.qcow2", home);
        struct stat st;
        ok(stat(img, &st) == 0 && st.st_size > 0, "qemu-img made the disk image");

        _cleanup_vm_def_ struct vm_def l = { 0 }, dup = { 0 }, bad = { 0 }, refused = { 0 };
        ok(vm_load_by_name(home, "alpha", &l, &err) == 0 && strcmp(l.name, "alpha") == 0, "load by name");
        ok(l.nics[0].mac[0] && strncmp(l.nics[0].mac, "52:54:00:", 9) == 0 && l.uuid[0], "identity stored");
        ok(vm_load_by_name(home, "nope", &dup, &err) == -ENOENT, "missing VM");
        char want[600];
        snprintf(want, sizeof want, "no VM named 'nope' (looked in %s/vms)", home);
        is_str(err.message, want, "missing VM message");

        ok(vm_create(home, &l, &h, caps, NULL, false, &err) == -EEXIST, "existing VM refused");
        ok(strstr(err.message, "already exists") != NULL, "exists message");

        /* A refused model and a failing qemu-img both leave nothing behind. */
        ok(vm_def_parse(NULL, "[vm]\nname = w\nprofile = windows11\n[memory]\nsize = 2G\n[disk system]\n", &refused,
                        &err) == 0, "windows11 def");
        ok(vm_create(home, &refused, &h, caps, NULL, false, &err) < 0, "windows11 with 2 GiB refused");
        ok(vm_def_parse(NULL, "[vm]\nname = q\nprofile = linux\n[disk system]\nsize = 1G\n", &bad, &err) == 0, "def q");
        ok(vm_create(home, &bad, &h, caps, "/bin/false", false, &err) < 0, "failing qemu-img fails the create");
        ok(strstr(err.message, "/bin/false create") != NULL, "the message names the tool: %s", err.message);
        strv_done(&names);
        ok(vm_list(home, &names, &err) == 0 && names.n == 3, "still three VMs");
        char p[512];
        snprintf(p, sizeof p, "%s/vms", home);
        size_t entries = 0;
        DIR *dd = opendir(p);
        for (struct dirent *de; dd && (de = readdir(dd));)
                entries += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
        if (dd)
                closedir(dd);
        is_int(entries, 3, "no temporary directories left");

        /* --force replaces the VM whole; a failing replacement keeps the old one. */
        free(l.disks[0].path);
        l.disks[0].path = strdup("other.qcow2");
        ok(vm_create(home, &l, &h, caps, "/bin/false", true, &err) < 0, "failing forced create");
        ok(stat(img, &st) == 0, "old VM intact after a failed forced create");
        ok(vm_create(home, &l, &h, caps, NULL, true, &err) == 0, "forced create");
        ok(stat(img, &st) < 0, "old disk gone after the forced create");

        ok(vm_delete(home, "mid", &err) == 0, "delete");
        ok(vm_delete(home, "mid", &err) == -ENOENT, "delete twice: no such VM");
        ok(vm_delete(home, "../x", &err) == -EINVAL, "delete refuses a bad name");
        strv_done(&names);
        ok(vm_list(home, &names, &err) == 0 && names.n == 2, "two VMs left");

        /* The [vm] name must match the directory. */
        char conf[512];
        snprintf(conf, sizeof conf, "%s/vms/zeta/vm.conf", home);
        const char *mism = "[vm]\nname = other\nprofile = linux\n";
        ok(file_write_atomic(conf, mism, strlen(mism), 0644, &err) == 0, "rewrite zeta");
        _cleanup_vm_def_ struct vm_def z = { 0 };
        ok(vm_load_by_name(home, "zeta", &z, &err) == -EINVAL && strstr(err.message, "name is 'other'"),
           "name mismatch refused");
        rm_rf(home);
}

/* Issue 12, finding 8: values are single lines, in the setters (every save)
 * and in the parser. */
static void test_single_lines(void) {
        struct vm_def d = { 0 };
        phy_error e = { 0 };
        snprintf(d.name, sizeof d.name, "v");
        d.append = strdup("quiet\n[share root]\npath = /\ntype = 9p");
        is_int(vm_def_check_values(&d, &e), -EINVAL, "a newline in [boot] append is refused");
        ok(strstr(e.message, "[boot] append: the value 'quiet\\n[share root]") != NULL, "... naming the key: %s", e.message);
        char tmpl[] = "/tmp/phyllome-test-lines-XXXXXX";
        _cleanup_free_ char *file = NULL;
        if (!mkdtemp(tmpl) || asprintf(&file, "%s/vm.conf", tmpl) < 0)
                abort();
        phy_error_clear(&e);
        ok(vm_def_save(&d, file, &e) == -EINVAL && access(file, F_OK) < 0, "vm_def_save refuses it and writes nothing");
        errno = 0;
        ok(vm_def_format(&d, false) == NULL && errno == EINVAL, "the formatter gives no text for it");
        free(d.append);
        d.append = NULL;
        struct vm_disk k = { .name = (char *) "data", .path = (char *) "a\x1b[2Jb.qcow2" };
        d.disks = &k;
        d.n_disks = 1;
        phy_error_clear(&e);
        ok(vm_def_check_values(&d, &e) == -EINVAL && strstr(e.message, "[disk data] path: the value 'a\\x1b[2Jb.qcow2'"),
           "an escape in [disk data] path is refused, shown escaped: %s", e.message);
        d.disks = NULL;
        d.n_disks = 0;
        vm_def_done(&d);
        struct vm_def p = { 0 };
        phy_error_clear(&e);
        ok(vm_def_parse("x.conf", "[boot]\nkernel = /k\nappend = a\rb\n", &p, &e) == -EINVAL &&
           strstr(e.message, "x.conf:3: key 'append' in section [boot]") && strstr(e.message, "control character"),
           "the parser refuses a carriage return, naming file:line and key: %s", e.message);
        vm_def_done(&p);
        rm_rf(tmpl);
}

/* Issue 12, finding 1: where a definition's files may be. */
static void test_paths(void) {
        char t[] = "/tmp/phyllome-test-paths-XXXXXX";
        if (!mkdtemp(t))
                abort();
        _cleanup_free_ char *vmdir = NULL, *allowed = NULL, *alice = NULL, *other = NULL, *link = NULL, *in = NULL;
        if (asprintf(&vmdir, "%s/home/vms/a", t) < 0 || asprintf(&allowed, "%s/al", t) < 0 ||
            asprintf(&alice, "%s/alice/f", t) < 0 || asprintf(&other, "%s/other", t) < 0 ||
            asprintf(&link, "%s/home/vms/a/out", t) < 0 || asprintf(&in, "%s/al/iso", t) < 0)
                abort();
        mkdir_p(vmdir, 0755);
        mkdir_p(allowed, 0755);
        mkdir_p(other, 0755);
        file_write_atomic(in, "x", 1, 0644, NULL);
        _cleanup_free_ char *alicedir = strndup(alice, strlen(alice) - 2);
        mkdir_p(alicedir, 0755);
        file_write_atomic(alice, "x", 1, 0644, NULL);
        symlink(other, link);
        strv allow = { 0 };
        strv_push(&allow, allowed);
        phy_error e = { 0 };
        is_int(vm_path_check(vmdir, "[disk s] path", "disk.qcow2", &allow, NULL, &e), 0, "a new file in the VM dir");
        is_int(vm_path_check(vmdir, "[cdrom i] path", in, &allow, NULL, &e), 0, "a file below an allowed directory");
        phy_error_clear(&e);
        is_int(vm_path_check(vmdir, "[disk v] path", "../../../../srv/victim", &allow, NULL, &e), -EPERM,
               "'../../../../srv/victim' is refused");
        ok(strstr(e.message, "[disk v] path: the relative path '../../../../srv/victim' leaves the VM's directory") != NULL,
           "... naming the key: %s", e.message);
        is_int(vm_path_check(vmdir, "[disk v] path", "./disk.qcow2", &allow, NULL, &e), 0,
               "'./disk.qcow2' stays inside");
        phy_error_clear(&e);
        is_int(vm_path_check(vmdir, "[disk s] path", alice, &allow, NULL, &e), -EPERM,
               "'<t>/alice/f' is not below the allowed '<t>/al' (whole components)");
        ok(strstr(e.message, "[disk s] path:") && strstr(e.message, "outside the VM's directory"), "... %s", e.message);
        phy_error_clear(&e);
        is_int(vm_path_check(vmdir, "[share x] path", "out", &allow, NULL, &e), -EPERM,
               "a symlink in the VM dir leading out is judged by where it leads");
        is_int(vm_path_check(vmdir, "[disk s] path", "/etc/shadow", &allow, NULL, &e), -EPERM, "/etc/shadow is refused");

        struct vm_def d = { 0 };
        struct vm_share sh = { .tag = (char *) "root", .path = (char *) "/" };
        d.shares = &sh;
        d.n_shares = 1;
        strv all = { 0 };
        strv_push(&all, "/tmp");
        phy_error_clear(&e);
        ok(vm_def_check_paths(&d, vmdir, &all, &e) == -EPERM && strstr(e.message, "[share root] path: '/' is the host's root"),
           "a share of '/' is refused whatever is allowed: %s", e.message);
        strv_done(&all);

        _cleanup_strv_ strv sys = { 0 };
        is_int(vm_paths_allowed("/nonexistent-root", true, &sys, &e), 0, "system mode without allow-paths...");
        is_int(sys.n, 0, "... allows nothing beyond the VM dir");
        strv_done(&allow);
        rm_rf(t);
}

/* The edit lock: edits from several processes at once all land. */
static void test_edit_lock(const struct qemu_caps *caps) {
        char tmpl[] = "/tmp/phyllome-test-edit-XXXXXX";
        const char *home = mkdtemp(tmpl);
        if (!ok(home != NULL, "temporary home"))
                return;
        struct host_facts h = test_host(8, 16 * GiB);
        phy_error err = { 0 };
        _cleanup_vm_def_ struct vm_def d = { 0 };
        const char *text = "[vm]\nname = ed\nprofile = linux\n[network net0]\n";
        ok(vm_def_parse(NULL, text, &d, &err) == 0 && vm_def_make_identity(&d, &err) == 0 &&
           vm_create(home, &d, &h, caps, NULL, false, &err) == 0, "create ed");

        /* A holder blocks others: the lock is on the VM's directory. */
        int held[2], release[2];
        if (!ok(pipe2(held, O_CLOEXEC) == 0 && pipe2(release, O_CLOEXEC) == 0, "pipes"))
                return;
        pid_t holder = fork();
        if (holder == 0) {
                int fd = -1;
                char c = 'x';
                if (vm_edit_lock(home, "ed", &fd, NULL) < 0 || write(held[1], &c, 1) != 1)
                        _exit(1);
                _exit(read(release[0], &c, 1) == 1 ? 0 : 2);
        }
        char c;
        ok(read(held[0], &c, 1) == 1, "the holder has the lock");
        char dir[512];
        snprintf(dir, sizeof dir, "%s/vms/ed", home);
        _cleanup_close_ int probe = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ok(probe >= 0 && flock(probe, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK, "a second taker would wait");
        ok(write(release[1], "x", 1) == 1, "release");
        int status = 0;
        ok(waitpid(holder, &status, 0) == holder && WIFEXITED(status) && WEXITSTATUS(status) == 0, "holder done");
        ok(flock(probe, LOCK_EX | LOCK_NB) == 0 && flock(probe, LOCK_UN) == 0, "free once its holder is gone");
        for (int i = 0; i < 2; i++) {
                close(held[i]);
                close(release[i]);
        }

        /* 4 processes x 10 edits, each adding its own forward: all 40 land. */
        enum { PROCS = 4, EDITS = 10 };
        pid_t kids[PROCS];
        for (int k = 0; k < PROCS; k++) {
                if ((kids[k] = fork()) == 0) {
                        for (int i = 0; i < EDITS; i++) {
                                struct vm_edit e = { 0 };
                                int r = vm_edit_begin(home, "ed", &e, NULL);
                                if (r >= 0)
                                        r = strv_pushf(&e.def.nics[0].forwards, "tcp:%d:22", 20000 + k * 100 + i);
                                if (r >= 0)
                                        r = vm_edit_save(&e, NULL);
                                vm_edit_done(&e);
                                if (r < 0)
                                        _exit(1);
                        }
                        _exit(0);
                }
        }
        bool all_ok = true;
        for (int k = 0; k < PROCS; k++)
                all_ok &= waitpid(kids[k], &status, 0) == kids[k] && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        ok(all_ok, "every editor saved");
        _cleanup_vm_def_ struct vm_def after = { 0 };
        ok(vm_load_by_name(home, "ed", &after, &err) == 0, "reload");
        is_int(after.n_nics ? after.nics[0].forwards.n : 0, PROCS * EDITS, "all %d concurrent edits landed", PROCS * EDITS);

        struct vm_edit gone = { 0 };
        ok(vm_delete(home, "ed", &err) == 0, "delete ed");
        ok(vm_edit_begin(home, "ed", &gone, &err) == -ENOENT, "no edit of a deleted VM");
        vm_edit_done(&gone);
        rm_rf(home);
}

/* ---- the key table (issue 13) ---------------------------------------------------------------- */

/* Every row of the key table is set in the full fixture, so that the round
 * trips below go through every key. */
static void test_table_full(void) {
        _cleanup_vm_def_ struct vm_def d = { 0 };
        phy_error err = { 0 };
        ok(parse_fixture("good", "full.conf", &d, &err) == 0, "full.conf parses");
        for (size_t i = 0; i < vm_n_keys; i++) {
                const struct vm_key *k = &vm_key_table[i];
                ok(vm_def_key_present(&d, k), "full.conf sets [%s] %s", vm_section_table[k->section].name, k->key);
        }
        /* Rows of one section never share bytes: a row pointing at another's
         * field would parse and format consistently, and wrongly. */
        bool overlap = false;
        for (size_t i = 0; i < vm_n_keys; i++)
                for (size_t j = 0; j < i; j++) {
                        const struct vm_key *a = &vm_key_table[i], *b = &vm_key_table[j];
                        if (a->section != b->section && (vm_section_table[a->section].labelled ||
                                                         vm_section_table[b->section].labelled))
                                continue;
                        if (a->offset == b->offset) {
                                overlap = true;
                                printf("#   [%s] %s and [%s] %s share a field\n", vm_section_table[a->section].name,
                                       a->key, vm_section_table[b->section].name, b->key);
                        }
                }
        ok(!overlap, "every row has a field of its own");
}

/* Removing an element frees every field the table gives it (ASan's leak check
 * sees a missed one: 'disk remove' of an encrypted disk leaked its key-file
 * path) and keeps the others in order. */
static void test_remove_elem(void) {
        static const char *const sections[] = { "disk", "cdrom", "network", "share" };
        for (size_t j = 0; j < ELEMENTSOF(sections); j++) {
                _cleanup_vm_def_ struct vm_def d = { 0 };
                phy_error err = { 0 };
                ok(parse_fixture("good", "full.conf", &d, &err) == 0, "full.conf parses");
                const struct vm_section *s = NULL;
                for (size_t i = 0; i < vm_n_sections; i++)
                        if (strcmp(vm_section_table[i].name, sections[j]) == 0)
                                s = &vm_section_table[i];
                size_t n0;
                vm_section_elems(&d, s, &n0);
                ok(n0 > 0, "full.conf has [%s] sections (%zu)", sections[j], n0);
                /* The first of several goes: the second moves up. */
                char *second = NULL;
                if (n0 > 1) {
                        size_t n;
                        char *a = vm_section_elems(&d, s, &n);
                        second = strdup(vm_section_label(s, a + s->elem_size));
                }
                for (size_t before = n0; before > 0; before--) {
                        vm_def_remove_elem(&d, sections[j], 0);
                        size_t n;
                        char *a = vm_section_elems(&d, s, &n);
                        if (!ok(n == before - 1, "[%s]: one fewer after a removal (%zu)", sections[j], n))
                                break;
                        if (second && n == n0 - 1)
                                ok(strcmp(vm_section_label(s, a), second) == 0, "[%s]: the next one moves up",
                                   sections[j]);
                }
                free(second);
                _cleanup_free_ char *text = vm_def_format(&d, false);
                _cleanup_vm_def_ struct vm_def back = { 0 };
                ok(text && vm_def_parse("after removal", text, &back, &err) == 0,
                   "without any [%s] the definition still formats and parses", sections[j]);
        }
}

/* A round trip through the text, compared field by field (not by formatting again). */
static void round_trip(const char *what, const struct vm_def *d) {
        _cleanup_vm_def_ struct vm_def back = { 0 };
        phy_error err = { 0 };
        _cleanup_free_ char *text = vm_def_format(d, false);
        char diff[400] = "";
        bool parsed = text && vm_def_parse("round-trip", text, &back, &err) == 0;
        bool same = parsed && vm_def_diff(d, &back, diff, sizeof diff) == 0;
        ok(same, "%s: parse, format, parse is equal field by field%s%s", what, same ? "" : ": ",
           same ? "" : parsed ? diff : err.message);
}

static void round_trip_dir(const char *dir, const char *glob_dir) {
        _cleanup_strv_ strv files = conf_files(glob_dir);
        ok(files.n > 0, "%s: fixtures found (%zu)", dir, files.n);
        for (size_t i = 0; i < files.n; i++) {
                _cleanup_vm_def_ struct vm_def d = { 0 };
                phy_error err = { 0 };
                char what[300];
                snprintf(what, sizeof what, "%s/%s", dir, files.v[i]);
                if (!ok(parse_fixture(glob_dir, files.v[i], &d, &err) == 0, "%s parses", what)) {
                        printf("#   %s\n", err.message);
                        continue;
                }
                round_trip(what, &d);
        }
}

static void test_round_trips(const struct qemu_caps *caps) {
        round_trip_dir("conf/good", "good");
        round_trip_dir("conf/refused", "refused");
        round_trip_dir("argv", "../argv");

        /* A model written with its defaults reads back as the model (what
         * `phyllo show` prints is a definition of the same VM). */
        _cleanup_strv_ strv files = conf_files("good");
        struct host_facts h = test_host(8, 16 * GiB);
        for (size_t i = 0; i < files.n; i++) {
                _cleanup_vm_def_ struct vm_def d = { 0 }, m = { 0 }, back = { 0 };
                phy_error err = { 0 };
                if (parse_fixture("good", files.v[i], &d, &err) < 0 || vm_model_resolve(&d, &h, caps, &m, &err) < 0)
                        continue;
                _cleanup_free_ char *shown = vm_def_format(&m, true);
                _cleanup_free_ char *plain = shown ? strip_marks(shown) : NULL;
                char diff[400] = "";
                bool parsed = plain && vm_def_parse("shown", plain, &back, &err) == 0;
                if (parsed)
                        strv_done(&m.defaulted);        /* the text says it in comments only */
                bool same = parsed && vm_def_diff(&m, &back, diff, sizeof diff) == 0;
                ok(same, "good/%s: the model, written with its defaults, reads back equal field by field%s%s",
                   files.v[i], same ? "" : ": ", same ? "" : parsed ? diff : err.message);
        }
}

/* A copy is equal field by field, path and defaulted included, and deep. */
static void test_copy_fields(const struct qemu_caps *caps) {
        struct host_facts h = test_host(8, 16 * GiB);
        _cleanup_vm_def_ struct vm_def d = { 0 }, m = { 0 }, c = { 0 };
        phy_error err = { 0 };
        char diff[400] = "";
        ok(parse_fixture("good", "full.conf", &d, &err) == 0 && vm_model_resolve(&d, &h, caps, &m, &err) == 0,
           "full.conf resolves");
        ok(m.defaulted.n > 0, "the full model has defaults");
        ok(vm_def_copy(&m, &c) == 0, "the model copies");
        bool same = vm_def_diff(&m, &c, diff, sizeof diff) == 0;
        ok(same, "the copy is equal field by field, defaulted included%s%s", same ? "" : ": ", diff);
        ok(c.path && m.path && strcmp(c.path, m.path) == 0, "the copy keeps the file's path");
        ok(c.disks != m.disks && c.nics[0].forwards.v != m.nics[0].forwards.v && c.defaulted.v != m.defaulted.v &&
           c.profile != m.profile, "the copy owns its memory");
}

/* The comparison itself sees every row: each changed alone is a difference named by its key. */
static void perturb(const struct vm_key *k, void *base) {
        void *f = (char *) base + k->offset;
        switch (k->type) {
        case VM_KEY_STR:
                free(*(char **) f);
                *(char **) f = strdup("perturbed");
                break;
        case VM_KEY_BUF: ((char *) f)[0] = ((char *) f)[0] == 'z' ? 'y' : 'z'; break;
        case VM_KEY_ENUM: *(int *) f = *(int *) f == 1 ? 2 : 1; break;
        case VM_KEY_FLAG: *(bool *) f = !*(bool *) f; break;
        case VM_KEY_COUNT: *(unsigned *) f += 1; break;
        case VM_KEY_SIZE: *(uint64_t *) f += 1; break;
        case VM_KEY_LIST:
        case VM_KEY_REPEAT: strv_push((strv *) f, "perturbed"); break;
        }
}

static void test_diff_sees_every_row(void) {
        _cleanup_vm_def_ struct vm_def d = { 0 };
        phy_error err = { 0 };
        ok(parse_fixture("good", "full.conf", &d, &err) == 0, "full.conf parses");
        for (size_t i = 0; i < vm_n_keys; i++) {
                const struct vm_key *k = &vm_key_table[i];
                const struct vm_section *s = &vm_section_table[k->section];
                _cleanup_vm_def_ struct vm_def c = { 0 };
                if (vm_def_copy(&d, &c) < 0)
                        abort();
                if (s->labelled) {
                        size_t n = *(size_t *) ((char *) &c + s->count_offset);
                        char *a = *(char **) ((char *) &c + s->array_offset);
                        for (size_t j = 0; j < n; j++)
                                perturb(k, a + j * s->elem_size);
                } else
                        perturb(k, &c);
                char diff[400] = "", want[80];
                snprintf(want, sizeof want, "] %s: ", k->key);
                bool seen = vm_def_diff(&d, &c, diff, sizeof diff) == 1 && strstr(diff, want);
                ok(seen, "a change of [%s] %s is a difference (%s)", s->name, k->key, diff);
        }
        _cleanup_vm_def_ struct vm_def c = { 0 };
        char diff[400] = "";
        bool seen = vm_def_copy(&d, &c) == 0 && strv_push(&c.defaulted, "cpu.cores") == 0 &&
                    vm_def_diff(&d, &c, diff, sizeof diff) == 1;
        ok(seen, "a change of defaulted is a difference (%s)", diff);
}

/* The resolve step does the model's I/O (issue 13: the argv builder does
 * none): each disk image is probed for O_DIRECT when a VM dir is given. */
static void test_model_io(void) {
        struct host_facts h = test_host(8, 16 * GiB);
        phy_error err = { 0 };
        _cleanup_vm_def_ struct vm_def d = { 0 };
        ok(vm_def_parse("io.conf", "[vm]\nprofile = linux\n[disk system]\n[disk gone]\n", &d, &err) == 0,
           "io.conf parses");
        _cleanup_vm_model_ struct vm_model plain = { 0 };
        ok(vm_model_make(&d, &h, NULL, NULL, &plain, &err) == 0 && !plain.disk_direct && plain.vm.disks[0].bus,
           "without a VM dir: the filled model, nothing probed");

        char tmpl[] = "/tmp/phyllome-test-vm-io-XXXXXX";
        const char *dir = mkdtemp(tmpl);
        char img[300];
        snprintf(img, sizeof img, "%s/disk-system.qcow2", dir ? dir : "/nonexistent");
        int fd = open(img, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
                close(fd);
        _cleanup_vm_model_ struct vm_model m = { 0 };
        ok(dir && fd >= 0 && vm_model_make(&d, &h, NULL, dir, &m, &err) == 0 && m.disk_direct, "with a VM dir: probed");
        ok(m.disk_direct && m.disk_direct[0], "an image on /tmp (%s) takes O_DIRECT", dir);
        ok(m.disk_direct && !m.disk_direct[1], "a missing image counts as no O_DIRECT");
        unlink(img);
        if (dir)
                rmdir(dir);
}

int main(void) {
        _cleanup_free_ char *capsfile = NULL;
        if (asprintf(&capsfile, "%s/fixtures/caps/qemu-7.2-debian12.json", tap_srcdir()) < 0)
                return 1;
        struct qemu_caps caps = { 0 };
        phy_error err = { 0 };
        bool have_caps = qemu_caps_load_file(capsfile, &caps, &err) == 0;
        ok(have_caps, "QEMU 7.2 caps fixture loads%s%s", have_caps ? "" : ": ", have_caps ? "" : err.message);

        test_names();
        test_bad();
        test_refused();
        test_good(have_caps ? &caps : NULL);
        test_windows11();
        test_budget();
        test_macos();
        test_linux_display(have_caps ? &caps : NULL);
        test_profiles_all();
        test_json();
        test_copy();
        test_home(have_caps ? &caps : NULL);
        test_single_lines();
        test_paths();
        test_edit_lock(have_caps ? &caps : NULL);
        test_table_full();
        test_remove_elem();
        test_round_trips(have_caps ? &caps : NULL);
        test_copy_fields(have_caps ? &caps : NULL);
        test_diff_sees_every_row();
        test_model_io();
        if (have_caps)
                qemu_caps_done(&caps);
        return tap_done();
}

/* SPDX-License-Identifier: MIT */
/*
 * Golden QEMU argv files (libvirt's qemuxmlargvtest in spirit): every VM
 * definition in tests/fixtures/argv (*.conf) is resolved against every host
 * fixture in tests/fixtures/host/ with the capabilities of each recorded
 * QEMU (tests/fixtures/caps/: Debian 12's 7.2 and bookworm-backports' 10.0),
 * and the argv — or the exact error — must match
 * tests/fixtures/argv/[qemu-10.0/]<conf>@<host>.args, one argument a line.
 * PHYLLOME_REGENERATE=1 rewrites the golden files; review the diff.
 */
#include <dirent.h>
#include <sys/stat.h>

#include "tap.h"
#include "cleanup.h"
#include "fileio.h"
#include "strv.h"
#include "host/host.h"
#include "qemu/argv.h"
#include "qemu/caps.h"
#include "qemu/tools.h"
#include "vm/profile.h"
#include "vm/vm.h"

static int list_dir(const char *path, const char *suffix, bool dirs, strv *ret) {
        DIR *d = opendir(path);
        if (!d)
                return -errno;
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *full = NULL;
                struct stat st;
                if (asprintf(&full, "%s/%s", path, de->d_name) < 0 || stat(full, &st) < 0)
                        continue;
                if (dirs != !!S_ISDIR(st.st_mode))
                        continue;
                size_t n = strlen(de->d_name), sl = suffix ? strlen(suffix) : 0;
                if (suffix && (n <= sl || strcmp(de->d_name + n - sl, suffix) != 0))
                        continue;
                strv_push(ret, de->d_name);
        }
        closedir(d);
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Produces the argv text (one argument a line) or "ERROR: <message>". */
static char *run_case(const char *conf_path, const struct host_facts *host, const struct qemu_caps *caps,
                      const struct qemu_tools *tools, const char *name) {
        phy_error err = { 0 };
        struct vm_def def = { 0 };
        struct vm_model model = { 0 };
        char *out = NULL;
        _cleanup_strv_ strv argv = { 0 };
        int r = vm_def_load(conf_path, &def, &err);
        /* A definition with [install]: its install run, as run_start makes it. */
        if (r >= 0 && def.install.delivery)
                r = vm_install_apply(&def, "/run/user/1000/phyllome/vm", &err);
        if (r >= 0)
                r = vm_model_make(&def, host, caps, NULL, &model, &err);   /* no VM dir: nothing probed */
        if (r >= 0) {
                struct qemu_argv_env env;
                qemu_argv_env_init(&env);
                env.host = host;
                env.caps = caps;
                env.tools = tools;
                _cleanup_free_ char *vm_dir = NULL;
                asprintf(&vm_dir, "/home/user/.local/share/phyllome/vms/%s", name);
                env.vm_dir = vm_dir;
                env.run_dir = "/run/user/1000/phyllome/vm";
                /* The start found the desktop user's PulseAudio/PipeWire socket
                 * (test_audio_choice covers none). */
                env.audio_server = "/run/user/1000/pulse/native";
                r = qemu_argv_build(&model, &env, &argv, NULL, &err);
        }
        if (r < 0) {
                /* Errors name the file; make the golden text independent of the checkout path. */
                const char *msg = err.message;
                const char *base = strrchr(conf_path, '/');
                _cleanup_free_ char *rel = NULL;
                char *hit = strstr(msg, conf_path);
                if (hit && base) {
                        asprintf(&rel, "%.*s%s%s", (int) (hit - msg), msg, base + 1, hit + strlen(conf_path));
                        msg = rel;
                }
                asprintf(&out, "ERROR: %s\n", msg);
        } else {
                _cleanup_free_ char *j = strv_join(&argv, "\n");
                asprintf(&out, "%s\n", j);
        }
        vm_def_done(&def);
        vm_model_done(&model);
        return out;
}

/* KVM needs both a usable /dev/kvm and the CPU's virtualization flag: a
 * guest host with /dev/kvm but no vmx/svm aborted QEMU on an MSR write. */
static void test_accel_choice(void) {
        struct host_facts h = { .kvm_usable = true };
        struct qemu_argv_env env;
        qemu_argv_env_init(&env);
        env.host = &h;
        ok(!qemu_argv_use_kvm(&env), "/dev/kvm without vmx/svm: TCG");
        h.svm = true;
        ok(qemu_argv_use_kvm(&env), "/dev/kvm with svm: KVM");
        env.force_tcg = true;
        ok(!qemu_argv_use_kvm(&env), "forced TCG wins");
        env.force_tcg = false;
        h.kvm_usable = false;
        ok(!qemu_argv_use_kvm(&env), "svm without a usable /dev/kvm: TCG");
}

static bool has_arg(const strv *a, const char *s) {
        return strv_contains(a, s);
}

/* Issue 11: the sound backend from the display, the server the start found
 * and QEMU's audio drivers; "none" with a warning rather than a failure. */
static void test_audio_choice(const struct qemu_caps *full, const struct qemu_caps *nogui) {
        struct vm_def vm = { .name = "a", .display = VM_DISPLAY_GTK, .sound = VM_SOUND_HDA, .gpu = VM_GPU_STD,
                             .machine = "q35", .cores = 1, .threads = 1 };
        /* The model the argv builder takes (the builds below precede the display changes). */
        const struct vm_model model = { .vm = vm };
        struct qemu_argv_env env;
        qemu_argv_env_init(&env);
        env.caps = full;
        char why[600];
        env.audio_why = "no PulseAudio or PipeWire server that QEMU's user 'nobody' can reach (looked for /run/pulse/native)";
        is_str(qemu_argv_audio(&vm, &env, why, sizeof why), "none", "gtk without a server: none");
        ok(strncmp(why, "no PulseAudio or PipeWire server that QEMU's user 'nobody'", 57) == 0, "and why, from the start path: %s", why);
        phy_error err = { 0 };
        _cleanup_strv_ strv a = { 0 }, w = { 0 };
        ok(qemu_argv_build(&model, &env, &a, &w, &err) == 0, "the argv builds: %s", err.message);
        ok(has_arg(&a, "none,id=snd0") && has_arg(&a, "hda-duplex,id=sound0-codec0,bus=sound0.0,audiodev=snd0"),
           "-audiodev none, the sound device kept");
        _cleanup_free_ char *wj = strv_join(&w, "\n");
        ok(wj && strstr(wj, "VM 'a' has no sound (-audiodev none): no PulseAudio or PipeWire server") && w.n >= 1,
           "one warning says why: %s", wj ? wj : "");

        env.audio_server = "/run/user/1000/pulse/native";
        is_str(qemu_argv_audio(&vm, &env, why, sizeof why), "pa", "gtk with a server: pa");
        is_str(why, "", "no reason then");
        strv_done(&a);
        strv_done(&w);
        ok(qemu_argv_build(&model, &env, &a, &w, &err) == 0 && has_arg(&a, "pa,id=snd0,server=unix:/run/user/1000/pulse/native"),
           "-audiodev pa with the server found");
        env.audio_server = "/tmp/a,b/native";
        strv_done(&a);
        ok(qemu_argv_build(&model, &env, &a, NULL, &err) == 0 && has_arg(&a, "pa,id=snd0,server=unix:/tmp/a,,b/native"),
           "a comma in the socket path is escaped");

        env.caps = nogui;
        env.audio_server = "/run/user/1000/pulse/native";
        vm.display = VM_DISPLAY_SDL;
        is_str(qemu_argv_audio(&vm, &env, why, sizeof why), "none", "QEMU without audio-pa.so: none, even with a server");
        ok(strstr(why, "asks for -audiodev pa (") && strstr(why, "install qemu-system-gui"), "naming the package: %s", why);
        vm.display = VM_DISPLAY_SPICE;
        is_str(qemu_argv_audio(&vm, &env, why, sizeof why), "spice", "SPICE: spice (qemu-system-common has it)");
        vm.display = VM_DISPLAY_NONE;
        is_str(qemu_argv_audio(&vm, &env, why, sizeof why), "none", "headless: none");
        is_str(why, "", "without a warning (nothing could play it)");
        vm.sound = VM_SOUND_NONE;
        ok(qemu_argv_audio(&vm, &env, why, sizeof why) == NULL, "no sound device: no -audiodev");
}

/* The argv builder takes the disks' O_DIRECT facts from the model and opens
 * nothing itself (issue 13): the image here does not exist. */
static void test_disk_io_facts(void) {
        struct vm_disk disks[] = { { .name = "a", .path = "/nonexistent/a.qcow2", .format = "qcow2", .bus = VM_BUS_VIRTIO },
                                   { .name = "b", .path = "/nonexistent/b.qcow2", .format = "qcow2", .bus = VM_BUS_VIRTIO } };
        bool direct[] = { true, false };
        struct vm_model model = { .vm = { .name = "io", .machine = "q35", .cores = 1, .threads = 1, .memory = 1 << 30,
                                          .display = VM_DISPLAY_NONE, .disks = disks, .n_disks = 2 },
                                  .disk_direct = direct };
        struct qemu_argv_env env;
        qemu_argv_env_init(&env);
        phy_error err = { 0 };
        _cleanup_strv_ strv a = { 0 };
        ok(qemu_argv_build(&model, &env, &a, NULL, &err) == 0, "builds with images that do not exist: %s", err.message);
        ok(has_arg(&a, "driver=file,node-name=disk-a-file,filename=/nonexistent/a.qcow2,cache.direct=on,aio=native,discard=unmap"),
           "a disk whose file system takes O_DIRECT: cache.direct=on,aio=native");
        ok(has_arg(&a, "driver=file,node-name=disk-b-file,filename=/nonexistent/b.qcow2,discard=unmap"),
           "one whose file system does not: QEMU's defaults");
        model.disk_direct = NULL;
        strv_done(&a);
        ok(qemu_argv_build(&model, &env, &a, NULL, &err) == 0 &&
           has_arg(&a, "driver=file,node-name=disk-a-file,filename=/nonexistent/a.qcow2,discard=unmap"),
           "not probed: QEMU's defaults");
}

/* Issue 12: a disk's backing chain reaches QEMU as fds (-add-fd), one
 * read-only node per link on /dev/fdset/N, each naming the next, and the
 * disk's node naming the first: QEMU opens no backing file by name.  A disk
 * without links is as before (the golden files have none). */
static void test_backing_fds(void) {
        struct vm_disk disks[] = { { .name = "system", .path = "/vms/c/disk-system.qcow2", .format = "qcow2",
                                     .bus = VM_BUS_VIRTIO },
                                   { .name = "data", .path = "/vms/c/disk-data.qcow2", .format = "qcow2",
                                     .bus = VM_BUS_VIRTIO } };
        struct vm_model model = { .vm = { .name = "c", .machine = "q35", .cores = 1, .threads = 1, .memory = 1 << 30,
                                          .display = VM_DISPLAY_NONE, .disks = disks, .n_disks = 2 } };
        struct qemu_backing_link links[] = { { .fd = 17, .format = "qcow2" }, { .fd = 18, .format = "raw" } };
        struct qemu_backing backing[] = { { .links = links, .n = 2 }, { .links = NULL, .n = 0 } };
        struct qemu_argv_env env;
        qemu_argv_env_init(&env);
        env.backing = backing;
        env.n_backing = 2;
        phy_error err = { 0 };
        _cleanup_strv_ strv a = { 0 };
        ok(qemu_argv_build(&model, &env, &a, NULL, &err) == 0, "builds with a backing chain: %s", err.message);
        const char *want[] = {
                "-add-fd", "fd=18,set=1,opaque=disk-system-b2",
                "-blockdev", "driver=file,node-name=disk-system-b2-file,filename=/dev/fdset/1,read-only=on",
                "-blockdev", "driver=raw,node-name=disk-system-b2,file=disk-system-b2-file,read-only=on",
                "-add-fd", "fd=17,set=2,opaque=disk-system-b1",
                "-blockdev", "driver=file,node-name=disk-system-b1-file,filename=/dev/fdset/2,read-only=on",
                "-blockdev", "driver=qcow2,node-name=disk-system-b1,file=disk-system-b1-file,read-only=on,"
                             "backing=disk-system-b2",
                "-blockdev", "driver=file,node-name=disk-system-file,filename=/vms/c/disk-system.qcow2,discard=unmap",
                "-blockdev", "driver=qcow2,node-name=disk-system,file=disk-system-file,discard=unmap,"
                             "detect-zeroes=unmap,backing=disk-system-b1",
        };
        size_t at = 0;
        while (at < a.n && strcmp(a.v[at], "-add-fd") != 0)
                at++;
        bool same = at + ELEMENTSOF(want) <= a.n;
        for (size_t i = 0; same && i < ELEMENTSOF(want); i++)
                same = strcmp(a.v[at + i], want[i]) == 0;
        ok(same, "the farthest link first, each node naming the next, the disk's node the nearest");
        ok(has_arg(&a, "driver=qcow2,node-name=disk-data,file=disk-data-file,discard=unmap,detect-zeroes=unmap"),
           "a disk without a backing file names none");
        size_t n_add = 0;
        for (size_t i = 0; i < a.n; i++)
                n_add += strcmp(a.v[i], "-add-fd") == 0;
        is_int((long long) n_add, 2, "one -add-fd per link, none for the other disk");
}

/* Issue 19: CD-ROMs boot first while the system disk is empty, after it
 * once it holds an OS (the model's fact), first again with --boot-once
 * cdrom; a drive without media is the device alone (its id for QMP). */
static void test_boot_order(void) {
        struct vm_disk disks[] = { { .name = "system", .path = "/nonexistent/s.qcow2", .format = "qcow2",
                                     .bus = VM_BUS_VIRTIO } };
        struct vm_cdrom cds[] = { { .name = "install", .path = "/nonexistent/i.iso", .bus = VM_BUS_SATA },
                                  { .name = "spare", .bus = VM_BUS_SATA } };
        struct vm_model model = { .vm = { .name = "bo", .machine = "q35", .cores = 1, .threads = 1, .memory = 1 << 30,
                                          .display = VM_DISPLAY_NONE, .disks = disks, .n_disks = 1, .cdroms = cds,
                                          .n_cdroms = 2 } };
        struct qemu_argv_env env;
        qemu_argv_env_init(&env);
        phy_error err = { 0 };
        _cleanup_strv_ strv a = { 0 }, b = { 0 }, c = { 0 };
        ok(qemu_argv_build(&model, &env, &a, NULL, &err) == 0, "builds: %s", err.message);
        ok(has_arg(&a, "ide-cd,id=cd-install,drive=cd-install,bus=ide.0,bootindex=1") &&
           has_arg(&a, "ide-cd,id=cd-spare,bus=ide.1,bootindex=2") &&
           has_arg(&a, "virtio-blk-pci,id=disk-system,drive=disk-system,iothread=io-disk-system,bootindex=3"),
           "an empty disk: the CDs first; the empty drive is a device without drive=");
        bool blockdev_spare = false;
        for (size_t i = 0; i < a.n; i++)
                blockdev_spare = blockdev_spare || strstr(a.v[i], "node-name=cd-spare");
        ok(!blockdev_spare, "... and no block node for the empty drive");
        model.disk_has_os = true;
        ok(qemu_argv_build(&model, &env, &b, NULL, &err) == 0 &&
           has_arg(&b, "virtio-blk-pci,id=disk-system,drive=disk-system,iothread=io-disk-system,bootindex=1") &&
           has_arg(&b, "ide-cd,id=cd-install,drive=cd-install,bus=ide.0,bootindex=2"),
           "a disk with an OS boots first");
        env.boot_once_cdrom = true;
        ok(qemu_argv_build(&model, &env, &c, NULL, &err) == 0 &&
           has_arg(&c, "ide-cd,id=cd-install,drive=cd-install,bus=ide.0,bootindex=1"),
           "--boot-once cdrom: the CD first again");
}

/* qboot for a BIOS VM with a direct kernel and nothing to show; SeaBIOS
 * (no -bios) for a display, a GPU, a passed-through device, no kernel, or
 * a QEMU without qboot.rom; the guest is not offered S3 under qboot. */
static void test_qboot_choice(void) {
        struct qemu_tools tools = { .qemu = "/usr/bin/qemu-system-x86_64", .qboot = "/usr/share/qemu/qboot.rom" };
        struct vm_model model = { .vm = { .name = "qb", .machine = "q35", .cores = 1, .threads = 1, .memory = 1 << 28,
                                          .firmware = VM_FW_BIOS, .display = VM_DISPLAY_NONE, .gpu = VM_GPU_NONE,
                                          .kernel = "/boot/vmlinuz" } };
        struct qemu_argv_env env;
        qemu_argv_env_init(&env);
        env.tools = &tools;
        phy_error err = { 0 };
        _cleanup_strv_ strv a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 }, e = { 0 }, f = { 0 };
        ok(qemu_argv_build(&model, &env, &a, NULL, &err) == 0 && has_arg(&a, "/usr/share/qemu/qboot.rom") &&
           has_arg(&a, "ICH9-LPC.disable_s3=1"), "a headless direct kernel boot gets qboot, and no S3: %s",
           err.message);
        model.vm.machine = "pc";
        ok(qemu_argv_build(&model, &env, &f, NULL, &err) == 0 && has_arg(&f, "PIIX4_PM.disable_s3=1") &&
           !has_arg(&f, "ICH9-LPC.disable_s3=1"), "... on i440fx, PIIX4_PM's S3 is the one turned off");
        model.vm.machine = "q35";
        model.vm.display = VM_DISPLAY_SPICE;
        model.vm.gpu = VM_GPU_STD;
        ok(qemu_argv_build(&model, &env, &b, NULL, &err) == 0 && !has_arg(&b, "-bios"),
           "a display: SeaBIOS (its VGA BIOS sets the screen up): %s", err.message);
        model.vm.display = VM_DISPLAY_NONE;
        model.vm.gpu = VM_GPU_NONE;
        model.vm.kernel = NULL;
        ok(qemu_argv_build(&model, &env, &c, NULL, &err) == 0 && !has_arg(&c, "-bios"),
           "no direct kernel: SeaBIOS boots the disk");
        model.vm.kernel = "/boot/vmlinuz";
        char *pt[] = { "0000:01:00.0" };
        model.vm.passthrough = (strv) { .v = pt, .n = 1 };
        ok(qemu_argv_build(&model, &env, &d, NULL, &err) == 0 && !has_arg(&d, "-bios"),
           "a passed-through device (its option ROM): SeaBIOS");
        model.vm.passthrough = (strv) { 0 };
        tools.qboot = NULL;
        ok(qemu_argv_build(&model, &env, &e, NULL, &err) == 0 && !has_arg(&e, "-bios") &&
           !has_arg(&e, "ICH9-LPC.disable_s3=1"), "a QEMU without qboot.rom: SeaBIOS, S3 as before");
}

/* Every -device of an argv is a type this QEMU has, and every property
 * given to a probed device is one QEMU listed for it (id and bus are
 * QEMU's own options): what a recorded QEMU lacks is never emitted for it.
 * The -display and -audiodev drivers and the machine type too. */
static bool emitted_ok(const char *text, const struct qemu_caps *caps, char *bad, size_t blen) {
        _cleanup_strv_ strv lines = { 0 };
        for (const char *p = text; *p;) {
                size_t n = strcspn(p, "\n");
                strv_pushf(&lines, "%.*s", (int) n, p);
                p += n + (p[n] == '\n');
        }
        bad[0] = '\0';
        for (size_t i = 0; i + 1 < lines.n && !bad[0]; i++) {
                const char *opt = lines.v[i], *val = lines.v[i + 1];
                if (strcmp(opt, "-device") == 0) {
                        char type[64];
                        snprintf(type, sizeof type, "%.*s", (int) strcspn(val, ","), val);
                        if (!qemu_caps_has_device(caps, type)) {
                                snprintf(bad, blen, "-device %s: no such device", type);
                                break;
                        }
                        bool probed = false;
                        for (size_t d = 0; qemu_caps_probed_devices[d]; d++)
                                probed = probed || strcmp(qemu_caps_probed_devices[d], type) == 0;
                        /* key=value pairs; ",," is an escaped comma inside a value */
                        for (const char *k = val + strlen(type); probed && *k == ',';) {
                                k++;
                                size_t kl = strcspn(k, "=,");
                                char key[64];
                                snprintf(key, sizeof key, "%.*s", (int) kl, k);
                                if (strcmp(key, "id") != 0 && strcmp(key, "bus") != 0 && !qemu_caps_has_prop(caps, type, key)) {
                                        snprintf(bad, blen, "-device %s: no property '%s'", type, key);
                                        break;
                                }
                                for (k += kl; *k && !(k[0] == ',' && k[1] != ','); k += (k[0] == ',' ? 2 : 1))
                                        ;
                        }
                } else if (strcmp(opt, "-display") == 0 || strcmp(opt, "-audiodev") == 0) {
                        char drv[32];
                        snprintf(drv, sizeof drv, "%.*s", (int) strcspn(val, ","), val);
                        bool has = opt[1] == 'd' ? qemu_caps_has_display(caps, drv) : qemu_caps_has_audiodev(caps, drv);
                        if (!has)
                                snprintf(bad, blen, "%s %s: no such driver", opt, drv);
                } else if (strcmp(opt, "-machine") == 0) {
                        char m[64];
                        snprintf(m, sizeof m, "%.*s", (int) strcspn(val, ","), val);
                        if (!qemu_caps_has_machine(caps, m))
                                snprintf(bad, blen, "-machine %s: no such machine type", m);
                }
        }
        return !bad[0];
}

/* The recorded QEMUs: golden files of the first directly in
 * tests/fixtures/argv, of the others in a directory of their own. */
static const struct {
        const char *caps, *dir;
} qemus[] = {
        { "qemu-7.2-debian12.json", "" },
        { "qemu-10.0-debian12-backports.json", "qemu-10.0/" },
};

/* The checker itself: what only 10.0 has is caught in a 7.2 argv. */
static void test_emitted_check(const struct qemu_caps *c72, const struct qemu_caps *c10) {
        char bad[512];
        ok(qemu_caps_has_prop(c72, "virtio-vga-gl", "blob") && !qemu_caps_has_prop(c72, "virtio-vga-gl", "hostmem") &&
           !qemu_caps_has_device(c72, "virtio-sound-pci"), "7.2: virtio-vga-gl has blob but not hostmem; no virtio-sound-pci");
        const char *gpu = "-device\nvirtio-vga-gl,id=video0,blob=true,hostmem=256M\n";
        ok(!emitted_ok(gpu, c72, bad, sizeof bad) && strcmp(bad, "-device virtio-vga-gl: no property 'hostmem'") == 0,
           "blob/hostmem in a 7.2 argv is caught: %s", bad);
        ok(emitted_ok(gpu, c10, bad, sizeof bad), "and allowed for 10.0: %s", bad);
        const char *snd = "-audiodev\nnone,id=snd0\n-device\nvirtio-sound-pci,id=sound0,audiodev=snd0\n";
        ok(!emitted_ok(snd, c72, bad, sizeof bad) && strstr(bad, "virtio-sound-pci: no such device"),
           "virtio-sound-pci in a 7.2 argv is caught: %s", bad);
        ok(emitted_ok(snd, c10, bad, sizeof bad), "and allowed for 10.0: %s", bad);
        ok(!emitted_ok("-drive\nx\n-device\nvirtio-blk-pci,id=a,drive=b,no-such=1\n", c10, bad, sizeof bad) &&
           strstr(bad, "'no-such'"), "an unknown property is caught: %s", bad);
        ok(emitted_ok("-device\nvirtio-blk-pci,id=a,drive=b,serial=x,,y\n", c10, bad, sizeof bad),
           "an escaped comma stays inside its value: %s", bad);
}

int main(void) {
        test_accel_choice();
        const char *src = tap_srcdir();
        _cleanup_free_ char *argv_dir = NULL, *host_dir = NULL;
        asprintf(&argv_dir, "%s/fixtures/argv", src);
        asprintf(&host_dir, "%s/fixtures/host", src);
        bool regen = getenv("PHYLLOME_REGENERATE") != NULL;

        phy_error err = { 0 };
        struct qemu_caps caps[ELEMENTSOF(qemus)] = { 0 };
        for (size_t q = 0; q < ELEMENTSOF(qemus); q++) {
                _cleanup_free_ char *path = NULL;
                asprintf(&path, "%s/fixtures/caps/%s", src, qemus[q].caps);
                if (!ok(qemu_caps_load_file(path, &caps[q], &err) >= 0, "caps fixture %s loads: %s", qemus[q].caps,
                        err.message))
                        return tap_done();
        }
        {
                _cleanup_free_ char *nogui_path = NULL;
                asprintf(&nogui_path, "%s/fixtures/caps/qemu-7.2-debian12-nogui.json", src);
                _cleanup_qemu_caps_ struct qemu_caps nogui = { 0 };
                if (ok(qemu_caps_load_file(nogui_path, &nogui, &err) >= 0, "nogui caps fixture loads: %s", err.message))
                        test_audio_choice(&caps[0], &nogui);
        }
        test_disk_io_facts();
        test_backing_fds();
        test_boot_order();
        test_qboot_choice();
        test_emitted_check(&caps[0], &caps[1]);
        /* Fixed tool paths: Debian 12's, so the golden files read like the real thing. */
        struct qemu_tools tools = {
                .qemu = "/usr/bin/qemu-system-x86_64",
                .qemu_img = "/usr/bin/qemu-img",
                .swtpm = "/usr/bin/swtpm",
                .swtpm_setup = "/usr/bin/swtpm_setup",
                .ovmf_code = "/usr/share/OVMF/OVMF_CODE_4M.fd",
                .ovmf_vars = "/usr/share/OVMF/OVMF_VARS_4M.fd",
                .ovmf_code_sb = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
                .ovmf_vars_ms = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
                .qboot = "/usr/share/qemu/qboot.rom",
        };

        _cleanup_strv_ strv confs = { 0 };
        _cleanup_strv_ strv hosts = { 0 };
        ok(list_dir(argv_dir, ".conf", false, &confs) == 0 && confs.n > 0, "argv cases found in %s", argv_dir);
        ok(list_dir(host_dir, NULL, true, &hosts) == 0 && hosts.n > 0, "host fixtures found in %s", host_dir);
        qsort(confs.v, confs.n, sizeof(char *), cmp_str);
        qsort(hosts.v, hosts.n, sizeof(char *), cmp_str);

        for (size_t h = 0; h < hosts.n; h++) {
                _cleanup_free_ char *root = NULL;
                asprintf(&root, "%s/%s", host_dir, hosts.v[h]);
                struct host_facts host = { 0 };
                if (!ok(host_facts_load(root, &host, &err) >= 0, "host fixture %s loads: %s", hosts.v[h], err.message))
                        continue;
                for (size_t q = 0; q < ELEMENTSOF(qemus); q++)
                        for (size_t c = 0; c < confs.n; c++) {
                                _cleanup_free_ char *conf = NULL, *golden = NULL, *expected = NULL;
                                char name[128], bad[512];
                                snprintf(name, sizeof name, "%.*s", (int) (strlen(confs.v[c]) - 5), confs.v[c]);
                                asprintf(&conf, "%s/%s", argv_dir, confs.v[c]);
                                asprintf(&golden, "%s/%s%s@%s.args", argv_dir, qemus[q].dir, name, hosts.v[h]);
                                _cleanup_free_ char *got = run_case(conf, &host, &caps[q], &tools, name);
                                if (strncmp(got, "ERROR: ", 7) != 0)
                                        ok(emitted_ok(got, &caps[q], bad, sizeof bad), "%s on %s with %s emits only what it has%s%s",
                                           name, hosts.v[h], qemus[q].caps, bad[0] ? ": " : "", bad);
                                if (regen) {
                                        phy_error werr = { 0 };
                                        ok(file_write_atomic(golden, got, strlen(got), 0644, &werr) >= 0, "regenerated %s", golden);
                                        continue;
                                }
                                if (file_read_all(golden, 0, &expected, NULL) < 0) {
                                        ok(false, "%s@%s: golden file %s exists (PHYLLOME_REGENERATE=1 makes it)", name,
                                           hosts.v[h], golden);
                                        continue;
                                }
                                if (!ok(strcmp(got, expected) == 0, "%s on %s with %s matches its golden argv", name,
                                        hosts.v[h], qemus[q].caps))
                                        printf("# --- got ---\n%s# --- want ---\n%s", got, expected);
                        }
                host_facts_done(&host);
        }
        for (size_t q = 0; q < ELEMENTSOF(qemus); q++)
                qemu_caps_done(&caps[q]);
        return tap_done();
}

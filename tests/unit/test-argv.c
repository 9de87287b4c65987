/* SPDX-License-Identifier: MIT */
/*
 * Golden QEMU argv files (libvirt's qemuxmlargvtest in spirit): every VM
 * definition in tests/fixtures/argv (*.conf) is resolved against every host
 * fixture in tests/fixtures/host/ with the capabilities of the real Debian 12
 * QEMU (tests/fixtures/caps/), and the argv — or the exact error — must match
 * tests/fixtures/argv/<conf>@<host>.args (or .err), one argument a line.
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

int main(void) {
        test_accel_choice();
        const char *src = tap_srcdir();
        _cleanup_free_ char *argv_dir = NULL, *host_dir = NULL, *caps_path = NULL;
        asprintf(&argv_dir, "%s/fixtures/argv", src);
        asprintf(&host_dir, "%s/fixtures/host", src);
        asprintf(&caps_path, "%s/fixtures/caps/qemu-7.2-debian12.json", src);
        bool regen = getenv("PHYLLOME_REGENERATE") != NULL;

        phy_error err = { 0 };
        struct qemu_caps caps = { 0 };
        if (!ok(qemu_caps_load_file(caps_path, &caps, &err) >= 0, "caps fixture loads: %s", err.message))
                return tap_done();
        {
                _cleanup_free_ char *nogui_path = NULL;
                asprintf(&nogui_path, "%s/fixtures/caps/qemu-7.2-debian12-nogui.json", src);
                _cleanup_qemu_caps_ struct qemu_caps nogui = { 0 };
                if (ok(qemu_caps_load_file(nogui_path, &nogui, &err) >= 0, "nogui caps fixture loads: %s", err.message))
                        test_audio_choice(&caps, &nogui);
        }
        test_disk_io_facts();
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
                for (size_t c = 0; c < confs.n; c++) {
                        _cleanup_free_ char *conf = NULL, *golden = NULL, *expected = NULL;
                        char name[128];
                        snprintf(name, sizeof name, "%.*s", (int) (strlen(confs.v[c]) - 5), confs.v[c]);
                        asprintf(&conf, "%s/%s", argv_dir, confs.v[c]);
                        asprintf(&golden, "%s/%s@%s.args", argv_dir, name, hosts.v[h]);
                        _cleanup_free_ char *got = run_case(conf, &host, &caps, &tools, name);
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
                        if (!ok(strcmp(got, expected) == 0, "%s on %s matches its golden argv", name, hosts.v[h]))
                                printf("# --- got ---\n%s# --- want ---\n%s", got, expected);
                }
                host_facts_done(&host);
        }
        qemu_caps_done(&caps);
        return tap_done();
}

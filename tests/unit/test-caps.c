/* SPDX-License-Identifier: MIT */
/*
 * Capabilities probed from the real QEMU into a temporary cache, the cache
 * key (path + size + mtime), the fixture file, and tool/firmware discovery.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "tap.h"
#include "cleanup.h"
#include "fileio.h"
#include "qemu/caps.h"
#include "qemu/tools.h"

static char tmp[] = "/tmp/phyllome-test-caps-XXXXXX";

static const char *real_qemu(void) {
        const char *q = getenv("PHYLLOME_QEMU");
        return q && *q ? q : "/usr/bin/qemu-system-x86_64";
}

static char *tpath(const char *name) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", tmp, name) < 0)
                abort();
        return p;
}

static bool same_mtime(const struct stat *a, const struct stat *b) {
        return a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* True when this process has no child left unreaped (the probe reaps its own). */
static bool no_children(void) {
        return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

static void test_probe(void) {
        phy_error err = { 0 };
        _cleanup_free_ char *bin = tpath("q/bin/qemu-system-x86_64"), *cache = tpath("cache");
        _cleanup_free_ char *bindir = tpath("q/bin"), *lib = tpath("q/lib"), *share = tpath("q/share");
        _cleanup_free_ char *prefix = strdup(real_qemu());
        /* A copy, so its mtime can change without touching the system's.
         * QEMU finds its modules and data relative to its own path
         * (<prefix>/bin/../lib/...), so the copy gets the same layout. */
        char *slash = strrchr(prefix, '/');
        if (slash)
                *slash = '\0';
        if ((slash = strrchr(prefix, '/')))
                *slash = '\0';
        _cleanup_free_ char *real_lib = NULL, *real_share = NULL;
        if (asprintf(&real_lib, "%s/lib", prefix) < 0 || asprintf(&real_share, "%s/share", prefix) < 0)
                abort();
        mkdir_p(bindir, 0755);
        ok(symlink(real_lib, lib) == 0 && symlink(real_share, share) == 0, "prefix layout linked to %s", prefix);
        if (!ok(file_copy_atomic(real_qemu(), bin, 0755, &err) == 0, "copied %s into the test folder", real_qemu())) {
                printf("# %s\n", err.message);
                return;
        }

        _cleanup_qemu_caps_ struct qemu_caps c = { 0 };
        int r = qemu_caps_probe(bin, cache, &c, &err);
        if (!ok(r == 0, "probe of the real QEMU succeeds"))
                printf("# %s\n", err.message);
        ok(!c.from_cache, "first probe runs QEMU");
        ok(no_children(), "the probe reaped its QEMU");
        ok(qemu_caps_has_machine(&c, "q35"), "q35 machine alias present");
        ok(qemu_caps_has_machine(&c, "none"), "'none' machine present");
        ok(!qemu_caps_has_machine(&c, "no-such-machine"), "a made-up machine is absent");
        ok(qemu_caps_has_device(&c, "virtio-blk-pci"), "virtio-blk-pci present");
        ok(qemu_caps_has_device(&c, "pcie-root-port"), "pcie-root-port present");
        ok(!qemu_caps_has_device(&c, "no-such-device"), "a made-up device is absent");
        ok(qemu_caps_has_accel(&c, "tcg"), "tcg accelerator present");
        ok(qemu_caps_has_prop(&c, "virtio-balloon-pci", "free-page-reporting"), "virtio-balloon-pci.free-page-reporting listed");
        ok(qemu_caps_has_prop(&c, "virtio-blk-pci", "bootindex"), "virtio-blk-pci.bootindex listed");
        ok(!qemu_caps_has_prop(&c, "virtio-blk", "bootindex"), "property match needs the whole device name");
        ok(c.version && c.version[0] >= '0' && c.version[0] <= '9', "version recorded (informational): %s", c.version);
        is_str(c.binary, bin, "binary recorded");

        _cleanup_free_ char *entry = NULL;
        if (asprintf(&entry, "%s/qemu-caps/%s.json", cache, bin + 1) < 0)
                abort();
        for (char *p = entry + strlen(cache) + strlen("/qemu-caps/"); *p; p++)
                if (*p == '/')
                        *p = '_';
        struct stat st1, st2;
        ok(stat(entry, &st1) == 0, "cache entry written: %s", entry);

        _cleanup_qemu_caps_ struct qemu_caps c2 = { 0 };
        is_int(qemu_caps_probe(bin, cache, &c2, &err), 0, "second probe succeeds");
        ok(c2.from_cache, "second probe answered from the cache");
        ok(stat(entry, &st2) == 0 && same_mtime(&st1, &st2), "cache entry not rewritten");
        is_int(c2.devices.n, c.devices.n, "cached device list is the same length");
        ok(qemu_caps_has_machine(&c2, "q35") && qemu_caps_has_accel(&c2, "tcg"), "cached caps answer the same");

        /* A new mtime on the binary invalidates the entry. */
        struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = 1000000000, .tv_nsec = 0 } };
        ok(utimensat(AT_FDCWD, bin, times, 0) == 0, "binary copy's mtime changed");
        _cleanup_qemu_caps_ struct qemu_caps c3 = { 0 };
        is_int(qemu_caps_probe(bin, cache, &c3, &err), 0, "probe after the mtime change succeeds");
        ok(!c3.from_cache, "mtime change forces a re-probe");
        _cleanup_qemu_caps_ struct qemu_caps c4 = { 0 };
        is_int(qemu_caps_probe(bin, cache, &c4, &err), 0, "probe once more");
        ok(c4.from_cache, "the re-probe was cached under the new mtime");

        /* A size change too (appending to the copy changes size and mtime;
         * set the mtime back so only the size differs). */
        int fd = open(bin, O_WRONLY | O_APPEND | O_CLOEXEC);
        ok(fd >= 0 && write(fd, "\0", 1) == 1, "one byte appended to the binary copy");
        if (fd >= 0)
                close(fd);
        ok(utimensat(AT_FDCWD, bin, times, 0) == 0, "mtime set back");
        _cleanup_qemu_caps_ struct qemu_caps c5 = { 0 };
        is_int(qemu_caps_probe(bin, cache, &c5, &err), 0, "probe after the size change succeeds");
        ok(!c5.from_cache, "size change forces a re-probe");

        _cleanup_qemu_caps_ struct qemu_caps c6 = { 0 };
        is_int(qemu_caps_probe_ex(bin, cache, QEMU_CAPS_REFRESH, &c6, &err), 0, "refresh probe succeeds");
        ok(!c6.from_cache, "refresh ignores the cache");

        /* A damaged entry means probing again, not an error. */
        ok(file_write_atomic(entry, "{\"format\": 1, \"binary\": ", 24, 0600, &err) == 0, "cache entry damaged");
        _cleanup_qemu_caps_ struct qemu_caps c7 = { 0 };
        is_int(qemu_caps_probe(bin, cache, &c7, &err), 0, "probe with a damaged cache entry succeeds");
        ok(!c7.from_cache && qemu_caps_has_machine(&c7, "q35"), "and re-probed");
        ok(no_children(), "every probe reaped its QEMU");
        /* The links first, by name: nothing may ever recurse into /usr. */
        unlink(lib);
        unlink(share);
        rm_rf(cache);
}

static void test_probe_failures(void) {
        phy_error err = { 0 };
        struct qemu_caps c = { 0 };
        /* /bin/true runs and exits: no QMP greeting, an error and no hang. */
        int r = qemu_caps_probe("/bin/true", NULL, &c, &err);
        ok(r < 0, "probing a program that is not QEMU fails");
        ok(strstr(err.message, "/bin/true") != NULL, "message names the binary: %s", err.message);
        ok(no_children(), "the failed probe reaped its child");

        _cleanup_free_ char *missing = tpath("no-such-qemu");
        is_int(qemu_caps_probe(missing, NULL, &c, &err), -ENOENT, "a missing binary is -ENOENT");
        ok(strstr(err.message, missing) != NULL, "message names the path: %s", err.message);

        _cleanup_free_ char *plain = tpath("not-executable");
        file_write_atomic(plain, "x", 1, 0644, NULL);
        is_int(qemu_caps_probe(plain, NULL, &c, &err), -EACCES, "a non-executable file is refused");
        unlink(plain);
}

static void test_fixture(void) {
        phy_error err = { 0 };
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/fixtures/caps/qemu-7.2-debian12.json", tap_srcdir()) < 0)
                abort();
        _cleanup_qemu_caps_ struct qemu_caps c = { 0 };
        int r = qemu_caps_load_file(path, &c, &err);
        if (!ok(r == 0, "fixture loads"))
                printf("# %s\n", err.message);
        ok(!c.from_cache, "a loaded file is not a cache hit");
        ok(qemu_caps_has_machine(&c, "pc-q35-7.2") && qemu_caps_has_machine(&c, "q35"), "fixture: pc-q35-7.2 and q35");
        ok(qemu_caps_has_device(&c, "tpm-crb") && qemu_caps_has_device(&c, "virtio-vga-gl"), "fixture: tpm-crb, virtio-vga-gl");
        ok(!qemu_caps_has_device(&c, "virtio-sound-pci"), "fixture: QEMU 7.2 has no virtio-sound-pci");
        ok(qemu_caps_has_accel(&c, "kvm") && qemu_caps_has_accel(&c, "tcg"), "fixture: kvm and tcg");
        ok(qemu_caps_has_prop(&c, "virtio-balloon-pci", "free-page-reporting"), "fixture: free-page-reporting");

        /* Serialising what was loaded gives the file back. */
        _cleanup_free_ char *text = NULL, *again = qemu_caps_to_json(&c);
        file_read_all(path, 0, &text, NULL);
        json_object *a = text ? json_tokener_parse(text) : NULL, *b = again ? json_tokener_parse(again) : NULL;
        ok(a && b && json_object_equal(a, b), "fixture round-trips through qemu_caps_to_json");
        json_object_put(a);
        json_object_put(b);

        _cleanup_free_ char *bad = tpath("bad.json");
        const char *no_devices = "{\"format\": 1, \"binary\": \"/x\", \"machines\": [], \"accels\": []}";
        file_write_atomic(bad, no_devices, strlen(no_devices), 0600, NULL);
        struct qemu_caps d = { 0 };
        is_int(qemu_caps_load_file(bad, &d, &err), -EINVAL, "a file without 'devices' is refused");
        ok(strstr(err.message, bad) && strstr(err.message, "'devices'"), "message names file and key: %s", err.message);
        file_write_atomic(bad, "{\"format\": 2}", 13, 0600, NULL);
        is_int(qemu_caps_load_file(bad, &d, &err), -EINVAL, "an unknown format is refused");
        file_write_atomic(bad, "[1,", 3, 0600, NULL);
        is_int(qemu_caps_load_file(bad, &d, &err), -EINVAL, "broken JSON is refused");
        ok(strstr(err.message, "not valid JSON") != NULL, "message says so: %s", err.message);
        unlink(bad);
}

static void write_descriptor(const char *dir, const char *name, const char *code, const char *vars,
                             const char *features) {
        _cleanup_free_ char *p = NULL, *json = NULL;
        if (asprintf(&p, "%s/%s", dir, name) < 0 ||
            asprintf(&json, "{\"interface-types\": [\"uefi\"], \"mapping\": {\"device\": \"flash\", "
                            "\"executable\": {\"filename\": \"%s\", \"format\": \"raw\"}, "
                            "\"nvram-template\": {\"filename\": \"%s\", \"format\": \"raw\"}}, "
                            "\"targets\": [{\"architecture\": \"x86_64\", \"machines\": [\"pc-q35-*\"]}], "
                            "\"features\": [%s]}", code, vars, features) < 0)
                abort();
        file_write_atomic(p, json, strlen(json), 0644, NULL);
}

static void test_firmware(void) {
        phy_error err = { 0 };
        _cleanup_free_ char *hi = tpath("fw-etc"), *lo = tpath("fw-share"), *fd = tpath("fd");
        mkdir_p(hi, 0755);
        mkdir_p(lo, 0755);
        mkdir_p(fd, 0755);
        const char *names[] = { "A_CODE.fd", "A_VARS.fd", "B_CODE.fd", "B_VARS.fd", "SB_CODE.fd", "MS_VARS.fd" };
        char files[6][256];
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                snprintf(files[i], sizeof files[i], "%s/%s", fd, names[i]);
                file_write_atomic(files[i], "fw", 2, 0644, NULL);
        }
        /* lo: a plain pair at 60, a secure pair without keys at 50, enrolled at 40. */
        write_descriptor(lo, "60-plain.json", files[2], files[3], "\"acpi-s3\"");
        write_descriptor(lo, "50-secure.json", files[4], files[3], "\"requires-smm\", \"secure-boot\"");
        write_descriptor(lo, "40-enrolled.json", files[4], files[5], "\"enrolled-keys\", \"requires-smm\", \"secure-boot\"");
        /* hi overrides 60-plain with another pair, and masks 40-enrolled. */
        write_descriptor(hi, "60-plain.json", files[0], files[1], "");
        _cleanup_free_ char *mask = NULL;
        if (asprintf(&mask, "%s/40-enrolled.json", hi) < 0)
                abort();
        file_write_atomic(mask, "", 0, 0644, NULL);

        const char *dirs[] = { hi, lo, NULL };
        struct qemu_tools t = { 0 };
        is_int(qemu_ovmf_from_descriptors(dirs, &t, &err), 0, "descriptors read");
        is_str(t.ovmf_code, files[0], "higher-priority folder's descriptor wins (code)");
        is_str(t.ovmf_vars, files[1], "higher-priority folder's descriptor wins (vars)");
        ok(t.ovmf_code_sb == NULL && t.ovmf_vars_ms == NULL, "an empty file masks the enrolled-keys descriptor");
        qemu_tools_done(&t);

        unlink(mask);
        is_int(qemu_ovmf_from_descriptors(dirs, &t, &err), 0, "descriptors read again");
        is_str(t.ovmf_code_sb, files[4], "secure boot code from the enrolled-keys descriptor");
        is_str(t.ovmf_vars_ms, files[5], "enrolled vars, not the secure one without keys");
        qemu_tools_done(&t);

        /* The environment overrides, as the integration tests use them. */
        setenv("PHYLLOME_OVMF_DIR", fd, 1);
        file_write_atomic(files[0], "fw", 2, 0644, NULL);
        char code[300], vars[300];
        snprintf(code, sizeof code, "%s/OVMF_CODE_4M.fd", fd);
        snprintf(vars, sizeof vars, "%s/OVMF_VARS_4M.fd", fd);
        file_write_atomic(code, "c", 1, 0644, NULL);
        file_write_atomic(vars, "v", 1, 0644, NULL);
        is_int(qemu_tools_find(&t, &err), 0, "tools found with PHYLLOME_OVMF_DIR");
        is_str(t.ovmf_code, code, "PHYLLOME_OVMF_DIR code used");
        is_str(t.ovmf_vars, vars, "PHYLLOME_OVMF_DIR vars used");
        ok(t.ovmf_code_sb == NULL, "no secure boot pair in that folder: left NULL");
        ok(t.qemu != NULL && access(t.qemu, X_OK) == 0, "qemu-system-x86_64 found: %s", t.qemu ? t.qemu : "(none)");
        ok(t.qemu_img != NULL, "qemu-img found");
        qemu_tools_done(&t);
        unsetenv("PHYLLOME_OVMF_DIR");

        /* The real system: Debian 12's ovmf package ships descriptors. */
        is_int(qemu_tools_find(&t, &err), 0, "tools found on this system");
        ok(t.ovmf_code && access(t.ovmf_code, R_OK) == 0, "OVMF code found: %s", t.ovmf_code ? t.ovmf_code : "(none)");
        ok(t.ovmf_vars && access(t.ovmf_vars, R_OK) == 0, "OVMF vars found: %s", t.ovmf_vars ? t.ovmf_vars : "(none)");
        ok(t.ovmf_vars_ms && access(t.ovmf_vars_ms, R_OK) == 0, "OVMF vars with MS keys found: %s",
           t.ovmf_vars_ms ? t.ovmf_vars_ms : "(none)");
        ok(t.ovmf_code && t.ovmf_code_sb && strcmp(t.ovmf_code, t.ovmf_code_sb) != 0, "plain and secure boot code differ");
        qemu_tools_done(&t);

        _cleanup_free_ char *notexec = tpath("fd/A_CODE.fd");
        setenv("PHYLLOME_QEMU", notexec, 1);
        ok(qemu_tools_find(&t, &err) == -ENOENT && strstr(err.message, "PHYLLOME_QEMU"),
           "a PHYLLOME_QEMU that is not executable is an error naming the variable: %s", err.message);
        unsetenv("PHYLLOME_QEMU");
        rm_rf(hi);
        rm_rf(lo);
        rm_rf(fd);
}

int main(void) {
        if (!mkdtemp(tmp)) {
                ok(0, "mkdtemp");
                return tap_done();
        }
        test_fixture();
        test_probe_failures();
        test_probe();
        test_firmware();        /* last: it changes the environment */
        rm_rf(tmp);
        return tap_done();
}

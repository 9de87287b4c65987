/* SPDX-License-Identifier: MIT */
/*
 * Capabilities probed from the real QEMU into a temporary cache, the cache
 * key (path + size + mtime + module directory), a partial QEMU (a module
 * directory without qemu-system-gui's modules), the fixture files, the
 * module table against Debian's package lists, the host check's module
 * lines on a fixture root, and tool/firmware discovery.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "tap.h"
#include "cleanup.h"
#include "fileio.h"
#include "fixture.h"
#include "host/check.h"
#include "host/json.h"
#include "host/qemu-modules.h"
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

/* Debian 12's module lists per package (dpkg -L, fixture files). */
static void read_list(const char *package, strv *out) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        if (asprintf(&path, "%s/fixtures/caps/modules-debian12-%s.txt", tap_srcdir(), package) < 0)
                abort();
        if (file_read_all(path, 0, &text, NULL) < 0)
                return;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
                strv_push(out, line);
}

static size_t link_module(const char *from, const char *to, const char *name) {
        _cleanup_free_ char *src = NULL, *dst = NULL;
        if (asprintf(&src, "%s/%s", from, name) < 0 || asprintf(&dst, "%s/%s", to, name) < 0)
                abort();
        return symlink(src, dst) == 0;
}

static void test_probe(void) {
        phy_error err = { 0 };
        _cleanup_free_ char *bin = tpath("q/bin/qemu-system-x86_64"), *cache = tpath("cache");
        _cleanup_free_ char *bindir = tpath("q/bin"), *share = tpath("q/share");
        _cleanup_free_ char *moddir = tpath("q/lib/x86_64-linux-gnu/qemu");
        _cleanup_free_ char *prefix = strdup(real_qemu());
        /* A copy, so its mtime can change without touching the system's.
         * QEMU finds its modules and data relative to its own path
         * (<prefix>/bin/../lib/...), so the copy gets the same layout: its
         * module directory holds links to the real modules, first without
         * those of qemu-system-gui (a fresh Debian 12 with
         * --no-install-recommends), then with them (apt-get install). */
        char *slash = strrchr(prefix, '/');
        if (slash)
                *slash = '\0';
        if ((slash = strrchr(prefix, '/')))
                *slash = '\0';
        _cleanup_free_ char *real_share = NULL;
        if (asprintf(&real_share, "%s/share", prefix) < 0)
                abort();
        mkdir_p(bindir, 0755);
        mkdir_p(moddir, 0755);
        _cleanup_free_ char *real_mod = host_qemu_module_dir(prefix);
        if (!real_mod) {
                ok(true, "# skip %s has no QEMU module directory", prefix);
                return;
        }
        _cleanup_strv_ strv gui = { 0 };
        read_list("qemu-system-gui", &gui);
        size_t linked = 0;
        struct dirent **names = NULL;
        int n = scandir(real_mod, &names, NULL, alphasort);
        for (int i = 0; i < n; i++) {
                if (strstr(names[i]->d_name, ".so") && !strv_contains(&gui, names[i]->d_name))
                        linked += link_module(real_mod, moddir, names[i]->d_name);
                free(names[i]);
        }
        free(names);
        ok(linked > 10 && symlink(real_share, share) == 0, "prefix layout linked to %s, %zu modules without qemu-system-gui's",
           prefix, linked);
        if (!ok(file_copy_atomic(real_qemu(), bin, 0755, &err) == 0, "copied %s into the test folder", real_qemu())) {
                printf("# %s\n", err.message);
                return;
        }

        /* A partial QEMU: virtio-vga-gl is listed (its module is there) but
         * creating it needs virtio-gpu-gl-device from the missing module;
         * QEMU dies listing its properties.  The probe carries on. */
        _cleanup_qemu_caps_ struct qemu_caps part = { 0 };
        int r = qemu_caps_probe(bin, cache, &part, &err);
        if (!ok(r == 0, "probe of the real QEMU without qemu-system-gui's modules succeeds"))
                printf("# %s\n", err.message);
        ok(no_children(), "the probe reaped every QEMU it started");
        ok(!qemu_caps_has_device(&part, "virtio-vga-gl") && !qemu_caps_has_device(&part, "virtio-gpu-gl-pci"),
           "virtio-vga-gl and virtio-gpu-gl-pci recorded as absent");
        ok(strv_contains(&part.absent, "virtio-vga-gl virtio-gpu-gl-device"), "with the type they lack (from QEMU's message)");
        ok(qemu_caps_has_device(&part, "virtio-vga") && qemu_caps_has_device(&part, "virtio-blk-pci") &&
           qemu_caps_has_prop(&part, "virtio-blk-pci", "bootindex"),
           "the devices after the absent ones are probed with their properties (a fresh QEMU took over)");
        ok(qemu_caps_has_display(&part, "egl-headless") && !qemu_caps_has_display(&part, "gtk") && !qemu_caps_has_display(&part, "sdl"),
           "displays: egl-headless, no gtk or sdl");
        ok(qemu_caps_has_audiodev(&part, "spice") && !qemu_caps_has_audiodev(&part, "pa"), "audio: spice, no pa");
        char why[512];
        ok(qemu_caps_lacks(&part, "x", "device", "virtio-vga-gl", why, sizeof why) &&
           strstr(why, "VM 'x' asks for virtio-vga-gl (3D, --gpu virgl), which this QEMU lacks: install qemu-system-gui"),
           "the refusal names the package: %s", why);

        /* apt-get install qemu-system-gui: the modules appear, the binary
         * is the same; the cache entry no longer matches. */
        for (size_t i = 0; i < gui.n; i++)
                link_module(real_mod, moddir, gui.v[i]);
        _cleanup_qemu_caps_ struct qemu_caps c = { 0 };
        r = qemu_caps_probe(bin, cache, &c, &err);
        if (!ok(r == 0, "probe of the real QEMU succeeds"))
                printf("# %s\n", err.message);
        ok(!c.from_cache, "modules added: the cache entry is stale, QEMU is probed again");
        ok(qemu_caps_has_device(&c, "virtio-vga-gl") && c.absent.n == 0, "virtio-vga-gl present, nothing absent");
        ok(qemu_caps_has_display(&c, "gtk") && qemu_caps_has_display(&c, "sdl") && qemu_caps_has_audiodev(&c, "pa"),
           "gtk, sdl and pa present");
        ok(!qemu_caps_lacks(&c, "x", "device", "virtio-vga-gl", why, sizeof why), "nothing lacking now");
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
        if (asprintf(&entry, "%s/qemu-caps/%s-v2.caps", cache, bin + 1) < 0)
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
        {
                /* Every list, string by string, and in the same order. */
                const strv *a[] = { &c.machines, &c.accels, &c.devices, &c.props, &c.displays, &c.audiodevs, &c.absent };
                const strv *b[] = { &c2.machines, &c2.accels, &c2.devices, &c2.props, &c2.displays, &c2.audiodevs,
                                    &c2.absent };
                bool same = strcmp(c.version, c2.version) == 0 && strcmp(c.binary, c2.binary) == 0;
                for (size_t i = 0; i < sizeof a / sizeof *a && same; i++) {
                        same = a[i]->n == b[i]->n && b[i]->v[b[i]->n] == NULL;
                        for (size_t k = 0; same && k < a[i]->n; k++)
                                same = strcmp(a[i]->v[k], b[i]->v[k]) == 0;
                }
                ok(same, "the cached caps are the probed ones, list by list");
        }
        {
                /* An entry cut short (before its last line) is not believed. */
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                ok(file_read_all(entry, 0, &text, &len) == 0 && len > 4 && strcmp(text + len - 4, "end\n") == 0,
                   "the cache entry ends with its end line");
                ok(text && file_write_atomic(entry, text, len - 4, 0600, &err) == 0, "cache entry cut before 'end'");
                _cleanup_qemu_caps_ struct qemu_caps cut = { 0 };
                is_int(qemu_caps_probe(bin, cache, &cut, &err), 0, "probe with a cut entry succeeds");
                ok(!cut.from_cache && qemu_caps_has_machine(&cut, "q35"), "a cut entry is probed again");
                ok(stat(entry, &st1) == 0, "and the entry is written again");
        }
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

        /* The module key reads the directory once (names, inodes): a module
         * put in place anew (dpkg renames a new file over it: a new inode)
         * and a module removed each make the entry stale. */
        if (gui.n > 0) {
                _cleanup_free_ char *mod = NULL;
                if (asprintf(&mod, "%s/%s", moddir, gui.v[0]) < 0)
                        abort();
                /* As dpkg does it: the new file beside the old, renamed over it
                 * (so a new inode: both exist at once); the directory's mtime
                 * then set back, so that only the inode tells. */
                _cleanup_free_ char *src = NULL, *fresh = NULL;
                if (asprintf(&src, "%s/%s", real_mod, gui.v[0]) < 0 || asprintf(&fresh, "%s.dpkg-new", mod) < 0)
                        abort();
                struct stat dst;
                ok(stat(moddir, &dst) == 0 && symlink(src, fresh) == 0 && rename(fresh, mod) == 0 &&
                   utimensat(AT_FDCWD, moddir, (struct timespec[2]) { dst.st_atim, dst.st_mtim }, 0) == 0,
                   "a module replaced (new inode), the directory's mtime as before");
                _cleanup_qemu_caps_ struct qemu_caps c5 = { 0 }, c6 = { 0 }, c7 = { 0 };
                is_int(qemu_caps_probe(bin, cache, &c5, &err), 0, "probe after the replacement");
                ok(!c5.from_cache, "a module replaced: the entry is stale");
                is_int(qemu_caps_probe(bin, cache, &c6, &err), 0, "probe once more");
                ok(c6.from_cache, "and cached again");
                ok(unlink(mod) == 0, "a module removed");
                is_int(qemu_caps_probe(bin, cache, &c7, &err), 0, "probe after the removal");
                ok(!c7.from_cache, "a module removed: the entry is stale");
                ok(link_module(real_mod, moddir, gui.v[0]), "the module back");
        }

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
        unlink(share);
        n = scandir(moddir, &names, NULL, alphasort);
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *l = NULL;
                if (asprintf(&l, "%s/%s", moddir, names[i]->d_name) >= 0)
                        unlink(l);
                free(names[i]);
        }
        free(names);
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

/* Serialising what was loaded from path gives the file back. */
static bool round_trips(const char *path, const struct qemu_caps *c) {
        _cleanup_free_ char *text = NULL, *again = qemu_caps_to_json(c);
        file_read_all(path, 0, &text, NULL);
        json_object *a = text ? json_tokener_parse(text) : NULL, *b = again ? json_tokener_parse(again) : NULL;
        bool same = a && b && json_object_equal(a, b);
        json_object_put(a);
        json_object_put(b);
        return same;
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
        ok(qemu_caps_has_display(&c, "gtk") && qemu_caps_has_display(&c, "sdl") && qemu_caps_has_audiodev(&c, "pa") &&
           qemu_caps_has_audiodev(&c, "spice") && c.absent.n == 0,
           "fixture: gtk, sdl, pa and spice, nothing absent");
        char why[512] = "";
        ok(!qemu_caps_lacks(&c, "x", "device", "virtio-vga-gl", why, sizeof why) &&
           !qemu_caps_lacks(&c, "x", "device", "no-such-device", why, sizeof why),
           "lacks: false for a device it has and for one no module brings");

        ok(round_trips(path, &c), "fixture round-trips through qemu_caps_to_json");

        _cleanup_free_ char *bad = tpath("bad.json");
        const char *no_devices = "{\"format\": 2, \"binary\": \"/x\", \"machines\": [], \"accels\": []}";
        file_write_atomic(bad, no_devices, strlen(no_devices), 0600, NULL);
        struct qemu_caps d = { 0 };
        is_int(qemu_caps_load_file(bad, &d, &err), -EINVAL, "a file without 'devices' is refused");
        ok(strstr(err.message, bad) && strstr(err.message, "'devices'"), "message names file and key: %s", err.message);
        file_write_atomic(bad, "{\"format\": 1}", 13, 0600, NULL);
        is_int(qemu_caps_load_file(bad, &d, &err), -EINVAL, "an unknown format is refused");
        file_write_atomic(bad, "[1,", 3, 0600, NULL);
        is_int(qemu_caps_load_file(bad, &d, &err), -EINVAL, "broken JSON is refused");
        ok(strstr(err.message, "not valid JSON") != NULL, "message says so: %s", err.message);
        unlink(bad);
}

/* bookworm-backports' QEMU 10.0 (scripts/qemu10), and the feature table
 * against both recordings: what a feature's `since` says matches what
 * each recorded QEMU has (the table is for messages; the check keeps it honest). */
static void test_fixture_10(void) {
        phy_error err = { 0 };
        _cleanup_free_ char *p10 = NULL, *p72 = NULL;
        if (asprintf(&p10, "%s/fixtures/caps/qemu-10.0-debian12-backports.json", tap_srcdir()) < 0 ||
            asprintf(&p72, "%s/fixtures/caps/qemu-7.2-debian12.json", tap_srcdir()) < 0)
                abort();
        _cleanup_qemu_caps_ struct qemu_caps c = { 0 }, o = { 0 };
        if (!ok(qemu_caps_load_file(p10, &c, &err) == 0 && qemu_caps_load_file(p72, &o, &err) == 0,
                "10.0 and 7.2 fixtures load: %s", err.message))
                return;
        ok(strncmp(c.version, "10.0.", 5) == 0, "fixture: version %s", c.version);
        ok(qemu_caps_has_machine(&c, "pc-q35-10.0") && qemu_caps_has_machine(&c, "q35"), "fixture: pc-q35-10.0 and q35");
        ok(qemu_caps_has_device(&c, "virtio-sound-pci") && qemu_caps_has_prop(&c, "virtio-sound-pci", "audiodev"),
           "fixture: virtio-sound-pci with an audiodev");
        ok(qemu_caps_has_prop(&c, "virtio-vga-gl", "hostmem") && qemu_caps_has_prop(&c, "virtio-vga-gl", "blob"),
           "fixture: virtio-vga-gl blob and hostmem");
        ok(qemu_caps_has_display(&c, "gtk") && qemu_caps_has_display(&c, "sdl") && qemu_caps_has_audiodev(&c, "pa") &&
           qemu_caps_has_audiodev(&c, "spice") && c.absent.n == 0, "fixture: gtk, sdl, pa and spice, nothing absent");
        ok(round_trips(p10, &c), "10.0 fixture round-trips through qemu_caps_to_json");
        for (size_t i = 0; i < qemu_features_n; i++) {
                const struct qemu_feature *f = &qemu_features[i];
                if (!f->device)
                        continue;
                unsigned maj = 0, min = 0;
                sscanf(f->since, "%u.%u", &maj, &min);
                bool in72 = maj < 7 || (maj == 7 && min <= 2), in10 = maj < 10 || (maj == 10 && min == 0);
                ok(qemu_caps_has_feature(&o, f) == in72 && qemu_caps_has_feature(&c, f) == in10,
                   "feature %s (since %s): %s in 7.2, %s in 10.0", f->id, f->since, in72 ? "present" : "absent",
                   in10 ? "present" : "absent");
        }
        phy_error b = { 0 };
        phy_error_set(&b, EIO, "QEMU's snapshot-save failed: State blocked by non-migratable device "
                      "'0000:00:0b.0/virtio-sound-device'");
        qemu_migration_blocker_hint(&b);
        ok(strstr(b.message, "virtio-sound-device'; the device is its virtio sound device") &&
           strstr(b.message, "[sound] type = hda"), "a virtio sound migration blocker says what to do: %s", b.message);
        phy_error_set(&b, EIO, "QEMU's snapshot-save failed: State blocked by non-migratable device '0000:00:05.0/ivshmem'");
        qemu_migration_blocker_hint(&b);
        ok(!strstr(b.message, "; the device is"), "another blocker is left as QEMU said it");
        ok(qemu_feature_of_device("virtio-sound-pci") && strcmp(qemu_feature_of_device("virtio-sound-pci")->since, "8.2") == 0 &&
           !qemu_feature_of_device("virtio-vga-gl"), "the feature of a device: virtio-sound-pci, not a property's device");
}

/* The recorded QMP replies (tests/fixtures/caps/NAME.replies, made by
 * tests/helpers/qmp-record.py from the real binaries), played back by a
 * stand-in QEMU to the real probe, give exactly the recorded capabilities:
 * the fixtures are what the probe makes of what each QEMU says. */
static void test_replayed_probe(void) {
        static const char *const names[] = { "qemu-7.2-debian12", "qemu-10.0-debian12-backports" };
        _cleanup_free_ char *helper = NULL;
        if (asprintf(&helper, "%s/helpers/qmp-replay.py", tap_srcdir()) < 0)
                abort();
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_free_ char *replies = NULL, *fixture = NULL;
                if (asprintf(&replies, "%s/fixtures/caps/%s.replies", tap_srcdir(), names[i]) < 0 ||
                    asprintf(&fixture, "%s/fixtures/caps/%s.json", tap_srcdir(), names[i]) < 0)
                        abort();
                setenv("PHYLLOME_QMP_REPLAY", replies, 1);
                phy_error err = { 0 };
                _cleanup_qemu_caps_ struct qemu_caps got = { 0 }, want = { 0 };
                int r = qemu_caps_probe(helper, NULL, &got, &err);
                unsetenv("PHYLLOME_QMP_REPLAY");
                if (!ok(r == 0 && qemu_caps_load_file(fixture, &want, &err) == 0, "%s: the probe of the replayed "
                        "replies runs: %s", names[i], err.message))
                        continue;
                free(got.binary);
                got.binary = strdup(want.binary);
                _cleanup_free_ char *a = qemu_caps_to_json(&got), *b = qemu_caps_to_json(&want);
                ok(a && b && strcmp(a, b) == 0, "%s: the probe makes the recorded capabilities of the replies", names[i]);
        }
}

/* The same QEMU without qemu-system-gui's modules (captured in a mount
 * namespace that hid them, see tests/fixtures/caps/README.md). */
static void test_fixture_nogui(void) {
        phy_error err = { 0 };
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/fixtures/caps/qemu-7.2-debian12-nogui.json", tap_srcdir()) < 0)
                abort();
        _cleanup_qemu_caps_ struct qemu_caps c = { 0 };
        if (!ok(qemu_caps_load_file(path, &c, &err) == 0, "nogui fixture loads"))
                printf("# %s\n", err.message);
        ok(!qemu_caps_has_device(&c, "virtio-vga-gl") && strv_contains(&c.absent, "virtio-vga-gl virtio-gpu-gl-device"),
           "nogui: virtio-vga-gl absent, lacking virtio-gpu-gl-device");
        ok(qemu_caps_has_device(&c, "virtio-vga") && qemu_caps_has_device(&c, "VGA"), "nogui: virtio-vga and VGA present");
        char why[512] = "";
        ok(qemu_caps_lacks(&c, "w", "device", "virtio-vga-gl", why, sizeof why), "nogui: virtio-vga-gl lacking");
        is_str(why, "VM 'w' asks for virtio-vga-gl (3D, --gpu virgl), which this QEMU lacks: install qemu-system-gui "
                    "(QEMU's module hw-display-virtio-gpu-gl.so is not installed)", "nogui: the message");
        ok(qemu_caps_lacks(&c, "w", "display", "gtk", why, sizeof why) && strstr(why, "-display gtk") &&
           strstr(why, "install qemu-system-gui (QEMU's module ui-gtk.so"),
           "nogui: gtk display lacking: %s", why);
        ok(qemu_caps_lacks(&c, "w", "audio", "pa", why, sizeof why) && strstr(why, "install qemu-system-gui (QEMU's module audio-pa.so"),
           "nogui: pa lacking: %s", why);
        ok(!qemu_caps_lacks(&c, "w", "audio", "spice", why, sizeof why) && !qemu_caps_lacks(&c, "w", "device", "VGA", why, sizeof why),
           "nogui: spice audio and VGA not lacking");
}

/* The table's package for every module agrees with Debian's lists. */
static void test_module_table(void) {
        _cleanup_strv_ strv common = { 0 }, gui = { 0 };
        read_list("qemu-system-common", &common);
        read_list("qemu-system-gui", &gui);
        ok(common.n > 20 && gui.n > 3, "Debian 12's module lists read (%zu common, %zu gui)", common.n, gui.n);
        size_t agree = 0;
        for (size_t i = 0; i < host_qemu_modules_n; i++) {
                const struct host_qemu_module *m = &host_qemu_modules[i];
                const strv *l = strcmp(m->package, "qemu-system-gui") == 0 ? &gui : &common;
                if (strv_contains(l, m->file))
                        agree++;
                else
                        printf("# %s is not in %s's list\n", m->file, m->package);
        }
        is_int((int) agree, (int) host_qemu_modules_n, "every module of the table is in its package's list");
        const struct host_qemu_module *m = host_qemu_module_providing("device", "virtio-gpu-gl-device");
        ok(m && strcmp(m->file, "hw-display-virtio-gpu-gl.so") == 0, "virtio-gpu-gl-device comes from hw-display-virtio-gpu-gl.so");
        m = host_qemu_module_providing("device", "qxl");
        ok(m && strcmp(m->file, "hw-display-qxl.so") == 0, "qxl, the second word of a provides list, is found");
        ok(!host_qemu_module_providing("device", "qx") && !host_qemu_module_providing("display", "virtio-vga"),
           "no match on a prefix or on another kind");
}

/* Empty files standing for the modules in the root's module directory. */
static void put_modules(const char *root, const strv *files) {
        for (size_t i = 0; i < files->n; i++) {
                _cleanup_free_ char *rel = NULL;
                if (asprintf(&rel, "/usr/lib/x86_64-linux-gnu/qemu/%s", files->v[i]) < 0)
                        abort();
                fixture_put(root, rel, "");
        }
}

/* `host check` on a fixture root: the CI machine's tree with a module
 * directory as a fresh Debian 12 has it (qemu-system-common only), then
 * with qemu-system-gui's modules too. */
static void test_host_check_modules(void) {
        phy_error err = { 0 };
        _cleanup_free_ char *root = fixture_copy("ci-debian12-tcg", "/tmp/phyllome-test-caps-root");
        _cleanup_strv_ strv common = { 0 }, gui = { 0 };
        read_list("qemu-system-common", &common);
        read_list("qemu-system-gui", &gui);
        put_modules(root, &common);
        struct host_facts h = { 0 };
        if (!ok(host_facts_load(root, &h, &err) == 0, "fixture facts load"))
                printf("# %s\n", err.message);
        struct host_check_report rep = { 0 };
        ok(host_check_run(&h, NULL, &rep, &err) == 0, "host check runs on the fixture root");
        const struct host_check_result *all = host_check_find(&rep, "qemu.modules");
        ok(all && all->status == HOST_CHECK_WARN && strstr(all->detail, "14 of the 18 modules") &&
           strstr(all->detail, "/usr/lib/x86_64-linux-gnu/qemu: accel-tcg-x86_64.so") && !strstr(all->detail, root),
           "qemu.modules: WARN, 14 of 18 found, listed, the directory as the host sees it: %s", all ? all->detail : "(none)");
        is_str(all ? all->remedy : NULL, "apt-get install qemu-system-gui", "qemu.modules: remedy names the package");
        static const char *const missing[] = { "hw-display-virtio-gpu-gl.so", "ui-gtk.so", "ui-sdl.so", "audio-pa.so" };
        for (size_t i = 0; i < ELEMENTSOF(missing); i++) {
                char id[80];
                snprintf(id, sizeof id, "qemu.module.%s", missing[i]);
                const struct host_check_result *x = host_check_find(&rep, id);
                ok(x && x->status == HOST_CHECK_WARN && strstr(x->detail, "package qemu-system-gui") && x->remedy &&
                   strcmp(x->remedy, "apt-get install qemu-system-gui") == 0,
                   "%s: WARN naming qemu-system-gui: %s", id, x ? x->detail : "(none)");
        }
        ok(!host_check_find(&rep, "qemu.module.ui-opengl.so"), "no line for a module that is there");
        json_object *j = host_check_report_to_json(&h, &rep), *qm = NULL, *miss = NULL, *found = NULL;
        ok(json_object_object_get_ex(j, "qemu_modules", &qm) && json_object_object_get_ex(qm, "missing", &miss) &&
           json_object_object_get_ex(qm, "found", &found) && json_object_array_length(miss) == 4 &&
           json_object_array_length(found) == 14,
           "--json: qemu_modules with 4 missing and 14 found");
        json_object *m0 = miss ? json_object_array_get_idx(miss, 0) : NULL, *pkg = NULL, *file = NULL;
        ok(m0 && json_object_object_get_ex(m0, "package", &pkg) && json_object_object_get_ex(m0, "file", &file) &&
           strcmp(json_object_get_string(pkg), "qemu-system-gui") == 0 &&
           strcmp(json_object_get_string(file), "hw-display-virtio-gpu-gl.so") == 0,
           "--json: each missing module with its file and package");
        json_object_put(j);
        host_check_report_done(&rep);

        put_modules(root, &gui);
        ok(host_check_run(&h, NULL, &rep, &err) == 0, "host check runs again");
        all = host_check_find(&rep, "qemu.modules");
        ok(all && all->status == HOST_CHECK_PASS && strstr(all->detail, "18 of the 18") && !all->remedy &&
           !host_check_find(&rep, "qemu.module.ui-gtk.so"),
           "with qemu-system-gui: PASS, no missing module lines");
        host_check_report_done(&rep);
        host_facts_done(&h);
        rm_rf(root);

        /* A root without any module directory (QEMU not installed, or built without modules). */
        _cleanup_free_ char *bare = fixture_copy("apple-mac", "/tmp/phyllome-test-caps-root");
        if (host_facts_load(bare, &h, &err) == 0 && host_check_run(&h, NULL, &rep, &err) == 0) {
                all = host_check_find(&rep, "qemu.modules");
                ok(all && all->status == HOST_CHECK_INFO && strstr(all->detail, "no QEMU module directory") && !rep.modules.dir,
                   "no module directory: INFO, nothing listed");
                host_check_report_done(&rep);
                host_facts_done(&h);
        } else
                ok(0, "apple-mac fixture checked: %s", err.message);
        rm_rf(bare);
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

/* qboot.rom is looked for where QEMU looks: beside the binary's real path
 * (<prefix>/share/qemu), not beside a symlink that leads to it. */
static void test_qboot_lookup(void) {
        _cleanup_free_ char *real_tmp = realpath(tmp, NULL), *bindir = NULL, *bin = NULL, *linkdir = NULL,
                            *link = NULL, *datadir = NULL, *rom = NULL;
        ok(real_tmp && asprintf(&bindir, "%s/opt/bin", real_tmp) > 0 && asprintf(&bin, "%s/qemu-system-x86_64", bindir) > 0 &&
           asprintf(&linkdir, "%s/link/bin", real_tmp) > 0 && asprintf(&link, "%s/qemu-system-x86_64", linkdir) > 0 &&
           asprintf(&datadir, "%s/opt/share/qemu", real_tmp) > 0 && asprintf(&rom, "%s/qboot.rom", datadir) > 0,
           "paths made");
        ok(mkdir_p(bindir, 0755) == 0 && mkdir_p(linkdir, 0755) == 0 &&
           file_write_atomic(bin, "#!/bin/true\n", 12, 0755, NULL) >= 0, "a QEMU in a prefix");
        ok(symlink(bin, link) == 0, "a symlink to that QEMU in another prefix");
        ok(qemu_tools_qboot(bin) == NULL, "no qboot.rom in its data dir: none");
        ok(mkdir_p(datadir, 0755) == 0 && file_write_atomic(rom, "rom", 3, 0644, NULL) >= 0, "qboot.rom in its data dir");
        char *a = qemu_tools_qboot(bin), *b = qemu_tools_qboot(link);
        is_str(a, rom, "the binary's <prefix>/share/qemu/qboot.rom");
        is_str(b, rom, "through the symlink: the real binary's, as QEMU finds its data");
        free(a);
        free(b);
        ok(qemu_tools_qboot("qemu-system-x86_64") == NULL, "a bare name: none");
}

int main(void) {
        if (!mkdtemp(tmp)) {
                ok(0, "mkdtemp");
                return tap_done();
        }
        test_fixture();
        test_fixture_nogui();
        test_fixture_10();
        test_replayed_probe();
        test_module_table();
        test_host_check_modules();
        test_probe_failures();
        test_probe();
        test_qboot_lookup();
        test_firmware();        /* last: it changes the environment */
        rm_rf(tmp);
        return tap_done();
}

/* SPDX-License-Identifier: MIT */
/*
 * phyllome-devhelper's request checks (every way a message can be wrong),
 * host.conf's passthrough-allow, the helper's work in-process on a copy of
 * the intel-desktop-iommu fixture (a fake kernel moves the driver links),
 * /dev/vfio/GROUP ownership for a QEMU run as nobody, and the caller's
 * message when no helper runs.  The real helper over its socket, as root
 * and as nobody: tests/integration/devhelper.sh.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "fixture.h"
#include "cleanup.h"
#include "dev/helper.h"
#include "dev/single-gpu.h"
#include "fileio.h"
#include "host/host.h"
#include "sock.h"
#include "peer.h"


static void req(struct dev_helper_request *q, uint32_t op, const char *vm, const char *addr, const char *drv) {
        phy_error e = { 0 };
        if (dev_helper_request_init(q, op, vm, addr, drv, &e) < 0)
                abort();
}

static int check(const void *buf, size_t len, phy_error *e) {
        struct dev_helper_request out;
        phy_error_clear(e);
        return dev_helper_request_check(buf, len, &out, e);
}

static void test_request_check(void) {
        struct dev_helper_request q;
        phy_error e = { 0 };
        req(&q, DEV_HELPER_TO_VFIO, "win11", "0000:01:00.0", "");
        is_int(check(&q, sizeof q, &e), 0, "a well-formed TO_VFIO request passes");
        is_int(check(&q, sizeof q - 1, &e), -EPROTO, "one byte short is refused");
        ok(strstr(e.message, "exactly 164 bytes") && strstr(e.message, "has 163"), "... saying both sizes: %s",
           e.message);
        is_int(check(&q, sizeof q + 1, &e), -EPROTO, "one byte long (recv's MSG_TRUNC length) is refused");
        is_int(check(&q, 0, &e), -EPROTO, "an empty message is refused");
        q.version = 2;
        is_int(check(&q, sizeof q, &e), -EPROTO, "another version is refused");
        ok(strstr(e.message, "version 2") != NULL, "... naming it: %s", e.message);
        req(&q, 0, "win11", "0000:01:00.0", "");
        is_int(check(&q, sizeof q, &e), -EINVAL, "op 0 is refused");
        q.op = DEV_HELPER_STATUS + 1;
        is_int(check(&q, sizeof q, &e), -EINVAL, "an op past the last is refused");
        req(&q, DEV_HELPER_TO_VFIO, "win11", "0000:01:00.0", "");
        memset(q.vm, 'a', sizeof q.vm);
        is_int(check(&q, sizeof q, &e), -EINVAL, "a VM name without its NUL is refused");
        ok(strstr(e.message, "NUL-terminated") != NULL, "... saying so: %s", e.message);
        req(&q, DEV_HELPER_TO_VFIO, "win11", "0000:01:00.0", "");
        memset(q.address, '0', sizeof q.address);
        is_int(check(&q, sizeof q, &e), -EINVAL, "an address without its NUL is refused");
        req(&q, DEV_HELPER_GIVE_BACK, "win11", "0000:01:00.0", "nvidia");
        is_int(check(&q, sizeof q, &e), 0, "GIVE_BACK with a driver passes");
        memset(q.driver, 'x', sizeof q.driver);
        is_int(check(&q, sizeof q, &e), -EINVAL, "a driver without its NUL is refused");
        static const char *const bad_drivers[] = { "../../x", "a b", "nv/idia", "x\n" };
        for (size_t i = 0; i < ELEMENTSOF(bad_drivers); i++) {
                req(&q, DEV_HELPER_GIVE_BACK, "win11", "0000:01:00.0", bad_drivers[i]);
                is_int(check(&q, sizeof q, &e), -EINVAL, "driver name '%s' is refused", bad_drivers[i]);
        }
        char long_drv[66];
        memset(long_drv, 'a', 65);
        long_drv[65] = '\0';
        req(&q, DEV_HELPER_GIVE_BACK, "win11", "0000:01:00.0", long_drv);
        is_int(check(&q, sizeof q, &e), -EINVAL, "a 65-character driver name is refused");
        long_drv[64] = '\0';
        req(&q, DEV_HELPER_GIVE_BACK, "win11", "0000:01:00.0", long_drv);
        is_int(check(&q, sizeof q, &e), 0, "a 64-character one passes");
        req(&q, DEV_HELPER_TO_VFIO, "win11", "0000:01:00.0", "nvidia");
        is_int(check(&q, sizeof q, &e), -EINVAL, "TO_VFIO takes no driver");
        req(&q, DEV_HELPER_TO_VFIO, "../etc", "0000:01:00.0", "");
        is_int(check(&q, sizeof q, &e), -EINVAL, "a VM name with a slash is refused");
        req(&q, DEV_HELPER_TO_VFIO, "win11", "0000:01:0g.0", "");
        is_int(check(&q, sizeof q, &e), -EINVAL, "a non-hex slot is not a PCI address");
        req(&q, DEV_HELPER_TO_VFIO, "win11", "../../../etc", "");
        is_int(check(&q, sizeof q, &e), -EINVAL, "a path is not a PCI address");
        req(&q, DEV_HELPER_STATUS, "", "", "");
        is_int(check(&q, sizeof q, &e), 0, "an empty STATUS passes");
        req(&q, DEV_HELPER_STATUS, "win11", "", "");
        is_int(check(&q, sizeof q, &e), -EINVAL, "STATUS naming a VM is refused");
        ok(dev_driver_name_valid("snd_hda_intel") && dev_driver_name_valid("vfio-pci") && !dev_driver_name_valid(""),
           "driver names: snd_hda_intel and vfio-pci yes, '' no");
        ok(dev_helper_request_init(&q, DEV_HELPER_TO_VFIO, "w", "0000:01:00.0xxxxxxxx", "", &e) == -EINVAL,
           "request_init refuses an address longer than its field");
}

/* A root whose etc/phyllome/host.conf holds text, the rest linking to the fixture. */
static char *conf_root(const char *text) {
        char tmpl[] = "/tmp/phyllome-test-devhelper-XXXXXX";
        if (!mkdtemp(tmpl))
                abort();
        static const char *const links[] = { "proc", "sys", "dev" };
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                _cleanup_free_ char *p = NULL, *t = NULL;
                if (asprintf(&p, "%s/%s", tmpl, links[i]) < 0 ||
                    asprintf(&t, "%s/fixtures/host/intel-desktop-iommu/%s", tap_srcdir(), links[i]) < 0 ||
                    symlink(t, p) < 0)
                        abort();
        }
        _cleanup_free_ char *dir = NULL, *conf = NULL;
        if (asprintf(&dir, "%s/etc/phyllome", tmpl) < 0 || asprintf(&conf, "%s/host.conf", dir) < 0 ||
            mkdir_p(dir, 0755) < 0)
                abort();
        phy_error e = { 0 };
        if (file_write_atomic(conf, text, strlen(text), 0644, &e) < 0)
                abort();
        return strdup(tmpl);
}

static void test_host_conf(void) {
        char *root = conf_root("reserve-cpus = 2\npassthrough-allow = 0000:01:00.0 alice\n"
                               "passthrough-allow =   0000:00:02.0    @vfio-users  # the iGPU\n");
        struct host_facts h = { 0 };
        phy_error e = { 0 };
        is_int(host_facts_load(root, &h, &e), 0, "host.conf with passthrough-allow loads: %s", e.message);
        is_int(h.passthrough_allow.n, 2, "two entries");
        if (h.passthrough_allow.n == 2) {
                is_str(h.passthrough_allow.v[0], "0000:01:00.0 alice", "a user");
                is_str(h.passthrough_allow.v[1], "0000:00:02.0 @vfio-users", "a group, spaces and comment gone");
        }
        host_facts_done(&h);
        rm_rf(root);
        free(root);
        static const char *const bad[] = {
                "passthrough-allow = 0000:01:00.0\n", "passthrough-allow = 01:00.0 alice\n",
                "passthrough-allow = 0000:01:00.0 alice bob\n", "passthrough-allow = 0000:01:00.0 @\n",
                "passthrough-allow = 0000:01:00.0 al/ice\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *r = conf_root(bad[i]);
                h = (struct host_facts) { 0 };
                phy_error_clear(&e);
                int rc = host_facts_load(r, &h, &e);
                ok(rc == -EINVAL && strstr(e.message, "host.conf:1: passthrough-allow:"),
                   "'%.*s' is refused naming file:line and key: %s", (int) strlen(bad[i]) - 1, bad[i], e.message);
                host_facts_done(&h);
                rm_rf(r);
                free(r);
        }
}

/* ---- the helper's work on a fixture copy ---- */

static char *temp_copy(const char *allow) {
        _cleanup_free_ char *tmpl = fixture_copy("intel-desktop-iommu", "/tmp/phyllome-test-devhelper");
        static const char *const drivers[] = { "i915", "vfio-pci", "xhci_hcd", "ahci" };
        for (size_t i = 0; i < ELEMENTSOF(drivers); i++) {
                _cleanup_free_ char *b = NULL, *u = NULL;
                if (asprintf(&b, "/sys/bus/pci/drivers/%s/bind", drivers[i]) < 0 ||
                    asprintf(&u, "/sys/bus/pci/drivers/%s/unbind", drivers[i]) < 0)
                        abort();
                fixture_put(tmpl, b, "");
                fixture_put(tmpl, u, "");
        }
        fixture_put(tmpl, "/sys/bus/pci/drivers_probe", "");
        fixture_put(tmpl, "/sys/bus/pci/devices/0000:00:02.0/driver_override", "");
        fixture_put(tmpl, "/dev/vfio/2", "");
        /* As the kernel makes a VFIO group node: root's, 0600. */
        _cleanup_free_ char *node = root_path(tmpl, "/dev/vfio/2");
        if (!node || chmod(node, 0600) < 0)
                abort();
        _cleanup_free_ char *conf = NULL;
        if (asprintf(&conf, "reserve-cpus = 2\n%s", allow) < 0)
                abort();
        fixture_put(tmpl, "/etc/phyllome/host.conf", conf);
        return TAKE_PTR(tmpl);
}

/* The kernel's part: drivers_probe binds to the override, unbind drops the link. */
static int kernel(const char *root, const char *path, const char *value, void *userdata) {
        _cleanup_free_ char *link = NULL, *p = NULL, *ovr = NULL, *rel = NULL;
        if (asprintf(&rel, "/sys/bus/pci/devices/%s/driver", value) < 0 || !(link = root_path(root, rel)))
                return -ENOMEM;
        if (strstr(path, "/unbind"))
                return unlink(link) < 0 ? -errno : 0;
        const char *drv = NULL;
        if (strcmp(path, "/sys/bus/pci/drivers_probe") == 0) {
                free(rel);
                if (asprintf(&rel, "/sys/bus/pci/devices/%s/driver_override", value) < 0)
                        return -ENOMEM;
                if (root_read_attr(root, rel, &ovr) >= 0 && *ovr)
                        drv = ovr;
        } else if (strstr(path, "/bind")) {
                static char name[64];
                snprintf(name, sizeof name, "%.*s", (int) (strstr(path, "/bind") - strlen("/sys/bus/pci/drivers/") - path),
                         path + strlen("/sys/bus/pci/drivers/"));
                drv = name;
        }
        if (!drv)
                return 0;
        if (asprintf(&p, "../../../../bus/pci/drivers/%s", drv) < 0)
                return -ENOMEM;
        (void) unlink(link);
        return symlink(p, link) < 0 ? -errno : 0;
}

static void test_handle(void) {
        char *root = temp_copy("passthrough-allow = 0000:00:02.0 nobody\n");
        _cleanup_free_ char *state = NULL;
        if (asprintf(&state, "%s/state", root) < 0)
                abort();
        struct dev_helper_server s = { .root = root, .state_dir = state, .hook = kernel };
        struct sock_peer nobody = { .uid = 65534, .gid = 65534 }, other = { .uid = 4242, .gid = 4242 };
        struct dev_helper_request q;
        struct dev_helper_reply a;

        req(&q, DEV_HELPER_TO_VFIO, "vm1", "0000:00:17.0", "");
        dev_helper_handle(&s, &nobody, &q, &a);
        is_int(a.error, EPERM, "a device host.conf does not allow is refused");
        ok(strstr(a.message, "0000:00:17.0") && strstr(a.message, "/etc/phyllome/host.conf") &&
           strstr(a.message, "passthrough-allow = 0000:00:17.0 nobody"), "... naming it, host.conf and the line: %s",
           a.message);
        _cleanup_free_ char *ahci = fixture_get(root, "/sys/bus/pci/drivers/ahci/unbind");
        is_str(ahci, "", "... and nothing was written");

        req(&q, DEV_HELPER_TO_VFIO, "vm1", "0000:00:02.0", "");
        dev_helper_handle(&s, &other, &q, &a);
        is_int(a.error, EPERM, "the allowed device is refused to another uid");

        if (geteuid() != 0) {
                ok(1, "# SKIP the moves chown /dev/vfio/2: run as root for them");
                rm_rf(root);
                free(root);
                return;
        }
        dev_helper_handle(&s, &nobody, &q, &a);
        is_int(a.error, 0, "the allowed device moves: %s", a.message);
        is_int(a.iommu_group, 2, "its group is 2");
        is_str(a.driver, "i915", "it was on i915");
        _cleanup_free_ char *drv = dev_pci_driver(root, "0000:00:02.0"), *rec = NULL, *recp = NULL;
        is_str(drv, "vfio-pci", "it is on vfio-pci now");
        if (asprintf(&recp, "%s/0000:00:02.0", state) < 0)
                abort();
        file_read_all(recp, 0, &rec, NULL);
        is_str(rec, "65534 vm1 i915 2\n", "the helper's record");
        _cleanup_free_ char *node = root_path(root, "/dev/vfio/2");
        struct stat st;
        ok(stat(node, &st) == 0 && st.st_uid == 65534 && (st.st_mode & 07777) == 0600, "/dev/vfio/2 is nobody's, 0600");

        dev_helper_handle(&s, &other, &q, &a);
        ok(a.error == EPERM || a.error == EBUSY, "another uid cannot take it: %s", a.message);
        req(&q, DEV_HELPER_GIVE_BACK, "vm1", "0000:00:02.0", "");
        dev_helper_handle(&s, &other, &q, &a);
        is_int(a.error, EPERM, "nor give it back");
        req(&q, DEV_HELPER_GIVE_BACK, "vm1", "0000:00:02.0", "nvidia");
        dev_helper_handle(&s, &nobody, &q, &a);
        is_int(a.error, EINVAL, "a give-back naming another driver than recorded is refused");
        req(&q, DEV_HELPER_STATUS, "", "", "");
        dev_helper_handle(&s, &nobody, &q, &a);
        ok(a.error == 0 && strstr(a.message, "0000:00:02.0 (VM 'vm1', group 2, from i915)"), "STATUS lists it: %s",
           a.message);
        req(&q, DEV_HELPER_GIVE_BACK, "vm1", "0000:00:02.0", "i915");
        dev_helper_handle(&s, &nobody, &q, &a);
        is_int(a.error, 0, "give-back: %s", a.message);
        free(drv);
        drv = dev_pci_driver(root, "0000:00:02.0");
        is_str(drv, "i915", "back on i915");
        ok(stat(node, &st) == 0 && st.st_uid == 0 && (st.st_mode & 07777) == 0600, "/dev/vfio/2 is root's again");
        ok(access(recp, F_OK) < 0, "the record is gone");
        dev_helper_handle(&s, &nobody, &q, &a);
        is_int(a.error, ENOENT, "a second give-back: no record");

        /* /dev/vfio for a QEMU run as nobody by a root monitor. */
        struct dev_vfio_owners saved = { 0 };
        strv addrs = { 0 };
        strv_push_many(&addrs, "0000:00:02.0", "0000:00:17.0", NULL);
        chmod(node, 0640);
        phy_error e = { 0 };
        is_int(dev_vfio_chown_groups(root, &addrs, 65534, 65534, &saved, &e), 0,
               "chown of the groups (group 4 has no node: skipped): %s", e.message);
        is_int(saved.n, 1, "one node recorded");
        ok(stat(node, &st) == 0 && st.st_uid == 65534 && st.st_gid == 65534 && (st.st_mode & 07777) == 0600,
           "/dev/vfio/2 handed to nobody, 0600");
        dev_vfio_restore_owners(root, &saved);
        ok(stat(node, &st) == 0 && st.st_uid == 0 && st.st_gid == 0 && (st.st_mode & 07777) == 0640,
           "and put back as it was (root, 0640)");

        /* The monitor killed (-9) after the chown: its record in the run dir
         * lets the next command put the owner back. */
        char rd[] = "/tmp/phyllome-test-vfio-run-XXXXXX";
        ok(mkdtemp(rd) != NULL, "a run dir");
        _cleanup_free_ char *rootfile = NULL, *owners = NULL;
        asprintf(&rootfile, "%s/devices.root", rd);
        asprintf(&owners, "%s/vfio.owners", rd);
        file_write_atomic(rootfile, root, strlen(root), 0644, NULL);
        is_int(dev_vfio_chown_groups(root, &addrs, 65534, 65534, &saved, &e), 0, "chown again");
        is_int(dev_vfio_owners_save(rd, &saved, &e), 0, "the owners are recorded in the run dir");
        _cleanup_free_ char *line = NULL;
        file_read_all(owners, 0, &line, NULL);
        is_str(line, "/dev/vfio/2 0 0 640\n", "one line: node, uid, gid, mode");
        is_int(dev_give_back_all_recorded(rd, &e), 0, "the recorded give-back (no devices.state here)");
        ok(stat(node, &st) == 0 && st.st_uid == 0 && st.st_gid == 0 && (st.st_mode & 07777) == 0640,
           "it put /dev/vfio/2 back (root, 0640)");
        ok(access(owners, F_OK) < 0, "and removed the record");
        file_write_atomic(owners, "/etc/shadow 0 0 777\n", 20, 0600, NULL);
        is_int(dev_vfio_restore_recorded(root, rd), 1, "a record naming anything but /dev/vfio/N is read...");
        struct stat sh;
        _cleanup_free_ char *shadow = root_path(root, "/etc/shadow");
        ok(!shadow || stat(shadow, &sh) < 0 || (sh.st_mode & 07777) != 0777, "...and that line is ignored");
        rm_rf(rd);
        strv_done(&addrs);
        rm_rf(root);
        free(root);
}

static void test_call_without_helper(void) {
        struct dev_helper_request q;
        struct dev_helper_reply a;
        phy_error e = { 0 };
        req(&q, DEV_HELPER_STATUS, "", "", "");
        int r = dev_helper_call("/tmp/phyllome-test-no-such-devhelper.sock", &q, &a, &e);
        ok(r == -ENOENT && strstr(e.message, "/tmp/phyllome-test-no-such-devhelper.sock") &&
           strstr(e.message, "systemctl start phyllome-devhelper.socket"),
           "no helper: the error names the socket and how to start it: %s", e.message);
}

/*
 * Issue 12, finding 6: a real peer process (uid 4242, 71 supplementary
 * groups, none of them 0) connects; the helper's own peer read and check
 * must see all 71 groups and never gid 0.  Before the fix the groups past 64
 * made getsockopt fail with ERANGE, the array stayed zeroed and the peer
 * counted as a member of gid 0: '@root' gave it TO_VFIO.
 */
#define MANY_GROUPS 71
static void test_many_groups(void) {
        if (geteuid() != 0) {
                ok(1, "# SKIP a peer with %d groups needs setgroups: run as root", MANY_GROUPS);
                return;
        }
        struct test_peer t;
        int fd = peer_start(&t, MANY_GROUPS, 30000);
        struct sock_peer p = { 0 };
        is_int(fd >= 0 ? sock_peer_get(fd, &p) : -errno, 0, "the peer's credentials are read");
        is_int(p.uid, 4242, "the peer is uid 4242");
        is_int(p.n_groups, MANY_GROUPS, "all %d supplementary groups are read", MANY_GROUPS);
        bool zero = false, last = false;
        for (size_t i = 0; i < p.n_groups; i++) {
                zero |= p.groups[i] == 0;
                last |= p.groups[i] == 30000 + MANY_GROUPS - 1;
        }
        ok(!zero && last, "none of them is gid 0, and the 71st is there");

        char *root = temp_copy("passthrough-allow = 0000:00:02.0 @root\n");
        _cleanup_free_ char *state = NULL;
        if (asprintf(&state, "%s/state", root) < 0)
                abort();
        struct dev_helper_server s = { .root = root, .state_dir = state, .hook = kernel };
        struct dev_helper_request q;
        struct dev_helper_reply a;
        req(&q, DEV_HELPER_TO_VFIO, "vm1", "0000:00:02.0", "");
        dev_helper_handle(&s, &p, &q, &a);
        is_int(a.error, EPERM, "a device allowed to @root is refused to the many-group peer: %s", a.message);
        _cleanup_free_ char *drv = dev_pci_driver(root, "0000:00:02.0");
        is_str(drv, "i915", "and it stays on its driver");
        sock_peer_done(&p);
        ok(peer_stop(&t), "the peer process ran as planned");
        rm_rf(root);
        free(root);
}

int main(void) {
        test_request_check();
        test_host_conf();
        test_handle();
        test_call_without_helper();
        test_many_groups();
        return tap_done();
}

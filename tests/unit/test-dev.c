/* SPDX-License-Identifier: MIT */
/*
 * src/dev against the host fixtures.  The sysfs plans are checked exactly;
 * the executor runs in a temporary copy of a fixture tree, where
 * fake_kernel() below plays the kernel's part of each write (moves the
 * driver link on unbind/bind/drivers_probe, makes an mdev or VFs appear).
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "fixture.h"
#include "cleanup.h"
#include "fileio.h"
#include "dev/dev.h"
#include "host/check.h"
#include "host/host.h"
#include "qemu/tools.h"
#include "run/run.h"
#include "vm/vm.h"
#include "value.h"
#include "qemu/argv.h"


/* A temporary copy of a fixture with the kernel's write-only attributes. */
static char *temp_copy(const char *name) {
        _cleanup_free_ char *tmpl = fixture_copy(name, "/tmp/phyllome-test-dev");
        static const char *const drivers[] = { "nvidia", "snd_hda_intel", "vfio-pci", "i915", "nvme", "xhci_hcd" };
        for (size_t i = 0; i < ELEMENTSOF(drivers); i++) {
                _cleanup_free_ char *b = NULL, *u = NULL;
                asprintf(&b, "/sys/bus/pci/drivers/%s/bind", drivers[i]);
                asprintf(&u, "/sys/bus/pci/drivers/%s/unbind", drivers[i]);
                fixture_put(tmpl, b, "");
                fixture_put(tmpl, u, "");
        }
        fixture_put(tmpl, "/sys/bus/pci/drivers_probe", "");
        fixture_put(tmpl, "/sys/bus/pci/devices/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_4/create", "");
        fixture_put(tmpl, "/sys/bus/pci/devices/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_8/create", "");
        _cleanup_free_ char *devs = root_path(tmpl, "/sys/bus/pci/devices");
        DIR *d = opendir(devs);
        for (struct dirent *de; d && (de = readdir(d));) {
                _cleanup_free_ char *o = NULL;
                if (de->d_name[0] == '.')
                        continue;
                asprintf(&o, "/sys/bus/pci/devices/%s/driver_override", de->d_name);
                fixture_put(tmpl, o, "");
        }
        if (d)
                closedir(d);
        return TAKE_PTR(tmpl);
}

static void rm_tree(char *root) {
        rm_rf(root);
        free(root);
}

struct kernel {
        const char *fail_path;      /* refuse this write (EIO), for the failure paths */
        const char *fail_value;
        unsigned writes;
        const char *log;            /* append each write here ("path value", \n escaped): the
                                     * monitor is another process, so the count is not seen */
};

static int link_driver(const char *root, const char *addr, const char *drv) {
        _cleanup_free_ char *rel = NULL, *p = NULL, *target = NULL;
        asprintf(&rel, "/sys/bus/pci/devices/%s/driver", addr);
        p = root_path(root, rel);
        if (!drv)
                return unlink(p) < 0 ? -errno : 0;
        asprintf(&target, "../../../../bus/pci/drivers/%s", drv);
        return symlink(target, p) < 0 ? -errno : 0;
}

static bool ends_with(const char *s, const char *suffix) {
        size_t n = strlen(s), m = strlen(suffix);
        return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int fake_kernel(const char *root, const char *path, const char *value, void *userdata) {
        struct kernel *k = userdata;
        char drv[64], parent[16], type[64];
        k->writes++;
        if (k->log) {
                FILE *f = fopen(k->log, "ae");
                if (f) {
                        fprintf(f, "%s %s\n", path, strcmp(value, "\n") == 0 ? "\\n" : value);
                        fclose(f);
                }
        }
        if (k->fail_path && strcmp(path, k->fail_path) == 0 && (!k->fail_value || strcmp(value, k->fail_value) == 0))
                return -EIO;
        if (ends_with(path, "/unbind") && sscanf(path, "/sys/bus/pci/drivers/%63[^/]/unbind", drv) == 1) {
                _cleanup_free_ char *cur = dev_pci_driver(root, value);
                if (!cur || strcmp(cur, drv) != 0)
                        return -ENODEV;
                return link_driver(root, value, NULL);
        }
        if (ends_with(path, "/bind") && sscanf(path, "/sys/bus/pci/drivers/%63[^/]/bind", drv) == 1) {
                _cleanup_free_ char *cur = dev_pci_driver(root, value), *rel = NULL, *ovr = NULL;
                if (cur)
                        return -EBUSY;
                asprintf(&rel, "/sys/bus/pci/devices/%s/driver_override", value);
                ovr = fixture_get(root, rel);
                if (ovr[0] && strcmp(ovr, drv) != 0)
                        return -EINVAL;  /* driver_override restricts which driver may bind */
                return link_driver(root, value, drv);
        }
        if (strcmp(path, "/sys/bus/pci/drivers_probe") == 0) {
                _cleanup_free_ char *cur = dev_pci_driver(root, value), *rel = NULL, *ovr = NULL;
                asprintf(&rel, "/sys/bus/pci/devices/%s/driver_override", value);
                ovr = fixture_get(root, rel);
                return !cur && ovr[0] ? link_driver(root, value, ovr) : 0;
        }
        if (ends_with(path, "/create") &&
            sscanf(path, "/sys/bus/pci/devices/%15[^/]/mdev_supported_types/%63[^/]/create", parent, type) == 2) {
                _cleanup_free_ char *dir = NULL, *avail_rel = NULL, *avail = NULL;
                asprintf(&dir, "/sys/bus/mdev/devices/%s/remove", value);
                fixture_put(root, dir, "");
                asprintf(&avail_rel, "/sys/bus/pci/devices/%s/mdev_supported_types/%s/available_instances", parent, type);
                avail = fixture_get(root, avail_rel);
                char n[32];
                unsigned long long left = 0;
                if (parse_uint(avail, 1000, &left) < 0 || left == 0)
                        return -ENOSPC;
                snprintf(n, sizeof n, "%llu\n", left - 1);
                fixture_put(root, avail_rel, n);
                return 0;
        }
        if (ends_with(path, "/remove") && sscanf(path, "/sys/bus/mdev/devices/%36[^/]/remove", type) == 1) {
                _cleanup_free_ char *rel = NULL, *p = NULL;
                asprintf(&rel, "/sys/bus/mdev/devices/%s", type);
                p = root_path(root, rel);
                return rm_rf(p);
        }
        if (ends_with(path, "/sriov_numvfs") && sscanf(path, "/sys/bus/pci/devices/%15[^/]/sriov_numvfs", parent) == 1) {
                /* VFs at function 1.. of the same slot (an iGPU's layout), each in a new IOMMU group. */
                unsigned long long n = 0;
                if (parse_uint(value, 16, &n) < 0)
                        return -EINVAL;
                for (unsigned i = 0; i < (unsigned) n; i++) {
                        _cleanup_free_ char *vf = NULL, *rel = NULL, *p = NULL, *t = NULL, *g = NULL, *gl = NULL;
                        asprintf(&vf, "%.11s%u", parent, i + 1);
                        asprintf(&rel, "/sys/bus/pci/devices/%s/class", vf);
                        fixture_put(root, rel, "0x030000\n");
                        free(rel);
                        asprintf(&rel, "/sys/bus/pci/devices/%s/driver_override", vf);
                        fixture_put(root, rel, "");
                        free(rel);
                        asprintf(&rel, "/sys/kernel/iommu_groups/%u/devices/%s", 20 + i, vf);
                        fixture_put(root, rel, "");  /* replaced by the link below */
                        p = root_path(root, rel);
                        unlink(p);
                        asprintf(&t, "../../../../bus/pci/devices/%s", vf);
                        symlink(t, p);
                        free(rel);
                        asprintf(&rel, "/sys/bus/pci/devices/%s/iommu_group", vf);
                        gl = root_path(root, rel);
                        asprintf(&g, "../../../../kernel/iommu_groups/%u", 20 + i);
                        symlink(g, gl);
                        free(rel);
                        free(p);
                        free(t);
                        asprintf(&rel, "/sys/bus/pci/devices/%s/virtfn%u", parent, i);
                        p = root_path(root, rel);
                        asprintf(&t, "../%s", vf);
                        symlink(t, p);
                }
                return 0;
        }
        return 0;
}

static void test_attach_plans(void) {
        _cleanup_free_ char *intel = fixture_path("intel-desktop-iommu"), *amd = fixture_path("amd-laptop-shared-group");
        phy_error err = { 0 };
        _cleanup_strv_ strv add = { 0 }, none = { 0 };
        struct dev_attach_opts o = { .attached = &none };

        int r = dev_pci_attach_plan(intel, "0000:01:00.0", &o, &add, &err);
        is_int(r, -EPERM, "intel: the boot-VGA GTX 1080 is refused without --force");
        is_str(err.message, "PCI device 0000:01:00.0 (IOMMU group 1) is in use by the host: it is the host's boot "
               "display (boot_vga) and driver 'nvidia' drives it; pass --force to give it to the VM anyway (the host "
               "loses it while the VM runs)", "intel: the refusal says why");
        o.force = true;
        r = dev_pci_attach_plan(intel, "0000:01:00.0", &o, &add, &err);
        is_int(r, 0, "intel: GTX 1080 with --force");
        _cleanup_free_ char *j = strv_join(&add, " ");
        is_str(j, "0000:01:00.0 0000:01:00.1", "intel: the GPU takes its audio function along (bridge 00:01.0 stays)");
        strv_done(&add);

        o.force = false;
        r = dev_pci_attach_plan(intel, "0000:02:00.0", &o, &add, &err);
        is_int(r, -EPERM, "intel: the NVMe holding / is refused");
        ok(strstr(err.message, "it holds the host's root filesystem (/dev/nvme0n1)"), "intel: root disk named: %s",
           err.message);

        r = dev_pci_attach_plan(intel, "0000:00:14.0", &o, &add, &err);
        j = (free(j), strv_join(&add, " "));
        ok(r == 0 && strcmp(j, "0000:00:14.0 0000:00:14.2") == 0, "intel: xhci takes the other function of its "
           "slot along: %s", j);
        strv_done(&add);

        o.with_group = false;
        r = dev_pci_attach_plan(amd, "0000:01:00.0", &o, &add, &err);
        is_int(r, -EBUSY, "amd: the dGPU's shared group is refused");
        is_str(err.message, "PCI device 0000:01:00.0 shares IOMMU group 3 with 0000:02:00.0 (driver xhci_hcd), "
               "0000:03:00.0 (driver rtw_8821ce), 0000:04:00.0 (driver nvme); these would be taken from the host too: "
               "pass --with-group to give the VM the whole group, or move the card to a slot with its own group",
               "amd: each other member and its driver named");
        o.with_group = true;
        r = dev_pci_attach_plan(amd, "0000:01:00.0", &o, &add, &err);
        is_int(r, -EPERM, "amd: --with-group would take the root NVMe: refused");
        ok(strstr(err.message, "0000:04:00.0") && strstr(err.message, "root filesystem"), "amd: %s", err.message);

        /* Members already attached to the VM do not block. */
        _cleanup_strv_ strv have = { 0 };
        strv_push_many(&have, "0000:02:00.0", "0000:03:00.0", "0000:04:00.0", NULL);
        o = (struct dev_attach_opts) { .attached = &have };
        r = dev_pci_attach_plan(amd, "0000:01:00.0", &o, &add, &err);
        j = (free(j), strv_join(&add, " "));
        ok(r == 0 && strcmp(j, "0000:01:00.0 0000:01:00.1") == 0,
           "amd: members already attached to the same VM do not block: %s", r < 0 ? err.message : j);
        strv_done(&add);

        r = dev_pci_attach_plan(intel, "0000:09:00.0", &o, &add, &err);
        is_int(r, -ENODEV, "no such device");
        _cleanup_free_ char *off = fixture_path("amd-laptop-iommu-off");
        r = dev_pci_attach_plan(off, "0000:01:00.0", &o, &add, &err);
        ok(r == -ENODEV && strstr(err.message, "no IOMMU group"), "IOMMU off: %s", err.message);
}

static const char to_vfio_golden[] =
        "/sys/bus/pci/devices/0000:01:00.0/driver_override vfio-pci\n"
        "/sys/bus/pci/drivers/nvidia/unbind 0000:01:00.0\n"
        "/sys/bus/pci/drivers_probe 0000:01:00.0\n"
        "/sys/bus/pci/devices/0000:01:00.1/driver_override vfio-pci\n"
        "/sys/bus/pci/drivers/snd_hda_intel/unbind 0000:01:00.1\n"
        "/sys/bus/pci/drivers_probe 0000:01:00.1\n";
static const char give_back_golden[] =
        "/sys/bus/pci/devices/0000:01:00.1/driver_override \\n\n"
        "/sys/bus/pci/drivers/vfio-pci/unbind 0000:01:00.1\n"
        "/sys/bus/pci/drivers/snd_hda_intel/bind 0000:01:00.1\n"
        "/sys/bus/pci/devices/0000:01:00.0/driver_override \\n\n"
        "/sys/bus/pci/drivers/vfio-pci/unbind 0000:01:00.0\n"
        "/sys/bus/pci/drivers/nvidia/bind 0000:01:00.0\n";

static void test_sysfs_plan(void) {
        char *root = temp_copy("intel-desktop-iommu");
        phy_error err = { 0 };
        _cleanup_strv_ strv gpu = { 0 }, drivers = { 0 };
        strv_push_many(&gpu, "0000:01:00.0", "0000:01:00.1", NULL);
        _cleanup_dev_plan_ struct dev_plan p = { 0 }, back = { 0 };
        is_int(dev_plan_to_vfio(root, &gpu, &p, &drivers, &err), 0, "plan to vfio-pci");
        _cleanup_free_ char *text = dev_plan_format(&p);
        is_str(text, to_vfio_golden, "the plan: driver_override, unbind, drivers_probe per function");
        _cleanup_free_ char *dj = strv_join(&drivers, " ");
        is_str(dj, "nvidia snd_hda_intel", "the drivers to give back");

        /* Runtime dir of a VM; the state is recorded before the first write. */
        _cleanup_free_ char *rd = NULL;
        asprintf(&rd, "%s/run-vm", root);
        mkdir(rd, 0755);
        struct kernel k = { 0 };
        is_int(dev_passthrough_prepare(root, rd, &gpu, fake_kernel, &k, &err), 0, "prepare: moved to vfio-pci");
        is_int(k.writes, 6, "prepare: six writes");
        _cleanup_free_ char *d0 = dev_pci_driver(root, "0000:01:00.0"), *d1 = dev_pci_driver(root, "0000:01:00.1");
        is_str(d0, "vfio-pci", "GPU on vfio-pci");
        is_str(d1, "vfio-pci", "audio on vfio-pci");
        _cleanup_free_ char *st = NULL;
        asprintf(&st, "%s/devices.state", rd);
        _cleanup_free_ char *state = NULL;
        file_read_all(st, 0, &state, NULL);
        is_str(state, "0000:01:00.0 nvidia\n0000:01:00.1 snd_hda_intel\n", "state records the original drivers");

        is_int(dev_plan_give_back(root, &gpu, &drivers, &back, &err), 0, "give-back plan");
        _cleanup_free_ char *bt = dev_plan_format(&back);
        is_str(bt, give_back_golden, "the give-back: clear override, unbind vfio-pci, bind the recorded driver, "
               "in reverse");

        /* "Crash mid-VM": the monitor is gone; a later command reads the state and gives back. */
        struct kernel k2 = { 0 };
        is_int(dev_passthrough_restore(root, rd, fake_kernel, &k2, &err), 0, "restore from the recorded state");
        free(d0), free(d1);
        d0 = dev_pci_driver(root, "0000:01:00.0");
        d1 = dev_pci_driver(root, "0000:01:00.1");
        is_str(d0, "nvidia", "GPU back on nvidia");
        is_str(d1, "snd_hda_intel", "audio back on snd_hda_intel");
        _cleanup_free_ char *ovr = fixture_get(root, "/sys/bus/pci/devices/0000:01:00.0/driver_override");
        is_str(ovr, "", "driver_override cleared");
        ok(access(st, F_OK) < 0, "the state file is gone after a full give-back");
        is_int(dev_passthrough_restore(root, rd, fake_kernel, &k2, &err), 0, "restore without state: nothing to do");

        /* A failure half-way gives back what moved. */
        struct kernel k3 = { .fail_path = "/sys/bus/pci/drivers/snd_hda_intel/unbind" };
        int r = dev_passthrough_prepare(root, rd, &gpu, fake_kernel, &k3, &err);
        ok(r < 0 && strstr(err.message, "snd_hda_intel/unbind"), "prepare fails at the audio unbind: %s", err.message);
        free(d0), free(d1);
        d0 = dev_pci_driver(root, "0000:01:00.0");
        d1 = dev_pci_driver(root, "0000:01:00.1");
        is_str(d0, "nvidia", "after the failure the GPU is back on nvidia");
        is_str(d1, "snd_hda_intel", "the audio never left");
        ok(access(st, F_OK) < 0, "and nothing is left to give back");

        /* A give-back that fails keeps the state for the next try. */
        struct kernel k4 = { 0 }, k5 = { .fail_path = "/sys/bus/pci/drivers/nvidia/bind" };
        is_int(dev_passthrough_prepare(root, rd, &gpu, fake_kernel, &k4, &err), 0, "prepare again");
        r = dev_passthrough_restore(root, rd, fake_kernel, &k5, &err);
        ok(r < 0 && access(st, F_OK) == 0, "a failed give-back keeps devices.state: %s", err.message);
        is_int(dev_passthrough_restore(root, rd, fake_kernel, &k4, &err), 0, "the next try finishes it");
        free(d0);
        d0 = dev_pci_driver(root, "0000:01:00.0");
        is_str(d0, "nvidia", "GPU back on nvidia after the retry");

        /* The state file is size-checked and parsed strictly. */
        fixture_put(root, "/run-vm/devices.state", "0000:01:00.0 ../../evil\n");
        strv a = { 0 }, dd = { 0 };
        ok(dev_state_load(rd, &a, &dd, &err) == -EINVAL, "a damaged state file is refused: %s", err.message);
        rm_tree(root);
}

static void test_mdev_sriov(void) {
        char *root = temp_copy("intel-desktop-iommu");
        phy_error err = { 0 };
        _cleanup_(dev_mdev_types_done) struct dev_mdev_types t = { 0 };
        is_int(dev_mdev_types(root, "0000:00:02.0", &t, &err), 0, "mdev types of the iGPU");
        ok(t.n == 2 && strcmp(t.v[0].id, "i915-GVTg_V5_4") == 0 && strcmp(t.v[0].name, "GVTg_V5_4") == 0 &&
           t.v[0].available == 2 && strstr(t.v[0].description, "resolution: 1920x1200") &&
           strcmp(t.v[1].id, "i915-GVTg_V5_8") == 0 && t.v[1].available == 5, "types: id, name, available, description");
        const char *uuid = "4b20d080-1b54-4048-85b3-a6a62d165c01";
        struct kernel k = { 0 };
        is_int(dev_mdev_create(root, "0000:00:02.0", "i915-GVTg_V5_4", uuid, fake_kernel, &k, &err), 0, "mdev create");
        _cleanup_free_ char *created = fixture_get(root, "/sys/bus/pci/devices/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_4/create");
        is_str(created, uuid, "the UUID was written to create");
        ok(root_exists(root, "/sys/bus/mdev/devices/4b20d080-1b54-4048-85b3-a6a62d165c01"), "the mdev exists");
        is_int(dev_mdev_create(root, "0000:00:02.0", "i915-GVTg_V5_4", "4b20d080-1b54-4048-85b3-a6a62d165c02",
                               fake_kernel, &k, &err), 0, "a second instance");
        int r = dev_mdev_create(root, "0000:00:02.0", "i915-GVTg_V5_4", "4b20d080-1b54-4048-85b3-a6a62d165c03",
                                fake_kernel, &k, &err);
        ok(r == -ENOSPC && strstr(err.message, "no instance left"), "a third is refused: %s", err.message);
        r = dev_mdev_create(root, "0000:00:02.0", "nope", uuid, fake_kernel, &k, &err);
        ok(r == -ENOENT && strstr(err.message, "no mediated device type 'nope'"), "unknown type: %s", err.message);
        ok(dev_mdev_create(root, "0000:00:02.0", "i915-GVTg_V5_4", "not-a-uuid", fake_kernel, &k, &err) == -EINVAL,
           "a bad UUID is refused");
        is_int(dev_mdev_remove(root, uuid, fake_kernel, &k, &err), 0, "mdev remove");
        ok(!root_exists(root, "/sys/bus/mdev/devices/4b20d080-1b54-4048-85b3-a6a62d165c01"), "the mdev is gone");
        ok(dev_mdev_remove(root, uuid, fake_kernel, &k, &err) == -ENOENT, "removing it again: %s", err.message);
        dev_mdev_types_done(&t);
        is_int(dev_mdev_types(root, "0000:01:00.0", &t, &err), 0, "the GTX offers none");
        is_int(t.n, 0, "no types");

        /* SR-IOV: enable two VFs, they appear, one can be attached. */
        is_int(dev_sriov_set(root, "0000:00:02.0", 2, fake_kernel, &k, &err), 0, "sriov_numvfs := 2");
        _cleanup_free_ char *nv = fixture_get(root, "/sys/bus/pci/devices/0000:00:02.0/sriov_numvfs");
        is_str(nv, "2", "written");
        _cleanup_strv_ strv vfs = { 0 }, add = { 0 }, none = { 0 };
        is_int(dev_sriov_vfs(root, "0000:00:02.0", &vfs, &err), 0, "list VFs");
        _cleanup_free_ char *vj = strv_join(&vfs, " ");
        is_str(vj, "0000:00:02.1 0000:00:02.2", "the VFs");
        ok(dev_sriov_set(root, "0000:00:02.0", 8, fake_kernel, &k, &err) == -ERANGE, "more than sriov_totalvfs: %s",
           err.message);
        ok(dev_sriov_set(root, "0000:01:00.0", 1, fake_kernel, &k, &err) == -EOPNOTSUPP, "the GTX has no SR-IOV");
        struct dev_attach_opts o = { .attached = &none };
        r = dev_pci_attach_plan(root, "0000:00:02.1", &o, &add, &err);
        _cleanup_free_ char *aj = strv_join(&add, " ");
        ok(r == 0 && strcmp(aj, "0000:00:02.1") == 0, "a VF in its own group can be attached: %s",
           r < 0 ? err.message : aj);
        rm_tree(root);
}

/* The VM's definition file, written directly: the test needs no disk or NIC. */
static void write_def(const char *home, const char *name, const char *extra) {
        _cleanup_free_ char *conf = vm_conf_path(home, name), *text = NULL;
        _cleanup_free_ char *dir = strdup(conf);
        *strrchr(dir, '/') = '\0';
        mkdir_p(dir, 0755);
        asprintf(&text, "[vm]\nname = %s\nprofile = linux\n\n[memory]\nsize = 128M\n\n[firmware]\ntype = bios\n\n"
                 "[display]\ntype = none\n\n%s", name, extra);
        fixture_put("/", conf, text);
}

/*
 * The monitor's wiring, end to end with the real QEMU: the start moves the
 * fixture GPU to vfio-pci, QEMU refuses vfio-pci,host= (no such device on
 * this machine), and the failed start gives the devices back before it
 * returns.  Then the reconciliation: monitor and QEMU gone without a word,
 * the next status gives back what devices.state records.
 */
static void test_start_gives_back(void) {
        _cleanup_(qemu_tools_done) struct qemu_tools t = { 0 };
        phy_error err = { 0 };
        if (qemu_tools_find(&t, &err) < 0 || !t.qemu) {
                /* A TAP skip: the plans above are still checked. */
                for (int i = 0; i < 12; i++)
                        ok(true, "# skip qemu-system-x86_64 is not installed");
                return;
        }
        char home[] = "/tmp/phyllome-test-dev-home-XXXXXX", cache[] = "/tmp/phyllome-test-dev-cache-XXXXXX";
        if (!mkdtemp(home) || !mkdtemp(cache))
                abort();
        chmod(home, 0755);  /* as root, QEMU runs as nobody and must reach it */
        setenv("PHYLLOME_HOME", home, 1);
        setenv("PHYLLOME_CACHE", cache, 1);
        setenv("PHYLLOME_FORCE_TCG", "1", 1);
        char *root = temp_copy("intel-desktop-iommu");
        write_def(home, "pt", "[passthrough]\ndevices = 0000:01:00.0 0000:01:00.1\n");

        _cleanup_free_ char *log = NULL, *rd = NULL;
        asprintf(&log, "%s/writes.log", root);
        struct kernel k = { .log = log };
        struct run_start_opts o = { .root = root, .home = home, .name = "pt", .dev_hook = fake_kernel,
                                    .dev_hook_data = &k };
        int r = run_start(&o, NULL, &err);
        ok(r < 0 && strstr(err.message, "QEMU could not start") && strstr(err.message, "vfio"),
           "QEMU refuses the fixture's GPU: %s", err.message);
        _cleanup_free_ char *writes = NULL, *want = NULL;
        file_read_all(log, 65536, &writes, NULL);
        asprintf(&want, "%s%s", to_vfio_golden, give_back_golden);
        is_str(writes, want, "the start moved both functions to vfio-pci, the failure gave them back");
        _cleanup_free_ char *d0 = dev_pci_driver(root, "0000:01:00.0"), *d1 = dev_pci_driver(root, "0000:01:00.1");
        is_str(d0, "nvidia", "GPU back on nvidia");
        is_str(d1, "snd_hda_intel", "audio back on snd_hda_intel");
        run_dir_path(home, "pt", &rd, &err);
        _cleanup_free_ char *st_path = NULL;
        asprintf(&st_path, "%s/devices.state", rd);
        ok(access(st_path, F_OK) < 0 && errno == ENOENT, "devices.state is gone once they are back");
        struct run_state st = { 0 };
        is_int(run_wait(home, "pt", RUN_STOPPED, 10000, &st, &err), 0, "the monitor finished");
        is_str(run_state_name(st.state), "failed", "the VM's state: failed");
        run_state_done(&st);

        /* kill -9 of monitor and QEMU while the GPU was on vfio-pci: a dead pid
         * stands for both; the state the monitor had recorded is left. */
        link_driver(root, "0000:01:00.0", NULL);
        link_driver(root, "0000:01:00.0", "vfio-pci");
        fixture_put(root, "/sys/bus/pci/devices/0000:01:00.0/driver_override", "vfio-pci\n");
        _cleanup_strv_ strv a = { 0 }, d = { 0 };
        strv_push(&a, "0000:01:00.0");
        strv_push(&d, "nvidia");
        dev_state_save(rd, &a, &d, &err);
        _cleanup_free_ char *rootfile = NULL, *state_json = NULL;
        asprintf(&rootfile, "%s/devices.root", rd);
        fixture_put("/", rootfile, root);
        pid_t dead = fork();
        if (dead == 0)
                _exit(0);
        waitpid(dead, NULL, 0);
        struct run_state crashed = { .state = RUN_RUNNING, .monitor_pid = dead, .qemu_pid = dead, .exit_status = -1 };
        run_boot_id(crashed.boot_id);
        asprintf(&state_json, "%s/state.json", rd);
        run_state_write_file(state_json, &crashed, &err);
        is_int(run_state_get(home, "pt", &st, &err), 0, "status after the crash");
        is_str(run_state_name(st.state), "crashed", "reported crashed");
        run_state_done(&st);
        {
                _cleanup_free_ char *ovr0 = fixture_get(root, "/sys/bus/pci/devices/0000:01:00.0/driver_override");
                ok(strcmp(ovr0, "vfio-pci") == 0 && access(st_path, F_OK) == 0,
                   "a status read gives nothing back (override '%s')", ovr0);
        }
        is_int(run_reconcile(home, "pt", &st, &err), 0, "reconcile after the crash");
        is_str(run_state_name(st.state), "crashed", "recorded crashed");
        run_state_done(&st);
        _cleanup_free_ char *ovr = fixture_get(root, "/sys/bus/pci/devices/0000:01:00.0/driver_override"),
                            *unb = fixture_get(root, "/sys/bus/pci/drivers/vfio-pci/unbind"),
                            *bnd = fixture_get(root, "/sys/bus/pci/drivers/nvidia/bind");
        ok(strcmp(ovr, "") == 0 && strcmp(unb, "0000:01:00.0") == 0 && strcmp(bnd, "0000:01:00.0") == 0,
           "reconciliation gave the GPU back: override '%s', vfio-pci/unbind '%s', nvidia/bind '%s'", ovr, unb, bnd);
        ok(access(st_path, F_OK) < 0 && access(rootfile, F_OK) < 0, "devices.state and devices.root removed");

        /* [tpm] type = passthrough on a host without /dev/tpm0: refused at start. */
        _cleanup_free_ char *mac = fixture_path("apple-mac");
        write_def(home, "tp", "[tpm]\ntype = passthrough\n");
        struct run_start_opts o2 = { .root = mac, .home = home, .name = "tp" };
        r = run_start(&o2, NULL, &err);
        ok(r < 0 && strstr(err.message, "/dev/tpm0"), "TPM passthrough without /dev/tpm0 refused: %s", err.message);
        rm_tree(root);
        rm_rf(home);
        rm_rf(cache);
}

static void test_usb_tpm_gl(void) {
        ok(value_usb_id_valid("046d:c52b"), "vendor:product");
        ok(value_usb_id_valid("1-2") && value_usb_id_valid("3-1.4") && value_usb_is_busport("3-1.4"), "bus-port");
        ok(!value_usb_id_valid("046d:c52") && !value_usb_id_valid("1-") && !value_usb_id_valid("0-1") &&
           !value_usb_id_valid("1-2..3") && !value_usb_id_valid("x-1"), "bad USB ids refused");
        phy_error err = { 0 };
        _cleanup_free_ char *a = NULL, *b = NULL;
        is_int(qemu_usb_host_opts("046d:c52b", "usb1", &a, &err), 0, "usb-host by id");
        is_str(a, "usb-host,id=usb1,bus=usb0.0,vendorid=0x046d,productid=0xc52b", "vendorid/productid");
        is_int(qemu_usb_host_opts("3-1.4", "usb2", &b, &err), 0, "usb-host by port");
        is_str(b, "usb-host,id=usb2,bus=usb0.0,hostbus=3,hostport=1.4", "hostbus/hostport");

        _cleanup_free_ char *intel = fixture_path("intel-desktop-iommu"), *mac = fixture_path("apple-mac");
        is_int(dev_tpm_passthrough_check(intel, &err), 0, "intel has /dev/tpm0");
        ok(dev_tpm_passthrough_check(mac, &err) == -ENODEV && strstr(err.message, "does not exist") &&
           strstr(err.message, "emulated"), "mac: TPM passthrough refused: %s", err.message);

        struct dev_gl_modes m = { 0 };
        setenv("PHYLLOME_LIBEGL", "/nonexistent/libEGL.so.1", 1);
        is_int(dev_gl_modes_probe(intel, "/dev/dri/renderD128", &m), 0, "gl probe");
        ok(!m.egl_headless && !m.spice_gl && !m.virgl_gtk_sdl && strstr(m.why_not, "libEGL"),
           "no libEGL: no GL mode: %s", m.why_not);
        dev_gl_modes_done(&m);
        _cleanup_free_ char *self = realpath("/proc/self/exe", NULL);
        setenv("PHYLLOME_LIBEGL", self, 1);  /* any readable file stands in for it */
        unsetenv("DISPLAY");
        unsetenv("WAYLAND_DISPLAY");
        char *root = temp_copy("intel-desktop-iommu");
        fixture_put(root, "/dev/dri/renderD128", "");
        is_int(dev_gl_modes_probe(root, "/dev/dri/renderD128", &m), 0, "gl probe with a render node");
        ok(m.egl_headless && m.spice_gl && !m.virgl_gtk_sdl && strstr(m.why_not, "no display"),
           "render node, no display: egl-headless and spice gl: %s", m.why_not);
        dev_gl_modes_done(&m);
        {
                /* The same as host check lines: one per mode, PASS or INFO with the reason. */
                _cleanup_(host_facts_done) struct host_facts h = { 0 };
                _cleanup_(host_check_report_done) struct host_check_report rep = { 0 };
                is_int(host_facts_load(root, &h, &err), 0, "facts of the copy");
                is_str(host_render_node(&h), "/dev/dri/renderD128", "the fixture GPU's render node");
                is_int(dev_gl_modes_check(root, &h, &rep), 0, "3D modes as check lines");
                const struct host_check_result *v = host_check_find(&rep, "gl.virgl-gtk-sdl"),
                                               *e = host_check_find(&rep, "gl.egl-headless"),
                                               *sp = host_check_find(&rep, "gl.spice");
                ok(rep.n == 3 && v && e && sp, "three lines");
                ok(v && v->status == HOST_CHECK_INFO && strstr(v->detail, "no display") && v->remedy,
                   "gtk/sdl: INFO, no display: %s", v ? v->detail : "");
                ok(e && e->status == HOST_CHECK_PASS && strstr(e->detail, "renderD128") && !e->remedy,
                   "egl-headless: PASS: %s", e ? e->detail : "");
                ok(sp && sp->status == HOST_CHECK_PASS, "spice gl=on: PASS");
        }
        setenv("DISPLAY", ":99", 1);
        is_int(dev_gl_modes_probe(intel, NULL, &m), 0, "gl probe without a render node");
        ok(!m.egl_headless && !m.spice_gl && m.virgl_gtk_sdl && strstr(m.why_not, "no GPU render node"),
           "display, no render node: gtk/sdl only: %s", m.why_not);
        dev_gl_modes_done(&m);
        rm_tree(root);
}

int main(void) {
        test_attach_plans();
        test_sysfs_plan();
        test_start_gives_back();
        test_mdev_sriov();
        test_usb_tpm_gl();
        return tap_done();
}

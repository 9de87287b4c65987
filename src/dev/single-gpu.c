/* SPDX-License-Identifier: MIT */
/* Single-GPU passthrough: the host display lets go of its GPU and gets it back. */
#include "single-gpu.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "fileio.h"
#include "helper.h"
#include "runfile.h"

#define STATE_FILE "host-display.state"

/* The firmware framebuffers that hold the boot GPU's memory: efifb,
 * simpledrm's platform device, vesafb. */
static const char *const fb_drivers[] = { "efi-framebuffer", "simple-framebuffer", "vesa-framebuffer" };

void dev_host_display_done(struct dev_host_display *d) {
        if (!d)
                return;
        strv_done(&d->vtcons);
        strv_done(&d->fbs);
        free(d->unit);
        d->unit = NULL;
}

static bool real_host(const char *root) {
        return !root || strcmp(root, "/") == 0;
}

/* Names that go into sysfs paths and the state file. */
static bool name_valid(const char *s) {
        if (!*s || strlen(s) > 64 || s[0] == '.')
                return false;
        for (; *s; s++)
                if (!(*s == '_' || *s == '-' || *s == '.' || (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
                      (*s >= 'A' && *s <= 'Z')))
                        return false;
        return true;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int probe_vtcons(const char *root, strv *out) {
        _cleanup_free_ char *dir = root_path(root, "/sys/class/vtconsole");
        if (!dir)
                return -ENOMEM;
        DIR *d = opendir(dir);
        if (!d)
                return 0;
        int r = 0;
        for (struct dirent *e; r >= 0 && (e = readdir(d));) {
                if (strncmp(e->d_name, "vtcon", 5) != 0 || !name_valid(e->d_name))
                        continue;
                _cleanup_free_ char *rel = NULL, *v = NULL;
                if (asprintf(&rel, "/sys/class/vtconsole/%s/bind", e->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (root_read_attr(root, rel, &v) >= 0 && strcmp(v, "1") == 0)
                        r = strv_push(out, e->d_name);
        }
        closedir(d);
        if (r >= 0 && out->n > 1)
                qsort(out->v, out->n, sizeof *out->v, cmp_str);
        return r;
}

/* The devices bound to a platform driver are the symlinks in its directory
 * (besides "module"). */
static int probe_fbs(const char *root, strv *out) {
        for (size_t i = 0; i < ELEMENTSOF(fb_drivers); i++) {
                _cleanup_free_ char *rel = NULL, *dir = NULL;
                if (asprintf(&rel, "/sys/bus/platform/drivers/%s", fb_drivers[i]) < 0 || !(dir = root_path(root, rel)))
                        return -ENOMEM;
                DIR *d = opendir(dir);
                if (!d)
                        continue;
                _cleanup_strv_ strv found = { 0 };
                int r = 0;
                for (struct dirent *e; r >= 0 && (e = readdir(d));) {
                        struct stat st;
                        if (strcmp(e->d_name, "module") == 0 || !name_valid(e->d_name) ||
                            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode))
                                continue;
                        r = strv_pushf(&found, "%s %s", fb_drivers[i], e->d_name);
                }
                closedir(d);
                if (r < 0)
                        return r;
                if (found.n > 1)
                        qsort(found.v, found.n, sizeof *found.v, cmp_str);
                for (size_t j = 0; j < found.n; j++)
                        if ((r = strv_push(out, found.v[j])) < 0)
                                return r;
        }
        return 0;
}

/* The host has a display manager when systemd's alias for it exists (a
 * symlink to gdm3, sddm, lightdm...; it may dangle in a fixture).  On the
 * real host it must also be running now: only what ran is started again. */
static int probe_unit(const char *root, char **ret) {
        _cleanup_free_ char *p = root_path(root, "/etc/systemd/system/" DEV_DISPLAY_MANAGER_UNIT);
        struct stat st;
        if (!p)
                return -ENOMEM;
        if (lstat(p, &st) < 0)
                return 0;
        if (real_host(root)) {
                _cleanup_free_ char *systemctl = exec_find_in_path("systemctl");
                char errbuf[256];
                char *const argv[] = { systemctl, (char *) "is-active", (char *) "--quiet",
                                       (char *) DEV_DISPLAY_MANAGER_UNIT, NULL };
                if (!systemctl || exec_run(argv, NULL, errbuf, sizeof errbuf) < 0)
                        return 0;
        }
        return (*ret = strdup(DEV_DISPLAY_MANAGER_UNIT)) ? 0 : -ENOMEM;
}

int dev_host_display_probe(const char *root, struct dev_host_display *ret, phy_error *err) {
        _cleanup_(dev_host_display_done) struct dev_host_display d = { 0 };
        int r;
        if ((r = probe_vtcons(root, &d.vtcons)) < 0 || (r = probe_fbs(root, &d.fbs)) < 0 ||
            (r = probe_unit(root, &d.unit)) < 0)
                return phy_error_set(err, -r, "cannot read the host display's state: %s", strerror(-r));
        *ret = d;
        d = (struct dev_host_display) { 0 };
        return 0;
}

/* "efi-framebuffer efi-framebuffer.0" -> the driver's bind/unbind path and the device. */
static int fb_write(struct dev_plan *p, const char *fb, const char *op) {
        const char *sp = strchr(fb, ' ');
        if (!sp)
                return -EINVAL;
        return dev_plan_add(p, sp + 1, "/sys/bus/platform/drivers/%.*s/%s", (int) (sp - fb), fb, op);
}

static int vtcon_write(struct dev_plan *p, const char *vtcon, const char *value) {
        return dev_plan_add(p, value, "/sys/class/vtconsole/%s/bind", vtcon);
}

int dev_plan_host_display_stop(const struct dev_host_display *d, struct dev_plan *ret) {
        _cleanup_dev_plan_ struct dev_plan p = { 0 };
        int r = 0;
        /* Consoles first: a console still on the framebuffer keeps it busy. */
        for (size_t i = 0; i < d->vtcons.n && r >= 0; i++)
                r = vtcon_write(&p, d->vtcons.v[i], "0");
        for (size_t i = 0; i < d->fbs.n && r >= 0; i++)
                r = fb_write(&p, d->fbs.v[i], "unbind");
        if (r < 0)
                return r;
        *ret = p;
        p = (struct dev_plan) { 0 };
        return 0;
}

int dev_plan_host_display_restore(const struct dev_host_display *d, struct dev_plan *ret) {
        _cleanup_dev_plan_ struct dev_plan p = { 0 };
        int r = 0;
        for (size_t i = d->fbs.n; i > 0 && r >= 0; i--)
                r = fb_write(&p, d->fbs.v[i - 1], "bind");
        for (size_t i = d->vtcons.n; i > 0 && r >= 0; i--)
                r = vtcon_write(&p, d->vtcons.v[i - 1], "1");
        if (r < 0)
                return r;
        *ret = p;
        p = (struct dev_plan) { 0 };
        return 0;
}

char *dev_host_display_plan_format(const struct dev_host_display *d, bool stop) {
        _cleanup_dev_plan_ struct dev_plan p = { 0 };
        if ((stop ? dev_plan_host_display_stop(d, &p) : dev_plan_host_display_restore(d, &p)) < 0)
                return NULL;
        _cleanup_free_ char *writes = dev_plan_format(&p);
        char *out = NULL;
        if (!writes)
                return NULL;
        if (!d->unit)
                return TAKE_PTR(writes);
        int r = stop ? asprintf(&out, "systemctl stop %s\n%s", d->unit, writes)
                     : asprintf(&out, "%ssystemctl start %s\n", writes, d->unit);
        return r < 0 ? NULL : out;
}

/* The display manager through systemctl, on the real host only. */
static int unit_do(const char *root, const char *op, const char *unit, phy_error *err) {
        if (!real_host(root))
                return 0;
        _cleanup_free_ char *systemctl = exec_find_in_path("systemctl");
        if (!systemctl)
                return phy_error_set(err, ENOENT, "cannot %s %s: systemctl is not installed", op, unit);
        char errbuf[256] = "";
        char *const argv[] = { systemctl, (char *) op, (char *) unit, NULL };
        int r = exec_run(argv, NULL, errbuf, sizeof errbuf);
        if (r < 0)
                return phy_error_set(err, -r, "systemctl %s %s failed%s%s", op, unit, errbuf[0] ? ": " : "", errbuf);
        return 0;
}

static char *state_path(const char *run_dir) {
        char *p = NULL;
        return asprintf(&p, "%s/" STATE_FILE, run_dir) < 0 ? NULL : p;
}

static int state_save(const char *root, const char *run_dir, const struct dev_host_display *d, phy_error *err) {
        _cleanup_free_ char *path = state_path(run_dir), *buf = NULL;
        size_t len = 0;
        if (!path)
                return phy_error_set(err, ENOMEM, "out of memory");
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (!real_host(root))
                fprintf(f, "root %s\n", root);
        if (d->unit)
                fprintf(f, "unit %s\n", d->unit);
        for (size_t i = 0; i < d->vtcons.n; i++)
                fprintf(f, "vtcon %s\n", d->vtcons.v[i]);
        for (size_t i = 0; i < d->fbs.n; i++)
                fprintf(f, "fb %s\n", d->fbs.v[i]);
        if (fclose(f) != 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        return runfile_write(path, buf, 0644, err);
}

/* -ENOENT: no state.  Every name is checked: they become sysfs paths. */
static int state_load(const char *run_dir, char **ret_root, struct dev_host_display *ret, phy_error *err) {
        _cleanup_free_ char *path = state_path(run_dir), *text = NULL, *root = NULL;
        _cleanup_(dev_host_display_done) struct dev_host_display d = { 0 };
        if (!path)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = runfile_read(path, 16 * 1024, &text, NULL, err);
        if (r < 0)
                return r;
        unsigned line = 0;
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                line++;
                char *v = strchr(l, ' ');
                if (!v)
                        return phy_error_set(err, EINVAL, "%s:%u: want 'KIND VALUE'", path, line);
                *v++ = '\0';
                char *v2 = strchr(v, ' ');
                bool ok;
                if (strcmp(l, "root") == 0) {
                        ok = v[0] == '/' && !root && (root = strdup(v));
                } else if (strcmp(l, "unit") == 0) {
                        ok = strcmp(v, DEV_DISPLAY_MANAGER_UNIT) == 0 && !d.unit && (d.unit = strdup(v));
                } else if (strcmp(l, "vtcon") == 0) {
                        ok = strncmp(v, "vtcon", 5) == 0 && name_valid(v) && strv_push(&d.vtcons, v) >= 0;
                } else if (strcmp(l, "fb") == 0 && v2) {
                        *v2 = '\0';
                        ok = name_valid(v) && name_valid(v2 + 1) && strv_pushf(&d.fbs, "%s %s", v, v2 + 1) >= 0;
                } else
                        ok = false;
                if (!ok)
                        return phy_error_set(err, EINVAL, "%s:%u: '%s' is not a host display record this "
                                             "version wrote", path, line, l);
        }
        *ret_root = TAKE_PTR(root);
        *ret = d;
        d = (struct dev_host_display) { 0 };
        return 0;
}

bool dev_pci_is_boot_display(const char *root, const char *address) {
        _cleanup_free_ char *rel = NULL, *bv = NULL, *cls = NULL, *crel = NULL;
        if (asprintf(&rel, "/sys/bus/pci/devices/%s/boot_vga", address) < 0 ||
            asprintf(&crel, "/sys/bus/pci/devices/%s/class", address) < 0)
                return false;
        return root_read_attr(root, rel, &bv) >= 0 && strcmp(bv, "1") == 0 && root_read_attr(root, crel, &cls) >= 0 &&
               strncmp(cls, "0x03", 4) == 0;
}

int dev_single_gpu_stop_host(const char *root, const char *run_dir, const strv *addresses, dev_kernel_hook hook,
                             void *userdata, phy_error *err) {
        bool boot = false;
        for (size_t i = 0; i < addresses->n && !boot; i++)
                boot = dev_pci_is_boot_display(root, addresses->v[i]);
        if (!boot) {
                _cleanup_free_ char *list = strv_join(addresses, " ");
                return phy_error_set(err, EPERM, "single-GPU mode is for the GPU of the host's display (boot_vga), "
                                     "and none of the passed-through devices (%s) is; turn it off with "
                                     "'[passthrough] single-gpu = off'", list ? list : "?");
        }
        _cleanup_(dev_host_display_done) struct dev_host_display d = { 0 };
        _cleanup_dev_plan_ struct dev_plan p = { 0 };
        int r = dev_host_display_probe(root, &d, err);
        if (r < 0)
                return r;
        if ((r = dev_plan_host_display_stop(&d, &p)) < 0)
                return phy_error_set(err, -r, "cannot plan the host display's stop: %s", strerror(-r));
        /* Recorded first: a crash after this point still brings the display back. */
        if ((r = state_save(root, run_dir, &d, err)) < 0)
                return r;
        if (d.unit && (r = unit_do(root, "stop", d.unit, err)) < 0)
                goto undo;
        if ((r = dev_plan_execute(root, &p, false, hook, userdata, err)) < 0)
                goto undo;
        return 0;
undo:
        phy_error_prefix(err, "stopping the host display for single-GPU passthrough");
        phy_error ignored = { 0 };
        (void) dev_single_gpu_restore_host(run_dir, hook, userdata, &ignored);
        return r;
}

/* Leaves out what is back already (a stop that failed half-way, a restore
 * tried twice): the kernel answers EBUSY to binding a bound device. */
static int drop_restored(const char *root, struct dev_host_display *d) {
        for (size_t i = d->vtcons.n; i > 0; i--) {
                _cleanup_free_ char *rel = NULL, *v = NULL;
                if (asprintf(&rel, "/sys/class/vtconsole/%s/bind", d->vtcons.v[i - 1]) < 0)
                        return -ENOMEM;
                if (root_read_attr(root, rel, &v) >= 0 && strcmp(v, "1") == 0)
                        strv_remove_at(&d->vtcons, i - 1);
        }
        for (size_t i = d->fbs.n; i > 0; i--) {
                const char *dev = strchr(d->fbs.v[i - 1], ' ') + 1;
                _cleanup_free_ char *rel = NULL, *p = NULL;
                struct stat st;
                if (asprintf(&rel, "/sys/devices/platform/%s/driver", dev) < 0 || !(p = root_path(root, rel)))
                        return -ENOMEM;
                if (lstat(p, &st) == 0)
                        strv_remove_at(&d->fbs, i - 1);
        }
        return 0;
}

int dev_single_gpu_restore_host(const char *run_dir, dev_kernel_hook hook, void *userdata, phy_error *err) {
        _cleanup_(dev_host_display_done) struct dev_host_display d = { 0 };
        _cleanup_dev_plan_ struct dev_plan p = { 0 };
        _cleanup_free_ char *root = NULL, *path = state_path(run_dir);
        if (!path)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = state_load(run_dir, &root, &d, err);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if ((r = drop_restored(root, &d)) < 0 || (r = dev_plan_host_display_restore(&d, &p)) < 0)
                return phy_error_set(err, -r, "cannot plan the host display's return: %s", strerror(-r));
        /* Every step is tried: a console without its framebuffer is still
         * better than no display manager. */
        phy_error e2 = { 0 };
        int r1 = dev_plan_execute(root, &p, true, hook, userdata, err);
        int r2 = d.unit ? unit_do(root, "start", d.unit, r1 < 0 ? &e2 : err) : 0;
        if (r1 < 0 || r2 < 0)
                return r1 < 0 ? r1 : r2;
        if (unlink(path) < 0 && errno != ENOENT)
                return phy_error_set(err, errno, "cannot remove %s: %s", path, strerror(errno));
        return 0;
}

int dev_give_back_all_recorded(const char *run_dir, phy_error *err) {
        /* The /dev/vfio owners first: a group node goes when its devices leave vfio-pci. */
        _cleanup_free_ char *root = dev_state_root(run_dir);
        (void) dev_vfio_restore_recorded(root, run_dir);
        int r = dev_passthrough_give_back_recorded(run_dir, err);
        phy_error e2 = { 0 };
        int r2 = dev_single_gpu_restore_host(run_dir, NULL, NULL, r < 0 ? &e2 : err);
        return r < 0 ? r : r2;
}

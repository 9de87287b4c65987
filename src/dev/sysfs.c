/* SPDX-License-Identifier: MIT */
/*
 * The sysfs plan (pure: an ordered list of writes), its executor, and the
 * recorded state that lets any later command give devices back after the
 * monitor died (kill -9 included).
 */
#include "dev.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "runfile.h"
#include "helper.h"
#include "host/pci.h"
#include "value.h"

#define STATE_FILE "devices.state"
#define ROOT_FILE "devices.root"

void dev_plan_done(struct dev_plan *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++) {
                free(p->v[i].path);
                free(p->v[i].value);
        }
        free(p->v);
        p->v = NULL;
        p->n = 0;
}

int dev_plan_add(struct dev_plan *p, const char *value, const char *fmt, ...) {
        struct dev_write *v = realloc(p->v, (p->n + 1) * sizeof *v);
        if (!v)
                return -ENOMEM;
        p->v = v;
        va_list ap;
        va_start(ap, fmt);
        char *path = NULL;
        int r = vasprintf(&path, fmt, ap);
        va_end(ap);
        char *val = strdup(value);
        if (r < 0 || !val) {
                if (r >= 0)
                        free(path);
                free(val);
                return -ENOMEM;
        }
        p->v[p->n++] = (struct dev_write) { .path = path, .value = val };
        return 0;
}

char *dev_plan_format(const struct dev_plan *p) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        for (size_t i = 0; i < p->n; i++) {
                fprintf(f, "%s ", p->v[i].path);
                for (const char *c = p->v[i].value; *c; c++)
                        if (*c == '\n')
                                fputs("\\n", f);
                        else
                                fputc(*c, f);
                fputc('\n', f);
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

int dev_plan_to_vfio(const char *root, const strv *addresses, struct dev_plan *ret, strv *ret_drivers,
                     phy_error *err) {
        _cleanup_dev_plan_ struct dev_plan p = { 0 };
        _cleanup_strv_ strv drivers = { 0 };
        int r = 0;
        for (size_t i = 0; i < addresses->n && r >= 0; i++) {
                const char *a = addresses->v[i];
                _cleanup_free_ char *dev = NULL;
                if (!value_pci_addr_valid(a, true))
                        return phy_error_usage(err, "'%s' is not a PCI address (want the form 0000:01:00.0)", a);
                if (asprintf(&dev, "/sys/bus/pci/devices/%s", a) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if (!root_exists(root, dev))
                        return phy_error_set(err, ENODEV, "there is no PCI device %s on this host (see 'phyllo host "
                                             "devices'); detach it from the VM", a);
                _cleanup_free_ char *drv = dev_pci_driver(root, a);
                if ((r = strv_push(&drivers, drv ? drv : "")) < 0)
                        break;
                if (drv && strcmp(drv, "vfio-pci") == 0)
                        continue;
                r = dev_plan_add(&p, "vfio-pci", "/sys/bus/pci/devices/%s/driver_override", a);
                if (r >= 0 && drv)
                        r = dev_plan_add(&p, a, "/sys/bus/pci/drivers/%s/unbind", drv);
                if (r >= 0)
                        r = dev_plan_add(&p, a, "/sys/bus/pci/drivers_probe");
        }
        if (r < 0)
                return r;
        *ret = p;
        p = (struct dev_plan) { 0 };
        if (ret_drivers) {
                *ret_drivers = drivers;
                drivers = (strv) { 0 };
        }
        return 0;
}

int dev_plan_give_back(const char *root, const strv *addresses, const strv *drivers, struct dev_plan *ret,
                       phy_error *err) {
        _cleanup_dev_plan_ struct dev_plan p = { 0 };
        if (addresses->n != drivers->n)
                return phy_error_set(err, EINVAL, "the device state lists %zu devices but %zu drivers", addresses->n,
                                     drivers->n);
        int r = 0;
        for (size_t i = addresses->n; i-- > 0 && r >= 0;) {
                const char *a = addresses->v[i], *drv = drivers->v[i];
                if (strcmp(drv, "vfio-pci") == 0)
                        continue;  /* it was on vfio-pci before we came */
                _cleanup_free_ char *now = root ? dev_pci_driver(root, a) : strdup("vfio-pci");
                if (now && drv[0] && strcmp(now, drv) == 0) {
                        /* Already back; a driver_override left pointing at
                         * vfio-pci would still steer the next probe there. */
                        _cleanup_free_ char *rel = NULL, *ovr = NULL;
                        if (asprintf(&rel, "/sys/bus/pci/devices/%s/driver_override", a) < 0)
                                return phy_error_set(err, ENOMEM, "out of memory");
                        if (root_read_attr(root, rel, &ovr) >= 0 && strcmp(ovr, "vfio-pci") == 0)
                                r = dev_plan_add(&p, "\n", "%s", rel);
                        continue;
                }
                r = dev_plan_add(&p, "\n", "/sys/bus/pci/devices/%s/driver_override", a);
                if (r >= 0 && now && strcmp(now, "vfio-pci") == 0)
                        r = dev_plan_add(&p, a, "/sys/bus/pci/drivers/vfio-pci/unbind");
                if (r >= 0 && drv[0])
                        r = dev_plan_add(&p, a, "/sys/bus/pci/drivers/%s/bind", drv);
        }
        if (r < 0)
                return r;
        *ret = p;
        p = (struct dev_plan) { 0 };
        return 0;
}

static int write_one(const char *root, const struct dev_write *w, phy_error *err) {
        _cleanup_free_ char *path = root_path(root, w->path);
        if (!path)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* O_TRUNC as `echo > attr` does: harmless on sysfs, right on the fixture copies. */
        _cleanup_close_ int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return phy_error_set(err, errno, "cannot open %s for writing: %s (run as root, or let the "
                                     "administrator allow the device in the host config)", path, strerror(errno));
        size_t len = strlen(w->value);
        ssize_t n = write(fd, w->value, len);
        if (n < 0 || (size_t) n != len) {
                int e = n < 0 ? errno : EIO;
                return phy_error_set(err, e, "writing '%s' to %s failed: %s", w->value[0] == '\n' ? "\\n" : w->value,
                                     path, strerror(e));
        }
        return 0;
}

int dev_plan_execute(const char *root, const struct dev_plan *p, bool keep_going, dev_kernel_hook hook,
                     void *userdata, phy_error *err) {
        int first = 0;
        for (size_t i = 0; i < p->n; i++) {
                phy_error e = { 0 };
                int r = write_one(root, &p->v[i], &e);
                if (r >= 0 && hook && (r = hook(root, p->v[i].path, p->v[i].value, userdata)) < 0)
                        phy_error_set(&e, -r, "writing '%s' to %s failed: %s",
                                      p->v[i].value[0] == '\n' ? "\\n" : p->v[i].value, p->v[i].path, strerror(-r));
                if (r < 0) {
                        if (!first) {
                                first = r;
                                if (err)
                                        *err = e;
                        }
                        if (!keep_going)
                                return r;
                }
        }
        return first;
}

int dev_state_save(const char *run_dir, const strv *addresses, const strv *drivers, phy_error *err) {
        _cleanup_free_ char *path = NULL, *buf = NULL;
        size_t len = 0;
        if (asprintf(&path, "%s/" STATE_FILE, run_dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return phy_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < addresses->n; i++)
                fprintf(f, "%s %s\n", addresses->v[i], drivers->v[i][0] ? drivers->v[i] : "-");
        if (fclose(f) != 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        return runfile_write(path, buf, 0644, err);
}

int dev_state_load(const char *run_dir, strv *ret_addresses, strv *ret_drivers, phy_error *err) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_strv_ strv a = { 0 }, d = { 0 };
        if (asprintf(&path, "%s/" STATE_FILE, run_dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* 64 devices at most: anything larger is not ours. */
        int r = runfile_read(path, 64 * 96, &text, NULL, err);
        if (r < 0)
                return r;
        unsigned line = 0;
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                line++;
                char *sp = strchr(l, ' ');
                if (!sp)
                        return phy_error_set(err, EINVAL, "%s:%u: want 'ADDRESS DRIVER'", path, line);
                *sp = '\0';
                const char *drv = sp + 1;
                if (!value_pci_addr_valid(l, true) || (strcmp(drv, "-") != 0 && !dev_driver_name_valid(drv)))
                        return phy_error_set(err, EINVAL, "%s:%u: '%s %s' is not a PCI address and a driver name",
                                             path, line, l, drv);
                if ((r = strv_push(&a, l)) < 0 || (r = strv_push(&d, strcmp(drv, "-") == 0 ? "" : drv)) < 0)
                        return r;
        }
        *ret_addresses = a;
        *ret_drivers = d;
        a = d = (strv) { 0 };
        return 0;
}

int dev_passthrough_restore(const char *root, const char *run_dir, dev_kernel_hook hook, void *userdata,
                            phy_error *err) {
        _cleanup_strv_ strv a = { 0 }, d = { 0 };
        _cleanup_dev_plan_ struct dev_plan p = { 0 };
        int r = dev_state_load(run_dir, &a, &d, err);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        /* Not root on the real host: phyllome-devhelper does the writes. */
        if (dev_helper_wanted(root))
                r = dev_helper_give_back(run_dir, &a, &d, err);
        else if ((r = dev_plan_give_back(root, &a, &d, &p, err)) < 0)
                return r;
        else
                r = dev_plan_execute(root, &p, true, hook, userdata, err);
        if (r < 0)
                return phy_error_prefix(err, "giving the passed-through devices back to the host failed (the state "
                                        "stays in %s/" STATE_FILE " for the next try)", run_dir);
        _cleanup_free_ char *path = NULL, *rootfile = NULL;
        if (asprintf(&path, "%s/" STATE_FILE, run_dir) < 0 || asprintf(&rootfile, "%s/" ROOT_FILE, run_dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (unlink(path) < 0 && errno != ENOENT)
                return phy_error_set(err, errno, "cannot remove %s: %s", path, strerror(errno));
        (void) unlink(rootfile);
        return 0;
}

/* Read raw, not as a whole record: phyllo before the record format wrote
 * this one without its final newline (an absolute path is checked below). */
char *dev_state_root(const char *run_dir) {
        _cleanup_free_ char *path = NULL;
        char *text = NULL;
        if (asprintf(&path, "%s/" ROOT_FILE, run_dir) < 0 || runfile_read_raw(path, 4096, &text, NULL, NULL) < 0)
                return NULL;
        text[strcspn(text, "\n")] = '\0';
        if (text[0] != '/') {
                free(text);
                return NULL;
        }
        return text;
}

int dev_passthrough_give_back_recorded(const char *run_dir, phy_error *err) {
        _cleanup_free_ char *root = dev_state_root(run_dir);
        return dev_passthrough_restore(root, run_dir, NULL, NULL, err);
}

int dev_passthrough_prepare(const char *root, const char *run_dir, const strv *addresses, dev_kernel_hook hook,
                            void *userdata, phy_error *err) {
        _cleanup_strv_ strv drivers = { 0 };
        _cleanup_dev_plan_ struct dev_plan p = { 0 };
        int r = dev_plan_to_vfio(root, addresses, &p, &drivers, err);
        if (r < 0)
                return r;
        /* Recorded before the first write: whoever comes next can give them back
         * (through the same root prefix: a fixture copy in the tests). */
        if (root && strcmp(root, "/") != 0) {
                _cleanup_free_ char *rootfile = NULL;
                if (asprintf(&rootfile, "%s/" ROOT_FILE, run_dir) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if ((r = runfile_write(rootfile, root, 0644, err)) < 0)
                        return r;
        }
        if ((r = dev_state_save(run_dir, addresses, &drivers, err)) < 0)
                return r;
        r = dev_helper_wanted(root) ? dev_helper_move(run_dir, addresses, err)
                                    : dev_plan_execute(root, &p, false, hook, userdata, err);
        if (r < 0) {
                phy_error ignored = { 0 };
                (void) dev_passthrough_restore(root, run_dir, hook, userdata, &ignored);
                return phy_error_prefix(err, "moving the passed-through devices to vfio-pci failed");
        }
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The caller's side of phyllome-devhelper for a VM's devices, and
 * /dev/vfio/GROUP ownership for a QEMU that a root monitor runs as another
 * user (nobody).
 */
#include "helper.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "runfile.h"
#include "host/pci.h"

/* The VM's name: the run dir is <home>/run/<name>. */
static const char *vm_of(const char *run_dir) {
        const char *slash = strrchr(run_dir, '/');
        return slash ? slash + 1 : run_dir;
}

int dev_helper_give_back(const char *run_dir, const strv *addresses, const strv *drivers, phy_error *err) {
        const char *sock = dev_helper_socket_path();
        int first = 0;
        for (size_t i = addresses->n; i-- > 0;) {
                struct dev_helper_request q;
                struct dev_helper_reply a = { 0 };
                phy_error e = { 0 };
                int r = dev_helper_request_init(&q, DEV_HELPER_GIVE_BACK, vm_of(run_dir), addresses->v[i],
                                                i < drivers->n ? drivers->v[i] : "", &e);
                if (r >= 0)
                        r = dev_helper_call(sock, &q, &a, &e);
                /* No record: the helper never moved it (a failed start). */
                if (r == -ENOENT && a.version == DEV_HELPER_VERSION && a.error == ENOENT)
                        r = 0;
                if (r < 0 && !first) {
                        first = r;
                        if (err)
                                *err = e;
                }
        }
        return first;
}

int dev_helper_move(const char *run_dir, const strv *addresses, phy_error *err) {
        const char *sock = dev_helper_socket_path();
        for (size_t i = 0; i < addresses->n; i++) {
                struct dev_helper_request q;
                struct dev_helper_reply a = { 0 };
                int r = dev_helper_request_init(&q, DEV_HELPER_TO_VFIO, vm_of(run_dir), addresses->v[i], "", err);
                if (r >= 0)
                        r = dev_helper_call(sock, &q, &a, err);
                if (r < 0)
                        return r;  /* the caller gives back what devices.state records */
        }
        return 0;
}

int dev_pci_iommu_group(const char *root, const char *address) {
        _cleanup_free_ char *g = host_pci_link_basename(root, address, "iommu_group");
        unsigned long long v;
        if (!g || parse_uint(g, INT32_MAX, &v) < 0)
                return -1;
        return (int) v;
}

void dev_vfio_restore_owners(const char *root, struct dev_vfio_owners *saved) {
        for (size_t i = saved->n; i-- > 0;) {
                const struct dev_vfio_owner *o = &saved->v[i];
                _cleanup_free_ char *path = root_path(root, o->path);
                struct stat st;
                /* Gone (the group left vfio-pci) or replaced by a link: nothing to put back. */
                if (!path || lstat(path, &st) < 0 || S_ISLNK(st.st_mode))
                        continue;
                (void) !fchownat(AT_FDCWD, path, o->uid, o->gid, AT_SYMLINK_NOFOLLOW);
                (void) !chmod(path, o->mode);
        }
        saved->n = 0;
}

static char *owners_path(const char *run_dir) {
        char *p = NULL;
        return asprintf(&p, "%s/vfio.owners", run_dir) < 0 ? NULL : p;
}

int dev_vfio_owners_save(const char *run_dir, const struct dev_vfio_owners *o, phy_error *err) {
        _cleanup_free_ char *p = owners_path(run_dir), *buf = NULL;
        size_t len = 0;
        FILE *f = p ? open_memstream(&buf, &len) : NULL;
        if (!f)
                return phy_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < o->n; i++)
                fprintf(f, "%s %u %u %o\n", o->v[i].path, (unsigned) o->v[i].uid, (unsigned) o->v[i].gid,
                        (unsigned) o->v[i].mode);
        if (fclose(f) != 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        return runfile_write(p, buf, 0600, err);
}

void dev_vfio_owners_forget(const char *run_dir) {
        _cleanup_free_ char *p = owners_path(run_dir);
        if (p)
                (void) unlink(p);
}

int dev_vfio_restore_recorded(const char *root, const char *run_dir) {
        _cleanup_free_ char *p = owners_path(run_dir), *text = NULL;
        if (!p || runfile_read(p, 32 * 96, &text, NULL, NULL) < 0)
                return 0;
        struct dev_vfio_owners o = { .n = 0 };
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && o.n < ELEMENTSOF(o.v);
             l = strtok_r(NULL, "\n", &save)) {
                struct dev_vfio_owner *w = &o.v[o.n];
                unsigned uid, gid, mode, g;
                /* Only /dev/vfio/N nodes: the record is not trusted further. */
                if (sscanf(l, "/dev/vfio/%u %u %u %o", &g, &uid, &gid, &mode) != 4 || mode > 07777)
                        continue;
                snprintf(w->path, sizeof w->path, "/dev/vfio/%u", g);
                w->uid = uid, w->gid = gid, w->mode = mode;
                o.n++;
        }
        dev_vfio_restore_owners(root, &o);
        (void) unlink(p);
        return 1;
}

int dev_vfio_chown_groups(const char *root, const strv *addresses, uid_t uid, gid_t gid, struct dev_vfio_owners *saved,
                          phy_error *err) {
        saved->n = 0;
        for (size_t i = 0; i < addresses->n; i++) {
                int g = dev_pci_iommu_group(root, addresses->v[i]);
                if (g < 0)
                        continue;  /* no group: QEMU reports it in its own words */
                char rel[64];
                snprintf(rel, sizeof rel, "/dev/vfio/%d", g);
                bool seen = false;
                for (size_t j = 0; j < saved->n && !seen; j++)
                        seen = strcmp(saved->v[j].path, rel) == 0;
                if (seen)
                        continue;
                _cleanup_free_ char *path = root_path(root, rel);
                struct stat st;
                int r = 0;
                if (!path)
                        r = -ENOMEM;
                else if (saved->n == ELEMENTSOF(saved->v))
                        r = phy_error_set(err, E2BIG, "a VM can use at most %zu IOMMU groups", ELEMENTSOF(saved->v));
                else if (lstat(path, &st) < 0) {
                        if (errno == ENOENT)
                                continue;  /* not on vfio-pci: QEMU says so in its own words */
                        r = phy_error_set(err, errno, "cannot use %s (IOMMU group of PCI device %s): %s", path,
                                          addresses->v[i], strerror(errno));
                } else if (S_ISLNK(st.st_mode))
                        r = phy_error_set(err, EINVAL, "%s is a symbolic link, not a VFIO group", path);
                if (r >= 0) {
                        struct dev_vfio_owner *o = &saved->v[saved->n];
                        snprintf(o->path, sizeof o->path, "%s", rel);
                        o->uid = st.st_uid, o->gid = st.st_gid, o->mode = st.st_mode & 07777;
                        saved->n++;
                        if (fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 || chmod(path, 0600) < 0)
                                r = phy_error_set(err, errno, "cannot hand %s (IOMMU group of PCI device %s) to "
                                                  "uid %u: %s", path, addresses->v[i], (unsigned) uid,
                                                  strerror(errno));
                }
                if (r < 0) {
                        dev_vfio_restore_owners(root, saved);
                        return r;
                }
        }
        return 0;
}

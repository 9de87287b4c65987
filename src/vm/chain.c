/* SPDX-License-Identifier: MIT */
/* A disk's backing chain, opened and checked link by link (chain.h). */
#include "chain.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "vm.h"

#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_DATA_FILE 0x44415441u
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define HEADER_READ (64u * 1024)

/* What the qcow2 header says about the files it names. */
struct header {
        bool qcow2;             /* the qcow2 magic */
        bool data_file;         /* an external data file (incompatible bit or extension) */
        char backing[1024];     /* "" when none */
        char backing_fmt[32];   /* "" when not recorded */
        char data_name[1024];   /* the external data file's name, "" when not recorded */
};

static uint32_t be32(const unsigned char *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p) {
        return (uint64_t) be32(p) << 32 | be32(p + 4);
}

/* Reads the header through fd (never what it names): 0, -EINVAL when it is
 * a qcow2 header this cannot read, -errno. */
static int header_read(int fd, struct header *h) {
        *h = (struct header) { 0 };
        _cleanup_free_ unsigned char *buf = malloc(HEADER_READ);
        if (!buf)
                return -ENOMEM;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        ssize_t got = fd_read_full(fd, buf, HEADER_READ);
        if (got < 0)
                return (int) got;
        size_t n = (size_t) got;
        if (n < 72 || be32(buf) != QCOW2_MAGIC)
                return 0;       /* not a qcow2: raw, for all this reads */
        h->qcow2 = true;
        uint32_t version = be32(buf + 4), hdr_len = 72;
        if (version != 2 && version != 3)
                return -EINVAL;
        if (version == 3) {
                if (n < 104)
                        return -EINVAL;
                hdr_len = be32(buf + 100);
                if (hdr_len < 104 || hdr_len > n)
                        return -EINVAL;
                h->data_file = (be64(buf + 72) & QCOW2_INCOMPAT_DATA_FILE) != 0;
        }
        /* Header extensions: type, length, data padded to 8 bytes; type 0 ends them. */
        for (size_t off = hdr_len, i = 0; off + 8 <= n && i < 1024; i++) {
                uint32_t type = be32(buf + off), len = be32(buf + off + 4);
                if (type == 0)
                        break;
                if (len > n - off - 8)
                        return -EINVAL;
                if (type == QCOW2_EXT_DATA_FILE) {
                        h->data_file = true;
                        snprintf(h->data_name, sizeof h->data_name, "%.*s", (int) (len < 1023 ? len : 1023),
                                 (const char *) buf + off + 8);
                }
                else if (type == QCOW2_EXT_BACKING_FORMAT) {
                        if (len == 0 || len >= sizeof h->backing_fmt)
                                return -EINVAL;
                        memcpy(h->backing_fmt, buf + off + 8, len);
                        if (strlen(h->backing_fmt) != len)
                                return -EINVAL;
                }
                off += 8 + (((size_t) len + 7) & ~(size_t) 7);
        }
        uint64_t boff = be64(buf + 8);
        uint32_t bsize = be32(buf + 16);
        if (boff == 0)
                return 0;
        if (bsize == 0 || bsize >= sizeof h->backing || boff > n || bsize > n - boff)
                return -EINVAL;
        memcpy(h->backing, buf + boff, bsize);
        if (strlen(h->backing) != bsize)
                return -EINVAL;
        return 0;
}

int vm_image_backing(int fd, char **ret_backing, char *ret_fmt, size_t fmt_size) {
        struct header h;
        int r = header_read(fd, &h);
        *ret_backing = NULL;
        if (fmt_size)
                ret_fmt[0] = '\0';
        if (r < 0)
                return r;
        if (!h.qcow2 || !h.backing[0])
                return 0;
        if (!(*ret_backing = strdup(h.backing)))
                return -ENOMEM;
        if (fmt_size)
                snprintf(ret_fmt, fmt_size, "%s", h.backing_fmt);
        return 0;
}

void vm_chain_init(struct vm_chain *c) {
        c->top = -1;
        c->n = 0;
        for (size_t i = 0; i < VM_CHAIN_MAX; i++)
                c->v[i] = (struct vm_chain_link) { .fd = -1 };
}

void vm_chain_done(struct vm_chain *c) {
        if (c->top >= 0)
                close(c->top);
        for (size_t i = 0; i < c->n; i++) {
                if (c->v[i].fd >= 0)
                        close(c->v[i].fd);
                free(c->v[i].path);
        }
        vm_chain_init(c);
}

/* Where fd really is (its /proc/self/fd link), malloc'd; NULL on failure. */
static char *fd_path(int fd) {
        char self[64], buf[PATH_MAX];
        snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
        ssize_t k = readlink(self, buf, sizeof buf - 1);
        if (k <= 0)
                return NULL;
        buf[k] = '\0';
        return strdup(buf);
}

/* Opens an image for reading its header: never blocking (a FIFO), never a
 * terminal; O_NONBLOCK is dropped again once it is known to be a file. */
static int image_open(const char *path, bool nofollow) {
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));
        return fd < 0 ? -errno : fd;
}

int vm_image_fd_check(int fd, const char *what, phy_error *err) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return phy_error_set(err, errno, "cannot read %s: %s", what, strerror(errno));
        if (S_ISBLK(st.st_mode))
                return 0;
        if (!S_ISREG(st.st_mode))
                return phy_error_set(err, EPERM, "%s is not a regular file (a FIFO, socket or character device "
                                     "would block or feed qemu-img): refusing it", what);
        (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        struct header h;
        int r = header_read(fd, &h);
        if (r < 0)
                return phy_error_set(err, -r, "cannot read the header of %s: %s", what,
                                     r == -EINVAL ? "not a qcow2 header this reads" : strerror(-r));
        if (h.data_file)
                return phy_error_set(err, EPERM, "%s names the external data file '%s'; Phyllome never makes one, "
                                     "and whoever owns the image may have written that header: refusing to read it",
                                     what, h.data_name);
        return 0;
}

/* Does <basedir>/.<file>.clone (ours, read-only, no symlink) name uuid? */
static bool record_names(const char *basedir, const char *file, const char *uuid) {
        if (!uuid || !*uuid)
                return false;
        _cleanup_close_ int dfd = open(basedir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_free_ char *name = NULL;
        if (dfd < 0 || asprintf(&name, ".%s.clone", file) < 0)
                return false;
        _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0222) ||
            st.st_size > 4096)
                return false;
        char buf[4097];
        ssize_t k = pread(fd, buf, sizeof buf - 1, 0);
        if (k <= 0)
                return false;
        buf[k] = '\0';
        size_t ul = strlen(uuid);
        for (char *line = buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
                nl = strchr(line, '\n');
                size_t len = nl ? (size_t) (nl - line) : strlen(line);
                if (len == ul && strncmp(line, uuid, ul) == 0)
                        return true;
        }
        return false;
}

int vm_base_record(const char *base, const char *uuid, phy_error *err) {
        const char *slash = strrchr(base, '/');
        _cleanup_free_ char *rec = NULL, *text = NULL;
        if (!slash || !uuid || !*uuid)
                return phy_error_set(err, EINVAL, "cannot record the base '%s' without its clone's uuid", base);
        if (asprintf(&rec, "%.*s/.%s.clone", (int) (slash - base), base, slash + 1) < 0 ||
            asprintf(&text, "%s\n", uuid) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        return file_write_atomic(rec, text, strlen(text), 0444, err);
}

/* A frozen base: ours and read-only (clone made it so), so its header is
 * the one checked when it froze. */
static bool frozen(const struct stat *st) {
        return st->st_uid == geteuid() && !(st->st_mode & 0222);
}

/* <dir>/base/<file>, file a single component: the file's name, else NULL. */
static const char *base_file(const char *real, const char *dir) {
        size_t n = strlen(dir);
        if (strncmp(real, dir, n) != 0 || strncmp(real + n, "/base/", 6) != 0)
                return NULL;
        const char *f = real + n + 6;
        return *f && !strchr(f, '/') ? f : NULL;
}

/* Is the link at real (opened, st) one the VM may read? *ret_frozen: a
 * frozen base (the next link is then trusted as it was when it froze). */
static int link_allowed(const char *vmdir_real, const char *vms, const char *vmdir, const char *uuid,
                        const char *real, const struct stat *st, bool prev_frozen, bool *ret_frozen, char *why,
                        size_t len) {
        *ret_frozen = false;
        if (path_is_below(real, vmdir_real)) {
                *ret_frozen = base_file(real, vmdir_real) && frozen(st);
                return 0;
        }
        if (path_is_below(real, vms)) {
                const char *vm = real + strlen(vms) + 1, *s = strchr(vm, '/');
                _cleanup_free_ char *other = s ? strndup(real, (size_t) (s - real)) : NULL, *bdir = NULL;
                const char *f = other ? base_file(real, other) : NULL;
                if (!f) {
                        snprintf(why, len, "it lies in another VM's directory");
                        return -EPERM;
                }
                if (!frozen(st)) {
                        snprintf(why, len, "it is another VM's base that is not frozen (read-only, ours)");
                        return -EPERM;
                }
                if (asprintf(&bdir, "%s/base", other) < 0)
                        return -ENOMEM;
                if (!prev_frozen && !record_names(bdir, f, uuid)) {
                        snprintf(why, len, "it is another VM's frozen base that no record names as this VM's (a "
                                 "linked clone made before Phyllome recorded its bases: if this VM is that base's "
                                 "clone, record it with: echo %s > '%s/.%s.clone'; chmod 444 '%s/.%s.clone')",
                                 uuid && *uuid ? uuid : "UUID", bdir, f, bdir, f);
                        return -EPERM;
                }
                *ret_frozen = true;
                return 0;
        }
        phy_error e = { 0 };
        int r = vm_path_check_here(vmdir, "backing file", real, &e);
        if (r < 0)
                snprintf(why, len, "it is outside the VM's files, a linked clone's base and the directories this "
                         "host allows");
        phy_error_clear(&e);
        return r < 0 ? -EPERM : 0;
}

int vm_disk_chain_open(const char *vmdir, const char *vm, const char *uuid, const struct vm_disk *k,
                       const char *path, struct vm_chain *ret, phy_error *err) {
        vm_chain_init(ret);
        char vd[PATH_MAX], what[PATH_MAX + 64];
        if (!realpath(vmdir, vd))
                return phy_error_set(err, errno, "cannot resolve '%s': %s", vmdir, strerror(errno));
        _cleanup_free_ char *vms = strdup(vd);
        char *slash = vms ? strrchr(vms, '/') : NULL;
        if (!slash)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (slash == vms)
                slash[1] = '\0';
        else
                *slash = '\0';
        snprintf(what, sizeof what, "disk '%s' of VM '%s' ('%s')", k->name, vm, path);
        _cleanup_close_ int top = image_open(path, false);
        if (top < 0)
                return phy_error_set(err, -top, "cannot open %s: %s", what, strerror(-top));
        int r = vm_image_fd_check(top, what, err);
        if (r < 0)
                return r;
        if (k->format && strcmp(k->format, "qcow2") != 0) {
                ret->top = TAKE_FD(top);
                return 0;       /* raw: no header, no backing file */
        }
        int cur = top;
        /* A relative backing name is relative to the image's directory as
         * named (as QEMU reads it); a link's own name is where it is. */
        _cleanup_free_ char *cur_real = strdup(path);
        const char *cur_name = path;
        bool prev_frozen = false;
        for (;;) {
                struct header h;
                if ((r = header_read(cur, &h)) < 0)
                        r = phy_error_set(err, -r, "disk '%s' of VM '%s': cannot read the header of '%s': %s", k->name,
                                          vm, cur_name, r == -EINVAL ? "not a qcow2 header this reads" : strerror(-r));
                else if (!h.qcow2)
                        r = phy_error_set(err, EINVAL, "disk '%s' of VM '%s': '%s' is not a qcow2 image", k->name, vm,
                                          cur_name);
                else if (h.data_file)
                        r = phy_error_set(err, EPERM, "disk '%s' of VM '%s': the image '%s' names the external data "
                                          "file '%s'; Phyllome never makes one, and the VM's QEMU, which owns the "
                                          "image, may have written that header: refusing to read it", k->name, vm,
                                          cur_name, h.data_name);
                if (r < 0 || !h.backing[0])
                        break;
                if (ret->n >= VM_CHAIN_MAX) {
                        r = phy_error_set(err, ELOOP, "disk '%s' of VM '%s': its backing chain is deeper than %d "
                                          "images or loops", k->name, vm, VM_CHAIN_MAX);
                        break;
                }
                /* A protocol ("nbd:", "json:{...}") is never a file. */
                const char *colon = strchr(h.backing, ':'), *sl = strchr(h.backing, '/');
                _cleanup_free_ char *full = NULL;
                if (colon && (!sl || colon < sl)) {
                        r = phy_error_set(err, EPERM, "disk '%s' of VM '%s': the image '%s' has the backing file "
                                          "'%s', which is not a file name: refusing it", k->name, vm, cur_name,
                                          h.backing);
                        break;
                }
                const char *cs = cur_real ? strrchr(cur_real, '/') : NULL;
                if (h.backing[0] == '/')
                        full = strdup(h.backing);
                else if (cs && asprintf(&full, "%.*s/%s", (int) (cs - cur_real), cur_real, h.backing) < 0)
                        full = NULL;
                if (!full) {
                        r = phy_error_set(err, ENOMEM, "out of memory");
                        break;
                }
                struct vm_chain_link *l = &ret->v[ret->n];
                struct stat st;
                char why[3 * PATH_MAX] = "";
                int fd = image_open(full, true);
                if (fd == -ELOOP)
                        snprintf(why, sizeof why, "it is a symlink");
                else if (fd < 0)
                        snprintf(why, sizeof why, "%s", strerror(-fd));
                else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                        snprintf(why, sizeof why, "it is not a regular file");
                else if (!(l->path = fd_path(fd)))
                        snprintf(why, sizeof why, "cannot tell where it is");
                if (fd >= 0) {
                        l->fd = fd;
                        ret->n++;
                }
                bool fz = false;
                if (!why[0] &&
                    (r = link_allowed(vd, vms, vmdir, uuid, l->path, &st, prev_frozen, &fz, why, sizeof why)) == -ENOMEM) {
                        r = phy_error_set(err, ENOMEM, "out of memory");
                        break;
                }
                if (why[0]) {
                        r = phy_error_set(err, EPERM, "disk '%s' of VM '%s': the image '%s' has the backing file "
                                          "'%s'%s%s%s, which is refused: %s; the VM's QEMU, which owns the image, may "
                                          "have written that header", k->name, vm, cur_name, h.backing,
                                          l->path && strcmp(l->path, h.backing) ? " (" : "",
                                          l->path && strcmp(l->path, h.backing) ? l->path : "",
                                          l->path && strcmp(l->path, h.backing) ? ")" : "", why);
                        break;
                }
                (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
                const char *bf = h.backing_fmt;
                if (bf[0] && strcmp(bf, "qcow2") != 0 && strcmp(bf, "raw") != 0) {
                        r = phy_error_set(err, EPERM, "disk '%s' of VM '%s': the image '%s' names the backing "
                                          "format '%s'; only qcow2 and raw are read", k->name, vm, cur_name, bf);
                        break;
                }
                struct header lh;
                /* No format recorded: qcow2 by its magic, else raw; never probed further. */
                if (!bf[0])
                        bf = header_read(fd, &lh) == 0 && lh.qcow2 ? "qcow2" : "raw";
                snprintf(l->format, sizeof l->format, "%s", strcmp(bf, "raw") == 0 ? "raw" : "qcow2");
                prev_frozen = fz;
                if (strcmp(bf, "raw") == 0)
                        break;
                cur = fd;
                cur_name = l->path;
                free(cur_real);
                cur_real = strdup(l->path);
                if (!cur_real) {
                        r = phy_error_set(err, ENOMEM, "out of memory");
                        break;
                }
        }
        if (r < 0)
                vm_chain_done(ret);
        else
                ret->top = TAKE_FD(top);
        return r;
}

int vm_disk_chain_check(const char *vmdir, const char *vm, const char *uuid, const struct vm_disk *k,
                        const char *path, bool *ret_backed, phy_error *err) {
        struct vm_chain c;
        int r = vm_disk_chain_open(vmdir, vm, uuid, k, path, &c, err);
        if (ret_backed)
                *ret_backed = r >= 0 && c.n > 0;
        vm_chain_done(&c);
        return r;
}

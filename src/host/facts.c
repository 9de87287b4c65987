/* SPDX-License-Identifier: MIT */
#include "host.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/landlock.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "pci.h"
#include "value.h"

#define GIB (1024ULL * 1024 * 1024)
#define MIB (1024ULL * 1024)

const char *host_cpu_vendor_name(enum host_cpu_vendor v) {
        return v == HOST_CPU_INTEL ? "Intel" : v == HOST_CPU_AMD ? "AMD" : "other";
}

const char *host_storage_name(enum host_storage s) {
        switch (s) {
        case HOST_STORAGE_NVME: return "NVMe";
        case HOST_STORAGE_SSD: return "SSD";
        case HOST_STORAGE_ROTATIONAL: return "rotational";
        default: return "unknown";
        }
}

static bool has_word(const char *list, const char *word) {
        size_t wl = strlen(word);
        for (const char *p = list; (p = strstr(p, word)); p += wl) {
                bool start = p == list || isspace((unsigned char) p[-1]);
                if (start && (p[wl] == '\0' || isspace((unsigned char) p[wl])))
                        return true;
        }
        return false;
}

/* "key<spaces>: value" → value, or NULL when line is not that key. */
static const char *cpuinfo_value(const char *line, const char *key) {
        size_t kl = strlen(key);
        if (strncmp(line, key, kl) != 0)
                return NULL;
        const char *p = line + kl;
        while (*p == ' ' || *p == '\t')
                p++;
        if (*p != ':')
                return NULL;
        p++;
        while (*p == ' ')
                p++;
        return p;
}

/* The first processor's record of /proc/cpuinfo: the kernel formats a
 * record per CPU as it is read (~11 us each on this 2-CPU machine, and on
 * x86 a frequency sample per CPU), so a read of all of it grows with the
 * host.  Reads 1 KiB at a time until the record's blank line (at most one
 * more record gets formatted); *ret is the text up to it. */
static int cpuinfo_first_record(const char *root, char **ret) {
        _cleanup_free_ char *path = root_path(root, "/proc/cpuinfo");
        if (!path)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                if (cap - len < 1025) {
                        if (cap >= 256 * 1024)
                                return -EFBIG;
                        char *b = realloc(buf, cap += 4096);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                }
                ssize_t k = read(fd, buf + len, 1024);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                buf[len += (size_t) k] = '\0';
                char *end = strstr(buf, "\n\n");
                if (end || k == 0) {
                        if (end)
                                end[1] = '\0';
                        *ret = TAKE_PTR(buf);
                        return 0;
                }
        }
}

/* How many CPUs <root>/sys/devices/system/cpu/online lists ("0-7,9"):
 * the count, or 0 when it is missing or not such a list. */
static unsigned cpus_online(const char *root) {
        _cleanup_free_ char *v = NULL;
        if (root_read_attr(root, "/sys/devices/system/cpu/online", &v) < 0)
                return 0;
        unsigned n = 0;
        for (char *p = v; *p;) {
                char *e;
                errno = 0;
                unsigned long a = strtoul(p, &e, 10), b = a;
                if (e == p || errno)
                        return 0;
                if (*e == '-') {
                        p = e + 1;
                        b = strtoul(p, &e, 10);
                        if (e == p || errno || b < a)
                                return 0;
                }
                if (b - a >= 1u << 20 || (*e != ',' && *e != '\0'))
                        return 0;
                n += (unsigned) (b - a + 1);
                p = *e == ',' ? e + 1 : e;
        }
        return n;
}

/* Vendor, model and flags from the first processor's record (the same on
 * every CPU of a host); the CPUs from sysfs's online list.  With all (host
 * check's load), or where sysfs has no such list (a fixture root), every
 * record: the CPUs counted, and the physical cores, which only host check
 * reports (else cores = cpus). */
static int parse_cpuinfo(struct host_facts *h, bool all, phy_error *err) {
        _cleanup_free_ char *buf = NULL;
        unsigned online = cpus_online(h->root);
        bool every = all || online == 0;
        int r = every ? root_read_attr(h->root, "/proc/cpuinfo", &buf) : cpuinfo_first_record(h->root, &buf);
        if (r < 0)
                return phy_error_set(err, -r, "cannot read /proc/cpuinfo below '%s': %s", h->root, strerror(-r));
        /* Physical cores are distinct (physical id, core id) pairs. */
        unsigned long pairs[1024];
        size_t n_pairs = 0;
        long phys = 0;
        bool saw_core = false;
        unsigned records = 0;
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                const char *v;
                if ((v = cpuinfo_value(line, "processor")))
                        records++;
                else if ((v = cpuinfo_value(line, "physical id")))
                        phys = strtol(v, NULL, 10);
                else if ((v = cpuinfo_value(line, "core id"))) {
                        unsigned long key = ((unsigned long) phys << 20) | (strtoul(v, NULL, 10) & 0xfffff);
                        bool seen = false;
                        saw_core = true;
                        for (size_t i = 0; i < n_pairs && !seen; i++)
                                seen = pairs[i] == key;
                        if (!seen && n_pairs < ELEMENTSOF(pairs))
                                pairs[n_pairs++] = key;
                } else if (records > 1)
                        continue;       /* the first record's vendor, model and flags are every CPU's */
                else if ((v = cpuinfo_value(line, "vendor_id"))) {
                        if (strcmp(v, "GenuineIntel") == 0)
                                h->cpu_vendor = HOST_CPU_INTEL;
                        else if (strcmp(v, "AuthenticAMD") == 0 || strcmp(v, "HygonGenuine") == 0)
                                h->cpu_vendor = HOST_CPU_AMD;
                } else if ((v = cpuinfo_value(line, "model name"))) {
                        if (!h->cpu_model && !(h->cpu_model = strdup(v)))
                                return phy_error_set(err, ENOMEM, "out of memory");
                } else if ((v = cpuinfo_value(line, "flags"))) {
                        h->vmx = has_word(v, "vmx");
                        h->svm = has_word(v, "svm");
                        h->hypervisor = has_word(v, "hypervisor");
                }
        }
        if (records == 0)
                return phy_error_set(err, EINVAL, "no 'processor' entries in %s/proc/cpuinfo; is '%s' a host root?",
                                     strcmp(h->root, "/") ? h->root : "", h->root);
        h->cpus = online ? online : records;
        h->cores = every && saw_core && n_pairs > 0 ? (unsigned) n_pairs : h->cpus;
        return 0;
}

static int parse_meminfo(struct host_facts *h, phy_error *err) {
        _cleanup_free_ char *buf = NULL;
        int r = root_read_attr(h->root, "/proc/meminfo", &buf);
        if (r < 0)
                return phy_error_set(err, r, "cannot read /proc/meminfo below '%s': %s", h->root, strerror(-r));
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                const char *v;
                unsigned long long x = strtoull(strchr(line, ':') ? strchr(line, ':') + 1 : line, NULL, 10);
                bool kb = strstr(line, " kB") != NULL;
                if ((v = cpuinfo_value(line, "MemTotal")))
                        h->mem_total = kb ? x * 1024 : x;
                else if ((v = cpuinfo_value(line, "HugePages_Total")))
                        h->hugepages_total = x;
                else if ((v = cpuinfo_value(line, "Hugepagesize")))
                        h->hugepage_size = kb ? x * 1024 : x;
        }
        if (h->mem_total == 0)
                return phy_error_set(err, EINVAL, "no MemTotal in /proc/meminfo below '%s'", h->root);
        return 0;
}

/* Sysfs Y/N/1/0 → 1/0, -1 when absent or unreadable. */
static int read_bool_attr(const char *root, const char *path) {
        _cleanup_free_ char *v = NULL;
        if (root_read_attr(root, path, &v) < 0)
                return -1;
        if (strcmp(v, "Y") == 0 || strcmp(v, "y") == 0 || strcmp(v, "1") == 0)
                return 1;
        if (strcmp(v, "N") == 0 || strcmp(v, "n") == 0 || strcmp(v, "0") == 0)
                return 0;
        return -1;
}

static unsigned count_entries(const char *root, const char *dir) {
        _cleanup_free_ char *p = root_path(root, dir);
        unsigned n = 0;
        DIR *d = p ? opendir(p) : NULL;
        if (!d)
                return 0;
        for (struct dirent *de; (de = readdir(d));)
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

/* First "[selected]" word of a sysfs choice attribute. */
static char *selected_choice(const char *root, const char *path) {
        _cleanup_free_ char *v = NULL;
        if (root_read_attr(root, path, &v) < 0)
                return NULL;
        char *a = strchr(v, '['), *b = a ? strchr(a, ']') : NULL;
        return a && b ? strndup(a + 1, (size_t) (b - a - 1)) : NULL;
}

/* /sys/block name of the disk holding a /dev node: "nvme0n1p2" → "nvme0n1". */
static char *disk_of(const char *root, const char *dev) {
        _cleanup_free_ char *name = strdup(dev);
        if (!name)
                return NULL;
        for (;;) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "/sys/block/%s", name) < 0)
                        return NULL;
                if (root_exists(root, p))
                        return TAKE_PTR(name);
                size_t n = strlen(name);
                if (n == 0 || !isdigit((unsigned char) name[n - 1]))
                        return NULL;
                while (n > 0 && isdigit((unsigned char) name[n - 1]))
                        name[--n] = '\0';
                /* nvme0n1p2 / mmcblk0p1: drop the 'p' too */
                if (n > 1 && name[n - 1] == 'p' && isdigit((unsigned char) name[n - 2]))
                        name[--n] = '\0';
        }
}

static enum host_storage disk_kind(const char *root, const char *disk) {
        _cleanup_free_ char *p = NULL;
        int rot;
        if (strncmp(disk, "nvme", 4) == 0)
                return HOST_STORAGE_NVME;
        if (asprintf(&p, "/sys/block/%s/queue/rotational", disk) < 0)
                return HOST_STORAGE_UNKNOWN;
        rot = read_bool_attr(root, p);
        return rot == 1 ? HOST_STORAGE_ROTATIONAL : rot == 0 ? HOST_STORAGE_SSD : HOST_STORAGE_UNKNOWN;
}

/* The storage under "/": the /dev node mounted there per /proc/mounts, else
 * the best real disk in /sys/block (device-mapper and overlay roots). */
static int detect_storage(struct host_facts *h) {
        _cleanup_free_ char *mounts = NULL;
        if (root_read_attr(h->root, "/proc/mounts", &mounts) >= 0) {
                char *save = NULL;
                for (char *line = strtok_r(mounts, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                        char src[256], dst[256];
                        if (sscanf(line, "%255s %255s", src, dst) != 2 || strcmp(dst, "/") != 0 ||
                            strncmp(src, "/dev/", 5) != 0)
                                continue;
                        free(h->storage_device);
                        h->storage_device = disk_of(h->root, src + 5);
                }
        }
        if (h->storage_device) {
                h->storage = disk_kind(h->root, h->storage_device);
                return 0;
        }
        _cleanup_strv_ strv disks = { 0 };
        _cleanup_free_ char *p = root_path(h->root, "/sys/block");
        DIR *d = p ? opendir(p) : NULL;
        if (!d)
                return 0;
        for (struct dirent *de; (de = readdir(d));) {
                static const char *const skip[] = { ".", "loop", "ram", "zram", "dm-", "md", "sr", "fd" };
                bool virt = false;
                for (size_t i = 0; i < ELEMENTSOF(skip) && !virt; i++)
                        virt = strncmp(de->d_name, skip[i], strlen(skip[i])) == 0;
                if (!virt)
                        strv_push(&disks, de->d_name);
        }
        closedir(d);
        for (size_t i = 0; i < disks.n; i++) {
                enum host_storage k = disk_kind(h->root, disks.v[i]);
                if (k > h->storage || (k == h->storage && !h->storage_device)) {
                        h->storage = k;
                        free(h->storage_device);
                        h->storage_device = strdup(disks.v[i]);
                }
        }
        return 0;
}

static int load_gpus(struct host_facts *h, phy_error *err) {
        _cleanup_(host_pci_list_done) struct host_pci_list l = { 0 };
        int r = host_pci_list_class(h->root, 0x03, &l, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n; i++) {
                struct host_pci_device *d = &l.v[i];
                if ((d->class_code >> 16) != 0x03)
                        continue;
                struct host_gpu *v = realloc(h->gpus, (h->n_gpus + 1) * sizeof *v);
                if (!v)
                        return phy_error_set(err, ENOMEM, "out of memory");
                h->gpus = v;
                struct host_gpu *g = &h->gpus[h->n_gpus++];
                *g = (struct host_gpu) { .iommu_group = d->iommu_group };
                snprintf(g->address, sizeof g->address, "%s", d->address);
                snprintf(g->vendor_id, sizeof g->vendor_id, "%s", d->vendor_id);
                snprintf(g->device_id, sizeof g->device_id, "%s", d->device_id);
                if (d->device_name) {
                        if (asprintf(&g->name, "%s %s", d->vendor_name ? d->vendor_name : d->vendor_id, d->device_name) < 0)
                                g->name = NULL;
                }
                g->driver = TAKE_PTR(d->driver);

                _cleanup_free_ char *base = NULL, *attr = NULL, *drm = NULL;
                if (asprintf(&base, "/sys/bus/pci/devices/%s", d->address) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if (asprintf(&attr, "%s/sriov_totalvfs", base) >= 0) {
                        _cleanup_free_ char *v2 = NULL;
                        unsigned long long n;
                        if (root_read_attr(h->root, attr, &v2) >= 0 && parse_uint(v2, 4096, &n) >= 0)
                                g->sriov_totalvfs = (unsigned) n;
                }
                free(attr);
                attr = NULL;
                if (asprintf(&attr, "%s/mdev_supported_types", base) >= 0)
                        g->has_mdev = count_entries(h->root, attr) > 0;
                free(attr);
                attr = NULL;
                if (asprintf(&attr, "%s/boot_vga", base) >= 0)
                        g->boot_vga = read_bool_attr(h->root, attr) == 1;
                if (asprintf(&drm, "%s/drm", base) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                _cleanup_free_ char *drmp = root_path(h->root, drm);
                DIR *dd = drmp ? opendir(drmp) : NULL;
                if (dd) {
                        /* the lowest renderD number: stable choice */
                        long best = -1;
                        for (struct dirent *de; (de = readdir(dd));) {
                                unsigned long long n;
                                if (strncmp(de->d_name, "renderD", 7) == 0 && parse_uint(de->d_name + 7, 65535, &n) >= 0 &&
                                    (best < 0 || (long) n < best))
                                        best = (long) n;
                        }
                        closedir(dd);
                        if (best >= 0 && asprintf(&g->render_node, "/dev/dri/renderD%ld", best) < 0)
                                g->render_node = NULL;
                }
        }
        return 0;
}

/* A user or group name as useradd allows it, at most 32 characters. */
static bool account_name_valid(const char *s) {
        size_t n = strlen(s);
        if (n < 1 || n > 32 || s[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char) s[i]) && !strchr("._-", s[i]))
                        return false;
        return true;
}

/* "ADDRESS USER" or "ADDRESS @GROUP", stored with one space between. */
static int parse_passthrough_allow(struct host_facts *h, const char *val, const char *path, unsigned lineno,
                                   phy_error *err) {
        char addr[32], who[64], extra[2];
        int n = sscanf(val, "%31s %63s %1s", addr, who, extra);
        const char *name = n >= 2 && who[0] == '@' ? who + 1 : who;
        if (n != 2 || !value_pci_addr_valid(addr, true) || !account_name_valid(name))
                return phy_error_usage(err,
                                     "%s:%u: passthrough-allow: '%s' is not 'PCI_ADDRESS USER' or 'PCI_ADDRESS "
                                     "@GROUP' (e.g. passthrough-allow = 0000:01:00.0 alice)", path, lineno, val);
        return strv_pushf(&h->passthrough_allow, "%s %s", addr, who);
}

/* "allow-paths = DIR [DIR...]": absolute directories, never "/" itself. */
static int parse_allow_paths(struct host_facts *h, char *val, const char *path, unsigned lineno, phy_error *err) {
        h->allow_paths_set = true;
        for (char *save = NULL, *w = strtok_r(val, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
                size_t n = strlen(w);
                while (n > 1 && w[n - 1] == '/')
                        w[--n] = '\0';
                if (w[0] != '/' || strcmp(w, "/") == 0 || strstr(w, "/../") || (n >= 3 && strcmp(w + n - 3, "/..") == 0) ||
                    str_has_control(w))
                        return phy_error_usage(err,
                                             "%s:%u: allow-paths: '%s' is not an absolute directory other than '/' "
                                             "(e.g. allow-paths = /srv/iso /data/vm-images)", path, lineno, w);
                int r = strv_push(&h->allow_paths, w);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* "FIRST-LAST" (inclusive, at least 2 uids, none below 65536 so that no
 * system or login account is in it, below 2^31 - 1) or "off". */
static int parse_vm_uids(struct host_facts *h, const char *val, const char *path, unsigned lineno, phy_error *err) {
        if (strcmp(val, "off") == 0) {
                h->vm_uid_first = h->vm_uid_count = 0;
                return 0;
        }
        char first[24], last[24];
        const char *dash = strchr(val, '-');
        unsigned long long a, b;
        if (!dash || (size_t) (dash - val) >= sizeof first || strlen(dash + 1) >= sizeof last)
                goto bad;
        memcpy(first, val, (size_t) (dash - val));
        first[dash - val] = '\0';
        snprintf(last, sizeof last, "%s", dash + 1);
        if (parse_uint(first, 0x7ffffffe, &a) < 0 || parse_uint(last, 0x7ffffffe, &b) < 0 || a < 65536 || b <= a)
                goto bad;
        h->vm_uid_first = (uint32_t) a;
        h->vm_uid_count = (uint32_t) (b - a + 1);
        return 0;
bad:
        return phy_error_set(err, EINVAL,
                             "%s:%u: vm-uids: '%s' is not a range FIRST-LAST of at least two uids from 65536 up "
                             "(e.g. vm-uids = 6000000-6065535), or 'off'", path, lineno, val);
}

static int parse_host_conf(struct host_facts *h, phy_error *err) {
        _cleanup_free_ char *path = root_path(h->root, "/etc/phyllome/host.conf");
        _cleanup_free_ char *buf = NULL;
        if (!path)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = file_read_all(path, 64 * 1024, &buf, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return phy_error_set(err, r, "cannot read host config '%s': %s", path, strerror(-r));
        unsigned lineno = 0;
        char *next = buf;
        while (next && *next) {
                char *line = next;
                char *nl = strchr(line, '\n');
                next = nl ? nl + 1 : NULL;
                if (nl)
                        *nl = '\0';
                lineno++;
                char *hash = strchr(line, '#');
                if (hash)
                        *hash = '\0';
                while (isspace((unsigned char) *line))
                        line++;
                size_t len = strlen(line);
                while (len > 0 && isspace((unsigned char) line[len - 1]))
                        line[--len] = '\0';
                if (len == 0)
                        continue;
                char *eq = strchr(line, '=');
                if (!eq)
                        return phy_error_usage(err, "%s:%u: expected 'key = value', got '%s'", path, lineno, line);
                char *key = line, *val = eq + 1;
                char *kend = eq;
                while (kend > key && isspace((unsigned char) kend[-1]))
                        kend--;
                *kend = '\0';
                while (isspace((unsigned char) *val))
                        val++;
                if (strcmp(key, "reserve-cpus") == 0) {
                        unsigned long long v;
                        if (parse_uint(val, 4096, &v) < 0)
                                return phy_error_usage(err,
                                                     "%s:%u: reserve-cpus: '%s' is not a number of CPUs (e.g. reserve-cpus = 2)",
                                                     path, lineno, val);
                        h->reserve_cpus = (unsigned) v;
                } else if (strcmp(key, "reserve-memory") == 0) {
                        unsigned long long v;
                        if (parse_size(val, &v) < 0)
                                return phy_error_usage(err,
                                                     "%s:%u: reserve-memory: '%s' is not a size (e.g. reserve-memory = 2G)",
                                                     path, lineno, val);
                        h->reserve_mem = v;
                } else if (strcmp(key, "passthrough-allow") == 0) {
                        if ((r = parse_passthrough_allow(h, val, path, lineno, err)) < 0)
                                return r;
                } else if (strcmp(key, "allow-paths") == 0) {
                        if ((r = parse_allow_paths(h, val, path, lineno, err)) < 0)
                                return r;
                } else if (strcmp(key, "vm-uids") == 0) {
                        if ((r = parse_vm_uids(h, val, path, lineno, err)) < 0)
                                return r;
                } else if (strcmp(key, "qemu-malloc-thp") == 0) {
                        if (strcmp(val, "on") != 0 && strcmp(val, "off") != 0)
                                return phy_error_usage(err, "%s:%u: qemu-malloc-thp: '%s' is neither 'on' nor 'off'",
                                                       path, lineno, val);
                        h->qemu_malloc_plain = strcmp(val, "off") == 0;
                } else
                        return phy_error_usage(err,
                                             "%s:%u: unknown key '%s'; the keys are reserve-cpus, reserve-memory, "
                                             "passthrough-allow, allow-paths, vm-uids and qemu-malloc-thp", path,
                                             lineno, key);
        }
        if (!(h->conf_path = strdup(path)))
                return phy_error_set(err, ENOMEM, "out of memory");
        return 0;
}

int host_conf_load(const char *root, struct host_facts *ret, phy_error *err) {
        _cleanup_(host_facts_done) struct host_facts h = { .reserve_cpus = 1, .reserve_mem = GIB };
        if (!(h.root = strdup(root && *root ? root : "/")))
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = parse_host_conf(&h, err);
        if (r < 0)
                return r;
        *ret = h;
        h = (struct host_facts) { 0 };
        return 0;
}

void host_facts_done(struct host_facts *h) {
        if (!h)
                return;
        free(h->root);
        free(h->cpu_model);
        free(h->cmdline);
        free(h->dmi_vendor);
        free(h->dmi_product);
        for (size_t i = 0; i < h->n_gpus; i++) {
                free(h->gpus[i].name);
                free(h->gpus[i].driver);
                free(h->gpus[i].render_node);
        }
        free(h->gpus);
        free(h->cgroup_controllers);
        free(h->thp);
        free(h->storage_device);
        free(h->conf_path);
        strv_done(&h->passthrough_allow);
        strv_done(&h->allow_paths);
        *h = (struct host_facts) { 0 };
}

int host_landlock_abi(void) {
        long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
        return v > 0 ? (int) v : 0;
}

int host_facts_load_some(const char *root, unsigned what, struct host_facts *ret, phy_error *err) {
        _cleanup_(host_facts_done) struct host_facts h = { .nested = -1, .ignore_msrs = -1, .ksm = -1,
                                                          .reserve_cpus = 1, .reserve_mem = GIB,
                                                          .vm_uid_first = HOST_VM_UIDS_FIRST, .vm_uid_count = HOST_VM_UIDS_COUNT };
        int r;
        if (!(h.root = strdup(root && *root ? root : "/")))
                return phy_error_set(err, ENOMEM, "out of memory");
        if ((r = parse_cpuinfo(&h, what & HOST_FACTS_REST, err)) < 0 || (r = parse_meminfo(&h, err)) < 0)
                return r;

        _cleanup_free_ char *kvm = root_path(h.root, "/dev/kvm");
        if (!kvm)
                return phy_error_set(err, ENOMEM, "out of memory");
        h.kvm_present = access(kvm, F_OK) == 0;
        if (h.kvm_present) {
                /* The real test of access: what QEMU will do. */
                int fd = open(kvm, O_RDWR | O_CLOEXEC | O_NOCTTY);
                h.kvm_usable = fd >= 0;
                if (fd >= 0)
                        close(fd);
        }
        (void) root_read_attr(h.root, "/sys/class/dmi/id/sys_vendor", &h.dmi_vendor);
        (void) root_read_attr(h.root, "/sys/class/dmi/id/product_name", &h.dmi_product);
        h.apple = h.dmi_vendor && (strcmp(h.dmi_vendor, "Apple Inc.") == 0 || strcmp(h.dmi_vendor, "Apple Computer, Inc.") == 0);
        h.tpm_device = root_exists(h.root, "/dev/tpm0");
        if ((what & HOST_FACTS_GPUS) && (r = load_gpus(&h, err)) < 0)
                return r;
        if (what & HOST_FACTS_REST) {
                h.nested = read_bool_attr(h.root, h.cpu_vendor == HOST_CPU_AMD ? "/sys/module/kvm_amd/parameters/nested"
                                                                               : "/sys/module/kvm_intel/parameters/nested");
                h.ignore_msrs = read_bool_attr(h.root, "/sys/module/kvm/parameters/ignore_msrs");
                h.dmar = root_exists(h.root, "/sys/firmware/acpi/tables/DMAR");
                h.ivrs = root_exists(h.root, "/sys/firmware/acpi/tables/IVRS");
                h.iommu_firmware = h.dmar || h.ivrs;
                h.iommu_class = count_entries(h.root, "/sys/class/iommu") > 0;
                h.iommu_groups = count_entries(h.root, "/sys/kernel/iommu_groups");
                h.iommu_enabled = h.iommu_groups > 0;
                if (root_read_attr(h.root, "/proc/cmdline", &h.cmdline) < 0 && !(h.cmdline = strdup("")))
                        return phy_error_set(err, ENOMEM, "out of memory");
                h.vhost_net = root_exists(h.root, "/dev/vhost-net");
                h.tun = root_exists(h.root, "/dev/net/tun");
                (void) root_read_attr(h.root, "/sys/fs/cgroup/cgroup.controllers", &h.cgroup_controllers);
                h.thp = selected_choice(h.root, "/sys/kernel/mm/transparent_hugepage/enabled");
                _cleanup_free_ char *v = NULL;
                unsigned long long n;
                if (root_read_attr(h.root, "/sys/kernel/mm/ksm/run", &v) >= 0 && parse_uint(v, 2, &n) >= 0)
                        h.ksm = (int) n;
                if ((r = detect_storage(&h)) < 0)
                        return r;
        }
        if ((r = parse_host_conf(&h, err)) < 0)
                return r;

        h.vm_cpus_max = h.cpus > h.reserve_cpus ? h.cpus - h.reserve_cpus : 1;
        h.vm_mem_max = h.mem_total > h.reserve_mem + 512 * MIB ? h.mem_total - h.reserve_mem : 512 * MIB;
        *ret = h;
        h = (struct host_facts) { 0 };
        return 0;
}

int host_facts_load(const char *root, struct host_facts *ret, phy_error *err) {
        return host_facts_load_some(root, HOST_FACTS_ALL, ret, err);
}

const char *host_render_node(const struct host_facts *h) {
        for (size_t i = 0; h && i < h->n_gpus; i++)
                if (h->gpus[i].render_node)
                        return h->gpus[i].render_node;
        return NULL;
}

bool host_cmdline_has(const struct host_facts *h, const char *key, const char *value) {
        if (!h || !h->cmdline)
                return false;
        size_t kl = strlen(key);
        const char *found = NULL;
        bool found_bare = false;
        /* Words up to "--" (what follows belongs to init). */
        for (const char *p = h->cmdline; *p;) {
                while (*p == ' ')
                        p++;
                size_t wl = strcspn(p, " ");
                if (wl == 2 && strncmp(p, "--", 2) == 0)
                        break;
                if (wl >= kl && strncmp(p, key, kl) == 0 && (wl == kl || p[kl] == '=')) {
                        found = p;
                        found_bare = wl == kl;
                }
                p += wl;
        }
        if (!found)
                return false;
        if (!value)
                return true;
        if (found_bare)
                return false;
        const char *v = found + kl + 1;
        size_t vl = strcspn(v, " ");
        /* Comma lists: "intel_iommu=on,sm_on" counts for "on". */
        for (const char *t = v; t < v + vl;) {
                size_t tl = strcspn(t, ", ");
                if (tl == strlen(value) && strncmp(t, value, tl) == 0)
                        return true;
                t += tl + (t[tl] == ',');
                if (tl == 0)
                        break;
        }
        return false;
}

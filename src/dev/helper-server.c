/* SPDX-License-Identifier: MIT */
/*
 * phyllome-devhelper's work: who may have which device (host.conf), the
 * sysfs writes (the same plans as a root-run phyllo), a record per device
 * it moved, /dev/vfio/GROUP ownership, and the poll(2) loop that serves
 * every connection without letting one hold the others up.
 */
#include "helper.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "runfile.h"
#include "host/host.h"
#include "host/pci.h"
#include "vm/vm.h"
#include "value.h"

#define MAX_CONNS 64
#define DEFAULT_IDLE_MS 10000

/* ---- the journal ---- */

static const char *op_name(uint32_t op) {
        switch (op) {
        case DEV_HELPER_TO_VFIO: return "to-vfio";
        case DEV_HELPER_GIVE_BACK: return "give-back";
        case DEV_HELPER_CHOWN_VFIO_GROUP: return "chown-vfio-group";
        case DEV_HELPER_STATUS: return "status";
        default: return "?";
        }
}

void dev_helper_log_line(const struct sock_peer *p, const struct dev_helper_request *q,
                         const struct dev_helper_reply *a, char *buf, size_t n) {
        char vm[4 * sizeof q->vm], addr[4 * sizeof q->address], msg[4 * sizeof a->message];
        str_escape_line(a->message, msg, sizeof msg);
        if (q)
                snprintf(buf, n, "uid %u %s %s%s%s: %s%s", (unsigned) p->uid, op_name(q->op),
                         str_escape_line(q->address, addr, sizeof addr), q->vm[0] ? " vm " : "",
                         str_escape_line(q->vm, vm, sizeof vm), a->error ? "refused: " : "", msg);
        else
                snprintf(buf, n, "uid %u: %s", (unsigned) p->uid, msg);
}

/* ---- who may have what ---- */

static bool who_matches(const char *who, const struct sock_peer *p) {
        char buf[4096];
        if (who[0] == '@') {
                struct group g, *gr = NULL;
                if (getgrnam_r(who + 1, &g, buf, sizeof buf, &gr) != 0 || !gr)
                        return false;
                if (gr->gr_gid == p->gid)
                        return true;
                for (size_t i = 0; i < p->n_groups; i++)
                        if (p->groups[i] == gr->gr_gid)
                                return true;
                return false;
        }
        struct passwd pw, *pwr = NULL;
        return getpwuid_r(p->uid, &pw, buf, sizeof buf, &pwr) == 0 && pwr && strcmp(pwr->pw_name, who) == 0;
}

/* An entry covers its address and the other functions of the same device
 * (same domain:bus:slot): a GPU's audio function goes with it. */
static bool address_covered(const char *entry, const char *address) {
        return strcmp(entry, address) == 0 || (strncmp(entry, address, 10) == 0 && entry[10] == '.');
}

/* The addresses of host.conf's passthrough-allow entries that name the peer. */
static int allowed_addresses(const struct host_facts *h, const struct sock_peer *p, strv *ret) {
        for (size_t i = 0; i < h->passthrough_allow.n; i++) {
                const char *e = h->passthrough_allow.v[i], *sp = strchr(e, ' ');
                if (!sp || (size_t) (sp - e) >= 16 || !who_matches(sp + 1, p))
                        continue;
                char addr[16];
                memcpy(addr, e, (size_t) (sp - e));
                addr[sp - e] = '\0';
                int r = strv_push(ret, addr);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void peer_name(uid_t uid, char *out, size_t n) {
        char buf[4096];
        struct passwd pw, *pwr = NULL;
        if (getpwuid_r(uid, &pw, buf, sizeof buf, &pwr) == 0 && pwr)
                snprintf(out, n, "%s", pwr->pw_name);
        else
                snprintf(out, n, "#%u", (unsigned) uid);
}

/* ---- the record of each device it moved: <state>/<address> ---- */

struct record {
        uid_t uid;
        char vm[72];
        char driver[68];        /* "" when it had none */
        int group;
};

static char *state_dir_of(const struct dev_helper_server *s) {
        return s->state_dir ? strdup(s->state_dir) : root_path(s->root, DEV_HELPER_STATE_DIR);
}

static int record_load(const char *dir, const char *address, struct record *ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        if (asprintf(&path, "%s/%s", dir, address) < 0)
                return -ENOMEM;
        int r = runfile_read(path, 512, &text, NULL, NULL);
        if (r < 0)
                return r;
        char *save = NULL, *f[4];
        for (size_t i = 0; i < 4; i++)
                if (!(f[i] = strtok_r(i ? NULL : text, " \n", &save)))
                        return -EBADMSG;
        unsigned long long uid, group;
        if (parse_uint(f[0], UINT32_MAX - 1, &uid) < 0 || !vm_name_valid(f[1]) ||
            (strcmp(f[2], "-") != 0 && !dev_driver_name_valid(f[2])) || parse_uint(f[3], INT32_MAX, &group) < 0)
                return -EBADMSG;
        *ret = (struct record) { .uid = (uid_t) uid, .group = (int) group };
        snprintf(ret->vm, sizeof ret->vm, "%s", f[1]);
        snprintf(ret->driver, sizeof ret->driver, "%s", strcmp(f[2], "-") == 0 ? "" : f[2]);
        return 0;
}

static int record_save(const char *dir, const char *address, const struct record *rec, phy_error *err) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        if (asprintf(&path, "%s/%s", dir, address) < 0 ||
            asprintf(&text, "%u %s %s %d\n", (unsigned) rec->uid, rec->vm, rec->driver[0] ? rec->driver : "-",
                     rec->group) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        return runfile_write(path, text, 0600, err);
}

static void record_remove(const char *dir, const char *address) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, address) >= 0)
                (void) unlink(path);
}

/* Calls fn for every device record; stops at fn's first non-zero. */
static int records_each(const char *dir, int (*fn)(const char *address, const struct record *rec, void *u), void *u) {
        DIR *d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        int r = 0;
        for (struct dirent *de; r == 0 && (de = readdir(d));) {
                struct record rec;
                if (value_pci_addr_valid(de->d_name, true) && record_load(dir, de->d_name, &rec) == 0)
                        r = fn(de->d_name, &rec, u);
        }
        closedir(d);
        return r;
}

struct group_query {
        int group;
        const char *except;
        uid_t uid;              /* out: the holder found */
};

static int find_group_holder(const char *address, const struct record *rec, void *u) {
        struct group_query *q = u;
        if (rec->group != q->group || strcmp(address, q->except) == 0)
                return 0;
        q->uid = rec->uid;
        return 1;
}

/* ---- /dev/vfio/GROUP ---- */

static char *vfio_node(const char *root, int group) {
        char rel[64];
        snprintf(rel, sizeof rel, "/dev/vfio/%d", group);
        return root_path(root, rel);
}

/* lstat'd: never follows a link; on the real host only a character device. */
static int vfio_node_stat(const char *root, const char *path, struct stat *st, phy_error *err) {
        if (lstat(path, st) < 0)
                return phy_error_set(err, errno, "cannot use %s: %s (is the vfio-pci module loaded? modprobe "
                                     "vfio-pci)", path, strerror(errno));
        bool real = !root || strcmp(root, "/") == 0;
        if (S_ISLNK(st->st_mode) || (real ? !S_ISCHR(st->st_mode) : !(S_ISCHR(st->st_mode) || S_ISREG(st->st_mode))))
                return phy_error_set(err, EINVAL, "%s is not a VFIO group device node", path);
        return 0;
}

static int vfio_set_owner(const char *path, uid_t uid, gid_t gid, mode_t mode, phy_error *err) {
        if (fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 || chmod(path, mode) < 0)
                return phy_error_set(err, errno, "cannot hand %s to uid %u: %s", path, (unsigned) uid,
                                     strerror(errno));
        return 0;
}

/* <state>/vfio-N records the owner before the first chown of group N. */
static int vfio_take(const struct dev_helper_server *s, const char *dir, int group, const struct sock_peer *p,
                     phy_error *err) {
        _cleanup_free_ char *node = vfio_node(s->root, group), *rec = NULL, *text = NULL;
        if (!node || asprintf(&rec, "%s/vfio-%d", dir, group) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        struct stat st;
        int r = vfio_node_stat(s->root, node, &st, err);
        if (r < 0)
                return r;
        if (access(rec, F_OK) < 0) {
                if (asprintf(&text, "%u %u %o\n", (unsigned) st.st_uid, (unsigned) st.st_gid,
                             (unsigned) (st.st_mode & 07777)) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if ((r = runfile_write(rec, text, 0600, err)) < 0)
                        return r;
        }
        return vfio_set_owner(node, p->uid, p->gid, 0600, err);
}

/* Puts back what <state>/vfio-N recorded (the node may be gone: the
 * kernel removes it when the group's last device leaves vfio-pci). */
static int vfio_give_back(const struct dev_helper_server *s, const char *dir, int group, phy_error *err) {
        _cleanup_free_ char *node = vfio_node(s->root, group), *rec = NULL, *text = NULL;
        if (!node || asprintf(&rec, "%s/vfio-%d", dir, group) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = runfile_read(rec, 128, &text, NULL, NULL);
        if (r == -ENOENT)
                return 0;
        unsigned uid, gid, mode;
        if (r < 0 || sscanf(text, "%u %u %o", &uid, &gid, &mode) != 3 || mode > 07777)
                return phy_error_set(err, EBADMSG, "%s is not an owner record", rec);
        struct stat st;
        if (lstat(node, &st) == 0 && !S_ISLNK(st.st_mode) &&
            (r = vfio_set_owner(node, (uid_t) uid, (gid_t) gid, (mode_t) mode, err)) < 0)
                return r;
        (void) unlink(rec);
        return 0;
}

/* ---- the requests ---- */

static int do_to_vfio(const struct dev_helper_server *s, const char *dir, const struct sock_peer *p,
                      const struct dev_helper_request *q, struct dev_helper_reply *reply, phy_error *err) {
        _cleanup_(host_facts_done) struct host_facts h = { 0 };
        int r = host_facts_load(s->root, &h, err);
        if (r < 0)
                return phy_error_prefix(err, "the device helper cannot read the host's configuration");
        _cleanup_free_ char *conf = h.conf_path ? strdup(h.conf_path) : root_path(s->root, "/etc/phyllome/host.conf");
        if (!conf)
                return phy_error_set(err, ENOMEM, "out of memory");
        char who[64];
        peer_name(p->uid, who, sizeof who);

        /* 1. The administrator's word. */
        _cleanup_strv_ strv allowed = { 0 };
        if ((r = allowed_addresses(&h, p, &allowed)) < 0)
                return r;
        bool ok = p->uid == 0;
        for (size_t i = 0; i < allowed.n && !ok; i++)
                ok = address_covered(allowed.v[i], q->address);
        if (!ok)
                return phy_error_set(err, EPERM, "PCI device %s is not allowed for user '%s' (uid %u) in %s; the "
                                     "administrator can add 'passthrough-allow = %s %s' (or @GROUP) there",
                                     q->address, who, (unsigned) p->uid, conf, q->address,
                                     who[0] == '#' ? "USER" : who);

        /* 2. Held already?  By the caller: nothing more to move. */
        int group = dev_pci_iommu_group(s->root, q->address);
        struct record rec;
        r = record_load(dir, q->address, &rec);
        if (r == 0 && rec.uid != p->uid)
                return phy_error_set(err, EBUSY, "PCI device %s is in use by VM '%s' of uid %u through the device "
                                     "helper", q->address, rec.vm, (unsigned) rec.uid);
        bool held = r == 0;
        struct group_query gq = { .group = group, .except = q->address };
        if (group >= 0 && records_each(dir, find_group_holder, &gq) > 0 && gq.uid != p->uid)
                return phy_error_set(err, EBUSY, "PCI device %s is in IOMMU group %d, which uid %u holds through "
                                     "the device helper", q->address, group, (unsigned) gq.uid);

        /* 3. The same checks as 'phyllo device attach', never forced; group
         * members the administrator allowed this user count as taken along. */
        struct dev_attach_opts opts = { .attached = &allowed };
        _cleanup_strv_ strv add = { 0 };
        if ((r = dev_pci_attach_plan(s->root, q->address, &opts, &add, err)) < 0)
                return phy_error_prefix(err, "the device helper refuses PCI device %s (it allows what %s allows "
                                        "for user '%s', never with --force)", q->address, conf, who);
        if (group < 0)
                return phy_error_set(err, ENODEV, "PCI device %s has no IOMMU group", q->address);

        _cleanup_free_ char *drv = dev_pci_driver(s->root, q->address);
        bool on_vfio = drv && strcmp(drv, "vfio-pci") == 0;
        if (q->op == DEV_HELPER_CHOWN_VFIO_GROUP && !on_vfio)
                return phy_error_usage(err, "PCI device %s is on driver '%s', not vfio-pci; ask for TO_VFIO",
                                     q->address, drv ? drv : "(none)");
        if (!held) {
                rec = (struct record) { .uid = p->uid, .group = group };
                snprintf(rec.vm, sizeof rec.vm, "%s", q->vm);
                snprintf(rec.driver, sizeof rec.driver, "%s", drv ? drv : "");
                /* Recorded before the first write, like devices.state. */
                if ((r = record_save(dir, q->address, &rec, err)) < 0)
                        return r;
        }

        /* 4. The writes, then the group node (it appears once the device is on vfio-pci). */
        _cleanup_strv_ strv one = { 0 }, drivers = { 0 };
        _cleanup_dev_plan_ struct dev_plan plan = { 0 };
        if ((r = strv_push(&one, q->address)) < 0 || (r = dev_plan_to_vfio(s->root, &one, &plan, &drivers, err)) < 0)
                return r;
        r = dev_plan_execute(s->root, &plan, false, s->hook, s->hook_data, err);
        if (r >= 0)
                r = vfio_take(s, dir, group, p, err);
        if (r < 0) {
                if (!held) {
                        _cleanup_strv_ strv back = { 0 };
                        _cleanup_dev_plan_ struct dev_plan gb = { 0 };
                        phy_error ignored = { 0 };
                        if (strv_push(&back, rec.driver) >= 0 &&
                            dev_plan_give_back(s->root, &one, &back, &gb, &ignored) >= 0 &&
                            dev_plan_execute(s->root, &gb, true, s->hook, s->hook_data, &ignored) >= 0)
                                record_remove(dir, q->address);
                }
                return phy_error_prefix(err, "moving PCI device %s to vfio-pci failed", q->address);
        }
        _cleanup_free_ char *node = vfio_node(s->root, group);
        reply->iommu_group = group;
        snprintf(reply->driver, sizeof reply->driver, "%s", rec.driver);
        snprintf(reply->message, sizeof reply->message, "PCI device %s is on vfio-pci and %s belongs to uid %u",
                 q->address, node ? node : "its group node", (unsigned) p->uid);
        return 0;
}

static int do_give_back(const struct dev_helper_server *s, const char *dir, const struct sock_peer *p,
                        const struct dev_helper_request *q, struct dev_helper_reply *reply, phy_error *err) {
        struct record rec;
        int r = record_load(dir, q->address, &rec);
        if (r == -ENOENT)
                return phy_error_set(err, ENOENT, "the device helper holds no record of PCI device %s (it did not "
                                     "move it, or gave it back already)", q->address);
        if (r < 0)
                return phy_error_set(err, -r, "the device helper's record of PCI device %s in %s is unreadable: %s",
                                     q->address, dir, strerror(-r));
        if (rec.uid != p->uid && p->uid != 0)
                return phy_error_set(err, EPERM, "PCI device %s was moved for VM '%s' of uid %u, not for uid %u",
                                     q->address, rec.vm, (unsigned) rec.uid, (unsigned) p->uid);
        if (q->driver[0] && strcmp(q->driver, rec.driver[0] ? rec.driver : "-") != 0 &&
            !(strcmp(q->driver, "-") == 0 && !rec.driver[0]))
                return phy_error_usage(err, "the device helper recorded driver '%s' for PCI device %s, not "
                                     "'%s'", rec.driver[0] ? rec.driver : "(none)", q->address, q->driver);
        /* The node first: it vanishes on a real host once the group leaves vfio-pci. */
        struct group_query gq = { .group = rec.group, .except = q->address };
        if (records_each(dir, find_group_holder, &gq) == 0 && (r = vfio_give_back(s, dir, rec.group, err)) < 0)
                return r;
        _cleanup_strv_ strv one = { 0 }, drivers = { 0 };
        _cleanup_dev_plan_ struct dev_plan plan = { 0 };
        if ((r = strv_push(&one, q->address)) < 0 || (r = strv_push(&drivers, rec.driver)) < 0 ||
            (r = dev_plan_give_back(s->root, &one, &drivers, &plan, err)) < 0)
                return r;
        if ((r = dev_plan_execute(s->root, &plan, true, s->hook, s->hook_data, err)) < 0)
                return phy_error_prefix(err, "giving PCI device %s back failed (the device helper keeps its record: "
                                        "ask again)", q->address);
        record_remove(dir, q->address);
        reply->iommu_group = rec.group;
        snprintf(reply->driver, sizeof reply->driver, "%s", rec.driver);
        snprintf(reply->message, sizeof reply->message, "PCI device %s is back on %s", q->address,
                 rec.driver[0] ? rec.driver : "no driver");
        return 0;
}

struct status_ctx {
        uid_t uid;
        FILE *f;
        unsigned n;
};

static int status_one(const char *address, const struct record *rec, void *u) {
        struct status_ctx *c = u;
        if (rec->uid == c->uid)
                fprintf(c->f, "%s%s (VM '%s', group %d, from %s)", c->n++ ? "; " : "", address, rec->vm, rec->group,
                        rec->driver[0] ? rec->driver : "no driver");
        return 0;
}

static int do_status(const char *dir, const struct sock_peer *p, struct dev_helper_reply *reply) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        struct status_ctx c = { .uid = p->uid, .f = f };
        int r = records_each(dir, status_one, &c);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        if (r >= 0)
                snprintf(reply->message, sizeof reply->message, "%s%s",
                         c.n ? "held through the device helper: " : "you hold no devices through the device helper",
                         buf);
        free(buf);
        return r;
}

void dev_helper_handle(const struct dev_helper_server *s, const struct sock_peer *p,
                       const struct dev_helper_request *q, struct dev_helper_reply *reply) {
        memset(reply, 0, sizeof *reply);
        reply->version = DEV_HELPER_VERSION;
        reply->iommu_group = -1;
        phy_error e = { 0 };
        _cleanup_free_ char *dir = state_dir_of(s);
        int r = dir ? 0 : -ENOMEM;
        if (r >= 0 && mkdir_p(dir, 0700) < 0)
                r = phy_error_set(&e, errno, "the device helper cannot create its state directory %s: %s", dir,
                                  strerror(errno));
        if (r >= 0)
                switch (q->op) {
                case DEV_HELPER_TO_VFIO:
                case DEV_HELPER_CHOWN_VFIO_GROUP:
                        r = do_to_vfio(s, dir, p, q, reply, &e);
                        break;
                case DEV_HELPER_GIVE_BACK:
                        r = do_give_back(s, dir, p, q, reply, &e);
                        break;
                case DEV_HELPER_STATUS:
                        r = do_status(dir, p, reply);
                        break;
                default:
                        r = phy_error_usage(&e, "unknown request op %u", q->op);
                }
        if (r < 0) {
                reply->error = -r;
                size_t n = strnlen(e.message, sizeof reply->message - 1);
                if (n == 0)
                        n = (size_t) snprintf(reply->message, sizeof reply->message, "%s", strerror(-r));
                else
                        memcpy(reply->message, e.message, n);
                reply->message[n < sizeof reply->message ? n : sizeof reply->message - 1] = '\0';
        }
}

/* ---- sockets ---- */

int dev_helper_listen(const char *path, phy_error *err) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path)
                return phy_error_set(err, ENAMETOOLONG, "the socket path '%s' is too long", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        _cleanup_free_ char *dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash && slash != dir) {
                *slash = '\0';
                if (mkdir_p(dir, 0755) < 0)
                        return phy_error_set(err, errno, "cannot create '%s': %s", dir, strerror(errno));
        }
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return phy_error_set(err, errno, "cannot create a socket: %s", strerror(errno));
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || chmod(path, 0666) < 0 || listen(fd, 16) < 0)
                return phy_error_set(err, errno, "cannot listen on '%s': %s", path, strerror(errno));
        return TAKE_FD(fd);
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct conn {
        int fd;
        int64_t deadline;
        struct sock_peer peer;
};

static void conn_close(struct conn *c) {
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        sock_peer_done(&c->peer);
}

/* One message from c: checked, served, answered.  false: close it. */
static bool conn_serve(const struct dev_helper_server *s, struct conn *c) {
        unsigned char buf[sizeof(struct dev_helper_request) + 1];
        /* MSG_TRUNC: the real length of a longer message, which is refused. */
        ssize_t n = recv(c->fd, buf, sizeof buf, MSG_TRUNC | MSG_DONTWAIT);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR;
        if (n == 0)
                return false;
        struct dev_helper_request q;
        struct dev_helper_reply reply;
        phy_error e = { 0 };
        bool checked = dev_helper_request_check(buf, (size_t) n, &q, &e) >= 0;
        if (!checked) {
                memset(&reply, 0, sizeof reply);
                reply.version = DEV_HELPER_VERSION;
                reply.error = e.code;
                reply.iommu_group = -1;
                snprintf(reply.message, sizeof reply.message, "refused: %.490s", e.message);
        } else
                dev_helper_handle(s, &c->peer, &q, &reply);
        if (s->log)
                s->log(&c->peer, checked ? &q : NULL, &reply, s->log_data);
        return send(c->fd, &reply, sizeof reply, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t) sizeof reply;
}

int dev_helper_serve(int listen_fd, const struct dev_helper_server *s, phy_error *err) {
        struct conn conns[MAX_CONNS];
        struct pollfd pfd[MAX_CONNS + 1];
        int idle = s->idle_timeout_ms > 0 ? s->idle_timeout_ms : DEFAULT_IDLE_MS;
        for (size_t i = 0; i < MAX_CONNS; i++)
                conns[i] = (struct conn) { .fd = -1 };
        for (;;) {
                int64_t now = now_ms(), next = -1;
                pfd[0] = (struct pollfd) { .fd = listen_fd, .events = POLLIN };
                for (size_t i = 0; i < MAX_CONNS; i++) {
                        if (conns[i].fd >= 0 && conns[i].deadline <= now)
                                conn_close(&conns[i]);
                        pfd[i + 1] = (struct pollfd) { .fd = conns[i].fd, .events = POLLIN };
                        if (conns[i].fd >= 0 && (next < 0 || conns[i].deadline < next))
                                next = conns[i].deadline;
                }
                int n = poll(pfd, MAX_CONNS + 1, next < 0 ? -1 : (int) (next - now));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return phy_error_set(err, errno, "poll failed: %s", strerror(errno));
                }
                for (size_t i = 0; i < MAX_CONNS; i++) {
                        if (conns[i].fd < 0 || !pfd[i + 1].revents)
                                continue;
                        if (!(pfd[i + 1].revents & POLLIN) || !conn_serve(s, &conns[i]))
                                conn_close(&conns[i]);
                        else
                                conns[i].deadline = now_ms() + idle;
                }
                if (pfd[0].revents & (POLLERR | POLLNVAL))
                        return phy_error_set(err, EIO, "the device helper's listening socket failed");
                if (!(pfd[0].revents & POLLIN))
                        continue;
                int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0)
                        continue;
                size_t slot = MAX_CONNS;
                for (size_t i = 0; i < MAX_CONNS; i++)
                        if (conns[i].fd < 0) {
                                slot = i;
                                break;
                        } else if (slot == MAX_CONNS || conns[i].deadline < conns[slot].deadline)
                                slot = i;
                /* Full: the connection closest to its deadline makes room. */
                conn_close(&conns[slot]);
                conns[slot] = (struct conn) { .fd = fd, .deadline = now_ms() + idle };
                if (sock_peer_get(fd, &conns[slot].peer) < 0)
                        conn_close(&conns[slot]);
        }
}

/* SPDX-License-Identifier: MIT */
/*
 * Live migration without shared storage (docs/storage.md, "Live migration"):
 * the destination VM is prepared in another Phyllome home (definition, empty
 * images of the same virtual sizes), started under its own monitor with
 * "-incoming defer" and paused; it serves its disks over NBD and listens for
 * the migration stream on TCP.  The source mirrors every disk into those NBD
 * exports (blockdev-mirror, write-blocking once ready, so that nothing is
 * left dirty when the CPUs stop), then migrates RAM and device state.  Only
 * when the destination has the whole VM does it run ("cont"); the source
 * QEMU, paused in "postmigrate", is quit.  Before that point any failure
 * cancels the jobs, lets the source run on and removes the destination.
 *
 * Both streams are TLS with a pre-shared key made fresh for each migration
 * (QEMU's tls-creds-psk): the key goes into a new 0700 directory in each
 * side's run dir, owned by that side's QEMU user, and each QEMU is told of it
 * over its QMP socket, the channel that carries the migration's commands.
 * The destination's NBD server and its incoming migration take nothing but a
 * TLS client holding that key, so no one else on the network (or on this
 * machine) can read or write the exported disks or feed the VM a state.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "fileio.h"
#include "runfile.h"
#include "qemu/argv.h"
#include "qemu/caps.h"
#include "qemu/qmp.h"
#include "store.h"
#include "store-internal.h"
#include "vm/vm.h"

#define MIG_CMD_MS 30000
#define MIG_TICK_MS 500         /* progress line interval while waiting on events */
#define MIG_PREFIX "mig-"       /* job ids and NBD client node names on the source */
#define MIG_TLS_ID "mig-tls"    /* the tls-creds-psk object on both sides */
#define MIG_PSK_USER "qemu"     /* QEMU's default PSK username */

/* One block node that travels: "disk-<name>" or "fw-vars" (the UEFI vars). */
struct mig_node {
        char node[96];
        bool job_started, target_added, ready;
};

struct store_migration {
        const char *home, *name;
        const struct store_migrate_opts *o;
        struct store_migrate_opts opts;         /* o points here */
        const char *addr;
        char dest_real[PATH_MAX];               /* the destination home, resolved */
        struct store_migrate_result res;
        struct vm_def def;
        char *src_dir, *dst_dir, *dst_run_dir, *src_run_dir, *qemu_img;
        struct mig_node *nodes;
        size_t n_nodes;
        struct qmp *src, *dst;
        bool dst_created, migrate_started, src_was_paused;
        bool failed;                    /* the destination's files go at the end */
        char psk[65];                   /* the key, hex */
        char *src_tls, *dst_tls;        /* the directories holding keys.psk */
        bool src_tls_added, dst_tls_added;
};

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void progress(struct store_migration *m, const char *phase, uint64_t done, uint64_t total) {
        if (m->o->progress)
                m->o->progress(phase, done, total, m->o->userdata);
}

static json_object *obj(void) {
        return json_object_new_object();
}
static void put_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, json_object_new_string(v));
}

static int cmd(struct qmp *q, const char *c, json_object *args, json_object **ret, phy_error *err) {
        return qmp_command(q, c, args, MIG_CMD_MS, ret, err);
}

/* A free TCP port on addr for the destination's NBD server.  QEMU binds it a
 * moment later; the migration port itself is chosen by QEMU (port 0). */
static int pick_port(const char *addr, int *ret, phy_error *err) {
        struct sockaddr_in sa = { .sin_family = AF_INET };
        if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
                return phy_error_usage(err, "'%s' is not an IPv4 address for the migration", addr);
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        socklen_t len = sizeof sa;
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
            getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                return phy_error_set(err, errno, "cannot find a free TCP port on %s: %s", addr, strerror(errno));
        *ret = ntohs(sa.sin_port);
        return 0;
}

/* ---- the destination's files ---- */

static char *abs_path(const char *dir, const char *p) {
        return p ? vm_path_resolve(dir, p) : NULL;
}

static int replace_str(char **slot, char *v) {
        if (!v)
                return -ENOMEM;
        free(*slot);
        *slot = v;
        return 0;
}

/* The destination definition: the source's, every read-write disk a new qcow2
 * "disk-<name>.qcow2" in the destination's dir; other paths made absolute. */
static int prepare_destination(struct store_migration *m, phy_error *err) {
        _cleanup_vm_def_ struct vm_def d = { 0 };
        int r;
        if (vm_def_copy(&m->def, &d) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (replace_str(&d.kernel, d.kernel ? abs_path(m->src_dir, d.kernel) : strdup("")) < 0 ||
            replace_str(&d.initrd, d.initrd ? abs_path(m->src_dir, d.initrd) : strdup("")) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (!m->def.kernel) {
                free(d.kernel);
                d.kernel = NULL;
        }
        if (!m->def.initrd) {
                free(d.initrd);
                d.initrd = NULL;
        }
        for (size_t i = 0; i < d.n_cdroms; i++)
                if (replace_str(&d.cdroms[i].path, abs_path(m->src_dir, d.cdroms[i].path)) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");

        _cleanup_free_ char *vms = NULL;
        if (asprintf(&vms, "%s/vms", m->o->dest_home) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if ((r = mkdir_p(vms, 0755)) < 0)
                return phy_error_set(err, -r, "cannot create '%s': %s", vms, strerror(-r));
        if (mkdir(m->dst_dir, 0755) < 0) {
                if (errno == EEXIST)
                        return phy_error_set(err, EEXIST, "the destination home '%s' already has a VM '%s'; "
                                             "delete it there first", m->o->dest_home, m->name);
                return phy_error_set(err, errno, "cannot create '%s': %s", m->dst_dir, strerror(errno));
        }
        m->dst_created = true;

        for (size_t i = 0; i < d.n_disks; i++) {
                struct vm_disk *k = &d.disks[i];
                _cleanup_free_ char *src = abs_path(m->src_dir, k->path);
                if (!src)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if (k->readonly) {
                        /* Nothing to mirror: the same image must be at hand at the destination. */
                        if (replace_str(&k->path, TAKE_PTR(src)) < 0)
                                return phy_error_set(err, ENOMEM, "out of memory");
                        continue;
                }
                _cleanup_(json_object_putp) json_object *info = NULL;
                if ((r = store_image_info_as(m->qemu_img, src, store_disk_format(k), &info, err)) < 0)
                        return r;
                int64_t size = store_json_int(info, "virtual-size");
                _cleanup_free_ char *file = NULL, *dst = NULL, *sz = NULL, *what = NULL;
                if (asprintf(&file, "disk-%s.qcow2", k->name) < 0 || asprintf(&dst, "%s/%s", m->dst_dir, file) < 0 ||
                    asprintf(&sz, "%" PRId64, size) < 0 ||
                    asprintf(&what, "the destination image of disk '%s'", k->name) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                char *argv[] = { m->qemu_img, (char *) "create", (char *) "-q", (char *) "-f", (char *) "qcow2",
                                 dst, sz, NULL };
                if ((r = store_qemu_img(m->qemu_img, what, argv, NULL, err)) < 0)
                        return r;
                if (replace_str(&k->path, TAKE_PTR(file)) < 0 || replace_str(&k->format, strdup("qcow2")) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                snprintf(m->nodes[m->n_nodes++].node, sizeof m->nodes[0].node, "disk-%s", k->name);
        }
        /* The vars file is a block device too (pflash): copied now so that it
         * exists, mirrored like a disk for what the guest writes meanwhile. */
        _cleanup_free_ char *vars = qemu_vars_path(m->src_dir), *dvars = qemu_vars_path(m->dst_dir);
        if (!vars || !dvars)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (m->def.firmware == VM_FW_UEFI && access(vars, F_OK) == 0) {
                if ((r = file_copy_atomic(vars, dvars, 0600, err)) < 0)
                        return r;
                snprintf(m->nodes[m->n_nodes++].node, sizeof m->nodes[0].node, "fw-vars");
        }
        /* The TPM state: a starting point; QEMU's migration stream carries swtpm's live state. */
        _cleanup_free_ char *tpm = NULL, *dtpm = NULL;
        if (asprintf(&tpm, "%s/tpm", m->src_dir) < 0 || asprintf(&dtpm, "%s/tpm", m->dst_dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (access(tpm, F_OK) == 0 && (r = store_copy_tree(tpm, dtpm, err)) < 0)
                return r;
        _cleanup_free_ char *conf = vm_conf_path(m->o->dest_home, m->name);
        if (!conf)
                return phy_error_set(err, ENOMEM, "out of memory");
        free(d.path);
        d.path = strdup(conf);
        return vm_def_save(&d, conf, err);
}

/* ---- QMP steps ---- */

/* "mig-<node>": the source's job id and NBD client node, the destination's export id. */
static void job_id(const struct mig_node *n, char id[static 112]) {
        snprintf(id, 112, MIG_PREFIX "%s", n->node);
}

static int open_qmp(const char *run_dir, struct qmp **ret, phy_error *err) {
        _cleanup_free_ char *sock = NULL;
        if (asprintf(&sock, "%s/qmp.sock", run_dir) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        return qmp_open_path(sock, 10000, ret, err);
}

static int set_events(struct qmp *q, phy_error *err) {
        json_object *a = obj(), *caps = json_object_new_array(), *c = obj();
        put_str(c, "capability", "events");
        json_object_object_add(c, "state", json_object_new_boolean(true));
        json_object_array_add(caps, c);
        json_object_object_add(a, "capabilities", caps);
        return cmd(q, "migrate-set-capabilities", a, NULL, err);
}

/* ---- TLS ---- */

/* The real uid and gid of a running process (its /proc/PID/status). */
static int proc_ids(pid_t pid, uid_t *ret_uid, gid_t *ret_gid) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
        _cleanup_free_ char *text = NULL;
        if (pid <= 0 || file_read_all(path, 64 * 1024, &text, NULL) < 0)
                return -ESRCH;
        const char *u = strstr(text, "\nUid:"), *g = strstr(text, "\nGid:");
        unsigned long uv, gv;
        if (!u || !g || sscanf(u + 5, "%lu", &uv) != 1 || sscanf(g + 5, "%lu", &gv) != 1)
                return -EPROTO;
        *ret_uid = (uid_t) uv;
        *ret_gid = (gid_t) gv;
        return 0;
}

/* A fresh <run_dir>/mig-tls.XXXXXX (mkdtemp: new, 0700) holding keys.psk
 * ("qemu:<hex key>", 0600), both handed to the user QEMU runs as. */
static int psk_dir_make(const struct store_migration *m, const char *home, const char *run_dir, char **ret, phy_error *err) {
        _cleanup_free_ char *dir = NULL, *line = NULL;
        if (asprintf(&dir, "%s/mig-tls.XXXXXX", run_dir) < 0 || asprintf(&line, MIG_PSK_USER ":%s\n", m->psk) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (!mkdtemp(dir))
                return phy_error_set(err, errno, "cannot create a directory in '%s' for the migration's TLS key: %s",
                                     run_dir, strerror(errno));
        *ret = strdup(dir);
        if (!*ret) {
                (void) rm_rf(dir);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        _cleanup_run_state_ struct run_state st = { 0 };
        uid_t uid = geteuid();
        gid_t gid = getegid();
        if (run_state_get(home, m->name, &st, err) < 0 || proc_ids(st.qemu_pid, &uid, &gid) < 0)
                return phy_error_set(err, ESRCH, "cannot tell which user the QEMU of VM '%s' in '%s' runs as", m->name,
                                     home);
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int fd = dfd < 0 ? -1 : openat(dfd, "keys.psk", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                                        0600);
        if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t) strlen(line) || fchown(fd, uid, gid) < 0 ||
            fchown(dfd, uid, gid) < 0)
                return phy_error_set(err, errno, "cannot write the migration's TLS key in '%s': %s", dir, strerror(errno));
        return 0;
}

/* The tls-creds-psk object on one side ("server" or "client"); any left by
 * an earlier migration that was killed is removed first. */
static int psk_add(struct qmp *q, const char *endpoint, const char *dir, phy_error *err) {
        phy_error e = { 0 };
        json_object *a = obj();
        put_str(a, "id", MIG_TLS_ID);
        (void) cmd(q, "object-del", a, NULL, &e);
        a = obj();
        put_str(a, "qom-type", "tls-creds-psk");
        put_str(a, "id", MIG_TLS_ID);
        put_str(a, "endpoint", endpoint);
        put_str(a, "dir", dir);
        if (strcmp(endpoint, "client") == 0)
                put_str(a, "username", MIG_PSK_USER);
        return cmd(q, "object-add", a, NULL, err);
}

/* Undoes psk_add: the migration parameter and the object. */
static void psk_remove(struct qmp *q) {
        phy_error e = { 0 };
        json_object *a = obj();
        put_str(a, "tls-creds", "");
        (void) cmd(q, "migrate-set-parameters", a, NULL, &e);
        a = obj();
        put_str(a, "id", MIG_TLS_ID);
        (void) cmd(q, "object-del", a, NULL, &e);
}

static int tls_creds_param(struct qmp *q, phy_error *err) {
        json_object *a = obj();
        put_str(a, "tls-creds", MIG_TLS_ID);
        return cmd(q, "migrate-set-parameters", a, NULL, err);
}

/* Destination: NBD exports of its (still inactive) disks, then the incoming
 * migration on a port QEMU picks (query-migrate tells it); both TLS only. */
static int destination_listen(struct store_migration *m, int *ret_nbd_port, int *ret_mig_port, phy_error *err) {
        int r, port = 0;
        if ((r = set_events(m->dst, err)) < 0 || (r = pick_port(m->addr, &port, err)) < 0 ||
            (r = psk_dir_make(m, m->o->dest_home, m->dst_run_dir, &m->dst_tls, err)) < 0)
                return r;
        if ((r = psk_add(m->dst, "server", m->dst_tls, err)) < 0)
                return phy_error_prefix(err, "the destination's TLS credentials");
        m->dst_tls_added = true;
        if ((r = tls_creds_param(m->dst, err)) < 0)
                return r;
        char ps[16];
        snprintf(ps, sizeof ps, "%d", port);
        /* nbd-server-start takes the legacy form of a socket address ("data" nested). */
        json_object *a = obj(), *addr = obj(), *inet = obj();
        put_str(inet, "host", m->addr);
        put_str(inet, "port", ps);
        put_str(addr, "type", "inet");
        json_object_object_add(addr, "data", inet);
        json_object_object_add(a, "addr", addr);
        put_str(a, "tls-creds", MIG_TLS_ID);
        if ((r = cmd(m->dst, "nbd-server-start", a, NULL, err)) < 0)
                return phy_error_prefix(err, "the destination's NBD server on %s:%d", m->addr, port);
        for (size_t i = 0; i < m->n_nodes; i++) {
                json_object *e = obj();
                char id[112];
                job_id(&m->nodes[i], id);
                put_str(e, "type", "nbd");
                put_str(e, "id", id);
                put_str(e, "node-name", m->nodes[i].node);
                put_str(e, "name", m->nodes[i].node);
                json_object_object_add(e, "writable", json_object_new_boolean(true));
                if ((r = cmd(m->dst, "block-export-add", e, NULL, err)) < 0)
                        return phy_error_prefix(err, "exporting '%s' at the destination", m->nodes[i].node);
        }
        char uri[96];
        snprintf(uri, sizeof uri, "tcp:%s:0", m->addr);
        a = obj();
        put_str(a, "uri", uri);
        if ((r = cmd(m->dst, "migrate-incoming", a, NULL, err)) < 0)
                return r;
        _cleanup_(json_object_putp) json_object *info = NULL;
        if ((r = cmd(m->dst, "query-migrate", NULL, &info, err)) < 0)
                return r;
        json_object *sa, *p;
        if (!json_object_object_get_ex(info, "socket-address", &sa) || json_object_array_length(sa) < 1 ||
            !json_object_object_get_ex(json_object_array_get_idx(sa, 0), "port", &p))
                return phy_error_set(err, EPROTO, "the destination QEMU did not say on which port it listens "
                                     "for the migration");
        unsigned long long mp;
        if (parse_uint(json_object_get_string(p), 65535, &mp) < 0)
                return phy_error_set(err, EPROTO, "the destination QEMU gave a bad migration port '%s'",
                                     json_object_get_string(p));
        *ret_nbd_port = port;
        *ret_mig_port = (int) mp;
        return 0;
}

static const char *event_device(json_object *ev, const char **ret_error) {
        json_object *data;
        *ret_error = NULL;
        if (!json_object_object_get_ex(ev, "data", &data))
                return NULL;
        *ret_error = store_json_str(data, "error");
        return store_json_str(data, "device");
}

static struct mig_node *node_of_job(struct store_migration *m, const char *job) {
        if (!job || strncmp(job, MIG_PREFIX, strlen(MIG_PREFIX)) != 0)
                return NULL;
        for (size_t i = 0; i < m->n_nodes; i++)
                if (m->nodes[i].job_started && strcmp(job + strlen(MIG_PREFIX), m->nodes[i].node) == 0)
                        return &m->nodes[i];
        return NULL;
}

static void mirror_progress(struct store_migration *m) {
        _cleanup_(json_object_putp) json_object *jobs = NULL;
        phy_error e = { 0 };
        if (cmd(m->src, "query-block-jobs", NULL, &jobs, &e) < 0)
                return;
        uint64_t done = 0, total = 0;
        for (size_t i = 0; i < json_object_array_length(jobs); i++) {
                json_object *j = json_object_array_get_idx(jobs, i);
                if (node_of_job(m, store_json_str(j, "device"))) {
                        done += (uint64_t) store_json_int(j, "offset");
                        total += (uint64_t) store_json_int(j, "len");
                }
        }
        progress(m, "disks", done, total);
}

/* Source: an NBD client node per export and a mirror job into it; returns
 * when every job is ready (source and destination in sync). */
static int mirror_disks(struct store_migration *m, int nbd_port, phy_error *err) {
        int r;
        char ps[16];
        snprintf(ps, sizeof ps, "%d", nbd_port);
        if ((r = psk_dir_make(m, m->home, m->src_run_dir, &m->src_tls, err)) < 0)
                return r;
        if ((r = psk_add(m->src, "client", m->src_tls, err)) < 0)
                return phy_error_prefix(err, "the source's TLS credentials");
        m->src_tls_added = true;
        for (size_t i = 0; i < m->n_nodes; i++) {
                struct mig_node *n = &m->nodes[i];
                char id[112];
                job_id(n, id);
                json_object *a = obj(), *srv = obj();
                put_str(a, "driver", "nbd");
                put_str(a, "node-name", id);
                put_str(srv, "type", "inet");
                put_str(srv, "host", m->addr);
                put_str(srv, "port", ps);
                json_object_object_add(a, "server", srv);
                put_str(a, "export", n->node);
                put_str(a, "tls-creds", MIG_TLS_ID);
                if ((r = cmd(m->src, "blockdev-add", a, NULL, err)) < 0)
                        return phy_error_prefix(err, "connecting to the destination's export of '%s'", n->node);
                n->target_added = true;
                a = obj();
                put_str(a, "job-id", id);
                put_str(a, "device", n->node);
                put_str(a, "target", id);
                put_str(a, "sync", "full");
                /* Once in sync every guest write reaches both sides before it
                 * completes: nothing is dirty when migration stops the CPUs. */
                put_str(a, "copy-mode", "write-blocking");
                if ((r = cmd(m->src, "blockdev-mirror", a, NULL, err)) < 0)
                        return phy_error_prefix(err, "mirroring '%s' to the destination", n->node);
                n->job_started = true;
        }
        size_t ready = 0;
        int64_t deadline = now_ms() + (int64_t) m->o->timeout_s * 1000;
        while (ready < m->n_nodes) {
                _cleanup_(json_object_putp) json_object *ev = NULL;
                r = qmp_next_event(m->src, MIG_TICK_MS, &ev, err);
                if (r == -ETIMEDOUT) {
                        phy_error_clear(err);
                        if (now_ms() > deadline)
                                return phy_error_set(err, ETIMEDOUT, "the disks of VM '%s' were not copied within "
                                                     "%u s", m->name, m->o->timeout_s);
                        mirror_progress(m);
                        continue;
                }
                if (r < 0)
                        return r;
                const char *what = store_json_str(ev, "event"), *e;
                struct mig_node *n = node_of_job(m, event_device(ev, &e));
                if (!what || !n)
                        continue;
                if (strcmp(what, "BLOCK_JOB_READY") == 0 && !n->ready) {
                        n->ready = true;
                        ready++;
                } else if (strcmp(what, "BLOCK_JOB_COMPLETED") == 0 || strcmp(what, "BLOCK_JOB_CANCELLED") == 0) {
                        n->job_started = false;
                        return phy_error_set(err, EIO, "copying '%s' to the destination failed: %s", n->node,
                                             e ? e : "the job ended early");
                }
        }
        mirror_progress(m);
        return 0;
}

static void migrate_progress(struct store_migration *m) {
        _cleanup_(json_object_putp) json_object *info = NULL;
        phy_error e = { 0 };
        json_object *ram;
        if (cmd(m->src, "query-migrate", NULL, &info, &e) < 0 || !json_object_object_get_ex(info, "ram", &ram))
                return;
        progress(m, "memory", (uint64_t) store_json_int(ram, "transferred"), (uint64_t) store_json_int(ram, "total"));
}

/* Source: RAM and device state to the destination; returns once QEMU says completed. */
static int migrate_state(struct store_migration *m, int mig_port, struct store_migrate_result *res, phy_error *err) {
        int r;
        if ((r = set_events(m->src, err)) < 0)
                return r;
        json_object *a = obj();
        /* QEMU 7.2 caps migration at 32 MiB/s by default: loopback or a LAN can do far more. */
        json_object_object_add(a, "max-bandwidth",
                               json_object_new_int64(m->o->max_bandwidth ? (int64_t) m->o->max_bandwidth
                                                                         : (int64_t) 1 << 34));
        put_str(a, "tls-creds", MIG_TLS_ID);
        if ((r = cmd(m->src, "migrate-set-parameters", a, NULL, err)) < 0)
                return r;
        char uri[96];
        snprintf(uri, sizeof uri, "tcp:%s:%d", m->addr, mig_port);
        a = obj();
        put_str(a, "uri", uri);
        if ((r = cmd(m->src, "migrate", a, NULL, err)) < 0) {
                qemu_migration_blocker_hint(err);
                return r;
        }
        m->migrate_started = true;
        int64_t deadline = now_ms() + (int64_t) m->o->timeout_s * 1000;
        for (;;) {
                _cleanup_(json_object_putp) json_object *ev = NULL;
                r = qmp_next_event(m->src, MIG_TICK_MS, &ev, err);
                if (r == -ETIMEDOUT) {
                        phy_error_clear(err);
                        if (now_ms() > deadline)
                                return phy_error_set(err, ETIMEDOUT, "the migration of VM '%s' did not complete "
                                                     "within %u s", m->name, m->o->timeout_s);
                        migrate_progress(m);
                        continue;
                }
                if (r < 0)
                        return r;
                const char *what = store_json_str(ev, "event"), *e;
                json_object *data;
                if (what && strcmp(what, "MIGRATION") == 0 && json_object_object_get_ex(ev, "data", &data)) {
                        const char *st = store_json_str(data, "status");
                        if (st && strcmp(st, "completed") == 0)
                                break;
                        if (st && (strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0)) {
                                _cleanup_(json_object_putp) json_object *info = NULL;
                                phy_error e2 = { 0 };
                                const char *why = cmd(m->src, "query-migrate", NULL, &info, &e2) == 0
                                                          ? store_json_str(info, "error-desc") : NULL;
                                return phy_error_set(err, EIO, "the migration of VM '%s' %s: %s", m->name, st,
                                                     why ? why : "QEMU gave no reason");
                        }
                } else if (what && strncmp(what, "BLOCK_JOB_", 10) == 0) {
                        struct mig_node *n = node_of_job(m, event_device(ev, &e));
                        if (n && (strcmp(what, "BLOCK_JOB_COMPLETED") == 0 || strcmp(what, "BLOCK_JOB_CANCELLED") == 0 ||
                                  strcmp(what, "BLOCK_JOB_ERROR") == 0))
                                return phy_error_set(err, EIO, "mirroring '%s' to the destination failed during "
                                                     "the migration: %s", n->node, e ? e : "the job ended");
                }
        }
        _cleanup_(json_object_putp) json_object *info = NULL;
        if ((r = cmd(m->src, "query-migrate", NULL, &info, err)) < 0)
                return r;
        json_object *ram;
        res->downtime_ms = store_json_int(info, "downtime");
        res->total_ms = store_json_int(info, "total-time");
        if (json_object_object_get_ex(info, "ram", &ram)) {
                res->ram_bytes = (uint64_t) store_json_int(ram, "transferred");
                progress(m, "memory", res->ram_bytes, res->ram_bytes);
        }
        return 0;
}

/* Source, after completion: each ready mirror is cancelled, which ends it
 * with the destination a consistent copy (BLOCK_JOB_COMPLETED). */
static int finish_mirrors(struct store_migration *m, phy_error *err) {
        int r;
        size_t left = 0;
        for (size_t i = 0; i < m->n_nodes; i++) {
                char id[112];
                job_id(&m->nodes[i], id);
                json_object *a = obj();
                put_str(a, "device", id);
                if ((r = cmd(m->src, "block-job-cancel", a, NULL, err)) < 0)
                        return r;
                left++;
        }
        while (left > 0) {
                _cleanup_(json_object_putp) json_object *ev = NULL;
                if ((r = qmp_next_event(m->src, MIG_CMD_MS, &ev, err)) < 0)
                        return phy_error_prefix(err, "waiting for the disk mirrors to finish");
                const char *what = store_json_str(ev, "event"), *e;
                struct mig_node *n = node_of_job(m, event_device(ev, &e));
                if (!n || !what || (strcmp(what, "BLOCK_JOB_COMPLETED") != 0 && strcmp(what, "BLOCK_JOB_CANCELLED") != 0))
                        continue;
                n->job_started = false;
                left--;
                if (e)
                        return phy_error_set(err, EIO, "the last writes of '%s' did not reach the destination: %s",
                                             n->node, e);
        }
        /* The NBD clients go: the destination's exports are free to close. */
        for (size_t i = 0; i < m->n_nodes; i++) {
                char id[112];
                job_id(&m->nodes[i], id);
                json_object *a = obj();
                put_str(a, "node-name", id);
                if ((r = cmd(m->src, "blockdev-del", a, NULL, err)) < 0)
                        return r;
                m->nodes[i].target_added = false;
        }
        return 0;
}

/* Destination: waits for its side of the migration, closes the exports and runs. */
static int destination_run(struct store_migration *m, phy_error *err) {
        int r;
        for (;;) {
                _cleanup_(json_object_putp) json_object *ev = NULL;
                if ((r = qmp_next_event(m->dst, MIG_CMD_MS, &ev, err)) < 0)
                        return phy_error_prefix(err, "waiting for the destination to receive the VM");
                const char *what = store_json_str(ev, "event");
                json_object *data;
                if (!what || strcmp(what, "MIGRATION") != 0 || !json_object_object_get_ex(ev, "data", &data))
                        continue;
                const char *st = store_json_str(data, "status");
                if (st && strcmp(st, "completed") == 0)
                        break;
                if (st && (strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0))
                        return phy_error_set(err, EIO, "the destination could not load VM '%s' (%s); see its qemu.log",
                                             m->name, st);
        }
        /* Closes the exports too (the source has disconnected by now). */
        if ((r = cmd(m->dst, "nbd-server-stop", NULL, NULL, err)) < 0)
                return r;
        psk_remove(m->dst);
        m->dst_tls_added = false;
        /* A VM paused on the source stays paused at the destination. */
        return m->src_was_paused ? 0 : cmd(m->dst, "cont", NULL, NULL, err);
}

/* Any failure before the destination runs: the source runs on (the
 * destination's QEMU is ended by the caller, its files by store_migrate_end). */
void store_migrate_cancel(struct store_migration *m) {
        phy_error e = { 0 };
        if (m->src) {
                if (m->migrate_started)
                        (void) cmd(m->src, "migrate_cancel", NULL, NULL, &e);
                size_t left = 0;
                for (size_t i = 0; i < m->n_nodes; i++) {
                        if (!m->nodes[i].job_started)
                                continue;
                        char id[112];
                        job_id(&m->nodes[i], id);
                        json_object *a = obj();
                        put_str(a, "device", id);
                        json_object_object_add(a, "force", json_object_new_boolean(true));
                        if (cmd(m->src, "block-job-cancel", a, NULL, &e) == 0)
                                left++;
                }
                /* The NBD nodes can go once their jobs have. */
                while (left > 0) {
                        _cleanup_(json_object_putp) json_object *ev = NULL;
                        if (qmp_next_event(m->src, MIG_CMD_MS, &ev, &e) < 0)
                                break;
                        const char *what = store_json_str(ev, "event"), *err_text;
                        struct mig_node *n = node_of_job(m, event_device(ev, &err_text));
                        if (n && what && (strcmp(what, "BLOCK_JOB_COMPLETED") == 0 ||
                                          strcmp(what, "BLOCK_JOB_CANCELLED") == 0)) {
                                n->job_started = false;
                                left--;
                        }
                }
                for (size_t i = 0; i < m->n_nodes; i++) {
                        if (!m->nodes[i].target_added)
                                continue;
                        char id[112];
                        job_id(&m->nodes[i], id);
                        json_object *a = obj();
                        put_str(a, "node-name", id);
                        (void) cmd(m->src, "blockdev-del", a, NULL, &e);
                }
                if (m->src_tls_added)
                        psk_remove(m->src);
                /* A failed migration resumes the source by itself; a stop after completion does not. */
                _cleanup_free_ char *st = NULL;
                if (!m->src_was_paused && qmp_query_status(m->src, &st, &e) == 0 && strcmp(st, "running") != 0)
                        (void) cmd(m->src, "cont", NULL, NULL, &e);
        }
        if (m->dst) {
                qmp_close(m->dst);
                m->dst = NULL;
        }
        m->failed = true;
}

void store_migrate_end(struct store_migration *m) {
        if (!m)
                return;
        /* What a failed migration made at the destination goes (not a VM it found there). */
        if (m->failed && m->dst_created) {
                if (m->dst_run_dir)
                        (void) rm_rf(m->dst_run_dir);
                (void) rm_rf(m->dst_dir);
        }
        if (m->src_tls)
                (void) rm_rf(m->src_tls);
        if (m->dst_tls)
                (void) rm_rf(m->dst_tls);
        free(m->src_tls);
        free(m->dst_tls);
        explicit_bzero(m->psk, sizeof m->psk);
        if (m->src)
                qmp_close(m->src);
        if (m->dst)
                qmp_close(m->dst);
        vm_def_done(&m->def);
        free(m->src_dir);
        free(m->dst_dir);
        free(m->dst_run_dir);
        free(m->src_run_dir);
        free(m->qemu_img);
        free(m->nodes);
        free(m);
}

int store_migrate_begin(const char *home, const char *name, const struct store_migrate_opts *o,
                        struct store_migration **ret, phy_error *err) {
        struct store_migration *m = calloc(1, sizeof *m);
        if (!m)
                return phy_error_set(err, ENOMEM, "out of memory");
        *m = (struct store_migration) { .home = home, .name = name, .opts = *o,
                                        .addr = o->address ? o->address : "127.0.0.1",
                                        .res = { .downtime_ms = -1, .total_ms = -1 } };
        if (m->opts.timeout_s == 0)
                m->opts.timeout_s = 600;
        m->o = o = &m->opts;
        int r;
        if ((r = vm_load_by_name(home, name, &m->def, err)) < 0)
                goto fail;
        {
                _cleanup_run_state_ struct run_state st = { 0 };
                if ((r = run_state_get(home, name, &st, err)) < 0)
                        goto fail;
                if (st.state != RUN_RUNNING && st.state != RUN_PAUSED) {
                        r = phy_error_usage(err, "VM '%s' is %s; only a running VM migrates (a stopped one "
                                          "moves with 'phyllo export' and 'phyllo import')", name,
                                          run_state_name(st.state));
                        goto fail;
                }
                m->src_was_paused = st.state == RUN_PAUSED;
        }
        char a[PATH_MAX];
        if (!realpath(o->dest_home, m->dest_real)) {
                r = phy_error_set(err, errno, "the destination home '%s' cannot be used: %s", o->dest_home,
                                  strerror(errno));
                goto fail;
        }
        if (realpath(home, a) && strcmp(a, m->dest_real) == 0) {
                r = phy_error_usage(err, "the destination home '%s' is the VM's own home; name another one",
                                  o->dest_home);
                goto fail;
        }
        for (size_t i = 0; i < m->def.n_disks; i++)
                if (m->def.disks[i].key_file || m->def.disks[i].key_prompt) {
                        r = phy_error_set(err, EOPNOTSUPP, "disk '%s' of VM '%s' is encrypted; migrating encrypted "
                                          "disks is not supported yet (stop the VM and use export/import)",
                                          m->def.disks[i].name, name);
                        goto fail;
                }
        if ((r = store_need_qemu_img(o->qemu_img, &m->qemu_img, err)) < 0)
                goto fail;
        {
                /* Only TLS: a wildcard is no address to connect to, and would listen everywhere. */
                struct in_addr ia;
                if (inet_pton(AF_INET, m->addr, &ia) != 1 || ia.s_addr == htonl(INADDR_ANY) ||
                    ia.s_addr == htonl(INADDR_BROADCAST) || IN_MULTICAST(ntohl(ia.s_addr))) {
                        r = phy_error_usage(err, "'%s' is not an IPv4 address of this host to migrate over; "
                                          "give one (the default is 127.0.0.1)", m->addr);
                        goto fail;
                }
                uint8_t key[32];
                static const char x[] = "0123456789abcdef";
                if (getrandom(key, sizeof key, 0) != (ssize_t) sizeof key) {
                        r = phy_error_set(err, errno, "cannot make a key for the migration: %s", strerror(errno));
                        goto fail;
                }
                for (size_t i = 0; i < sizeof key; i++) {
                        m->psk[2 * i] = x[key[i] >> 4];
                        m->psk[2 * i + 1] = x[key[i] & 15];
                }
                m->psk[2 * sizeof key] = '\0';
                explicit_bzero(key, sizeof key);
        }
        m->src_dir = vm_dir(home, name);
        m->dst_dir = vm_dir(o->dest_home, name);
        m->nodes = calloc(m->def.n_disks + 1, sizeof *m->nodes);
        if (!m->src_dir || !m->dst_dir || !m->nodes) {
                r = phy_error_set(err, ENOMEM, "out of memory");
                goto fail;
        }
        if ((r = run_dir_path(home, name, &m->src_run_dir, err)) < 0 ||
            (r = run_dir_path(o->dest_home, name, &m->dst_run_dir, err)) < 0)
                goto fail;
        if ((r = open_qmp(m->src_run_dir, &m->src, err)) < 0)
                goto fail;

        progress(m, "prepare", 0, 0);
        if ((r = prepare_destination(m, err)) < 0) {
                store_migrate_cancel(m);
                goto fail;
        }
        *ret = m;
        return 0;
fail:
        m->failed = true;
        store_migrate_end(m);
        return r;
}

int store_migrate_transfer(struct store_migration *m, struct store_migrate_result *ret, phy_error *err) {
        int nbd_port = 0, mig_port = 0, r;
        if ((r = open_qmp(m->dst_run_dir, &m->dst, err)) < 0 ||
            (r = destination_listen(m, &nbd_port, &mig_port, err)) < 0 ||
            (r = mirror_disks(m, nbd_port, err)) < 0 || (r = migrate_state(m, mig_port, &m->res, err)) < 0 ||
            (r = finish_mirrors(m, err)) < 0 || (r = destination_run(m, err)) < 0) {
                store_migrate_cancel(m);
                return r;
        }
        /* The destination runs the VM: the source QEMU (postmigrate) goes, as a stop. */
        phy_error e = { 0 };
        _cleanup_free_ char *marker = NULL, *note = NULL;
        if (asprintf(&marker, "%s/migrated", m->src_run_dir) >= 0 &&
            asprintf(&note, "migrated to %s (%s)\n", m->dest_real, m->addr) >= 0)
                (void) runfile_write(marker, note, 0644, &e);
        (void) cmd(m->src, "quit", NULL, NULL, &e);
        qmp_close(m->src);
        m->src = NULL;
        if (ret)
                *ret = m->res;
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The daemons beside QEMU: passt (user networking) and virtiofsd (virtiofs
 * shares).  Each gets its socket as an fd from us (passt --fd with a
 * connected socketpair end; virtiofsd --fd with a listening socket we already
 * connected QEMU's end to), so nothing waits for a path to appear.  Both end
 * on their own when QEMU closes its end; stop escalates only if they do not.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "net.h"
#include "sock.h"
#include "strv.h"
#include "vm/vm.h"
#include "value.h"


char *net_passt_path(void) {
        const char *e = getenv("PHYLLOME_PASST");
        if (e)
                /* Empty: pretend passt is not installed (tests of the slirp path). */
                return *e && access(e, X_OK) == 0 ? strdup(e) : NULL;
        /* A start asks twice (the NIC's backend, then the spawn), each a
         * walk of $PATH: where it was found is asked first. */
        static char *found;     /* set once (phyllod's threads may race here) */
        char *f = __atomic_load_n(&found, __ATOMIC_ACQUIRE);
        if (f && access(f, X_OK) == 0)
                return strdup(f);
        char *p = exec_find_in_path("passt"), *expect = NULL, *keep = p && !f ? strdup(p) : NULL;
        if (keep && !__atomic_compare_exchange_n(&found, &expect, keep, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                free(keep);
        return p;
}

char *net_virtiofsd_path(void) {
        const char *e = getenv("PHYLLOME_VIRTIOFSD");
        if (e)
                return *e && access(e, X_OK) == 0 ? strdup(e) : NULL;
        static const char *const cands[] = { "/usr/lib/qemu/virtiofsd", "/usr/libexec/virtiofsd" };
        for (size_t i = 0; i < ELEMENTSOF(cands); i++)
                if (access(cands[i], X_OK) == 0)
                        return strdup(cands[i]);
        return exec_find_in_path("virtiofsd");
}

bool net_nic_uses_passt(const struct vm_nic *n) {
        /* An unset mode is user mode (the profile fills it in), so a stopped
         * VM's definition and the running model give the same answer. */
        if ((n->mode != VM_NET_USER && n->mode != VM_NET_UNSET) || n->backend == VM_NETBE_SLIRP)
                return false;
        if (n->backend == VM_NETBE_PASST)
                return true;
        _cleanup_free_ char *p = net_passt_path();
        return p != NULL;
}

/* In the child of a daemon serving a read-only share: the directory is
 * bind-mounted read-only in a private mount namespace, so that the daemon
 * cannot write there whatever the guest asks.  Async-signal-safe. */
static int ro_share_setup(void *data) {
        const char *ro_dir = data;
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount(ro_dir, ro_dir, NULL, MS_BIND | MS_REC, NULL) < 0 ||
            mount(NULL, ro_dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
                return -1;
        return 0;
}

/* What a daemon's child does before its exec: ro_dir, a read-only share
 * (ro_share_setup); gate_rd >= 0, wait until every write end of the gate is
 * closed (its own copy first).  Async-signal-safe. */
struct child_setup {
        const char *ro_dir;
        int gate_rd, gate_wr;
};

static int child_setup(void *data) {
        const struct child_setup *c = data;
        if (c->gate_rd >= 0) {
                char b;
                close(c->gate_wr);
                while (read(c->gate_rd, &b, 1) < 0 && errno == EINTR)
                        ;       /* EOF: the monitor opened the gate (or ended) */
        }
        return c->ro_dir ? ro_share_setup((void *) c->ro_dir) : 0;
}

/* exec_spawn, stdout/stderr appended to log, keep_fd inherited; ro_dir:
 * ro_share_setup in the child; gate (a pipe, or NULL): the child waits at it. */
static int spawn(char *const argv[], const char *log_path, int keep_fd, const char *ro_dir, const int *gate,
                 pid_t *ret_pid, phy_error *err) {
        /* The run dir is the monitor's alone; no symlink is followed all the same. */
        _cleanup_close_ int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (logfd < 0)
                return phy_error_set(err, errno, "cannot open the log '%s': %s", log_path, strerror(errno));
        struct child_setup cs = { .ro_dir = ro_dir, .gate_rd = gate ? gate[0] : -1, .gate_wr = gate ? gate[1] : -1 };
        /* passt and virtiofsd are not trusted with our environment either. */
        struct exec_spawn s = { .argv = argv, .log_fd = logfd, .keep = &keep_fd, .n_keep = 1, .env_clean = true,
                                .setup = ro_dir || gate ? child_setup : NULL, .data = &cs,
                                .setup_error = "phyllo-monitor: cannot make the share read-only" };
        return exec_spawn(&s, ret_pid, err);
}

static int add_pid(struct net_companions *nc, pid_t pid) {
        pid_t *p = realloc(nc->pids, (nc->n_pids + 1) * sizeof *p);
        if (!p)
                return -ENOMEM;
        nc->pids = p;
        int *f = realloc(nc->pidfds, (nc->n_pids + 1) * sizeof *f);
        if (!f)
                return -ENOMEM;
        nc->pidfds = f;
        nc->pids[nc->n_pids] = pid;
        nc->pidfds[nc->n_pids] = exec_pidfd_open(pid);
        nc->n_pids++;
        return 0;
}

struct net_deferred {
        strv argv;
        char *log;
        int fd;         /* the daemon's end of its socket */
};

static void deferred_free(struct net_companions *nc) {
        for (size_t i = 0; i < nc->n_deferred; i++) {
                strv_done(&nc->deferred[i].argv);
                free(nc->deferred[i].log);
                if (nc->deferred[i].fd >= 0)
                        close(nc->deferred[i].fd);
        }
        free(nc->deferred);
        nc->deferred = NULL;
        nc->n_deferred = 0;
}

/* Makes passt ready (net_companions_start_deferred runs it). */
static int start_passt(struct net_companions *nc, const char *passt, const struct vm_nic *n, size_t i,
                       const char *run_dir, uid_t uid, gid_t gid, phy_error *err) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return phy_error_set(err, errno, "cannot create a socket pair for passt: %s", strerror(errno));
        _cleanup_close_ int theirs = sv[1];
        nc->nic_fds[i] = sv[0];
        _cleanup_strv_ strv argv = { 0 };
        _cleanup_free_ char *log = NULL;
        if (asprintf(&log, "%s/passt-%s.log", run_dir, n->name) < 0 ||
            strv_push_many(&argv, passt, "--foreground", "--quiet", NULL) < 0 ||
            strv_pushf(&argv, "--fd=%d", theirs) < 0 ||
            /* Started as root, passt drops to the VM's uid (its default would be nobody). */
            (uid != (uid_t) -1 && strv_pushf(&argv, "--runas=%u:%u", (unsigned) uid, (unsigned) gid) < 0))
                return phy_error_set(err, ENOMEM, "out of memory");
        for (size_t f = 0; f < n->forwards.n; f++) {
                struct value_forward fw;
                if (value_forward_parse(n->forwards.v[f], &fw) < 0)
                        return phy_error_usage(err, "network '%s': invalid forward '%s'", n->name,
                                             n->forwards.v[f]);
                /* passt's spec: ADDR/HOSTPORT:GUESTPORT; loopback unless asked. */
                if (strv_push(&argv, strcmp(fw.proto, "tcp") == 0 ? "-t" : "-u") < 0 ||
                    strv_pushf(&argv, "%s/%u:%u", value_forward_addr(&fw), fw.host_port, fw.guest_port) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
        }
        struct net_deferred *d = realloc(nc->deferred, (nc->n_deferred + 1) * sizeof *d);
        if (!d)
                return phy_error_set(err, ENOMEM, "out of memory");
        nc->deferred = d;
        nc->deferred[nc->n_deferred++] = (struct net_deferred) { .argv = argv, .log = TAKE_PTR(log),
                                                                 .fd = TAKE_FD(theirs) };
        argv = (strv) { 0 };
        return 0;
}

int net_companions_start_deferred(struct net_companions *nc, phy_error *err) {
        if (nc->n_deferred == 0)
                return 0;
        int gate[2];
        if (pipe2(gate, O_CLOEXEC) < 0) {
                deferred_free(nc);
                return phy_error_set(err, errno, "cannot create a pipe: %s", strerror(errno));
        }
        nc->gated = true;
        nc->gate_fd = gate[1];
        nc->gated_first = nc->n_pids;
        int r = 0;
        for (size_t i = 0; i < nc->n_deferred && r >= 0; i++) {
                pid_t pid;
                r = spawn(nc->deferred[i].argv.v, nc->deferred[i].log, nc->deferred[i].fd, NULL, gate, &pid, err);
                if (r >= 0 && add_pid(nc, pid) < 0)
                        r = phy_error_set(err, ENOMEM, "out of memory");
        }
        close(gate[0]);
        deferred_free(nc);
        return r;
}

void net_companions_release(struct net_companions *nc) {
        if (nc->gated)
                close(nc->gate_fd);
        nc->gated = false;
}

/* "source=DIR" for virtiofsd's -o, which splits on ',' and takes '\\' as an
 * escape (fuse_opt): both escaped, so a directory named "x,source=/" is that
 * directory, not a second source (issue 12). */
static char *fuse_source_opt(const char *dir) {
        size_t n = strlen(dir), extra = 0;
        for (size_t i = 0; i < n; i++)
                extra += dir[i] == ',' || dir[i] == '\\';
        char *o = malloc(sizeof "source=" + n + extra), *p = o;
        if (!o)
                return NULL;
        p = stpcpy(p, "source=");
        for (size_t i = 0; i < n; i++) {
                if (dir[i] == ',' || dir[i] == '\\')
                        *p++ = '\\';
                *p++ = dir[i];
        }
        *p = '\0';
        return o;
}

static int start_virtiofsd(struct net_companions *nc, const char *virtiofsd, const struct vm_share *s, size_t i,
                           const char *vm_dir, const char *run_dir, phy_error *err) {
        _cleanup_free_ char *dir = vm_path_resolve(vm_dir, s->path);
        _cleanup_free_ char *sock = NULL, *log = NULL, *src = dir ? fuse_source_opt(dir) : NULL;
        if (!dir || !src || asprintf(&sock, "%s/vfs-%zu.sock", run_dir, i) < 0 ||
            asprintf(&log, "%s/virtiofsd-%s.log", run_dir, s->tag) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(sock) >= sizeof sa.sun_path)
                return phy_error_set(err, ENAMETOOLONG, "the virtiofs socket path '%s' is too long", sock);
        memcpy(sa.sun_path, sock, strlen(sock) + 1);
        _cleanup_close_ int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || cfd < 0) {
                if (cfd >= 0)
                        close(cfd);
                return phy_error_set(err, errno, "cannot create a socket for virtiofsd: %s", strerror(errno));
        }
        nc->share_fds[i] = cfd;
        (void) unlink(sock);
        /* Bound (the owner's only, whatever the umask) and connected here,
         * then unlinked: QEMU gets a connected fd and nobody else can reach
         * the daemon. */
        int rb = sock_bind_unix(lfd, &sa, 0600);
        if (rb < 0 || listen(lfd, 1) < 0 || connect(cfd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int e = rb < 0 ? -rb : errno;
                (void) unlink(sock);
                return phy_error_set(err, e, "cannot set up the virtiofs socket '%s': %s", sock, strerror(e));
        }
        (void) unlink(sock);
        _cleanup_strv_ strv argv = { 0 };
        if (strv_push_many(&argv, virtiofsd, "-o", src, "-o", "cache=auto", "-o", "log_level=warn", NULL) < 0 ||
            strv_pushf(&argv, "--fd=%d", lfd) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        pid_t pid;
        int r = spawn(argv.v, log, lfd, s->readonly ? dir : NULL, NULL, &pid, err);
        if (r < 0)
                return r;
        return add_pid(nc, pid) < 0 ? phy_error_set(err, ENOMEM, "out of memory") : 0;
}

int net_companions_start(struct net_companions *nc, const struct vm_def *model, const char *vm_dir,
                         const char *run_dir, uid_t uid, gid_t gid, phy_error *err) {
        *nc = (struct net_companions) { 0 };
        nc->nic_fds = malloc((model->n_nics + 1) * sizeof(int));
        nc->share_fds = malloc((model->n_shares + 1) * sizeof(int));
        if (!nc->nic_fds || !nc->share_fds) {
                net_companions_stop(nc);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        nc->ports = calloc(model->n_nics + 1, sizeof *nc->ports);
        if (!nc->ports) {
                net_companions_stop(nc);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        nc->n_nics = model->n_nics;
        nc->n_shares = model->n_shares;
        for (size_t i = 0; i < nc->n_nics; i++) {
                nc->nic_fds[i] = -1;
                nc->ports[i] = (struct net_port) { .qemu_fd = -1, .own_fd = -1, .sock_fd = -1 };
        }
        for (size_t i = 0; i < nc->n_shares; i++)
                nc->share_fds[i] = -1;

        int r = 0;
        /* Every forward's port first: a taken port is named before anything starts. */
        for (size_t i = 0; i < model->n_nics && r >= 0; i++) {
                const struct vm_nic *n = &model->nics[i];
                if (n->mode != VM_NET_USER)
                        continue;
                for (size_t f = 0; f < n->forwards.n && r >= 0; f++)
                        if ((r = net_forward_check_free(n->forwards.v[f], err)) < 0)
                                phy_error_prefix(err, "VM '%s', network '%s'", model->name, n->name);
        }
        _cleanup_free_ char *passt = net_passt_path();
        for (size_t i = 0; i < model->n_nics && r >= 0; i++) {
                const struct vm_nic *n = &model->nics[i];
                if (!net_nic_uses_passt(n))
                        continue;
                if (!passt)
                        r = phy_error_set(err, ENOENT, "VM '%s', network '%s' asks for backend = passt, but passt is "
                                          "not installed; install it (apt-get install passt) or set backend = slirp",
                                          model->name, n->name);
                else
                        r = start_passt(nc, passt, n, i, run_dir, uid, gid, err);
        }
        for (size_t i = 0; i < model->n_nics && r >= 0; i++) {
                const struct vm_nic *n = &model->nics[i];
                if (n->mode == VM_NET_ISOLATED) {
                        if ((r = net_port_open(&nc->ports[i], run_dir, n->network, model->name, n->name, err)) >= 0)
                                nc->nic_fds[i] = nc->ports[i].qemu_fd;
                } else if (n->mode == VM_NET_BRIDGE) {
                        char tap[16];
                        if ((r = net_tap_open(n->bridge, &nc->nic_fds[i], tap, err)) < 0)
                                phy_error_prefix(err, "VM '%s', network '%s'", model->name, n->name);
                }
        }
        _cleanup_free_ char *vfsd = NULL;
        for (size_t i = 0; i < model->n_shares && r >= 0; i++) {
                const struct vm_share *s = &model->shares[i];
                if (s->type != VM_SHARE_VIRTIOFS)
                        continue;
                if (!vfsd && !(vfsd = net_virtiofsd_path())) {
                        r = phy_error_set(err, ENOENT, "VM '%s', share '%s' is type = virtiofs, but virtiofsd is not "
                                          "installed; install qemu-system-common or set type = 9p",
                                          model->name, s->tag);
                        break;
                }
                if (geteuid() != 0) {
                        /* virtiofsd 7.2 sandboxes itself with namespaces that need root. */
                        r = phy_error_set(err, EPERM, "VM '%s', share '%s': virtiofs needs Phyllome to run as root "
                                          "here; set type = 9p in [share %s]", model->name, s->tag, s->tag);
                        break;
                }
                r = start_virtiofsd(nc, vfsd, s, i, vm_dir, run_dir, err);
        }
        if (r < 0) {
                net_companions_stop(nc);
                return r;
        }
        return 0;
}

void net_companions_close_qemu_fds(struct net_companions *nc) {
        for (size_t i = 0; nc->nic_fds && i < nc->n_nics; i++)
                if (nc->nic_fds[i] >= 0) {
                        if (nc->ports && nc->ports[i].qemu_fd == nc->nic_fds[i])
                                nc->ports[i].qemu_fd = -1;
                        close(nc->nic_fds[i]);
                        nc->nic_fds[i] = -1;
                }
        for (size_t i = 0; nc->share_fds && i < nc->n_shares; i++)
                if (nc->share_fds[i] >= 0) {
                        close(nc->share_fds[i]);
                        nc->share_fds[i] = -1;
                }
}

void net_companions_stop(struct net_companions *nc) {
        net_companions_close_qemu_fds(nc);
        deferred_free(nc);
        /* Still at the gate: never ran, nothing to end gracefully. */
        for (size_t i = nc->gated_first; nc->gated && i < nc->n_pids; i++)
                (void) kill(nc->pids[i], SIGKILL);
        net_companions_release(nc);
        for (size_t i = 0; i < nc->n_pids; i++) {
                exec_end(nc->pids[i], nc->pidfds[i], 3000);
                if (nc->pidfds[i] >= 0)
                        close(nc->pidfds[i]);
        }
        for (size_t i = 0; nc->ports && i < nc->n_nics; i++)
                net_port_close(&nc->ports[i]);
        free(nc->ports);
        free(nc->pids);
        free(nc->pidfds);
        free(nc->nic_fds);
        free(nc->share_fds);
        *nc = (struct net_companions) { 0 };
}

size_t net_companions_fds(const struct net_companions *nc, int **ret) {
        *ret = calloc(2 * nc->n_nics + 1, sizeof(int));
        size_t n = 0;
        for (size_t i = 0; *ret && nc->ports && i < nc->n_nics; i++)
                if (nc->ports[i].sock_fd >= 0) {
                        (*ret)[n++] = nc->ports[i].own_fd;
                        (*ret)[n++] = nc->ports[i].sock_fd;
                }
        return n;
}

bool net_companions_event(struct net_companions *nc, int fd) {
        for (size_t i = 0; nc->ports && i < nc->n_nics; i++)
                if (net_port_event(&nc->ports[i], fd))
                        return true;
        return false;
}

/* SPDX-License-Identifier: MIT */
/*
 * The monitor's handover (issue 20): the forked monitor carries every
 * library phyllo or phyllod links (libxml2, ICU, libstdc++, libarchive...),
 * whose relocated pages it can never shed.  Once the start's steps ran it
 * execs phyllo-monitor (src/libexec/monitor.c), which links libc (json-c
 * linked in) only, on the same pid: QEMU, swtpm and the companions stay its children.
 * The forked one reports the start ('R') first, so that the exec is not on
 * the start's path; while the exec runs /proc/PID/cmdline is empty, which
 * run_pid_is_monitor tells from an exit by the process's state and flags.
 *
 * What crosses the exec: the fds the loop holds (their numbers kept, the
 * close-on-exec flag cleared for the exec only) and a record of the rest as
 * one JSON object in a sealed memfd, whose fd is the one argument.  The run
 * state itself is state.json, written just before.  The executable's name
 * is the monitor's comm, so that from the exec on every reader of
 * /proc/PID/comm (run_pid_is_monitor, reconcile) knows it.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "exec.h"
#include "json-cleanup.h"
#include "monitor.h"

#define HANDOVER_MAX (1024 * 1024)
#define HANDOVER_VERSION 2      /* 2: the serial console on pipes, serial_in */

extern char **environ;

char *monitor_lean_path(void) {
        return exec_libexec_path("PHYLLOME_MONITOR", RUN_MONITOR_COMM);
}

/* ---- the fat side ---- */

struct fd_list {
        int v[64 + 2 * MAX_CONSOLE_CLIENTS];
        size_t n;
        bool full;
};

static json_object *fd_add(struct fd_list *l, int fd) {
        if (fd >= 0) {
                if (l->n < ELEMENTSOF(l->v))
                        l->v[l->n++] = fd;
                else
                        l->full = true;
        }
        return json_object_new_int(fd);
}

static json_object *str_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static json_object *record_make(struct monitor *m, struct fd_list *fds) {
        struct start_ctx *c = m->c;
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object_object_add(o, "version", json_object_new_int(HANDOVER_VERSION));
        json_object_object_add(o, "name", str_or_null(c->name));
        json_object_object_add(o, "home", str_or_null(c->home));
        json_object_object_add(o, "root", str_or_null(c->root));
        json_object_object_add(o, "run_dir", str_or_null(c->run_dir));
        json_object_object_add(o, "vm_dir", str_or_null(c->vm_dir));
        json_object_object_add(o, "lock_fd", fd_add(fds, c->lock_fd));
        json_object_object_add(o, "report_fd", fd_add(fds, c->report_fd));
        json_object_object_add(o, "serial_fd", fd_add(fds, m->serial_fd));
        json_object_object_add(o, "serial_in", fd_add(fds, m->serial_in));
        json_object_object_add(o, "console_listen", fd_add(fds, m->console_listen));
        json_object_object_add(o, "qemu_pidfd", fd_add(fds, m->qemu_pidfd));
        json_object_object_add(o, "swtpm_pidfd", fd_add(fds, m->swtpm_pidfd));
        json_object_object_add(o, "clog_fd", fd_add(fds, m->clog_fd));
        json_object_object_add(o, "clog_max", json_object_new_int64((int64_t) m->clog_max));
        json_object *clients = json_object_new_array();
        json_object_object_add(o, "clients", clients);
        for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++)
                if (m->clients[i] >= 0)
                        json_object_array_add(clients, fd_add(fds, m->clients[i]));
        if (m->qmp) {
                size_t len;
                const char *pending = qmp_pending(m->qmp, &len);
                json_object_object_add(o, "qmp_fd", fd_add(fds, qmp_fd(m->qmp)));
                json_object_object_add(o, "qmp_pending", json_object_new_string_len(len ? pending : "", (int) len));
        }
        json_object_object_add(o, "qemu_pid", json_object_new_int(m->st.qemu_pid));
        json_object_object_add(o, "swtpm_pid", json_object_new_int(m->st.swtpm_pid));
        json_object_object_add(o, "stop_requested", json_object_new_boolean(m->stop_requested));
        json_object_object_add(o, "qemu_exited", json_object_new_boolean(m->qemu_exited));
        json_object_object_add(o, "qemu_status", json_object_new_int(m->qemu_status));
        json_object_object_add(o, "first_output", json_object_new_boolean(m->first_output));
        json_object *phases = json_object_new_array();
        json_object_object_add(o, "phases", phases);
        for (size_t i = 0; i < c->phases.n; i++) {
                json_object *p = json_object_new_array();
                json_object_array_add(p, json_object_new_string(c->phases.v[i].name));
                json_object_array_add(p, json_object_new_int64(c->phases.v[i].ns));
                json_object_array_add(phases, p);
        }
        json_object *pids = json_object_new_array();
        json_object_object_add(o, "net_pids", pids);
        for (size_t i = 0; i < m->net.n_pids; i++) {
                json_object *p = json_object_new_array();
                json_object_array_add(p, json_object_new_int(m->net.pids[i]));
                json_object_array_add(p, fd_add(fds, m->net.pidfds[i]));
                json_object_array_add(pids, p);
        }
        /* passt, held at its gate until the start's report was read (net.h) */
        json_object_object_add(o, "net_gate_fd", fd_add(fds, m->net.gated ? m->net.gate_fd : -1));
        json_object *ports = json_object_new_array();
        json_object_object_add(o, "net_ports", ports);
        for (size_t i = 0; m->net.ports && i < m->net.n_nics; i++) {
                const struct net_port *p = &m->net.ports[i];
                if (p->sock_fd < 0 || !p->dir || !p->path)
                        continue;
                json_object *j = json_object_new_object();
                json_object_object_add(j, "own_fd", fd_add(fds, p->own_fd));
                json_object_object_add(j, "sock_fd", fd_add(fds, p->sock_fd));
                json_object_object_add(j, "dir", json_object_new_string(p->dir));
                json_object_object_add(j, "path", json_object_new_string(p->path));
                json_object_array_add(ports, j);
        }
        json_object *vfio = json_object_new_array();
        json_object_object_add(o, "vfio_owners", vfio);
        for (size_t i = 0; i < m->vfio.n && i < ELEMENTSOF(m->vfio.v); i++) {
                json_object *j = json_object_new_object();
                json_object_object_add(j, "path", json_object_new_string(m->vfio.v[i].path));
                json_object_object_add(j, "uid", json_object_new_int64(m->vfio.v[i].uid));
                json_object_object_add(j, "gid", json_object_new_int64(m->vfio.v[i].gid));
                json_object_object_add(j, "mode", json_object_new_int64(m->vfio.v[i].mode));
                json_object_array_add(vfio, j);
        }
        return TAKE_PTR(o);
}

static int record_memfd(json_object *o) {
        size_t len;
        const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
        if (!text || len > HANDOVER_MAX)
                return -1;
        _cleanup_close_ int fd = memfd_create("phyllo-monitor-handover", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0 || write(fd, text, len) != (ssize_t) len ||
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0 ||
            lseek(fd, 0, SEEK_SET) < 0)
                return -1;
        return TAKE_FD(fd);
}

static void cloexec_set(const struct fd_list *fds, bool on) {
        for (size_t i = 0; i < fds->n; i++)
                (void) fcntl(fds->v[i], F_SETFD, on ? FD_CLOEXEC : 0);
}

void monitor_handover_exec(struct monitor *m) {
        _cleanup_free_ char *path = monitor_lean_path();
        if (!path || access(path, X_OK) < 0)
                return;
        /* What QEMU sent so far is recorded here; state.json is then the
         * state the lean monitor starts from. */
        if (m->qmp)
                record_qmp_events(m);
        record_state_save(m);
        struct fd_list fds = { .n = 0 };
        _cleanup_json_ json_object *o = record_make(m, &fds);
        if (!o || fds.full)
                return;
        _cleanup_close_ int rfd = record_memfd(o);
        if (rfd < 0)
                return;
        fds.v[fds.n++] = rfd;
        char num[16];
        snprintf(num, sizeof num, "%d", rfd);
        char *const argv[] = { (char *) RUN_MONITOR_COMM, (char *) "--handover-fd", num, NULL };
        cloexec_set(&fds, false);
        (void) execve(path, argv, environ);
        /* Still the fat monitor: everything as it was. */
        cloexec_set(&fds, true);
}

/* ---- the lean side ---- */

static const char *get_str(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ?
                       json_object_get_string(v) : NULL;
}

static bool get_int64(json_object *o, const char *key, int64_t *ret) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return false;
        *ret = json_object_get_int64(v);
        return true;
}

static bool get_bool(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

/* An fd of the record: -1 stays -1; any other must be one we hold (above
 * stdio), and is close-on-exec again from here. */
static int take_fd_value(json_object *v, int *ret, phy_error *err) {
        *ret = -1;
        if (!v || !json_object_is_type(v, json_type_int))
                return phy_error_set(err, EINVAL, "the monitor's handover record has a malformed fd");
        int64_t fd = json_object_get_int64(v);
        if (fd == -1)
                return 0;
        if (fd < 3)
                return phy_error_set(err, EBADF, "the monitor's handover record names fd %lld, one of stdio",
                                     (long long) fd);
        if (fd > INT32_MAX || fcntl((int) fd, F_SETFD, FD_CLOEXEC) < 0)
                return phy_error_set(err, EBADF, "the monitor's handover record names fd %lld, which is not open",
                                     (long long) fd);
        *ret = (int) fd;
        return 0;
}

static int take_fd(json_object *o, const char *key, int *ret, phy_error *err) {
        json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v))
                return phy_error_set(err, EINVAL, "the monitor's handover record has no '%s'", key);
        int r = take_fd_value(v, ret, err);
        return r < 0 ? phy_error_prefix(err, "'%s'", key) : r;
}

static json_object *get_array(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_array) ? v : NULL;
}

static int record_read(int fd, json_object **ret, phy_error *err) {
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > HANDOVER_MAX)
                return phy_error_set(err, EINVAL, "fd %d is not a monitor handover record of at most %d bytes", fd,
                                     HANDOVER_MAX);
        size_t size = (size_t) st.st_size;
        _cleanup_free_ char *buf = malloc(size);
        if (!buf)
                return phy_error_set(err, ENOMEM, "out of memory");
        size_t off = 0;
        while (off < size) {
                ssize_t n = pread(fd, buf + off, size - off, (off_t) off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return phy_error_set(err, EIO, "cannot read the monitor's handover record: %s",
                                             n < 0 ? strerror(errno) : "short read");
                off += (size_t) n;
        }
        json_tokener *t = json_tokener_new();
        if (!t)
                return phy_error_set(err, ENOMEM, "out of memory");
        json_object *o = json_tokener_parse_ex(t, buf, (int) size);
        bool whole = json_tokener_get_error(t) == json_tokener_success && (size_t) json_tokener_get_parse_end(t) == size;
        json_tokener_free(t);
        int64_t version = 0;
        if (!o || !whole || !json_object_is_type(o, json_type_object) || !get_int64(o, "version", &version) ||
            version != HANDOVER_VERSION) {
                json_object_put(o);
                return phy_error_set(err, EINVAL, "the monitor's handover record is not a version %d JSON object",
                                     HANDOVER_VERSION);
        }
        *ret = o;
        return 0;
}

static int load_net(json_object *o, struct net_companions *nc, phy_error *err) {
        json_object *pids = get_array(o, "net_pids"), *ports = get_array(o, "net_ports");
        if (!pids || !ports)
                return phy_error_set(err, EINVAL, "the monitor's handover record has no 'net_pids' or 'net_ports'");
        size_t np = json_object_array_length(pids), nports = json_object_array_length(ports);
        nc->pids = calloc(np + 1, sizeof *nc->pids);
        nc->pidfds = calloc(np + 1, sizeof *nc->pidfds);
        nc->ports = calloc(nports + 1, sizeof *nc->ports);
        if (!nc->pids || !nc->pidfds || !nc->ports)
                return phy_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < np; i++) {
                json_object *p = json_object_array_get_idx(pids, i);
                json_object *pid = json_object_array_get_idx(p, 0);
                int r;
                if (!json_object_is_type(p, json_type_array) || json_object_array_length(p) != 2 ||
                    !json_object_is_type(pid, json_type_int) || json_object_get_int64(pid) <= 0 ||
                    json_object_get_int64(pid) > INT32_MAX)
                        return phy_error_set(err, EINVAL, "the monitor's handover record has a malformed companion");
                if ((r = take_fd_value(json_object_array_get_idx(p, 1), &nc->pidfds[i], err)) < 0)
                        return r;
                nc->pids[i] = (pid_t) json_object_get_int64(pid);
                nc->n_pids = i + 1;
        }
        for (size_t i = 0; i < nports; i++)
                nc->ports[i] = (struct net_port) { .qemu_fd = -1, .own_fd = -1, .sock_fd = -1 };
        for (size_t i = 0; i < nports; i++) {
                json_object *p = json_object_array_get_idx(ports, i);
                int own = -1, sock = -1, r;
                const char *dir = get_str(p, "dir"), *path = get_str(p, "path");
                if (!dir || !path)
                        return phy_error_set(err, EINVAL, "the monitor's handover record has a malformed network port");
                if ((r = take_fd(p, "own_fd", &own, err)) < 0 || (r = take_fd(p, "sock_fd", &sock, err)) < 0)
                        return r;
                if (net_port_adopt(&nc->ports[i], own, sock, dir, path) < 0) {
                        close(own);
                        close(sock);
                        return phy_error_set(err, ENOMEM, "out of memory");
                }
                nc->n_nics = i + 1;
        }
        int gate = -1, rg;
        if (json_object_object_get_ex(o, "net_gate_fd", NULL) && (rg = take_fd(o, "net_gate_fd", &gate, err)) < 0)
                return rg;
        nc->gated = gate >= 0;
        nc->gate_fd = gate;
        return 0;
}

static int load_vfio(json_object *o, struct dev_vfio_owners *v, phy_error *err) {
        json_object *a = get_array(o, "vfio_owners");
        size_t n = a ? json_object_array_length(a) : 0;
        if (!a || n > ELEMENTSOF(v->v))
                return phy_error_set(err, EINVAL, "the monitor's handover record has a malformed 'vfio_owners'");
        for (size_t i = 0; i < n; i++) {
                json_object *j = json_object_array_get_idx(a, i);
                const char *path = get_str(j, "path");
                int64_t uid, gid, mode;
                if (!path || strlen(path) >= sizeof v->v[i].path || !get_int64(j, "uid", &uid) ||
                    !get_int64(j, "gid", &gid) || !get_int64(j, "mode", &mode))
                        return phy_error_set(err, EINVAL, "the monitor's handover record has a malformed 'vfio_owners'");
                snprintf(v->v[i].path, sizeof v->v[i].path, "%s", path);
                v->v[i].uid = (uid_t) uid, v->v[i].gid = (gid_t) gid, v->v[i].mode = (mode_t) mode;
                v->n = i + 1;
        }
        return 0;
}

static int load_phases(json_object *o, struct run_phases *ph, phy_error *err) {
        json_object *a = get_array(o, "phases");
        size_t n = a ? json_object_array_length(a) : 0;
        if (!a || n > RUN_PHASES_MAX)
                return phy_error_set(err, EINVAL, "the monitor's handover record has a malformed 'phases'");
        for (size_t i = 0; i < n; i++) {
                json_object *p = json_object_array_get_idx(a, i);
                json_object *name = json_object_array_get_idx(p, 0), *ns = json_object_array_get_idx(p, 1);
                if (!json_object_is_type(name, json_type_string) || !json_object_is_type(ns, json_type_int))
                        return phy_error_set(err, EINVAL, "the monitor's handover record has a malformed 'phases'");
                ph->v[i] = (struct run_phase) { .name = json_object_get_string(name), .ns = json_object_get_int64(ns) };
                ph->n = i + 1;
        }
        return 0;
}

static int load_paths(struct monitor *m) {
        const char *run_dir = m->c->run_dir;
        m->state_path = run_file(run_dir, "state.json");
        m->qemu_log = run_file(run_dir, "qemu.log");
        m->console_log = run_file(run_dir, "console.log");
        m->console_log1 = run_file(run_dir, "console.log.1");
        m->stop_marker = run_file(run_dir, "stop-requested");
        return m->state_path && m->qemu_log && m->console_log && m->console_log1 && m->stop_marker ? 0 : -ENOMEM;
}

int monitor_handover_load(int fd, struct monitor *m, struct start_ctx *c, json_object **ret_keep, phy_error *err) {
        json_object *o = NULL;
        int r = record_read(fd, &o, err);
        if (r < 0)
                return r;
        *ret_keep = o;          /* the strings below are its */
        c->name = get_str(o, "name");
        c->home = get_str(o, "home");
        c->root = get_str(o, "root");
        c->run_dir = (char *) get_str(o, "run_dir");
        c->vm_dir = (char *) get_str(o, "vm_dir");
        c->report_fd = -1;
        c->lock_fd = -1;
        if (!c->name || !c->home || !c->run_dir)
                return phy_error_set(err, EINVAL, "the monitor's handover record has no VM name, home or run dir");
        if (load_paths(m) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* Every undo from here: what was taken is given back at the end. */
        for (const char *const *s = monitor_boot_steps(); *s; s++)
                m->steps_begun++;
        /* QEMU and swtpm first: what the undos end, whatever fails next. */
        int64_t qemu_pid, swtpm_pid, v;
        if (!get_int64(o, "qemu_pid", &qemu_pid) || !get_int64(o, "swtpm_pid", &swtpm_pid) || qemu_pid < 0 ||
            qemu_pid > INT32_MAX || swtpm_pid < 0 || swtpm_pid > INT32_MAX)
                return phy_error_set(err, EINVAL, "the monitor's handover record has no 'qemu_pid' or 'swtpm_pid'");
        m->st.qemu_pid = (pid_t) qemu_pid;
        m->st.swtpm_pid = (pid_t) swtpm_pid;
        if (!get_int64(o, "clog_max", &v) || v < 4096)
                return phy_error_set(err, EINVAL, "the monitor's handover record has no 'clog_max'");
        m->clog_max = (size_t) v;
        if (!get_int64(o, "qemu_status", &v) || v < INT32_MIN || v > INT32_MAX)
                return phy_error_set(err, EINVAL, "the monitor's handover record has no 'qemu_status'");
        m->qemu_status = (int) v;
        m->stop_requested = get_bool(o, "stop_requested");
        m->qemu_exited = get_bool(o, "qemu_exited");
        m->first_output = get_bool(o, "first_output");
        if ((r = take_fd(o, "report_fd", &c->report_fd, err)) < 0 || (r = take_fd(o, "lock_fd", &c->lock_fd, err)) < 0 ||
            (r = take_fd(o, "serial_fd", &m->serial_fd, err)) < 0 || (r = take_fd(o, "serial_in", &m->serial_in, err)) < 0 ||
            (r = take_fd(o, "console_listen", &m->console_listen, err)) < 0 ||
            (r = take_fd(o, "qemu_pidfd", &m->qemu_pidfd, err)) < 0 ||
            (r = take_fd(o, "swtpm_pidfd", &m->swtpm_pidfd, err)) < 0 || (r = take_fd(o, "clog_fd", &m->clog_fd, err)) < 0)
                return r;
        struct stat st;
        if (m->clog_fd >= 0 && fstat(m->clog_fd, &st) == 0)
                m->clog_size = (size_t) st.st_size;
        json_object *clients = get_array(o, "clients");
        if (!clients || json_object_array_length(clients) > MAX_CONSOLE_CLIENTS)
                return phy_error_set(err, EINVAL, "the monitor's handover record has a malformed 'clients'");
        for (size_t i = 0; i < json_object_array_length(clients); i++)
                if ((r = take_fd_value(json_object_array_get_idx(clients, i), &m->clients[i], err)) < 0)
                        return r;
        if (json_object_object_get_ex(o, "qmp_fd", NULL)) {
                int qfd;
                json_object *pending;
                if (!json_object_object_get_ex(o, "qmp_pending", &pending) ||
                    !json_object_is_type(pending, json_type_string))
                        return phy_error_set(err, EINVAL, "the monitor's handover record has no 'qmp_pending'");
                if ((r = take_fd(o, "qmp_fd", &qfd, err)) < 0 ||
                    (qfd >= 0 && (r = qmp_adopt_fd(qfd, json_object_get_string(pending),
                                                   (size_t) json_object_get_string_len(pending), &m->qmp, err)) < 0))
                        return r;
        }
        struct run_state rec;
        if ((r = run_state_read_file(m->state_path, &rec, err)) < 0)
                return r;
        if (rec.monitor_pid != getpid() || rec.qemu_pid != m->st.qemu_pid || rec.swtpm_pid != m->st.swtpm_pid) {
                run_state_done(&rec);
                return phy_error_set(err, ESRCH, "'%s' does not name this monitor (%d), its QEMU (%d) and swtpm (%d)",
                                     m->state_path, (int) getpid(), (int) m->st.qemu_pid, (int) m->st.swtpm_pid);
        }
        m->st = rec;
        if ((r = load_net(o, &m->net, err)) < 0 || (r = load_vfio(o, &m->vfio, err)) < 0 ||
            (r = load_phases(o, &c->phases, err)) < 0)
                return r;
#ifdef PHYLLOME_TEST_HOOKS
        /* Test builds: the take-over fails with everything taken, so that
         * its end is proven on real processes (tests/integration/lifecycle.sh). */
        const char *fault = getenv("PHYLLOME_FAULT_HANDOVER");
        if (fault && *fault)
                return phy_error_set(err, EIO, "a fault was injected into the handover (PHYLLOME_FAULT_HANDOVER)");
#endif
        /* The loop's own: signals blocked across the exec (and any pending
         * one) come through a new signalfd; a new epoll set. */
        sigset_t mask;
        if (sigprocmask(SIG_SETMASK, NULL, &mask) < 0 || (m->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
            (m->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
                return phy_error_set(err, errno, "cannot set up the monitor's event loop: %s", strerror(errno));
        return monitor_watch(m, err);
}

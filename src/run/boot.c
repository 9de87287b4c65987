/* SPDX-License-Identifier: MIT */
/*
 * The monitor's startup, as an ordered table of steps, each with its undo.
 * The monitor creates every socket and passes the fds to swtpm, passt,
 * virtiofsd and QEMU, then reports "running" (or "paused") to the starting
 * command.  When step k fails, the undos of steps k..0 run, last first (an
 * undo takes a half-done step too), state.json says failed with the error,
 * the lock is let go, and only then is the error reported: when the start
 * returns, nothing of the VM runs and its devices are back.  The same undos,
 * in the same order, end a VM whose QEMU has exited (monitor_cleanup).
 *
 * Test builds (-Dtest_hooks=true) fail a start right after the step that
 * $PHYLLOME_FAULT_STEP names, so that every undo is exercised on real
 * processes (tests/integration/start-steps.sh).
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "dev/helper.h"
#include "dev/single-gpu.h"
#include "fileio.h"
#include "monitor.h"
#include "paths.h"
#include "sock.h"
#include "qemu/argv.h"

static int listen_unix(const char *path, phy_error *err) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path)
                return phy_error_set(err, ENAMETOOLONG, "the socket path '%s' is too long", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return phy_error_set(err, errno, "cannot create a socket: %s", strerror(errno));
        (void) unlink(path);
        /* The owner's only, whatever the caller's umask.  With a umask of 0
         * every socket here was any uid's, and the VM's own uid may enter
         * the run dir (its group's x bit): a compromised QEMU could reach
         * the monitor's console relay and every QMP socket of its VM.  (The
         * monitor is single-threaded: no other thread's umask meanwhile.) */
        int rb = sock_bind_unix(fd, &sa, 0600);
        if (rb < 0)
                return phy_error_set(err, -rb, "cannot listen on '%s': %s", path, strerror(-rb));
        if (listen(fd, 16) < 0)
                return phy_error_set(err, errno, "cannot listen on '%s': %s", path, strerror(errno));
        return TAKE_FD(fd);
}

static void close_fd(int *fd) {
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

/* QEMU is gone: passed-through PCI devices go back to their host drivers
 * (a no-op without <run_dir>/devices.state).  A failure stays recorded for
 * the next try and is added to the VM's error. */
static void give_back_devices(struct monitor *m) {
        phy_error e = { 0 };
        /* The GPU is back on its driver before the host display takes it again. */
        int r = dev_passthrough_restore(m->c->root, m->c->run_dir, m->c->dev_hook, m->c->dev_hook_data, &e);
        phy_error e2 = { 0 };
        int r2 = dev_single_gpu_restore_host(m->c->run_dir, m->c->dev_hook, m->c->dev_hook_data, r < 0 ? &e2 : &e);
        if (r >= 0 && r2 >= 0)
                return;
        _cleanup_free_ char *msg = NULL;
        if (asprintf(&msg, "%s%s%s; 'phyllo device give-back %s' tries again", m->st.error ? m->st.error : "",
                     m->st.error ? "; " : "", e.message, m->c->name) >= 0)
                record_set_error(&m->st, msg);
}

/* Typed passphrases of key = prompt disks (written by the command that
 * started the VM, <run dir>/key-disk-<name>): QEMU's, then gone as soon as
 * it has read them. */
static int keys_for_qemu(const struct start_ctx *c, phy_error *err) {
        for (size_t i = 0; i < c->model.vm.n_disks; i++) {
                if (!c->model.vm.disks[i].key_prompt)
                        continue;
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/key-disk-%s", c->run_dir, c->model.vm.disks[i].name) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if (access(p, F_OK) < 0)
                        return phy_error_set(err, ENOKEY, "disk '%s' of VM '%s' is encrypted with a typed passphrase "
                                             "(key = prompt) and none was given; start it with 'phyllo start %s' on "
                                             "a terminal", c->model.vm.disks[i].name, c->name, c->name);
                if (c->creds.drop && lchown(p, c->creds.uid, c->creds.gid) < 0)
                        return phy_error_set(err, errno, "cannot hand '%s' to QEMU's user: %s", p, strerror(errno));
        }
        return 0;
}

/* A key file's contents in a sealed memfd that QEMU reads as
 * /proc/self/fd/N: the file itself stays the user's (0600), whichever uid
 * QEMU runs as.  -1 when the disk has no key file. */
static int key_memfd(const struct start_ctx *c, const struct vm_disk *d, phy_error *err) {
        if (!d->key_file)
                return -1;
        _cleanup_free_ char *path = vm_path_resolve(c->vm_dir, d->key_file);
        if (!path)
                return phy_error_set(err, ENOMEM, "out of memory");
        _cleanup_close_ int in = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (in < 0 || fstat(in, &st) < 0)
                return phy_error_set(err, errno, "cannot read the key file '%s' of disk '%s': %s", path, d->name,
                                     strerror(errno));
        if (!S_ISREG(st.st_mode) || st.st_size > 64 * 1024)
                return phy_error_set(err, EINVAL, "the key file '%s' of disk '%s' is not a regular file of at most "
                                     "64 KiB", path, d->name);
        char buf[64 * 1024];
        ssize_t n;
        do
                n = read(in, buf, sizeof buf);
        while (n < 0 && errno == EINTR);
        _cleanup_close_ int fd = memfd_create("phyllome-key", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        int r = n < 0 ? -errno : fd < 0 ? -errno : 0;
        if (r == 0 && write(fd, buf, (size_t) n) != n)
                r = errno ? -errno : -EIO;
        explicit_bzero(buf, sizeof buf);
        if (r == 0 && (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0 ||
                       lseek(fd, 0, SEEK_SET) < 0))
                r = -errno;
        if (r < 0)
                return phy_error_set(err, -r, "cannot pass the key file '%s' of disk '%s' to QEMU: %s", path, d->name,
                                     strerror(-r));
        return TAKE_FD(fd);
}

static void keys_forget(const struct start_ctx *c) {
        for (size_t i = 0; i < c->model.vm.n_disks; i++) {
                _cleanup_free_ char *p = NULL;
                if (c->model.vm.disks[i].key_prompt && asprintf(&p, "%s/key-disk-%s", c->run_dir, c->model.vm.disks[i].name) >= 0)
                        (void) unlink(p);
        }
}

/* QEMU's own words when it refused to start: the lines of qemu.log. */
static void qemu_start_error(struct monitor *m, phy_error *e) {
        _cleanup_free_ char *tail = run_file_tail(m->qemu_log, 12);
        char how[96] = "";
        if (m->qemu_exited) {
                int s = m->qemu_status;
                if (WIFEXITED(s))
                        snprintf(how, sizeof how, " (exit status %d)", WEXITSTATUS(s));
                else if (WIFSIGNALED(s))
                        snprintf(how, sizeof how, " (killed by signal %d)", WTERMSIG(s));
        }
        if (tail && *tail)
                phy_error_set(e, EIO, "QEMU could not start VM '%s'%s:\n%s", m->c->name, how, tail);
        else
                phy_error_prefix(e, "QEMU could not start VM '%s'%s (qemu.log is empty)", m->c->name, how);
}

/* QEMU's stdin and stdout the serial console's pipes, its stderr in
 * qemu.log (made anew), its uid and Landlock ruleset applied in the child. */
static pid_t spawn_qemu(struct monitor *m, char *const argv[], const int *keep, size_t n_keep,
                        const struct run_sandbox *sb, phy_error *err) {
        _cleanup_close_ int logfd = run_open_at(m->c->run_dir, "qemu.log", O_WRONLY | O_CREAT | O_TRUNC, 0640);
        if (logfd < 0)
                return phy_error_set(err, -logfd, "cannot open '%s': %s", m->qemu_log, strerror(-logfd));
        /* QEMU is not trusted with the caller's environment (its tokens,
         * agent sockets, proxies): a fixed PATH, HOME the VM's dir, the
         * locale, and the display's variables for a window of its own. */
        struct run_child child = { .creds = &m->qemu_creds, .sb = sb };
        /* Its malloc asks for transparent huge pages (madvise; the kernel's
         * THP mode madvise or always), unless host.conf says
         * qemu-malloc-thp = off.  QEMU's start-up is page faults more than
         * anything else: ~11,300 before its first QMP answer, ~3,500 of
         * them its heap's; with 2 MiB pages ~3,000 fewer, and the answer
         * comes ~7% sooner (bench/start-ab's "raw QEMU, phyllo's
         * tunable").  The price: what it frees of a 2 MiB page stays
         * resident until the kernel splits the page (under memory
         * pressure), ~6-16 MiB more once the guest runs (bench/README,
         * session 13).  glibc before 2.35 ignores the name; 2.36 (Debian
         * 12) compares the THP mode it reads with an unterminated buffer,
         * so the tunable takes when the stack byte after it is 0: at every
         * start of Debian's QEMU 7.2, at about half of QEMU 10.0's
         * (tests/integration/confine.sh). */
        static const char *const env_add[] = { "GLIBC_TUNABLES=glibc.malloc.hugetlb=1", NULL };
        struct exec_spawn s = { .argv = argv, .log_fd = logfd, .stdio = m->serial_qemu, .keep = keep, .n_keep = n_keep,
                                .env_clean = true, .env_home = m->c->vm_dir,
                                .env_window = vm_display_is_window(m->c->model.vm.display),
                                .env_add = m->c->host.qemu_malloc_plain ? NULL : env_add,
                                .setup = run_child_setup, .data = &child,
                                .setup_error = "phyllo-monitor: cannot drop privileges or apply the Landlock "
                                               "ruleset before running QEMU",
                                .share_vm = true };     /* run_child_setup makes raw syscalls only */
        pid_t pid;
        int r = exec_spawn(&s, &pid, err);
        return r < 0 ? r : pid;
}

/* The device nodes QEMU opens itself, each for the VM that uses it only:
 * /dev/kvm under KVM (the command line's choice, step_command_line); the TPM and its
 * cancel file for a passed-through one; VFIO for passed-through PCI devices
 * and mdevs; render nodes for 3D; /dev/bus/usb for host USB devices, which
 * 'phyllo usb add' also attaches to a running VM.  No VM of ours has QEMU
 * open /dev/net/tun, vhost-net, vhost-vsock or huge pages (a tap reaches it
 * as an fd, the monitor's), and its consoles are pipes, not ptys: a QEMU
 * that tries gets EACCES (tests/integration/confine.sh).  A local window
 * (gtk, sdl) may open what a desktop program does: ptys and render nodes. */
static int qemu_sandbox_devices(const struct start_ctx *c, bool kvm, struct run_sandbox *sb, phy_error *err) {
        const struct vm_def *vm = &c->model.vm;
        bool window = vm_display_is_window(vm->display);
        bool tpm = vm->tpm == VM_TPM_PASSTHROUGH;
        const struct {
                const char *path;
                uint64_t access;
                bool used;
        } devs[] = {
                { "/dev/kvm", RUN_SB_FILE_RW, kvm },
                { "/dev/tpm0", RUN_SB_FILE_RW, tpm },
                { "/dev/tpmrm0", RUN_SB_FILE_RW, tpm },
                /* (-tpmdev passthrough,cancel-path=: QEMU opens it for writing, or refuses to start) */
                { "/sys/class/tpm/tpm0/device/cancel", RUN_SB_FILE_RW, tpm },
                { "/dev/vfio", RUN_SB_RW, vm->passthrough.n > 0 || vm->mdevs.n > 0 },
                { "/dev/dri", RUN_SB_RW, window || vm_def_gl(vm) },
                { "/dev/bus/usb", RUN_SB_RW, true },
                { "/dev/ptmx", RUN_SB_FILE_RW, window },
                { "/dev/pts", RUN_SB_RW, window },
        };
        int r;
        for (size_t i = 0; i < ELEMENTSOF(devs); i++)
                if (devs[i].used && (r = run_sandbox_allow(sb, devs[i].path, devs[i].access, err)) < 0)
                        return r;
        return 0;
}

/* QEMU's Landlock ruleset: its code, data and modules (under /usr), a few
 * configuration files, the devices its VM uses, the VM's own directory,
 * its SPICE directory and key files, and each path the definition names
 * (disks, CDs, kernel, initrd, key files, option ROMs, 9p shares), read-only
 * where QEMU only reads.  A local window (gtk, sdl) also needs what a
 * desktop program reads: /etc, /tmp and /dev/shm. */
static int qemu_sandbox(const struct start_ctx *c, bool kvm, struct run_sandbox *sb, const char *spice_dir,
                        phy_error *err) {
        const struct vm_def *vm = &c->model.vm;
        int r;
        if ((r = run_sandbox_begin(sb, err)) < 0 || sb->fd < 0)
                return r;
        if ((r = run_sandbox_allow_base(sb, err)) < 0 || (r = run_sandbox_allow_qemu(sb, c->tools.qemu, err)) < 0 ||
            (r = run_sandbox_allow(sb, "/etc/qemu", RUN_SB_R, err)) < 0 ||
            (r = run_sandbox_allow(sb, c->vm_dir, RUN_SB_DIR, err)) < 0 ||
            (r = run_sandbox_allow(sb, spice_dir, RUN_SB_DIR, err)) < 0)
                return r;
        /* The run dir to read: a typed passphrase and a migration's TLS key
         * (<run_dir>/mig-tls.*), handed to the VM's uid; the rest is root's
         * by its modes, and nothing there is QEMU's to write. */
        if ((r = run_sandbox_allow(sb, c->run_dir, RUN_SB_R, err)) < 0)
                return r;
        if ((r = qemu_sandbox_devices(c, kvm, sb, err)) < 0)
                return r;
        const char *fw[] = { c->tools.ovmf_code, c->tools.ovmf_code_sb, vm->kernel, vm->initrd };
        for (size_t i = 0; i < ELEMENTSOF(fw); i++) {
                _cleanup_free_ char *p = fw[i] ? vm_path_resolve(c->vm_dir, fw[i]) : NULL;
                if ((r = run_sandbox_allow(sb, p, RUN_SB_FILE_R, err)) < 0)
                        return r;
        }
        for (size_t i = 0; i < vm->n_disks; i++) {
                const struct vm_disk *d = &vm->disks[i];
                _cleanup_free_ char *p = vm_path_resolve(c->vm_dir, d->path);
                /* (a key file reaches QEMU as a memfd: key_memfd) */
                if ((r = run_sandbox_allow(sb, p, d->readonly ? RUN_SB_R : RUN_SB_RW, err)) < 0)
                        return r;
        }
        for (size_t i = 0; i < vm->n_cdroms; i++) {
                _cleanup_free_ char *p = vm->cdroms[i].path ? vm_path_resolve(c->vm_dir, vm->cdroms[i].path) : NULL;
                if ((r = run_sandbox_allow(sb, p, RUN_SB_R, err)) < 0)
                        return r;
        }
        for (size_t i = 0; i < vm->passthrough_roms.n; i++) {
                const char *eq = strchr(vm->passthrough_roms.v[i], '=');
                _cleanup_free_ char *p = eq ? vm_path_resolve(c->vm_dir, eq + 1) : NULL;
                if ((r = run_sandbox_allow(sb, p, RUN_SB_R, err)) < 0)
                        return r;
        }
        for (size_t i = 0; i < vm->n_shares; i++) {
                if (vm->shares[i].type == VM_SHARE_VIRTIOFS)
                        continue;       /* virtiofsd serves it, not QEMU */
                _cleanup_free_ char *p = vm_path_resolve(c->vm_dir, vm->shares[i].path);
                if ((r = run_sandbox_allow(sb, p, vm->shares[i].readonly ? RUN_SB_R : RUN_SB_DIR, err)) < 0)
                        return r;
        }
        if (vm_display_is_window(vm->display)) {
                const char *xdg = getenv("XDG_RUNTIME_DIR");
                if ((r = run_sandbox_allow(sb, "/etc", RUN_SB_R, err)) < 0 ||
                    (r = run_sandbox_allow(sb, "/tmp", RUN_SB_DIR, err)) < 0 ||
                    (r = run_sandbox_allow(sb, "/dev/shm", RUN_SB_DIR, err)) < 0 ||
                    (r = run_sandbox_allow(sb, xdg, RUN_SB_DIR, err)) < 0)
                        return r;
        }
        return 0;
}

/* ---- the steps ---- */

/* Whether the steps before QEMU's exec do more than make fds: devices
 * moved, swtpm, virtiofsd or another companion run, a passphrase waited
 * for, an install prepared. */
static bool start_runs_long(const struct start_ctx *c) {
        const struct vm_def *vm = &c->model.vm;
        if (vm->passthrough.n > 0 || vm->single_gpu == VM_ON || vm->tpm == VM_TPM_EMULATED || vm->n_shares > 0 ||
            c->install_run)
                return true;
        for (size_t i = 0; i < vm->n_disks; i++)
                if (vm->disks[i].key_prompt || vm->disks[i].key_file)
                        return true;
        for (size_t i = 0; i < vm->n_nics; i++)
                if (vm->nics[i].mode == VM_NET_ISOLATED || vm->nics[i].mode == VM_NET_BRIDGE)
                        return true;
        return false;
}

/* The run's record: "starting", with this monitor's pid and this boot's id. */
static int step_record(struct monitor *m, phy_error *err) {
        struct start_ctx *c = m->c;
        m->state_path = run_file(c->run_dir, "state.json");
        m->qemu_log = run_file(c->run_dir, "qemu.log");
        m->console_log = run_file(c->run_dir, "console.log");
        m->console_log1 = run_file(c->run_dir, "console.log.1");
        m->stop_marker = run_file(c->run_dir, "stop-requested");
        m->qmp_path = run_file(c->run_dir, "qmp.sock");
        m->console_path = run_file(c->run_dir, "console.sock");
        m->hvc0_path = run_file(c->run_dir, "hvc0.sock");
        m->qga_path = run_file(c->run_dir, "qga.sock");
        m->swtpm_log = run_file(c->run_dir, "swtpm.log");
        m->spice_dir = c->model.vm.display == VM_DISPLAY_SPICE ? run_file(c->run_dir, "spice") : NULL;
        m->spice_sock = m->spice_dir ? run_file(m->spice_dir, "spice.sock") : NULL;
        if (!m->state_path || !m->qemu_log || !m->console_log || !m->console_log1 || !m->stop_marker ||
            !m->qmp_path || !m->console_path || !m->hvc0_path || !m->qga_path || !m->swtpm_log ||
            (c->model.vm.display == VM_DISPLAY_SPICE && !m->spice_sock))
                return phy_error_set(err, ENOMEM, "out of memory");
        /* $PHYLLOME_CONSOLE_LOG_MAX (bytes, at least 4 KiB) lets tests see a rotation. */
        m->clog_max = RUN_CONSOLE_LOG_MAX;
        const char *cap = getenv("PHYLLOME_CONSOLE_LOG_MAX");
        unsigned long long capv;
        if (cap && parse_uint(cap, 1ULL << 40, &capv) == 0 && capv >= 4096)
                m->clog_max = (size_t) capv;
        m->st = (struct run_state) { .state = RUN_STARTING, .monitor_pid = getpid(), .started = time(NULL),
                                     .exit_status = -1 };
        (void) run_boot_id(m->st.boot_id);
        /* A start whose steps before QEMU's exec run programs, move devices
         * or wait for a passphrase says "starting" from here; a plain one
         * (its steps before the exec take ~2 ms) once QEMU runs (step_qemu,
         * with its pid), its record's write off the path to the exec.
         * Until then the record says the last run (inactive: run_start
         * repaired it under the lock); a failure writes "failed". */
        if (start_runs_long(c))
                record_state_save(m);
        return 0;
}

/* The signals the monitor takes through its signalfd, blocked otherwise. */
static void signal_mask(sigset_t *mask) {
        sigemptyset(mask);
        sigaddset(mask, SIGCHLD);
        sigaddset(mask, SIGTERM);
        sigaddset(mask, SIGINT);
        sigaddset(mask, SIGHUP);
}

/* The event loop: a signalfd (SIGCHLD, SIGTERM, SIGINT, SIGHUP are blocked) and the epoll set. */
static int step_event_loop(struct monitor *m, phy_error *err) {
        sigset_t mask;
        signal_mask(&mask);
        m->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        m->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (m->sigfd < 0 || m->epfd < 0)
                return phy_error_set(err, errno, "cannot set up the monitor's event loop: %s", strerror(errno));
        return 0;
}

static void undo_event_loop(struct monitor *m) {
        close_fd(&m->sigfd);
        close_fd(&m->epfd);
}

/* QMP for phyllo commands (QEMU listens on our socket), a private QMP pair
 * for the monitor, the serial console's pipes (QEMU's stdin and stdout); the
 * hvc0 console and the guest agent: our sockets too, so that QEMU needs no
 * write access to the run dir.  (The console relay's socket comes after
 * QEMU's exec: step_console_log.) */
static int step_sockets(struct monitor *m, phy_error *err) {
        if ((m->qmp_listen = listen_unix(m->qmp_path, err)) < 0)
                return m->qmp_listen;
        if ((m->hvc0_listen = listen_unix(m->hvc0_path, err)) < 0)
                return m->hvc0_listen;
        if (m->c->model.vm.agent == VM_ON && (m->qga_listen = listen_unix(m->qga_path, err)) < 0)
                return m->qga_listen;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m->monqmp) < 0)
                return phy_error_set(err, errno, "cannot create a socket pair: %s", strerror(errno));
        return console_serial_pipes(m, err);
}

/* QEMU's ends, once it holds its copies (or never will). */
static void close_sockets_for_qemu(struct monitor *m) {
        close_fd(&m->qmp_listen);
        close_fd(&m->hvc0_listen);
        close_fd(&m->qga_listen);
        close_fd(&m->serial_qemu[0]);
        close_fd(&m->serial_qemu[1]);
        close_fd(&m->monqmp[1]);
}

static void undo_sockets(struct monitor *m) {
        close_sockets_for_qemu(m);
        close_fd(&m->monqmp[0]);
        console_serial_close(m);
        close_fd(&m->console_listen);
        run_dir_remove_sockets(m->c->run_dir);
}

/* PCI passthrough first: the devices move to vfio-pci (and a failure
 * half-way moves them back) before anything else runs.  What an earlier
 * run left recorded goes back first, so that its drivers, not vfio-pci,
 * are the ones recorded now.  Single-GPU mode: the host display lets go of
 * the card before it moves. */
static int step_devices(struct monitor *m, phy_error *err) {
        struct start_ctx *c = m->c;
        int r;
        if (c->model.vm.passthrough.n > 0 &&
            ((r = dev_passthrough_restore(c->root, c->run_dir, c->dev_hook, c->dev_hook_data, err)) < 0 ||
             (r = dev_single_gpu_restore_host(c->run_dir, c->dev_hook, c->dev_hook_data, err)) < 0))
                return r;
        if (c->model.vm.single_gpu == VM_ON &&
            (r = dev_single_gpu_stop_host(c->root, c->run_dir, &c->model.vm.passthrough, c->dev_hook, c->dev_hook_data,
                                          err)) < 0)
                return r;
        if (c->model.vm.passthrough.n > 0 &&
            (r = dev_passthrough_prepare(c->root, c->run_dir, &c->model.vm.passthrough, c->dev_hook, c->dev_hook_data,
                                         err)) < 0)
                return r;
        return 0;
}

/* The devices back to their host drivers, then the host display. */
static void undo_devices(struct monitor *m) {
        give_back_devices(m);
}

/* A QEMU run as another user (nobody) opens /dev/vfio/GROUP itself. */
static int step_vfio_owners(struct monitor *m, phy_error *err) {
        struct start_ctx *c = m->c;
        if (c->model.vm.passthrough.n == 0 || !c->creds.drop)
                return 0;
        int r = dev_vfio_chown_groups(c->root, &c->model.vm.passthrough, c->creds.uid, c->creds.gid, &m->vfio, err);
        if (r >= 0)
                r = dev_vfio_owners_save(c->run_dir, &m->vfio, err);
        return r;
}

static void undo_vfio_owners(struct monitor *m) {
        dev_vfio_restore_owners(m->c->root, &m->vfio);
        dev_vfio_owners_forget(m->c->run_dir);
}

static int step_passphrases(struct monitor *m, phy_error *err) {
        return keys_for_qemu(m->c, err);
}

static void undo_passphrases(struct monitor *m) {
        keys_forget(m->c);
}

/* swtpm before QEMU: QEMU connects to the TPM while it initialises. */
static int step_swtpm(struct monitor *m, phy_error *err) {
        struct start_ctx *c = m->c;
        if (c->model.vm.tpm != VM_TPM_EMULATED)
                return 0;
        _cleanup_free_ char *tpm_dir = run_file(c->vm_dir, "tpm");
        if (!tpm_dir)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r = run_swtpm_setup(c->tools.swtpm_setup, tpm_dir, &c->creds, m->swtpm_log, err);
        if (r < 0)
                return r;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m->tpm) < 0)
                return phy_error_set(err, errno, "cannot create a socket pair: %s", strerror(errno));
        if ((r = run_swtpm_spawn(c->tools.swtpm, tpm_dir, m->tpm[1], m->swtpm_log, &c->creds, &m->st.swtpm_pid,
                                 err)) < 0)
                return r;
        close_fd(&m->tpm[1]);
        m->swtpm_pidfd = exec_pidfd_open(m->st.swtpm_pid);
        return 0;
}

/* swtpm --terminate ends once QEMU's end of its channel closes: after a
 * run it gets a moment for that; when QEMU never ran it is ended at once. */
static void undo_swtpm(struct monitor *m) {
        close_fd(&m->tpm[0]);
        close_fd(&m->tpm[1]);
        if (m->swtpm_pidfd >= 0 && m->epfd >= 0)
                (void) epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->swtpm_pidfd, NULL);
        exec_end(m->st.swtpm_pid, m->swtpm_pidfd, m->qemu_exited ? 3000 : 0);
        m->st.swtpm_pid = 0;
        close_fd(&m->swtpm_pidfd);
}

/* virtiofsd before QEMU: QEMU connects to it as it starts.  passt is made
 * ready here (QEMU gets its socket) and run once QEMU answered (step_qmp). */
static int step_companions(struct monitor *m, phy_error *err) {
        struct start_ctx *c = m->c;
        return net_companions_start(&m->net, &c->model.vm, c->vm_dir, c->run_dir,
                                    c->creds.drop ? c->creds.uid : (uid_t) -1, c->creds.gid, err);
}

static void undo_companions(struct monitor *m) {
        net_companions_stop(&m->net);
}

/* Key files in sealed memfds, QEMU's to read as /proc/self/fd/N. */
static int step_key_files(struct monitor *m, phy_error *err) {
        struct start_ctx *c = m->c;
        m->key_fds = calloc(c->model.vm.n_disks + 1, sizeof *m->key_fds);
        if (!m->key_fds)
                return phy_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < c->model.vm.n_disks; i++)
                m->key_fds[i] = -1;
        for (size_t i = 0; i < c->model.vm.n_disks; i++)
                if (c->model.vm.disks[i].key_file && (m->key_fds[i] = key_memfd(c, &c->model.vm.disks[i], err)) < 0)
                        return m->key_fds[i];
        return 0;
}

static void undo_key_files(struct monitor *m) {
        for (size_t i = 0; m->key_fds && i < m->c->model.vm.n_disks; i++)
                close_fd(&m->key_fds[i]);
        free(m->key_fds);
        m->key_fds = NULL;
}

/* The disks' backing chains, opened and checked while we are root: QEMU
 * gets them as fds and opens no backing file by name (backing.c). */
static int step_backing(struct monitor *m, phy_error *err) {
        return run_backing_open(&m->backing, &m->c->model.vm, m->c->vm_dir, err);
}

static void undo_backing(struct monitor *m) {
        run_backing_close(&m->backing);
}

/* QEMU's command line, with the fds made so far; its warnings go to the
 * starting command. */
static int step_command_line(struct monitor *m, phy_error *err) {
        struct start_ctx *c = m->c;
        struct qemu_argv_env env;
        qemu_argv_env_init(&env);
        env.key_fds = m->key_fds;
        env.n_key_fds = c->model.vm.n_disks;
        env.backing = m->backing.disks;
        env.n_backing = m->backing.n;
        env.nic_fds = m->net.nic_fds;
        env.n_nic_fds = m->net.n_nics;
        env.share_fds = m->net.share_fds;
        env.n_share_fds = m->net.n_shares;
        env.host = &c->host;
        env.caps = c->have_caps ? &c->caps : NULL;
        env.tools = &c->tools;
        env.vm_dir = c->vm_dir;
        env.run_dir = c->run_dir;
        env.qmp_fd = m->qmp_listen;
        env.tpm_fd = m->tpm[0];
        env.hvc0_fd = m->hvc0_listen;
        env.qga_fd = m->qga_listen;
        env.spice_sock = m->spice_sock;
        env.paused = c->paused;
        env.boot_once_cdrom = c->boot_once_cdrom;
        env.incoming = c->incoming;
        env.force_tcg = c->force_tcg;
        env.audio_server = c->audio_server;
        env.audio_why = c->audio_why;
        _cleanup_strv_ strv warnings = { 0 };
        int r = qemu_argv_build(&c->model, &env, &m->argv, &warnings, err);
        if (r < 0)
                return r;
        m->kvm = qemu_argv_use_kvm(&env);      /* as the builder chose: -accel kvm */
        /* The group that opens /dev/kvm, for this QEMU only and only when it
         * opens it: not under TCG, never for swtpm or a companion. */
        m->qemu_creds = c->creds;
        if (m->kvm)
                run_creds_kvm(&m->qemu_creds);
        /* status says where the sound goes, and why nowhere when so. */
        char audio_why[600];
        const char *audio = qemu_argv_audio(&c->model.vm, &env, audio_why, sizeof audio_why);
        m->st.audio = audio ? strdup(audio) : NULL;
        m->st.audio_why = audio_why[0] ? strdup(audio_why) : NULL;
        /* The monitor's own QMP connection, so that phyllo commands always
         * find qmp.sock free (QEMU serves one client per QMP socket). */
        _cleanup_free_ char *phymon = NULL;
        if (asprintf(&phymon, "socket,id=phymon,fd=%d,server=off", m->monqmp[1]) < 0 ||
            strv_push_many(&m->argv, "-chardev", phymon, "-mon", "chardev=phymon,mode=control", NULL) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < warnings.n; i++)
                record_report(c->report_fd, 'W', warnings.v[i]);
        return 0;
}

static void undo_command_line(struct monitor *m) {
        strv_done(&m->argv);
}

static int step_sandbox(struct monitor *m, phy_error *err) {
        run_sandbox_init(&m->sb);
        m->sb_made = true;
        int r = qemu_sandbox(m->c, m->kvm, &m->sb, m->spice_dir, err);
        if (r < 0)
                return r;
        if (m->sb.abi <= 0)
                record_report(m->c->report_fd, 'W', "this kernel has no Landlock: QEMU runs without its filesystem "
                              "sandbox (Linux 5.13 or later with lsm=landlock; 'phyllo host check' says more)");
        return 0;
}

static void undo_sandbox(struct monitor *m) {
        if (m->sb_made)
                run_sandbox_done(&m->sb);
        m->sb_made = false;
}

/* After QEMU's exec, while it starts: the log, and console.sock for
 * `phyllo console` (the monitor's own listener; QEMU never sees it). */
static int step_console_log(struct monitor *m, phy_error *err) {
        console_log_open(m, true);
        console_log_start_line(m);
        if ((m->console_listen = listen_unix(m->console_path, err)) < 0)
                return m->console_listen;
        return 0;
}

static void undo_console_log(struct monitor *m) {
        console_clients_drop(m);
        close_fd(&m->console_listen);
        console_log_close(m);
}

static int step_qemu(struct monitor *m, phy_error *err) {
        struct start_ctx *c = m->c;
        const int fixed[] = { m->qmp_listen, m->tpm[0], m->monqmp[1], m->hvc0_listen, m->qga_listen };
        size_t n_fixed = ELEMENTSOF(fixed);
        size_t n_base = n_fixed + m->net.n_nics + m->net.n_shares + c->model.vm.n_disks;
        size_t n_keep = n_base + run_backing_fds(&m->backing, NULL);
        _cleanup_free_ int *keep = calloc(n_keep, sizeof *keep);
        if (!keep)
                return phy_error_set(err, ENOMEM, "out of memory");
        memcpy(keep, fixed, sizeof fixed);
        for (size_t i = 0; i < m->net.n_nics; i++)
                keep[n_fixed + i] = m->net.nic_fds[i];
        for (size_t i = 0; i < m->net.n_shares; i++)
                keep[n_fixed + m->net.n_nics + i] = m->net.share_fds[i];
        for (size_t i = 0; i < c->model.vm.n_disks; i++)
                keep[n_fixed + m->net.n_nics + m->net.n_shares + i] = m->key_fds[i];
        (void) run_backing_fds(&m->backing, keep + n_base);
        pid_t pid = spawn_qemu(m, m->argv.v, keep, n_keep, &m->sb, err);
        /* QEMU holds its copies now (or never will). */
        undo_sandbox(m);
        undo_backing(m);
        net_companions_close_qemu_fds(&m->net);
        for (size_t i = 0; i < c->model.vm.n_disks; i++)
                close_fd(&m->key_fds[i]);
        close_sockets_for_qemu(m);
        close_fd(&m->tpm[0]);
        if (pid < 0)
                return (int) pid;
        m->st.qemu_pid = pid;
        m->qemu_pidfd = exec_pidfd_open(pid);
        record_state_save(m);
        return 0;
}

/* A QEMU that is still there is killed and reaped. */
static void undo_qemu(struct monitor *m) {
        if (m->st.qemu_pid > 0 && !m->qemu_exited) {
                (void) kill(m->st.qemu_pid, SIGKILL);
                int status;
                while (waitpid(m->st.qemu_pid, &status, 0) < 0 && errno == EINTR)
                        ;
        }
        m->st.qemu_pid = 0;
        if (m->qemu_pidfd >= 0 && m->epfd >= 0)
                (void) epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->qemu_pidfd, NULL);
        close_fd(&m->qemu_pidfd);
}

/* QEMU's monitor I/O thread greets early in QEMU's start-up; its main loop
 * answers the first command (qmp_capabilities) only once the start-up is
 * over and, without -S or -incoming, the vCPUs run: that answer is the
 * moment the VM is running or paused, with no query-status round trip (which
 * would wait for QEMU's main thread again, now competing with the guest's
 * vCPU).  EOF instead means QEMU gave up. */
static int step_qmp(struct monitor *m, phy_error *err) {
        int fd = m->monqmp[0];
        m->monqmp[0] = -1;      /* the client owns it from here */
        /* passt, forked while QEMU starts (the monitor has nothing else to
         * do), so that a failed fork still fails the start; it waits before
         * its exec until the start is reported (monitor_main), so that its
         * own start-up (~20 ms of CPU: its namespaces, a second exec)
         * competes neither with QEMU's nor with the report.  Its socket was
         * QEMU's from the start; undo_companions ends it. */
        int r = net_companions_start_deferred(&m->net, err);
        if (r < 0) {
                close(fd);
                return r;
        }
        /* -S (paused) and -incoming (inmigrate) stay paused; anything that
         * changes it from now on comes as an event (STOP, RESUME, SHUTDOWN)
         * to the supervisor's loop.  The record of that state is written
         * now, while QEMU starts, and put in place at its answer. */
        enum run_state_kind ready = m->c->paused || m->c->incoming ? RUN_PAUSED : RUN_RUNNING;
        record_state_stage(m, ready);
        /* When the greeting arrived (bench/run's breakdown): qmp_open_fd reads
         * it then, with its own deadline for both it and the answer. */
        struct pollfd p = { .fd = fd, .events = POLLIN };
        while (poll(&p, 1, 60000) < 0 && errno == EINTR)
                ;
        run_phase_mark(&m->c->phases, "qmp-greeting");
        int r0 = qmp_open_fd(fd, 60000, &m->qmp, err);
        run_phase_mark(&m->c->phases, "qmp-answer");
        if (r0 < 0) {
                record_state_forget(m);
                int status;
                if (waitpid(m->st.qemu_pid, &status, 0) == m->st.qemu_pid) {
                        m->qemu_exited = true;
                        m->qemu_status = status;
                }
                qemu_start_error(m, err);
                return -EIO;
        }
        record_state_commit(m, ready);
        keys_forget(m->c);      /* QEMU opened its disks: the passphrases are not needed any more */
        return 0;
}

static void undo_qmp(struct monitor *m) {
        record_state_forget(m);
        if (m->qmp) {
                if (m->epfd >= 0)
                        (void) epoll_ctl(m->epfd, EPOLL_CTL_DEL, qmp_fd(m->qmp), NULL);
                qmp_close(m->qmp);
        }
        m->qmp = NULL;
}

/* Everything the supervisor loop waits on (supervise.c). */
static int step_watch(struct monitor *m, phy_error *err) {
        return monitor_watch(m, err);
}

struct boot_step {
        const char *name;
        int (*run)(struct monitor *m, phy_error *err);
        void (*undo)(struct monitor *m);        /* takes a half-done step too; NULL: nothing to undo */
};

static const struct boot_step steps[] = {
        { "record", step_record, NULL },
        { "event-loop", step_event_loop, undo_event_loop },
        { "sockets", step_sockets, undo_sockets },
        { "devices", step_devices, undo_devices },
        { "vfio-owners", step_vfio_owners, undo_vfio_owners },
        { "passphrases", step_passphrases, undo_passphrases },
        { "swtpm", step_swtpm, undo_swtpm },
        { "companions", step_companions, undo_companions },
        { "key-files", step_key_files, undo_key_files },
        { "backing", step_backing, undo_backing },
        { "command-line", step_command_line, undo_command_line },
        { "sandbox", step_sandbox, undo_sandbox },
        { "qemu", step_qemu, undo_qemu },
        /* After QEMU's exec, while it starts (~45 ms): the monitor reads
         * the serial line only once the start is over (monitor_loop). */
        { "console-log", step_console_log, undo_console_log },
        { "qmp", step_qmp, undo_qmp },
        { "watch", step_watch, NULL },
};

const char *const *monitor_boot_steps(void) {
        static const char *names[ELEMENTSOF(steps) + 1];
        for (size_t i = 0; i < ELEMENTSOF(steps); i++)
                names[i] = steps[i].name;
        return names;
}

void monitor_undo_all(struct monitor *m) {
        while (m->steps_begun > 0) {
                const struct boot_step *s = &steps[--m->steps_begun];
                if (s->undo)
                        s->undo(m);
        }
}

/* The step after which a test build fails the start, or NULL. */
static const char *fault_step(void) {
#ifdef PHYLLOME_TEST_HOOKS
        const char *f = getenv("PHYLLOME_FAULT_STEP");
        return f && *f ? f : NULL;
#else
        return NULL;
#endif
}

int monitor_fault_check(phy_error *err) {
        const char *f = fault_step();
        if (!f)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(steps); i++)
                if (strcmp(f, steps[i].name) == 0)
                        return 0;
        char list[512] = "";
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                size_t k = strlen(list);
                snprintf(list + k, sizeof list - k, "%s%s", i ? " " : "", steps[i].name);
        }
        return phy_error_usage(err, "PHYLLOME_FAULT_STEP='%s' names no start step; the steps are: %s", f, list);
}

/* Start failed at the step being run: its undo and every earlier one's,
 * last first, then the record and the report. */
static _Noreturn void monitor_fail(struct monitor *m, const phy_error *e) {
        m->st.state = RUN_FAILED;
        record_set_error(&m->st, e->message);
        /* Everything before the report: when the start returns, the devices
         * are back, nothing runs, state.json says failed and the lock is
         * free, so the next command sees the truth at once. */
        monitor_cleanup(m);
        if (m->c->lock_fd >= 0) {
                close(m->c->lock_fd);
                m->c->lock_fd = -1;
        }
        record_report(m->c->report_fd, 'E', m->st.error ? m->st.error : e->message);
        close(m->c->report_fd);
        m->c->report_fd = -1;
        _exit(1);
}

_Noreturn void monitor_main(struct start_ctx *c) {
        struct monitor mon;
        struct monitor *m = &mon;
        monitor_init(m, c);

        run_phase_mark(&c->phases, "monitor");
        (void) prctl(PR_SET_NAME, RUN_MONITOR_COMM, 0, 0, 0);
        int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (nullfd >= 0) {
                dup2(nullfd, 0);
                dup2(nullfd, 1);
                dup2(nullfd, 2);
                close(nullfd);
        }
        signal(SIGPIPE, SIG_IGN);
        sigset_t mask;
        signal_mask(&mask);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        const char *fault = fault_step();
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                phy_error err = { 0 };
                m->steps_begun = i + 1;
                if (steps[i].run(m, &err) < 0)
                        monitor_fail(m, &err);
                run_phase_mark(&c->phases, steps[i].name);
                if (fault && strcmp(fault, steps[i].name) == 0) {
                        phy_error_set(&err, EIO, "VM '%s' failed to start: a fault was injected after its start "
                                      "step '%s' (PHYLLOME_FAULT_STEP)", c->name, steps[i].name);
                        monitor_fail(m, &err);
                }
        }
        monitor_supervise(m);
}

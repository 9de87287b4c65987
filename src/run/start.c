/* SPDX-License-Identifier: MIT */
/*
 * run_start(), the caller's side of a start: checks the name, takes the run
 * lock, repairs what an earlier run left, resolves the model, prepares the
 * files, then forks the monitor (setsid; twice for a caller that stays) so
 * that it outlives the command, and waits for its report: warnings, then running/paused or the
 * error (the monitor undid its startup before reporting one).
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "monitor.h"
#include "paths.h"
#include "runfile.h"
#include "vm/profile.h"

/* After the fork, what only the monitor uses (the model, the host's facts,
 * QEMU's tools and capabilities) is freed while QEMU starts: not after its
 * answer, when the command's return would wait for it (~0.03 ms). */
static void start_ctx_shed(struct start_ctx *c) {
        vm_model_done(&c->model);
        c->model = (struct vm_model) { 0 };
        host_facts_done(&c->host);
        c->host = (struct host_facts) { 0 };
        qemu_tools_done(&c->tools);
        if (c->have_caps)
                qemu_caps_done(&c->caps);
        c->have_caps = false;
}

void start_ctx_done(struct start_ctx *c) {
        free(c->run_dir);
        free(c->vm_dir);
        start_ctx_shed(c);
        free(c->audio_server);
        free(c->audio_why);
        if (c->lock_fd >= 0)
                close(c->lock_fd);
}

/* Reads exactly n bytes before the deadline: 0, -ETIMEDOUT, or -EPIPE on EOF. */
static int read_full(int fd, void *buf, size_t n, int64_t deadline_ms) {
        size_t off = 0;
        while (off < n) {
                int64_t left = deadline_ms - run_mono_ms();
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int r = poll(&p, 1, (int) left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
                ssize_t k = read(fd, (char *) buf + off, n - off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EPIPE;
                off += (size_t) k;
        }
        return 0;
}

/* The monitor lives long: it must not keep the caller's fds (a shell's
 * command-substitution pipe would never see EOF).  Keeps 0-2 and a < b. */
static void close_inherited(int a, int b) {
        int lo = a < b ? a : b, hi = a < b ? b : a;
        if (lo > 3)
                (void) close_range(3, (unsigned) lo - 1, 0);
        if (hi > lo + 1)
                (void) close_range((unsigned) lo + 1, (unsigned) hi - 1, 0);
        (void) close_range((unsigned) hi + 1, ~0U, 0);
}

/* The warning that a VM runs under TCG is said at its first start, not at
 * every one (a marker in its run dir, which outlives a stop); one that
 * changes (KVM gone, ...) is said again.  Looked at as the monitor's
 * warning arrives, while QEMU starts: not after its answer. */
static bool tcg_warning_is_new(const char *run_dir, const char *text) {
        if (!strstr(text, "software emulation (TCG)"))
                return true;
        _cleanup_free_ char *note = run_file(run_dir, "tcg-warned");
        _cleanup_free_ char *seen = NULL;
        size_t len = 0;
        if (!note)
                return true;
        if (runfile_read(note, 1024, &seen, &len, NULL) == 0 && len > 0)
                seen[len - 1] = '\0';  /* the record's newline */
        if (seen && strcmp(seen, text) == 0)
                return false;
        (void) runfile_write(note, text, 0600, NULL);
        return true;
}

int run_start(const struct run_start_opts *o, strv *ret_warnings, phy_error *err) {
        struct start_ctx c = { .name = o->name, .home = o->home, .lock_fd = -1, .report_fd = -1, .paused = o->paused,
                               .boot_once_cdrom = o->boot_once_cdrom,
                               .incoming = o->incoming, .root = o->root, .dev_hook = o->dev_hook, .dev_hook_data = o->dev_hook_data };
        int r, report_fd = -1;
        bool record_failure = false;
        const char *tcg = getenv("PHYLLOME_FORCE_TCG");
        c.force_tcg = o->force_tcg || (tcg && strcmp(tcg, "1") == 0);
        run_phase_mark(&c.phases, "command");

        if (!vm_name_valid(o->name))
                return phy_error_usage(err, "'%s' is not a valid VM name", o->name);
        if ((r = monitor_fault_check(err)) < 0)
                return r;
        _cleanup_vm_def_ struct vm_def def = { 0 };
        r = vm_load_by_name(o->home, o->name, &def, err);
        if (r < 0)
                return r;
        r = run_dir_path(o->home, o->name, &c.run_dir, err);
        if (r < 0)
                return r;
        c.vm_dir = vm_dir(o->home, o->name);
        if (!c.vm_dir) {
                r = phy_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        /* Checked at save, checked again at use (a file saved before the rules). */
        if ((r = vm_def_check_here(&def, c.vm_dir, err)) < 0)
                goto out;
        /* An unattended install: the run boots the installer (vm_install_apply). */
        if (o->answer && !def.install.delivery) {
                r = phy_error_usage(err, "VM '%s' has no [install] section: an answer file has nothing to go with",
                                    o->name);
                goto out;
        }
        if (def.install.delivery && !o->answer && ret_warnings &&
            strv_pushf(ret_warnings, "VM '%s' has an unattended install that did not run ([install]); its answer "
                       "file was never kept, so it starts from its disk; create it again to install, or remove "
                       "[install] with 'phyllo edit %s'", o->name, o->name) < 0) {
                r = phy_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        if (o->answer && (r = vm_install_apply(&def, c.run_dir, err)) < 0)
                goto out;
        /* Parents traversable (the QEMU user needs that), the dir itself private. */
        {
                phy_error e2 = { 0 };
                c.run_dir_untrusted = run_dir_check(c.run_dir, &e2) < 0;
        }
        /* No chmod of an existing dir here: a running VM's monitor set its
         * mode, and only the lock holder may change it (prepare_run_dir). */
        if ((r = run_dir_make(c.run_dir, err)) < 0)
                goto out;
        r = run_lock_take(c.run_dir, &c.lock_fd, err);
        if (r == -EBUSY) {
                r = phy_error_set(err, EBUSY, "VM '%s' is already running", o->name);
                goto out;
        }
        if (r < 0)
                goto out;
        {
                /* The lock is free: what a run before left behind (a crash,
                 * a reboot) is repaired first; a QEMU whose monitor died
                 * may still run. */
                _cleanup_run_state_ struct run_state st = { 0 };
                if (run_reconcile_locked(o->home, o->name, &st, err) == 0 && run_state_active(st.state) &&
                    run_pid_is_qemu(st.qemu_pid, o->name)) {
                        r = phy_error_set(err, EBUSY, "VM '%s' is already running (unsupervised: its monitor "
                                          "ended; 'phyllo stop %s' stops it)", o->name, o->name);
                        goto out;
                }
                phy_error_clear(err);
        }
        /* From here a failure is this start's: state.json says failed, and why. */
        record_failure = true;

        run_phase_mark(&c.phases, "locked");
        /* What a start reads of the host: no PCI scan for a VM without a
         * display (a render node) or a passed-through device (is it a
         * GPU?), none of what only 'host check' reports. */
        if ((r = host_facts_load_some(o->root, def.display == VM_DISPLAY_NONE && def.passthrough.n == 0 &&
                                      def.mdevs.n == 0 ? 0 : HOST_FACTS_GPUS, &c.host, err)) < 0)
                goto out;
        run_phase_mark(&c.phases, "host-facts");
        /* QEMU now; the rest once the model says the VM uses it. */
        if ((r = qemu_tools_find_some(&c.tools, QEMU_TOOL_QEMU, err)) < 0)
                goto out;
        if (!c.tools.qemu) {
                r = phy_error_set(err, ENOENT, "qemu-system-x86_64 was not found; install qemu-system-x86 "
                                  "(apt-get install qemu-system-x86)");
                goto out;
        }
        {
                _cleanup_free_ char *cache = NULL;
                phy_error e2 = { 0 };
                (void) phy_cache_dir(&cache, &e2);
                if ((r = qemu_caps_probe(c.tools.qemu, cache, &c.caps, err)) < 0)
                        goto out;
                c.have_caps = true;
        }
        run_phase_mark(&c.phases, "caps");
        /* Before root reads a disk (the model probes its first sector): no
         * header may lead it to another file (issue 12). */
        if ((r = run_backing_check(&def, c.vm_dir, err)) < 0)
                goto out;
        if ((r = vm_model_make(&def, &c.host, &c.caps, c.vm_dir, &c.model, err)) < 0)
                goto out;
        if ((r = qemu_tools_find_some(&c.tools, (c.model.vm.firmware == VM_FW_UEFI ? QEMU_TOOL_OVMF : 0) |
                                      (c.model.vm.tpm == VM_TPM_EMULATED ? QEMU_TOOL_SWTPM : 0), err)) < 0)
                goto out;
        run_phase_mark(&c.phases, "model");
        /* A shared directory may have gone or moved since 'share add'. */
        if ((r = net_shares_check(&c.model.vm, o->home, err)) < 0)
                goto out;
        if (c.model.vm.tpm == VM_TPM_PASSTHROUGH && (r = dev_tpm_passthrough_check(o->root, err)) < 0)
                goto out;
        if ((r = run_creds_get(o->home, o->name, &c.host, &c.creds, err)) < 0)
                goto out;
        /* Sound never fails a start: a window's sound goes to a server QEMU's
         * user can reach, else nowhere (-audiodev none) with a warning. */
        if (vm_display_is_window(c.model.vm.display) &&
            c.model.vm.sound != VM_SOUND_NONE && run_sound_find_for(&c.creds, &c.audio_server, &c.audio_why) < 0) {
                r = phy_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        run_dir_remove_sockets(c.run_dir);
        if ((r = prepare_files(&c, err)) < 0)
                goto out;
        if (o->answer) {
                if ((r = run_install_prepare(c.vm_dir, c.run_dir, &def.install, o->answer, &c.creds, err)) < 0)
                        goto out;
                c.install_run = true;
        }

        run_phase_mark(&c.phases, "files");
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0) {
                r = phy_error_set(err, errno, "cannot create a pipe: %s", strerror(errno));
                goto out;
        }
        pid_t child = fork();
        if (child < 0) {
                close(pfd[0]);
                close(pfd[1]);
                r = phy_error_set(err, errno, "cannot fork the VM monitor: %s", strerror(errno));
                goto out;
        }
        if (child == 0) {
                /* The monitor leads a session of its own: no terminal's
                 * signals reach it, and it opens no terminal (its files are
                 * the run dir's, /dev/null, sockets, pipes and the devices
                 * QEMU is handed: none is a tty), so it never gains a
                 * controlling one although it leads the session.  A caller
                 * that stays (phyllod) forks once more: the monitor is then
                 * re-parented at once and phyllod reaps no monitor.  Nor
                 * does it keep the caller's working directory, nor QEMU
                 * and the companions after it: a VM runs for weeks, and a
                 * cwd on a mounted disk would keep that from unmounting. */
                close(pfd[0]);
                if (setsid() < 0 || chdir("/") < 0)
                        _exit(1);
                if (!o->caller_exits) {
                        pid_t mon = fork();
                        if (mon < 0)
                                _exit(1);
                        if (mon > 0)
                                _exit(0);
                }
                c.report_fd = pfd[1];
                close_inherited(c.lock_fd, c.report_fd);
                monitor_main(&c);
        }
        close(pfd[1]);
        c.install_run = false;  /* the monitor ends the install run, whatever happens now */
        close(c.lock_fd);       /* the monitor holds the lock now */
        c.lock_fd = -1;
        start_ctx_shed(&c);
        /* A caller that exits leaves its child, the monitor, to be
         * re-parented; a crash of it before its report still reads as
         * EOF below. */
        while (!o->caller_exits && waitpid(child, NULL, 0) < 0 && errno == EINTR)
                ;

        /* The monitor's report: warnings, then running/paused or the error. */
        int64_t deadline = run_mono_ms() + START_TIMEOUT_MS;
        r = phy_error_set(err, EIO, "the monitor of VM '%s' ended without reporting; see '%s/qemu.log'", o->name,
                          c.run_dir);
        for (;;) {
                unsigned char hdr[5];
                int k = read_full(pfd[0], hdr, sizeof hdr, deadline);
                if (k == -ETIMEDOUT) {
                        r = phy_error_set(err, ETIMEDOUT, "VM '%s' did not finish starting within %d s; see '%s/qemu.log'",
                                          o->name, START_TIMEOUT_MS / 1000, c.run_dir);
                        break;
                }
                if (k < 0)
                        break;
                size_t len = ((size_t) hdr[1] << 24) | ((size_t) hdr[2] << 16) | ((size_t) hdr[3] << 8) | hdr[4];
                if (len > 1024 * 1024)
                        break;
                _cleanup_free_ char *text = calloc(1, len + 1);
                if (!text || read_full(pfd[0], text, len, deadline) < 0)
                        break;
                if (hdr[0] == 'W') {
                        if (ret_warnings && (!o->tcg_warn_once || tcg_warning_is_new(c.run_dir, text)))
                                (void) strv_push(ret_warnings, text);
                } else if (hdr[0] == 'R') {
                        phy_error_clear(err);
                        r = 0;
                        if (o->ret_state && run_state_from_name(text, o->ret_state) < 0)
                                *o->ret_state = RUN_RUNNING;
                        break;
                } else if (hdr[0] == 'E') {
                        r = phy_error_set(err, EIO, "%s", text);
                        break;
                }
        }
        /* Closed last: the monitor waits for that before its exec (and
         * passt's), so that they do not compete with this for a CPU. */
        report_fd = pfd[0];
out:
        if (c.install_run)      /* failed before the monitor took over */
                run_install_end(o->home, o->name, c.run_dir);
        if (r < 0 && record_failure && c.lock_fd >= 0)
                run_state_record_failed(c.run_dir, phy_error_message(err));
        start_ctx_done(&c);
        if (report_fd >= 0)
                close(report_fd);
        return r;
}

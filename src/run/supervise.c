/* SPDX-License-Identifier: MIT */
/*
 * The monitor once QEMU runs: one epoll loop (signalfd, pidfds, serial,
 * console clients, QMP events, isolated networks' hub ports) with no timer
 * but the serial output's batch timer, armed only while output comes
 * (console.c), so an idle VM costs its monitor no wakeups; then, when QEMU has ended,
 * how it ended is recorded and every startup step is undone.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "mem.h"
#include "monitor.h"

int monitor_epoll_add(int epfd, int fd, uint32_t events) {
        struct epoll_event ev = { .events = events, .data.fd = fd };
        return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}


/* Reaps QEMU and swtpm by pid (the monitor has no other children).  A pid
 * already reaped (ECHILD) counts as ended, so a readable pidfd never spins. */
static bool reaped(pid_t pid, int *status) {
        pid_t r;
        do
                r = waitpid(pid, status, WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r < 0 && errno == ECHILD) {
                *status = 0;
                return true;
        }
        return r == pid;
}

void monitor_reap(struct monitor *m) {
        int status;
        if (!m->qemu_exited && m->st.qemu_pid > 0 && reaped(m->st.qemu_pid, &status)) {
                m->qemu_exited = true;
                m->qemu_status = status;
        }
        if (m->st.swtpm_pid > 0 && reaped(m->st.swtpm_pid, &status)) {
                m->st.swtpm_pid = 0;
                if (m->swtpm_pidfd >= 0) {
                        (void) epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->swtpm_pidfd, NULL);
                        close(m->swtpm_pidfd);
                        m->swtpm_pidfd = -1;
                }
                if (!m->qemu_exited) {
                        record_set_error(&m->st, "swtpm ended while the VM was running; see swtpm.log");
                        record_state_save(m);
                }
        }
}

void monitor_cleanup(struct monitor *m) {
        monitor_undo_all(m);
        run_phases_forget(m->c->run_dir);
        /* An install run ends once, whichever way: the answer goes, and the
         * definition boots from its disk from now on. */
        if (m->c->install_run)
                run_install_end(m->c->home, m->c->name, m->c->run_dir);
        m->st.monitor_pid = 0;
        m->st.swtpm_pid = 0;
        record_state_save(m);
}

static void on_signal(struct monitor *m) {
        struct signalfd_siginfo si;
        while (read(m->sigfd, &si, sizeof si) == (ssize_t) sizeof si) {
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                        /* Asked to go: end QEMU as a stop, not a crash. */
                        m->stop_requested = true;
                        m->st.state = RUN_STOPPING;
                        record_state_save(m);
                        (void) kill(m->st.qemu_pid, SIGTERM);
                }
        }
        monitor_reap(m);
}

/* The install run ended by the guest's reboot: its files and [install] go
 * (monitor_cleanup), the lock is let go, and the VM starts again as a plain
 * start does (a new monitor; this one ends). */
static _Noreturn void monitor_continue_install(struct monitor *m) {
        monitor_cleanup(m);
        m->c->install_run = false;
        if (m->c->lock_fd >= 0) {
                close(m->c->lock_fd);
                m->c->lock_fd = -1;
        }
        struct run_start_opts so = { .root = m->c->root, .home = m->c->home, .name = m->c->name };
        phy_error e = { 0 };
        (void) run_start(&so, NULL, &e);
        _exit(0);
}

/* The monitor is a fork of the command that started the VM (phyllo, or
 * phyllod with its threads' arenas): it holds that process's heap and the
 * pages mapped by its start.  When it cannot become the lean executable
 * (monitor_handover_exec) it keeps only what the loop needs: what only the
 * start needed goes (the host's facts, the capabilities, QEMU's command
 * line), then the free heap and the read-only file pages (mem_shed). */
static void monitor_shed(struct monitor *m) {
        struct start_ctx *c = m->c;
        host_facts_done(&c->host);
        c->host = (struct host_facts) { 0 };
        if (c->have_caps)
                qemu_caps_done(&c->caps);
        c->have_caps = false;
        strv_done(&m->argv);
        mem_shed();
}

void monitor_init(struct monitor *m, struct start_ctx *c) {
        *m = (struct monitor) { .c = c, .epfd = -1, .sigfd = -1, .serial_fd = -1, .console_listen = -1,
                                .qemu_pidfd = -1, .swtpm_pidfd = -1, .clog_fd = -1, .qmp_listen = -1,
                                .hvc0_listen = -1, .qga_listen = -1, .monqmp = { -1, -1 }, .serial_qemu = { -1, -1 },
                                .serial_in = -1, .serial_timer = -1,
                                .tpm = { -1, -1 } };
        for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++)
                m->clients[i] = -1;
}

/* Everything the loop waits on; isolated networks: the monitor is the hub
 * port (src/net/isolated.c). */
int monitor_watch(struct monitor *m, phy_error *err) {
        if (monitor_epoll_add(m->epfd, m->sigfd, EPOLLIN) < 0 ||
            console_serial_watch(m) < 0 ||
            monitor_epoll_add(m->epfd, m->console_listen, EPOLLIN) < 0 ||
            (m->qmp && monitor_epoll_add(m->epfd, qmp_fd(m->qmp), EPOLLIN) < 0) ||
            (m->qemu_pidfd >= 0 && monitor_epoll_add(m->epfd, m->qemu_pidfd, EPOLLIN) < 0) ||
            (m->swtpm_pidfd >= 0 && monitor_epoll_add(m->epfd, m->swtpm_pidfd, EPOLLIN) < 0))
                return phy_error_set(err, errno, "cannot set up the monitor's event loop: %s", strerror(errno));
        for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++)
                if (m->clients[i] >= 0 && monitor_epoll_add(m->epfd, m->clients[i], EPOLLIN) < 0)
                        return phy_error_set(err, errno, "cannot set up the monitor's event loop: %s", strerror(errno));
        _cleanup_free_ int *netfds = NULL;
        size_t n_netfds = net_companions_fds(&m->net, &netfds);
        for (size_t i = 0; i < n_netfds; i++)
                if (monitor_epoll_add(m->epfd, netfds[i], EPOLLIN) < 0)
                        return phy_error_set(err, errno, "cannot watch the isolated network's sockets: %s",
                                             strerror(errno));
        return 0;
}

void monitor_report_ready(struct monitor *m) {
        struct start_ctx *c = m->c;
        record_report(c->report_fd, 'R', run_state_name(m->st.state));
        run_phase_mark(&c->phases, "reported");
}

/* The starting command has read the report and closed its end (POLLERR),
 * or 1 s passed: what the monitor does next (its exec, passt's) does not
 * compete for a CPU with the command's last steps. */
void monitor_report_read(struct monitor *m) {
        struct pollfd rp = { .fd = m->c->report_fd, .events = 0 };
        while (rp.fd >= 0 && poll(&rp, 1, 1000) < 0 && errno == EINTR)
                ;
}

void monitor_report_settle(struct monitor *m) {
        struct start_ctx *c = m->c;
        /* passt (forked while QEMU started, step_qmp) runs now: the starting
         * command has its answer and closed its end, or 1 s passed
         * (monitor_report_read waited for that before the exec). */
        close(c->report_fd);
        c->report_fd = -1;
        net_companions_release(&m->net);
        run_phases_write(c->run_dir, &c->phases);
}

_Noreturn void monitor_supervise(struct monitor *m) {
        /* The start is reported first: the command returns while this
         * monitor execs the lean executable, which links libc (json-c
         * linked in) only (src/libexec/monitor.c), for the weeks a VM may run.  A
         * reader of /proc/PID/cmdline sees none while the exec runs;
         * run_pid_is_monitor knows that from an exit.  When the exec cannot
         * be, this one stays. */
        monitor_report_ready(m);
        monitor_report_read(m);
        record_state_forget(m);         /* the record before the answer (record_state_commit) */
        if (!m->c->install_run && !m->c->dev_hook)
                monitor_handover_exec(m);
        monitor_report_settle(m);
        monitor_shed(m);
        if (monitor_loop(m))
                monitor_continue_install(m);
        monitor_end(m);
}

bool monitor_loop(struct monitor *m) {
        /* Events QEMU sent while we reported are already queued. */
        record_qmp_events(m);
        while (!m->qemu_exited) {
                struct epoll_event evs[16];
                int n = epoll_wait(m->epfd, evs, ELEMENTSOF(evs), -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                for (int k = 0; k < n; k++) {
                        int fd = evs[k].data.fd;
                        if (fd == m->sigfd) {
                                on_signal(m);
                        } else if (fd == m->qemu_pidfd || fd == m->swtpm_pidfd) {
                                monitor_reap(m);
                        } else if (fd == m->serial_fd || fd == m->serial_timer) {
                                if (!m->first_output && fd == m->serial_fd) {
                                        /* The guest's first word: the end of bench/run's breakdown. */
                                        m->first_output = true;
                                        run_phase_mark(&m->c->phases, "first-output");
                                        run_phases_write(m->c->run_dir, &m->c->phases);
                                }
                                console_serial_event(m, fd);
                        } else if (fd == m->console_listen) {
                                console_accept(m);
                        } else if (m->qmp && fd == qmp_fd(m->qmp)) {
                                record_qmp_events(m);
                        } else if (net_companions_event(&m->net, fd)) {
                                /* a frame moved through the isolated network's hub */
                        } else {
                                for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++)
                                        if (m->clients[i] == fd) {
                                                console_client_input(m, i);
                                                break;
                                        }
                        }
                }
        }
        /* Drain what QEMU wrote to the console before it ended. */
        console_serial_drain(m);
        if (m->qmp)
                record_qmp_events(m);
        record_exit(m);
        /* An install run the guest ended by rebooting (-no-reboot: the
         * installer is done, or Windows setup goes on from the disk): the
         * installed system starts now, from its disk, the media detached. */
        return m->c->install_run && m->st.state == RUN_STOPPED && !m->stop_requested && !record_stop_marker_exists(m) &&
               strcmp(m->st.guest_event, "SHUTDOWN") == 0 && strcmp(m->st.guest_event_reason, "guest-reset") == 0;
}

_Noreturn void monitor_end(struct monitor *m) {
        monitor_cleanup(m);
        /* The lock goes with the process. */
        _exit(0);
}

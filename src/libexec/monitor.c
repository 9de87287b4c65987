/* SPDX-License-Identifier: MIT */
/*
 * phyllo-monitor: the per-VM monitor for the weeks a VM runs (issue 20).
 * The monitor forked by phyllo or phyllod does the start (src/run/boot.c),
 * reports it, then execs this program on its own pid with the fds it holds
 * and a record of the rest (src/run/handover.c):
 *
 *   phyllo-monitor --handover-fd N
 *
 * It runs the same loop (src/run/supervise.c, console.c, record.c) and, once
 * QEMU has ended, the same end: the exit recorded, every start step undone
 * (companions, swtpm, devices given back, sockets), the lock let go.  It
 * links libc only (json-c is linked in): the libraries phyllo links (libxml2, ICU,
 * libarchive, ...) left with the exec, and with them their relocated pages
 * (bench/README.md, "Footprint").  Its name is the monitor's comm
 * (RUN_MONITOR_COMM), which reconcile looks for.
 */
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fileio.h"
#include "mem.h"
#include "run/monitor.h"

int main(int argc, char **argv) {
        (void) prctl(PR_SET_NAME, RUN_MONITOR_COMM, 0, 0, 0);
        unsigned long long fd;
        if (argc != 3 || strcmp(argv[1], "--handover-fd") != 0 || parse_uint(argv[2], 1 << 20, &fd) < 0) {
                fprintf(stderr, "phyllo-monitor: an internal program of phyllo; it is started by the monitor of a "
                                "VM's start with --handover-fd N\n");
                return 2;
        }
        struct start_ctx c = { .lock_fd = -1, .report_fd = -1 };
        struct monitor m;
        monitor_init(&m, &c);
        json_object *keep = NULL;
        phy_error e = { 0 };
        int r = monitor_handover_load((int) fd, &m, &c, &keep, &e);
        close((int) fd);
        if (r < 0) {
                /* Not knowing what it holds, it cannot watch the VM.  The
                 * start was reported before the exec, so the VM ends as if
                 * it crashed at once: what it could take is ended, the
                 * record says why, the lock goes. */
                phy_error_prefix(&e, "VM '%s' failed to start: the monitor could not take over",
                                 c.name ? c.name : "?");
                m.st.state = RUN_FAILED;
                record_set_error(&m.st, e.message);
                if (m.state_path)
                        monitor_cleanup(&m);
                if (c.lock_fd >= 0)
                        close(c.lock_fd);
                _exit(1);
        }
        monitor_report_settle(&m);
        /* The free heap and the read-only pages the load touched. */
        mem_shed();
        (void) monitor_loop(&m);
        monitor_end(&m);
}

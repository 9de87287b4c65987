/* SPDX-License-Identifier: MIT */
/*
 * Where a start's time goes: CLOCK_MONOTONIC stamps of its phases, taken by
 * the starting command (before the fork) and by the monitor, written to
 * <run_dir>/start-phases.json once the start is reported and again at the
 * guest's first output.  The clock is the machine's, so a benchmark that
 * read it just before running the command subtracts (bench/run prints the
 * breakdown beside raw QEMU's own phases).  Nothing waits on the file: the
 * monitor writes it after its report, off the start's path, and removes it
 * when the VM stops.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "monitor.h"

int64_t run_mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void run_phase_mark(struct run_phases *p, const char *name) {
        if (p->n < RUN_PHASES_MAX)
                p->v[p->n++] = (struct run_phase) { .name = name, .ns = run_mono_ns() };
}

/* {"clock": "monotonic", "unit": "ns", "phases": [["command", N], ...]}:
 * an array, so the order is the order they happened in.  Written in place
 * (no fsync): a benchmark's note about this boot, gone with the run dir. */
void run_phases_write(const char *run_dir, const struct run_phases *p) {
        char buf[RUN_PHASES_MAX * 64 + 96];
        size_t k = (size_t) snprintf(buf, sizeof buf, "{\"clock\": \"monotonic\", \"unit\": \"ns\", \"phases\": [");
        for (size_t i = 0; i < p->n && k < sizeof buf; i++)
                k += (size_t) snprintf(buf + k, sizeof buf - k, "%s[\"%s\", %lld]", i ? ", " : "", p->v[i].name,
                                       (long long) p->v[i].ns);
        if (k < sizeof buf)
                k += (size_t) snprintf(buf + k, sizeof buf - k, "]}\n");
        if (k >= sizeof buf)
                return;
        _cleanup_close_ int dfd = open(run_dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return;
        int fd = openat(dfd, "start-phases.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return;
        bool ok = write(fd, buf, k) == (ssize_t) k;
        close(fd);
        if (!ok || renameat(dfd, "start-phases.json.tmp", dfd, "start-phases.json") < 0)
                (void) unlinkat(dfd, "start-phases.json.tmp", 0);
}

/* A stopped VM's run dir keeps its state, lock and logs only. */
void run_phases_forget(const char *run_dir) {
        _cleanup_close_ int dfd = open(run_dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd >= 0)
                (void) unlinkat(dfd, "start-phases.json", 0);
}

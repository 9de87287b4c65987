/* SPDX-License-Identifier: MIT */
/*
 * What the monitor records: state.json (replaced atomically on each
 * change), QEMU's guest events for phyllod's event stream, how QEMU ended
 * (stopped, crashed with the status and the logs' tails, migrated away),
 * and the report to the command that started the VM.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "monitor.h"
#include "runfile.h"

/* --- the report pipe: records of a type byte, a length and the text --- */

void record_report(int fd, char type, const char *text) {
        if (fd < 0)
                return;
        size_t n = strlen(text);
        unsigned char hdr[5] = { (unsigned char) type, (unsigned char) (n >> 24), (unsigned char) (n >> 16),
                                 (unsigned char) (n >> 8), (unsigned char) n };
        /* One write for the header and the text: the reader wakes once (a
         * record up to PIPE_BUF arrives whole). */
        struct iovec iov[2] = { { hdr, sizeof hdr }, { (void *) text, n } };
        size_t left = sizeof hdr + n;
        while (left > 0) {
                ssize_t w = writev(fd, iov, 2);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return;
                left -= (size_t) w;
                for (int i = 0; i < 2; i++) {
                        size_t k = (size_t) w < iov[i].iov_len ? (size_t) w : iov[i].iov_len;
                        iov[i].iov_base = (char *) iov[i].iov_base + k;
                        iov[i].iov_len -= k;
                        w -= (ssize_t) k;
                }
        }
}

/* --- state --- */

void record_state_save(struct monitor *m) {
        if (!m->state_path)
                return;         /* out of memory before the first record */
        /* Staged and exchanged, the former record removed at once: a
         * quarter of a rename over state.json (below). */
        record_state_stage(m, m->st.state);
        if (m->staged) {
                record_state_commit(m, m->st.state);
                record_state_forget(m);
                return;
        }
        phy_error e = { 0 };
        (void) run_state_write_file(m->state_path, &m->st, &e);
}

/* A rename over state.json costs ~0.2-0.5 ms on ext4 here (with the new
 * file's data synced first too), an exchange of the two names ~0.02 ms and
 * the unlink of the former record after it about as little.  The record of
 * the moment QEMU answers is written before it (while QEMU starts), so that
 * at the answer only the exchange is left (issue 20).  A staged record is
 * m->st as it was when staged: commit it before m->st changes again. */
static char *next_path(const struct monitor *m) {
        char *p = NULL;
        return m->state_path && asprintf(&p, "%s.next", m->state_path) >= 0 ? p : NULL;
}

void record_state_stage(struct monitor *m, enum run_state_kind state) {
        record_state_forget(m);
        _cleanup_free_ char *next = next_path(m);
        struct run_state st = m->st;
        st.state = state;
        _cleanup_free_ char *text = next ? run_state_to_json_string(&st) : NULL;
        if (!text)
                return;
        _cleanup_close_ int fd = open(next, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return;
        size_t n = strlen(text);
        struct iovec iov[2] = { { text, n }, { (void *) "\n", 1 } };
        if (writev(fd, iov, 2) != (ssize_t) (n + 1) || fchmod(fd, 0644) < 0) {
                (void) unlink(next);
                return;
        }
        m->staged = true;
        m->staged_state = state;
}

/* An exchange, not a rename over state.json: ext4's rename over a file
 * costs ~0.2 ms here, an exchange ~0.02 ms; the former record, now at
 * state.json.next, goes with record_state_forget once the start is
 * reported.  A reader sees the one record or the other, each whole. */
void record_state_commit(struct monitor *m, enum run_state_kind state) {
        m->st.state = state;
        _cleanup_free_ char *next = m->staged && m->staged_state == state ? next_path(m) : NULL;
        if (next && renameat2(AT_FDCWD, next, AT_FDCWD, m->state_path, RENAME_EXCHANGE) == 0)
                return;         /* m->staged: the former record is there to remove */
        if (next && rename(next, m->state_path) == 0) {
                m->staged = false;
                return;
        }
        record_state_forget(m);
        phy_error e = { 0 };
        (void) run_state_write_file(m->state_path, &m->st, &e);
}

void record_state_forget(struct monitor *m) {
        if (!m->staged)
                return;
        m->staged = false;
        _cleanup_free_ char *next = next_path(m);
        if (next)
                (void) unlink(next);
}

void record_set_error(struct run_state *st, const char *msg) {
        free(st->error);
        st->error = msg ? strdup(msg) : NULL;
}

/* "qemu.log" and "console.log" tails for a crash report. */
static char *crash_tail(struct monitor *m) {
        _cleanup_free_ char *q = run_file_tail(m->qemu_log, 10);
        _cleanup_free_ char *c = run_file_tail(m->console_log, 10);
        char *r = NULL;
        if (asprintf(&r, "qemu.log:\n%s\nconsole.log:\n%s", q ? q : "", c ? c : "") < 0)
                return NULL;
        return r;
}

/* --- QMP events --- */


/* The guest's side of QEMU's events, kept in state.json for phyllod's
 * event stream (a RESET changes no state, so it would go unseen). */
static bool record_guest_event(struct monitor *m, const char *what, json_object *ev) {
        static const char *const kinds[] = { "RESET", "SHUTDOWN", "STOP", "RESUME", "POWERDOWN", "SUSPEND", "WAKEUP",
                                             "GUEST_PANICKED" };
        bool known = false;
        for (size_t i = 0; i < ELEMENTSOF(kinds) && !known; i++)
                known = strcmp(what, kinds[i]) == 0;
        if (!known)
                return false;
        json_object *data, *reason, *action;
        const char *why = "";
        if (json_object_object_get_ex(ev, "data", &data)) {
                if (json_object_object_get_ex(data, "reason", &reason) && json_object_is_type(reason, json_type_string))
                        why = json_object_get_string(reason);
                else if (json_object_object_get_ex(data, "action", &action) &&
                         json_object_is_type(action, json_type_string))
                        why = json_object_get_string(action);     /* GUEST_PANICKED */
        }
        snprintf(m->st.guest_event, sizeof m->st.guest_event, "%s", what);
        snprintf(m->st.guest_event_reason, sizeof m->st.guest_event_reason, "%s", why);
        m->st.guest_events++;
        return true;
}

void record_qmp_events(struct monitor *m) {
        for (;;) {
                json_object *ev = NULL;
                phy_error e = { 0 };
                int r = qmp_next_event(m->qmp, 0, &ev, &e);
                if (r == -EAGAIN)
                        return;
                if (r < 0) {
                        /* QEMU is going away; its pidfd tells when. */
                        (void) epoll_ctl(m->epfd, EPOLL_CTL_DEL, qmp_fd(m->qmp), NULL);
                        qmp_close(m->qmp);
                        m->qmp = NULL;
                        return;
                }
                json_object *name;
                const char *what = json_object_object_get_ex(ev, "event", &name) ? json_object_get_string(name) : "";
                enum run_state_kind before = m->st.state;
                bool recorded = record_guest_event(m, what, ev);
                if (strcmp(what, "STOP") == 0 && m->st.state != RUN_STOPPING)
                        m->st.state = RUN_PAUSED;
                else if (strcmp(what, "RESUME") == 0 && m->st.state != RUN_STOPPING)
                        m->st.state = RUN_RUNNING;
                else if (strcmp(what, "SHUTDOWN") == 0)
                        m->st.state = RUN_STOPPING;
                json_object_put(ev);
                if (m->st.state != before || recorded)
                        record_state_save(m);
        }
}


bool record_stop_marker_exists(struct monitor *m) {
        return access(m->stop_marker, F_OK) == 0;
}

/* After 'phyllo migrate' the source QEMU is quit: <run_dir>/migrated
 * (written by store_migrate) holds "migrated to ...", kept as the note of
 * the stopped state so that status says where the VM went. */
static void record_migrated(struct monitor *m) {
        _cleanup_free_ char *p = run_file(m->c->run_dir, "migrated");
        _cleanup_free_ char *text = NULL;
        size_t len;
        if (!p || runfile_read(p, 1024, &text, &len, NULL) < 0)
                return;
        (void) unlink(p);
        while (len > 0 && text[len - 1] == '\n')
                text[--len] = '\0';
        if (m->st.state == RUN_STOPPED && len > 0)
                record_set_error(&m->st, text);
}

/* Records how QEMU ended: a clean exit or a requested stop is "stopped",
 * anything else "crashed" with the status and the last log lines. */
void record_exit(struct monitor *m) {
        int s = m->qemu_status;
        bool requested = m->stop_requested || record_stop_marker_exists(m);
        m->st.exit_status = WIFEXITED(s) ? WEXITSTATUS(s) : -1;
        m->st.exit_signal = WIFSIGNALED(s) ? WTERMSIG(s) : 0;
        free(m->st.log_tail);
        m->st.log_tail = NULL;
        if ((WIFEXITED(s) && WEXITSTATUS(s) == 0) || requested) {
                m->st.state = RUN_STOPPED;
                record_set_error(&m->st, NULL);
        } else {
                char msg[256];
                if (WIFSIGNALED(s))
                        snprintf(msg, sizeof msg, "QEMU was killed by signal %d (%s)", WTERMSIG(s),
                                 sigabbrev_np(WTERMSIG(s)) ? sigabbrev_np(WTERMSIG(s)) : "?");
                else
                        snprintf(msg, sizeof msg, "QEMU exited with status %d", WEXITSTATUS(s));
                m->st.state = RUN_CRASHED;
                record_set_error(&m->st, msg);
                m->st.log_tail = crash_tail(m);
        }
        m->st.qemu_pid = 0;
        record_migrated(m);
}

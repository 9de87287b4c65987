/* SPDX-License-Identifier: MIT */
/*
 * The serial console: what the guest writes goes to console.log (rotated
 * at RUN_CONSOLE_LOG_MAX, one old file kept) and to every client of
 * console.sock; what a client types goes to the guest.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "monitor.h"

void console_log_open(struct monitor *m, bool rotate) {
        if (m->clog_fd >= 0)
                close(m->clog_fd);
        if (rotate)
                (void) rename(m->console_log, m->console_log1);
        /* The run dir is ours alone; no symlink is followed all the same. */
        int fd = run_open_at(m->c->run_dir, "console.log", O_WRONLY | O_CREAT | O_APPEND | (rotate ? O_TRUNC : 0), 0640);
        m->clog_fd = fd < 0 ? -1 : fd;
        m->clog_size = 0;
        struct stat s;
        if (m->clog_fd >= 0 && fstat(m->clog_fd, &s) == 0)
                m->clog_size = (size_t) s.st_size;
}

static void write_all(int fd, const char *buf, size_t n) {
        while (n > 0) {
                ssize_t w = write(fd, buf, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return;
                buf += w;
                n -= (size_t) w;
        }
}

/* "-- start 2026-12-05 19:48:02 --" (local time) opens each run's console
 * log, so `phyllo logs` shows where the current run begins. */
void console_log_start_line(struct monitor *m) {
        char line[64];
        struct tm tm;
        time_t now = time(NULL);
        size_t n = localtime_r(&now, &tm) ? strftime(line, sizeof line, "-- start %Y-%m-%d %H:%M:%S --\n", &tm) : 0;
        if (n > 0 && m->clog_fd >= 0) {
                write_all(m->clog_fd, line, n);
                m->clog_size += n;
        }
}

void console_client_drop(struct monitor *m, int i) {
        if (m->clients[i] >= 0) {
                (void) epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->clients[i], NULL);
                close(m->clients[i]);
                m->clients[i] = -1;
        }
}

/* Serial output: into console.log (rotated at RUN_CONSOLE_LOG_MAX) and to
 * every attached client; a client that cannot keep up is dropped rather than
 * stalling the guest's console. */
bool console_serial_read(struct monitor *m) {
        char buf[8192];
        ssize_t n = read(m->serial_fd, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return true;
        if (n <= 0)
                return false;
        if (m->clog_size + (size_t) n > m->clog_max)
                console_log_open(m, true);
        if (m->clog_fd >= 0) {
                write_all(m->clog_fd, buf, (size_t) n);
                m->clog_size += (size_t) n;
        }
        for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++) {
                if (m->clients[i] < 0)
                        continue;
                ssize_t w = send(m->clients[i], buf, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w != n)
                        console_client_drop(m, i);
        }
        return true;
}

void console_accept(struct monitor *m) {
        int fd = accept4(m->console_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
                return;
        for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++)
                if (m->clients[i] < 0) {
                        if (monitor_epoll_add(m->epfd, fd, EPOLLIN) < 0)
                                break;
                        m->clients[i] = fd;
                        return;
                }
        close(fd);      /* too many clients */
}

void console_client_input(struct monitor *m, int i) {
        char buf[4096];
        ssize_t n = read(m->clients[i], buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n <= 0) {
                console_client_drop(m, i);
                return;
        }
        if (m->serial_fd >= 0)
                write_all(m->serial_fd, buf, (size_t) n);
}

void console_clients_drop(struct monitor *m) {
        for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++)
                console_client_drop(m, i);
}

void console_log_close(struct monitor *m) {
        if (m->clog_fd >= 0)
                close(m->clog_fd);
        m->clog_fd = -1;
}

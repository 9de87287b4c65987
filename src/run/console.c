/* SPDX-License-Identifier: MIT */
/*
 * The serial console: what the guest writes goes to console.log (rotated
 * at RUN_CONSOLE_LOG_MAX, one old file kept) and to every client of
 * console.sock; what a client types goes to the guest.  QEMU's stdin and
 * stdout are the console's pipes (-chardev stdio): the one backend that
 * takes an input and an output fd in both QEMUs phyllo runs (7.2's
 * -chardev file has no input-path; QEMU reads its stdin only for this).
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
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

/* The guest's console reaches QEMU's 8250 one byte per outb, and QEMU
 * writes each byte as it comes (qemu-system's -chardev stdio: its stdout).
 * On a pipe those bytes pile up in pages and wake a reader only when the
 * pipe was empty; the read comes in batches: after a read that found
 * something the pipe is not watched (EPOLLONESHOT) and the next read waits
 * for the timer, SERIAL_BATCH_MS later, as long as output keeps coming;
 * a read that finds nothing watches the pipe again, so an idle console
 * costs no wakeup.  The output pipe holds SERIAL_PIPE_SIZE: a monitor that
 * lags never stalls the guest, and QEMU's end does not block either
 * (O_NONBLOCK: QEMU's 8250 waits for the pipe to take the byte). */
#define SERIAL_BATCH_MS 4
#define SERIAL_PIPE_SIZE (256 * 1024)

static int nonblock(int fd) {
        int fl = fcntl(fd, F_GETFL);
        return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

int console_serial_pipes(struct monitor *m, phy_error *err) {
        int out[2], in[2];
        if (pipe2(out, O_CLOEXEC) < 0)
                return phy_error_set(err, errno, "cannot create the serial console's pipe: %s", strerror(errno));
        if (pipe2(in, O_CLOEXEC) < 0) {
                int e = errno;
                close(out[0]);
                close(out[1]);
                return phy_error_set(err, e, "cannot create the serial console's pipe: %s", strerror(e));
        }
        m->serial_fd = out[0];
        m->serial_qemu[1] = out[1];
        m->serial_qemu[0] = in[0];
        m->serial_in = in[1];
        (void) fcntl(out[0], F_SETPIPE_SZ, SERIAL_PIPE_SIZE);     /* 64 KiB stay when it cannot be */
        int r;
        if ((r = nonblock(m->serial_fd)) < 0 || (r = nonblock(m->serial_in)) < 0 || (r = nonblock(m->serial_qemu[1])) < 0)
                return phy_error_set(err, -r, "cannot set up the serial console's pipes: %s", strerror(-r));
        return 0;
}

int console_serial_watch(struct monitor *m) {
        if (m->serial_fd < 0)
                return 0;
        if (m->serial_timer < 0 && (m->serial_timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) < 0)
                return -errno;
        int r = monitor_epoll_add(m->epfd, m->serial_fd, EPOLLIN | EPOLLONESHOT);
        return r < 0 ? r : monitor_epoll_add(m->epfd, m->serial_timer, EPOLLIN);
}

static void serial_out(struct monitor *m, const char *buf, size_t n) {
        if (m->clog_size + n > m->clog_max)
                console_log_open(m, true);
        if (m->clog_fd >= 0) {
                write_all(m->clog_fd, buf, n);
                m->clog_size += n;
        }
        /* A client that cannot keep up is dropped rather than stalling the
         * guest's console. */
        for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++) {
                if (m->clients[i] < 0)
                        continue;
                ssize_t w = send(m->clients[i], buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w != (ssize_t) n)
                        console_client_drop(m, i);
        }
}

enum serial_read { SERIAL_EMPTY, SERIAL_DATA, SERIAL_EOF };

/* What the pipe holds (a pipe's worth at most): into console.log (rotated
 * at RUN_CONSOLE_LOG_MAX) and to every attached client. */
static enum serial_read serial_read(struct monitor *m) {
        char buf[8192];
        enum serial_read got = SERIAL_EMPTY;
        for (size_t total = 0; total < SERIAL_PIPE_SIZE;) {
                ssize_t n = read(m->serial_fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN ? got : SERIAL_EOF;
                if (n == 0)
                        return SERIAL_EOF;
                serial_out(m, buf, (size_t) n);
                got = SERIAL_DATA;
                total += (size_t) n;
                if ((size_t) n < sizeof buf)
                        break;
        }
        return got;
}

static void unwatch_close(struct monitor *m, int *fd) {
        if (*fd >= 0) {
                if (m->epfd >= 0)
                        (void) epoll_ctl(m->epfd, EPOLL_CTL_DEL, *fd, NULL);
                close(*fd);
                *fd = -1;
        }
}

void console_serial_close(struct monitor *m) {
        unwatch_close(m, &m->serial_fd);
        unwatch_close(m, &m->serial_timer);
        if (m->serial_in >= 0)
                close(m->serial_in);
        m->serial_in = -1;
}

void console_serial_event(struct monitor *m, int fd) {
        if (fd == m->serial_timer) {
                uint64_t ticks;
                if (read(m->serial_timer, &ticks, sizeof ticks) < 0 && errno == EAGAIN)
                        return;
        }
        if (m->serial_fd < 0)
                return;
        enum serial_read r = serial_read(m);
        if (r == SERIAL_EOF) {
                unwatch_close(m, &m->serial_fd);   /* QEMU is gone; its input stays until the end */
                return;
        }
        /* More may come: read it in SERIAL_BATCH_MS, the pipe unwatched;
         * nothing came (or no timer): the pipe wakes us. */
        struct itimerspec t = { .it_value.tv_nsec = SERIAL_BATCH_MS * 1000000L };
        if (r == SERIAL_DATA && timerfd_settime(m->serial_timer, 0, &t, NULL) == 0)
                return;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.fd = m->serial_fd };
        (void) epoll_ctl(m->epfd, EPOLL_CTL_MOD, m->serial_fd, &ev);
}

void console_serial_drain(struct monitor *m) {
        while (m->serial_fd >= 0 && serial_read(m) == SERIAL_DATA)
                ;
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
        /* Into the guest: what the pipe cannot take (64 KiB the guest did not
         * read) is lost, as on a real UART, rather than stall the monitor. */
        if (m->serial_in >= 0)
                (void) !write(m->serial_in, buf, (size_t) n);
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

/* SPDX-License-Identifier: MIT */
/*
 * `logs --follow`, written once: a follower of a VM's console.log and
 * qemu.log that hands out their lines ("[console] ...", "[qemu] ...") as
 * the files grow.  It wakes on inotify over the run dir, never on a timer;
 * phyllo polls its fd beside stdout, phyllod beside the client's socket
 * (a chunked reply of GET /v1/vms/NAME/logs?follow=1, src/api/server.c).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops.h"
#include "cleanup.h"
#include "run/run.h"

/* What one pass reads of a file at most (a line longer than this is handed
 * out in pieces rather than held back forever). */
#define FOLLOW_CHUNK (64u * 1024)

struct follow_file {
        const char *tag;
        char *path;
        off_t off;
        ino_t ino;
};

struct ops_log_follow {
        int ino_fd;
        struct follow_file files[2];
        char *pending;          /* formatted lines not handed out yet */
        size_t len, pos;
};

void ops_log_follow_free(struct ops_log_follow *f) {
        if (!f)
                return;
        if (f->ino_fd >= 0)
                close(f->ino_fd);
        for (size_t i = 0; i < ELEMENTSOF(f->files); i++)
                free(f->files[i].path);
        free(f->pending);
        free(f);
}

int ops_log_follow_open(const struct ops_ctx *c, const char *name, struct ops_log_follow **ret, phy_error *err) {
        _cleanup_free_ char *dir = NULL;
        char *paths[3] = { 0 };
        int r = ops_log_paths(c, name, &dir, paths, err);
        if (r < 0)
                return r;
        free(paths[0]);         /* console.log.1: the dump has it, a follower starts at console.log */
        struct ops_log_follow *f = calloc(1, sizeof *f);
        if (!f) {
                free(paths[1]);
                free(paths[2]);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        f->ino_fd = -1;
        f->files[0] = (struct follow_file) { .tag = "console", .path = paths[1] };
        f->files[1] = (struct follow_file) { .tag = "qemu", .path = paths[2] };
        /* The run dir exists before the VM's first start, so that the watch
         * sees that start's logs appear. */
        if ((r = run_dir_make(dir, err)) < 0) {
                ops_log_follow_free(f);
                return r;
        }
        f->ino_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (f->ino_fd < 0 || inotify_add_watch(f->ino_fd, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
                r = phy_error_set(err, errno, "cannot watch '%s': %s", dir, strerror(errno));
                ops_log_follow_free(f);
                return r;
        }
        *ret = f;
        return 0;
}

int ops_log_follow_fd(const struct ops_log_follow *f) {
        return f->ino_fd;
}

static int pending_add(struct ops_log_follow *f, const char *tag, const char *line, size_t n) {
        size_t need = f->len + strlen(tag) + n + 4;
        char *p = realloc(f->pending, need + 1);
        if (!p)
                return -ENOMEM;
        f->pending = p;
        f->len += (size_t) sprintf(p + f->len, "[%s] ", tag);
        memcpy(p + f->len, line, n);
        f->len += n;
        p[f->len++] = '\n';
        p[f->len] = '\0';
        return 0;
}

/* The whole lines added to one file since the last pass, CR/LF cut. */
static int follow_file_read(struct ops_log_follow *f, struct follow_file *lf, phy_error *err) {
        _cleanup_close_ int fd = open(lf->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return 0;       /* not there yet: the VM has not started */
        struct stat s;
        if (fstat(fd, &s) < 0 || !S_ISREG(s.st_mode))
                return 0;
        if (s.st_ino != lf->ino || s.st_size < lf->off) {
                lf->ino = s.st_ino;     /* rotated, or started anew */
                lf->off = 0;
        }
        _cleanup_free_ char *buf = malloc(FOLLOW_CHUNK);
        if (!buf)
                return phy_error_set(err, ENOMEM, "out of memory");
        for (;;) {
                ssize_t k = pread(fd, buf, FOLLOW_CHUNK, lf->off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return phy_error_set(err, errno, "cannot read '%s': %s", lf->path, strerror(errno));
                size_t used = 0;
                for (size_t at = 0; at < (size_t) k;) {
                        char *nl = memchr(buf + at, '\n', (size_t) k - at);
                        if (!nl)
                                break;
                        size_t n = (size_t) (nl - (buf + at));
                        size_t cut = n;
                        while (cut > 0 && buf[at + cut - 1] == '\r')
                                cut--;
                        if (pending_add(f, lf->tag, buf + at, cut) < 0)
                                return phy_error_set(err, ENOMEM, "out of memory");
                        at += n + 1;
                        used = at;
                }
                /* A full chunk without a newline: a very long line, handed out as is. */
                if (used == 0 && (size_t) k == FOLLOW_CHUNK) {
                        if (pending_add(f, lf->tag, buf, (size_t) k) < 0)
                                return phy_error_set(err, ENOMEM, "out of memory");
                        used = (size_t) k;
                }
                lf->off += (off_t) used;
                if ((size_t) k < FOLLOW_CHUNK || used == 0)
                        return 0;
        }
}

ssize_t ops_log_follow_read(struct ops_log_follow *f, char *buf, size_t max, phy_error *err) {
        if (f->pos == f->len) {
                /* Drain the notifications first: a change after this is a new wake-up. */
                char ev[4096];
                while (read(f->ino_fd, ev, sizeof ev) > 0)
                        ;
                f->pos = f->len = 0;
                for (size_t i = 0; i < ELEMENTSOF(f->files); i++) {
                        int r = follow_file_read(f, &f->files[i], err);
                        if (r < 0)
                                return r;
                }
        }
        size_t n = f->len - f->pos < max ? f->len - f->pos : max;
        if (n == 0)
                return 0;
        memcpy(buf, f->pending + f->pos, n);
        f->pos += n;
        return (ssize_t) n;
}

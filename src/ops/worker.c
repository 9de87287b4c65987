/* SPDX-License-Identifier: MIT */
/* Running phyllome-catalog-worker (worker.h). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "error-json.h"
#include "exec.h"
#include "json-cleanup.h"
#include "worker.h"

#define WORKER "phyllome-catalog-worker"

char *ops_worker_path(void) {
        return exec_libexec_path("PHYLLOME_CATALOG_WORKER", WORKER);
}

struct child_fds { int in, out, err; };

/* In the child (async-signal-safe): its stdin, stdout and stderr, and its
 * end with its parent (a download of a phyllod that died stops). */
static int child_setup(void *data) {
        const struct child_fds *f = data;
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
                return -1;
        if ((f->in >= 0 && dup2(f->in, 0) < 0) || dup2(f->out, 1) < 0 || (f->err >= 0 && dup2(f->err, 2) < 0))
                return -1;
        return 0;
}

/* One line of the worker: 1 a progress record (handed on), 0 the last
 * record (*ret or err filled), -1 garbled. */
static int take_line(const struct ops_worker_call *c, const char *line, size_t len, json_object **ret,
                     phy_error *err) {
        _cleanup_json_ json_object *o = NULL;
        json_tokener *t = json_tokener_new();
        if (!t)
                return -1;
        o = json_tokener_parse_ex(t, line, (int) len);
        bool whole = json_tokener_get_error(t) == json_tokener_success && (size_t) json_tokener_get_parse_end(t) == len;
        json_tokener_free(t);
        if (!o || !whole || !json_object_is_type(o, json_type_object) || json_object_object_length(o) != 1)
                return -1;
        json_object *v;
        if (json_object_object_get_ex(o, "progress", &v)) {
                if (!json_object_is_type(v, json_type_object))
                        return -1;
                if (c->on_progress)
                        c->on_progress(v, c->userdata);
                return 1;
        }
        if (json_object_object_get_ex(o, "result", &v)) {
                *ret = json_object_get(v);
                return 0;
        }
        if (json_object_object_get_ex(o, "error", &v) && phy_error_from_json(v, PHY_ERR_NONE, err))
                return 0;
        return -1;
}

static void quote(const char *s, size_t len, char *out, size_t outlen) {
        size_t j = 0;
        if (len && s[len - 1] == '\n')
                len--;
        for (size_t i = 0; i < len && j + 5 < outlen; i++)
                out[j++] = (unsigned char) s[i] >= 0x20 && s[i] != 0x7f ? s[i] : '?';
        if (len > j && j + 4 < outlen)
                out[j++] = '.', out[j++] = '.', out[j++] = '.';
        out[j] = '\0';
}

int ops_worker_run(const struct ops_worker_call *c, json_object **ret, phy_error *err) {
        *ret = NULL;
        _cleanup_free_ char *exe = ops_worker_path();
        if (!exe)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (c->input && strlen(c->input) > 4096)
                return phy_error_set_kind(err, PHY_ERR_TOO_LARGE, E2BIG, "the input for %s is over 4 KiB", WORKER);
        size_t n_args = 0;
        while (c->args[n_args])
                n_args++;
        _cleanup_free_ char **argv = calloc(n_args + 2, sizeof *argv);
        if (!argv)
                return phy_error_set(err, ENOMEM, "out of memory");
        argv[0] = exe;
        for (size_t i = 0; i < n_args; i++)
                argv[i + 1] = (char *) c->args[i];
        int out[2] = { -1, -1 }, in[2] = { -1, -1 };
        _cleanup_close_ int quiet = -1;
        if (pipe2(out, O_CLOEXEC) < 0 || (c->input && pipe2(in, O_CLOEXEC) < 0)) {
                int e = errno;
                if (out[0] >= 0)
                        close(out[0]), close(out[1]);
                return phy_error_set(err, e, "cannot make a pipe for %s: %s", WORKER, strerror(e));
        }
        _cleanup_close_ int rd = out[0], wr = out[1], in_rd = in[0], in_wr = in[1];
        if (c->quiet && (quiet = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
                return phy_error_set(err, errno, "cannot open /dev/null: %s", strerror(errno));
        if (c->input) {
                /* written before the worker starts (a pipe's buffer holds 4 KiB,
                 * and no SIGPIPE can come while we hold the read end) */
                size_t n = strlen(c->input);
                if (write(in_wr, c->input, n) != (ssize_t) n)
                        return phy_error_set(err, errno ? errno : EIO, "cannot write the input for %s", WORKER);
                close(in_wr);
                in_wr = -1;
        }
        /* exec_spawn points stdin at /dev/null and stdout, stderr at log_fd
         * (fd 2: ours) first; then child_setup gives it our pipes */
        struct child_fds fds = { .in = in_rd, .out = wr, .err = quiet };
        struct exec_spawn s = { .argv = argv, .log_fd = 2, .setup = child_setup, .data = &fds,
                                .setup_error = "cannot prepare " WORKER };
        pid_t pid;
        int r = exec_spawn(&s, &pid, err);
        if (r < 0)
                return r;
        close(wr);
        wr = -1;
        if (c->input) {
                close(in_rd);
                in_rd = -1;
        }
        if (c->on_started)
                c->on_started(pid, c->userdata);

        /* records until the last one or the end of output */
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0, total = 0;
        int state = 1;          /* 1 reading, 0 last record taken, -1 garbled, -2 too large */
        char shown[96] = "";
        while (state == 1) {
                if (cap - len < 65536) {
                        size_t ncap = cap ? cap * 2 : 65536;
                        if (ncap > OPS_WORKER_RECORD_MAX + 65536)
                                ncap = OPS_WORKER_RECORD_MAX + 65536;
                        char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
                        if (!nb) {
                                state = -2;
                                break;
                        }
                        buf = nb;
                        cap = ncap;
                }
                ssize_t got = read(rd, buf + len, cap - len);
                if (got < 0 && errno == EINTR)
                        continue;
                if (got <= 0)
                        break;
                len += (size_t) got;
                total += (size_t) got;
                if (total > OPS_WORKER_OUTPUT_MAX) {
                        state = -2;
                        break;
                }
                char *nl;
                while (state == 1 && (nl = memchr(buf, '\n', len))) {
                        size_t l = (size_t) (nl - buf);
                        if (l > OPS_WORKER_RECORD_MAX) {
                                state = -2;
                                break;
                        }
                        state = take_line(c, buf, l, ret, err);
                        if (state < 0)
                                quote(buf, l, shown, sizeof shown);
                        memmove(buf, nl + 1, len - l - 1);
                        len -= l + 1;
                }
                if (state == 1 && len > OPS_WORKER_RECORD_MAX)
                        state = -2;
        }
        /* after the last record: nothing more may come */
        if (state == 0 && len > 0) {
                quote(buf, len, shown, sizeof shown);
                state = -1;
        }
        if (state == 0) {
                char extra;
                ssize_t more;
                while ((more = read(rd, &extra, 1)) < 0 && errno == EINTR)
                        ;
                if (more > 0) {
                        snprintf(shown, sizeof shown, "%c...", extra >= 0x20 ? extra : '?');
                        state = -1;
                }
        }
        if (state < 0)
                kill(pid, SIGKILL);
        close(rd);
        rd = -1;
        siginfo_t si = { 0 };
        while (waitid(P_PID, (id_t) pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
                ;
        if (c->on_ended)
                c->on_ended(c->userdata);
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        if (state < 0) {
                json_object_put(*ret);
                *ret = NULL;
                if (state == -2)
                        return phy_error_set_kind(err, PHY_ERR_HOST, EMSGSIZE, "%s sent a record over %u bytes (or "
                                                  "over %u in all); it was ended", exe, OPS_WORKER_RECORD_MAX,
                                                  OPS_WORKER_OUTPUT_MAX);
                return phy_error_set_kind(err, PHY_ERR_HOST, EPROTO, "%s sent a line that is not one of its records "
                                          "('%s'); it was ended", exe, shown);
        }
        if (state == 1) {
                if (WIFSIGNALED(st))
                        return phy_error_set_kind(err, PHY_ERR_HOST, EIO, "%s was ended by signal %d (%s) before "
                                                  "its answer", exe, WTERMSIG(st), strsignal(WTERMSIG(st)));
                if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
                        return phy_error_set_kind(err, PHY_ERR_HOST, ENOENT, "cannot execute %s (reinstall Phyllome, "
                                                  "or set PHYLLOME_CATALOG_WORKER)", exe);
                return phy_error_set_kind(err, PHY_ERR_HOST, EPROTO, "%s ended with status %d without its answer",
                                          exe, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        }
        if (*ret && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                json_object_put(*ret);
                *ret = NULL;
                return phy_error_set_kind(err, PHY_ERR_HOST, EPROTO, "%s answered, then ended with status %d", exe,
                                          WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        }
        return *ret ? 0 : -err->code;
}

/* SPDX-License-Identifier: MIT */
/* phyllo start, stop, kill, restart, pause, resume, status, console, logs,
 * view, wait: the lifecycle of a VM (src/run does the work). */
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cleanup.h"
#include "exec.h"
#include "fileio.h"
#include "run/run.h"
#include "vm/vm.h"

#define DETACH_KEY 0x1d         /* Ctrl-] */


/* The one positional argument every lifecycle command takes. */
static int take_name(int argc, char **argv, const char *usage, const char **ret) {
        if (optind >= argc)
                return cli_usage_error(usage, "a VM name is required");
        if (optind + 1 < argc)
                return cli_usage_error(usage, "unexpected argument '%s'", argv[optind + 1]);
        if (!vm_name_valid(argv[optind]))
                return cli_usage_error(usage, "'%s' is not a valid VM name", argv[optind]);
        *ret = argv[optind];
        return 0;
}

/* Commands with no option but the name. */
static int name_only(int argc, char **argv, const char *usage, const char **ret) {
        static const struct option opts[] = { { NULL, 0, NULL, 0 } };
        int c;
        while ((c = cli_getopt(argc, argv, "", opts)) != -1)
                return cli_usage_error(usage, "unknown option");
        return take_name(argc, argv, usage, ret);
}

static int parse_seconds(const char *s, const char *usage, unsigned *ret) {
        unsigned long long v;
        if (parse_uint(s, 31 * 24 * 3600, &v) < 0)
                return cli_usage_error(usage, "'%s' is not a number of seconds", s);
        *ret = (unsigned) v;
        return 0;
}

/* --- console --- */

/* Through phyllod (an HTTP Upgrade to the raw console) or to the monitor
 * directly (cli_console_open): the same bytes either way. */
static int console_attach(struct cli_ctx *ctx, const char *name) {
        _cleanup_close_ int fd = -1;
        int st = cli_console_open(ctx, name, &fd);
        if (st)
                return st;
        bool tty = isatty(STDIN_FILENO);
        struct termios saved;
        if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
                struct termios raw = saved;
                cfmakeraw(&raw);
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &raw);
        } else
                tty = false;
        fprintf(stderr, "Connected to VM '%s' console; press Ctrl-] to detach%s", name, tty ? "\r\n" : "\n");

        struct pollfd p[2] = { { .fd = STDIN_FILENO, .events = POLLIN }, { .fd = fd, .events = POLLIN } };
        bool stdin_open = true, detached = false;
        char buf[8192];
        for (;;) {
                int n = poll(p, 2, -1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        break;
                if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t k = read(fd, buf, sizeof buf);
                        if (k <= 0)
                                break;
                        for (ssize_t off = 0; off < k;) {
                                ssize_t w = write(STDOUT_FILENO, buf + off, (size_t) (k - off));
                                if (w <= 0)
                                        goto done;
                                off += w;
                        }
                }
                if (stdin_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
                        ssize_t k = read(STDIN_FILENO, buf, sizeof buf);
                        if (k <= 0) {
                                /* Input ended: let the monitor close our side once it
                                 * relayed everything, so the output up to then arrives. */
                                stdin_open = false;
                                p[0].fd = -1;
                                (void) shutdown(fd, SHUT_WR);
                                continue;
                        }
                        if (tty) {
                                char *d = memchr(buf, DETACH_KEY, (size_t) k);
                                if (d) {
                                        k = d - buf;
                                        detached = true;
                                }
                        }
                        if (k > 0 && send(fd, buf, (size_t) k, MSG_NOSIGNAL) < 0)
                                break;
                        if (detached)
                                break;
                }
        }
done:
        if (tty) {
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &saved);
                fprintf(stderr, "\n%s from VM '%s' console\n", detached ? "Detached" : "Disconnected", name);
        }
        return 0;
}

int cmd_console(struct cli_ctx *ctx, int argc, char **argv) {
        const char *name;
        int r = name_only(argc, argv, cli_usage(), &name);
        if (r)
                return r;
        return console_attach(ctx, name);
}

/* --- start / stop / kill / restart / pause / resume --- */

/* POST /v1/vms/NAME/ACTION through phyllod or directly (src/cli/api.c);
 * takes body.  0 and *ret the reply, or the exit status. */
static int vm_action(struct cli_ctx *ctx, const char *name, const char *action, json_object *body,
                     json_object **ret) {
        return cli_call(ctx, "POST", body, ret, "/v1/vms/%s/%s", name, action);
}

static json_object *body_new(void) {
        return json_object_new_object();
}

#define jbool_of cli_jbool


static int do_start(struct cli_ctx *ctx, const char *name, bool paused, const char *boot_once, bool json) {
        json_object *b = body_new(), *o = NULL;
        if (paused)
                json_object_object_add(b, "paused", json_object_new_boolean(true));
        if (boot_once)
                json_object_object_add(b, "boot_once", json_object_new_string(boot_once));
        bool keys = false;
        int r = cli_keys_unlock(ctx, name, false, &keys);
        if (r) {
                json_object_put(b);
                return r;
        }
        r = vm_action(ctx, name, "start", b, &o);
        if (keys)
                cli_keys_forget(ctx, name);
        if (r)
                return r;
        cli_print_warnings(o);
        if (json) {
                cli_print_json(o);
                return 0;
        }
        json_object_put(o);
        printf("VM '%s' started%s%s\n", name, paused ? " (paused)" : "", boot_once ? ", booting from the CD once" : "");
        fflush(stdout);
        return 0;
}

int cmd_start(struct cli_ctx *ctx, int argc, char **argv) {
        enum { OPT_CONSOLE = 1, OPT_PAUSED, OPT_JSON, OPT_BOOT_ONCE };
        static const struct option opts[] = {
                { "console", no_argument, NULL, OPT_CONSOLE },
                { "paused", no_argument, NULL, OPT_PAUSED },
                { "json", no_argument, NULL, OPT_JSON },
                { "boot-once", required_argument, NULL, OPT_BOOT_ONCE },
                { NULL, 0, NULL, 0 },
        };
        bool console = false, paused = false, json = false;
        const char *boot_once = NULL;
        int c;
        while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
                switch (c) {
                case OPT_CONSOLE: console = true; break;
                case OPT_PAUSED: paused = true; break;
                case OPT_JSON: json = true; break;
                case OPT_BOOT_ONCE: boot_once = optarg; break;
                default: return cli_usage_error(cli_usage(), "unknown option");
                }
        }
        const char *name;
        int r = take_name(argc, argv, cli_usage(), &name);
        if (r)
                return r;
        r = do_start(ctx, name, paused, boot_once, json);
        if (r == 0 && console)
                r = console_attach(ctx, name);
        return r;
}

static void print_stopped(json_object *o, const char *name) {
        printf(jbool_of(o, "was_running") ? "VM '%s' stopped\n" : "VM '%s' is not running\n", name);
        fflush(stdout);
}

/* A countdown on the terminal while a stop waits for the guest (the
 * request itself cannot report progress through phyllod): a thread that
 * wakes each second, or at once when told to end (an eventfd). */
struct countdown {
        pthread_t thread;
        int efd;
        unsigned seconds;
        const char *name;
        bool running;
};

static void *countdown_main(void *userdata) {
        struct countdown *cd = userdata;
        struct pollfd p = { .fd = cd->efd, .events = POLLIN };
        bool shown = false;
        for (unsigned left = cd->seconds; left > 0; left--) {
                int n = poll(&p, 1, 1000);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n != 0)
                        break;
                fprintf(stderr, "\rWaiting for VM '%s' to shut down: %u s before it is terminated ", cd->name,
                        left - 1);
                shown = true;
        }
        /* Stay until told, so the line is cleared once, after the last print. */
        while (poll(&p, 1, -1) < 0 && errno == EINTR)
                ;
        if (shown)
                fputs("\r\033[K", stderr);
        return NULL;
}

static void countdown_start(struct countdown *cd, const char *name, unsigned seconds) {
        *cd = (struct countdown) { .efd = -1, .seconds = seconds, .name = name };
        if (seconds == 0 || !isatty(STDERR_FILENO) || (cd->efd = eventfd(0, EFD_CLOEXEC)) < 0)
                return;
        cd->running = pthread_create(&cd->thread, NULL, countdown_main, cd) == 0;
}

static void countdown_end(struct countdown *cd) {
        if (cd->running) {
                uint64_t one = 1;
                (void) !write(cd->efd, &one, sizeof one);
                pthread_join(cd->thread, NULL);
        }
        if (cd->efd >= 0)
                close(cd->efd);
        *cd = (struct countdown) { .efd = -1 };
}

static int do_stop(struct cli_ctx *ctx, const char *name, unsigned timeout, bool force, const char *mode, bool json) {
        json_object *b = body_new(), *o = NULL, *by = NULL;
        json_object_object_add(b, "timeout", json_object_new_int64(timeout));
        if (force)
                json_object_object_add(b, "force", json_object_new_boolean(true));
        if (mode)
                json_object_object_add(b, "mode", json_object_new_string(mode));
        struct countdown cd;
        countdown_start(&cd, name, force ? 0 : timeout);
        int r = vm_action(ctx, name, "stop", b, &o);
        countdown_end(&cd);
        if (r)
                return r;
        const char *how = json_object_object_get_ex(o, "stopped_by", &by) && by ? json_object_get_string(by) : "";
        if (json) {
                /* The API's answer; a forced end keeps its exit status. */
                bool forced = cli_jbool(o, "forced");
                cli_print_json(o);
                return forced ? CLI_EXIT_FORCED : 0;
        }
        if (cli_jbool(o, "forced")) {
                /* Not a clean stop: said so, with its own exit status. */
                printf("VM '%s' did not shut down within %u s; it was %s\n", name, timeout,
                       strcmp(how, "sigkill") == 0 ? "killed (SIGKILL)" : "terminated (SIGTERM)");
                fflush(stdout);
                json_object_put(o);
                return CLI_EXIT_FORCED;
        }
        if (strcmp(how, "agent") == 0) {
                printf("VM '%s' stopped (guest agent)\n", name);
                fflush(stdout);
        } else if (force && (strcmp(how, "sigterm") == 0 || strcmp(how, "sigkill") == 0)) {
                printf("VM '%s' stopped (forced: %s)\n", name, strcmp(how, "sigkill") == 0 ? "SIGKILL" : "SIGTERM");
                fflush(stdout);
        } else
                print_stopped(o, name);
        json_object_put(o);
        return 0;
}

int cmd_stop(struct cli_ctx *ctx, int argc, char **argv) {
        enum { OPT_TIMEOUT = 1, OPT_FORCE, OPT_MODE, OPT_JSON };
        static const struct option opts[] = {
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                { "force", no_argument, NULL, OPT_FORCE },
                { "mode", required_argument, NULL, OPT_MODE },
                { "json", no_argument, NULL, OPT_JSON },
                { NULL, 0, NULL, 0 },
        };
        unsigned timeout = 60;
        bool force = false, json = false;
        const char *mode = NULL;
        enum run_stop_mode m;
        int c, r;
        while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
                switch (c) {
                case OPT_TIMEOUT:
                        if ((r = parse_seconds(optarg, cli_usage(), &timeout)))
                                return r;
                        break;
                case OPT_FORCE: force = true; break;
                case OPT_JSON: json = true; break;
                case OPT_MODE:
                        if (run_stop_mode_parse(optarg, &m) < 0)
                                return cli_usage_error(cli_usage(), "--mode takes acpi or agent, not '%s'", optarg);
                        mode = optarg;
                        break;
                default: return cli_usage_error(cli_usage(), "unknown option");
                }
        }
        const char *name;
        if ((r = take_name(argc, argv, cli_usage(), &name)))
                return r;
        return do_stop(ctx, name, timeout, force, mode, json);
}

int cmd_restart(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = {
                { "timeout", required_argument, NULL, 't' },
                { NULL, 0, NULL, 0 },
        };
        unsigned timeout = 60;
        int c, r;
        while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
                if (c != 't')
                        return cli_usage_error(cli_usage(), "unknown option");
                if ((r = parse_seconds(optarg, cli_usage(), &timeout)))
                        return r;
        }
        const char *name;
        if ((r = take_name(argc, argv, cli_usage(), &name)))
                return r;
        bool keys = false;
        if ((r = cli_keys_unlock(ctx, name, true, &keys)))
                return r;
        json_object *b = body_new(), *o = NULL;
        json_object_object_add(b, "timeout", json_object_new_int64(timeout));
        r = vm_action(ctx, name, "restart", b, &o);
        if (keys)
                cli_keys_forget(ctx, name);
        if (r)
                return r;
        print_stopped(o, name);
        cli_print_warnings(o);
        json_object_put(o);
        printf("VM '%s' started\n", name);
        return 0;
}

int cmd_kill(struct cli_ctx *ctx, int argc, char **argv) {
        const char *name;
        json_object *o = NULL;
        int r = name_only(argc, argv, cli_usage(), &name);
        if (r || (r = vm_action(ctx, name, "kill", body_new(), &o)))
                return r;
        json_object_put(o);
        printf("VM '%s' killed\n", name);
        return 0;
}

static int pause_resume(struct cli_ctx *ctx, int argc, char **argv, bool pause) {
        const char *name;
        json_object *o = NULL;
        int r = name_only(argc, argv, pause ? cli_usage() : cli_usage(), &name);
        if (r || (r = vm_action(ctx, name, pause ? "pause" : "resume", body_new(), &o)))
                return r;
        json_object_put(o);
        printf("VM '%s' %s\n", name, pause ? "paused" : "resumed");
        return 0;
}

int cmd_pause(struct cli_ctx *ctx, int argc, char **argv) {
        return pause_resume(ctx, argc, argv, true);
}

int cmd_resume(struct cli_ctx *ctx, int argc, char **argv) {
        return pause_resume(ctx, argc, argv, false);
}

/* --- status / wait --- */

static const char *jstr_of(json_object *o, const char *key) {
        json_object *v = NULL;
        return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "-";
}

static void status_print_net(json_object *nets, json_object *gifs) {
        for (size_t i = 0; nets && i < json_object_array_length(nets); i++) {
                json_object *n = json_object_array_get_idx(nets, i), *f = NULL;
                printf("  network %s: %s (%s), %s, MAC %s\n", jstr_of(n, "name"), jstr_of(n, "mode"),
                       jstr_of(n, "backend"), jstr_of(n, "model"), jstr_of(n, "mac"));
                json_object_object_get_ex(n, "forwards", &f);
                for (size_t k = 0; f && k < json_object_array_length(f); k++)
                        printf("    forward %s\n", json_object_get_string(json_object_array_get_idx(f, k)));
        }
        for (size_t i = 0; gifs && i < json_object_array_length(gifs); i++) {
                json_object *g = json_object_array_get_idx(gifs, i), *a = NULL;
                printf("  guest %s (%s):", jstr_of(g, "name"), jstr_of(g, "mac"));
                json_object_object_get_ex(g, "addresses", &a);
                for (size_t k = 0; a && k < json_object_array_length(a); k++)
                        printf(" %s", json_object_get_string(json_object_array_get_idx(a, k)));
                putchar('\n');
        }
}

/* The text form, from the JSON `status --json` prints (run_state_to_json). */
static void status_print(json_object *o, const char *name) {
        const char *state = jstr_of(o, "state");
        enum run_state_kind k = RUN_STOPPED;
        bool active = run_state_from_name(state, &k) >= 0 && run_state_active(k),
             unsupervised = jbool_of(o, "unsupervised");
        json_object *v = NULL;
        printf("%s: %s%s\n", name, state, unsupervised ? " (unsupervised)" : "");
        if (active) {
                if (cli_jint(o, "monitor_pid") && !unsupervised)
                        printf("  monitor pid: %d\n", (int) cli_jint(o, "monitor_pid"));
                if (cli_jint(o, "qemu_pid"))
                        printf("  QEMU pid:    %d\n", (int) cli_jint(o, "qemu_pid"));
                if (cli_jint(o, "swtpm_pid"))
                        printf("  swtpm pid:   %d\n", (int) cli_jint(o, "swtpm_pid"));
                if (cli_jint(o, "started") > 0) {
                        long long up = (long long) time(NULL) - cli_jint(o, "started");
                        printf("  up:          %lld s\n", up < 0 ? 0 : up);
                }
                if (unsupervised)
                        printf("  its monitor ended: QMP still works; 'phyllo stop %s' stops it cleanly\n", name);
                json_object *disp = NULL;
                if (json_object_object_get_ex(o, "display", &disp) && disp)
                        printf("  display:     %s%s\n", cli_jstr(disp, "uri"),
                               strcmp(cli_jstr(disp, "type"), "vnc") == 0 ? " (any VNC viewer)" : " (phyllo view)");
                json_object *snd = NULL;
                if (json_object_object_get_ex(o, "sound", &snd) && snd) {
                        const char *why = jstr_of(snd, "why_none");
                        printf("  sound:       %s%s%s\n", jstr_of(snd, "backend"), strcmp(why, "-") ? ": no sound, " : "",
                               strcmp(why, "-") ? why : "");
                }
        }
        bool have_status = json_object_object_get_ex(o, "exit_status", &v) && v;
        int signal = (int) cli_jint(o, "exit_signal");
        if (have_status && cli_jint(o, "exit_status") >= 0 && !active)
                printf("  exit status: %d\n", (int) cli_jint(o, "exit_status"));
        if (signal > 0 && !active)
                printf("  killed by:   signal %d (SIG%s)\n", signal, sigabbrev_np(signal) ? sigabbrev_np(signal) : "?");
        /* How the last stop ended (issue 19): a forced power-off is not a clean stop. */
        const char *by = run_stopped_by_text(cli_jstr(o, "stopped_by"));
        if (by && !active)
                printf("  last stop:   %s\n", by);
        if (json_object_object_get_ex(o, "error", &v) && v)
                printf("  error:       %s\n", json_object_get_string(v));
        /* A guest's kernel panic (pvpanic): QEMU's GUEST_PANICKED, then its
         * stop with reason guest-panic, is the last guest event. */
        json_object *ge = NULL;
        if (json_object_object_get_ex(o, "guest_event", &ge) && ge &&
            (strcmp(jstr_of(ge, "event"), "GUEST_PANICKED") == 0 || strcmp(jstr_of(ge, "reason"), "guest-panic") == 0))
                printf("  guest:       its kernel panicked (%s, reason %s)\n", jstr_of(ge, "event"), jstr_of(ge, "reason"));
        if (json_object_object_get_ex(o, "log_tail", &v) && v)
                printf("  last log lines:\n%s\n", json_object_get_string(v));
        json_object *nets = NULL, *gifs = NULL;
        json_object_object_get_ex(o, "networks", &nets);
        json_object_object_get_ex(o, "guest_interfaces", &gifs);
        status_print_net(nets, gifs);
}

int cmd_status(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { "repair", no_argument, NULL, 'r' },
                                              { NULL, 0, NULL, 0 } };
        bool json = false, repair = false;
        int c, r;
        while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
                if (c == 'j')
                        json = true;
                else if (c == 'r')
                        repair = true;
                else
                        return cli_usage_error(cli_usage(), "unknown option");
        }
        const char *name;
        if ((r = take_name(argc, argv, cli_usage(), &name)))
                return r;
        json_object *o = NULL;
        /* A status only reads; --repair first cleans up after a crash or a
         * reboot (POST /v1/vms/NAME/reconcile: run_reconcile), as a start does. */
        if (repair) {
                if ((r = vm_action(ctx, name, "reconcile", json_object_new_object(), &o)))
                        return r;
                json_object_put(o);
                o = NULL;
        }
        if ((r = cli_call(ctx, "GET", NULL, &o, "/v1/vms/%s/status", name)))
                return r;
        if (json) {
                cli_print_json(o);
                return 0;
        }
        status_print(o, name);
        json_object_put(o);
        return 0;
}

int cmd_wait(struct cli_ctx *ctx, int argc, char **argv) {
        enum { OPT_FOR = 1, OPT_TIMEOUT };
        static const struct option opts[] = {
                { "for", required_argument, NULL, OPT_FOR },
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                { NULL, 0, NULL, 0 },
        };
        const char *want_s = NULL;
        unsigned timeout = 0;
        bool have_timeout = false;
        int c, r;
        while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
                switch (c) {
                case OPT_FOR: want_s = optarg; break;
                case OPT_TIMEOUT:
                        if ((r = parse_seconds(optarg, cli_usage(), &timeout)))
                                return r;
                        have_timeout = true;
                        break;
                default: return cli_usage_error(cli_usage(), "unknown option");
                }
        }
        if (!want_s)
                return cli_usage_error(cli_usage(), "--for is required");
        const char *name;
        if ((r = take_name(argc, argv, cli_usage(), &name)))
                return r;
        json_object *b = json_object_new_object(), *o = NULL;
        json_object_object_add(b, "for", json_object_new_string(want_s));
        if (have_timeout)
                json_object_object_add(b, "timeout", json_object_new_int64(timeout));
        if ((r = cli_call(ctx, "POST", b, &o, "/v1/vms/%s/wait", name)))
                return r;
        printf("%s: %s\n", name, cli_jstr(o, "state"));
        json_object_put(o);
        return 0;
}

/* --- logs --- */

/* Writes all of buf to stdout; false when the reader went away. */
static bool out_all(const char *buf, size_t n) {
        while (n > 0) {
                ssize_t k = write(STDOUT_FILENO, buf, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return false;
                buf += k;
                n -= (size_t) k;
        }
        return true;
}

/* --follow: through phyllod when it answers (a chunked reply that never
 * ends), else the library's follower here (inotify). */
static int logs_follow(struct cli_ctx *ctx, const char *name) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "/v1/vms/%s/logs?follow=1", name) < 0)
                return 1;
        bool direct = false;
        int r = cli_api_follow(ctx, path, STDOUT_FILENO, &direct);
        if (r || !direct)
                return r;
        struct ops_ctx oc;
        phy_error err = { 0 };
        _cleanup_(ops_log_follow_freep) struct ops_log_follow *f = NULL;
        if (cli_ops(ctx, &oc))
                return 1;
        if (ops_log_follow_open(&oc, name, &f, &err) < 0)
                return cli_fail(&err);
        /* Until interrupted, or until the reader of our output goes away
         * (POLLERR on a pipe: `phyllo logs -f | grep -m1` ends with grep). */
        struct pollfd p[2] = { { .fd = ops_log_follow_fd(f), .events = POLLIN }, { .fd = STDOUT_FILENO, .events = 0 } };
        char buf[16384];
        for (;;) {
                ssize_t k;
                while ((k = ops_log_follow_read(f, buf, sizeof buf, &err)) > 0)
                        if (!out_all(buf, (size_t) k))
                                return 0;
                if (k < 0)
                        return cli_fail(&err);
                int n = poll(p, 2, -1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 || (p[1].revents & (POLLERR | POLLHUP | POLLNVAL)))
                        return 0;
        }
}

int cmd_logs(struct cli_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = { { "follow", no_argument, NULL, 'f' }, { NULL, 0, NULL, 0 } };
        bool follow = false;
        int c, r;
        while ((c = cli_getopt(argc, argv, "f", opts)) != -1) {
                if (c != 'f')
                        return cli_usage_error(cli_usage(), "unknown option");
                follow = true;
        }
        const char *name;
        if ((r = take_name(argc, argv, cli_usage(), &name)))
                return r;
        if (follow)
                return logs_follow(ctx, name);
        json_object *o = NULL, *lines = NULL;
        if ((r = cli_call(ctx, "GET", NULL, &o, "/v1/vms/%s/logs", name)))
                return r;
        json_object_object_get_ex(o, "logs", &lines);
        bool good = true;
        for (size_t i = 0; good && i < json_object_array_length(lines); i++) {
                json_object *l = json_object_array_get_idx(lines, i);
                good = printf("[%s] %s\n", cli_jstr(l, "source"), cli_jstr(l, "line")) >= 0;
        }
        json_object_put(o);
        return good && fflush(stdout) == 0 ? 0 : 1;
}

/* --- view --- */


int cmd_view(struct cli_ctx *ctx, int argc, char **argv) {
        const char *name;
        int r = name_only(argc, argv, cli_usage(), &name);
        if (r)
                return r;
        /* The SPICE socket phyllod (or the library here) says we may open. */
        json_object *o = NULL;
        if ((r = cli_call(ctx, "GET", NULL, &o, "/v1/vms/%s/display", name)))
                return r;
        _cleanup_free_ char *uri = strdup(cli_jstr(o, "uri")), *addr = strdup(cli_jstr(o, "address"));
        bool vnc = strcmp(cli_jstr(o, "type"), "vnc") == 0;
        json_object_put(o);
        if (!uri || !addr)
                return 1;
        /* remote-viewer speaks SPICE and VNC alike. */
        _cleanup_free_ char *viewer = exec_find_in_path("remote-viewer");
        if (!viewer) {
                if (vnc)
                        fprintf(stderr, "phyllo: remote-viewer is not installed; install virt-viewer (apt-get install "
                                "virt-viewer), or connect any VNC viewer to %s (loopback only; from another "
                                "machine through 'ssh -L 5900:%s HOST')\n", addr, addr);
                else
                        fprintf(stderr, "phyllo: remote-viewer is not installed; install virt-viewer "
                                "(apt-get install virt-viewer), or connect any SPICE client to %s\n", uri);
                return 1;
        }
        char *args[] = { viewer, "--title", (char *) name, uri, NULL };
        extern char **environ;
        execve(viewer, args, environ);
        fprintf(stderr, "phyllo: cannot run '%s': %s\n", viewer, strerror(errno));
        return 1;
}

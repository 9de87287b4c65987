/* SPDX-License-Identifier: MIT */
/* The lifecycle: start, stop, kill, restart, pause, resume, wait, status;
 * logs, the serial console and the SPICE display of a running VM. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "ops.h"
#include "paths.h"
#include "runfile.h"
#include "host/host.h"
#include "net/net.h"
#include "qemu/qmp.h"
#include "qemu/argv.h"
#include "qemu/caps.h"
#include "qemu/tools.h"
#include "run/run.h"
#include "vm/env.h"
#include "vm/profile.h"
#include "vm/vm.h"

static json_object *display_json(struct ops_vm *vm);

static json_object *str_array(const strv *s) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < s->n; i++)
                json_object_array_add(a, json_object_new_string(s->v[i]));
        return a;
}

int ops_act(const struct ops_ctx *c, const char *name, const struct ops_action *a, json_object **ret,
            phy_error *err) {
        int r;
        if ((r = ops_name_check("VM name", name, err)) < 0)
                return r;
        /* One answer for a name that names no VM, whatever the action (a
         * stop of one is not "not running"); only whether it exists: a VM
         * whose definition no longer parses can still be stopped. */
        if ((r = vm_exists(c->home, name, err)) < 0)
                return r;
        const char *act = a->action;
        bool is_start = strcmp(act, "start") == 0, is_restart = strcmp(act, "restart") == 0;
        enum run_stop_mode mode = RUN_STOP_DEFAULT;
        if (a->mode && run_stop_mode_parse(a->mode, &mode) < 0)
                return phy_error_usage(err, "the stop mode is default, acpi or agent, not '%s'", a->mode);
        _cleanup_run_state_ struct run_state st = { 0 };
        json_object *o = json_object_new_object();
        bool was = false, reported = false;
        if (is_start || is_restart) {
                if (is_restart) {
                        if ((r = run_stop(c->home, name, a->timeout, false, &was, err)) < 0)
                                goto fail;
                        json_object_object_add(o, "was_running", json_object_new_boolean(was));
                }
                _cleanup_strv_ strv warnings = { 0 };
                struct run_start_opts so = { .root = c->root, .home = c->home, .name = name, .paused = a->paused,
                                             .ret_state = &st.state, .caller_exits = c->exits_after,
                                             .tcg_warn_once = true };
                if ((r = ops_boot_once_check(c, name, is_start ? a->boot_once : NULL, &so.boot_once_cdrom, err)) < 0)
                        goto fail;
                if ((r = run_start(&so, &warnings, err)) < 0)
                        goto fail;
                reported = true;
                json_object_object_add(o, "warnings", str_array(&warnings));
        } else if (strcmp(act, "stop") == 0) {
                const char *ended_by = NULL;
                if ((r = run_stop_via(c->home, name, a->timeout, a->force, mode, &was, &ended_by, err)) < 0)
                        goto fail;
                json_object_object_add(o, "was_running", json_object_new_boolean(was));
                if (ended_by) {
                        json_object_object_add(o, "stopped_by", json_object_new_string(ended_by));
                        /* Asked to shut down, it did not within the timeout: said
                         * so, not passed off as a clean stop. */
                        bool forced = !a->force && (strcmp(ended_by, "sigterm") == 0 ||
                                                    strcmp(ended_by, "sigkill") == 0);
                        json_object_object_add(o, "forced", json_object_new_boolean(forced));
                        json_object_object_add(o, "timeout", json_object_new_int64(a->timeout));
                }
        } else if (strcmp(act, "kill") == 0) {
                if ((r = run_kill(c->home, name, err)) < 0)
                        goto fail;
        } else if (strcmp(act, "pause") == 0) {
                if ((r = run_pause(c->home, name, err)) < 0)
                        goto fail;
        } else if (strcmp(act, "resume") == 0) {
                if ((r = run_resume(c->home, name, err)) < 0)
                        goto fail;
        } else if (strcmp(act, "reconcile") == 0) {
                /* The repairs a read never makes (run_reconcile): `phyllo status --repair`. */
                _cleanup_vm_def_ struct vm_def d = { 0 };
                if ((r = vm_load_by_name(c->home, name, &d, err)) < 0 ||
                    (r = run_reconcile(c->home, name, NULL, err)) < 0)
                        goto fail;
        } else {
                r = phy_error_set(err, ENOENT, "no action '%s'; use start, stop, kill, pause, resume, restart or "
                                  "reconcile", act);
                goto fail;
        }
        /* The state after the action, as `phyllo status --json` shows it. */
        json_object *x = json_object_new_object();
        json_object_object_add(x, "name", json_object_new_string(name));
        json_object_object_add(x, "action", json_object_new_string(act));
        phy_error e2 = { 0 };
        /* A start's is the one its monitor reported, as it wrote it to
         * state.json just before (not read back while the monitor execs). */
        if (reported || run_state_get(c->home, name, &st, &e2) >= 0)
                json_object_object_add(x, "state", json_object_new_string(run_state_name(st.state)));
        json_object_object_foreach(o, k, v)
                json_object_object_add(x, k, json_object_get(v));
        json_object_put(o);
        *ret = x;
        return 0;
fail:
        json_object_put(o);
        return r;
}

int ops_status(const struct ops_ctx *c, const char *name, json_object **ret, phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        _cleanup_run_state_ struct run_state st = { 0 };
        int r;
        if ((r = ops_vm_open(c, name, OPS_READ, &vm, err)) < 0 || (r = run_state_get(c->home, name, &st, err)) < 0)
                return r;
        /* NICs, and the guest's addresses when its agent answers.  The NICs
         * as the VM runs them: the resolved model (a windows11 NIC left unset
         * is the profile's e1000e), or the definition when it does not
         * resolve on this host now. */
        _cleanup_vm_def_ struct vm_def m = { 0 };
        struct ops_env *e = NULL;
        phy_error e2 = { 0 };
        bool resolved = ops_env_get(c, false, &e, &e2) >= 0 &&
                        vm_model_resolve(&vm.def, &ops_env_of(e)->host, NULL, &m, &e2) >= 0;
        ops_env_put(e);
        json_object *net = net_status_json(resolved ? &m : &vm.def, run_state_active(st.state) ? vm.run_dir : NULL),
                    *nets = NULL, *gifs = NULL;
        json_object_object_get_ex(net, "networks", &nets);
        json_object_object_get_ex(net, "guest_interfaces", &gifs);
        json_object *o = run_state_to_json(&st);
        json_object_object_add(o, "name", json_object_new_string(name));
        /* Where a viewer connects (issue 19): the SPICE socket or VNC's address. */
        json_object_object_add(o, "display", run_state_active(st.state) ? display_json(&vm) : NULL);
        json_object_object_add(o, "networks", json_object_get(nets));
        if (gifs)
                json_object_object_add(o, "guest_interfaces", json_object_get(gifs));
        json_object_put(net);
        *ret = o;
        return 0;
}

int ops_wait(const struct ops_ctx *c, const char *name, const char *state, int timeout_s, json_object **ret,
             phy_error *err) {
        enum run_state_kind want;
        int r;
        if ((r = ops_name_check("VM name", name, err)) < 0 || (r = vm_exists(c->home, name, err)) < 0)
                return r;
        if (!state || run_state_from_name(state, &want) < 0 ||
            (want != RUN_STOPPED && want != RUN_RUNNING && want != RUN_PAUSED))
                return phy_error_usage(err, "a VM can be waited for until stopped, running or paused, not '%s'",
                                     state ? state : "");
        _cleanup_run_state_ struct run_state st = { 0 };
        if ((r = run_wait(c->home, name, want, timeout_s < 0 ? -1 : timeout_s * 1000, &st, err)) < 0)
                return r;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "state", json_object_new_string(run_state_name(st.state)));
        *ret = o;
        return 0;
}

/* ---- logs ---- */

int ops_log_paths(const struct ops_ctx *c, const char *name, char **ret_dir, char *ret_paths[3], phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        int r;
        if ((r = ops_vm_open(c, name, OPS_READ, &vm, err)) < 0)
                return r;
        static const char *const files[3] = { "console.log.1", "console.log", "qemu.log" };
        for (size_t i = 0; i < 3; i++)
                if (asprintf(&ret_paths[i], "%s/%s", vm.run_dir, files[i]) < 0) {
                        while (i > 0)
                                free(ret_paths[--i]);
                        return phy_error_set(err, ENOMEM, "out of memory");
                }
        *ret_dir = TAKE_PTR(vm.run_dir);
        return 0;
}

/* Each line of path (its last one even without a newline), CR/LF cut. */
static int log_lines(const char *path, const char *source, json_object *arr, phy_error *err) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0 : phy_error_set(err, errno, "cannot read '%s': %s", path, strerror(errno));
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, f)) > 0) {
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        line[--n] = '\0';
                json_object *o = json_object_new_object();
                json_object_object_add(o, "source", json_object_new_string(source));
                json_object_object_add(o, "line", json_object_new_string_len(line, (int) n));
                json_object_array_add(arr, o);
        }
        return 0;
}

int ops_logs(const struct ops_ctx *c, const char *name, json_object **ret, phy_error *err) {
        _cleanup_free_ char *dir = NULL;
        char *paths[3] = { 0 };
        int r = ops_log_paths(c, name, &dir, paths, err);
        if (r < 0)
                return r;
        static const char *const tags[3] = { "console", "console", "qemu" };
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < 3; i++) {
                if (r >= 0)
                        r = log_lines(paths[i], tags[i], arr, err);
                free(paths[i]);
        }
        if (r < 0) {
                json_object_put(arr);
                return r;
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "logs", arr);
        *ret = o;
        return 0;
}

/* ---- console, display ---- */

int ops_console_open(const struct ops_ctx *c, const char *name, int *ret_fd, phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        int r = ops_vm_open(c, name, OPS_READ, &vm, err);
        return r < 0 ? r : run_console_connect(c->home, name, ret_fd, err);
}

/* The SPICE socket QEMU made in <run_dir>/spice, its own directory, which
 * the run dir's spice.sock (made by the monitor) points to: each step is
 * opened without following a link QEMU's uid could have planted. */
static bool spice_socket_there(const char *run_dir) {
        _cleanup_close_ int dfd = open(run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        _cleanup_close_ int sfd = dfd < 0 ? -1 : openat(dfd, "spice", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        struct stat ls, ss;
        return sfd >= 0 && fstatat(dfd, "spice.sock", &ls, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(ls.st_mode) &&
               fstatat(sfd, "spice.sock", &ss, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(ss.st_mode);
}

/* A running VM's VNC server as QEMU says (query-vnc: QEMU picked the port
 * from 5900 up, on loopback): "127.0.0.1:5900" into buf, or false. */
static bool vnc_address(struct ops_vm *vm, char *buf, size_t len) {
        _cleanup_qmp_ struct qmp *q = NULL;
        phy_error e = { 0 };
        json_object *ret = NULL, *v = NULL;
        if (ops_vm_qmp(vm, &q, &e) < 0 || !q || qmp_command(q, "query-vnc", NULL, 5000, &ret, &e) < 0)
                return false;
        bool on = json_object_object_get_ex(ret, "enabled", &v) && json_object_get_boolean(v);
        const char *host = json_object_object_get_ex(ret, "host", &v) ? json_object_get_string(v) : NULL;
        const char *port = json_object_object_get_ex(ret, "service", &v) ? json_object_get_string(v) : NULL;
        if (on && host && port)
                snprintf(buf, len, "%s:%s", host, port);
        json_object_put(ret);
        return on && host && port;
}

/* {"type": "spice"|"vnc", "uri", and "spice_socket" or "address"} of a
 * running VM's display, NULL when it has none a client can reach. */
static json_object *display_json(struct ops_vm *vm) {
        _cleanup_free_ char *sock = NULL;
        char addr[128], uri[160];
        if (asprintf(&sock, "%s/spice.sock", vm->run_dir) < 0)
                return NULL;
        json_object *o = json_object_new_object();
        if (spice_socket_there(vm->run_dir)) {
                snprintf(uri, sizeof uri, "spice+unix://%s", sock);
                json_object_object_add(o, "type", json_object_new_string("spice"));
                json_object_object_add(o, "spice_socket", json_object_new_string(sock));
        } else if (vnc_address(vm, addr, sizeof addr)) {
                snprintf(uri, sizeof uri, "vnc://%s", addr);
                json_object_object_add(o, "type", json_object_new_string("vnc"));
                json_object_object_add(o, "address", json_object_new_string(addr));
        } else {
                json_object_put(o);
                return NULL;
        }
        json_object_object_add(o, "uri", json_object_new_string(uri));
        return o;
}

int ops_display(const struct ops_ctx *c, const char *name, json_object **ret, phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        _cleanup_run_state_ struct run_state st = { 0 };
        int r;
        if ((r = ops_vm_open(c, name, OPS_READ, &vm, err)) < 0 || (r = run_state_get(c->home, name, &st, err)) < 0)
                return r;
        if (!run_state_active(st.state))
                return phy_error_set(err, ESRCH, "VM '%s' is not running; start it with 'phyllo start %s'", name,
                                     name);
        json_object *o = display_json(&vm), *v = NULL;
        if (!o)
                return phy_error_set(err, ENOENT, "VM '%s' has no SPICE display (no socket in '%s') and no VNC "
                                     "server for a viewer; set 'type = spice' in its [display] with 'phyllo edit %s'",
                                     name, vm.run_dir, name);
        /* A socket is handed out as a path: only to a caller who may connect to it. */
        if (json_object_object_get_ex(o, "spice_socket", &v) && !ops_caller_may(c, json_object_get_string(v), W_OK)) {
                r = phy_error_set(err, EACCES, "uid %u may not connect to the SPICE display of VM '%s' ('%s')",
                                  (unsigned) c->uid, name, json_object_get_string(v));
                json_object_put(o);
                return r;
        }
        json_object_object_add(o, "name", json_object_new_string(name));
        *ret = o;
        return 0;
}

/* ---- screenshot ---- */

/* QEMU writes the picture into a memfd of ours passed with add-fd (QEMU's
 * user never names a host path, nothing is written on disk); a write-only
 * reopening of it, since QEMU matches the fd's access mode to its open. */
int ops_screenshot(const struct ops_ctx *c, const char *name, json_object **ret, phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { .lock_fd = -1 };
        _cleanup_qmp_ struct qmp *q = NULL;
        int r;
        if ((r = ops_vm_open(c, name, OPS_READ, &vm, err)) < 0 || (r = ops_vm_qmp(&vm, &q, err)) < 0)
                return r;
        if (!q)
                return phy_error_set(err, ESRCH, "VM '%s' is not running; start it with 'phyllo start %s'", name,
                                     name);
        _cleanup_close_ int mfd = memfd_create("phyllome-screendump", MFD_CLOEXEC);
        char self[64];
        snprintf(self, sizeof self, "/proc/self/fd/%d", mfd);
        _cleanup_close_ int wfd = mfd < 0 ? -1 : open(self, O_WRONLY | O_CLOEXEC);
        if (wfd < 0)
                return phy_error_set(err, errno, "cannot make a buffer for the screenshot of VM '%s': %s", name,
                                     strerror(errno));
        json_object *added = NULL, *id = NULL;
        json_object *a = json_object_new_object();
        json_object_object_add(a, "opaque", json_object_new_string("phyllome screenshot"));
        if ((r = qmp_command_fd(q, "add-fd", a, wfd, 5000, &added, err)) < 0)
                return phy_error_prefix(err, "cannot take a screenshot of VM '%s'", name);
        int64_t set = json_object_object_get_ex(added, "fdset-id", &id) ? json_object_get_int64(id) : -1;
        json_object_put(added);
        if (set < 0)
                return phy_error_set(err, EBADMSG, "cannot take a screenshot of VM '%s': QEMU's add-fd gave no "
                                     "fdset-id", name);
        char file[64];
        snprintf(file, sizeof file, "/dev/fdset/%" PRId64, set);
        const char *format = "png";
        a = json_object_new_object();
        json_object_object_add(a, "filename", json_object_new_string(file));
        json_object_object_add(a, "format", json_object_new_string("png"));
        phy_error e2 = { 0 };
        if ((r = qmp_command(q, "screendump", a, 10000, NULL, &e2)) == -EREMOTEIO) {
                /* A QEMU without PNG: the PPM it always writes. */
                format = "ppm";
                a = json_object_new_object();
                json_object_object_add(a, "filename", json_object_new_string(file));
                r = qmp_command(q, "screendump", a, 10000, NULL, &e2);
        }
        a = json_object_new_object();
        json_object_object_add(a, "fdset-id", json_object_new_int64(set));
        phy_error e3 = { 0 };
        (void) qmp_command(q, "remove-fd", a, 5000, NULL, &e3);
        if (r < 0 && (vm.def.gpu == VM_GPU_NONE || (vm.def.gpu == VM_GPU_UNSET && vm.def.display == VM_DISPLAY_NONE)))
                return phy_error_set(err, ENODEV, "cannot take a screenshot of VM '%s': it has no graphics card (a VM "
                                     "without a display gets none); give it one with '[gpu] type = std' "
                                     "('phyllo edit %s') and restart it", name, name);
        if (r < 0) {
                *err = e2;
                return phy_error_prefix(err, "cannot take a screenshot of VM '%s'", name);
        }
        struct stat sb;
        if (fstat(mfd, &sb) < 0 || sb.st_size <= 0 || sb.st_size > OPS_SCREENSHOT_MAX)
                return phy_error_set(err, EIO, "QEMU wrote no usable screenshot of VM '%s' (%lld bytes)", name,
                                     (long long) sb.st_size);
        /* Read, not mapped: QEMU still holds the memfd and may shrink it, and a
         * mapping past its end would kill phyllod with SIGBUS. */
        _cleanup_free_ char *pic = malloc((size_t) sb.st_size);
        size_t got = 0;
        for (ssize_t k = 1; pic && got < (size_t) sb.st_size && k > 0;) {
                k = pread(mfd, pic + got, (size_t) sb.st_size - got, (off_t) got);
                if (k < 0 && errno == EINTR)
                        k = 1;
                else if (k > 0)
                        got += (size_t) k;
        }
        if (!pic || got != (size_t) sb.st_size)
                return phy_error_set(err, pic ? EIO : ENOMEM, "cannot read the screenshot of VM '%s'%s", name,
                                     pic ? ": it changed while it was read" : "");
        _cleanup_free_ char *b64 = str_base64(pic, got);
        if (!b64)
                return phy_error_set(err, ENOMEM, "out of memory");
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "format", json_object_new_string(format));
        json_object_object_add(o, "size", json_object_new_int64(sb.st_size));
        json_object_object_add(o, "data", json_object_new_string(b64));
        *ret = o;
        return 0;
}

/* The exact command line a start would run (without the fds a start
 * passes), as {name, accel, argv, warnings}. */
int ops_argv(const struct ops_ctx *c, const char *name, const struct ops_argv_opts *o, json_object **ret,
             phy_error *err) {
        _cleanup_vm_def_ struct vm_def def = { 0 };
        _cleanup_vm_model_ struct vm_model model = { 0 };
        _cleanup_qemu_caps_ struct qemu_caps caps = { 0 };
        _cleanup_(qemu_tools_done) struct qemu_tools tools = { 0 };
        _cleanup_(host_facts_done) struct host_facts host = { 0 };
        _cleanup_free_ char *cache = NULL, *vmdir = NULL, *rundir = NULL, *audio_server = NULL, *audio_why = NULL;
        _cleanup_strv_ strv args = { 0 };
        _cleanup_strv_ strv warnings = { 0 };
        int r;
        if ((r = ops_name_check("VM name", name, err)) < 0 || (r = vm_load_by_name(c->home, name, &def, err)) < 0 ||
            (r = host_facts_load(c->root, &host, err)) < 0 || (r = qemu_tools_find(&tools, err)) < 0)
                return r;
        if (o->qemu) {
                free(tools.qemu);
                if (!(tools.qemu = strdup(o->qemu)))
                        return phy_error_set(err, ENOMEM, "out of memory");
        }
        if (!tools.qemu)
                return phy_error_set(err, ENOENT, "no QEMU found; install it with 'apt-get install qemu-system-x86'");
        if ((r = phy_cache_dir(&cache, err)) < 0 || (r = qemu_caps_probe(tools.qemu, cache, &caps, err)) < 0 ||
            (r = vm_model_make(&def, &host, &caps, NULL, &model, err)) < 0)
                return r;
        vmdir = vm_dir(c->home, name);
        /* The boot order a start would choose (CD-ROMs after a disk with an OS). */
        bool boot_once_cdrom = false;
        if (!vmdir || (r = ops_boot_once_check(c, name, o->boot_once, &boot_once_cdrom, err)) < 0)
                return vmdir ? r : phy_error_set(err, ENOMEM, "out of memory");
        vm_model_probe_boot(&model, vmdir);
        if ((r = run_dir_path(c->home, name, &rundir, err)) < 0)
                return r;
        struct qemu_argv_env env;
        qemu_argv_env_init(&env);
        env.host = &host;
        env.caps = &caps;
        env.tools = &tools;
        env.vm_dir = vmdir;
        env.run_dir = rundir;
        env.paused = o->paused;
        env.force_tcg = o->tcg;
        env.boot_once_cdrom = boot_once_cdrom;
        /* The sound server the start would find (src/run/sound.c). */
        if (vm_display_is_window(model.vm.display) && model.vm.sound != VM_SOUND_NONE &&
            (r = run_sound_find(&audio_server, &audio_why, err)) < 0)
                return r;
        env.audio_server = audio_server;
        env.audio_why = audio_why;
        if ((r = qemu_argv_build(&model, &env, &args, &warnings, err)) < 0)
                return r;
        json_object *x = json_object_new_object();
        json_object_object_add(x, "name", json_object_new_string(name));
        json_object_object_add(x, "accel", json_object_new_string(qemu_argv_use_kvm(&env) ? "kvm" : "tcg"));
        json_object_object_add(x, "argv", str_array(&args));
        json_object_object_add(x, "warnings", str_array(&warnings));
        *ret = x;
        return 0;
}

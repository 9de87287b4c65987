/* SPDX-License-Identifier: MIT */
#include "caps.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "exec.h"
#include "fileio.h"
#include "host/qemu-modules.h"
#include "qmp.h"

extern char **environ;

/* 2: displays, audiodevs and absent devices; the cache key has the modules. */
#define CAPS_FORMAT 2
/* Each QMP query of the probe; -machine none answers in milliseconds. */
#define PROBE_CMD_TIMEOUT_MS 20000
/* How long QEMU gets to exit after 'quit' before it is killed. */
#define PROBE_EXIT_TIMEOUT_MS 10000
/* QEMU restarted after it died creating a device whose module is missing;
 * each restart marks one device absent, so this bounds a very broken QEMU. */
#define PROBE_RESTARTS_MAX 8

/* The devices the VM model may use; their properties are listed so the argv
 * builder can ask for one (e.g. virtio-balloon-pci.free-page-reporting). */
const char *const qemu_caps_probed_devices[] = {
        "virtio-balloon-pci", "virtio-blk-pci", "virtio-scsi-pci", "scsi-hd", "scsi-cd", "nvme",
        "virtio-net-pci", "virtio-vga", "virtio-vga-gl", "virtio-gpu-pci", "virtio-gpu-gl-pci",
        "virtio-sound-pci", "ich9-intel-hda", "hda-duplex", "hda-output", "tpm-crb", "tpm-tis",
        "qemu-xhci", "usb-tablet", "virtio-keyboard-pci", "virtio-tablet-pci", "virtio-mouse-pci",
        "virtio-rng-pci", "virtio-serial-pci", "virtserialport", "pcie-root-port", "vfio-pci",
        "intel-iommu", "virtio-iommu-pci", "vhost-user-fs-pci", "ide-cd", "ide-hd", "usb-host",
        NULL,
};

const struct qemu_feature qemu_features[] = {
        { "free-page-reporting", "virtio-balloon-pci", "free-page-reporting", "5.1",
          "the balloon hands the memory a guest frees back to the host", NULL },
        { "pvpanic", "pvpanic", NULL, "1.5",
          "a guest's kernel panic is reported: GUEST_PANICKED, then a stop with reason guest-panic", NULL },
        { "vmcoreinfo", "vmcoreinfo", NULL, "2.11",
          "the guest kernel's crash notes, for a guest memory dump", NULL },
        { "virtio-sound", "virtio-sound-pci", NULL, "8.2",
          "virtio sound: [sound] type = virtio, the linux profile's default and an option for Windows", NULL },
        { "virtio-gpu-blob", "virtio-vga-gl", "hostmem", "9.2",
          "3D with blob resources in host-visible memory: virtio-vga-gl blob=true,hostmem=",
          "QEMU must be built with virglrenderer 1.0 or later: Debian's QEMU 10.0 (bookworm-backports) is built with "
          "Debian 12's 0.10.4 and refuses blob=true with virgl (\"old virglrenderer, blob resources unsupported\"), "
          "although its virtio-vga-gl lists hostmem and blob" },
        { "virtio-gpu-venus", "virtio-vga-gl", "venus", "9.2", "Vulkan in the guest: virtio-vga-gl venus=true",
          "venus needs virglrenderer 1.0 or later and DRM native contexts 1.1; Debian 12 ships 0.10.4" },
        { "run-with-user", NULL, NULL, "9.1", "QEMU drops to a user itself: -run-with user=",
          "QEMU never starts as root here: it is started as the VM's own uid, Landlock applied, before exec" },
};
const size_t qemu_features_n = ELEMENTSOF(qemu_features);

bool qemu_caps_has_feature(const struct qemu_caps *c, const struct qemu_feature *f) {
        if (!f->device)
                return false;   /* a command-line option: not probed */
        return f->prop ? qemu_caps_has_prop(c, f->device, f->prop) : qemu_caps_has_device(c, f->device);
}

const struct qemu_feature *qemu_feature_of_device(const char *type) {
        for (size_t i = 0; i < qemu_features_n; i++)
                if (qemu_features[i].device && !qemu_features[i].prop && strcmp(qemu_features[i].device, type) == 0)
                        return &qemu_features[i];
        return NULL;
}

void qemu_migration_blocker_hint(phy_error *err) {
        /* The blocking device's type, as QEMU names it; what the definition says instead. */
        static const struct {
                const char *type, *what;
        } known[] = {
                { "virtio-sound-device", "its virtio sound device (QEMU cannot save its state): stop the VM first, "
                                         "or set [sound] type = hda for a VM that is snapshotted or migrated while it runs" },
        };
        if (!strstr(err->message, "non-migratable device"))
                return;
        for (size_t i = 0; i < ELEMENTSOF(known); i++) {
                if (!strstr(err->message, known[i].type))
                        continue;
                size_t n = strlen(err->message);
                snprintf(err->message + n, sizeof err->message - n, "; the device is %s", known[i].what);
                return;
        }
}

void qemu_caps_done(struct qemu_caps *c) {
        if (!c)
                return;
        free(c->binary);
        free(c->version);
        strv *lists[] = { &c->machines, &c->devices, &c->accels, &c->props, &c->displays, &c->audiodevs,
                          &c->absent };
        for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
                if (c->blob)
                        free(lists[i]->v);      /* the strings are the blob's */
                else
                        strv_done(lists[i]);
        }
        free(c->blob);
        *c = (struct qemu_caps) { 0 };
}

bool qemu_caps_has_machine(const struct qemu_caps *c, const char *machine) {
        return strv_contains(&c->machines, machine);
}

bool qemu_caps_has_device(const struct qemu_caps *c, const char *type) {
        return strv_contains(&c->devices, type);
}

bool qemu_caps_has_accel(const struct qemu_caps *c, const char *accel) {
        return strv_contains(&c->accels, accel);
}

bool qemu_caps_has_display(const struct qemu_caps *c, const char *display) {
        return strv_contains(&c->displays, display);
}

bool qemu_caps_has_audiodev(const struct qemu_caps *c, const char *driver) {
        return strv_contains(&c->audiodevs, driver);
}

/* The type an absent device lacks ("virtio-gpu-gl-device"), or NULL. */
static const char *absent_lacks(const struct qemu_caps *c, const char *type, char *buf, size_t len) {
        size_t tl = strlen(type);
        for (size_t i = 0; i < c->absent.n; i++) {
                const char *a = c->absent.v[i];
                if (strncmp(a, type, tl) == 0 && a[tl] == ' ' && strcmp(a + tl + 1, "-") != 0) {
                        snprintf(buf, len, "%s", a + tl + 1);
                        return buf;
                }
        }
        return NULL;
}

bool qemu_caps_lacks(const struct qemu_caps *c, const char *vm, const char *kind, const char *name, char *buf,
                     size_t len) {
        bool has = strcmp(kind, "device") == 0    ? qemu_caps_has_device(c, name)
                 : strcmp(kind, "display") == 0 ? qemu_caps_has_display(c, name)
                 : strcmp(kind, "audio") == 0   ? qemu_caps_has_audiodev(c, name)
                                                 : true;
        if (has)
                return false;
        /* An absent device names the type it lacks; that type's module is the one to install. */
        char inner[128];
        const char *lacks = strcmp(kind, "device") == 0 ? absent_lacks(c, name, inner, sizeof inner) : NULL;
        const struct host_qemu_module *m = lacks ? host_qemu_module_providing("device", lacks) : NULL;
        if (!m)
                m = host_qemu_module_providing(kind, name);
        if (!m)
                return false;
        const char *what = strcmp(kind, "display") == 0 ? "-display " : strcmp(kind, "audio") == 0 ? "-audiodev " : "";
        snprintf(buf, len, "VM '%s' asks for %s%s (%s), which this QEMU lacks: install %s (QEMU's module %s is not installed)",
                 vm, what, name, m->feature, m->package, m->file);
        return true;
}

bool qemu_caps_has_prop(const struct qemu_caps *c, const char *type, const char *prop) {
        size_t tl = strlen(type);
        for (size_t i = 0; i < c->props.n; i++) {
                const char *p = c->props.v[i];
                if (strncmp(p, type, tl) == 0 && p[tl] == '.' && strcmp(p + tl + 1, prop) == 0)
                        return true;
        }
        return false;
}

/* ---- JSON form ---------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sorted, so the cache and fixtures diff cleanly between probes. */
static void strv_sort(strv *s) {
        if (s->n > 1)
                qsort(s->v, s->n, sizeof *s->v, cmp_str);
}

static json_object *strv_to_json(const strv *s) {
        json_object *a = json_object_new_array_ext((int) s->n);
        for (size_t i = 0; i < s->n; i++)
                json_object_array_add(a, json_object_new_string(s->v[i]));
        return a;
}

static json_object *caps_to_object(const struct qemu_caps *c) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "format", json_object_new_int(CAPS_FORMAT));
        json_object_object_add(o, "binary", json_object_new_string(c->binary ? c->binary : ""));
        json_object_object_add(o, "version", json_object_new_string(c->version ? c->version : ""));
        json_object_object_add(o, "machines", strv_to_json(&c->machines));
        json_object_object_add(o, "accels", strv_to_json(&c->accels));
        json_object_object_add(o, "devices", strv_to_json(&c->devices));
        json_object_object_add(o, "props", strv_to_json(&c->props));
        json_object_object_add(o, "displays", strv_to_json(&c->displays));
        json_object_object_add(o, "audiodevs", strv_to_json(&c->audiodevs));
        json_object_object_add(o, "absent", strv_to_json(&c->absent));
        return o;
}

char *qemu_caps_to_json(const struct qemu_caps *c) {
        json_object *o = caps_to_object(c);
        char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return s;
}

static int json_to_strv(const char *path, json_object *o, const char *key, strv *ret, phy_error *err) {
        json_object *a = NULL;
        if (!json_object_object_get_ex(o, key, &a) || !json_object_is_type(a, json_type_array))
                return phy_error_set(err, EINVAL, "%s: key '%s' is missing or not an array; re-probe with 'phyllo caps --refresh'",
                                     path, key);
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *e = json_object_array_get_idx(a, i);
                if (!json_object_is_type(e, json_type_string))
                        return phy_error_set(err, EINVAL, "%s: element %zu of '%s' is not a string", path, i, key);
                if (strv_push(ret, json_object_get_string(e)) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
        }
        return 0;
}

static const char *obj_str(json_object *o, const char *key) {
        json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static int caps_from_object(const char *path, json_object *o, struct qemu_caps *ret, phy_error *err) {
        json_object *fmt = NULL;
        if (!json_object_is_type(o, json_type_object))
                return phy_error_set(err, EINVAL, "%s: not a JSON object", path);
        if (!json_object_object_get_ex(o, "format", &fmt) || !json_object_is_type(fmt, json_type_int) ||
            json_object_get_int(fmt) != CAPS_FORMAT)
                return phy_error_set(err, EINVAL, "%s: key 'format' must be %d", path, CAPS_FORMAT);
        _cleanup_qemu_caps_ struct qemu_caps c = { 0 };
        const char *b = obj_str(o, "binary"), *v = obj_str(o, "version");
        if (!b)
                return phy_error_set(err, EINVAL, "%s: key 'binary' is missing or not a string", path);
        c.binary = strdup(b);
        c.version = strdup(v ? v : "");
        if (!c.binary || !c.version)
                return phy_error_set(err, ENOMEM, "out of memory");
        int r;
        if ((r = json_to_strv(path, o, "machines", &c.machines, err)) < 0 ||
            (r = json_to_strv(path, o, "accels", &c.accels, err)) < 0 ||
            (r = json_to_strv(path, o, "devices", &c.devices, err)) < 0 ||
            (r = json_to_strv(path, o, "props", &c.props, err)) < 0 ||
            (r = json_to_strv(path, o, "displays", &c.displays, err)) < 0 ||
            (r = json_to_strv(path, o, "audiodevs", &c.audiodevs, err)) < 0 ||
            (r = json_to_strv(path, o, "absent", &c.absent, err)) < 0)
                return r;
        *ret = c;
        c = (struct qemu_caps) { 0 };
        return 0;
}

static int load_object(const char *path, json_object **ret, phy_error *err) {
        _cleanup_free_ char *text = NULL;
        int r = file_read_all(path, 0, &text, NULL);
        if (r < 0)
                return phy_error_set(err, r, "cannot read '%s': %s", path, strerror(-r));
        json_tokener *tok = json_tokener_new();
        if (!tok)
                return phy_error_set(err, ENOMEM, "out of memory");
        json_object *o = json_tokener_parse_ex(tok, text, (int) strlen(text));
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        json_tokener_free(tok);
        if (!o || jerr != json_tokener_success) {
                json_object_put(o);
                return phy_error_set(err, EINVAL, "%s: not valid JSON (%s)", path,
                                     json_tokener_error_desc(jerr == json_tokener_continue ? json_tokener_error_parse_eof : jerr));
        }
        *ret = o;
        return 0;
}

int qemu_caps_load_file(const char *path, struct qemu_caps *ret, phy_error *err) {
        json_object *o = NULL;
        int r = load_object(path, &o, err);
        if (r < 0)
                return r;
        r = caps_from_object(path, o, ret, err);
        json_object_put(o);
        return r;
}

/* ---- the probe ---------------------------------------------------------- */

static int strv_add_unique(strv *s, const char *v) {
        return strv_contains(s, v) ? 0 : strv_push(s, v);
}

static int query_machines(struct qmp *q, struct qemu_caps *c, phy_error *err) {
        json_object *ret = NULL;
        int r = qmp_command(q, "query-machines", NULL, PROBE_CMD_TIMEOUT_MS, &ret, err);
        if (r < 0)
                return r;
        for (size_t i = 0; r >= 0 && i < json_object_array_length(ret); i++) {
                json_object *m = json_object_array_get_idx(ret, i);
                const char *name = obj_str(m, "name"), *alias = obj_str(m, "alias");
                if (name)
                        r = strv_add_unique(&c->machines, name);
                if (r >= 0 && alias)
                        r = strv_add_unique(&c->machines, alias);
        }
        json_object_put(ret);
        return r < 0 ? phy_error_set(err, r, "out of memory") : 0;
}

/* Non-abstract QOM types implementing `iface`, with `strip` cut off the end. */
static int list_types(struct qmp *q, const char *iface, const char *strip, strv *out, phy_error *err) {
        json_object *args = json_object_new_object(), *ret = NULL;
        json_object_object_add(args, "implements", json_object_new_string(iface));
        json_object_object_add(args, "abstract", json_object_new_boolean(0));
        int r = qmp_command(q, "qom-list-types", args, PROBE_CMD_TIMEOUT_MS, &ret, err);
        if (r < 0)
                return r;
        size_t sl = strip ? strlen(strip) : 0;
        for (size_t i = 0; r >= 0 && i < json_object_array_length(ret); i++) {
                const char *name = obj_str(json_object_array_get_idx(ret, i), "name");
                if (!name)
                        continue;
                size_t nl = strlen(name);
                if (sl && nl > sl && strcmp(name + nl - sl, strip) == 0)
                        r = strv_pushf(out, "%.*s", (int) (nl - sl), name);
                else if (!sl)
                        r = strv_add_unique(out, name);
        }
        json_object_put(ret);
        return r < 0 ? phy_error_set(err, r, "out of memory") : 0;
}

static int list_props(struct qmp *q, const char *dev, strv *out, phy_error *err) {
        json_object *args = json_object_new_object(), *ret = NULL;
        json_object_object_add(args, "typename", json_object_new_string(dev));
        int r = qmp_command(q, "device-list-properties", args, PROBE_CMD_TIMEOUT_MS, &ret, err);
        if (r < 0)
                return phy_error_prefix(err, "listing the properties of device '%s'", dev);
        for (size_t i = 0; r >= 0 && i < json_object_array_length(ret); i++) {
                const char *name = obj_str(json_object_array_get_idx(ret, i), "name");
                if (name)
                        r = strv_pushf(out, "%s.%s", dev, name);
        }
        json_object_put(ret);
        return r < 0 ? phy_error_set(err, r, "out of memory") : 0;
}

static int query_version(struct qmp *q, struct qemu_caps *c, phy_error *err) {
        json_object *ret = NULL, *qv = NULL, *x = NULL;
        int r = qmp_command(q, "query-version", NULL, PROBE_CMD_TIMEOUT_MS, &ret, err);
        if (r < 0)
                return r;
        int v[3] = { 0 };
        static const char *const keys[] = { "major", "minor", "micro" };
        if (json_object_object_get_ex(ret, "qemu", &qv))
                for (size_t i = 0; i < 3; i++)
                        if (json_object_object_get_ex(qv, keys[i], &x))
                                v[i] = json_object_get_int(x);
        const char *pkg = obj_str(ret, "package");
        /* "package" is free text such as "Debian 1:7.2+dfsg-7": kept verbatim. */
        if (pkg && *pkg == ' ')
                pkg++;
        if (pkg && *pkg)
                r = asprintf(&c->version, "%d.%d.%d (%s)", v[0], v[1], v[2], pkg);
        else
                r = asprintf(&c->version, "%d.%d.%d", v[0], v[1], v[2]);
        json_object_put(ret);
        if (r < 0) {
                c->version = NULL;
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        return 0;
}

/* QEMU's stderr, captured in a memfd, for error messages ("" when none). */
static void read_stderr(int fd, char *buf, size_t len) {
        buf[0] = '\0';
        if (fd < 0)
                return;
        ssize_t n = pread(fd, buf, len - 1, 0);
        if (n <= 0)
                return;
        buf[n] = '\0';
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
                buf[--n] = '\0';
        for (char *p = buf; *p; p++)
                if (*p == '\n')
                        *p = ' ';
}

/* Waits for our child to exit, SIGKILLing it past the timeout.  The pidfd
 * makes the wait an event with a deadline rather than a sleep loop. */
static int reap_child(pid_t pid, int timeout_ms, int *ret_status) {
        int status = 0;
        _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (pidfd >= 0) {
                struct pollfd p = { .fd = pidfd, .events = POLLIN };
                int r;
                do
                        r = poll(&p, 1, timeout_ms);
                while (r < 0 && errno == EINTR);
                if (r == 0)
                        kill(pid, SIGKILL);     /* our own child, not reaped yet: the pid is still ours */
        } else
                kill(pid, SIGKILL);             /* no pidfd: no bounded wait possible, so end it */
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (ret_status)
                *ret_status = status;
        return 0;
}

static int spawn_probe(const char *binary, pid_t *ret_pid, int *ret_qmp, int *ret_errfd, phy_error *err) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return phy_error_set(err, errno, "cannot create a socket pair for QMP: %s", strerror(errno));
        _cleanup_close_ int ours = sv[0], theirs = sv[1];
        _cleanup_close_ int errfd = memfd_create("qemu-probe-stderr", MFD_CLOEXEC);
        _cleanup_close_ int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (errfd < 0 || devnull < 0)
                return phy_error_set(err, errno, "cannot set up the QEMU probe's stdio: %s", strerror(errno));

        _cleanup_strv_ strv argv = { 0 };
        if (strv_push_many(&argv, binary, "-machine", "none", "-nodefaults", "-display", "none", "-S",
                           "-no-user-config", "-chardev", NULL) < 0 ||
            strv_pushf(&argv, "socket,id=qmp,fd=%d", theirs) < 0 ||
            strv_push_many(&argv, "-mon", "chardev=qmp,mode=control", NULL) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");

        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
                return phy_error_set(err, errno, "cannot fork to run '%s': %s", binary, strerror(errno));
        if (pid == 0) {
                /* Child: async-signal-safe calls only, then execve. */
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                        _exit(127);
                if (dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(errfd, 2) < 0 ||
                    fcntl(theirs, F_SETFD, 0) < 0)
                        _exit(127);
                execve(binary, argv.v, environ);
                _exit(127);
        }
        *ret_pid = pid;
        *ret_qmp = TAKE_FD(ours);
        *ret_errfd = TAKE_FD(errfd);
        return 0;
}

/* One QEMU under probe: its pid, QMP connection and stderr. */
struct session {
        const char *binary;
        pid_t pid;
        struct qmp *q;
        int errfd;
};

static int session_start(struct session *s, phy_error *err) {
        int qfd = -1;
        s->pid = -1;
        s->q = NULL;
        s->errfd = -1;
        int r = spawn_probe(s->binary, &s->pid, &qfd, &s->errfd, err);
        if (r < 0)
                return r;
        return qmp_open_fd(qfd, PROBE_CMD_TIMEOUT_MS, &s->q, err);
}

/* Ends the session: 'quit' and a grace period when it went well, else at
 * once (QEMU is ours and stopped with -S).  QEMU's stderr goes to msg. */
static int session_end(struct session *s, bool ok, char *msg, size_t len, int *ret_status) {
        if (ok && s->q) {
                /* QEMU may close the socket before answering 'quit'; the exit
                 * is what counts, so the reply is not required. */
                phy_error ignored = { 0 };
                qmp_command(s->q, "quit", NULL, PROBE_CMD_TIMEOUT_MS, NULL, &ignored);
        }
        qmp_close(s->q);
        s->q = NULL;
        int k = 0;
        if (s->pid > 0)
                k = reap_child(s->pid, ok ? PROBE_EXIT_TIMEOUT_MS : 0, ret_status);
        s->pid = -1;
        if (msg)
                read_stderr(s->errfd, msg, len);
        if (s->errfd >= 0)
                close(s->errfd);
        s->errfd = -1;
        return k;
}

/* "missing object type 'virtio-gpu-gl-device'" in QEMU's last words: the
 * type a device needed and QEMU could not load. */
static void missing_type(const char *msg, char *buf, size_t len) {
        static const char key[] = "missing object type '";
        const char *p = strstr(msg, key);
        snprintf(buf, len, "-");
        if (!p)
                return;
        p += sizeof key - 1;
        size_t n = strcspn(p, "' ");
        if (n > 0 && n < len)
                snprintf(buf, len, "%.*s", (int) n, p);
}

/* A device QEMU lists but cannot create: out of `devices`, into `absent`. */
static int mark_absent(struct qemu_caps *c, const char *dev, const char *lacks) {
        strv_remove(&c->devices, dev);
        return strv_pushf(&c->absent, "%s %s", dev, lacks);
}

/* The properties of the probed devices.  Creating a device whose module
 * needs a missing one kills QEMU ("missing object type ...", the connection
 * closes): that device is recorded absent, a fresh QEMU takes over, and the
 * probe goes on with the next device.  An error reply marks it absent too. */
static int list_all_props(struct session *s, struct qemu_caps *c, phy_error *err) {
        unsigned restarts = 0;
        for (size_t i = 0; qemu_caps_probed_devices[i]; i++) {
                const char *dev = qemu_caps_probed_devices[i];
                if (!strv_contains(&c->devices, dev))
                        continue;
                phy_error e = { 0 };
                int r = list_props(s->q, dev, &c->props, &e);
                if (r >= 0)
                        continue;
                if (r == -ENODEV || r == -EREMOTEIO) {
                        if (mark_absent(c, dev, "-") < 0)
                                return phy_error_set(err, ENOMEM, "out of memory");
                        continue;
                }
                if (r != -ECONNRESET) {
                        *err = e;
                        return r;
                }
                char msg[512], lacks[128];
                int status = 0;
                session_end(s, false, msg, sizeof msg, &status);
                if (++restarts > PROBE_RESTARTS_MAX) {
                        *err = e;
                        if (msg[0])
                                phy_error_prefix(err, "QEMU said \"%s\"", msg);
                        return phy_error_prefix(err, "QEMU died %u times while its devices were listed", restarts);
                }
                missing_type(msg, lacks, sizeof lacks);
                if (mark_absent(c, dev, lacks) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
                if ((r = session_start(s, err)) < 0)
                        return r;
        }
        return 0;
}

/* `binary <option> help`: one name a line after a "...:" header
 * ("Available display backend types:", "Available audio drivers:"). */
static int help_list(const char *binary, const char *option, strv *out, phy_error *err) {
        char *const argv[] = { (char *) binary, (char *) option, (char *) "help", NULL };
        _cleanup_free_ char *text = NULL;
        char errbuf[256] = "";
        int r = exec_run(argv, &text, errbuf, sizeof errbuf);
        if (r < 0)
                return phy_error_set(err, -r, "'%s %s help' failed%s%s", binary, option, errbuf[0] ? ": " : "", errbuf);
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                size_t n = strlen(line);
                while (n && (line[n - 1] == ' ' || line[n - 1] == '\r'))
                        line[--n] = '\0';
                if (n == 0 || line[n - 1] == ':' || strspn(line, "abcdefghijklmnopqrstuvwxyz0123456789-_") != n)
                        continue;
                if ((r = strv_add_unique(out, line)) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
        }
        return 0;
}

static int probe_binary(const char *binary, struct qemu_caps *ret, phy_error *err) {
        _cleanup_qemu_caps_ struct qemu_caps c = { 0 };
        struct session s = { .binary = binary };
        int r = session_start(&s, err);
        if (r >= 0 && (r = query_version(s.q, &c, err)) >= 0 && (r = query_machines(s.q, &c, err)) >= 0 &&
            (r = list_types(s.q, "device", NULL, &c.devices, err)) >= 0 &&
            (r = list_types(s.q, "accel", "-accel", &c.accels, err)) >= 0)
                r = list_all_props(&s, &c, err);
        char msg[512];
        int status = 0;
        int k = session_end(&s, r >= 0, msg, sizeof msg, &status);
        if (r < 0) {
                if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && !msg[0])
                        return phy_error_set(err, ENOEXEC, "cannot run '%s' (exit status 127): is it an executable QEMU binary?", binary);
                if (msg[0])
                        phy_error_prefix(err, "QEMU said \"%s\"", msg);
                return phy_error_prefix(err, "probing '%s'", binary);
        }
        if (k < 0)
                return phy_error_set(err, k, "cannot reap the QEMU probe process: %s", strerror(-k));
        if ((r = help_list(binary, "-display", &c.displays, err)) < 0 ||
            (r = help_list(binary, "-audiodev", &c.audiodevs, err)) < 0)
                return phy_error_prefix(err, "probing '%s'", binary);
        strv_sort(&c.machines);
        strv_sort(&c.devices);
        strv_sort(&c.accels);
        strv_sort(&c.props);
        strv_sort(&c.displays);
        strv_sort(&c.audiodevs);
        strv_sort(&c.absent);
        c.binary = strdup(binary);
        if (!c.binary)
                return phy_error_set(err, ENOMEM, "out of memory");
        *ret = c;
        c = (struct qemu_caps) { 0 };
        return 0;
}

/* ---- the cache ---------------------------------------------------------- */

/* <cache_dir>/qemu-caps/<binary path with every odd byte as '_'>.json;
 * the binary path is also stored inside, so a collision only re-probes. */
/* ---- the cache entry ----------------------------------------------------
 *
 *   phyllome-qemu-caps-cache 1
 *   binary /usr/bin/qemu-system-x86_64
 *   size 19823456
 *   mtime 1700000000
 *   mtime_nsec 0
 *   modules 0123456789abcdef
 *   version 7.2.15
 *   machines 3
 *   pc-q35-7.2
 *   ...         (then accels, devices, props, displays, audiodevs, absent)
 *   end
 *
 * One string a line (a probed name never has a control character; an entry
 * that would is not written).  Read in one pass into one buffer that the
 * lists point into: the JSON parse of the former entry was most of a
 * start's time before the monitor's fork (issue 20). */

#define CACHE_MAGIC "phyllome-qemu-caps-cache 1"

static const char *const cache_lists[] = { "machines", "accels", "devices", "props", "displays", "audiodevs",
                                           "absent" };

static strv *cache_list(struct qemu_caps *c, size_t i) {
        strv *l[] = { &c->machines, &c->accels, &c->devices, &c->props, &c->displays, &c->audiodevs, &c->absent };
        return l[i];
}

static bool line_ok(const char *s) {
        return s && !str_has_control(s);
}

static char *cache_text(const struct qemu_caps *c, const struct stat *st, const char *mkey) {
        if (!line_ok(c->binary) || !line_ok(c->version ? c->version : ""))
                return NULL;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        fprintf(f, CACHE_MAGIC "\nbinary %s\nsize %lld\nmtime %lld\nmtime_nsec %ld\nmodules %s\nversion %s\n",
                c->binary, (long long) st->st_size, (long long) st->st_mtim.tv_sec, (long) st->st_mtim.tv_nsec, mkey,
                c->version ? c->version : "");
        bool ok = true;
        for (size_t i = 0; i < ELEMENTSOF(cache_lists); i++) {
                const strv *l = cache_list((struct qemu_caps *) c, i);
                fprintf(f, "%s %zu\n", cache_lists[i], l->n);
                for (size_t k = 0; k < l->n; k++) {
                        ok = ok && line_ok(l->v[k]) && *l->v[k];
                        fprintf(f, "%s\n", l->v[k]);
                }
        }
        fputs("end\n", f);
        if (fclose(f) != 0 || !ok)
                return NULL;
        return TAKE_PTR(buf);
}

/* The next line of *p (cut in place), or NULL at the end. */
static char *next_line(char **p) {
        char *s = *p, *nl = s ? strchr(s, '\n') : NULL;
        if (!nl)
                return NULL;
        *nl = '\0';
        *p = nl + 1;
        return s;
}

/* "key value" with this key: the value, or NULL. */
static const char *key_value(char *line, const char *key) {
        size_t k = strlen(key);
        return line && strncmp(line, key, k) == 0 && line[k] == ' ' ? line + k + 1 : NULL;
}

static bool key_number(char *line, const char *key, long long want) {
        const char *v = key_value(line, key);
        char want_s[24];
        snprintf(want_s, sizeof want_s, "%lld", want);
        return v && strcmp(v, want_s) == 0;
}

/* 0 and *ret when the entry at path is whole and matches the binary's path,
 * size, mtime and modules; -1 otherwise (a missing, stale or damaged entry
 * just means probing again). */
static int cache_load(const char *path, const char *binary, const struct stat *st, const char *mkey,
                      struct qemu_caps *ret) {
        _cleanup_qemu_caps_ struct qemu_caps c = { 0 };
        size_t len = 0;
        if (file_read_all(path, 0, &c.blob, &len) < 0 || strlen(c.blob) != len)
                return -1;
        char *p = c.blob;
        const char *b, *m, *v;
        if (!(b = next_line(&p)) || strcmp(b, CACHE_MAGIC) != 0 || !(b = key_value(next_line(&p), "binary")) ||
            strcmp(b, binary) != 0 || !key_number(next_line(&p), "size", (long long) st->st_size) ||
            !key_number(next_line(&p), "mtime", (long long) st->st_mtim.tv_sec) ||
            !key_number(next_line(&p), "mtime_nsec", (long long) st->st_mtim.tv_nsec) ||
            !(m = key_value(next_line(&p), "modules")) || strcmp(m, mkey) != 0 ||
            !(v = key_value(next_line(&p), "version")))
                return -1;
        if (!(c.binary = strdup(b)) || !(c.version = strdup(v)))
                return -1;
        for (size_t i = 0; i < ELEMENTSOF(cache_lists); i++) {
                const char *nv = key_value(next_line(&p), cache_lists[i]);
                unsigned long long n;
                if (!nv || parse_uint(nv, len, &n) < 0)
                        return -1;
                strv *l = cache_list(&c, i);
                if (!(l->v = calloc(n + 1, sizeof *l->v)))
                        return -1;
                l->cap = n + 1;
                for (; l->n < n; l->n++)
                        if (!(l->v[l->n] = next_line(&p)) || !*l->v[l->n])
                                return -1;
        }
        const char *end = next_line(&p);
        if (!end || strcmp(end, "end") != 0 || *p)
                return -1;
        c.from_cache = true;
        *ret = c;
        c = (struct qemu_caps) { 0 };
        return 0;
}

static char *cache_file(const char *cache_dir, const char *binary) {
        char name[201];
        size_t n = 0;
        for (const char *p = binary; *p && n < sizeof name - 1; p++) {
                char ch = *p;
                bool okc = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                           ch == '-' || ch == '.' || ch == '+';
                if (n == 0 && ch == '/')
                        continue;
                name[n++] = okc ? ch : '_';
        }
        name[n] = '\0';
        char *p = NULL;
        /* "-v2": the modules key of session 9 (names and inodes, no stat per
         * module).  Another name than the former key's entry, so that two
         * phyllo builds on one host (an upgrade, bench/'s baseline build)
         * do not each find the other's entry stale and re-probe every time. */
        if (asprintf(&p, "%s/qemu-caps/%s-v2.caps", cache_dir, name) < 0)
                return NULL;
        return p;
}

char *qemu_binary_prefix(const char *binary) {
        char *real = realpath(binary, NULL);
        for (int i = 0; real && i < 2; i++) {
                char *slash = strrchr(real, '/');
                if (!slash) {
                        free(real);
                        return NULL;
                }
                *slash = '\0';        /* <prefix>/bin/qemu-system-x86_64 -> <prefix> */
        }
        return real;
}

char *qemu_caps_module_dir(const char *binary) {
        /* <prefix>/lib/x86_64-linux-gnu/qemu, as QEMU finds it. */
        _cleanup_free_ char *prefix = qemu_binary_prefix(binary);
        return prefix ? host_qemu_module_dir(prefix[0] ? prefix : "/") : NULL;
}

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
        for (const unsigned char *p = data; n--; p++)
                h = (h ^ *p) * 0x100000001b3ULL;
        return h;
}

/* What QEMU's module directories hold, hashed: a module installed or
 * removed (apt-get install qemu-system-gui) changes what QEMU can do
 * without touching the binary.  Each directory's identity and mtime, then
 * each entry's name and inode number, as one getdents returns them (no
 * stat per module: ~35 path walks on every start).  dpkg and install(1)
 * put a module in place under a new inode (a rename of a new file), which
 * changes both; a rewrite in place of the same file is not seen.  The
 * directories are QEMU's own and $QEMU_MODULE_DIR, as QEMU searches them. */
static void modules_key(const char *binary, char out[17]) {
        uint64_t h = 0xcbf29ce484222325ULL;
        _cleanup_free_ char *own = qemu_caps_module_dir(binary);
        const char *dirs[] = { getenv("QEMU_MODULE_DIR"), own };
        for (size_t d = 0; d < ELEMENTSOF(dirs); d++) {
                if (!dirs[d] || !*dirs[d])
                        continue;
                h = fnv(h, dirs[d], strlen(dirs[d]) + 1);
                _cleanup_close_ int fd = open(dirs[d], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                struct stat st;
                DIR *dir = fd >= 0 && fstat(fd, &st) == 0 ? fdopendir(fd) : NULL;
                if (!dir) {
                        h = fnv(h, "-", 2);
                        continue;
                }
                fd = -1;        /* the DIR owns it */
                unsigned long long id[4] = { (unsigned long long) st.st_dev, (unsigned long long) st.st_ino,
                                             (unsigned long long) st.st_mtim.tv_sec,
                                             (unsigned long long) st.st_mtim.tv_nsec };
                h = fnv(h, id, sizeof id);
                /* Order-independent over the entries: readdir's order is the
                 * filesystem's, and one entry more or less must change it. */
                uint64_t sum = 0, n = 0;
                for (struct dirent *de; (de = readdir(dir));) {
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        uint64_t e = fnv(0xcbf29ce484222325ULL, de->d_name, strlen(de->d_name) + 1);
                        unsigned long long ino = (unsigned long long) de->d_ino;
                        sum += fnv(e, &ino, sizeof ino);
                        n++;
                }
                closedir(dir);
                h = fnv(fnv(h, &sum, sizeof sum), &n, sizeof n);
        }
        snprintf(out, 17, "%016llx", (unsigned long long) h);
}

static void cache_store(const char *path, const struct qemu_caps *c, const struct stat *st, const char *mkey) {
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return;
        *strrchr(dir, '/') = '\0';
        if (mkdir_p(dir, 0700) < 0)
                return;
        _cleanup_free_ char *s = cache_text(c, st, mkey);
        /* A cache that cannot be written costs a re-probe next time, nothing more. */
        if (s)
                file_write_atomic(path, s, strlen(s), 0600, NULL);
        /* The JSON entry of an earlier phyllo (before session 8) is stale now. */
        size_t n = strlen(path);
        _cleanup_free_ char *former = NULL;
        if (n > 8 && strcmp(path + n - 8, "-v2.caps") == 0 && asprintf(&former, "%.*s.json", (int) (n - 8), path) >= 0)
                (void) unlink(former);
}

int qemu_caps_probe_ex(const char *binary, const char *cache_dir, unsigned flags, struct qemu_caps *ret,
                       phy_error *err) {
        _cleanup_free_ char *abs = NULL;
        if (binary[0] != '/') {
                abs = realpath(binary, NULL);
                if (!abs)
                        return phy_error_set(err, errno, "cannot find the QEMU binary '%s': %s", binary, strerror(errno));
                binary = abs;
        }
        struct stat st;
        if (stat(binary, &st) < 0)
                return phy_error_set(err, errno, "cannot find the QEMU binary '%s': %s", binary, strerror(errno));
        if (!S_ISREG(st.st_mode) || access(binary, X_OK) < 0)
                return phy_error_set(err, EACCES, "'%s' is not an executable file; pass a QEMU system emulator", binary);

        _cleanup_free_ char *cpath = cache_dir ? cache_file(cache_dir, binary) : NULL;
        char mkey[17];
        modules_key(binary, mkey);
        if (cache_dir && !cpath)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (cpath && !(flags & QEMU_CAPS_REFRESH) && cache_load(cpath, binary, &st, mkey, ret) == 0)
                return 0;

        _cleanup_qemu_caps_ struct qemu_caps c = { 0 };
        int r = probe_binary(binary, &c, err);
        if (r < 0)
                return r;
        if (cpath)
                cache_store(cpath, &c, &st, mkey);
        *ret = c;
        c = (struct qemu_caps) { 0 };
        return 0;
}

int qemu_caps_probe(const char *binary, const char *cache_dir, struct qemu_caps *ret, phy_error *err) {
        return qemu_caps_probe_ex(binary, cache_dir, 0, ret, err);
}

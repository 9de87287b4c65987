/* SPDX-License-Identifier: MIT */
/*
 * A quickemu VM (<name>.conf, a bash file quickemu sources) into an import
 * plan.  The file is read, never run: only plain assignments (key="value",
 * key=value, key=("a" "b")) are accepted, with no expansion ($, `, \);
 * anything else is an error naming the line.  Relative paths are relative
 * to the file's directory, as quickemu resolves them.  The devices are the
 * ones quickemu gives each guest_os (quickemu's configure_* functions), so
 * the guest keeps its hardware where Phyllome has it.
 */
#include "interop.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "value.h"
#include "vm/profile.h"
#include "xml-internal.h"

struct qvar {
        char *key;
        strv values;            /* one for a plain value; the members of an array */
        bool array;
        unsigned line;
        bool used;
};

struct qconf {
        struct qvar *v;
        size_t n;
        const char *source;
        const char *dir;
        struct interop_plan *p;
        const struct interop_opts *o;
        phy_error *err;
};

static void qconf_done(struct qconf *q) {
        for (size_t i = 0; i < q->n; i++) {
                free(q->v[i].key);
                strv_done(&q->v[i].values);
        }
        free(q->v);
}

static int bad(struct qconf *q, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(struct qconf *q, unsigned line, const char *fmt, ...) {
        char msg[700];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        return phy_error_usage(q->err, "%s:%u: %s", q->source, line, msg);
}

static void say(struct qconf *q, const struct qvar *v, enum interop_status st, bool gv, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static void say(struct qconf *q, const struct qvar *v, enum interop_status st, bool gv, const char *fmt, ...) {
        char msg[900], el[128];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(el, sizeof el, "%s", v ? v->key : "(quickemu)");
        interop_report_add(&q->p->report, el, v ? v->line : 0, st, gv, "%s", msg);
}

/* One value: "double quoted", 'single quoted' or bare; *pp moves past it. */
static int one_value(struct qconf *q, unsigned line, const char **pp, char **ret) {
        const char *s = *pp;
        char quote = *s == '"' || *s == '\'' ? *s : 0;
        if (quote)
                s++;
        const char *start = s;
        for (; *s; s++) {
                if (quote ? *s == quote : (isspace((unsigned char) *s) || *s == ')'))
                        break;
                if (*s == '$' || *s == '`' || *s == '\\' || (!quote && strchr(";&|<>(\"'", *s)))
                        return bad(q, line, "'%c' in a value: Phyllome reads quickemu files without running them, so "
                                   "only plain values are understood (no variables, commands or escapes)", *s);
                if ((unsigned char) *s < 0x20)
                        return bad(q, line, "a control character in a value");
        }
        if (quote && *s != quote)
                return bad(q, line, "the quote %c is not closed", quote);
        if (!(*ret = strndup(start, (size_t) (s - start))))
                return phy_error_set(q->err, ENOMEM, "out of memory");
        *pp = quote ? s + 1 : s;
        return 0;
}

static int parse(struct qconf *q, const char *text) {
        unsigned line = 0;
        const char *cur = text;
        for (;;) {
                _cleanup_free_ char *buf = NULL;
                int got = ix_next_line(&cur, &buf);
                if (got == 0)
                        break;
                if (got < 0)
                        return phy_error_set(q->err, ENOMEM, "out of memory");
                line++;
                const char *s = buf;
                while (isspace((unsigned char) *s))
                        s++;
                if (!*s || *s == '#')
                        continue;
                const char *k = s;
                while (isalnum((unsigned char) *s) || *s == '_')
                        s++;
                if (s == k || *s != '=' || isdigit((unsigned char) *k))
                        return bad(q, line, "not an assignment (key=\"value\"): Phyllome reads quickemu files without "
                                   "running them");
                struct qvar v = { .line = line };
                if (!(v.key = strndup(k, (size_t) (s - k))))
                        return phy_error_set(q->err, ENOMEM, "out of memory");
                s++;
                int r = 0;
                if (*s == '(') {
                        v.array = true;
                        s++;
                        for (;;) {
                                while (isspace((unsigned char) *s))
                                        s++;
                                if (*s == ')' || !*s)
                                        break;
                                _cleanup_free_ char *one = NULL;
                                if ((r = one_value(q, line, &s, &one)) < 0 || (r = strv_push(&v.values, one)) < 0)
                                        break;
                        }
                        if (r >= 0 && *s != ')')
                                r = bad(q, line, "the array of '%s' is not closed on its line", v.key);
                        else if (r >= 0)
                                s++;
                } else {
                        _cleanup_free_ char *one = NULL;
                        if ((r = one_value(q, line, &s, &one)) >= 0)
                                r = strv_push(&v.values, one);
                }
                while (r >= 0 && isspace((unsigned char) *s))
                        s++;
                if (r >= 0 && *s && *s != '#')
                        r = bad(q, line, "more after the value of '%s'", v.key);
                for (size_t i = 0; r >= 0 && i < q->n; i++)
                        if (strcmp(q->v[i].key, v.key) == 0)
                                r = bad(q, line, "'%s' is set twice (first on line %u)", v.key, q->v[i].line);
                struct qvar *nv = r >= 0 ? realloc(q->v, (q->n + 1) * sizeof *nv) : NULL;
                if (r >= 0 && !nv)
                        r = phy_error_set(q->err, ENOMEM, "out of memory");
                if (r < 0) {
                        free(v.key);
                        strv_done(&v.values);
                        return r;
                }
                q->v = nv;
                q->v[q->n++] = v;
        }
        return 0;
}

static struct qvar *var(struct qconf *q, const char *key) {
        for (size_t i = 0; i < q->n; i++)
                if (strcmp(q->v[i].key, key) == 0) {
                        q->v[i].used = true;
                        return &q->v[i];
                }
        return NULL;
}

/* The plain value of key, NULL when unset or empty. */
static const char *val(struct qconf *q, const char *key) {
        struct qvar *v = var(q, key);
        return v && !v->array && v->values.n && v->values.v[0][0] ? v->values.v[0] : NULL;
}

static bool on(struct qconf *q, const char *key) {
        const char *v = val(q, key);
        return v && strcmp(v, "on") == 0;
}

/* A path of the file: absolute, or relative to the file's directory;
 * checked by the containment rules; malloc'd. */
static int path_of(struct qconf *q, const char *key, char **ret) {
        struct qvar *v = var(q, key);
        const char *p = val(q, key);
        if (!p)
                return 0;
        _cleanup_free_ char *abs = NULL;
        if (p[0] == '/')
                abs = strdup(p);
        else if (asprintf(&abs, "%s/%s", q->dir, p) < 0)
                abs = NULL;
        if (!abs)
                return phy_error_set(q->err, ENOMEM, "out of memory");
        char what[300];
        snprintf(what, sizeof what, "%s:%u: %s", q->source, v->line, key);
        int r = vm_path_check_here("/nonexistent/phyllome-import", what, abs, q->err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(abs);
        return 1;
}

static int add_cdrom(struct qconf *q, const char *key, const char *name) {
        _cleanup_free_ char *path = NULL;
        int r = path_of(q, key, &path);
        if (r <= 0)
                return r;
        struct vm_def *d = &q->p->def;
        struct vm_cdrom *n = realloc(d->cdroms, (d->n_cdroms + 1) * sizeof *n);
        if (!n)
                return phy_error_set(q->err, ENOMEM, "out of memory");
        d->cdroms = n;
        d->cdroms[d->n_cdroms] = (struct vm_cdrom) { .name = strdup(name), .path = TAKE_PTR(path),
                                                     .bus = VM_BUS_SATA };
        if (!d->cdroms[d->n_cdroms++].name)
                return phy_error_set(q->err, ENOMEM, "out of memory");
        return 0;
}

static int nomem(phy_error *err) {
        return phy_error_set(err, ENOMEM, "out of memory");
}

static int build(struct qconf *q_, const char *source, const struct interop_opts *o, phy_error *err) {
        struct qconf q = *q_;   /* (the vars are q_'s: var() marks them used) */
        struct interop_plan *p = q.p;
        int r;
        struct vm_def *d = &p->def;
        if (!(p->source = strdup(source)))
                return nomem(err);
        /* The name: quickemu's, the file's name without .conf. */
        const char *base = strrchr(source, '/') ? strrchr(source, '/') + 1 : source;
        size_t bl = strlen(base);
        if (bl > 5 && strcmp(base + bl - 5, ".conf") == 0)
                bl -= 5;
        snprintf(d->name, sizeof d->name, "%.*s", (int) (bl < VM_NAME_MAX ? bl : VM_NAME_MAX), base);
        if (o->name)
                snprintf(d->name, sizeof d->name, "%s", o->name);
        if (!vm_name_valid(d->name)) {
                r = phy_error_usage(err, "%s: '%s' is no valid VM name; give one with --name", source, d->name);
                return r;
        }
        const char *arch = val(&q, "arch");
        if (arch && strcmp(arch, "x86_64") != 0) {
                r = bad(&q, var(&q, "arch")->line, "arch '%s': Phyllome runs x86_64 guests", arch);
                return r;
        }
        /* guest_os: the profile and quickemu's devices for it. */
        const char *os = val(&q, "guest_os");
        struct qvar *osv = var(&q, "guest_os");
        if (!os)
                os = "linux";
        bool win = strcmp(os, "windows") == 0, winsrv = strcmp(os, "windows-server") == 0;
        bool tpm = on(&q, "tpm"), sb = on(&q, "secureboot");
        const char *profile = win ? (tpm ? "windows11" : "windows10") : winsrv ? "windows10"
                              : strncmp(os, "linux", 5) == 0 ? "linux" : strcmp(os, "freebsd") == 0 ? "freebsd"
                              : strcmp(os, "macos") == 0 ? "macos" : "other";
        if (o->profile)
                profile = o->profile;
        else if (strcmp(profile, "other") == 0 || winsrv || win)
                say(&q, osv, INTEROP_NOTE, false, "guest_os '%s': profile %s%s", os, profile,
                    win ? (tpm ? " (a TPM: Windows 11)" : " (no TPM: Windows 10)") : "");
        if (!(d->profile = strdup(profile)))
                return nomem(err);
        /* Firmware. */
        const char *boot = val(&q, "boot");
        d->firmware = boot && strcmp(boot, "legacy") == 0 ? VM_FW_BIOS : VM_FW_UEFI;
        if (d->firmware == VM_FW_BIOS)
                say(&q, var(&q, "boot"), INTEROP_CHANGED, true, "legacy BIOS ran on quickemu's i440FX machine; "
                    "Phyllome's is Q35: the guest sees a new chipset");
        d->secure_boot = sb ? VM_ON : VM_OFF;
        if (sb || win || winsrv)
                d->smm = VM_ON;
        if (sb && d->firmware == VM_FW_BIOS) {
                r = bad(&q, var(&q, "secureboot")->line, "Secure Boot needs boot=\"efi\"");
                return r;
        }
        /* CPU and memory. */
        const char *cores = val(&q, "cpu_cores"), *ram = val(&q, "ram");
        unsigned long long x;
        if (cores) {
                if (parse_uint(cores, 255, &x) < 0 || x == 0) {
                        r = bad(&q, var(&q, "cpu_cores")->line, "cpu_cores '%s' is not a number from 1 to 255", cores);
                        return r;
                }
                d->cores = (unsigned) x;
                d->threads = 1;
        } else
                say(&q, NULL, INTEROP_NOTE, false, "no cpu_cores: quickemu sized it from the host; the profile "
                    "sizes it from the budget");
        if (ram) {
                if (parse_size(ram, &x) < 0 || x < (1u << 20)) {
                        r = bad(&q, var(&q, "ram")->line, "ram '%s' is not a size (e.g. 4G)", ram);
                        return r;
                }
                d->memory = x;
        }
        /* Hyper-V and the clock, as quickemu sets them for Windows. */
        if (win || winsrv) {
                d->hyperv = VM_ON;
                d->rtc_localtime = VM_ON;
                say(&q, osv, INTEROP_CHANGED, true, "quickemu's Hyper-V flags (hv_time, hv_vendor_id among them) "
                    "become Phyllome's set of enlightenments");
        } else {
                d->hyperv = VM_OFF;
                d->rtc_localtime = VM_OFF;
        }
        /* The system disk. */
        _cleanup_free_ char *disk = NULL;
        if ((r = path_of(&q, "disk_img", &disk)) < 0)
                return r;
        if (!disk) {
                r = phy_error_usage(err, "%s: no disk_img; a quickemu VM without a disk has nothing to import "
                                    "(create it with 'phyllo create --iso')", source);
                return r;
        }
        if (access(disk, R_OK) < 0) {
                r = phy_error_set(err, errno, "%s:%u: disk_img '%s': %s (a VM quickemu has not started yet has no "
                                  "disk; create it with 'phyllo create --iso')", source, var(&q, "disk_img")->line,
                                  disk, strerror(errno));
                return r;
        }
        const char *fmt = val(&q, "disk_format");
        if (!fmt)
                fmt = "qcow2";
        if (strcmp(fmt, "qcow2") != 0 && strcmp(fmt, "raw") != 0) {
                r = bad(&q, var(&q, "disk_format")->line, "disk_format '%s'; quickemu's are qcow2 and raw", fmt);
                return r;
        }
        struct vm_disk *k = calloc(1, sizeof *k);
        if (!k)
                return nomem(err);
        d->disks = k;
        d->n_disks = 1;
        k->name = strdup("system");
        k->bus = strcmp(os, "macos") == 0 || winsrv ? VM_BUS_SATA : VM_BUS_VIRTIO;
        if (o->reference) {
                k->path = strdup(disk);
                k->format = strdup(fmt);
        } else {
                k->format = strdup(fmt);
                if (asprintf(&k->path, "disk-system.%s", strcmp(fmt, "raw") == 0 ? "img" : "qcow2") < 0)
                        k->path = NULL;
                char what[300];
                snprintf(what, sizeof what, "%s:%u: disk_img", source, var(&q, "disk_img")->line);
                if (k->path && (r = interop_plan_add_file(p, INTEROP_DISK, disk, k->path, fmt, fmt, what, err)) < 0)
                        return r;
        }
        if (!k->name || !k->path || !k->format)
                return nomem(err);
        /* The VM's files beside its disk: UEFI vars, TPM state (swtpm --tpmstate dir=VMDIR). */
        _cleanup_free_ char *vmdir = strndup(disk, (size_t) (strrchr(disk, '/') - disk)), *vars = NULL,
                            *perm = NULL;
        if (!vmdir || asprintf(&vars, "%s/OVMF_VARS.fd", vmdir) < 0 || asprintf(&perm, "%s/tpm2-00.permall", vmdir) < 0)
                return nomem(err);
        if (d->firmware == VM_FW_UEFI && access(vars, R_OK) == 0) {
                if ((r = interop_plan_add_file(p, INTEROP_FILE, vars, "OVMF_VARS.fd", NULL, NULL, "OVMF_VARS.fd",
                                               err)) < 0)
                        return r;
        } else if (d->firmware == VM_FW_UEFI)
                say(&q, NULL, INTEROP_CHANGED, true, "no UEFI vars beside the disk (%s): fresh vars, the guest's boot "
                    "entries are made anew", vars);
        if (tpm) {
                d->tpm = VM_TPM_EMULATED;
                say(&q, var(&q, "tpm"), INTEROP_CHANGED, true, "quickemu's TPM is TIS; Phyllome's is CRB (TPM 2.0): "
                    "the guest sees a new TPM device");
                if (access(perm, R_OK) == 0) {
                        if ((r = interop_plan_add_file(p, INTEROP_FILE, perm, "tpm/tpm2-00.permall", NULL, NULL,
                                                       "the TPM state", err)) < 0)
                                return r;
                } else
                        say(&q, var(&q, "tpm"), INTEROP_CHANGED, true, "no TPM state beside the disk (%s): a fresh "
                            "TPM (BitLocker needs its recovery key)", perm);
        } else
                d->tpm = VM_TPM_NONE;
        /* Install media. */
        if ((r = add_cdrom(&q, "iso", "install")) < 0)
                return r;
        const char *fixed = val(&q, "fixed_iso");
        if ((r = add_cdrom(&q, "fixed_iso", fixed && strstr(fixed, "virtio-win") ? "drivers" : "fixed")) < 0)
                return r;
        if (val(&q, "img"))
                say(&q, var(&q, "img"), INTEROP_DROPPED, true, "the recovery image (img) is not modelled");
        if (val(&q, "floppy"))
                say(&q, var(&q, "floppy"), INTEROP_DROPPED, true, "floppy disks are not modelled");
        /* The network. */
        struct vm_nic *n = calloc(1, sizeof *n);
        if (!n)
                return nomem(err);
        d->nics = n;
        d->n_nics = 1;
        if (!(n->name = strdup("net0")))
                return nomem(err);
        n->model = win || strncmp(os, "linux", 5) == 0 || strstr(os, "bsd") || strcmp(os, "macos") == 0
                           ? VM_NIC_VIRTIO : winsrv ? VM_NIC_E1000E : VM_NIC_RTL8139;
        if (winsrv)
                say(&q, osv, INTEROP_CHANGED, true, "quickemu's e1000 for Windows Server becomes e1000e");
        if (strcmp(os, "macos") == 0)
                say(&q, osv, INTEROP_CHANGED, true, "quickemu picks macOS's NIC per release; Phyllome gives virtio");
        const char *net = val(&q, "network"), *bridge = val(&q, "bridge");
        if (!net)
                net = bridge;
        if (!net || strcmp(net, "restrict") == 0) {
                n->mode = VM_NET_USER;
                if (net)
                        say(&q, var(&q, "network"), INTEROP_DROPPED, false, "restricted user networking (no way out) "
                            "is not modelled; an isolated network is the closest ('phyllo net nic')");
        } else if (strcmp(net, "none") == 0)
                n->mode = VM_NET_NONE;
        else if (vm_net_name_valid(net, 15)) {
                n->mode = VM_NET_BRIDGE;
                if (!(n->bridge = strdup(net)))
                        return nomem(err);
        } else {
                r = bad(&q, var(&q, "network") ? var(&q, "network")->line : var(&q, "bridge")->line,
                        "'%s' is no bridge name", net);
                return r;
        }
        const char *mac = val(&q, "macaddr");
        if (mac) {
                if (strlen(mac) != 17) {
                        r = bad(&q, var(&q, "macaddr")->line, "'%s' is no MAC address", mac);
                        return r;
                }
                for (int i = 0; i < 17; i++)
                        n->mac[i] = (char) tolower((unsigned char) mac[i]);
        }
        struct qvar *pf = var(&q, "port_forwards");
        for (size_t i = 0; pf && i < pf->values.n; i++) {
                unsigned long long hp, gp;
                const char *f = pf->values.v[i], *colon = strchr(f, ':');
                _cleanup_free_ char *h = colon ? strndup(f, (size_t) (colon - f)) : NULL;
                if (!colon || !h || parse_uint(h, 65535, &hp) < 0 || parse_uint(colon + 1, 65535, &gp) < 0 || !hp ||
                    !gp) {
                        r = bad(&q, pf->line, "the port forward '%s' is not HOSTPORT:GUESTPORT", f);
                        return r;
                }
                /* quickemu forwards both TCP and UDP (on every address: Phyllome's listen on loopback). */
                char spec[64];
                snprintf(spec, sizeof spec, "tcp:%llu:%llu", hp, gp);
                if (strv_push(&n->forwards, spec) < 0)
                        return nomem(err);
                snprintf(spec, sizeof spec, "udp:%llu:%llu", hp, gp);
                if (strv_push(&n->forwards, spec) < 0)
                        return nomem(err);
        }
        if (pf && pf->values.n)
                say(&q, pf, INTEROP_CHANGED, false, "quickemu's forwards listened on every address; Phyllome's "
                    "listen on loopback (tcp and udp kept)");
        val(&q, "ssh_port");
        if (true)
                say(&q, var(&q, "ssh_port"), INTEROP_DROPPED, false, "quickemu's automatic SSH forward (a free port "
                    "from 22220 to the guest's 22) is not kept; add one with 'phyllo net forward add NAME "
                    "tcp:PORT:22'");
        /* USB. */
        struct qvar *usb = var(&q, "usb_devices");
        for (size_t i = 0; usb && i < usb->values.n; i++) {
                char id[16];
                snprintf(id, sizeof id, "%s", usb->values.v[i]);
                for (char *c = id; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
                if (!value_usb_id_valid(id)) {
                        r = bad(&q, usb->line, "'%s' is no USB VENDOR:PRODUCT id", usb->values.v[i]);
                        return r;
                }
                if (strv_push(&d->usb, id) < 0)
                        return nomem(err);
        }
        /* Display, video, sound, input. */
        const char *display = val(&q, "display");
        if (!display)
                display = "sdl";
        int dv = vm_display_from_name(strcmp(display, "spice-app") == 0 ? "spice" : strcmp(display, "cocoa") == 0
                                              ? "gtk" : display, NULL);
        if (dv < 0) {
                r = bad(&q, var(&q, "display")->line, "display '%s' is not one Phyllome has", display);
                return r;
        }
        d->display = (enum vm_display) dv;
        bool spicey = strcmp(display, "none") == 0 || strcmp(display, "spice") == 0;
        if (strncmp(os, "linux", 5) == 0)
                d->gpu = VM_GPU_VIRTIO;
        else if ((win || winsrv) && !spicey)
                d->gpu = VM_GPU_VIRTIO;
        else {
                d->gpu = VM_GPU_STD;
                if (!strstr(os, "bsd"))
                        say(&q, osv, INTEROP_CHANGED, true, "quickemu's %s becomes the standard VGA",
                            strcmp(os, "macos") == 0 ? "vmware-svga" : "qxl-vga");
        }
        const char *snd = val(&q, "sound_card");
        if (!snd)
                snd = strcmp(os, "freedos") == 0 ? "sb16" : strstr(os, "solaris") ? "ac97" : "intel-hda";
        if (strcmp(snd, "ich9-intel-hda") == 0)
                d->sound = VM_SOUND_HDA;
        else if (strcmp(snd, "intel-hda") == 0) {
                d->sound = VM_SOUND_HDA;
                say(&q, var(&q, "sound_card"), INTEROP_CHANGED, true, "quickemu's intel-hda (ICH6) becomes ICH9 HD "
                    "Audio, the same codec on Q35's controller");
        } else if (strcmp(snd, "ac97") == 0)
                d->sound = VM_SOUND_AC97;
        else if (strcmp(snd, "virtio-sound-pci") == 0)
                d->sound = VM_SOUND_VIRTIO;
        else if (strcmp(snd, "none") == 0)
                d->sound = VM_SOUND_NONE;
        else {
                d->sound = VM_SOUND_HDA;
                say(&q, var(&q, "sound_card"), INTEROP_CHANGED, true, "sound '%s' becomes ICH9 HD Audio", snd);
        }
        const char *mouse = val(&q, "mouse");
        d->input = mouse && strcmp(mouse, "virtio") == 0 ? VM_INPUT_VIRTIO : VM_INPUT_USB_TABLET;
        /* What Phyllome has no place for. */
        static const char *const runtime[] = { "viewer", "spice_port", "monitor", "monitor_telnet_port",
                                               "monitor_telnet_host", "monitor_cmd", "serial", "serial_telnet_port",
                                               "serial_telnet_host", "width", "height", "keyboard",
                                               "keyboard_layout", "usb_controller", "sound_duplex", "braille",
                                               "macos_release", "disk_size", "preallocation", NULL };
        for (size_t i = 0; runtime[i]; i++) {
                struct qvar *v = var(&q, runtime[i]);
                if (v)
                        say(&q, v, INTEROP_IMPLIED, false, "'%s' is quickemu's choice when it creates or runs the VM; "
                            "Phyllome makes its own", v->key);
        }
        struct qvar *pd = var(&q, "public_dir");
        if (pd)
                say(&q, pd, INTEROP_DROPPED, false, "quickemu's public folder share is not kept; 'phyllo share add' "
                    "shares a folder");
        for (size_t i = 0; i < q.n; i++)
                if (!q.v[i].used)
                        say(&q, &q.v[i], INTEROP_DROPPED, true, "'%s' is not modelled by Phyllome and is left out%s",
                            q.v[i].key, strcmp(q.v[i].key, "extra_args") == 0 ? " (QEMU arguments of its own)" : "");
        return 0;
}

int interop_quickemu_parse(const char *source, const char *text, const struct interop_opts *o,
                           struct interop_plan *ret, phy_error *err) {
        *ret = (struct interop_plan) { 0 };
        struct qconf q = { .source = source, .dir = o->base_dir ? o->base_dir : ".", .p = ret, .o = o, .err = err };
        int r = parse(&q, text);
        if (r >= 0)
                r = build(&q, source, o, err);
        qconf_done(&q);
        return r;
}

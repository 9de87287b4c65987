/* SPDX-License-Identifier: MIT */
/*
 * A libvirt domain XML into an import plan (docs/interop.md has the table).
 * Each element the mapping reads is marked; afterwards every element left
 * unmarked is reported as not modelled, so nothing is dropped silently,
 * including elements this file has never heard of.
 */
#include "interop.h"

#include <ctype.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "value.h"
#include "vm/profile.h"
#include "xml-internal.h"

DEFINE_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)

/* The namespace Phyllome's export writes its own facts under (<metadata>). */
#define PHYLLOME_NS "https://phyllome.org/xmlns/libvirt/1"
#define LIBOSINFO_NS "http://libosinfo.org/xmlns/libvirt/domain/1.0"

/* The VM's own directory does not exist yet: every source lies outside it,
 * so only the host's allowed directories can admit it. */
#define NO_VM_DIR "/nonexistent/phyllome-import"

struct lv {
        const char *source;
        const struct interop_opts *o;
        struct interop_plan *p;
        phy_error *err;
        unsigned n_data;                /* disks after the first */
        bool spice;
        bool vdagent;                   /* a spicevmc vdagent channel was seen */
        xmlNodePtr vdagent_node;
        xmlNodePtr phyllome_md;         /* <phyllome:vm> of Phyllome's export */
};

/* "/domain/devices/disk[2]" and the line. */
static void where(xmlNodePtr n, char *buf, size_t len) {
        _cleanup_free_ char *w = interop_xml_where(n);
        snprintf(buf, len, "%s", w ? w : "?");
}

#define bad(l, n, ...) ix_bad((l)->err, (l)->source, (n), __VA_ARGS__)
#define say(l, n, ...) ix_say(&(l)->p->report, (n), __VA_ARGS__)

/* A host path of the domain: absolute, single-line, and inside the
 * directories this host allows (the containment rules). */
static int check_path(struct lv *l, xmlNodePtr n, const char *path) {
        if (path[0] != '/')
                return bad(l, n, "the path '%s' is relative; libvirt names host files by absolute paths", path);
        for (const char *c = path; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        return bad(l, n, "the path has a control character");
        char what[512], w[256];
        where(n, w, sizeof w);
        snprintf(what, sizeof what, "%s:%ld: <%s> (%s)", l->source, xmlGetLineNo(n), (const char *) n->name, w);
        return vm_path_check_here(NO_VM_DIR, what, path, l->err);
}

static int oom(struct lv *l) {
        return phy_error_set(l->err, ENOMEM, "out of memory");
}

/* ---- sizes ---- */

static int parse_scaled(struct lv *l, xmlNodePtr n, uint64_t *ret) {
        _cleanup_free_ char *v = ix_text(n), *unit = ix_attr(n, "unit");
        unsigned long long x;
        if (!v || parse_uint(v, UINT64_MAX, &x) < 0)
                return bad(l, n, "'%s' is not a whole number", v ? v : "");
        static const struct { const char *u; uint64_t m; } units[] = {
                { "b", 1 }, { "bytes", 1 }, { "KB", 1000 }, { "k", 1024 }, { "KiB", 1024 }, { "MB", 1000000 },
                { "M", 1u << 20 }, { "MiB", 1u << 20 }, { "GB", 1000000000 }, { "G", 1u << 30 },
                { "GiB", 1u << 30 }, { "TB", 1000000000000ull }, { "T", 1ull << 40 }, { "TiB", 1ull << 40 },
        };
        uint64_t m = 1024;      /* libvirt's default unit: KiB */
        if (unit) {
                m = 0;
                for (size_t i = 0; i < ELEMENTSOF(units) && !m; i++)
                        if (strcmp(unit, units[i].u) == 0)
                                m = units[i].m;
                if (!m)
                        return bad(l, n, "unknown unit '%s'", unit);
        }
        if (x > UINT64_MAX / m)
                return bad(l, n, "the size is too large");
        *ret = x * m;
        return 0;
}

static unsigned uix_attr(xmlNodePtr n, const char *name, unsigned dflt) {
        _cleanup_free_ char *v = ix_attr(n, name);
        unsigned long long x;
        return v && parse_uint(v, 65535, &x) == 0 ? (unsigned) x : dflt;
}

/* ---- arrays of the definition ---- */

#define GROW(arr, n)                                                                    \
        ({                                                                              \
                __typeof__(arr) g_ = realloc((arr), ((n) + 1) * sizeof *(arr));         \
                if (g_) {                                                               \
                        (arr) = g_;                                                     \
                        memset(&(arr)[(n)], 0, sizeof *(arr));                          \
                }                                                                       \
                g_ ? &(arr)[(n)++] : NULL;                                              \
        })

/* A name from libvirt's user alias "ua-<kind>-NAME" (what the export writes). */
static char *alias_name(xmlNodePtr dev, const char *kind) {
        xmlNodePtr a = ix_kid(dev, "alias");
        _cleanup_free_ char *v = ix_attr(a, "name");
        size_t kl = strlen(kind);
        if (v && strncmp(v, "ua-", 3) == 0 && strncmp(v + 3, kind, kl) == 0 && v[3 + kl] == '-' &&
            vm_name_valid(v + 4 + kl))
                return strdup(v + 4 + kl);
        return NULL;
}

static bool disk_name_taken(const struct vm_def *d, const char *name) {
        for (size_t i = 0; i < d->n_disks; i++)
                if (strcmp(d->disks[i].name, name) == 0)
                        return true;
        return false;
}

/* ---- the top ---- */

static const struct { const char *needle, *profile; } os_profiles[] = {
        { "microsoft.com/win/11", "windows11" }, { "microsoft.com/win/2k22", "windows11" },
        { "microsoft.com/win/10", "windows10" }, { "microsoft.com/win/", "windows10" },
        { "freebsd.org/", "freebsd" }, { "apple.com/", "macos" },
        { "debian.org/", "linux" }, { "ubuntu.com/", "linux" }, { "fedoraproject.org/", "linux" },
        { "redhat.com/", "linux" }, { "centos.org/", "linux" }, { "opensuse.org/", "linux" },
        { "suse.com/", "linux" }, { "archlinux.org/", "linux" }, { "alpinelinux.org/", "linux" },
        { "almalinux.org/", "linux" }, { "rockylinux.org/", "linux" }, { "gentoo.org/", "linux" },
        { "nixos.org/", "linux" }, { "linux", "linux" },
};

static int map_metadata(struct lv *l, xmlNodePtr md, char **ret_profile) {
        for (xmlNodePtr c = md ? md->children : NULL; c; c = c->next) {
                if (c->type != XML_ELEMENT_NODE || !c->ns || !c->ns->href)
                        continue;
                const char *ns = (const char *) c->ns->href;
                if (strcmp(ns, PHYLLOME_NS) == 0 && ix_is(c, "vm")) {
                        ix_mark(c);
                        l->phyllome_md = c;
                        _cleanup_free_ char *prof = ix_attr(c, "profile");
                        if (prof && vm_profile_find(prof)) {
                                free(*ret_profile);
                                *ret_profile = TAKE_PTR(prof);
                        }
                } else if (strcmp(ns, LIBOSINFO_NS) == 0 && ix_is(c, "libosinfo")) {
                        ix_mark(c);
                        xmlNodePtr os = ix_kid(c, "os");
                        _cleanup_free_ char *id = ix_attr(os, "id");
                        for (size_t i = 0; id && !*ret_profile && i < ELEMENTSOF(os_profiles); i++)
                                if (strstr(id, os_profiles[i].needle))
                                        *ret_profile = strdup(os_profiles[i].profile);
                        if (id && *ret_profile)
                                say(l, os, INTEROP_NOTE, false, "libosinfo's OS '%s': profile %s", id, *ret_profile);
                }
        }
        return 0;
}

static int map_memory(struct lv *l, xmlNodePtr dom) {
        struct vm_def *d = &l->p->def;
        xmlNodePtr m = ix_kid(dom, "memory"), cur = ix_kid(dom, "currentMemory");
        int r;
        if (!m)
                return bad(l, dom, "the domain has no <memory>");
        if ((r = parse_scaled(l, m, &d->memory)) < 0)
                return r;
        if (cur) {
                uint64_t c;
                if ((r = parse_scaled(l, cur, &c)) < 0)
                        return r;
                if (c != d->memory)
                        say(l, cur, INTEROP_CHANGED, true, "the guest started with %llu KiB of its %llu KiB "
                            "(ballooned); Phyllome gives it all of it", (unsigned long long) (c / 1024),
                            (unsigned long long) (d->memory / 1024));
        }
        xmlNodePtr mb = ix_kid(dom, "memoryBacking");
        if (mb) {
                xmlNodePtr src = ix_kid(mb, "source"), acc = ix_kid(mb, "access");
                _cleanup_free_ char *st = ix_attr(src, "type"), *am = ix_attr(acc, "mode");
                if ((!src || (st && strcmp(st, "memfd") == 0)) && (!acc || (am && strcmp(am, "shared") == 0)))
                        say(l, mb, INTEROP_IMPLIED, false, "memfd-backed shared guest memory: Phyllome backs the "
                            "guest's RAM with a shared memfd whenever a virtiofs share needs it");
                else
                        say(l, mb, INTEROP_DROPPED, false, "memory backing '%s'%s%s is not modelled; the guest's RAM "
                            "is ordinary anonymous memory", st ? st : "default", am ? ", access " : "", am ? am : "");
        }
        return 0;
}

static int map_cpu(struct lv *l, xmlNodePtr dom) {
        struct vm_def *d = &l->p->def;
        xmlNodePtr vcpu = ix_kid(dom, "vcpu");
        _cleanup_free_ char *vt = ix_text(vcpu);
        unsigned long long nv = 1;
        if (vt && parse_uint(vt, 4096, &nv) < 0)
                return bad(l, vcpu, "'%s' is not a number of vCPUs", vt);
        if (vcpu && ix_attr_is(vcpu, "placement", "auto"))
                say(l, vcpu, INTEROP_DROPPED, false, "automatic NUMA placement (numad) is not modelled");
        _cleanup_free_ char *cur = ix_attr(vcpu, "current");
        if (cur)
                say(l, vcpu, INTEROP_CHANGED, true, "only %s of the %llu vCPUs were online; Phyllome starts all", cur,
                    nv);
        d->cores = (unsigned) nv;
        d->threads = 1;

        xmlNodePtr cpu = ix_kid(dom, "cpu");
        if (!cpu)
                return 0;
        _cleanup_free_ char *mode = ix_attr(cpu, "mode");
        if (!mode || strcmp(mode, "custom") == 0) {
                xmlNodePtr model = ix_kid(cpu, "model");
                _cleanup_free_ char *name = ix_text(model);
                if (name && name[0]) {
                        size_t len = strlen(name) + 1;
                        _cleanup_free_ char *spec = strdup(name);
                        if (!spec)
                                return oom(l);
                        for (xmlNodePtr f = cpu->children; f; f = f->next) {
                                if (!ix_is(f, "feature"))
                                        continue;
                                ix_mark(f);
                                _cleanup_free_ char *fn = ix_attr(f, "name"), *pol = ix_attr(f, "policy");
                                char sign = pol && (strcmp(pol, "disable") == 0 || strcmp(pol, "forbid") == 0) ? '-'
                                                                                                             : '+';
                                if (!fn)
                                        continue;
                                if (pol && strcmp(pol, "optional") == 0)
                                        say(l, f, INTEROP_CHANGED, true, "the optional feature '%s' becomes required",
                                            fn);
                                len += strlen(fn) + 2;
                                char *n = realloc(spec, len);
                                if (!n)
                                        return oom(l);
                                spec = n;
                                size_t at = strlen(spec);
                                snprintf(spec + at, len - at, ",%c%s", sign, fn);
                        }
                        d->cpu_model = TAKE_PTR(spec);
                }
        } else if (strcmp(mode, "host-passthrough") == 0 || strcmp(mode, "maximum") == 0) {
                /* Phyllome's own default: the host's CPU under KVM, QEMU's max (less la57, erms, fsrm) under TCG. */
                _cleanup_free_ char *check = ix_attr(cpu, "check"), *mig = ix_attr(cpu, "migratable");
                (void) check;
                (void) mig;
        } else if (strcmp(mode, "host-model") == 0) {
                say(l, cpu, INTEROP_CHANGED, true, "CPU mode host-model becomes the host's CPU passed through "
                    "(Phyllome's default): the guest may see more CPU features");
        } else
                return bad(l, cpu, "unknown CPU mode '%s'", mode);
        xmlNodePtr topo = ix_kid(cpu, "topology");
        if (topo) {
                unsigned s = uix_attr(topo, "sockets", 1), di = uix_attr(topo, "dies", 1), c = uix_attr(topo, "cores", 1),
                         t = uix_attr(topo, "threads", 1);
                if (!s || !di || !c || !t)
                        return bad(l, topo, "a topology count is 0");
                if (t > 2) {
                        say(l, topo, INTEROP_CHANGED, true, "%u threads per core become %u cores of 1 thread "
                            "(Phyllome has 1 or 2 threads per core)", t, c * t);
                        c *= t;
                        t = 1;
                }
                if (s * di > 1)
                        say(l, topo, INTEROP_CHANGED, true, "%u sockets x %u dies x %u cores become one socket of "
                            "%u cores (Phyllome's topology is one socket)", s, di, c, s * di * c);
                d->cores = s * di * c;
                d->threads = t;
                if ((unsigned long long) d->cores * d->threads != nv)
                        say(l, topo, INTEROP_CHANGED, true, "the topology has %u vCPUs, <vcpu> says %llu; Phyllome "
                            "follows the topology", d->cores * d->threads, nv);
        }
        return 0;
}

static int map_os(struct lv *l, xmlNodePtr dom) {
        struct vm_def *d = &l->p->def;
        xmlNodePtr os = ix_kid(dom, "os");
        if (!os)
                return bad(l, dom, "the domain has no <os>");
        xmlNodePtr type = ix_kid(os, "type");
        _cleanup_free_ char *arch = ix_attr(type, "arch"), *machine = ix_attr(type, "machine"), *kind = ix_text(type);
        if (kind && strcmp(kind, "hvm") != 0)
                return bad(l, type, "a '%s' domain is no full virtual machine; Phyllome runs hvm ones", kind);
        if (arch && strcmp(arch, "x86_64") != 0)
                return bad(l, type, "architecture '%s': Phyllome runs x86_64 guests", arch);
        if (!machine || strcmp(machine, "q35") == 0 || strncmp(machine, "pc-q35-", 7) == 0) {
                if (!(d->machine = strdup(machine ? machine : "q35")))
                        return oom(l);
        } else {
                if (!(d->machine = strdup("q35")))
                        return oom(l);
                say(l, type, INTEROP_CHANGED, true, "machine type '%s' becomes q35 (Phyllome runs Q35 only): the "
                    "guest sees a new chipset (PCIe, AHCI); Windows re-detects its devices, some guests need their "
                    "initramfs to hold the new drivers", machine);
        }
        _cleanup_free_ char *fw = ix_attr(os, "firmware");
        xmlNodePtr loader = ix_kid(os, "loader"), nvram = ix_kid(os, "nvram"), fwe = ix_kid(os, "firmware");
        _cleanup_free_ char *ltype = ix_attr(loader, "type"), *secure = ix_attr(loader, "secure"), *lpath = ix_text(loader);
        bool efi = (fw && strcmp(fw, "efi") == 0) || (loader && ltype && strcmp(ltype, "pflash") == 0) ||
                   (lpath && (strstr(lpath, "OVMF") || strstr(lpath, "edk2")));
        d->firmware = efi ? VM_FW_UEFI : VM_FW_BIOS;
        if (fw && strcmp(fw, "efi") != 0 && strcmp(fw, "bios") != 0)
                return bad(l, os, "unknown firmware '%s'", fw);
        bool sb = secure && strcmp(secure, "yes") == 0;
        xmlNodePtr no_keys = NULL;
        for (xmlNodePtr f = fwe ? fwe->children : NULL; f; f = f->next)
                if (ix_is(f, "feature")) {
                        ix_mark(f);
                        _cleanup_free_ char *fname = ix_attr(f, "name"), *en = ix_attr(f, "enabled");
                        bool on = en && strcmp(en, "yes") == 0;
                        if (fname && strcmp(fname, "secure-boot") == 0)
                                sb = sb || on;
                        else if (fname && strcmp(fname, "enrolled-keys") == 0 && !on)
                                no_keys = f;
                }
        if (no_keys && sb)
                say(l, no_keys, INTEROP_CHANGED, true, "Secure Boot without enrolled keys: Phyllome's fresh vars with "
                    "Secure Boot carry Microsoft's keys");
        if (efi) {
                d->secure_boot = sb ? VM_ON : VM_OFF;
                if (lpath && lpath[0])
                        say(l, loader, INTEROP_IMPLIED, false, "the firmware '%s': Phyllome picks OVMF%s from QEMU's "
                            "firmware descriptors", lpath, sb ? " with Secure Boot" : "");
                _cleanup_free_ char *tmpl = ix_attr(nvram, "template"), *vars = ix_text(nvram);
                if (vars && vars[0]) {
                        int r = check_path(l, nvram, vars);
                        if (r < 0)
                                return r;
                        if (access(vars, R_OK) == 0) {
                                if ((r = interop_plan_add_file(l->p, INTEROP_FILE, vars, "OVMF_VARS.fd", NULL, NULL,
                                                               "<nvram>", l->err)) < 0)
                                        return r;
                        } else
                                say(l, nvram, INTEROP_CHANGED, true, "the UEFI vars '%s' cannot be read (%s): the VM "
                                    "starts with fresh vars (boot entries and enrolled keys are lost)", vars,
                                    strerror(errno));
                } else if (nvram)
                        say(l, nvram, INTEROP_NOTE, false, "no UEFI vars file named: fresh vars at the first start");
                (void) tmpl;
        } else if (sb) {
                return bad(l, loader ? loader : os, "Secure Boot without UEFI firmware");
        }
        /* Direct kernel boot. */
        xmlNodePtr k = ix_kid(os, "kernel"), i = ix_kid(os, "initrd"), c = ix_kid(os, "cmdline");
        _cleanup_free_ char *kp = ix_text(k), *ip = ix_text(i), *cp = ix_text(c);
        int r;
        if (kp && kp[0]) {
                if ((r = check_path(l, k, kp)) < 0)
                        return r;
                d->kernel = TAKE_PTR(kp);
        }
        if (ip && ip[0]) {
                if ((r = check_path(l, i, ip)) < 0)
                        return r;
                d->initrd = TAKE_PTR(ip);
        }
        if (cp && cp[0])
                d->append = TAKE_PTR(cp);
        /* Boot order: Phyllome's own. */
        for (xmlNodePtr b = os->children; b; b = b->next)
                if (ix_is(b, "boot")) {
                        ix_mark(b);
                        _cleanup_free_ char *dev = ix_attr(b, "dev");
                        say(l, b, INTEROP_IMPLIED, false, "boot device '%s': Phyllome boots the install CD-ROM first "
                            "while the disk is empty, then the first disk", dev ? dev : "?");
                }
        xmlNodePtr bm = ix_kid(os, "bootmenu");
        if (bm)
                say(l, bm, INTEROP_DROPPED, false, "the firmware's boot menu setting is not modelled");
        return 0;
}

static void hyperv_names(const char *const *names, char *buf, size_t len) {
        size_t at = 0;
        buf[0] = '\0';
        for (; *names && at < len; names++)
                at += (size_t) snprintf(buf + at, len - at, "%s%s", at ? ", " : "", *names);
}

/* The Hyper-V set Phyllome turns on (src/qemu/argv.c, under KVM). */
static const char *const hv_phyllome[] = { "relaxed", "vapic", "spinlocks", "vpindex", "runtime", "synic",
                                           "stimer", "reset", "frequencies", "reenlightenment", "tlbflush", "ipi",
                                           NULL };

static int map_features(struct lv *l, xmlNodePtr dom) {
        struct vm_def *d = &l->p->def;
        xmlNodePtr f = ix_kid(dom, "features");
        d->hyperv = VM_OFF;
        d->kvm_hidden = VM_OFF;
        d->smm = d->secure_boot == VM_ON ? VM_ON : VM_OFF;
        for (xmlNodePtr c = f ? f->children : NULL; c; c = c->next) {
                if (c->type != XML_ELEMENT_NODE)
                        continue;
                _cleanup_free_ char *state = ix_attr(c, "state");
                bool off = state && strcmp(state, "off") == 0;
                if (ix_is(c, "acpi") || ix_is(c, "apic") || ix_is(c, "pae") || ix_is(c, "vmport") || ix_is(c, "ioapic") ||
                    ix_is(c, "vmcoreinfo")) {
                        ix_mark(c);
                        say(l, c, INTEROP_IMPLIED, false, "<%s%s>: Phyllome's Q35 machine decides it", c->name,
                            off ? " state='off'" : "");
                } else if (ix_is(c, "smm")) {
                        ix_mark_all(c->children);
                        ix_mark(c);
                        d->smm = off ? VM_OFF : VM_ON;
                } else if (ix_is(c, "hyperv")) {
                        ix_mark(c);
                        _cleanup_free_ char *mode = ix_attr(c, "mode");
                        if (mode && strcmp(mode, "passthrough") == 0) {
                                d->hyperv = VM_ON;
                                say(l, c, INTEROP_CHANGED, true, "Hyper-V passthrough becomes Phyllome's set of "
                                    "enlightenments");
                                continue;
                        }
                        char extra[512] = "", missing[512] = "";
                        bool seen[ELEMENTSOF(hv_phyllome)] = { false };
                        for (xmlNodePtr h = c->children; h; h = h->next) {
                                if (h->type != XML_ELEMENT_NODE)
                                        continue;
                                ix_mark(h);
                                ix_mark_all(h->children);
                                _cleanup_free_ char *hs = ix_attr(h, "state");
                                if (hs && strcmp(hs, "off") == 0)
                                        continue;
                                size_t k = 0;
                                while (hv_phyllome[k] && strcmp(hv_phyllome[k], (const char *) h->name) != 0)
                                        k++;
                                if (hv_phyllome[k]) {
                                        seen[k] = true;
                                        if (ix_is(h, "spinlocks") && uix_attr(h, "retries", 8191) != 8191)
                                                say(l, h, INTEROP_CHANGED, true, "spinlock retries %u become 8191 "
                                                    "(0x1fff)", uix_attr(h, "retries", 8191));
                                        continue;
                                }
                                size_t at = strlen(extra);
                                snprintf(extra + at, sizeof extra - at, "%s%s", at ? ", " : "", h->name);
                        }
                        bool any = false;
                        for (size_t k = 0; hv_phyllome[k]; k++)
                                any = any || seen[k];
                        if (!any) {
                                if (extra[0])
                                        say(l, c, INTEROP_DROPPED, true, "Hyper-V features %s are not modelled",
                                            extra);
                                continue;
                        }
                        d->hyperv = VM_ON;
                        for (size_t k = 0; hv_phyllome[k]; k++)
                                if (!seen[k]) {
                                        size_t at = strlen(missing);
                                        snprintf(missing + at, sizeof missing - at, "%s%s", at ? ", " : "",
                                                 hv_phyllome[k]);
                                }
                        if (missing[0] && strcmp(missing, "ipi") != 0)
                                say(l, c, INTEROP_CHANGED, true, "Hyper-V: Phyllome's set also turns on %s", missing);
                        if (extra[0])
                                say(l, c, INTEROP_DROPPED, true, "Hyper-V features %s are not in Phyllome's set and "
                                    "are left out", extra);
                        if (strcmp(missing, "ipi") == 0) {
                                char all[256];
                                hyperv_names(hv_phyllome, all, sizeof all);
                                say(l, c, INTEROP_NOTE, false, "Hyper-V on: Phyllome's set is %s (ipi besides the "
                                    "domain's; under TCG only the ones QEMU allows there)", all);
                        }
                } else if (ix_is(c, "kvm")) {
                        ix_mark(c);
                        for (xmlNodePtr h = c->children; h; h = h->next) {
                                if (h->type != XML_ELEMENT_NODE)
                                        continue;
                                ix_mark(h);
                                _cleanup_free_ char *hs = ix_attr(h, "state");
                                if (ix_is(h, "hidden"))
                                        d->kvm_hidden = hs && strcmp(hs, "on") == 0 ? VM_ON : VM_OFF;
                                else
                                        say(l, h, INTEROP_DROPPED, true, "KVM feature '%s' is not modelled", h->name);
                        }
                }
        }
        return 0;
}

static int map_clock(struct lv *l, xmlNodePtr dom) {
        struct vm_def *d = &l->p->def;
        xmlNodePtr c = ix_kid(dom, "clock");
        _cleanup_free_ char *off = ix_attr(c, "offset");
        d->rtc_localtime = VM_OFF;
        if (!c)
                return 0;
        if (off && strcmp(off, "localtime") == 0)
                d->rtc_localtime = VM_ON;
        else if (off && strcmp(off, "utc") != 0)
                say(l, c, INTEROP_CHANGED, true, "clock offset '%s' becomes UTC", off);
        for (xmlNodePtr t = c->children; t; t = t->next)
                if (ix_is(t, "timer")) {
                        ix_mark(t);
                        _cleanup_free_ char *tn = ix_attr(t, "name");
                        say(l, t, INTEROP_IMPLIED, false, "timer '%s': Phyllome sets QEMU's timers itself (RTC drift "
                            "fix with localtime, Hyper-V clock with its enlightenments)", tn ? tn : "?");
                }
        return 0;
}

/* ---- devices ---- */

static int map_disk(struct lv *l, xmlNodePtr dev) {
        struct vm_def *d = &l->p->def;
        _cleanup_free_ char *type = ix_attr(dev, "type"), *device = ix_attr(dev, "device");
        xmlNodePtr src = ix_kid(dev, "source"), tgt = ix_kid(dev, "target"), drv = ix_kid(dev, "driver"),
                   ro = ix_kid(dev, "readonly");
        _cleanup_free_ char *bus = ix_attr(tgt, "bus"), *tdev = ix_attr(tgt, "dev"), *fmt = ix_attr(drv, "type");
        const char *kind = device ? device : "disk";
        _cleanup_free_ char *path = NULL;
        if (type && strcmp(type, "file") == 0)
                path = ix_attr(src, "file");
        else if (type && strcmp(type, "block") == 0)
                path = ix_attr(src, "dev");
        else if (src || (type && strcmp(type, "file") != 0))
                return bad(l, dev, "a disk of type '%s' (a pool volume, a network or NVMe disk) cannot be imported; "
                           "make it a file first (virsh vol-download, qemu-img convert)", type ? type : "?");
        /* What libvirt tunes itself; Phyllome picks its own. */
        ix_mark(ix_kid(dev, "address"));
        ix_mark(ix_kid(dev, "alias"));
        for (xmlNodePtr c = dev->children; c; c = c->next)
                if (ix_is(c, "backingStore")) {
                        ix_mark(c);
                        if (c->children && ix_kid(c, "source"))
                                return bad(l, c, "the disk has a backing chain; an imported image may not name other "
                                           "host files: flatten it first (qemu-img convert)");
                }
        if (drv) {
                _cleanup_free_ char *cache = ix_attr(drv, "cache"), *io = ix_attr(drv, "io"), *disc = ix_attr(drv, "discard");
                if (cache || io || disc)
                        say(l, drv, INTEROP_IMPLIED, false, "driver tuning (cache, io, discard): Phyllome's own "
                            "(writeback, io_uring when available, discard=unmap)");
        }
        xmlNodePtr boot = ix_kid(dev, "boot");
        if (boot) {
                _cleanup_free_ char *ord = ix_attr(boot, "order");
                say(l, boot, INTEROP_IMPLIED, false, "boot order %s: Phyllome boots the install CD-ROM first while "
                    "the disk is empty, then the first disk", ord ? ord : "?");
        }
        if (path) {
                int r = check_path(l, src, path);
                if (r < 0)
                        return r;
        }

        if (strcmp(kind, "cdrom") == 0) {
                struct vm_cdrom *c = GROW(d->cdroms, d->n_cdroms);
                if (!c)
                        return oom(l);
                c->name = alias_name(dev, "cdrom");
                if (!c->name) {
                        bool drivers = path && strstr(path, "virtio-win") != NULL;
                        const char *base = drivers ? "drivers" : d->n_cdroms == 1 ? "install" : "cdrom";
                        if (asprintf(&c->name, "%s%s", base, d->n_cdroms > 1 && !drivers ? tdev ? "-" : "" : "") < 0)
                                return oom(l);
                        if (d->n_cdroms > 1 && !drivers) {
                                free(c->name);
                                if (asprintf(&c->name, "cdrom-%s", tdev ? tdev : "x") < 0)
                                        return oom(l);
                        }
                }
                /* An empty drive stays one ([cdrom NAME] without a path): phyllo cdrom insert fills it. */
                if (path && !(c->path = strdup(path)))
                        return oom(l);
                if (!bus || strcmp(bus, "sata") == 0)
                        c->bus = VM_BUS_SATA;
                else if (strcmp(bus, "scsi") == 0)
                        c->bus = VM_BUS_SCSI;
                else if (strcmp(bus, "ide") == 0)
                        c->bus = VM_BUS_IDE;
                else {
                        c->bus = VM_BUS_SATA;
                        say(l, tgt, INTEROP_CHANGED, true, "a CD-ROM on bus '%s' moves to SATA", bus);
                }
                if (path)
                        say(l, src, INTEROP_NOTE, false, "the ISO '%s' is used where it is", path);
                else
                        say(l, dev, INTEROP_NOTE, false, "an empty CD-ROM drive '%s': kept empty ('phyllo cdrom "
                            "insert' puts an ISO in, also while the VM runs)", c->name);
                return 0;
        }
        if (strcmp(kind, "disk") != 0) {
                say(l, dev, INTEROP_DROPPED, true, "a %s device is not modelled", kind);
                return 0;
        }
        if (!path)
                return bad(l, dev, "the disk has no source");
        struct vm_disk *k = GROW(d->disks, d->n_disks);
        if (!k)
                return oom(l);
        /* Names of the disks before this one (this slot has none yet). */
        d->n_disks--;
        k->name = alias_name(dev, "disk");
        if (k->name && disk_name_taken(d, k->name)) {
                d->n_disks++;
                return bad(l, dev, "a second disk named '%s'", k->name);
        }
        if (!k->name) {
                const char *want = d->n_disks == 0 ? "system" : tdev && vm_name_valid(tdev) ? tdev : NULL;
                char buf[32];
                while (!want || disk_name_taken(d, want)) {
                        snprintf(buf, sizeof buf, "data%u", ++l->n_data);
                        want = buf;
                }
                k->name = strdup(want);
        }
        d->n_disks++;
        if (!k->name)
                return oom(l);
        k->readonly = ro != NULL;
        if (ix_attr_is(dev, "snapshot", "no") || ix_kid(dev, "shareable")) {
                xmlNodePtr sh = ix_kid(dev, "shareable");
                if (sh)
                        say(l, sh, INTEROP_DROPPED, false, "a shareable disk is not modelled; Phyllome locks it for "
                            "one VM");
        }
        /* The bus. */
        if (!bus || strcmp(bus, "virtio") == 0)
                k->bus = VM_BUS_VIRTIO;
        else if (strcmp(bus, "sata") == 0)
                k->bus = VM_BUS_SATA;
        else if (strcmp(bus, "scsi") == 0)
                k->bus = VM_BUS_SCSI;
        else if (strcmp(bus, "ide") == 0)
                k->bus = VM_BUS_IDE;
        else if (strcmp(bus, "nvme") == 0)
                k->bus = VM_BUS_NVME;
        else {
                k->bus = VM_BUS_SATA;
                say(l, tgt, INTEROP_CHANGED, true, "disk '%s' on bus '%s' moves to SATA: the guest sees a new disk "
                    "controller (AHCI drivers are in every current OS)", k->name, bus);
        }
        /* The image. */
        bool native = fmt && (strcmp(fmt, "qcow2") == 0 || strcmp(fmt, "raw") == 0);
        bool block = type && strcmp(type, "block") == 0;
        if (!fmt)
                say(l, drv ? drv : dev, INTEROP_NOTE, false, "no format named for '%s': qemu-img probes it", path);
        if (l->o->reference && native && !block) {
                k->path = strdup(path);
                k->format = strdup(fmt);
                say(l, src, INTEROP_NOTE, false, "disk '%s' is used where it is ('%s'), not copied", k->name, path);
        } else {
                const char *out = native && strcmp(fmt, "raw") == 0 && !block ? "raw" : "qcow2";
                if (asprintf(&k->path, "disk-%s.%s", k->name, strcmp(out, "raw") == 0 ? "img" : "qcow2") < 0)
                        k->path = NULL;
                k->format = strdup(out);
                if (!native && fmt)
                        say(l, drv, INTEROP_CHANGED, false, "the %s image '%s' is converted to qcow2", fmt, path);
                if (l->o->reference && (!native || block))
                        say(l, src, INTEROP_NOTE, false, "disk '%s' is copied although references were asked for: "
                            "Phyllome uses qcow2 and raw files in place, no %s", k->name, block ? "block device" : fmt);
                char what[300];
                snprintf(what, sizeof what, "%s:%ld: <disk> '%s'", l->source, xmlGetLineNo(dev), path);
                int r = interop_plan_add_file(l->p, INTEROP_DISK, path, k->path, fmt, out, what, l->err);
                if (r < 0)
                        return r;
        }
        if (!k->path || !k->format)
                return oom(l);
        return 0;
}

/* A port forward the domain asks for (<portForward>, Phyllome's own
 * <phyllome:forward>): the domain's author chose it, not this host's
 * owner, so it listens on loopback only; one on another address keeps its
 * ports on loopback, reported (issue 12).  Every forward is listed in the
 * report.  spec is valid (value_forward_parse). */
static int import_forward(struct lv *l, xmlNodePtr at, const char *spec, struct vm_nic *n) {
        struct value_forward f;
        char lo[64];
        if (value_forward_parse(spec, &f) < 0)
                return bad(l, at, "the forward '%s' is not one Phyllome can make", spec);
        if (f.addr[0] && strncmp(f.addr, "127.", 4) != 0) {
                snprintf(lo, sizeof lo, "%s:%u:%u", f.proto, f.host_port, f.guest_port);
                say(l, at, INTEROP_CHANGED, false, "the forward '%s' listened on %s, which an imported domain may "
                    "not choose: it listens on loopback here ('%s'); 'phyllo net forward' opens it wider if you "
                    "mean it", spec, f.addr, lo);
                spec = lo;
        } else
                say(l, at, INTEROP_NOTE, false, "the forward '%s' (host port %u to guest port %u, on loopback)",
                    spec, f.host_port, f.guest_port);
        return strv_push(&n->forwards, spec) < 0 ? oom(l) : 0;
}

static int map_interface(struct lv *l, xmlNodePtr dev) {
        struct vm_def *d = &l->p->def;
        _cleanup_free_ char *type = ix_attr(dev, "type");
        xmlNodePtr mac = ix_kid(dev, "mac"), model = ix_kid(dev, "model"), src = ix_kid(dev, "source"),
                   be = ix_kid(dev, "backend");
        ix_mark(ix_kid(dev, "address"));
        ix_mark(ix_kid(dev, "alias"));
        ix_mark(ix_kid(dev, "target"));
        struct vm_nic *n = GROW(d->nics, d->n_nics);
        if (!n)
                return oom(l);
        n->name = alias_name(dev, "net");
        if (!n->name && asprintf(&n->name, "net%zu", d->n_nics - 1) < 0)
                n->name = NULL;
        if (!n->name)
                return oom(l);
        _cleanup_free_ char *addr = ix_attr(mac, "address");
        if (addr) {
                for (char *c = addr; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
                if (strlen(addr) != 17)
                        return bad(l, mac, "'%s' is no MAC address", addr);
                memcpy(n->mac, addr, 18);
        }
        _cleanup_free_ char *mt = ix_attr(model, "type");
        if (!mt) {
                n->model = VM_NIC_RTL8139;
                say(l, dev, INTEROP_NOTE, false, "no NIC model: libvirt's default, rtl8139");
        } else if (strcmp(mt, "virtio") == 0 || strcmp(mt, "virtio-non-transitional") == 0)
                n->model = VM_NIC_VIRTIO;
        else if (strcmp(mt, "e1000e") == 0)
                n->model = VM_NIC_E1000E;
        else if (strcmp(mt, "rtl8139") == 0)
                n->model = VM_NIC_RTL8139;
        else {
                n->model = VM_NIC_E1000E;
                say(l, model, INTEROP_CHANGED, true, "NIC model '%s' becomes e1000e: the guest sees a new network "
                    "card (in-box drivers in Windows and Linux; its network settings may reset)", mt);
        }
        _cleanup_free_ char *bt = ix_attr(be, "type");
        if (bt && strcmp(bt, "passt") == 0)
                n->backend = VM_NETBE_PASST;
        if (!type || strcmp(type, "user") == 0) {
                n->mode = VM_NET_USER;
        } else if (strcmp(type, "network") == 0) {
                _cleanup_free_ char *net = ix_attr(src, "network");
                n->mode = VM_NET_USER;
                say(l, dev, INTEROP_CHANGED, false, "libvirt network '%s' becomes user networking (NAT through "
                    "passt); 'phyllo net nic' sets an isolated network or a bridge", net ? net : "?");
        } else if (strcmp(type, "bridge") == 0) {
                _cleanup_free_ char *br = ix_attr(src, "bridge");
                if (!br || !vm_net_name_valid(br, 15))
                        return bad(l, src ? src : dev, "'%s' is no bridge name", br ? br : "");
                n->mode = VM_NET_BRIDGE;
                n->bridge = TAKE_PTR(br);
        } else {
                n->mode = VM_NET_USER;
                say(l, dev, INTEROP_CHANGED, false, "a '%s' interface becomes user networking", type);
        }
        /* passt's port forwards (libvirt 9.0: <portForward>). */
        for (xmlNodePtr pf = dev->children; pf; pf = pf->next) {
                if (!ix_is(pf, "portForward"))
                        continue;
                ix_mark(pf);
                _cleanup_free_ char *proto = ix_attr(pf, "proto"), *paddr = ix_attr(pf, "address");
                for (xmlNodePtr rg = pf->children; rg; rg = rg->next) {
                        if (!ix_is(rg, "range"))
                                continue;
                        ix_mark(rg);
                        unsigned start = uix_attr(rg, "start", 0), to = uix_attr(rg, "to", 0), end = uix_attr(rg, "end", 0);
                        if (!start || end) {
                                say(l, rg, INTEROP_DROPPED, false, "a port range is not modelled");
                                continue;
                        }
                        char spec[64];
                        bool lo = !paddr || strcmp(paddr, "127.0.0.1") == 0;
                        snprintf(spec, sizeof spec, "%s:%s%s%u:%u", proto ? proto : "tcp", lo ? "" : paddr,
                                 lo ? "" : ":", start, to ? to : start);
                        if (value_forward_parse(spec, NULL) < 0)
                                return bad(l, rg, "the forward '%s' is not one Phyllome can make", spec);
                        if (!paddr)
                                say(l, pf, INTEROP_CHANGED, false, "port %u listened on every address; Phyllome's "
                                    "forward listens on loopback", start);
                        int r = import_forward(l, rg, spec, n);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int map_graphics(struct lv *l, xmlNodePtr dev) {
        struct vm_def *d = &l->p->def;
        _cleanup_free_ char *type = ix_attr(dev, "type");
        if (d->display != VM_DISPLAY_UNSET && d->display != VM_DISPLAY_NONE) {
                say(l, dev, INTEROP_DROPPED, false, "a second display ('%s'): Phyllome has one", type ? type : "?");
                return 0;
        }
        ix_mark_all(dev->children);
        if (type && strcmp(type, "spice") == 0) {
                d->display = VM_DISPLAY_SPICE;
                l->spice = true;
                xmlNodePtr gl = NULL;
                for (xmlNodePtr c = dev->children; c; c = c->next)
                        if (ix_is(c, "gl"))
                                gl = c;
                d->gl = gl && ix_attr_is(gl, "enable", "yes") ? VM_ON : VM_OFF;
                say(l, dev, INTEROP_IMPLIED, false, "SPICE: Phyllome listens on a unix socket of the VM's run dir "
                    "(phyllo view)");
        } else if (type && strcmp(type, "vnc") == 0) {
                d->display = VM_DISPLAY_VNC;
                say(l, dev, INTEROP_IMPLIED, false, "VNC: Phyllome listens on loopback only");
        } else if (type && strcmp(type, "sdl") == 0) {
                d->display = VM_DISPLAY_SDL;
        } else {
                d->display = VM_DISPLAY_NONE;
                say(l, dev, INTEROP_DROPPED, false, "display '%s' is not modelled; the VM is headless",
                    type ? type : "?");
        }
        return 0;
}

static int map_video(struct lv *l, xmlNodePtr dev) {
        struct vm_def *d = &l->p->def;
        xmlNodePtr m = ix_kid(dev, "model");
        ix_mark(ix_kid(dev, "address"));
        ix_mark(ix_kid(dev, "alias"));
        if (d->gpu != VM_GPU_UNSET) {
                say(l, dev, INTEROP_DROPPED, true, "a second video device: Phyllome has one");
                return 0;
        }
        _cleanup_free_ char *t = ix_attr(m, "type");
        xmlNodePtr acc = ix_kid(m, "acceleration");
        bool accel3d = acc && ix_attr_is(acc, "accel3d", "yes");
        if (!t)
                return bad(l, dev, "a video device without a model");
        if (strcmp(t, "virtio") == 0)
                d->gpu = accel3d ? VM_GPU_VIRGL : VM_GPU_VIRTIO;
        else if (strcmp(t, "vga") == 0 || strcmp(t, "bochs") == 0)
                d->gpu = VM_GPU_STD;
        else if (strcmp(t, "none") == 0)
                d->gpu = VM_GPU_NONE;
        else {
                d->gpu = VM_GPU_STD;
                say(l, m, INTEROP_CHANGED, true, "video model '%s' becomes the standard VGA: the guest sees a new "
                    "display adapter%s", t, strcmp(t, "qxl") == 0 ? " (QXL's driver and SPICE's QXL acceleration "
                    "are gone; virtio-gpu is the modern choice: phyllo edit, [gpu] type = virtio)" : "");
        }
        if (strcmp(t, "bochs") == 0)
                say(l, m, INTEROP_CHANGED, true, "bochs-display becomes the standard VGA (the same Bochs VBE "
                    "interface, with legacy VGA)");
        _cleanup_free_ char *heads = ix_attr(m, "heads"), *vram = ix_attr(m, "vram");
        if ((heads && strcmp(heads, "1") != 0))
                say(l, m, INTEROP_DROPPED, true, "%s heads: Phyllome gives one", heads);
        if (vram || ix_attr_is(m, "primary", "yes"))
                say(l, m, INTEROP_IMPLIED, false, "video memory sizes: QEMU's defaults");
        if (acc && !accel3d)
                say(l, acc, INTEROP_IMPLIED, false, "no 3D acceleration");
        return 0;
}

static int map_sound(struct lv *l, xmlNodePtr dev) {
        struct vm_def *d = &l->p->def;
        _cleanup_free_ char *m = ix_attr(dev, "model");
        ix_mark_all(dev->children);
        if (d->sound != VM_SOUND_UNSET && d->sound != VM_SOUND_NONE) {
                say(l, dev, INTEROP_DROPPED, true, "a second sound device: Phyllome has one");
                return 0;
        }
        if (!m)
                return bad(l, dev, "a sound device without a model");
        if (strcmp(m, "ich9") == 0)
                d->sound = VM_SOUND_HDA;
        else if (strcmp(m, "ich6") == 0 || strcmp(m, "ich7") == 0) {
                d->sound = VM_SOUND_HDA;
                say(l, dev, INTEROP_CHANGED, true, "sound '%s' becomes ICH9 HD Audio (the same HDA codec on Q35's "
                    "controller)", m);
        } else if (strcmp(m, "ac97") == 0)
                d->sound = VM_SOUND_AC97;
        else if (strcmp(m, "virtio") == 0)
                d->sound = VM_SOUND_VIRTIO;
        else {
                d->sound = VM_SOUND_HDA;
                say(l, dev, INTEROP_CHANGED, true, "sound '%s' becomes ICH9 HD Audio", m);
        }
        return 0;
}

static int map_tpm(struct lv *l, xmlNodePtr dev) {
        struct vm_def *d = &l->p->def;
        _cleanup_free_ char *model = ix_attr(dev, "model");
        xmlNodePtr be = ix_kid(dev, "backend");
        _cleanup_free_ char *bt = ix_attr(be, "type"), *ver = ix_attr(be, "version");
        ix_mark(ix_kid(dev, "alias"));
        if (model && strcmp(model, "tpm-crb") != 0) {
                if (strcmp(model, "tpm-tis") != 0)
                        return bad(l, dev, "TPM model '%s' is not an x86 TPM", model);
                say(l, dev, INTEROP_CHANGED, true, "TPM interface TIS becomes CRB (Phyllome's TPM 2.0 device): the "
                    "guest sees a new TPM device; sealed secrets stay with the state");
        }
        if (bt && strcmp(bt, "passthrough") == 0) {
                xmlNodePtr dv = ix_kid(be, "device");
                _cleanup_free_ char *path = ix_attr(dv, "path");
                d->tpm = VM_TPM_PASSTHROUGH;
                if (path && strcmp(path, "/dev/tpm0") != 0)
                        say(l, dv, INTEROP_CHANGED, true, "the host TPM '%s' becomes /dev/tpm0", path);
                return 0;
        }
        if (!bt || strcmp(bt, "emulator") != 0)
                return bad(l, be ? be : dev, "TPM backend '%s' is not modelled", bt ? bt : "?");
        d->tpm = VM_TPM_EMULATED;
        if (ver && strcmp(ver, "2.0") != 0)
                say(l, be, INTEROP_CHANGED, true, "TPM %s becomes TPM 2.0 with a fresh state (Phyllome's swtpm is "
                    "2.0 only)", ver);
        for (xmlNodePtr c = be->children; c; c = c->next) {
                if (c->type != XML_ELEMENT_NODE)
                        continue;
                ix_mark(c);
                ix_mark_all(c->children);
                if (ix_is(c, "encryption"))
                        say(l, c, INTEROP_DROPPED, false, "the TPM state's encryption secret is libvirt's: the state "
                            "cannot be read here; the VM gets a fresh TPM");
                else if (ix_is(c, "active_pcr_banks"))
                        say(l, c, INTEROP_IMPLIED, false, "PCR banks: swtpm's default");
                else
                        say(l, c, INTEROP_DROPPED, false, "<%s> of the TPM backend is not modelled", c->name);
        }
        _cleanup_free_ char *from_uri = !l->o->tpm_state && l->o->libvirt_uri && l->p->def.uuid[0]
                                                ? interop_libvirt_tpm_dir(l->o->libvirt_uri, l->p->def.uuid) : NULL;
        const char *state = l->o->tpm_state ? l->o->tpm_state : from_uri;
        if (ver && strcmp(ver, "2.0") != 0)
                state = NULL;
        if (state && access(state, R_OK | X_OK) == 0) {
                int r = check_path(l, be, state);
                if (r < 0)
                        return r;
                if ((r = interop_plan_add_file(l->p, INTEROP_TREE, state, "tpm", NULL, NULL, "the TPM state",
                                               l->err)) < 0)
                        return r;
                say(l, be, INTEROP_NOTE, false, "the TPM state is copied from '%s'", state);
        } else
                say(l, be, INTEROP_CHANGED, true, "the TPM state was not found%s%s%s: the VM gets a fresh TPM (keys "
                    "sealed to the old one, BitLocker's among them, need their recovery key)",
                    state ? " in '" : "", state ? state : "", state ? "'" : " (give it with --tpm-state DIR)");
        return 0;
}

static int map_hostdev(struct lv *l, xmlNodePtr dev) {
        struct vm_def *d = &l->p->def;
        _cleanup_free_ char *mode = ix_attr(dev, "mode"), *type = ix_attr(dev, "type");
        xmlNodePtr src = ix_kid(dev, "source");
        ix_mark(ix_kid(dev, "alias"));
        ix_mark(ix_kid(dev, "address"));
        if (!mode || strcmp(mode, "subsystem") != 0 || !type) {
                say(l, dev, INTEROP_DROPPED, true, "a '%s' host device is not modelled", mode ? mode : "?");
                return 0;
        }
        if (strcmp(type, "pci") == 0) {
                xmlNodePtr a = ix_kid(src, "address");
                _cleanup_free_ char *dom = ix_attr(a, "domain"), *bus = ix_attr(a, "bus"), *slot = ix_attr(a, "slot"),
                                    *fn = ix_attr(a, "function");
                if (!bus || !slot || !fn)
                        return bad(l, src ? src : dev, "the PCI address is incomplete");
                unsigned long dv = dom ? strtoul(dom, NULL, 0) : 0, bv = strtoul(bus, NULL, 0),
                              sv = strtoul(slot, NULL, 0), fv = strtoul(fn, NULL, 0);
                char pci[16];
                snprintf(pci, sizeof pci, "%04lx:%02lx:%02lx.%lx", dv & 0xffff, bv & 0xff, sv & 0x1f, fv & 7);
                if (!value_pci_addr_valid(pci, false))
                        return bad(l, a, "'%s' is no PCI address", pci);
                if (strv_push(&d->passthrough, pci) < 0)
                        return oom(l);
                xmlNodePtr rom = ix_kid(dev, "rom");
                _cleanup_free_ char *rf = ix_attr(rom, "file");
                if (rf) {
                        int r = check_path(l, rom, rf);
                        if (r < 0)
                                return r;
                        _cleanup_free_ char *e = NULL;
                        if (asprintf(&e, "%s=%s", pci, rf) < 0 || strv_push(&d->passthrough_roms, e) < 0)
                                return oom(l);
                }
                ix_mark(ix_kid(dev, "driver"));
                return 0;
        }
        if (strcmp(type, "usb") == 0) {
                xmlNodePtr v = ix_kid(src, "vendor"), p = ix_kid(src, "product"), a = ix_kid(src, "address");
                _cleanup_free_ char *vid = ix_attr(v, "id"), *pid = ix_attr(p, "id");
                if (!vid || !pid) {
                        say(l, a ? a : dev, INTEROP_DROPPED, true, "a USB device named by its bus and device number "
                            "(which change when it is plugged again) is not modelled; 'phyllo usb attach NAME "
                            "VENDOR:PRODUCT' gives it");
                        return 0;
                }
                char id[16];
                snprintf(id, sizeof id, "%04lx:%04lx", strtoul(vid, NULL, 0) & 0xffff, strtoul(pid, NULL, 0) & 0xffff);
                if (!value_usb_id_valid(id))
                        return bad(l, src, "'%s' is no USB id", id);
                return strv_push(&d->usb, id) < 0 ? oom(l) : 0;
        }
        if (strcmp(type, "mdev") == 0) {
                xmlNodePtr a = ix_kid(src, "address");
                _cleanup_free_ char *uuid = ix_attr(a, "uuid");
                if (!uuid || !value_uuid_valid(uuid, true))
                        return bad(l, a ? a : dev, "'%s' is no mediated device UUID", uuid ? uuid : "");
                if (ix_attr_is(dev, "display", "on"))
                        d->mdev_display = VM_ON;
                return strv_push(&d->mdevs, uuid) < 0 ? oom(l) : 0;
        }
        say(l, dev, INTEROP_DROPPED, true, "a '%s' host device is not modelled", type);
        return 0;
}

static int map_filesystem(struct lv *l, xmlNodePtr dev) {
        struct vm_def *d = &l->p->def;
        _cleanup_free_ char *type = ix_attr(dev, "type");
        xmlNodePtr drv = ix_kid(dev, "driver"), src = ix_kid(dev, "source"), tgt = ix_kid(dev, "target"),
                   ro = ix_kid(dev, "readonly");
        ix_mark(ix_kid(dev, "alias"));
        ix_mark(ix_kid(dev, "address"));
        _cleanup_free_ char *dt = ix_attr(drv, "type"), *dir = ix_attr(src, "dir"), *tag = ix_attr(tgt, "dir");
        if (type && strcmp(type, "mount") != 0) {
                say(l, dev, INTEROP_DROPPED, true, "a '%s' filesystem is not modelled", type);
                return 0;
        }
        if (!dir || !tag)
                return bad(l, dev, "a shared folder needs <source dir> and <target dir>");
        int r = check_path(l, src, dir);
        if (r < 0)
                return r;
        if (!vm_name_valid(tag))
                return bad(l, tgt, "the tag '%s' is not one Phyllome can use (1 to 64 of A-Z a-z 0-9 . _ -)", tag);
        struct vm_share *s = GROW(d->shares, d->n_shares);
        if (!s)
                return oom(l);
        s->tag = TAKE_PTR(tag);
        s->path = TAKE_PTR(dir);
        s->readonly = ro != NULL;
        s->type = dt && strcmp(dt, "virtiofs") == 0 ? VM_SHARE_VIRTIOFS : VM_SHARE_9P;
        for (xmlNodePtr c = dev->children; c; c = c->next)
                if (ix_is(c, "binary")) {
                        ix_mark_all(c->children);
                        ix_mark(c);
                        say(l, c, INTEROP_IMPLIED, false, "virtiofsd's options: Phyllome runs its own virtiofsd");
                }
        _cleanup_free_ char *am = ix_attr(dev, "accessmode");
        if (s->type == VM_SHARE_9P && am && strcmp(am, "mapped") != 0)
                say(l, dev, INTEROP_CHANGED, true, "9p access mode '%s' becomes mapped-xattr (owners and modes kept "
                    "in extended attributes)", am);
        return 0;
}

static int map_channel(struct lv *l, xmlNodePtr dev) {
        struct vm_def *d = &l->p->def;
        xmlNodePtr t = ix_kid(dev, "target");
        ix_mark_all(dev->children);
        _cleanup_free_ char *name = ix_attr(t, "name");
        if (name && strcmp(name, "org.qemu.guest_agent.0") == 0) {
                d->agent = VM_ON;
                return 0;
        }
        if (name && strcmp(name, "com.redhat.spice.0") == 0) {
                l->vdagent = true;
                l->vdagent_node = dev;
                return 0;
        }
        say(l, dev, INTEROP_DROPPED, true, "the channel '%s' is not modelled", name ? name : "?");
        return 0;
}

static int map_input(struct lv *l, xmlNodePtr dev) {
        struct vm_def *d = &l->p->def;
        _cleanup_free_ char *type = ix_attr(dev, "type"), *bus = ix_attr(dev, "bus");
        ix_mark_all(dev->children);
        if (type && strcmp(type, "tablet") == 0) {
                d->input = bus && strcmp(bus, "virtio") == 0 ? VM_INPUT_VIRTIO : VM_INPUT_USB_TABLET;
                return 0;
        }
        if (bus && strcmp(bus, "virtio") == 0 && type && strcmp(type, "keyboard") == 0) {
                say(l, dev, INTEROP_IMPLIED, false, "a virtio keyboard comes with Phyllome's virtio input");
                return 0;
        }
        if (!bus || strcmp(bus, "ps2") == 0) {
                say(l, dev, INTEROP_IMPLIED, false, "the PS/2 %s: part of the Q35 machine", type ? type : "device");
                return 0;
        }
        say(l, dev, INTEROP_DROPPED, false, "a %s %s is not modelled", bus, type ? type : "input device");
        return 0;
}

static int map_devices(struct lv *l, xmlNodePtr dom) {
        struct vm_def *d = &l->p->def;
        xmlNodePtr devs = ix_kid(dom, "devices");
        unsigned redir = 0;
        bool rng = false, balloon = false;
        xmlNodePtr first_redir = NULL;
        int r = 0;
        for (xmlNodePtr c = devs ? devs->children : NULL; c && r >= 0; c = c->next) {
                if (c->type != XML_ELEMENT_NODE)
                        continue;
                ix_mark(c);
                if (ix_is(c, "disk"))
                        r = map_disk(l, c);
                else if (ix_is(c, "interface"))
                        r = map_interface(l, c);
                else if (ix_is(c, "graphics"))
                        r = map_graphics(l, c);
                else if (ix_is(c, "video"))
                        r = map_video(l, c);
                else if (ix_is(c, "sound"))
                        r = map_sound(l, c);
                else if (ix_is(c, "tpm"))
                        r = map_tpm(l, c);
                else if (ix_is(c, "hostdev"))
                        r = map_hostdev(l, c);
                else if (ix_is(c, "filesystem"))
                        r = map_filesystem(l, c);
                else if (ix_is(c, "channel"))
                        r = map_channel(l, c);
                else if (ix_is(c, "input"))
                        r = map_input(l, c);
                else if (ix_is(c, "memballoon")) {
                        ix_mark_all(c->children);
                        _cleanup_free_ char *m = ix_attr(c, "model");
                        balloon = m && strcmp(m, "none") != 0;
                        if (balloon && strcmp(m, "virtio") != 0 && strcmp(m, "virtio-non-transitional") != 0)
                                say(l, c, INTEROP_CHANGED, true, "balloon '%s' becomes virtio-balloon", m);
                } else if (ix_is(c, "rng")) {
                        ix_mark_all(c->children);
                        _cleanup_free_ char *m = ix_attr(c, "model");
                        rng = true;
                        if (m && strcmp(m, "virtio") != 0 && strncmp(m, "virtio-", 7) != 0)
                                say(l, c, INTEROP_CHANGED, true, "rng '%s' becomes virtio-rng", m);
                        say(l, c, INTEROP_IMPLIED, false, "the rng's backend: /dev/urandom");
                } else if (ix_is(c, "redirdev")) {
                        ix_mark_all(c->children);
                        _cleanup_free_ char *t = ix_attr(c, "type");
                        if (t && strcmp(t, "spicevmc") == 0) {
                                redir++;
                                first_redir = first_redir ? first_redir : c;
                        } else
                                say(l, c, INTEROP_DROPPED, true, "USB redirection over '%s' is not modelled",
                                    t ? t : "?");
                } else if (ix_is(c, "emulator")) {
                        say(l, c, INTEROP_IMPLIED, false, "the QEMU binary: Phyllome finds its own");
                } else if (ix_is(c, "controller")) {
                        ix_mark_all(c->children);
                        _cleanup_free_ char *t = ix_attr(c, "type"), *m = ix_attr(c, "model");
                        bool lsi = t && strcmp(t, "scsi") == 0 && m && strcmp(m, "virtio-scsi") != 0;
                        say(l, c, lsi ? INTEROP_CHANGED : INTEROP_IMPLIED, lsi, "%s controller%s%s: %s",
                            t ? t : "a", m ? " " : "", m ? m : "",
                            lsi ? "SCSI disks move to virtio-scsi (the guest needs its driver)"
                                : "Phyllome adds the controllers its devices need");
                } else if (ix_is(c, "serial") || ix_is(c, "console")) {
                        ix_mark_all(c->children);
                        say(l, c, INTEROP_IMPLIED, false, "Phyllome gives every VM a serial console (phyllo "
                            "console, phyllo logs)");
                } else if (ix_is(c, "audio")) {
                        ix_mark_all(c->children);
                        say(l, c, INTEROP_IMPLIED, false, "the audio backend: Phyllome's (PulseAudio/PipeWire with a "
                            "window, else none)");
                } else {
                        c->_private = NULL;     /* reported by the walk below */
                }
        }
        if (r < 0)
                return r;
        d->balloon = balloon ? VM_ON : VM_OFF;
        d->rng = rng ? VM_ON : VM_OFF;
        if (d->agent == VM_UNSET)
                d->agent = VM_OFF;
        if (d->display == VM_DISPLAY_UNSET)
                d->display = VM_DISPLAY_NONE;
        if (d->gpu == VM_GPU_UNSET)
                d->gpu = VM_GPU_NONE;
        if (d->sound == VM_SOUND_UNSET)
                d->sound = VM_SOUND_NONE;
        if (d->tpm == VM_TPM_UNSET)
                d->tpm = VM_TPM_NONE;
        if (d->input == VM_INPUT_UNSET)
                d->input = VM_INPUT_USB_TABLET;
        if (d->gl == VM_UNSET && d->display == VM_DISPLAY_SPICE)
                d->gl = VM_OFF;
        if (l->vdagent && !l->spice)
                say(l, l->vdagent_node, INTEROP_DROPPED, true, "the SPICE agent channel without a SPICE display");
        if (!l->vdagent && l->spice)
                say(l, devs, INTEROP_CHANGED, true, "Phyllome adds the SPICE agent channel (clipboard, resizing) to "
                    "its SPICE display");
        if (l->spice || redir) {
                if (redir > VM_USB_REDIRECT_MAX) {
                        say(l, first_redir, INTEROP_CHANGED, true, "%u USB redirection channels become %u", redir,
                            VM_USB_REDIRECT_MAX);
                        redir = VM_USB_REDIRECT_MAX;
                }
                if (redir && !l->spice) {
                        say(l, first_redir, INTEROP_DROPPED, true, "USB redirection needs a SPICE display");
                        redir = 0;
                }
                d->usb_redirect = redir;
                d->usb_redirect_set = true;
        }
        if (d->n_disks == 0)
                say(l, devs ? devs : dom, INTEROP_NOTE, false, "the domain has no disk");
        return 0;
}

/* Elements nobody marked: each reported once, at its top. */
static void report_unmapped(struct lv *l, xmlNodePtr n) {
        for (; n; n = n->next) {
                if (n->type != XML_ELEMENT_NODE)
                        continue;
                if (!ix_marked(n)) {
                        char w[256];
                        where(n, w, sizeof w);
                        say(l, n, INTEROP_DROPPED, false, "<%s> is not modelled by Phyllome and is left out",
                            (const char *) n->name);
                        continue;
                }
                report_unmapped(l, n->children);
        }
}

static const char *const implied_top[] = { "on_poweroff", "on_reboot", "on_crash", "pm", "resource", "seclabel",
                                           "description", "title", NULL };

int interop_libvirt_parse(const char *source, const char *txt, size_t len, const struct interop_opts *o,
                          struct interop_plan *ret, phy_error *err) {
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
        int r = interop_xml_read(source, txt, len, &doc, err);
        if (r < 0)
                return r;
        xmlNodePtr dom = xmlDocGetRootElement(doc);
        struct interop_plan *p = ret;
        *p = (struct interop_plan) { 0 };
        struct lv l = { .source = source, .o = o, .p = p, .err = err };
        if (!(p->source = strdup(source)))
                return oom(&l);
        if (!ix_is(dom, "domain"))
                return bad(&l, dom, "the root element is <%s>, not <domain>", dom->name);
        ix_mark(dom);
        _cleanup_free_ char *dtype = ix_attr(dom, "type");
        if (dtype && strcmp(dtype, "kvm") != 0 && strcmp(dtype, "qemu") != 0)
                return bad(&l, dom, "a '%s' domain; Phyllome imports QEMU/KVM ones", dtype);
        xmlNodePtr nm = ix_kid(dom, "name"), uu = ix_kid(dom, "uuid");
        _cleanup_free_ char *name = ix_text(nm), *uuid = ix_text(uu), *profile = NULL;
        const char *want = o->name ? o->name : name;
        if (!want || !vm_name_valid(want))
                return bad(&l, nm ? nm : dom, "'%s' is no valid VM name (1 to 64 of A-Z a-z 0-9 . _ -); give one "
                           "with --name", want ? want : "");
        snprintf(p->def.name, sizeof p->def.name, "%s", want);
        if (uuid) {
                for (char *c = uuid; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
                if (!value_uuid_valid(uuid, false))
                        return bad(&l, uu, "'%s' is no UUID", uuid);
                snprintf(p->def.uuid, sizeof p->def.uuid, "%s", uuid);
        }
        if ((r = map_metadata(&l, ix_kid(dom, "metadata"), &profile)) < 0 || (r = map_memory(&l, dom)) < 0 ||
            (r = map_cpu(&l, dom)) < 0 || (r = map_os(&l, dom)) < 0 || (r = map_features(&l, dom)) < 0 ||
            (r = map_clock(&l, dom)) < 0 || (r = map_devices(&l, dom)) < 0)
                return r;
        /* What Phyllome's export kept in <metadata> (libvirt has no place for it). */
        _cleanup_free_ char *md_sound = ix_attr(l.phyllome_md, "sound");
        if (md_sound && strcmp(md_sound, "virtio") == 0 && p->def.sound == VM_SOUND_HDA)
                p->def.sound = VM_SOUND_VIRTIO;
        _cleanup_free_ char *md_machine = ix_attr(l.phyllome_md, "machine");
        if (md_machine && strcmp(md_machine, "q35") == 0 && p->def.machine && strncmp(p->def.machine, "pc-q35-", 7) == 0) {
                say(&l, l.phyllome_md, INTEROP_NOTE, false, "libvirt pinned the machine type to %s; the VM exported "
                    "by Phyllome followed QEMU's newest (q35), and does again", p->def.machine);
                free(p->def.machine);
                if (!(p->def.machine = strdup("q35")))
                        return oom(&l);
        }
        for (xmlNodePtr f = l.phyllome_md ? l.phyllome_md->children : NULL; f; f = f->next) {
                if (!ix_is(f, "forward"))
                        continue;
                ix_mark(f);
                _cleanup_free_ char *nic = ix_attr(f, "nic"), *spec = ix_attr(f, "spec");
                struct vm_nic *n = NULL;
                for (size_t i = 0; nic && i < p->def.n_nics; i++)
                        if (strcmp(p->def.nics[i].name, nic) == 0)
                                n = &p->def.nics[i];
                if (!n || !spec || value_forward_parse(spec, NULL) < 0)
                        return bad(&l, f, "the forward '%s' of NIC '%s' is not one of this domain's", spec ? spec : "",
                                   nic ? nic : "");
                if ((r = import_forward(&l, f, spec, n)) < 0)
                        return r;
        }
        if (o->profile) {
                free(profile);
                profile = strdup(o->profile);
        } else if (!profile) {
                profile = strdup(p->def.hyperv == VM_ON ? "windows10" : "other");
                say(&l, dom, INTEROP_NOTE, false, "the guest OS is not named (no libosinfo metadata): profile '%s'; "
                    "give another with --profile", profile);
        }
        if (!profile || !vm_profile_find(profile))
                return profile ? phy_error_usage(err, "unknown profile '%s'; use one of: %s", profile,
                                                 vm_profile_names())
                               : oom(&l);
        p->def.profile = TAKE_PTR(profile);
        for (size_t i = 0; implied_top[i]; i++) {
                for (xmlNodePtr c = dom->children; c; c = c->next)
                        if (ix_is(c, implied_top[i])) {
                                ix_mark_all(c->children);
                                ix_mark(c);
                                say(&l, c, INTEROP_IMPLIED, false, "<%s>: Phyllome's own (power off ends the VM, "
                                    "reboot restarts it; no libvirt security labels)", c->name);
                        }
        }
        ix_mark(ix_kid(dom, "metadata"));
        report_unmapped(&l, dom->children);
        return 0;
}

char *interop_libvirt_tpm_dir(const char *uri, const char *uuid) {
        char *p = NULL;
        if (strcmp(uri, "qemu:///system") == 0)
                return asprintf(&p, "/var/lib/libvirt/swtpm/%s/tpm2", uuid) < 0 ? NULL : p;
        if (strcmp(uri, "qemu:///session") == 0) {
                const char *x = getenv("XDG_CONFIG_HOME"), *h = getenv("HOME");
                if (x && x[0] == '/')
                        return asprintf(&p, "%s/libvirt/qemu/swtpm/%s/tpm2", x, uuid) < 0 ? NULL : p;
                if (h && h[0] == '/')
                        return asprintf(&p, "%s/.config/libvirt/qemu/swtpm/%s/tpm2", h, uuid) < 0 ? NULL : p;
        }
        return NULL;
}

/* SPDX-License-Identifier: MIT */
/*
 * The VM definition file: parse, validate each value, format back, JSON.
 * The format is described in docs/vm-format.md and phyllome-vm(5).
 */
#include "vm.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cleanup.h"
#include "fileio.h"
#include "value.h"
#include "profile.h"

/* ---- enum words ------------------------------------------------------- */

static const char *const bus_words[] = { [VM_BUS_VIRTIO] = "virtio", [VM_BUS_SCSI] = "scsi",
        [VM_BUS_SATA] = "sata", [VM_BUS_NVME] = "nvme", [VM_BUS_IDE] = "ide" };
static const char *const cdrom_bus_words[] = { [VM_BUS_SCSI] = "scsi", [VM_BUS_SATA] = "sata",
        [VM_BUS_IDE] = "ide" };
static const char *const delivery_words[] = { [VM_INSTALL_INITRD] = "initrd", [VM_INSTALL_CDROM] = "cdrom" };
static const char *const display_words[] = { [VM_DISPLAY_NONE] = "none", [VM_DISPLAY_SPICE] = "spice",
        [VM_DISPLAY_GTK] = "gtk", [VM_DISPLAY_SDL] = "sdl", [VM_DISPLAY_VNC] = "vnc" };
static const char *const gpu_words[] = { [VM_GPU_NONE] = "none", [VM_GPU_STD] = "std",
        [VM_GPU_VIRTIO] = "virtio", [VM_GPU_VIRGL] = "virgl" };
static const char *const sound_words[] = { [VM_SOUND_NONE] = "none", [VM_SOUND_VIRTIO] = "virtio",
        [VM_SOUND_HDA] = "hda", [VM_SOUND_AC97] = "ac97" };
static const char *const tpm_words[] = { [VM_TPM_NONE] = "none", [VM_TPM_EMULATED] = "emulated",
        [VM_TPM_PASSTHROUGH] = "passthrough" };
static const char *const nic_words[] = { [VM_NIC_VIRTIO] = "virtio", [VM_NIC_E1000E] = "e1000e",
        [VM_NIC_RTL8139] = "rtl8139" };
static const char *const mode_words[] = { [VM_NET_NONE] = "none", [VM_NET_USER] = "user",
        [VM_NET_ISOLATED] = "isolated", [VM_NET_BRIDGE] = "bridge" };
static const char *const netbe_words[] = { [VM_NETBE_PASST] = "passt", [VM_NETBE_SLIRP] = "slirp" };
static const char *const share_type_words[] = { [VM_SHARE_VIRTIOFS] = "virtiofs", [VM_SHARE_9P] = "9p" };
static const char *const input_words[] = { [VM_INPUT_USB_TABLET] = "usb-tablet", [VM_INPUT_VIRTIO] = "virtio" };
static const char *const fw_words[] = { [VM_FW_UEFI] = "uefi", [VM_FW_BIOS] = "bios" };
static const char *const onoff_words[] = { [VM_OFF] = "off", [VM_ON] = "on" };
static const char *const rtc_words[] = { [VM_OFF] = "utc", [VM_ON] = "localtime" };
static const char *const format_words[] = { "qcow2", "raw" };

#define WORD(tab, v) ((unsigned) (v) < ELEMENTSOF(tab) ? (tab)[v] : NULL)

const char *vm_bus_name(enum vm_bus v) { return WORD(bus_words, v); }
const char *vm_display_name(enum vm_display v) { return WORD(display_words, v); }
const char *vm_gpu_name(enum vm_gpu v) { return WORD(gpu_words, v); }
const char *vm_sound_name(enum vm_sound v) { return WORD(sound_words, v); }
const char *vm_tpm_name(enum vm_tpm v) { return WORD(tpm_words, v); }
const char *vm_nic_model_name(enum vm_nic_model v) { return WORD(nic_words, v); }
const char *vm_net_mode_name(enum vm_net_mode v) { return WORD(mode_words, v); }
const char *vm_input_name(enum vm_input v) { return WORD(input_words, v); }
const char *vm_firmware_name(enum vm_firmware v) { return WORD(fw_words, v); }
const char *vm_net_backend_name(enum vm_net_backend v) { return WORD(netbe_words, v); }
const char *vm_share_type_name(enum vm_share_type v) { return WORD(share_type_words, v); }

/* Index of word in tab (skipping NULL holes), -1 when absent. */
static int word_lookup(const char *const *tab, size_t n, const char *word) {
        for (size_t i = 0; i < n; i++)
                if (tab[i] && strcmp(tab[i], word) == 0)
                        return (int) i;
        return -1;
}

static void word_list(const char *const *tab, size_t n, char *buf, size_t len) {
        size_t at = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < n && at < len; i++) {
                if (!tab[i])
                        continue;
                int k = snprintf(buf + at, len - at, "%s%s", at ? ", " : "", tab[i]);
                if (k < 0)
                        break;
                at += (size_t) k;
        }
}

int vm_display_from_name(const char *word, const char **ret_allowed) {
        if (ret_allowed)
                *ret_allowed = "none, spice, gtk, sdl, vnc";
        return word_lookup(display_words, ELEMENTSOF(display_words), word);
}

int vm_bus_from_name(const char *word) {
        return word_lookup(bus_words, ELEMENTSOF(bus_words), word);
}

int vm_nic_model_from_name(const char *word) {
        return word_lookup(nic_words, ELEMENTSOF(nic_words), word);
}

int vm_share_type_from_name(const char *word) {
        return word_lookup(share_type_words, ELEMENTSOF(share_type_words), word);
}

int vm_gpu_from_name(const char *word, const char **ret_allowed) {
        if (ret_allowed)
                *ret_allowed = "none, std, virtio, virgl";
        return word_lookup(gpu_words, ELEMENTSOF(gpu_words), word);
}

/* ---- names and small value checks ------------------------------------- */

bool vm_name_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;
        if (n < 1 || n > VM_NAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char) name[i]) && !strchr("._-", name[i]))
                        return false;
        return true;
}

static bool uuid_valid(const char *s) {
        return value_uuid_valid(s, false);
}

/* Mediated devices are named by lower-case UUIDs (the kernel's sysfs names). */
static bool mdev_uuid_valid(const char *s) {
        return value_uuid_valid(s, true);
}

/* Six hex pairs, unicast (a multicast MAC on a NIC breaks networking). */
static bool mac_valid(const char *s) {
        if (strlen(s) != 17)
                return false;
        for (int i = 0; i < 6; i++) {
                if (!value_hex_n(s + 3 * i, 2) || (i < 5 && s[3 * i + 2] != ':'))
                        return false;
        }
        return (strtoul(s, NULL, 16) & 1) == 0;
}

int vm_nic_mode_parse(const char *spec, struct vm_nic *nic, phy_error *err) {
        const char *colon = strchr(spec, ':');
        size_t kl = colon ? (size_t) (colon - spec) : strlen(spec);
        const char *arg = colon ? colon + 1 : NULL;
        enum vm_net_mode mode = VM_NET_UNSET;
        if (kl == 4 && strncmp(spec, "none", 4) == 0 && !arg)
                mode = VM_NET_NONE;
        else if (kl == 4 && strncmp(spec, "user", 4) == 0 && !arg)
                mode = VM_NET_USER;
        else if (kl == 8 && strncmp(spec, "isolated", 8) == 0 && arg && vm_net_name_valid(arg, 32))
                mode = VM_NET_ISOLATED;
        else if (kl == 6 && strncmp(spec, "bridge", 6) == 0 && arg && vm_net_name_valid(arg, 15))
                mode = VM_NET_BRIDGE;
        if (mode == VM_NET_UNSET)
                return phy_error_usage(err, "invalid network mode '%s'; use none, user, isolated:NAME (VMs of "
                                     "network NAME see each other only) or bridge:BRIDGE (an existing host bridge, "
                                     "e.g. bridge:br0); names are A-Z a-z 0-9 . _ -", spec);
        char *copy = arg ? strdup(arg) : NULL;
        if (arg && !copy)
                return phy_error_set(err, ENOMEM, "out of memory");
        free(nic->network);
        free(nic->bridge);
        nic->network = mode == VM_NET_ISOLATED ? copy : NULL;
        nic->bridge = mode == VM_NET_BRIDGE ? copy : NULL;
        nic->mode = mode;
        return 0;
}

bool vm_net_name_valid(const char *s, size_t max) {
        size_t n = strlen(s);
        if (n == 0 || n > max || s[0] == '.' || s[0] == '-')
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char) *c) && !strchr("._-", *c))
                        return false;
        return true;
}

static bool forward_valid(const char *s) {
        return value_forward_parse(s, NULL) == 0;
}

static bool pci_valid(const char *s) {
        return value_pci_addr_valid(s, false);
}

static bool machine_valid(const char *s) {
        if (strcmp(s, "q35") == 0)
                return true;
        if (strncmp(s, "pc-q35-", 7) != 0 || !s[7])
                return false;
        for (s += 7; *s; s++)
                if (!isdigit((unsigned char) *s) && *s != '.')
                        return false;
        return true;
}

/* The -cpu value: a model name and optional ",+flag,-flag" features. */
static bool cpu_model_valid(const char *s) {
        if (!isalnum((unsigned char) s[0]))
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && !strchr("._-+,=", *s))
                        return false;
        return true;
}

/* ---- the parser -------------------------------------------------------- */

enum section {
        SEC_NONE = -1,
        SEC_VM, SEC_MACHINE, SEC_CPU, SEC_MEMORY, SEC_FIRMWARE, SEC_BOOT, SEC_DISK, SEC_CDROM,
        SEC_NETWORK, SEC_DISPLAY, SEC_GPU, SEC_SOUND, SEC_TPM, SEC_USB, SEC_SHARE, SEC_PASSTHROUGH,
        SEC_INSTALL, _SEC_MAX
};

struct section_info {
        const char *name;
        bool labelled;
        const char *keys[9];
};

static const struct section_info sections[_SEC_MAX] = {
        [SEC_VM] = { "vm", false, { "name", "profile", "uuid" } },
        [SEC_MACHINE] = { "machine", false,
                { "type", "smm", "hyperv", "rtc", "balloon", "rng", "agent", "input" } },
        [SEC_CPU] = { "cpu", false, { "cores", "threads", "model" } },
        [SEC_MEMORY] = { "memory", false, { "size" } },
        [SEC_FIRMWARE] = { "firmware", false, { "type", "secure-boot" } },
        [SEC_BOOT] = { "boot", false, { "kernel", "initrd", "append" } },
        [SEC_DISK] = { "disk", true, { "path", "format", "size", "bus", "readonly", "key-file", "key" } },
        [SEC_CDROM] = { "cdrom", true, { "path", "bus" } },
        [SEC_NETWORK] = { "network", true, { "mode", "model", "mac", "forward", "backend", "network", "bridge" } },
        [SEC_DISPLAY] = { "display", false, { "type", "gl" } },
        [SEC_GPU] = { "gpu", false, { "type" } },
        [SEC_SOUND] = { "sound", false, { "type" } },
        [SEC_TPM] = { "tpm", false, { "type" } },
        [SEC_USB] = { "usb", false, { "devices", "redirect" } },
        [SEC_SHARE] = { "share", true, { "path", "readonly", "type" } },
        [SEC_PASSTHROUGH] = { "passthrough", false, { "devices", "rom", "mdev", "mdev-display", "single-gpu" } },
        [SEC_INSTALL] = { "install", false, { "media", "kernel", "initrd", "append", "answer", "delivery" } },
};

struct seen {
        char *what;             /* "cpu" or "cpu\ncores" */
        unsigned line;
};

struct parser {
        const char *file;
        unsigned line;
        struct vm_def *d;
        enum section sec;
        char *secname;          /* "disk system", for messages */
        struct seen *seen;
        size_t n_seen;
        phy_error *err;
};

static int perr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(struct parser *p, const char *fmt, ...) {
        char msg[900];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        return phy_error_usage(p->err, "%s:%u: %s", p->file, p->line, msg);
}

/* Records what (section or section+key); returns the earlier line or 0. */
static int seen_check(struct parser *p, const char *what, unsigned *ret_line) {
        for (size_t i = 0; i < p->n_seen; i++)
                if (strcmp(p->seen[i].what, what) == 0) {
                        *ret_line = p->seen[i].line;
                        return 1;
                }
        struct seen *n = realloc(p->seen, (p->n_seen + 1) * sizeof *n);
        if (!n)
                return -ENOMEM;
        p->seen = n;
        if (!(n[p->n_seen].what = strdup(what)))
                return -ENOMEM;
        n[p->n_seen++].line = p->line;
        return 0;
}

static char *strip(char *s) {
        while (isspace((unsigned char) *s))
                s++;
        size_t n = strlen(s);
        while (n > 0 && isspace((unsigned char) s[n - 1]))
                s[--n] = '\0';
        return s;
}

static int set_str(char **field, const char *v) {
        char *c = strdup(v);
        if (!c)
                return -ENOMEM;
        free(*field);
        *field = c;
        return 0;
}

#define KEYFMT "for key '%s' in section [%s]"

static int bad_word(struct parser *p, const char *key, const char *v, const char *const *tab, size_t n) {
        char allowed[256];
        word_list(tab, n, allowed, sizeof allowed);
        return perr(p, "invalid value '%s' " KEYFMT "; allowed: %s", v, key, p->secname, allowed);
}

/* Parses v as one word of tab into *ret (an enum stored as int). */
#define PARSE_WORD(p, key, v, tab, field) ({                                       \
        int _i = word_lookup(tab, ELEMENTSOF(tab), v);                              \
        if (_i < 0)                                                                 \
                return bad_word(p, key, v, tab, ELEMENTSOF(tab));                   \
        (field) = (__typeof__(field)) _i;                                           \
        0; })

static int parse_size_key(struct parser *p, const char *key, const char *v, uint64_t *ret) {
        unsigned long long s;
        if (parse_size(v, &s) < 0 || s == 0)
                return perr(p, "invalid size '%s' " KEYFMT "; use a number with K, M, G or T (e.g. 4G)",
                            v, key, p->secname);
        *ret = s;
        return 0;
}

static int parse_count(struct parser *p, const char *key, const char *v, unsigned max, unsigned *ret) {
        unsigned long long n;
        if (parse_uint(v, max, &n) < 0 || n < 1)
                return perr(p, "invalid number '%s' " KEYFMT "; use a whole number from 1 to %u",
                            v, key, p->secname, max);
        *ret = (unsigned) n;
        return 0;
}

/* A whitespace-separated list, each item checked. */
static int parse_list(struct parser *p, const char *key, char *v, strv *out,
                      bool (*valid)(const char *), const char *what, const char *hint) {
        char *save = NULL;
        for (char *t = strtok_r(v, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
                for (char *c = t; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
                if (!valid(t))
                        return perr(p, "invalid %s '%s' " KEYFMT "; use %s", what, t, key, p->secname, hint);
                if (strv_contains(out, t))
                        return perr(p, "%s '%s' is listed twice " KEYFMT, what, t, key, p->secname);
                if (strv_push(out, t) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* [passthrough] rom = ADDRESS=FILE ...: paths keep their case (no spaces). */
static int parse_roms(struct parser *p, const char *key, char *v, struct vm_def *d) {
        char *save = NULL;
        for (char *t = strtok_r(v, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
                char *eq = strchr(t, '=');
                if (eq)
                        for (char *c = t; c < eq; c++)
                                *c = (char) tolower((unsigned char) *c);
                if (!eq || !eq[1] || (*eq = '\0', !pci_valid(t)))
                        return perr(p, "invalid ROM '%s' " KEYFMT "; use PCI_ADDRESS=FILE (e.g. 0000:01:00.0=gpu.rom)",
                                    t, key, p->secname);
                *eq = '=';
                if (strv_push(&d->passthrough_roms, t) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int set_key(struct parser *p, const char *key, char *v) {
        struct vm_def *d = p->d;
        switch (p->sec) {
        case SEC_VM:
                if (strcmp(key, "name") == 0) {
                        if (!vm_name_valid(v))
                                return perr(p, "invalid VM name '%s' " KEYFMT "; use 1 to 64 of A-Z a-z 0-9 . _ -",
                                            v, key, p->secname);
                        snprintf(d->name, sizeof d->name, "%s", v);
                } else if (strcmp(key, "profile") == 0) {
                        if (!vm_profile_find(v))
                                return perr(p, "invalid value '%s' " KEYFMT "; allowed: %s", v, key,
                                            p->secname, vm_profile_names());
                        return set_str(&d->profile, v);
                } else {
                        if (!uuid_valid(v))
                                return perr(p, "invalid UUID '%s' " KEYFMT "; use the 8-4-4-4-12 hex form "
                                            "(e.g. 2f1e6b7a-3c1d-4e8f-9a0b-1c2d3e4f5a6b)", v, key, p->secname);
                        for (char *c = v; *c; c++)
                                *c = (char) tolower((unsigned char) *c);
                        snprintf(d->uuid, sizeof d->uuid, "%s", v);
                }
                return 0;
        case SEC_MACHINE:
                if (strcmp(key, "type") == 0) {
                        if (!machine_valid(v))
                                return perr(p, "invalid value '%s' " KEYFMT "; allowed: q35, pc-q35-<version>",
                                            v, key, p->secname);
                        return set_str(&d->machine, v);
                }
                if (strcmp(key, "input") == 0)
                        return PARSE_WORD(p, key, v, input_words, d->input);
                if (strcmp(key, "rtc") == 0)
                        return PARSE_WORD(p, key, v, rtc_words, d->rtc_localtime);
                enum vm_tristate *t = strcmp(key, "smm") == 0 ? &d->smm : strcmp(key, "hyperv") == 0 ? &d->hyperv
                                    : strcmp(key, "balloon") == 0 ? &d->balloon : strcmp(key, "rng") == 0 ? &d->rng
                                    : &d->agent;
                return PARSE_WORD(p, key, v, onoff_words, *t);
        case SEC_CPU:
                if (strcmp(key, "cores") == 0)
                        return parse_count(p, key, v, 255, &d->cores);
                if (strcmp(key, "threads") == 0)
                        return parse_count(p, key, v, 2, &d->threads);
                if (!cpu_model_valid(v))
                        return perr(p, "invalid CPU model '%s' " KEYFMT "; use a QEMU CPU model name such as "
                                    "host, max or Skylake-Client, optionally with ,+flag or ,-flag", v, key, p->secname);
                return set_str(&d->cpu_model, v);
        case SEC_MEMORY:
                return parse_size_key(p, key, v, &d->memory);
        case SEC_FIRMWARE:
                if (strcmp(key, "type") == 0)
                        return PARSE_WORD(p, key, v, fw_words, d->firmware);
                return PARSE_WORD(p, key, v, onoff_words, d->secure_boot);
        case SEC_BOOT:
                return set_str(strcmp(key, "kernel") == 0 ? &d->kernel : strcmp(key, "initrd") == 0 ? &d->initrd
                               : &d->append, v);
        case SEC_DISK: {
                struct vm_disk *k = &d->disks[d->n_disks - 1];
                if (strcmp(key, "path") == 0)
                        return set_str(&k->path, v);
                if (strcmp(key, "format") == 0) {
                        if (word_lookup(format_words, ELEMENTSOF(format_words), v) < 0)
                                return bad_word(p, key, v, format_words, ELEMENTSOF(format_words));
                        return set_str(&k->format, v);
                }
                if (strcmp(key, "size") == 0)
                        return parse_size_key(p, key, v, &k->size);
                if (strcmp(key, "bus") == 0)
                        return PARSE_WORD(p, key, v, bus_words, k->bus);
                if (strcmp(key, "key-file") == 0) {
                        if (k->key_prompt)
                                return perr(p, "key-file and key = prompt in section [%s] contradict each other; "
                                            "keep one", p->secname);
                        return set_str(&k->key_file, v);
                }
                if (strcmp(key, "key") == 0) {
                        if (strcmp(v, "prompt") != 0)
                                return perr(p, "invalid value '%s' " KEYFMT "; allowed: prompt (the passphrase is "
                                            "typed when needed; or use key-file = FILE)", v, key, p->secname);
                        if (k->key_file)
                                return perr(p, "key-file and key = prompt in section [%s] contradict each other; "
                                            "keep one", p->secname);
                        k->key_prompt = true;
                        return 0;
                }
                enum vm_tristate ro = VM_UNSET;
                (void) PARSE_WORD(p, key, v, onoff_words, ro);
                k->readonly = ro == VM_ON;
                return 0;
        }
        case SEC_CDROM: {
                struct vm_cdrom *c = &d->cdroms[d->n_cdroms - 1];
                if (strcmp(key, "path") == 0)
                        return set_str(&c->path, v);
                return PARSE_WORD(p, key, v, cdrom_bus_words, c->bus);
        }
        case SEC_NETWORK: {
                struct vm_nic *n = &d->nics[d->n_nics - 1];
                if (strcmp(key, "mode") == 0)
                        return PARSE_WORD(p, key, v, mode_words, n->mode);
                if (strcmp(key, "model") == 0)
                        return PARSE_WORD(p, key, v, nic_words, n->model);
                if (strcmp(key, "backend") == 0)
                        return PARSE_WORD(p, key, v, netbe_words, n->backend);
                if (strcmp(key, "network") == 0 || strcmp(key, "bridge") == 0) {
                        /* Names become socket and interface names: keep them short and plain. */
                        if (!vm_net_name_valid(v, strcmp(key, "bridge") == 0 ? 15 : 32))
                                return perr(p, "invalid %s name '%s' " KEYFMT "; use 1 to %d of A-Z a-z 0-9 . _ - "
                                            "(not starting with '.' or '-')", key, v, key, p->secname,
                                            strcmp(key, "bridge") == 0 ? 15 : 32);
                        return set_str(strcmp(key, "bridge") == 0 ? &n->bridge : &n->network, v);
                }
                if (strcmp(key, "mac") == 0) {
                        if (!mac_valid(v))
                                return perr(p, "invalid MAC address '%s' " KEYFMT "; use six hex pairs with a "
                                            "unicast first octet (e.g. 52:54:00:12:34:56)", v, key, p->secname);
                        for (char *c = v; *c; c++)
                                *c = (char) tolower((unsigned char) *c);
                        snprintf(n->mac, sizeof n->mac, "%s", v);
                        return 0;
                }
                if (!forward_valid(v))
                        return perr(p, "invalid forward '%s' " KEYFMT "; use PROTOCOL:[ADDRESS:]HOSTPORT:GUESTPORT "
                                    "with tcp or udp, an IPv4 address and ports 1 to 65535 (e.g. tcp:2222:22)",
                                    v, key, p->secname);
                if (strv_contains(&n->forwards, v))
                        return perr(p, "forward '%s' is listed twice in section [%s]", v, p->secname);
                return strv_push(&n->forwards, v);
        }
        case SEC_DISPLAY:
                if (strcmp(key, "type") == 0)
                        return PARSE_WORD(p, key, v, display_words, d->display);
                return PARSE_WORD(p, key, v, onoff_words, d->gl);
        case SEC_GPU:
                return PARSE_WORD(p, key, v, gpu_words, d->gpu);
        case SEC_SOUND:
                return PARSE_WORD(p, key, v, sound_words, d->sound);
        case SEC_TPM:
                return PARSE_WORD(p, key, v, tpm_words, d->tpm);
        case SEC_USB:
                if (strcmp(key, "redirect") == 0) {
                        unsigned long long n;
                        if (parse_uint(v, VM_USB_REDIRECT_MAX, &n) < 0)
                                return perr(p, "invalid number '%s' " KEYFMT "; use a whole number of USB "
                                            "redirection channels from 0 to %u", v, key, p->secname,
                                            VM_USB_REDIRECT_MAX);
                        d->usb_redirect = (unsigned) n;
                        d->usb_redirect_set = true;
                        return 0;
                }
                return parse_list(p, key, v, &d->usb, value_usb_id_valid, "USB device",
                                  "VENDOR:PRODUCT in hex, separated by spaces (e.g. 046d:c52b)");
        case SEC_SHARE: {
                struct vm_share *s = &d->shares[d->n_shares - 1];
                if (strcmp(key, "path") == 0)
                        return set_str(&s->path, v);
                if (strcmp(key, "type") == 0)
                        return PARSE_WORD(p, key, v, share_type_words, s->type);
                enum vm_tristate ro = VM_UNSET;
                (void) PARSE_WORD(p, key, v, onoff_words, ro);
                s->readonly = ro == VM_ON;
                return 0;
        }
        case SEC_PASSTHROUGH:
                if (strcmp(key, "rom") == 0)
                        return parse_roms(p, key, v, d);
                if (strcmp(key, "mdev") == 0)
                        return parse_list(p, key, v, &d->mdevs, mdev_uuid_valid, "mediated device UUID",
                                          "UUIDs separated by spaces (see 'phyllo device mdev-create')");
                if (strcmp(key, "mdev-display") == 0)
                        return PARSE_WORD(p, key, v, onoff_words, d->mdev_display);
                if (strcmp(key, "single-gpu") == 0)
                        return PARSE_WORD(p, key, v, onoff_words, d->single_gpu);
                return parse_list(p, key, v, &d->passthrough, pci_valid, "PCI address",
                                  "DOMAIN:BUS:SLOT.FUNCTION, separated by spaces (e.g. 0000:01:00.0)");
        case SEC_INSTALL: {
                struct vm_install *in = &d->install;
                if (strcmp(key, "delivery") == 0)
                        return PARSE_WORD(p, key, v, delivery_words, in->delivery);
                if (strcmp(key, "answer") == 0 && !vm_install_answer_valid(v))
                        return perr(p, "invalid answer file name '%s' " KEYFMT "; use 1 to 64 of A-Z a-z 0-9 . _ - "
                                    "(not starting with '.')", v, key, p->secname);
                return set_str(strcmp(key, "media") == 0 ? &in->media : strcmp(key, "kernel") == 0 ? &in->kernel
                               : strcmp(key, "initrd") == 0 ? &in->initrd : strcmp(key, "append") == 0 ? &in->append
                               : &in->answer, v);
        }
        default:
                return -EINVAL;
        }
}

/* Grows a labelled-section array by one zeroed element named label. */
#define ADD_LABELLED(arr, n, namefield, label) ({                                  \
        int _r = 0;                                                                 \
        __typeof__(arr) _a = realloc(arr, ((n) + 1) * sizeof *(arr));               \
        if (!_a)                                                                    \
                _r = -ENOMEM;                                                       \
        else {                                                                      \
                (arr) = _a;                                                         \
                memset(&(arr)[n], 0, sizeof *(arr));                                \
                if (!((arr)[n].namefield = strdup(label)))                          \
                        _r = -ENOMEM;                                               \
                else                                                                \
                        (n)++;                                                      \
        }                                                                           \
        _r; })

static int begin_section(struct parser *p, char *inner) {
        char *name = strip(inner), *label = NULL;
        char *sp = name + strcspn(name, " \t");
        if (*sp) {
                *sp = '\0';
                label = strip(sp + 1);
        }
        int s = -1;
        for (int i = 0; i < _SEC_MAX; i++)
                if (strcmp(sections[i].name, name) == 0)
                        s = i;
        if (s < 0) {
                char allowed[256];
                const char *words[_SEC_MAX];
                for (int i = 0; i < _SEC_MAX; i++)
                        words[i] = sections[i].name;
                word_list(words, _SEC_MAX, allowed, sizeof allowed);
                return perr(p, "unknown section [%s]; allowed: %s", name, allowed);
        }
        const struct section_info *si = &sections[s];
        if (si->labelled && !label)
                return perr(p, "section [%s] needs a name, e.g. [%s %s]", name, name,
                            s == SEC_DISK ? "system" : s == SEC_CDROM ? "install" : s == SEC_NETWORK ? "net0" : "data");
        if (!si->labelled && label)
                return perr(p, "section [%s] takes no name, found [%s %s]", name, name, label);
        if (label && !vm_name_valid(label))
                return perr(p, "invalid name '%s' in section [%s %s]; names are 1 to 64 of A-Z a-z 0-9 . _ -",
                            label, name, label);

        free(p->secname);
        p->secname = NULL;
        if (asprintf(&p->secname, "%s%s%s", name, label ? " " : "", label ? label : "") < 0) {
                p->secname = NULL;
                return -ENOMEM;
        }
        unsigned first = 0;
        int r = seen_check(p, p->secname, &first);
        if (r < 0)
                return r;
        if (r > 0)
                return perr(p, "duplicate section [%s]; it was already defined on line %u", p->secname, first);
        p->sec = (enum section) s;
        struct vm_def *d = p->d;
        switch (p->sec) {
        case SEC_DISK: return ADD_LABELLED(d->disks, d->n_disks, name, label);
        case SEC_CDROM: return ADD_LABELLED(d->cdroms, d->n_cdroms, name, label);
        case SEC_NETWORK: return ADD_LABELLED(d->nics, d->n_nics, name, label);
        case SEC_SHARE: return ADD_LABELLED(d->shares, d->n_shares, tag, label);
        default: return 0;
        }
}

/* A '#' at the start of a line or after whitespace starts a comment. */
static void cut_comment(char *s) {
        for (char *c = s; *c; c++)
                if (*c == '#' && (c == s || isspace((unsigned char) c[-1]))) {
                        *c = '\0';
                        return;
                }
}

static int parse_line(struct parser *p, char *line) {
        cut_comment(line);
        char *s = strip(line);
        if (!*s)
                return 0;
        if (*s == '[') {
                size_t n = strlen(s);
                if (s[n - 1] != ']')
                        return perr(p, "malformed section header '%s'; use [section] or [section name]", s);
                s[n - 1] = '\0';
                if (str_has_control(s + 1))
                        return perr(p, "a control character in a section header; use [section] or [section name]");
                return begin_section(p, s + 1);
        }
        char *eq = strchr(s, '=');
        if (!eq)
                return perr(p, "expected 'key = value' or a [section], got '%s'", s);
        *eq = '\0';
        char *key = strip(s), *value = strip(eq + 1);
        /* The writer puts a blank after '=', so "key =#x" would read back
         * as a comment: a value that starts with '#' is one here too. */
        if (*value == '#')
                *value = '\0';
        char shown[200];
        if (str_has_control(key))
                return perr(p, "a control character in the key '%s'", str_escape_line(key, shown, sizeof shown));
        if (p->sec == SEC_NONE)
                return perr(p, "key '%s' comes before any section; put it under a section such as [vm]", key);
        const struct section_info *si = &sections[p->sec];
        bool known = false;
        for (size_t i = 0; i < ELEMENTSOF(si->keys) && si->keys[i]; i++)
                if (strcmp(si->keys[i], key) == 0)
                        known = true;
        if (!known) {
                char allowed[256];
                size_t nk = 0;
                while (nk < ELEMENTSOF(si->keys) && si->keys[nk])
                        nk++;
                word_list(si->keys, nk, allowed, sizeof allowed);
                return perr(p, "unknown key '%s' in section [%s]; allowed: %s", key, p->secname, allowed);
        }
        if (!*value)
                return perr(p, "empty value for key '%s' in section [%s]", key, p->secname);
        if (str_has_control(value))
                return perr(p, "key '%s' in section [%s]: the value '%s' has a control character; values are single "
                            "lines of printable characters", key, p->secname, str_escape_line(value, shown, sizeof shown));
        /* forward is the one key that repeats: one port forward per line. */
        if (strcmp(key, "forward") != 0) {
                _cleanup_free_ char *what = NULL;
                unsigned first = 0;
                if (asprintf(&what, "%s\n%s", p->secname, key) < 0)
                        return -ENOMEM;
                int r = seen_check(p, what, &first);
                if (r < 0)
                        return r;
                if (r > 0)
                        return perr(p, "duplicate key '%s' in section [%s]; it was already set on line %u",
                                    key, p->secname, first);
        }
        return set_key(p, key, value);
}

/* [install] is all or nothing: the media, the answer file's name and how it
 * reaches the installer; with initrd delivery the kernel and initrd too. */
static int install_complete(const char *file, const struct vm_install *in, phy_error *err) {
        bool any = in->media || in->kernel || in->initrd || in->append || in->answer || in->delivery;
        if (!any)
                return 0;
        if (!in->media || !in->answer || !in->delivery)
                return phy_error_usage(err, "%s: section [install] needs media, answer and delivery (a one-shot "
                                       "unattended install; docs/vm-format.md)", file);
        if (in->delivery == VM_INSTALL_INITRD && (!in->kernel || !in->initrd))
                return phy_error_usage(err, "%s: section [install] with delivery = initrd needs kernel and initrd",
                                       file);
        if (in->delivery == VM_INSTALL_CDROM && (in->kernel || in->initrd || in->append))
                return phy_error_usage(err, "%s: section [install] with delivery = cdrom takes no kernel, initrd "
                                       "or append", file);
        return 0;
}

bool vm_install_answer_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 64 || s[0] == '.')
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && !strchr("._-", *s))
                        return false;
        return true;
}

void vm_install_done(struct vm_install *in) {
        free(in->media);
        free(in->kernel);
        free(in->initrd);
        free(in->append);
        free(in->answer);
        *in = (struct vm_install) { 0 };
}

int vm_def_parse(const char *path, const char *text, struct vm_def *ret, phy_error *err) {
        struct vm_def d = { 0 };
        struct parser p = { .file = path ? path : "<input>", .d = &d, .sec = SEC_NONE, .err = err };
        int r = 0;
        if (path && !(d.path = strdup(path)))
                r = -ENOMEM;
        _cleanup_free_ char *copy = r < 0 ? NULL : strdup(text);
        if (r >= 0 && !copy)
                r = -ENOMEM;
        char *line = copy;
        /* Walk lines by hand: strtok would merge empty lines and shift numbers. */
        while (r >= 0 && line) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                p.line++;
                r = parse_line(&p, line);
                line = nl ? nl + 1 : NULL;
        }
        for (size_t i = 0; i < p.n_seen; i++)
                free(p.seen[i].what);
        free(p.seen);
        free(p.secname);
        if (r == -ENOMEM)
                phy_error_set(err, ENOMEM, "out of memory while parsing '%s'", p.file);
        if (r >= 0)
                r = install_complete(p.file, &d.install, err);
        if (r < 0) {
                vm_def_done(&d);
                return r;
        }
        *ret = d;
        return 0;
}

int vm_def_load(const char *path, struct vm_def *ret, phy_error *err) {
        _cleanup_free_ char *text = NULL;
        int r = file_read_all(path, 1024 * 1024, &text, NULL);
        if (r == -ENOENT)
                return phy_error_set(err, r, "cannot find the VM definition '%s'", path);
        if (r < 0)
                return phy_error_set(err, r, "cannot read the VM definition '%s': %s", path, strerror(-r));
        return vm_def_parse(path, text, ret, err);
}

/* ---- identity ----------------------------------------------------------- */

static int random_bytes(void *buf, size_t len, phy_error *err) {
        size_t got = 0;
        while (got < len) {
                ssize_t n = getrandom((char *) buf + got, len - got, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return phy_error_set(err, errno, "cannot get random bytes for a new VM's identity: %s",
                                             strerror(errno));
                got += (size_t) n;
        }
        return 0;
}

int vm_def_make_identity(struct vm_def *d, phy_error *err) {
        int r;
        if (!d->uuid[0]) {
                unsigned char u[16];
                if ((r = random_bytes(u, sizeof u, err)) < 0)
                        return r;
                u[6] = (unsigned char) ((u[6] & 0x0f) | 0x40);     /* version 4 */
                u[8] = (unsigned char) ((u[8] & 0x3f) | 0x80);     /* RFC 4122 variant */
                snprintf(d->uuid, sizeof d->uuid,
                         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
                         u[14], u[15]);
        }
        for (size_t i = 0; i < d->n_nics; i++) {
                if (d->nics[i].mac[0])
                        continue;
                unsigned char m[3];
                if ((r = random_bytes(m, sizeof m, err)) < 0)
                        return r;
                snprintf(d->nics[i].mac, sizeof d->nics[i].mac, "52:54:00:%02x:%02x:%02x", m[0], m[1], m[2]);
        }
        return 0;
}

/* ---- free and copy ------------------------------------------------------ */

void vm_def_done(struct vm_def *d) {
        if (!d)
                return;
        free(d->path);
        free(d->profile);
        free(d->machine);
        free(d->cpu_model);
        free(d->kernel);
        free(d->initrd);
        free(d->append);
        vm_install_done(&d->install);
        for (size_t i = 0; i < d->n_disks; i++) {
                free(d->disks[i].name);
                free(d->disks[i].path);
                free(d->disks[i].format);
                free(d->disks[i].key_file);
        }
        free(d->disks);
        for (size_t i = 0; i < d->n_cdroms; i++) {
                free(d->cdroms[i].name);
                free(d->cdroms[i].path);
        }
        free(d->cdroms);
        for (size_t i = 0; i < d->n_nics; i++) {
                free(d->nics[i].name);
                free(d->nics[i].network);
                free(d->nics[i].bridge);
                strv_done(&d->nics[i].forwards);
        }
        free(d->nics);
        for (size_t i = 0; i < d->n_shares; i++) {
                free(d->shares[i].tag);
                free(d->shares[i].path);
        }
        free(d->shares);
        strv_done(&d->passthrough);
        strv_done(&d->passthrough_roms);
        strv_done(&d->mdevs);
        strv_done(&d->usb);
        strv_done(&d->defaulted);
        memset(d, 0, sizeof *d);
}

static int dup_str(char **dst, const char *src) {
        *dst = NULL;
        if (src && !(*dst = strdup(src)))
                return -ENOMEM;
        return 0;
}

static int dup_strv(strv *dst, const strv *src) {
        *dst = (strv) { 0 };
        for (size_t i = 0; i < src->n; i++)
                if (strv_push(dst, src->v[i]) < 0)
                        return -ENOMEM;
        return 0;
}

int vm_def_copy(const struct vm_def *src, struct vm_def *ret) {
        struct vm_def d = *src;
        int r = 0;
        /* Reset every owned pointer first so a failure frees only copies. */
        d.path = d.profile = d.machine = d.cpu_model = d.kernel = d.initrd = d.append = NULL;
        d.install = (struct vm_install) { .delivery = src->install.delivery };
        d.disks = NULL; d.cdroms = NULL; d.nics = NULL; d.shares = NULL;
        d.n_disks = d.n_cdroms = d.n_nics = d.n_shares = 0;
        d.passthrough = d.usb = d.defaulted = d.passthrough_roms = d.mdevs = (strv) { 0 };

        r |= dup_str(&d.path, src->path);
        r |= dup_str(&d.profile, src->profile);
        r |= dup_str(&d.machine, src->machine);
        r |= dup_str(&d.cpu_model, src->cpu_model);
        r |= dup_str(&d.kernel, src->kernel);
        r |= dup_str(&d.initrd, src->initrd);
        r |= dup_str(&d.append, src->append);
        r |= dup_str(&d.install.media, src->install.media);
        r |= dup_str(&d.install.kernel, src->install.kernel);
        r |= dup_str(&d.install.initrd, src->install.initrd);
        r |= dup_str(&d.install.append, src->install.append);
        r |= dup_str(&d.install.answer, src->install.answer);
        r |= dup_strv(&d.passthrough, &src->passthrough);
        r |= dup_strv(&d.passthrough_roms, &src->passthrough_roms);
        r |= dup_strv(&d.mdevs, &src->mdevs);
        r |= dup_strv(&d.usb, &src->usb);
        r |= dup_strv(&d.defaulted, &src->defaulted);
        if (r < 0)
                goto fail;
        /* Zeroed arrays, filled member by member, counting as we go so that a
         * failure frees exactly what was copied. */
#define COPY_ARRAY(field, nfield) do {                                                  \
                if (src->nfield && !(d.field = calloc(src->nfield, sizeof *d.field)))   \
                        goto fail;                                                      \
        } while (0)
        COPY_ARRAY(disks, n_disks);
        for (; d.n_disks < src->n_disks; d.n_disks++) {
                const struct vm_disk *s = &src->disks[d.n_disks];
                struct vm_disk *k = &d.disks[d.n_disks];
                *k = (struct vm_disk) { .size = s->size, .bus = s->bus, .readonly = s->readonly,
                                        .key_prompt = s->key_prompt };
                if (dup_str(&k->name, s->name) < 0 || dup_str(&k->path, s->path) < 0 ||
                    dup_str(&k->format, s->format) < 0 || dup_str(&k->key_file, s->key_file) < 0) {
                        d.n_disks++;
                        goto fail;
                }
        }
        COPY_ARRAY(cdroms, n_cdroms);
        for (; d.n_cdroms < src->n_cdroms; d.n_cdroms++) {
                const struct vm_cdrom *s = &src->cdroms[d.n_cdroms];
                struct vm_cdrom *c = &d.cdroms[d.n_cdroms];
                *c = (struct vm_cdrom) { .bus = s->bus };
                if (dup_str(&c->name, s->name) < 0 || dup_str(&c->path, s->path) < 0) {
                        d.n_cdroms++;
                        goto fail;
                }
        }
        COPY_ARRAY(nics, n_nics);
        for (; d.n_nics < src->n_nics; d.n_nics++) {
                const struct vm_nic *s = &src->nics[d.n_nics];
                struct vm_nic *n = &d.nics[d.n_nics];
                *n = (struct vm_nic) { .mode = s->mode, .model = s->model, .backend = s->backend };
                memcpy(n->mac, s->mac, sizeof n->mac);
                if (dup_str(&n->name, s->name) < 0 || dup_strv(&n->forwards, &s->forwards) < 0 ||
                    dup_str(&n->network, s->network) < 0 || dup_str(&n->bridge, s->bridge) < 0) {
                        d.n_nics++;
                        goto fail;
                }
        }
        COPY_ARRAY(shares, n_shares);
        for (; d.n_shares < src->n_shares; d.n_shares++) {
                const struct vm_share *s = &src->shares[d.n_shares];
                struct vm_share *h = &d.shares[d.n_shares];
                *h = (struct vm_share) { .readonly = s->readonly, .type = s->type };
                if (dup_str(&h->tag, s->tag) < 0 || dup_str(&h->path, s->path) < 0) {
                        d.n_shares++;
                        goto fail;
                }
        }
#undef COPY_ARRAY
        *ret = d;
        return 0;
fail:
        vm_def_done(&d);
        return -ENOMEM;
}

/* ---- formatting --------------------------------------------------------- */

struct fmt {
        FILE *f;
        const struct vm_def *d;
        bool with_defaults;
        const char *section;    /* "disk.system" for the defaulted names */
        const char *header;     /* printed before the first key of a section */
        bool header_done;
        bool bad;               /* a value with a control character: no text at all */
};

static void fmt_section(struct fmt *o, const char *section, const char *header, bool always) {
        o->section = section;
        o->header = header;
        o->header_done = false;
        if (always) {
                fprintf(o->f, "\n[%s]\n", header);
                o->header_done = true;
        }
}

static void fmt_kv(struct fmt *o, const char *key, const char *value) {
        if (!value)
                return;
        if (str_has_control(value)) {
                o->bad = true;
                return;
        }
        char name[160];
        snprintf(name, sizeof name, "%s.%s", o->section, key);
        bool dflt = strv_contains(&o->d->defaulted, name);
        if (dflt && !o->with_defaults)
                return;
        if (!o->header_done) {
                fprintf(o->f, "\n[%s]\n", o->header);
                o->header_done = true;
        }
        fprintf(o->f, "%s = %s", key, value);
        if (dflt)
                fprintf(o->f, "  # default (profile %s)", o->d->profile ? o->d->profile : "?");
        fputc('\n', o->f);
}

static void fmt_size(struct fmt *o, const char *key, uint64_t v) {
        char buf[32];
        if (!v)
                return;
        format_size(v, buf, sizeof buf);
        fmt_kv(o, key, buf);
}

static void fmt_uint(struct fmt *o, const char *key, unsigned v) {
        char buf[16];
        if (!v)
                return;
        snprintf(buf, sizeof buf, "%u", v);
        fmt_kv(o, key, buf);
}

static void fmt_list(struct fmt *o, const char *key, const strv *l) {
        _cleanup_free_ char *j = l->n ? strv_join(l, " ") : NULL;
        fmt_kv(o, key, j);
}

char *vm_def_format(const struct vm_def *d, bool with_defaults) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        struct fmt o = { .f = f, .d = d, .with_defaults = with_defaults };
        char header[160], section[160];

        fprintf(f, "# Phyllome VM definition: see phyllome-vm(5)\n");
        fmt_section(&o, "vm", "vm", false);
        fmt_kv(&o, "name", d->name[0] ? d->name : NULL);
        fmt_kv(&o, "profile", d->profile);
        fmt_kv(&o, "uuid", d->uuid[0] ? d->uuid : NULL);

        fmt_section(&o, "machine", "machine", false);
        fmt_kv(&o, "type", d->machine);
        fmt_kv(&o, "smm", WORD(onoff_words, d->smm));
        fmt_kv(&o, "hyperv", WORD(onoff_words, d->hyperv));
        fmt_kv(&o, "rtc", WORD(rtc_words, d->rtc_localtime));
        fmt_kv(&o, "balloon", WORD(onoff_words, d->balloon));
        fmt_kv(&o, "rng", WORD(onoff_words, d->rng));
        fmt_kv(&o, "agent", WORD(onoff_words, d->agent));
        fmt_kv(&o, "input", WORD(input_words, d->input));

        fmt_section(&o, "cpu", "cpu", false);
        fmt_uint(&o, "cores", d->cores);
        fmt_uint(&o, "threads", d->threads);
        fmt_kv(&o, "model", d->cpu_model);

        fmt_section(&o, "memory", "memory", false);
        fmt_size(&o, "size", d->memory);

        fmt_section(&o, "firmware", "firmware", false);
        fmt_kv(&o, "type", WORD(fw_words, d->firmware));
        fmt_kv(&o, "secure-boot", WORD(onoff_words, d->secure_boot));

        fmt_section(&o, "boot", "boot", false);
        fmt_kv(&o, "kernel", d->kernel);
        fmt_kv(&o, "initrd", d->initrd);
        fmt_kv(&o, "append", d->append);

        fmt_section(&o, "install", "install", false);
        fmt_kv(&o, "media", d->install.media);
        fmt_kv(&o, "kernel", d->install.kernel);
        fmt_kv(&o, "initrd", d->install.initrd);
        fmt_kv(&o, "append", d->install.append);
        fmt_kv(&o, "answer", d->install.answer);
        fmt_kv(&o, "delivery", WORD(delivery_words, d->install.delivery));

        for (size_t i = 0; i < d->n_disks; i++) {
                const struct vm_disk *k = &d->disks[i];
                snprintf(section, sizeof section, "disk.%s", k->name);
                snprintf(header, sizeof header, "disk %s", k->name);
                fmt_section(&o, section, header, true);
                fmt_kv(&o, "path", k->path);
                fmt_kv(&o, "format", k->format);
                fmt_size(&o, "size", k->size);
                fmt_kv(&o, "bus", WORD(bus_words, k->bus));
                fmt_kv(&o, "readonly", k->readonly ? "on" : NULL);
                fmt_kv(&o, "key-file", k->key_file);
                fmt_kv(&o, "key", k->key_prompt ? "prompt" : NULL);
        }
        for (size_t i = 0; i < d->n_cdroms; i++) {
                const struct vm_cdrom *c = &d->cdroms[i];
                snprintf(section, sizeof section, "cdrom.%s", c->name);
                snprintf(header, sizeof header, "cdrom %s", c->name);
                fmt_section(&o, section, header, true);
                fmt_kv(&o, "path", c->path);
                fmt_kv(&o, "bus", WORD(bus_words, c->bus));
        }
        for (size_t i = 0; i < d->n_nics; i++) {
                const struct vm_nic *n = &d->nics[i];
                snprintf(section, sizeof section, "network.%s", n->name);
                snprintf(header, sizeof header, "network %s", n->name);
                fmt_section(&o, section, header, true);
                fmt_kv(&o, "mode", WORD(mode_words, n->mode));
                fmt_kv(&o, "model", WORD(nic_words, n->model));
                fmt_kv(&o, "mac", n->mac[0] ? n->mac : NULL);
                fmt_kv(&o, "backend", WORD(netbe_words, n->backend));
                fmt_kv(&o, "network", n->network);
                fmt_kv(&o, "bridge", n->bridge);
                for (size_t j = 0; j < n->forwards.n; j++)
                        fmt_kv(&o, "forward", n->forwards.v[j]);
        }

        fmt_section(&o, "display", "display", false);
        fmt_kv(&o, "type", WORD(display_words, d->display));
        fmt_kv(&o, "gl", WORD(onoff_words, d->gl));
        fmt_section(&o, "gpu", "gpu", false);
        fmt_kv(&o, "type", WORD(gpu_words, d->gpu));
        fmt_section(&o, "sound", "sound", false);
        fmt_kv(&o, "type", WORD(sound_words, d->sound));
        fmt_section(&o, "tpm", "tpm", false);
        fmt_kv(&o, "type", WORD(tpm_words, d->tpm));
        fmt_section(&o, "usb", "usb", false);
        fmt_list(&o, "devices", &d->usb);
        if (d->usb_redirect_set) {
                char channels[16];
                snprintf(channels, sizeof channels, "%u", d->usb_redirect);
                fmt_kv(&o, "redirect", channels);
        }
        for (size_t i = 0; i < d->n_shares; i++) {
                const struct vm_share *s = &d->shares[i];
                snprintf(section, sizeof section, "share.%s", s->tag);
                snprintf(header, sizeof header, "share %s", s->tag);
                fmt_section(&o, section, header, true);
                fmt_kv(&o, "path", s->path);
                fmt_kv(&o, "readonly", s->readonly ? "on" : NULL);
                fmt_kv(&o, "type", WORD(share_type_words, s->type));
        }
        fmt_section(&o, "passthrough", "passthrough", false);
        fmt_list(&o, "devices", &d->passthrough);
        fmt_list(&o, "rom", &d->passthrough_roms);
        fmt_list(&o, "mdev", &d->mdevs);
        fmt_kv(&o, "mdev-display", WORD(onoff_words, d->mdev_display));
        fmt_kv(&o, "single-gpu", WORD(onoff_words, d->single_gpu));

        if (fclose(f) != 0 || o.bad) {
                free(buf);
                errno = o.bad ? EINVAL : errno;
                return NULL;
        }
        return buf;
}

/* ---- single-line values (issue 12) --------------------------------------- */

static int control_char(const char *section, const char *label, const char *key, const char *v, phy_error *err) {
        char shown[200];
        return phy_error_usage(err, "[%s%s%s] %s: the value '%s' has a control character (a newline, tab or "
                             "escape); values are single lines of printable characters", section, label ? " " : "",
                             label ? label : "", key, str_escape_line(v, shown, sizeof shown));
}

#define CHECK(section, label, key, v)                                                   \
        do {                                                                            \
                if ((v) && str_has_control(v))                                          \
                        return control_char(section, label, key, v, err);               \
        } while (0)
#define CHECK_LIST(section, label, key, l)                                              \
        do {                                                                            \
                for (size_t _i = 0; _i < (l)->n; _i++)                                  \
                        CHECK(section, label, key, (l)->v[_i]);                         \
        } while (0)

int vm_def_check_values(const struct vm_def *d, phy_error *err) {
        CHECK("vm", NULL, "name", d->name);
        CHECK("vm", NULL, "profile", d->profile);
        CHECK("vm", NULL, "uuid", d->uuid);
        CHECK("machine", NULL, "type", d->machine);
        CHECK("cpu", NULL, "model", d->cpu_model);
        CHECK("boot", NULL, "kernel", d->kernel);
        CHECK("boot", NULL, "initrd", d->initrd);
        CHECK("boot", NULL, "append", d->append);
        CHECK("install", NULL, "media", d->install.media);
        CHECK("install", NULL, "kernel", d->install.kernel);
        CHECK("install", NULL, "initrd", d->install.initrd);
        CHECK("install", NULL, "append", d->install.append);
        CHECK("install", NULL, "answer", d->install.answer);
        for (size_t i = 0; i < d->n_disks; i++) {
                const struct vm_disk *k = &d->disks[i];
                CHECK("disk", NULL, "name", k->name);
                CHECK("disk", k->name, "path", k->path);
                CHECK("disk", k->name, "format", k->format);
                CHECK("disk", k->name, "key-file", k->key_file);
        }
        for (size_t i = 0; i < d->n_cdroms; i++) {
                CHECK("cdrom", NULL, "name", d->cdroms[i].name);
                CHECK("cdrom", d->cdroms[i].name, "path", d->cdroms[i].path);
        }
        for (size_t i = 0; i < d->n_nics; i++) {
                const struct vm_nic *n = &d->nics[i];
                CHECK("network", NULL, "name", n->name);
                CHECK_LIST("network", n->name, "forward", &n->forwards);
                CHECK("network", n->name, "network", n->network);
                CHECK("network", n->name, "bridge", n->bridge);
        }
        for (size_t i = 0; i < d->n_shares; i++) {
                CHECK("share", NULL, "tag", d->shares[i].tag);
                CHECK("share", d->shares[i].tag, "path", d->shares[i].path);
        }
        CHECK_LIST("usb", NULL, "devices", &d->usb);
        CHECK_LIST("passthrough", NULL, "devices", &d->passthrough);
        CHECK_LIST("passthrough", NULL, "rom", &d->passthrough_roms);
        CHECK_LIST("passthrough", NULL, "mdev", &d->mdevs);
        return 0;
}

int vm_def_check_save(const struct vm_def *d, const char *file, phy_error *err) {
        /* Every setter (create, edit, PUT, the set commands) ends here: a value
         * with a newline would add keys or sections to the file. */
        int r = vm_def_check_values(d, err);
        if (r < 0)
                return r;
        /* And every file it names outside its own directory is one the host allows. */
        _cleanup_free_ char *dir = strdup(file);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (!dir)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (slash)
                *slash = '\0';
        return vm_def_check_here(d, slash ? (slash == dir ? "/" : dir) : ".", err);
}

int vm_def_save(const struct vm_def *d, const char *file, phy_error *err) {
        int r = vm_def_check_save(d, file, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *text = vm_def_format(d, false);
        if (!text)
                return phy_error_set(err, ENOMEM, "out of memory formatting the definition of '%s'", d->name);
        return file_write_atomic(file, text, strlen(text), 0644, err);
}

/* ---- JSON --------------------------------------------------------------- */

static void jstr(json_object *o, const char *key, const char *v) {
        if (v)
                json_object_object_add(o, key, json_object_new_string(v));
}

static void jint(json_object *o, const char *key, uint64_t v) {
        if (v)
                json_object_object_add(o, key, json_object_new_int64((int64_t) v));
}

static void jbool(json_object *o, const char *key, enum vm_tristate v) {
        if (v != VM_UNSET)
                json_object_object_add(o, key, json_object_new_boolean(v == VM_ON));
}

static json_object *jstrv(const strv *l) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < l->n; i++)
                json_object_array_add(a, json_object_new_string(l->v[i]));
        return a;
}

/* Adds o under key only when it has members, so a def shows what it sets. */
static void jsection(json_object *top, const char *key, json_object *o) {
        if (json_object_object_length(o) > 0)
                json_object_object_add(top, key, o);
        else
                json_object_put(o);
}

json_object *vm_def_to_json(const struct vm_def *d) {
        json_object *top = json_object_new_object(), *o;

        o = json_object_new_object();
        jstr(o, "name", d->name[0] ? d->name : NULL);
        jstr(o, "profile", d->profile);
        jstr(o, "uuid", d->uuid[0] ? d->uuid : NULL);
        jsection(top, "vm", o);

        o = json_object_new_object();
        jstr(o, "type", d->machine);
        jbool(o, "smm", d->smm);
        jbool(o, "hyperv", d->hyperv);
        jstr(o, "rtc", WORD(rtc_words, d->rtc_localtime));
        jbool(o, "balloon", d->balloon);
        jbool(o, "rng", d->rng);
        jbool(o, "agent", d->agent);
        jstr(o, "input", WORD(input_words, d->input));
        jsection(top, "machine", o);

        o = json_object_new_object();
        jint(o, "cores", d->cores);
        jint(o, "threads", d->threads);
        jstr(o, "model", d->cpu_model);
        jsection(top, "cpu", o);

        o = json_object_new_object();
        jint(o, "size", d->memory);
        jsection(top, "memory", o);

        o = json_object_new_object();
        jstr(o, "type", WORD(fw_words, d->firmware));
        jbool(o, "secure-boot", d->secure_boot);
        jsection(top, "firmware", o);

        o = json_object_new_object();
        jstr(o, "kernel", d->kernel);
        jstr(o, "initrd", d->initrd);
        jstr(o, "append", d->append);
        jsection(top, "boot", o);

        o = json_object_new_object();
        jstr(o, "media", d->install.media);
        jstr(o, "kernel", d->install.kernel);
        jstr(o, "initrd", d->install.initrd);
        jstr(o, "append", d->install.append);
        jstr(o, "answer", d->install.answer);
        jstr(o, "delivery", WORD(delivery_words, d->install.delivery));
        jsection(top, "install", o);

        json_object *a = json_object_new_array();
        for (size_t i = 0; i < d->n_disks; i++) {
                const struct vm_disk *k = &d->disks[i];
                o = json_object_new_object();
                jstr(o, "name", k->name);
                jstr(o, "path", k->path);
                jstr(o, "format", k->format);
                jint(o, "size", k->size);
                jstr(o, "bus", WORD(bus_words, k->bus));
                json_object_object_add(o, "readonly", json_object_new_boolean(k->readonly));
                jstr(o, "key-file", k->key_file);
                jstr(o, "key", k->key_prompt ? "prompt" : NULL);
                json_object_array_add(a, o);
        }
        json_object_object_add(top, "disks", a);

        a = json_object_new_array();
        for (size_t i = 0; i < d->n_cdroms; i++) {
                o = json_object_new_object();
                jstr(o, "name", d->cdroms[i].name);
                jstr(o, "path", d->cdroms[i].path);
                jstr(o, "bus", WORD(bus_words, d->cdroms[i].bus));
                json_object_array_add(a, o);
        }
        json_object_object_add(top, "cdroms", a);

        a = json_object_new_array();
        for (size_t i = 0; i < d->n_nics; i++) {
                const struct vm_nic *n = &d->nics[i];
                o = json_object_new_object();
                jstr(o, "name", n->name);
                jstr(o, "mode", WORD(mode_words, n->mode));
                jstr(o, "model", WORD(nic_words, n->model));
                jstr(o, "mac", n->mac[0] ? n->mac : NULL);
                jstr(o, "backend", WORD(netbe_words, n->backend));
                if (n->network)
                        jstr(o, "network", n->network);
                if (n->bridge)
                        jstr(o, "bridge", n->bridge);
                json_object_object_add(o, "forward", jstrv(&n->forwards));
                json_object_array_add(a, o);
        }
        json_object_object_add(top, "networks", a);

        o = json_object_new_object();
        jstr(o, "type", WORD(display_words, d->display));
        jbool(o, "gl", d->gl);
        jsection(top, "display", o);
        o = json_object_new_object();
        jstr(o, "type", WORD(gpu_words, d->gpu));
        jsection(top, "gpu", o);
        o = json_object_new_object();
        jstr(o, "type", WORD(sound_words, d->sound));
        jsection(top, "sound", o);
        o = json_object_new_object();
        jstr(o, "type", WORD(tpm_words, d->tpm));
        jsection(top, "tpm", o);

        o = json_object_new_object();
        json_object_object_add(o, "devices", jstrv(&d->usb));
        json_object_object_add(o, "redirect", json_object_new_int((int) d->usb_redirect));
        json_object_object_add(top, "usb", o);

        a = json_object_new_array();
        for (size_t i = 0; i < d->n_shares; i++) {
                o = json_object_new_object();
                jstr(o, "tag", d->shares[i].tag);
                jstr(o, "path", d->shares[i].path);
                json_object_object_add(o, "readonly", json_object_new_boolean(d->shares[i].readonly));
                jstr(o, "type", WORD(share_type_words, d->shares[i].type));
                json_object_array_add(a, o);
        }
        json_object_object_add(top, "shares", a);

        o = json_object_new_object();
        json_object_object_add(o, "devices", jstrv(&d->passthrough));
        json_object_object_add(o, "rom", jstrv(&d->passthrough_roms));
        json_object_object_add(o, "mdev", jstrv(&d->mdevs));
        jstr(o, "mdev-display", WORD(onoff_words, d->mdev_display));
        jstr(o, "single-gpu", WORD(onoff_words, d->single_gpu));
        json_object_object_add(top, "passthrough", o);

        json_object_object_add(top, "defaulted", jstrv(&d->defaulted));
        return top;
}

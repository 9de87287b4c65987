/* SPDX-License-Identifier: MIT */
/*
 * The keys of vm.conf, one row each (src/vm/keys.h says how to add one):
 * the words of each enum, the checks of single values, the sections and
 * the key table the parser, formatter, JSON, copy, free and the doc's key
 * table are derived from (src/vm/def.c).
 */
#include "keys.h"

#include <assert.h>
#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "profile.h"
#include "value.h"

/* ---- enum words ------------------------------------------------------- */

static const char *const bus_words[] = { [VM_BUS_VIRTIO] = "virtio", [VM_BUS_SCSI] = "scsi",
        [VM_BUS_SATA] = "sata", [VM_BUS_NVME] = "nvme", [VM_BUS_IDE] = "ide" };
static const char *const cdrom_bus_words[] = { [VM_BUS_SCSI] = "scsi", [VM_BUS_SATA] = "sata",
        [VM_BUS_IDE] = "ide" };
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
static const char *const delivery_words[] = { [VM_INSTALL_INITRD] = "initrd", [VM_INSTALL_CDROM] = "cdrom" };
static const char *const rtc_words[] = { [VM_OFF] = "utc", [VM_ON] = "localtime" };
static const char *const format_words[] = { "qcow2", "raw" };
/* A bool key: index 1 sets it. */
static const char *const flag_words[] = { "off", "on" };
static const char *const prompt_words[] = { [1] = "prompt" };

/* Every enum is stored and read as an int by the table's walks. */
static_assert(sizeof(enum vm_bus) == sizeof(int) && sizeof(enum vm_tristate) == sizeof(int) &&
              sizeof(enum vm_display) == sizeof(int) && sizeof(enum vm_net_backend) == sizeof(int) &&
              sizeof(enum vm_firmware) == sizeof(int) && sizeof(enum vm_gpu) == sizeof(int) &&
              sizeof(enum vm_sound) == sizeof(int) && sizeof(enum vm_tpm) == sizeof(int) &&
              sizeof(enum vm_nic_model) == sizeof(int) && sizeof(enum vm_net_mode) == sizeof(int) &&
              sizeof(enum vm_share_type) == sizeof(int) && sizeof(enum vm_input) == sizeof(int),
              "enums are int-sized");

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

static int word_lookup(const char *const *tab, size_t n, const char *word) {
        for (size_t i = 0; i < n; i++)
                if (tab[i] && strcmp(tab[i], word) == 0)
                        return (int) i;
        return -1;
}

int vm_display_from_name(const char *word, const char **ret_allowed) {
        if (ret_allowed)
                *ret_allowed = "none, spice, gtk, sdl, vnc";
        return word_lookup(display_words, ELEMENTSOF(display_words), word);
}

int vm_gpu_from_name(const char *word, const char **ret_allowed) {
        if (ret_allowed)
                *ret_allowed = "none, std, virtio, virgl";
        return word_lookup(gpu_words, ELEMENTSOF(gpu_words), word);
}

int vm_bus_from_name(const char *word) { return word_lookup(bus_words, ELEMENTSOF(bus_words), word); }
int vm_nic_model_from_name(const char *word) { return word_lookup(nic_words, ELEMENTSOF(nic_words), word); }
int vm_share_type_from_name(const char *word) {
        return word_lookup(share_type_words, ELEMENTSOF(share_type_words), word);
}

/* ---- the checks of single values ------------------------------------- */

bool vm_name_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;
        if (n < 1 || n > VM_NAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char) name[i]) && !strchr("._-", name[i]))
                        return false;
        return true;
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

static bool profile_valid(const char *s) { return vm_profile_find(s) != NULL; }
static bool uuid_valid(const char *s) { return value_uuid_valid(s, false); }
/* Mediated devices are named by lower-case UUIDs (the kernel's sysfs names). */
static bool mdev_uuid_valid(const char *s) { return value_uuid_valid(s, true); }
static bool forward_valid(const char *s) { return value_forward_parse(s, NULL) == 0; }
static bool pci_valid(const char *s) { return value_pci_addr_valid(s, false); }
/* Names become socket and interface names: keep them short and plain. */
static bool network_name_valid(const char *s) { return vm_net_name_valid(s, 32); }
static bool bridge_name_valid(const char *s) { return vm_net_name_valid(s, 15); }

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

/* [passthrough] rom: PCI_ADDRESS=FILE (the file keeps its case, no blanks). */
static bool rom_valid(const char *s) {
        const char *eq = strchr(s, '=');
        if (!eq || !eq[1] || (size_t) (eq - s) >= 64)
                return false;
        char addr[64];
        memcpy(addr, s, (size_t) (eq - s));
        addr[eq - s] = '\0';
        return pci_valid(addr);
}

/* ---- the sections ------------------------------------------------------ */

enum {
        SEC_VM, SEC_MACHINE, SEC_CPU, SEC_MEMORY, SEC_FIRMWARE, SEC_BOOT, SEC_INSTALL, SEC_DISK, SEC_CDROM,
        SEC_NETWORK, SEC_DISPLAY, SEC_GPU, SEC_SOUND, SEC_TPM, SEC_USB, SEC_SHARE, SEC_PASSTHROUGH,
        _SEC_MAX
};

#define PLAIN(n, doc) { .name = n, .json = n, .doc_name = doc }
#define LABELLED(n, j, type, arr, cnt, lab, ex, doc)                                                     \
        { .name = n, .json = j, .labelled = true, .label_key = #lab, .label_example = ex, .doc_name = doc, \
          .array_offset = offsetof(struct vm_def, arr), .count_offset = offsetof(struct vm_def, cnt),      \
          .elem_size = sizeof(type), .label_offset = offsetof(type, lab) }

const struct vm_section vm_section_table[] = {
        [SEC_VM] = PLAIN("vm", "`[vm]`"),
        [SEC_MACHINE] = PLAIN("machine", "`[machine]`"),
        [SEC_CPU] = PLAIN("cpu", "`[cpu]`"),
        [SEC_MEMORY] = PLAIN("memory", "`[memory]`"),
        [SEC_FIRMWARE] = PLAIN("firmware", "`[firmware]`"),
        [SEC_BOOT] = PLAIN("boot", "`[boot]`"),
        [SEC_INSTALL] = PLAIN("install", "`[install]`"),
        [SEC_DISK] = LABELLED("disk", "disks", struct vm_disk, disks, n_disks, name, "system", "`[disk NAME]`"),
        [SEC_CDROM] = LABELLED("cdrom", "cdroms", struct vm_cdrom, cdroms, n_cdroms, name, "install",
                               "`[cdrom NAME]`"),
        [SEC_NETWORK] = LABELLED("network", "networks", struct vm_nic, nics, n_nics, name, "net0",
                                 "`[network NAME]`"),
        [SEC_DISPLAY] = PLAIN("display", "`[display]`"),
        [SEC_GPU] = PLAIN("gpu", "`[gpu]`"),
        [SEC_SOUND] = PLAIN("sound", "`[sound]`"),
        [SEC_TPM] = PLAIN("tpm", "`[tpm]`"),
        [SEC_USB] = { .name = "usb", .json = "usb", .json_always = true, .doc_name = "`[usb]`" },
        [SEC_SHARE] = LABELLED("share", "shares", struct vm_share, shares, n_shares, tag, "data", "`[share TAG]`"),
        [SEC_PASSTHROUGH] = { .name = "passthrough", .json = "passthrough", .json_always = true,
                              .doc_name = "`[passthrough]`" },
};
const size_t vm_n_sections = ELEMENTSOF(vm_section_table);
static_assert(ELEMENTSOF(vm_section_table) == _SEC_MAX, "a row per section");

/* ---- the keys ------------------------------------------------------------ */

#define TOP(f) .offset = offsetof(struct vm_def, f)
#define IN(type, f) .offset = offsetof(type, f)
#define WORDS(tab) .words = tab, .n_words = ELEMENTSOF(tab)
#define BUF(f) TOP(f), .type = VM_KEY_BUF, .size = sizeof(((struct vm_def *) 0)->f)
#define ENUM(tab) .type = VM_KEY_ENUM, WORDS(tab)
#define ONOFF .type = VM_KEY_ENUM, WORDS(onoff_words), .json_bool = true

const struct vm_key vm_key_table[] = {
        /* [vm] */
        { SEC_VM, "name", BUF(name), .valid = vm_name_valid, .what = "VM name",
          .hint = "use 1 to 64 of A-Z a-z 0-9 . _ -",
          .doc_values = "a name (1 to 64 of `A-Z a-z 0-9 . _ -`); must match the directory",
          .doc_default = "the directory name" },
        { SEC_VM, "profile", VM_KEY_STR, TOP(profile), .valid = profile_valid, .allowed = vm_profile_names,
          .doc_values = "`windows11`, `windows10`, `linux`, `freebsd`, `other`, `macos`", .doc_default = "required" },
        { SEC_VM, "uuid", BUF(uuid), .valid = uuid_valid, .lower = VM_LOWER_ALL, .what = "UUID",
          .hint = "use the 8-4-4-4-12 hex form (e.g. 2f1e6b7a-3c1d-4e8f-9a0b-1c2d3e4f5a6b)",
          .doc_values = "`8-4-4-4-12` hex", .doc_default = "made by `phyllo create`" },
        /* [machine] */
        { SEC_MACHINE, "type", VM_KEY_STR, TOP(machine), .valid = machine_valid,
          .hint = "allowed: q35, pc-q35-<version>", .doc_values = "`q35` or `pc-q35-<version>`",
          .doc_default = "`q35`" },
        { SEC_MACHINE, "smm", TOP(smm), ONOFF, .doc_default = "profile (on when Secure Boot is on)" },
        { SEC_MACHINE, "hyperv", TOP(hyperv), ONOFF, .doc_values = "Hyper-V enlightenments {words}",
          .doc_default = "profile" },
        { SEC_MACHINE, "kvm-hidden", TOP(kvm_hidden), ONOFF,
          .doc_values = "{words}: hide KVM's signature from the guest (libvirt's `<kvm><hidden>`)",
          .doc_default = "`off`" },
        { SEC_MACHINE, "rtc", TOP(rtc_localtime), ENUM(rtc_words), .doc_default = "profile" },
        { SEC_MACHINE, "balloon", TOP(balloon), ONOFF, .doc_values = "{words} (virtio-balloon, free page reporting)",
          .doc_default = "profile" },
        { SEC_MACHINE, "rng", TOP(rng), ONOFF, .doc_values = "{words} (virtio-rng)", .doc_default = "`on`" },
        { SEC_MACHINE, "agent", TOP(agent), ONOFF, .doc_values = "{words} (QEMU guest agent channel)",
          .doc_default = "profile" },
        { SEC_MACHINE, "input", TOP(input), ENUM(input_words), .doc_default = "profile" },
        /* [cpu] */
        { SEC_CPU, "cores", VM_KEY_COUNT, TOP(cores), .min = 1, .max = 255, .what = "number",
          .hint = "use a whole number from 1 to 255", .doc_values = "1 to 255",
          .doc_default = "profile, capped to the budget" },
        { SEC_CPU, "threads", VM_KEY_COUNT, TOP(threads), .min = 1, .max = 2, .what = "number",
          .hint = "use a whole number from 1 to 2", .doc_values = "1 or 2", .doc_default = "1" },
        { SEC_CPU, "model", VM_KEY_STR, TOP(cpu_model), .valid = cpu_model_valid, .what = "CPU model",
          .hint = "use a QEMU CPU model name such as host, max or Skylake-Client, optionally with ,+flag or ,-flag",
          .doc_values = "a QEMU CPU model, optionally `,+flag,-flag`",
          .doc_default = "`host` under KVM, `max,la57=off,erms=off,fsrm=off` under TCG" },
        /* [memory] */
        { SEC_MEMORY, "size", VM_KEY_SIZE, TOP(memory), .doc_values = "a size",
          .doc_default = "profile, capped to the budget" },
        /* [firmware] */
        { SEC_FIRMWARE, "type", TOP(firmware), ENUM(fw_words),
          .doc_default = "`uefi` (`bios` for a direct kernel boot, except `windows11`)" },
        { SEC_FIRMWARE, "secure-boot", TOP(secure_boot), ONOFF, .doc_default = "profile" },
        /* [boot]: direct kernel boot */
        { SEC_BOOT, "kernel", VM_KEY_STR, TOP(kernel), .doc_values = "a kernel image: direct kernel boot",
          .doc_default = "none" },
        { SEC_BOOT, "initrd", VM_KEY_STR, TOP(initrd), .doc_values = "an initramfs (needs `kernel`)",
          .doc_default = "none" },
        { SEC_BOOT, "append", VM_KEY_STR, TOP(append), .doc_values = "the kernel command line (needs `kernel`)",
          .doc_default = "none" },
        /* [install]: a one-shot unattended install (src/vm/install.c); all or
         * nothing, checked after the parse (vm_def_parse) */
        { SEC_INSTALL, "media", VM_KEY_STR, TOP(install.media),
          .doc_values = "the installer ISO, attached (first in the boot order) for the install run only",
          .doc_default = "none" },
        { SEC_INSTALL, "kernel", VM_KEY_STR, TOP(install.kernel),
          .doc_values = "`delivery = initrd`: the media's kernel, copied into the VM dir", .doc_default = "none" },
        { SEC_INSTALL, "initrd", VM_KEY_STR, TOP(install.initrd),
          .doc_values = "`delivery = initrd`: the media's initrd, copied into the VM dir", .doc_default = "none" },
        { SEC_INSTALL, "append", VM_KEY_STR, TOP(install.append),
          .doc_values = "`delivery = initrd`: the installer kernel's arguments", .doc_default = "none" },
        { SEC_INSTALL, "answer", VM_KEY_STR, TOP(install.answer), .valid = vm_install_answer_valid,
          .what = "answer file name", .hint = "use 1 to 64 of A-Z a-z 0-9 . _ - (not starting with '.')",
          .doc_values = "the answer file's name (`preseed.cfg`, `autounattend.xml`; 1 to 64 of `A-Za-z0-9._-`)",
          .doc_default = "required with `[install]`" },
        { SEC_INSTALL, "delivery", TOP(install.delivery), ENUM(delivery_words),
          .doc_values = "`initrd` (the answer appended to the media's initrd, its kernel booted directly) or `cdrom` "
                        "(on a CD with the answer at its root)",
          .doc_default = "required with `[install]`" },
        /* [disk NAME] */
        { SEC_DISK, "path", VM_KEY_STR, IN(struct vm_disk, path), .doc_values = "image file",
          .doc_default = "`disk-NAME.qcow2` (`.img` for raw)" },
        { SEC_DISK, "format", VM_KEY_STR, IN(struct vm_disk, format), WORDS(format_words),
          .doc_default = "`raw` when the path ends in `.img`/`.raw`, else `qcow2`" },
        { SEC_DISK, "size", VM_KEY_SIZE, IN(struct vm_disk, size), .doc_values = "a size (used to create the image)",
          .doc_default = "profile" },
        { SEC_DISK, "bus", IN(struct vm_disk, bus), ENUM(bus_words), .doc_default = "profile" },
        { SEC_DISK, "readonly", VM_KEY_FLAG, IN(struct vm_disk, readonly), WORDS(flag_words), .json_bool = true,
          .doc_default = "`off`" },
        { SEC_DISK, "key-file", VM_KEY_STR, IN(struct vm_disk, key_file), .conflict = "key",
          .conflict_what = "key-file and key = prompt",
          .doc_values = "a file holding the key of a LUKS-encrypted qcow2 image", .doc_default = "none" },
        { SEC_DISK, "key", VM_KEY_FLAG, IN(struct vm_disk, key_prompt), WORDS(prompt_words),
          .hint = "allowed: prompt (the passphrase is typed when needed; or use key-file = FILE)",
          .conflict = "key-file", .conflict_what = "key-file and key = prompt",
          .doc_values = "`prompt`: the LUKS passphrase is typed when needed (not with `key-file`)",
          .doc_default = "none" },
        /* [cdrom NAME] */
        { SEC_CDROM, "path", VM_KEY_STR, IN(struct vm_cdrom, path),
          .doc_values = "ISO image; none: an empty drive (`phyllo cdrom insert` fills it, also while the VM runs)",
          .doc_default = "" },
        { SEC_CDROM, "bus", IN(struct vm_cdrom, bus), ENUM(cdrom_bus_words), .doc_default = "`sata`" },
        /* [network NAME] */
        { SEC_NETWORK, "mode", IN(struct vm_nic, mode), ENUM(mode_words),
          .doc_values = "{words} (`isolated`: VMs of one `network` see each other only; "
                        "`bridge`: a tap on a host `bridge`)",
          .doc_default = "`user`" },
        { SEC_NETWORK, "model", IN(struct vm_nic, model), ENUM(nic_words), .doc_default = "profile" },
        { SEC_NETWORK, "mac", VM_KEY_BUF, IN(struct vm_nic, mac), .size = sizeof(((struct vm_nic *) 0)->mac),
          .valid = mac_valid, .lower = VM_LOWER_ALL, .what = "MAC address",
          .hint = "use six hex pairs with a unicast first octet (e.g. 52:54:00:12:34:56)",
          .doc_values = "six hex pairs, unicast",
          .doc_default = "made by `phyllo create`; else derived from the uuid and NAME" },
        { SEC_NETWORK, "backend", IN(struct vm_nic, backend), ENUM(netbe_words),
          .doc_values = "{words} (user networking only)", .doc_default = "`passt` when installed, else `slirp`" },
        { SEC_NETWORK, "network", VM_KEY_STR, IN(struct vm_nic, network), .valid = network_name_valid,
          .what = "network name", .hint = "use 1 to 32 of A-Z a-z 0-9 . _ - (not starting with '.' or '-')",
          .doc_values = "with `mode = isolated`: the network's name (1 to 32 of `A-Z a-z 0-9 . _ -`)",
          .doc_default = "required by `isolated`" },
        { SEC_NETWORK, "bridge", VM_KEY_STR, IN(struct vm_nic, bridge), .valid = bridge_name_valid,
          .what = "bridge name", .hint = "use 1 to 15 of A-Z a-z 0-9 . _ - (not starting with '.' or '-')",
          .doc_values = "with `mode = bridge`: an existing host bridge, e.g. `br0`",
          .doc_default = "required by `bridge`" },
        { SEC_NETWORK, "forward", VM_KEY_REPEAT, IN(struct vm_nic, forwards), .valid = forward_valid,
          .what = "forward", .hint = "use PROTOCOL:[ADDRESS:]HOSTPORT:GUESTPORT with tcp or udp, an IPv4 address "
                                     "and ports 1 to 65535 (e.g. tcp:2222:22)",
          .doc_values = "`tcp:[ADDRESS:]HOSTPORT:GUESTPORT` or `udp:…` (user mode); repeatable",
          .doc_default = "none" },
        /* [display] */
        { SEC_DISPLAY, "type", TOP(display), ENUM(display_words), .doc_default = "profile (`spice`)" },
        { SEC_DISPLAY, "gl", TOP(gl), ONOFF, .doc_default = "`on` when the GPU is `virgl`" },
        /* [gpu] [sound] [tpm] */
        { SEC_GPU, "type", TOP(gpu), ENUM(gpu_words), .doc_default = "profile" },
        { SEC_SOUND, "type", TOP(sound), ENUM(sound_words), .doc_default = "profile" },
        { SEC_TPM, "type", TOP(tpm), ENUM(tpm_words),
          .doc_values = "`none`, `emulated` (swtpm, TPM 2.0 CRB), `passthrough`", .doc_default = "profile" },
        /* [usb] */
        { SEC_USB, "devices", VM_KEY_LIST, TOP(usb), .seps = " \t,", .lower = VM_LOWER_ALL,
          .valid = value_usb_id_valid, .what = "USB device",
          .hint = "use VENDOR:PRODUCT in hex, separated by spaces (e.g. 046d:c52b)",
          .doc_values = "`VENDOR:PRODUCT` hex pairs or `BUS-PORT`, blank- or comma-separated", .doc_default = "none" },
        { SEC_USB, "redirect", VM_KEY_COUNT, TOP(usb_redirect), .min = 0, .max = VM_USB_REDIRECT_MAX,
          .has_set = true, .set_offset = offsetof(struct vm_def, usb_redirect_set), .what = "number",
          .hint = "use a whole number of USB redirection channels from 0 to 4",
          .doc_values = "USB redirection channels over SPICE, `0`–`4` (refused without a SPICE display)",
          .doc_default = "2 with SPICE, else 0" },
        /* [share TAG] */
        { SEC_SHARE, "path", VM_KEY_STR, IN(struct vm_share, path), .doc_values = "a host directory (required)",
          .doc_default = "" },
        { SEC_SHARE, "readonly", VM_KEY_FLAG, IN(struct vm_share, readonly), WORDS(flag_words), .json_bool = true,
          .doc_default = "`off`" },
        { SEC_SHARE, "type", IN(struct vm_share, type), ENUM(share_type_words), .doc_default = "`virtiofs`" },
        /* [passthrough] */
        { SEC_PASSTHROUGH, "devices", VM_KEY_LIST, TOP(passthrough), .seps = " \t,", .lower = VM_LOWER_ALL,
          .valid = pci_valid, .what = "PCI address",
          .hint = "use DOMAIN:BUS:SLOT.FUNCTION, separated by spaces (e.g. 0000:01:00.0)",
          .doc_values = "PCI addresses `0000:01:00.0`, blank-separated", .doc_default = "none" },
        { SEC_PASSTHROUGH, "rom", VM_KEY_LIST, TOP(passthrough_roms), .seps = " \t", .lower = VM_LOWER_TO_EQ,
          .dups_ok = true, .valid = rom_valid, .what = "ROM",
          .hint = "use PCI_ADDRESS=FILE (e.g. 0000:01:00.0=gpu.rom)",
          .doc_values = "`ADDRESS=FILE`: a ROM file for a passed-through device, blank-separated",
          .doc_default = "none" },
        { SEC_PASSTHROUGH, "mdev", VM_KEY_LIST, TOP(mdevs), .seps = " \t,", .lower = VM_LOWER_ALL,
          .valid = mdev_uuid_valid, .what = "mediated device UUID",
          .hint = "use UUIDs separated by spaces (see 'phyllo device mdev-create')",
          .doc_values = "mediated device UUIDs, blank-separated", .doc_default = "none" },
        { SEC_PASSTHROUGH, "mdev-display", TOP(mdev_display), ENUM(onoff_words),
          .doc_values = "{words}: the mediated devices carry the display (`display=on,ramfb=on`)",
          .doc_default = "`off`" },
        { SEC_PASSTHROUGH, "single-gpu", TOP(single_gpu), ENUM(onoff_words),
          .doc_values = "{words}: the host's display stops while the VM has its GPU", .doc_default = "`off`" },
};
const size_t vm_n_keys = ELEMENTSOF(vm_key_table);

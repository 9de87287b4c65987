/* SPDX-License-Identifier: MIT */
#include "qemu-modules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "fileio.h"

/* From `dpkg -L qemu-system-gui qemu-system-common` on Debian 12
 * (qemu 1:7.2+dfsg-7): every module a Phyllome feature loads.  Later
 * Debian releases split qemu-system-gui further (qemu-system-modules-opengl,
 * qemu-system-modules-spice); this table is Debian 12's. */
const struct host_qemu_module host_qemu_modules[] = {
        { "accel-tcg-x86_64.so", "qemu-system-common", "software emulation (TCG), used where KVM is not", "accel:tcg" },
        { "hw-display-virtio-gpu.so", "qemu-system-common", "virtio GPU, --gpu virtio", "device:virtio-gpu-device" },
        { "hw-display-virtio-vga.so", "qemu-system-common", "virtio GPU, --gpu virtio", "device:virtio-vga" },
        { "hw-display-virtio-gpu-pci.so", "qemu-system-common", "virtio GPU, --gpu virtio", "device:virtio-gpu-pci" },
        { "hw-display-virtio-gpu-gl.so", "qemu-system-gui", "3D, --gpu virgl", "device:virtio-gpu-gl-device" },
        { "hw-display-virtio-vga-gl.so", "qemu-system-common", "3D, --gpu virgl", "device:virtio-vga-gl" },
        { "hw-display-virtio-gpu-pci-gl.so", "qemu-system-common", "3D, --gpu virgl", "device:virtio-gpu-gl-pci" },
        { "hw-display-qxl.so", "qemu-system-common", "QXL GPU for SPICE", "device:qxl-vga device:qxl" },
        { "ui-opengl.so", "qemu-system-common", "OpenGL for 3D displays, gl=on", "" },
        { "ui-gtk.so", "qemu-system-gui", "gtk display, --display gtk", "display:gtk" },
        { "ui-sdl.so", "qemu-system-gui", "sdl display, --display sdl", "display:sdl" },
        { "ui-egl-headless.so", "qemu-system-common", "3D without a window, egl-headless", "display:egl-headless" },
        { "ui-spice-core.so", "qemu-system-common", "SPICE display, --display spice and phyllo view", "" },
        { "chardev-spice.so", "qemu-system-common", "SPICE agent and USB redirection channels",
          "chardev:spicevmc chardev:spiceport" },
        { "audio-spice.so", "qemu-system-common", "sound over SPICE", "audio:spice" },
        { "audio-pa.so", "qemu-system-gui", "sound through PulseAudio or PipeWire", "audio:pa" },
        { "hw-usb-redirect.so", "qemu-system-common", "USB redirection over SPICE", "device:usb-redir" },
        { "hw-usb-host.so", "qemu-system-common", "USB passthrough, phyllo usb attach", "device:usb-host" },
};
const size_t host_qemu_modules_n = sizeof host_qemu_modules / sizeof host_qemu_modules[0];

const struct host_qemu_module *host_qemu_module_providing(const char *kind, const char *name) {
        size_t kl = strlen(kind), nl = strlen(name);
        for (size_t i = 0; i < host_qemu_modules_n; i++)
                for (const char *p = host_qemu_modules[i].provides; *p;) {
                        size_t wl = strcspn(p, " ");
                        if (wl == kl + 1 + nl && strncmp(p, kind, kl) == 0 && p[kl] == ':' &&
                            strncmp(p + kl + 1, name, nl) == 0)
                                return &host_qemu_modules[i];
                        p += wl;
                        p += strspn(p, " ");
                }
        return NULL;
}

char *host_qemu_module_dir(const char *prefix) {
        static const char *const rel[] = { "lib/x86_64-linux-gnu/qemu", "lib64/qemu", "lib/qemu" };
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
                char *p = NULL;
                if (asprintf(&p, "%s/%s", prefix, rel[i]) < 0)
                        return NULL;
                struct stat st;
                if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        return p;
                free(p);
        }
        return NULL;
}

void host_qemu_modules_done(struct host_qemu_modules *m) {
        if (!m)
                return;
        free(m->dir);
        strv_done(&m->found);
        strv_done(&m->missing);
        *m = (struct host_qemu_modules) { 0 };
}

int host_qemu_modules_scan(const char *root, struct host_qemu_modules *ret, phy_error *err) {
        _cleanup_(host_qemu_modules_done) struct host_qemu_modules m = { 0 };
        _cleanup_free_ char *usr = root_path(root, "/usr");
        if (!usr)
                return phy_error_set(err, ENOMEM, "out of memory");
        _cleanup_free_ char *dir = host_qemu_module_dir(usr);
        if (dir) {
                /* Reported as the host sees it, without the root prefix. */
                size_t skip = strlen(usr) - strlen("/usr");
                if (!(m.dir = strdup(dir + skip)))
                        return phy_error_set(err, ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < host_qemu_modules_n; i++) {
                bool have = false;
                if (dir) {
                        _cleanup_free_ char *p = NULL;
                        if (asprintf(&p, "%s/%s", dir, host_qemu_modules[i].file) < 0)
                                return phy_error_set(err, ENOMEM, "out of memory");
                        struct stat st;
                        have = stat(p, &st) == 0 && S_ISREG(st.st_mode);
                }
                if (strv_push(have ? &m.found : &m.missing, host_qemu_modules[i].file) < 0)
                        return phy_error_set(err, ENOMEM, "out of memory");
        }
        *ret = m;
        m = (struct host_qemu_modules) { 0 };
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* USB passthrough specs, the TPM passthrough check and the host's 3D display modes. */
#include "dev.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "fileio.h"
#include "qemu/argv.h"
#include "qemu/qmp.h"

int dev_tpm_passthrough_check(const char *root, phy_error *err) {
        _cleanup_free_ char *path = root_path(root, "/dev/tpm0");
        if (!path)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* The kernel lets one process hold /dev/tpm0: a second open is EBUSY. */
        _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd >= 0)
                return 0;
        int e = errno;
        if (e == ENOENT)
                return phy_error_set(err, ENODEV, "TPM passthrough needs the host's TPM, but %s does not exist; use "
                                     "'[tpm] type = emulated' (swtpm) instead", path);
        if (e == EBUSY)
                return phy_error_set(err, EBUSY, "the host's TPM %s is busy (another VM or a TPM daemon such as "
                                     "tpm2-abrmd holds it); stop that user or use '[tpm] type = emulated'", path);
        return phy_error_set(err, e, "cannot open the host's TPM %s: %s (QEMU needs read and write access)", path,
                             strerror(e));
}

void dev_gl_modes_done(struct dev_gl_modes *m) {
        if (!m)
                return;
        free(m->render_node);
        free(m->why_not);
        m->render_node = m->why_not = NULL;
}

static bool have_libegl(void) {
        /* Real filesystem: QEMU's GL displays dlopen Mesa's libEGL here. */
        static const char *const dirs[] = { "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu" };
        const char *over = getenv("PHYLLOME_LIBEGL");
        if (over)
                return access(over, R_OK) == 0;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/libEGL.so.1", dirs[i]) >= 0 && access(p, R_OK) == 0)
                        return true;
        }
        return false;
}

int dev_gl_modes_probe(const char *root, const char *render_node, struct dev_gl_modes *ret) {
        struct dev_gl_modes m = { 0 };
        if (render_node) {
                _cleanup_free_ char *p = root_path(root, render_node);
                if (!p)
                        return -ENOMEM;
                if (access(p, F_OK) == 0 && !(m.render_node = strdup(render_node)))
                        return -ENOMEM;
        }
        const char *x = getenv("DISPLAY"), *w = getenv("WAYLAND_DISPLAY");
        m.display = (x && *x) || (w && *w);
        m.libegl = have_libegl();
        m.virgl_gtk_sdl = m.display && m.libegl;
        m.egl_headless = m.render_node && m.libegl;
        m.spice_gl = m.egl_headless;
        int r = 0;
        if (!m.libegl)
                r = asprintf(&m.why_not, "Mesa's libEGL.so.1 is not installed (Debian: libegl1 libgl1-mesa-dri)");
        else if (!m.render_node && !m.display)
                r = asprintf(&m.why_not, "there is no GPU render node (/dev/dri/renderD*) for egl-headless and SPICE "
                             "gl=on, and no display ($DISPLAY/$WAYLAND_DISPLAY) for gtk/sdl gl=on");
        else if (!m.render_node)
                r = asprintf(&m.why_not, "there is no GPU render node (/dev/dri/renderD*): egl-headless and SPICE gl=on "
                             "cannot work; gtk/sdl gl=on can");
        else if (!m.display)
                r = asprintf(&m.why_not, "there is no display ($DISPLAY/$WAYLAND_DISPLAY): gtk/sdl gl=on cannot work");
        if (r < 0) {
                dev_gl_modes_done(&m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

int dev_usb_hotplug(struct qmp *q, const char *spec, bool attach, int timeout_ms, phy_error *err) {
        char id[40];
        _cleanup_free_ char *opts = NULL;
        qemu_usb_id(spec, id);
        json_object *args = json_object_new_object();
        if (attach) {
                int r = qemu_usb_host_opts(spec, id, &opts, err);
                if (r < 0) {
                        json_object_put(args);
                        return r;
                }
                /* "usb-host,id=..,bus=..,k=v": QMP wants the same as separate members. */
                char *save = NULL, *tok = strtok_r(opts, ",", &save);
                json_object_object_add(args, "driver", json_object_new_string(tok));
                while ((tok = strtok_r(NULL, ",", &save))) {
                        char *eq = strchr(tok, '=');
                        if (!eq)
                                continue;
                        *eq = '\0';
                        json_object_object_add(args, tok, json_object_new_string(eq + 1));
                }
        } else
                json_object_object_add(args, "id", json_object_new_string(id));
        return qmp_command(q, attach ? "device_add" : "device_del", args, timeout_ms, NULL, err);
}

/* SPDX-License-Identifier: MIT */
/* The 3D display modes as lines of the host check report (phyllo host check). */
#include "dev.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "host/check.h"

static int append(struct host_check_report *rep, const char *id, const char *title, bool usable, const char *detail,
                  const char *remedy) {
        struct host_check_result *v = realloc(rep->v, (rep->n + 1) * sizeof *v);
        if (!v)
                return -ENOMEM;
        rep->v = v;
        struct host_check_result *x = &rep->v[rep->n++];
        *x = (struct host_check_result) { .status = usable ? HOST_CHECK_PASS : HOST_CHECK_INFO };
        x->id = strdup(id);
        x->title = strdup(title);
        x->detail = strdup(detail);
        x->remedy = !usable && remedy ? strdup(remedy) : NULL;
        if (!x->id || !x->title || !x->detail || (!usable && remedy && !x->remedy))
                return -ENOMEM;
        return 0;
}

int dev_gl_modes_check(const char *root, const struct host_facts *h, struct host_check_report *rep) {
        _cleanup_(dev_gl_modes_done) struct dev_gl_modes m = { 0 };
        int r = dev_gl_modes_probe(root, host_render_node(h), &m);
        if (r < 0)
                return r;
        static const char no_egl[] = "Mesa's libEGL.so.1 is not installed";
        static const char egl_fix[] = "apt-get install libegl1 libgl1-mesa-dri";
        /* INFO, not WARN: a VM runs without 3D; these only say what --gpu virgl can use. */
        _cleanup_free_ char *node = NULL;
        if (m.render_node && asprintf(&node, "render node %s and libEGL: usable", m.render_node) < 0)
                return -ENOMEM;
        const char *headless_detail = !m.libegl ? no_egl
                : !m.render_node ? "there is no GPU render node (/dev/dri/renderD*) to render on"
                : node;
        const char *headless_fix = !m.libegl ? egl_fix
                : "a GPU whose kernel driver provides a render node (/dev/dri/renderD*) is needed";
        if ((r = append(rep, "gl.virgl-gtk-sdl", "3D: virgl with --display gtk or sdl (gl=on)", m.virgl_gtk_sdl,
                        !m.libegl ? no_egl
                        : !m.display ? "there is no display ($DISPLAY or $WAYLAND_DISPLAY) to open a GL window on"
                        : "a display and libEGL: usable",
                        !m.libegl ? egl_fix : "run phyllo from a graphical session (or under Xvfb +extension GLX)")) < 0 ||
            (r = append(rep, "gl.egl-headless", "3D: virgl with egl-headless", m.egl_headless, headless_detail,
                        headless_fix)) < 0 ||
            (r = append(rep, "gl.spice", "3D: virgl with SPICE gl=on", m.spice_gl, headless_detail, headless_fix)) < 0)
                return r;
        return 0;
}

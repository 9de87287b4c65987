/* SPDX-License-Identifier: MIT */
#include "env.h"

#include <stdio.h>
#include <stdlib.h>

#include "cleanup.h"
#include "paths.h"

int vm_env_load(const char *root, bool with_caps, struct vm_env *e, phy_error *err) {
        int r = host_facts_load(root, &e->host, err);
        if (r < 0)
                return r;
        e->have_host = true;
        if (!with_caps)
                return 0;
        phy_error w = { 0 };
        _cleanup_free_ char *cache = NULL;
        if (qemu_tools_find(&e->tools, &w) < 0)
                ;
        else if (!e->tools.qemu)
                phy_error_set(&w, ENOENT, "qemu-system-x86_64 is not installed");
        else if (phy_cache_dir(&cache, &w) >= 0 && qemu_caps_probe(e->tools.qemu, cache, &e->caps, &w) >= 0)
                e->have_caps = true;
        if (!e->have_caps)
                snprintf(e->warning, sizeof e->warning, "%s", w.message[0] ? w.message : "QEMU's capabilities are unknown");
        return 0;
}

void vm_env_done(struct vm_env *e) {
        if (e->have_host)
                host_facts_done(&e->host);
        qemu_tools_done(&e->tools);
        if (e->have_caps)
                qemu_caps_done(&e->caps);
}

const struct qemu_caps *vm_env_caps(const struct vm_env *e) {
        return e->have_caps ? &e->caps : NULL;
}

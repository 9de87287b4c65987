/* SPDX-License-Identifier: MIT */
#pragma once
/* What a definition is checked against: this host, and its QEMU when it can
 * be probed.  Shared by the CLI and phyllod so both judge alike. */
#include <stdbool.h>
#include "error.h"
#include "host/host.h"
#include "qemu/caps.h"
#include "qemu/tools.h"

struct vm_env {
        struct host_facts host;
        bool have_host;
        struct qemu_tools tools;
        struct qemu_caps caps;
        bool have_caps;
        /* Why the capabilities are missing, when with_caps was asked: the
         * model is then checked without them (a caller may print it). */
        char warning[1024];
};

/* Host facts are required (an error otherwise); with_caps also finds the
 * tools and probes QEMU's capabilities through the cache. */
int vm_env_load(const char *root, bool with_caps, struct vm_env *e, phy_error *err);
void vm_env_done(struct vm_env *e);
/* The capabilities, or NULL when they could not be probed. */
const struct qemu_caps *vm_env_caps(const struct vm_env *e);

/* SPDX-License-Identifier: MIT */
#pragma once
/* The disks' backing chains handed to QEMU as fds (backing.c, issue 12). */
#include <stddef.h>
#include "error.h"
#include "qemu/argv.h"
#include "vm/chain.h"

struct vm_def;
struct run_backing {
        size_t n;                               /* disks */
        struct vm_chain *chains;                /* per disk: the links' fds */
        struct qemu_backing *disks;             /* per disk, for qemu_argv_env.backing */
        struct qemu_backing_link *links;        /* VM_CHAIN_MAX per disk */
};

/* Every disk's chain checked (vm/chain.h), nothing kept open: before
 * anything as root reads a disk (the model's probe of its first sector). */
int run_backing_check(const struct vm_def *d, const char *vm_dir, phy_error *err);
/* Every disk's chain opened and checked, for QEMU. */
int run_backing_open(struct run_backing *b, const struct vm_def *d, const char *vm_dir, phy_error *err);
void run_backing_close(struct run_backing *b);
/* The links' fds into out (NULL: only counted); their number. */
size_t run_backing_fds(const struct run_backing *b, int *out);

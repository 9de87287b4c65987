/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The programs and firmware a VM needs.  Looked up on the real filesystem
 * (they must really run): $PATH and /usr/bin for programs; QEMU's firmware
 * descriptors (the *.json files in /usr/share/qemu/firmware, see QEMU's firmware.json
 * schema) for OVMF, with Debian's /usr/share/OVMF files as the fallback.
 * Environment overrides for tests: PHYLLOME_QEMU, PHYLLOME_QEMU_IMG,
 * PHYLLOME_SWTPM, PHYLLOME_OVMF_DIR.
 */
#include <stdbool.h>
#include <stdint.h>
#include "error.h"

struct qemu_tools {
        char *qemu;             /* qemu-system-x86_64 */
        char *qemu_img;
        char *swtpm;
        char *swtpm_setup;
        char *ovmf_code;        /* UEFI, no Secure Boot */
        char *ovmf_vars;        /* blank vars template */
        char *ovmf_code_sb;     /* Secure Boot capable code (SMM) */
        char *ovmf_vars_ms;     /* vars with Microsoft keys enrolled */
        char *qboot;            /* qboot.rom in QEMU's data dir (<prefix>/share/qemu): a
                                 * minimal BIOS for a direct kernel boot; NULL: none */
        bool ovmf_looked;       /* the firmware search ran (qemu_tools_find_some) */
};

enum {
        QEMU_TOOL_QEMU = 1 << 0,
        QEMU_TOOL_QEMU_IMG = 1 << 1,
        QEMU_TOOL_SWTPM = 1 << 2,       /* swtpm and swtpm_setup */
        QEMU_TOOL_OVMF = 1 << 3,        /* the ovmf_* pairs */
        QEMU_TOOL_ALL = (1 << 4) - 1,
};

/* Fills what it finds; a missing tool leaves its field NULL (not an error). */
int qemu_tools_find(struct qemu_tools *ret, phy_error *err);
/* The same for the tools in `what` (QEMU_TOOL_*) not looked up yet in t:
 * a start looks up only what its VM uses (each program is a $PATH walk,
 * the firmware a read of every descriptor).  On error t keeps what it had. */
int qemu_tools_find_some(struct qemu_tools *t, unsigned what, phy_error *err);
/* qboot.rom where the QEMU at `qemu` looks for its firmware (its data dir,
 * <prefix>/share/qemu: qemu_binary_prefix), if it is there: a new string,
 * or NULL. */
char *qemu_tools_qboot(const char *qemu);
void qemu_tools_done(struct qemu_tools *t);

/* OVMF from QEMU firmware descriptors in `dirs` (NULL-terminated, highest
 * priority first): fills the ovmf_* pairs still NULL in t.  Exposed for
 * tests; qemu_tools_find() uses the user, /etc and /usr/share folders. */
int qemu_ovmf_from_descriptors(const char *const *dirs, struct qemu_tools *t, phy_error *err);

/* Creates an empty image with qemu-img create -f format path size. */
int qemu_img_create(const char *qemu_img, const char *path, const char *format, uint64_t size, phy_error *err);

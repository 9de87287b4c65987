/* SPDX-License-Identifier: MIT */
#pragma once
/* Unattended installs (unattend.c, docs/catalog.md): answer files and how
 * they reach the installer. */
#include <stdbool.h>
#include <stddef.h>
#include "catalog.h"

struct catalog_unattend {
        const char *user;
        const char *password;   /* from --password-file, never argv */
        const char *timezone;   /* NULL: UTC (Windows wants its own names) */
        const char *locale;     /* NULL: en-US */
        const char *hostname;   /* NULL: linux / windows */
        const char *edition;    /* Windows: NULL -> "Windows 11 Pro" */
        bool drivers;           /* Windows: load virtio-win's storage and network drivers in setup */
};

/* The first line of file, 1 to 127 bytes without control characters. */
int catalog_unattend_read_password(const char *file, char **ret, phy_error *err);
int catalog_unattend_check(const struct catalog_unattend *u, bool windows, phy_error *err);
/* Phyllome's autounattend.xml (data/unattend/win11-autounattend.xml). */
int catalog_unattend_windows(const struct catalog_unattend *u, char **ret, phy_error *err);
/* base64(UTF-16LE(password + "Password")): what <PlainText>false</PlainText> means. */
int catalog_unattend_windows_password(const char *password, char **ret, phy_error *err);
/* osinfo's install script for the OS (jeos profile, else desktop) and the
 * file name the installer expects ("preseed.cfg"). */
int catalog_unattend_osinfo(const char *osinfo_id, const struct catalog_unattend *u, char **ret, char **ret_filename,
                            phy_error *err);
/* out = initrd + one newc cpio archive holding name (e.g. "preseed.cfg"). */
int catalog_initrd_inject(const char *initrd, const char *out, const char *name, const char *data, size_t len,
                          phy_error *err);
/* A small ISO (volume UNATTEND) with autounattend.xml at its root. */
int catalog_unattend_iso(const char *xml, const char *out_iso, phy_error *err);

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
/* Whether an unattended install of the OS can be made: Phyllome's template
 * for Windows, else an install script in osinfo-db (the app's express
 * install fields; `catalog show --json`'s "unattended"). */
bool catalog_unattend_supported(const char *osinfo_id, bool windows);
/* A preseed (Debian, Ubuntu) with its root and user passwords as SHA-512
 * crypt hashes (passwd/root-password-crypted, passwd/user-password-crypted) instead of in clear. */
int catalog_preseed_crypt(const char *text, const char *password, char **ret, phy_error *err);
/* An unattended install as POST /v1/vms's "install" member takes it. */
struct catalog_install {
        char *answer_name, *answer;     /* preseed.cfg, autounattend.xml; its text */
        bool cdrom;                     /* delivery: on a CD (Windows), else in the initrd */
        char *kernel, *initrd;          /* initrd delivery: their paths inside the media (osinfo-db's) */
        char *append;                   /* initrd delivery: the kernel's arguments */
};
void catalog_install_done(struct catalog_install *i);
/* The answer file for the OS (Phyllome's template when windows, else
 * osinfo's script) and, for Linux, where the kernel and initrd are on the
 * media iso (identified by libosinfo) and the kernel's arguments. */
int catalog_unattend_install(const char *osinfo_id, bool windows, const char *iso, const struct catalog_unattend *u,
                             struct catalog_install *ret, phy_error *err);
struct json_object;
struct json_object *catalog_install_json(const struct catalog_install *i);
/* out = initrd + one newc cpio archive holding name (e.g. "preseed.cfg"). */
int catalog_initrd_inject(const char *initrd, const char *out, const char *name, const char *data, size_t len,
                          phy_error *err);
/* A small ISO (volume UNATTEND) with autounattend.xml at its root. */
int catalog_unattend_iso(const char *xml, const char *out_iso, phy_error *err);

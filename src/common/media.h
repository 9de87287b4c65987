/* SPDX-License-Identifier: MIT */
#pragma once
/* Install media helpers (media.c): the cpio archive an answer file rides in
 * on an installer's initrd, and ISO 9660 images made and read with xorriso
 * (Debian package xorriso).  Used by the catalog (catalog unattend) and by
 * the start of an unattended install run (src/run/install.c). */
#include <stddef.h>
#include "error.h"

/* Appends n bytes of s to *buf (*len bytes, realloc'd, kept NUL-terminated). */
int media_append(char **buf, size_t *len, const void *s, size_t n);
/* One newc cpio archive holding name (0644, data of len bytes) and its
 * trailer, appended to *buf (*len bytes, realloc'd).  -ENOMEM, -EFBIG. */
int media_cpio_one(char **buf, size_t *len, const char *name, const void *data, size_t size);
/* initrd (olen bytes) + zero padding to 4 bytes + media_cpio_one(name):
 * the kernel unpacks the concatenated archives, compressed or not, and the
 * file name appears in the installer's root.  *ret malloc'd. */
int media_initrd_with(const char *initrd, size_t olen, const char *name, const char *data, size_t len, char **ret,
                      size_t *ret_len);
/* out_iso: an ISO 9660 image (Joliet, Rock Ridge) with volume id volid and
 * one file, name, at its root.  The file is staged in a private directory
 * next to out_iso, which is removed again. */
int media_iso_one(const char *name, const char *data, size_t len, const char *volid, const char *out_iso,
                  phy_error *err);
/* Copies the file inner (a path inside the image, e.g. install.amd/vmlinuz)
 * out of iso to out (replaced atomically, 0644).  -ENOENT when the image
 * has no such file. */
int media_iso_extract(const char *iso, const char *inner, const char *out, phy_error *err);

/* SPDX-License-Identifier: MIT */
#pragma once
/* Inside src/catalog: the checks download.c runs (verify.c). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "catalog.h"

struct sha256_ctx;

void verify_hex(const uint8_t dig[32], char out[65]);
/* Feeds len bytes of fd from offset 0 into h. */
int verify_hash_fd(int fd, uint64_t len, struct sha256_ctx *h, phy_error *err);
/* Calls fn for each "HEX  name" / "SHA256 (name) = HEX" line until it returns true. */
void verify_sums_each(const char *text, bool (*fn)(const char *hash, const char *name, size_t name_len, void *),
                      void *userdata);
/* The hash listed for name (or the only one listed); what names the file in messages. */
int verify_sums_lookup(const char *text, const char *what, const char *name, char ret[65], phy_error *err);
/* gpgv --keyring keyring [--output output] sig [data]; EBADMSG with gpgv's reason. */
int verify_gpgv(const char *keyring, const char *sig, const char *data, const char *output, phy_error *err);
/* The start of an HTML page (an error page saved as an "ISO"). */
bool verify_looks_html(const uint8_t *b, size_t n);
/* The ISO 9660 volume id (trailing blanks cut); EINVAL when not an ISO. */
int verify_iso_volume_id(int fd, char out[33], phy_error *err);

/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * libxml2 and libarchive, loaded on first use (issue 20, start latency).
 *
 * Only the libvirt/OVF code (src/interop) and bundles (src/store/bundle.c)
 * use them, yet linked they are mapped and relocated by every run of
 * phyllo and phyllod: libxml2 brings ICU (30 MB of data), libstdc++ and
 * libm; libarchive brings lzma, zstd, lz4, bz2, acl and zlib; nettle, only
 * small, has ~350 symbol relocations of its own.  No binary
 * has them in DT_NEEDED (a unit test, lazy-libs, reads it); lazylib.c
 * defines each function of theirs we call, forwarding to the library
 * dlopen'ed by the load function below.
 *
 * Every entry point that reaches one of those functions calls the load
 * function first and returns its error: the library missing (or lacking a
 * symbol) is an error naming it and the Debian package that provides it.
 * A forwarder called before its library was loaded is a programming error:
 * it aborts, naming the function.  Thread-safe (pthread_once); a library,
 * once loaded, stays.
 */
#include <stddef.h>
#include <stdint.h>
#include "error.h"

/* libxml2.so.2 (package libxml2) */
int lazy_xml_load(phy_error *err);
/* libarchive.so.13 (libarchive13) and the hashes of libnettle.so.8 (libnettle8) */
int lazy_archive_load(phy_error *err);

/* nettle's sha1 and sha256 (<nettle/sha1.h>, <nettle/sha2.h>) under names of
 * our own, usable after lazy_archive_load; the catalog links nettle itself
 * and calls nettle's names. */
struct sha1_ctx;
struct sha256_ctx;
void lazy_sha1_init(struct sha1_ctx *ctx);
void lazy_sha1_update(struct sha1_ctx *ctx, size_t length, const uint8_t *data);
void lazy_sha1_digest(struct sha1_ctx *ctx, size_t length, uint8_t *digest);
void lazy_sha256_init(struct sha256_ctx *ctx);
void lazy_sha256_update(struct sha256_ctx *ctx, size_t length, const uint8_t *data);
void lazy_sha256_digest(struct sha256_ctx *ctx, size_t length, uint8_t *digest);

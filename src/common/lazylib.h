/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * libxml2 and libarchive, loaded on first use (issue 20, start latency).
 *
 * Only the libvirt/OVF code (src/interop) and bundles (src/store/bundle.c)
 * use them, yet linked they are mapped and relocated by every run of
 * phyllo and phyllod: libxml2 brings ICU (30 MB of data), libstdc++ and
 * libm; libarchive brings lzma, zstd, lz4, bz2, acl and zlib.  No binary
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
#include "error.h"

int lazy_xml_load(phy_error *err);
int lazy_archive_load(phy_error *err);

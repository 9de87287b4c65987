/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The syntax of the small values a user writes (docs/architecture.md,
 * "Layers"): a PCI address, a UUID, a USB device id, a port forward.  One
 * place, depending on nothing but libc, so that the definition parser
 * (src/vm), the device and network code (src/dev, src/net) and the QEMU
 * argv builder (src/qemu) all judge a value alike.  Pure functions: no I/O.
 */
#include <stdbool.h>
#include <stddef.h>

/* n hex digits at s (upper or lower case). */
bool value_hex_n(const char *s, size_t n);

/* dddd:bb:ss.f with a function 0-7; lower_only refuses A-F (the kernel's
 * sysfs names are lower case). */
bool value_pci_addr_valid(const char *s, bool lower_only);

/* 8-4-4-4-12 hex digits; lower_only refuses A-F (mdev UUIDs). */
bool value_uuid_valid(const char *s, bool lower_only);

/* A USB device: VENDOR:PRODUCT in hex ("046d:c52b") or BUS-PORT. */
bool value_usb_id_valid(const char *s);
/* BUS-PORT[.PORT...]: "1-2", "3-1.4"; numbers 1..999 without leading zeros. */
bool value_usb_is_busport(const char *s);

/* A port forward "PROTO:[ADDR:]HOSTPORT:GUESTPORT": "tcp:2222:22" or
 * "udp:192.168.1.5:5353:53"; addr is "" when none was given (loopback). */
struct value_forward {
        char proto[4];          /* "tcp", "udp" */
        char addr[16];          /* IPv4, "" = loopback */
        unsigned host_port, guest_port;
};
/* ret may be NULL (just validate).  -EINVAL when bad. */
int value_forward_parse(const char *spec, struct value_forward *ret);
/* The address a forward listens on: its own, else 127.0.0.1. */
const char *value_forward_addr(const struct value_forward *f);

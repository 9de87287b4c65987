/* SPDX-License-Identifier: MIT */
#pragma once
/* Minimal TAP producer for meson's `protocol : 'tap'`. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline bool tap_ok(bool cond, const char *file, int line, const char *fmt, ...) {
        va_list ap;
        tap_n++;
        printf("%s %d - ", cond ? "ok" : "not ok", tap_n);
        /* A description is one TAP line: messages with newlines (QEMU's
         * multi-line errors) are folded. */
        char desc[2048];
        va_start(ap, fmt);
        vsnprintf(desc, sizeof desc, fmt, ap);
        va_end(ap);
        for (char *c = desc; *c; c++)
                if (*c == '\n' || *c == '\r')
                        *c = ' ';
        printf("%s\n", desc);
        if (!cond) {
                tap_failed++;
                printf("#   failed at %s:%d\n", file, line);
        }
        fflush(stdout);
        return cond;
}
#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...) do { long long _g = (got), _w = (want); \
        if (!ok(_g == _w, __VA_ARGS__)) printf("#   got %lld, want %lld\n", _g, _w); } while (0)
#define is_str(got, want, ...) do { const char *_g = (got), *_w = (want); \
        if (!ok(_g && _w && strcmp(_g, _w) == 0, __VA_ARGS__)) \
                printf("#   got '%s'\n#  want '%s'\n", _g ? _g : "(null)", _w ? _w : "(null)"); } while (0)
static inline int tap_done(void) {
        printf("1..%d\n", tap_n);
        return tap_failed ? 1 : 0;
}
/* Path of the source tree's tests/ folder, passed by meson. */
static inline const char *tap_srcdir(void) {
        const char *s = getenv("PHYLLOME_TEST_SRCDIR");
        return s ? s : ".";
}

/* SPDX-License-Identifier: MIT */
#pragma once
/* NULL-terminated string vectors: argv arrays are built with these. */
#include <stdbool.h>
#include <stddef.h>
#include "cleanup.h"

typedef struct strv {
        char **v;       /* NULL-terminated, owned */
        size_t n;
        size_t cap;
} strv;

int strv_push(strv *s, const char *str);                 /* copies str; -ENOMEM */
int strv_pushf(strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int strv_push_many(strv *s, ...);                         /* NULL-terminated list */
bool strv_contains(const strv *s, const char *str);
void strv_remove_at(strv *s, size_t i);                   /* frees item i, closes the gap */
int strv_remove(strv *s, const char *str);                /* every copy of str; how many */
void strv_done(strv *s);                                  /* frees contents, resets */
char *strv_join(const strv *s, const char *sep);          /* malloc'd; shell-quoted when sep==NULL */

/* Single-line strings (issue 12): true when s has a control character (a
 * byte below 0x20, or 0x7f) — a value that could start a new line or
 * section in a file, a log or a terminal. */
bool str_has_control(const char *s);
/* s for one log line: control characters, DEL and the backslash written as
 * C escapes (a newline as backslash-n, ESC as backslash-x1b), cut to fit n
 * (always NUL-terminated); returns buf. */
const char *str_escape_line(const char *s, char *buf, size_t n);

/* Base64 (RFC 4648, with padding) of n bytes: malloc'd, NULL without memory. */
char *str_base64(const void *data, size_t n);

static inline void strv_donep(strv *s) { strv_done(s); }
#define _cleanup_strv_ _cleanup_(strv_donep)

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

static inline void strv_donep(strv *s) { strv_done(s); }
#define _cleanup_strv_ _cleanup_(strv_donep)

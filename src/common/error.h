/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * One error convention for all of libphyllome (after crun): a fallible
 * function returns a negative errno and fills the caller's phy_error with a
 * whole sentence that names the thing (file:line, key, device).  Callers may
 * prepend context with phy_error_prefix().  Library code never prints.
 */
#include <errno.h>
#include <stddef.h>

typedef struct phy_error {
        int code;              /* positive errno, 0 when unset */
        char message[1024];
} phy_error;

/* Sets *e (when e != NULL) and returns -abs(code).  code 0 becomes EINVAL. */
int phy_error_set(phy_error *e, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Prepends "<context>: " to an already-set message; returns -e->code. */
int phy_error_prefix(phy_error *e, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static inline void phy_error_clear(phy_error *e) {
        if (e) {
                e->code = 0;
                e->message[0] = '\0';
        }
}

/* Process exit status for an error: 2 for usage/validation, 1 otherwise. */
int phy_error_exit_status(const phy_error *e);

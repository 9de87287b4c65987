/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * One error convention for all of libphyllome (after crun): a fallible
 * function returns a negative errno and fills the caller's phy_error with a
 * whole sentence that names the thing (file:line, key, device).  Callers may
 * prepend context with phy_error_prefix().  Library code never prints.
 *
 * An error has a kind (what went wrong, for the caller: a usage error, a
 * thing not found, a conflict, ...); the CLI's exit status and phyllod's
 * HTTP status derive from the kind, never from the errno, which only says
 * how the system failed (a kernel EINVAL is not the user's mistake).  The
 * kind is set explicitly where the library judges user input
 * (phy_error_usage) or knows the answer (phy_error_set_kind); otherwise it
 * is derived from the errno when the error is set (phy_error_kind_for).
 */
#include <errno.h>
#include <stddef.h>

enum phy_error_kind {
        PHY_ERR_NONE = 0,       /* no error set */
        PHY_ERR_USAGE,          /* bad input: a definition, an argument, a request body */
        PHY_ERR_NOT_FOUND,      /* no such VM, disk, snapshot, device, file */
        PHY_ERR_CONFLICT,       /* exists already, busy, running, in the wrong state */
        PHY_ERR_PERMISSION,     /* not allowed (policy, file modes, peer credentials) */
        PHY_ERR_UNSUPPORTED,    /* this host, QEMU or VM cannot do it */
        PHY_ERR_TOO_LARGE,      /* over a size cap */
        PHY_ERR_TIMEOUT,        /* gave up waiting */
        PHY_ERR_HOST,           /* the system failed: a syscall, a tool, a peer's reply */
        PHY_ERR_INTERNAL,       /* out of memory, a bug */
};

typedef struct phy_error {
        int code;               /* positive errno, 0 when unset */
        enum phy_error_kind kind;
        char message[1024];
} phy_error;

/* Sets *e (when e != NULL) and returns -abs(code).  code 0 becomes EIO.
 * The kind is phy_error_kind_for(code). */
int phy_error_set(phy_error *e, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* The same with an explicit kind. */
int phy_error_set_kind(phy_error *e, enum phy_error_kind kind, int code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* A usage error (bad user input): kind PHY_ERR_USAGE, code EINVAL. */
int phy_error_usage(phy_error *e, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Prepends "<context>: " to an already-set message; returns -e->code.  An
 * error set without a message (a bare "return -ENOMEM") gets one first. */
int phy_error_prefix(phy_error *e, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Fills an error that a callee returned as a bare r < 0 without setting it
 * (code and message from r; "out of memory" for -ENOMEM).  Keeps an error
 * already set.  Returns -e->code. */
int phy_error_from(phy_error *e, int r);

static inline void phy_error_clear(phy_error *e) {
        if (e) {
                e->code = 0;
                e->kind = PHY_ERR_NONE;
                e->message[0] = '\0';
        }
}

/* The kind an errno implies when nobody said better: ENOENT not found;
 * EEXIST, EBUSY, EALREADY, ESRCH conflict; EACCES, EPERM permission;
 * ENOSYS, EOPNOTSUPP unsupported; EMSGSIZE, E2BIG, EFBIG too large; ETIMEDOUT
 * timeout; ENOMEM internal; anything else (EINVAL included) host. */
enum phy_error_kind phy_error_kind_for(int code);
/* The kind of e: PHY_ERR_INTERNAL for an error without code or kind. */
enum phy_error_kind phy_error_kind_of(const phy_error *e);
/* "usage", "not-found", "conflict", "permission", "unsupported",
 * "too-large", "timeout", "host", "internal" (the API's error.kind). */
const char *phy_error_kind_name(enum phy_error_kind kind);
/* The kind named so; PHY_ERR_NONE for an unknown name. */
enum phy_error_kind phy_error_kind_from_name(const char *name);

/* The message to show: e's own, else one from its code ("out of memory"
 * for ENOMEM), else "an internal error without a description". */
const char *phy_error_message(const phy_error *e);

/* Process exit status for an error: 2 for a usage error, 1 otherwise. */
int phy_error_exit_status(const phy_error *e);
/* HTTP status: usage 400, not found 404, conflict 409, permission 403,
 * unsupported 405, too large 413, timeout 504, host and internal 500. */
int phy_error_http_status(const phy_error *e);

/* SPDX-License-Identifier: MIT */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int vset(phy_error *e, enum phy_error_kind kind, int code, const char *fmt, va_list ap) {
        if (code < 0)
                code = -code;
        if (code == 0)
                code = EIO;
        if (e) {
                vsnprintf(e->message, sizeof e->message, fmt, ap);
                e->code = code;
                e->kind = kind != PHY_ERR_NONE ? kind : phy_error_kind_for(code);
        }
        return -code;
}

int phy_error_set(phy_error *e, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = vset(e, PHY_ERR_NONE, code, fmt, ap);
        va_end(ap);
        return r;
}

int phy_error_set_kind(phy_error *e, enum phy_error_kind kind, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = vset(e, kind, code, fmt, ap);
        va_end(ap);
        return r;
}

int phy_error_usage(phy_error *e, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = vset(e, PHY_ERR_USAGE, EINVAL, fmt, ap);
        va_end(ap);
        return r;
}

int phy_error_from(phy_error *e, int r) {
        if (r >= 0)
                r = -EIO;
        if (!e)
                return r;
        if (e->code == 0 || !e->message[0]) {
                e->code = e->code ? e->code : -r;
                if (e->kind == PHY_ERR_NONE)
                        e->kind = phy_error_kind_for(e->code);
                e->message[0] = '\0';
                snprintf(e->message, sizeof e->message, "%s", phy_error_message(e));
        }
        return -e->code;
}

int phy_error_prefix(phy_error *e, const char *fmt, ...) {
        if (!e)
                return -EIO;
        if (e->code == 0 && !e->message[0])
                phy_error_set_kind(e, PHY_ERR_INTERNAL, EIO, "%s", phy_error_message(NULL));
        else if (e->code == 0 || !e->message[0])
                phy_error_from(e, e->code ? -e->code : -EIO);
        char ctx[512], old[sizeof e->message];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx, sizeof ctx, fmt, ap);
        va_end(ap);
        memcpy(old, e->message, sizeof old);
        /* Truncation of an over-long message is acceptable; keep it NUL-terminated. */
        size_t cl = strnlen(ctx, sizeof ctx), ol = strnlen(old, sizeof old - 1);
        size_t room = sizeof e->message - 1, at = 0;
        memcpy(e->message, ctx, cl < room ? cl : room);
        at = cl < room ? cl : room;
        if (at + 2 <= room) {
                memcpy(e->message + at, ": ", 2);
                at += 2;
        }
        size_t take = ol < room - at ? ol : room - at;
        memcpy(e->message + at, old, take);
        e->message[at + take] = '\0';
        return -e->code;
}

enum phy_error_kind phy_error_kind_for(int code) {
        switch (code < 0 ? -code : code) {
        case 0: return PHY_ERR_NONE;
        case ENOENT: case ENODEV: return PHY_ERR_NOT_FOUND;
        case EEXIST: case EBUSY: case EALREADY: case ESRCH: return PHY_ERR_CONFLICT;
        case EACCES: case EPERM: return PHY_ERR_PERMISSION;
        case ENOSYS: case EOPNOTSUPP: return PHY_ERR_UNSUPPORTED;
        case EMSGSIZE: case E2BIG: case EFBIG: return PHY_ERR_TOO_LARGE;
        case ETIMEDOUT: return PHY_ERR_TIMEOUT;
        case ENOMEM: return PHY_ERR_INTERNAL;
        default: return PHY_ERR_HOST;
        }
}

enum phy_error_kind phy_error_kind_of(const phy_error *e) {
        if (!e || (e->kind == PHY_ERR_NONE && e->code == 0))
                return PHY_ERR_INTERNAL;
        return e->kind != PHY_ERR_NONE ? e->kind : phy_error_kind_for(e->code);
}

static const char *const kind_names[] = {
        [PHY_ERR_NONE] = "none",           [PHY_ERR_USAGE] = "usage",
        [PHY_ERR_NOT_FOUND] = "not-found", [PHY_ERR_CONFLICT] = "conflict",
        [PHY_ERR_PERMISSION] = "permission", [PHY_ERR_UNSUPPORTED] = "unsupported",
        [PHY_ERR_TOO_LARGE] = "too-large", [PHY_ERR_TIMEOUT] = "timeout",
        [PHY_ERR_HOST] = "host",           [PHY_ERR_INTERNAL] = "internal",
};

const char *phy_error_kind_name(enum phy_error_kind kind) {
        return (size_t) kind < sizeof kind_names / sizeof kind_names[0] ? kind_names[kind] : "internal";
}

enum phy_error_kind phy_error_kind_from_name(const char *name) {
        for (size_t i = 1; name && i < sizeof kind_names / sizeof kind_names[0]; i++)
                if (strcmp(kind_names[i], name) == 0)
                        return (enum phy_error_kind) i;
        return PHY_ERR_NONE;
}

const char *phy_error_message(const phy_error *e) {
        if (e && e->message[0])
                return e->message;
        if (!e || e->code == 0)
                return "an internal error without a description (most likely out of memory)";
        if (e->code == ENOMEM)
                return "out of memory";
        return strerror(e->code);
}

int phy_error_exit_status(const phy_error *e) {
        return phy_error_kind_of(e) == PHY_ERR_USAGE ? 2 : 1;
}

int phy_error_http_status(const phy_error *e) {
        switch (phy_error_kind_of(e)) {
        case PHY_ERR_USAGE: return 400;
        case PHY_ERR_NOT_FOUND: return 404;
        case PHY_ERR_CONFLICT: return 409;
        case PHY_ERR_PERMISSION: return 403;
        case PHY_ERR_UNSUPPORTED: return 405;
        case PHY_ERR_TOO_LARGE: return 413;
        case PHY_ERR_TIMEOUT: return 504;
        default: return 500;
        }
}

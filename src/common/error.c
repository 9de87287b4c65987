/* SPDX-License-Identifier: MIT */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int phy_error_set(phy_error *e, int code, const char *fmt, ...) {
        if (code < 0)
                code = -code;
        if (code == 0)
                code = EINVAL;
        if (e) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(e->message, sizeof e->message, fmt, ap);
                va_end(ap);
                e->code = code;
        }
        return -code;
}

int phy_error_prefix(phy_error *e, const char *fmt, ...) {
        if (!e)
                return -EINVAL;
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
        if (e->code == 0)
                e->code = EINVAL;
        return -e->code;
}

int phy_error_exit_status(const phy_error *e) {
        return (e && e->code == EINVAL) ? 2 : 1;
}

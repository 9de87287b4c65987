/* SPDX-License-Identifier: MIT */
/* The import report: every element an import did not map one to one. */
#include "interop.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_words[] = {
        [INTEROP_CHANGED] = "changed",
        [INTEROP_DROPPED] = "not-modelled",
        [INTEROP_IMPLIED] = "implied",
        [INTEROP_NOTE] = "note",
};

const char *interop_status_name(enum interop_status st) {
        return (unsigned) st < ELEMENTSOF(status_words) ? status_words[st] : "?";
}

void interop_report_add(struct interop_report *r, const char *element, long line, enum interop_status st,
                        bool guest_visible, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (!r->items)
                r->items = json_object_new_array();
        json_object *o = json_object_new_object();
        json_object_object_add(o, "element", json_object_new_string(element ? element : ""));
        if (line > 0)
                json_object_object_add(o, "line", json_object_new_int64(line));
        json_object_object_add(o, "status", json_object_new_string(interop_status_name(st)));
        json_object_object_add(o, "guest_visible", json_object_new_boolean(guest_visible));
        json_object_object_add(o, "message", json_object_new_string(msg));
        json_object_array_add(r->items, o);
}

void interop_report_done(struct interop_report *r) {
        json_object_put(r->items);
        r->items = NULL;
}

size_t interop_report_count(const struct interop_report *r, int st) {
        size_t n = 0, len = r->items ? json_object_array_length(r->items) : 0;
        for (size_t i = 0; i < len; i++) {
                json_object *it = json_object_array_get_idx(r->items, i), *s;
                if (st < 0 || (json_object_object_get_ex(it, "status", &s) &&
                               strcmp(json_object_get_string(s), interop_status_name((enum interop_status) st)) == 0))
                        n++;
        }
        return n;
}

json_object *interop_report_json(const struct interop_report *r) {
        json_object *o = json_object_new_object();
        size_t gv = 0, len = r->items ? json_object_array_length(r->items) : 0;
        for (size_t i = 0; i < len; i++) {
                json_object *v;
                if (json_object_object_get_ex(json_object_array_get_idx(r->items, i), "guest_visible", &v) &&
                    json_object_get_boolean(v))
                        gv++;
        }
        json_object_object_add(o, "changed", json_object_new_int64((int64_t) interop_report_count(r, INTEROP_CHANGED)));
        json_object_object_add(o, "not_modelled", json_object_new_int64((int64_t) interop_report_count(r, INTEROP_DROPPED)));
        json_object_object_add(o, "implied", json_object_new_int64((int64_t) interop_report_count(r, INTEROP_IMPLIED)));
        json_object_object_add(o, "notes", json_object_new_int64((int64_t) interop_report_count(r, INTEROP_NOTE)));
        json_object_object_add(o, "guest_visible", json_object_new_int64((int64_t) gv));
        json_object_object_add(o, "items", r->items ? json_object_get(r->items) : json_object_new_array());
        return o;
}

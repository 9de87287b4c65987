/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <string.h>
#include <json-c/json.h>

#include "error-json.h"

json_object *phy_error_to_json(const phy_error *e) {
        int code = e && e->code ? e->code : EIO;
        const char *name = strerrorname_np(code);
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "code", name ? json_object_new_string(name) : json_object_new_int(code));
        json_object_object_add(o, "kind", json_object_new_string(phy_error_kind_name(phy_error_kind_of(e))));
        json_object_object_add(o, "message", json_object_new_string(phy_error_message(e)));
        return o;
}

static int errno_named(json_object *code) {
        if (!code)
                return EIO;
        if (json_object_is_type(code, json_type_int)) {
                int v = json_object_get_int(code);
                return v > 0 && v < 4096 ? v : EIO;
        }
        const char *s = json_object_get_string(code);
        for (int e = 1; s && e < 4096; e++) {
                const char *n = strerrorname_np(e);
                if (n && strcmp(n, s) == 0)
                        return e;
        }
        return EIO;
}

bool phy_error_from_json(json_object *o, enum phy_error_kind default_kind, phy_error *ret) {
        json_object *code = NULL, *msg = NULL, *kind = NULL;
        if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "message", &msg) ||
            !json_object_is_type(msg, json_type_string))
                return false;
        json_object_object_get_ex(o, "code", &code);
        json_object_object_get_ex(o, "kind", &kind);
        enum phy_error_kind k = phy_error_kind_from_name(kind ? json_object_get_string(kind) : NULL);
        phy_error_set_kind(ret, k != PHY_ERR_NONE ? k : default_kind, errno_named(code), "%s",
                           json_object_get_string(msg));
        return true;
}

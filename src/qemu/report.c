/* SPDX-License-Identifier: MIT */
/*
 * `phyllo host check`'s lines about the QEMU itself: which of the features
 * the VM model knows (caps.c's qemu_features) this QEMU has and the model
 * uses, which a newer QEMU would add (with the release that brought each),
 * and which stay out of reach here and why.  Whether a feature is there is
 * read from the probed capabilities; `since` only labels it.
 */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caps.h"
#include "cleanup.h"
#include "host/check.h"

/* "a; b; c" grown with one more item (malloc'd; NULL on no memory). */
static char *join(char *list, const char *fmt_item) {
        char *n = NULL;
        if (asprintf(&n, "%s%s%s", list ? list : "", list && *list ? "; " : "", fmt_item) < 0)
                n = NULL;
        free(list);
        return n;
}

int qemu_caps_report(const struct qemu_caps *c, struct host_check_report *rep, json_object **ret) {
        _cleanup_free_ char *uses = strdup(""), *newer = strdup(""), *latest = NULL;
        json_object *o = json_object_new_object(), *ju = json_object_new_array(), *jn = json_object_new_array(),
                    *jx = json_object_new_array();
        int r = 0;
        for (size_t i = 0; i < qemu_features_n && uses && newer; i++) {
                const struct qemu_feature *f = &qemu_features[i];
                bool has = qemu_caps_has_feature(c, f);
                char item[400];
                json_object *x = json_object_new_object();
                json_object_object_add(x, "id", json_object_new_string(f->id));
                json_object_object_add(x, "since", json_object_new_string(f->since));
                json_object_object_add(x, "what", json_object_new_string(f->what));
                if (f->unused) {
                        json_object_object_add(x, "present", json_object_new_boolean(has));
                        json_object_object_add(x, "why", json_object_new_string(f->unused));
                        json_object_array_add(jx, x);
                        char id[64], title[160], detail[600];
                        snprintf(id, sizeof id, "qemu.feature.%s", f->id);
                        snprintf(title, sizeof title, "QEMU %s: %s", f->id, f->what);
                        snprintf(detail, sizeof detail, "%s (QEMU %s and later); not used: %s",
                                 has ? "this QEMU has it" : f->device ? "not in this QEMU" : "a command-line option",
                                 f->since, f->unused);
                        if ((r = host_check_report_add(rep, id, title, HOST_CHECK_INFO, detail, NULL)) < 0)
                                break;
                        continue;
                }
                if (has) {
                        snprintf(item, sizeof item, "%s: %s", f->id, f->what);
                        uses = join(uses, item);
                        json_object_array_add(ju, x);
                } else {
                        snprintf(item, sizeof item, "%s (QEMU %s): %s", f->id, f->since, f->what);
                        newer = join(newer, item);
                        json_object_array_add(jn, x);
                        free(latest);
                        latest = strdup(f->since);      /* the table is in release order */
                }
        }
        if (r >= 0 && (!uses || !newer))
                r = -ENOMEM;
        char ver[64];
        snprintf(ver, sizeof ver, "%.*s", (int) strcspn(c->version ? c->version : "", " "), c->version ? c->version : "");
        _cleanup_free_ char *d1 = NULL, *d2 = NULL, *fix = NULL;
        if (r >= 0 && (asprintf(&d1, "QEMU %s (%s): %s", ver, c->binary ? c->binary : "?", *uses ? uses : "none of them") < 0 ||
                       asprintf(&d2, "%s", *newer ? newer : "nothing the VM model knows: this QEMU has every feature it uses") < 0 ||
                       (latest && asprintf(&fix, "a QEMU %s or later adds them (on Debian 12: qemu-system-x86 from "
                                                 "bookworm-backports)", latest) < 0)))
                r = -ENOMEM;
        if (r >= 0)
                r = host_check_report_add(rep, "qemu.uses", "What the VM model uses from this QEMU", HOST_CHECK_PASS, d1, NULL);
        if (r >= 0)
                r = host_check_report_add(rep, "qemu.newer", "What a newer QEMU would add", HOST_CHECK_INFO, d2, fix);
        json_object_object_add(o, "binary", json_object_new_string(c->binary ? c->binary : ""));
        json_object_object_add(o, "version", json_object_new_string(c->version ? c->version : ""));
        json_object_object_add(o, "uses", ju);
        json_object_object_add(o, "newer_adds", jn);
        json_object_object_add(o, "not_used", jx);
        if (r < 0) {
                json_object_put(o);
                return r;
        }
        *ret = o;
        return 0;
}

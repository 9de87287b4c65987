/* SPDX-License-Identifier: MIT */
/*
 * Writing a definition out, walked over the key table (src/vm/keys.c):
 * the text format, the single-line check, JSON and the doc's key table.
 * The format is described in docs/vm-format.md and phyllome-vm(5).
 */
#include "vm.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "keys.h"

/* Lines a row writes: REPEAT one per item, the others one. */
static size_t n_lines(const struct vm_key *k, const void *base) {
        return k->type == VM_KEY_REPEAT ? KEY_CAT(base, k->offset, strv)->n : 1;
}

/* ---- formatting --------------------------------------------------------- */

/* Calls fn for each section instance: plain ones with d itself, labelled
 * ones once per element, with "disk system" (header) and "disk.system"
 * (the prefix of defaulted names). */
typedef int (*section_fn)(void *ctx, const struct vm_section *s, const void *base, const char *header,
                          const char *dotted);

static int each_section(const struct vm_def *d, section_fn fn, void *ctx) {
        for (size_t j = 0; j < vm_n_sections; j++) {
                const struct vm_section *s = &vm_section_table[j];
                if (!s->labelled) {
                        int r = fn(ctx, s, d, s->name, s->name);
                        if (r < 0)
                                return r;
                        continue;
                }
                size_t n;
                const char *a = vm_section_elems(d, s, &n);
                for (size_t i = 0; i < n; i++) {
                        const void *e = a + i * s->elem_size;
                        char header[160], dotted[160];
                        snprintf(header, sizeof header, "%s %s", s->name, vm_section_label(s, e));
                        snprintf(dotted, sizeof dotted, "%s.%s", s->name, vm_section_label(s, e));
                        int r = fn(ctx, s, e, header, dotted);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

struct fmt {
        FILE *f;
        const struct vm_def *d;
        bool with_defaults;
        bool bad;               /* a value with a control character: no text at all */
};

static int fmt_section(void *ctx, const struct vm_section *s, const void *base, const char *header,
                       const char *dotted) {
        struct fmt *o = ctx;
        bool header_done = false;
        if (s->labelled) {
                fprintf(o->f, "\n[%s]\n", header);
                header_done = true;
        }
        for (size_t i = 0; i < vm_n_keys; i++) {
                const struct vm_key *k = &vm_key_table[i];
                if (vm_key_section(k) != s)
                        continue;
                char name[200];
                snprintf(name, sizeof name, "%s.%s", dotted, k->key);
                bool dflt = strv_contains(&o->d->defaulted, name);
                if (dflt && !o->with_defaults)
                        continue;
                for (size_t item = 0; item < n_lines(k, base); item++) {
                        char buf[32];
                        _cleanup_free_ char *joined = NULL;
                        const char *v = vm_key_text(k, base, item, buf, sizeof buf, &joined);
                        if (!v)
                                continue;
                        if (str_has_control(v)) {
                                o->bad = true;
                                continue;
                        }
                        if (!header_done) {
                                fprintf(o->f, "\n[%s]\n", header);
                                header_done = true;
                        }
                        fprintf(o->f, "%s = %s", k->key, v);
                        if (dflt)
                                fprintf(o->f, "  # default (profile %s)", o->d->profile ? o->d->profile : "?");
                        fputc('\n', o->f);
                }
        }
        return 0;
}

char *vm_def_format(const struct vm_def *d, bool with_defaults) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        struct fmt o = { .f = f, .d = d, .with_defaults = with_defaults };
        fprintf(f, "# Phyllome VM definition: see phyllome-vm(5)\n");
        (void) each_section(d, fmt_section, &o);
        if (fclose(f) != 0 || o.bad) {
                free(buf);
                errno = o.bad ? EINVAL : errno;
                return NULL;
        }
        return buf;
}

/* ---- single-line values (issue 12) --------------------------------------- */

struct check {
        phy_error *err;
};

static int control_char(const char *section, const char *label, const char *key, const char *v, phy_error *err) {
        char shown[200];
        return phy_error_usage(err, "[%s%s%s] %s: the value '%s' has a control character (a newline, tab or "
                             "escape); values are single lines of printable characters", section, label ? " " : "",
                             label ? label : "", key, str_escape_line(v, shown, sizeof shown));
}

static int check_section(void *ctx, const struct vm_section *s, const void *base, const char *header,
                         const char *dotted) {
        struct check *c = ctx;
        const char *label = s->labelled ? vm_section_label(s, base) : NULL;
        if (label && str_has_control(label))
                return control_char(s->name, NULL, s->label_key, label, c->err);
        for (size_t i = 0; i < vm_n_keys; i++) {
                const struct vm_key *k = &vm_key_table[i];
                if (vm_key_section(k) != s)
                        continue;
                if (k->type == VM_KEY_LIST || k->type == VM_KEY_REPEAT) {
                        const strv *l = KEY_CAT(base, k->offset, strv);
                        for (size_t j = 0; j < l->n; j++)
                                if (str_has_control(l->v[j]))
                                        return control_char(s->name, label, k->key, l->v[j], c->err);
                        continue;
                }
                const char *v = k->type == VM_KEY_STR ? *KEY_CAT(base, k->offset, char *)
                              : k->type == VM_KEY_BUF ? KEY_CAT(base, k->offset, char) : NULL;
                if (v && str_has_control(v))
                        return control_char(s->name, label, k->key, v, c->err);
        }
        return 0;
}

int vm_def_check_values(const struct vm_def *d, phy_error *err) {
        struct check c = { .err = err };
        return each_section(d, check_section, &c);
}

/* ---- JSON --------------------------------------------------------------- */

static void json_row(json_object *o, const struct vm_key *k, const void *base) {
        const char *name = k->json ? k->json : k->key;
        json_object *v = NULL;
        switch (k->type) {
        case VM_KEY_STR:
        case VM_KEY_BUF:
        case VM_KEY_ENUM:
                if (k->json_bool && k->type == VM_KEY_ENUM) {
                        int e = *KEY_CAT(base, k->offset, int);
                        v = e ? json_object_new_boolean(e == VM_ON) : NULL;
                } else {
                        char buf[32];
                        _cleanup_free_ char *joined = NULL;
                        const char *t = vm_key_text(k, base, 0, buf, sizeof buf, &joined);
                        v = t ? json_object_new_string(t) : NULL;
                }
                break;
        case VM_KEY_FLAG:
                if (k->json_bool)
                        v = json_object_new_boolean(*KEY_CAT(base, k->offset, bool));
                else if (*KEY_CAT(base, k->offset, bool))
                        v = json_object_new_string(vm_key_word(k, 1));
                break;
        case VM_KEY_COUNT:
                if (k->has_set || vm_key_present_in(k, base))
                        v = json_object_new_int64(*KEY_CAT(base, k->offset, unsigned));
                break;
        case VM_KEY_SIZE:
                if (vm_key_present_in(k, base))
                        v = json_object_new_int64((int64_t) *KEY_CAT(base, k->offset, uint64_t));
                break;
        case VM_KEY_LIST:
        case VM_KEY_REPEAT: {
                const strv *l = KEY_CAT(base, k->offset, strv);
                v = json_object_new_array();
                for (size_t i = 0; i < l->n; i++)
                        json_object_array_add(v, json_object_new_string(l->v[i]));
                break;
        }
        }
        if (v)
                json_object_object_add(o, name, v);
}

static json_object *json_section(const struct vm_section *s, const void *base) {
        json_object *o = json_object_new_object();
        if (s->labelled)
                json_object_object_add(o, s->label_key, json_object_new_string(vm_section_label(s, base)));
        for (size_t i = 0; i < vm_n_keys; i++)
                if (vm_key_section(&vm_key_table[i]) == s)
                        json_row(o, &vm_key_table[i], base);
        return o;
}

json_object *vm_def_to_json(const struct vm_def *d) {
        json_object *top = json_object_new_object();
        for (size_t j = 0; j < vm_n_sections; j++) {
                const struct vm_section *s = &vm_section_table[j];
                if (s->labelled) {
                        json_object *a = json_object_new_array();
                        size_t n;
                        const char *e = vm_section_elems(d, s, &n);
                        for (size_t i = 0; i < n; i++)
                                json_object_array_add(a, json_section(s, e + i * s->elem_size));
                        json_object_object_add(top, s->json, a);
                        continue;
                }
                json_object *o = json_section(s, d);
                if (s->json_always || json_object_object_length(o) > 0)
                        json_object_object_add(top, s->json, o);
                else
                        json_object_put(o);
        }
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < d->defaulted.n; i++)
                json_object_array_add(a, json_object_new_string(d->defaulted.v[i]));
        json_object_object_add(top, "defaulted", a);
        return top;
}

/* ---- the doc's key table ------------------------------------------------------ */

char *vm_def_doc_table(void) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        fprintf(f, "| Section | Key | Values | Default |\n|---|---|---|---|\n");
        for (size_t i = 0; i < vm_n_keys; i++) {
                const struct vm_key *k = &vm_key_table[i];
                bool first = i == 0 || vm_key_table[i - 1].section != k->section;
                char words[300] = "";
                size_t at = 0;
                for (size_t w = 0; w < k->n_words && at < sizeof words; w++) {
                        if (!k->words[w])
                                continue;
                        int n = snprintf(words + at, sizeof words - at, "%s`%s`", at ? ", " : "", k->words[w]);
                        if (n < 0)
                                break;
                        at += (size_t) n;
                }
                const char *values = k->doc_values ? k->doc_values : "{words}";
                const char *tok = strstr(values, "{words}");
                fprintf(f, "| %s | `%s` | ", first ? vm_key_section(k)->doc_name : "", k->key);
                if (tok)
                        fprintf(f, "%.*s%s%s", (int) (tok - values), values, words, tok + strlen("{words}"));
                else
                        fputs(values, f);
                fprintf(f, " | %s |\n", k->doc_default ? k->doc_default : "");
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

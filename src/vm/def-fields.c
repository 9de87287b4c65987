/* SPDX-License-Identifier: MIT */
/*
 * The fields of a definition, walked over the key table (src/vm/keys.c):
 * presence, text, free, copy and the field-by-field comparison.
 * The format is described in docs/vm-format.md and phyllome-vm(5).
 */
#include "vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>

#include "cleanup.h"
#include "fileio.h"
#include "keys.h"

/* ---- a row's value ----------------------------------------------------- */

bool vm_key_present_in(const struct vm_key *k, const void *base) {
        switch (k->type) {
        case VM_KEY_STR: return *KEY_CAT(base, k->offset, char *) != NULL;
        case VM_KEY_BUF: return KEY_CAT(base, k->offset, char)[0] != '\0';
        case VM_KEY_ENUM: return *KEY_CAT(base, k->offset, int) != 0;
        case VM_KEY_FLAG: return *KEY_CAT(base, k->offset, bool);
        case VM_KEY_COUNT:
                return k->has_set ? *KEY_CAT(base, k->set_offset, bool) : *KEY_CAT(base, k->offset, unsigned) != 0;
        case VM_KEY_SIZE: return *KEY_CAT(base, k->offset, uint64_t) != 0;
        case VM_KEY_LIST:
        case VM_KEY_REPEAT: return KEY_CAT(base, k->offset, strv)->n > 0;
        }
        return false;
}

bool vm_def_key_present(const struct vm_def *d, const struct vm_key *k) {
        const struct vm_section *s = vm_key_section(k);
        if (!s->labelled)
                return vm_key_present_in(k, d);
        size_t n;
        char *a = vm_section_elems(d, s, &n);
        for (size_t i = 0; i < n; i++)
                if (vm_key_present_in(k, a + i * s->elem_size))
                        return true;
        return false;
}

/* The value of a row as the file writes it (one line; REPEAT: item i), or
 * NULL when unset.  buf holds numbers and sizes. */
const char *vm_key_text(const struct vm_key *k, const void *base, size_t item, char *buf, size_t len,
                        char **ret_join) {
        *ret_join = NULL;
        switch (k->type) {
        case VM_KEY_STR: return *KEY_CAT(base, k->offset, char *);
        case VM_KEY_BUF: return KEY_CAT(base, k->offset, char)[0] ? KEY_CAT(base, k->offset, char) : NULL;
        case VM_KEY_ENUM: return vm_key_word(k, *KEY_CAT(base, k->offset, int));
        case VM_KEY_FLAG: return *KEY_CAT(base, k->offset, bool) ? vm_key_word(k, 1) : NULL;
        case VM_KEY_COUNT:
                if (!vm_key_present_in(k, base))
                        return NULL;
                snprintf(buf, len, "%u", *KEY_CAT(base, k->offset, unsigned));
                return buf;
        case VM_KEY_SIZE:
                if (!vm_key_present_in(k, base))
                        return NULL;
                format_size(*KEY_CAT(base, k->offset, uint64_t), buf, len);
                /* Never a bare number, which the parser refuses (issue 19): bytes say so. */
                if (buf[0] && isdigit((unsigned char) buf[strlen(buf) - 1]) && strlen(buf) + 1 < len)
                        strcat(buf, "B");
                return buf;
        case VM_KEY_LIST: {
                const strv *l = KEY_CAT(base, k->offset, strv);
                if (!l->n)
                        return NULL;
                *ret_join = strv_join(l, " ");
                return *ret_join ? *ret_join : "";
        }
        case VM_KEY_REPEAT: {
                const strv *l = KEY_CAT(base, k->offset, strv);
                return item < l->n ? l->v[item] : NULL;
        }
        }
        return NULL;
}

/* ---- free and copy ------------------------------------------------------ */

static void free_fields(const struct vm_section *s, void *base) {
        for (size_t i = 0; i < vm_n_keys; i++) {
                const struct vm_key *k = &vm_key_table[i];
                if (vm_key_section(k) != s)
                        continue;
                if (vm_key_owns_str(k))
                        free(*KEY_AT(base, k->offset, char *));
                else if (vm_key_owns_strv(k))
                        strv_done(KEY_AT(base, k->offset, strv));
        }
        if (s->labelled)
                free(*KEY_AT(base, s->label_offset, char *));
}

void vm_def_done(struct vm_def *d) {
        if (!d)
                return;
        for (size_t j = 0; j < vm_n_sections; j++) {
                const struct vm_section *s = &vm_section_table[j];
                if (!s->labelled) {
                        free_fields(s, d);
                        continue;
                }
                size_t n;
                char *a = vm_section_elems(d, s, &n);
                for (size_t i = 0; i < n; i++)
                        free_fields(s, a + i * s->elem_size);
                free(a);
        }
        free(d->path);
        strv_done(&d->defaulted);
        memset(d, 0, sizeof *d);
}

/* Removes element I of the labelled section SECTION ("disk", "share", "nic",
 * ...) and frees what it owns: every field the table knows, so a key added
 * later is freed too. */
void vm_def_remove_elem(struct vm_def *d, const char *section, size_t i) {
        for (size_t j = 0; j < vm_n_sections; j++) {
                const struct vm_section *s = &vm_section_table[j];
                if (!s->labelled || strcmp(s->name, section) != 0)
                        continue;
                size_t n;
                char *a = vm_section_elems(d, s, &n);
                if (i >= n)
                        return;
                free_fields(s, a + i * s->elem_size);
                memmove(a + i * s->elem_size, a + (i + 1) * s->elem_size, (n - i - 1) * s->elem_size);
                (*KEY_AT(d, s->count_offset, size_t))--;
                return;
        }
        abort();        /* no labelled section of that name: a caller's typo */
}

/* Sets the owned fields of one section instance (labels included) to NULL:
 * a bit copy that must not free its source's memory. */
static void null_fields(const struct vm_section *s, void *base) {
        for (size_t i = 0; i < vm_n_keys; i++) {
                const struct vm_key *k = &vm_key_table[i];
                if (vm_key_section(k) == s && vm_key_owns_str(k))
                        *KEY_AT(base, k->offset, char *) = NULL;
                else if (vm_key_section(k) == s && vm_key_owns_strv(k))
                        *KEY_AT(base, k->offset, strv) = (strv) { 0 };
        }
        if (s->labelled)
                *KEY_AT(base, s->label_offset, char *) = NULL;
}

static int dup_str(char **dst, const char *src) {
        if (src && !(*dst = strdup(src)))
                return -ENOMEM;
        return 0;
}

static int dup_strv(strv *dst, const strv *src) {
        for (size_t i = 0; i < src->n; i++)
                if (strv_push(dst, src->v[i]) < 0)
                        return -ENOMEM;
        return 0;
}

/* Copies what src owns into dst, whose owned fields are NULL (null_fields):
 * on failure dst holds copies and NULLs only. */
static int copy_fields(const struct vm_section *s, void *dst, const void *src) {
        if (s->labelled && dup_str(KEY_AT(dst, s->label_offset, char *), *KEY_CAT(src, s->label_offset, char *)) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < vm_n_keys; i++) {
                const struct vm_key *k = &vm_key_table[i];
                if (vm_key_section(k) != s)
                        continue;
                if (vm_key_owns_str(k) && dup_str(KEY_AT(dst, k->offset, char *), *KEY_CAT(src, k->offset, char *)) < 0)
                        return -ENOMEM;
                if (vm_key_owns_strv(k) && dup_strv(KEY_AT(dst, k->offset, strv), KEY_CAT(src, k->offset, strv)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int vm_def_copy(const struct vm_def *src, struct vm_def *ret) {
        struct vm_def d = *src;
        /* Every owned pointer reset first, so that a failure frees only copies. */
        d.path = NULL;
        d.defaulted = (strv) { 0 };
        for (size_t j = 0; j < vm_n_sections; j++) {
                const struct vm_section *s = &vm_section_table[j];
                if (s->labelled) {
                        *KEY_AT(&d, s->array_offset, void *) = NULL;
                        *KEY_AT(&d, s->count_offset, size_t) = 0;
                } else
                        null_fields(s, &d);
        }
        int r = dup_str(&d.path, src->path);
        if (r >= 0)
                r = dup_strv(&d.defaulted, &src->defaulted);
        for (size_t j = 0; j < vm_n_sections && r >= 0; j++) {
                const struct vm_section *s = &vm_section_table[j];
                if (!s->labelled) {
                        r = copy_fields(s, &d, src);
                        continue;
                }
                size_t n;
                const char *from = vm_section_elems(src, s, &n);
                if (!n)
                        continue;
                char *a = calloc(n, s->elem_size);
                if (!a) {
                        r = -ENOMEM;
                        break;
                }
                *KEY_AT(&d, s->array_offset, void *) = a;
                /* Counted as copied, so that a failure frees exactly what was copied. */
                for (size_t i = 0; i < n && r >= 0; i++) {
                        char *e = a + i * s->elem_size;
                        memcpy(e, from + i * s->elem_size, s->elem_size);
                        null_fields(s, e);
                        *KEY_AT(&d, s->count_offset, size_t) = i + 1;
                        r = copy_fields(s, e, from + i * s->elem_size);
                }
        }
        if (r < 0) {
                vm_def_done(&d);
                return -ENOMEM;
        }
        *ret = d;
        return 0;
}

/* ---- field by field -------------------------------------------------------- */

static bool strv_equal(const strv *a, const strv *b) {
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (strcmp(a->v[i], b->v[i]) != 0)
                        return false;
        return true;
}

static bool row_equal(const struct vm_key *k, const void *a, const void *b) {
        switch (k->type) {
        case VM_KEY_STR: {
                const char *x = *KEY_CAT(a, k->offset, char *), *y = *KEY_CAT(b, k->offset, char *);
                return x == y || (x && y && strcmp(x, y) == 0);
        }
        case VM_KEY_BUF: return strcmp(KEY_CAT(a, k->offset, char), KEY_CAT(b, k->offset, char)) == 0;
        case VM_KEY_ENUM: return *KEY_CAT(a, k->offset, int) == *KEY_CAT(b, k->offset, int);
        case VM_KEY_FLAG: return *KEY_CAT(a, k->offset, bool) == *KEY_CAT(b, k->offset, bool);
        case VM_KEY_COUNT:
                return *KEY_CAT(a, k->offset, unsigned) == *KEY_CAT(b, k->offset, unsigned) &&
                       (!k->has_set || *KEY_CAT(a, k->set_offset, bool) == *KEY_CAT(b, k->set_offset, bool));
        case VM_KEY_SIZE: return *KEY_CAT(a, k->offset, uint64_t) == *KEY_CAT(b, k->offset, uint64_t);
        case VM_KEY_LIST:
        case VM_KEY_REPEAT: return strv_equal(KEY_CAT(a, k->offset, strv), KEY_CAT(b, k->offset, strv));
        }
        return false;
}

static void shown(const struct vm_key *k, const void *base, char *buf, size_t len) {
        char num[32];
        _cleanup_free_ char *joined = NULL;
        const char *v = k->type == VM_KEY_REPEAT ? (joined = strv_join(KEY_CAT(base, k->offset, strv), " "))
                                                  : vm_key_text(k, base, 0, num, sizeof num, &joined);
        snprintf(buf, len, "%s", v ? v : "(unset)");
}

static int rows_diff(const struct vm_section *s, const void *a, const void *b, const char *header, char *buf,
                     size_t len) {
        for (size_t i = 0; i < vm_n_keys; i++) {
                const struct vm_key *k = &vm_key_table[i];
                if (vm_key_section(k) != s || row_equal(k, a, b))
                        continue;
                char x[120], y[120];
                shown(k, a, x, sizeof x);
                shown(k, b, y, sizeof y);
                snprintf(buf, len, "[%s] %s: %s / %s", header, k->key, x, y);
                return 1;
        }
        return 0;
}

int vm_def_diff(const struct vm_def *a, const struct vm_def *b, char *buf, size_t len) {
        for (size_t j = 0; j < vm_n_sections; j++) {
                const struct vm_section *s = &vm_section_table[j];
                if (!s->labelled) {
                        if (rows_diff(s, a, b, s->name, buf, len))
                                return 1;
                        continue;
                }
                size_t na, nb;
                const char *ea = vm_section_elems(a, s, &na), *eb = vm_section_elems(b, s, &nb);
                if (na != nb) {
                        snprintf(buf, len, "[%s] sections: %zu / %zu", s->name, na, nb);
                        return 1;
                }
                for (size_t i = 0; i < na; i++) {
                        const void *x = ea + i * s->elem_size, *y = eb + i * s->elem_size;
                        char header[160];
                        snprintf(header, sizeof header, "%s %s", s->name, vm_section_label(s, x));
                        if (strcmp(vm_section_label(s, x), vm_section_label(s, y)) != 0) {
                                snprintf(buf, len, "[%s] is [%s %s] in the other", header, s->name, vm_section_label(s, y));
                                return 1;
                        }
                        if (rows_diff(s, x, y, header, buf, len))
                                return 1;
                }
        }
        if (!strv_equal(&a->defaulted, &b->defaulted)) {
                _cleanup_free_ char *x = strv_join(&a->defaulted, " "), *y = strv_join(&b->defaulted, " ");
                snprintf(buf, len, "defaulted: %s / %s", x ? x : "", y ? y : "");
                return 1;
        }
        return 0;
}

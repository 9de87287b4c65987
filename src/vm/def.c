/* SPDX-License-Identifier: MIT */
/*
 * The VM definition file, walked over its key table (src/vm/keys.c): parse,
 * format, JSON, copy, free, the single-line check, the field-by-field
 * comparison and the doc's key table.  Nothing here names a key: a key is a
 * row.  The format is described in docs/vm-format.md and phyllome-vm(5).
 */
#include "vm.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fileio.h"
#include "keys.h"

/* ---- fields ------------------------------------------------------------ */

#define AT(base, off, type) ((type *) (void *) ((char *) (base) + (off)))
#define CAT(base, off, type) ((const type *) (const void *) ((const char *) (base) + (off)))

static const struct vm_section *sec_of(const struct vm_key *k) { return &vm_section_table[k->section]; }

/* The elements of a labelled section: the array and its count. */
static void *elems(const struct vm_def *d, const struct vm_section *s, size_t *ret_n) {
        *ret_n = *CAT(d, s->count_offset, size_t);
        return *(void *const *) (const void *) ((const char *) d + s->array_offset);
}

static void *elem_at(const struct vm_def *d, const struct vm_section *s, size_t i) {
        size_t n;
        return (char *) elems(d, s, &n) + i * s->elem_size;
}

static const char *label_of(const struct vm_section *s, const void *e) {
        return *CAT(e, s->label_offset, char *);
}

static const char *word_of(const struct vm_key *k, int v) {
        return v >= 0 && (size_t) v < k->n_words ? k->words[v] : NULL;
}

static int word_lookup(const struct vm_key *k, const char *word) {
        for (size_t i = 0; i < k->n_words; i++)
                if (k->words[i] && strcmp(k->words[i], word) == 0)
                        return (int) i;
        return -1;
}

static void word_list(const char *const *tab, size_t n, char *buf, size_t len) {
        size_t at = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < n && at < len; i++) {
                if (!tab[i])
                        continue;
                int k = snprintf(buf + at, len - at, "%s%s", at ? ", " : "", tab[i]);
                if (k < 0)
                        break;
                at += (size_t) k;
        }
}

/* The owned string of a row (STR), or the strv (LIST, REPEAT). */
static bool owns_str(const struct vm_key *k) { return k->type == VM_KEY_STR; }
static bool owns_strv(const struct vm_key *k) { return k->type == VM_KEY_LIST || k->type == VM_KEY_REPEAT; }

static bool present_in(const struct vm_key *k, const void *base) {
        switch (k->type) {
        case VM_KEY_STR: return *CAT(base, k->offset, char *) != NULL;
        case VM_KEY_BUF: return CAT(base, k->offset, char)[0] != '\0';
        case VM_KEY_ENUM: return *CAT(base, k->offset, int) != 0;
        case VM_KEY_FLAG: return *CAT(base, k->offset, bool);
        case VM_KEY_COUNT:
                return k->has_set ? *CAT(base, k->set_offset, bool) : *CAT(base, k->offset, unsigned) != 0;
        case VM_KEY_SIZE: return *CAT(base, k->offset, uint64_t) != 0;
        case VM_KEY_LIST:
        case VM_KEY_REPEAT: return CAT(base, k->offset, strv)->n > 0;
        }
        return false;
}

bool vm_def_key_present(const struct vm_def *d, const struct vm_key *k) {
        const struct vm_section *s = sec_of(k);
        if (!s->labelled)
                return present_in(k, d);
        size_t n;
        char *a = elems(d, s, &n);
        for (size_t i = 0; i < n; i++)
                if (present_in(k, a + i * s->elem_size))
                        return true;
        return false;
}

/* The value of a row as the file writes it (one line; REPEAT: item i), or
 * NULL when unset.  buf holds numbers and sizes. */
static const char *value_text(const struct vm_key *k, const void *base, size_t item, char *buf, size_t len,
                              char **ret_join) {
        *ret_join = NULL;
        switch (k->type) {
        case VM_KEY_STR: return *CAT(base, k->offset, char *);
        case VM_KEY_BUF: return CAT(base, k->offset, char)[0] ? CAT(base, k->offset, char) : NULL;
        case VM_KEY_ENUM: return word_of(k, *CAT(base, k->offset, int));
        case VM_KEY_FLAG: return *CAT(base, k->offset, bool) ? word_of(k, 1) : NULL;
        case VM_KEY_COUNT:
                if (!present_in(k, base))
                        return NULL;
                snprintf(buf, len, "%u", *CAT(base, k->offset, unsigned));
                return buf;
        case VM_KEY_SIZE:
                if (!present_in(k, base))
                        return NULL;
                format_size(*CAT(base, k->offset, uint64_t), buf, len);
                return buf;
        case VM_KEY_LIST: {
                const strv *l = CAT(base, k->offset, strv);
                if (!l->n)
                        return NULL;
                *ret_join = strv_join(l, " ");
                return *ret_join ? *ret_join : "";
        }
        case VM_KEY_REPEAT: {
                const strv *l = CAT(base, k->offset, strv);
                return item < l->n ? l->v[item] : NULL;
        }
        }
        return NULL;
}

/* Lines a row writes: REPEAT one per item, the others one. */
static size_t n_lines(const struct vm_key *k, const void *base) {
        return k->type == VM_KEY_REPEAT ? CAT(base, k->offset, strv)->n : 1;
}

/* ---- free and copy ------------------------------------------------------ */

static void free_fields(const struct vm_section *s, void *base) {
        for (size_t i = 0; i < vm_n_keys; i++) {
                const struct vm_key *k = &vm_key_table[i];
                if (sec_of(k) != s)
                        continue;
                if (owns_str(k))
                        free(*AT(base, k->offset, char *));
                else if (owns_strv(k))
                        strv_done(AT(base, k->offset, strv));
        }
        if (s->labelled)
                free(*AT(base, s->label_offset, char *));
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
                char *a = elems(d, s, &n);
                for (size_t i = 0; i < n; i++)
                        free_fields(s, a + i * s->elem_size);
                free(a);
        }
        free(d->path);
        strv_done(&d->defaulted);
        memset(d, 0, sizeof *d);
}

/* Sets the owned fields of one section instance (labels included) to NULL:
 * a bit copy that must not free its source's memory. */
static void null_fields(const struct vm_section *s, void *base) {
        for (size_t i = 0; i < vm_n_keys; i++) {
                const struct vm_key *k = &vm_key_table[i];
                if (sec_of(k) == s && owns_str(k))
                        *AT(base, k->offset, char *) = NULL;
                else if (sec_of(k) == s && owns_strv(k))
                        *AT(base, k->offset, strv) = (strv) { 0 };
        }
        if (s->labelled)
                *AT(base, s->label_offset, char *) = NULL;
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
        if (s->labelled && dup_str(AT(dst, s->label_offset, char *), *CAT(src, s->label_offset, char *)) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < vm_n_keys; i++) {
                const struct vm_key *k = &vm_key_table[i];
                if (sec_of(k) != s)
                        continue;
                if (owns_str(k) && dup_str(AT(dst, k->offset, char *), *CAT(src, k->offset, char *)) < 0)
                        return -ENOMEM;
                if (owns_strv(k) && dup_strv(AT(dst, k->offset, strv), CAT(src, k->offset, strv)) < 0)
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
                        *AT(&d, s->array_offset, void *) = NULL;
                        *AT(&d, s->count_offset, size_t) = 0;
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
                const char *from = elems(src, s, &n);
                if (!n)
                        continue;
                char *a = calloc(n, s->elem_size);
                if (!a) {
                        r = -ENOMEM;
                        break;
                }
                *AT(&d, s->array_offset, void *) = a;
                /* Counted as copied, so that a failure frees exactly what was copied. */
                for (size_t i = 0; i < n && r >= 0; i++) {
                        char *e = a + i * s->elem_size;
                        memcpy(e, from + i * s->elem_size, s->elem_size);
                        null_fields(s, e);
                        *AT(&d, s->count_offset, size_t) = i + 1;
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

/* ---- the parser -------------------------------------------------------- */

struct seen {
        char *what;             /* "cpu" or "cpu\ncores" */
        unsigned line;
};

struct parser {
        const char *file;
        unsigned line;
        struct vm_def *d;
        int sec;                /* index in vm_section_table, -1 before the first */
        char *secname;          /* "disk system", for messages */
        struct seen *seen;
        size_t n_seen;
        phy_error *err;
};

static int perr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(struct parser *p, const char *fmt, ...) {
        char msg[900];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        return phy_error_usage(p->err, "%s:%u: %s", p->file, p->line, msg);
}

/* Records what (section or section+key); returns 1 with the earlier line, or 0. */
static int seen_check(struct parser *p, const char *what, unsigned *ret_line) {
        for (size_t i = 0; i < p->n_seen; i++)
                if (strcmp(p->seen[i].what, what) == 0) {
                        *ret_line = p->seen[i].line;
                        return 1;
                }
        struct seen *n = realloc(p->seen, (p->n_seen + 1) * sizeof *n);
        if (!n)
                return -ENOMEM;
        p->seen = n;
        if (!(n[p->n_seen].what = strdup(what)))
                return -ENOMEM;
        n[p->n_seen++].line = p->line;
        return 0;
}

static char *strip(char *s) {
        while (isspace((unsigned char) *s))
                s++;
        size_t n = strlen(s);
        while (n > 0 && isspace((unsigned char) s[n - 1]))
                s[--n] = '\0';
        return s;
}

static void lower(char *s, enum vm_key_lower how) {
        char *end = how == VM_LOWER_TO_EQ ? strchr(s, '=') : NULL;
        if (how == VM_LOWER_NONE)
                return;
        for (char *c = s; *c && c != end; c++)
                *c = (char) tolower((unsigned char) *c);
}

#define KEYFMT "for key '%s' in section [%s]"

/* "invalid <what> 'v' for key ... ; <hint>", the hint defaulting to the allowed words. */
static int bad_value(struct parser *p, const struct vm_key *k, const char *v) {
        char allowed[300];
        const char *hint = k->hint;
        if (!hint) {
                char words[256];
                if (k->allowed)
                        snprintf(words, sizeof words, "%s", k->allowed());
                else
                        word_list(k->words, k->n_words, words, sizeof words);
                snprintf(allowed, sizeof allowed, "allowed: %s", words);
                hint = allowed;
        }
        return perr(p, "invalid %s '%s' " KEYFMT "; %s", k->what ? k->what : "value", v, k->key, p->secname, hint);
}

static const struct vm_key *find_key(unsigned sec, const char *key) {
        for (size_t i = 0; i < vm_n_keys; i++)
                if (vm_key_table[i].section == sec && strcmp(vm_key_table[i].key, key) == 0)
                        return &vm_key_table[i];
        return NULL;
}

static int set_str(char **field, const char *v) {
        char *c = strdup(v);
        if (!c)
                return -ENOMEM;
        free(*field);
        *field = c;
        return 0;
}

static int set_list(struct parser *p, const struct vm_key *k, char *v, strv *out) {
        char *save = NULL;
        for (char *t = strtok_r(v, k->seps, &save); t; t = strtok_r(NULL, k->seps, &save)) {
                lower(t, k->lower);
                if (k->valid && !k->valid(t))
                        return bad_value(p, k, t);
                if (!k->dups_ok && strv_contains(out, t))
                        return perr(p, "%s '%s' is listed twice " KEYFMT, k->what, t, k->key, p->secname);
                if (strv_push(out, t) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int set_key(struct parser *p, const struct vm_key *k, char *v) {
        const struct vm_section *s = &vm_section_table[p->sec];
        void *base = p->d;
        if (s->labelled) {
                size_t n;
                elems(p->d, s, &n);
                base = elem_at(p->d, s, n - 1);
        }
        int w = -1;
        switch (k->type) {
        case VM_KEY_STR:
        case VM_KEY_BUF:
                if ((k->valid && !k->valid(v)) || (k->words && word_lookup(k, v) < 0))
                        return bad_value(p, k, v);
                lower(v, k->lower);
                break;
        case VM_KEY_ENUM:
        case VM_KEY_FLAG:
                if ((w = word_lookup(k, v)) < 0)
                        return bad_value(p, k, v);
                break;
        default:
                break;
        }
        if (k->conflict) {
                const struct vm_key *other = find_key(k->section, k->conflict);
                if (other && present_in(other, base))
                        return perr(p, "%s in section [%s] contradict each other; keep one", k->conflict_what,
                                    p->secname);
        }
        switch (k->type) {
        case VM_KEY_STR:
                return set_str(AT(base, k->offset, char *), v);
        case VM_KEY_BUF:
                snprintf(AT(base, k->offset, char), k->size, "%s", v);
                return 0;
        case VM_KEY_ENUM:
                *AT(base, k->offset, int) = w;
                return 0;
        case VM_KEY_FLAG:
                *AT(base, k->offset, bool) = w == 1;
                return 0;
        case VM_KEY_COUNT: {
                unsigned long long n;
                if (parse_uint(v, k->max, &n) < 0 || n < k->min)
                        return bad_value(p, k, v);
                *AT(base, k->offset, unsigned) = (unsigned) n;
                if (k->has_set)
                        *AT(base, k->set_offset, bool) = true;
                return 0;
        }
        case VM_KEY_SIZE: {
                unsigned long long n;
                if (parse_size(v, &n) < 0 || n == 0)
                        return perr(p, "invalid size '%s' " KEYFMT "; use a number with K, M, G or T (e.g. 4G)",
                                    v, k->key, p->secname);
                *AT(base, k->offset, uint64_t) = n;
                return 0;
        }
        case VM_KEY_LIST:
                return set_list(p, k, v, AT(base, k->offset, strv));
        case VM_KEY_REPEAT: {
                strv *l = AT(base, k->offset, strv);
                if (k->valid && !k->valid(v))
                        return bad_value(p, k, v);
                if (strv_contains(l, v))
                        return perr(p, "%s '%s' is listed twice in section [%s]", k->what, v, p->secname);
                return strv_push(l, v);
        }
        }
        return -EINVAL;
}

/* Grows a labelled section's array by one zeroed element named label. */
static int add_element(struct vm_def *d, const struct vm_section *s, const char *label) {
        size_t n;
        char *a = elems(d, s, &n);
        char *grown = realloc(a, (n + 1) * s->elem_size);
        if (!grown)
                return -ENOMEM;
        *AT(d, s->array_offset, void *) = grown;
        memset(grown + n * s->elem_size, 0, s->elem_size);
        if (!(*AT(grown + n * s->elem_size, s->label_offset, char *) = strdup(label)))
                return -ENOMEM;
        *AT(d, s->count_offset, size_t) = n + 1;
        return 0;
}

static int begin_section(struct parser *p, char *inner) {
        char *name = strip(inner), *label = NULL;
        char *sp = name + strcspn(name, " \t");
        if (*sp) {
                *sp = '\0';
                label = strip(sp + 1);
        }
        int found = -1;
        for (size_t i = 0; i < vm_n_sections; i++)
                if (strcmp(vm_section_table[i].name, name) == 0)
                        found = (int) i;
        if (found < 0) {
                char allowed[256];
                const char *words[32];
                size_t n = 0;
                for (size_t i = 0; i < vm_n_sections && n < ELEMENTSOF(words); i++)
                        words[n++] = vm_section_table[i].name;
                word_list(words, n, allowed, sizeof allowed);
                return perr(p, "unknown section [%s]; allowed: %s", name, allowed);
        }
        const struct vm_section *s = &vm_section_table[found];
        if (s->labelled && !label)
                return perr(p, "section [%s] needs a name, e.g. [%s %s]", name, name, s->label_example);
        if (!s->labelled && label)
                return perr(p, "section [%s] takes no name, found [%s %s]", name, name, label);
        if (label && !vm_name_valid(label))
                return perr(p, "invalid name '%s' in section [%s %s]; names are 1 to 64 of A-Z a-z 0-9 . _ -",
                            label, name, label);

        free(p->secname);
        p->secname = NULL;
        if (asprintf(&p->secname, "%s%s%s", name, label ? " " : "", label ? label : "") < 0) {
                p->secname = NULL;
                return -ENOMEM;
        }
        unsigned first = 0;
        int r = seen_check(p, p->secname, &first);
        if (r < 0)
                return r;
        if (r > 0)
                return perr(p, "duplicate section [%s]; it was already defined on line %u", p->secname, first);
        p->sec = found;
        return s->labelled ? add_element(p->d, s, label) : 0;
}

/* A '#' at the start of a line or after whitespace starts a comment. */
static void cut_comment(char *s) {
        for (char *c = s; *c; c++)
                if (*c == '#' && (c == s || isspace((unsigned char) c[-1]))) {
                        *c = '\0';
                        return;
                }
}

static int parse_line(struct parser *p, char *line) {
        cut_comment(line);
        char *s = strip(line);
        if (!*s)
                return 0;
        if (*s == '[') {
                size_t n = strlen(s);
                if (s[n - 1] != ']')
                        return perr(p, "malformed section header '%s'; use [section] or [section name]", s);
                s[n - 1] = '\0';
                if (str_has_control(s + 1))
                        return perr(p, "a control character in a section header; use [section] or [section name]");
                return begin_section(p, s + 1);
        }
        char *eq = strchr(s, '=');
        if (!eq)
                return perr(p, "expected 'key = value' or a [section], got '%s'", s);
        *eq = '\0';
        char *key = strip(s), *value = strip(eq + 1);
        /* The writer puts a blank after '=', so "key =#x" would read back
         * as a comment: a value that starts with '#' is one here too. */
        if (*value == '#')
                *value = '\0';
        char shown[200];
        if (str_has_control(key))
                return perr(p, "a control character in the key '%s'", str_escape_line(key, shown, sizeof shown));
        if (p->sec < 0)
                return perr(p, "key '%s' comes before any section; put it under a section such as [vm]", key);
        const struct vm_key *k = find_key((unsigned) p->sec, key);
        if (!k) {
                char allowed[256];
                const char *words[32];
                size_t n = 0;
                for (size_t i = 0; i < vm_n_keys && n < ELEMENTSOF(words); i++)
                        if (vm_key_table[i].section == (unsigned) p->sec)
                                words[n++] = vm_key_table[i].key;
                word_list(words, n, allowed, sizeof allowed);
                return perr(p, "unknown key '%s' in section [%s]; allowed: %s", key, p->secname, allowed);
        }
        if (!*value)
                return perr(p, "empty value for key '%s' in section [%s]", key, p->secname);
        if (str_has_control(value))
                return perr(p, "key '%s' in section [%s]: the value '%s' has a control character; values are single "
                            "lines of printable characters", key, p->secname, str_escape_line(value, shown, sizeof shown));
        if (k->type != VM_KEY_REPEAT) {
                _cleanup_free_ char *what = NULL;
                unsigned first = 0;
                if (asprintf(&what, "%s\n%s", p->secname, key) < 0)
                        return -ENOMEM;
                int r = seen_check(p, what, &first);
                if (r < 0)
                        return r;
                if (r > 0)
                        return perr(p, "duplicate key '%s' in section [%s]; it was already set on line %u",
                                    key, p->secname, first);
        }
        return set_key(p, k, value);
}

int vm_def_parse(const char *path, const char *text, struct vm_def *ret, phy_error *err) {
        struct vm_def d = { 0 };
        struct parser p = { .file = path ? path : "<input>", .d = &d, .sec = -1, .err = err };
        int r = 0;
        if (path && !(d.path = strdup(path)))
                r = -ENOMEM;
        _cleanup_free_ char *copy = r < 0 ? NULL : strdup(text);
        if (r >= 0 && !copy)
                r = -ENOMEM;
        char *line = copy;
        /* Walk lines by hand: strtok would merge empty lines and shift numbers. */
        while (r >= 0 && line) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                p.line++;
                r = parse_line(&p, line);
                line = nl ? nl + 1 : NULL;
        }
        for (size_t i = 0; i < p.n_seen; i++)
                free(p.seen[i].what);
        free(p.seen);
        free(p.secname);
        if (r == -ENOMEM)
                phy_error_set(err, ENOMEM, "out of memory while parsing '%s'", p.file);
        if (r < 0) {
                vm_def_done(&d);
                return r;
        }
        *ret = d;
        return 0;
}

int vm_def_load(const char *path, struct vm_def *ret, phy_error *err) {
        _cleanup_free_ char *text = NULL;
        int r = file_read_all(path, 1024 * 1024, &text, NULL);
        if (r == -ENOENT)
                return phy_error_set(err, r, "cannot find the VM definition '%s'", path);
        if (r < 0)
                return phy_error_set(err, r, "cannot read the VM definition '%s': %s", path, strerror(-r));
        return vm_def_parse(path, text, ret, err);
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
                const char *a = elems(d, s, &n);
                for (size_t i = 0; i < n; i++) {
                        const void *e = a + i * s->elem_size;
                        char header[160], dotted[160];
                        snprintf(header, sizeof header, "%s %s", s->name, label_of(s, e));
                        snprintf(dotted, sizeof dotted, "%s.%s", s->name, label_of(s, e));
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
                if (sec_of(k) != s)
                        continue;
                char name[200];
                snprintf(name, sizeof name, "%s.%s", dotted, k->key);
                bool dflt = strv_contains(&o->d->defaulted, name);
                if (dflt && !o->with_defaults)
                        continue;
                for (size_t item = 0; item < n_lines(k, base); item++) {
                        char buf[32];
                        _cleanup_free_ char *joined = NULL;
                        const char *v = value_text(k, base, item, buf, sizeof buf, &joined);
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
        const char *label = s->labelled ? label_of(s, base) : NULL;
        if (label && str_has_control(label))
                return control_char(s->name, NULL, s->label_key, label, c->err);
        for (size_t i = 0; i < vm_n_keys; i++) {
                const struct vm_key *k = &vm_key_table[i];
                if (sec_of(k) != s)
                        continue;
                if (k->type == VM_KEY_LIST || k->type == VM_KEY_REPEAT) {
                        const strv *l = CAT(base, k->offset, strv);
                        for (size_t j = 0; j < l->n; j++)
                                if (str_has_control(l->v[j]))
                                        return control_char(s->name, label, k->key, l->v[j], c->err);
                        continue;
                }
                const char *v = k->type == VM_KEY_STR ? *CAT(base, k->offset, char *)
                              : k->type == VM_KEY_BUF ? CAT(base, k->offset, char) : NULL;
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
                        int e = *CAT(base, k->offset, int);
                        v = e ? json_object_new_boolean(e == VM_ON) : NULL;
                } else {
                        char buf[32];
                        _cleanup_free_ char *joined = NULL;
                        const char *t = value_text(k, base, 0, buf, sizeof buf, &joined);
                        v = t ? json_object_new_string(t) : NULL;
                }
                break;
        case VM_KEY_FLAG:
                if (k->json_bool)
                        v = json_object_new_boolean(*CAT(base, k->offset, bool));
                else if (*CAT(base, k->offset, bool))
                        v = json_object_new_string(word_of(k, 1));
                break;
        case VM_KEY_COUNT:
                if (k->has_set || present_in(k, base))
                        v = json_object_new_int64(*CAT(base, k->offset, unsigned));
                break;
        case VM_KEY_SIZE:
                if (present_in(k, base))
                        v = json_object_new_int64((int64_t) *CAT(base, k->offset, uint64_t));
                break;
        case VM_KEY_LIST:
        case VM_KEY_REPEAT: {
                const strv *l = CAT(base, k->offset, strv);
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
                json_object_object_add(o, s->label_key, json_object_new_string(label_of(s, base)));
        for (size_t i = 0; i < vm_n_keys; i++)
                if (sec_of(&vm_key_table[i]) == s)
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
                        const char *e = elems(d, s, &n);
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
                const char *x = *CAT(a, k->offset, char *), *y = *CAT(b, k->offset, char *);
                return x == y || (x && y && strcmp(x, y) == 0);
        }
        case VM_KEY_BUF: return strcmp(CAT(a, k->offset, char), CAT(b, k->offset, char)) == 0;
        case VM_KEY_ENUM: return *CAT(a, k->offset, int) == *CAT(b, k->offset, int);
        case VM_KEY_FLAG: return *CAT(a, k->offset, bool) == *CAT(b, k->offset, bool);
        case VM_KEY_COUNT:
                return *CAT(a, k->offset, unsigned) == *CAT(b, k->offset, unsigned) &&
                       (!k->has_set || *CAT(a, k->set_offset, bool) == *CAT(b, k->set_offset, bool));
        case VM_KEY_SIZE: return *CAT(a, k->offset, uint64_t) == *CAT(b, k->offset, uint64_t);
        case VM_KEY_LIST:
        case VM_KEY_REPEAT: return strv_equal(CAT(a, k->offset, strv), CAT(b, k->offset, strv));
        }
        return false;
}

static void shown(const struct vm_key *k, const void *base, char *buf, size_t len) {
        char num[32];
        _cleanup_free_ char *joined = NULL;
        const char *v = k->type == VM_KEY_REPEAT ? (joined = strv_join(CAT(base, k->offset, strv), " "))
                                                  : value_text(k, base, 0, num, sizeof num, &joined);
        snprintf(buf, len, "%s", v ? v : "(unset)");
}

static int rows_diff(const struct vm_section *s, const void *a, const void *b, const char *header, char *buf,
                     size_t len) {
        for (size_t i = 0; i < vm_n_keys; i++) {
                const struct vm_key *k = &vm_key_table[i];
                if (sec_of(k) != s || row_equal(k, a, b))
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
                const char *ea = elems(a, s, &na), *eb = elems(b, s, &nb);
                if (na != nb) {
                        snprintf(buf, len, "[%s] sections: %zu / %zu", s->name, na, nb);
                        return 1;
                }
                for (size_t i = 0; i < na; i++) {
                        const void *x = ea + i * s->elem_size, *y = eb + i * s->elem_size;
                        char header[160];
                        snprintf(header, sizeof header, "%s %s", s->name, label_of(s, x));
                        if (strcmp(label_of(s, x), label_of(s, y)) != 0) {
                                snprintf(buf, len, "[%s] is [%s %s] in the other", header, s->name, label_of(s, y));
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
                fprintf(f, "| %s | `%s` | ", first ? sec_of(k)->doc_name : "", k->key);
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

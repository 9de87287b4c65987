/* SPDX-License-Identifier: MIT */
/*
 * The VM definition file: the parser, walking the key table
 * (src/vm/keys.c); no key is named here, a key is a row.
 * The format is described in docs/vm-format.md and phyllome-vm(5).
 */
#include "vm.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fileio.h"
#include "keys.h"

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

static void *elem_at(const struct vm_def *d, const struct vm_section *s, size_t i) {
        size_t n;
        return (char *) vm_section_elems(d, s, &n) + i * s->elem_size;
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
                vm_section_elems(p->d, s, &n);
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
                if (other && vm_key_present_in(other, base))
                        return perr(p, "%s in section [%s] contradict each other; keep one", k->conflict_what,
                                    p->secname);
        }
        switch (k->type) {
        case VM_KEY_STR:
                return set_str(KEY_AT(base, k->offset, char *), v);
        case VM_KEY_BUF:
                snprintf(KEY_AT(base, k->offset, char), k->size, "%s", v);
                return 0;
        case VM_KEY_ENUM:
                *KEY_AT(base, k->offset, int) = w;
                return 0;
        case VM_KEY_FLAG:
                *KEY_AT(base, k->offset, bool) = w == 1;
                return 0;
        case VM_KEY_COUNT: {
                unsigned long long n;
                if (parse_uint(v, k->max, &n) < 0 || n < k->min)
                        return bad_value(p, k, v);
                *KEY_AT(base, k->offset, unsigned) = (unsigned) n;
                if (k->has_set)
                        *KEY_AT(base, k->set_offset, bool) = true;
                return 0;
        }
        case VM_KEY_SIZE: {
                unsigned long long n;
                if (parse_size(v, &n) < 0 || n == 0)
                        return perr(p, "invalid size '%s' " KEYFMT "; use a number with K, M, G or T (e.g. 4G)",
                                    v, k->key, p->secname);
                /* A bare number is refused (issue 19): '2048' meant MiB or GiB to the
                 * one who wrote it, never the bytes it would be. */
                if (isdigit((unsigned char) v[strlen(v) - 1]))
                        return perr(p, "size '%s' " KEYFMT " has no unit; write %sM (MiB) or %sG (GiB) (units K, M, "
                                    "G, T; B for bytes)", v, k->key, p->secname, v, v);
                *KEY_AT(base, k->offset, uint64_t) = n;
                return 0;
        }
        case VM_KEY_LIST:
                return set_list(p, k, v, KEY_AT(base, k->offset, strv));
        case VM_KEY_REPEAT: {
                strv *l = KEY_AT(base, k->offset, strv);
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
        char *a = vm_section_elems(d, s, &n);
        char *grown = realloc(a, (n + 1) * s->elem_size);
        if (!grown)
                return -ENOMEM;
        *KEY_AT(d, s->array_offset, void *) = grown;
        memset(grown + n * s->elem_size, 0, s->elem_size);
        if (!(*KEY_AT(grown + n * s->elem_size, s->label_offset, char *) = strdup(label)))
                return -ENOMEM;
        *KEY_AT(d, s->count_offset, size_t) = n + 1;
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
        if (r >= 0)
                r = vm_install_check(p.file, &d.install, err);
        if (r < 0) {
                vm_def_done(&d);
                return r;
        }
        *ret = d;
        return 0;
}

int vm_def_load_text(const char *path, char **ret_text, struct vm_def *ret, phy_error *err) {
        _cleanup_free_ char *text = NULL;
        int r = file_read_all(path, 1024 * 1024, &text, NULL);
        if (r == -ENOENT)
                return phy_error_set(err, r, "cannot find the VM definition '%s'", path);
        if (r < 0)
                return phy_error_set(err, r, "cannot read the VM definition '%s': %s", path, strerror(-r));
        if ((r = vm_def_parse(path, text, ret, err)) < 0)
                return r;
        if (ret_text)
                *ret_text = TAKE_PTR(text);
        return 0;
}

int vm_def_load(const char *path, struct vm_def *ret, phy_error *err) {
        return vm_def_load_text(path, NULL, ret, err);
}

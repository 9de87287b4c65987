/* SPDX-License-Identifier: MIT */
/*
 * The key table of docs/vm-format.md, generated from the definition's key
 * table (src/vm/keys.c) between the markers VM_DOC_BEGIN and VM_DOC_END;
 * the prose around it is written by hand.
 *
 *   vm-format-doc                 prints the table
 *   vm-format-doc --write DOC     rewrites the table in DOC (ninja -C build vm-format-doc-update)
 *   vm-format-doc --check DOC     TAP: fails when DOC's table is not what the keys give (a meson test)
 *   vm-format-doc --check-man MAN TAP: fails when a key is not named under its section in
 *                                 phyllome-vm(5)'s SECTIONS (written by hand; a meson test)
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fileio.h"
#include "vm/keys.h"

/* The doc with its table replaced by table; NULL when a marker is missing. */
static char *splice(const char *doc, const char *table, const char **ret_old, size_t *ret_old_len) {
        const char *b = strstr(doc, VM_DOC_BEGIN), *e = b ? strstr(b, VM_DOC_END) : NULL;
        if (!b || !e)
                return NULL;
        const char *start = b + strlen(VM_DOC_BEGIN "\n");
        if (start > e)
                return NULL;
        *ret_old = start;
        *ret_old_len = (size_t) (e - start);
        char *out = NULL;
        if (asprintf(&out, "%.*s%s%s", (int) (start - doc), doc, table, e) < 0)
                return NULL;
        return out;
}

/* The man page's entry of section s: the lines after its ".B [name]" or
 * ".BI \"[name \"" line up to the next .TP or .SH (malloc'd, "\-" read as
 * "-"), or NULL. */
static char *man_entry(const char *man, const struct vm_section *s) {
        char plain[64], labelled[64];
        snprintf(plain, sizeof plain, "\n.B [%s]\n", s->name);
        snprintf(labelled, sizeof labelled, "\n.BI \"[%s \"", s->name);
        const char *at = strstr(man, s->labelled ? labelled : plain);
        if (!at)
                return NULL;
        at = strchr(at + 1, '\n');
        if (!at)
                return NULL;
        const char *tp = strstr(at, "\n.TP"), *sh = strstr(at, "\n.SH");
        const char *end = tp && (!sh || tp < sh) ? tp : sh ? sh : at + strlen(at);
        char *out = malloc((size_t) (end - at) + 1), *w = out;
        if (!out)
                return NULL;
        for (const char *c = at; c < end; c++)
                if (!(c[0] == '\\' && c[1] == '-'))
                        *w++ = *c;
        *w = '\0';
        return out;
}

/* key as a word of text: not inside a longer name ("key" in "key-file"). */
static bool names_key(const char *text, const char *key) {
        size_t n = strlen(key);
        for (const char *at = strstr(text, key); at; at = strstr(at + 1, key)) {
                bool before = at == text || !(isalnum((unsigned char) at[-1]) || at[-1] == '-');
                bool after = !(isalnum((unsigned char) at[n]) || at[n] == '-');
                if (before && after)
                        return true;
        }
        return false;
}

static int check_man(const char *path, const char *man) {
        printf("1..%zu\n", vm_n_sections);
        int failed = 0;
        for (size_t i = 0; i < vm_n_sections; i++) {
                const struct vm_section *s = &vm_section_table[i];
                _cleanup_free_ char *entry = man_entry(man, s);
                char missing[400] = "";
                size_t at = 0;
                for (size_t k = 0; k < vm_n_keys; k++) {
                        if (vm_key_table[k].section != i || (entry && names_key(entry, vm_key_table[k].key)))
                                continue;
                        int w = snprintf(missing + at, sizeof missing - at, "%s%s", at ? ", " : "",
                                         vm_key_table[k].key);
                        if (w > 0 && (size_t) w < sizeof missing - at)
                                at += (size_t) w;
                }
                if (!entry) {
                        printf("not ok %zu - %s has no entry for [%s] in SECTIONS\n", i + 1, path, s->name);
                        failed = 1;
                } else if (missing[0]) {
                        printf("not ok %zu - %s's [%s] does not name: %s\n", i + 1, path, s->name, missing);
                        failed = 1;
                } else
                        printf("ok %zu - %s's [%s] names every key\n", i + 1, path, s->name);
        }
        return failed;
}

int main(int argc, char **argv) {
        _cleanup_free_ char *table = vm_def_doc_table();
        if (!table) {
                fprintf(stderr, "vm-format-doc: out of memory\n");
                return 1;
        }
        if (argc == 1) {
                fputs(table, stdout);
                return 0;
        }
        if (argc != 3 || (strcmp(argv[1], "--check") != 0 && strcmp(argv[1], "--write") != 0 &&
                          strcmp(argv[1], "--check-man") != 0)) {
                fprintf(stderr, "usage: vm-format-doc [--check|--write DOC | --check-man MAN]\n");
                return 2;
        }
        bool check = strcmp(argv[1], "--check") == 0;
        const char *path = argv[2];
        _cleanup_free_ char *doc = NULL;
        int r = file_read_all(path, 1024 * 1024, &doc, NULL);
        if (r < 0) {
                fprintf(stderr, "vm-format-doc: cannot read '%s': %s\n", path, strerror(-r));
                return 1;
        }
        if (strcmp(argv[1], "--check-man") == 0)
                return check_man(path, doc);
        const char *old = NULL;
        size_t old_len = 0;
        _cleanup_free_ char *out = splice(doc, table, &old, &old_len);
        if (!out) {
                fprintf(stderr, "vm-format-doc: '%s' has no lines '%s' and '%s' around the key table\n", path,
                        VM_DOC_BEGIN, VM_DOC_END);
                return 1;
        }
        if (!check) {
                phy_error err = { 0 };
                if (strcmp(out, doc) != 0 && file_write_atomic(path, out, strlen(out), 0644, &err) < 0) {
                        fprintf(stderr, "vm-format-doc: %s\n", err.message);
                        return 1;
                }
                return 0;
        }
        printf("1..1\n");
        if (strcmp(out, doc) == 0) {
                printf("ok 1 - the key table of %s is the one src/vm/keys.c gives\n", path);
                return 0;
        }
        /* Name the first line that differs. */
        size_t line = 1;
        const char *a = old, *b = table;
        while (*b && (size_t) (a - old) < old_len && *a == *b) {
                if (*a == '\n')
                        line++;
                a++;
                b++;
        }
        const char *bl = b;
        while (bl > table && bl[-1] != '\n')
                bl--;
        printf("not ok 1 - the key table of %s is stale (table line %zu should read: %.*s); "
               "run 'ninja -C build vm-format-doc-update'\n", path, line, (int) strcspn(bl, "\n"), bl);
        return 1;
}

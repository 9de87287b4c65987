/* SPDX-License-Identifier: MIT */
/*
 * The key table of docs/vm-format.md, generated from the definition's key
 * table (src/vm/keys.c) between the markers VM_DOC_BEGIN and VM_DOC_END;
 * the prose around it is written by hand.
 *
 *   vm-format-doc                 prints the table
 *   vm-format-doc --write DOC     rewrites the table in DOC (ninja -C build vm-format-doc-update)
 *   vm-format-doc --check DOC     TAP: fails when DOC's table is not what the keys give (a meson test)
 */
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
        if (argc != 3 || (strcmp(argv[1], "--check") != 0 && strcmp(argv[1], "--write") != 0)) {
                fprintf(stderr, "usage: vm-format-doc [--check|--write DOC]\n");
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

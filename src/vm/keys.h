/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The VM definition as one table (issue 13): one row per key of vm.conf —
 * its section, name, type, where it lives in struct vm_def, the words it
 * allows, its check, its JSON name and its line in docs/vm-format.md.  The
 * parser, the formatter, the JSON, copy, free, the value check, the
 * field-by-field comparison and the doc's key table are all walks over it
 * (src/vm/def.c, def-fields.c, def-write.c); the rows are in src/vm/keys.c.
 *
 * Adding a key: add the field to struct vm_def (or vm_disk, vm_nic, ...)
 * in vm.h, one row to vm_key_table in keys.c (in the section's order, which
 * is the order of the file, the JSON and the doc), the key to the full
 * fixture tests/fixtures/conf/good/full.conf (and refresh full.model with
 * PHYLLOME_UPDATE_GOLDEN=1), regenerate the doc's key table (`ninja -C
 * build vm-format-doc-update`) and name the key in its section of
 * man/phyllome-vm.5 (written by hand; the vm-format-man test checks it).
 * Unit tests fail until each of these is done.
 */
#include <stdbool.h>
#include <stddef.h>

#include "vm.h"

enum vm_key_type {
        VM_KEY_STR,     /* char *: free text, one of words, or what valid accepts */
        VM_KEY_BUF,     /* char[size]: name, uuid, mac */
        VM_KEY_ENUM,    /* an enum (int-sized): one of words, the index is the value, 0 = unset */
        VM_KEY_FLAG,    /* bool: words[1] sets it ("on", "prompt"), words[0] (if any) clears it;
                         * written only when set */
        VM_KEY_COUNT,   /* unsigned, min..max; 0 = unset unless has_set */
        VM_KEY_SIZE,    /* uint64_t bytes, "4G"; 0 = unset */
        VM_KEY_LIST,    /* strv: items on one line, separated by seps */
        VM_KEY_REPEAT,  /* strv: one item per line, the key repeated (forward) */
};

enum vm_key_lower { VM_LOWER_NONE = 0, VM_LOWER_ALL, VM_LOWER_TO_EQ /* "ADDR=File": the address part */ };

struct vm_key {
        unsigned section;               /* index in vm_section_table */
        const char *key;
        enum vm_key_type type;
        size_t offset;                  /* in struct vm_def, or in the section's element */
        size_t size;                    /* VM_KEY_BUF: the buffer */
        const char *const *words;       /* index = stored value; NULL holes */
        size_t n_words;
        const char *(*allowed)(void);   /* VM_KEY_STR: the allowed words, computed ("allowed: ...") */
        bool (*valid)(const char *);    /* the check of a value (of each item of a list) */
        const char *what;               /* "invalid <what> 'v' for key ..."; NULL: "value" */
        const char *hint;               /* what follows "; "; NULL: "allowed: <words>" */
        unsigned min, max;              /* VM_KEY_COUNT */
        bool has_set;                   /* VM_KEY_COUNT: the bool at set_offset says "given" (0 is a value) */
        size_t set_offset;
        const char *seps;               /* VM_KEY_LIST: item separators */
        enum vm_key_lower lower;        /* lower-cased as stored */
        bool dups_ok;                   /* VM_KEY_LIST: an item may repeat */
        const char *conflict;           /* a key of the same section that may not be set with this one */
        const char *conflict_what;      /* "key-file and key = prompt" */
        bool json_bool;                 /* ENUM (on/off) and FLAG: a JSON boolean, not the word */
        const char *json;               /* JSON member name; NULL: key */
        const char *doc_values;         /* the doc's Values column; "{words}" is replaced by the words */
        const char *doc_default;        /* the doc's Default column */
};

struct vm_section {
        const char *name;               /* "disk" */
        const char *json;               /* "disks" (labelled: an array) or "machine" */
        bool labelled;                  /* [disk NAME]: an array of elements */
        bool json_always;               /* the JSON object is there even when empty */
        const char *label_key;          /* the label's name in JSON and messages: "name", "tag" */
        const char *label_example;      /* "system", for "needs a name, e.g. [disk system]" */
        const char *doc_name;           /* "`[disk NAME]`" */
        size_t array_offset, count_offset, elem_size, label_offset;
};

extern const struct vm_section vm_section_table[];
extern const size_t vm_n_sections;
extern const struct vm_key vm_key_table[];
extern const size_t vm_n_keys;

/* ---- for the walks (src/vm/def*.c) ---- */

#define KEY_AT(base, off, type) ((type *) (void *) ((char *) (base) + (off)))
#define KEY_CAT(base, off, type) ((const type *) (const void *) ((const char *) (base) + (off)))

static inline const struct vm_section *vm_key_section(const struct vm_key *k) {
        return &vm_section_table[k->section];
}
/* The elements of a labelled section: the array and its count. */
static inline void *vm_section_elems(const struct vm_def *d, const struct vm_section *s, size_t *ret_n) {
        *ret_n = *KEY_CAT(d, s->count_offset, size_t);
        return *(void *const *) (const void *) ((const char *) d + s->array_offset);
}
static inline const char *vm_section_label(const struct vm_section *s, const void *e) {
        return *KEY_CAT(e, s->label_offset, char *);
}
static inline const char *vm_key_word(const struct vm_key *k, int v) {
        return v >= 0 && (size_t) v < k->n_words ? k->words[v] : NULL;
}
/* What a row owns: a string (STR) or a string vector (LIST, REPEAT). */
static inline bool vm_key_owns_str(const struct vm_key *k) { return k->type == VM_KEY_STR; }
static inline bool vm_key_owns_strv(const struct vm_key *k) {
        return k->type == VM_KEY_LIST || k->type == VM_KEY_REPEAT;
}
/* k is set in base (d, or an element of k's labelled section). */
bool vm_key_present_in(const struct vm_key *k, const void *base);
/* The value of k in base as the file writes it (one line; REPEAT: item
 * item), or NULL when unset; buf holds numbers and sizes, *ret_join a
 * joined list (free it). */
const char *vm_key_text(const struct vm_key *k, const void *base, size_t item, char *buf, size_t len,
                        char **ret_join);

/* True when k is set in d (in any element of a labelled section). */
bool vm_def_key_present(const struct vm_def *d, const struct vm_key *k);

/*
 * Field by field, by the table: every key of every section (labelled ones
 * element by element, labels and order included), usb redirect's "given",
 * and defaulted.  Not path (the file a definition was read from).  0 when
 * equal, else 1 with the first difference named in buf ("[disk system]
 * size: 40G / 20G").
 */
int vm_def_diff(const struct vm_def *a, const struct vm_def *b, char *buf, size_t len);

/* The key table of docs/vm-format.md (Markdown, malloc'd; NULL: no memory). */
char *vm_def_doc_table(void);
/* The markers around it in the doc. */
#define VM_DOC_BEGIN "<!-- BEGIN key table: generated from src/vm/keys.c by vm-format-doc; do not edit -->"
#define VM_DOC_END "<!-- END key table -->"

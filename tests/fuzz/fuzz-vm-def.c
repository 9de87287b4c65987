/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the VM definition parser (docs/vm-format.md).  Any input
 * must parse or fail cleanly; what parses must survive format -> parse ->
 * format unchanged and read back equal field by field (vm_def_diff over the
 * key table: the writer and the parser agree on every value), and the JSON
 * and copy paths must handle it (a copy is equal field by field).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "vm/keys.h"
#include "vm/vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* Definitions are small text files; the cap keeps iterations fast. */
        if (size > 64 * 1024)
                return 0;
        char *text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';

        phy_error err = { 0 };
        _cleanup_vm_def_ struct vm_def d = { 0 };
        int r = vm_def_parse("fuzz.conf", text, &d, &err);
        free(text);
        if (r < 0) {
                /* A refusal must say why. */
                if (err.message[0] == '\0')
                        __builtin_trap();
                return 0;
        }

        _cleanup_free_ char *once = vm_def_format(&d, false);
        if (!once)
                __builtin_trap();
        _cleanup_vm_def_ struct vm_def d2 = { 0 };
        phy_error err2 = { 0 };
        if (vm_def_parse("fuzz-formatted.conf", once, &d2, &err2) < 0) {
                fprintf(stderr, "formatted definition does not parse: %s\n--- formatted:\n%s\n", err2.message, once);
                __builtin_trap();
        }
        char diff[400];
        if (vm_def_diff(&d, &d2, diff, sizeof diff) != 0) {
                fprintf(stderr, "the formatted definition reads back different: %s\n--- formatted:\n%s\n", diff, once);
                __builtin_trap();
        }
        _cleanup_free_ char *twice = vm_def_format(&d2, false);
        if (!twice || strcmp(once, twice) != 0) {
                fprintf(stderr, "round trip not stable\n--- first:\n%s\n--- second:\n%s\n", once, twice ? twice : "(null)");
                __builtin_trap();
        }

        _cleanup_free_ char *with_defaults = vm_def_format(&d, true);
        if (!with_defaults)
                __builtin_trap();
        json_object *j = vm_def_to_json(&d);
        json_object_put(j);
        _cleanup_vm_def_ struct vm_def c = { 0 };
        if (vm_def_copy(&d, &c) == 0) {
                _cleanup_free_ char *copied = vm_def_format(&c, false);
                if (!copied || strcmp(copied, once) != 0 || vm_def_diff(&d, &c, diff, sizeof diff) != 0 ||
                    strcmp(c.path, d.path) != 0)
                        __builtin_trap();
        }
        return 0;
}

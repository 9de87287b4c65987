/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the libvirt domain reader (docs/interop.md).  Any input
 * must map or fail cleanly with a message; what maps must come out of the
 * export's XML writer and be read back by the same reader (the writer's XML
 * is always one the reader takes).  Paths are judged by the containment
 * rules of a home in /tmp, so most disks are refused: the mapping is what
 * is fuzzed, with the path check in its way as it is for real input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interop/interop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 256 * 1024)
                return 0;
        struct interop_opts o = { 0 };
        phy_error err = { 0 };
        _cleanup_interop_plan_ struct interop_plan p = { 0 };
        int r = interop_libvirt_parse("fuzz.xml", (const char *) data, size, &o, &p, &err);
        if (r < 0) {
                if (err.message[0] == '\0')
                        __builtin_trap();
                return 0;
        }
        struct interop_export_opts eo = { .kvm = true };
        _cleanup_free_ char *xml = NULL;
        phy_error e2 = { 0 };
        /* Disks of a plan are named relative to the VM: the export names them under a directory. */
        if (interop_libvirt_format(&p.def, &p.def, &eo, "/nonexistent", NULL, NULL, NULL, &xml, &e2) < 0)
                return 0;
        _cleanup_interop_plan_ struct interop_plan back = { 0 };
        phy_error e3 = { 0 };
        if (interop_libvirt_parse("back.xml", xml, strlen(xml), &o, &back, &e3) < 0 && e3.message[0] == '\0')
                __builtin_trap();
        return 0;
}

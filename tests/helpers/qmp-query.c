/* SPDX-License-Identifier: MIT */
/*
 * Test helper: qmp-query SOCKET COMMAND [ARGS-JSON] sends one QMP command
 * through the project's QMP client and prints its "return" as JSON on one
 * line.  Exit 1 with QEMU's error on stderr when it fails.
 */
#include <json-c/json.h>
#include <stdio.h>

#include "cleanup.h"
#include "qemu/qmp.h"

int main(int argc, char **argv) {
        if (argc != 3 && argc != 4) {
                fprintf(stderr, "usage: qmp-query SOCKET COMMAND [ARGS-JSON]\n");
                return 2;
        }
        json_object *args = NULL;
        if (argc == 4 && !(args = json_tokener_parse(argv[3]))) {
                fprintf(stderr, "qmp-query: '%s' is not JSON\n", argv[3]);
                return 2;
        }
        phy_error err = { 0 };
        struct qmp *q = NULL;
        json_object *ret = NULL;
        int r = qmp_open_path(argv[1], 10000, &q, &err);
        if (r >= 0)
                r = qmp_command(q, argv[2], TAKE_PTR(args), 10000, &ret, &err);
        json_object_put(args);  /* not taken when the connection failed */
        if (q)
                qmp_close(q);
        if (r < 0) {
                fprintf(stderr, "qmp-query: %s\n", err.message);
                return 1;
        }
        puts(ret ? json_object_to_json_string_ext(ret, JSON_C_TO_STRING_PLAIN) : "null");
        json_object_put(ret);
        return 0;
}

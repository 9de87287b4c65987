/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: phyllod's request handling without HTTP, api_handle().
 * The input is "METHOD\nPATH\nBODY" (BODY may hold any byte).  Each input
 * runs against a fresh temporary home holding one stopped VM ("keep"); the
 * host root is the ci-debian12-tcg fixture and $PHYLLOME_QEMU names no file,
 * so a fuzzed start fails at finding QEMU instead of booting anything.
 * Beyond "no crash, no leak, no UB": the status is an HTTP status, the reply
 * a JSON object (only 204 has none), and an error reply carries a code and a
 * message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <json-c/json.h>

#include "api/api.h"
#include "fileio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char home[] = "/tmp/phyllome-fuzz-api-XXXXXX";
static char root[4096];
static char *keep_conf;
static size_t keep_conf_len;

static void home_remove(void) {
        (void) rm_rf(home);
}

/* The home as each input finds it: vms/keep/vm.conf and nothing else. */
static void home_reset(void) {
        char p[sizeof home + 64];
        (void) rm_rf(home);
        snprintf(p, sizeof p, "%s/vms/keep", home);
        if (mkdir_p(p, 0700) < 0)
                abort();
        snprintf(p, sizeof p, "%s/vms/keep/vm.conf", home);
        FILE *f = fopen(p, "we");
        if (!f || fwrite(keep_conf, 1, keep_conf_len, f) != keep_conf_len || fclose(f) != 0)
                abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc;
        (void) argv;
        if (!mkdtemp(home))
                abort();
        atexit(home_remove);
        setenv("PHYLLOME_HOME", home, 1);
        setenv("PHYLLOME_CACHE", home, 1);
        setenv("PHYLLOME_QEMU", "/nonexistent/phyllome-fuzz-qemu", 1);
        setenv("PHYLLOME_QEMU_IMG", "/nonexistent/phyllome-fuzz-qemu-img", 1);
        snprintf(root, sizeof root, "%s/tests/fixtures/host/ci-debian12-tcg", FUZZ_SRCDIR);
        static const char conf[] = "# one stopped VM for the fuzzer\n"
                                   "[vm]\nname = keep\nprofile = linux\nuuid = 6b1f1e0c-3d2a-4f5e-9a7b-0c1d2e3f4a5b\n"
                                   "[memory]\nsize = 256M\n[cpu]\ncores = 1\n";
        keep_conf = strdup(conf);
        keep_conf_len = strlen(conf);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 64 * 1024)
                return 0;
        /* METHOD and PATH end at the first two newlines (and at a NUL, as a
         * C string from the HTTP layer would). */
        const uint8_t *nl1 = memchr(data, '\n', size);
        if (!nl1)
                return 0;
        const uint8_t *rest = nl1 + 1;
        size_t rest_len = size - (size_t) (rest - data);
        const uint8_t *nl2 = memchr(rest, '\n', rest_len);
        if (!nl2)
                return 0;
        char *method = strndup((const char *) data, (size_t) (nl1 - data));
        char *path = strndup((const char *) rest, (size_t) (nl2 - rest));
        const uint8_t *body = nl2 + 1;
        size_t body_len = size - (size_t) (body - data);
        /* The body in its own allocation, so ASan sees a read past its end. */
        char *b = body_len ? malloc(body_len) : NULL;
        if (body_len)
                memcpy(b, body, body_len);

        home_reset();
        struct api_ctx c = { .root = root, .home = home, .events = NULL };
        json_object *reply = NULL;
        int status = api_handle(&c, method, path, b, body_len, &reply);
        if (status < 100 || status > 599)
                __builtin_trap();
        if (status == 204) {
                if (reply)
                        __builtin_trap();
        } else {
                if (!reply || !json_object_is_type(reply, json_type_object))
                        __builtin_trap();
                if (status >= 400) {
                        json_object *e = NULL, *code = NULL, *msg = NULL;
                        if (!json_object_object_get_ex(reply, "error", &e) ||
                            !json_object_object_get_ex(e, "code", &code) ||
                            !json_object_object_get_ex(e, "message", &msg) ||
                            json_object_get_string_len(msg) == 0)
                                __builtin_trap();
                }
                /* What the server would send must serialise. */
                if (!json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN))
                        __builtin_trap();
        }
        json_object_put(reply);
        free(b);
        free(method);
        free(path);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Where the commands that phyllod also serves get their answer: from phyllod
 * when one answers on the home's socket, else from the same route handler run
 * in-process (src/api/routes.c calls the library as phyllod would).  Either
 * way the command prints from the same JSON, so the output is the same with
 * and without a daemon.  PHYLLOME_NO_DAEMON=1 forces the direct way;
 * else PHYLLOME_REQUIRE_DAEMON=1 refuses it (the tests' proof that the
 * daemon answered: tests/integration/with-daemon.sh).
 */
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "cli.h"
#include "cleanup.h"
#include "api/api.h"

/* The errno an error reply names ("ENOENT"), for the exit status. */
static int errno_from_reply(json_object *code) {
        if (json_object_is_type(code, json_type_int))
                return json_object_get_int(code);
        const char *s = json_object_get_string(code);
        for (int e = 1; s && e < 4096; e++) {
                const char *n = strerrorname_np(e);
                if (n && strcmp(n, s) == 0)
                        return e;
        }
        return EIO;
}

/* 2xx: *ret takes the body; else prints the error sentence of the reply. */
static int reply(int status, json_object *o, json_object **ret) {
        if (status >= 200 && status < 300) {
                *ret = o;
                return 0;
        }
        phy_error err = { 0 };
        json_object *e = NULL, *code = NULL, *msg = NULL;
        if (o && json_object_object_get_ex(o, "error", &e) && json_object_object_get_ex(e, "message", &msg)) {
                json_object_object_get_ex(e, "code", &code);
                phy_error_set(&err, code ? errno_from_reply(code) : EIO, "%s", json_object_get_string(msg));
        } else
                phy_error_set(&err, EPROTO, "phyllod answered with HTTP status %d and no error message", status);
        json_object_put(o);
        return cli_fail(&err);
}

static bool env_true(const char *name) {
        const char *v = getenv(name);
        return v && *v && strcmp(v, "0") != 0;
}

int cli_api_stream(struct cli_ctx *ctx, const char *method, const char *path, int in_fd, int out_fd,
                   void (*progress)(uint64_t, uint64_t, void *), void *userdata, json_object **ret, bool *ret_direct) {
        *ret = NULL;
        *ret_direct = false;
        const char *home;
        if (cli_home(ctx, &home) < 0)
                return 1;
        phy_error err = { 0 };
        _cleanup_free_ char *sock = NULL;
        if (env_true("PHYLLOME_NO_DAEMON")) {
                *ret_direct = true;
                return 0;
        }
        if (api_socket_path(home, false, &sock, &err) < 0) {
                if (env_true("PHYLLOME_REQUIRE_DAEMON"))
                        return cli_fail(&err);
                *ret_direct = true;
                return 0;
        }
        json_object *o = NULL;
        int status = api_client_stream(sock, method, path, in_fd, out_fd, progress, userdata, &o, &err);
        if (status >= 0)
                return reply(status, o, ret);
        if ((status != -ENOENT && status != -ECONNREFUSED) || env_true("PHYLLOME_REQUIRE_DAEMON"))
                return cli_fail(&err);
        *ret_direct = true;
        return 0;
}

int cli_api_call(struct cli_ctx *ctx, const char *method, const char *path, json_object *body, json_object **ret) {
        *ret = NULL;
        const char *home;
        if (cli_home(ctx, &home) < 0)
                return 1;
        const char *text = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
        json_object *o = NULL;
        phy_error err = { 0 };
        _cleanup_free_ char *sock = NULL;
        if (!env_true("PHYLLOME_NO_DAEMON") && api_socket_path(home, false, &sock, &err) >= 0) {
                /* No time limit: phyllod bounds its own work (a stop its timeout). */
                int status = api_client_request(sock, method, path, text, -1, &o, &err);
                if (status >= 0)
                        return reply(status, o, ret);
                if ((status != -ENOENT && status != -ECONNREFUSED) || env_true("PHYLLOME_REQUIRE_DAEMON"))
                        return cli_fail(&err);
        } else if (!env_true("PHYLLOME_NO_DAEMON") && env_true("PHYLLOME_REQUIRE_DAEMON"))
                return cli_fail(&err);  /* no socket path */
        /* No daemon: the same route, here. */
        struct api_ctx c = { .root = ctx->root, .home = home };
        int status = api_handle(&c, method, path, text, text ? strlen(text) : 0, &o);
        return reply(status, o, ret);
}

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
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "cli.h"
#include "cleanup.h"
#include "error-json.h"
#include "api/api.h"

/* 2xx (or 101, a switch to the console): *ret takes the body; else prints the error sentence of the reply. */
static int reply(int status, json_object *o, json_object **ret) {
        if ((status >= 200 && status < 300) || status == 101) {
                *ret = o;
                return 0;
        }
        phy_error err = { 0 };
        json_object *e = NULL;
        /* The kind decides the exit status; a 400 without one is a usage error. */
        if (!o || !json_object_object_get_ex(o, "error", &e) ||
            !phy_error_from_json(e, status == 400 ? PHY_ERR_USAGE : PHY_ERR_NONE, &err))
                phy_error_set(&err, EPROTO, "phyllod answered with HTTP status %d and no error message", status);
        json_object_put(o);
        return cli_fail(&err);
}

/* What phyllod cannot do for us: run a binary this command names
 * (ctx->local), act on a fixture root (it serves the real host), or with
 * the tools and limits this process's environment overrides
 * (phyllod has its own environment).  Then the command works here. */
static bool direct_only(const struct cli_ctx *ctx) {
        static const char *const overrides[] = {
                "PHYLLOME_QEMU_IMG", "PHYLLOME_OVMF_DIR", "PHYLLOME_PASST", "PHYLLOME_VIRTIOFSD",
                "PHYLLOME_QEMU_USER", "PHYLLOME_CONSOLE_LOG_MAX", "PHYLLOME_LIBEGL",
                "PHYLLOME_DEVHELPER_SOCKET",
        };
        if (ctx->local || (ctx->root && strcmp(ctx->root, "/") != 0))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(overrides); i++) {
                const char *v = getenv(overrides[i]);
                if (v && *v)
                        return true;
        }
        return false;
}

static bool env_true(const char *name) {
        const char *v = getenv(name);
        return v && *v && strcmp(v, "0") != 0;
}

/* One request to phyllod for this home, made by ask (an HTTP status or
 * -errno).  No daemon there (and PHYLLOME_REQUIRE_DAEMON unset), or
 * PHYLLOME_NO_DAEMON: 0 with *ret_direct, the caller works directly.
 * Else 0 with *ret the reply, or the exit status after printing why. */
typedef int (*ask_fn)(const char *sock, json_object **o, phy_error *err, void *userdata);
static int via_daemon(struct cli_ctx *ctx, const char **ret_home, ask_fn ask, void *userdata, json_object **ret,
                      bool *ret_direct) {
        *ret = NULL;
        *ret_direct = false;
        if (cli_home(ctx, ret_home) < 0)
                return 1;
        phy_error err = { 0 };
        _cleanup_free_ char *sock = NULL;
        if (env_true("PHYLLOME_NO_DAEMON") || direct_only(ctx)) {
                *ret_direct = true;
                return 0;
        }
        if (api_socket_path(*ret_home, false, &sock, &err) < 0) {
                if (env_true("PHYLLOME_REQUIRE_DAEMON"))
                        return cli_fail(&err);
                *ret_direct = true;
                return 0;
        }
        json_object *o = NULL;
        int status = ask(sock, &o, &err, userdata);
        if (status >= 0)
                return reply(status, o, ret);
        if ((status != -ENOENT && status != -ECONNREFUSED) || env_true("PHYLLOME_REQUIRE_DAEMON"))
                return cli_fail(&err);
        *ret_direct = true;
        return 0;
}

struct stream_req {
        const char *method, *path;
        int in_fd, out_fd;
        void (*progress)(uint64_t, uint64_t, void *);
        void *userdata;
};

static int ask_stream(const char *sock, json_object **o, phy_error *err, void *userdata) {
        const struct stream_req *q = userdata;
        return api_client_stream(sock, q->method, q->path, q->in_fd, q->out_fd, q->progress, q->userdata, o, err);
}

int cli_api_stream(struct cli_ctx *ctx, const char *method, const char *path, int in_fd, int out_fd,
                   void (*progress)(uint64_t, uint64_t, void *), void *userdata, json_object **ret, bool *ret_direct) {
        struct stream_req q = { method, path, in_fd, out_fd, progress, userdata };
        const char *home;
        return via_daemon(ctx, &home, ask_stream, &q, ret, ret_direct);
}

static int ask_follow(const char *sock, json_object **o, phy_error *err, void *userdata) {
        const struct stream_req *q = userdata;
        int r = api_client_stream(sock, "GET", q->path, -1, q->out_fd, NULL, NULL, o, err);
        return r == -EPIPE ? 200 : r;   /* our reader left: the end we wait for */
}

int cli_api_follow(struct cli_ctx *ctx, const char *path, int out_fd, bool *ret_direct) {
        struct stream_req q = { "GET", path, -1, out_fd, NULL, NULL };
        const char *home;
        json_object *o = NULL;
        int r = via_daemon(ctx, &home, ask_follow, &q, &o, ret_direct);
        json_object_put(o);
        return r;
}

struct cli_events {
        struct api_event_stream *s;
        pthread_t thread;
        const char *name;
        void (*fn)(const char *phase, uint64_t done, uint64_t total, void *userdata);
        void *userdata;
};

static void on_event(const char *event, json_object *data, void *userdata) {
        struct cli_events *w = userdata;
        if (strcmp(event, "migrate") == 0 && strcmp(cli_jstr(data, "name"), w->name) == 0)
                w->fn(cli_jstr(data, "phase"), (uint64_t) cli_jint(data, "done"), (uint64_t) cli_jint(data, "total"),
                      w->userdata);
}

static void *events_thread(void *userdata) {
        struct cli_events *w = userdata;
        (void) api_client_events_run(w->s, on_event, w);
        return NULL;
}

struct cli_events *cli_events_watch(struct cli_ctx *ctx, const char *name,
                                    void (*fn)(const char *phase, uint64_t done, uint64_t total, void *userdata),
                                    void *userdata) {
        const char *home;
        _cleanup_free_ char *sock = NULL;
        phy_error err = { 0 };
        if (env_true("PHYLLOME_NO_DAEMON") || direct_only(ctx) || cli_home(ctx, &home) < 0 ||
            api_socket_path(home, false, &sock, &err) < 0)
                return NULL;
        struct cli_events *w = calloc(1, sizeof *w);
        if (!w)
                return NULL;
        *w = (struct cli_events) { .name = name, .fn = fn, .userdata = userdata };
        /* Subscribed once this returns: no progress of the request that follows is missed. */
        if (api_client_events_open(sock, &w->s, &err) < 0 || pthread_create(&w->thread, NULL, events_thread, w) != 0) {
                api_client_events_free(w->s);
                free(w);
                return NULL;
        }
        return w;
}

void cli_events_end(struct cli_events *w) {
        if (!w)
                return;
        api_client_events_cancel(w->s);
        pthread_join(w->thread, NULL);
        api_client_events_free(w->s);
        free(w);
}

struct json_req {
        const char *method, *path, *text;
};

static int ask_json(const char *sock, json_object **o, phy_error *err, void *userdata) {
        const struct json_req *q = userdata;
        /* No time limit: phyllod bounds its own work (a stop its timeout). */
        return api_client_request(sock, q->method, q->path, q->text, -1, o, err);
}

struct text_req {
        const char *path;
        char *text;
        size_t len;
};

/* GET: a 2xx reply's body is kept as text in the request; an error's is
 * parsed, for reply() to say. */
static int ask_text(const char *sock, json_object **o, phy_error *err, void *userdata) {
        struct text_req *q = userdata;
        int status = api_client_request_text(sock, "GET", q->path, NULL, -1, &q->text, &q->len, err);
        if (status >= 0 && (status < 200 || status >= 300)) {
                *o = q->text ? json_tokener_parse(q->text) : NULL;
                free(q->text);
                q->text = NULL;
        }
        return status;
}

int cli_api_get_text(struct cli_ctx *ctx, const char *path, char **ret, size_t *ret_len, bool *ret_direct) {
        struct text_req q = { .path = path };
        const char *home;
        json_object *o = NULL;
        int r = via_daemon(ctx, &home, ask_text, &q, &o, ret_direct);
        json_object_put(o);
        if (r != 0 || *ret_direct) {
                free(q.text);
                return r;
        }
        *ret = q.text;
        *ret_len = q.len;
        return 0;
}

int cli_api_try(struct cli_ctx *ctx, const char *method, const char *path, json_object *body, json_object **ret,
                bool *ret_direct) {
        const char *text = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
        struct json_req q = { method, path, text };
        const char *home;
        return via_daemon(ctx, &home, ask_json, &q, ret, ret_direct);
}

int cli_api_call(struct cli_ctx *ctx, const char *method, const char *path, json_object *body, json_object **ret) {
        const char *text = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
        struct json_req q = { method, path, text };
        const char *home;
        bool direct;
        int r = via_daemon(ctx, &home, ask_json, &q, ret, &direct);
        if (r != 0 || !direct)
                return r;
        /* No daemon: the same route, here. */
        json_object *o = NULL;
        struct api_ctx c = { .root = ctx->root, .home = home, .uid = geteuid(), .gid = getegid(), .local = true };
        int status = api_handle(&c, method, path, text, text ? strlen(text) : 0, &o);
        return reply(status, o, ret);
}

int cli_call(struct cli_ctx *ctx, const char *method, json_object *body, json_object **ret, const char *fmt, ...) {
        _cleanup_free_ char *path = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&path, fmt, ap);
        va_end(ap);
        if (n < 0) {
                json_object_put(body);
                phy_error err = { 0 };
                phy_error_set(&err, ENOMEM, "out of memory");
                return cli_fail(&err);
        }
        int r = cli_api_call(ctx, method, path, body, ret);
        json_object_put(body);
        return r;
}

int cli_word_arg(const char *what, const char *word) {
        phy_error err = { 0 };
        return ops_name_check(what, word, &err) < 0 ? cli_fail(&err) : 0;
}

int cli_name_arg(const char *name) {
        return cli_word_arg("VM name", name);
}

char *cli_abs_path(const char *path) {
        if (path[0] == '/')
                return strdup(path);
        _cleanup_free_ char *cwd = getcwd(NULL, 0);
        char *p = NULL;
        return cwd && asprintf(&p, "%s/%s", cwd, path) >= 0 ? p : NULL;
}

const char *cli_jstr(json_object *o, const char *key) {
        json_object *v = NULL;
        return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "";
}

int64_t cli_jint(json_object *o, const char *key) {
        json_object *v = NULL;
        return json_object_object_get_ex(o, key, &v) && v ? json_object_get_int64(v) : 0;
}

bool cli_jbool(json_object *o, const char *key) {
        json_object *v = NULL;
        return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

int cli_ops(struct cli_ctx *ctx, struct ops_ctx *ret) {
        const char *home;
        if (cli_home(ctx, &home) < 0)
                return 1;
        *ret = ops_ctx_self(ctx->root, home);
        return 0;
}

struct console_req {
        const char *path;
        int fd;
};

static int ask_console(const char *sock, json_object **o, phy_error *err, void *userdata) {
        struct console_req *q = userdata;
        return api_client_upgrade(sock, q->path, API_CONSOLE_PROTOCOL, &q->fd, o, err);
}

int cli_console_open(struct cli_ctx *ctx, const char *name, int *ret_fd) {
        int r = cli_name_arg(name);
        if (r)
                return r;
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "/v1/vms/%s/console", name) < 0)
                return 1;
        struct console_req q = { path, -1 };
        const char *home;
        bool direct;
        json_object *o = NULL;
        if ((r = via_daemon(ctx, &home, ask_console, &q, &o, &direct)) != 0)
                return r;
        json_object_put(o);
        if (!direct) {
                *ret_fd = q.fd;
                return 0;
        }
        phy_error err = { 0 };
        struct ops_ctx oc = ops_ctx_self(ctx->root, home);
        return ops_console_open(&oc, name, ret_fd, &err) < 0 ? cli_fail(&err) : 0;
}

/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * Host fixture trees (tests/fixtures/host/<machine>) for the device tests:
 * a temporary copy the test may write to, and plain-file reads and writes
 * of its attributes below the copy's root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "exec.h"
#include "fileio.h"
#include "tap.h"

static inline char *fixture_path(const char *name) {
        char *p = NULL;
        if (asprintf(&p, "%s/fixtures/host/%s", tap_srcdir(), name) < 0)
                abort();
        return p;
}

/* A copy of fixture name in a new directory named after prefix
 * ("/tmp/phyllome-test-dev-XXXXXX"); malloc'd.  Aborts on failure. */
static inline char *fixture_copy(const char *name, const char *prefix) {
        _cleanup_free_ char *tmpl = NULL, *src = NULL, *cp = exec_find_in_path("cp");
        if (asprintf(&tmpl, "%s-XXXXXX", prefix) < 0 || !mkdtemp(tmpl) ||
            asprintf(&src, "%s/fixtures/host/%s/.", tap_srcdir(), name) < 0 || !cp)
                abort();
        char *argv[] = { cp, (char *) "-a", src, tmpl, NULL };
        char errbuf[256];
        if (exec_run(argv, NULL, errbuf, sizeof errbuf) < 0)
                abort();
        return TAKE_PTR(tmpl);
}

/* Writes text to <root><rel> (parents made), as the kernel's attribute would read. */
static inline void fixture_put(const char *root, const char *rel, const char *text) {
        _cleanup_free_ char *p = root_path(root, rel);
        _cleanup_free_ char *dir = p ? strdup(p) : NULL;
        if (!dir)
                abort();
        *strrchr(dir, '/') = '\0';
        mkdir_p(dir, 0755);
        FILE *f = fopen(p, "we");
        if (!f)
                abort();
        fputs(text, f);
        fclose(f);
}

/* The attribute's value (trimmed), or "(missing)"; malloc'd. */
static inline char *fixture_get(const char *root, const char *rel) {
        char *v = NULL;
        if (root_read_attr(root, rel, &v) < 0)
                return strdup("(missing)");
        return v;
}

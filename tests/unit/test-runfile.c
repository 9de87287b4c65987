/* SPDX-License-Identifier: MIT */
/* src/common/runfile.c: the run dir's small files, written atomically and
 * read only when they are whole, ours, and small; every refusal names the file. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>

#include "tap.h"
#include "cleanup.h"
#include "fileio.h"
#include "runfile.h"
#include "run/run.h"

static char dir[] = "/tmp/phyllome-runfile.XXXXXX";

static char *at(const char *name) {
        char *p = NULL;
        return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

/* Puts raw bytes in a file (as a crash, a disk or a hostile hand might). */
static void put(const char *path, const char *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, data, len) != (ssize_t) len)
                printf("# cannot write %s\n", path);
        if (fd >= 0)
                close(fd);
}

/* A refusal of path by runfile_read (json: runfile_read_json) with code,
 * whose message names the file and says why (want). */
static void refused(const char *path, bool json, size_t max, int code, const char *want, const char *what) {
        phy_error err = { 0 };
        char *text = NULL;
        json_object *o = NULL;
        int r = json ? runfile_read_json(path, max, &o, &err) : runfile_read(path, max, &text, NULL, &err);
        is_int(r, -code, "%s is refused", what);
        ok(strstr(err.message, path) && strstr(err.message, want), "%s: the error names the file and says '%s': %s",
           what, want, err.message);
        ok(!text && !o, "%s: nothing is returned", what);
        free(text);
        json_object_put(o);
}

/* Damaged records: the bytes put in the file, the reader's cap, the refusal. */
struct bad {
        const char *data;
        size_t len, max;
        int code;
        const char *want, *what;
};

static void refuse_each(const char *path, bool json, const struct bad *b) {
        for (; b->data; b++) {
                put(path, b->data, b->len);
                refused(path, json, b->max, b->code, b->want, b->what);
        }
        unlink(path);
}

static void test_text(void) {
        phy_error err = { 0 };
        _cleanup_free_ char *p = at("devices.state"), *text = NULL;
        is_int(runfile_write(p, "0000:01:00.0 nvidia", 0644, &err), 0, "a text record is written");
        size_t len = 0;
        is_int(runfile_read(p, 0, &text, &len, &err), 0, "and read back");
        is_str(text, "0000:01:00.0 nvidia\n", "whole, with the newline the writer added");
        is_int(len, 20, "its length");
        struct stat st;
        ok(stat(p, &st) == 0 && (st.st_mode & 07777) == 0644, "with the mode asked for");
        free(text);
        text = NULL;
        is_int(runfile_write(p, "a\nb\n", 0600, &err), 0, "a record that ends with a newline");
        is_int(runfile_read(p, 0, &text, NULL, &err), 0, "read back");
        is_str(text, "a\nb\n", "gets no second newline");
        /* Nothing but the record is left in the dir: no temporary files. */
        _cleanup_free_ char *cmd = NULL;
        ok(asprintf(&cmd, "test $(ls -A %s | wc -l) = 1", dir) > 0 && system(cmd) == 0, "no temporary file is left");

        _cleanup_free_ char *missing = at("nothing-here");
        phy_error none = { 0 };
        char *t = NULL;
        is_int(runfile_read(missing, 0, &t, NULL, &none), -ENOENT, "a missing record is -ENOENT");
        is_int(none.code, 0, "and no error (none is no news)");

        _cleanup_free_ char *cut = at("cut");
        refuse_each(cut, false, (const struct bad[]) {
                { "0000:01:00.0 nvi", 16, 0, EBADMSG, "cut short", "a record without its final newline (truncated)" },
                { "", 0, 0, EBADMSG, "empty", "an empty record" },
                { "ab\0cd\n", 6, 0, EBADMSG, "NUL byte", "a record with a NUL byte" },
                { "0000:01:00.0 nvidia\n", 20, 8, EFBIG, "larger than 8 bytes", "an oversized record" },
                { .data = NULL } });
        /* The same file under a cap it fits: read. */
        _cleanup_free_ char *big = at("big");
        put(big, "0000:01:00.0 nvidia\n", 20);
        is_int(runfile_read(big, 20, &t, NULL, &err), 0, "a record of just the cap's size is read");
        free(t);
        unlink(big);
}

static void test_json(void) {
        phy_error err = { 0 };
        _cleanup_free_ char *p = at("state.json");
        json_object *o = json_object_new_object(), *back = NULL;
        json_object_object_add(o, "state", json_object_new_string("running"));
        json_object_object_add(o, "qemu_pid", json_object_new_int(42));
        is_int(runfile_write_json(p, o, 0644, &err), 0, "a JSON record is written");
        is_int(runfile_read_json(p, 0, &back, &err), 0, "and read back");
        ok(back && json_object_equal(o, back), "equal to what was written");
        _cleanup_free_ char *text = NULL;
        is_int(runfile_read(p, 0, &text, NULL, &err), 0, "it is also a text record (ends with a newline)");
        json_object_put(o);
        json_object_put(back);

        refuse_each(p, true, (const struct bad[]) {
                { "{\"state\": \"running\", \"qemu_p", 28, 0, EBADMSG, "cut short", "a JSON record cut short" },
                { "", 0, 0, EBADMSG, "empty", "an empty JSON record" },
                { "[1, 2]\n", 7, 0, EBADMSG, "not a JSON object", "a JSON array" },
                { "{} {}\n", 6, 0, EBADMSG, "not a JSON object", "two objects" },
                { "{\"a\": tru}\n", 11, 0, EBADMSG, "not a JSON object", "bad JSON" },
                { "{\"a\":\"\0\"}\n", 10, 0, EBADMSG, "NUL byte", "a JSON record with a NUL byte" },
                { "{}\n", 3, 2, EFBIG, "larger than 2 bytes", "an oversized JSON record" },
                { .data = NULL } });
        unlink(p);
}

static void test_files(void) {
        phy_error err = { 0 };
        _cleanup_free_ char *target = at("elsewhere"), *link = at("link.state"), *sub = at("sub"),
                            *fifo = at("fifo");
        put(target, "not yours\n", 10);
        ok(symlink(target, link) == 0, "a symbolic link in the run dir");
        refused(link, false, 0, EPERM, "symbolic link", "a record that is a symbolic link");
        refused(link, true, 0, EPERM, "symbolic link", "a JSON record that is a symbolic link");
        is_int(runfile_write(link, "ours", 0644, &err), 0, "writing over the link");
        _cleanup_free_ char *t = NULL, *l = NULL;
        ok(runfile_read(target, 0, &t, NULL, &err) == 0 && strcmp(t, "not yours\n") == 0,
           "replaces the link, not the file it pointed to");
        ok(runfile_read(link, 0, &l, NULL, &err) == 0 && strcmp(l, "ours\n") == 0, "the record is a file now");
        ok(mkdir(sub, 0755) == 0, "a directory");
        refused(sub, false, 0, EPERM, "not a regular file", "a directory in a record's place");
        ok(mkfifo(fifo, 0644) == 0, "a FIFO");
        refused(fifo, false, 0, EPERM, "not a regular file", "a FIFO in a record's place (not waited on)");
        if (geteuid() == 0) {
                ok(chown(target, 12345, 12345) == 0, "a file of another uid");
                refused(target, false, 0, EPERM, "not a regular file of uid", "a record of another uid");
        }
        _cleanup_free_ char *nodir = at("no/such/dir/state.json");
        ok(runfile_write(nodir, "x", 0644, &err) < 0 && strstr(err.message, nodir),
           "a write that cannot happen names the file: %s", err.message);
        unlink(target);
        unlink(link);
        unlink(fifo);
        rmdir(sub);
}

/* run/state.c's pending forwards, a record like the others: rewritten
 * whole, keeping this QEMU's lines and dropping an earlier run's. */
static void test_pending_forwards(void) {
        run_forward_pending_add(dir, 100, "tcp:2222:22");
        run_forward_pending_add(dir, 100, "tcp:8080:80");
        ok(run_forward_pending(dir, 100, "tcp:2222:22") && run_forward_pending(dir, 100, "tcp:8080:80"),
           "two forwards pending for QEMU 100");
        ok(!run_forward_pending(dir, 100, "tcp:9999:99"), "another is not");
        run_forward_pending_add(dir, 200, "tcp:3333:33");
        ok(run_forward_pending(dir, 200, "tcp:3333:33") && !run_forward_pending(dir, 100, "tcp:2222:22"),
           "a new QEMU's forward drops the earlier run's");
        _cleanup_free_ char *p = at("forwards.pending"), *text = NULL;
        phy_error err = { 0 };
        is_int(runfile_read(p, 0, &text, NULL, &err), 0, "the file is a whole record");
        is_str(text, "200 tcp:3333:33\n", "holding one line");
        unlink(p);
}

int main(void) {
        if (!mkdtemp(dir))
                return 1;
        test_text();
        test_json();
        test_files();
        test_pending_forwards();
        rm_rf(dir);
        return tap_done();
}

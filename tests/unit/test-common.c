/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "cleanup.h"
#include "error.h"
#include "fileio.h"
#include "strv.h"

static void test_sizes(void) {
        unsigned long long v = 0;
        ok(parse_size("4G", &v) == 0 && v == 4ULL << 30, "4G parses");
        ok(parse_size("512M", &v) == 0 && v == 512ULL << 20, "512M parses");
        ok(parse_size("64GiB", &v) == 0 && v == 64ULL << 30, "64GiB parses");
        ok(parse_size("100", &v) == 0 && v == 100, "plain bytes parse");
        ok(parse_size("4X", &v) == -EINVAL, "unknown unit refused");
        ok(parse_size("-1G", &v) == -EINVAL, "negative refused");
        ok(parse_size("", &v) == -EINVAL, "empty refused");
        ok(parse_size("99999999999999999999", &v) == -ERANGE, "overflow refused");
        ok(parse_size("17179869184T", &v) == -ERANGE, "shift overflow refused");
        char buf[32];
        format_size(4ULL << 30, buf, sizeof buf);
        is_str(buf, "4G", "4 GiB formats as 4G");
        format_size(1536ULL << 20, buf, sizeof buf);
        is_str(buf, "1536M", "1.5 GiB formats as 1536M");
        format_size(1000, buf, sizeof buf);
        is_str(buf, "1000", "1000 bytes stay bytes");
        ok(parse_uint("12", 100, &v) == 0 && v == 12, "uint parses");
        ok(parse_uint("12a", 100, &v) == -EINVAL, "uint junk refused");
        ok(parse_uint("101", 100, &v) == -ERANGE, "uint range checked");
}

static void test_errors(void) {
        phy_error e = { 0 };
        is_int(phy_error_set(&e, ENOENT, "cannot open '%s'", "x"), -ENOENT, "set returns -errno");
        is_str(e.message, "cannot open 'x'", "message formatted");
        phy_error_prefix(&e, "vm '%s'", "a");
        is_str(e.message, "vm 'a': cannot open 'x'", "prefix prepends context");
        is_int(phy_error_set(NULL, -EIO, "x"), -EIO, "NULL error object allowed");
}

static void test_strv(void) {
        _cleanup_strv_ strv s = { 0 };
        strv_push_many(&s, "qemu", "-name", "a b", "it's", NULL);
        strv_pushf(&s, "-m=%d", 5);
        is_int(s.n, 5, "five args");
        ok(s.v[5] == NULL, "NULL terminated");
        _cleanup_free_ char *j = strv_join(&s, NULL);
        is_str(j, "qemu -name 'a b' 'it'\\''s' -m=5", "shell-quoted join");
        ok(strv_contains(&s, "-name") && !strv_contains(&s, "x"), "contains");
        strv_push(&s, "-name");
        is_int(strv_remove(&s, "-name"), 2, "remove takes every copy");
        strv_remove_at(&s, 0);
        _cleanup_free_ char *k = strv_join(&s, " ");
        is_str(k, "a b it's -m=5", "remove_at closes the gap");
        ok(s.n == 3 && s.v[3] == NULL, "still NULL terminated");
}

static void test_files(void) {
        char dir[] = "/tmp/phyllome-test-XXXXXX";
        ok(mkdtemp(dir) != NULL, "tempdir");
        _cleanup_free_ char *p = NULL;
        _cleanup_free_ char *sub = NULL;
        asprintf(&p, "%s/a/b/c", dir);
        ok(mkdir_p(p, 0755) == 0, "mkdir -p");
        asprintf(&sub, "%s/a/file", dir);
        phy_error e = { 0 };
        ok(file_write_atomic(sub, "hello\n", 6, 0600, &e) == 0, "atomic write");
        struct stat st;
        ok(stat(sub, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 6, "mode and size");
        _cleanup_free_ char *attr = NULL;
        _cleanup_free_ char *rel = NULL;
        asprintf(&rel, "/a/file");
        ok(root_read_attr(dir, rel, &attr) == 0, "read through root prefix");
        is_str(attr, "hello", "attribute stripped");
        ok(root_exists(dir, "/a/b/c") && !root_exists(dir, "/nope"), "exists through root");
        _cleanup_free_ char *bad = NULL;
        asprintf(&bad, "%s/missing/dir/file", dir);
        ok(file_write_atomic(bad, "x", 1, 0644, &e) == -ENOENT, "write into missing dir fails");
        ok(strstr(e.message, bad) != NULL, "error names the file");
        _cleanup_free_ char *rp = root_path("/fix/", "/sys/x");
        is_str(rp, "/fix/sys/x", "root_path joins");
        free(rp);
        rp = root_path("/", "/sys/x");
        is_str(rp, "/sys/x", "root / is the host");
        ok(rm_rf(dir) == 0 && access(dir, F_OK) < 0, "rm -rf");
}

int main(void) {
        test_sizes();
        test_errors();
        test_strv();
        test_files();
        return tap_done();
}

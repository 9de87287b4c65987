/* SPDX-License-Identifier: MIT */
/* src/store without QEMU: the bundle member names, running a tool, tree copies. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "store/store.h"
#include "store/store-internal.h"
#include "tap.h"

static void test_member_names(void) {
        static const char *const good[] = { "vm.conf", "manifest.json", "disk-system.qcow2", "disk-a.b_c-d.raw",
                                            "OVMF_VARS.fd", "tpm/tpm2-00.permall", "tpm/.lock" };
        static const char *const bad[] = { "", "/etc/passwd", "../x", "..", ".", "tpm/../vm.conf", "tpm/..", "tpm/.",
                                           "tpm/", "a/b", "tpm/a/b", "disk x", "vm.conf\t", "tpm//x", "x\\y" };
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                ok(store_bundle_member_name_ok(good[i]), "member name '%s' is accepted", good[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ok(!store_bundle_member_name_ok(bad[i]), "member name '%s' is refused", bad[i]);
        char longname[300];
        memset(longname, 'a', sizeof longname - 1);
        longname[sizeof longname - 1] = '\0';
        ok(!store_bundle_member_name_ok(longname), "a 299-character member name is refused");
}

static void test_run(void) {
        char errbuf[256];
        _cleanup_free_ char *out = NULL;
        char *echo[] = { "/bin/echo", "hello", "world", NULL };
        is_int(store_run(echo, &out, errbuf, sizeof errbuf), 0, "store_run: echo exits 0");
        is_str(out, "hello world\n", "store_run: stdout captured");
        char *ls[] = { "/bin/ls", "/nonexistent-phyllome-path", NULL };
        is_int(store_run(ls, NULL, errbuf, sizeof errbuf), -EIO, "store_run: a failing tool gives -EIO");
        ok(strstr(errbuf, "nonexistent-phyllome-path") != NULL, "store_run: its stderr is kept (%s)", errbuf);
        ok(errbuf[strlen(errbuf) - 1] != '\n', "store_run: the trailing newline of stderr is trimmed");
        char *none[] = { "/nonexistent/qemu-img", NULL };
        is_int(store_run(none, NULL, errbuf, sizeof errbuf), -ENOEXEC, "store_run: a missing program gives -ENOEXEC");
        /* More output than a pipe holds, on both streams: no deadlock, stderr capped. */
        char *big[] = { "/usr/bin/head", "-c", "300000", "/dev/zero", NULL };
        free(out);
        out = NULL;
        char small[8];
        is_int(store_run(big, &out, small, sizeof small), 0, "store_run: 300 kB of output");
        phy_error err = { 0 };
        is_int(store_qemu_img("/nonexistent/qemu-img", "the disk image 'x'", none, NULL, &err), -ENOEXEC,
               "store_qemu_img: a missing qemu-img");
        ok(strstr(err.message, "install qemu-utils") != NULL, "store_qemu_img: the message says what to install");
}

static void test_copy_tree(void) {
        char tmpl[] = "/tmp/test-store.XXXXXX";
        ok(mkdtemp(tmpl) != NULL, "temp dir");
        _cleanup_free_ char *src = NULL, *dst = NULL, *f = NULL, *g = NULL, *sub = NULL, *back = NULL;
        ok(asprintf(&src, "%s/src", tmpl) > 0 && asprintf(&dst, "%s/dst", tmpl) > 0 &&
           asprintf(&sub, "%s/src/sub", tmpl) > 0 && asprintf(&f, "%s/src/a", tmpl) > 0 &&
           asprintf(&g, "%s/src/sub/b", tmpl) > 0, "paths");
        mkdir(src, 0700);
        mkdir(sub, 0750);
        phy_error err = { 0 };
        ok(file_write_atomic(f, "alpha", 5, 0600, &err) == 0 && file_write_atomic(g, "beta", 4, 0640, &err) == 0, "files");
        is_int(store_copy_tree(src, dst, &err), 0, "copy_tree: a tree with a subdirectory");
        _cleanup_free_ char *t1 = NULL, *t2 = NULL, *p1 = NULL, *p2 = NULL;
        ok(asprintf(&p1, "%s/a", dst) > 0 && asprintf(&p2, "%s/sub/b", dst) > 0, "paths");
        ok(file_read_all(p1, 0, &t1, NULL) == 0 && strcmp(t1, "alpha") == 0, "copy_tree: file content");
        ok(file_read_all(p2, 0, &t2, NULL) == 0 && strcmp(t2, "beta") == 0, "copy_tree: nested file content");
        struct stat st;
        ok(stat(p2, &st) == 0 && (st.st_mode & 07777) == 0640, "copy_tree: the mode is kept");
        is_int(store_copy_tree(src, dst, &err), -EEXIST, "copy_tree: an existing target is refused");
        ok(stat(p1, &st) == 0, "copy_tree: ...and the existing target is left alone");
        ok(asprintf(&back, "%s/link", src) > 0 && symlink("/etc/passwd", back) == 0, "a symlink in the source");
        _cleanup_free_ char *dst2 = NULL;
        ok(asprintf(&dst2, "%s/dst2", tmpl) > 0, "path");
        is_int(store_copy_tree(src, dst2, &err), -EINVAL, "copy_tree: a symlink is refused");
        ok(strstr(err.message, "link") != NULL, "copy_tree: the message names it (%s)", err.message);
        ok(access(dst2, F_OK) < 0, "copy_tree: a failed copy leaves nothing");
        rm_rf(tmpl);
}

int main(void) {
        test_member_names();
        test_run();
        test_copy_tree();
        return tap_done();
}

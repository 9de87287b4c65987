/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "cleanup.h"
#include "error.h"
#include "exec.h"
#include "fileio.h"
#include "sock.h"
#include "strv.h"
#include "value.h"

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
        /* Issue 19: 10GB, 8gb, 8G, 8GiB are the same; a bare number a user
         * types is MiB of memory, GiB of disk. */
        static const char *const eights[] = { "8G", "8g", "8GB", "8gb", "8Gb", "8GiB", "8gib", "8GIB" };
        for (size_t i = 0; i < sizeof eights / sizeof eights[0]; i++) {
                v = 0;
                ok(parse_size(eights[i], &v) == 0 && v == 8ULL << 30, "%s is 8 GiB", eights[i]);
        }
        ok(parse_size("512B", &v) == 0 && v == 512, "512B is bytes");
        ok(parse_size("8Bi", &v) == -EINVAL, "8Bi refused");
        ok(parse_size("8GBB", &v) == -EINVAL, "8GBB refused");
        ok(parse_size_unit("2048", SIZE_MIB, &v) == 0 && v == 2048ULL << 20, "a bare 2048 of memory is 2 GiB");
        ok(parse_size_unit("20", SIZE_GIB, &v) == 0 && v == 20ULL << 30, "a bare 20 of disk is 20 GiB");
        ok(parse_size_unit("10GB", SIZE_MIB, &v) == 0 && v == 10ULL << 30, "a unit wins over the bare one");
        ok(parse_size_unit("4096B", SIZE_GIB, &v) == 0 && v == 4096, "B says bytes");
        ok(parse_size_unit("17179869184", SIZE_GIB, &v) == -ERANGE, "a bare number's overflow refused");
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

/* The exit status and the HTTP status derive from the kind, not the errno. */
static void test_error_kinds(void) {
        static const struct {
                int code;
                enum phy_error_kind kind;
                int exit, http;
                const char *name;
        } byerrno[] = {
                { ENOENT, PHY_ERR_NOT_FOUND, 1, 404, "not-found" },
                { EEXIST, PHY_ERR_CONFLICT, 1, 409, "conflict" },
                { EBUSY, PHY_ERR_CONFLICT, 1, 409, "conflict" },
                { EPERM, PHY_ERR_PERMISSION, 1, 403, "permission" },
                { EACCES, PHY_ERR_PERMISSION, 1, 403, "permission" },
                { EOPNOTSUPP, PHY_ERR_UNSUPPORTED, 1, 405, "unsupported" },
                { E2BIG, PHY_ERR_TOO_LARGE, 1, 413, "too-large" },
                { ETIMEDOUT, PHY_ERR_TIMEOUT, 1, 504, "timeout" },
                { ENOMEM, PHY_ERR_INTERNAL, 1, 500, "internal" },
                /* A kernel's EINVAL (or ERANGE) is the system failing, not the user's mistake. */
                { EINVAL, PHY_ERR_HOST, 1, 500, "host" },
                { ERANGE, PHY_ERR_HOST, 1, 500, "host" },
                { EIO, PHY_ERR_HOST, 1, 500, "host" },
        };
        for (size_t i = 0; i < ELEMENTSOF(byerrno); i++) {
                phy_error e = { 0 };
                phy_error_set(&e, byerrno[i].code, "x");
                is_int(e.kind, byerrno[i].kind, "errno %d: kind %s", byerrno[i].code, byerrno[i].name);
                is_int(phy_error_exit_status(&e), byerrno[i].exit, "errno %d: exit %d", byerrno[i].code, byerrno[i].exit);
                is_int(phy_error_http_status(&e), byerrno[i].http, "errno %d: HTTP %d", byerrno[i].code, byerrno[i].http);
                is_str(phy_error_kind_name(e.kind), byerrno[i].name, "kind name %s", byerrno[i].name);
                is_int(phy_error_kind_from_name(byerrno[i].name), byerrno[i].kind, "name %s reads back", byerrno[i].name);
        }
        phy_error e = { 0 };
        is_int(phy_error_usage(&e, "invalid VM name '%s'", "a/b"), -EINVAL, "usage error returns -EINVAL");
        is_int(phy_error_exit_status(&e), 2, "usage error: exit 2");
        is_int(phy_error_http_status(&e), 400, "usage error: HTTP 400");
        phy_error_prefix(&e, "vm.conf");
        is_int(e.kind, PHY_ERR_USAGE, "prefix keeps the kind");
        is_int(phy_error_set_kind(&e, PHY_ERR_NOT_FOUND, EINVAL, "no such snapshot"), -EINVAL, "explicit kind");
        is_int(phy_error_http_status(&e), 404, "explicit kind wins over the errno");
        is_int(phy_error_kind_from_name("bogus"), PHY_ERR_NONE, "unknown kind name");

        /* An error returned bare (return -ENOMEM) still says something. */
        phy_error empty = { 0 };
        ok(strcmp(phy_error_message(&empty), "") != 0 && !strstr(phy_error_message(&empty), "unknown error"),
           "an unset error has a message: %s", phy_error_message(&empty));
        is_int(phy_error_exit_status(&empty), 1, "an unset error is not a usage error");
        is_int(phy_error_http_status(&empty), 500, "an unset error is a 500");
        is_int(phy_error_from(&empty, -ENOMEM), -ENOMEM, "from a bare -ENOMEM");
        is_str(empty.message, "out of memory", "a bare -ENOMEM says out of memory");
        is_int(empty.kind, PHY_ERR_INTERNAL, "out of memory is internal");
        phy_error kept = { 0 };
        phy_error_set(&kept, ENOENT, "no VM named 'x'");
        is_int(phy_error_from(&kept, -ENOMEM), -ENOENT, "from keeps an error already set");
        is_str(kept.message, "no VM named 'x'", "its message too");
        phy_error bare = { 0 };
        phy_error_prefix(&bare, "VM 'x'");
        ok(strncmp(bare.message, "VM 'x': ", 8) == 0 && bare.message[8], "prefix of an unset error: %s", bare.message);
        is_int(phy_error_exit_status(&bare), 1, "prefix of an unset error is not a usage error");
        phy_error nomsg = { .code = ENOMEM };
        is_str(phy_error_message(&nomsg), "out of memory", "ENOMEM without a message says out of memory");
}

/* src/common/value.c: the syntax both the definition and the devices use. */
static void test_values(void) {
        ok(value_pci_addr_valid("0000:01:00.0", true), "PCI address");
        ok(value_pci_addr_valid("0000:0A:00.7", false) && !value_pci_addr_valid("0000:0A:00.7", true),
           "upper-case hex only where allowed");
        ok(!value_pci_addr_valid("0000:01:00.8", false) && !value_pci_addr_valid("0000:01:00", false) &&
           !value_pci_addr_valid("0000:01:0g.0", false), "bad PCI addresses refused");
        ok(value_uuid_valid("2f1e6b7a-3c1d-4e8f-9a0b-1c2d3e4f5a6b", true), "UUID");
        ok(value_uuid_valid("2F1E6B7A-3C1D-4E8F-9A0B-1C2D3E4F5A6B", false) &&
           !value_uuid_valid("2F1E6B7A-3C1D-4E8F-9A0B-1C2D3E4F5A6B", true), "upper-case UUID only where allowed");
        ok(!value_uuid_valid("2f1e6b7a3c1d-4e8f-9a0b-1c2d3e4f5a6b-", false), "misplaced dashes refused");
        ok(value_usb_id_valid("046d:c52b") && value_usb_id_valid("3-1.4") && !value_usb_id_valid("1-"),
           "USB ids");
        struct value_forward f;
        ok(value_forward_parse("tcp:2222:22", &f) == 0 && f.host_port == 2222 && f.guest_port == 22 &&
           strcmp(value_forward_addr(&f), "127.0.0.1") == 0, "forward");
        ok(value_forward_parse("udp:10.0.0.1:53:53", &f) == 0 && strcmp(value_forward_addr(&f), "10.0.0.1") == 0,
           "forward with an address");
        ok(value_forward_parse("tcp:0:22", NULL) < 0 && value_forward_parse("sctp:1:2", NULL) < 0 &&
           value_forward_parse("tcp:1.2.3:1:2", NULL) < 0, "bad forwards refused");
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

/* exec_spawn's setup: marks that it ran (in the caller's memory when the
 * child shares it), and fails when asked to. */
struct spawn_probe {
        volatile int ran;
        int fail;
};

static int probe_setup(void *data) {
        struct spawn_probe *p = data;
        p->ran = 1;
        return p->fail ? -1 : 0;
}

/* Runs s (its log_fd a pipe of ours): the exit status and the first
 * bytes of what the program wrote to stdout and stderr. */
static int spawn_read(struct exec_spawn *s, char *out, size_t outlen) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        s->log_fd = p[1];
        phy_error err = { 0 };
        pid_t pid = -1;
        int r = exec_spawn(s, &pid, &err);
        close(p[1]);
        size_t n = 0;
        ssize_t k;
        while (r == 0 && n + 1 < outlen && (k = read(p[0], out + n, outlen - 1 - n)) > 0)
                n += (size_t) k;
        out[n] = '\0';
        close(p[0]);
        int st = -1;
        if (r == 0)
                while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                        ;
        return r < 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 256;
}

/* Spawns argv with exec_spawn (share_vm as given), keeping keep_fd. */
static int spawn_capture(char *const *argv, bool share_vm, struct spawn_probe *probe, int keep_fd, char *out,
                         size_t outlen) {
        const int keep[] = { keep_fd };
        struct exec_spawn s = { .argv = argv, .keep = keep, .n_keep = keep_fd >= 0 ? 1 : 0,
                                .setup = probe ? probe_setup : NULL, .data = probe, .setup_error = "probe setup failed",
                                .share_vm = share_vm };
        return spawn_read(&s, out, outlen);
}

static void test_spawn(void) {
        char out[4096];
        for (int share = 0; share < 2; share++) {
                const char *how = share ? "shared memory (vfork-style)" : "fork";
                char *echo[] = { (char *) "/bin/echo", (char *) "hello", NULL };
                struct spawn_probe probe = { 0 };
                is_int(spawn_capture(echo, share, &probe, -1, out, sizeof out), 0, "%s: /bin/echo exits 0", how);
                is_str(out, "hello\n", "%s: its stdout is the log fd", how);
                /* The proof that the child ran on our memory: its setup's
                 * mark is ours to see (a forked child's is its own copy). */
                is_int(probe.ran, share, "%s: the setup's write %s the caller", how, share ? "reaches" : "does not reach");

                /* A kept fd is inherited at its number; another O_CLOEXEC one is not. */
                int kp[2], other[2];
                if (pipe2(kp, O_CLOEXEC) < 0 || pipe2(other, O_CLOEXEC) < 0)
                        abort();
                char *ls[] = { (char *) "/bin/ls", (char *) "/proc/self/fd", NULL };
                is_int(spawn_capture(ls, share, NULL, kp[1], out, sizeof out), 0, "%s: ls /proc/self/fd", how);
                char want[16], not[16];
                snprintf(want, sizeof want, "\n%d\n", kp[1]);
                snprintf(not, sizeof not, "\n%d\n", other[1]);
                ok(strstr(out, want) && !strstr(out, not), "%s: fd %d kept, fd %d closed at exec: %s", how, kp[1],
                   other[1], out);
                close(kp[0]), close(kp[1]), close(other[0]), close(other[1]);

                /* A failing setup: status 126 and its line in the log. */
                probe = (struct spawn_probe) { .fail = 1 };
                is_int(spawn_capture(echo, share, &probe, -1, out, sizeof out), 126, "%s: a failed setup exits 126", how);
                is_str(out, "probe setup failed\n", "%s: and says why in the log", how);

                /* A program that cannot run: 127. */
                char *none[] = { (char *) "/nonexistent/program", NULL };
                is_int(spawn_capture(none, share, NULL, -1, out, sizeof out), 127, "%s: a missing program exits 127", how);
                is_str(out, "cannot execute the program\n", "%s: and says so", how);

                /* The caller's signal mask is as it was. */
                sigset_t before, after;
                sigemptyset(&before);
                sigaddset(&before, SIGTERM);
                sigprocmask(SIG_BLOCK, &before, NULL);
                sigprocmask(SIG_BLOCK, NULL, &before);
                (void) spawn_capture(echo, share, NULL, -1, out, sizeof out);
                sigemptyset(&after);
                sigprocmask(SIG_BLOCK, NULL, &after);
                bool same = true;
                for (int sig = 1; sig < 32; sig++)
                        same = same && sigismember(&before, sig) == sigismember(&after, sig);
                ok(same && sigismember(&after, SIGTERM) == 1, "%s: the caller's signal mask is unchanged", how);
                sigprocmask(SIG_UNBLOCK, &before, NULL);
        }
}

/* env_clean: a fixed PATH, HOME, what is kept of ours (the locale), none
 * of the rest; env_add's variables after it, each replacing a kept one of
 * its name.  Runs last: it clears this process's environment. */
static void test_spawn_env(void) {
        char out[4096];
        clearenv();
        setenv("LANG", "de_DE.UTF-8", 1);
        setenv("LC_TIME", "C", 1);
        setenv("PHY_TEST_SECRET", "s3cret", 1);
        setenv("GLIBC_TUNABLES", "glibc.malloc.check=3", 1);
        static const char *const add[] = { "GLIBC_TUNABLES=glibc.malloc.hugetlb=1", "LANG=C.UTF-8", NULL };
        for (int share = 0; share < 2; share++) {
                char *env[] = { (char *) "/usr/bin/env", NULL };
                struct exec_spawn s = { .argv = env, .share_vm = share, .env_clean = true, .env_home = "/vm",
                                        .env_add = add };
                is_int(spawn_read(&s, out, sizeof out), 0, "%s: env exits 0", share ? "shared memory" : "fork");
                is_str(out,
                       "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOME=/vm\nLC_TIME=C\n"
                       "GLIBC_TUNABLES=glibc.malloc.hugetlb=1\nLANG=C.UTF-8\n",
                       "%s: the child's environment is ours cleaned, then env_add's (each one of a name)",
                       share ? "shared memory" : "fork");
        }
}

/* exec_find_in_path takes absolute $PATH entries only: a program planted
 * in the working directory ("." or "bin" in $PATH) is not found. */
static void test_find_in_path(void) {
        char dir[] = "/tmp/phyllome-test-XXXXXX";
        ok(mkdtemp(dir) != NULL, "tempdir");
        _cleanup_free_ char *bin = NULL, *prog = NULL, *path = NULL;
        asprintf(&bin, "%s/bin", dir);
        asprintf(&prog, "%s/bin/phyllome-planted", dir);
        asprintf(&path, ".:bin:%s", bin);
        phy_error e = { 0 };
        ok(mkdir_p(bin, 0755) == 0 && file_write_atomic(prog, "#!/bin/sh\n", 10, 0755, &e) == 0, "a program in bin/");
        char cwd[4096];
        ok(getcwd(cwd, sizeof cwd) != NULL && chdir(bin) == 0, "the working directory is bin/");
        const char *old = getenv("PATH");
        _cleanup_free_ char *saved = old ? strdup(old) : NULL;
        setenv("PATH", ".:bin", 1);
        _cleanup_free_ char *rel = exec_find_in_path("phyllome-planted");
        ok(rel == NULL, "PATH=.:bin does not find ./phyllome-planted");
        ok(chdir(dir) == 0, "the working directory is its parent");
        _cleanup_free_ char *rel2 = exec_find_in_path("phyllome-planted");
        ok(rel2 == NULL, "nor bin/phyllome-planted");
        setenv("PATH", path, 1);
        _cleanup_free_ char *abs = exec_find_in_path("phyllome-planted");
        is_str(abs, prog, "an absolute entry after them finds it, by its absolute path");
        /* A directory of the program's name passes access(X_OK): it is not
         * the program, and the walk goes on. */
        _cleanup_free_ char *shadow = NULL, *shadow_prog = NULL, *path2 = NULL;
        asprintf(&shadow, "%s/shadow", dir);
        asprintf(&shadow_prog, "%s/shadow/phyllome-planted", dir);
        asprintf(&path2, "%s:%s", shadow, bin);
        ok(mkdir_p(shadow_prog, 0755) == 0, "a directory named phyllome-planted earlier in PATH");
        setenv("PATH", path2, 1);
        _cleanup_free_ char *past = exec_find_in_path("phyllome-planted");
        is_str(past, prog, "the walk passes the directory and finds the program after it");
        /* The usual places after $PATH (a service's PATH may be minimal). */
        setenv("PATH", shadow, 1);
        _cleanup_free_ char *none = exec_find_in_path("phyllome-planted");
        _cleanup_free_ char *also = exec_find_in_dirs("phyllome-planted", bin);
        ok(none == NULL, "not in PATH: exec_find_in_path finds nothing");
        is_str(also, prog, "exec_find_in_dirs looks in its extra directories after PATH");
        if (saved)
                setenv("PATH", saved, 1);
        else
                unsetenv("PATH");
        ok(chdir(cwd) == 0 && rm_rf(dir) == 0, "cleaned up");
}

/* sock_bind_unix: the socket file's mode is the one asked for at the bind
 * itself, under any umask (0 here: a plain bind makes it any uid's), and the
 * caller's umask is back after it. */
static void test_sock_bind(void) {
        char dir[] = "/tmp/phyllome-test-sock.XXXXXX";
        if (!ok(mkdtemp(dir), "temporary dir"))
                return;
        mode_t old = umask(0);
        for (int i = 0; i < 2; i++) {
                mode_t want = i ? 0660 : 0600;
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                snprintf(sa.sun_path, sizeof sa.sun_path, "%s/s%d", dir, i);
                _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                struct stat st;
                ok(fd >= 0 && sock_bind_unix(fd, &sa, want) == 0 && stat(sa.sun_path, &st) == 0 &&
                   (st.st_mode & 0777) == want, "bound under umask 0: mode %o", (unsigned) want);
                mode_t now = umask(0);
                is_int(now, 0, "the caller's umask is back after the bind");
                int r = sock_bind_unix(fd, &sa, want);
                ok(r == -EINVAL || r == -EADDRINUSE, "a second bind: -errno (%d)", r);
        }
        umask(old);
        rm_rf(dir);
}

int main(void) {
        test_sizes();
        test_sock_bind();
        test_spawn();
        test_errors();
        test_error_kinds();
        test_values();
        test_strv();
        test_files();
        test_find_in_path();
        test_spawn_env();
        return tap_done();
}

/* SPDX-License-Identifier: MIT */
/* src/net: forward syntax, the taken-port check, new MACs for clones, the
 * shared-directory refusals. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "net/net.h"
#include "tap.h"
#include "vm/vm.h"

static void test_parse(void) {
        struct net_forward f;
        is_int(net_forward_parse("tcp:2222:22", &f), 0, "tcp:2222:22 parses");
        is_str(f.proto, "tcp", "protocol");
        is_str(net_forward_addr(&f), "127.0.0.1", "no address means loopback");
        is_int(f.host_port, 2222, "host port");
        is_int(f.guest_port, 22, "guest port");
        is_int(net_forward_parse("udp:192.168.1.5:5353:53", &f), 0, "an address may come first");
        is_str(net_forward_addr(&f), "192.168.1.5", "the given address");
        _cleanup_free_ char *h = net_forward_hostfwd(&f);
        is_str(h, "udp:192.168.1.5:5353-:53", "slirp hostfwd rule");
        static const char *const bad[] = { "tcp:80", "sctp:1:2", "tcp:0:22", "tcp:70000:22", "tcp:022:22",
                                           "tcp:host:1:2", "tcp:1.2.3:1:2", "tcp::22", "tcp:1:2:3:4", "" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                is_int(net_forward_parse(bad[i], NULL), -EINVAL, "'%s' is refused", bad[i]);
}

static void test_port_check(void) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET };
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        socklen_t n = sizeof sa;
        ok(fd >= 0 && bind(fd, (struct sockaddr *) &sa, sizeof sa) == 0 && listen(fd, 1) == 0 &&
           getsockname(fd, (struct sockaddr *) &sa, &n) == 0, "a loopback listener to collide with");
        char spec[64];
        snprintf(spec, sizeof spec, "tcp:%u:80", ntohs(sa.sin_port));
        phy_error err = { 0 };
        is_int(net_forward_check_free(spec, &err), -EADDRINUSE, "a taken port is refused");
        char want[64];
        snprintf(want, sizeof want, "host port %u (tcp on 127.0.0.1)", ntohs(sa.sin_port));
        ok(strstr(err.message, want) != NULL, "the message names the port: %s", err.message);
        close(fd);
        phy_error_clear(&err);
        is_int(net_forward_check_free(spec, &err), 0, "free once the listener is gone");
}

static void test_macs(void) {
        struct vm_def d = { 0 };
        struct vm_nic nics[2] = { { .mac = "52:54:00:00:00:01" }, { .mac = "52:54:00:00:00:02" } };
        d.nics = nics;
        d.n_nics = 2;
        phy_error err = { 0 };
        is_int(net_new_macs(&d, &err), 0, "new MACs");
        ok(strcmp(nics[0].mac, "52:54:00:00:00:01") != 0 && strcmp(nics[1].mac, "52:54:00:00:00:02") != 0,
           "each NIC's MAC changed (%s, %s)", nics[0].mac, nics[1].mac);
        ok(strcmp(nics[0].mac, nics[1].mac) != 0, "and they differ");
        ok(strncmp(nics[0].mac, "52:54:00:", 9) == 0 && strlen(nics[0].mac) == 17, "in QEMU's 52:54:00 range");
}

static void test_share_dirs(void) {
        char tmpl[] = "/tmp/phyllome-test-net.XXXXXX";
        ok(mkdtemp(tmpl) != NULL, "a scratch dir");
        char home[128], inside[160], outside[128], file[128];
        snprintf(home, sizeof home, "%s/home", tmpl);
        snprintf(inside, sizeof inside, "%s/home/vms", tmpl);
        snprintf(outside, sizeof outside, "%s/data", tmpl);
        snprintf(file, sizeof file, "%s/file", tmpl);
        mkdir(home, 0700);
        mkdir(inside, 0700);
        mkdir(outside, 0700);
        FILE *f = fopen(file, "we");
        if (f)
                fclose(f);
        phy_error err = { 0 };
        is_int(net_share_check_dir(outside, home, &err), 0, "a directory outside the home is fine");
        is_int(net_share_check_dir("/", home, &err), -EPERM, "/ is refused");
        phy_error_clear(&err);
        is_int(net_share_check_dir(inside, home, &err), -EPERM, "a directory inside the home is refused");
        ok(strstr(err.message, "is inside the Phyllome home") != NULL, "says why: %s", err.message);
        phy_error_clear(&err);
        is_int(net_share_check_dir(tmpl, home, &err), -EPERM, "a directory containing the home is refused");
        phy_error_clear(&err);
        is_int(net_share_check_dir(file, home, &err), -ENOTDIR, "a file is refused");
        phy_error_clear(&err);
        char missing[160];
        snprintf(missing, sizeof missing, "%s/nope", tmpl);
        is_int(net_share_check_dir(missing, home, &err), -ENOENT, "a missing directory is refused");
        unlink(file);
        rmdir(inside);
        rmdir(home);
        rmdir(outside);
        rmdir(tmpl);
}

int main(void) {
        test_parse();
        test_port_check();
        test_macs();
        test_share_dirs();
        return tap_done();
}

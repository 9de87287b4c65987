/* SPDX-License-Identifier: MIT */
/* src/net: forward syntax, the taken-port check, new MACs for clones, the
 * shared-directory refusals. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <json-c/json.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "net/net.h"
#include "replay.h"
#include "tap.h"
#include "vm/vm.h"
#include "value.h"
#include "qemu/argv.h"

static void test_parse(void) {
        struct value_forward f;
        is_int(value_forward_parse("tcp:2222:22", &f), 0, "tcp:2222:22 parses");
        is_str(f.proto, "tcp", "protocol");
        is_str(value_forward_addr(&f), "127.0.0.1", "no address means loopback");
        is_int(f.host_port, 2222, "host port");
        is_int(f.guest_port, 22, "guest port");
        is_int(value_forward_parse("udp:192.168.1.5:5353:53", &f), 0, "an address may come first");
        is_str(value_forward_addr(&f), "192.168.1.5", "the given address");
        _cleanup_free_ char *h = qemu_hostfwd(&f);
        is_str(h, "udp:192.168.1.5:5353-:53", "slirp hostfwd rule");
        static const char *const bad[] = { "tcp:80", "sctp:1:2", "tcp:0:22", "tcp:70000:22", "tcp:022:22",
                                           "tcp:host:1:2", "tcp:1.2.3:1:2", "tcp::22", "tcp:1:2:3:4", "" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                is_int(value_forward_parse(bad[i], NULL), -EINVAL, "'%s' is refused", bad[i]);
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

static void test_def_edits(void) {
        _cleanup_vm_def_ struct vm_def d = { 0 };
        phy_error err = { 0 };
        snprintf(d.name, sizeof d.name, "vm1");
        is_int(net_def_forward_add(&d, NULL, "tcp:2222:22", &err), -ENOENT, "no NIC: a forward is refused");
        phy_error_clear(&err);
        is_int(net_def_nic_add(&d, "net0", VM_NIC_UNSET, &err), 0, "a NIC is added");
        ok(d.n_nics == 1 && strncmp(d.nics[0].mac, "52:54:00:", 9) == 0, "with a locally administered MAC: %s",
           d.n_nics ? d.nics[0].mac : "");
        is_int(net_def_nic_add(&d, "net0", VM_NIC_UNSET, &err), -EEXIST, "a second NIC of that name is refused");
        phy_error_clear(&err);
        is_int(net_def_nic_add(&d, "net1", VM_NIC_E1000E, &err), 0, "a second NIC");
        ok(strcmp(d.nics[0].mac, d.nics[1].mac) != 0, "with another MAC");
        is_int(net_def_forward_add(&d, NULL, "tcp:2222:22", &err), 0, "a forward on the first NIC");
        is_int((int) d.nics[0].forwards.n, 1, "stored on net0");
        is_int(net_def_forward_add(&d, "net1", "tcp:127.0.0.1:2222:80", &err), -EEXIST,
               "the same listener on another NIC is a duplicate");
        ok(strstr(err.message, "host port 2222") != NULL, "the refusal names the port: %s", err.message);
        phy_error_clear(&err);
        is_int(net_def_forward_add(&d, "net1", "udp:2222:22", &err), 0, "udp on the same port is another listener");
        is_int(net_def_forward_add(&d, "net9", "tcp:1:2", &err), -ENOENT, "an unknown NIC is refused");
        phy_error_clear(&err);
        is_int(net_def_forward_add(&d, NULL, "tcp:22", &err), -EINVAL, "a bad forward is refused");
        phy_error_clear(&err);
        is_int(net_def_forward_remove(&d, NULL, "tcp:2222:23", &err), -ENOENT, "removing another guest port fails");
        phy_error_clear(&err);
        is_int(net_def_forward_remove(&d, NULL, "tcp:127.0.0.1:2222:22", &err), 0,
               "the explicit loopback form removes the forward");
        is_int((int) d.nics[0].forwards.n, 0, "it is gone");
        json_object *j = net_nics_to_json(&d);
        is_str(json_object_get_string(json_object_object_get(json_object_array_get_idx(j, 1), "model")), "e1000e",
               "status JSON: the model");
        is_str(json_object_get_string(json_object_object_get(json_object_array_get_idx(j, 1), "mode")), "user",
               "status JSON: the mode");
        json_object_put(j);
        is_int(net_def_nic_remove(&d, "net0", &err), 0, "a NIC is removed");
        ok(d.n_nics == 1 && strcmp(d.nics[0].name, "net1") == 0, "the other stays");

        char tmpl[] = "/tmp/phyllome-test-share-XXXXXX";
        ok(mkdtemp(tmpl) != NULL, "a directory to share");
        is_int(net_def_share_add(&d, "bad tag", tmpl, false, VM_SHARE_UNSET, NULL, &err), -EINVAL,
               "a tag with a space is refused");
        phy_error_clear(&err);
        is_int(net_def_share_add(&d, "data", "/", false, VM_SHARE_UNSET, NULL, &err), -EPERM, "/ is refused at add");
        phy_error_clear(&err);
        is_int(net_def_share_add(&d, "data", tmpl, true, VM_SHARE_9P, NULL, &err), 0, "a share is added");
        ok(d.n_shares == 1 && d.shares[0].readonly && d.shares[0].type == VM_SHARE_9P, "read-only, 9p");
        is_int(net_def_share_add(&d, "data", tmpl, false, VM_SHARE_UNSET, NULL, &err), -EEXIST,
               "a tag in use is refused");
        phy_error_clear(&err);
        is_int(net_shares_check(&d, NULL, &err), 0, "the start check passes while the directory exists");
        rmdir(tmpl);
        is_int(net_shares_check(&d, NULL, &err), -ENOENT, "and fails once it is gone");
        ok(strstr(err.message, "share 'data'") != NULL, "naming the share: %s", err.message);
        phy_error_clear(&err);
        is_int(net_def_share_remove(&d, "data", &err), 0, "the share is removed");
        is_int(net_def_share_remove(&d, "data", &err), -ENOENT, "twice fails");
}

/* ---- the guest agent against replayed sessions (tests/fixtures/qmp/qga-*) ----
 * Directives as in test-qmp.c, plus CFF/SFF: the client's / the agent's 0xFF
 * delimiter byte.  $ID is the id of the client's guest-sync-delimited. */
static int agent_fd = -1;

static void agent_fail(const char *what) {
        dprintf(1, "# fake agent: %s\n", what);
        _exit(1);
}

static int agent_getc(void) {
        unsigned char c;
        ssize_t n;
        while ((n = read(agent_fd, &c, 1)) < 0 && errno == EINTR)
                ;
        return n == 1 ? c : -1;
}

static void agent_run(char *script) {
        char id[32] = "";
        alarm(20);
        char *save = NULL;
        for (char *line = strtok_r(script, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (line[0] == '#' || line[0] == '\0')
                        continue;
                if (strcmp(line, "SFF") == 0) {
                        if (write(agent_fd, "\xff", 1) != 1)
                                _exit(0);
                } else if (strcmp(line, "CFF") == 0) {
                        if (agent_getc() != 0xff)
                                agent_fail("the client did not send the 0xFF sentinel first");
                } else if (strncmp(line, "S: ", 3) == 0) {
                        char out[4096];
                        size_t o = 0;
                        for (const char *p = line + 3; *p && o < sizeof out - 40; p++) {
                                if (strncmp(p, "$ID", 3) == 0) {
                                        o += (size_t) snprintf(out + o, sizeof out - o, "%s", id);
                                        p += 2;
                                } else
                                        out[o++] = *p;
                        }
                        out[o++] = '\n';
                        if (write(agent_fd, out, o) != (ssize_t) o)
                                _exit(0);
                } else if (strncmp(line, "C: ", 3) == 0) {
                        char got[4096];
                        size_t n = 0;
                        int c;
                        while ((c = agent_getc()) >= 0 && c != '\n' && n < sizeof got - 1)
                                got[n++] = (char) c;
                        got[n] = '\0';
                        json_object *g = json_tokener_parse(got), *args = NULL, *gid = NULL;
                        if (!g)
                                agent_fail("the client sent a line that is not JSON");
                        if (json_object_object_get_ex(g, "arguments", &args) &&
                            json_object_object_get_ex(args, "id", &gid))
                                snprintf(id, sizeof id, "%s", json_object_get_string(gid));
                        char want[4096];
                        const char *ph = strstr(line + 3, "$ID");
                        if (ph)
                                snprintf(want, sizeof want, "%.*s%s%s", (int) (ph - line - 3), line + 3, id, ph + 3);
                        else
                                snprintf(want, sizeof want, "%s", line + 3);
                        json_object *w = json_tokener_parse(want);
                        if (!w || !json_object_equal(g, w))
                                agent_fail("the client sent something else than the script expects");
                        json_object_put(g);
                        json_object_put(w);
                } else if (strcmp(line, "HOLD") == 0) {
                        while (agent_getc() >= 0)
                                ;
                } else
                        agent_fail("bad script line");
        }
        _exit(0);
}

static void agent_main(int fd, char *script) {
        agent_fd = fd;
        agent_run(script);
}

static int agent_replay(const char *name, pid_t *ret_pid) {
        return replay_start_with(name, agent_main, ret_pid);
}

static void test_agent(void) {
        pid_t pid;
        phy_error err = { 0 };
        json_object *ifs = NULL;
        int fd = agent_replay("qga-interfaces.txt", &pid);
        is_int(net_agent_interfaces_fd(fd, 5000, &ifs, &err), 0, "agent: interfaces after a sync past stale replies");
        if (err.message[0])
                printf("# %s\n", err.message);
        ok(replay_end(pid), "agent: the client sent what the agent expects (0xFF, sync, the command)");
        is_int(ifs ? (int) json_object_array_length(ifs) : -1, 3, "agent: three interfaces, the stale reply ignored");
        json_object *eth0 = ifs ? json_object_array_get_idx(ifs, 1) : NULL;
        is_str(eth0 ? json_object_get_string(json_object_object_get(eth0, "name")) : NULL, "eth0", "agent: eth0");
        is_str(eth0 ? json_object_get_string(json_object_object_get(eth0, "mac")) : NULL, "52:54:00:12:34:56",
               "agent: its MAC");
        json_object *addrs = eth0 ? json_object_object_get(eth0, "addresses") : NULL;
        is_str(addrs ? json_object_get_string(json_object_array_get_idx(addrs, 0)) : NULL, "10.0.2.15/24",
               "agent: its IPv4 address with the prefix");
        json_object *eth1 = ifs ? json_object_array_get_idx(ifs, 2) : NULL;
        is_int(eth1 ? (int) json_object_array_length(json_object_object_get(eth1, "addresses")) : -1, 0,
               "agent: an interface without addresses has an empty list");
        json_object_put(ifs);
        ifs = NULL;

        fd = agent_replay("qga-error.txt", &pid);
        is_int(net_agent_interfaces_fd(fd, 5000, &ifs, &err), -EREMOTEIO, "agent: a refused command fails");
        ok(strstr(err.message, "has been disabled") != NULL, "agent: with the agent's words: %s", err.message);
        replay_end(pid);
        phy_error_clear(&err);

        fd = agent_replay("qga-silent.txt", &pid);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        is_int(net_agent_interfaces_fd(fd, 300, &ifs, &err), -ETIMEDOUT, "agent: no agent in the guest times out");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        ok(ms >= 250 && ms < 3000, "agent: at its timeout (%ld ms)", ms);
        replay_end(pid);
}

static long ms_since(const struct timespec *t0) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* guest-shutdown (no reply on success) and fsfreeze/thaw on replayed sessions. */
static void test_agent_control(void) {
        pid_t pid;
        phy_error err = { 0 };
        struct timespec t0;
        int fd = agent_replay("qga-shutdown.txt", &pid);
        is_int(net_agent_shutdown_fd(fd, "powerdown", 5000, &err), 0, "agent shutdown: no reply, the next sync "
               "answered: taken");
        ok(replay_end(pid), "agent shutdown: sync, guest-shutdown powerdown, then a second sync");

        fd = agent_replay("qga-shutdown-gone.txt", &pid);
        is_int(net_agent_shutdown_fd(fd, NULL, 5000, &err), 0, "agent shutdown: the channel closing is taken");
        ok(replay_end(pid), "agent shutdown: NULL mode is powerdown");

        fd = agent_replay("qga-shutdown-silent.txt", &pid);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        is_int(net_agent_shutdown_fd(fd, "powerdown", 300, &err), 0, "agent shutdown: silence after it is taken");
        long ms = ms_since(&t0);
        ok(ms >= 250 && ms < 3000, "agent shutdown: at the timeout (%ld ms)", ms);
        replay_end(pid);

        fd = agent_replay("qga-shutdown-refused.txt", &pid);
        is_int(net_agent_shutdown_fd(fd, "powerdown", 5000, &err), -EREMOTEIO, "agent shutdown: an error reply is "
               "a refusal");
        ok(strstr(err.message, "failed to shutdown") != NULL, "agent shutdown: with the agent's words: %s",
           err.message);
        replay_end(pid);
        phy_error_clear(&err);

        int sv[2];
        ok(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
        close(sv[1]);
        is_int(net_agent_shutdown_fd(sv[0], "sleep", 1000, &err), -EINVAL, "agent shutdown: an unknown mode is "
               "refused before anything is sent");
        phy_error_clear(&err);

        fd = agent_replay("qga-shutdown.txt", &pid);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        is_int(net_agent_shutdown_fd(fd, "powerdown", 5000, &err), 0, "agent shutdown again");
        ok(ms_since(&t0) < 2000, "agent shutdown: taken as soon as the sync answers, not at the timeout");
        replay_end(pid);

        fd = agent_replay("qga-fsfreeze.txt", &pid);
        is_int(net_agent_fsfreeze_fd(fd, 5000, &err), 2, "agent fsfreeze: the count of frozen filesystems");
        ok(replay_end(pid), "agent fsfreeze: sync, then guest-fsfreeze-freeze");
        fd = agent_replay("qga-fsthaw.txt", &pid);
        is_int(net_agent_fsthaw_fd(fd, 5000, &err), 2, "agent fsthaw: the count of thawed filesystems");
        ok(replay_end(pid), "agent fsthaw: sync, then guest-fsfreeze-thaw");

        fd = agent_replay("qga-fsfreeze-error.txt", &pid);
        is_int(net_agent_fsfreeze_fd(fd, 5000, &err), -EREMOTEIO, "agent fsfreeze: a refused freeze fails");
        ok(strstr(err.message, "Operation not supported") != NULL, "agent fsfreeze: with the agent's words: %s",
           err.message);
        ok(replay_end(pid), "agent fsfreeze: a thaw was still sent after the refused freeze");
        phy_error_clear(&err);

        fd = agent_replay("qga-silent.txt", &pid);
        is_int(net_agent_fsfreeze_fd(fd, 300, &err), -ETIMEDOUT, "agent fsfreeze: no agent times out");
        replay_end(pid);
        phy_error_clear(&err);
}

/* The backend status names for a stopped VM (its definition, where a NIC's
 * mode may be unset) is the one a start uses (the model, mode filled in as
 * user): passt when there is one, else slirp.  Issue 11: a stopped VM said
 * slirp while it ran with passt. */
static void test_backend_stopped(void) {
        _cleanup_vm_def_ struct vm_def d = { 0 };
        phy_error err = { 0 };
        is_int(vm_def_parse("vm.conf", "[vm]\nname = b\nprofile = linux\n\n[network net0]\nmac = 52:54:00:00:00:01\n",
                            &d, &err), 0, "a definition whose NIC has no mode");
        if (d.n_nics != 1)
                return;
        is_int(d.nics[0].mode, VM_NET_UNSET, "its mode is unset in the definition");
        struct vm_nic user = d.nics[0];
        user.mode = VM_NET_USER; /* as vm_model_resolve fills it */
        const char *const passts[] = { "/bin/true", "" };
        const char *const want[] = { "passt", "slirp" };
        for (size_t i = 0; i < ELEMENTSOF(passts); i++) {
                setenv("PHYLLOME_PASST", passts[i], 1);
                json_object *j = net_nics_to_json(&d);
                is_str(json_object_get_string(json_object_object_get(json_object_array_get_idx(j, 0), "backend")),
                       want[i], "stopped, PHYLLOME_PASST='%s': status names %s", passts[i], want[i]);
                json_object_put(j);
                is_int(net_nic_uses_passt(&d.nics[0]), net_nic_uses_passt(&user),
                       "the definition and the model agree on passt (PHYLLOME_PASST='%s')", passts[i]);
        }
        unsetenv("PHYLLOME_PASST");
}

int main(void) {
        test_backend_stopped();
        test_def_edits();
        test_agent();
        test_agent_control();
        test_parse();
        test_port_check();
        test_macs();
        test_share_dirs();
        return tap_done();
}

/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the QMP client reading whatever a peer sends.  The input
 * is written into one end of a socketpair, that end is shut for writing (the
 * client sees EOF after the input, so no call can wait for more), and the
 * client runs the handshake, two commands and drains events.  The client's
 * ids are "phy-1", "phy-2", ... (seeds in tests/fuzz/corpus/qmp use them).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qemu/qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Short: every wait ends at EOF anyway; this bounds a bug that would wait. */
#define FUZZ_TIMEOUT_MS 200

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        /* The client writes commands after the peer may have gone. */
        signal(SIGPIPE, SIG_IGN);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return 0;
        /* The whole input must fit in the socket buffer: written up front. */
        int sz = 4 * 1024 * 1024;
        (void) setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        (void) setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        (void) fcntl(sv[1], F_SETFL, O_NONBLOCK);
        size_t off = 0;
        while (off < size) {
                ssize_t n = send(sv[1], data + off, size - off, MSG_NOSIGNAL);
                if (n <= 0)
                        break;  /* buffer full: the rest is cut off, still a valid case */
                off += (size_t) n;
        }
        shutdown(sv[1], SHUT_WR);

        phy_error err = { 0 };
        struct qmp *q = NULL;
        if (qmp_open_fd(sv[0], FUZZ_TIMEOUT_MS, &q, &err) == 0) {
                json_object *ret = NULL;
                if (qmp_command(q, "query-status", NULL, FUZZ_TIMEOUT_MS, &ret, &err) == 0)
                        json_object_put(ret);
                char *status = NULL;
                if (qmp_query_status(q, &status, &err) == 0)
                        free(status);
                for (int i = 0; i < 4096; i++) {
                        json_object *ev = NULL;
                        if (qmp_next_event(q, 0, &ev, &err) < 0)
                                break;
                        json_object_put(ev);
                }
                (void) qmp_greeting(q);
                (void) qmp_events_dropped(q);
                qmp_close(q);
        } else if (err.message[0] == '\0' && err.code != 0)
                __builtin_trap();
        close(sv[1]);
        return 0;
}

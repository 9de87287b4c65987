/* SPDX-License-Identifier: MIT */
/* phyllome-devhelper's messages: the checks every received request passes,
 * and the caller's side (one request, one reply, on a SOCK_SEQPACKET). */
#include "helper.h"

#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "host/pci.h"
#include "vm/vm.h"
#include "value.h"

#define CALL_TIMEOUT_MS 30000

bool dev_driver_name_valid(const char *s) {
        size_t n = 0;
        for (; s[n]; n++)
                if (!(s[n] == '_' || s[n] == '-' || (s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'z') ||
                      (s[n] >= 'A' && s[n] <= 'Z')))
                        return false;
        return n >= 1 && n <= 64;
}

/* A field holds a NUL before its end. */
static bool terminated(const char *field, size_t size) {
        return memchr(field, '\0', size) != NULL;
}

int dev_helper_request_check(const void *buf, size_t len, struct dev_helper_request *ret, phy_error *err) {
        struct dev_helper_request r;
        if (len != sizeof r)
                return phy_error_set(err, EPROTO, "a request is exactly %zu bytes; this message has %zu", sizeof r,
                                     len);
        memcpy(&r, buf, sizeof r);
        if (r.version != DEV_HELPER_VERSION)
                return phy_error_set(err, EPROTO, "request version %u is not the helper's version %u (phyllo and "
                                     "phyllome-devhelper come from different builds)", r.version, DEV_HELPER_VERSION);
        if (r.op < DEV_HELPER_TO_VFIO || r.op > DEV_HELPER_STATUS)
                return phy_error_usage(err, "unknown request op %u", r.op);
        if (!terminated(r.vm, sizeof r.vm) || !terminated(r.address, sizeof r.address) ||
            !terminated(r.driver, sizeof r.driver))
                return phy_error_usage(err, "a string in the request is not NUL-terminated inside its field");
        if (r.op == DEV_HELPER_STATUS) {
                if (r.vm[0] || r.address[0] || r.driver[0])
                        return phy_error_usage(err, "a STATUS request names no VM, device or driver");
        } else {
                if (!vm_name_valid(r.vm))
                        return phy_error_usage(err, "'%s' is not a VM name", r.vm);
                if (!value_pci_addr_valid(r.address, true))
                        return phy_error_usage(err, "'%s' is not a PCI address (want the form 0000:01:00.0)",
                                             r.address);
                if (r.driver[0] && (r.op != DEV_HELPER_GIVE_BACK || !dev_driver_name_valid(r.driver)))
                        return phy_error_usage(err, "'%s' is not a driver name ([A-Za-z0-9_-], at most 64), "
                                             "or the op takes none", r.driver);
        }
        *ret = r;
        return 0;
}

/* Copies s into a field of size n; false when it does not fit. */
static bool field_set(char *field, size_t n, const char *s) {
        size_t l = s ? strlen(s) : 0;
        if (l >= n)
                return false;
        memset(field, 0, n);
        if (l)
                memcpy(field, s, l);
        return true;
}

int dev_helper_request_init(struct dev_helper_request *req, enum dev_helper_op op, const char *vm,
                            const char *address, const char *driver, phy_error *err) {
        /* Zeroed whole: no stack bytes go to the helper in the padding-free fields' tails. */
        memset(req, 0, sizeof *req);
        req->version = DEV_HELPER_VERSION;
        req->op = (uint32_t) op;
        if (!field_set(req->vm, sizeof req->vm, vm))
                return phy_error_usage(err, "the VM name '%s' is too long for the device helper", vm);
        if (!field_set(req->address, sizeof req->address, address))
                return phy_error_usage(err, "'%s' is not a PCI address", address);
        if (!field_set(req->driver, sizeof req->driver, driver))
                return phy_error_usage(err, "'%s' is not a driver name", driver);
        return 0;
}

const char *dev_helper_socket_path(void) {
        const char *p = getenv("PHYLLOME_DEVHELPER_SOCKET");
        return p && *p ? p : DEV_HELPER_SOCKET;
}

bool dev_helper_wanted(const char *root) {
        if (geteuid() == 0)
                return false;
        const char *p = getenv("PHYLLOME_DEVHELPER_SOCKET");
        return !root || strcmp(root, "/") == 0 || (p && *p);
}

int dev_helper_call(const char *socket_path, const struct dev_helper_request *req, struct dev_helper_reply *ret,
                    phy_error *err) {
        _cleanup_close_ int fd = sock_connect_unix(socket_path, SOCK_SEQPACKET);
        if (fd == -ENAMETOOLONG)
                return phy_error_set(err, ENAMETOOLONG, "the device helper socket path '%s' is too long", socket_path);
        if (fd < 0) {
                int e = -fd;
                if (e == ENOENT || e == ECONNREFUSED)
                        return phy_error_set(err, e, "the device helper is not running (cannot connect to %s: %s): "
                                             "PCI passthrough for a VM of an unprivileged user goes through it; ask "
                                             "the administrator to start it (systemctl start "
                                             "phyllome-devhelper.socket)", socket_path, strerror(e));
                return phy_error_set(err, e, "cannot connect to the device helper at %s: %s", socket_path,
                                     strerror(e));
        }
        if (send(fd, req, sizeof *req, MSG_NOSIGNAL) != (ssize_t) sizeof *req)
                return phy_error_set(err, errno ? errno : EIO, "cannot send a request to the device helper at %s: %s",
                                     socket_path, strerror(errno));
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int n;
        do
                n = poll(&p, 1, CALL_TIMEOUT_MS);
        while (n < 0 && errno == EINTR);
        if (n == 0)
                return phy_error_set(err, ETIMEDOUT, "the device helper at %s did not answer within %d s",
                                     socket_path, CALL_TIMEOUT_MS / 1000);
        struct dev_helper_reply r;
        ssize_t got = recv(fd, &r, sizeof r, MSG_TRUNC);
        if (got < 0)
                return phy_error_set(err, errno, "no answer from the device helper at %s: %s", socket_path,
                                     strerror(errno));
        if (got != (ssize_t) sizeof r || r.version != DEV_HELPER_VERSION)
                return phy_error_set(err, EPROTO, "the device helper at %s answered %zd bytes of version %u, not "
                                     "a version %u reply (a different build?)", socket_path, got,
                                     got >= 4 ? r.version : 0, DEV_HELPER_VERSION);
        r.message[sizeof r.message - 1] = '\0';
        r.driver[sizeof r.driver - 1] = '\0';
        *ret = r;
        if (r.error != 0)
                return phy_error_set(err, r.error > 0 && r.error < 4096 ? r.error : EIO, "%s", r.message);
        return 0;
}

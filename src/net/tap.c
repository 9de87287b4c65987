/* SPDX-License-Identifier: MIT */
/*
 * Bridge mode (mode = bridge, bridge = br0): the privileged step is this
 * small piece, done with ioctls (no 'ip' exec): a tap from /dev/net/tun,
 * enslaved to the host bridge and brought up.  The tap is not persistent:
 * it disappears when the last fd (QEMU's, -netdev tap,fd=N) closes, so a
 * crash leaves nothing behind.  Needs CAP_NET_ADMIN (root).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "net.h"

int net_tap_open(const char *bridge, int *ret_fd, char ret_name[16], phy_error *err) {
        if (!bridge || !*bridge || strlen(bridge) >= IFNAMSIZ)
                return phy_error_usage(err, "invalid bridge name '%s'; use 1 to %d characters", bridge ? bridge : "",
                                     IFNAMSIZ - 1);
        _cleanup_close_ int ctl = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (ctl < 0)
                return phy_error_set(err, errno, "cannot open a control socket: %s", strerror(errno));
        struct ifreq br = { 0 };
        memcpy(br.ifr_name, bridge, strlen(bridge) + 1);
        /* A bridge has a bridge/ directory in sysfs; checking first gives a clearer message than EOPNOTSUPP. */
        char sysbr[64];
        snprintf(sysbr, sizeof sysbr, "/sys/class/net/%s/bridge", bridge);
        if (ioctl(ctl, SIOCGIFINDEX, &br) < 0)
                return phy_error_set(err, ENODEV, "bridge '%s' does not exist here; create it first "
                                     "(ip link add %s type bridge) or name another one", bridge, bridge);
        if (access(sysbr, F_OK) < 0)
                return phy_error_set(err, ENOTTY, "'%s' is not a bridge; name a bridge device", bridge);

        _cleanup_close_ int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return phy_error_set(err, errno, "cannot open /dev/net/tun for bridge '%s': %s%s", bridge,
                                     strerror(errno), errno == ENOENT ? "; load the tun module (modprobe tun)" : "");
        struct ifreq tr = { 0 };
        tr.ifr_flags = IFF_TAP | IFF_NO_PI;
        /* The kernel picks the first free phytapN. */
        snprintf(tr.ifr_name, sizeof tr.ifr_name, "phytap%%d");
        if (ioctl(fd, TUNSETIFF, &tr) < 0) {
                int e = errno;
                return phy_error_set(err, e, "cannot create a tap for bridge '%s': %s%s", bridge, strerror(e),
                                     e == EPERM ? "; bridge mode needs root (CAP_NET_ADMIN)" : "");
        }
        struct ifreq up = { 0 };
        memcpy(up.ifr_name, tr.ifr_name, IFNAMSIZ);
        if (ioctl(ctl, SIOCGIFINDEX, &up) < 0)
                return phy_error_set(err, errno, "cannot find the new tap '%s': %s", tr.ifr_name, strerror(errno));
        br.ifr_ifindex = up.ifr_ifindex;
        if (ioctl(ctl, SIOCBRADDIF, &br) < 0)
                return phy_error_set(err, errno, "cannot add tap '%s' to bridge '%s': %s", tr.ifr_name, bridge,
                                     strerror(errno));
        if (ioctl(ctl, SIOCGIFFLAGS, &up) < 0)
                return phy_error_set(err, errno, "cannot read the flags of tap '%s': %s", tr.ifr_name, strerror(errno));
        up.ifr_flags |= IFF_UP;
        if (ioctl(ctl, SIOCSIFFLAGS, &up) < 0)
                return phy_error_set(err, errno, "cannot bring tap '%s' up: %s", tr.ifr_name, strerror(errno));
        memcpy(ret_name, tr.ifr_name, IFNAMSIZ);
        ret_name[IFNAMSIZ - 1] = '\0';
        *ret_fd = TAKE_FD(fd);
        return 0;
}

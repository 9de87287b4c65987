/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "net.h"
#include "vm/vm.h"

/* A clone must not share a MAC with its source: both may run on one link. */
int net_new_macs(struct vm_def *d, phy_error *err) {
        for (size_t i = 0; i < d->n_nics; i++) {
                char mac[18];
                do {
                        unsigned char m[3];
                        if (getrandom(m, sizeof m, 0) != (ssize_t) sizeof m)
                                return phy_error_set(err, errno ? errno : EIO, "cannot read random bytes for a MAC address: %s",
                                                     strerror(errno ? errno : EIO));
                        snprintf(mac, sizeof mac, "52:54:00:%02x:%02x:%02x", m[0], m[1], m[2]);
                        bool taken = strcmp(mac, d->nics[i].mac) == 0;
                        for (size_t j = 0; j < i && !taken; j++)
                                taken = strcmp(mac, d->nics[j].mac) == 0;
                        if (!taken)
                                break;
                } while (1);
                memcpy(d->nics[i].mac, mac, sizeof mac);
        }
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Writing a definition: what every save checks, the atomic write, and the
 * identity (uuid, MACs) a new VM gets.
 */
#include "vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cleanup.h"
#include "fileio.h"

int vm_def_check_save(const struct vm_def *d, const char *file, phy_error *err) {
        /* Every setter (create, edit, PUT, the set commands) ends here: a value
         * with a newline would add keys or sections to the file. */
        int r = vm_def_check_values(d, err);
        if (r < 0)
                return r;
        /* And every file it names outside its own directory is one the host allows. */
        _cleanup_free_ char *dir = strdup(file);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (!dir)
                return phy_error_set(err, ENOMEM, "out of memory");
        if (slash)
                *slash = '\0';
        return vm_def_check_here(d, slash ? (slash == dir ? "/" : dir) : ".", err);
}

int vm_def_save(const struct vm_def *d, const char *file, phy_error *err) {
        int r = vm_def_check_save(d, file, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *text = vm_def_format(d, false);
        if (!text)
                return phy_error_set(err, ENOMEM, "out of memory formatting the definition of '%s'", d->name);
        return file_write_atomic(file, text, strlen(text), 0644, err);
}

/* ---- identity ----------------------------------------------------------- */

static int random_bytes(void *buf, size_t len, phy_error *err) {
        size_t got = 0;
        while (got < len) {
                ssize_t n = getrandom((char *) buf + got, len - got, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return phy_error_set(err, errno, "cannot get random bytes for a new VM's identity: %s",
                                             strerror(errno));
                got += (size_t) n;
        }
        return 0;
}

int vm_def_make_identity(struct vm_def *d, phy_error *err) {
        int r;
        if (!d->uuid[0]) {
                unsigned char u[16];
                if ((r = random_bytes(u, sizeof u, err)) < 0)
                        return r;
                u[6] = (unsigned char) ((u[6] & 0x0f) | 0x40);     /* version 4 */
                u[8] = (unsigned char) ((u[8] & 0x3f) | 0x80);     /* RFC 4122 variant */
                snprintf(d->uuid, sizeof d->uuid,
                         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
                         u[14], u[15]);
        }
        for (size_t i = 0; i < d->n_nics; i++) {
                if (d->nics[i].mac[0])
                        continue;
                unsigned char m[3];
                if ((r = random_bytes(m, sizeof m, err)) < 0)
                        return r;
                snprintf(d->nics[i].mac, sizeof d->nics[i].mac, "52:54:00:%02x:%02x:%02x", m[0], m[1], m[2]);
        }
        return 0;
}

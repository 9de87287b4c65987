/* SPDX-License-Identifier: MIT */
/* The per-VM lock: flock() on <run_dir>/lock, held by the monitor for its
 * whole life (the fd is O_CLOEXEC, so QEMU and swtpm never hold it). */
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cleanup.h"
#include "run-internal.h"
#include "run.h"

int run_lock_take(const char *run_dir, int *ret_fd, phy_error *err) {
        _cleanup_free_ char *path = run_file(run_dir, "lock");
        if (!path)
                return phy_error_set(err, ENOMEM, "out of memory");
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return phy_error_set(err, errno, "cannot open the VM lock '%s': %s", path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        return phy_error_set(err, EBUSY, "the lock '%s' is held", path);
                return phy_error_set(err, errno, "cannot lock '%s': %s", path, strerror(errno));
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* The per-VM lock: flock() on <run_dir>/lock, held by the monitor for its
 * whole life (the fd is O_CLOEXEC, so QEMU and swtpm never hold it). */
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "run-internal.h"
#include "run-internal.h"
#include "run.h"
#include "vm/vm.h"

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

int run_vm_delete(const char *home, const char *name, phy_error *err) {
        if (!vm_name_valid(name))
                return vm_delete(home, name, err);
        _cleanup_free_ char *dir = vm_dir(home, name), *run_dir = NULL;
        if (!dir)
                return phy_error_set(err, ENOMEM, "out of memory");
        /* The per-VM lock is held by a VM's monitor for its whole life;
         * holding it here also keeps a start from racing the delete. */
        _cleanup_close_ int lock = -1;
        if (access(dir, F_OK) == 0) {
                if (run_is_active(home, name))
                        return phy_error_set(err, EBUSY, "VM '%s' is running; stop it first ('phyllo stop %s')", name, name);
                int r = run_dir_path(home, name, &run_dir, err);
                if (r < 0)
                        return r;
                if (access(run_dir, F_OK) == 0 && (r = run_lock_take(run_dir, &lock, err)) < 0) {
                        if (r == -EBUSY)
                                return phy_error_set(err, EBUSY, "VM '%s' is running or starting; stop it first "
                                                     "('phyllo stop %s')", name, name);
                        return r;
                }
                /* A crashed run's devices go back to the host before its records go. */
                if (lock >= 0 && (r = run_reconcile_locked(home, name, NULL, err)) < 0)
                        return r;
        }
        int r = vm_delete(home, name, err);
        if (r < 0)
                return r;
        /* The stopped VM's runtime files (logs, last state) go with it. */
        if (run_dir)
                (void) rm_rf(run_dir);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The disks' backing chains (issue 12).  A linked clone's disk is a qcow2
 * overlay on a frozen base in its source's directory, which is closed to
 * the clone's uid and outside its Landlock ruleset.  So QEMU never opens a
 * backing file by name: the monitor, still root (or the user), opens each
 * chain and checks every link (vm/chain.h: the rules export and clone use),
 * and QEMU gets the links as inherited fds (-add-fd, -blockdev on
 * /dev/fdset/N, backing=).  A header the VM's uid rewrote to name another
 * file is refused here, naming it, before anything reads it.
 */
#include <stdlib.h>
#include <unistd.h>

#include "backing.h"
#include "vm/vm.h"

/* Disk i's image, or NULL (a missing image is left for QEMU to report). */
static char *disk_image(const struct vm_def *d, const char *vm_dir, size_t i) {
        char *p = vm_path_resolve(vm_dir, d->disks[i].path);
        if (p && access(p, F_OK) < 0) {
                free(p);
                p = NULL;
        }
        return p;
}

int run_backing_check(const struct vm_def *d, const char *vm_dir, phy_error *err) {
        for (size_t i = 0; i < d->n_disks; i++) {
                char *p = disk_image(d, vm_dir, i);
                int r = p ? vm_disk_chain_check(vm_dir, d->name, d->uuid, &d->disks[i], p, NULL, err) : 0;
                free(p);
                if (r < 0)
                        return r;
        }
        return 0;
}

void run_backing_close(struct run_backing *b) {
        for (size_t i = 0; b->chains && i < b->n; i++)
                vm_chain_done(&b->chains[i]);
        free(b->chains);
        free(b->disks);
        free(b->links);
        *b = (struct run_backing) { 0 };
}

int run_backing_open(struct run_backing *b, const struct vm_def *d, const char *vm_dir, phy_error *err) {
        *b = (struct run_backing) { .n = d->n_disks };
        b->chains = calloc(d->n_disks + 1, sizeof *b->chains);
        b->disks = calloc(d->n_disks + 1, sizeof *b->disks);
        b->links = calloc((d->n_disks + 1) * VM_CHAIN_MAX, sizeof *b->links);
        if (!b->chains || !b->disks || !b->links) {
                run_backing_close(b);
                return phy_error_set(err, ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < d->n_disks; i++)
                vm_chain_init(&b->chains[i]);
        for (size_t i = 0; i < d->n_disks; i++) {
                char *p = disk_image(d, vm_dir, i);
                int r = p ? vm_disk_chain_open(vm_dir, d->name, d->uuid, &d->disks[i], p, &b->chains[i], err) : 0;
                free(p);
                if (r < 0) {
                        run_backing_close(b);
                        return r;
                }
                struct vm_chain *c = &b->chains[i];
                /* QEMU opens the disk itself by its name (read-write, in the VM's directory). */
                if (c->top >= 0)
                        close(c->top);
                c->top = -1;
                struct qemu_backing_link *l = &b->links[i * VM_CHAIN_MAX];
                for (size_t j = 0; j < c->n; j++)
                        l[j] = (struct qemu_backing_link) { .fd = c->v[j].fd, .format = c->v[j].format };
                b->disks[i] = (struct qemu_backing) { .links = l, .n = c->n };
        }
        return 0;
}

size_t run_backing_fds(const struct run_backing *b, int *out) {
        size_t k = 0;
        for (size_t i = 0; b->chains && i < b->n; i++)
                for (size_t j = 0; j < b->chains[i].n; j++)
                        if (out)
                                out[k++] = b->chains[i].v[j].fd;
                        else
                                k++;
        return k;
}

/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * A disk's backing chain, opened and checked link by link (issue 12,
 * docs/security.md "Disk images root reads").  A qcow2 in a VM's directory
 * belongs to the VM's uid, whose QEMU may write any header: so nothing
 * follows a backing file by its name.  The chain is read here from the
 * images themselves (the qcow2 header, read through the fd, never a
 * process that opens what the header names), each link opened once and
 * checked where it really is (the fd's /proc/self/fd link):
 *
 *   - in the VM's own directory, or
 *   - a linked clone's frozen base, <vms>/<V>/base/<F>, when a record
 *     beside it (<vms>/<V>/base/.<F>.clone, written by clone, ours, read-
 *     only) names this VM's uuid, or when the link before it was itself a
 *     frozen base (ours, read-only: its header was checked when it froze,
 *     and nobody can change it since); nothing else in another VM's
 *     directory, whatever allow-paths says;
 *   - below a directory this host allows (allow-paths);
 *
 * a regular file, not a symlink, of format qcow2 or raw (named by the
 * header, else qcow2 by its magic, else raw: never probed further), and no
 * image has an external data file.  The fds go on: QEMU gets the chain as
 * -add-fd/-blockdev nodes (src/run/boot.c, src/qemu/argv.c) and never opens
 * a backing file by name; the store's exports and clones check it first.
 */
#include <stdbool.h>
#include <stddef.h>
#include "error.h"

#define VM_CHAIN_MAX 16

struct vm_chain_link {
        int fd;                 /* O_RDONLY | O_CLOEXEC */
        char *path;             /* where it really is */
        char format[8];         /* "qcow2" or "raw" */
};

/* The backing files of one disk, the nearest first (the disk itself is not
 * a link).  n == 0: the disk has no backing file. */
struct vm_chain {
        int top;                /* the disk's image itself, O_RDONLY, -1 when not open */
        size_t n;
        struct vm_chain_link v[VM_CHAIN_MAX];
};

struct vm_disk;
void vm_chain_init(struct vm_chain *c);
void vm_chain_done(struct vm_chain *c);

/* Opens and checks the chain of disk k of VM vm (its uuid: which frozen
 * bases of other VMs are its own) whose image is path (absolute).  -EPERM
 * naming the disk, the image and the file refused; -ELOOP for a chain
 * deeper than VM_CHAIN_MAX. */
int vm_disk_chain_open(const char *vmdir, const char *vm, const char *uuid, const struct vm_disk *k,
                       const char *path, struct vm_chain *ret, phy_error *err);

/* The same, the fds closed again: whether the chain passes (and
 * *ret_backed: whether there is one). */
int vm_disk_chain_check(const char *vmdir, const char *vm, const char *uuid, const struct vm_disk *k,
                        const char *path, bool *ret_backed, phy_error *err);

/* Records that the VM with uuid may use the frozen base (clone writes it
 * when it makes a linked clone): <dir>/.<file>.clone, 0444. */
int vm_base_record(const char *base, const char *uuid, phy_error *err);

/* The backing file the image at fd names, read from its qcow2 header through
 * the fd (neither probed by qemu-img nor opened): 0 with *ret_backing a
 * malloc'd name and ret_fmt its recorded format ("" when none), 0 with
 * *ret_backing NULL when the image is no qcow2 or names none; -EINVAL for a
 * qcow2 header this cannot read, -errno. */
int vm_image_backing(int fd, char **ret_backing, char *ret_fmt, size_t fmt_size);

/* The image at fd (opened by the caller) is a regular file or a block
 * device and, when it is a qcow2, names no external data file: checked
 * before qemu-img opens it (a data file that is a FIFO would block it; a
 * host file named there would be read).  what names the image. */
int vm_image_fd_check(int fd, const char *what, phy_error *err);

/* SPDX-License-Identifier: MIT */
/* Whether a VM's system disk holds an OS (issue 19): its install media then
 * boot after the disks, so that an ISO left in the drive no longer boots
 * the installer again.  "Holds an OS" is read as "has a partition table":
 * sector 0 ends in the MBR boot signature 55 AA (GPT keeps a protective
 * MBR), which every installer writes and a new image lacks. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "fileio.h"
#include "vm.h"

static bool sector_has_mbr(const unsigned char *s) {
        return s[510] == 0x55 && s[511] == 0xaa;
}

static bool raw_has_mbr(const char *path) {
        unsigned char s[512];
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        return fd >= 0 && pread(fd, s, sizeof s, 0) == (ssize_t) sizeof s && sector_has_mbr(s);
}

/* Sector 0 of a qcow2 image as the guest sees it (backing chain included):
 * qemu-img dd into a private temporary directory.  -U: the VM may run. */
static bool qcow2_has_mbr(const char *path) {
        _cleanup_free_ char *qemu_img = exec_find_qemu_img(NULL), *in = NULL, *out = NULL;
        const char *tmp = getenv("TMPDIR");
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/phyllome-mbr.XXXXXX", tmp && *tmp == '/' ? tmp : "/tmp");
        if (!qemu_img || !mkdtemp(dir))
                return false;
        bool yes = false;
        if (asprintf(&in, "if=%s", path) >= 0 && asprintf(&out, "of=%s/sector0", dir) >= 0) {
                char *argv[] = { qemu_img, "dd", "-U", "-f", "qcow2", "-O", "raw", "bs=512", "count=1", in, out, NULL };
                char errbuf[256];
                if (exec_run(argv, NULL, errbuf, sizeof errbuf) == 0)
                        yes = raw_has_mbr(out + 3);
                (void) unlink(out + 3);
        }
        (void) rmdir(dir);
        return yes;
}

void vm_model_probe_boot(struct vm_model *m, const char *vm_dir) {
        const struct vm_def *d = &m->vm;
        m->disk_has_os = false;
        bool media = false;
        for (size_t i = 0; i < d->n_cdroms; i++)
                media = media || d->cdroms[i].path;
        if (!media || d->n_disks == 0 || !vm_dir || d->disks[0].key_file || d->disks[0].key_prompt ||
            !d->disks[0].path)
                return;
        _cleanup_free_ char *p = vm_path_resolve(vm_dir, d->disks[0].path);
        if (!p)
                return;
        const char *fmt = d->disks[0].format ? d->disks[0].format : "qcow2";
        if (strcmp(fmt, "raw") == 0)
                m->disk_has_os = raw_has_mbr(p);
        else if (strcmp(fmt, "qcow2") == 0)
                m->disk_has_os = qcow2_has_mbr(p);
}

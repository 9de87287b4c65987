/* SPDX-License-Identifier: MIT */
/*
 * mem_shed (mem.h).  Why: a fork of phyllo or phyllod, or phyllod after
 * loading its 27 libraries, has mapped hundreds of KiB of every library it
 * resolved symbols in or ran code of (the dynamic linker reads each one's
 * symbol tables; the kernel maps 64 KiB or a whole large folio around each
 * fault), which its event loop never touches again: 1.5-5 MiB of RSS that
 * is the page cache's, counted in every such process.
 */
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/mman.h>

#include "mem.h"

void mem_shed(void) {
        (void) malloc_trim(0);
        FILE *f = fopen("/proc/self/smaps", "re");
        if (!f)
                return;
        char line[512];
        unsigned long lo = 0, hi = 0;
        bool candidate = false;
        while (fgets(line, sizeof line, f)) {
                unsigned long a, b, ino;
                char perms[8];
                unsigned long long anon;
                if (sscanf(line, "%lx-%lx %7s %*s %*s %lu", &a, &b, perms, &ino) == 4) {
                        /* A private mapping of a file, not writable. */
                        lo = a, hi = b;
                        candidate = ino != 0 && perms[1] != 'w' && perms[3] == 'p';
                } else if (candidate && sscanf(line, "Anonymous: %llu kB", &anon) == 1) {
                        /* ... with no copied page (relocated RELRO has some). */
                        if (anon == 0) {
                                (void) madvise((void *) lo, hi - lo, MADV_DONTNEED);
                                (void) madvise((void *) lo, hi - lo, MADV_RANDOM);
                        }
                        candidate = false;
                }
        }
        fclose(f);
}

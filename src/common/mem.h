/* SPDX-License-Identifier: MIT */
#pragma once

/* A long-lived process (the per-VM monitor, phyllod) lets go of what only
 * its start-up needed: the free heap of every malloc arena, and the pages
 * the kernel mapped of files it only reads (code, read-only data: mappings
 * with no page of their own).  Those stay in the page cache, shared, and
 * come back a page at a time (MADV_RANDOM: no fault-around) as the process
 * touches them.  A writable or copied-on-write mapping is never touched. */
void mem_shed(void);

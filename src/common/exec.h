/* SPDX-License-Identifier: MIT */
#pragma once
#include <stddef.h>

/* Most stdout kept by exec_run; more is -EFBIG. */
#define EXEC_OUT_MAX (16u * 1024 * 1024)

/* The first executable `prog` in $PATH (a default PATH when unset); NULL when none. */
char *exec_find_in_path(const char *prog);

/* qemu-img from the argument, $PHYLLOME_QEMU_IMG, or $PATH; NULL when none. */
char *exec_find_qemu_img(const char *given);

/* Runs argv[0] (a path) with argv; stdin and, without ret_out, stdout from
 * /dev/null.  The start of stderr lands in errbuf (trailing blanks cut).
 * 0 on exit status 0 (stdout in *ret_out, malloc'd), -ENOEXEC when it could
 * not be executed (status 127), -EIO on another status. */
int exec_run(char *const *argv, char **ret_out, char *errbuf, size_t errlen);

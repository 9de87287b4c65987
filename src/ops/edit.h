/* SPDX-License-Identifier: MIT */
#pragma once
/* `phyllo edit`'s working copy (edit.c): the text the editor changes lives
 * beside the definition, "<vm.conf>.edit.XXXXXX" (0600), until the edit is
 * saved (PUT /v1/vms/{name}, ops_set_config) or given up; a refused edit's
 * copy is kept for the user, and only the latest one. */
#include "error.h"
#include "ops.h"

/* A new copy holding text: 0 with *ret_path. */
int ops_edit_copy_new(const struct ops_ctx *c, const char *name, const char *text, char **ret_path, phy_error *err);
/* Removes the copies of name's definition, all but keep (NULL: all). */
void ops_edit_copies_remove(const struct ops_ctx *c, const char *name, const char *keep);

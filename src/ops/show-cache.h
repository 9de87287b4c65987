/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * GET /v1/vms/NAME's answer without its run state, kept by a long-lived
 * caller (phyllod) beside its host facts (env-cache.c).
 *
 * What it holds is a function of the definition's bytes and the host facts
 * and capabilities it was resolved against, so an entry is keyed on those
 * bytes themselves (the whole vm.conf, compared byte for byte with the file
 * read for this request) and on the generation of the facts snapshot: no
 * stat and no clock decides whether it is current, so an edit never goes
 * unseen, however close to the last one or however the file was written.
 * The run state is never cached: the verb reads it for every request.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops.h"

/* The generation of a facts snapshot: equal only for the same load. */
uint64_t ops_env_gen(const struct ops_env *e);

/* When name's entry was made from the definition text conf (conf_len bytes)
 * under the snapshot gen: true, its text copied into a new buffer (*ret,
 * *ret_len).  false on a miss, without a cache (k NULL) or memory. */
bool ops_show_cache_get(struct ops_env_cache *k, const char *name, const char *conf, size_t conf_len, uint64_t gen,
                        char **ret, size_t *ret_len);
/* Records name's text made from conf under gen (replacing its old entry);
 * too large an entry is not kept. */
void ops_show_cache_put(struct ops_env_cache *k, const char *name, const char *conf, size_t conf_len, uint64_t gen,
                        const char *text, size_t text_len);

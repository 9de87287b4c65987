/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The small files of a run dir, one format and one way to read and write
 * them: state.json, devices.state, devices.root, host-display.state, the
 * pending forwards, the migrated and tcg-warned notes, the device helper's
 * records.  A record is text (no NUL byte) ending with a newline, or a JSON
 * object.  It is
 *   - written atomically (a temporary file beside it, fsync, rename), so a
 *     reader sees the old record or the new one, never half of one;
 *   - read without following a symbolic link (O_NOFOLLOW: a run dir's
 *     neighbour, the QEMU user, cannot point us elsewhere), only from a
 *     regular file owned by us or root, at most max bytes, and whole: a text
 *     record without its final newline or a JSON object cut short is
 *     refused.
 * Every error names the file.  A missing file is -ENOENT with err left
 * alone: for most records, none is no news.
 */
#include <stddef.h>
#include <sys/types.h>
#include "error.h"

struct json_object;

/* The largest record a reader takes when max is 0. */
#define RUNFILE_MAX (1024u * 1024)

/* A text record, NUL-terminated, its final newline kept (ret_len may be NULL). */
int runfile_read(const char *path, size_t max, char **ret, size_t *ret_len, phy_error *err);
/* A JSON object (what file holds it is in err's sentence when it is not one). */
int runfile_read_json(const char *path, size_t max, struct json_object **ret, phy_error *err);
/* The file's bytes as they are, with the same checks on the file but none on
 * its content: for logs, which are not records (their tails in reports). */
int runfile_read_raw(const char *path, size_t max, char **ret, size_t *ret_len, phy_error *err);

/* Writes text (a newline added when it does not end with one) atomically. */
int runfile_write(const char *path, const char *text, mode_t mode, phy_error *err);
/* Writes o as pretty-printed JSON and a newline, atomically. */
int runfile_write_json(const char *path, struct json_object *o, mode_t mode, phy_error *err);

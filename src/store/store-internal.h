/* SPDX-License-Identifier: MIT */
#pragma once
/* Helpers shared by the files of src/store. */
#include <stdint.h>
#include "error.h"
#include "strv.h"
#include "run/run.h"

struct json_object;
/* Runs a qemu-img argv; the message names `what` and quotes qemu-img's stderr. */
int store_qemu_img(const char *qemu_img, const char *what, char *const *argv, char **ret_out, phy_error *err);
/* store_find_qemu_img or a message saying what to install. */
int store_need_qemu_img(const char *given, char **ret, phy_error *err);
/* -EBUSY "VM 'x' is running; stop it first ... to <what>". */
int store_refuse_running(const char *home, const char *name, const char *what, phy_error *err);
int64_t store_json_int(struct json_object *o, const char *key);
const char *store_json_str(struct json_object *o, const char *key);
#include <sys/types.h>
struct vm_def;
/* Index of [disk <disk>] in d, or -1. */
ssize_t store_find_disk(const struct vm_def *d, const char *disk);
#include "json-cleanup.h"
/* Copies a directory tree of regular files and directories (modes kept;
 * anything else is refused).  dst must not exist; removed on failure. */
int store_copy_tree(const char *src, const char *dst, phy_error *err);
struct vm_disk;
/* Appends the image to a qemu-img argv: its path, or for an encrypted disk
 * "--object secret,...,file=<key> --image-opts driver=qcow2,...". */
int store_image_args(const char *run_dir, const char *vmdir, const struct vm_disk *k, const char *path, strv *argv,
                     phy_error *err);
/* A key file must be a non-empty regular file that only its owner can read. */
int store_check_key_file(const char *path, phy_error *err);

/* SPDX-License-Identifier: MIT */
#pragma once
#include <json-c/json.h>

struct qemu_caps;
struct host_check_report;

/* Adds host check lines about QEMU's features (qemu.uses, qemu.newer,
 * qemu.feature.<id> for those the model knowingly leaves unused) to rep, and
 * returns the same as JSON: {binary, version, uses[], newer_adds[],
 * not_used[]}, each item {id, since, what[, present, why]}.  -ENOMEM. */
int qemu_caps_report(const struct qemu_caps *c, struct host_check_report *rep, json_object **ret);

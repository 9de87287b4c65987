/* SPDX-License-Identifier: MIT */
#pragma once
/* An error as JSON, the one form phyllod's replies and the catalog worker's
 * records carry: {"code": "ENOENT", "kind": "not-found", "message": "..."}. */
#include <stdbool.h>
#include "error.h"

struct json_object;

/* The inner object ({"code", "kind", "message"}); NULL when out of memory. */
struct json_object *phy_error_to_json(const phy_error *e);
/* From such an object (the errno by name or number, EIO when unknown; the
 * kind by name, else default_kind, else the errno's).  false when o has no
 * "message" string. */
bool phy_error_from_json(struct json_object *o, enum phy_error_kind default_kind, phy_error *ret);

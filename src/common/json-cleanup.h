/* SPDX-License-Identifier: MIT */
#pragma once
/* The one cleanup for json-c objects (_cleanup_json_), for every folder
 * that holds them. */
#include <json-c/json.h>

#include "cleanup.h"

DEFINE_CLEANUP_FUNC(json_object, json_object_put)
#define _cleanup_json_ _cleanup_(json_object_putp)

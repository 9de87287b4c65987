/* SPDX-License-Identifier: MIT */
#pragma once
/* Inside src/catalog: the OsinfoOs behind an id (osinfo.c), for unattend.c. */
#include <osinfo/osinfo.h>
#include "error.h"

/* Owned by the process-wide database; -ENOENT in err when unknown. */
OsinfoOs *catalog_osinfo_os(const char *id, phy_error *err);
/* The media of the ISO at path, identified against osinfo-db (its OS,
 * kernel and initrd paths filled); the caller unrefs it.  NULL with err set:
 * -ENOENT when no OS matches (the message says what the ISO holds). */
OsinfoMedia *catalog_osinfo_media(const char *path, char **ret_volume_id, phy_error *err);

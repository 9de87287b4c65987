/* SPDX-License-Identifier: MIT */
#pragma once
/* Inside src/catalog: the OsinfoOs behind an id (osinfo.c), for unattend.c. */
#include <osinfo/osinfo.h>
#include "error.h"

/* Owned by the process-wide database; -ENOENT in err when unknown. */
OsinfoOs *catalog_osinfo_os(const char *id, phy_error *err);

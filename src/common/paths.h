/* SPDX-License-Identifier: MIT */
#pragma once
#include "error.h"

/* The Phyllome home: $PHYLLOME_HOME, else $XDG_DATA_HOME/phyllome, else
 * ~/.local/share/phyllome.  VM definitions live in <home>/vms/<name>/. */
int phy_home(char **ret, phy_error *err);

/* Cache directory: $PHYLLOME_CACHE, else $XDG_CACHE_HOME/phyllome, else
 * ~/.cache/phyllome. */
int phy_cache_dir(char **ret, phy_error *err);

/* Root prefix for host discovery: the given one, else $PHYLLOME_ROOT, else "/". */
const char *phy_root(const char *given);

/* SPDX-License-Identifier: MIT */
#pragma once
/* The JSON forms of the host check and the PCI device list: one builder for
 * `phyllo host check|devices --json` and phyllod's /v1/host routes. */
#include "check.h"
#include "host.h"
#include "pci.h"

struct json_object;
/* {"root", "checks": [...], "verdict": {tier, short_of}, "budget", "facts"} */
struct json_object *host_check_report_to_json(const struct host_facts *h, const struct host_check_report *rep);
/* {"devices": [{address, class, class_name, vendor_id, ..., with, blockers}]} */
struct json_object *host_pci_list_to_json(const struct host_pci_list *l);

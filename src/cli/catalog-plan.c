/* SPDX-License-Identifier: MIT */
/* create --os / --iso: the plan's resources into POST /v1/vms's body.  In
 * both builds of the CLI (phyllo and phyllo-catalog, catalog-exec.c): it
 * needs the plan's type only, none of the catalog's libraries. */
#include <json-c/json.h>

#include "catalog/catalog.h"
#include "cli.h"
#include "vm/profile.h"

/* What the user left unset in POST /v1/vms's body b, from the plan. */
void cli_catalog_apply(const struct catalog_plan *plan, json_object *b) {
        if (!json_object_object_get_ex(b, "cpus", NULL) && plan->cores)
                json_object_object_add(b, "cpus", json_object_new_int((int) plan->cores));
        if (!json_object_object_get_ex(b, "memory", NULL) && plan->memory)
                json_object_object_add(b, "memory", json_object_new_int64((int64_t) plan->memory));
        if (!json_object_object_get_ex(b, "disk", NULL) && !json_object_object_get_ex(b, "no_disk", NULL) && plan->disk)
                json_object_object_add(b, "disk", json_object_new_int64((int64_t) plan->disk));
        if (plan->disk_bus)
                json_object_object_add(b, "disk_bus", json_object_new_string(vm_bus_name(plan->disk_bus)));
        if (plan->nic)
                json_object_object_add(b, "nic", json_object_new_string(vm_nic_model_name(plan->nic)));
        if (!json_object_object_get_ex(b, "gpu", NULL) && plan->gpu)
                json_object_object_add(b, "gpu", json_object_new_string(vm_gpu_name(plan->gpu)));
}

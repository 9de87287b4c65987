/* SPDX-License-Identifier: MIT */
/* JSON of the host check report and the PCI device list (see json.h). */
#include <stdio.h>
#include <string.h>
#include <json-c/json.h>

#include "json.h"

static json_object *json_str_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static json_object *facts_json(const struct host_facts *h) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "cpu_vendor", json_object_new_string(host_cpu_vendor_name(h->cpu_vendor)));
        json_object_object_add(o, "cpu_model", json_str_or_null(h->cpu_model));
        json_object_object_add(o, "vmx", json_object_new_boolean(h->vmx));
        json_object_object_add(o, "svm", json_object_new_boolean(h->svm));
        json_object_object_add(o, "cpus", json_object_new_int64(h->cpus));
        json_object_object_add(o, "cores", json_object_new_int64(h->cores));
        json_object_object_add(o, "memory", json_object_new_int64((int64_t) h->mem_total));
        json_object_object_add(o, "kvm", json_object_new_boolean(h->kvm_present));
        json_object_object_add(o, "kvm_usable", json_object_new_boolean(h->kvm_usable));
        json_object_object_add(o, "iommu_firmware", json_object_new_boolean(h->iommu_firmware));
        json_object_object_add(o, "iommu_groups", json_object_new_int64(h->iommu_groups));
        json_object_object_add(o, "apple", json_object_new_boolean(h->apple));
        json_object_object_add(o, "dmi_vendor", json_str_or_null(h->dmi_vendor));
        json_object_object_add(o, "dmi_product", json_str_or_null(h->dmi_product));
        json_object_object_add(o, "tpm", json_object_new_boolean(h->tpm_device));
        json_object_object_add(o, "storage", json_object_new_string(host_storage_name(h->storage)));
        json_object *gpus = json_object_new_array();
        for (size_t i = 0; i < h->n_gpus; i++) {
                const struct host_gpu *g = &h->gpus[i];
                json_object *x = json_object_new_object();
                json_object_object_add(x, "address", json_object_new_string(g->address));
                json_object_object_add(x, "vendor_id", json_object_new_string(g->vendor_id));
                json_object_object_add(x, "device_id", json_object_new_string(g->device_id));
                json_object_object_add(x, "name", json_str_or_null(g->name));
                json_object_object_add(x, "driver", json_str_or_null(g->driver));
                json_object_object_add(x, "render_node", json_str_or_null(g->render_node));
                json_object_object_add(x, "iommu_group", g->iommu_group >= 0 ? json_object_new_int(g->iommu_group) : NULL);
                json_object_object_add(x, "sriov_totalvfs", json_object_new_int64(g->sriov_totalvfs));
                json_object_object_add(x, "mdev", json_object_new_boolean(g->has_mdev));
                json_object_object_add(x, "boot_vga", json_object_new_boolean(g->boot_vga));
                json_object_array_add(gpus, x);
        }
        json_object_object_add(o, "gpus", gpus);
        return o;
}

static json_object *budget_json(const struct host_facts *h) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "reserve_cpus", json_object_new_int64(h->reserve_cpus));
        json_object_object_add(o, "reserve_memory", json_object_new_int64((int64_t) h->reserve_mem));
        json_object_object_add(o, "vm_cpus_max", json_object_new_int64(h->vm_cpus_max));
        json_object_object_add(o, "vm_memory_max", json_object_new_int64((int64_t) h->vm_mem_max));
        json_object_object_add(o, "config", json_str_or_null(h->conf_path));
        return o;
}

static const char *class_name_of(const struct host_pci_list *l, const char *address) {
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->v[i].address, address) == 0)
                        return l->v[i].class_name;
        return NULL;
}

static json_object *modules_json(const strv *files) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < files->n; i++)
                for (size_t j = 0; j < host_qemu_modules_n; j++) {
                        const struct host_qemu_module *x = &host_qemu_modules[j];
                        if (strcmp(x->file, files->v[i]) != 0)
                                continue;
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "file", json_object_new_string(x->file));
                        json_object_object_add(o, "package", json_object_new_string(x->package));
                        json_object_object_add(o, "feature", json_object_new_string(x->feature));
                        json_object_array_add(a, o);
                }
        return a;
}

json_object *host_check_report_to_json(const struct host_facts *h, const struct host_check_report *rep) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "root", json_object_new_string(h->root));
        json_object *checks = json_object_new_array();
        for (size_t i = 0; i < rep->n; i++) {
                const struct host_check_result *c = &rep->v[i];
                json_object *x = json_object_new_object();
                json_object_object_add(x, "id", json_object_new_string(c->id));
                json_object_object_add(x, "title", json_object_new_string(c->title));
                json_object_object_add(x, "status", json_object_new_string(host_check_status_name(c->status)));
                json_object_object_add(x, "detail", json_object_new_string(c->detail));
                json_object_object_add(x, "remedy", json_str_or_null(c->remedy));
                json_object_array_add(checks, x);
        }
        json_object_object_add(o, "checks", checks);
        json_object *v = json_object_new_object();
        json_object_object_add(v, "tier", json_object_new_string(host_tier_name(rep->tier)));
        json_object *so = json_object_new_array();
        for (size_t i = 0; i < rep->short_of.n; i++)
                json_object_array_add(so, json_object_new_string(rep->short_of.v[i]));
        json_object_object_add(v, "short_of", so);
        json_object_object_add(o, "verdict", v);
        json_object_object_add(o, "budget", budget_json(h));
        json_object *qm = json_object_new_object();
        json_object_object_add(qm, "dir", json_str_or_null(rep->modules.dir));
        json_object_object_add(qm, "found", modules_json(&rep->modules.found));
        json_object_object_add(qm, "missing", modules_json(&rep->modules.missing));
        json_object_object_add(o, "qemu_modules", qm);
        json_object_object_add(o, "facts", facts_json(h));
        return o;
}

json_object *host_pci_list_to_json(const struct host_pci_list *l) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < l->n; i++) {
                const struct host_pci_device *d = &l->v[i];
                json_object *x = json_object_new_object();
                char cls[16];
                snprintf(cls, sizeof cls, "0x%06x", d->class_code);
                json_object_object_add(x, "address", json_object_new_string(d->address));
                json_object_object_add(x, "class", json_object_new_string(cls));
                json_object_object_add(x, "class_name", json_str_or_null(d->class_name));
                json_object_object_add(x, "vendor_id", json_object_new_string(d->vendor_id));
                json_object_object_add(x, "device_id", json_object_new_string(d->device_id));
                json_object_object_add(x, "vendor", json_str_or_null(d->vendor_name));
                json_object_object_add(x, "device", json_str_or_null(d->device_name));
                json_object_object_add(x, "driver", json_str_or_null(d->driver));
                json_object_object_add(x, "iommu_group", d->iommu_group >= 0 ? json_object_new_int(d->iommu_group) : NULL);
                json_object_object_add(x, "assignable", json_object_new_boolean(d->assignable));
                json_object *with = json_object_new_array(), *blk = json_object_new_array();
                for (size_t j = 0; j < d->group_with.n; j++)
                        json_object_array_add(with, json_object_new_string(d->group_with.v[j]));
                for (size_t j = 0; j < d->group_blockers.n; j++) {
                        json_object *b = json_object_new_object();
                        json_object_object_add(b, "address", json_object_new_string(d->group_blockers.v[j]));
                        json_object_object_add(b, "class_name", json_str_or_null(class_name_of(l, d->group_blockers.v[j])));
                        json_object_array_add(blk, b);
                }
                json_object_object_add(x, "with", with);
                json_object_object_add(x, "blockers", blk);
                json_object_array_add(a, x);
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "devices", a);
        return o;
}

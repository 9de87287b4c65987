/* SPDX-License-Identifier: MIT */
/*
 * What osinfo-db knows about an OS, through libosinfo: identity, release
 * dates, resources, the devices it has drivers for, install media (media
 * detection).  Debian 12's osinfo-db predates Debian 12, Ubuntu 24.04 and
 * Fedora 38+, so <data dir>/osinfo holds an overlay in osinfo's own format
 * (docs/catalog.md says where it came from); it is loaded after the system
 * database.
 */
#include "catalog.h"
#include "osinfo-db.h"

#include <osinfo/osinfo.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "vm/profile.h"

#define GiB (1024ULL * 1024 * 1024)

static pthread_once_t db_once = PTHREAD_ONCE_INIT;
static OsinfoLoader *db_loader;
static char db_error[1024];

static void db_load(void) {
        GError *gerr = NULL;
        char overlay[512];
        db_loader = osinfo_loader_new();
        osinfo_loader_process_default_path(db_loader, &gerr);
        if (gerr) {
                snprintf(db_error, sizeof db_error, "cannot load osinfo-db: %s", gerr->message);
                g_clear_error(&gerr);
                return;
        }
        snprintf(overlay, sizeof overlay, "%s/osinfo", catalog_data_dir());
        if (g_file_test(overlay, G_FILE_TEST_IS_DIR)) {
                osinfo_loader_process_path(db_loader, overlay, &gerr);
                if (gerr) {
                        snprintf(db_error, sizeof db_error, "cannot load Phyllome's osinfo overlay '%s': %s",
                                 overlay, gerr->message);
                        g_clear_error(&gerr);
                }
        }
}

/* One database per process, loaded once (libosinfo reads a few thousand files). */
static OsinfoDb *db_get(phy_error *err) {
        pthread_once(&db_once, db_load);
        if (db_error[0]) {
                phy_error_set(err, EIO, "%s", db_error);
                return NULL;
        }
        return osinfo_loader_get_db(db_loader);
}

void catalog_osinfo_preload(void) {
        pthread_once(&db_once, db_load);
}

void catalog_osinfo_done(struct catalog_osinfo *o) {
        free(o->id);
        free(o->short_id);
        free(o->name);
        free(o->vendor);
        free(o->family);
        free(o->distro);
        free(o->version);
        free(o->release_date);
        free(o->eol_date);
        *o = (struct catalog_osinfo) { 0 };
}

static char *dup0(const char *s) {
        return s ? strdup(s) : NULL;
}

/* x86_64 or "all" resources; 0 where osinfo says nothing. */
static void resources(OsinfoResourcesList *l, unsigned *cpus, uint64_t *ram, uint64_t *storage) {
        if (!l)
                return;
        for (int i = 0; i < osinfo_list_get_length(OSINFO_LIST(l)); i++) {
                OsinfoResources *r = OSINFO_RESOURCES(osinfo_list_get_nth(OSINFO_LIST(l), i));
                const char *arch = osinfo_resources_get_architecture(r);
                if (arch && strcmp(arch, "x86_64") != 0 && strcmp(arch, "all") != 0)
                        continue;
                /* x86_64 wins over all */
                bool exact = arch && strcmp(arch, "x86_64") == 0;
                gint n = osinfo_resources_get_n_cpus(r);
                gint64 m = osinfo_resources_get_ram(r), s = osinfo_resources_get_storage(r);
                if (n > 0 && (exact || !*cpus))
                        *cpus = (unsigned) n;
                if (m > 0 && (exact || !*ram))
                        *ram = (uint64_t) m;
                if (s > 0 && (exact || !*storage))
                        *storage = (uint64_t) s;
        }
}

static int fill(OsinfoOs *os, struct catalog_osinfo *ret) {
        OsinfoProduct *p = OSINFO_PRODUCT(os);
        struct catalog_osinfo o = { .known = true };
        o.id = dup0(osinfo_entity_get_id(OSINFO_ENTITY(os)));
        o.short_id = dup0(osinfo_product_get_short_id(p));
        o.name = dup0(osinfo_product_get_name(p));
        o.vendor = dup0(osinfo_product_get_vendor(p));
        o.family = dup0(osinfo_os_get_family(os));
        o.distro = dup0(osinfo_os_get_distro(os));
        o.version = dup0(osinfo_product_get_version(p));
        o.release_date = dup0(osinfo_product_get_release_date_string(p));
        o.eol_date = dup0(osinfo_product_get_eol_date_string(p));
        if (!o.id || !o.name) {
                catalog_osinfo_done(&o);
                return -ENOMEM;
        }
        OsinfoResourcesList *l = osinfo_os_get_minimum_resources(os);
        resources(l, &o.min_cpus, &o.min_ram, &o.min_storage);
        g_clear_object(&l);
        l = osinfo_os_get_recommended_resources(os);
        resources(l, &o.rec_cpus, &o.rec_ram, &o.rec_storage);
        g_clear_object(&l);

        /* Drivers, inherited ones included (derives-from, clones). */
        OsinfoDeviceList *devs = osinfo_os_get_all_devices(os, NULL);
        for (int i = 0; devs && i < osinfo_list_get_length(OSINFO_LIST(devs)); i++) {
                const char *id = osinfo_entity_get_id(osinfo_list_get_nth(OSINFO_LIST(devs), i));
                static const char pci[] = "http://pcisig.com/pci/1af4/";
                if (!id || strncmp(id, pci, sizeof pci - 1) != 0)
                        continue;
                const char *dev = id + sizeof pci - 1;
                if (!strcmp(dev, "1001") || !strcmp(dev, "1042"))
                        o.virtio_block = true;
                else if (!strcmp(dev, "1000") || !strcmp(dev, "1041"))
                        o.virtio_net = true;
                else if (!strcmp(dev, "1050"))
                        o.virtio_gpu = true;
                else if (!strcmp(dev, "1052"))
                        o.virtio_input = true;
        }
        g_clear_object(&devs);
        OsinfoMediaList *media = osinfo_os_get_media_list(os);
        o.has_media = media && osinfo_list_get_length(OSINFO_LIST(media)) > 0;
        g_clear_object(&media);
        *ret = o;
        return 0;
}

static OsinfoOs *find_os(OsinfoDb *db, const char *id) {
        OsinfoOs *os = osinfo_db_get_os(db, id);
        if (os)
                return os;
        OsinfoOsList *all = osinfo_db_get_os_list(db);
        for (int i = 0; !os && i < osinfo_list_get_length(OSINFO_LIST(all)); i++) {
                OsinfoOs *c = OSINFO_OS(osinfo_list_get_nth(OSINFO_LIST(all), i));
                GList *ids = osinfo_entity_get_param_value_list(OSINFO_ENTITY(c), OSINFO_PRODUCT_PROP_SHORT_ID);
                for (GList *g = ids; g; g = g->next)
                        if (strcmp(g->data, id) == 0) {
                                os = c;
                                break;
                        }
                g_list_free(ids);
        }
        g_object_unref(all);
        return os;
}

OsinfoOs *catalog_osinfo_os(const char *id, phy_error *err) {
        OsinfoDb *db = db_get(err);
        if (!db)
                return NULL;
        OsinfoOs *os = find_os(db, id);
        if (!os)
                phy_error_set(err, ENOENT, "osinfo-db knows no OS '%s'; see 'osinfo-query os'", id);
        return os;
}

int catalog_osinfo_lookup(const char *id, struct catalog_osinfo *ret, phy_error *err) {
        OsinfoDb *db = db_get(err);
        if (!db)
                return -EIO;
        OsinfoOs *os = find_os(db, id);
        if (!os)
                return phy_error_set(err, ENOENT, "osinfo-db knows no OS '%s'; see 'osinfo-query os'", id);
        if (fill(os, ret) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        return 0;
}

OsinfoMedia *catalog_osinfo_media(const char *path, char **ret_volume_id, phy_error *err) {
        OsinfoDb *db = db_get(err);
        if (!db)
                return NULL;
        GError *gerr = NULL;
        OsinfoMedia *m = osinfo_media_create_from_location(path, NULL, &gerr);
        if (!m) {
                /* no OS is found on it (the kind "no OS matches" has too), not a failure of the system */
                phy_error_set_kind(err, PHY_ERR_NOT_FOUND, EINVAL, "'%s' is not an ISO 9660 image osinfo can read: %s", path,
                              gerr ? gerr->message : "unknown error");
                g_clear_error(&gerr);
                return NULL;
        }
        const char *vol = osinfo_media_get_volume_id(m);
        int r = 0;
        if (ret_volume_id && !(*ret_volume_id = strdup(vol ? vol : "")))
                r = phy_error_set(err, ENOMEM, "out of memory");
        if (r >= 0 && !osinfo_db_identify_media(db, m))
                r = phy_error_set(err, ENOENT, "osinfo-db knows no OS with the media of '%s' (volume id '%s', "
                                  "publisher '%s', application '%s')", path, vol ? vol : "",
                                  osinfo_media_get_publisher_id(m) ? osinfo_media_get_publisher_id(m) : "",
                                  osinfo_media_get_application_id(m) ? osinfo_media_get_application_id(m) : "");
        if (r < 0) {
                if (ret_volume_id) {
                        free(*ret_volume_id);
                        *ret_volume_id = NULL;
                }
                g_object_unref(m);
                return NULL;
        }
        return m;
}

int catalog_media_identify(const char *path, struct catalog_osinfo *ret, char **ret_volume_id, phy_error *err) {
        OsinfoMedia *m = catalog_osinfo_media(path, ret_volume_id, err);
        if (!m)
                return err->code ? -err->code : -EIO;
        int r = 0;
        OsinfoOs *os = osinfo_media_get_os(m);
        if (!os || fill(os, ret) < 0)
                r = phy_error_set(err, ENOMEM, "out of memory");
        g_clear_object(&os);
        if (r < 0 && ret_volume_id) {
                free(*ret_volume_id);
                *ret_volume_id = NULL;
        }
        g_object_unref(m);
        return r;
}

/* osinfo family and short id -> Phyllome profile. */
static const char *profile_for(const struct catalog_osinfo *o) {
        const char *f = o->family ? o->family : "", *s = o->short_id ? o->short_id : "";
        if (strcmp(f, "winnt") == 0) {
                if (strcmp(s, "win11") == 0)
                        return "windows11";
                if (strcmp(s, "win10") == 0 || strncmp(s, "win2k1", 6) == 0 || strncmp(s, "win2k2", 6) == 0)
                        return "windows10";
                return "other";
        }
        if (strcmp(f, "linux") == 0)
                return "linux";
        if (strcmp(f, "freebsd") == 0 || strcmp(f, "netbsd") == 0 || strcmp(f, "openbsd") == 0 ||
            strcmp(f, "dragonfly") == 0)
                return "freebsd";
        return "other";
}

static uint64_t round_gib(uint64_t v) {
        return (v + GiB - 1) / GiB * GiB;
}

int catalog_plan_for(const struct catalog_osinfo *o, const char *profile, struct catalog_plan *ret, phy_error *err) {
        struct catalog_plan p = { 0 };
        const char *name = profile ? profile : profile_for(o);
        if (!(p.profile = vm_profile_find(name)))
                return phy_error_set(err, EINVAL, "unknown profile '%s' for %s; use one of: %s", name, o->name,
                                     vm_profile_names());
        const struct vm_profile *pr = p.profile;
        /* osinfo's recommendation when it has one, else the profile's default
         * raised to osinfo's minimum; never below the profile's minimum.  A
         * value equal to the profile's default stays unset (the profile caps
         * it to the host's budget). */
        unsigned cpus = o->rec_cpus ? MAX(o->rec_cpus, o->min_cpus) : MAX(pr->cores, o->min_cpus);
        cpus = MAX(cpus, pr->min_cores);
        p.cores = cpus != pr->cores ? cpus : 0;
        uint64_t ram = o->rec_ram ? MAX(o->rec_ram, o->min_ram) : MAX(pr->memory, o->min_ram);
        ram = MAX(ram, pr->min_memory);
        p.memory = ram != pr->memory ? ram : 0;
        uint64_t disk = o->rec_storage ? MAX(o->rec_storage, o->min_storage) : MAX(pr->disk_size, o->min_storage);
        disk = round_gib(MAX(disk, pr->min_disk));
        p.disk = disk != pr->disk_size ? disk : 0;
        /* virtio only where the OS has the driver; osinfo's device lists
         * are only trusted when they say anything about virtio at all. */
        bool knows = o->virtio_block || o->virtio_net || o->virtio_gpu || o->virtio_input;
        if (knows) {
                if (pr->disk_bus == VM_BUS_VIRTIO && !o->virtio_block)
                        p.disk_bus = VM_BUS_SATA;
                if (pr->nic == VM_NIC_VIRTIO && !o->virtio_net)
                        p.nic = VM_NIC_E1000E;
                if ((pr->gpu == VM_GPU_VIRTIO || pr->gpu_gl == VM_GPU_VIRGL) && !o->virtio_gpu)
                        p.gpu = VM_GPU_STD;
        }
        *ret = p;
        return 0;
}

static void jstr(json_object *o, const char *k, const char *v) {
        if (v)
                json_object_object_add(o, k, json_object_new_string(v));
}

json_object *catalog_osinfo_json(const struct catalog_osinfo *o) {
        json_object *j = json_object_new_object();
        jstr(j, "id", o->id);
        jstr(j, "short_id", o->short_id);
        jstr(j, "name", o->name);
        jstr(j, "vendor", o->vendor);
        jstr(j, "family", o->family);
        jstr(j, "distro", o->distro);
        jstr(j, "version", o->version);
        jstr(j, "release_date", o->release_date);
        jstr(j, "eol_date", o->eol_date);
        json_object *min = json_object_new_object(), *rec = json_object_new_object();
        if (o->min_cpus)
                json_object_object_add(min, "cpus", json_object_new_int64(o->min_cpus));
        if (o->min_ram)
                json_object_object_add(min, "memory", json_object_new_int64((int64_t) o->min_ram));
        if (o->min_storage)
                json_object_object_add(min, "storage", json_object_new_int64((int64_t) o->min_storage));
        if (o->rec_cpus)
                json_object_object_add(rec, "cpus", json_object_new_int64(o->rec_cpus));
        if (o->rec_ram)
                json_object_object_add(rec, "memory", json_object_new_int64((int64_t) o->rec_ram));
        if (o->rec_storage)
                json_object_object_add(rec, "storage", json_object_new_int64((int64_t) o->rec_storage));
        json_object_object_add(j, "minimum", min);
        json_object_object_add(j, "recommended", rec);
        json_object *v = json_object_new_object();
        json_object_object_add(v, "block", json_object_new_boolean(o->virtio_block));
        json_object_object_add(v, "net", json_object_new_boolean(o->virtio_net));
        json_object_object_add(v, "gpu", json_object_new_boolean(o->virtio_gpu));
        json_object_object_add(v, "input", json_object_new_boolean(o->virtio_input));
        json_object_object_add(j, "virtio_drivers", v);
        return j;
}

json_object *catalog_plan_json(const struct catalog_plan *p) {
        json_object *j = json_object_new_object();
        const struct vm_profile *pr = p->profile;
        json_object_object_add(j, "profile", json_object_new_string(pr->name));
        json_object_object_add(j, "cpus", json_object_new_int64(p->cores ? p->cores : pr->cores));
        json_object_object_add(j, "memory", json_object_new_int64((int64_t) (p->memory ? p->memory : pr->memory)));
        json_object_object_add(j, "disk", json_object_new_int64((int64_t) (p->disk ? p->disk : pr->disk_size)));
        json_object_object_add(j, "disk_bus", json_object_new_string(vm_bus_name(p->disk_bus ? p->disk_bus : pr->disk_bus)));
        json_object_object_add(j, "nic", json_object_new_string(vm_nic_model_name(p->nic ? p->nic : pr->nic)));
        json_object_object_add(j, "gpu", json_object_new_string(vm_gpu_name(p->gpu ? p->gpu : pr->gpu)));
        return j;
}

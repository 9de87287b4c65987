/* SPDX-License-Identifier: MIT */
/* The catalog's verbs (verbs.h): each once, its result as JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "fileio.h"
#include "json-cleanup.h"
#include "verbs.h"
#include "vm/profile.h"

static const struct catalog_entry *find_entry(const struct catalog *c, const char *os, phy_error *err) {
        const struct catalog_entry *e = catalog_find(c, os);
        if (!e)
                phy_error_set(err, ENOENT, "the catalog %s has no OS '%s'; see 'phyllo catalog list'", c->path, os);
        return e;
}

static bool plan_windows(const struct catalog_plan *p) {
        return strncmp(p->profile->name, "windows", 7) == 0;
}

/* POST /v1/vms's members the plan sets (what the profile would not). */
static json_object *plan_create_json(const struct catalog_plan *p) {
        json_object *b = json_object_new_object();
        json_object_object_add(b, "profile", json_object_new_string(p->profile->name));
        if (p->cores)
                json_object_object_add(b, "cpus", json_object_new_int((int) p->cores));
        if (p->memory)
                json_object_object_add(b, "memory", json_object_new_int64((int64_t) p->memory));
        if (p->disk)
                json_object_object_add(b, "disk", json_object_new_int64((int64_t) p->disk));
        if (p->disk_bus)
                json_object_object_add(b, "disk_bus", json_object_new_string(vm_bus_name(p->disk_bus)));
        if (p->nic)
                json_object_object_add(b, "nic", json_object_new_string(vm_nic_model_name(p->nic)));
        if (p->gpu)
                json_object_object_add(b, "gpu", json_object_new_string(vm_gpu_name(p->gpu)));
        return b;
}

/* os, plan, unattended and create into j. */
static void add_os_plan(json_object *j, const struct catalog_osinfo *o, const struct catalog_plan *plan) {
        json_object_object_add(j, "os", catalog_osinfo_json(o));
        json_object_object_add(j, "plan", catalog_plan_json(plan));
        json_object_object_add(j, "unattended", json_object_new_boolean(catalog_unattend_supported(o->id,
                                                                                                  plan_windows(plan))));
        json_object_object_add(j, "create", plan_create_json(plan));
}

/* The catalog, os's entry in it, osinfo's facts and the plan. */
static int entry_plan(const char *catalog, const char *os, struct catalog *c, const struct catalog_entry **ret_e,
                      struct catalog_osinfo *info, struct catalog_plan *plan, phy_error *err) {
        int r;
        if ((r = catalog_load(catalog, c, err)) < 0)
                return r;
        if (!(*ret_e = find_entry(c, os, err)))
                return -ENOENT;
        if ((r = catalog_osinfo_lookup((*ret_e)->osinfo, info, err)) < 0)
                return r;
        return catalog_plan_for(info, (*ret_e)->profile, plan, err);
}

int catalog_verb_show(const char *catalog, const char *os, json_object **ret, phy_error *err) {
        _cleanup_catalog_ struct catalog c = { 0 };
        _cleanup_osinfo_ struct catalog_osinfo o = { 0 };
        struct catalog_plan plan;
        const struct catalog_entry *e;
        int r = entry_plan(catalog, os, &c, &e, &o, &plan, err);
        if (r < 0)
                return r;
        json_object *j = catalog_entry_json(e);
        add_os_plan(j, &o, &plan);
        *ret = j;
        return 0;
}

int catalog_verb_identify(const char *catalog, const char *iso, json_object **ret, phy_error *err) {
        _cleanup_catalog_ struct catalog c = { 0 };
        _cleanup_osinfo_ struct catalog_osinfo o = { 0 };
        _cleanup_free_ char *vol = NULL;
        struct catalog_plan plan;
        int r;
        if ((r = catalog_load(catalog, &c, err)) < 0 || (r = catalog_media_identify(iso, &o, &vol, err)) < 0 ||
            (r = catalog_plan_for(&o, NULL, &plan, err)) < 0)
                return r;
        const struct catalog_entry *e = NULL;
        for (size_t i = 0; i < c.n && !e; i++)
                if (strcmp(c.entries[i].osinfo, o.id) == 0)
                        e = &c.entries[i];
        json_object *j = json_object_new_object();
        json_object_object_add(j, "file", json_object_new_string(iso));
        json_object_object_add(j, "volume_id", json_object_new_string(vol ? vol : ""));
        if (e)
                json_object_object_add(j, "catalog", json_object_new_string(e->id));
        add_os_plan(j, &o, &plan);
        *ret = j;
        return 0;
}

int catalog_verb_verify(const char *catalog, const char *file, json_object **ret, phy_error *err) {
        _cleanup_catalog_ struct catalog c = { 0 };
        int r = catalog_load(catalog, &c, err);
        if (r < 0)
                return r;
        struct catalog_match m = { 0 };
        phy_error why = { 0 };
        r = catalog_verify_file(&c, file, &m, &why);
        if (r < 0 && r != -ENOENT) {
                catalog_match_done(&m);
                *err = why;
                return r;
        }
        json_object *j = json_object_new_object();
        json_object_object_add(j, "file", json_object_new_string(file));
        json_object_object_add(j, "sha256", json_object_new_string(m.sha256));
        json_object_object_add(j, "verified", json_object_new_boolean(r >= 0));
        if (m.os)
                json_object_object_add(j, "os", json_object_new_string(m.os));
        if (m.file)
                json_object_object_add(j, "vendor_name", json_object_new_string(m.file));
        if (m.how)
                json_object_object_add(j, "how", json_object_new_string(m.how));
        if (r < 0)
                json_object_object_add(j, "message", json_object_new_string(phy_error_message(&why)));
        catalog_match_done(&m);
        *ret = j;
        return 0;
}

int catalog_verb_download(const char *catalog, const char *os, const struct catalog_verb_download *o,
                          json_object **ret, phy_error *err) {
        _cleanup_catalog_ struct catalog c = { 0 };
        _cleanup_free_ char *file = NULL;
        const struct catalog_entry *e;
        int r;
        if ((r = catalog_load(catalog, &c, err)) < 0)
                return r;
        if (!(e = find_entry(&c, os, err)))
                return -ENOENT;
        struct catalog_download_opts d = { .dir = o->dir, .unverified = o->unverified, .progress = o->progress,
                                           .userdata = o->userdata, .cancel = o->cancel };
        r = catalog_download(e, &d, &file, err);
        if (r == -ECANCELED && o->drop_partial) {
                /* where catalog_download writes: <dir>/<name>.part */
                _cleanup_free_ char *dir = NULL, *name = NULL, *part = NULL;
                phy_error ignored = { 0 };
                if ((o->dir || catalog_media_dir(&dir, &ignored) >= 0) && catalog_media_name(e, &name, &ignored) >= 0 &&
                    asprintf(&part, "%s/%s.part", o->dir ? o->dir : dir, name) >= 0)
                        (void) unlink(part);
                phy_error_set(err, ECANCELED, "the download of %s was cancelled; its partial file is removed", e->id);
        }
        if (r < 0)
                return r;
        json_object *j = json_object_new_object();
        json_object_object_add(j, "os", json_object_new_string(e->id));
        json_object_object_add(j, "path", json_object_new_string(file));
        json_object_object_add(j, "verified", json_object_new_boolean(e->sig != CATALOG_SIGNED_NONE || e->sha256.n));
        *ret = j;
        return 0;
}

int catalog_verb_install(const char *catalog, const char *os, const char *iso, const char *profile,
                         struct catalog_unattend *u, const char *password_file, json_object **ret, phy_error *err) {
        _cleanup_catalog_ struct catalog c = { 0 };
        _cleanup_osinfo_ struct catalog_osinfo info = { 0 };
        _cleanup_free_ char *pw = NULL;
        struct catalog_plan plan = { 0 };
        const char *osinfo_id;
        int r;
        if (!iso)
                return phy_error_usage(err, "an unattended install needs the install media: give --iso FILE (or "
                                       "--os with a direct download)");
        const struct catalog_entry *e;
        if (os) {
                if ((r = entry_plan(catalog, os, &c, &e, &info, &plan, err)) < 0)
                        return r;
        } else if ((r = catalog_media_identify(iso, &info, NULL, err)) < 0 ||
                   (r = catalog_plan_for(&info, NULL, &plan, err)) < 0)
                return r;
        osinfo_id = info.id;
        if ((r = catalog_unattend_read_password(password_file, &pw, err)) < 0)
                return r;
        u->password = pw;
        struct catalog_install in = { 0 };
        r = catalog_unattend_install(osinfo_id, strncmp(profile ? profile : plan.profile->name, "windows", 7) == 0,
                                     iso, u, &in, err);
        u->password = NULL;
        explicit_bzero(pw, strlen(pw));
        if (r < 0)
                return r;
        json_object *j = json_object_new_object();
        json_object_object_add(j, "profile", json_object_new_string(plan.profile->name));
        json_object_object_add(j, "install", catalog_install_json(&in));
        /* the password's copies in this process go as soon as the reply is made */
        explicit_bzero(in.answer, strlen(in.answer));
        catalog_install_done(&in);
        *ret = j;
        return 0;
}

/* Writes name under dir (0600), atomically. */
static int out_file(const char *dir, const char *name, const char *data, size_t len, char **ret, phy_error *err) {
        if (asprintf(ret, "%s/%s", dir, name) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        return file_write_atomic(*ret, data, len, 0600, err);
}

int catalog_verb_unattend(const char *catalog, const char *os, struct catalog_unattend *u, const char *password_file,
                          const char *out, const char *initrd, json_object **ret, phy_error *err) {
        _cleanup_catalog_ struct catalog c = { 0 };
        _cleanup_osinfo_ struct catalog_osinfo info = { 0 };
        _cleanup_free_ char *pw = NULL, *text = NULL, *fname = NULL, *answer = NULL, *image = NULL, *initrd_out = NULL;
        struct catalog_plan plan;
        const struct catalog_entry *e;
        int r;
        if ((r = entry_plan(catalog, os, &c, &e, &info, &plan, err)) < 0 ||
            (r = catalog_unattend_read_password(password_file, &pw, err)) < 0)
                return r;
        if (mkdir_p(out, 0700) < 0)
                return phy_error_set(err, errno, "cannot create '%s': %s", out, strerror(errno));
        u->password = pw;
        if (plan_windows(&plan)) {
                if ((r = catalog_unattend_windows(u, &text, err)) < 0 ||
                    (r = out_file(out, "autounattend.xml", text, strlen(text), &answer, err)) < 0)
                        goto done;
                if (asprintf(&image, "%s/unattend.iso", out) < 0) {
                        image = NULL;
                        r = phy_error_set(err, ENOMEM, "out of memory");
                        goto done;
                }
                r = catalog_unattend_iso(text, image, err);
        } else {
                if ((r = catalog_unattend_osinfo(e->osinfo, u, &text, &fname, err)) < 0 ||
                    (r = out_file(out, fname, text, strlen(text), &answer, err)) < 0)
                        goto done;
                if (initrd) {
                        if (asprintf(&initrd_out, "%s/initrd-unattended.gz", out) < 0) {
                                initrd_out = NULL;
                                r = phy_error_set(err, ENOMEM, "out of memory");
                                goto done;
                        }
                        r = catalog_initrd_inject(initrd, initrd_out, fname, text, strlen(text), err);
                }
        }
done:
        u->password = NULL;
        explicit_bzero(pw, strlen(pw));
        if (text)
                explicit_bzero(text, strlen(text));
        if (r < 0)
                return r;
        json_object *j = json_object_new_object();
        json_object_object_add(j, "os", json_object_new_string(e->id));
        json_object_object_add(j, "answer_file", json_object_new_string(answer));
        if (image)
                json_object_object_add(j, "image", json_object_new_string(image));
        if (initrd_out)
                json_object_object_add(j, "initrd", json_object_new_string(initrd_out));
        *ret = j;
        return 0;
}

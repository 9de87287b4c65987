/* SPDX-License-Identifier: MIT */
/* Moving VMs in and out (issue 17): libvirt domains, quickemu
 * configurations and OVA/OVF appliances imported; a VM exported to libvirt.
 * src/interop does the work; here the verbs' arguments, checks and results. */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops.h"
#include "exec.h"
#include "fileio.h"
#include "interop/interop.h"
#include "vm/env.h"
#include "vm/profile.h"

static const char *const kinds[] = { "libvirt", "quickemu", "ova", "ovf" };

/* The domain XML of `virsh -c URI dumpxml --inactive --domain NAME`
 * (an argv, never a shell; names that look like options refused). */
static int virsh_dumpxml(const char *uri, const char *domain, char **ret, size_t *ret_len, phy_error *err) {
        if (!uri[0] || uri[0] == '-' || !domain[0] || domain[0] == '-' || strpbrk(uri, "\n\r") ||
            strpbrk(domain, "\n\r"))
                return phy_error_usage(err, "invalid libvirt URI '%s' or domain '%s'", uri, domain);
        _cleanup_free_ char *virsh = exec_find_in_path("virsh");
        if (!virsh)
                return phy_error_set_kind(err, PHY_ERR_UNSUPPORTED, ENOENT, "cannot find virsh to read domain '%s' "
                                          "from %s; install libvirt-clients (apt-get install libvirt-clients)",
                                          domain, uri);
        char *argv[] = { virsh, "-q", "-c", (char *) uri, "dumpxml", "--inactive", "--domain", (char *) domain, NULL };
        char msg[1024];
        int r = exec_run(argv, ret, msg, sizeof msg);
        if (r < 0)
                return phy_error_set(err, r == -EFBIG ? EFBIG : EIO, "virsh -c %s dumpxml %s failed: %s", uri, domain,
                                     msg[0] ? msg : strerror(-r));
        *ret_len = strlen(*ret);
        return 0;
}

/* Every file the plan reads: the caller must be able to read it too
 * (phyllod does not lend its reach). */
static int caller_reads(const struct ops_ctx *c, const struct interop_plan *p, phy_error *err) {
        for (size_t i = 0; i < p->n_files; i++)
                if (!ops_caller_may(c, p->files[i].src, R_OK))
                        return phy_error_set(err, EACCES, "%s: uid %u may not read '%s'", p->files[i].what,
                                             (unsigned) c->uid, p->files[i].src);
        const struct vm_def *d = &p->def;
        for (size_t i = 0; i < d->n_disks; i++)
                if (d->disks[i].path[0] == '/' && !ops_caller_may(c, d->disks[i].path, R_OK | W_OK))
                        return phy_error_set(err, EACCES, "disk '%s': uid %u may not write '%s'", d->disks[i].name,
                                             (unsigned) c->uid, d->disks[i].path);
        for (size_t i = 0; i < d->n_cdroms; i++)
                if (d->cdroms[i].path && !ops_caller_may(c, d->cdroms[i].path, R_OK))
                        return phy_error_set(err, EACCES, "CD-ROM '%s': uid %u may not read '%s'", d->cdroms[i].name,
                                             (unsigned) c->uid, d->cdroms[i].path);
        return 0;
}

int ops_import_foreign(const struct ops_ctx *c, const struct ops_import_foreign *o, json_object **ret,
                       phy_error *err) {
        int r;
        size_t k = 0;
        while (k < ELEMENTSOF(kinds) && (!o->kind || strcmp(kinds[k], o->kind) != 0))
                k++;
        if (k == ELEMENTSOF(kinds))
                return phy_error_set_kind(err, PHY_ERR_NOT_FOUND, ENOENT, "unknown import format '%s'; use libvirt, "
                                          "quickemu or ova",
                                       o->kind ? o->kind : "");
        if (o->name && (r = ops_name_check("VM name", o->name, err)) < 0)
                return r;
        if (o->profile && !vm_profile_find(o->profile))
                return phy_error_usage(err, "unknown profile '%s'; use one of: %s", o->profile, vm_profile_names());
        bool from = o->uri || o->domain;
        if (from && (k != 0 || !o->uri || !o->domain || o->file))
                return phy_error_usage(err, "--from URI DOMAIN reads a libvirt domain, instead of a file");
        if (!from && !o->file)
                return phy_error_usage(err, "a file to import is required");
        /* virsh runs as this process: a peer of phyllod must be phyllod's own user (or root). */
        if (from && c->uid != 0 && c->uid != geteuid())
                return phy_error_set(err, EPERM, "reading a libvirt domain through phyllod needs phyllod's user; "
                                     "export it with 'virsh dumpxml' and import the file");
        _cleanup_free_ char *file = NULL, *text = NULL, *tpm_state = NULL, *base = NULL;
        size_t len = 0;
        if (o->file && (r = ops_input_path(c, "file", o->file, &file, err)) < 0)
                return r;
        if (o->tpm_state && (r = ops_input_path(c, "TPM state directory", o->tpm_state, &tpm_state, err)) < 0)
                return r;
        struct interop_opts io = { .name = o->name, .profile = o->profile, .reference = o->reference,
                                   .tpm_state = tpm_state, .libvirt_uri = from ? o->uri : NULL,
                                   .allow_no_manifest = o->no_manifest };
        _cleanup_close_ int ova_lock = -1;
        _cleanup_interop_plan_ struct interop_plan p = { 0 };
        if (k == 2) {
                /* Extracted into the home (disks are large), removed with the
                 * plan; held (ova_lock) until then, so no sweep takes it. */
                _cleanup_free_ char *work = NULL;
                if ((r = vm_tmpdir_make(c->home, "ova", NULL, &work, &ova_lock, err)) < 0)
                        return r;
                r = interop_ova_open(file, work, &io, &p, err);
                if (!p.tmpdir)
                        (void) rm_rf(work);
        } else {
                if (from)
                        r = virsh_dumpxml(o->uri, o->domain, &text, &len, err);
                else if ((r = file_read_all(file, INTEROP_TEXT_MAX, &text, &len)) < 0)
                        r = r == -EFBIG ? phy_error_set_kind(err, PHY_ERR_TOO_LARGE, EFBIG, "'%s' is larger than %u "
                                                             "bytes; a description is a few kilobytes", file,
                                                             INTEROP_TEXT_MAX)
                                        : phy_error_set(err, -r, "cannot read '%s': %s", file, strerror(-r));
                if (r < 0)
                        return r;
                char src[PATH_MAX + 64];
                if (from)
                        snprintf(src, sizeof src, "%s domain '%s'", o->uri, o->domain);
                else
                        snprintf(src, sizeof src, "%s", file);
                if (k == 0)
                        r = interop_libvirt_parse(src, text, len, &io, &p, err);
                else if (k == 1) {
                        const char *slash = strrchr(file, '/');
                        if (!(base = strndup(file, slash > file ? (size_t) (slash - file) : 1)))
                                return phy_error_set(err, ENOMEM, "out of memory");
                        io.base_dir = base;
                        r = interop_quickemu_parse(src, text, &io, &p, err);
                } else {
                        const char *slash = strrchr(file, '/');
                        if (!(base = strndup(file, slash > file ? (size_t) (slash - file) : 1)))
                                return phy_error_set(err, ENOMEM, "out of memory");
                        r = interop_ovf_parse(src, text, len, base, &io, &p, err);
                }
        }
        if (r < 0 || (r = caller_reads(c, &p, err)) < 0)
                return r;
        struct vm_env e = { 0 };
        r = vm_env_load(c->root, true, &e, err);
        if (r >= 0)
                r = interop_place(c->home, &p, &e.host, vm_env_caps(&e), e.tools.qemu_img, err);
        vm_env_done(&e);
        if (r < 0)
                return r;
        _cleanup_free_ char *dir = vm_dir(c->home, p.def.name);
        json_object *x = json_object_new_object();
        json_object_object_add(x, "name", json_object_new_string(p.def.name));
        json_object_object_add(x, "profile", json_object_new_string(p.def.profile));
        json_object_object_add(x, "uuid", json_object_new_string(p.def.uuid));
        json_object_object_add(x, "dir", dir ? json_object_new_string(dir) : NULL);
        json_object_object_add(x, "source", json_object_new_string(p.source ? p.source : ""));
        json_object_object_add(x, "report", interop_report_json(&p.report));
        *ret = x;
        return 0;
}

int ops_export_libvirt(const struct ops_ctx *c, const char *name, const char *dir, const char *target,
                       json_object **ret, phy_error *err) {
        _cleanup_ops_vm_ struct ops_vm vm = { 0 };
        int r = ops_vm_open(c, name, OPS_READ, &vm, err);
        if (r < 0)
                return r;
        if (ops_vm_active(&vm))
                return phy_error_set(err, EBUSY, "VM '%s' is running; stop it before exporting (its disks would be "
                                     "copied while they change)", name);
        if (!dir || dir[0] != '/')
                return phy_error_usage(err, "the export directory '%s' must be an absolute path", dir ? dir : "");
        if (target && target[0] != '/')
                return phy_error_usage(err, "the target '%s' must be an absolute path", target);
        /* The caller's directory: it must be able to write there itself. */
        _cleanup_free_ char *parent = strdup(dir);
        if (!parent)
                return phy_error_set(err, ENOMEM, "out of memory");
        char *slash = strrchr(parent, '/');
        if (slash == parent)
                slash[1] = '\0';
        else
                *slash = '\0';
        if (!ops_caller_may(c, access(dir, F_OK) == 0 ? dir : parent, W_OK))
                return phy_error_set(err, EACCES, "cannot export into '%s': uid %u may not write there", dir,
                                     (unsigned) c->uid);
        struct vm_env e = { 0 };
        _cleanup_vm_def_ struct vm_def m = { 0 };
        struct interop_report rep = { 0 };
        _cleanup_free_ char *xml = NULL, *vmdir = vm_dir(c->home, name);
        r = vm_env_load(c->root, true, &e, err);
        if (r >= 0)
                r = vm_model_resolve(&vm.def, &e.host, vm_env_caps(&e), &m, err);
        const char *tcg = getenv("PHYLLOME_FORCE_TCG");
        struct interop_export_opts eo = { .target = target, .qemu_img = e.tools.qemu_img,
                                          .kvm = e.host.kvm_usable && (e.host.vmx || e.host.svm) &&
                                                 !(tcg && strcmp(tcg, "1") == 0) };
        if (r >= 0)
                r = interop_libvirt_export(&vm.def, &m, vmdir, dir, &eo, &rep, &xml, err);
        vm_env_done(&e);
        if (r < 0) {
                interop_report_done(&rep);
                return r;
        }
        json_object *x = json_object_new_object();
        json_object_object_add(x, "name", json_object_new_string(name));
        json_object_object_add(x, "dir", json_object_new_string(dir));
        json_object_object_add(x, "xml", json_object_new_string(xml));
        json_object_object_add(x, "domain_type", json_object_new_string(eo.kvm ? "kvm" : "qemu"));
        json_object_object_add(x, "report", interop_report_json(&rep));
        interop_report_done(&rep);
        *ret = x;
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* Edits of a definition's networks and shares (phyllo net/share commands).
 * They change only the struct; the caller saves it with vm_def_save. */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "net.h"
#include "vm/vm.h"
#include "value.h"

struct vm_nic *net_def_nic(struct vm_def *d, const char *nic) {
        for (size_t i = 0; i < d->n_nics; i++)
                if (!nic || strcmp(d->nics[i].name, nic) == 0)
                        return &d->nics[i];
        return NULL;
}

static int no_nic(const struct vm_def *d, const char *nic, phy_error *err) {
        if (!nic)
                return phy_error_set(err, ENOENT, "VM '%s' has no network; add one with 'phyllo net nic add %s NIC'",
                                     d->name, d->name);
        return phy_error_set(err, ENOENT, "VM '%s' has no network named '%s'; 'phyllo show %s' lists them", d->name,
                             nic, d->name);
}

/* Same protocol, same host port and an overlapping address: one listener. */
static bool forwards_clash(const struct value_forward *a, const struct value_forward *b) {
        return strcmp(a->proto, b->proto) == 0 && a->host_port == b->host_port &&
               strcmp(value_forward_addr(a), value_forward_addr(b)) == 0;
}

int net_def_forward_add(struct vm_def *d, const char *nic, const char *spec, phy_error *err) {
        struct value_forward f;
        if (value_forward_parse(spec, &f) < 0)
                return phy_error_usage(err, "invalid forward '%s'; use PROTOCOL:[ADDRESS:]HOSTPORT:GUESTPORT "
                                     "(e.g. tcp:2222:22)", spec);
        struct vm_nic *n = net_def_nic(d, nic);
        if (!n)
                return no_nic(d, nic, err);
        if (n->mode != VM_NET_USER && n->mode != VM_NET_UNSET)
                return phy_error_usage(err, "network '%s' of VM '%s' is in mode '%s'; forwards need mode user",
                                     n->name, d->name, vm_net_mode_name(n->mode));
        for (size_t i = 0; i < d->n_nics; i++)
                for (size_t k = 0; k < d->nics[i].forwards.n; k++) {
                        struct value_forward o;
                        if (value_forward_parse(d->nics[i].forwards.v[k], &o) == 0 && forwards_clash(&f, &o))
                                return phy_error_set(err, EEXIST, "VM '%s' already forwards host port %u (%s on %s): "
                                                     "'%s' on network '%s'", d->name, f.host_port, f.proto,
                                                     value_forward_addr(&f), d->nics[i].forwards.v[k], d->nics[i].name);
                }
        if (strv_push(&n->forwards, spec) < 0)
                return phy_error_set(err, ENOMEM, "out of memory");
        return 0;
}

static void strv_del(strv *s, size_t i) {
        free(s->v[i]);
        memmove(&s->v[i], &s->v[i + 1], (s->n - i) * sizeof *s->v);       /* the NULL terminator too */
        s->n--;
}

int net_def_forward_remove(struct vm_def *d, const char *nic, const char *spec, phy_error *err) {
        struct value_forward f;
        if (value_forward_parse(spec, &f) < 0)
                return phy_error_usage(err, "invalid forward '%s'; use PROTOCOL:[ADDRESS:]HOSTPORT:GUESTPORT",
                                     spec);
        struct vm_nic *n = net_def_nic(d, nic);
        if (!n)
                return no_nic(d, nic, err);
        for (size_t k = 0; k < n->forwards.n; k++) {
                struct value_forward o;
                /* "tcp:2222:22" also removes "tcp:127.0.0.1:2222:22": the same listener. */
                if (value_forward_parse(n->forwards.v[k], &o) == 0 && forwards_clash(&f, &o) &&
                    o.guest_port == f.guest_port) {
                        strv_del(&n->forwards, k);
                        return 0;
                }
        }
        return phy_error_set(err, ENOENT, "network '%s' of VM '%s' has no forward '%s'; "
                             "'phyllo net forward list %s' shows them", n->name, d->name, spec, d->name);
}

/* virtiofs tags are up to 36 bytes, 9p mount tags up to 31: the smaller. */
bool net_share_tag_valid(const char *tag) {
        size_t n = strlen(tag);
        if (n == 0 || n > 31)
                return false;
        for (const char *c = tag; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      *c == '_' || *c == '-' || *c == '.'))
                        return false;
        return true;
}

int net_def_share_add(struct vm_def *d, const char *tag, const char *path, bool readonly, enum vm_share_type type,
                      const char *home, phy_error *err) {
        if (!net_share_tag_valid(tag))
                return phy_error_usage(err, "invalid share tag '%s'; use 1 to 31 of A-Z a-z 0-9 . _ -", tag);
        for (size_t i = 0; i < d->n_shares; i++)
                if (strcmp(d->shares[i].tag, tag) == 0)
                        return phy_error_set(err, EEXIST, "VM '%s' already has a share tagged '%s' ('%s')", d->name,
                                             tag, d->shares[i].path);
        int r = net_share_check_dir(path, home, err);
        if (r < 0)
                return r;
        /* Stored absolute: the definition must not depend on where phyllo ran. */
        _cleanup_free_ char *real = realpath(path, NULL), *t = strdup(tag);
        if (!real || !t)
                return phy_error_set(err, errno ? errno : ENOMEM, "cannot resolve '%s': %s", path, strerror(errno));
        struct vm_share *a = realloc(d->shares, (d->n_shares + 1) * sizeof *a);
        if (!a)
                return phy_error_set(err, ENOMEM, "out of memory");
        d->shares = a;
        a[d->n_shares++] = (struct vm_share) { .tag = TAKE_PTR(t), .path = TAKE_PTR(real), .readonly = readonly,
                                               .type = type };
        return 0;
}

int net_def_share_remove(struct vm_def *d, const char *tag, phy_error *err) {
        for (size_t i = 0; i < d->n_shares; i++) {
                if (strcmp(d->shares[i].tag, tag) != 0)
                        continue;
                vm_def_remove_elem(d, "share", i);
                return 0;
        }
        return phy_error_set(err, ENOENT, "VM '%s' has no share tagged '%s'; 'phyllo share list %s' shows them",
                             d->name, tag, d->name);
}

int net_def_nic_add(struct vm_def *d, const char *name, enum vm_nic_model model, phy_error *err) {
        if (!vm_name_valid(name) || strlen(name) > 32)
                return phy_error_usage(err, "invalid network name '%s'; use up to 32 of A-Z a-z 0-9 . _ -", name);
        if (net_def_nic(d, name))
                return phy_error_set(err, EEXIST, "VM '%s' already has a network named '%s'", d->name, name);
        _cleanup_free_ char *nm = strdup(name);
        struct vm_nic *a = nm ? realloc(d->nics, (d->n_nics + 1) * sizeof *a) : NULL;
        if (!a)
                return phy_error_set(err, ENOMEM, "out of memory");
        d->nics = a;
        a[d->n_nics++] = (struct vm_nic) { .name = TAKE_PTR(nm), .mode = VM_NET_USER, .model = model };
        /* Only the new NIC lacks a MAC (a definition's NICs get theirs at create). */
        return vm_def_make_identity(d, err);
}

int net_def_nic_remove(struct vm_def *d, const char *name, phy_error *err) {
        struct vm_nic *n = net_def_nic(d, name);
        if (!n)
                return no_nic(d, name, err);
        size_t i = (size_t) (n - d->nics);
        vm_def_remove_elem(d, "network", i);
        return 0;
}

json_object *net_nics_to_json(const struct vm_def *d) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < d->n_nics; i++) {
                const struct vm_nic *n = &d->nics[i];
                json_object *o = json_object_new_object(), *f = json_object_new_array();
                enum vm_net_mode mode = n->mode ? n->mode : VM_NET_USER;
                const char *model = vm_nic_model_name(n->model);
                json_object_object_add(o, "name", json_object_new_string(n->name));
                json_object_object_add(o, "mode", json_object_new_string(vm_net_mode_name(mode)));
                json_object_object_add(o, "backend", json_object_new_string(
                        mode != VM_NET_USER ? "-" : net_nic_uses_passt(n) ? "passt" : "slirp"));
                json_object_object_add(o, "model", json_object_new_string(model ? model : "virtio"));
                json_object_object_add(o, "mac", n->mac[0] ? json_object_new_string(n->mac) : NULL);
                for (size_t k = 0; k < n->forwards.n; k++)
                        json_object_array_add(f, json_object_new_string(n->forwards.v[k]));
                json_object_object_add(o, "forwards", f);
                json_object_array_add(a, o);
        }
        return a;
}

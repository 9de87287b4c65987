/* SPDX-License-Identifier: MIT */
/* Properties of a VM (CPUs, memory, disks, shared folders, port forwards,
 * 3D, firmware and TPM, PCI devices with the IOMMU group's verdict,
 * snapshots, clone, export, delete), each through the API; an error is
 * shown in the dialog with the sentence phyllo prints.  And "This
 * computer": the host check as a page. */
#include <string.h>
#include "app.h"

typedef struct Props Props;
typedef void (*RowFunc)(Props *p, GtkWidget *list, json_object *item);

struct Props {
        PhyWindow *w;
        char *name, *esc, *config;
        GtkWidget *dialog, *notebook, *error_bar, *error_label, *model_view, *cpus, *memory, *gpu_label;
        GtkWidget *disks, *shares, *forwards, *snapshots;
        GtkWidget *disk_size, *share_path, *share_tag, *forward_spec, *snap_name, *clone_name;
        GtkWidget *fw_type, *secure_boot, *tpm, *devices, *host_devices, *export_dir, *export_file, *done_label;
        GCancellable *cancel;
};

static void show_error(Props *p, const char *sentence) {
        gtk_label_set_text(GTK_LABEL(p->error_label), sentence);
        gtk_widget_show(p->error_bar);
        gtk_info_bar_set_revealed(GTK_INFO_BAR(p->error_bar), TRUE);
}

static void hide_error(Props *p) {
        gtk_info_bar_set_revealed(GTK_INFO_BAR(p->error_bar), FALSE);
        gtk_widget_hide(p->error_bar);
}

static void load(Props *p);

static void acted(PhyReply *r, gpointer data) {
        Props *p = data;
        if (r->status < 200 || r->status >= 300)
                show_error(p, r->error);
        else
                hide_error(p);
        load(p);
}

/* A request on this VM: /v1/vms/<name><suffix>. */
static void vm_call(Props *p, const char *method, const char *suffix, json_object *body) {
        g_autofree char *path = g_strdup_printf("/v1/vms/%s%s", p->esc, suffix);
        phy_call(method, path, body, p->cancel, acted, p);
}

/* ---- lists ---- */

static void clear(GtkWidget *list) {
        g_autoptr(GList) l = gtk_container_get_children(GTK_CONTAINER(list));
        for (GList *i = l; i; i = i->next)
                gtk_widget_destroy(i->data);
}

static GtkWidget *list_row(GtkWidget *list, const char *text) {
        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
        g_object_set(box, "margin", 6, NULL);
        GtkWidget *l = gtk_label_new(text);
        gtk_label_set_xalign(GTK_LABEL(l), 0);
        gtk_label_set_ellipsize(GTK_LABEL(l), PANGO_ELLIPSIZE_MIDDLE);
        gtk_box_pack_start(GTK_BOX(box), l, TRUE, TRUE, 0);
        gtk_list_box_insert(GTK_LIST_BOX(list), box, -1);
        return box;
}

typedef struct {
        Props *p;
        char *method, *suffix;
        json_object *body;
} RowAction;

static void row_action_free(gpointer d, GClosure *c) {
        RowAction *a = d;
        g_free(a->method);
        g_free(a->suffix);
        if (a->body)
                json_object_put(a->body);
        g_free(a);
}

static void row_action_clicked(GtkButton *b, RowAction *a) {
        vm_call(a->p, a->method, a->suffix, a->body ? json_object_get(a->body) : NULL);
}

static void row_button(Props *p, GtkWidget *row, const char *label, const char *a11y, const char *method,
                       const char *suffix, json_object *body) {
        GtkWidget *b = gtk_button_new_with_label(label);
        phy_a11y(b, a11y);
        RowAction *a = g_new0(RowAction, 1);
        a->p = p;
        a->method = g_strdup(method);
        a->suffix = g_strdup(suffix);
        a->body = body;
        g_signal_connect_data(b, "clicked", G_CALLBACK(row_action_clicked), a, row_action_free, 0);
        gtk_box_pack_end(GTK_BOX(row), b, FALSE, FALSE, 0);
}

static void disk_row(Props *p, GtkWidget *list, json_object *d) {
        const char *n = phy_json_str(d, "name");
        g_autofree char *size = g_format_size_full((guint64) phy_json_int(d, "virtual-size", 0), G_FORMAT_SIZE_IEC_UNITS);
        g_autofree char *t = g_strdup_printf("%s — %s, %s", n, size, phy_json_str(d, "bus") ? phy_json_str(d, "bus") : "");
        GtkWidget *row = list_row(list, t);
        g_autofree char *en = phy_escape(n);
        g_autofree char *rm = g_strdup_printf("/disks/%s", en), *rs = g_strdup_printf("/disks/%s/resize", en);
        g_autofree char *a1 = g_strdup_printf(_("Remove disk %s"), n), *a2 = g_strdup_printf(_("Grow disk %s by 1 GiB"), n);
        row_button(p, row, _("Remove"), a1, "DELETE", rm, NULL);
        json_object *body = json_object_new_object();
        g_autofree char *ns = g_strdup_printf("%" G_GINT64_FORMAT "M", (phy_json_int(d, "virtual-size", 0) >> 20) + 1024);
        json_object_object_add(body, "size", json_object_new_string(ns));
        row_button(p, row, _("Grow by 1 GiB"), a2, "POST", rs, body);
}

static void share_row(Props *p, GtkWidget *list, json_object *s) {
        const char *tag = phy_json_str(s, "tag");
        g_autofree char *t = g_strdup_printf("%s — %s", tag, phy_json_str(s, "path") ? phy_json_str(s, "path") : "");
        GtkWidget *row = list_row(list, t);
        g_autofree char *et = phy_escape(tag);
        g_autofree char *rm = g_strdup_printf("/shares/%s", et), *a = g_strdup_printf(_("Remove share %s"), tag);
        row_button(p, row, _("Remove"), a, "DELETE", rm, NULL);
}

static void forward_row(Props *p, GtkWidget *list, json_object *f) {
        const char *spec = phy_json_str(f, "spec");
        GtkWidget *row = list_row(list, spec);
        g_autofree char *a = g_strdup_printf(_("Remove forward %s"), spec);
        json_object *body = json_object_new_object();
        json_object_object_add(body, "spec", json_object_new_string(spec));
        if (phy_json_str(f, "nic"))
                json_object_object_add(body, "nic", json_object_new_string(phy_json_str(f, "nic")));
        row_button(p, row, _("Remove"), a, "DELETE", "/forwards", body);
}

static void snapshot_row(Props *p, GtkWidget *list, json_object *s) {
        const char *n = phy_json_str(s, "name");
        g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local(phy_json_int(s, "created", 0));
        g_autofree char *when = dt ? g_date_time_format(dt, "%x %X") : g_strdup("");
        g_autofree char *t = g_strdup_printf("%s — %s", n, when);
        GtkWidget *row = list_row(list, t);
        g_autofree char *en = phy_escape(n);
        g_autofree char *del = g_strdup_printf("/snapshots/%s", en), *rev = g_strdup_printf("/snapshots/%s/revert", en);
        g_autofree char *a1 = g_strdup_printf(_("Delete snapshot %s"), n), *a2 = g_strdup_printf(_("Revert to snapshot %s"), n);
        row_button(p, row, _("Delete"), a1, "DELETE", del, NULL);
        row_button(p, row, _("Revert"), a2, "POST", rev, NULL);
}

/* A PCI device the VM has. */
static void device_row(Props *p, GtkWidget *list, json_object *d) {
        const char *addr = phy_json_str(d, "address") ? phy_json_str(d, "address") : json_object_get_string(d);
        const char *what = phy_json_str(d, "device") ? phy_json_str(d, "device") : phy_json_str(d, "class_name");
        g_autofree char *t = g_strdup_printf("%s%s%s", addr, what ? " — " : "", what ? what : "");
        GtkWidget *row = list_row(list, t);
        g_autofree char *ea = phy_escape(addr);
        g_autofree char *rm = g_strdup_printf("/devices/%s", ea), *a = g_strdup_printf(_("Remove PCI device %s"), addr);
        row_button(p, row, _("Remove"), a, "DELETE", rm, NULL);
}

/* The IOMMU group's verdict on a host device, as `phyllo host devices`
 * says it. */
static char *device_verdict(json_object *d) {
        json_object *grp = NULL, *with = NULL, *blk = NULL;
        json_object_object_get_ex(d, "iommu_group", &grp);
        json_object_object_get_ex(d, "with", &with);
        json_object_object_get_ex(d, "blockers", &blk);
        if (!grp)
                return g_strdup(_("no IOMMU group: cannot be given to a VM (the IOMMU is off; see This computer)"));
        GString *t = g_string_new(NULL);
        int g = json_object_get_int(grp);
        if (json_object_get_boolean(json_object_object_get(d, "assignable"))) {
                g_string_append_printf(t, _("IOMMU group %d: can be given to a VM"), g);
                for (size_t j = 0; with && j < json_object_array_length(with); j++)
                        g_string_append_printf(t, j ? ", %s" : _(" together with its functions %s"),
                                               json_object_get_string(json_object_array_get_idx(with, j)));
        } else {
                g_string_append_printf(t, _("IOMMU group %d: cannot be given to a VM alone; the group also holds"), g);
                for (size_t j = 0; blk && j < json_object_array_length(blk); j++) {
                        json_object *b = json_object_array_get_idx(blk, j);
                        g_string_append_printf(t, "%s %s (%s)", j ? "," : "", phy_json_str(b, "address"),
                                               phy_json_str(b, "class_name") ? phy_json_str(b, "class_name") : "?");
                }
        }
        return g_string_free(t, FALSE);
}

/* A host PCI device: what it is, its verdict, and "Pass through" only
 * where the verdict says it is safe. */
static void host_device_row(Props *p, GtkWidget *list, json_object *d) {
        const char *addr = phy_json_str(d, "address");
        g_autofree char *verdict = device_verdict(d);
        g_autofree char *t = g_strdup_printf("%s %s: %s %s\n%s", addr,
                                             phy_json_str(d, "class_name") ? phy_json_str(d, "class_name") : "?",
                                             phy_json_str(d, "vendor") ? phy_json_str(d, "vendor") : "",
                                             phy_json_str(d, "device") ? phy_json_str(d, "device") : "", verdict);
        GtkWidget *row = list_row(list, t);
        g_autofree char *an = g_strdup_printf(_("PCI device %s"), addr);
        GList *kids = gtk_container_get_children(GTK_CONTAINER(row));
        if (kids) {
                gtk_label_set_ellipsize(GTK_LABEL(kids->data), PANGO_ELLIPSIZE_NONE);
                gtk_label_set_line_wrap(GTK_LABEL(kids->data), TRUE);
                phy_a11y(kids->data, an);
        }
        g_list_free(kids);
        if (!json_object_get_boolean(json_object_object_get(d, "assignable")))
                return;
        json_object *body = json_object_new_object();
        json_object_object_add(body, "address", json_object_new_string(addr));
        json_object *with = NULL;
        if (json_object_object_get_ex(d, "with", &with) && json_object_array_length(with))
                json_object_object_add(body, "with_group", json_object_new_boolean(1));
        g_autofree char *a = g_strdup_printf(_("Pass through %s"), addr);
        row_button(p, row, _("Pass Through"), a, "POST", "/devices", body);
}

typedef struct {
        Props *p;
        GtkWidget *list;
        RowFunc fn;
} ListLoad;

static void list_reply(PhyReply *r, gpointer data) {
        ListLoad *l = data;
        clear(l->list);
        if (r->status == 200) {
                json_object *arr = NULL;
                if (json_object_is_type(r->body, json_type_array))
                        arr = r->body;
                else if (r->body) {
                        json_object_object_foreach(r->body, k, v) {
                                (void) k;
                                if (!arr && json_object_is_type(v, json_type_array))
                                        arr = v;
                        }
                }
                for (size_t i = 0; arr && i < json_object_array_length(arr); i++)
                        l->fn(l->p, l->list, json_object_array_get_idx(arr, i));
                if (!arr || json_object_array_length(arr) == 0)
                        list_row(l->list, _("None"));
        } else
                list_row(l->list, r->error);
        gtk_widget_show_all(l->list);
        g_free(l);
}

static void load_list_at(Props *p, const char *path, GtkWidget *list, RowFunc fn) {
        ListLoad *l = g_new0(ListLoad, 1);
        l->p = p;
        l->list = list;
        l->fn = fn;
        phy_call("GET", path, NULL, p->cancel, list_reply, l);
}

static void load_list(Props *p, const char *suffix, GtkWidget *list, RowFunc fn) {
        g_autofree char *path = g_strdup_printf("/v1/vms/%s%s", p->esc, suffix);
        load_list_at(p, path, list, fn);
}

/* ---- the definition: CPUs and memory ---- */

/* Sets key in [section] of a vm.conf text (added where absent). */
static char *conf_set(const char *text, const char *section, const char *key, const char *value) {
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        GString *out = g_string_new(NULL);
        g_autofree char *head = g_strdup_printf("[%s]", section);
        gboolean in = FALSE, done = FALSE, seen = FALSE;
        for (char **l = lines; *l; l++) {
                g_autofree char *t = g_strstrip(g_strdup(*l));
                if (t[0] == '[') {
                        if (in && !done) {
                                g_string_append_printf(out, "%s = %s\n", key, value);
                                done = TRUE;
                        }
                        in = strcmp(t, head) == 0;
                        seen |= in;
                } else if (in && !done && g_str_has_prefix(t, key) &&
                           (t[strlen(key)] == ' ' || t[strlen(key)] == '=')) {
                        g_string_append_printf(out, "%s = %s\n", key, value);
                        done = TRUE;
                        continue;
                }
                g_string_append(out, *l);
                if (l[1])
                        g_string_append_c(out, '\n');
        }
        if (!done) {
                if (!seen)
                        g_string_append_printf(out, "\n%s\n", head);
                else if (out->len && out->str[out->len - 1] != '\n')
                        g_string_append_c(out, '\n');
                g_string_append_printf(out, "%s = %s\n", key, value);
        }
        return g_string_free(out, FALSE);
}

static void apply_clicked(GtkButton *b, Props *p) {
        if (!p->config)
                return;
        g_autofree char *cores = g_strdup_printf("%d", gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(p->cpus)));
        g_autofree char *mem = g_strdup_printf("%dM", gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(p->memory)));
        g_autofree char *t1 = conf_set(p->config, "cpu", "cores", cores);
        g_autofree char *t2 = conf_set(t1, "memory", "size", mem);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "config", json_object_new_string(t2));
        json_object_object_add(o, "base", json_object_new_string(p->config));
        vm_call(p, "PUT", "", o);
}

/* [firmware] type and secure-boot ([machine] smm with it: Secure Boot
 * needs SMM), [tpm] type: phyllo edit's checks answer through PUT. */
static void apply_firmware_clicked(GtkButton *b, Props *p) {
        if (!p->config)
                return;
        const char *fw = gtk_combo_box_get_active_id(GTK_COMBO_BOX(p->fw_type));
        const char *tpm = gtk_combo_box_get_active_id(GTK_COMBO_BOX(p->tpm));
        gboolean sb = gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(p->secure_boot));
        g_autofree char *t1 = conf_set(p->config, "firmware", "type", fw ? fw : "uefi");
        g_autofree char *t2 = conf_set(t1, "firmware", "secure-boot", sb ? "on" : "off");
        g_autofree char *t3 = sb ? conf_set(t2, "machine", "smm", "on") : g_strdup(t2);
        g_autofree char *t4 = conf_set(t3, "tpm", "type", tpm ? tpm : "none");
        json_object *o = json_object_new_object();
        json_object_object_add(o, "config", json_object_new_string(t4));
        json_object_object_add(o, "base", json_object_new_string(p->config));
        vm_call(p, "PUT", "", o);
}

static void show_reply(PhyReply *r, gpointer data) {
        Props *p = data;
        if (r->status != 200) {
                show_error(p, r->error);
                return;
        }
        g_free(p->config);
        p->config = g_strdup(phy_json_str(r->body, "config"));
        const char *mt = phy_json_str(r->body, "model_text");
        gtk_text_buffer_set_text(gtk_text_view_get_buffer(GTK_TEXT_VIEW(p->model_view)), mt ? mt : "", -1);
        json_object *m = NULL, *cpu = NULL, *mem = NULL, *gpu = NULL;
        if (json_object_object_get_ex(r->body, "model", &m)) {
                if (json_object_object_get_ex(m, "cpu", &cpu))
                        gtk_spin_button_set_value(GTK_SPIN_BUTTON(p->cpus),
                                                  (double) (phy_json_int(cpu, "cores", 1) * phy_json_int(cpu, "threads", 1)));
                if (json_object_object_get_ex(m, "memory", &mem))
                        gtk_spin_button_set_value(GTK_SPIN_BUTTON(p->memory), (double) (phy_json_int(mem, "size", 0) >> 20));
                if (json_object_object_get_ex(m, "gpu", &gpu) && phy_json_str(gpu, "type"))
                        gtk_label_set_text(GTK_LABEL(p->gpu_label), phy_json_str(gpu, "type"));
                json_object *fw = NULL, *tpm = NULL;
                if (json_object_object_get_ex(m, "firmware", &fw)) {
                        gtk_combo_box_set_active_id(GTK_COMBO_BOX(p->fw_type), phy_json_str(fw, "type"));
                        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(p->secure_boot),
                                                     json_object_get_boolean(json_object_object_get(fw, "secure-boot")));
                }
                if (json_object_object_get_ex(m, "tpm", &tpm))
                        gtk_combo_box_set_active_id(GTK_COMBO_BOX(p->tpm), phy_json_str(tpm, "type"));
        }
}

static void host_gl_reply(PhyReply *r, gpointer data) {
        GtkWidget *label = data;
        json_object *checks = NULL;
        if (r->status != 200 || !json_object_object_get_ex(r->body, "checks", &checks))
                return;
        for (size_t i = 0; i < json_object_array_length(checks); i++) {
                json_object *c = json_object_array_get_idx(checks, i);
                if (g_strcmp0(phy_json_str(c, "id"), "gl.spice") != 0)
                        continue;
                const char *st = phy_json_str(c, "status");
                g_autofree char *t = g_strcmp0(st, "PASS") == 0
                                             ? g_strdup(_("3D works in this window on this computer (SPICE with GL)."))
                                             : g_strdup_printf(_("3D is not available in this window: %s. %s"),
                                                               phy_json_str(c, "detail"),
                                                               phy_json_str(c, "remedy") ? phy_json_str(c, "remedy") : "");
                gtk_label_set_text(GTK_LABEL(label), t);
        }
}

static void load(Props *p) {
        g_autofree char *path = g_strdup_printf("/v1/vms/%s", p->esc);
        phy_call("GET", path, NULL, p->cancel, show_reply, p);
        load_list(p, "/disks", p->disks, disk_row);
        load_list(p, "/shares", p->shares, share_row);
        load_list(p, "/forwards", p->forwards, forward_row);
        load_list(p, "/snapshots", p->snapshots, snapshot_row);
        load_list(p, "/devices", p->devices, device_row);
        load_list_at(p, "/v1/host/devices", p->host_devices, host_device_row);
}

/* ---- adding ---- */

static void add_disk(GtkButton *b, Props *p) {
        json_object *o = json_object_new_object();
        g_autofree char *s = g_strdup_printf("%dG", gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(p->disk_size)));
        json_object_object_add(o, "size", json_object_new_string(s));
        vm_call(p, "POST", "/disks", o);
}

static void add_share(GtkButton *b, Props *p) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "tag", json_object_new_string(gtk_entry_get_text(GTK_ENTRY(p->share_tag))));
        json_object_object_add(o, "path", json_object_new_string(gtk_entry_get_text(GTK_ENTRY(p->share_path))));
        vm_call(p, "POST", "/shares", o);
}

static void add_forward(GtkButton *b, Props *p) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "spec", json_object_new_string(gtk_entry_get_text(GTK_ENTRY(p->forward_spec))));
        vm_call(p, "POST", "/forwards", o);
}

static void add_snapshot(GtkButton *b, Props *p) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(gtk_entry_get_text(GTK_ENTRY(p->snap_name))));
        vm_call(p, "POST", "/snapshots", o);
}

static void cloned(PhyReply *r, gpointer data) {
        Props *p = data;
        if (r->status < 200 || r->status >= 300) {
                show_error(p, r->error);
                return;
        }
        hide_error(p);
        phy_window_reload(p->w);
}

static void clone_clicked(GtkButton *b, Props *p) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(gtk_entry_get_text(GTK_ENTRY(p->clone_name))));
        g_autofree char *path = g_strdup_printf("/v1/vms/%s/clone", p->esc);
        phy_call("POST", path, o, p->cancel, cloned, p);
}

static void exported(PhyReply *r, gpointer data) {
        Props *p = data;
        if (r->status < 200 || r->status >= 300) {
                gtk_label_set_text(GTK_LABEL(p->done_label), "");
                show_error(p, r->error);
                return;
        }
        hide_error(p);
        const char *xml = phy_json_str(r->body, "xml");
        g_autofree char *t = xml ? g_strdup_printf(_("Exported for libvirt: %s (virsh define it there)"), xml)
                                 : g_strdup_printf(_("Exported: %s"), gtk_entry_get_text(GTK_ENTRY(p->export_file)));
        gtk_label_set_text(GTK_LABEL(p->done_label), t);
}

static void export_libvirt_clicked(GtkButton *b, Props *p) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "dir", json_object_new_string(gtk_entry_get_text(GTK_ENTRY(p->export_dir))));
        gtk_label_set_text(GTK_LABEL(p->done_label), _("Exporting…"));
        g_autofree char *path = g_strdup_printf("/v1/vms/%s/export-libvirt", p->esc);
        phy_call("POST", path, o, p->cancel, exported, p);
}

static void export_bundle_clicked(GtkButton *b, Props *p) {
        const char *file = gtk_entry_get_text(GTK_ENTRY(p->export_file));
        if (!g_path_is_absolute(file)) {
                show_error(p, _("Give the bundle's file as an absolute path."));
                return;
        }
        gtk_label_set_text(GTK_LABEL(p->done_label), _("Exporting…"));
        g_autofree char *path = g_strdup_printf("/v1/vms/%s/export", p->esc);
        phy_save(path, file, p->cancel, exported, p);
}

static void deleted(PhyReply *r, gpointer data) {
        Props *p = data;
        if (r->status < 200 || r->status >= 300) {
                show_error(p, r->error);
                return;
        }
        PhyWindow *w = p->w;
        gtk_widget_destroy(p->dialog);
        phy_window_show_collection(w);
        phy_window_reload(w);
}

static void delete_clicked(GtkButton *b, Props *p) {
        GtkWidget *q = gtk_message_dialog_new(GTK_WINDOW(p->dialog), GTK_DIALOG_MODAL, GTK_MESSAGE_QUESTION,
                                              GTK_BUTTONS_NONE, _("Delete %s and its disks?"), p->name);
        phy_a11y(gtk_dialog_add_button(GTK_DIALOG(q), _("_Cancel"), GTK_RESPONSE_CANCEL), _("Cancel"));
        GtkWidget *d = gtk_dialog_add_button(GTK_DIALOG(q), _("_Delete"), GTK_RESPONSE_ACCEPT);
        phy_a11y(d, _("Delete"));
        gtk_style_context_add_class(gtk_widget_get_style_context(d), "destructive-action");
        int resp = gtk_dialog_run(GTK_DIALOG(q));
        gtk_widget_destroy(q);
        if (resp != GTK_RESPONSE_ACCEPT)
                return;
        g_autofree char *path = g_strdup_printf("/v1/vms/%s", p->esc);
        phy_call("DELETE", path, NULL, p->cancel, deleted, p);
}

/* ---- layout ---- */

static GtkWidget *page(Props *p, const char *title) {
        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 8);
        g_object_set(box, "margin", 12, NULL);
        GtkWidget *l = gtk_label_new(title);
        phy_a11y(l, title);
        gtk_notebook_append_page(GTK_NOTEBOOK(p->notebook), box, l);
        return box;
}

static GtkWidget *list_in(GtkWidget *box, const char *a11y) {
        GtkWidget *list = gtk_list_box_new();
        gtk_list_box_set_selection_mode(GTK_LIST_BOX(list), GTK_SELECTION_NONE);
        phy_a11y(list, a11y);
        GtkWidget *frame = gtk_frame_new(NULL);
        gtk_container_add(GTK_CONTAINER(frame), list);
        gtk_box_pack_start(GTK_BOX(box), frame, FALSE, FALSE, 0);
        return list;
}

static GtkWidget *adder(GtkWidget *box, GtkWidget *input, const char *input_a11y, const char *label,
                        const char *a11y, GCallback cb, Props *p) {
        GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
        phy_a11y(input, input_a11y);
        gtk_box_pack_start(GTK_BOX(row), input, TRUE, TRUE, 0);
        GtkWidget *b = gtk_button_new_with_label(label);
        phy_a11y(b, a11y);
        g_signal_connect(b, "clicked", cb, p);
        gtk_box_pack_start(GTK_BOX(row), b, FALSE, FALSE, 0);
        gtk_box_pack_start(GTK_BOX(box), row, FALSE, FALSE, 0);
        return input;
}

static GtkWidget *entry(const char *placeholder) {
        GtkWidget *e = gtk_entry_new();
        gtk_entry_set_placeholder_text(GTK_ENTRY(e), placeholder);
        return e;
}

static void props_destroyed(GtkWidget *d, Props *p) {
        g_cancellable_cancel(p->cancel);
        g_object_unref(p->cancel);
        g_free(p->name);
        g_free(p->esc);
        g_free(p->config);
        g_free(p);
}

void phy_props_run(PhyWindow *w, const char *name) {
        Props *p = g_new0(Props, 1);
        p->w = w;
        p->name = g_strdup(name);
        p->esc = phy_escape(name);
        p->cancel = g_cancellable_new();
        p->dialog = g_object_new(GTK_TYPE_DIALOG, "use-header-bar", TRUE, NULL);
        g_autofree char *title = g_strdup_printf(_("Properties of %s"), name);
        gtk_window_set_title(GTK_WINDOW(p->dialog), title);
        phy_a11y(p->dialog, title);
        gtk_window_set_transient_for(GTK_WINDOW(p->dialog), GTK_WINDOW(phy_window_widget(w)));
        gtk_window_set_default_size(GTK_WINDOW(p->dialog), 760, 540);
        g_signal_connect(p->dialog, "destroy", G_CALLBACK(props_destroyed), p);
        g_signal_connect(p->dialog, "response", G_CALLBACK(gtk_widget_destroy), NULL);
        GtkWidget *content = gtk_dialog_get_content_area(GTK_DIALOG(p->dialog));

        p->error_bar = gtk_info_bar_new();
        gtk_info_bar_set_message_type(GTK_INFO_BAR(p->error_bar), GTK_MESSAGE_ERROR);
        gtk_info_bar_set_show_close_button(GTK_INFO_BAR(p->error_bar), TRUE);
        g_signal_connect(p->error_bar, "response", G_CALLBACK(gtk_widget_hide), NULL);
        p->error_label = gtk_label_new(NULL);
        gtk_label_set_line_wrap(GTK_LABEL(p->error_label), TRUE);
        gtk_label_set_selectable(GTK_LABEL(p->error_label), TRUE);
        phy_a11y(p->error_label, _("Error"));
        gtk_container_add(GTK_CONTAINER(gtk_info_bar_get_content_area(GTK_INFO_BAR(p->error_bar))), p->error_label);
        gtk_box_pack_start(GTK_BOX(content), p->error_bar, FALSE, FALSE, 0);
        phy_a11y_buttons(p->error_bar, _("Close the message"));
        p->notebook = gtk_notebook_new();
        /* nine pages: their tabs down the side */
        gtk_notebook_set_tab_pos(GTK_NOTEBOOK(p->notebook), GTK_POS_LEFT);
        gtk_box_pack_start(GTK_BOX(content), p->notebook, TRUE, TRUE, 0);

        GtkWidget *b = page(p, _("General"));
        GtkWidget *grid = gtk_grid_new();
        gtk_grid_set_column_spacing(GTK_GRID(grid), 12);
        gtk_grid_set_row_spacing(GTK_GRID(grid), 6);
        p->cpus = gtk_spin_button_new_with_range(1, 256, 1);
        p->memory = gtk_spin_button_new_with_range(64, 1 << 20, 256);
        phy_a11y(p->cpus, _("CPUs"));
        phy_a11y(p->memory, _("Memory in MiB"));
        gtk_grid_attach(GTK_GRID(grid), gtk_label_new(_("CPUs")), 0, 0, 1, 1);
        gtk_grid_attach(GTK_GRID(grid), p->cpus, 1, 0, 1, 1);
        gtk_grid_attach(GTK_GRID(grid), gtk_label_new(_("Memory (MiB)")), 0, 1, 1, 1);
        gtk_grid_attach(GTK_GRID(grid), p->memory, 1, 1, 1, 1);
        GtkWidget *apply = gtk_button_new_with_label(_("Apply"));
        phy_a11y(apply, _("Apply CPUs and memory"));
        g_signal_connect(apply, "clicked", G_CALLBACK(apply_clicked), p);
        gtk_grid_attach(GTK_GRID(grid), apply, 2, 1, 1, 1);
        gtk_box_pack_start(GTK_BOX(b), grid, FALSE, FALSE, 0);
        p->model_view = gtk_text_view_new();
        gtk_text_view_set_editable(GTK_TEXT_VIEW(p->model_view), FALSE);
        gtk_text_view_set_monospace(GTK_TEXT_VIEW(p->model_view), TRUE);
        phy_a11y(p->model_view, _("Effective definition"));
        GtkWidget *sc = gtk_scrolled_window_new(NULL, NULL);
        gtk_container_add(GTK_CONTAINER(sc), p->model_view);
        gtk_box_pack_start(GTK_BOX(b), sc, TRUE, TRUE, 0);

        b = page(p, _("Disks"));
        p->disks = list_in(b, _("Disks"));
        p->disk_size = adder(b, gtk_spin_button_new_with_range(1, 65536, 1), _("New disk size in GiB"), _("Add Disk"),
                             _("Add disk"), G_CALLBACK(add_disk), p);

        b = page(p, _("Shared Folders"));
        p->shares = list_in(b, _("Shared folders"));
        p->share_tag = adder(b, entry(_("tag")), _("Share tag"), _("Add Share"), _("Add shared folder"),
                             G_CALLBACK(add_share), p);
        p->share_path = entry(_("/absolute/host/folder"));
        phy_a11y(p->share_path, _("Shared folder path"));
        gtk_box_pack_start(GTK_BOX(b), p->share_path, FALSE, FALSE, 0);

        b = page(p, _("Network"));
        p->forwards = list_in(b, _("Port forwards"));
        p->forward_spec = adder(b, entry("tcp:2222:22"), _("Forward"), _("Add Forward"), _("Add port forward"),
                                G_CALLBACK(add_forward), p);

        b = page(p, _("3D"));
        GtkWidget *gl = gtk_label_new(_("Checking this computer…"));
        gtk_label_set_line_wrap(GTK_LABEL(gl), TRUE);
        gtk_label_set_xalign(GTK_LABEL(gl), 0);
        phy_a11y(gl, _("3D availability"));
        gtk_box_pack_start(GTK_BOX(b), gl, FALSE, FALSE, 0);
        p->gpu_label = gtk_label_new(NULL);
        phy_a11y(p->gpu_label, _("Graphics device"));
        gtk_label_set_xalign(GTK_LABEL(p->gpu_label), 0);
        gtk_box_pack_start(GTK_BOX(b), p->gpu_label, FALSE, FALSE, 0);
        phy_call("GET", "/v1/host", NULL, p->cancel, host_gl_reply, gl);

        b = page(p, _("Firmware and TPM"));
        grid = gtk_grid_new();
        gtk_grid_set_column_spacing(GTK_GRID(grid), 12);
        gtk_grid_set_row_spacing(GTK_GRID(grid), 6);
        p->fw_type = gtk_combo_box_text_new();
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(p->fw_type), "uefi", _("UEFI (OVMF)"));
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(p->fw_type), "bios", _("BIOS (SeaBIOS)"));
        phy_a11y(p->fw_type, _("Firmware"));
        p->secure_boot = gtk_check_button_new_with_label(_("Secure Boot (UEFI only; turns SMM on)"));
        phy_a11y(p->secure_boot, _("Secure Boot"));
        p->tpm = gtk_combo_box_text_new();
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(p->tpm), "none", _("None"));
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(p->tpm), "emulated", _("Emulated TPM 2.0 (swtpm)"));
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(p->tpm), "passthrough", _("This computer's TPM (/dev/tpm0)"));
        phy_a11y(p->tpm, _("TPM"));
        gtk_grid_attach(GTK_GRID(grid), gtk_label_new(_("Firmware")), 0, 0, 1, 1);
        gtk_grid_attach(GTK_GRID(grid), p->fw_type, 1, 0, 1, 1);
        gtk_grid_attach(GTK_GRID(grid), p->secure_boot, 1, 1, 1, 1);
        gtk_grid_attach(GTK_GRID(grid), gtk_label_new(_("TPM")), 0, 2, 1, 1);
        gtk_grid_attach(GTK_GRID(grid), p->tpm, 1, 2, 1, 1);
        apply = gtk_button_new_with_label(_("Apply"));
        phy_a11y(apply, _("Apply firmware and TPM"));
        g_signal_connect(apply, "clicked", G_CALLBACK(apply_firmware_clicked), p);
        gtk_grid_attach(GTK_GRID(grid), apply, 1, 3, 1, 1);
        gtk_widget_set_halign(apply, GTK_ALIGN_END);
        gtk_box_pack_start(GTK_BOX(b), grid, FALSE, FALSE, 0);
        GtkWidget *fwnote = gtk_label_new(_("Snapshots keep the UEFI variables and the TPM's state with the disks."));
        gtk_style_context_add_class(gtk_widget_get_style_context(fwnote), "dim-label");
        gtk_label_set_xalign(GTK_LABEL(fwnote), 0);
        gtk_box_pack_start(GTK_BOX(b), fwnote, FALSE, FALSE, 0);

        b = page(p, _("PCI Devices"));
        GtkWidget *hl = gtk_label_new(_("Given to this VM"));
        gtk_label_set_xalign(GTK_LABEL(hl), 0);
        gtk_box_pack_start(GTK_BOX(b), hl, FALSE, FALSE, 0);
        p->devices = list_in(b, _("PCI devices of the VM"));
        hl = gtk_label_new(_("This computer's PCI devices (passthrough is offered only where the IOMMU group allows it)"));
        gtk_label_set_xalign(GTK_LABEL(hl), 0);
        gtk_label_set_line_wrap(GTK_LABEL(hl), TRUE);
        gtk_box_pack_start(GTK_BOX(b), hl, FALSE, FALSE, 0);
        GtkWidget *hsc = gtk_scrolled_window_new(NULL, NULL);
        gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(hsc), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
        GtkWidget *hbox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
        p->host_devices = list_in(hbox, _("Host PCI devices"));
        gtk_container_add(GTK_CONTAINER(hsc), hbox);
        gtk_box_pack_start(GTK_BOX(b), hsc, TRUE, TRUE, 0);

        b = page(p, _("Snapshots"));
        p->snapshots = list_in(b, _("Snapshots"));
        p->snap_name = adder(b, entry(_("snapshot name")), _("Snapshot name"), _("Take Snapshot"), _("Take snapshot"),
                             G_CALLBACK(add_snapshot), p);

        b = page(p, _("Clone, Export, Delete"));
        p->clone_name = adder(b, entry(_("name of the clone")), _("Clone name"), _("Clone"), _("Clone"),
                              G_CALLBACK(clone_clicked), p);
        p->export_dir = adder(b, entry(_("/absolute/new/folder")), _("libvirt export folder"), _("Export for libvirt"),
                              _("Export for libvirt"), G_CALLBACK(export_libvirt_clicked), p);
        p->export_file = adder(b, entry(_("/absolute/path/vm.phyllome")), _("Bundle file"), _("Export Bundle"),
                               _("Export bundle"), G_CALLBACK(export_bundle_clicked), p);
        p->done_label = gtk_label_new(NULL);
        gtk_label_set_xalign(GTK_LABEL(p->done_label), 0);
        gtk_label_set_line_wrap(GTK_LABEL(p->done_label), TRUE);
        gtk_label_set_selectable(GTK_LABEL(p->done_label), TRUE);
        phy_a11y(p->done_label, _("Export result"));
        gtk_box_pack_start(GTK_BOX(b), p->done_label, FALSE, FALSE, 0);
        GtkWidget *del = gtk_button_new_with_label(_("Delete This Virtual Machine…"));
        phy_a11y(del, _("Delete virtual machine"));
        gtk_style_context_add_class(gtk_widget_get_style_context(del), "destructive-action");
        gtk_widget_set_halign(del, GTK_ALIGN_END);
        g_signal_connect(del, "clicked", G_CALLBACK(delete_clicked), p);
        gtk_box_pack_start(GTK_BOX(b), del, FALSE, FALSE, 12);

        gtk_widget_show_all(p->dialog);
        gtk_widget_hide(p->error_bar);
        load(p);
}

/* ---- This computer ---- */

static void host_reply(PhyReply *r, gpointer data) {
        GtkWidget *pg = data;
        GtkWidget *list = g_object_get_data(G_OBJECT(pg), "list"), *verdict = g_object_get_data(G_OBJECT(pg), "verdict");
        clear(list);
        if (r->status != 200) {
                gtk_label_set_text(GTK_LABEL(verdict), r->error);
                return;
        }
        json_object *v = NULL, *checks = NULL, *short_of = NULL;
        json_object_object_get_ex(r->body, "verdict", &v);
        const char *tier = phy_json_str(v, "tier");
        g_autoptr(GString) t = g_string_new(NULL);
        if (g_strcmp0(tier, "recommended") == 0)
                g_string_append(t, _("This computer meets the recommended tier."));
        else if (g_strcmp0(tier, "minimum") == 0)
                g_string_append(t, _("This computer meets the minimum tier, not the recommended one."));
        else
                g_string_append(t, _("This computer does not meet the minimum tier."));
        if (v && json_object_object_get_ex(v, "short_of", &short_of) && json_object_array_length(short_of)) {
                g_string_append(t, _(" Short of: "));
                for (size_t i = 0; i < json_object_array_length(short_of); i++)
                        g_string_append_printf(t, "%s%s", i ? "; " : "",
                                               json_object_get_string(json_object_array_get_idx(short_of, i)));
                g_string_append(t, ".");
        }
        gtk_label_set_text(GTK_LABEL(verdict), t->str);
        json_object_object_get_ex(r->body, "checks", &checks);
        for (size_t i = 0; checks && i < json_object_array_length(checks); i++) {
                json_object *c = json_object_array_get_idx(checks, i);
                const char *st = phy_json_str(c, "status"), *remedy = phy_json_str(c, "remedy");
                HdyActionRow *row = HDY_ACTION_ROW(hdy_action_row_new());
                hdy_preferences_row_set_title(HDY_PREFERENCES_ROW(row), phy_json_str(c, "title"));
                g_autofree char *sub = remedy ? g_strdup_printf("%s\n→ %s", phy_json_str(c, "detail"), remedy)
                                              : g_strdup(phy_json_str(c, "detail"));
                hdy_action_row_set_subtitle(row, sub);
                hdy_action_row_set_subtitle_lines(row, 4);
                GtkWidget *badge = gtk_label_new(st);
                gtk_label_set_width_chars(GTK_LABEL(badge), 5);
                gtk_style_context_add_class(gtk_widget_get_style_context(badge),
                                            g_strcmp0(st, "FAIL") == 0 ? "error"
                                            : g_strcmp0(st, "WARN") == 0 ? "warning" : "dim-label");
                hdy_action_row_add_prefix(row, badge);
                g_autofree char *a = g_strdup_printf("%s: %s", phy_json_str(c, "title"), st);
                phy_a11y(GTK_WIDGET(row), a);
                gtk_container_add(GTK_CONTAINER(list), GTK_WIDGET(row));
        }
        gtk_widget_show_all(list);
}

GtkWidget *phy_host_page_new(PhyWindow *w) {
        GtkWidget *sc = gtk_scrolled_window_new(NULL, NULL);
        GtkWidget *clamp = hdy_clamp_new();
        hdy_clamp_set_maximum_size(HDY_CLAMP(clamp), 800);
        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
        g_object_set(box, "margin", 18, NULL);
        GtkWidget *verdict = gtk_label_new(_("Checking this computer…"));
        gtk_label_set_line_wrap(GTK_LABEL(verdict), TRUE);
        gtk_label_set_xalign(GTK_LABEL(verdict), 0);
        phy_a11y(verdict, _("Verdict"));
        PangoAttrList *big = pango_attr_list_new();
        pango_attr_list_insert(big, pango_attr_scale_new(1.2));
        gtk_label_set_attributes(GTK_LABEL(verdict), big);
        pango_attr_list_unref(big);
        gtk_box_pack_start(GTK_BOX(box), verdict, FALSE, FALSE, 0);
        GtkWidget *list = gtk_list_box_new();
        gtk_list_box_set_selection_mode(GTK_LIST_BOX(list), GTK_SELECTION_NONE);
        gtk_style_context_add_class(gtk_widget_get_style_context(list), "content");
        phy_a11y(list, _("Host checks"));
        gtk_box_pack_start(GTK_BOX(box), list, FALSE, FALSE, 0);
        gtk_container_add(GTK_CONTAINER(clamp), box);
        gtk_container_add(GTK_CONTAINER(sc), clamp);
        g_object_set_data(G_OBJECT(sc), "list", list);
        g_object_set_data(G_OBJECT(sc), "verdict", verdict);
        gtk_widget_show_all(sc);
        return sc;
}

void phy_host_page_load(GtkWidget *pg) {
        phy_call("GET", "/v1/host", NULL, NULL, host_reply, pg);
}

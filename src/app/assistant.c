/* SPDX-License-Identifier: MIT */
/* The new VM assistant: a source (an OS of the catalog, downloaded with
 * progress; a local ISO; a Linux kernel; a bundle), resources defaulted from
 * the profile, then POST /v1/vms (or the bundle's import). */
#include <string.h>
#include "app.h"

typedef struct {
        PhyWindow *w;
        GtkWidget *dialog, *source, *stack, *name, *profile, *cpus, *memory, *disk, *display, *catalog, *iso, *kernel,
                *initrd, *append, *bundle, *progress, *status, *create_btn, *cancel_btn;
        json_object *profiles;
        int64_t download_id;    /* the download followed, or -1 */
        char *plan_os;
        json_object *plan;
        GCancellable *cancel;
        gboolean busy;
} Assistant;

static Assistant *current;

static void set_status(Assistant *a, const char *text, gboolean error) {
        gtk_label_set_text(GTK_LABEL(a->status), text ? text : "");
        GtkStyleContext *sc = gtk_widget_get_style_context(a->status);
        if (error)
                gtk_style_context_add_class(sc, "error");
        else
                gtk_style_context_remove_class(sc, "error");
}

static void set_busy(Assistant *a, gboolean busy) {
        a->busy = busy;
        gtk_widget_set_sensitive(a->create_btn, !busy);
        gtk_widget_set_visible(a->progress, busy);
}

static void finish(Assistant *a) {
        if (current == a)
                current = NULL;
        g_cancellable_cancel(a->cancel);
        g_object_unref(a->cancel);
        if (a->profiles)
                json_object_put(a->profiles);
        if (a->plan)
                json_object_put(a->plan);
        g_free(a->plan_os);
        gtk_widget_destroy(a->dialog);
        g_free(a);
}

/* ---- defaults from the profile ---- */

static void profile_changed(GtkComboBox *cb, Assistant *a) {
        const char *id = gtk_combo_box_get_active_id(cb);
        json_object *arr = NULL;
        if (!id || !a->profiles || !json_object_object_get_ex(a->profiles, "profiles", &arr))
                return;
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *p = json_object_array_get_idx(arr, i);
                if (g_strcmp0(phy_json_str(p, "name"), id) != 0)
                        continue;
                gtk_spin_button_set_value(GTK_SPIN_BUTTON(a->cpus), (double) phy_json_int(p, "cpus", 2));
                gtk_spin_button_set_value(GTK_SPIN_BUTTON(a->memory),
                                          (double) (phy_json_int(p, "memory", 2ll << 30) >> 20));
                gtk_spin_button_set_value(GTK_SPIN_BUTTON(a->disk), (double) (phy_json_int(p, "disk_size", 0) >> 30));
                gtk_widget_set_tooltip_text(GTK_WIDGET(cb), phy_json_str(p, "summary"));
        }
}

static void profiles_reply(PhyReply *r, gpointer data) {
        Assistant *a = data;
        if (r->status != 200) {
                set_status(a, r->error, TRUE);
                return;
        }
        a->profiles = json_object_get(r->body);
        json_object *arr = NULL;
        json_object_object_get_ex(r->body, "profiles", &arr);
        for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
                const char *n = phy_json_str(json_object_array_get_idx(arr, i), "name");
                if (n)
                        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(a->profile), n, n);
        }
        gtk_combo_box_set_active_id(GTK_COMBO_BOX(a->profile), "linux");
}

static void catalog_reply(PhyReply *r, gpointer data) {
        Assistant *a = data;
        json_object *arr = NULL;
        if (r->status != 200 || !json_object_object_get_ex(r->body, "catalog", &arr))
                return;
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                const char *id = phy_json_str(e, "id"), *name = phy_json_str(e, "name");
                if (id)
                        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(a->catalog), id, name ? name : id);
        }
        gtk_combo_box_set_active(GTK_COMBO_BOX(a->catalog), 0);
}

/* ---- creating ---- */

static void created(PhyReply *r, gpointer data) {
        Assistant *a = data;
        set_busy(a, FALSE);
        if (r->status != 201 && r->status != 200) {
                set_status(a, r->error, TRUE);     /* the sentence phyllo create prints */
                return;
        }
        PhyWindow *w = a->w;
        finish(a);
        phy_window_reload(w);
}

static void add_path(json_object *o, const char *key, GtkWidget *entry) {
        const char *t = gtk_entry_get_text(GTK_ENTRY(entry));
        if (t && *t)
                json_object_object_add(o, key, json_object_new_string(t));
}

static json_object *create_body(Assistant *a) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(gtk_entry_get_text(GTK_ENTRY(a->name))));
        const char *profile = gtk_combo_box_get_active_id(GTK_COMBO_BOX(a->profile));
        if (profile)
                json_object_object_add(o, "profile", json_object_new_string(profile));
        json_object_object_add(o, "cpus", json_object_new_int(gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(a->cpus))));
        g_autofree char *mem = g_strdup_printf("%dM", gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(a->memory)));
        json_object_object_add(o, "memory", json_object_new_string(mem));
        int disk = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(a->disk));
        if (disk > 0) {
                g_autofree char *d = g_strdup_printf("%dG", disk);
                json_object_object_add(o, "disk", json_object_new_string(d));
        } else
                json_object_object_add(o, "no_disk", json_object_new_boolean(1));
        const char *display = gtk_combo_box_get_active_id(GTK_COMBO_BOX(a->display));
        if (display && strcmp(display, "default") != 0)
                json_object_object_add(o, "display", json_object_new_string(display));
        return o;
}

static void post_create(Assistant *a, json_object *o) {
        set_busy(a, TRUE);
        gtk_progress_bar_pulse(GTK_PROGRESS_BAR(a->progress));
        set_status(a, _("Creating the virtual machine…"), FALSE);
        phy_call("POST", "/v1/vms", o, a->cancel, created, a);
}

static void create_from_download(Assistant *a, const char *iso) {
        json_object *o = create_body(a);
        json_object_object_add(o, "iso", json_object_new_string(iso));
        /* The catalog's plan for the devices (what phyllo create --os does). */
        static const char *const keys[] = { "disk_bus", "nic", "gpu" };
        for (size_t i = 0; a->plan && i < G_N_ELEMENTS(keys); i++)
                if (phy_json_str(a->plan, keys[i]))
                        json_object_object_add(o, keys[i], json_object_new_string(phy_json_str(a->plan, keys[i])));
        post_create(a, o);
}

void phy_assistant_download_event(json_object *d) {
        Assistant *a = current;
        if (!a || a->download_id < 0 || phy_json_int(d, "id", -2) != a->download_id)
                return;
        const char *state = phy_json_str(d, "state"), *phase = phy_json_str(d, "phase");
        int64_t done = phy_json_int(d, "done", 0), total = phy_json_int(d, "total", 0);
        if (g_strcmp0(state, "failed") == 0) {
                a->download_id = -1;
                set_busy(a, FALSE);
                set_status(a, phy_json_str(d, "error"), TRUE);
                return;
        }
        if (g_strcmp0(state, "done") == 0) {
                a->download_id = -1;
                create_from_download(a, phy_json_str(d, "path"));
                return;
        }
        if (total > 0)
                gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(a->progress), (double) done / (double) total);
        g_autofree char *sd = g_format_size((guint64) done), *st = g_format_size((guint64) total);
        g_autofree char *text = total > 0 ? g_strdup_printf(_("Downloading (%s): %s of %s"), phase, sd, st)
                                          : g_strdup_printf(_("Downloading (%s)"), phase ? phase : "");
        set_status(a, text, FALSE);
}

static void download_started(PhyReply *r, gpointer data) {
        Assistant *a = data;
        if (r->status != 202 && r->status != 200) {
                set_busy(a, FALSE);
                set_status(a, r->error, TRUE);
                return;
        }
        a->download_id = phy_json_int(r->body, "id", -1);
        if (g_strcmp0(phy_json_str(r->body, "state"), "done") == 0)
                phy_assistant_download_event(r->body);
}

static void plan_reply(PhyReply *r, gpointer data) {
        Assistant *a = data;
        json_object *plan = NULL;
        if (r->status != 200 || !json_object_object_get_ex(r->body, "plan", &plan)) {
                set_busy(a, FALSE);
                set_status(a, r->error ? r->error : _("The catalog has no plan for this OS."), TRUE);
                return;
        }
        a->plan = json_object_get(plan);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "os", json_object_new_string(a->plan_os));
        set_status(a, _("Starting the download…"), FALSE);
        phy_call("POST", "/v1/downloads", o, a->cancel, download_started, a);
}

static void imported(PhyReply *r, gpointer data) {
        created(r, data);
}

static void create_clicked(GtkButton *b, Assistant *a) {
        const char *src = gtk_stack_get_visible_child_name(GTK_STACK(a->stack));
        set_status(a, NULL, FALSE);
        if (g_strcmp0(src, "bundle") == 0) {
                const char *path = gtk_entry_get_text(GTK_ENTRY(a->bundle));
                const char *name = gtk_entry_get_text(GTK_ENTRY(a->name));
                g_autofree char *esc = phy_escape(name);
                g_autofree char *p = *name ? g_strdup_printf("/v1/vms/import?name=%s", esc)
                                           : g_strdup("/v1/vms/import");
                set_busy(a, TRUE);
                set_status(a, _("Importing the bundle…"), FALSE);
                phy_upload("POST", p, path, a->cancel, imported, a);
                return;
        }
        if (!*gtk_entry_get_text(GTK_ENTRY(a->name))) {
                set_status(a, _("Give the virtual machine a name."), TRUE);
                return;
        }
        if (g_strcmp0(src, "catalog") == 0) {
                const char *os = gtk_combo_box_get_active_id(GTK_COMBO_BOX(a->catalog));
                if (!os) {
                        set_status(a, _("Choose an operating system."), TRUE);
                        return;
                }
                g_free(a->plan_os);
                a->plan_os = g_strdup(os);
                g_autofree char *esc = phy_escape(os);
                g_autofree char *p = g_strdup_printf("/v1/catalog/%s", esc);
                set_busy(a, TRUE);
                set_status(a, _("Reading the catalog…"), FALSE);
                phy_call("GET", p, NULL, a->cancel, plan_reply, a);
                return;
        }
        json_object *o = create_body(a);
        if (g_strcmp0(src, "iso") == 0)
                add_path(o, "iso", a->iso);
        else {
                add_path(o, "kernel", a->kernel);
                add_path(o, "initrd", a->initrd);
                const char *ap = gtk_entry_get_text(GTK_ENTRY(a->append));
                if (*ap)
                        json_object_object_add(o, "append", json_object_new_string(ap));
                json_object_object_add(o, "uefi", json_object_new_boolean(0));
        }
        post_create(a, o);
}

static void cancel_clicked(GtkButton *b, Assistant *a) {
        /* A running download is cancelled on phyllod's side too. */
        if (a->download_id >= 0) {
                g_autofree char *p = g_strdup_printf("/v1/downloads/%" G_GINT64_FORMAT, a->download_id);
                phy_call("DELETE", p, NULL, NULL, NULL, NULL);
        }
        finish(a);
}

static gboolean dialog_delete(GtkWidget *d, GdkEvent *ev, Assistant *a) {
        cancel_clicked(NULL, a);
        return TRUE;
}

/* ---- layout ---- */

static void browse_clicked(GtkButton *b, GtkWidget *entry) {
        GtkWidget *top = gtk_widget_get_toplevel(entry);
        g_autoptr(GtkFileChooserNative) fc = gtk_file_chooser_native_new(_("Choose a File"), GTK_WINDOW(top),
                                                                         GTK_FILE_CHOOSER_ACTION_OPEN, NULL, NULL);
        if (gtk_native_dialog_run(GTK_NATIVE_DIALOG(fc)) == GTK_RESPONSE_ACCEPT) {
                g_autofree char *f = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(fc));
                gtk_entry_set_text(GTK_ENTRY(entry), f ? f : "");
        }
}

static GtkWidget *row(GtkWidget *grid, int y, const char *label, GtkWidget *w, const char *a11y) {
        GtkWidget *l = gtk_label_new_with_mnemonic(label);
        gtk_label_set_xalign(GTK_LABEL(l), 1);
        gtk_style_context_add_class(gtk_widget_get_style_context(l), "dim-label");
        gtk_label_set_mnemonic_widget(GTK_LABEL(l), w);
        gtk_grid_attach(GTK_GRID(grid), l, 0, y, 1, 1);
        gtk_widget_set_hexpand(w, TRUE);
        gtk_grid_attach(GTK_GRID(grid), w, 1, y, 1, 1);
        phy_a11y(w, a11y);
        return w;
}

static GtkWidget *path_row(GtkWidget *grid, int y, const char *label, const char *a11y) {
        GtkWidget *e = gtk_entry_new();
        row(grid, y, label, e, a11y);
        GtkWidget *b = gtk_button_new_with_label(_("Browse…"));
        g_autofree char *ba = g_strdup_printf(_("Browse for %s"), a11y);
        phy_a11y(b, ba);
        g_signal_connect(b, "clicked", G_CALLBACK(browse_clicked), e);
        gtk_grid_attach(GTK_GRID(grid), b, 2, y, 1, 1);
        return e;
}

static GtkWidget *grid_new(void) {
        GtkWidget *g = gtk_grid_new();
        gtk_grid_set_row_spacing(GTK_GRID(g), 8);
        gtk_grid_set_column_spacing(GTK_GRID(g), 12);
        g_object_set(g, "margin", 12, NULL);
        return g;
}

void phy_assistant_run(PhyWindow *w) {
        if (current) {
                gtk_window_present(GTK_WINDOW(current->dialog));
                return;
        }
        Assistant *a = g_new0(Assistant, 1);
        current = a;
        a->w = w;
        a->download_id = -1;
        a->cancel = g_cancellable_new();
        a->dialog = g_object_new(GTK_TYPE_DIALOG, "use-header-bar", TRUE, NULL);
        gtk_window_set_title(GTK_WINDOW(a->dialog), _("New Virtual Machine"));
        gtk_window_set_transient_for(GTK_WINDOW(a->dialog), GTK_WINDOW(phy_window_widget(w)));
        gtk_window_set_modal(GTK_WINDOW(a->dialog), TRUE);
        gtk_window_set_default_size(GTK_WINDOW(a->dialog), 620, -1);
        phy_a11y(a->dialog, _("New Virtual Machine"));
        g_signal_connect(a->dialog, "delete-event", G_CALLBACK(dialog_delete), a);
        GtkWidget *content = gtk_dialog_get_content_area(GTK_DIALOG(a->dialog));

        a->stack = gtk_stack_new();
        a->source = gtk_stack_switcher_new();
        gtk_stack_switcher_set_stack(GTK_STACK_SWITCHER(a->source), GTK_STACK(a->stack));
        gtk_widget_set_halign(a->source, GTK_ALIGN_CENTER);
        g_object_set(a->source, "margin-top", 12, NULL);
        phy_a11y(a->source, _("Source"));
        gtk_box_pack_start(GTK_BOX(content), a->source, FALSE, FALSE, 0);
        gtk_box_pack_start(GTK_BOX(content), a->stack, FALSE, FALSE, 0);

        GtkWidget *g = grid_new();
        a->catalog = row(g, 0, _("_Operating system"), gtk_combo_box_text_new(), _("Operating system"));
        GtkWidget *note = gtk_label_new(_("The installation image is downloaded and verified first."));
        gtk_style_context_add_class(gtk_widget_get_style_context(note), "dim-label");
        gtk_grid_attach(GTK_GRID(g), note, 1, 1, 1, 1);
        gtk_stack_add_titled(GTK_STACK(a->stack), g, "catalog", _("Catalog"));
        g = grid_new();
        a->iso = path_row(g, 0, _("_ISO image"), _("ISO image"));
        gtk_stack_add_titled(GTK_STACK(a->stack), g, "iso", _("ISO Image"));
        g = grid_new();
        a->kernel = path_row(g, 0, _("_Kernel"), _("Kernel"));
        a->initrd = path_row(g, 1, _("_Initrd"), _("Initrd"));
        a->append = row(g, 2, _("_Command line"), gtk_entry_new(), _("Kernel command line"));
        gtk_entry_set_text(GTK_ENTRY(a->append), "console=ttyS0");
        gtk_stack_add_titled(GTK_STACK(a->stack), g, "kernel", _("Linux Kernel"));
        g = grid_new();
        a->bundle = path_row(g, 0, _("_Bundle"), _("Bundle file"));
        gtk_stack_add_titled(GTK_STACK(a->stack), g, "bundle", _("Bundle"));

        gtk_box_pack_start(GTK_BOX(content), gtk_separator_new(GTK_ORIENTATION_HORIZONTAL), FALSE, FALSE, 0);
        g = grid_new();
        a->name = row(g, 0, _("_Name"), gtk_entry_new(), _("Name"));
        a->profile = row(g, 1, _("_Profile"), gtk_combo_box_text_new(), _("Profile"));
        g_signal_connect(a->profile, "changed", G_CALLBACK(profile_changed), a);
        a->cpus = row(g, 2, _("_CPUs"), gtk_spin_button_new_with_range(1, 256, 1), _("CPUs"));
        a->memory = row(g, 3, _("_Memory (MiB)"), gtk_spin_button_new_with_range(64, 1 << 20, 64), _("Memory in MiB"));
        a->disk = row(g, 4, _("_Disk (GiB, 0 for none)"), gtk_spin_button_new_with_range(0, 65536, 1),
                      _("Disk size in GiB"));
        a->display = row(g, 5, _("_Display"), gtk_combo_box_text_new(), _("Display"));
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(a->display), "default", _("The profile's (SPICE)"));
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(a->display), "spice", _("SPICE, in this window"));
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(a->display), "none", _("None: serial console only"));
        gtk_combo_box_set_active_id(GTK_COMBO_BOX(a->display), "default");
        gtk_box_pack_start(GTK_BOX(content), g, FALSE, FALSE, 0);

        a->progress = gtk_progress_bar_new();
        phy_a11y(a->progress, _("Progress"));
        g_object_set(a->progress, "margin-start", 12, "margin-end", 12, NULL);
        gtk_box_pack_start(GTK_BOX(content), a->progress, FALSE, FALSE, 0);
        a->status = gtk_label_new(NULL);
        gtk_label_set_line_wrap(GTK_LABEL(a->status), TRUE);
        gtk_label_set_selectable(GTK_LABEL(a->status), TRUE);
        gtk_label_set_xalign(GTK_LABEL(a->status), 0);
        g_object_set(a->status, "margin", 12, NULL);
        phy_a11y(a->status, _("Assistant status"));
        gtk_box_pack_start(GTK_BOX(content), a->status, FALSE, FALSE, 0);

        a->cancel_btn = gtk_dialog_add_button(GTK_DIALOG(a->dialog), _("_Cancel"), GTK_RESPONSE_CANCEL);
        phy_a11y(a->cancel_btn, _("Cancel"));
        g_signal_connect(a->cancel_btn, "clicked", G_CALLBACK(cancel_clicked), a);
        a->create_btn = gtk_dialog_add_button(GTK_DIALOG(a->dialog), _("C_reate"), GTK_RESPONSE_OK);
        phy_a11y(a->create_btn, _("Create"));
        gtk_style_context_add_class(gtk_widget_get_style_context(a->create_btn), "suggested-action");
        g_signal_connect(a->create_btn, "clicked", G_CALLBACK(create_clicked), a);

        gtk_widget_show_all(a->dialog);
        gtk_widget_hide(a->progress);
        phy_call("GET", "/v1/profiles", NULL, a->cancel, profiles_reply, a);
        phy_call("GET", "/v1/catalog", NULL, a->cancel, catalog_reply, a);
}

/* SPDX-License-Identifier: MIT */
/* The new VM assistant.  Sources: an OS of the catalog (downloaded with
 * progress, cancellable; express install fields when the catalog can make
 * an answer file for it), a local ISO (its OS detected from the media by
 * phyllod, the profile defaulted from it), a Linux kernel, or a VM to bring
 * in: a libvirt domain XML, a quickemu .conf, an OVA, a Phyllome bundle (the
 * import report shown).  Resources default from the profile and the OS's
 * minimum/recommended tiers; then POST /v1/vms or the import. */
#include <string.h>
#include "app.h"

typedef struct {
        PhyWindow *w;
        GtkWidget *dialog, *source, *stack, *name, *profile, *cpus, *memory, *disk, *display, *catalog, *tiers, *iso,
                *detected, *kernel, *initrd, *append, *import_kind, *import_file, *report, *report_box, *express,
                *express_on, *express_grid, *user, *password, *hostname, *locale, *progress, *status, *create_btn,
                *cancel_btn, *resources;
        json_object *profiles;
        int64_t download_id;    /* the download followed, or -1 */
        char *plan_os;          /* the catalog OS being created */
        char *iso_os;           /* the catalog id of the OS detected on the ISO, or NULL */
        gboolean catalog_unattended, iso_unattended;
        json_object *plan;
        GCancellable *cancel, *lookup;
        gboolean busy, imported;
        gboolean starting;      /* POST /v1/downloads sent, its id not known yet */
        gboolean cancel_asked;  /* Cancel clicked meanwhile: the download is cancelled once its id is known */
        gboolean closing;       /* closed meanwhile: hidden until that cancellation is sent */
} Assistant;

static Assistant *current;

static void set_status(Assistant *a, const char *text, gboolean error) {
        gtk_label_set_text(GTK_LABEL(a->status), text ? text : "");
        gtk_widget_set_visible(a->status, text && *text);
        GtkStyleContext *sc = gtk_widget_get_style_context(a->status);
        if (error)
                gtk_style_context_add_class(sc, "error");
        else
                gtk_style_context_remove_class(sc, "error");
}

static gboolean pulse(gpointer data) {
        Assistant *a = data;
        gtk_progress_bar_pulse(GTK_PROGRESS_BAR(a->progress));
        return G_SOURCE_CONTINUE;
}

static guint pulse_id;

/* busy: a request runs; the progress bar shows (pulsing until a download
 * says how far it is) and Cancel stops it. */
static void set_busy(Assistant *a, gboolean busy) {
        a->busy = busy;
        gtk_widget_set_sensitive(a->create_btn, !busy);
        gtk_widget_set_sensitive(a->stack, !busy);
        gtk_widget_set_sensitive(a->source, !busy);
        gtk_widget_set_visible(a->progress, busy);
        if (busy && !pulse_id) {
                gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(a->progress), 0);
                pulse_id = g_timeout_add(150, pulse, a);
        } else if (!busy && pulse_id) {
                g_source_remove(pulse_id);
                pulse_id = 0;
        }
}

static void stop_pulse(void) {
        if (pulse_id) {
                g_source_remove(pulse_id);
                pulse_id = 0;
        }
}

static void finish(Assistant *a) {
        if (current == a)
                current = NULL;
        stop_pulse();
        g_cancellable_cancel(a->cancel);
        g_object_unref(a->cancel);
        if (a->lookup) {
                g_cancellable_cancel(a->lookup);
                g_object_unref(a->lookup);
        }
        if (a->profiles)
                json_object_put(a->profiles);
        if (a->plan)
                json_object_put(a->plan);
        g_free(a->plan_os);
        g_free(a->iso_os);
        gtk_widget_destroy(a->dialog);
        g_free(a);
}

static const char *source_of(Assistant *a) {
        return gtk_stack_get_visible_child_name(GTK_STACK(a->stack));
}

/* The express install fields show where the source's OS supports it. */
static void update_express(Assistant *a) {
        const char *src = source_of(a);
        gboolean can = (g_strcmp0(src, "catalog") == 0 && a->catalog_unattended) ||
                       (g_strcmp0(src, "iso") == 0 && a->iso_unattended && a->iso_os);
        gtk_widget_set_visible(a->express, can);
        gtk_widget_set_sensitive(a->express_grid, gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->express_on)));
        /* an import names itself and has its own resources */
        gboolean import = g_strcmp0(src, "import") == 0;
        gtk_widget_set_visible(a->resources, !import);
        gtk_button_set_label(GTK_BUTTON(a->create_btn), import ? _("_Import") : _("C_reate"));
        gtk_button_set_use_underline(GTK_BUTTON(a->create_btn), TRUE);
        gtk_entry_set_placeholder_text(GTK_ENTRY(a->name), import ? _("the name it has (optional)") : NULL);
        /* a GTK 3 window grows for what shows, and shrinks only when asked */
        gtk_window_resize(GTK_WINDOW(a->dialog), 640, 1);
}

static gboolean express_wanted(Assistant *a) {
        return gtk_widget_get_visible(a->express) && gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(a->express_on));
}

/* ---- defaults from the profile and the OS ---- */

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

/* The profile and sizes of an OS's plan (GET /v1/catalog/{os}, the
 * identification of an ISO); its minimum and recommended tiers said. */
static void apply_plan(Assistant *a, json_object *reply) {
        json_object *plan = NULL, *os = NULL;
        if (!json_object_object_get_ex(reply, "plan", &plan))
                return;
        if (phy_json_str(plan, "profile"))
                gtk_combo_box_set_active_id(GTK_COMBO_BOX(a->profile), phy_json_str(plan, "profile"));
        gtk_spin_button_set_value(GTK_SPIN_BUTTON(a->cpus), (double) phy_json_int(plan, "cpus", 2));
        gtk_spin_button_set_value(GTK_SPIN_BUTTON(a->memory), (double) (phy_json_int(plan, "memory", 2ll << 30) >> 20));
        gtk_spin_button_set_value(GTK_SPIN_BUTTON(a->disk), (double) (phy_json_int(plan, "disk", 0) >> 30));
        GString *t = g_string_new(NULL);
        if (json_object_object_get_ex(reply, "os", &os)) {
                static const char *const tiers[] = { "minimum", "recommended" };
                for (size_t i = 0; i < G_N_ELEMENTS(tiers); i++) {
                        json_object *tier = NULL;
                        if (!json_object_object_get_ex(os, tiers[i], &tier) || !json_object_object_length(tier))
                                continue;
                        g_autofree char *mem = g_format_size_full((guint64) phy_json_int(tier, "memory", 0),
                                                                  G_FORMAT_SIZE_IEC_UNITS);
                        g_autofree char *disk = g_format_size_full((guint64) phy_json_int(tier, "storage", 0),
                                                                   G_FORMAT_SIZE_IEC_UNITS);
                        if (t->len)
                                g_string_append(t, "; ");
                        g_string_append_printf(t, i == 0 ? _("minimum: %s memory, %s disk")
                                                         : _("recommended: %s memory, %s disk"), mem, disk);
                }
        }
        gtk_label_set_text(GTK_LABEL(a->tiers), t->str);
        g_string_free(t, TRUE);
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

/* A lookup (an OS's plan, an ISO's identification): the one before is
 * cancelled. */
static GCancellable *new_lookup(Assistant *a) {
        if (a->lookup) {
                g_cancellable_cancel(a->lookup);
                g_object_unref(a->lookup);
        }
        a->lookup = g_cancellable_new();
        return a->lookup;
}

static void catalog_os_reply(PhyReply *r, gpointer data) {
        Assistant *a = data;
        if (r->status != 200) {
                gtk_label_set_text(GTK_LABEL(a->tiers), r->error);
                a->catalog_unattended = FALSE;
        } else {
                a->catalog_unattended = json_object_get_boolean(json_object_object_get(r->body, "unattended"));
                if (g_strcmp0(source_of(a), "catalog") == 0)
                        apply_plan(a, r->body);
        }
        update_express(a);
}

static void catalog_changed(GtkComboBox *cb, Assistant *a) {
        const char *os = gtk_combo_box_get_active_id(cb);
        a->catalog_unattended = FALSE;
        update_express(a);
        if (!os)
                return;
        gtk_label_set_text(GTK_LABEL(a->tiers), _("Reading the catalog…"));
        g_autofree char *esc = phy_escape(os);
        g_autofree char *p = g_strdup_printf("/v1/catalog/%s", esc);
        phy_call("GET", p, NULL, new_lookup(a), catalog_os_reply, a);
}

static void catalog_reply(PhyReply *r, gpointer data) {
        Assistant *a = data;
        json_object *arr = NULL;
        if (r->status != 200 || !json_object_object_get_ex(r->body, "catalog", &arr)) {
                gtk_label_set_text(GTK_LABEL(a->tiers), r->error ? r->error : "");
                return;
        }
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                const char *id = phy_json_str(e, "id"), *name = phy_json_str(e, "name");
                if (id)
                        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(a->catalog), id, name ? name : id);
        }
        gtk_combo_box_set_active(GTK_COMBO_BOX(a->catalog), 0);
}

/* ---- a local ISO: its OS detected by phyllod ---- */

static void identify_reply(PhyReply *r, gpointer data) {
        Assistant *a = data;
        g_clear_pointer(&a->iso_os, g_free);
        a->iso_unattended = FALSE;
        if (r->status != 200) {
                gtk_label_set_text(GTK_LABEL(a->detected), r->error);
                update_express(a);
                return;
        }
        json_object *os = NULL, *plan = NULL;
        json_object_object_get_ex(r->body, "os", &os);
        json_object_object_get_ex(r->body, "plan", &plan);
        a->iso_os = g_strdup(phy_json_str(r->body, "catalog"));
        a->iso_unattended = json_object_get_boolean(json_object_object_get(r->body, "unattended"));
        g_autofree char *t = g_strdup_printf(_("Detected: %s (volume “%s”); profile %s"),
                                             phy_json_str(os, "name") ? phy_json_str(os, "name") : "?",
                                             phy_json_str(r->body, "volume_id") ? phy_json_str(r->body, "volume_id") : "",
                                             phy_json_str(plan, "profile") ? phy_json_str(plan, "profile") : "?");
        gtk_label_set_text(GTK_LABEL(a->detected), t);
        if (g_strcmp0(source_of(a), "iso") == 0)
                apply_plan(a, r->body);
        update_express(a);
}

static void iso_changed(GtkEditable *e, Assistant *a) {
        const char *path = gtk_entry_get_text(GTK_ENTRY(a->iso));
        g_clear_pointer(&a->iso_os, g_free);
        a->iso_unattended = FALSE;
        update_express(a);
        if (!g_path_is_absolute(path) || !g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
                gtk_label_set_text(GTK_LABEL(a->detected), *path ? _("Not a file (give its absolute path).") : "");
                new_lookup(a);
                return;
        }
        gtk_label_set_text(GTK_LABEL(a->detected), _("Detecting the operating system…"));
        json_object *o = json_object_new_object();
        json_object_object_add(o, "iso", json_object_new_string(path));
        phy_call("POST", "/v1/media/identify", o, new_lookup(a), identify_reply, a);
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

/* POST /v1/vms's "unattended" (phyllod makes the answer file). */
static void add_express(Assistant *a, json_object *o, const char *os) {
        if (!express_wanted(a) || !os)
                return;
        json_object *u = json_object_new_object();
        json_object_object_add(u, "os", json_object_new_string(os));
        add_path(u, "user", a->user);
        add_path(u, "password", a->password);
        add_path(u, "hostname", a->hostname);
        add_path(u, "locale", a->locale);
        json_object_object_add(o, "unattended", u);
}

static void post_create(Assistant *a, json_object *o) {
        set_busy(a, TRUE);
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
        add_express(a, o, a->plan_os);
        post_create(a, o);
}

void phy_assistant_download_event(json_object *d) {
        Assistant *a = current;
        if (!a || a->download_id < 0 || phy_json_int(d, "id", -2) != a->download_id)
                return;
        const char *state = phy_json_str(d, "state"), *phase = phy_json_str(d, "phase");
        int64_t done = phy_json_int(d, "done", 0), total = phy_json_int(d, "total", 0);
        if (g_strcmp0(state, "failed") == 0 || g_strcmp0(state, "cancelled") == 0) {
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
        if (total > 0 && g_strcmp0(phase, "image") == 0) {
                stop_pulse();
                gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(a->progress), (double) done / (double) total);
        }
        g_autofree char *sd = g_format_size((guint64) done), *st = g_format_size((guint64) total);
        g_autofree char *text = g_strcmp0(phase, "image") == 0 && total > 0
                                        ? g_strdup_printf(_("Downloading: %s of %s"), sd, st)
                                : g_strcmp0(phase, "verify") == 0 ? g_strdup(_("Verifying the download…"))
                                : g_strcmp0(phase, "checksums") == 0
                                        ? g_strdup(_("Checking the vendor's checksums and signature…"))
                                        : g_strdup_printf(_("Downloading (%s)"), phase ? phase : "");
        set_status(a, text, FALSE);
}

static void cancel_download(Assistant *a);

static void download_started(PhyReply *r, gpointer data) {
        Assistant *a = data;
        a->starting = FALSE;
        if (a->cancel_asked && (r->status == 202 || r->status == 200)) {
                a->download_id = phy_json_int(r->body, "id", -1);
                cancel_download(a);
                return;
        }
        if (a->closing) {
                finish(a);
                return;
        }
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
        if (a->plan)
                json_object_put(a->plan);
        a->plan = json_object_get(plan);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "os", json_object_new_string(a->plan_os));
        set_status(a, _("Starting the download…"), FALSE);
        a->starting = TRUE;
        a->cancel_asked = FALSE;
        phy_call("POST", "/v1/downloads", o, a->cancel, download_started, a);
}

/* ---- importing ---- */

static void report_add(GtkTextBuffer *b, const char *text) {
        GtkTextIter end;
        gtk_text_buffer_get_end_iter(b, &end);
        gtk_text_buffer_insert(b, &end, text, -1);
}

/* The import's report: what changed, what Phyllome does not model, what it
 * decides itself, notes; each with its element and line. */
static void imported(PhyReply *r, gpointer data) {
        Assistant *a = data;
        set_busy(a, FALSE);
        if (r->status != 201 && r->status != 200) {
                set_status(a, r->error, TRUE);
                return;
        }
        a->imported = TRUE;
        json_object *rep = NULL, *items = NULL;
        json_object_object_get_ex(r->body, "report", &rep);
        const char *name = phy_json_str(r->body, "name");
        g_autofree char *head =
                rep ? g_strdup_printf(_("Imported as “%s”. Changed: %d · not modelled: %d · decided by Phyllome: %d · "
                                        "notes: %d · noticed by the guest: %d."),
                                      name, (int) phy_json_int(rep, "changed", 0), (int) phy_json_int(rep, "not_modelled", 0),
                                      (int) phy_json_int(rep, "implied", 0), (int) phy_json_int(rep, "notes", 0),
                                      (int) phy_json_int(rep, "guest_visible", 0))
                    : g_strdup_printf(_("Imported as “%s”."), name);
        set_status(a, head, FALSE);
        GtkTextBuffer *b = gtk_text_view_get_buffer(GTK_TEXT_VIEW(a->report));
        gtk_text_buffer_set_text(b, "", -1);
        json_object *stripped = NULL;
        if (json_object_object_get_ex(r->body, "stripped", &stripped))
                for (size_t i = 0; i < json_object_array_length(stripped); i++) {
                        g_autofree char *l = g_strdup_printf(_("stripped: %s\n"),
                                                             json_object_get_string(json_object_array_get_idx(stripped, i)));
                        report_add(b, l);
                }
        /* the ones that matter first */
        static const char *const order[] = { "changed", "not-modelled", "not_modelled", NULL };
        if (rep && json_object_object_get_ex(rep, "items", &items))
                for (int pass = 0; pass < 2; pass++)
                        for (size_t i = 0; i < json_object_array_length(items); i++) {
                                json_object *it = json_object_array_get_idx(items, i);
                                const char *st = phy_json_str(it, "status");
                                gboolean first = g_strv_contains(order, st ? st : "");
                                if (first != (pass == 0))
                                        continue;
                                g_autofree char *l = g_strdup_printf(
                                        "%s%s line %d, %s: %s\n", st ? st : "",
                                        json_object_get_boolean(json_object_object_get(it, "guest_visible"))
                                                ? _(" (the guest notices)") : "",
                                        (int) phy_json_int(it, "line", 0), phy_json_str(it, "element"),
                                        phy_json_str(it, "message"));
                                report_add(b, l);
                        }
        gtk_widget_show(a->report_box);
        gtk_widget_hide(a->create_btn);
        gtk_button_set_label(GTK_BUTTON(a->cancel_btn), _("_Close"));
        phy_a11y(a->cancel_btn, _("Close"));
        gtk_widget_set_sensitive(a->stack, FALSE);
        gtk_widget_set_sensitive(a->source, FALSE);
        phy_window_reload(a->w);
}

static void import_clicked(Assistant *a) {
        const char *kind = gtk_combo_box_get_active_id(GTK_COMBO_BOX(a->import_kind));
        const char *path = gtk_entry_get_text(GTK_ENTRY(a->import_file));
        const char *name = gtk_entry_get_text(GTK_ENTRY(a->name));
        if (!*path) {
                set_status(a, _("Choose the file to import."), TRUE);
                return;
        }
        set_busy(a, TRUE);
        set_status(a, _("Importing…"), FALSE);
        if (g_strcmp0(kind, "bundle") == 0) {
                g_autofree char *esc = phy_escape(name);
                g_autofree char *p = *name ? g_strdup_printf("/v1/vms/import?name=%s", esc)
                                           : g_strdup("/v1/vms/import");
                phy_upload("POST", p, path, a->cancel, imported, a);
                return;
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "file", json_object_new_string(path));
        if (*name)
                json_object_object_add(o, "name", json_object_new_string(name));
        g_autofree char *p = g_strdup_printf("/v1/import/%s", kind);
        phy_call("POST", p, o, a->cancel, imported, a);
}

static void create_clicked(GtkButton *b, Assistant *a) {
        const char *src = source_of(a);
        set_status(a, NULL, FALSE);
        if (g_strcmp0(src, "import") == 0) {
                import_clicked(a);
                return;
        }
        if (!*gtk_entry_get_text(GTK_ENTRY(a->name))) {
                set_status(a, _("Give the virtual machine a name."), TRUE);
                return;
        }
        if (express_wanted(a) && (!*gtk_entry_get_text(GTK_ENTRY(a->user)) ||
                                  !*gtk_entry_get_text(GTK_ENTRY(a->password)))) {
                set_status(a, _("The express installation needs a user name and a password."), TRUE);
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
        if (g_strcmp0(src, "iso") == 0) {
                add_path(o, "iso", a->iso);
                add_express(a, o, a->iso_os);
        } else {
                add_path(o, "kernel", a->kernel);
                add_path(o, "initrd", a->initrd);
                const char *ap = gtk_entry_get_text(GTK_ENTRY(a->append));
                if (*ap)
                        json_object_object_add(o, "append", json_object_new_string(ap));
                json_object_object_add(o, "uefi", json_object_new_boolean(0));
        }
        post_create(a, o);
}

static void download_cancelled(PhyReply *r, gpointer data) {
        Assistant *a = data;
        if (a->closing) {
                finish(a);
                return;
        }
        set_busy(a, FALSE);
        if (r->status != 200)
                set_status(a, r->error, TRUE);
        else
                set_status(a, _("The download was cancelled; nothing of it is kept."), FALSE);
}

/* DELETE /v1/downloads/{id}: phyllod ends the download's child and removes
 * its partial file before it answers. */
static void cancel_download(Assistant *a) {
        g_autofree char *p = g_strdup_printf("/v1/downloads/%" G_GINT64_FORMAT, a->download_id);
        a->download_id = -1;
        a->cancel_asked = FALSE;
        set_status(a, _("Cancelling the download…"), FALSE);
        phy_call("DELETE", p, NULL, a->cancel, download_cancelled, a);
}

static void cancel_clicked(GtkButton *b, Assistant *a) {
        /* A running download is cancelled on phyllod's side: its child ends
         * and its partial file goes; the assistant stays open.  One whose
         * id has not come back yet is cancelled when it does. */
        if (a->download_id >= 0) {
                cancel_download(a);
                return;
        }
        if (a->starting) {
                a->cancel_asked = TRUE;
                set_status(a, _("Cancelling the download…"), FALSE);
                return;
        }
        /* Anything else running: the app stops waiting for it (phyllod
         * finishes what it started; an import or create cut short by the
         * connection's end leaves nothing behind). */
        if (a->busy && !a->imported) {
                g_cancellable_cancel(a->cancel);
                g_object_unref(a->cancel);
                a->cancel = g_cancellable_new();
                set_busy(a, FALSE);
                set_status(a, _("Cancelled."), FALSE);
                return;
        }
        finish(a);
}

static gboolean dialog_delete(GtkWidget *d, GdkEvent *ev, Assistant *a) {
        if (a->starting) {
                /* the download's id is on its way: cancelled when it comes */
                a->cancel_asked = a->closing = TRUE;
                gtk_widget_hide(a->dialog);
                return TRUE;
        }
        if (a->download_id >= 0) {
                g_autofree char *p = g_strdup_printf("/v1/downloads/%" G_GINT64_FORMAT, a->download_id);
                phy_call("DELETE", p, NULL, NULL, NULL, NULL);
        }
        finish(a);
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

/* The first column's labels of the assistant's grids, one width. */
static GtkSizeGroup *first_column;

/* A label at column x of row y and its control after it, width columns wide. */
static GtkWidget *cell(GtkWidget *grid, int x, int y, int width, const char *label, GtkWidget *w, const char *a11y) {
        GtkWidget *l = gtk_label_new_with_mnemonic(label);
        gtk_label_set_xalign(GTK_LABEL(l), 1);
        gtk_style_context_add_class(gtk_widget_get_style_context(l), "dim-label");
        gtk_label_set_mnemonic_widget(GTK_LABEL(l), w);
        gtk_grid_attach(GTK_GRID(grid), l, x, y, 1, 1);
        if (x == 0 && first_column)
                gtk_size_group_add_widget(first_column, l);
        gtk_widget_set_hexpand(w, TRUE);
        gtk_grid_attach(GTK_GRID(grid), w, x + 1, y, width, 1);
        phy_a11y(w, a11y);
        return w;
}

static GtkWidget *row(GtkWidget *grid, int y, const char *label, GtkWidget *w, const char *a11y) {
        return cell(grid, 0, y, 1, label, w, a11y);
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
        gtk_grid_set_row_spacing(GTK_GRID(g), 6);
        gtk_grid_set_column_spacing(GTK_GRID(g), 12);
        g_object_set(g, "margin-start", 18, "margin-end", 18, "margin-top", 10, "margin-bottom", 10, NULL);
        return g;
}

static GtkWidget *note_label(GtkWidget *grid, int y, const char *text, const char *a11y) {
        GtkWidget *l = gtk_label_new(text);
        gtk_label_set_xalign(GTK_LABEL(l), 0);
        gtk_label_set_line_wrap(GTK_LABEL(l), TRUE);
        /* wide enough that the window does not size for a narrow one */
        gtk_label_set_width_chars(GTK_LABEL(l), 50);
        gtk_label_set_max_width_chars(GTK_LABEL(l), 60);
        gtk_style_context_add_class(gtk_widget_get_style_context(l), "dim-label");
        if (a11y)
                phy_a11y(l, a11y);
        gtk_grid_attach(GTK_GRID(grid), l, 1, y, 2, 1);
        return l;
}

static void source_changed(GObject *stack, GParamSpec *ps, Assistant *a) {
        const char *src = source_of(a);
        /* the source's OS decides the defaults */
        if (g_strcmp0(src, "catalog") == 0)
                catalog_changed(GTK_COMBO_BOX(a->catalog), a);
        else if (g_strcmp0(src, "iso") == 0)
                iso_changed(GTK_EDITABLE(a->iso), a);
        update_express(a);
}

static void express_toggled(GtkToggleButton *t, Assistant *a) {
        update_express(a);
}

static void build_express(Assistant *a, GtkWidget *content) {
        a->express = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
        a->express_on = gtk_check_button_new_with_mnemonic(_("_Express installation: install with no questions"));
        phy_a11y(a->express_on, _("Express installation"));
        g_object_set(a->express_on, "margin-start", 18, "margin-end", 18, NULL);
        g_signal_connect(a->express_on, "toggled", G_CALLBACK(express_toggled), a);
        gtk_box_pack_start(GTK_BOX(a->express), a->express_on, FALSE, FALSE, 0);
        GtkWidget *g = a->express_grid = grid_new();
        a->user = cell(g, 0, 0, 1, _("_User"), gtk_entry_new(), _("Express user"));
        a->password = cell(g, 2, 0, 1, _("Pass_word"), gtk_entry_new(), _("Express password"));
        gtk_entry_set_visibility(GTK_ENTRY(a->password), FALSE);
        gtk_entry_set_input_purpose(GTK_ENTRY(a->password), GTK_INPUT_PURPOSE_PASSWORD);
        a->hostname = cell(g, 0, 1, 1, _("_Host name"), gtk_entry_new(), _("Express host name"));
        gtk_entry_set_placeholder_text(GTK_ENTRY(a->hostname), _("the OS's default"));
        a->locale = cell(g, 2, 1, 1, _("_Language"), gtk_entry_new(), _("Express language"));
        gtk_entry_set_placeholder_text(GTK_ENTRY(a->locale), "en_US");
        gtk_box_pack_start(GTK_BOX(a->express), g, FALSE, FALSE, 0);
        gtk_box_pack_start(GTK_BOX(content), a->express, FALSE, FALSE, 0);
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
        first_column = gtk_size_group_new(GTK_SIZE_GROUP_HORIZONTAL);
        gtk_window_set_title(GTK_WINDOW(a->dialog), _("New Virtual Machine"));
        gtk_window_set_transient_for(GTK_WINDOW(a->dialog), GTK_WINDOW(phy_window_widget(w)));
        gtk_window_set_modal(GTK_WINDOW(a->dialog), TRUE);
        gtk_window_set_default_size(GTK_WINDOW(a->dialog), 640, -1);
        phy_a11y(a->dialog, _("New Virtual Machine"));
        g_signal_connect(a->dialog, "delete-event", G_CALLBACK(dialog_delete), a);
        GtkWidget *content = gtk_dialog_get_content_area(GTK_DIALOG(a->dialog));

        a->stack = gtk_stack_new();
        gtk_stack_set_homogeneous(GTK_STACK(a->stack), FALSE);
        a->source = gtk_stack_switcher_new();
        gtk_stack_switcher_set_stack(GTK_STACK_SWITCHER(a->source), GTK_STACK(a->stack));
        gtk_widget_set_halign(a->source, GTK_ALIGN_CENTER);
        g_object_set(a->source, "margin-top", 12, NULL);
        phy_a11y(a->source, _("Source"));
        gtk_box_pack_start(GTK_BOX(content), a->source, FALSE, FALSE, 0);
        gtk_box_pack_start(GTK_BOX(content), a->stack, FALSE, FALSE, 0);

        GtkWidget *g = grid_new();
        a->catalog = row(g, 0, _("_Operating system"), gtk_combo_box_text_new(), _("Operating system"));
        g_signal_connect(a->catalog, "changed", G_CALLBACK(catalog_changed), a);
        note_label(g, 1, _("The installation image is downloaded and verified first."), NULL);
        a->tiers = note_label(g, 2, "", _("Resource tiers"));
        gtk_stack_add_titled(GTK_STACK(a->stack), g, "catalog", _("Catalog"));

        g = grid_new();
        a->iso = path_row(g, 0, _("_ISO image"), _("ISO image"));
        g_signal_connect(a->iso, "changed", G_CALLBACK(iso_changed), a);
        a->detected = note_label(g, 1, "", _("Detected operating system"));
        gtk_stack_add_titled(GTK_STACK(a->stack), g, "iso", _("ISO Image"));

        g = grid_new();
        a->kernel = path_row(g, 0, _("_Kernel"), _("Kernel"));
        a->initrd = path_row(g, 1, _("_Initrd"), _("Initrd"));
        a->append = row(g, 2, _("_Command line"), gtk_entry_new(), _("Kernel command line"));
        gtk_entry_set_text(GTK_ENTRY(a->append), "console=ttyS0");
        gtk_stack_add_titled(GTK_STACK(a->stack), g, "kernel", _("Linux Kernel"));

        g = grid_new();
        a->import_kind = row(g, 0, _("_Kind"), gtk_combo_box_text_new(), _("Import kind"));
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(a->import_kind), "libvirt", _("libvirt domain (virt-manager, virsh dumpxml)"));
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(a->import_kind), "quickemu", _("quickemu configuration (.conf)"));
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(a->import_kind), "ova", _("Appliance (.ova: VirtualBox, VMware)"));
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(a->import_kind), "bundle", _("Phyllome bundle (phyllo export)"));
        gtk_combo_box_set_active_id(GTK_COMBO_BOX(a->import_kind), "libvirt");
        a->import_file = path_row(g, 1, _("_File"), _("Import file"));
        note_label(g, 2, _("What Phyllome does not model is listed after the import, never dropped silently."), NULL);
        gtk_stack_add_titled(GTK_STACK(a->stack), g, "import", _("Import"));

        gtk_box_pack_start(GTK_BOX(content), gtk_separator_new(GTK_ORIENTATION_HORIZONTAL), FALSE, FALSE, 0);
        g = grid_new();
        a->name = cell(g, 0, 0, 3, _("_Name"), gtk_entry_new(), _("Name"));
        a->resources = grid_new();
        gtk_box_pack_start(GTK_BOX(content), g, FALSE, FALSE, 0);
        g = a->resources;
        g_object_set(g, "margin-top", 0, NULL);
        a->profile = cell(g, 0, 0, 3, _("_Profile"), gtk_combo_box_text_new(), _("Profile"));
        g_signal_connect(a->profile, "changed", G_CALLBACK(profile_changed), a);
        a->cpus = cell(g, 0, 1, 1, _("_CPUs"), gtk_spin_button_new_with_range(1, 256, 1), _("CPUs"));
        a->memory = cell(g, 2, 1, 1, _("_Memory (MiB)"), gtk_spin_button_new_with_range(64, 1 << 20, 64),
                         _("Memory in MiB"));
        a->disk = cell(g, 0, 2, 1, _("_Disk (GiB)"), gtk_spin_button_new_with_range(0, 65536, 1),
                       _("Disk size in GiB"));
        gtk_widget_set_tooltip_text(a->disk, _("0: no disk"));
        a->display = cell(g, 2, 2, 1, _("_Display"), gtk_combo_box_text_new(), _("Display"));
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(a->display), "default", _("The profile's (SPICE)"));
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(a->display), "spice", _("SPICE, in this window"));
        gtk_combo_box_text_append(GTK_COMBO_BOX_TEXT(a->display), "none", _("None: serial console only"));
        gtk_combo_box_set_active_id(GTK_COMBO_BOX(a->display), "default");
        gtk_box_pack_start(GTK_BOX(content), g, FALSE, FALSE, 0);
        build_express(a, content);

        a->progress = gtk_progress_bar_new();
        phy_a11y(a->progress, _("Progress"));
        g_object_set(a->progress, "margin-start", 18, "margin-end", 18, "margin-top", 6, NULL);
        gtk_box_pack_start(GTK_BOX(content), a->progress, FALSE, FALSE, 0);
        a->status = gtk_label_new(NULL);
        gtk_label_set_line_wrap(GTK_LABEL(a->status), TRUE);
        gtk_label_set_selectable(GTK_LABEL(a->status), TRUE);
        gtk_label_set_xalign(GTK_LABEL(a->status), 0);
        gtk_label_set_width_chars(GTK_LABEL(a->status), 60);
        gtk_label_set_max_width_chars(GTK_LABEL(a->status), 70);
        g_object_set(a->status, "margin-start", 18, "margin-end", 18, "margin-top", 6, "margin-bottom", 6, NULL);
        phy_a11y(a->status, _("Assistant status"));
        gtk_box_pack_start(GTK_BOX(content), a->status, FALSE, FALSE, 0);
        a->report = gtk_text_view_new();
        gtk_text_view_set_editable(GTK_TEXT_VIEW(a->report), FALSE);
        gtk_text_view_set_wrap_mode(GTK_TEXT_VIEW(a->report), GTK_WRAP_WORD_CHAR);
        phy_a11y(a->report, _("Import report"));
        a->report_box = gtk_scrolled_window_new(NULL, NULL);
        gtk_scrolled_window_set_min_content_height(GTK_SCROLLED_WINDOW(a->report_box), 220);
        gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(a->report_box), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
        gtk_scrolled_window_set_shadow_type(GTK_SCROLLED_WINDOW(a->report_box), GTK_SHADOW_IN);
        g_object_set(a->report_box, "margin-start", 18, "margin-end", 18, "margin-bottom", 12, NULL);
        gtk_container_add(GTK_CONTAINER(a->report_box), a->report);
        gtk_box_pack_start(GTK_BOX(content), a->report_box, TRUE, TRUE, 0);

        a->cancel_btn = gtk_dialog_add_button(GTK_DIALOG(a->dialog), _("_Cancel"), GTK_RESPONSE_CANCEL);
        phy_a11y(a->cancel_btn, _("Cancel"));
        g_signal_connect(a->cancel_btn, "clicked", G_CALLBACK(cancel_clicked), a);
        a->create_btn = gtk_dialog_add_button(GTK_DIALOG(a->dialog), _("C_reate"), GTK_RESPONSE_OK);
        phy_a11y(a->create_btn, _("Create"));
        gtk_style_context_add_class(gtk_widget_get_style_context(a->create_btn), "suggested-action");
        g_signal_connect(a->create_btn, "clicked", G_CALLBACK(create_clicked), a);

        /* hidden before the window is shown: it sizes for what shows */
        gtk_widget_show_all(content);
        gtk_widget_hide(a->progress);
        gtk_widget_hide(a->report_box);
        gtk_widget_hide(a->express);
        gtk_widget_hide(a->status);
        gtk_widget_show(a->dialog);
        g_clear_object(&first_column);  /* its labels keep it */
        gtk_widget_set_sensitive(a->express_grid, FALSE);
        g_signal_connect(a->stack, "notify::visible-child", G_CALLBACK(source_changed), a);
        phy_call("GET", "/v1/profiles", NULL, a->cancel, profiles_reply, a);
        phy_call("GET", "/v1/catalog", NULL, a->cancel, catalog_reply, a);
}

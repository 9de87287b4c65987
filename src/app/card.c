/* SPDX-License-Identifier: MIT */
/* One VM in the collection: its live thumbnail (while it runs), name, OS,
 * state, and the start and stop buttons. */
#include <string.h>
#include "app.h"

struct _PhyCard {
        PhyWindow *w;
        char *name, *state;
        GtkWidget *child, *thumb, *name_label, *os_label, *state_label, *start, *stop, *open, *props;
};

const char *phy_card_name(PhyCard *c) {
        return c->name;
}

const char *phy_card_state(PhyCard *c) {
        return c->state;
}

GtkWidget *phy_card_widget(PhyCard *c) {
        return c->child;
}

/* What a person reads for each state. */
static const char *state_text(const char *s) {
        static const struct {
                const char *state, *text;
        } t[] = {
                { "running", N_("Running") },   { "stopped", N_("Stopped") },   { "paused", N_("Paused") },
                { "starting", N_("Starting") }, { "stopping", N_("Stopping") }, { "crashed", N_("Crashed") },
                { "invalid", N_("Invalid definition") }, { "failed", N_("Failed to start") },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(t); i++)
                if (g_strcmp0(s, t[i].state) == 0)
                        return _(t[i].text);
        return s ? s : _("Unknown");
}

static void set_placeholder(PhyCard *c) {
        gtk_image_set_from_icon_name(GTK_IMAGE(c->thumb), "computer-symbolic", GTK_ICON_SIZE_DIALOG);
        gtk_image_set_pixel_size(GTK_IMAGE(c->thumb), 64);
}

void phy_card_set_state(PhyCard *c, const char *state) {
        gboolean was_running = g_strcmp0(c->state, "running") == 0 || g_strcmp0(c->state, "paused") == 0;
        g_free(c->state);
        c->state = g_strdup(state);
        gtk_label_set_text(GTK_LABEL(c->state_label), state_text(state));
        g_autofree char *a11y = g_strdup_printf(_("State of %s"), c->name);
        phy_a11y(c->state_label, a11y);
        gboolean active = g_strcmp0(state, "running") == 0 || g_strcmp0(state, "paused") == 0 ||
                          g_strcmp0(state, "starting") == 0 || g_strcmp0(state, "stopping") == 0;
        gtk_widget_set_sensitive(c->start, !active && g_strcmp0(state, "invalid") != 0);
        gtk_widget_set_sensitive(c->stop, active);
        if (was_running && !active)
                set_placeholder(c);
}

void phy_card_set_info(PhyCard *c, const char *profile, const char *os, int cpus, const char *memory) {
        g_autofree char *text = os ? g_strdup(os)
                                   : g_strdup_printf(_("%s · %d CPU · %s"), profile && *profile ? profile : _("custom"),
                                                     cpus, memory ? memory : "?");
        gtk_label_set_text(GTK_LABEL(c->os_label), text);
        g_object_set_data_full(G_OBJECT(c->child), "phy-search", g_strdup_printf("%s %s", c->name, text), g_free);
}

void phy_card_set_thumbnail(PhyCard *c, GdkPixbuf *pb) {
        if (g_strcmp0(c->state, "running") == 0 || g_strcmp0(c->state, "paused") == 0)
                gtk_image_set_from_pixbuf(GTK_IMAGE(c->thumb), pb);
}

static void start_clicked(GtkButton *b, PhyCard *c) {
        phy_window_act(c->w, c->name, "start", NULL);
}

static void stop_clicked(GtkButton *b, PhyCard *c) {
        phy_window_act(c->w, c->name, "stop", NULL);
}

static void open_clicked(GtkButton *b, PhyCard *c) {
        phy_window_open_vm(c->w, c->name);
}

static void props_clicked(GtkButton *b, PhyCard *c) {
        phy_props_run(c->w, c->name);
}

static GtkWidget *card_button(const char *icon, const char *a11y) {
        GtkWidget *b = gtk_button_new_from_icon_name(icon, GTK_ICON_SIZE_BUTTON);
        phy_a11y(b, a11y);
        gtk_button_set_relief(GTK_BUTTON(b), GTK_RELIEF_NONE);
        return b;
}

PhyCard *phy_card_new(PhyWindow *w, const char *name) {
        PhyCard *c = g_new0(PhyCard, 1);
        c->w = w;
        c->name = g_strdup(name);
        c->child = gtk_flow_box_child_new();
        g_object_set_data_full(G_OBJECT(c->child), "phy-name", g_strdup(name), g_free);
        g_autofree char *a11y = g_strdup_printf(_("Virtual machine %s"), name);
        phy_a11y(c->child, a11y);
        GtkWidget *frame = gtk_frame_new(NULL);
        gtk_style_context_add_class(gtk_widget_get_style_context(frame), "view");
        gtk_container_add(GTK_CONTAINER(c->child), frame);
        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
        g_object_set(box, "margin", 8, NULL);
        gtk_container_add(GTK_CONTAINER(frame), box);

        c->thumb = gtk_image_new();
        gtk_widget_set_size_request(c->thumb, 224, 140);
        g_autofree char *ta = g_strdup_printf(_("Screen of %s"), name);
        phy_a11y(c->thumb, ta);
        set_placeholder(c);
        gtk_box_pack_start(GTK_BOX(box), c->thumb, FALSE, FALSE, 0);

        c->name_label = gtk_label_new(name);
        gtk_label_set_ellipsize(GTK_LABEL(c->name_label), PANGO_ELLIPSIZE_END);
        gtk_style_context_add_class(gtk_widget_get_style_context(c->name_label), "heading");
        PangoAttrList *bold = pango_attr_list_new();
        pango_attr_list_insert(bold, pango_attr_weight_new(PANGO_WEIGHT_BOLD));
        gtk_label_set_attributes(GTK_LABEL(c->name_label), bold);
        pango_attr_list_unref(bold);
        g_autofree char *na = g_strdup_printf(_("Name of %s"), name);
        phy_a11y(c->name_label, na);
        gtk_box_pack_start(GTK_BOX(box), c->name_label, FALSE, FALSE, 0);
        c->os_label = gtk_label_new(NULL);
        gtk_label_set_ellipsize(GTK_LABEL(c->os_label), PANGO_ELLIPSIZE_END);
        gtk_style_context_add_class(gtk_widget_get_style_context(c->os_label), "dim-label");
        g_autofree char *oa = g_strdup_printf(_("System of %s"), name);
        phy_a11y(c->os_label, oa);
        gtk_box_pack_start(GTK_BOX(box), c->os_label, FALSE, FALSE, 0);

        GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 2);
        c->state_label = gtk_label_new(NULL);
        gtk_label_set_xalign(GTK_LABEL(c->state_label), 0);
        gtk_box_pack_start(GTK_BOX(row), c->state_label, TRUE, TRUE, 0);
        g_autofree char *a1 = g_strdup_printf(_("Start %s"), name), *a2 = g_strdup_printf(_("Stop %s"), name),
                        *a3 = g_strdup_printf(_("Open %s"), name), *a4 = g_strdup_printf(_("Properties of %s"), name);
        c->start = card_button("media-playback-start-symbolic", a1);
        c->stop = card_button("media-playback-stop-symbolic", a2);
        c->open = card_button("view-fullscreen-symbolic", a3);
        c->props = card_button("document-properties-symbolic", a4);
        g_signal_connect(c->start, "clicked", G_CALLBACK(start_clicked), c);
        g_signal_connect(c->stop, "clicked", G_CALLBACK(stop_clicked), c);
        g_signal_connect(c->open, "clicked", G_CALLBACK(open_clicked), c);
        g_signal_connect(c->props, "clicked", G_CALLBACK(props_clicked), c);
        gtk_box_pack_end(GTK_BOX(row), c->props, FALSE, FALSE, 0);
        gtk_box_pack_end(GTK_BOX(row), c->open, FALSE, FALSE, 0);
        gtk_box_pack_end(GTK_BOX(row), c->stop, FALSE, FALSE, 0);
        gtk_box_pack_end(GTK_BOX(row), c->start, FALSE, FALSE, 0);
        gtk_box_pack_start(GTK_BOX(box), row, FALSE, FALSE, 0);
        phy_card_set_state(c, NULL);
        gtk_widget_show_all(c->child);
        return c;
}

void phy_card_free(PhyCard *c) {
        gtk_widget_destroy(c->child);
        g_free(c->name);
        g_free(c->state);
        g_free(c);
}

GdkPixbuf *phy_screenshot_pixbuf(json_object *reply, int w, int h, GError **error) {
        const char *data = phy_json_str(reply, "data"), *format = phy_json_str(reply, "format");
        if (!data || !format) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _("phyllod's screenshot has no data"));
                return NULL;
        }
        gsize n = 0;
        g_autofree guchar *bytes = g_base64_decode(data, &n);
        g_autoptr(GdkPixbufLoader) l = gdk_pixbuf_loader_new_with_type(strcmp(format, "png") == 0 ? "png" : "pnm",
                                                                        error);
        if (!l)
                return NULL;
        if (!gdk_pixbuf_loader_write(l, bytes, n, error) || !gdk_pixbuf_loader_close(l, error))
                return NULL;
        GdkPixbuf *pb = gdk_pixbuf_loader_get_pixbuf(l);
        if (!pb)
                return NULL;
        if (w <= 0 || h <= 0)
                return g_object_ref(pb);
        int pw = gdk_pixbuf_get_width(pb), ph = gdk_pixbuf_get_height(pb);
        double s = MIN((double) w / pw, (double) h / ph);
        return gdk_pixbuf_scale_simple(pb, MAX(1, (int) (pw * s)), MAX(1, (int) (ph * s)), GDK_INTERP_BILINEAR);
}

/* SPDX-License-Identifier: MIT */
/* phyllome: the application and its window.  The collection is a flow box of
 * cards (card.c); the window's stack also holds the VM view (view.c) and
 * "This computer" (props.c).  States come from phyllod's event stream only;
 * a banner says when phyllod is gone and goes when it is back. */
#include <locale.h>
#include <string.h>
#include "app.h"

struct _PhyWindow {
        HdyApplicationWindow *win;
        GtkWidget *header, *stack, *flow, *empty, *search_bar, *search, *search_btn, *new_btn, *back_btn,
                *menu_btn, *banner, *banner_label, *banner_btn, *error_bar, *error_label, *view_start, *view_end,
                *host_page, *busy;
        GHashTable *cards;      /* name -> PhyCard */
        PhyView *view;
        guint thumb_id, reload_id;
        gboolean linked, first_list;
        int pending;
};

static PhyWindow *the_window;
/* bench/app: when the first list is drawn (PHYLLOME_APP_TIMING set). */
static gint64 started_us;
static gboolean timing_reported;

static void after_paint(GdkFrameClock *clock, gpointer data) {
        PhyWindow *w = data;
        if (timing_reported)
                return;
        timing_reported = TRUE;
        g_printerr("phyllome: usable after %.1f ms with %u VMs listed\n",
                   (double) (g_get_monotonic_time() - started_us) / 1000.0, g_hash_table_size(w->cards));
        g_signal_handlers_disconnect_by_func(clock, after_paint, data);
}

GtkWidget *phy_window_widget(PhyWindow *w) {
        return GTK_WIDGET(w->win);
}

void phy_window_set_busy(PhyWindow *w, gboolean busy) {
        w->pending += busy ? 1 : -1;
        gtk_widget_set_visible(w->busy, w->pending > 0);
        if (w->pending > 0)
                gtk_spinner_start(GTK_SPINNER(w->busy));
        else
                gtk_spinner_stop(GTK_SPINNER(w->busy));
}

void phy_window_error(PhyWindow *w, const char *sentence) {
        gtk_label_set_text(GTK_LABEL(w->error_label), sentence);
        gtk_widget_show(w->error_bar);
        gtk_info_bar_set_revealed(GTK_INFO_BAR(w->error_bar), TRUE);
}

static void error_closed(GtkInfoBar *bar, int response, PhyWindow *w) {
        gtk_info_bar_set_revealed(bar, FALSE);
}

const char *phy_window_vm_state(PhyWindow *w, const char *name) {
        PhyCard *c = g_hash_table_lookup(w->cards, name);
        return c ? phy_card_state(c) : NULL;
}

/* ---- thumbnails: only while the collection is seen and a VM runs ---- */

static void thumbs_update(PhyWindow *w);

static void thumb_reply(PhyReply *r, gpointer data) {
        PhyWindow *w = the_window;
        char *name = data;
        PhyCard *c = g_hash_table_lookup(w->cards, name);
        if (c && r->status == 200) {
                g_autoptr(GdkPixbuf) pb = phy_screenshot_pixbuf(r->body, 224, 140, NULL);
                if (pb)
                        phy_card_set_thumbnail(c, pb);
        }
        g_free(name);
}

static gboolean collection_seen(PhyWindow *w) {
        GdkWindow *gw = gtk_widget_get_window(GTK_WIDGET(w->win));
        return gw && gtk_widget_get_mapped(GTK_WIDGET(w->win)) &&
               !(gdk_window_get_state(gw) & (GDK_WINDOW_STATE_WITHDRAWN | GDK_WINDOW_STATE_ICONIFIED)) &&
               g_strcmp0(gtk_stack_get_visible_child_name(GTK_STACK(w->stack)), "collection") == 0;
}

static gboolean thumbs_tick(gpointer data) {
        PhyWindow *w = data;
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, w->cards);
        while (g_hash_table_iter_next(&it, &k, &v)) {
                if (g_strcmp0(phy_card_state(v), "running") != 0 ||
                    !gtk_widget_get_child_visible(gtk_widget_get_parent(phy_card_widget(v))))
                        continue;
                g_autofree char *esc = phy_escape(k);
                g_autofree char *path = g_strdup_printf("/v1/vms/%s/screenshot", esc);
                phy_call("GET", path, NULL, NULL, thumb_reply, g_strdup(k));
        }
        return G_SOURCE_CONTINUE;
}

static void thumbs_update(PhyWindow *w) {
        gboolean any = FALSE;
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, w->cards);
        while (!any && g_hash_table_iter_next(&it, &k, &v))
                any = g_strcmp0(phy_card_state(v), "running") == 0;
        gboolean want = any && w->linked && collection_seen(w);
        if (want && !w->thumb_id) {
                w->thumb_id = g_timeout_add_seconds(3, thumbs_tick, w);
                thumbs_tick(w);
        } else if (!want && w->thumb_id) {
                g_source_remove(w->thumb_id);
                w->thumb_id = 0;
        }
}

static gboolean window_state(GtkWidget *wid, GdkEventWindowState *ev, PhyWindow *w) {
        thumbs_update(w);
        return FALSE;
}

/* ---- the collection ---- */

static void update_empty(PhyWindow *w) {
        const char *page = gtk_stack_get_visible_child_name(GTK_STACK(w->stack));
        if (g_strcmp0(page, "collection") != 0 && g_strcmp0(page, "empty") != 0)
                return;
        gtk_stack_set_visible_child_name(GTK_STACK(w->stack),
                                         g_hash_table_size(w->cards) || !w->first_list ? "collection" : "empty");
}

static void list_reply(PhyReply *r, gpointer data) {
        PhyWindow *w = data;
        phy_window_set_busy(w, FALSE);
        if (r->status != 200) {
                phy_window_error(w, r->error);
                return;
        }
        json_object *vms = NULL;
        json_object_object_get_ex(r->body, "vms", &vms);
        g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
        for (size_t i = 0; vms && i < json_object_array_length(vms); i++) {
                json_object *o = json_object_array_get_idx(vms, i);
                const char *name = phy_json_str(o, "name");
                if (!name)
                        continue;
                PhyCard *c = g_hash_table_lookup(w->cards, name);
                if (!c) {
                        c = phy_card_new(w, name);
                        g_hash_table_insert(w->cards, g_strdup(name), c);
                        gtk_container_add(GTK_CONTAINER(w->flow), phy_card_widget(c));
                }
                g_hash_table_add(seen, (gpointer) phy_card_name(c));
                int64_t mem = phy_json_int(o, "memory", 0);
                g_autofree char *memtext = mem > 0 ? g_format_size_full((guint64) mem, G_FORMAT_SIZE_IEC_UNITS) : NULL;
                phy_card_set_info(c, phy_json_str(o, "profile"), phy_json_str(o, "error"),
                                  (int) phy_json_int(o, "cpus", 0), memtext);
                phy_card_set_state(c, phy_json_str(o, "state"));
        }
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, w->cards);
        while (g_hash_table_iter_next(&it, &k, &v))
                if (!g_hash_table_contains(seen, k))
                        g_hash_table_iter_remove(&it);
        if (!w->first_list && g_getenv("PHYLLOME_APP_TIMING")) {
                GdkFrameClock *clock = gtk_widget_get_frame_clock(GTK_WIDGET(w->win));
                if (clock) {
                        g_signal_connect(clock, "after-paint", G_CALLBACK(after_paint), w);
                        gtk_widget_queue_draw(GTK_WIDGET(w->win));
                }
        }
        w->first_list = TRUE;
        gtk_flow_box_invalidate_sort(GTK_FLOW_BOX(w->flow));
        update_empty(w);
        thumbs_update(w);
}

void phy_window_reload(PhyWindow *w) {
        phy_window_set_busy(w, TRUE);
        phy_call("GET", "/v1/vms", NULL, NULL, list_reply, w);
}

static void act_reply(PhyReply *r, gpointer data) {
        PhyWindow *w = the_window;
        phy_window_set_busy(w, FALSE);
        if (r->status < 200 || r->status >= 300)
                phy_window_error(w, r->error);
        g_free(data);
}

void phy_window_act(PhyWindow *w, const char *name, const char *action, json_object *body) {
        g_autofree char *esc = phy_escape(name);
        g_autofree char *path = g_strdup_printf("/v1/vms/%s/%s", esc, action);
        phy_window_set_busy(w, TRUE);
        phy_call("POST", path, body, NULL, act_reply, NULL);
}

static gboolean card_filter(GtkFlowBoxChild *child, gpointer data) {
        PhyWindow *w = data;
        const char *q = gtk_entry_get_text(GTK_ENTRY(w->search));
        if (!q || !*q)
                return TRUE;
        const char *name = g_object_get_data(G_OBJECT(child), "phy-search");
        g_autofree char *a = g_utf8_casefold(name ? name : "", -1), *b = g_utf8_casefold(q, -1);
        return strstr(a, b) != NULL;
}

static int card_sort(GtkFlowBoxChild *a, GtkFlowBoxChild *b, gpointer data) {
        return g_utf8_collate(g_object_get_data(G_OBJECT(a), "phy-name"), g_object_get_data(G_OBJECT(b), "phy-name"));
}

static void search_changed(GtkSearchEntry *e, PhyWindow *w) {
        gtk_flow_box_invalidate_filter(GTK_FLOW_BOX(w->flow));
}

/* ---- pages ---- */

static void set_page(PhyWindow *w, const char *page) {
        gboolean coll = g_strcmp0(page, "collection") == 0 || g_strcmp0(page, "empty") == 0;
        gboolean vm = g_strcmp0(page, "vm") == 0;
        gtk_stack_set_visible_child_name(GTK_STACK(w->stack), page);
        gtk_widget_set_visible(w->back_btn, !coll);
        gtk_widget_set_visible(w->new_btn, coll);
        gtk_widget_set_visible(w->search_btn, coll);
        gtk_widget_set_visible(w->menu_btn, coll);
        gtk_widget_set_visible(w->view_start, vm);
        gtk_widget_set_visible(w->view_end, vm);
        if (!coll)
                gtk_search_bar_set_search_mode(GTK_SEARCH_BAR(w->search_bar), FALSE);
        if (coll) {
                hdy_header_bar_set_title(HDY_HEADER_BAR(w->header), _("Phyllome"));
                hdy_header_bar_set_subtitle(HDY_HEADER_BAR(w->header), NULL);
        } else if (g_strcmp0(page, "host") == 0) {
                hdy_header_bar_set_title(HDY_HEADER_BAR(w->header), _("This Computer"));
                hdy_header_bar_set_subtitle(HDY_HEADER_BAR(w->header), NULL);
        }
        thumbs_update(w);
}

void phy_window_show_collection(PhyWindow *w) {
        phy_view_close(w->view);
        set_page(w, "collection");
        update_empty(w);
}

void phy_window_open_vm(PhyWindow *w, const char *name) {
        set_page(w, "vm");
        hdy_header_bar_set_title(HDY_HEADER_BAR(w->header), name);
        phy_view_show(w->view, name);
}

static void back_clicked(GtkButton *b, PhyWindow *w) {
        phy_window_show_collection(w);
}

static void new_clicked(GtkButton *b, PhyWindow *w) {
        phy_assistant_run(w);
}

static void host_clicked(GtkButton *b, PhyWindow *w) {
        set_page(w, "host");
        phy_host_page_load(w->host_page);
}

static void card_activated(GtkFlowBox *box, GtkFlowBoxChild *child, PhyWindow *w) {
        phy_window_open_vm(w, g_object_get_data(G_OBJECT(child), "phy-name"));
}

/* ---- phyllod's events ---- */

static gboolean reload_idle(gpointer data) {
        PhyWindow *w = data;
        w->reload_id = 0;
        phy_window_reload(w);
        return G_SOURCE_REMOVE;
}

static void on_event(const char *event, json_object *data, gpointer user) {
        PhyWindow *w = user;
        if (g_strcmp0(event, "state") == 0) {
                const char *name = phy_json_str(data, "name"), *state = phy_json_str(data, "state");
                PhyCard *c = name ? g_hash_table_lookup(w->cards, name) : NULL;
                if (!c) {
                        phy_window_reload(w);
                        return;
                }
                phy_card_set_state(c, state);
                if (g_strcmp0(phy_view_vm(w->view), name) == 0)
                        phy_view_state_changed(w->view, state);
                thumbs_update(w);
        } else if (g_strcmp0(event, "defined") == 0) {
                /* A VM defined or deleted (by the app, phyllo or a clone):
                 * one listing for a burst of them. */
                if (!w->reload_id)
                        w->reload_id = g_idle_add(reload_idle, w);
        } else if (g_strcmp0(event, "download") == 0) {
                phy_assistant_download_event(data);
        }
}

static void on_link(gboolean up, const char *why, gpointer user) {
        PhyWindow *w = user;
        w->linked = up;
        if (up) {
                gtk_info_bar_set_revealed(GTK_INFO_BAR(w->banner), FALSE);
                gtk_widget_hide(w->banner);
                phy_window_reload(w);
                /* --host: the page waits for phyllod's first answer (a
                 * per-user phyllod just spawned is not listening yet). */
                if (g_strcmp0(gtk_stack_get_visible_child_name(GTK_STACK(w->stack)), "host") == 0)
                        phy_host_page_load(w->host_page);
        } else {
                g_autofree char *text = g_strdup_printf(_("Phyllome's service (phyllod) is not running (%s). The "
                                                          "window follows it again when it is back."), why);
                gtk_label_set_text(GTK_LABEL(w->banner_label), text);
                gtk_widget_show(w->banner);
                gtk_info_bar_set_revealed(GTK_INFO_BAR(w->banner), TRUE);
        }
        gtk_widget_set_sensitive(w->new_btn, up);
        thumbs_update(w);
}

static void banner_start(GtkInfoBar *bar, int response, PhyWindow *w) {
        g_autoptr(GError) e = NULL;
        if (!phy_spawn_phyllod(&e))
                phy_window_error(w, e->message);
}

/* ---- building the window ---- */


static GtkWidget *icon_button(const char *icon, const char *a11y) {
        GtkWidget *b = gtk_button_new_from_icon_name(icon, GTK_ICON_SIZE_BUTTON);
        phy_a11y(b, a11y);
        return b;
}

static gboolean key_press(GtkWidget *wid, GdkEventKey *ev, PhyWindow *w) {
        const char *page = gtk_stack_get_visible_child_name(GTK_STACK(w->stack));
        if (g_strcmp0(page, "collection") == 0)
                return gtk_search_bar_handle_event(GTK_SEARCH_BAR(w->search_bar), (GdkEvent *) ev);
        return FALSE;
}

static PhyWindow *window_new(GtkApplication *app) {
        PhyWindow *w = g_new0(PhyWindow, 1);
        the_window = w;
        w->cards = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) phy_card_free);
        w->win = HDY_APPLICATION_WINDOW(hdy_application_window_new());
        gtk_window_set_application(GTK_WINDOW(w->win), app);
        gtk_window_set_default_size(GTK_WINDOW(w->win), 1000, 720);
        gtk_window_set_title(GTK_WINDOW(w->win), _("Phyllome"));
        gtk_window_set_icon_name(GTK_WINDOW(w->win), "org.phyllome.Phyllome");
        phy_a11y(GTK_WIDGET(w->win), _("Phyllome"));

        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
        gtk_container_add(GTK_CONTAINER(w->win), box);
        w->header = hdy_header_bar_new();
        hdy_header_bar_set_show_close_button(HDY_HEADER_BAR(w->header), TRUE);
        hdy_header_bar_set_title(HDY_HEADER_BAR(w->header), _("Phyllome"));
        gtk_box_pack_start(GTK_BOX(box), w->header, FALSE, FALSE, 0);

        w->back_btn = icon_button("go-previous-symbolic", _("Back to the collection"));
        g_signal_connect(w->back_btn, "clicked", G_CALLBACK(back_clicked), w);
        hdy_header_bar_pack_start(HDY_HEADER_BAR(w->header), w->back_btn);
        w->new_btn = icon_button("list-add-symbolic", _("New virtual machine"));
        g_signal_connect(w->new_btn, "clicked", G_CALLBACK(new_clicked), w);
        hdy_header_bar_pack_start(HDY_HEADER_BAR(w->header), w->new_btn);

        w->menu_btn = icon_button("computer-symbolic", _("This computer"));
        g_signal_connect(w->menu_btn, "clicked", G_CALLBACK(host_clicked), w);
        hdy_header_bar_pack_end(HDY_HEADER_BAR(w->header), w->menu_btn);
        w->search_btn = gtk_toggle_button_new();
        gtk_container_add(GTK_CONTAINER(w->search_btn), gtk_image_new_from_icon_name("system-search-symbolic",
                                                                                      GTK_ICON_SIZE_BUTTON));
        phy_a11y(w->search_btn, _("Search"));
        hdy_header_bar_pack_end(HDY_HEADER_BAR(w->header), w->search_btn);
        w->busy = gtk_spinner_new();
        phy_a11y(w->busy, _("Working"));
        hdy_header_bar_pack_end(HDY_HEADER_BAR(w->header), w->busy);

        w->view = phy_view_new(w);
        w->view_start = phy_view_header_start(w->view);
        w->view_end = phy_view_header_end(w->view);
        hdy_header_bar_pack_start(HDY_HEADER_BAR(w->header), w->view_start);
        hdy_header_bar_pack_end(HDY_HEADER_BAR(w->header), w->view_end);

        /* phyllod gone: a banner that stays until it is back. */
        w->banner = gtk_info_bar_new();
        gtk_info_bar_set_message_type(GTK_INFO_BAR(w->banner), GTK_MESSAGE_WARNING);
        w->banner_label = gtk_label_new(NULL);
        gtk_label_set_line_wrap(GTK_LABEL(w->banner_label), TRUE);
        gtk_label_set_xalign(GTK_LABEL(w->banner_label), 0);
        phy_a11y(w->banner_label, _("Service status"));
        gtk_container_add(GTK_CONTAINER(gtk_info_bar_get_content_area(GTK_INFO_BAR(w->banner))), w->banner_label);
        w->banner_btn = gtk_info_bar_add_button(GTK_INFO_BAR(w->banner), _("_Start phyllod"), 1);
        phy_a11y(w->banner_btn, _("Start phyllod"));
        g_signal_connect(w->banner, "response", G_CALLBACK(banner_start), w);
        gtk_info_bar_set_revealed(GTK_INFO_BAR(w->banner), FALSE);
        gtk_box_pack_start(GTK_BOX(box), w->banner, FALSE, FALSE, 0);

        w->error_bar = gtk_info_bar_new();
        gtk_info_bar_set_message_type(GTK_INFO_BAR(w->error_bar), GTK_MESSAGE_ERROR);
        gtk_info_bar_set_show_close_button(GTK_INFO_BAR(w->error_bar), TRUE);
        w->error_label = gtk_label_new(NULL);
        gtk_label_set_line_wrap(GTK_LABEL(w->error_label), TRUE);
        gtk_label_set_selectable(GTK_LABEL(w->error_label), TRUE);
        gtk_label_set_xalign(GTK_LABEL(w->error_label), 0);
        phy_a11y(w->error_label, _("Error"));
        gtk_container_add(GTK_CONTAINER(gtk_info_bar_get_content_area(GTK_INFO_BAR(w->error_bar))), w->error_label);
        g_signal_connect(w->error_bar, "response", G_CALLBACK(error_closed), w);
        gtk_info_bar_set_revealed(GTK_INFO_BAR(w->error_bar), FALSE);
        gtk_box_pack_start(GTK_BOX(box), w->error_bar, FALSE, FALSE, 0);

        w->search_bar = gtk_search_bar_new();
        w->search = gtk_search_entry_new();
        phy_a11y(w->search, _("Search virtual machines"));
        gtk_entry_set_width_chars(GTK_ENTRY(w->search), 40);
        gtk_container_add(GTK_CONTAINER(w->search_bar), w->search);
        gtk_search_bar_connect_entry(GTK_SEARCH_BAR(w->search_bar), GTK_ENTRY(w->search));
        g_object_bind_property(w->search_btn, "active", w->search_bar, "search-mode-enabled",
                               G_BINDING_BIDIRECTIONAL);
        g_signal_connect(w->search, "search-changed", G_CALLBACK(search_changed), w);
        gtk_box_pack_start(GTK_BOX(box), w->search_bar, FALSE, FALSE, 0);

        w->stack = gtk_stack_new();
        gtk_stack_set_transition_type(GTK_STACK(w->stack), GTK_STACK_TRANSITION_TYPE_CROSSFADE);
        gtk_box_pack_start(GTK_BOX(box), w->stack, TRUE, TRUE, 0);

        GtkWidget *sc = gtk_scrolled_window_new(NULL, NULL);
        gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(sc), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
        w->flow = gtk_flow_box_new();
        phy_a11y(w->flow, _("Virtual machines"));
        gtk_flow_box_set_selection_mode(GTK_FLOW_BOX(w->flow), GTK_SELECTION_NONE);
        gtk_flow_box_set_homogeneous(GTK_FLOW_BOX(w->flow), TRUE);
        gtk_flow_box_set_max_children_per_line(GTK_FLOW_BOX(w->flow), 8);
        gtk_flow_box_set_activate_on_single_click(GTK_FLOW_BOX(w->flow), TRUE);
        gtk_flow_box_set_row_spacing(GTK_FLOW_BOX(w->flow), 12);
        gtk_flow_box_set_column_spacing(GTK_FLOW_BOX(w->flow), 12);
        g_object_set(w->flow, "margin", 18, "valign", GTK_ALIGN_START, NULL);
        gtk_flow_box_set_filter_func(GTK_FLOW_BOX(w->flow), card_filter, w, NULL);
        gtk_flow_box_set_sort_func(GTK_FLOW_BOX(w->flow), card_sort, w, NULL);
        g_signal_connect(w->flow, "child-activated", G_CALLBACK(card_activated), w);
        gtk_container_add(GTK_CONTAINER(sc), w->flow);
        gtk_stack_add_named(GTK_STACK(w->stack), sc, "collection");

        w->empty = hdy_status_page_new();
        hdy_status_page_set_icon_name(HDY_STATUS_PAGE(w->empty), "computer-symbolic");
        hdy_status_page_set_title(HDY_STATUS_PAGE(w->empty), _("No Virtual Machines"));
        hdy_status_page_set_description(HDY_STATUS_PAGE(w->empty),
                                        _("Create one from an operating system of the catalog, an ISO image, a "
                                          "Linux kernel or a bundle."));
        GtkWidget *create = gtk_button_new_with_mnemonic(_("_New Virtual Machine"));
        phy_a11y(create, _("Create a virtual machine"));
        gtk_widget_set_halign(create, GTK_ALIGN_CENTER);
        gtk_style_context_add_class(gtk_widget_get_style_context(create), "suggested-action");
        g_signal_connect(create, "clicked", G_CALLBACK(new_clicked), w);
        gtk_container_add(GTK_CONTAINER(w->empty), create);
        gtk_stack_add_named(GTK_STACK(w->stack), w->empty, "empty");

        gtk_stack_add_named(GTK_STACK(w->stack), phy_view_widget(w->view), "vm");
        w->host_page = phy_host_page_new(w);
        gtk_stack_add_named(GTK_STACK(w->stack), w->host_page, "host");

        phy_a11y_buttons(w->error_bar, _("Close the message"));
        phy_a11y_buttons(w->banner, _("Close the banner"));
        phy_a11y_buttons(w->search_bar, _("Close the search"));
        g_signal_connect(w->win, "window-state-event", G_CALLBACK(window_state), w);
        g_signal_connect(w->win, "key-press-event", G_CALLBACK(key_press), w);
        gtk_widget_show_all(GTK_WIDGET(w->win));
        gtk_widget_hide(w->banner);
        gtk_widget_hide(w->error_bar);
        gtk_widget_hide(w->busy);
        set_page(w, "collection");
        return w;
}

static char *opt_socket;
static gboolean opt_no_spawn;
static char *opt_open;
static gboolean opt_host;

static void activate(GtkApplication *app, gpointer data) {
        if (the_window) {
                gtk_window_present(GTK_WINDOW(the_window->win));
                return;
        }
        if (opt_socket)
                phy_set_socket_path(opt_socket);
        PhyWindow *w = window_new(app);
        /* The per-user phyllod: started when nothing answers on its socket. */
        if (!opt_no_spawn && !g_file_test(phy_socket_path(), G_FILE_TEST_EXISTS)) {
                g_autoptr(GError) e = NULL;
                if (!phy_spawn_phyllod(&e))
                        phy_window_error(w, e->message);
        }
        phy_events_start(on_event, on_link, w);
        if (opt_open)
                phy_window_open_vm(w, opt_open);
        else if (opt_host)
                set_page(w, "host");
}

/* Whether the host has a GPU render node (/dev/dri/renderD*). */
static gboolean have_render_node(void) {
        g_autoptr(GDir) d = g_dir_open("/dev/dri", 0, NULL);
        const char *n;
        while (d && (n = g_dir_read_name(d)))
                if (g_str_has_prefix(n, "renderD"))
                        return TRUE;
        return FALSE;
}

int main(int argc, char **argv) {
        started_us = g_get_monotonic_time();
        /* Without a render node there is no local 3D to show (the VM's SPICE
         * runs gl=off), and GDK's X11 visual probe would load Mesa's
         * software GL (llvmpipe: about 45 MiB resident) for nothing. */
        if (!have_render_node())
                g_setenv("GDK_GL", "disable", FALSE);
        setlocale(LC_ALL, "");
        bindtextdomain("phyllome", PHY_LOCALEDIR);
        bind_textdomain_codeset("phyllome", "UTF-8");
        textdomain("phyllome");
        GOptionEntry opts[] = {
                { "socket", 0, 0, G_OPTION_ARG_FILENAME, &opt_socket, N_("phyllod's socket"), N_("PATH") },
                { "no-spawn", 0, 0, G_OPTION_ARG_NONE, &opt_no_spawn, N_("Do not start phyllod when it is absent"),
                  NULL },
                { "open", 0, 0, G_OPTION_ARG_STRING, &opt_open, N_("Open this VM's view"), N_("NAME") },
                { "host", 0, 0, G_OPTION_ARG_NONE, &opt_host,
                  N_("Open This computer (the host check's verdict and remedies); Phyllome OS's first run"), NULL },
                { "version", 0, 0, G_OPTION_ARG_NONE, NULL, N_("Print the version"), NULL },
                { NULL },
        };
        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "--version") == 0) {
                        g_print("phyllome %s\n", PHYLLOME_VERSION);
                        return 0;
                }
        opts[4].long_name = NULL;
        /* NON_UNIQUE: each run is its own window and process (tests and
         * benchmarks start several against different phyllods). */
        g_autoptr(GtkApplication) app = gtk_application_new("org.phyllome.Phyllome", G_APPLICATION_NON_UNIQUE);
        g_application_add_main_option_entries(G_APPLICATION(app), opts);
        g_signal_connect(app, "startup", G_CALLBACK(hdy_init), NULL);
        g_signal_connect(app, "activate", G_CALLBACK(activate), NULL);
        return g_application_run(G_APPLICATION(app), argc, argv);
}

/* SPDX-License-Identifier: MIT */
/* One VM seen: its SPICE display (spice-client-gtk on the unix socket that
 * GET /v1/vms/{name}/display names) with keyboard grab and a visible release
 * hint, or its serial console (the console Upgrade) for a VM without a
 * display; the header's buttons act on it. */
#include <string.h>
#include <spice-client-gtk.h>
#ifdef HAVE_VTE
#include <vte/vte.h>
#endif
#include "app.h"

struct _PhyView {
        PhyWindow *w;
        char *name, *state;
        GtkWidget *overlay, *stack, *connecting, *display_box, *hint, *stopped_page, *start_btn, *msg_page, *console_box, *term,
                *leave_fs;
        GtkWidget *hstart, *hend, *pause_btn, *cad_btn, *stop_btn, *kill_btn, *fs_btn, *props_btn, *clip_btn,
                *console_btn, *usb_btn;
        SpiceSession *session;
        SpiceDisplay *display;
        GIOStream *console;
        GCancellable *cancel;
        gboolean fullscreen;
        guint hint_id;
};

GtkWidget *phy_view_widget(PhyView *v) {
        return v->overlay;
}
GtkWidget *phy_view_header_start(PhyView *v) {
        return v->hstart;
}
GtkWidget *phy_view_header_end(PhyView *v) {
        return v->hend;
}
const char *phy_view_vm(PhyView *v) {
        return v->name;
}

/* The spinner spins only while its page shows (an active spinner ticks the
 * frame clock even when hidden: 60 wakeups a second). */
static void set_page(PhyView *v, const char *page) {
        gboolean c = g_strcmp0(page, "connecting") == 0;
        if (c)
                gtk_spinner_start(GTK_SPINNER(v->connecting));
        else
                gtk_spinner_stop(GTK_SPINNER(v->connecting));
        gtk_stack_set_visible_child_name(GTK_STACK(v->stack), page);
}

static void show_message(PhyView *v, const char *title, const char *text) {
        hdy_status_page_set_title(HDY_STATUS_PAGE(v->msg_page), title);
        hdy_status_page_set_description(HDY_STATUS_PAGE(v->msg_page), text);
        set_page(v, "message");
}

static void console_toggled(GtkToggleButton *b, PhyView *v);

/* ---- tearing down ---- */

static void disconnect_all(PhyView *v) {
        if (v->cancel) {
                g_cancellable_cancel(v->cancel);
                g_clear_object(&v->cancel);
        }
        if (v->display) {
                gtk_widget_destroy(GTK_WIDGET(v->display));
                v->display = NULL;
        }
        gtk_menu_button_set_popover(GTK_MENU_BUTTON(v->usb_btn), NULL);
        gtk_widget_set_sensitive(v->usb_btn, FALSE);
        if (v->session) {
                g_signal_handlers_disconnect_by_data(v->session, v);
                spice_session_disconnect(v->session);
                g_clear_object(&v->session);
        }
        if (v->console) {
                g_io_stream_close(v->console, NULL, NULL);
                g_clear_object(&v->console);
        }
        g_signal_handlers_block_by_func(v->console_btn, console_toggled, v);
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(v->console_btn), FALSE);
        g_signal_handlers_unblock_by_func(v->console_btn, console_toggled, v);
        gtk_revealer_set_reveal_child(GTK_REVEALER(v->hint), FALSE);
        if (v->hint_id) {
                g_source_remove(v->hint_id);
                v->hint_id = 0;
        }
}

/* ---- SPICE ---- */

static gboolean hint_hide(gpointer data) {
        PhyView *v = data;
        v->hint_id = 0;
        gtk_revealer_set_reveal_child(GTK_REVEALER(v->hint), FALSE);
        return G_SOURCE_REMOVE;
}

/* The hint shows when the display takes the keyboard, for a few seconds. */
static void keyboard_grab(SpiceDisplay *d, int grabbed, PhyView *v) {
        gtk_revealer_set_reveal_child(GTK_REVEALER(v->hint), grabbed);
        if (v->hint_id)
                g_source_remove(v->hint_id);
        v->hint_id = grabbed ? g_timeout_add_seconds(4, hint_hide, v) : 0;
}

static void main_channel_event(SpiceChannel *ch, SpiceChannelEvent ev, PhyView *v) {
        if (ev == SPICE_CHANNEL_OPENED)
                return;
        if (ev == SPICE_CHANNEL_CLOSED && g_strcmp0(v->state, "running") != 0 && g_strcmp0(v->state, "paused") != 0)
                return;     /* the VM stopped: the state event shows that */
        const GError *e = spice_channel_get_error(ch);
        g_autofree char *text = g_strdup_printf(_("The connection to the display of %s ended: %s"), v->name,
                                                e ? e->message : _("the VM closed it"));
        if (ev != SPICE_CHANNEL_CLOSED || g_strcmp0(v->state, "running") == 0)
                show_message(v, _("No Display"), text);
}

static void channel_new(SpiceSession *s, SpiceChannel *ch, PhyView *v) {
        int id = 0;
        g_object_get(ch, "channel-id", &id, NULL);
        if (SPICE_IS_MAIN_CHANNEL(ch))
                g_signal_connect(ch, "channel-event", G_CALLBACK(main_channel_event), v);
        if (SPICE_IS_DISPLAY_CHANNEL(ch) && id == 0 && !v->display) {
                v->display = spice_display_new(s, id);
                g_object_set(v->display, "scaling", TRUE, "resize-guest", TRUE, "grab-keyboard", TRUE,
                             "grab-mouse", TRUE, NULL);
                g_autofree char *a11y = g_strdup_printf(_("Display of %s"), v->name);
                phy_a11y(GTK_WIDGET(v->display), a11y);
                gtk_widget_set_can_focus(GTK_WIDGET(v->display), TRUE);
                g_signal_connect(v->display, "keyboard-grab", G_CALLBACK(keyboard_grab), v);
                gtk_box_pack_start(GTK_BOX(v->display_box), GTK_WIDGET(v->display), TRUE, TRUE, 0);
                gtk_widget_show(GTK_WIDGET(v->display));
                set_page(v, "display");
                gtk_widget_grab_focus(GTK_WIDGET(v->display));
        }
}

static void clip_toggled(GtkToggleButton *b, PhyView *v) {
        if (v->session)
                g_object_set(spice_gtk_session_get(v->session), "auto-clipboard", gtk_toggle_button_get_active(b),
                             NULL);
}

static void spice_open(PhyView *v, const char *sock) {
        v->session = spice_session_new();
        g_object_set(v->session, "unix-path", sock, "enable-audio", FALSE, NULL);
        /* Clipboard sharing is a visible switch, off unless turned on. */
        g_object_set(spice_gtk_session_get(v->session), "auto-clipboard",
                     gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(v->clip_btn)), NULL);
        g_signal_connect(v->session, "channel-new", G_CALLBACK(channel_new), v);
        /* USB redirection over SPICE (the VM's usbredir channels): the host's
         * devices as spice-gtk lists them, each a switch. */
        GtkWidget *pop = gtk_popover_new(v->usb_btn);
        GtkWidget *usb = spice_usb_device_widget_new(v->session, NULL);
        phy_a11y(usb, _("USB devices to redirect"));
        g_object_set(usb, "margin", 12, NULL);
        gtk_container_add(GTK_CONTAINER(pop), usb);
        gtk_widget_show_all(usb);
        gtk_menu_button_set_popover(GTK_MENU_BUTTON(v->usb_btn), pop);
        gtk_widget_set_sensitive(v->usb_btn, TRUE);
        if (!spice_session_connect(v->session))
                show_message(v, _("No Display"), _("The SPICE client could not connect."));
}

/* ---- the serial console ---- */

#ifdef HAVE_VTE
static void console_read(GObject *src, GAsyncResult *res, gpointer data) {
        PhyView *v = data;
        g_autoptr(GError) e = NULL;
        g_autoptr(GBytes) b = g_input_stream_read_bytes_finish(G_INPUT_STREAM(src), res, &e);
        if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        if (!b || g_bytes_get_size(b) == 0) {
                vte_terminal_feed(VTE_TERMINAL(v->term), "\r\n[console closed]\r\n", -1);
                g_clear_object(&v->console);
                return;
        }
        gsize n;
        const char *p = g_bytes_get_data(b, &n);
        vte_terminal_feed(VTE_TERMINAL(v->term), p, (gssize) n);
        g_input_stream_read_bytes_async(g_io_stream_get_input_stream(v->console), 65536, G_PRIORITY_DEFAULT, v->cancel,
                                        console_read, v);
}

static void term_commit(VteTerminal *t, const char *text, guint size, PhyView *v) {
        if (v->console)
                g_output_stream_write_all(g_io_stream_get_output_stream(v->console), text, size, NULL, NULL, NULL);
}
#endif

static void console_opened(GIOStream *stream, const char *error, gpointer data) {
        PhyView *v = data;
        if (!stream) {
                show_message(v, _("No Console"), error);
                return;
        }
#ifdef HAVE_VTE
        v->console = g_object_ref(stream);
        vte_terminal_reset(VTE_TERMINAL(v->term), TRUE, TRUE);
        g_signal_handlers_block_by_func(v->console_btn, console_toggled, v);
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(v->console_btn), TRUE);
        g_signal_handlers_unblock_by_func(v->console_btn, console_toggled, v);
        set_page(v, "console");
        gtk_widget_grab_focus(v->term);
        g_input_stream_read_bytes_async(g_io_stream_get_input_stream(stream), 65536, G_PRIORITY_DEFAULT, v->cancel,
                                        console_read, v);
#endif
}

/* The serial console beside the display (virt-viewer's "serial"): opened
 * on first use, kept while the view shows the VM. */
static void console_toggled(GtkToggleButton *b, PhyView *v) {
        gboolean on = gtk_toggle_button_get_active(b);
        if (on && v->console)
                set_page(v, "console");
        else if (on && v->name && v->cancel)
                phy_console_open(v->name, v->cancel, console_opened, v);
        else if (!on && v->display)
                set_page(v, "display");
        if (on && v->console && v->term)
                gtk_widget_grab_focus(v->term);
}

/* ---- what to show for the VM's state ---- */

static void display_reply(PhyReply *r, gpointer data) {
        PhyView *v = data;
        if (r->status == 200) {
                spice_open(v, phy_json_str(r->body, "spice_socket"));
                return;
        }
        if (r->status == 404 && g_strcmp0(v->state, "running") == 0) {
                /* No SPICE display: the serial console. */
#ifdef HAVE_VTE
                phy_console_open(v->name, v->cancel, console_opened, v);
#else
                show_message(v, _("No Display"), r->error);
#endif
                return;
        }
        show_message(v, _("No Display"), r->error);
}

static void update_buttons(PhyView *v) {
        gboolean running = g_strcmp0(v->state, "running") == 0, paused = g_strcmp0(v->state, "paused") == 0;
        gboolean active = running || paused || g_strcmp0(v->state, "starting") == 0 ||
                          g_strcmp0(v->state, "stopping") == 0;
        gtk_widget_set_sensitive(v->pause_btn, running || paused);
        gtk_button_set_image(GTK_BUTTON(v->pause_btn),
                             gtk_image_new_from_icon_name(paused ? "media-playback-start-symbolic"
                                                                 : "media-playback-pause-symbolic",
                                                          GTK_ICON_SIZE_BUTTON));
        phy_a11y(v->pause_btn, paused ? _("Resume") : _("Pause"));
        gtk_widget_set_tooltip_text(v->pause_btn, paused ? _("Resume") : _("Pause"));
        gtk_widget_set_sensitive(v->cad_btn, running && v->display);
        gtk_widget_set_sensitive(v->stop_btn, active);
        gtk_widget_set_sensitive(v->kill_btn, active);
        gtk_widget_set_sensitive(v->console_btn, running || paused);
}

static void refresh(PhyView *v) {
        gboolean running = g_strcmp0(v->state, "running") == 0 || g_strcmp0(v->state, "paused") == 0;
        update_buttons(v);
        if (!running) {
                disconnect_all(v);
                g_autofree char *t = g_strdup_printf(_("%s is %s"), v->name,
                                                     v->state ? v->state : _("in an unknown state"));
                hdy_status_page_set_title(HDY_STATUS_PAGE(v->stopped_page), t);
                phy_a11y(v->stopped_page, t);
                gtk_widget_set_sensitive(v->start_btn, g_strcmp0(v->state, "starting") != 0 &&
                                                               g_strcmp0(v->state, "stopping") != 0);
                set_page(v, "stopped");
                return;
        }
        if (v->session || v->console || v->cancel)
                return;
        v->cancel = g_cancellable_new();
        g_autofree char *esc = phy_escape(v->name);
        g_autofree char *path = g_strdup_printf("/v1/vms/%s/display", esc);
        set_page(v, "connecting");
        phy_call("GET", path, NULL, v->cancel, display_reply, v);
}

void phy_view_state_changed(PhyView *v, const char *state) {
        g_free(v->state);
        v->state = g_strdup(state);
        refresh(v);
}

void phy_view_show(PhyView *v, const char *name) {
        if (g_strcmp0(v->name, name) != 0)
                disconnect_all(v);
        g_free(v->name);
        v->name = g_strdup(name);
        g_free(v->state);
        v->state = g_strdup(phy_window_vm_state(v->w, name));
        refresh(v);
}

void phy_view_close(PhyView *v) {
        disconnect_all(v);
        phy_view_set_fullscreen(v, FALSE);
        g_clear_pointer(&v->name, g_free);
}

/* ---- actions ---- */

static void act(PhyView *v, const char *action, json_object *body) {
        if (v->name)
                phy_window_act(v->w, v->name, action, body);
}

static void pause_clicked(GtkButton *b, PhyView *v) {
        act(v, g_strcmp0(v->state, "paused") == 0 ? "resume" : "pause", NULL);
}
static void stop_clicked(GtkButton *b, PhyView *v) {
        act(v, "stop", NULL);
}
static void kill_clicked(GtkButton *b, PhyView *v) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "force", json_object_new_boolean(1));
        act(v, "stop", o);
}
static void start_clicked(GtkButton *b, PhyView *v) {
        act(v, "start", NULL);
}
static void props_clicked(GtkButton *b, PhyView *v) {
        if (v->name)
                phy_props_run(v->w, v->name);
}
static void cad_clicked(GtkButton *b, PhyView *v) {
        if (!v->display)
                return;
        guint keys[] = { GDK_KEY_Control_L, GDK_KEY_Alt_L, GDK_KEY_Delete };
        spice_display_send_keys(v->display, keys, G_N_ELEMENTS(keys), SPICE_DISPLAY_KEY_EVENT_CLICK);
}

void phy_view_set_fullscreen(PhyView *v, gboolean on) {
        if (v->fullscreen == on)
                return;
        v->fullscreen = on;
        GtkWindow *win = GTK_WINDOW(phy_window_widget(v->w));
        GtkWidget *header = gtk_widget_get_parent(v->hstart);
        if (on)
                gtk_window_fullscreen(win);
        else
                gtk_window_unfullscreen(win);
        gtk_widget_set_visible(header, !on);
        gtk_widget_set_visible(v->leave_fs, on);
}

static void fs_clicked(GtkButton *b, PhyView *v) {
        phy_view_set_fullscreen(v, !v->fullscreen);
}

static GtkWidget *hbutton(const char *icon, const char *a11y, GCallback cb, PhyView *v) {
        GtkWidget *b = gtk_button_new_from_icon_name(icon, GTK_ICON_SIZE_BUTTON);
        phy_a11y(b, a11y);
        g_signal_connect(b, "clicked", cb, v);
        return b;
}

PhyView *phy_view_new(PhyWindow *w) {
        PhyView *v = g_new0(PhyView, 1);
        v->w = w;
        v->overlay = gtk_overlay_new();
        v->stack = gtk_stack_new();
        gtk_container_add(GTK_CONTAINER(v->overlay), v->stack);

        v->display_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
        gtk_stack_add_named(GTK_STACK(v->stack), v->display_box, "display");

        v->connecting = gtk_spinner_new();
        phy_a11y(v->connecting, _("Connecting"));
        gtk_stack_add_named(GTK_STACK(v->stack), v->connecting, "connecting");

        v->stopped_page = hdy_status_page_new();
        hdy_status_page_set_icon_name(HDY_STATUS_PAGE(v->stopped_page), "computer-symbolic");
        v->start_btn = gtk_button_new_with_mnemonic(_("_Start"));
        phy_a11y(v->start_btn, _("Start"));
        gtk_widget_set_halign(v->start_btn, GTK_ALIGN_CENTER);
        gtk_style_context_add_class(gtk_widget_get_style_context(v->start_btn), "suggested-action");
        g_signal_connect(v->start_btn, "clicked", G_CALLBACK(start_clicked), v);
        gtk_container_add(GTK_CONTAINER(v->stopped_page), v->start_btn);
        gtk_stack_add_named(GTK_STACK(v->stack), v->stopped_page, "stopped");

        v->msg_page = hdy_status_page_new();
        hdy_status_page_set_icon_name(HDY_STATUS_PAGE(v->msg_page), "dialog-warning-symbolic");
        gtk_stack_add_named(GTK_STACK(v->stack), v->msg_page, "message");

#ifdef HAVE_VTE
        v->term = vte_terminal_new();
        phy_a11y(v->term, _("Serial console"));
        vte_terminal_set_scrollback_lines(VTE_TERMINAL(v->term), 5000);
        g_signal_connect(v->term, "commit", G_CALLBACK(term_commit), v);
        GtkWidget *sc = gtk_scrolled_window_new(NULL, NULL);
        gtk_container_add(GTK_CONTAINER(sc), v->term);
        gtk_stack_add_named(GTK_STACK(v->stack), sc, "console");
#endif

        /* The grab hint: visible while the display holds the keyboard. */
        v->hint = gtk_revealer_new();
        gtk_widget_set_halign(v->hint, GTK_ALIGN_CENTER);
        gtk_widget_set_valign(v->hint, GTK_ALIGN_START);
        GtkWidget *hl = gtk_label_new(_("Press Ctrl+Alt to release the keyboard and mouse"));
        phy_a11y(hl, _("Keyboard grab hint"));
        gtk_style_context_add_class(gtk_widget_get_style_context(hl), "app-notification");
        gtk_container_add(GTK_CONTAINER(v->hint), hl);
        gtk_overlay_add_overlay(GTK_OVERLAY(v->overlay), v->hint);
        gtk_overlay_set_overlay_pass_through(GTK_OVERLAY(v->overlay), v->hint, TRUE);

        v->leave_fs = hbutton("view-restore-symbolic", _("Leave fullscreen"), G_CALLBACK(fs_clicked), v);
        gtk_widget_set_halign(v->leave_fs, GTK_ALIGN_END);
        gtk_widget_set_valign(v->leave_fs, GTK_ALIGN_START);
        gtk_widget_set_no_show_all(v->leave_fs, TRUE);
        gtk_overlay_add_overlay(GTK_OVERLAY(v->overlay), v->leave_fs);

        v->hstart = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
        v->pause_btn = hbutton("media-playback-pause-symbolic", _("Pause"), G_CALLBACK(pause_clicked), v);
        v->stop_btn = hbutton("system-shutdown-symbolic", _("Shut down"), G_CALLBACK(stop_clicked), v);
        v->kill_btn = hbutton("process-stop-symbolic", _("Force stop"), G_CALLBACK(kill_clicked), v);
        gtk_box_pack_start(GTK_BOX(v->hstart), v->pause_btn, FALSE, FALSE, 0);
        gtk_box_pack_start(GTK_BOX(v->hstart), v->stop_btn, FALSE, FALSE, 0);
        gtk_box_pack_start(GTK_BOX(v->hstart), v->kill_btn, FALSE, FALSE, 0);
        v->hend = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
        v->props_btn = hbutton("document-properties-symbolic", _("Properties"), G_CALLBACK(props_clicked), v);
        v->fs_btn = hbutton("view-fullscreen-symbolic", _("Fullscreen"), G_CALLBACK(fs_clicked), v);
        v->cad_btn = hbutton("input-keyboard-symbolic", _("Send Ctrl+Alt+Del"), G_CALLBACK(cad_clicked), v);
        v->console_btn = gtk_toggle_button_new();
        gtk_container_add(GTK_CONTAINER(v->console_btn), gtk_image_new_from_icon_name("utilities-terminal-symbolic",
                                                                                      GTK_ICON_SIZE_BUTTON));
        phy_a11y(v->console_btn, _("Show the serial console"));
        g_signal_connect(v->console_btn, "toggled", G_CALLBACK(console_toggled), v);
        v->usb_btn = gtk_menu_button_new();
        gtk_button_set_image(GTK_BUTTON(v->usb_btn), gtk_image_new_from_icon_name("media-removable-symbolic",
                                                                                  GTK_ICON_SIZE_BUTTON));
        phy_a11y(v->usb_btn, _("USB devices"));
        gtk_widget_set_sensitive(v->usb_btn, FALSE);
        v->clip_btn = gtk_toggle_button_new();
        gtk_container_add(GTK_CONTAINER(v->clip_btn), gtk_image_new_from_icon_name("edit-paste-symbolic",
                                                                                   GTK_ICON_SIZE_BUTTON));
        phy_a11y(v->clip_btn, _("Share the clipboard"));
        g_signal_connect(v->clip_btn, "toggled", G_CALLBACK(clip_toggled), v);
        gtk_box_pack_end(GTK_BOX(v->hend), v->props_btn, FALSE, FALSE, 0);
        gtk_box_pack_end(GTK_BOX(v->hend), v->fs_btn, FALSE, FALSE, 0);
        gtk_box_pack_end(GTK_BOX(v->hend), v->clip_btn, FALSE, FALSE, 0);
        gtk_box_pack_end(GTK_BOX(v->hend), v->console_btn, FALSE, FALSE, 0);
        gtk_box_pack_end(GTK_BOX(v->hend), v->usb_btn, FALSE, FALSE, 0);
        gtk_box_pack_end(GTK_BOX(v->hend), v->cad_btn, FALSE, FALSE, 0);
        gtk_widget_show_all(v->overlay);
        gtk_widget_show_all(v->hstart);
        gtk_widget_show_all(v->hend);
        return v;
}

/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * phyllome: the desktop app (docs/app.md).  GTK 3 + libhandy, the VM's
 * display through spice-client-gtk.  It talks only to phyllod over its unix
 * socket (client.c) and follows its event stream; it never polls a state.
 *
 *   main.c       the application, the window, the banner, the collection
 *   client.c     HTTP/1.x over the unix socket in GTask threads; the event
 *                stream; starting phyllod and noticing it come back
 *   card.c       one VM's card: thumbnail, name, OS, state, start/stop
 *   view.c       one VM seen: the SPICE display or its serial console
 *   assistant.c  the new VM assistant (catalog, ISO, kernel, import)
 *   props.c      properties of a VM; "This computer" (the host check)
 */
#include <gtk/gtk.h>
#include <handy.h>
#include <json-c/json.h>
#include <glib/gi18n.h>

/* ---- client.c ---- */

typedef struct {
        int status;             /* HTTP status; 0: phyllod did not answer */
        json_object *body;      /* the JSON reply, or NULL */
        char *error;            /* the sentence to show when status is not 2xx */
} PhyReply;
void phy_reply_free(PhyReply *r);

typedef void (*PhyReplyFunc)(PhyReply *r, gpointer data);
/* One request in a thread of its own; cb runs in the main loop (unless
 * cancellable was cancelled).  body may be NULL; it is taken. */
void phy_call(const char *method, const char *path, json_object *body, GCancellable *cancellable, PhyReplyFunc cb,
              gpointer data);
/* The same with a file as the body (a bundle). */
void phy_upload(const char *method, const char *path, const char *file, GCancellable *cancellable, PhyReplyFunc cb,
                gpointer data);
/* GET path saved into file (a bundle: FILE.partial, then linked into place
 * whole; an existing file is refused, a cut-short reply leaves nothing). */
void phy_save(const char *path, const char *file, GCancellable *cancellable, PhyReplyFunc cb, gpointer data);
/* The same, blocking (for threads). */
PhyReply *phy_call_sync(const char *method, const char *path, const char *body, GCancellable *cancellable);
/* A path segment escaped for a URL. */
char *phy_escape(const char *segment);

/* The socket phyllod answers on (as phyllo finds it). */
const char *phy_socket_path(void);
void phy_set_socket_path(const char *path);

typedef void (*PhyEventFunc)(const char *event, json_object *data, gpointer user);
typedef void (*PhyLinkFunc)(gboolean up, const char *why, gpointer user);
/* Follows GET /v1/events; link(up) when the stream opens, link(down, why)
 * when it ends; then waits (inotify on the socket's directory) for phyllod
 * to come back and reconnects. */
void phy_events_start(PhyEventFunc ev, PhyLinkFunc link, gpointer user);
/* Starts phyllod for this user, detached (it outlives the app). */
gboolean phy_spawn_phyllod(GError **error);

/* An upgraded connection to a VM's serial console (raw bytes both ways). */
typedef void (*PhyConsoleFunc)(GIOStream *stream, const char *error, gpointer data);
void phy_console_open(const char *vm, GCancellable *cancellable, PhyConsoleFunc cb, gpointer data);

/* ---- main.c ---- */
typedef struct _PhyWindow PhyWindow;
GtkWidget *phy_window_widget(PhyWindow *w);
/* Shows an error sentence in the window (an in-window notification). */
void phy_window_error(PhyWindow *w, const char *sentence);
void phy_window_reload(PhyWindow *w);
void phy_window_open_vm(PhyWindow *w, const char *name);
void phy_window_show_collection(PhyWindow *w);
/* The VM's last known state ("running", ...) or NULL. */
const char *phy_window_vm_state(PhyWindow *w, const char *name);
/* A request about a VM whose reply only matters when it fails. */
void phy_window_act(PhyWindow *w, const char *name, const char *action, json_object *body);
/* Whether a request of this window is answered (tests, bench). */
void phy_window_set_busy(PhyWindow *w, gboolean busy);

/* ---- card.c ---- */
typedef struct _PhyCard PhyCard;
PhyCard *phy_card_new(PhyWindow *w, const char *name);
GtkWidget *phy_card_widget(PhyCard *c);
void phy_card_set_info(PhyCard *c, const char *profile, const char *os, int cpus, const char *memory);
void phy_card_set_state(PhyCard *c, const char *state);
const char *phy_card_state(PhyCard *c);
const char *phy_card_name(PhyCard *c);
void phy_card_set_thumbnail(PhyCard *c, GdkPixbuf *pb);
void phy_card_free(PhyCard *c);
/* A pixbuf from a screenshot reply ({format, data}), scaled to fit w×h
 * (-1: as it is). */
GdkPixbuf *phy_screenshot_pixbuf(json_object *reply, int w, int h, GError **error);

/* ---- view.c ---- */
typedef struct _PhyView PhyView;
PhyView *phy_view_new(PhyWindow *w);
GtkWidget *phy_view_widget(PhyView *v);
/* The header bar's buttons for the view (packed by main.c). */
GtkWidget *phy_view_header_start(PhyView *v);
GtkWidget *phy_view_header_end(PhyView *v);
void phy_view_show(PhyView *v, const char *name);
void phy_view_close(PhyView *v);
const char *phy_view_vm(PhyView *v);
void phy_view_state_changed(PhyView *v, const char *state);
void phy_view_set_fullscreen(PhyView *v, gboolean on);

/* ---- assistant.c ---- */
void phy_assistant_run(PhyWindow *w);
/* A download's event (the assistant follows its progress). */
void phy_assistant_download_event(json_object *data);

/* ---- props.c ---- */
void phy_props_run(PhyWindow *w, const char *name);
GtkWidget *phy_host_page_new(PhyWindow *w);
void phy_host_page_load(GtkWidget *page);

/* Helpers for json-c. */
const char *phy_json_str(json_object *o, const char *key);
int64_t phy_json_int(json_object *o, const char *key, int64_t dflt);
/* Sets the accessible name of a widget (every control has one). */
void phy_a11y(GtkWidget *w, const char *name);
/* Names the unnamed buttons GTK makes inside a widget (an info bar's close
 * button, a search bar's). */
void phy_a11y_buttons(GtkWidget *w, const char *name);

// SPDX-License-Identifier: MIT
// Phyllome OS, desktop: GNOME Shell (40 and later) opens the Activities
// overview at login, over the app's window; the Phyllome session opens on
// the app.  The shell skips the overview at startup when the session mode
// has none: it has none until the startup is complete.
/* exported init */
const Main = imports.ui.main;

class Extension {
    enable() {
        if (!Main.layoutManager._startingUp)
            return;
        this._hadOverview = Main.sessionMode.hasOverview;
        Main.sessionMode.hasOverview = false;
        this._id = Main.layoutManager.connect('startup-complete', () => this._restore());
    }

    _restore() {
        if (!this._id)
            return;
        Main.layoutManager.disconnect(this._id);
        this._id = 0;
        Main.sessionMode.hasOverview = this._hadOverview;
    }

    disable() {
        this._restore();
    }
}

function init() {
    return new Extension();
}

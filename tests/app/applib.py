# Helpers for the app's tests (tests/app/*.py): TAP output, a private
# Phyllome home with the tiny test guest, Xvfb, a phyllod of the test's own,
# the app, and AT-SPI to find its controls by accessible name.  Waits are
# driven by AT-SPI events (a GLib main loop woken by them), never by sleeps.
# Run under dbus-run-session (tests/app/run.sh).  Kills only its own pids.
import atexit, json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time

import gi
gi.require_version("Atspi", "2.0")
gi.require_version("Gdk", "3.0")
from gi.repository import Atspi, Gdk, GLib

if os.environ.get("PHYLLOME_TAP_FD"):
    sys.stdout = os.fdopen(int(os.environ.pop("PHYLLOME_TAP_FD")), "w", buffering=1)
n = 0
failed = 0
pids = []
home = None


def ok(cond, desc, diag=None):
    global n, failed
    n += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (n, desc), flush=True)
    if not cond:
        failed += 1
        if diag:
            for l in str(diag).splitlines():
                print("#   " + l, flush=True)
    return cond


def is_(got, want, desc):
    return ok(got == want, desc, "got:  %r\nwant: %r" % (got, want))


def diag(text):
    for l in str(text).splitlines():
        print("# " + l, flush=True)


def skip_all(why):
    print("1..0 # SKIP " + why, flush=True)
    sys.exit(77)


def done():
    print("1..%d" % n, flush=True)
    cleanup()
    sys.exit(1 if failed else 0)


def bail(why):
    ok(False, why)
    done()


BUILD = os.environ.get("PHYLLOME_BUILDDIR") or os.path.dirname(os.environ.get("PHYLLO", "build/phyllo"))
PHYLLO = os.environ.get("PHYLLO") or os.path.join(BUILD, "phyllo")
PHYLLOD = os.path.join(BUILD, "phyllod")
APP = os.path.join(BUILD, "src", "app", "phyllome")
GUEST = os.environ.get("PHYLLOME_GUEST_DIR") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "phyllome", "test-guest")


def own(p):
    pids.append(p)
    return p


def cleanup():
    global home
    # QEMU, monitors and swtpm of this home's VMs (as lifecycle-lib.sh does).
    if home and os.path.isdir(os.path.join(home, "run")):
        for vm in os.listdir(os.path.join(home, "run")):
            try:
                st = json.load(open(os.path.join(home, "run", vm, "state.json")))
            except Exception:
                continue
            for k in ("qemu_pid", "swtpm_pid", "monitor_pid"):
                p = st.get(k) or 0
                if p > 0:
                    try:
                        cmd = open("/proc/%d/cmdline" % p, "rb").read().replace(b"\0", b" ")
                        comm = open("/proc/%d/comm" % p).read().strip()
                    except OSError:
                        continue
                    if ("-name guest=%s," % vm).encode() in cmd or comm in ("phyllo-monitor", "swtpm"):
                        os.kill(p, signal.SIGKILL)
    for p in reversed(pids):
        try:
            p.kill()
            p.wait(timeout=10)
        except Exception:
            pass
    del pids[:]
    if home and home.startswith("/tmp/phyllome-app-test."):
        shutil.rmtree(home, ignore_errors=True)
    home = None


def _on_exception(kind, value, tb):
    import traceback
    global n, failed
    n += 1
    failed += 1
    print("not ok %d - the test raised %s" % (n, kind.__name__), flush=True)
    for l in "".join(traceback.format_exception(kind, value, tb)).splitlines():
        print("#   " + l, flush=True)
    print("1..%d" % n, flush=True)


# Whatever ends the test (an exception, SIGTERM from a timeout), its
# processes go with it.
sys.excepthook = _on_exception
atexit.register(cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))


def setup(need_guest=True):
    """A private home (with the guest), Xvfb, the environment."""
    global home
    for f in (PHYLLO, PHYLLOD, APP):
        if not os.access(f, os.X_OK):
            skip_all("%s is not built" % f)
    if not shutil.which("Xvfb"):
        skip_all("Xvfb is not installed")
    if need_guest:
        for f in ("vmlinux", "initrd.img"):
            if not os.access(os.path.join(GUEST, f), os.R_OK):
                skip_all("the test guest is not built in %s (run tests/guest/build.sh)" % GUEST)
        if "phyllome.fbpattern" not in open(os.path.join(GUEST, "initrd.img"), "rb").read().decode("latin-1"):
            skip_all("the test guest in %s predates phyllome.fbpattern (run tests/guest/build.sh)" % GUEST)
    home = tempfile.mkdtemp(prefix="phyllome-app-test.", dir="/tmp")
    os.chmod(home, 0o755)
    os.environ["PHYLLOME_HOME"] = home
    os.environ["PHYLLOME_FORCE_TCG"] = "1"
    os.environ["XDG_RUNTIME_DIR"] = os.path.join(home, "xdg")
    os.mkdir(os.environ["XDG_RUNTIME_DIR"], 0o700)
    os.environ.pop("PULSE_SERVER", None)
    os.environ["NO_AT_BRIDGE"] = "0"
    os.environ.pop("NO_AT_BRIDGE")
    os.environ["GTK_A11Y"] = "atspi"
    os.environ["GDK_BACKEND"] = "x11"
    os.environ["LIBGL_ALWAYS_SOFTWARE"] = "1"
    if need_guest:
        g = os.path.join(home, "guest")
        os.mkdir(g)
        for f in ("vmlinux", "initrd.img"):
            shutil.copy(os.path.join(GUEST, f), g)
            os.chmod(os.path.join(g, f), 0o644)
    # Xvfb says its display number on -displayfd once it accepts clients.
    r, w = os.pipe()
    x = own(subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                             pass_fds=[w], stderr=open(os.path.join(home, "xvfb.log"), "w")))
    os.close(w)
    num = b""
    while not num.endswith(b"\n"):
        c = os.read(r, 1)
        if not c:
            bail("Xvfb did not start: " + open(os.path.join(home, "xvfb.log")).read())
        num += c
    os.close(r)
    os.environ["DISPLAY"] = ":" + num.decode().strip()
    return home


class _Pid:
    """A process the app started (phyllod), killed by pid at cleanup."""
    def __init__(self, pid):
        self.pid = pid

    def kill(self):
        os.kill(self.pid, signal.SIGKILL)

    def wait(self, timeout=None):
        pass


def ppid(pid):
    return int(open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[1])


def own_by_home(comm):
    """Processes named comm whose PHYLLOME_HOME is this test's home (started
    by the app on the test's behalf): owned by the test from now on."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if open("/proc/%s/comm" % d).read().strip() != comm:
                continue
            env = open("/proc/%s/environ" % d, "rb").read().split(b"\0")
        except OSError:
            continue
        if ("PHYLLOME_HOME=" + home).encode() in env:
            found.append(int(d))
            own(_Pid(int(d)))
    return found


def phyllo(*args, check=True):
    p = subprocess.run([PHYLLO] + list(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        diag("phyllo %s: %s" % (" ".join(args), p.stderr))
    return p


def phyllod_start():
    """phyllod for the home; returns once it says it serves."""
    p = own(subprocess.Popen([PHYLLOD], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True))
    line = p.stderr.readline()
    if not line.startswith("phyllod: serving"):
        bail("phyllod did not start: " + line)
    return p


def phyllod_stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    pids.remove(p)


def app_start(*args):
    log = open(os.path.join(home, "app.log"), "a")
    # --no-spawn: the test starts phyllod itself; the banner's button still
    # starts this one (a build tree has no phyllod beside the app)
    env = dict(os.environ, PHYLLOME_PHYLLOD=PHYLLOD)
    return own(subprocess.Popen([APP, "--no-spawn"] + list(args), stdout=log, stderr=log, env=env))


def wait_log(vm, regex, timeout=120):
    """Until a line of the VM's logs matches (phyllo logs --follow: inotify);
    returns the matched text."""
    p = subprocess.Popen(["timeout", str(timeout), PHYLLO, "logs", vm, "--follow"], stdout=subprocess.PIPE, text=True,
                         errors="replace")
    rx = re.compile(regex)
    found = None
    for line in p.stdout:
        m = rx.search(line)
        if m:
            found = m.group(0).rstrip("\r\n")
            break
    p.kill()
    p.wait()
    return found


# ---- AT-SPI ----

_woken = [0]


def _wake(ev):
    _woken[0] += 1


_listener = None


def atspi_init():
    """AT-SPI, after telling the session bus our DISPLAY: the a11y bus and
    its registry daemon are started by D-Bus activation, and the registry
    synthesizes keys and clicks (XTest) on the display it was started with."""
    global _listener
    from gi.repository import Gio
    bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
    bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                  "UpdateActivationEnvironment",
                  GLib.Variant("(a{ss})", ({"DISPLAY": os.environ["DISPLAY"], "GDK_BACKEND": "x11"},)),
                  None, Gio.DBusCallFlags.NONE, -1, None)
    Atspi.init()
    _listener = Atspi.EventListener.new(_wake)
    for e in ("object:children-changed", "object:state-changed", "object:property-change",
              "object:text-changed", "object:visible-data-changed", "window:create", "window:activate"):
        _listener.register(e)


def wait_for(cond, timeout, what):
    """Evaluates cond at each AT-SPI event until true (its value returned)
    or until timeout seconds pass (None, and a diag)."""
    ctx = GLib.MainContext.default()
    expired = [False]

    def expire():
        expired[0] = True
        return False
    src = GLib.timeout_add(int(timeout * 1000), expire)
    # A slow tick too: some conditions (a screenshot's pixels) send no event.
    tick = GLib.timeout_add(500, lambda: True)
    try:
        while True:
            try:
                r = cond()
            except GLib.Error:
                r = None
            if r:
                return r
            if expired[0]:
                diag("timed out after %ss waiting for %s" % (timeout, what))
                return None
            ctx.iteration(True)
    finally:
        if not expired[0]:
            GLib.source_remove(src)
        GLib.source_remove(tick)


def app_root(name="phyllome"):
    d = Atspi.get_desktop(0)
    for i in range(d.get_child_count()):
        a = d.get_child_at_index(i)
        if a and a.get_name() == name:
            return a
    return None


def walk(acc, depth=0):
    if acc is None or depth > 60:
        return
    yield acc
    try:
        cnt = acc.get_child_count()
    except GLib.Error:
        return
    for i in range(cnt):
        try:
            c = acc.get_child_at_index(i)
        except GLib.Error:
            continue
        yield from walk(c, depth + 1)


def showing(acc):
    try:
        return acc.get_state_set().contains(Atspi.StateType.SHOWING)
    except GLib.Error:
        return False


def find(name, role=None, root=None, visible=True):
    root = root or app_root()
    for a in walk(root):
        try:
            if a.get_name() == name and (role is None or a.get_role_name() == role) and (not visible or showing(a)):
                return a
        except GLib.Error:
            continue
    return None


def find_wait(name, role=None, timeout=30):
    return wait_for(lambda: find(name, role), timeout, "a control named %r" % name)


def select_tab(acc):
    """A notebook's page tab (tabs have no action: the notebook selects)."""
    return acc.get_parent().get_selection_iface().select_child(acc.get_index_in_parent())


def click(acc):
    ai = acc.get_action_iface()
    for i in range(ai.get_n_actions()):
        if ai.get_action_name(i) in ("click", "press", "activate"):
            return ai.do_action(i)
    return ai.do_action(0)


def text_of(acc):
    t = acc.get_text_iface()
    return t.get_text(0, t.get_character_count()) if t else acc.get_name()


def set_text(acc, text):
    e = acc.get_editable_text_iface()
    e.set_text_contents(text)


def extents(acc):
    r = acc.get_extents(Atspi.CoordType.SCREEN)
    return r.x, r.y, r.width, r.height


def controls_without_names(root):
    """Every push button, toggle, entry, spin button, combo box, check box
    and menu item that is showing and has no accessible name."""
    roles = {"push button", "toggle button", "text", "spin button", "combo box", "check box", "radio button",
             "menu item", "password text", "page tab", "terminal"}
    bad = []
    for a in walk(root):
        try:
            if a.get_role_name() in roles and showing(a) and not (a.get_name() or "").strip():
                bad.append("%s in %s" % (a.get_role_name(), a.get_parent().get_role_name()))
        except GLib.Error:
            continue
    return bad


# ---- pictures ----

def screenshot(path=None, region=None):
    """The root window (or x, y, w, h of it) as a GdkPixbuf; saved when path."""
    Gdk.init([])
    root = Gdk.get_default_root_window()
    x, y, w, h = region or (0, 0, root.get_width(), root.get_height())
    pb = Gdk.pixbuf_get_from_window(root, x, y, w, h)
    if path:
        pb.savev(path, "png", [], [])
    return pb


def colour_centroids(pb):
    """For pure-ish red, green and blue: (count, mean y) over the picture."""
    px = pb.get_pixels()
    rs, nc, w, h = pb.get_rowstride(), pb.get_n_channels(), pb.get_width(), pb.get_height()
    acc = {"red": [0, 0], "green": [0, 0], "blue": [0, 0]}
    for y in range(0, h, 2):
        row = y * rs
        for x in range(0, w, 2):
            o = row + x * nc
            r, g, b = px[o], px[o + 1], px[o + 2]
            k = ("red" if r > 200 and g < 60 and b < 60 else "green" if g > 200 and r < 60 and b < 60
                 else "blue" if b > 200 and r < 60 and g < 60 else None)
            if k:
                acc[k][0] += 1
                acc[k][1] += y
    return {k: (c, (s / c if c else -1)) for k, (c, s) in acc.items()}


def focus(acc):
    return acc.grab_focus()


def key(sym=None, text=None):
    """One key through the X server (XTest, by the AT-SPI registry), at a
    fast typist's pace: QEMU's virtio keyboard holds 64 events (a key is
    four: down, sync, up, sync), and a TCG guest on a loaded host may not
    take them for a while; a burst of a whole line lost the last keys' ups
    (a stuck key the guest repeated) and the Return."""
    if text is not None:
        Atspi.generate_keyboard_event(0, text, Atspi.KeySynthType.STRING)
    else:
        Atspi.generate_keyboard_event(sym, None, Atspi.KeySynthType.SYM)
    GLib.usleep(25000)


def type_text(text):
    """Keys, one at a time, then Return."""
    for ch in text:
        key(text=ch)
    key(sym=0xff0d)


def no_unnamed(root, where):
    bad = controls_without_names(root)
    return ok(not bad, "every control %s has an accessible name" % where, "\n".join(bad))


def shot(name, also=None):
    """Saves the screen for scripts/screenshots (PHYLLOME_SCREENSHOTS=dir):
    the window, and the dialog also (an accessible) where it goes past it."""
    d = os.environ.get("PHYLLOME_SCREENSHOTS")
    if d:
        # the pointer out of the way (no tooltip, no hover)
        Atspi.generate_mouse_event(1279, 799, "abs")
        GLib.usleep(700000)  # a tooltip closes on the next frame
        region = window_region()
        if region and also:
            x, y, w, h = extents(also)
            x0, y0 = min(region[0], max(0, x)), min(region[1], max(0, y))
            x1, y1 = max(region[0] + region[2], x + w), max(region[1] + region[3], y + h)
            region = (x0, y0, min(1280, x1) - x0, min(800, y1) - y0)
        screenshot(os.path.join(d, name + ".png"), region)


def window_region():
    f = find("Phyllome", "frame")
    if not f:
        return None
    x, y, w, h = extents(f)
    return max(0, x), max(0, y), w, h

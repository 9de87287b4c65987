#!/bin/bash
# Runs one of the app's tests (tests/app/*.py, TAP) in a D-Bus session of its
# own (AT-SPI lives on it), with Debian's python3 (python3-gi, pyatspi's
# Atspi typelib).  Skips (77) when what it needs is missing.
set -u
command -v dbus-run-session >/dev/null || { echo "1..0 # SKIP dbus-run-session is not installed (dbus)"; exit 77; }
[ -x /usr/libexec/at-spi-bus-launcher ] || { echo "1..0 # SKIP at-spi2-core is not installed"; exit 77; }
/usr/bin/python3 -c 'import gi; gi.require_version("Atspi", "2.0"); gi.require_version("Gdk", "3.0")' 2>/dev/null ||
  { echo "1..0 # SKIP python3-gi with the Atspi and Gdk typelibs is not installed (python3-pyatspi gir1.2-gtk-3.0)"; exit 77; }
cd "$(dirname "$0")" || exit 1
# TAP goes to fd 3 (the test's stdout); the session's own stdout, which the
# D-Bus services it starts inherit (the AT-SPI registry prints a greeting),
# goes to stderr.
PHYLLOME_TAP_FD=3 exec dbus-run-session -- /usr/bin/python3 "$1" 3>&1 1>&2

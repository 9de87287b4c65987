#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# with-daemon.sh SCRIPT [ARGS]: runs an integration test with its phyllo
# calls answered by a phyllod serving the test's own home.  The tests make
# their home themselves, so $PHYLLO becomes a shim that starts one phyllod per
# home on its first call (once its socket serves) and then runs the real
# phyllo with PHYLLOME_REQUIRE_DAEMON=1: a command that should ask the daemon
# fails when none answers, instead of quietly working directly.  Every phyllod
# started is killed by pid at the end.
set -u
script=${1:?usage: with-daemon.sh SCRIPT [ARGS]}
shift
: "${PHYLLO:?PHYLLO must name the phyllo binary (meson sets it)}"
PHYLLOD=${PHYLLOD:-${PHYLLOME_BUILDDIR:-$(dirname "$PHYLLO")}/phyllod}
[ -x "$PHYLLOD" ] || { echo "1..0 # SKIP phyllod is not built ($PHYLLOD)"; exit 77; }
wd=$(mktemp -d /tmp/phyllome-with-daemon.XXXXXX)
cleanup() {
  local p
  for p in $(cat "$wd/pids" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  rm -rf "$wd"
}
trap cleanup EXIT
cat >"$wd/phyllo" <<'SHIM'
#!/usr/bin/env bash
# Starts phyllod for $PHYLLOME_HOME unless its socket is there, then phyllo.
home=${PHYLLOME_HOME:?}
if [ ! -S "$home/phyllod.sock" ]; then
  exec 9>"$WD/lock"
  flock 9
  if [ ! -S "$home/phyllod.sock" ]; then
    fifo=$WD/ready.$$
    mkfifo "$fifo"
    # Away from the caller's fds, so $(phyllo ...) does not wait for phyllod.
    "$PHYLLOD" </dev/null >/dev/null 2>"$fifo" 9>&- &
    echo $! >>"$WD/pids"
    exec 8<"$fifo"
    rm -f "$fifo"
    # Its first line says it serves (or why it could not).
    read -r -t 10 -u 8 line
    case $line in "phyllod: serving "*) ;; *) echo "with-daemon: phyllod did not start: $line" >&2; exit 1;; esac
    cat <&8 >>"$WD/phyllod.log" 2>/dev/null 9>&- &
    exec 8<&-
  fi
  exec 9>&-
fi
PHYLLOME_REQUIRE_DAEMON=1 exec "$REAL_PHYLLO" "$@"
SHIM
chmod 755 "$wd/phyllo"
export WD=$wd PHYLLOD REAL_PHYLLO=$PHYLLO PHYLLO=$wd/phyllo
# The script still finds the build dir and its sources as without the shim.
export PHYLLOME_BUILDDIR=${PHYLLOME_BUILDDIR:-$(dirname "$REAL_PHYLLO")}
export PHYLLOME_TEST_SRCDIR=${PHYLLOME_TEST_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
"$script" "$@"
rc=$?
[ -s "$wd/pids" ] || { echo "# with-daemon: no phyllod was started"; [ "$rc" = 0 ] && rc=1; }
exit "$rc"

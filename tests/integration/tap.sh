# Sourced by the integration tests: a tiny TAP producer for bash.
# Each test script owns a temporary PHYLLOME_HOME and kills only the
# processes it started (tap_own_pid PID registers one).
tap_n=0
tap_failed=0
tap_pids=()
PHYLLO=${PHYLLO:?PHYLLO must name the phyllo binary (meson sets it)}
BUILDDIR=${PHYLLOME_BUILDDIR:-$(dirname "$PHYLLO")}
SRCDIR=${PHYLLOME_TEST_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

ok() { # ok CONDITION-EXIT-STATUS DESCRIPTION
  tap_n=$((tap_n + 1))
  if [ "$1" -eq 0 ]; then echo "ok $tap_n - $2"; else echo "not ok $tap_n - $2"; tap_failed=$((tap_failed + 1)); fi
  return "$1"
}
is() { # is GOT WANT DESCRIPTION
  tap_n=$((tap_n + 1))
  if [ "$1" = "$2" ]; then echo "ok $tap_n - $3"
  else echo "not ok $tap_n - $3"; echo "#   got:  '$1'"; echo "#   want: '$2'"; tap_failed=$((tap_failed + 1)); fi
}
like() { # like GOT REGEX DESCRIPTION
  tap_n=$((tap_n + 1))
  if [[ "$1" =~ $2 ]]; then echo "ok $tap_n - $3"
  else echo "not ok $tap_n - $3"; echo "#   got: '$1'"; echo "#   want match: '$2'"; tap_failed=$((tap_failed + 1)); fi
}
diag() { sed 's/^/# /' <<<"$*"; }
skip_all() { echo "1..0 # SKIP $*"; exit 77; }
tap_own_pid() { tap_pids+=("$1"); }
tap_cleanup() {
  local p
  for p in "${tap_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  [ -n "${PHYLLOME_HOME:-}" ] && [[ "$PHYLLOME_HOME" == /tmp/phyllome-test.* ]] && rm -rf "$PHYLLOME_HOME"
}
tap_done() { echo "1..$tap_n"; [ "$tap_failed" -eq 0 ]; }
tap_new_home() {
  PHYLLOME_HOME=$(mktemp -d /tmp/phyllome-test.XXXXXX)
  export PHYLLOME_HOME
  trap tap_cleanup EXIT
  # meson ends a test that runs out of time with SIGTERM: turn it into an
  # exit so the EXIT trap still kills what the test started.
  trap 'exit 143' TERM
  trap 'exit 130' INT HUP
}

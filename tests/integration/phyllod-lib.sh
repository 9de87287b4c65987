# Sourced after tap.sh and lifecycle-lib.sh by the tests that run a phyllod
# of their own for their home: PHYLLOD, S (its socket) and pd_start.
PHYLLOD=${PHYLLOD:-$BUILDDIR/phyllod}
[ -x "$PHYLLOD" ] || skip_all "phyllod is not built ($PHYLLOD)"

# pd_start [ARGS...]: starts phyllod (its pid in PD_PID, owned by the test)
# and returns once it has said whether it serves: its first stderr line goes
# to PD_LINE, the rest to $PHYLLOME_HOME/phyllod.log.  True when it serves.
pd_start() {
  coproc PD { exec "$PHYLLOD" "$@" 2>&1; }
  PD_PID=$PD_PID
  tap_own_pid "$PD_PID"
  local fd
  exec {fd}<&"${PD[0]}"   # coproc fds are not inherited by subshells; a dup is
  read -r -t 10 -u "$fd" PD_LINE
  cat <&"$fd" >>"$PHYLLOME_HOME/phyllod.log" &
  exec {fd}<&-
  [[ $PD_LINE == "phyllod: serving "* ]]
}

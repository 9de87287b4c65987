#!/bin/bash
# SPDX-License-Identifier: MIT
# Reads are reads (issue 13): after kill -9 of the monitor and of QEMU,
# 'phyllo status' and 'phyllo list' report the truth and change nothing on
# disk (the run dir's file tree is compared before and after); the repairs
# (swtpm ended, sockets removed, devices given back, state.json says
# crashed) happen only in the
# reconcile step: 'phyllo status --repair', 'phyllo start', and phyllod's
# watcher when a VM's processes end under it.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
command -v swtpm >/dev/null && command -v swtpm_setup >/dev/null || skip_all "swtpm is not installed"
command -v curl >/dev/null || skip_all "curl is not installed"
. "$(dirname "$0")/phyllod-lib.sh"
lc_new_home

# The home (the guest's files aside) as a sorted listing: name, type, size,
# mtime, and a checksum of each file.
tree_of() {
  find "$PHYLLOME_HOME" -path "$PHYLLOME_HOME/guest" -prune -o -printf '%P %y %s %T@\n' | sort
  find "$PHYLLOME_HOME" -path "$PHYLLOME_HOME/guest" -prune -o -type f -exec sha256sum {} + | sort
}
swtpm_of() { lc_field r swtpm_pid; }
# kill -9 of the monitor, then of QEMU (in that order: nobody records the exit).
kill_both() {
  local q m
  q=$(lc_field r qemu_pid); m=$(lc_field r monitor_pid)
  # Only real pids: a failed start records 0, and kill -9 0 would end this
  # test's whole process group.
  [[ $m =~ ^[1-9][0-9]*$ && $q =~ ^[1-9][0-9]*$ ]] || { diag "no monitor/QEMU pids recorded (monitor '$m', QEMU '$q')"; return 1; }
  kill -9 "$m"
  while lc_alive "$m"; do wait_gone "$m"; done
  kill -9 "$q"
  while lc_alive "$q"; do wait_gone "$q"; done
}
# Waits for a process that is not our child to end: pidfd through Python's os.pidfd_open.
wait_gone() { python3 -c 'import os,select,sys
try: fd = os.pidfd_open(int(sys.argv[1]))
except ProcessLookupError: sys.exit(0)
select.select([fd], [], [], 10)' "$1"; }

lc_create r
printf '[tpm]\ntype = emulated\n' >>"$PHYLLOME_HOME/vms/r/vm.conf"
"$PHYLLO" start r >/dev/null 2>&1; ok $? "start r (with an emulated TPM)"
s=$(swtpm_of); lc_alive "$s"; ok $? "swtpm runs (pid $s)"
q=$(lc_field r qemu_pid)

# --- step 1: kill -9 of the monitor; QEMU runs on ---
m=$(lc_field r monitor_pid)
kill -9 "$m"; wait_gone "$m"
before=$(tree_of)
st=$("$PHYLLO" status r --json)
is "$(jq -r '"\(.state)/\(.unsupervised)"' <<<"$st")" running/true "monitor killed: status says running, unsupervised"
"$PHYLLO" list --json >/dev/null
is "$(tree_of)" "$before" "status and list changed nothing in the home"

# --- step 2: kill -9 of QEMU too: a stale record ---
kill -9 "$q"; wait_gone "$q"
before=$(tree_of)
st=$("$PHYLLO" status r --json)
is "$(jq -r '"\(.state)/\(.needs_repair)"' <<<"$st")" crashed/true "QEMU killed too: status says crashed, repair due"
like "$(jq -r .error <<<"$st")" "ended without recording an exit" "with the reason"
"$PHYLLO" status r >/dev/null; "$PHYLLO" list >/dev/null; "$PHYLLO" list --json >/dev/null
is "$(tree_of)" "$before" "status and list (text and JSON) changed nothing in the home"
is "$(lc_field r state)" running "state.json still says what the monitor last wrote"
ok $([ "$(lc_sockets r)" -gt 0 ]; echo $?) "its sockets too"

st=$("$PHYLLO" status r --repair --json); ok $? "status --repair"
is "$(jq -r '"\(.state)/\(.needs_repair)"' <<<"$st")" crashed/null "repaired: crashed, no repair due"
is "$(lc_field r state)" crashed "state.json says crashed"
wait_gone "$s"; lc_alive "$s"; ok $([ $? -ne 0 ]; echo $?) "no swtpm left"
is "$(lc_sockets r)" 0 "no socket left"
before=$(tree_of)
"$PHYLLO" status r --repair >/dev/null; ok $? "a second --repair"
is "$(tree_of)" "$before" "changes nothing more"

# --- step 3: start after such a crash reconciles first ---
"$PHYLLO" start r >/dev/null 2>&1; ok $? "start again"
s=$(swtpm_of)
kill_both
ok $([ "$(lc_sockets r)" -gt 0 ]; echo $?) "killed again: sockets left"
out=$("$PHYLLO" start r 2>&1); ok $? "start straight after the crash" || diag "$out"
is "$(lc_state r)" running "running"
wait_gone "$s"; lc_alive "$s"; ok $([ $? -ne 0 ]; echo $?) "no swtpm of the dead run left"

# --- step 4: phyllod's watcher reconciles when the processes end ---
S=$PHYLLOME_HOME/phyllod.sock
pd_start --socket "$S"; ok $? "phyllod serves"
ev=$PHYLLOME_HOME/events.txt
: >"$ev"        # made before curl's redirection: tail must find it whoever runs first
curl -s -N --unix-socket "$S" http://localhost/v1/events >"$ev" &
tap_own_pid $!
timeout 10 tail -n +1 -f "$ev" | grep -m1 -q '"name":"r","state":"running"'
ok $? "the stream has r running"
s=$(swtpm_of)
kill_both
timeout 30 tail -n +1 -f "$ev" | grep -m1 -q '"name":"r","state":"crashed"'
ok $? "phyllod's watcher recorded the crash: the stream has r crashed"
is "$(lc_field r state)" crashed "state.json says crashed"
wait_gone "$s"; lc_alive "$s"; ok $([ $? -ne 0 ]; echo $?) "no swtpm of the dead run left"
is "$(lc_sockets r)" 0 "no socket left"
lc_lock_free r; ok $? "the lock is free"
tap_done

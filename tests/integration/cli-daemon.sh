#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The CLI with and without phyllod gives the same results (run through
# with-daemon.sh: a plain call goes through the daemon, PHYLLOME_NO_DAEMON=1
# works directly).  One boot of the tiny guest: each lifecycle command's
# output and exit status, and list/show/status compared both ways at each
# state; the same error sentences both ways.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
[ -n "${REAL_PHYLLO:-}" ] || skip_all "run through tests/integration/with-daemon.sh"
lc_new_home
a=d$$
lc_create "$a"

# both DESC ARGS...: the output (stdout + stderr) and exit status through
# the daemon and directly must match; "up: N s" is left out (it ticks).
both() {
  local desc=$1; shift
  local d n
  d=$("$PHYLLO" "$@" 2>&1; echo "rc=$?")
  n=$(PHYLLOME_NO_DAEMON=1 "$PHYLLO" "$@" 2>&1; echo "rc=$?")
  is "$(grep -v '^  up: ' <<<"$d")" "$(grep -v '^  up: ' <<<"$n")" "$desc: the same with and without phyllod"
}
compare_all() {
  both "list ($1)" list
  both "list --json ($1)" list --json
  both "status ($1)" status "$a"
  both "status --json ($1)" status "$a" --json
}

compare_all stopped
both "show" show "$a"
both "show --json" show "$a" --json
both "show of a missing VM" show nope
both "status of a missing VM" status nope
both "kill of a stopped VM" kill "$a"
both "pause of a stopped VM" pause "$a"

out=$("$PHYLLO" start "$a" 2>&1); rc=$?
is "$rc" 0 "start through phyllod succeeds"
like "$out" "VM '$a' started" "start says so"
like "$out" "phyllo: warning: .*TCG" "start prints the warnings phyllod returned"
# phyllod stays: it forks the monitor twice, so that no monitor is its
# child to reap (phyllo, which exits, forks once: see the direct start below).
mon=$("$PHYLLO" status "$a" --json | jq -r .monitor_pid)
parent=$(ps -o ppid= -p "$mon" 2>/dev/null | tr -d ' ')
pcomm=$(ps -o comm= -p "${parent:-0}" 2>/dev/null)
ok "$([ -n "$parent" ] && [ "$pcomm" != phyllod ]; echo $?)" "the monitor started through phyllod is not phyllod's child (parent $parent: $pcomm)"
lc_wait_log "$a" 'PHYLLOME-GUEST-READY'; ok $? "the guest reaches READY"
compare_all running
both "start of a running VM" start "$a"

is "$("$PHYLLO" pause "$a" 2>&1)" "VM '$a' paused" "pause through phyllod"
compare_all paused
is "$("$PHYLLO" resume "$a" 2>&1)" "VM '$a' resumed" "resume through phyllod"
is "$(lc_state "$a")" running "running again"

# "stopped", or "stopped (guest agent)" when the guest's agent was up in time.
like "$("$PHYLLO" stop "$a" --timeout 30 2>&1)" "^VM '$a' stopped( \\(guest agent\\))?$" "stop through phyllod"
is "$("$PHYLLO" stop "$a" 2>&1)" "VM '$a' is not running" "a second stop says it is not running"
compare_all "after stop"

# Direct start, then the daemon kills it: both ways act on the same VM.
out=$(PHYLLOME_NO_DAEMON=1 "$PHYLLO" start "$a" --paused 2>&1)
like "$out" "VM '$a' started \(paused\)" "a direct start"
mon=$("$PHYLLO" status "$a" --json | jq -r .monitor_pid)
is "$(ps -o sid= -p "$mon" 2>/dev/null | tr -d ' ')" "$mon" "a direct start's monitor leads its own session (one fork, setsid)"
is "$("$PHYLLO" status "$a" --json | jq -r .state)" paused "phyllod sees the directly started VM"
is "$("$PHYLLO" kill "$a" 2>&1)" "VM '$a' killed" "kill through phyllod"
compare_all killed

out=$("$PHYLLO" delete nope --yes 2>&1); rc=$?
n=$(PHYLLOME_NO_DAEMON=1 "$PHYLLO" delete nope --yes 2>&1); nrc=$?
is "$out rc=$rc" "$n rc=$nrc" "delete of a missing VM: the same with and without phyllod"
is "$("$PHYLLO" delete "$a" --yes 2>&1)" "deleted VM '$a'" "delete through phyllod"
is "$(PHYLLOME_NO_DAEMON=1 "$PHYLLO" list --json | jq length)" 0 "the VM is gone for the direct CLI too"
tap_done

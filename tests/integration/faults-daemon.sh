#!/usr/bin/env bash
# Crash safety of phyllod (issue 8): kill -9 of the phyllod serving this
# test's home at spread timings (0, 20, 80, 200 ms after the request is sent)
# during create, start, stop, snapshot create and clone, all sent over its
# socket with curl.  After each kill, first without a daemon
# (PHYLLOME_NO_DAEMON=1) and then through a restarted one: every definition
# reads back, no lock is stale, no QEMU/swtpm/monitor of this home is left
# that no VM claims, a VM booted before the kills keeps running and stays
# controllable, and status tells the truth.  One boot of the tiny guest; the
# start/stop faults use paused starts (QEMU without guest code).
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
command -v curl >/dev/null || skip_all "curl is not installed"
. "$(dirname "$0")/phyllod-lib.sh"
lc_new_home
S=$PHYLLOME_HOME/phyllod.sock
V=$PHYLLOME_HOME/vms
delays="0 0.02 0.08 0.2"
# The checks read the files directly, never through a (possibly dead) daemon.
direct() { PHYLLOME_NO_DAEMON=1 "$PHYLLO" "$@"; }

# req_kill DELAY METHOD PATH [BODY]: sends the request, kill -9 of phyllod
# DELAY s later; then waits for the helpers phyllod had started (qemu-img),
# so that none of their writes lands after the checks.
req_kill() {
  local delay=$1 m=$2 path=$3 body=${4:-} c kids k
  curl -s --max-time 60 --unix-socket "$S" -X "$m" ${body:+-H 'Content-Type: application/json' --data-binary "$body"} \
    -o /dev/null "http://localhost$path" &
  c=$!
  sleep "$delay"
  kids=$(cat /proc/"$PD_PID"/task/*/children 2>/dev/null)
  kill -9 "$PD_PID"; wait "$PD_PID" 2>/dev/null
  wait "$c" 2>/dev/null
  for k in $kids; do
    # A monitor outlives phyllod by design (it double-forks); wait only for the rest.
    grep -qx phyllo-monitor /proc/"$k"/comm 2>/dev/null || timeout 20 tail --pid="$k" -f /dev/null
  done
}
# Every VM in `list` and every vm.conf on disk reads back; prints the number broken.
defs_broken() {
  local bad=0 vm p
  for vm in $(direct list --json 2>/dev/null | jq -r '.[].name'); do
    direct show "$vm" >/dev/null 2>&1 || { diag "show fails: $vm"; bad=$((bad + 1)); continue; }
    for p in $(direct disk list "$vm" --json 2>/dev/null | jq -r '.[].path'); do
      qemu-img check -q -U "$p" >/dev/null 2>&1 || { diag "qemu-img check fails: $vm $p"; bad=$((bad + 1)); }
    done
  done
  for p in "$V"/*/vm.conf; do
    [ -e "$p" ] || continue
    direct show "$(basename "$(dirname "$p")")" >/dev/null 2>&1 || { diag "unreadable: $p"; bad=$((bad + 1)); }
  done
  direct list --json 2>/dev/null | jq -r '.[].name' | grep -E '^\.|#' | sed 's/^/half-made VM listed: /' | while read -r l; do diag "$l"; done
  bad=$((bad + $(direct list --json 2>/dev/null | jq -r '.[].name' | grep -cE '^\.|#')))
  echo "$bad"
}
# QEMU, swtpm and monitors of this home that no active VM claims (pids in
# its state.json while status says it is active); prints their count.
orphans() {
  local claimed=" " f vm st p n=0
  for f in "$PHYLLOME_HOME"/run/*/state.json; do
    [ -e "$f" ] || continue
    vm=$(basename "$(dirname "$f")")
    st=$(direct status "$vm" --json 2>/dev/null | jq -r .state)
    case $st in starting|running|paused|stopping) claimed+="$(jq -r '[.monitor_pid, .qemu_pid, .swtpm_pid] | join(" ")' "$f") " ;; esac
  done
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    grep -qxE 'qemu-system-x86|swtpm|phyllo-monitor' /proc/"$p"/comm 2>/dev/null || continue
    # Only this home's: its path is in their argv or their environment.
    { tr '\0' '\n' </proc/"$p"/cmdline; tr '\0' '\n' </proc/"$p"/environ; } 2>/dev/null |
      grep -qF -- "$PHYLLOME_HOME" || continue
    [ -n "$(tr -d '\0' </proc/"$p"/cmdline 2>/dev/null)" ] || continue   # a zombie
    [[ $claimed == *" $p "* ]] || { diag "orphan: $p $(tr '\0' ' ' </proc/"$p"/cmdline)"; n=$((n + 1)); }
  done
  echo "$n"
}
# The state status reports agrees with the processes: active iff its QEMU lives.
truthful() {
  local st q
  st=$(direct status "$1" --json | jq -r .state)
  q=$(jq -r .qemu_pid "$PHYLLOME_HOME/run/$1/state.json" 2>/dev/null)
  case $st in
    starting|running|paused|stopping) lc_alive "$q" ;;
    *) ! lc_alive "$q" || ! tr '\0' ' ' </proc/"$q"/cmdline | grep -q -- "-name guest=$1," ;;
  esac
}
lock_free() { [ ! -e "$PHYLLOME_HOME/run/$1/lock" ] || lc_lock_free "$1"; }
# After each kill: the checks without a daemon; the booted VM 'live' runs on.
after_kill() {
  local what=$1 d=$2 bad
  bad=$(defs_broken)
  [ "$bad" = 0 ] || diag "$what at ${d}s: $bad broken"
  total_bad=$((total_bad + bad))
  o=$(orphans); total_orphans=$((total_orphans + o))
  lc_alive "$live_q" && [ "$(direct status live --json | jq -r .state)" = running ] ||
    { diag "$what at ${d}s: 'live' is not running"; live_lost=$((live_lost + 1)); }
}

t0=$SECONDS
pd_start; ok $? "phyllod serves $S"
lc_create live
lc_create snap --disk 64M
# Clones come from a VM without snapshots (a linked clone refuses those).
lc_create src --disk 64M
r=$(curl -s --max-time 60 --unix-socket "$S" -X POST -o /dev/null -w '%{http_code}' http://localhost/v1/vms/live/start)
is "$r" 200 "start 'live' through phyllod"
live_q=$(lc_field live qemu_pid)
lc_wait_log live 'PHYLLOME-GUEST-READY'; ok $? "the guest of 'live' booted"
total_bad=0 total_orphans=0 live_lost=0

diag "boot: $((SECONDS - t0)) s"
# --- create ---
i=0
for d in $delays; do
  i=$((i + 1))
  req_kill "$d" POST /v1/vms "{\"name\": \"c$i\", \"profile\": \"linux\", \"kernel\": \"$GUEST/vmlinux\",
    \"initrd\": \"$GUEST/initrd.img\", \"append\": \"console=ttyS0\", \"display\": \"none\", \"memory\": \"256M\",
    \"cpus\": 1, \"uefi\": false, \"disk\": \"64M\"}"
  after_kill create "$d"
  # The next command tells the truth: c$i either is whole or can be made now.
  if [ -e "$V/c$i/vm.conf" ]; then direct show "c$i" >/dev/null 2>&1
  else lc_create "c$i" --disk 64M; fi || { diag "c$i after the kill is neither whole nor creatable"; total_bad=$((total_bad + 1)); }
  pd_start || diag "phyllod does not restart after the kill during create at ${d}s"
done
is "$total_bad" 0 "kill -9 of phyllod during 4 creates: every definition reads back, and each new VM is whole or can be made"

diag "create faults done: $((SECONDS - t0)) s"
# --- start (paused: QEMU without guest code) and stop (forced) ---
lc_vms+=(c1)
# With an emulated TPM, so that each start also runs a swtpm to be orphaned.
printf '\n[tpm]\ntype = emulated\n' >>"$V/c1/vm.conf"
swtpm_seen=0
for d in $delays; do
  req_kill "$d" POST /v1/vms/c1/start '{"paused": true}'
  # A start that had reached its monitor goes on: wait for it to settle.
  [ "$(direct status c1 --json | jq -r .state)" = starting ] && direct wait c1 --for paused --timeout 20 >/dev/null 2>&1
  truthful c1 || { diag "start at ${d}s: status of c1 disagrees with its QEMU"; total_bad=$((total_bad + 1)); }
  sw=$(lc_field c1 swtpm_pid 2>/dev/null)
  grep -qx swtpm /proc/"$sw"/comm 2>/dev/null && swtpm_seen=$((swtpm_seen + 1))
  after_kill start "$d"
  pd_start || diag "phyllod does not restart after the kill during start at ${d}s"
  # Through the new daemon: the kill during stop (of a paused VM, or of a
  # stopped one when the start was killed before it began).
  diag "start killed at ${d}s: c1 $(direct status c1 --json | jq -r .state)"
  req_kill "$d" POST /v1/vms/c1/stop '{"force": true}'
  direct wait c1 --for stopped --timeout 20 >/dev/null 2>&1
  truthful c1 || { diag "stop at ${d}s: status of c1 disagrees with its QEMU"; total_bad=$((total_bad + 1)); }
  after_kill stop "$d"
  direct stop c1 --force >/dev/null 2>&1
  is "$(direct status c1 --json | jq -r .state)" stopped "after kills during start and stop at ${d}s: stop works, c1 stopped"
  lock_free c1 || { diag "stale lock on c1 at ${d}s"; total_bad=$((total_bad + 1)); }
  pd_start || diag "phyllod does not restart after the kill during stop at ${d}s"
done
ok $([ "$swtpm_seen" -gt 0 ]; echo $?) "c1's swtpm ran after $swtpm_seen of the 4 killed starts"
is "$total_bad" 0 "kill -9 during start and stop: status agrees with the processes, no stale lock"

diag "start/stop faults done: $((SECONDS - t0)) s"
# --- snapshot create and clone (stopped VMs) ---
i=0
for d in $delays; do
  i=$((i + 1))
  req_kill "$d" POST /v1/vms/snap/snapshots "{\"name\": \"s$i\"}"
  after_kill snapshot "$d"
  pd_start || diag "phyllod does not restart after the kill during snapshot at ${d}s"
  req_kill "$d" POST /v1/vms/src/clone "{\"name\": \"k$i\"}"
  after_kill clone "$d"
  pd_start || diag "phyllod does not restart after the kill during clone at ${d}s"
done
is "$total_bad" 0 "kill -9 during 4 snapshot creates and 4 clones: every VM reads back, its disks check clean"
lock_free snap; ok $? "no stale lock on 'snap'"
# The next command tells the truth: each snapshot is listed whole or can be made now.
listed=$(direct snapshot list snap --json | jq -r '.[].name' | tr '\n' ' ')
inimg=$(qemu-img snapshot -U -l "$V/snap/disk-system.qcow2" | awk 'NR > 2 { print $2 }' | tr '\n' ' ')
diag "snapshots listed: [$listed], in the image: [$inimg]"
retry=0
for j in $(seq 1 "$i"); do
  if grep -qw "s$j" <<<"$listed"; then grep -qw "s$j" <<<"$inimg" || { diag "s$j listed, not in the image"; retry=1; }
  else direct snapshot create snap "s$j" >/dev/null 2>&1 || { diag "s$j can be made neither"; retry=1; }; fi
  if [ ! -e "$V/k$j/vm.conf" ]; then
    out=$(direct clone src "k$j" 2>&1) || { diag "clone k$j cannot be made after the kill: $out"; retry=1; }
  fi
done
is "$retry" 0 "every snapshot and clone killed half-way is whole or can be made by the next command"

diag "snapshot/clone faults done: $((SECONDS - t0)) s"
# --- results of every kill ---
is "$total_orphans" 0 "no QEMU, swtpm or monitor of this home was left unclaimed after any kill"
is "$live_lost" 0 "'live', started before the kills, ran through all of them"
# Through the (restarted) daemon: status, then a graceful stop interrupted too.
r=$(curl -s --max-time 30 --unix-socket "$S" http://localhost/v1/vms/live/status | jq -r .state)
is "$r" running "a restarted phyllod reports 'live' running"
req_kill 0.02 POST /v1/vms/live/stop '{"timeout": 30}'
direct wait live --for stopped --timeout 30 >/dev/null 2>&1
truthful live; ok $? "kill -9 during the stop of 'live': status agrees with its QEMU ($(direct status live --json | jq -r .state))"
direct stop live >/dev/null 2>&1; ok $? "the next stop of 'live' works"
is "$(direct status live --json | jq -r .state)" stopped "'live' is stopped"
lock_free live; ok $? "no stale lock on 'live'"
is "$(orphans)" 0 "no process of this home is left"
diag "faults-daemon ran in $((SECONDS - t0)) s"
tap_done

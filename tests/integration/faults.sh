#!/bin/bash
# Crash safety: kill -9 of phyllo, the monitor and QEMU at each step of
# create, start and stop, and a full disk during create.  Afterwards no
# definition is half-written, no lock is stale, no process of the VM is left,
# and the next command reports the true state.  (Issue 8; snapshot, clone,
# export and import faults: faults-store.sh; phyllod's kill -9: api.sh;
# 200 start/stop cycles through phyllod: cycles.sh in the 'slow' suite.)
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
lc_new_home

# Every defined VM reads back; returns the number of broken ones.
defs_sound() {
  local bad=0 d
  for d in "$PHYLLOME_HOME"/vms/*/; do
    [ -e "$d/vm.conf" ] || continue
    "$PHYLLO" show "$(basename "$d")" >/dev/null 2>&1 || { diag "broken: $d"; bad=$((bad + 1)); }
  done
  echo "$bad"
}
# QEMU processes of VM $1 still alive (found by their -name).
vm_procs() {
  local n=0 p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q -- "-name guest=$1," && n=$((n + 1))
  done
  echo "$n"
}

# --- kill -9 of phyllo during create: all or nothing ---
lc_create keep
before=$(cat "$PHYLLOME_HOME/vms/keep/vm.conf")
for i in $(seq 0 14); do
  "$PHYLLO" create "c$i" --profile linux --memory 256M --cpus 1 --display none --no-disk >/dev/null 2>&1 &
  p=$!
  # The fault's timing: spread over create's ~10 ms.
  sleep "0.00$((i % 10))"
  kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null
  # Replacing an existing VM must keep it whole too.
  "$PHYLLO" create keep --force --profile linux --memory 512M --cpus 1 --display none --no-disk >/dev/null 2>&1 &
  p=$!
  sleep "0.00$((i % 10))"
  kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null
done
is "$(defs_sound)" 0 "after 30 kill -9 during create every definition reads back"
"$PHYLLO" list >/dev/null 2>&1; ok $? "list works after the kills"
now=$(cat "$PHYLLOME_HOME/vms/keep/vm.conf")
ok $([ "$now" = "$before" ] || grep -q 'size = 512M' <<<"$now"; echo $?) "a replaced definition is the old one or the new one, whole"
# Recreate 'keep' as a bootable VM for what follows.
"$PHYLLO" delete keep --yes >/dev/null 2>&1
lc_create keep

# --- kill -9 of phyllo during start: the next command tells the truth ---
for delay in 0.01 0.05 0.2; do
  "$PHYLLO" start keep >/dev/null 2>&1 &
  p=$!
  sleep "$delay"
  kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null
  st=$(lc_state keep)
  like "$st" '^(starting|running|stopped|crashed)$' "kill -9 of 'phyllo start' after ${delay}s: status answers ($st)"
  "$PHYLLO" stop keep --force >/dev/null 2>&1
  is "$(lc_state keep)" stopped "then stop --force: stopped"
  is "$(vm_procs keep)" 0 "no QEMU of 'keep' is left"
  lc_lock_free keep; ok $? "the lock is free"
done

# --- kill -9 of the monitor and of QEMU while running ---
"$PHYLLO" start keep >/dev/null 2>&1; ok $? "start"
lc_wait_log keep 'PHYLLOME-GUEST-READY'; ok $? "the guest booted"
q=$(lc_field keep qemu_pid); m=$(lc_field keep monitor_pid)
kill -9 "$m"
"$PHYLLO" wait keep --for running --timeout 5 >/dev/null 2>&1
st=$("$PHYLLO" status keep --json)
is "$(jq -r .state <<<"$st")/$(jq -r .unsupervised <<<"$st")" running/true \
  "monitor killed: QEMU still runs, reported unsupervised"
"$PHYLLO" stop keep --force >/dev/null 2>&1; ok $? "stop --force of the unsupervised VM"
lc_alive "$q"; ok $([ $? -ne 0 ]; echo $?) "its QEMU is gone"
lc_lock_free keep; ok $? "the lock is free"

"$PHYLLO" start keep >/dev/null 2>&1; ok $? "start again"
q=$(lc_field keep qemu_pid); m=$(lc_field keep monitor_pid)
kill -9 "$q"
# The monitor sees QEMU's pidfd and records the crash; wait on the state.
"$PHYLLO" wait keep --for stopped --timeout 20 >/dev/null 2>&1
is "$(lc_state keep)" crashed "QEMU killed: status says crashed"
lc_alive "$m"; ok $([ $? -ne 0 ]; echo $?) "the monitor left with its QEMU"
lc_lock_free keep; ok $? "the lock is free"

# --- kill -9 of 'phyllo stop' while the guest powers off ---
"$PHYLLO" start keep >/dev/null 2>&1; ok $? "start for the stop faults"
lc_wait_log keep 'PHYLLOME-GUEST-READY'
"$PHYLLO" stop keep >/dev/null 2>&1 &
p=$!
sleep 0.05
kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null
"$PHYLLO" wait keep --for stopped --timeout 30 >/dev/null 2>&1
st=$(lc_state keep)
like "$st" '^(running|stopped)$' "kill -9 of 'phyllo stop': the stop already asked for goes on or the VM runs ($st)"
"$PHYLLO" stop keep --force >/dev/null 2>&1
is "$(vm_procs keep)" 0 "no QEMU of 'keep' is left"
lc_lock_free keep; ok $? "the lock is free"

# --- a full disk during create: a clear error, the previous state intact ---
if [ "$(id -u)" = 0 ] && command -v mount >/dev/null; then
  full=$(mktemp -d /tmp/phyllome-full.XXXXXX)
  if mount -t tmpfs -o size=2M tmpfs "$full" 2>/dev/null; then
    trap 'umount "$full" 2>/dev/null; rmdir "$full"; lc_cleanup' EXIT
    PHYLLOME_HOME=$full "$PHYLLO" create first --profile linux --memory 256M --cpus 1 --display none --no-disk >/dev/null 2>&1
    ok $? "create on the small disk"
    first=$(cat "$full/vms/first/vm.conf")
    dd if=/dev/zero of="$full/filler" bs=64k 2>/dev/null   # fills it: ENOSPC ends dd
    out=$(PHYLLOME_HOME=$full "$PHYLLO" create second --profile linux --memory 256M --cpus 1 --display none --no-disk 2>&1)
    rc=$?
    ok $([ $rc -ne 0 ]; echo $?) "create on a full disk fails"
    like "$out" "No space left on device" "and says why: $out"
    is "$(cat "$full/vms/first/vm.conf")" "$first" "the previous VM's definition is intact"
    ok $([ ! -e "$full/vms/second" ] && ! ls -A "$full/vms" | grep -q '^\.#'; echo $?) "nothing of the failed VM is left (no temp dir either)"
    out=$(PHYLLOME_HOME=$full "$PHYLLO" create first --force --profile linux --memory 512M --cpus 1 --display none --no-disk 2>&1)
    ok $([ $? -ne 0 ]; echo $?) "replacing a VM on a full disk fails"
    is "$(cat "$full/vms/first/vm.conf")" "$first" "and the old definition stays whole"
    umount "$full"; rmdir "$full"
    trap lc_cleanup EXIT
  else
    diag "cannot mount a tmpfs here: full-disk checks skipped"
  fi
else
  diag "not root: full-disk checks skipped (they mount a tmpfs)"
fi

tap_done

#!/bin/bash
# Live migration between two Phyllome homes on this machine (loopback, TCG):
# disks mirrored over NBD, then RAM and device state; one boot of the tiny
# guest serves a refused, a failed (destination killed) and a good migration.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
lc_new_home
HA=$PHYLLOME_HOME
HB=$(mktemp -d /tmp/phyllome-migrate-b.XXXXXX)
chmod 755 "$HB"
vm=m$$
# B's processes are killed by pid like A's (lc_cleanup reads A's home only).
cleanup_b() {
  local f=$HB/run/$vm/state.json p
  if [ -r "$f" ]; then
    for p in $(jq -r '.qemu_pid, .monitor_pid' "$f" 2>/dev/null); do
      [ "$p" -gt 0 ] 2>/dev/null || continue
      if tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q -- "-name guest=$vm," ||
         grep -qx 'phyllo-monitor' "/proc/$p/comm" 2>/dev/null; then kill -9 "$p" 2>/dev/null; fi
    done
  fi
  rm -rf "$HB"
  lc_cleanup
}
trap cleanup_b EXIT
A() { PHYLLOME_HOME=$HA "$PHYLLO" "$@"; }
B() { PHYLLOME_HOME=$HB "$PHYLLO" "$@"; }

lc_create "$vm" --disk 64M
A start "$vm" >/dev/null 2>&1; ok $? "the VM starts in home A"
lc_wait_log "$vm" 'PHYLLOME-GUEST-READY' 120; ok $? "it boots to the guest's READY marker"
# Console round trips on the home given by $1 (A or B).
guest() { local h=$HA; [ "$1" = B ] && h=$HB
          printf '%s; echo do""ne-%s\n' "$2" "$3" | PHYLLOME_HOME=$h "$PHYLLO" console "$vm" >/dev/null 2>&1
          PHYLLOME_HOME=$h timeout 30 "$PHYLLO" logs "$vm" --follow | grep -m1 -E "^\[console\] done-$3" >/dev/null; }
mark=mig-$$-$RANDOM
# The guest writes a marker to its disk (synced) and keeps one in a shell variable.
guest A "echo $mark | dd of=/dev/vda bs=512 conv=fsync 2>/dev/null; export PHYMARK=$mark" w1
ok $? "the guest wrote a marker to its disk and a shell variable"

# Refused: B already has a VM of that name; nothing of it is touched.
mkdir -p "$HB/vms/$vm"; touch "$HB/vms/$vm/keep"
out=$(A migrate "$vm" "$HB" 2>&1); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "a destination that has the VM already is refused"
like "$out" "already has a VM '$vm'" "the refusal names the VM"
ok $([ -e "$HB/vms/$vm/keep" ]; echo $?) "the destination's directory is left alone"
rm -rf "$HB/vms/$vm"
# Refused: a wildcard address (it would listen on every interface and is nowhere to connect to).
out=$(A migrate "$vm" "$HB" --address 0.0.0.0 2>&1); rc=$?
ok $([ $rc -ne 0 ] && [ ! -e "$HB/vms/$vm" ]; echo $?) "--address 0.0.0.0 is refused, nothing made in B"
like "$out" "'0\.0\.0\.0' is not an IPv4 address of this host" "the refusal names the address"

# Failed: the destination QEMU is killed while the memory is on its way
# (slowed down to 2 MiB/s so that it is caught mid-way).
log=$HB.progress
: >"$log"
A migrate "$vm" "$HB" --max-bandwidth 2M >/dev/null 2>"$log" &
mpid=$!
timeout 60 tail -n +1 -f "$log" | grep -m1 -q '^memory'
ok $? "the migration reports progress (disks, then memory)"
like "$(cat "$log")" "disks +100.0%" "the disk mirror reached 100% before the memory"
dq=$(jq -r .qemu_pid "$HB/run/$vm/state.json")
# Mid-way, the destination's NBD server (writable exports of the disks) and its
# incoming migration take only TLS clients holding this migration's key.
ports=$(ss -Htlnp | grep -F "pid=$dq," | awk '{print $4}' | sed 's/.*://' | sort -u | tr '\n' ' ')
diag "the destination QEMU listens on ports: $ports"
nbd_plain=0 tls_said=0
for p in $ports; do
  o=$(timeout 20 qemu-img info --image-opts "driver=nbd,host=127.0.0.1,port=$p,export=disk-system" 2>&1) && nbd_plain=1
  [[ $o == *TLS* ]] && tls_said=1
  diag "plain NBD client on $p: ${o//$'\n'/ }"
done
ok $([ -n "$ports" ] && [ $nbd_plain = 0 ]; echo $?) "a plain (non-TLS) NBD client cannot open the destination's disk export"
is "$tls_said" 1 "the NBD server says it requires TLS"
keys=$(ls "$HB/run/$vm"/mig-tls.*/keys.psk "$HA/run/$vm"/mig-tls.*/keys.psk 2>/dev/null)
is "$(stat -c %a $keys 2>/dev/null | sort -u | tr '\n' ' ')" "600 " "each side has its PSK file, mode 0600"
is "$(for k in $keys; do cut -d: -f2 "$k"; done | sort -u | wc -l)" 1 "both hold the same key (made for this migration)"
if lc_alive "$dq" && tr '\0' ' ' <"/proc/$dq/cmdline" | grep -q -- "-incoming defer"; then kill -9 "$dq"; fi
wait "$mpid"; rc=$?
ok $([ $rc -ne 0 ]; echo $?) "the migration fails when the destination dies"; diag "$(tail -n 2 "$log")"
like "$(tail -n 3 "$log")" "phyllo: .*(migration|destination|mirror)" "the error says what failed"
is "$(A status "$vm" --json | jq -r .state)" running "the VM still runs on A"
guest A "echo still-\$PHYMARK" w2; ok $? "A's guest still answers on its console"
like "$(A logs "$vm" | grep -c "^\[console\] still-$mark")" "^[1-9]" "with its shell variable"
ok $([ ! -e "$HB/vms/$vm" ]; echo $?) "nothing of the VM is left in home B"
ok $([ -z "$(ls -d "$HA/run/$vm"/mig-tls.* 2>/dev/null)" ]; echo $?) "the source's TLS key is removed"

# Good: the whole VM moves.
out=$(A migrate "$vm" "$HB" 2>"$log"); rc=$?
is "$rc" 0 "phyllo migrate to home B succeeds" || diag "$(cat "$log")"
like "$out" "migrated to '$HB': downtime [0-9]+ ms, total [0-9]+ ms" "the downtime is reported"
diag "$out"
is "$(B status "$vm" --json | jq -r .state)" running "the VM runs in home B"
ok $([ -z "$(ls -d "$HA/run/$vm"/mig-tls.* "$HB/run/$vm"/mig-tls.* 2>/dev/null)" ]; echo $?) "no TLS key is left on either side"
is "$(A status "$vm" --json | jq -r .state)" stopped "A's copy is stopped"
like "$(A status "$vm" --json | jq -r .error)" "^migrated to $HB" "A's status says where it went"
ok $([ -z "$(jq -r 'select(.qemu_pid > 0) | .qemu_pid' "$HA/run/$vm/state.json")" ]; echo $?) "no QEMU left on A"
guest B "echo moved-\$PHYMARK" w3; ok $? "the guest answers on B's console"
like "$(B logs "$vm" | grep -c "^\[console\] moved-$mark")" "^[1-9]" "with the shell variable set on A (its memory moved)"
# The disk on B holds what the guest wrote on A (read from the image, not the guest).
qemu-img convert -U -O raw "$HB/vms/$vm/disk-system.qcow2" "$HB/disk.raw"
is "$(head -c 512 "$HB/disk.raw" | head -n1 | tr -d '\0')" "$mark" "B's disk image holds the marker the guest wrote on A"
guest B "echo again > /tmp/x; cat /tmp/x" w4; ok $? "B's guest keeps running commands"
B stop "$vm" --force >/dev/null 2>&1; ok $? "the migrated VM stops in home B"

# Through phyllod (serving home B): the VM moves back to A, phyllo's progress
# lines come from phyllod's event stream ("event: migrate").
. "$(dirname "$0")/phyllod-lib.sh"
# Its kernel and initrd, still named in A's guest dir, are copied into its
# directory in B: a start takes boot files only from places B allows.
cp "$GUEST/vmlinux" "$GUEST/initrd.img" "$HB/vms/$vm/"
sed -i "s#$GUEST/#$HB/vms/$vm/#g" "$HB/vms/$vm/vm.conf"
out=$(B start "$vm" 2>&1); ok $? "the VM starts again in home B" || diag "$out"
A delete "$vm" --yes >/dev/null 2>&1; ok $? "A's stopped copy is deleted (the way back must be free)"
PHYLLOME_HOME=$HB pd_start; ok $? "a phyllod serves home B"
ev=$HB.events
curl -sN --max-time 300 --unix-socket "$HB/phyllod.sock" http://localhost/v1/events >"$ev" 2>/dev/null &
cpid=$!; tap_own_pid "$cpid"
timeout 10 tail -n +1 -f "$ev" | grep -m1 -q '^event: state'
out=$(PHYLLOME_HOME=$HB PHYLLOME_REQUIRE_DAEMON=1 "$PHYLLO" migrate "$vm" "$HA" --max-bandwidth 64M 2>"$log"); rc=$?
is "$rc" 0 "phyllo migrate through phyllod succeeds" || diag "$(cat "$log")"
like "$out" "migrated to '$HA': downtime [0-9]+ ms" "and reports the downtime"
like "$(cat "$log")" "disks +100.0%" "its progress lines (from phyllod's events) show the disks mirrored"
like "$(grep -c '^memory' "$log")" "^[1-9]" "and the memory sent"
kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
like "$(grep -A1 '^event: migrate' "$ev" | grep '^data:' | head -n1)" "\"name\":\"$vm\",\"phase\":\"[a-z]+\",\"done\":[0-9]+,\"total\":[0-9]+" \
     "GET /v1/events carried 'migrate' events: name, phase, done, total"
is "$(A status "$vm" --json | jq -r .state)" running "the VM runs in home A again"
kill "$PD_PID" 2>/dev/null
A stop "$vm" --force >/dev/null 2>&1; ok $? "and stops there"
rm -f "$ev"
rm -f "$log"
tap_done

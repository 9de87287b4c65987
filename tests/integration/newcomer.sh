#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What a newcomer trips over (issue 19), each item as the user met it: the
# run dir's modes whatever command comes first, one answer for a VM that
# does not exist, sizes without a unit, a forced power-off said as such,
# unknown API fields, help for every command.  Runs with and without phyllod
# (newcomer-with-daemon): the same answers either way.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
command -v qemu-img >/dev/null || skip_all "qemu-img is not installed (Debian: qemu-utils)"
lc_new_home
H=$PHYLLOME_HOME

# ---- 1: directories made in one place, with one mode, whoever comes first ----
lc_create a
"$PHYLLO" wait a --for stopped --timeout 1 >/dev/null
ok $? "wait before the first start: the VM is stopped"
is "$(stat -c %a "$H/run")" 755 "wait made <home>/run as start makes it (0755)"
is "$(stat -c %a "$H/run/a")" 700 "... and the VM's run dir 0700"
out=$("$PHYLLO" start a 2>&1)
ok $? "a start after that wait succeeds"
like "$out" "VM 'a' started" "... and says so"
"$PHYLLO" kill a >/dev/null 2>&1
"$PHYLLO" wait a --for stopped --timeout 30 >/dev/null
# An older phyllo's wait left <home>/run 0700: the next command repairs it.
chmod 700 "$H/run"
"$PHYLLO" wait a --for stopped --timeout 1 >/dev/null
is "$(stat -c %a "$H/run")" 755 "a <home>/run left 0700 by an older wait is opened again"
"$PHYLLO" wait nosuch --for stopped --timeout 1 >/dev/null 2>&1
is "$?" 1 "wait for a VM that does not exist fails"
ok "$(test ! -e "$H/run/nosuch"; echo $?)" "... and leaves no run/nosuch behind"
"$PHYLLO" logs nosuch --follow >/dev/null 2>&1
ok "$(test ! -e "$H/run/nosuch"; echo $?)" "logs --follow of no VM leaves no run/nosuch either"

# A start that fails leaves 'failed' with the reason, not 'stopped'.
if [ "$(id -u)" = 0 ]; then
  cp "$GUEST/vmlinux" "$H/guest/vmlinux-b"
  lc_create b --kernel "$H/guest/vmlinux-b"
  chmod 600 "$H/guest/vmlinux-b"   # QEMU runs as another user: it cannot read it
  "$PHYLLO" start b >/dev/null 2>&1
  is "$?" 1 "a start QEMU's user cannot complete fails"
  st=$("$PHYLLO" status b --json)
  is "$(jq -r .state <<<"$st")" failed "status says failed after a failed start"
  like "$(jq -r .error <<<"$st")" "vmlinux-b" "... with the reason, naming the file"
  like "$("$PHYLLO" status b)" "error: .*vmlinux-b" "status (text) shows the error"
  chmod 644 "$H/guest/vmlinux-b"
  # ---- 16: --json on the action commands: the API's result object ----
  out=$("$PHYLLO" start b --json 2>/dev/null)
  ok $? "once repaired, the VM starts"
  is "$(jq -r '"\(.name) \(.action) \(.state)"' <<<"$out")" "b start running" "start --json: the result object"
  is "$(lc_state b)" running "... and runs"
  out=$("$PHYLLO" stop b --force --json 2>/dev/null)
  is "$(jq -r '"\(.action) \(.state) \(.stopped_by) \(.forced)"' <<<"$out")" "stop stopped sigterm false" \
     "stop --force --json: the result object"
else
  ok 0 "# SKIP a failed start as another user needs root"
fi

# ---- 4: one mistake, one answer: 'no VM named' and exit 1 from every command ----
want="phyllo: no VM named 'nosuch' (looked in $H/vms)"
while read -r cmd; do
  [ -n "$cmd" ] || continue
  # shellcheck disable=SC2086
  out=$("$PHYLLO" $cmd 2>&1 </dev/null >/dev/null); rc=$?
  is "$rc:$out" "1:$want" "phyllo $cmd: no VM named, exit 1"
done <<'EOF'
start nosuch
stop nosuch
stop nosuch --force
kill nosuch
restart nosuch
pause nosuch
resume nosuch
status nosuch
status nosuch --repair
console nosuch
view nosuch
logs nosuch
wait nosuch --for stopped --timeout 1
wait nosuch --for running --timeout 1
show nosuch
argv nosuch
disk list nosuch
disk add nosuch --size 1G
snapshot list nosuch
snapshot create nosuch s1
net forward list nosuch
share list nosuch
device list nosuch
device give-back nosuch
usb attach nosuch 1234:5678
clone nosuch other
EOF
ok "$(test ! -e "$H/run/nosuch"; echo $?)" "none of them made run/nosuch"

# ---- 16: --json on create, clone, snapshot create ----
is "$("$PHYLLO" create j1 --profile linux --disk 1 --display none --json 2>/dev/null | jq -r '"\(.name) \(.profile)"')" \
   "j1 linux" "create --json: the result object"
is "$("$PHYLLO" clone j1 j2 --json 2>/dev/null | jq -r '"\(.name) \(.clone) \(.full)"')" "j1 j2 false" \
   "clone --json: the result object"
is "$("$PHYLLO" snapshot create j1 sj --json 2>/dev/null | jq -r '"\(.name) \(.snapshot)"')" "j1 sj" \
   "snapshot create --json: the result object"
# ---- 15: messages say only what the VM has ----
is "$("$PHYLLO" clone j1 j3 --full 2>&1)" "cloned VM 'j1' to 'j3' (full copy)" "clone of a VM without a TPM says nothing of a TPM"
is "$("$PHYLLO" snapshot revert j1 sj 2>&1)" "VM 'j1' is back at snapshot 'sj' (disks)" \
   "revert lists only what the snapshot held (no UEFI vars yet, no TPM)"
# create's refusals name the options the user typed, not only the definition's keys.
out=$("$PHYLLO" create w1 --profile windows11 --cpus 1 --memory 8G --no-disk 2>&1); rc=$?
is "$rc" 2 "create windows11 --cpus 1 is refused"
like "$out" "\[cpu\] cores = 2 or more \(you gave --cpus 1\)$" "... naming --cpus 1, the option typed"
out=$("$PHYLLO" create w1 --profile linux --memory 1M --no-disk 2>&1)
like "$out" "\(you gave --memory 1M\)$" "a refused --memory is named as typed"
out=$("$PHYLLO" create w1 --profile linux --gpu virgl --display vnc --no-disk 2>&1)
like "$out" "\(you gave --gpu virgl, --display vnc\)$" "a GPU and display that do not go together: both options named"
out=$("$PHYLLO" create w1 --profile windows11 --disk 10G 2>&1)
like "$out" "\(you gave --disk 10G\)$" "a too small --disk is named"
ok "$(test ! -e "$H/vms/w1"; echo $?)" "none of the refused creates left a VM"

# ---- 3: sizes without a unit: MiB of memory, GiB of disk; 8G = 8GB = 8gb = 8GiB ----
vsize() { qemu-img info --output=json "$H/vms/$1/disk-$2.qcow2" | jq -r '."virtual-size"'; }
"$PHYLLO" create s1 --profile linux --memory 300 --disk 1 --display none >/dev/null
ok $? "create --memory 300 --disk 1 succeeds"
is "$("$PHYLLO" show s1 --json | jq -r .memory.size)" $((300 << 20)) "--memory 300 is 300 MiB"
is "$(vsize s1 system)" $((1 << 30)) "--disk 1 is a 1 GiB disk"
"$PHYLLO" create s2 --profile linux --memory 1gb --disk 1GB --display none >/dev/null
ok $? "create --memory 1gb --disk 1GB succeeds"
is "$("$PHYLLO" show s2 --json | jq -r .memory.size)" $((1 << 30)) "--memory 1gb is 1 GiB"
is "$(vsize s2 system)" $((1 << 30)) "--disk 1GB is 1 GiB"
"$PHYLLO" disk add s1 --size 1 --name extra >/dev/null
ok $? "disk add --size 1"
is "$(vsize s1 extra)" $((1 << 30)) "... is 1 GiB"
"$PHYLLO" disk resize s1 extra 2 >/dev/null
ok $? "disk resize 2 grows (not 'would shrink it')"
is "$(vsize s1 extra)" $((2 << 30)) "... to 2 GiB"
"$PHYLLO" disk resize s1 extra 2GiB >/dev/null && "$PHYLLO" disk resize s1 extra 2G >/dev/null
ok $? "2GiB and 2G name the same size (nothing to do)"
out=$("$PHYLLO" create s3 --profile linux --memory 2x 2>&1); rc=$?
is "$rc" 2 "a size with an unknown unit is a usage error"
like "$out" "bare number is MiB" "... saying what a bare number means"
# In vm.conf a bare number is refused with the units to use (docs/vm-format.md);
# phyllo writes a size that is no whole KiB with a B.
sed -i 's/^size = 300M$/size = 300/' "$H/vms/s1/vm.conf"
out=$("$PHYLLO" show s1 2>&1); rc=$?
is "$rc" 2 "a vm.conf with 'size = 300' is refused"
like "$out" "size '300' for key 'size' in section \[memory\] has no unit; write 300M \(MiB\) or 300G \(GiB\)" \
     "... naming the line's key and the units to use"
sed -i 's/^size = 300$/size = 300M/' "$H/vms/s1/vm.conf"
"$PHYLLO" create s4 --profile linux --memory 256M --disk 1536B --display none >/dev/null
ok $? "create --disk 1536B (bytes, said so)"
like "$(grep -A3 '^\[disk system\]' "$H/vms/s4/vm.conf")" "size = 1536B" "vm.conf says 1536B, not a bare 1536"
"$PHYLLO" show s4 >/dev/null; ok $? "... which reads back"

# ---- 5: CPUs are overcommitted with a plain warning; memory messages in one unit ----
budget=$("$PHYLLO" host check --json 2>/dev/null | jq -r .budget.vm_cpus_max)
if [ "$budget" -ge 1 ] 2>/dev/null && [ "$((budget + 1))" -le "$(nproc)" ]; then
  out=$("$PHYLLO" create over --profile linux --cpus $((budget + 1)) --no-disk --display none 2>&1); rc=$?
  is "$rc" 0 "create --cpus $((budget + 1)) over a budget of $budget succeeds (CPUs time-share)"
  like "$out" "warning: the VM gets $((budget + 1)) vCPUs, more than the $budget CPU.*overcommitted" \
       "... with a warning saying CPUs are overcommitted"
else
  ok 0 "# SKIP a VM over the CPU budget needs a host with more CPUs than its budget ($budget of $(nproc))"
  ok 0 "# SKIP (the same)"
fi
out=$("$PHYLLO" create huge --profile linux --memory 64T --no-disk --display none 2>&1); rc=$?
is "$rc" 2 "create --memory 64T over the budget is refused"
like "$out" "budget of [0-9]+ (MiB|GiB) \\([0-9]+ (MiB|GiB) total, [0-9]+ (MiB|GiB) kept for the host\\)" \
     "... its figures in one unit"
like "$out" "--memory" "... naming the flag to change"

# ---- 13: destructive commands ask on a terminal, refuse without one unless --yes ----
"$PHYLLO" create gone --profile linux --disk 1 --display none >/dev/null
out=$("$PHYLLO" delete gone 2>&1 </dev/null); rc=$?
is "$rc" 2 "delete without a terminal and without --yes is refused (exit 2)"
like "$out" "no terminal to ask on.*--yes" "... saying to add --yes"
ok "$(test -f "$H/vms/gone/vm.conf"; echo $?)" "... and the VM is still there"
out=$(echo n | script -qec "$PHYLLO delete gone" /dev/null 2>&1); rc=$?
like "$out" "delete VM 'gone' with its disks.*\\[y/N\\]" "on a terminal, delete asks what it will delete"
ok "$(test -f "$H/vms/gone/vm.conf"; echo $?)" "... and 'n' keeps the VM"
out=$("$PHYLLO" disk remove gone system 2>&1 </dev/null); rc=$?
is "$rc" 2 "disk remove without a terminal and without --yes is refused"
like "$out" "delete its image '.*disk-system.qcow2'" "... naming the image it would delete"
ok "$(test -f "$H/vms/gone/disk-system.qcow2"; echo $?)" "... which is still there"
echo keep >"$H/exists.bundle"
out=$("$PHYLLO" export gone "$H/exists.bundle" 2>&1 </dev/null); rc=$?
is "$rc" 2 "export over an existing file without --yes is refused"
is "$(cat "$H/exists.bundle")" keep "... and the file is untouched"
"$PHYLLO" export gone "$H/exists.bundle" --yes >/dev/null 2>&1
ok $? "export --yes replaces it"
echo y | script -qec "$PHYLLO delete gone" /dev/null >/dev/null 2>&1
ok "$(test ! -e "$H/vms/gone"; echo $?)" "on a terminal, 'y' deletes the VM"
"$PHYLLO" create gone2 --profile linux --no-disk --display none >/dev/null
"$PHYLLO" delete gone2 --yes </dev/null >/dev/null 2>&1
ok "$(test ! -e "$H/vms/gone2"; echo $?)" "delete --yes needs no terminal"

# ---- 12: refused edits leave one copy, not one each ----
printf '#!/bin/sh\nprintf "\\n[cpu]\\ncpus = 2\\n" >>"$1"\n' >"$H/ed-bad"; chmod 755 "$H/ed-bad"
for i in 1 2 3; do EDITOR=$H/ed-bad "$PHYLLO" edit s1 >/dev/null 2>&1 </dev/null; done
is "$(ls "$H/vms/s1" | grep -c '^vm.conf.edit\.')" 1 "three refused edits leave one edited copy"
printf '#!/bin/sh\nprintf "\\n[sound]\\ntype = none\\n" >>"$1"\n' >"$H/ed-good"; chmod 755 "$H/ed-good"
EDITOR=$H/ed-good "$PHYLLO" edit s1 >/dev/null 2>&1 </dev/null; ok $? "a good edit saves"
is "$(ls "$H/vms/s1" | grep -c '^vm.conf.edit\.')" 0 "... and removes the copy a refused edit left"
out=$(printf 'y\n' | EDITOR=$H/ed-bad script -qec "$PHYLLO edit s2" /dev/null 2>&1 | tr -d '\r')
like "$out" "Edit again\\? \\[Y/n\\]" "on a terminal a refused edit is offered again"

# ---- 8: the same answer with and without phyllod (newcomer-with-daemon runs this too) ----
"$PHYLLO" export s2 "$H/s2.bundle" >/dev/null 2>&1
ok $? "export s2"
size=$(stat -c %s "$H/s2.bundle")
for cut in $((size - 40)) $((size / 2)) 100; do
  head -c "$cut" "$H/s2.bundle" >"$H/cut.bundle"
  out=$("$PHYLLO" import "$H/cut.bundle" --name cut 2>&1); rc=$?
  is "$rc" 2 "a bundle cut at $cut of $size bytes is a usage error (exit 2)"
  like "$out" "truncated or damaged|cannot read the bundle" "... saying so"
  ok "$(test ! -e "$H/vms/cut"; echo $?)" "... and no VM 'cut' appears"
done
is "$("$PHYLLO" list --json | jq -r 'type')" array "list --json prints the array GET /v1/vms wraps as {\"vms\": [...]}"

# ---- 2: a forced power-off is said as such, with its own exit status ----
lc_create deaf --append "console=ttyS0 phyllome.noacpi"
out=$("$PHYLLO" start deaf 2>&1 >/dev/null)
like "$out" "software emulation \\(TCG\\)" "(15) the first start warns about TCG"
"$PHYLLO" start a >/dev/null 2>&1
lc_wait_log deaf 'PHYLLOME-GUEST-READY'; ok $? "a guest that ignores the power button booted"
out=$("$PHYLLO" stop deaf --timeout 2 2>/dev/null); rc=$?
is "$rc" 3 "stop of a VM that did not shut down in time exits 3"
is "$out" "VM 'deaf' did not shut down within 2 s; it was terminated (SIGTERM)" "... and says how it ended"
is "$("$PHYLLO" status deaf --json | jq -r .stopped_by)" sigterm "status --json: stopped_by sigterm"
like "$("$PHYLLO" status deaf)" "last stop: +terminated \\(SIGTERM\\)" "status says the last stop terminated it"
lc_wait_log a 'PHYLLOME-GUEST-READY'; ok $? "a guest that takes the power button booted"
# ---- 9: a forward added to a running passt VM is pending, not shown as live ----
port=$((20000 + $$ % 20000))
out=$("$PHYLLO" net forward add a "tcp:$port:80" 2>&1)
like "$out" "applies at the next start" "forward add on a running passt VM says when it applies"
like "$("$PHYLLO" net forward list a)" "tcp 127.0.0.1:$port -> guest port 80 \\(pending: applies at the next start\\)" \
     "net forward list marks it pending"
is "$("$PHYLLO" net forward list a --json | jq -r ".[] | select(.host_port == $port) | .live")" pending \
   "net forward list --json: live pending"
out=$("$PHYLLO" net forward add a tcp:22:22 2>&1); rc=$?
is "$rc" 2 "a forward of privileged host port 22 is refused at add"
like "$out" "host port 22 .* privileged \\(below [0-9]+\\).*unprivileged user.*tcp:2022:22" "... naming the reason and a port that works"
ok "$(! "$PHYLLO" net forward list a | grep -q ':22 '; echo $?)" "... and not stored"
out=$("$PHYLLO" create priv --profile linux --no-disk --display none --forward tcp:80:80 2>&1); rc=$?
is "$rc:$(test -e "$H/vms/priv"; echo $?)" "2:1" "create --forward tcp:80:80 is refused, no VM made"
like "$out" "--forward tcp:80:80: host port 80" "... naming the flag"
"$PHYLLO" snapshot create a live1 >/dev/null 2>&1; ok $? "a live snapshot of the running VM"
# ---- 12: editing a running VM says when the change applies ----
printf '#!/bin/sh\nprintf "\\n[sound]\\ntype = none\\n" >>"$1"\n' >"$H/ed-sound"; chmod 755 "$H/ed-sound"
out=$(EDITOR=$H/ed-sound "$PHYLLO" edit a 2>&1 </dev/null)
like "$out" "VM 'a' is running: the change applies at its next start" "edit of a running VM says when it applies"
out=$("$PHYLLO" stop a 2>/dev/null); rc=$?
is "$rc:$out" "0:VM 'a' stopped" "a clean stop exits 0 and says stopped"
is "$("$PHYLLO" status a --json | jq -r .stopped_by)" acpi "status --json: stopped_by acpi"
like "$("$PHYLLO" status a)" "last stop: +the guest shut down on the power button" "status says how"

# ---- 7: a revert checks that it can complete before it changes anything ----
"$PHYLLO" disk add a --size 1 --name late >/dev/null; ok $? "a disk added after the live snapshot"
"$PHYLLO" snapshot create a s2 >/dev/null; ok $? "an offline snapshot with that disk"
sum=$(sha256sum <"$H/vms/a/disk-system.qcow2")
out=$("$PHYLLO" snapshot revert a live1 2>&1); rc=$?
is "$rc" 1 "reverting the live snapshot with a disk it does not have fails"
like "$out" "disk 'late' came after it; nothing was changed" "... before it changes anything, naming the disk"
is "$(sha256sum <"$H/vms/a/disk-system.qcow2")" "$sum" "... and the system disk is as it was"
is "$(lc_state a)" stopped "... and the VM was not started"
"$PHYLLO" disk remove a late --yes >/dev/null; ok $? "the late disk removed"
is "$("$PHYLLO" snapshot list a --json | jq -r '.[] | select(.name == "s2") | .revertible')" false \
   "snapshot list says s2 (which held the removed disk) cannot be reverted"
like "$("$PHYLLO" snapshot list a)" "cannot be reverted: .*'late'" "... in its text too"
out=$("$PHYLLO" start deaf 2>&1 >/dev/null)
ok "$([[ $out != *"software emulation"* ]]; echo $?)" "(15) a later start does not warn about TCG again"
out=$("$PHYLLO" stop deaf --force 2>/dev/null); rc=$?
is "$rc:$out" "0:VM 'deaf' stopped (forced: SIGTERM)" "stop --force exits 0, saying it was forced"
"$PHYLLO" start deaf >/dev/null 2>&1
"$PHYLLO" kill deaf >/dev/null 2>&1

# ---- 11: status says where the display is; view of a VNC VM is no dead end ----
lc_create vn --display vnc
"$PHYLLO" start vn >/dev/null 2>&1; ok $? "a VNC VM starts"
addr=$("$PHYLLO" status vn --json | jq -r .display.address)
like "$addr" "^127\\.0\\.0\\.1:59[0-9][0-9]$" "status --json: the VNC address QEMU listens on ($addr)"
like "$("$PHYLLO" status vn)" "display: +vnc://$addr" "status shows it"
like "$("$PHYLLO" status vn)" "sound: " "status shows the sound backend"
# A PATH without remote-viewer, but with bash (the -with-daemon run's phyllo
# is a bash shim).
mkdir -p "$PHYLLOME_HOME/nobin" && ln -sf "$(command -v bash)" "$PHYLLOME_HOME/nobin/bash"
out=$(PATH=$PHYLLOME_HOME/nobin "$PHYLLO" view vn 2>&1)
like "$out" "connect any VNC viewer to $addr" "view without remote-viewer names the VNC address"
"$PHYLLO" kill vn >/dev/null 2>&1
is "$("$PHYLLO" status deaf --json | jq -r .stopped_by)" kill "after phyllo kill: stopped_by kill"

tap_done

#!/bin/bash
# The QEMU guest agent: Debian 12's real qemu-ga in the tiny guest
# (extras.img, phyllome.qga), one boot.  Status shows the guest's addresses
# from the agent; a live snapshot freezes and thaws the guest's ext4
# filesystem (phyllome.ext4); stop --mode agent is refused while the VM is
# paused and leaves it running; a plain stop ends the VM through the agent
# although the guest ignores the ACPI power button (phyllome.noacpi).
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
[ -r "$G/extras.img" ] || skip_all "the test guest has no extras.img (run tests/guest/build.sh)"
lc_new_home
t0=$SECONDS

# The kernel unpacks the second archive over the first: qemu-ga and ext4.
cat "$GUEST/initrd.img" "$G/extras.img" >"$GUEST/initrd-agent.img"
chmod 644 "$GUEST/initrd-agent.img"
vm=qga$$
lc_vms+=("$vm")
"$PHYLLO" create "$vm" --profile linux --kernel "$GUEST/vmlinux" --initrd "$GUEST/initrd-agent.img" \
  --append "console=ttyS0 phyllome.qga phyllome.noacpi phyllome.ext4=/dev/vda:/mnt/data" \
  --display none --memory 256M --cpus 1 --no-uefi --disk 64M >/dev/null
ok $? "create a VM with the agent channel"
like "$("$PHYLLO" show "$vm")" 'agent = on' "the linux profile has the agent channel"

"$PHYLLO" start "$vm" >/dev/null
ok $? "start"
lc_wait_log "$vm" 'PHYLLOME-GUEST-READY' 90
ok $? "the guest is up"
logs=$("$PHYLLO" logs "$vm")
like "$logs" 'PHYLLOME-GUEST-QGA /dev/vport[0-9]+p[0-9]+' "qemu-ga runs on the agent's port in the guest"
like "$logs" 'PHYLLOME-GUEST-EXT4 /dev/vda ok' "the guest has an ext4 filesystem to freeze"

st=$("$PHYLLO" status "$vm" --json)
is "$(jq -r '.guest_interfaces[] | select(.name == "lo") | .addresses[]' <<<"$st" | grep -c '^127\.0\.0\.1/8$')" 1 \
  "status shows the guest's lo address 127.0.0.1/8 from the agent" || diag "$st"

out=$("$PHYLLO" snapshot create "$vm" s1 2>&1)
ok $? "a snapshot of the running VM" || diag "$out"
is "$("$PHYLLO" snapshot list "$vm" --json | jq -c '.[] | select(.name == "s1") | .fsfreeze')" \
  '{"frozen":1,"thawed":1}' "the snapshot froze the guest's filesystem through the agent and thawed it after"
is "$(lc_state "$vm")" running "the VM runs on after the snapshot"
# The agent answers again once the guest runs on.
is "$("$PHYLLO" status "$vm" --json | jq -r '.guest_interfaces | length > 0')" true \
  "the agent still answers after the thaw"

# A snapshot killed between freeze and thaw: the guest stays frozen (qemu-ga
# never thaws by itself) with the mark of a process that is gone.  Made here
# by freezing over the agent's socket directly; the next snapshot thaws first.
qga() {  # qga COMMAND: one agent command after a guest-sync; prints its reply line
  python3 - "$PHYLLOME_HOME/run/$vm/qga.sock" "$1" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])
f = s.makefile("rwb")
f.write(b'{"execute":"guest-sync","arguments":{"id":4711}}\n'); f.flush()
while b"4711" not in f.readline(): pass
f.write(json.dumps({"execute": sys.argv[2]}).encode() + b"\n"); f.flush()
print(f.readline().decode().strip())
PY
}
is "$(qga guest-fsfreeze-freeze)" '{"return": 1}' "the guest's filesystem frozen behind phyllo's back"
true & gone=$!; wait "$gone"
echo "$gone" >"$PHYLLOME_HOME/run/$vm/fsfrozen"
out=$("$PHYLLO" snapshot create "$vm" s2 2>&1); ok $? "the next snapshot" || diag "$out"
is "$("$PHYLLO" snapshot list "$vm" --json | jq -c '.[] | select(.name == "s2") | .fsfreeze')" \
  '{"frozen":1,"thawed":1}' "it thawed the abandoned freeze first, then froze and thawed as usual"
is "$(qga guest-fsfreeze-status)" '{"return": "thawed"}' "the guest is thawed"
ok $([ ! -e "$PHYLLOME_HOME/run/$vm/fsfrozen" ]; echo $?) "and no freeze mark is left"

"$PHYLLO" pause "$vm" >/dev/null
out=$("$PHYLLO" stop "$vm" --mode agent 2>&1); rc=$?
ok $((rc == 0)) "stop --mode agent of a paused VM fails (its agent cannot answer)"
like "$out" "is paused, so its guest agent cannot answer" "and says why"
is "$(lc_state "$vm")" paused "the refused stop leaves the VM as it was"
"$PHYLLO" resume "$vm" >/dev/null
like "$("$PHYLLO" stop "$vm" --mode bogus 2>&1)" "--mode takes acpi or agent, not 'bogus'" "an unknown --mode is refused"

# The guest ignores the power button: only the agent can end it in time.
s=$SECONDS
out=$("$PHYLLO" stop "$vm" --timeout 40 2>&1)
ok $? "stop" || diag "$out"
is "$out" "VM '$vm' stopped (guest agent)" "the default stop went through the guest agent"
ok $((SECONDS - s >= 30)) "well before the timeout and the SIGTERM after it ($((SECONDS - s)) s)"
like "$("$PHYLLO" logs "$vm")" 'PHYLLOME-GUEST-AGENT-SHUTDOWN poweroff' \
  "the guest's shutdown ran from qemu-ga's guest-shutdown (mode powerdown)"
is "$(lc_state "$vm")" stopped "the VM is stopped"
is "$(lc_sockets "$vm")" 0 "no sockets are left"
diag "agent test: $((SECONDS - t0)) s"
tap_done

#!/usr/bin/env bash
# The verbs phyllod gained with src/ops (issue 13), through a real phyllod,
# the real QEMU and one boot of the tiny guest: the serial console as an HTTP
# Upgrade (typed into through the API, the echo read back), the SPICE display
# (its socket answers SPICE's link reply "REDQ"), USB hot-plug, logs; then on
# the stopped VM disks, snapshots, shares, NICs, forwards, edit and wait, each
# phyllo command served by phyllod (PHYLLOME_REQUIRE_DAEMON) and printing what
# the direct way prints; PCI devices through a phyllod with a fixture root.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
command -v curl >/dev/null || skip_all "curl is not installed"
command -v python3 >/dev/null || skip_all "python3 is not installed"
. "$(dirname "$0")/phyllod-lib.sh"
lc_new_home
S=$PHYLLOME_HOME/phyllod.sock
D() { PHYLLOME_REQUIRE_DAEMON=1 "$PHYLLO" "$@"; }
N() { PHYLLOME_NO_DAEMON=1 "$PHYLLO" "$@"; }
# both DESC ARGS...: the same output and status through phyllod and directly.
both() {
  local desc=$1; shift
  is "$(D "$@" 2>&1; echo "rc=$?")" "$(N "$@" 2>&1; echo "rc=$?")" "$desc: the same through phyllod and directly"
}
api() {
  local out
  out=$(curl -s --max-time 60 --unix-socket "$S" -X "$1" ${3:+-H 'Content-Type: application/json' --data-binary "$3"} \
        -w '\n%{http_code}' "http://localhost$2")
  echo "${out##*$'\n'} ${out%$'\n'*}"
}
t0=$SECONDS
# A directory to share: outside the Phyllome home, under phyllod's $HOME (a
# directory a definition may name files in, per user).
SHAREHOME=$(mktemp -d /tmp/phyllome-test-sharehome.XXXXXX)
trap 'rm -rf "$SHAREHOME"; lc_cleanup' EXIT
export HOME=$SHAREHOME
pd_start; ok $? "phyllod starts"

v=v$$
lc_vms+=("$v")
out=$(D create "$v" --profile linux --kernel "$GUEST/vmlinux" --initrd "$GUEST/initrd.img" --append "console=ttyS0" \
      --display spice --memory 256M --cpus 1 --no-uefi 2>&1)
like "$out" "created VM '$v' \(profile linux: 1 vCPU, 256M memory, [0-9]+G disk\) in $PHYLLOME_HOME/vms/$v" \
     "create through phyllod"
# A relative path: phyllo makes it absolute against its own directory; the API refuses one.
out=$(cd "$GUEST" && D create rel$$ --profile linux --no-disk --kernel vmlinux 2>&1); rc=$?
lc_vms+=(rel$$)
is "$rc" 0 "create --kernel with a relative path through phyllod: $out"
is "$(D show rel$$ --json | jq -r .boot.kernel)" "$GUEST/vmlinux" "recorded as the absolute path"
r=$(api POST /v1/vms '{"name": "rel2", "profile": "linux", "no_disk": true, "kernel": "vmlinux"}')
is "${r%% *}" 400 "the API refuses a relative kernel path"
is "$(jq -r .error.message <<<"${r#* }")" "the kernel 'vmlinux' must be an absolute path" "saying so"
D delete rel$$ --yes >/dev/null

out=$(D start "$v" 2>&1); is "$?" 0 "start through phyllod"
lc_wait_log "$v" 'PHYLLOME-GUEST-READY' 120; ok $? "the guest is ready"

# ---- the console: HTTP Upgrade, then raw bytes both ways
tag=$RANDOM$$
out=$(pd_console "/v1/vms/$v/console" "$tag")
like "$out" "^101" "GET /v1/vms/$v/console with Upgrade: 101 Switching Protocols"
like "$out" "echo: yes" "what was typed through the API reached the guest's shell and its echo came back"
r=$(api GET "/v1/vms/$v/console")
is "${r%% *}" 400 "the console without an Upgrade: 400"
like "$(jq -r .error.message <<<"${r#* }")" "Upgrade: phyllome-console" "naming the Upgrade to send"
r=$(curl -s --max-time 10 --unix-socket "$S" -H 'Connection: Upgrade' -H 'Upgrade: phyllome-console' \
    -w '\n%{http_code}' http://localhost/v1/vms/nosuch/console)
is "${r##*$'\n'}" 404 "the console of an unknown VM: 404 before any switch"
tag2=$RANDOM
printf 'echo cli""con-%s\n' "$tag2" | D console "$v" >/dev/null 2>&1; ok $? "phyllo console through phyllod"
lc_wait_log "$v" "^\[console\] clicon-$tag2"; ok $? "its input reached the guest"

# ---- the SPICE display: the socket phyllod hands out answers SPICE's link reply
r=$(api GET "/v1/vms/$v/display")
is "${r%% *}" 200 "GET /v1/vms/$v/display"
sock=$(jq -r .spice_socket <<<"${r#* }")
is "$sock" "$PHYLLOME_HOME/run/$v/spice.sock" "it names the VM's SPICE socket"
is "$(jq -r .uri <<<"${r#* }")" "spice+unix://$sock" "and its URI"
magic=$(python3 - "$sock" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(sys.argv[1])
# SpiceLinkHeader (magic, major 2, minor 2, size) + SpiceLinkMess for the main channel, no caps.
mess = struct.pack("<IBBIII", 0, 1, 0, 0, 0, 18)
s.sendall(b"REDQ" + struct.pack("<III", 2, 2, len(mess)) + mess)
print(s.recv(4).decode(errors="replace"))
PY
)
is "$magic" REDQ "the SPICE server behind it answers with its link reply (REDQ)"

# ---- a console left open does not hold phyllod's SIGTERM up; the VM runs on
: >"$PHYLLOME_HOME/held"        # made first: tail -f must find it whoever runs first
python3 - "$S" "/v1/vms/$v/console" >"$PHYLLOME_HOME/held" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: phyllome-console\r\n\r\n" % sys.argv[2].encode())
print(s.recv(12).decode(), flush=True)
while s.recv(4096):
    pass
print("closed", flush=True)
PY
held=$!; tap_own_pid $held
timeout 20 tail -n +1 -f "$PHYLLOME_HOME/held" | grep -m1 -q 'HTTP/1.1 101'; ok $? "a console held open"
pd=$PD_PID   # bash unsets PD_PID once the coproc has ended
kill "$pd"; timeout 20 tail --pid="$pd" -f /dev/null; ok $? "phyllod ends on SIGTERM with the console open"
wait "$pd"; is "$?" 0 "cleanly"
timeout 10 tail --pid="$held" -f /dev/null; ok $? "the console's client saw its connection end"
is "$(N status "$v" --json | jq -r .state)" running "the VM runs on (it belongs to its monitor)"
pd_start; ok $? "phyllod starts again"

# ---- on the running VM: USB hot-plug, logs, a forward, status, through phyllod
out=$(D usb attach "$v" 1234:5678 2>&1); is "$?" 0 "usb attach through phyllod"
like "$out" "hot-plugged into the running VM" "hot-plugged (dev_usb_hotplug)"
out=$(D usb detach "$v" 1234:5678 2>&1); is "$?" 0 "usb detach through phyllod: $out"
like "$(D logs "$v")" $'\\[console\\] PHYLLOME-GUEST-READY' "phyllo logs through phyllod"
is "$(api GET "/v1/vms/$v/logs" | cut -d' ' -f2- | jq -r '[.logs[] | select(.line == "PHYLLOME-GUEST-READY") | .source][0]')" \
   console "GET /v1/vms/$v/logs: the lines with their source"
# logs --follow through phyllod: a chunked reply fed by inotify, the lines
# there first, then what the guest prints later; it ends when its reader leaves.
fl=$PHYLLOME_HOME/follow.out
: >"$fl"        # made first: tail -f must find it whoever runs first
D logs "$v" --follow >"$fl" 2>&1 &
fpid=$!; tap_own_pid "$fpid"
timeout 30 tail -n +1 -f "$fl" | grep -m1 -q '^\[console\] PHYLLOME-GUEST-READY'
ok $? "phyllo logs --follow through phyllod prints the log there already"
ftag=$RANDOM$$
printf 'echo fol""low-%s\n' "$ftag" | D console "$v" >/dev/null 2>&1
timeout 30 tail -n +1 -f "$fl" | grep -m1 -q "^\[console\] follow-$ftag"
ok $? "and a line the guest prints afterwards"
kill "$fpid" 2>/dev/null; wait "$fpid" 2>/dev/null
timeout 30 bash -c 'PHYLLOME_REQUIRE_DAEMON=1 "$0" logs "$1" --follow | grep -m1 -q PHYLLOME-GUEST-READY' "$PHYLLO" "$v"
is "$?" 0 "logs --follow | grep -m1 ends once grep has its line (not by the timeout)"
out=$(curl -sN --max-time 3 --unix-socket "$S" "http://localhost/v1/vms/$v/logs?follow=1"); rc=$?
is "$rc" 28 "GET /v1/vms/$v/logs?follow=1 stays open (curl's time limit ends it)"
like "$out" $'\\[console\\] PHYLLOME-GUEST-READY' "its body is the log's lines, tagged"
r=$(api GET "/v1/vms/nosuch$$/logs?follow=1")
is "${r%% *}" 404 "follow of an unknown VM: 404"
is "$(jq -r .error.message <<<"${r#* }")" "$(N logs nosuch$$ --follow 2>&1 | sed 's/^phyllo: //')" \
   "with the message the CLI prints"
r=$(api GET "/v1/vms/$v/logs?follow=maybe")
is "${r%% *}" 400 "follow=maybe: 400"
out=$(D net forward add "$v" tcp:127.0.0.1:$((40000 + RANDOM % 20000)):22 2>&1); is "$?" 0 "net forward add on the running VM: $out"
sd=$SHAREHOME/share; mkdir "$sd"   # outside the home: sharing the home is refused
out=$(D share add "$v" "$sd" g --readonly 2>&1)
like "$out" "running: this applies at its next start" "share add on the running VM says when it applies"
out=$(D stop "$v" --timeout 30 2>&1); is "$out" "VM '$v' stopped" "stop through phyllod"

# ---- the stopped VM: each command through phyllod prints what the direct way prints
out=$(D disk add "$v" --size 16M --name d2 2>&1); is "$out" "added disk 'd2' to VM '$v'" "disk add through phyllod"
both "disk list" disk list "$v" --json
out=$(D disk resize "$v" d2 32M 2>&1); is "$out" "disk 'd2' of VM '$v' is now 32M" "disk resize through phyllod"
both "disk resize to shrink" disk resize "$v" d2 16M
out=$(D snapshot create "$v" s1 2>&1); is "$out" "created snapshot 's1' of VM '$v'" "snapshot create through phyllod"
both "snapshot create again" snapshot create "$v" s1
both "snapshot list" snapshot list "$v" --json
out=$(D snapshot delete "$v" s1 2>&1); is "$out" "deleted snapshot 's1' of VM '$v'" "snapshot delete through phyllod"
out=$(D disk remove "$v" d2 --yes 2>&1); is "$out" "removed disk 'd2' from VM '$v'" "disk remove through phyllod"
both "share list" share list "$v" --json
out=$(D share remove "$v" g 2>&1); is "$out" "removed share 'g' from VM '$v'" "share remove through phyllod"
rmdir "$sd"
out=$(D net nic add "$v" net1 --model e1000e 2>&1); like "$out" "^added network 'net1' \(52:54:00" "net nic add through phyllod"
both "net nic add twice" net nic add "$v" net1
out=$(D net nic remove "$v" net1 2>&1); like "$out" "^removed network 'net1'" "net nic remove through phyllod"
both "net forward list" net forward list "$v" --json
both "device list" device list "$v" --json
both "usb attach of a malformed id" usb attach "$v" 1234:56789
both "profiles" profiles --json
both "host devices" host devices --json
both "argv" argv "$v"
both "argv --json --tcg --paused" argv "$v" --json --tcg --paused
both "argv --null" argv "$v" --null
both "caps" caps
both "caps --json" caps --json
# A binary the caller names is probed in phyllo's own process, never by phyllod.
q=$(command -v qemu-system-x86_64)
is "$(D caps --qemu "$q" 2>&1 | head -n1)" "$(N caps --qemu "$q" 2>&1 | head -n1)" "caps --qemu works in phyllo's own process"
like "$(curl -s --unix-socket "$S" -X POST -d "{\"qemu\": \"$q\"}" http://localhost/v1/host/caps)" "phyllod probes only the QEMU it finds" \
  "phyllod refuses a QEMU binary named in the request"
out=$(D wait "$v" --for stopped --timeout 5 2>&1); is "$out" "$v: stopped" "wait through phyllod"
cat >"$PHYLLOME_HOME/ed" <<'EOF'
#!/bin/sh
sed -i 's/^size = 256M$/size = 320M/' "$1"
EOF
chmod +x "$PHYLLOME_HOME/ed"
out=$(EDITOR="$PHYLLOME_HOME/ed" D edit "$v" 2>&1); is "$out" "saved VM '$v'" "edit through phyllod (PUT)"
like "$(D show "$v")" $'\\[memory\\]\nsize = 320M\n' "the edit is saved"
out=$(D view "$v" 2>&1); is "$?" 1 "view of a stopped VM fails"
like "$out" "VM '$v' is not running" "saying so"

# ---- PCI devices through a phyllod serving a fixture host (--root)
fx=$(mktemp -d /tmp/phyllome-test-root.XXXXXX)
cp -a "$SRCDIR/fixtures/host/intel-desktop-iommu/." "$fx/"
H2=$(mktemp -d /tmp/phyllome-test.XXXXXX)
first=$PD_PID
PHYLLOME_HOME=$H2 pd_start --root "$fx"; ok $? "a second phyllod serves home 2 with the fixture root"
PHYLLOME_HOME=$H2 D create p --profile linux --no-disk >/dev/null 2>&1
out=$(PHYLLOME_HOME=$H2 D device attach p 0000:01:00.0 2>&1); is "$?" 1 "through phyllod: the boot display GPU is refused"
like "$out" "boot display.*--force" "with the library's reason"
out=$(PHYLLOME_HOME=$H2 D device attach p 0000:01:00.0 --force 2>&1); is "$?" 0 "attach --force through phyllod"
like "$out" "attached 0000:01:00.0 to VM 'p'" "it names what it attached"
is "$(PHYLLOME_HOME=$H2 D device list p --json | jq -r '[.[].address] | join(" ")')" "0000:01:00.0 0000:01:00.1" \
   "the GPU went with its audio function"
out=$(PHYLLOME_HOME=$H2 D device detach p 0000:01:00.0 2>&1); like "$out" "detached 0000:01:00.1" "detach through phyllod"
pd=$PD_PID; kill "$pd"; wait "$pd"
rm -rf "$fx" "$H2"

D delete "$v" --yes >/dev/null; ok $? "delete through phyllod"
kill "$first"; wait "$first"; ok $? "phyllod ends cleanly"
diag "api-verbs: $((SECONDS - t0)) s"
tap_done

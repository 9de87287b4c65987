#!/bin/bash
# Networking and shared folders with the real QEMU, passt, virtiofsd and the
# tiny guest.  One boot checks a port forward (host 127.0.0.1 -> guest httpd),
# a 9p and a virtiofs share read by the guest, and read-only shares refusing
# its writes; a second boot checks the slirp fallback, live forwards and NIC
# hot-plug (the guest sees eth1 come and go).  Traffic goes only to
# 127.0.0.1; the guest gets an address but no route (tests/guest/init).
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
command -v curl >/dev/null || skip_all "curl is not installed"
lc_new_home

# A free loopback port: bind 0, read what the kernel gave, release it.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fetch() { curl -s --max-time 20 "http://127.0.0.1:$1/index.html"; }

vm=net$$ port=$(free_port)
mkdir -p "$PHYLLOME_HOME/share/ro9p" "$PHYLLOME_HOME/share/rovfs" "$PHYLLOME_HOME/share/rwvfs"
share=$(mktemp -d /tmp/phyllome-share.XXXXXX)
trap 'lc_cleanup; rm -rf "$share"' EXIT
mkdir "$share/ro9p" "$share/rovfs" "$share/rwvfs"
for d in ro9p rovfs rwvfs; do echo "host-$d-$$" >"$share/$d/phyllome-read.txt"; done
chmod -R a+rwX "$share"
# A share must lie in a directory the host allows (docs/security.md): per
# user, the user's home; the shares here are outside the Phyllome home.
export HOME=$share

lc_create "$vm" --forward "tcp:$port:80" \
  --append "console=ttyS0 phyllome.net phyllome.listen=80 phyllome.mount=ro9p:9p:/mnt/a phyllome.mount=rovfs:virtiofs:/mnt/b phyllome.mount=rwvfs:virtiofs:/mnt/c"
conf=$PHYLLOME_HOME/vms/$vm/vm.conf
cat >>"$conf" <<CONF

[share ro9p]
path = $share/ro9p
type = 9p
readonly = on

[share rovfs]
path = $share/rovfs
readonly = on

[share rwvfs]
path = $share/rwvfs
CONF
like "$("$PHYLLO" show "$vm")" 'forward = tcp:[0-9]+:80' "create --forward is kept in the definition"

# A taken host port is refused at start, naming the port.
# The holder keeps the port until its stdin closes.
coproc HOLD { exec python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); print("x",flush=True); sys.stdin.read()' "$port"; }
holder=$HOLD_PID
lc_extra_pids+=("$holder")
read -r -u "${HOLD[0]}" _
out=$("$PHYLLO" start "$vm" 2>&1); rc=$?
ok $((rc == 0)) "start refuses a forward to a taken host port"
like "$out" "host port $port \\(tcp on 127.0.0.1\\).*already in use" "the refusal names the port"
exec {HOLD[1]}>&-
wait "$holder"

t0=$(date +%s.%N)
out=$("$PHYLLO" start "$vm" 2>&1)
ok $? "start with passt, a forward and three shares" || diag "$out"
lc_wait_log "$vm" 'PHYLLOME-GUEST-READY' 90
ok $? "the guest boots"
t1=$(date +%s.%N)
diag "boot to READY: $(echo "$t1 - $t0" | bc) s"
passt_pid=$(pgrep -f -- "passt .*--fd=.* -t 127.0.0.1/$port:80" | head -n1)
ok $([ -n "$passt_pid" ]; echo $?) "passt runs with the forward on loopback" ||
  diag "passt processes: $(pgrep -a passt | cut -c1-300)" "$(cat "$PHYLLOME_HOME"/run/"$vm"/passt-*.log 2>&1 | tail -n 5)" \
       "$("$PHYLLO" status "$vm" 2>&1 | grep -i -E 'net|passt|slirp')"
is "$(fetch "$port")" "PHYLLOME-HTTP-OK" "a file from the guest's httpd through the passt forward"
logs=$("$PHYLLO" logs "$vm")
like "$logs" "PHYLLOME-GUEST-READ ro9p host-ro9p-$$" "the guest reads a host file through 9p"
like "$logs" "PHYLLOME-GUEST-READ rovfs host-rovfs-$$" "the guest reads a host file through virtiofs"
like "$logs" "PHYLLOME-GUEST-WRITE ro9p refused" "a read-only 9p share refuses the guest's write"
like "$logs" "PHYLLOME-GUEST-WRITE rovfs refused" "a read-only virtiofs share refuses the guest's write"
like "$logs" "PHYLLOME-GUEST-WRITE rwvfs ok" "a writable virtiofs share takes the guest's write"
is "$(cat "$share/rwvfs/phyllome-write.txt" 2>/dev/null)" "written" "the write reached the host"
ok $([ ! -e "$share/rovfs/phyllome-write.txt" ] && [ ! -e "$share/ro9p/phyllome-write.txt" ]; echo $?) \
  "nothing was written to the read-only directories"
# The monitor's own children (virtiofsd forks its sandboxed worker below them).
vfs_pids=$(pgrep -P "$(lc_field "$vm" monitor_pid)" -f -- "virtiofsd .*source=$share/" | tr '\n' ' ')
is "$(wc -w <<<"$vfs_pids")" 2 "one virtiofsd per virtiofs share"
# Changes while it runs: passt holds its forwards on its own command line,
# shares are set up before QEMU starts: both apply at the next start.
port3=$(free_port)
out=$("$PHYLLO" net forward add "$vm" "tcp:$port3:81" 2>&1)
like "$out" "applies at the next start" "passt: a new forward applies at the next start"
out=$("$PHYLLO" share add "$vm" "$share/rwvfs" later 2>&1)
like "$out" "running: this applies at its next start" "share add on a running VM applies at the next start"
"$PHYLLO" share remove "$vm" later >/dev/null
is "$("$PHYLLO" status "$vm" --json | jq -r '.networks[0] | "\(.backend) \(.forwards | join(","))"')" \
  "passt tcp:$port:80,tcp:$port3:81" "status: the NIC's backend as it runs and its forwards"
"$PHYLLO" net forward remove "$vm" "tcp:$port3:81" >/dev/null
"$PHYLLO" stop "$vm" --timeout 30 >/dev/null
ok $? "stop"
is "$("$PHYLLO" status "$vm" --json | jq -r '.networks[0].backend')" passt \
  "status of the stopped VM: the backend its next start uses, as while it ran"
gone=0
for p in $passt_pid $vfs_pids; do [ -e "/proc/$p" ] && gone=1; done
ok $gone "passt and virtiofsd end with the VM"

# slirp when passt is not there: the same forward through QEMU's hostfwd.
sed -i '/^\[share/,$d' "$conf"
PHYLLOME_PASST= "$PHYLLO" start "$vm" >/dev/null 2>&1
ok $? "start with slirp"
lc_wait_log "$vm" 'PHYLLOME-GUEST-READY' 90
is "$(fetch "$port")" "PHYLLOME-HTTP-OK" "a file from the guest's httpd through the slirp forward"

# slirp takes forwards live (hostfwd_add/remove over QMP).
port2=$(free_port)
out=$("$PHYLLO" net forward add "$vm" "tcp:$port2:80" 2>&1)
like "$out" "applied to the running VM" "net forward add is applied to the running slirp VM"
is "$(fetch "$port2")" "PHYLLOME-HTTP-OK" "the live forward reaches the guest's httpd"
out=$("$PHYLLO" net forward add "$vm" "tcp:$port2:81" 2>&1); rc=$?
ok $((rc == 0)) "a second forward on that host port is refused"
like "$out" "host port $port2" "naming the port"
"$PHYLLO" net forward remove "$vm" "tcp:$port2:80" >/dev/null
ok $? "net forward remove on the running VM"
curl -s --max-time 5 "http://127.0.0.1:$port2/index.html" >/dev/null; rc=$?
ok $((rc == 0)) "the removed forward no longer listens (curl exit $rc)"
is "$("$PHYLLO" net forward list "$vm" --json | jq -r '[.[].host_port] | join(",")')" "$port" \
  "the definition keeps only the first forward"

# Only user networking hot-plugs; an isolated NIC is refused and not stored.
out=$("$PHYLLO" net nic add "$vm" lab0 --mode isolated:lab 2>&1); is "$?" 1 "an isolated NIC is not hot-plugged"
like "$out" "isolated network cannot be hot-plugged" "... saying so" || diag "$out"
ok $(grep -q '^\[network lab0\]' "$conf"; [ $? -ne 0 ]; echo $?) "the definition was left as it was"

# NIC hot-plug: the guest sees eth1 appear, then go.
out=$("$PHYLLO" net nic add "$vm" net1 2>&1)
like "$out" "hot-plugged into the running VM" "net nic add hot-plugs a NIC" || diag "$out"
mac1=$(sed -n '/^\[network net1\]/,/^\[/s/^mac = //p' "$conf")
printf 'echo "ADDED-$(phyllome-info) $(cat /sys/class/net/eth1/address)"\n' | "$PHYLLO" console "$vm" >/dev/null 2>&1
lc_wait_log "$vm" 'ADDED-PHYLLOME-GUEST-INFO' 30
like "$("$PHYLLO" logs "$vm" | grep ADDED-PHYLLOME)" "net=eth0,eth1 $mac1" "the guest sees eth1 with the stored MAC"
is "$("$PHYLLO" status "$vm" --json | jq -r '[.networks[] | "\(.name):\(.backend)"] | join(" ")')" \
  "net0:slirp net1:slirp" "status shows both NICs as QEMU runs them"
out=$("$PHYLLO" net nic remove "$vm" net1 2>&1)
like "$out" "unplugged from the running VM" "net nic remove unplugs it" || diag "$out"
printf 'echo "REMOVED-$(phyllome-info)"\n' | "$PHYLLO" console "$vm" >/dev/null 2>&1
lc_wait_log "$vm" 'REMOVED-PHYLLOME-GUEST-INFO' 30
like "$("$PHYLLO" logs "$vm" | grep REMOVED-PHYLLOME)" "net=eth0\$" "the guest no longer has eth1"
ok $(grep -q 'network net1' "$conf"; [ $? -ne 0 ]; echo $?) "and the definition no longer has it"
"$PHYLLO" kill "$vm" >/dev/null 2>&1
tap_done

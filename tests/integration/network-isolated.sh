#!/bin/bash
# Isolated networks (mode = isolated): two VMs on one named network reach
# each other and nothing else.  One boot per VM.  Addresses are only the
# guests' own (10.213.0.x on their private L2, static, no gateway); frames
# go between unix sockets of the test's home, never to any host address.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
lc_new_home

net=iso$$ a=isoa$$ b=isob$$
lc_create "$a" --append "console=ttyS0 phyllome.ip=10.213.0.1/24"
lc_create "$b" --append "console=ttyS0 phyllome.ip=10.213.0.2/24 phyllome.listen=80"
for vm in "$a" "$b"; do
  conf=$PHYLLOME_HOME/vms/$vm/vm.conf
  # The NIC create made is user mode: make it a member of the network.
  sed -i "/^\[network net0\]/a mode = isolated\nnetwork = $net" "$conf"
done
like "$("$PHYLLO" show "$a")" "network = $net" "the definition keeps network = $net"

# A definition that forgets the network's name is refused with the reason.
c=isoc$$
lc_create "$c"
sed -i "/^\[network net0\]/a mode = isolated" "$PHYLLOME_HOME/vms/$c/vm.conf"
out=$("$PHYLLO" start "$c" 2>&1); rc=$?
ok $((rc == 0)) "an isolated NIC without a network name does not start"
like "$out" "isolated but names no network; add network = NAME" "the refusal says what to add"

argv=$("$PHYLLO" argv "$a" 2>&1)
like "$argv" "-netdev dgram,id=net-net0,local.type=fd" "QEMU gets the hub port as a datagram fd"
ok "$(grep -cE 'mcast|user,id=net-net0' <<<"$argv")" "no multicast, no user networking"

t0=$(date +%s.%N)
out=$("$PHYLLO" start "$b" 2>&1); ok $? "start $b" || diag "$out"
out=$("$PHYLLO" start "$a" 2>&1); ok $? "start $a" || diag "$out"
lc_wait_log "$b" 'PHYLLOME-GUEST-READY' 90; ok $? "$b boots"
lc_wait_log "$a" 'PHYLLOME-GUEST-READY' 90; ok $? "$a boots"
diag "both guests READY after $(echo "$(date +%s.%N) - $t0" | bc) s"

sockdir=$PHYLLOME_HOME/run/.networks/$net
is "$(find "$sockdir" -type s | wc -l)" 2 "one hub socket per member in $sockdir"
is "$(stat -c %a "$sockdir")" 700 "the network's directory is private to its user"

# From A's console: B's httpd over the isolated L2, then A's routes.
printf 'echo "FETCH-$(printf "GET /index.html HTTP/1.0\\r\\n\\r\\n" | nc -w 10 10.213.0.2 80 | tail -n1)-END"; echo "ROUTES-$(ip route | tr "\\n" ";")-END"; echo "DEFAULT-$(ip route | grep -c ^default)-END"\n' |
  "$PHYLLO" console "$a" >/dev/null 2>&1
lc_wait_log "$a" 'DEFAULT-[0-9]+-END' 60
logs=$("$PHYLLO" logs "$a")
like "$logs" 'FETCH-PHYLLOME-HTTP-OK-END' "A fetches B's httpd at 10.213.0.2 through the isolated network"
like "$logs" 'ROUTES-10\.213\.0\.0/24 dev eth0[^;]*;-END' "A's only route is its own isolated subnet"
like "$logs" 'DEFAULT-0-END' "A has no default route"

# A third member joins a running network (no shared daemon to start) and
# leaves it: the hub is in each VM's monitor.
"$PHYLLO" stop "$b" >/dev/null 2>&1
ok $? "stop $b"
is "$(find "$sockdir" -type s | wc -l)" 1 "$b's hub socket is gone with its monitor"
printf 'echo "GONE-$(printf "GET /index.html HTTP/1.0\\r\\n\\r\\n" | nc -w 3 10.213.0.2 80 | tail -n1 | grep . || echo unreachable)-END"\n' |
  "$PHYLLO" console "$a" >/dev/null 2>&1
lc_wait_log "$a" 'GONE-(unreachable|PHYLLOME-HTTP-OK)-END' 60
like "$("$PHYLLO" logs "$a")" 'GONE-unreachable-END' "with $b stopped, A reaches nothing"
"$PHYLLO" stop "$a" >/dev/null 2>&1
ok $? "stop $a"
tap_done

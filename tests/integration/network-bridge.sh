#!/bin/bash
# Bridge mode (mode = bridge, bridge = br0) inside a network namespace this
# test creates: a bridge there with 10.214.0.1/24, phyllo started under
# 'ip netns exec' makes its tap (ioctls on /dev/net/tun) and enslaves it,
# and the guest (static 10.214.0.2/24) is pinged and fetched from the
# bridge's address.  Only namespace addresses are ever used.  One boot.
set -u
. "$(dirname "$0")/tap.sh"
((EUID == 0)) || skip_all "bridge mode needs root (a tap and a network namespace)"
command -v ip >/dev/null || skip_all "iproute2 is not installed"
[ -c /dev/net/tun ] || skip_all "/dev/net/tun is missing (modprobe tun)"
command -v curl >/dev/null || skip_all "curl is not installed"
. "$(dirname "$0")/lifecycle-lib.sh"
lc_new_home
ns=phyllome-test-$$
ip netns add "$ns" || skip_all "cannot create a network namespace here"
trap 'lc_cleanup; ip netns delete "$ns" 2>/dev/null' EXIT
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up
in_ns ip link add br0 type bridge
in_ns ip addr add 10.214.0.1/24 dev br0
in_ns ip link set br0 up

vm=br$$
lc_create "$vm" --append "console=ttyS0 phyllome.ip=10.214.0.2/24 phyllome.listen=80"
conf=$PHYLLOME_HOME/vms/$vm/vm.conf
sed -i "/^\[network net0\]/a mode = bridge\nbridge = br0" "$conf"
like "$("$PHYLLO" argv "$vm" 2>/dev/null)" "-netdev tap,id=net-net0,fd=" "QEMU gets the tap as an fd"

# A bridge that does not exist is named in the refusal.
sed -i "s/^bridge = br0/bridge = nobr0/" "$conf"
out=$(in_ns "$PHYLLO" start "$vm" 2>&1); rc=$?
ok $((rc == 0)) "start refuses a missing bridge"
like "$out" "bridge 'nobr0' does not exist here" "the refusal names the bridge"
sed -i "s/^bridge = nobr0/bridge = br0/" "$conf"

out=$(in_ns "$PHYLLO" start "$vm" 2>&1); ok $? "start in bridge mode" || diag "$out"
lc_wait_log "$vm" 'PHYLLOME-GUEST-READY' 90; ok $? "the guest boots"
taps=$(in_ns ip -o link show master br0 | awk -F': ' '{print $2}' | cut -d@ -f1)
like "$taps" '^phytap[0-9]+$' "one phytap is enslaved to br0 in the namespace"
if command -v ping >/dev/null; then
  in_ns ping -c 1 -W 10 10.214.0.2 >/dev/null
  ok $? "the guest answers a ping from the bridge's address"
else
  diag "ping is not installed: the fetch below is the reachability check"
fi
is "$(in_ns curl -s --max-time 20 http://10.214.0.2/index.html)" "PHYLLOME-HTTP-OK" "the guest's httpd answers on the bridge"
"$PHYLLO" stop "$vm" >/dev/null 2>&1; ok $? "stop"
is "$(in_ns ip -o link show master br0 | wc -l)" 0 "the tap is gone with QEMU"
tap_done

#!/bin/bash
# phyllome-devhelper for real: the helper runs as root with --root on a copy
# of the intel-desktop-iommu fixture (plain files: the writes land as file
# contents, /dev/vfio/N are plain files) and a socket in a temp dir; clients
# run as nobody (setpriv) and as a throwaway uid.  Checks the writes, the
# /dev/vfio ownership, every refusal's words, malformed messages, an idle
# connection not holding others up, and phyllo start/give-back going through
# the helper when not root.  One failed QEMU start (TCG), no boot.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
[ "$(id -u)" = 0 ] || skip_all "runs the helper as root and its clients as nobody (run the suite as root)"
command -v setpriv >/dev/null || skip_all "setpriv (util-linux) is not installed"
HELPER=$BUILDDIR/src/devhelper/phyllome-devhelper
SEND=$BUILDDIR/tests/devhelper-send
[ -x "$HELPER" ] && [ -x "$SEND" ] || skip_all "phyllome-devhelper or tests/devhelper-send is not built"
# Its clients run as nobody, who must reach the build (a checkout in root's
# 0700 home, as in scripts/fresh-check's root, is closed to it).
setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$PHYLLO" ||
  skip_all "nobody cannot run $PHYLLO (a directory above it is closed to other users); run the suite from a checkout others can read"
lc_new_home
T=$(mktemp -d /tmp/phyllome-test-devhelper.XXXXXX)
trap 'lc_cleanup; rm -rf "$T"' EXIT
chmod 755 "$T"
R=$T/root S=$T/devhelper.sock
cp -a "$SRCDIR/fixtures/host/intel-desktop-iommu/." "$R/"
for d in "$R"/sys/bus/pci/devices/*; do : >"$d/driver_override"; done
for d in i915 xhci_hcd ahci vfio-pci nvidia snd_hda_intel; do
  mkdir -p "$R/sys/bus/pci/drivers/$d"; : >"$R/sys/bus/pci/drivers/$d/bind"; : >"$R/sys/bus/pci/drivers/$d/unbind"
done
: >"$R/sys/bus/pci/drivers_probe"
mkdir -p "$R/dev/vfio"; for g in 1 2 3 4; do : >"$R/dev/vfio/$g"; done; chmod 600 "$R"/dev/vfio/*
# A group shared by two devices: the SATA controller joins the USB controller's group 3.
ln -sfn ../../../../kernel/iommu_groups/3 "$R/sys/bus/pci/devices/0000:00:17.0/iommu_group"
mv "$R/sys/kernel/iommu_groups/4/devices/0000:00:17.0" "$R/sys/kernel/iommu_groups/3/devices/"
cat >>"$R/etc/phyllome/host.conf" <<'CONF'
passthrough-allow = 0000:00:02.0 nobody
passthrough-allow = 0000:00:14.0 @nogroup
CONF

mkfifo "$T/ready"
"$HELPER" --root "$R" --socket "$S" --idle-timeout 60000 >"$T/ready" 2>"$T/helper.log" &
hpid=$!; tap_own_pid "$hpid"
read -r line <"$T/ready"
is "$line" "phyllome-devhelper: listening on $S" "the helper listens"
is "$(stat -c %a "$S")" 666 "its socket is open to every user (host.conf decides)"

as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
as_other() { setpriv --reuid=4242 --regid=4242 --clear-groups "$@"; }
attr() { od -An -c "$R/sys/bus/pci/$1" | tr -d ' '; }

# --- an allowed device ---
out=$(as_nobody "$SEND" "$S" to-vfio vm1 0000:00:02.0); is "$?" 0 "nobody moves the allowed iGPU: $out"
is "$(attr devices/0000:00:02.0/driver_override)" vfio-pci "driver_override := vfio-pci"
is "$(attr drivers/i915/unbind)" 0000:00:02.0 "i915/unbind := the address"
is "$(attr drivers_probe)" 0000:00:02.0 "drivers_probe := the address"
is "$(stat -c %u:%a "$R/dev/vfio/2")" 65534:600 "/dev/vfio/2 belongs to nobody"
is "$(cat "$R/run/phyllome/devhelper/0000:00:02.0")" "65534 vm1 i915 2" "the helper's record"
like "$(as_nobody "$SEND" "$S" status)" "0000:00:02.0 \(VM 'vm1', group 2, from i915\)" "STATUS lists it"

# --- refusals ---
out=$(as_nobody "$SEND" "$S" to-vfio vm1 0000:00:1f.6); is "$?" 1 "a device host.conf does not allow is refused"
like "$out" "PCI device 0000:00:1f.6 is not allowed for user 'nobody'.*$R/etc/phyllome/host.conf" \
  "... naming the device and host.conf"
is "$(attr drivers/e1000e/unbind 2>/dev/null)" "" "... and nothing moved"
out=$(as_other "$SEND" "$S" to-vfio vm2 0000:00:02.0); is "$?" 1 "another uid cannot take the allowed device"
like "$out" "0000:00:02.0 is not allowed for user '#4242'.*host.conf" "... naming it and host.conf"
out=$(as_other "$SEND" "$S" give-back vm1 0000:00:02.0); is "$?" 1 "another uid cannot give it back"
like "$out" "moved for VM 'vm1' of uid 65534, not for uid 4242" "... saying whose it is"
out=$(as_nobody "$SEND" "$S" to-vfio vm1 0000:00:14.0); is "$?" 1 "a device in a shared group is refused (allowed by @nogroup)"
like "$out" "refuses PCI device 0000:00:14.0.*host.conf.*shares IOMMU group 3 with 0000:00:17.0 \(driver ahci\)" \
  "... naming the device, host.conf and the other member"
is "$(attr drivers/xhci_hcd/unbind)" "" "... and nothing moved"

# --- malformed messages: each refused, the helper lives on ---
for m in "raw 3" "raw 163" "raw 165" "raw 4096" bad-version unterminated bad-op bad-driver; do
  out=$(as_nobody "$SEND" "$S" $m); rc=$?
  ok $([ "$rc" = 1 ] && [[ "$out" == *refused:* ]]; echo $?) "$m is refused: $out"
done
out=$(as_nobody "$SEND" "$S" raw 0); is "$?" 3 "an empty message (EOF on a seqpacket socket) closes the connection: $out"
ok $(kill -0 "$hpid" 2>/dev/null; echo $?) "the helper is still running"

# --- issue 12, finding 7: request fields cannot forge a journal line ---
forged='uid 0 to-vfio 0000:00:02.0 vm root: moved'
as_nobody "$SEND" "$S" to-vfio $'vm1\n'"$forged"$'\n' 0000:00:02.0 >/dev/null; is "$?" 1 "a VM name with a newline is refused"
as_nobody "$SEND" "$S" to-vfio vm1 $'0000:00:\n0\x1b' >/dev/null; is "$?" 1 "an address with control characters is refused"
ok $(! grep -qx "$forged" "$T/helper.log"; echo $?) "no line of the journal is the forged one"
ok $(grep -qF "'vm1\\n$forged\\n'" "$T/helper.log"; echo $?) "the VM name is logged escaped, on its own line"
ok $(grep -qF '0000:00:\n0\x1b' "$T/helper.log"; echo $?) "so is the address"

# --- an idle connection does not hold the others up ---
mkfifo "$T/idle"
# setpriv execs the client: $! is its pid (a shell function would be a subshell's).
setpriv --reuid=nobody --regid=nogroup --clear-groups "$SEND" "$S" idle >"$T/idle" 2>/dev/null & ipid=$!
tap_own_pid "$ipid"
read -r line <"$T/idle"
is "$line" connected "an idle client holds a connection"
out=$(timeout 5 setpriv --reuid=nobody --regid=nogroup --clear-groups "$SEND" "$S" status); is "$?" 0 "another client is answered meanwhile"
kill "$ipid"; wait "$ipid" 2>/dev/null

# --- give-back (the kernel's part by hand: it would have bound vfio-pci) ---
ln -sfn ../../../../bus/pci/drivers/vfio-pci "$R/sys/bus/pci/devices/0000:00:02.0/driver"
out=$(as_nobody "$SEND" "$S" give-back vm1 0000:00:02.0 i915); is "$?" 0 "nobody gives it back: $out"
is "$(attr devices/0000:00:02.0/driver_override)" '\n' "driver_override cleared"
is "$(attr drivers/vfio-pci/unbind)" 0000:00:02.0 "vfio-pci/unbind := the address"
is "$(attr drivers/i915/bind)" 0000:00:02.0 "i915/bind := the address"
is "$(readlink "$R/sys/bus/pci/devices/0000:00:02.0/driver")" ../../../../bus/pci/drivers/vfio-pci \
  "(no kernel here: the driver link stays)"
ln -sfn ../../../../bus/pci/drivers/i915 "$R/sys/bus/pci/devices/0000:00:02.0/driver"
is "$(stat -c %u:%a "$R/dev/vfio/2")" 0:600 "/dev/vfio/2 is root's again, 0600"
ok $([ ! -e "$R/run/phyllome/devhelper/0000:00:02.0" ]; echo $?) "the record is gone"

# --- phyllo as nobody goes through the helper ($PHYLLOME_DEVHELPER_SOCKET) ---
for f in driver_override; do : >"$R/sys/bus/pci/devices/0000:00:02.0/$f"; done
: >"$R/sys/bus/pci/drivers/i915/unbind"; : >"$R/sys/bus/pci/drivers/i915/bind"; : >"$R/sys/bus/pci/drivers_probe"
mkdir -p "$T/cache"; chown -R nobody:nogroup "$PHYLLOME_HOME" "$T/cache"
ph() { as_nobody env PHYLLOME_HOME="$PHYLLOME_HOME" PHYLLOME_CACHE="$T/cache" PHYLLOME_DEVHELPER_SOCKET="$S" "$PHYLLO" "$@"; }
p=p$$
ph create "$p" --profile linux --kernel "$GUEST/vmlinux" --display none --memory 256M --cpus 1 --no-uefi >/dev/null
is "$?" 0 "nobody creates a VM"
lc_vms+=("$p")
ph --root "$R" device attach "$p" 0000:00:02.0 >/dev/null 2>&1; is "$?" 0 "and attaches the iGPU"
out=$(ph --root "$R" start "$p" 2>&1); is "$?" 1 "the start fails (QEMU has no such host device)"
like "$out" "vfio-pci,id=hostdev0,host=0000:00:02.0" "with QEMU's own words"
is "$(attr drivers/i915/unbind)" 0000:00:02.0 "the helper moved the iGPU for nobody's start"
is "$(attr devices/0000:00:02.0/driver_override)" '\n' "and gave it back after QEMU refused (override cleared)"
is "$(stat -c %u "$R/dev/vfio/2")" 0 "/dev/vfio/2 is root's again"
like "$(as_nobody "$SEND" "$S" status)" "you hold no devices" "the helper holds nothing for nobody"
ok $([ ! -e "$PHYLLOME_HOME/run/$p/devices.state" ]; echo $?) "devices.state is gone"
kill "$hpid" 2>/dev/null
out=$(ph --root "$R" start "$p" 2>&1); is "$?" 1 "without the helper the start fails"
like "$out" "device helper is not running.*$S.*systemctl start phyllome-devhelper.socket" "... naming the socket and the remedy"
wait "$hpid" 2>/dev/null
diag "$(cat "$T/helper.log")"
tap_done

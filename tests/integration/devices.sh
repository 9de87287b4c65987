#!/bin/bash
# Devices with the real QEMU (TCG) and one boot of the tiny guest: a USB
# device given at start and one hot-plugged (QEMU 7.2 accepts a usb-host for
# an absent vendor:product and waits for it), then detached; PCI passthrough
# refusals and the start/give-back wiring on fixture copies (--root).
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
lc_new_home
QQ="$BUILDDIR/tests/qmp-query"
[ -x "$QQ" ] || skip_all "tests/qmp-query is not built"
fx=$SRCDIR/fixtures/host

# Peripheral ids QEMU has (those of -device and device_add), one a line.
peripherals() { "$QQ" "$PHYLLOME_HOME/run/$1/qmp.sock" qom-list '{"path":"/machine/peripheral"}' |
                  jq -r '.[] | select(.type | startswith("child<")) | "\(.name) \(.type)"'; }

# --- USB: at start and hot-plugged ---
u=u$$
lc_create "$u"
out=$("$PHYLLO" usb attach "$u" 1234:0001 2>&1); is "$?" 0 "usb attach on a stopped VM: $out"
"$PHYLLO" start "$u" >/dev/null 2>&1; is "$?" 0 "a VM with a USB device (absent on this host) starts"
like "$(peripherals "$u")" "usb-1234_0001 child<usb-host>" "QEMU has the usb-host given at start"
out=$("$PHYLLO" usb attach "$u" 1234:5678 2>&1); rc=$?
is "$rc" 0 "usb attach on the running VM"
like "$out" "hot-plugged into the running VM" "it says it hot-plugged"
like "$(peripherals "$u")" "usb-1234_5678 child<usb-host>" "QEMU has the hot-plugged usb-host"
like "$("$PHYLLO" show "$u")" "devices = 1234:0001 1234:5678" "the definition keeps both"
out=$("$PHYLLO" usb attach "$u" 1234:5678 2>&1); is "$?" 1 "attaching it twice is refused"
like "$out" "already attached" "... with the reason"
out=$("$PHYLLO" usb detach "$u" 1234:5678 2>&1); is "$?" 0 "usb detach on the running VM: $out"
p=$(peripherals "$u")
ok $([[ "$p" != *usb-1234_5678* && "$p" == *usb-1234_0001* ]]; echo $?) "QEMU dropped the detached one only"
out=$("$PHYLLO" usb attach "$u" 1234:56789 2>&1); is "$?" 2 "a malformed id is refused"
like "$out" "not VENDOR:PRODUCT" "... saying what it wants"
# 3: the guest did not shut down within the 5 s and was terminated (issue 19).
"$PHYLLO" stop "$u" --timeout 5 >/dev/null 2>&1; rc=$?; ok $([ $rc = 0 ] || [ $rc = 3 ]; echo $?) "stop ($rc)"

# --- --gpu virgl needs a display that can do GL ---
out=$("$PHYLLO" create g$$ --profile linux --gpu virgl --display vnc 2>&1); is "$?" 2 "--gpu virgl --display vnc is refused"
like "$out" "needs a display that can do GL.*vnc" "... with the reason"

# --- PCI passthrough on fixture copies (--root) ---
amd=$(mktemp -d /tmp/phyllome-test-root.XXXXXX); intel=$(mktemp -d /tmp/phyllome-test-root.XXXXXX)
trap 'rm -rf "$amd" "$intel"; lc_cleanup' EXIT
cp -a "$fx/amd-laptop-shared-group/." "$amd/"; cp -a "$fx/intel-desktop-iommu/." "$intel/"
p=p$$
lc_create "$p"
out=$("$PHYLLO" --root "$amd" device attach "$p" 0000:01:00.0 2>&1); rc=$?
is "$rc" 1 "AMD laptop: the GPU in a shared group is refused"
for m in "0000:02:00.0 (driver xhci_hcd)" "0000:03:00.0 (driver rtw_8821ce)" "0000:04:00.0 (driver nvme)"; do
  like "$out" "${m//[().]/.}" "the refusal names $m"
done
out=$("$PHYLLO" --root "$intel" device attach "$p" 0000:01:00.0 2>&1); is "$?" 1 "Intel: the boot display GPU is refused"
like "$out" "boot display.*--force" "... naming the reason and --force"
out=$("$PHYLLO" --root "$intel" device attach "$p" 0000:99:00.0 2>&1); is "$?" 1 "an absent device is refused"

# The start moves the GPU to vfio-pci (plain files here: no kernel moves the
# driver), the real QEMU refuses vfio-pci,host= and the failure gives back.
for d in "$intel"/sys/bus/pci/devices/*; do : >"$d/driver_override"; done
for d in nvidia snd_hda_intel vfio-pci; do
  mkdir -p "$intel/sys/bus/pci/drivers/$d"; : >"$intel/sys/bus/pci/drivers/$d/bind"; : >"$intel/sys/bus/pci/drivers/$d/unbind"
done
: >"$intel/sys/bus/pci/drivers_probe"
"$PHYLLO" --root "$intel" device attach "$p" 0000:01:00.0 --force >/dev/null 2>&1; is "$?" 0 "attach --force"
out=$("$PHYLLO" --root "$intel" start "$p" 2>&1); rc=$?
is "$rc" 1 "the start fails"
like "$out" "vfio-pci,id=hostdev0,host=0000:01:00.0.*no such host device" "with QEMU's own words"
is "$(cat "$intel/sys/bus/pci/drivers/nvidia/unbind")" 0000:01:00.0 "the GPU was unbound from nvidia"
is "$(cat "$intel/sys/bus/pci/drivers_probe")" 0000:01:00.1 "and probed (the audio function last)"
is "$(od -An -c "$intel/sys/bus/pci/devices/0000:01:00.0/driver_override" | tr -d ' ')" '\n' \
  "the failure cleared the GPU's driver_override (given back)"
ok $([ ! -e "$PHYLLOME_HOME/run/$p/devices.state" ]; echo $?) "devices.state is gone"
is "$(lc_state "$p")" failed "status: failed"

# --- single-GPU mode: the host display stops first and comes back ---
s=s$$
lc_create "$s"
: >"$intel/sys/bus/platform/drivers/efi-framebuffer/bind"; : >"$intel/sys/bus/platform/drivers/efi-framebuffer/unbind"
out=$("$PHYLLO" --root "$intel" device attach "$s" 0000:00:02.0 --single-gpu 2>&1); is "$?" 1 "--single-gpu on the iGPU is refused"
like "$out" "not the GPU of the host's display" "... it is not the display's card"
out=$("$PHYLLO" --root "$intel" device attach "$s" 0000:01:00.0 --single-gpu 2>&1); is "$?" 0 "--single-gpu on the display GPU, no --force"
like "$out" "single-GPU mode" "attach says what the mode does"
like "$("$PHYLLO" show "$s")" "single-gpu = on" "the definition records the mode"
out=$("$PHYLLO" --root "$intel" start "$s" 2>&1); is "$?" 1 "the start fails (the real QEMU has no such host device)"
is "$(cat "$intel/sys/bus/platform/drivers/efi-framebuffer/unbind")" efi-framebuffer.0 "efifb was unbound first"
# (No kernel moves efifb's driver link in plain files, so the restore sees it
# bound; test-single-gpu covers the rebind with a kernel hook.)
is "$(cat "$intel/sys/class/vtconsole/vtcon1/bind")" 1 "the console left the framebuffer and came back"
ok $([ ! -e "$PHYLLOME_HOME/run/$s/host-display.state" ]; echo $?) "host-display.state is gone"
"$PHYLLO" --root "$intel" device detach "$s" 0000:01:00.0 >/dev/null; is "$?" 0 "detach the GPU"
ok $("$PHYLLO" show "$s" | grep -q single-gpu; [ $? -ne 0 ]; echo $?) "the mode left with the GPU"
tap_done

#!/bin/bash
# A fresh Debian 12, reproduced with the real QEMU: qemu-system-x86 without
# its Recommends lacks the modules of qemu-system-gui (3D, the gtk and sdl
# displays, PulseAudio).  As root, in a private mount namespace, QEMU's
# module directory is covered by a copy without the .so files that
# `dpkg -L qemu-system-gui` lists (QEMU_MODULE_DIR only adds a directory,
# it hides nothing).  Then: the capability probe succeeds and records the
# 3D devices absent; host check names the missing modules and the package;
# a VM that needs 3D (or a gtk window) is refused at create, argv and start
# naming qemu-system-gui; a VM with --gpu std and the profile's sound boots.
set -u
. "$(dirname "$0")/tap.sh"
MODDIR=/usr/lib/x86_64-linux-gnu/qemu
if [ "${PHYLLOME_MODULES_HIDDEN:-}" != 1 ]; then
  [ "$(id -u)" = 0 ] || skip_all "needs root (a private mount namespace hides QEMU's modules)"
  command -v unshare >/dev/null && command -v dpkg >/dev/null || skip_all "needs unshare and dpkg (Debian)"
  [ -d "$MODDIR" ] || skip_all "no QEMU module directory $MODDIR"
  dpkg -L qemu-system-gui >/dev/null 2>&1 ||
    skip_all "qemu-system-gui is not installed: there is nothing to hide (scripts/deps.sh installs it)"
  # The mounts below exist only in this namespace and end with it.
  exec unshare -m --propagation private env PHYLLOME_MODULES_HIDDEN=1 "$0" "$@"
fi
. "$(dirname "$0")/lifecycle-lib.sh"
lc_new_home

copy=$PHYLLOME_HOME/qemu-modules
mkdir "$copy" && cp -a "$MODDIR/." "$copy/" && chmod 755 "$copy"
gui=$(dpkg -L qemu-system-gui | grep "^$MODDIR/.*\.so\$")
for f in $gui; do rm -f "$copy/${f##*/}"; done
mount --bind "$copy" "$MODDIR" || skip_all "cannot bind-mount over $MODDIR"
hidden=0
for f in $gui; do [ -e "$f" ] && hidden=1; done
ok $hidden "qemu-system-gui's modules are hidden: $(echo "$gui" | sed 's|.*/||' | tr '\n' ' ')"
[ $hidden = 0 ] || { tap_done; exit 1; }

# The probe: QEMU dies listing virtio-vga-gl's properties; the probe does not.
out=$("$PHYLLO" caps --json 2>&1); ok $? "phyllo caps succeeds with the modules missing" || diag "$out"
absent=$(jq -r '.absent[]' <<<"$out" 2>/dev/null | tr '\n' ',')
like "$absent" "virtio-vga-gl virtio-gpu-gl-device" "virtio-vga-gl is recorded absent, lacking virtio-gpu-gl-device"
is "$(jq -r '[.displays[] | select(. == "gtk" or . == "sdl")] | length' <<<"$out")" 0 "no gtk or sdl display"
is "$(jq -r '[.audiodevs[] | select(. == "pa")] | length' <<<"$out")" 0 "no pa audio driver"
is "$(jq -r '[.devices[] | select(. == "VGA" or . == "virtio-vga" or . == "virtio-blk-pci")] | length' <<<"$out")" 3 \
  "VGA, virtio-vga and virtio-blk-pci still there"

out=$("$PHYLLO" caps 2>&1)
like "$(grep '^absent: *virtio-vga-gl' <<<"$out")" "install qemu-system-gui" "phyllo caps lists virtio-vga-gl as absent with the package"
like "$(grep 'display gtk' <<<"$out")" "no\$" "phyllo caps: no gtk display"

out=$("$PHYLLO" host check 2>&1); ok $? "host check runs"
like "$(grep -A1 '  QEMU modules:' <<<"$out")" "^WARN  QEMU modules: 14 of the 18 modules Phyllome uses are in $MODDIR.*
      remedy: apt-get install qemu-system-gui\$" "host check counts the modules found and names the package"
for m in hw-display-virtio-gpu-gl.so ui-gtk.so ui-sdl.so audio-pa.so; do
  like "$(grep -A1 "QEMU module $m:" <<<"$out")" "^WARN  QEMU module $m: not in $MODDIR: no .*\\(package qemu-system-gui\\)
      remedy: apt-get install qemu-system-gui\$" "host check: $m missing, package qemu-system-gui"
done
json=$("$PHYLLO" host check --json)
is "$(jq -r '[.qemu_modules.missing[] | select(.package == "qemu-system-gui") | .file] | sort | join(" ")' <<<"$json")" \
  "audio-pa.so hw-display-virtio-gpu-gl.so ui-gtk.so ui-sdl.so" "host check --json: the missing modules with their package"

# 3D is refused where it is asked for, naming the package.
want="asks for virtio-vga-gl \\(3D, --gpu virgl\\), which this QEMU lacks: install qemu-system-gui"
out=$("$PHYLLO" create "gl$$" --profile linux --gpu virgl --display gtk --no-uefi --no-disk \
        --kernel "$GUEST/vmlinux" 2>&1); rc=$?
ok $((rc == 0)) "create --gpu virgl is refused"
like "$out" "VM 'gl$$' $want" "create names the device and the package"
[ ! -e "$PHYLLOME_HOME/vms/gl$$" ]; ok $? "nothing is left of the refused VM"
# A VM defined while the modules were there (its definition says virgl).
lc_create "old$$" --gpu std
sed -i 's/^type = none$/type = gtk/; s/^type = std$/type = virgl/' "$PHYLLOME_HOME/vms/old$$/vm.conf"
out=$("$PHYLLO" argv "old$$" 2>&1); rc=$?
ok $((rc == 0)) "argv of a virgl VM is refused"
like "$out" "VM 'old$$' $want" "argv names the package"
out=$("$PHYLLO" start "old$$" 2>&1); rc=$?
ok $((rc == 0)) "start of a virgl VM is refused"
like "$out" "VM 'old$$' $want" "start names the package"
is "$(lc_state "old$$")" "failed" "the refused VM is recorded as failed, not running (issue 19: a failed start says so)"
# A gtk window without ui-gtk.so: refused the same way.
out=$("$PHYLLO" create "gtk$$" --profile linux --gpu std --display gtk --no-uefi --no-disk \
        --kernel "$GUEST/vmlinux" 2>&1); rc=$?
ok $((rc == 0)) "create --display gtk is refused"
like "$out" "asks for -display gtk \\(gtk display, --display gtk\\), which this QEMU lacks: install qemu-system-gui" \
  "and names the package"

# --gpu std with the profile's display (SPICE) and its sound boots.
vm=std$$
lc_create "$vm" --gpu std --display spice
argv=$("$PHYLLO" argv "$vm" 2>&1); ok $? "argv of the --gpu std VM" || diag "$argv"
like "$argv" "-audiodev spice,id=snd0" "the profile's sound, over SPICE"
out=$("$PHYLLO" start "$vm" 2>&1); ok $? "start" || diag "$out"
lc_wait_log "$vm" 'PHYLLOME-GUEST-READY' 120; ok $? "the guest boots to its marker"
is "$(lc_state "$vm")" "running" "the VM runs"
"$PHYLLO" stop "$vm" >/dev/null 2>&1; ok $? "stop"
tap_done

#!/bin/bash
# 3D (virgl) for real under Xvfb with Mesa's llvmpipe: 'phyllo create --gpu
# virgl --display sdl' + 'phyllo start' with DISPLAY on a private Xvfb boots
# the tiny guest, QEMU has Mesa's GL driver loaded, and the guest's
# virtio-gpu driver reports +virgl.  egl-headless and SPICE gl=on need a
# render node, which this host lacks: their refusals are checked.  One boot.
set -u
. "$(dirname "$0")/tap.sh"
command -v Xvfb >/dev/null || skip_all "Xvfb is not installed (apt-get install xvfb libgl1-mesa-dri libegl1 libgl1)"
. "$(dirname "$0")/lifecycle-lib.sh"
lc_new_home

# Xvfb writes its display number to -displayfd once it accepts clients: no polling.
exec {dfd}< <(exec Xvfb -displayfd 1 -screen 0 1024x768x24 +extension GLX -nolisten tcp -nolisten local 2>"$PHYLLOME_HOME/xvfb.log")
xvfb=$!
lc_extra_pids+=("$xvfb")
read -r -t 30 -u "$dfd" dnum || { diag "$(cat "$PHYLLOME_HOME/xvfb.log")"; skip_all "Xvfb did not start"; }

vm=gl$$
lc_create "$vm" --gpu virgl --display sdl --append "console=ttyS0 phyllome.gpu"
# No sound: the audio backend of a desktop display wants PulseAudio, absent here.
printf '\n[sound]\ntype = none\n' >>"$PHYLLOME_HOME/vms/$vm/vm.conf"
argv=$("$PHYLLO" argv "$vm" 2>/dev/null)
like "$argv" "virtio-vga-gl" "the VM gets virtio-vga-gl"
like "$argv" "-display sdl,gl=on" "on the SDL display with GL"

out=$(DISPLAY=:$dnum "$PHYLLO" start "$vm" 2>&1); ok $? "start with DISPLAY=:$dnum (Xvfb)" || diag "$out"
lc_wait_log "$vm" 'PHYLLOME-GUEST-READY' 120; ok $? "the guest boots"
logs=$("$PHYLLO" logs "$vm")
like "$logs" 'PHYLLOME-GUEST-GPU features: \+virgl' "the guest's virtio-gpu driver reports +virgl"
# No blob resources: no property tells whether QEMU's virglrenderer has
# them, and Debian 12's (0.10.4) has not, even under QEMU 10.0 (docs/host.md).
unlike_blob=$([[ $argv != *blob=* && $argv != *hostmem=* ]]; echo $?)
ok "$unlike_blob" "argv: virtio-vga-gl without blob= or hostmem="
like "$logs" 'PHYLLOME-GUEST-GPU features: \+virgl \+edid -resource_blob -host_visible' \
  "the guest's driver sees no blob resources (-resource_blob -host_visible)"
qpid=$(lc_field "$vm" qemu_pid)
# QEMU made its GL context through Mesa: its DRI/gallium driver is mapped.
like "$(grep -oE '[^/ ]*(swrast_dri|gallium|kms_swrast)[^ ]*\.so[^ ]*' "/proc/$qpid/maps" 2>/dev/null | sort -u | tr '\n' ' ')" \
  '(swrast_dri|gallium)' "QEMU has Mesa's GL driver loaded"
"$PHYLLO" stop "$vm" >/dev/null 2>&1; ok $? "stop"

# The render-node modes: refused here with the reason.
if ! ls /dev/dri/renderD* >/dev/null 2>&1; then
  out=$("$PHYLLO" create "sp$$" --profile linux --gpu virgl --display spice --no-uefi 2>&1); rc=$?
  ok $((rc == 0)) "virgl over SPICE is refused without a render node"
  like "$out" "no render node \\(/dev/dri/renderD\\*\\); use \\[gpu\\] type = virtio" "the refusal says why and what to use"
  out=$(DISPLAY=:$dnum "$PHYLLO" host check 2>&1)
  like "$out" "virgl with egl-headless: there is no GPU render node" "host check says egl-headless lacks a render node"
  like "$out" "virgl with SPICE gl=on: there is no GPU render node" "host check says SPICE gl=on lacks a render node"
else
  diag "this host has a render node: the refusal paths are not reachable here"
fi
tap_done

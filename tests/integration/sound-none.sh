#!/bin/bash
# Sound never fails a start: a VM in a gtk window (under a private Xvfb)
# with the profile's sound device and no PulseAudio/PipeWire server that
# QEMU's user can reach starts with -audiodev none, 'start' warns in one
# line, the guest boots, and 'status' (and --json) says why there is no
# sound.  (QEMU's pa driver refuses to start without a server.)  One boot.
set -u
. "$(dirname "$0")/tap.sh"
command -v Xvfb >/dev/null || skip_all "Xvfb is not installed (apt-get install xvfb)"
. "$(dirname "$0")/lifecycle-lib.sh"
# No server of the caller's session may count: QEMU as root's 'nobody' has none,
# a user's own is hidden from the environment; one in /run/user/UID would be found.
[ "$(id -u)" = 0 ] || [ ! -S "/run/user/$(id -u)/pulse/native" ] ||
  skip_all "this user's session has a PulseAudio/PipeWire server, which QEMU would use"
[ ! -S /run/pulse/native ] || skip_all "a system-wide PulseAudio server runs here (/run/pulse/native)"
unset PULSE_SERVER
lc_new_home
export XDG_RUNTIME_DIR=$PHYLLOME_HOME/xdg
mkdir -m 700 "$XDG_RUNTIME_DIR"

exec {dfd}< <(exec Xvfb -displayfd 1 -screen 0 1024x768x24 -nolisten tcp -nolisten local 2>"$PHYLLOME_HOME/xvfb.log")
xvfb=$!
lc_extra_pids+=("$xvfb")
read -r -t 30 -u "$dfd" dnum || { diag "$(cat "$PHYLLOME_HOME/xvfb.log")"; skip_all "Xvfb did not start"; }

vm=snd$$
lc_create "$vm" --gpu std --display gtk
is "$("$PHYLLO" show "$vm" --json | jq -r '.sound.type // .sound')" "hda" "the profile's sound device (hda on QEMU 7.2)"
argv=$("$PHYLLO" argv "$vm" 2>"$PHYLLOME_HOME/argv.err"); ok $? "argv"
like "$argv" "-audiodev none,id=snd0" "argv: the sound device plays into -audiodev none"
like "$(cat "$PHYLLOME_HOME/argv.err")" "warning: VM '$vm' has no sound \\(-audiodev none\\): no PulseAudio or PipeWire server" \
  "argv warns why"

out=$(DISPLAY=:$dnum "$PHYLLO" start "$vm" 2>&1); ok $? "start in a gtk window without a sound server" || diag "$out"
is "$(grep -c 'has no sound' <<<"$out")" 1 "start warns about the sound once"
like "$(grep 'has no sound' <<<"$out")" "^phyllo: warning: VM '$vm' has no sound \\(-audiodev none\\): no PulseAudio or PipeWire server that QEMU's user '[^']+' can reach \\(looked for [^)]*pulse/native\\)\$" \
  "in one line naming the user and where it looked"
lc_wait_log "$vm" 'PHYLLOME-GUEST-READY' 120; ok $? "the guest boots"
is "$(lc_state "$vm")" "running" "the VM runs"
qpid=$(lc_field "$vm" qemu_pid)
like "$(tr '\0' ' ' <"/proc/$qpid/cmdline")" "-display gtk .*-audiodev none,id=snd0" "QEMU runs with the gtk display and -audiodev none"
st=$("$PHYLLO" status "$vm")
like "$(grep '  sound:' <<<"$st")" "^  sound: +none: no sound, no PulseAudio or PipeWire server that QEMU's user" "status says why there is no sound"
json=$("$PHYLLO" status "$vm" --json)
is "$(jq -r .sound.backend <<<"$json")" "none" "status --json: sound.backend none"
like "$(jq -r .sound.why_none <<<"$json")" "^no PulseAudio or PipeWire server" "status --json: sound.why_none"
"$PHYLLO" stop "$vm" >/dev/null 2>&1; ok $? "stop"
tap_done

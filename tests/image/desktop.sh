#!/bin/bash
# SPDX-License-Identifier: MIT
# Phyllome OS's desktop variant inside Phyllome (issue 16): builds the desktop
# image with scripts/build-image (unless PHYLLOME_DESKTOP_IMAGE names one),
# boots it with phyllo (UEFI, TCG, a std VGA display, no network) and reads
# the serial console: the self-test's desktop mode (phyllome.selftest=desktop,
# added as the default boot entry of the test's copy) makes a user that GDM
# logs in automatically into the Phyllome session, waits for GNOME Shell and
# for the app's first frame, reports them, then makes the common report (no
# failed unit, phyllod, memory).  The test takes screenshots of the guest's
# display through phyllod's GET /v1/vms/NAME/screenshot (QMP screendump) and
# requires the app's window in them.  PHYLLOME_SCREENSHOTS=DIR keeps them.
set -u
. "$(dirname "$0")/../integration/tap.sh"
root=${PHYLLOME_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$(dirname "$0")/lib.sh"
image_test_start curl python3
vm=desk$$
. "$(dirname "$0")/../integration/phyllod-lib.sh"

# --- build ---
image_build desktop "${PHYLLOME_DESKTOP_IMAGE:-}"
manifest=${img%.raw}.manifest.json
size=$(stat -c %s "$img")
diag "image: $size bytes ($(du -B1 "$img" | cut -f1) allocated), $(jq '.packages | length' "$manifest") packages"
is "$(jq -r '[.packages[].name] | map(select(. == "gdm3" or . == "gnome-shell" or . == "gnome-session-bin" or . == "linux-image-amd64" or . == "qemu-system-x86")) | length' "$manifest")" 5 \
  "the manifest has GDM, GNOME Shell, gnome-session, the kernel and QEMU"
# No other application: GNOME's own apps are not pulled in.
is "$(jq -r '[.packages[].name | select(test("^(nautilus|gnome-terminal|gnome-console|gnome-control-center|gnome-software|firefox-esr|epiphany-browser|gnome-text-editor|gedit|evince|gnome-tour|yelp)$"))] | join(",")' "$manifest")" "" \
  "and no other application (file manager, terminal, settings, software, browser, editor, tour)"

# --- the VM: UEFI, a std VGA (bochs-drm: GNOME Shell renders with llvmpipe),
# no network, 2 vCPUs, 4G ---
vms+=("$vm")
# Without AVX2 too: with it llvmpipe's code (gather instructions, vpgatherdd)
# crashed GNOME Shell under QEMU 7.2's TCG (segfault at a heap address, the
# session gone), which emulates AVX2 since 7.2.
image_cpu=max,-svm,-vmx,-la57,-avx2
image_vm_create "$vm" "$img" 8G --gpu std --memory 4G --cpus 2
V=$PHYLLOME_HOME/vms/$vm
image_selftest_entry "$vm" desktop

# phyllod on a socket of its own, which phyllo does not use: phyllo reads
# the console log itself.
S=$PHYLLOME_HOME/shots.sock
pd_start --socket "$S"; ok $? "phyllod starts (the screenshots come through it)"
# shot NAME: the guest's screen through phyllod, as $PHYLLOME_HOME/NAME.png;
# prints what it shows (desktop-png.py).
shot() {
  curl -sS --max-time 120 --unix-socket "$S" "http://phyllod/v1/vms/$vm/screenshot" |
    jq -r 'select(.format == "png") | .data' | base64 -d >"$PHYLLOME_HOME/$1.png" 2>/dev/null &&
    [ -s "$PHYLLOME_HOME/$1.png" ] && "$(dirname "$0")/desktop-png.py" "$PHYLLOME_HOME/$1.png"
  [ -z "${PHYLLOME_SCREENSHOTS:-}" ] || cp "$PHYLLOME_HOME/$1.png" "$PHYLLOME_SCREENSHOTS/image-desktop-$1.png" 2>/dev/null
}

t0=$(date +%s)
"$PHYLLO" start "$vm" >/dev/null 2>&1; ok $? "start"
image_wait_console "$vm" 3600 'PHYLLOME-SELFTEST desktop-done='
rc=$?
ok $rc "the desktop self-test reports to its end on the serial console ($(( $(date +%s) - t0 )) s)"
# The app drew its first frame; GNOME Shell (llvmpipe, under TCG) shows it
# on the screen some time later: the screen is looked at until the app's
# window is on it (Adwaita's light window: GDM's and GNOME Shell's own
# screens are dark), 10 minutes at most.
light() { sed -n 's/.* light=\([0-9.]*\).*/\1/p' <<<"$1"; }
t1=$(date +%s)
for _ in $(seq 60); do
  s1=$(shot app)
  awk -v l="$(light "$s1")" 'BEGIN { exit !(l >= 0.25) }' && break
  sleep 10
done
ok $(awk -v l="$(light "$s1")" 'BEGIN { exit !(l >= 0.25) }'; echo $?) \
  "the app's window is on the screen $(( $(date +%s) - t1 )) s after the self-test's report ($(( $(date +%s) - t0 )) s after the start; $s1)"
image_wait_console "$vm" 1200 'PHYLLOME-SELFTEST done='
ok $? "the common self-test reports to its end ($(( $(date +%s) - t0 )) s)"
report=$("$PHYLLO" logs "$vm" | tr -d '\r' | grep -a 'PHYLLOME-SELFTEST \|PHYLLOME-HOST-CHECK-JSON ')
[ $rc = 0 ] || diag "$("$PHYLLO" logs "$vm" | tail -n 60)"
val() { printf '%s\n' "$report" | sed -n "s/^.*PHYLLOME-SELFTEST $1=//p" | tail -n1; }
# uptime at each step of the way up
for k in gdm session shell app window; do
  diag "desktop-up-$k at $(val desktop-up-$k) s of uptime"
done
like "$(val desktop-user)" "groups=.*\(phyllome\)" "the self-test user is in group phyllome ($(val desktop-user))"
like "$(val desktop-up-window)" '^[0-9.]+$' "GDM logged the user in, GNOME Shell and the app came up, the app drew its window ($(val desktop-up-window) s of uptime)"
like "$(val desktop-session)" "^wayland,user,active,gdm-autologin$" "the user's session is a Wayland one, active, GDM's automatic login ($(val desktop-session))"
like "$(val desktop-session-cmd)" "--session=phyllome" "it is the Phyllome session ($(val desktop-session-cmd))"
like "$(val desktop-first-run)" "first run: opening This computer" "the first run opens This computer (the host check)"
like "$(val desktop-app-usable)" "^phyllome: usable after [0-9.]+ ms with 0 VMs listed" "the app lists the (no) VMs of its phyllod ($(val desktop-app-usable))"
like "$(val desktop-phyllod)" '"version"' "the user's phyllod answers ($(val desktop-phyllod))"
like "$(val desktop-phyllod-host)" '"kvm":"FAIL"' "and its host check says that this TCG guest has no KVM ($(val desktop-phyllod-host))"
# what the user runs: the shell, the session's daemons, phyllome and phyllod;
# nothing that is an application of its own
procs=$(val desktop-processes)
diag "the user's processes: $procs"
is "$(printf '%s\n' "$procs" | tr ',' '\n' | grep -E '^(nautilus|gnome-terminal|gnome-control-c|gnome-software|firefox|gnome-initial-s|gnome-tour)' | paste -sd, -)" "" \
  "no other application runs in the session (no first-login assistant either)"
# The kernel reports each crashed process on the console: GNOME Shell under
# llvmpipe with AVX2 (above), and a settings daemon the session hides did.
crashes=$("$PHYLLO" logs "$vm" | tr -d '\r' | grep -a -o '[^ ]*: segfault at .*' | cut -c1-160)
is "$crashes" "" "no process crashed during the boot and the session"
is "$(val state)" running "systemd reached a running system"
ok $(printf '%s\n' "$report" | grep -aq 'PHYLLOME-SELFTEST failed=$'; echo $?) "no failed unit ($(val failed))"
printf '%s\n' "$report" | grep -a 'PHYLLOME-SELFTEST failed-log-' | sed 's/^.*PHYLLOME-SELFTEST /# /'
like "$(val phyllod-version)" '^\{.*"version"' "the system phyllod answers on its socket too"
is "$(val ssh)" "disabled,inactive" "SSH is off"
is "$(val nft-input-policy)" "policy drop" "the firewall drops inbound by default"
diag "idle memory in use with the session up: $(val mem-used-mib) MiB; $(val startup)"
diag "slowest units: $(val blame)"
diag "gpu: $(val desktop-gpu)"

# --- the screen, with the session up for a while ---
s2=$(shot session)
colours=$(sed -n 's/.* colours=\([0-9]*\).*/\1/p' <<<"$s2")
ok $([ "${colours:-0}" -ge 50 ]; echo $?) "the screen is not blank (${colours:-?} colours)"
ok $(awk -v l="$(light "$s2")" 'BEGIN { exit !(l >= 0.25) }'; echo $?) \
  "the app's light window still covers a good part of it after the report ($s2)"

"$PHYLLO" stop "$vm" --force >/dev/null 2>&1
ok $? "stop the guest"
tap_done

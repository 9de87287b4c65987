#!/usr/bin/env bash
# For every profile: `phyllo create` with defaults, `phyllo argv`, then the
# real QEMU started paused (-S, TCG) with exactly that argv — swtpm started
# for the TPM profiles — must answer query-status over QMP and quit, leaving
# no process behind.
set -u
. "$(dirname "$0")/tap.sh"
command -v qemu-system-x86_64 >/dev/null || skip_all "qemu-system-x86_64 is not installed"
command -v swtpm >/dev/null || skip_all "swtpm is not installed"
tap_new_home
helper="$BUILDDIR/tests/qemu-paused"

check_profile() { # check_profile PROFILE NAME [create options...]
  local profile=$1 name=$2; shift 2
  local run="$PHYLLOME_HOME/run/$name" vmdir="$PHYLLOME_HOME/vms/$name"
  "$PHYLLO" create "$name" --profile "$profile" --display none "$@" >/dev/null 2>"$PHYLLOME_HOME/err"
  ok $? "create $profile VM with defaults" || { diag "$(cat "$PHYLLOME_HOME/err")"; return; }
  "$PHYLLO" argv "$name" --null --paused --tcg >"$PHYLLOME_HOME/args" 2>"$PHYLLOME_HOME/err"
  ok $? "argv of the $profile VM" || { diag "$(cat "$PHYLLOME_HOME/err")"; return; }
  mkdir -p "$run"
  local json; json=$("$PHYLLO" show "$name" --json)
  # The per-VM UEFI vars copy, from the template matching Secure Boot.
  if tr '\0' '\n' <"$PHYLLOME_HOME/args" | grep -q 'node-name=fw-vars' && [ ! -f "$vmdir/OVMF_VARS.fd" ]; then
    if tr '\0' '\n' <"$PHYLLOME_HOME/args" | grep -q 'secboot'; then cp /usr/share/OVMF/OVMF_VARS_4M.ms.fd "$vmdir/OVMF_VARS.fd"
    else cp /usr/share/OVMF/OVMF_VARS_4M.fd "$vmdir/OVMF_VARS.fd"; fi
  fi
  local tpm_pid=
  if tr '\0' '\n' <"$PHYLLOME_HOME/args" | grep -q '^emulator,id=tpm0'; then
    mkdir -p "$vmdir/tpm"
    # --daemon returns once the control socket exists: no waiting loop needed.
    swtpm socket --tpm2 --tpmstate dir="$vmdir/tpm" --ctrl type=unixio,path="$run/swtpm.sock" \
      --pid file="$run/swtpm.pid" --terminate --daemon
    ok $? "swtpm started for $profile"
    tpm_pid=$(cat "$run/swtpm.pid"); tap_own_pid "$tpm_pid"
  fi
  local status
  status=$("$helper" "$PHYLLOME_HOME/args" "$run/qmp.sock" 2>"$PHYLLOME_HOME/err")
  ok $? "real QEMU accepts the $profile argv" || diag "$(cat "$PHYLLOME_HOME/err")"
  is "$status" "prelaunch" "$profile VM answers query-status over QMP, paused before launch"
  if [ -n "$tpm_pid" ]; then
    # swtpm --terminate ends when QEMU closes the connection.
    timeout 10 tail --pid="$tpm_pid" -f /dev/null
    ok $? "swtpm of $profile ended with QEMU"
  fi
}

check_profile windows11 p-windows11 --cpus 2
check_profile windows10 p-windows10 --cpus 2
check_profile linux p-linux
check_profile freebsd p-freebsd
check_profile other p-other
# A Windows 11 VM with install media and virtio drivers attached.
truncate -s 10M "$PHYLLOME_HOME/win11.iso" "$PHYLLOME_HOME/virtio-win.iso"
check_profile windows11 p-win11-install --cpus 2 --iso "$PHYLLOME_HOME/win11.iso" --drivers "$PHYLLOME_HOME/virtio-win.iso"
# SPICE on its unix socket, with the two USB redirection channels the model
# adds for it (issue 6: USB redirection over SPICE).
check_profile linux p-linux-spice --display spice
is "$(tr '\0' '\n' <"$PHYLLOME_HOME/args" | grep -c '^usb-redir,')" 2 "the SPICE VM has two usb-redir devices"
"$PHYLLO" create p-linux-spice1 --profile linux --display spice --usb-redirect 1 >/dev/null &&
  "$PHYLLO" argv p-linux-spice1 --null --tcg | tr '\0' '\n' | grep -c '^usb-redir,' | grep -qx 1
ok $? "--usb-redirect 1 gives one channel"
"$PHYLLO" create p-linux-vnc --profile linux --display vnc --usb-redirect 2 >/dev/null 2>"$PHYLLOME_HOME/err"
[ $? -ne 0 ]; ok $? "--usb-redirect with a VNC display is refused"
grep -q "needs \[display\] type = spice" "$PHYLLOME_HOME/err"
ok $? "the refusal says redirection needs SPICE" || diag "$(cat "$PHYLLOME_HOME/err")"

left=$(pgrep -f "guest=p-" || true)
is "$left" "" "no QEMU of this test is left running"
tap_done

#!/bin/bash
# SPDX-License-Identifier: MIT
# Boots through OVMF (UEFI) and a windows11-profile VM (Secure Boot OVMF,
# SMM, emulated TPM through swtpm; the profile picks its 2 vCPUs) with the tiny guest: the guest must see
# the TPM, QEMU must be confined, and stopping leaves no swtpm behind.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
command -v swtpm >/dev/null && command -v swtpm_setup >/dev/null || skip_all "swtpm is not installed"
lc_new_home

u=u$$ w=w$$

# --- UEFI: OVMF loads the EFI-stub kernel ---
lc_vms+=("$u")
"$PHYLLO" create "$u" --profile linux --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" \
  --append "console=ttyS0" --display spice --memory 256M --cpus 1 --uefi >/dev/null
ok $? "create a UEFI VM with a SPICE display"
"$PHYLLO" start "$u" >/dev/null 2>&1; ok $? "start it"
lc_wait_log "$u" 'PHYLLOME-GUEST-READY' 120; ok $? "the guest reaches READY through OVMF"
like "$("$PHYLLO" logs "$u")" "PHYLLOME-GUEST-INFO .*efi=yes" "the guest sees EFI firmware"
ok $([ -s "$PHYLLOME_HOME/vms/$u/OVMF_VARS.fd" ]; echo $?) "the VM has its own UEFI vars file"
ok $([ -S "$PHYLLOME_HOME/run/$u/spice.sock" ]; echo $?) "QEMU made its SPICE socket in the run dir"
out=$(PATH=/nonexistent "$PHYLLO" view "$u" 2>&1)
ok $([ $? -ne 0 ]; echo $?) "view without remote-viewer fails"
like "$out" "install virt-viewer \(apt-get install virt-viewer\)" "and says what to install"
like "$out" "spice\+unix://$PHYLLOME_HOME/run/$u/spice.sock" "and names the SPICE URI"
"$PHYLLO" stop "$u" >/dev/null; ok $? "stop"
is "$(lc_state "$u")" stopped "status: stopped"
is "$(lc_sockets "$u")" 0 "no socket left (SPICE's included)"

# --- a guest that ignores the power button: stop escalates to SIGTERM ---
e=e$$
lc_vms+=("$e")
"$PHYLLO" create "$e" --profile linux --display none --memory 256M --cpus 1 --uefi >/dev/null
ok $? "create a UEFI VM with an empty disk (OVMF stays in its boot menu)"
"$PHYLLO" start "$e" >/dev/null 2>&1; ok $? "start it"
q=$(lc_field "$e" qemu_pid)
t0=$(date +%s%N)
# It ignores the power button: ended at the timeout, which stop says with exit 3 (issue 19).
"$PHYLLO" stop "$e" --timeout 2 >/dev/null; is "$?" 3 "stop --timeout 2 (exit 3: terminated at the timeout)"
ms=$((($(date +%s%N) - t0) / 1000000))
ok $([ "$ms" -ge 2000 ] && [ "$ms" -lt 15000 ]; echo $?) "it waited the 2 s, then ended QEMU (${ms} ms)"
is "$(lc_state "$e")" stopped "status: stopped"
lc_alive "$q"; ok $([ $? -ne 0 ]; echo $?) "QEMU is gone"

# --- windows11 profile: TPM through swtpm ---
lc_vms+=("$w")
# Windows 11 needs 2 vCPUs; on a 2-CPU host the default budget keeps one for
# the host.  A root prefix of this host's /proc, /sys and /dev with a
# host.conf that keeps none lets the profile have both.
R=$PHYLLOME_HOME/root
mkdir -p "$R/etc/phyllome"
for d in proc sys dev; do ln -s "/$d" "$R/$d"; done
echo "reserve-cpus = 0" >"$R/etc/phyllome/host.conf"
PHYLLO_ROOT=("$PHYLLO" --root "$R")
"${PHYLLO_ROOT[@]}" create "$w" --profile windows11 --memory 4G --disk 64G --display none \
  --kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" --append "console=ttyS0" >/dev/null
ok $? "create a windows11 VM booting the test guest"
out=$("${PHYLLO_ROOT[@]}" start "$w" 2>&1); rc=$?
is "$rc" 0 "start it"
[ $rc = 0 ] || diag "$out"
q=$(lc_field "$w" qemu_pid); s=$(lc_field "$w" swtpm_pid); m=$(lc_field "$w" monitor_pid)
lc_alive "$s"; ok $? "swtpm runs (pid $s)"
is "$(cat /proc/$s/comm 2>/dev/null)" swtpm "and is swtpm"
ok $([ -d "$PHYLLOME_HOME/vms/$w/tpm" ]; echo $?) "the TPM state directory was made"
like "$(grep Seccomp: /proc/$q/status)" $'Seccomp:\t2' "QEMU runs under seccomp (mode 2)"
like "$(grep NoNewPrivs: /proc/$q/status)" $'NoNewPrivs:\t1' "QEMU has no-new-privileges"
if [ "$(id -u)" = 0 ]; then
  ok $([ "$(awk '/^Uid:/{print $2}' /proc/$q/status)" != 0 ]; echo $?) "QEMU does not run as root"
  ok $([ "$(awk '/^Uid:/{print $2}' /proc/$s/status)" != 0 ]; echo $?) "swtpm does not run as root"
fi
lc_wait_log "$w" 'PHYLLOME-GUEST-READY' 180; ok $? "the windows11 VM reaches READY"
like "$("$PHYLLO" logs "$w")" "PHYLLOME-GUEST-INFO tpm=yes" "the guest sees a TPM"
like "$("$PHYLLO" logs "$w")" "PHYLLOME-GUEST-INFO .*efi=yes" "through UEFI"
"$PHYLLO" stop "$w" >/dev/null; ok $? "stop"
is "$(lc_state "$w")" stopped "status: stopped"
lc_alive "$s"; ok $([ $? -ne 0 ]; echo $?) "swtpm is gone"
lc_alive "$q"; ok $([ $? -ne 0 ]; echo $?) "QEMU is gone"
is "$(lc_sockets "$w")" 0 "no socket left"
lc_lock_free "$w"; ok $? "the lock is free"
# The second start reuses the TPM state (swtpm_setup --not-overwrite).
"${PHYLLO_ROOT[@]}" start "$w" >/dev/null 2>&1; ok $? "start again with the existing TPM state"
"$PHYLLO" stop "$w" --force >/dev/null; ok $? "stop --force"
lc_alive "$(lc_field "$w" swtpm_pid)"; ok $([ $? -ne 0 ]; echo $?) "no swtpm left"

tap_done

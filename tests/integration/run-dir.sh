#!/bin/bash
# Issue 12, finding 2: whatever runs as QEMU's uid (a compromised QEMU,
# swtpm or passt) must not get root through the VM's runtime directory.
# Standing in for it, the test (as that uid) plants symlinks to victim
# files where root later opens qemu.log, console.log, swtpm.log and
# passt-*.log, and forges state.json + devices.root + devices.state that a
# plain `phyllo list` as root would trust.  No victim may change; root keeps
# the run dir to itself.
set -u
. "$(dirname "$0")/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "QEMU runs as another uid only when phyllo runs as root"
command -v setpriv >/dev/null || skip_all "setpriv is not installed"
command -v swtpm >/dev/null || skip_all "swtpm is not installed"
. "$(dirname "$0")/lifecycle-lib.sh"
lc_new_home
R=$PHYLLOME_HOME/run

# Victims: root-owned files a plain user cannot touch.
VD=$(mktemp -d /tmp/phyllome-victims.XXXXXX)
lc_cleanup_victims() { lc_cleanup; rm -rf "$VD"; }
trap lc_cleanup_victims EXIT
for f in qemu console swtpm passt state; do echo "precious $f" >"$VD/$f"; chmod 600 "$VD/$f"; done
untouched() { # FILE DESCRIPTION
  is "$(stat -c %U:%s "$VD/$1") $(cat "$VD/$1")" "root:$((${#1} + 10)) precious $1" "$2"
}

a=a$$ b=b$$
lc_create "$a"
printf '\n[tpm]\ntype = emulated\n' >>"$PHYLLOME_HOME/vms/$a/vm.conf"
lc_create "$b"
"$PHYLLO" start "$a" >/dev/null 2>&1; ok $? "VM $a (with swtpm and passt) starts"
q=$(lc_field "$a" qemu_pid)
quid=$(awk '/^Uid:/{print $2}' /proc/$q/status); qgid=$(awk '/^Gid:/{print $2}' /proc/$q/status)
ok $([ "$quid" != 0 ]; echo $?) "QEMU runs as uid $quid, not root"
as_qemu() { setpriv --reuid="$quid" --regid="$qgid" --clear-groups "$@"; }

# --- planted symlinks, while the VM runs, then a restart as root ---
planted=0
for pair in qemu.log:qemu console.log:console swtpm.log:swtpm passt-net0.log:passt; do
  as_qemu sh -c "rm -f '$R/$a/${pair%%:*}' && ln -s '$VD/${pair##*:}' '$R/$a/${pair%%:*}'" 2>/dev/null &&
    planted=$((planted + 1))
done
is "$planted" 0 "QEMU's uid can plant nothing in the run dir"
ok $(as_qemu touch "$R/$a/x" 2>/dev/null; [ $? -ne 0 ]; echo $?) "QEMU's uid cannot create a file there"
like "$(stat -c '%U %a' "$R/$a")" "^root 7[10]0$" "the run dir is root's, writable by root alone"
"$PHYLLO" stop "$a" --force >/dev/null 2>&1; ok $? "stop"
"$PHYLLO" start "$a" >/dev/null 2>&1; ok $? "start again"
lc_wait_log "$a" 'PHYLLOME-GUEST-READY'; ok $? "the guest boots"
"$PHYLLO" stop "$a" --force >/dev/null 2>&1
untouched qemu "root did not truncate a file through a planted qemu.log"
untouched console "nor through console.log"
untouched swtpm "nor truncate or chown one through swtpm.log"
untouched passt "nor through passt-net0.log"

# --- a run dir an older Phyllome left open to QEMU's uid (root:group 0770),
# forged while no monitor runs: state.json says running with dead pids, and
# devices.root/devices.state send the reconciliation's give-back writes
# through a fake sysfs whose files are symlinks to a victim ---
mkdir -p "$R/$b"; chown root:"$qgid" "$R/$b"; chmod 0770 "$R/$b"
F=$PHYLLOME_HOME/fake; mkdir -p "$F"; chown "$quid" "$F"
as_qemu sh -c "
  d=$F/sys/bus/pci; mkdir -p \$d/devices/0000:00:02.0 \$d/drivers/vfio-pci \$d/drivers/i915
  for f in devices/0000:00:02.0/driver_override drivers/vfio-pci/unbind drivers/i915/bind drivers_probe; do
    ln -s $VD/state \$d/\$f; done
  ln -s ../../drivers/vfio-pci \$d/devices/0000:00:02.0/driver
  printf '{ \"state\": \"running\", \"monitor_pid\": 999999, \"qemu_pid\": 999998 }\n' >$R/$b/state.json
  printf '$F\n' >$R/$b/devices.root
  printf '0000:00:02.0 i915\n' >$R/$b/devices.state" 2>/dev/null
ok $? "(QEMU's uid forged the files in a run dir open to it)"
out=$("$PHYLLO" list 2>&1); diag "$out"
untouched state "a plain 'phyllo list' as root wrote nothing through the forged files"
st=$("$PHYLLO" status "$b" --json 2>&1)
ok $(! grep -q '"crashed"\|"running"' <<<"$st"; echo $?) "the forged state is not believed: $st"
"$PHYLLO" start "$b" >/dev/null 2>&1; ok $? "a start takes the run dir back"
like "$(stat -c '%U %a' "$R/$b")" "^root 7[10]0$" "root's alone again"
ok $([ ! -e "$R/$b/devices.root" ] && [ ! -e "$R/$b/devices.state" ]; echo $?) "the forged files are gone"
"$PHYLLO" stop "$b" --force >/dev/null 2>&1
untouched state "still nothing written through them"

tap_done

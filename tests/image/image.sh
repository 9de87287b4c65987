#!/bin/bash
# SPDX-License-Identifier: MIT
# Phyllome OS inside Phyllome (issue 16): builds the headless image with
# scripts/build-image (unless PHYLLOME_IMAGE names one), boots it with phyllo
# (UEFI, no network, its disk plus an empty second one) and reads the serial
# console.  The image's self-test (phyllome-selftest.service, enabled by the
# kernel argument phyllome.selftest=, which this test adds as the default
# boot entry of its copy of the image) reports on the console, then runs
# phyllome-install onto the second disk and powers off; the test then boots
# the installed disk alone and reads the same report again.
set -u
. "$(dirname "$0")/../integration/tap.sh"
root=${PHYLLOME_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$(dirname "$0")/lib.sh"
image_test_start
vm=os$$

# --- build ---
image_build headless "${PHYLLOME_IMAGE:-}"
manifest=${img%.raw}.manifest.json
size=$(stat -c %s "$img")
ok $([ "$size" -le 1200000000 ]; echo $?) "the image is within 1.2 GB ($size bytes, $(du -B1 "$img" | cut -f1) allocated)"
ok $(jq -e '.packages | length > 100 and all(.[]; (.name | length) > 0 and (.version | length) > 0)' "$manifest" >/dev/null; echo $?) \
  "the manifest beside it records each package with its version ($(jq '.packages | length' "$manifest") packages)"
for p in linux-image-amd64 qemu-system-x86 ovmf swtpm passt nftables unattended-upgrades dracut systemd-boot; do
  [ -n "$(jq -r --arg p "$p" '.packages[] | select(.name == $p) | .version' "$manifest")" ] || diag "missing: $p"
done
is "$(jq -r '[.packages[].name] | map(select(. == "linux-image-amd64" or . == "qemu-system-x86" or . == "ovmf" or . == "swtpm" or . == "passt" or . == "nftables" or . == "unattended-upgrades" or . == "dracut" or . == "systemd-boot")) | length' "$manifest")" 9 \
  "the kernel, dracut, systemd-boot, QEMU, OVMF, swtpm, passt, nftables and unattended-upgrades are in it"

# --- the VM: UEFI, no network, a copy of the image as its first disk (in the
# VM's directory, which phyllo hands to the QEMU user), an empty second ---
vms+=("$vm")
# No GPU and no sound: a headless host's console is the serial port, and
# under TCG virtio-gpu's probe alone (clearing its framebuffer page by page)
# held a udev worker for minutes ("soft lockup") on this machine.
image_vm_create "$vm" "$img" 6G --gpu none --memory 2G --cpus 1
V=$PHYLLOME_HOME/vms/$vm
"$PHYLLO" disk add "$vm" --size 8G --name target >/dev/null
ok $? "its second disk is empty (8G)"

# --- the copy's default boot entry adds phyllome.selftest= ---
image_selftest_entry "$vm" install:/dev/vdb

# selftest_boot LABEL SECONDS: start, wait for the self-test's last line and
# for the power-off; leaves the report lines in $report.
report=
selftest_boot() {
  local t0 rc
  t0=$(date +%s)
  "$PHYLLO" start "$vm" >/dev/null 2>&1; ok $? "$1: start"
  timeout "$2" "$PHYLLO" logs "$vm" --follow | grep -m1 -q 'PHYLLOME-SELFTEST done='
  rc=$?
  ok $rc "$1: the self-test reports to the end on the serial console ($(( $(date +%s) - t0 )) s)"
  # This boot's lines only: from the kernel's banner on (the console log
  # holds the earlier boots too).
  report=$("$PHYLLO" logs "$vm" | tr -d '\r' | awk '/Linux version / { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' |
    grep -a 'PHYLLOME-SELFTEST \|PHYLLOME-HOST-CHECK-JSON ')
  [ $rc = 0 ] || diag "$("$PHYLLO" logs "$vm" | tail -n 60)"
  for _ in $(seq 300); do [ "$("$PHYLLO" status "$vm" --json | jq -r .state)" = stopped ] && break; sleep 1; done
  is "$("$PHYLLO" status "$vm" --json | jq -r .state)" stopped "$1: the guest powered itself off"
}
val() { printf '%s\n' "$report" | sed -n "s/^.*PHYLLOME-SELFTEST $1=//p" | tail -n1; }

check_report() {
  is "$(val state)" running "$1: systemd reached a running system"
  ok $(printf '%s\n' "$report" | grep -aq 'PHYLLOME-SELFTEST failed=$'; echo $?) "$1: no failed unit ($(val failed))"
  like "$(val cmdline)" "intel_iommu=on amd_iommu=on iommu=pt rd\.driver\.pre=vfio-pci" "$1: the kernel command line has the IOMMU/vfio arguments"
  like "$(val modules)" "(^|,)vfio_pci(,|$)" "$1: vfio_pci is loaded ($(val modules))"
  like "$(val initrd-vfio)" "vfio-pci\.ko|vfio_pci\.ko" "$1: the initramfs holds the vfio modules ($(val initrd-vfio))"
  is "$(val vfio-before-switch-root)" yes "$1: vfio was loaded in the initramfs (rd.driver.pre), before the switch to the root"
  like "$(val modprobe-options)" "options kvm ignore_msrs=1 report_ignored_msrs=0" "$1: kvm ignore_msrs is configured"
  like "$(val modprobe-options)" "options kvm_intel nested=1" "$1: kvm_intel nested is configured"
  like "$(val modprobe-options)" "options kvm_amd nested=1" "$1: kvm_amd nested is configured"
  like "$(val phyllod-version)" '^\{.*"version"' "$1: phyllod answers on its socket ($(val phyllod-version))"
  is "$(val phyllod-active)" active "$1: phyllod was socket-activated"
  is "$(val phyllod-sock)" "root:phyllome 660" "$1: its socket is root:phyllome 0660"
  like "$(val vmstore)" "^/dev/vda[0-9]+,ext4," "$1: the VM storage is its own ext4 on /var/lib/phyllome ($(val vmstore))"
  is "$(val vmstore-encrypt)" 1 "$1: with the encrypt feature (fscrypt)"
  is "$(val root-passwd)" L "$1: root is locked"
  like "$(val ssh)" "^disabled,inactive$" "$1: SSH is off"
  is "$(val nft-input-policy)" "policy drop" "$1: the firewall drops inbound by default"
  like "$(val unattended)" '^enabled,"1"$' "$1: unattended upgrades are on"
  is "$(val host-conf)" "reserve-cpus = 1,reserve-memory = 1G" "$1: host.conf keeps 1 CPU and 1 GiB"
  is "$(val group)" phyllome "$1: group phyllome exists"
  local json
  json=$(printf '%s\n' "$report" | sed -n 's/^.*PHYLLOME-HOST-CHECK-JSON //p' | tail -n1)
  # (jq -e on no input at all exits 0: the marker line must be there)
  ok $([ -n "$json" ] && printf '%s' "$json" | jq -e '.verdict.tier and (.checks | length > 10)' >/dev/null 2>&1; echo $?) \
    "$1: phyllo host check --json's result came out behind its marker (tier $(printf '%s' "$json" | jq -r .verdict.tier 2>/dev/null))"
  # The guest's CPU has no SVM/VMX (above): no KVM inside, and the host
  # check run inside must say so, on the console and through phyllod.
  is "$(val dev-kvm),$(val cpu-virt-flags)" "no," "$1: the TCG guest has no /dev/kvm and no virtualization flags"
  is "$(printf '%s' "$json" | jq -r '.checks[] | select(.id == "kvm.device") | .status' 2>/dev/null)" FAIL \
    "$1: phyllo host check inside reports that KVM is absent ($(printf '%s' "$json" | jq -r '.checks[] | select(.id == "kvm.device") | .detail' 2>/dev/null))"
  is "$(printf '%s' "$json" | jq -r '.checks[] | select(.id == "cpu.virt") | .status' 2>/dev/null)" FAIL \
    "$1: and that the CPU has no virtualization extensions"
  like "$(val hostcheck-api)" '"kvm":"FAIL"' "$1: phyllod's GET /v1/host says the same ($(val hostcheck-api))"
  printf '%s\n' "$report" | grep -a 'PHYLLOME-SELFTEST failed-log-' | sed 's/^.*PHYLLOME-SELFTEST /# /'
  diag "$1: running at $(val uptime-running) s of uptime; phyllod answered at $(val uptime-phyllod); $(val startup); idle memory used $(val mem-used-mib) MiB"
  diag "$1: slowest units: $(val blame)"
  diag "$1: critical chain: $(val critical-chain)"
  ok $([ "$(val mem-used-mib)" -le 400 ] 2>/dev/null; echo $?) "$1: idle memory after boot is within 400 MiB ($(val mem-used-mib) MiB)"
}

selftest_boot "image" 2400
check_report "image"
is "$(val install-rc)" 0 "phyllome-install onto the empty second disk succeeded"
like "$(val reinstall-refused)" "^rc=1 phyllome-install: /dev/vdb holds data" "a second run without --wipe refuses the disk ($(val reinstall-refused))"
like "$(val installed-entry)" "root=PARTUUID=" "the installed boot entry names the installed root"

# --- the installed disk alone ---
"$PHYLLO" disk remove "$vm" system --yes >/dev/null
ok $? "remove the image's disk: the installed disk is the VM's only disk"
selftest_boot "installed" 2400
check_report "installed"
is "$(val mode)" boot "the installed system ran the boot self-test"

tap_done

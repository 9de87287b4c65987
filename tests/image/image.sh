#!/bin/bash
# SPDX-License-Identifier: MIT
# Phyllome OS inside Phyllome (issue 16): builds the headless image with
# scripts/build-image (unless PHYLLOME_IMAGE names one), boots it with phyllo
# (UEFI, no network, its disk, an empty second one and a third that holds
# data) and reads the serial console.  The image's self-test
# (phyllome-selftest.service, enabled by the kernel argument
# phyllome.selftest=, which this test adds as the default boot entry of its
# copy of the image) reports on the console, runs phyllome-install onto the
# empty disk, then onto the disk with data (refused, the data left as it
# was; then with --wipe) and powers off; the test then boots that installed
# disk alone and reads the same report again.
set -u
. "$(dirname "$0")/../integration/tap.sh"
. "$(dirname "$0")/lib.sh"
os_require mkfs.ext4 debugfs systemd-repart
vm=os$$
tap_new_home
trap os_cleanup EXIT
chmod 755 "$PHYLLOME_HOME"

# --- build ---
os_build
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
like "$(jq -r '[.vendored[] | "\(.name) \(.version)"] | join(", ")' "$manifest" 2>/dev/null)" '^systemd 254[^,]*bpo12[^,]*, systemd-container 254.*, libsystemd-shared 254' \
  "it records what systemd-sysupdate was taken from ($(jq -r '[.vendored[] | "\(.name) \(.version)"] | join(", ")' "$manifest" 2>/dev/null))"

# --- the VM: the image grown to 6G (ESP, root slot A, slot B and the VM
# storage), an empty second disk (8G) and a third that holds data ---
os_vm_create "$vm" 6G
"$PHYLLO" disk add "$vm" --size 8G --name target >/dev/null
ok $? "its second disk is empty (8G)"
# The third: a GPT with an ext4 holding /precious.txt (made without a loop
# device: mkfs.ext4 -d, then systemd-repart copies it in).
token=precious-$$-$RANDOM
mkdir -p "$PHYLLOME_HOME/data/tree" "$PHYLLOME_HOME/data/defs"
printf '%s\n' "$token" >"$PHYLLOME_HOME/data/tree/precious.txt"
mkfs.ext4 -q -L precious -d "$PHYLLOME_HOME/data/tree" "$PHYLLOME_HOME/data/part.img" 64M >/dev/null &&
printf '[Partition]\nType=linux-generic\nLabel=precious\nCopyBlocks=%s\n' "$PHYLLOME_HOME/data/part.img" >"$PHYLLOME_HOME/data/defs/10-data.conf" &&
truncate -s 8G "$V/data.raw" &&
systemd-repart --dry-run=no --empty=force --definitions="$PHYLLOME_HOME/data/defs" "$V/data.raw" >/dev/null &&
printf '\n[disk data]\npath = data.raw\nformat = raw\nbus = virtio\n' >>"$V/vm.conf"
ok $? "its third disk (8G) holds a partition table and a file system with a file"

# --- the copy's default boot entry adds phyllome.selftest= ---
image_selftest_entry "$vm" install:/dev/vdb:/dev/vdc

selftest_boot "image" 2400
check_report "image"
version=$(val version)
is "${entry%.conf}" "phyllome_$version" "the running version ($version) is the boot entry's"
is "$(val slots)" "phyllome_$version,_empty" "root slot A holds this version; the first boot made slot B, empty, for updates"
is "$(val install-rc)" 0 "phyllome-install onto the empty second disk succeeded"
like "$(val reinstall-refused)" "^rc=1 phyllome-install: /dev/vdb holds data" "a second run without --wipe refuses the disk ($(val reinstall-refused))"
like "$(val data-before)" ";vdc1 precious ext4 precious$" "the third disk holds a partition and a file system ($(val data-before))"
like "$(val data-refused)" "^rc=1 phyllome-install: /dev/vdc holds data \(gpt.*partitions vdc1\); phyllome-install /dev/vdc --wipe erases it" \
  "phyllome-install without --wipe refuses the disk with data ($(val data-refused))"
is "$(val data-kept)" "$token" "and leaves its data as it was (/precious.txt read back after the refusal)"
is "$(val wipe-install-rc)" 0 "phyllome-install --wipe installs onto it"
like "$(val data-after)" ";vdc1 ESP vfat[^;]*;vdc2 phyllome_$version ext4[^;]*;vdc3 _empty[^;]*;vdc4 phyllome-vms ext4" \
  "the wiped disk has the ESP, root slot A with this version, an empty slot B and the VM storage, and no trace of the data ($(val data-after))"
ok $([[ "$(val data-after)" != *precious* ]]; echo $?) "the old file system's label is gone"
is "$(val data-after-root-fsck)" 0 "its root file system checks clean (e2fsck -fn)"
like "$(val installed-entry)" "root=PARTUUID=" "the installed boot entry names the installed root"
like "$(val installed-entries)" "^phyllome_$version\.conf,selftest\.conf$" "the installed ESP has this version's entry (no boot counter) ($(val installed-entries))"
is "$(val installed-slots)" "phyllome_$version,_empty" "the installed disk has root slot A with this version and an empty slot B"

# --- the installed (wiped) disk alone ---
"$PHYLLO" disk remove "$vm" system --yes >/dev/null && "$PHYLLO" disk remove "$vm" target --yes >/dev/null
ok $? "remove the image's disk and the second: the disk installed with --wipe is the VM's only disk"
selftest_boot "installed" 2400
check_report "installed"
is "$(val mode)" boot "the installed system ran the boot self-test"
is "$(val slots)" "phyllome_$version,_empty" "the installed system has slot A with this version and an empty slot B"

tap_done

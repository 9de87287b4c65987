# SPDX-License-Identifier: MIT
# Sourced by the Phyllome OS image tests (image.sh, desktop.sh) after tap.sh:
# their start, the image's build, a VM that boots it under TCG, and a
# self-test boot entry in it.

# image_wait_console VM SECONDS REGEX: until a line of VM's console log
# matches (true) or SECONDS pass; a signal (meson's timeout) is handled at
# once (a wait, not a foreground pipeline), and image_test_cleanup ends the
# follower.
image_follow_pid=
image_wait_console() {
  local fifo=$PHYLLOME_HOME/console.fifo rc
  rm -f "$fifo" && mkfifo "$fifo" || return 1
  timeout "$2" "$PHYLLO" logs "$1" --follow >"$fifo" &
  image_follow_pid=$!
  grep -a -m1 -q "$3" <"$fifo" &
  wait $!
  rc=$?
  kill "$image_follow_pid" 2>/dev/null; wait "$image_follow_pid" 2>/dev/null
  image_follow_pid=
  return $rc
}

# image_test_start [TOOL...]: skips unless root with the tools the image
# tests need; makes the test's home; phyllo uses TCG.  A VM named in vms[]
# still running at the end (a failure midway) is ended by phyllo itself
# (stop --force ends its QEMU, monitor and swtpm).
image_test_start() {
  local t
  [ "$(id -u)" = 0 ] || skip_all "scripts/build-image needs root (debootstrap, systemd-nspawn)"
  for t in mkosi mcopy partx qemu-img jq "$@"; do
    command -v "$t" >/dev/null || skip_all "$t is not installed (scripts/deps.sh)"
  done
  export PHYLLOME_FORCE_TCG=1
  vms=()
  tap_new_home
  trap image_test_cleanup EXIT
  chmod 755 "$PHYLLOME_HOME"
}
image_test_cleanup() {
  local v
  [ -z "$image_follow_pid" ] || kill "$image_follow_pid" 2>/dev/null
  for v in "${vms[@]}"; do "$PHYLLO" stop "$v" --force >/dev/null 2>&1; done
  tap_cleanup
}

# image_build VARIANT PREBUILT: img= the image PREBUILT names, else one
# scripts/build-image VARIANT builds into $BUILDDIR/image-test (headless) or
# image-VARIANT-test; a failed build ends the test.
image_build() {
  img=$2
  [ -z "$img" ] || return 0
  local out=$BUILDDIR/image-test t0 rc
  [ "$1" = headless ] || out=$BUILDDIR/image-$1-test
  t0=$(date +%s)
  "$root/scripts/build-image" "$1" --out "$out" >"$PHYLLOME_HOME/build.log" 2>&1
  rc=$?
  ok $rc "scripts/build-image $1 builds the image ($(( $(date +%s) - t0 )) s)"
  [ $rc = 0 ] || { diag "$(tail -n 40 "$PHYLLOME_HOME/build.log")"; tap_done; exit 1; }
  img=$out/phyllome-$1.raw
}

# image_vm_create VM IMAGE SIZE [phyllo create options...]: a UEFI VM with no
# network and no sound, whose first disk ("system") is a copy of IMAGE grown
# to SIZE (room for the VM storage partition the first boot makes).
# The CPU is $image_cpu, by default QEMU's "max" (phyllo's default under
# TCG) less two things:
# - SVM, which QEMU's TCG emulates: with it the guest would load kvm_amd and
#   have a (very slow) nested /dev/kvm; without it the guest is what a TCG
#   guest is, a machine with no virtualization extensions, and the host
#   check must say there is no KVM;
# - LA57 (5-level paging): Debian 12's kernel (6.1.0-57) under TCG with it
#   cannot read its own dentry names (copy_from_kernel_nofault fails, d_path
#   gives "/xxxx" for "/proc"), so /proc/self/mountinfo names no mount point:
#   systemd in the initramfs cannot start udevd (status 226/NAMESPACE) nor
#   see /sysroot mounted, and the boot never leaves the initramfs.
image_vm_create() {
  local vm=$1 img=$2 size=$3 V=$PHYLLOME_HOME/vms/$1
  shift 3
  "$PHYLLO" create "$vm" --profile linux --no-disk --uefi --display none "$@" >/dev/null
  ok $? "create a UEFI VM ($*)"
  sed -i '/^\[network net0\]/a mode = none' "$V/vm.conf"
  printf '\n[sound]\ntype = none\n' >>"$V/vm.conf"
  local cpu=${image_cpu:-max,-svm,-vmx,-la57}
  if grep -q '^\[cpu\]' "$V/vm.conf"; then sed -i "/^\\[cpu\\]/a model = $cpu" "$V/vm.conf"
  else printf '\n[cpu]\nmodel = %s\n' "$cpu" >>"$V/vm.conf"; fi
  cp --sparse=always "$img" "$V/os.raw"
  printf '\n[disk system]\npath = os.raw\nformat = raw\nbus = virtio\n' >>"$V/vm.conf"
  "$PHYLLO" disk resize "$vm" system "$size" >/dev/null
  ok $? "its first disk is a copy of the image, grown to $size"
}

# image_selftest_entry VM MODE: the default boot entry of VM's image copy
# becomes a copy of the image's entry with phyllome.selftest=MODE added
# (mtools, in the copy's ESP); the image's self-test runs on that boot.
image_selftest_entry() {
  local V=$PHYLLOME_HOME/vms/$1 start entry esp
  read -r start _ < <(partx -g -o START,SECTORS,TYPE "$V/os.raw" |
    awk 'tolower($3) == "c12a7328-f81f-11d2-ba4b-00a0c93ec93b" { print $1, $2; exit }')
  ok $([ -n "${start:-}" ]; echo $?) "the image has an ESP (sector ${start:-?})"
  esp="$V/os.raw@@$((${start:-0} * 512))"
  entry=$(MTOOLS_SKIP_CHECK=1 mtype -i "$esp" ::/loader/entries/phyllome.conf)
  like "$entry" "options +root=PARTUUID=[0-9a-f-]+ rw .*intel_iommu=on amd_iommu=on iommu=pt rd\.driver\.pre=vfio-pci" \
    "its boot entry has the root and the IOMMU/vfio arguments"
  mkdir -p "$PHYLLOME_HOME/esp"
  printf '%s\n' "$entry" | sed -e 's/^title .*/title Phyllome OS self-test/' \
    -e "/^options/s|\$| phyllome.selftest=$2|" >"$PHYLLOME_HOME/esp/selftest.conf"
  printf 'default selftest.conf\ntimeout 0\n' >"$PHYLLOME_HOME/esp/loader.conf"
  MTOOLS_SKIP_CHECK=1 mcopy -o -i "$esp" "$PHYLLOME_HOME/esp/selftest.conf" ::/loader/entries/selftest.conf &&
  MTOOLS_SKIP_CHECK=1 mcopy -o -i "$esp" "$PHYLLOME_HOME/esp/loader.conf" ::/loader/loader.conf
  ok $? "the copy boots the self-test entry (phyllome.selftest=$2)"
}

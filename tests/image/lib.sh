# shellcheck shell=bash
# Sourced by tests/image/*.sh (after tests/integration/tap.sh): the headless
# image built or found, the test VM that boots it with phyllo, and its
# self-test report read from the serial console (docs/image.md).
root=${PHYLLOME_SOURCE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export PHYLLOME_FORCE_TCG=1
vms=()
# A VM still running at the end (a failure midway) is ended by phyllo itself
# (stop --force ends its QEMU, monitor and swtpm).
os_cleanup() {
  local v
  for v in "${vms[@]}"; do "$PHYLLO" stop "$v" --force >/dev/null 2>&1; done
  tap_cleanup
}

os_require() {
  [ "$(id -u)" = 0 ] || skip_all "scripts/build-image needs root (debootstrap, systemd-nspawn)"
  local t
  for t in mkosi mcopy partx qemu-img jq "$@"; do
    command -v "$t" >/dev/null || skip_all "$t is not installed (scripts/deps.sh)"
  done
}

# os_build: sets $img, the headless image: PHYLLOME_IMAGE if given, else
# built by scripts/build-image into $BUILDDIR/image-test, unless an image
# there is newer than every file it is built from (image/, the script,
# Phyllome's sources: the image test builds it, the update test then
# reuses it).
os_build() {
  img=${PHYLLOME_IMAGE:-}
  [ -z "$img" ] || return 0
  local out=$BUILDDIR/image-test t0 rc newer
  img=$out/phyllome-headless.raw
  if [ -e "$img" ]; then
    newer=$(cd "$root" && find image scripts/build-image src systemd data po meson.build meson_options.txt \
      -newer "$img" -type f -print -quit 2>/dev/null)
    if [ -z "$newer" ]; then diag "reusing $img (newer than every file it is built from)"; return 0; fi
    diag "rebuilding: $newer is newer than $img"
  fi
  t0=$(date +%s)
  "$root/scripts/build-image" headless --out "$out" >"$PHYLLOME_HOME/build.log" 2>&1
  rc=$?
  ok $rc "scripts/build-image headless builds the image ($(( $(date +%s) - t0 )) s)"
  [ $rc = 0 ] || { diag "$(tail -n 40 "$PHYLLOME_HOME/build.log")"; tap_done; exit 1; }
}

# os_vm_create VM DISKSIZE: a UEFI VM whose first disk ("system") is a copy
# of $img grown to DISKSIZE, in the VM's directory (which phyllo hands to
# the QEMU user); $V is its directory.  No network (os_vm_user_net adds
# one), no GPU and no sound: a headless host's console is the serial port,
# and under TCG virtio-gpu's probe alone (clearing its framebuffer page by
# page) held a udev worker for minutes on this machine.
os_vm_create() {
  local vm=$1 size=$2
  vms+=("$vm")
  "$PHYLLO" create "$vm" --profile linux --no-disk --uefi --display none --gpu none --memory 2G --cpus 1 >/dev/null
  ok $? "create a UEFI VM"
  V=$PHYLLOME_HOME/vms/$vm
  sed -i '/^\[network net0\]/a mode = none' "$V/vm.conf"
  printf '\n[sound]\ntype = none\n' >>"$V/vm.conf"
  # QEMU's "max" CPU (phyllo's default under TCG), less two things:
  # - SVM, which QEMU's TCG emulates: with it the guest would load kvm_amd
  #   and have a (very slow) nested /dev/kvm; without it the guest is what a
  #   TCG guest is, a machine with no virtualization extensions, and the
  #   host check must say there is no KVM;
  # - LA57 (5-level paging): Debian 12's kernel (6.1.0-57) under TCG with it
  #   cannot read its own dentry names (copy_from_kernel_nofault fails,
  #   d_path gives "/xxxx" for "/proc"), so /proc/self/mountinfo names no
  #   mount point: systemd in the initramfs cannot start udevd (status
  #   226/NAMESPACE) nor see /sysroot mounted, and the boot never leaves
  #   the initramfs.
  if grep -q '^\[cpu\]' "$V/vm.conf"; then sed -i '/^\[cpu\]/a model = max,-svm,-vmx,-la57' "$V/vm.conf"
  else printf '\n[cpu]\nmodel = max,-svm,-vmx,-la57\n' >>"$V/vm.conf"; fi
  cp --sparse=always "$img" "$V/os.raw"
  printf '\n[disk system]\npath = os.raw\nformat = raw\nbus = virtio\n' >>"$V/vm.conf"
  "$PHYLLO" disk resize "$vm" system "$size" >/dev/null
  ok $? "its first disk is a copy of the image, grown to $size (room for root slot B and the VM storage)"
}

# os_esp FILE: sets $esp to mtools' name of FILE's ESP ("FILE@@OFFSET") and
# $entry to the name of the image version's boot entry (phyllome_V.conf).
os_esp() {
  local start
  read -r start _ < <(partx -g -o START,SECTORS,TYPE "$1" |
    awk 'tolower($3) == "c12a7328-f81f-11d2-ba4b-00a0c93ec93b" { print $1, $2; exit }')
  ok $([ -n "${start:-}" ]; echo $?) "the image has an ESP (sector ${start:-?})"
  esp="$1@@$((start * 512))"
  entry=$(MTOOLS_SKIP_CHECK=1 mdir -b -i "$esp" ::/loader/entries | sed -n 's|^.*/\(phyllome_[^/+]*\.conf\)$|\1|p' | head -n1)
  like "$entry" '^phyllome_[0-9][0-9A-Za-z.]*\.conf$' "the ESP has the version's boot entry ($entry)"
}
mt() { MTOOLS_SKIP_CHECK=1 "$@"; }

# selftest_boot LABEL SECONDS [MARKER]: start, wait for the self-test's last
# line (or MARKER, a later one: the guest restarts itself on the way) and
# for the power-off; leaves the report lines of the last boot in $report and
# the whole console log in $console.
report=
console=
selftest_boot() {
  local t0 rc marker=${3:-PHYLLOME-SELFTEST done=}
  t0=$(date +%s)
  ${os_netns:+nsenter --net="$os_netns"} "$PHYLLO" start "$vm" >/dev/null 2>&1; ok $? "$1: start"
  timeout "$2" "$PHYLLO" logs "$vm" --follow | grep -m1 -q -F "$marker"
  rc=$?
  ok $rc "$1: the self-test reports to the end on the serial console ($(( $(date +%s) - t0 )) s)"
  console=$("$PHYLLO" logs "$vm" | tr -d '\r')
  # This boot's lines only: from the kernel's banner on (the console log
  # holds the earlier boots too).
  report=$(printf '%s\n' "$console" | awk '/Linux version / { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' |
    grep -a 'PHYLLOME-SELFTEST \|PHYLLOME-HOST-CHECK-JSON ')
  [ $rc = 0 ] || diag "$(printf '%s\n' "$console" | tail -n 60)"
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
  like "$(val slots)" "(^|,)phyllome_$(val version)(,|$)" "$1: a root slot is labelled with the running version ($(val slots))"
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

# ---- the desktop test's (desktop.sh) ----

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
# tests need; makes the test's home.
image_test_start() {
  os_require "$@"
  tap_new_home
  trap image_test_cleanup EXIT
  chmod 755 "$PHYLLOME_HOME"
}
image_test_cleanup() {
  [ -z "$image_follow_pid" ] || kill "$image_follow_pid" 2>/dev/null
  os_cleanup
}

# image_build VARIANT PREBUILT: img= the image PREBUILT names, else one
# scripts/build-image VARIANT builds into $BUILDDIR/image-VARIANT-test; a
# failed build ends the test.
image_build() {
  img=$2
  [ -z "$img" ] || return 0
  local out=$BUILDDIR/image-$1-test t0 rc
  t0=$(date +%s)
  "$root/scripts/build-image" "$1" --out "$out" >"$PHYLLOME_HOME/build.log" 2>&1
  rc=$?
  ok $rc "scripts/build-image $1 builds the image ($(( $(date +%s) - t0 )) s)"
  [ $rc = 0 ] || { diag "$(tail -n 40 "$PHYLLOME_HOME/build.log")"; tap_done; exit 1; }
  img=$out/phyllome-$1.raw
}

# image_vm_create VM IMAGE SIZE [phyllo create options...]: as os_vm_create,
# with the caller's options (a display, memory, CPUs) and CPU model
# $image_cpu (default: os_vm_create's, max less SVM, VMX and LA57).
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
# becomes a copy of the image version's entry (os_esp) with
# phyllome.selftest=MODE added (mtools, in the copy's ESP).
image_selftest_entry() {
  local V=$PHYLLOME_HOME/vms/$1 entry_text
  os_esp "$V/os.raw"
  entry_text=$(mt mtype -i "$esp" "::/loader/entries/$entry")
  like "$entry_text" "options +root=PARTUUID=[0-9a-f-]+ rw .*intel_iommu=on amd_iommu=on iommu=pt rd\.driver\.pre=vfio-pci" \
    "its boot entry has the root and the IOMMU/vfio arguments"
  mkdir -p "$PHYLLOME_HOME/esp"
  printf '%s\n' "$entry_text" | sed -e 's/^title .*/title Phyllome OS self-test/' -e '/^sort-key/d' \
    -e "/^options/s|\$| phyllome.selftest=$2|" >"$PHYLLOME_HOME/esp/selftest.conf"
  printf 'default selftest.conf\ntimeout 0\n' >"$PHYLLOME_HOME/esp/loader.conf"
  mt mcopy -o -i "$esp" "$PHYLLOME_HOME/esp/selftest.conf" ::/loader/entries/selftest.conf &&
  mt mcopy -o -i "$esp" "$PHYLLOME_HOME/esp/loader.conf" ::/loader/loader.conf
  ok $? "the copy boots the self-test entry (phyllome.selftest=$2)"
}

#!/usr/bin/env bash
# phyllo host check / host devices: JSON against the host fixtures
# (--root and PHYLLOME_ROOT), the text form, and a run on this real machine.
set -u
. "$(dirname "$0")/tap.sh"
command -v jq >/dev/null || skip_all "jq is not installed (apt-get install jq)"
fx="$SRCDIR/fixtures/host"
tmp=$(mktemp -d /tmp/phyllome-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

status_of() { # status_of JSON-FILE CHECK-ID
  jq -r --arg id "$2" '.checks[] | select(.id == $id) | .status' "$1"
}

"$PHYLLO" --root "$fx/intel-desktop-iommu" host check --json >"$tmp/intel.json"
ok $? "host check --json on the Intel desktop fixture exits 0"
is "$(jq -r .verdict.tier "$tmp/intel.json")" recommended "Intel desktop: recommended tier"
is "$(status_of "$tmp/intel.json" iommu.groups)" PASS "Intel desktop: IOMMU groups PASS"
is "$(jq -r '.facts.gpus | map(.render_node) | join(",")' "$tmp/intel.json")" \
   "/dev/dri/renderD128,/dev/dri/renderD129" "Intel desktop: both render nodes"
is "$(jq -r '.budget | "\(.reserve_cpus) \(.vm_cpus_max) \(.reserve_memory)"' "$tmp/intel.json")" \
   "2 6 4294967296" "Intel desktop: budget from host.conf"
is "$(status_of "$tmp/intel.json" tools.qemu)" INFO "tools are not checked under --root"

PHYLLOME_ROOT="$fx/amd-laptop-iommu-off" "$PHYLLO" host check --json >"$tmp/amd.json"
ok $? "PHYLLOME_ROOT works like --root"
is "$(status_of "$tmp/amd.json" iommu.firmware)" WARN "AMD laptop, IOMMU off: firmware WARN"
like "$(jq -r '.checks[] | select(.id == "iommu.firmware") | .remedy' "$tmp/amd.json")" \
     "amd_iommu=on iommu=pt" "AMD laptop: remedy names the AMD kernel arguments"
is "$(jq -r .verdict.tier "$tmp/amd.json")" minimum "AMD laptop: minimum tier"

"$PHYLLO" --root "$fx/ci-debian12-tcg" host check --json >"$tmp/ci.json"
is "$(status_of "$tmp/ci.json" kvm.device)" FAIL "CI machine: no /dev/kvm is a FAIL"
is "$(jq -r .verdict.tier "$tmp/ci.json")" none "CI machine: below the minimum"
is "$(jq -r .facts.apple "$tmp/ci.json")" false "CI machine: not Apple"
"$PHYLLO" --root "$fx/apple-mac" host check --json >"$tmp/mac.json"
is "$(jq -r '.facts | "\(.apple) \(.dmi_product)"' "$tmp/mac.json")" "true MacPro7,1" "Mac: Apple hardware"

"$PHYLLO" --root "$fx/amd-laptop-shared-group" host devices --json >"$tmp/dev.json"
ok $? "host devices --json exits 0"
is "$(jq -r '.devices[] | select(.address == "0000:01:00.0") | .assignable' "$tmp/dev.json")" false \
   "shared group: the dGPU cannot be given alone"
is "$(jq -r '.devices[] | select(.address == "0000:01:00.0") | .blockers[] | select(.class_name == "USB controller") | .address' "$tmp/dev.json")" \
   "0000:02:00.0" "shared group: the USB controller is named"
"$PHYLLO" --root "$fx/intel-desktop-iommu" host devices --json >"$tmp/idev.json"
is "$(jq -r '.devices[] | select(.address == "0000:01:00.0") | "\(.assignable) \(.iommu_group) \(.with | join(","))"' "$tmp/idev.json")" \
   "true 1 0000:01:00.1" "Intel desktop: the dGPU is assignable with its audio function"

out=$("$PHYLLO" --root "$fx/amd-laptop-shared-group" host devices)
like "$out" "cannot be given to a VM alone; the group also holds 0000:02:00.0 \(USB controller\)" "text form names the member"
out=$("$PHYLLO" --root "$fx/apple-mac" host check)
like "$out" $'WARN  IOMMU kernel arguments: [^\n]*\n      remedy: add intel_iommu=on iommu=pt' "text form: remedy under the WARN line"
like "$out" "host budget: the host keeps 1 CPU and 1G" "text form: host budget line"

# The real machine: runs, exits 0, and its tools are checked.
"$PHYLLO" host check >"$tmp/real.txt" 2>&1
ok $? "host check on this machine exits 0"
like "$(cat "$tmp/real.txt")" "verdict: " "host check on this machine prints a verdict"
"$PHYLLO" host check --json >"$tmp/real.json"
like "$(status_of "$tmp/real.json" tools.qemu)" "^(PASS|FAIL)$" "real machine: QEMU checked"
# QEMU's features (issue 18): the version, what the model uses, what a newer
# QEMU adds; each list agrees with what the probe found in this QEMU.
caps=$("$PHYLLO" caps --json)
is "$(jq -r .qemu.version "$tmp/real.json")" "$(jq -r .version <<<"$caps")" "--json: qemu.version is the probed QEMU's"
like "$(cat "$tmp/real.txt")" "What the VM model uses from this QEMU: QEMU ${caps_v:=$(jq -r '.version | split(" ")[0]' <<<"$caps")} " \
  "the text names QEMU $caps_v and what the model uses from it"
like "$(cat "$tmp/real.txt")" "What a newer QEMU would add: " "and what a newer QEMU would add"
like "$(cat "$tmp/real.txt")" "virtio-gpu-venus.*not used: venus needs virglrenderer 1.0" "venus: out of reach, and why"
has_dev() { jq -e --arg d "$1" '.devices | index($d)' <<<"$caps" >/dev/null; }
has_dev virtio-sound-pci; snd=$?
jq -e '.qemu.uses | map(.id) | index("virtio-sound")' "$tmp/real.json" >/dev/null
is $? $snd "virtio-sound is in qemu.uses exactly when QEMU has virtio-sound-pci"
jq -e '.qemu.newer_adds | map(.id) | index("virtio-sound")' "$tmp/real.json" >/dev/null
is $? $((!snd)) "and in qemu.newer_adds (with its release) when it has not"
is "$(jq -r '[.qemu.uses[], .qemu.newer_adds[], .qemu.not_used[]] | map(select(.since | test("^[0-9]+\\.[0-9]+$"))) | length' "$tmp/real.json")" \
  "$(jq -r '[.qemu.uses[], .qemu.newer_adds[], .qemu.not_used[]] | length' "$tmp/real.json")" "every feature names its QEMU release"
"$PHYLLO" host devices >/dev/null
ok $? "host devices on this machine exits 0"

mkdir -p "$tmp/bad/proc" "$tmp/bad/etc/phyllome"
cp "$fx/ci-debian12-tcg/proc/cpuinfo" "$fx/ci-debian12-tcg/proc/meminfo" "$tmp/bad/proc/"
printf 'reserve-memory = lots\n' >"$tmp/bad/etc/phyllome/host.conf"
err=$("$PHYLLO" --root "$tmp/bad" host check 2>&1 >/dev/null)
rc=$?
is "$rc" 2 "a bad host.conf is a validation error (exit 2)"
like "$err" "host.conf:1: reserve-memory: 'lots' is not a size" "the message names file:line and key"
"$PHYLLO" host check --bogus 2>/dev/null
is "$?" 2 "unknown option is a usage error"
tap_done

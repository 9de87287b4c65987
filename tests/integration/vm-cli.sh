#!/bin/bash
# SPDX-License-Identifier: MIT
# phyllo create/list/show/edit/delete/profiles against the real qemu-img and
# this host's budget, in a temporary PHYLLOME_HOME removed at exit.
set -u
: "${PHYLLO:?PHYLLO must point at the phyllo binary}"
SRCDIR=${PHYLLOME_TEST_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
command -v qemu-img >/dev/null || { echo "1..0 # SKIP qemu-img is not installed (Debian: qemu-utils)"; exit 77; }
command -v jq >/dev/null || { echo "1..0 # SKIP jq is not installed"; exit 77; }

tmp=$(mktemp -d /tmp/phyllome-vm-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export PHYLLOME_HOME="$tmp/home" PHYLLOME_CACHE="$tmp/cache"
unset PHYLLOME_ROOT
n=0
fail=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }
is() {
        n=$((n + 1))
        if [ "$1" = "$2" ]; then echo "ok $n - $3"
        else echo "not ok $n - $3"; echo "#   got:  '$1'"; echo "#   want: '$2'"; fail=1; fi
}
like() {
        n=$((n + 1))
        if [[ "$1" =~ $2 ]]; then echo "ok $n - $3"
        else echo "not ok $n - $3"; echo "#   got: '$1'"; echo "#   want match: '$2'"; fail=1; fi
}
# Everything under vms/ (temporary build dirs included), one per line.
vms() { ls -A "$PHYLLOME_HOME/vms" 2>/dev/null | sort | tr '\n' ' '; }

# profiles
out=$("$PHYLLO" profiles)
ok $? "profiles exits 0"
is "$(printf '%s\n' "$out" | tail -n +2 | awk '{print $1}' | tr '\n' ' ')" \
   "windows11 windows10 linux freebsd other macos " "profiles lists the six profiles"
is "$("$PHYLLO" profiles --json | jq -r '.[] | select(.name == "windows11") | "\(.cpus) \(.memory) \(.disk_bus) \(.nic)"')" \
   "4 8589934592 sata e1000e" "profiles --json: windows11 defaults"

# create
out=$("$PHYLLO" create web --profile linux --cpus 1 --memory 512M --disk 1G --display none 2>&1)
ok $? "create web exits 0"
like "$out" "created VM 'web' \(profile linux: 1 vCPU, 512M memory, 1G disk\)" "create reports the model"
conf="$PHYLLOME_HOME/vms/web/vm.conf"
ok "$(test -f "$conf"; echo $?)" "vm.conf written"
is "$(qemu-img info --output=json "$PHYLLOME_HOME/vms/web/disk-system.qcow2" | jq -r '"\(.format) \(."virtual-size")"')" \
   "qcow2 1073741824" "the disk image is a 1 GiB qcow2"
like "$(cat "$conf")" $'\\[vm\\]\nname = web\nprofile = linux\nuuid = [0-9a-f-]{36}' "identity in vm.conf"
like "$(cat "$conf")" $'\\[network net0\\]\nmac = 52:54:00:[0-9a-f:]{8}' "a generated MAC in vm.conf"
if grep -q '^bus\|^model = virtio' "$conf"; then r=1; else r=0; fi
ok $r "vm.conf holds only what the user said (no profile defaults)"

# list
out=$("$PHYLLO" list)
like "$out" $'NAME +PROFILE +CPUS +MEMORY +STATE\nweb +linux +1 +512M +stopped' "list shows web"
is "$("$PHYLLO" list --json | jq -r '.[0] | "\(.name) \(.profile) \(.cpus) \(.memory) \(.state)"')" \
   "web linux 1 536870912 stopped" "list --json"

# show
out=$("$PHYLLO" show web)
ok $? "show exits 0"
like "$out" $'\\[cpu\\]\ncores = 1\n' "show: the user's cores, unmarked"
like "$out" $'smm = off  # default \\(profile linux\\)' "show: a profile default is marked"
like "$out" $'\\[display\\]\ntype = none\ngl = off  # default' "show: display none as asked"
like "$out" $'\\[gpu\\]\ntype = none  # default \\(profile linux\\)' "show: no display, so no GPU"
like "$out" $'\\[sound\\]\ntype = none  # default \\(profile linux\\)' "show: and no sound card"
js=$("$PHYLLO" show web --json)
is "$(jq -r '[.cpu.cores, .memory.size, (.defaulted | index("gpu.type") != null), (.defaulted | index("cpu.cores") != null)] | join(" ")' <<<"$js")" \
   "1 536870912 true false" "show --json: values and the defaulted list"

# duplicate create, --force
out=$("$PHYLLO" create web --profile linux --cpus 1 --memory 512M --disk 1G 2>&1)
rc=$?
ok "$([ $rc -ne 0 ]; echo $?)" "duplicate create refused"
like "$out" "a VM named 'web' already exists" "duplicate create message"
uuid_before=$(grep '^uuid' "$conf")
"$PHYLLO" create web --profile linux --cpus 1 --memory 256M --disk 1G --display none --force >/dev/null 2>&1
ok $? "create --force replaces"
like "$("$PHYLLO" show web)" $'\\[memory\\]\nsize = 256M\n' "the replacement is in place"
ok "$([ "$(grep '^uuid' "$conf")" != "$uuid_before" ]; echo $?)" "a replacement is a new VM (new uuid)"

# bad names
for bad in 'a/b' '..' 'my vm' "$(printf 'a%.0s' $(seq 65))"; do
        out=$("$PHYLLO" create "$bad" --profile linux 2>&1)
        rc=$?
        is "$rc" 2 "bad name '${bad:0:12}' refused with status 2"
        like "$out" "invalid VM name" "bad name '${bad:0:12}': message"
done
out=$("$PHYLLO" create x 2>&1)
is "$?" 2 "create without --profile: status 2"
like "$out" "--profile is required" "create without --profile: message"

# refusals leave nothing behind
before=$(vms)
out=$("$PHYLLO" create w11 --profile windows11 --cpus 2 --memory 2G --disk 64G 2>&1)
rc=$?
ok "$([ $rc -ne 0 ]; echo $?)" "windows11 with 2 GiB refused"
like "$out" "profile windows11 needs at least 4 GiB of memory \(Windows 11's own minimum\), got 2 GiB" \
     "windows11 refusal message"
is "$(vms)" "$before" "a refused create leaves nothing behind"
out=$("$PHYLLO" create iso --profile linux --cpus 1 --memory 256M --iso "$tmp/missing.iso" 2>&1)
ok "$([ $? -ne 0 ]; echo $?)" "create with a missing ISO fails"
like "$out" "cannot use the ISO '$tmp/missing.iso'" "missing ISO message"
is "$(vms)" "$before" "still nothing left behind"
out=$(PHYLLOME_QEMU_IMG=/bin/false "$PHYLLO" create qf --profile linux --cpus 1 --memory 256M --disk 1G 2>&1)
ok "$([ $? -ne 0 ]; echo $?)" "a failing qemu-img fails the create"
is "$(vms)" "$before" "a failed image leaves nothing behind"

# the host matters: macOS only on Apple hardware (fixture hosts via --root)
fx="$SRCDIR/fixtures/host"
if [ -d "$fx/apple-mac" ]; then
        out=$("$PHYLLO" --root "$fx/apple-mac" create mac --profile macos --cpus 1 --memory 1G --disk 1G 2>&1)
        ok $? "macos accepted on the Apple fixture host"
        "$PHYLLO" delete mac --yes >/dev/null
        out=$("$PHYLLO" --root "$fx/intel-desktop-iommu" create mac --profile macos --cpus 1 --memory 1G 2>&1)
        ok "$([ $? -ne 0 ]; echo $?)" "macos refused on a non-Apple fixture host"
        like "$out" "Apple-branded hardware" "macos refusal explains the licence"
fi

# edit: $EDITOR is a program run with the file as its last argument (no shell)
cat >"$tmp/ed-good" <<'EOF'
#!/bin/sh
sed -i 's/^size = 256M$/size = 384M/' "$1"
EOF
cat >"$tmp/ed-bad" <<'EOF'
#!/bin/sh
sed -i 's/^cores = 1$/cpus = 2/' "$1"
EOF
chmod +x "$tmp/ed-good" "$tmp/ed-bad"
out=$(EDITOR="$tmp/ed-good" "$PHYLLO" edit web 2>&1)
ok $? "edit with a valid change"
like "$("$PHYLLO" show web)" $'\\[memory\\]\nsize = 384M\n' "the edit is saved"
saved=$(cat "$conf")
out=$(EDITOR="$tmp/ed-bad" "$PHYLLO" edit web 2>&1)
is "$?" 1 "edit with an unknown key exits 1"
like "$out" "vm.conf.edit.[A-Za-z0-9]{6}:[0-9]+: unknown key 'cpus' in section \\[cpu\\]; allowed: cores, threads, model" \
     "edit error names the edited copy, line and key"
is "$(cat "$conf")" "$saved" "the original is unchanged"
copy=$(grep -o "your edited copy is .*" <<<"$out" | sed 's/your edited copy is //')
ok "$(grep -q '^cpus = 2' "$copy"; echo $?)" "the edited copy is kept for the user"
rm -f "$copy"
out=$(EDITOR=true "$PHYLLO" edit web 2>&1)
like "$out" "no changes" "edit without changes"

# errors for a missing VM, delete
out=$("$PHYLLO" show nope 2>&1)
ok "$([ $? -ne 0 ]; echo $?)" "show of a missing VM fails"
is "$out" "phyllo: no VM named 'nope' (looked in $PHYLLOME_HOME/vms)" "missing VM message"
"$PHYLLO" delete web --yes >/dev/null
ok $? "delete web"
ok "$([ ! -e "$PHYLLOME_HOME/vms/web" ]; echo $?)" "the VM dir is gone"
is "$("$PHYLLO" list --json | jq length)" 0 "list is empty"
out=$("$PHYLLO" delete web --yes 2>&1)
like "$out" "no VM named 'web'" "delete twice: no such VM"
is "$(vms)" "" "nothing left under vms/"

# network modes at create and on net nic add
"$PHYLLO" create netm --profile linux --no-disk --net isolated:lab >/dev/null 2>&1
ok $? "create --net isolated:lab"
is "$("$PHYLLO" show netm --json | jq -r '.networks[0] | "\(.mode) \(.network)"')" "isolated lab" "net0 is on isolated network lab"
out=$("$PHYLLO" create netx --profile linux --no-disk --net wifi 2>&1); is "$?" 2 "create --net wifi is refused"
like "$out" "invalid network mode 'wifi'; use none, user, isolated:NAME" "... naming the modes"
out=$("$PHYLLO" create netb --profile linux --no-disk --net bridge:br0 --forward tcp:2222:22 2>&1)
is "$?" 2 "forwards on a bridged NIC are refused"
like "$out" "forwards need mode = user" "... with the reason"
is "$(vms)" "netm " "the refused creates left nothing"
"$PHYLLO" net nic add netm wan --mode bridge:br0 >/dev/null 2>&1; ok $? "net nic add --mode bridge:br0 (stopped VM)"
is "$("$PHYLLO" show netm --json | jq -r '.networks[1] | "\(.name) \(.mode) \(.bridge)"')" "wan bridge br0" "stored as a bridged NIC"
out=$("$PHYLLO" net nic add netm bad --mode bridge:this-name-is-too-long 2>&1); is "$?" 2 "a bridge name over 15 characters is refused"
"$PHYLLO" delete netm --yes >/dev/null 2>&1

# Edits at once serialise on the VM's edit lock (issue 13): 20 concurrent
# 'net forward add' with different ports all land (without the lock, later
# saves dropped earlier changes).
"$PHYLLO" create edits --profile linux --no-disk >/dev/null 2>&1; ok $? "create edits"
pids=()
for i in $(seq 1 20); do
        "$PHYLLO" net forward add edits "tcp:$((31000 + i)):22" >/dev/null 2>"$tmp/fwd.$i" &
        pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
is "$failed" 0 "20 concurrent 'net forward add' all succeed"
is "$("$PHYLLO" net forward list edits --json | jq -r '.[].host_port' | sort -n | tr '\n' ' ')" \
        "$(seq -s ' ' 31001 31020) " "all 20 forwards landed"
"$PHYLLO" delete edits --yes >/dev/null 2>&1

echo "1..$n"
exit $fail

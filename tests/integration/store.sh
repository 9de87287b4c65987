#!/bin/bash
# Disks, snapshots, clones and bundles with the real qemu-img, and one boot
# of an imported VM (TCG, tiny guest) that also checks the running-VM refusals.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
command -v qemu-io >/dev/null || skip_all "qemu-io (qemu-utils) is not installed"
command -v python3 >/dev/null || skip_all "python3 is needed to forge bundles"
lc_new_home
V=$PHYLLOME_HOME/vms
sum() { sha256sum "$@" | cut -d' ' -f1; }
dj() { "$PHYLLO" disk list "$1" --json; }
# Nothing but the named VMs (and no import leftovers) in the home.
vms_are() { is "$(ls -A "$V" | tr '\n' ' ')" "$1" "$2"; }

a=a$$
lc_create "$a" --disk 64M
A=$V/$a
# HDA sound whatever the QEMU: QEMU 10.0 cannot save a virtio sound device's
# state, which would block the live snapshot below (sound-virtio.sh checks
# that refusal and its hint).
printf '[sound]\ntype = hda\n' >>"$A/vm.conf"

# --- disks ---
# scsi, not nvme: QEMU 7.2's nvme device blocks live snapshots (not migratable).
"$PHYLLO" disk add "$a" --size 1G --name data --bus scsi >/dev/null; ok $? "disk add --size 1G --bus scsi"
is "$(dj "$a" | jq -r '.[] | select(.name=="data") | "\(.format) \(.bus) \(."virtual-size")"')" "qcow2 scsi 1073741824" \
   "disk list: the new disk is a 1 GiB qcow2 on scsi (qemu-img info)"
out=$("$PHYLLO" disk resize "$a" data 512M 2>&1); rc=$?
is "$rc" 2 "a shrink without --shrink is refused"
like "$out" "would shrink it" "the refusal says it would shrink"
"$PHYLLO" disk resize "$a" data 2G >/dev/null; ok $? "disk resize to 2G"
is "$(qemu-img info --output=json "$A/disk-data.qcow2" | jq '."virtual-size"')" 2147483648 "the image really is 2 GiB"
qemu-img create -q -f vmdk "$PHYLLOME_HOME/other.vmdk" 32M
"$PHYLLO" disk add "$a" --image "$PHYLLOME_HOME/other.vmdk" --name conv >/dev/null; ok $? "disk add --image of a vmdk"
is "$(qemu-img info --output=json "$A/disk-conv.qcow2" | jq -r .format)" qcow2 "the vmdk was converted to qcow2 in the VM's dir"
qemu-img create -q -f raw "$PHYLLOME_HOME/plain.raw" 16M
"$PHYLLO" disk add "$a" --image "$PHYLLOME_HOME/plain.raw" --name plain >/dev/null
is "$(dj "$a" | jq -r '.[] | select(.name=="plain") | "\(.format) \(.path)"')" "raw $PHYLLOME_HOME/plain.raw" \
   "a raw image is attached where it is"
"$PHYLLO" disk remove "$a" conv --yes >/dev/null; ok $? "disk remove"
ok $([ ! -e "$A/disk-conv.qcow2" ]; echo $?) "disk remove deleted the image in the VM's dir"
"$PHYLLO" disk remove "$a" plain --yes >/dev/null
ok $([ -e "$PHYLLOME_HOME/plain.raw" ]; echo $?) "an attached image outside the VM's dir is never deleted"
like "$("$PHYLLO" disk remove "$a" nosuch --yes 2>&1)" "has no disk named 'nosuch' \(its disks: system, data\)" \
   "removing a missing disk names the VM's disks"
is "$(dj "$a" | jq -r '[.[].name] | join(",")')" "system,data" "the definition lists exactly the remaining disks"

# --- snapshots: disk, UEFI vars and TPM state together ---
# Stand-ins for OVMF's vars and swtpm's state: the revert must treat any content the same.
head -c 131072 /dev/urandom >"$A/OVMF_VARS.fd"
mkdir -p "$A/tpm"; head -c 4096 /dev/urandom >"$A/tpm/tpm2-00.permall"
qemu-io -c 'write -P 0xab 0 64k' "$A/disk-system.qcow2" >/dev/null
v0=$(sum "$A/OVMF_VARS.fd"); t0=$(sum "$A/tpm/tpm2-00.permall")
"$PHYLLO" snapshot create "$a" s1 >/dev/null; ok $? "snapshot create"
is "$(qemu-img snapshot -l "$A/disk-data.qcow2" | grep -c ' s1 ')" 1 "every disk holds the internal snapshot"
like "$("$PHYLLO" snapshot create "$a" s1 2>&1)" "already has a snapshot named 's1'" "a second s1 is refused"
is "$("$PHYLLO" snapshot list "$a" --json | jq -c '[.[] | [.name, .vars, .tpm, (.disks | join(","))]]')" \
   '[["s1",true,true,"system,data"]]' "snapshot list: s1 with vars, TPM and both disks"
qemu-io -c 'write -P 0xcd 0 64k' "$A/disk-system.qcow2" >/dev/null
head -c 131072 /dev/urandom >"$A/OVMF_VARS.fd"; head -c 4096 /dev/urandom >"$A/tpm/tpm2-00.permall"
ok $([ "$(sum "$A/OVMF_VARS.fd")" != "$v0" ]; echo $?) "the vars changed after the snapshot"
"$PHYLLO" snapshot revert "$a" s1 >/dev/null; ok $? "snapshot revert"
qemu-io -c 'read -P 0xab 0 64k' "$A/disk-system.qcow2" | grep -q '^read 65536/65536'; ok $? "revert restored the disk content (0xab)"
is "$(sum "$A/OVMF_VARS.fd")" "$v0" "revert restored the UEFI vars"
is "$(sum "$A/tpm/tpm2-00.permall")" "$t0" "revert restored the TPM state"
is "$(ls -A "$A" | grep -c '^\.#')" 0 "a revert leaves no temporary files"
"$PHYLLO" snapshot delete "$a" s1 >/dev/null; ok $? "snapshot delete"
is "$(qemu-img snapshot -l "$A/disk-system.qcow2" | grep -c ' s1 ')" 0 "the internal snapshot is gone from the disk"
like "$("$PHYLLO" snapshot revert "$a" s1 2>&1)" "has no snapshot named 's1'" "reverting a deleted snapshot is refused"

# --- clones ---
big=big$$
lc_create "$big" --disk 64G
for src in "$a" "$big"; do
  "$PHYLLO" clone "$src" "$src-c" >/dev/null; ok $? "linked clone of $src"
  lc_vms+=("$src-c")
  j=$(dj "$src-c" | jq '.[] | select(.name=="system")')
  like "$(jq -r .backing <<<"$j")" "^$V/$src/base/system\.1\.qcow2$" "the clone of $src has the frozen base as backing file"
  ok $([ "$(jq '."actual-size"' <<<"$j")" -lt 1048576 ]; echo $?) "the clone of $src uses < 1 MiB ($(jq '."actual-size"' <<<"$j") bytes)"
  like "$(dj "$src" | jq -r '.[] | select(.name=="system") | .backing')" "base/system\.1\.qcow2$" \
     "$src itself now writes to an overlay on the same base"
done
is "$(dj "$big-c" | jq '.[] | select(.name=="system") | ."virtual-size"')" 68719476736 "the 64G clone is 64 GiB virtually"
u0=$("$PHYLLO" show "$a" --json | jq -r .vm.uuid); u1=$("$PHYLLO" show "$a-c" --json | jq -r .vm.uuid)
ok $([ -n "$u1" ] && [ "$u0" != "$u1" ]; echo $?) "the clone has a new uuid"
m0=$("$PHYLLO" show "$a" --json | jq -r '.networks[0].mac'); m1=$("$PHYLLO" show "$a-c" --json | jq -r '.networks[0].mac')
ok $([ "$m0" != "$m1" ]; echo $?) "the clone has a new MAC ($m1)"
is "$(sum "$V/$a-c/OVMF_VARS.fd")" "$v0" "the clone has its own copy of the vars"
ok $([ ! -e "$V/$a-c/tpm" ]; echo $?) "a clone gets a fresh TPM by default"
qemu-io -c 'read -P 0xab 0 64k' "$V/$a-c/disk-system.qcow2" | grep -q '^read 65536/65536'; ok $? "the clone reads the source's data"
"$PHYLLO" clone "$a" "$a-f" --full --tpm copy >/dev/null; ok $? "full clone with a copied TPM"
lc_vms+=("$a-f")
is "$(dj "$a-f" | jq -r '.[0].backing')" null "a full clone has no backing file"
is "$(sum "$V/$a-f/tpm/tpm2-00.permall")" "$t0" "--tpm copy copied the TPM state"
out=$("$PHYLLO" delete "$big" --yes 2>&1); rc=$?
ok $([ "$rc" -ne 0 ]; echo $?) "deleting a VM with a linked clone is refused"
like "$out" "linked clones that use its disks: $big-c" "the refusal names the clone"
"$PHYLLO" delete "$big" --force --yes >/dev/null; ok $? "delete --force"
is "$(dj "$big-c" | jq -r '.[0].backing')" null "--force made the clone standalone first"
"$PHYLLO" delete "$big-c" --yes >/dev/null

# --- export / import ---
"$PHYLLO" export "$a" "$PHYLLOME_HOME/a.bundle" >/dev/null; ok $? "export to a file"
is "$(tar --zstd -tf "$PHYLLOME_HOME/a.bundle" | tr '\n' ' ')" \
   "vm.conf disk-system.qcow2 disk-data.qcow2 OVMF_VARS.fd tpm/tpm2-00.permall manifest.json " \
   "the bundle: definition, disks (the overlay flattened), vars, TPM, manifest last"
# --trust: our own bundle, whose kernel, initrd and key file the boot below needs.
"$PHYLLO" export "$a" - | "$PHYLLO" import - --name "$a-i" --trust >/dev/null; ok $? "export | import (--trust) through a pipe"
lc_vms+=("$a-i")
for d in system data; do
  qemu-img compare "$A/disk-$d.qcow2" "$V/$a-i/disk-$d.qcow2" >/dev/null; ok $? "disk $d is identical after the round trip"
done
is "$(dj "$a-i" | jq -r '.[0].backing')" null "the imported disk stands alone"
is "$(sum "$V/$a-i/OVMF_VARS.fd") $(sum "$V/$a-i/tpm/tpm2-00.permall")" "$v0 $t0" "vars and TPM state came along"
ok $([ "$("$PHYLLO" show "$a-i" --json | jq -r .vm.uuid)" != "$u0" ]; echo $?) "an import under a new name gets a new uuid"
like "$("$PHYLLO" import "$PHYLLOME_HOME/a.bundle" 2>&1)" "a VM named '$a' already exists" "importing over an existing VM is refused"

# Forged bundles: built from the real one's members with python's tarfile.
X=$PHYLLOME_HOME/x; mkdir "$X"; tar --zstd -xf "$PHYLLOME_HOME/a.bundle" -C "$X"
forge() { # forge OUT [ARCNAME=FILE...]: a pax tar+zstd of the given members in order
  local out=$1; shift
  python3 - "$@" >"$out.tar" <<'PY' && zstd -q -f "$out.tar" -o "$out" && rm -f "$out.tar"
import sys, tarfile
t = tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT)
for a in sys.argv[1:]:
    name, path = a.split("=", 1)
    t.add(path, arcname=name)
t.close()
PY
}
members() { local m; for m in vm.conf disk-system.qcow2 disk-data.qcow2 OVMF_VARS.fd tpm/tpm2-00.permall; do echo "$m=$X/$m"; done; }
before=$(ls -A "$V" | tr '\n' ' ')
refused() { # refused BUNDLE REGEX WHAT
  out=$("$PHYLLO" import "$1" --name forged 2>&1); rc=$?
  ok $([ "$rc" -ne 0 ]; echo $?) "$3 is refused"
  like "$out" "$2" "$3: the message says why"
  is "$(ls -A "$V" | tr '\n' ' ')" "$before" "$3: nothing was written"
}
forge "$PHYLLOME_HOME/good" $(members) manifest.json="$X/manifest.json"
"$PHYLLO" import "$PHYLLOME_HOME/good" --name forged-ok >/dev/null; ok $? "the re-packed bundle itself imports (the forger is sound)"
lc_vms+=(forged-ok); "$PHYLLO" delete forged-ok --yes >/dev/null; before=$(ls -A "$V" | tr '\n' ' ')
# One byte flipped (the vars are random here: a byte set to a fixed value was that value already once in 256 runs).
cp "$X/OVMF_VARS.fd" "$X/vars.orig"; b=$(od -An -tu1 -j100 -N1 "$X/OVMF_VARS.fd")
printf "\\$(printf '%03o' $((255 - b)))" | dd of="$X/OVMF_VARS.fd" bs=1 seek=100 conv=notrunc status=none
ok $(cmp -s "$X/OVMF_VARS.fd" "$X/vars.orig"; [ $? -eq 1 ]; echo $?) "the tampered vars differ from the original"
forge "$PHYLLOME_HOME/tampered" $(members) manifest.json="$X/manifest.json"
refused "$PHYLLOME_HOME/tampered" "'OVMF_VARS.fd' does not match its manifest" "a tampered bundle"
cp "$X/vars.orig" "$X/OVMF_VARS.fd"
head -c $(( $(stat -c %s "$PHYLLOME_HOME/a.bundle") / 2 )) "$PHYLLOME_HOME/a.bundle" >"$PHYLLOME_HOME/truncated"
refused "$PHYLLOME_HOME/truncated" "truncated" "a truncated bundle"
forge "$PHYLLOME_HOME/noman" $(members)
refused "$PHYLLOME_HOME/noman" "no manifest.json" "a bundle without its manifest"
forge "$PHYLLOME_HOME/escape" $(members) "../escaped=$X/vm.conf" manifest.json="$X/manifest.json"
refused "$PHYLLOME_HOME/escape" "'../escaped' is not a name a bundle holds" "a member escaping the directory"
ok $([ ! -e "$V/escaped" ] && [ ! -e "$PHYLLOME_HOME/escaped" ]; echo $?) "no escaped file exists"
forge "$PHYLLOME_HOME/dup" $(members) "vm.conf=$X/vm.conf" manifest.json="$X/manifest.json"
refused "$PHYLLOME_HOME/dup" "holds the member 'vm.conf' twice" "a duplicate member"
ln -s /etc/passwd "$X/link"
forge "$PHYLLOME_HOME/link" $(members) "tpm/link=$X/link" manifest.json="$X/manifest.json"
refused "$PHYLLOME_HOME/link" "not a regular file" "a symlink member"

# --- encrypted disk (LUKS qcow2): refused with a wrong key, boots with the right one ---
K=$PHYLLOME_HOME/sec.key
head -c 32 /dev/urandom | base64 >"$K"; chmod 644 "$K"
like "$("$PHYLLO" disk add "$a-i" --size 32M --encrypt --key-file "$K" --name sec 2>&1)" "can be read by other users \(mode 0644\)" \
   "a key file others can read is refused"
chmod 600 "$K"
# As root QEMU runs as an unprivileged user, who must be able to read the key.
[ "$(id -u)" = 0 ] && chown "${PHYLLOME_QEMU_USER:-nobody}" "$K"
"$PHYLLO" disk add "$a-i" --size 32M --encrypt --key-file "$K" --name sec >/dev/null; ok $? "disk add --encrypt --key-file"
is "$(qemu-img info --output=json "$V/$a-i/disk-sec.qcow2" | jq -c '[.encrypted, ."format-specific".data.encrypt.format]')" \
   '[true,"luks"]' "the new disk is a LUKS-encrypted qcow2"
like "$("$PHYLLO" argv "$a-i" --tcg 2>/dev/null | tr '\n' ' ')" "secret,id=sec-disk-sec,file=$K .*encrypt.format=luks,encrypt.key-secret=sec-disk-sec" \
   "QEMU gets the key as a secret object read from the key file"
ok $(! "$PHYLLO" argv "$a-i" --tcg 2>/dev/null | grep -qF -- "$(cat "$K")"; echo $?) "the key itself is not on the command line"
"$PHYLLO" snapshot create "$a-i" enc >/dev/null; ok $? "a snapshot includes the encrypted disk (qemu-img with the key)"
"$PHYLLO" snapshot delete "$a-i" enc >/dev/null
cp -p "$K" "$K.good"; head -c 32 /dev/urandom | base64 >"$K"
s0=$(sum "$V/$a-i/disk-sec.qcow2")
out=$("$PHYLLO" start "$a-i" 2>&1); rc=$?
ok $([ "$rc" -ne 0 ]; echo $?) "a start with the wrong key fails"
like "$out" "Invalid password" "the failure says the key is wrong (QEMU's words)"
"$PHYLLO" wait "$a-i" --for stopped --timeout 30 >/dev/null; ok $? "the VM is not running"
is "$(sum "$V/$a-i/disk-sec.qcow2")" "$s0" "the encrypted disk is unchanged"
cp -p "$K.good" "$K"

# --- a typed passphrase (key = prompt): asked on the terminal (script(1) gives
# the command one), kept in the run dir only until QEMU has read it ---
typed() { local input=$1; shift; printf '%s' "$input" | script -qec "$(printf '%q ' "$@")" /dev/null; }
p=tp$$
lc_create "$p" --no-disk
out=$(typed $'one\ntwo\n' "$PHYLLO" disk add "$p" --size 32M --encrypt --name sec 2>&1)
like "$out" "the two passphrases differ; nothing was changed" "two different passphrases are refused"
ok $(! grep -q '^\[disk sec\]' "$V/$p/vm.conf" && [ ! -e "$V/$p/disk-sec.qcow2" ]; echo $?) "and nothing was added"
# (setsid: no controlling terminal, also when the suite runs from one)
out=$(setsid -w "$PHYLLO" disk add "$p" --size 32M --encrypt --name sec </dev/null 2>&1)
like "$out" "asks for a passphrase on the terminal, and there is none; give --key-file" "without a terminal: --key-file is named"
typed $'sesame-$$\nsesame-$$\n' "$PHYLLO" disk add "$p" --size 32M --encrypt --name sec >/dev/null
ok $? "disk add --encrypt with a typed passphrase"
like "$(sed -n '/^\[disk sec\]/,/^\[/p' "$V/$p/vm.conf" | tr '\n' ' ')" "key = prompt" "the definition says the key is typed"
is "$(qemu-img info --output=json "$V/$p/disk-sec.qcow2" | jq -c .encrypted)" true "the disk is LUKS-encrypted"
is "$(ls -A "$PHYLLOME_HOME" | grep -c '^\.#key')" 0 "the passphrase's temporary file is gone"
out=$(setsid -w "$PHYLLO" start "$p" </dev/null 2>&1); rc=$?
ok $((rc == 0)) "a start without a terminal fails"
like "$out" "typed passphrase .*run the command on a terminal" "and says a passphrase must be typed"
out=$(typed $'wrong\n' "$PHYLLO" start "$p" 2>&1)
like "$out" "Invalid password" "a wrong passphrase: QEMU's own words"
is "$(lc_state "$p")" failed "the VM did not start"
ok $([ ! -e "$PHYLLOME_HOME/run/$p/key-disk-sec" ]; echo $?) "and the typed passphrase is not kept"
typed $'sesame-$$\n' "$PHYLLO" snapshot create "$p" s1 >/dev/null; ok $? "an offline snapshot asks for it too"
typed $'sesame-$$\n' "$PHYLLO" start "$p" >/dev/null; ok $? "the right passphrase starts the VM"
is "$(lc_state "$p")" running "it runs"
ok $([ ! -e "$PHYLLOME_HOME/run/$p/key-disk-sec" ]; echo $?) "the passphrase left the run dir once QEMU had it"
cmd=$(tr '\0' ' ' <"/proc/$(lc_field "$p" qemu_pid)/cmdline")
like "$cmd" "secret,id=sec-disk-sec,file=$PHYLLOME_HOME/run/$p/key-disk-sec" "QEMU read it from a file"
ok $([[ "$cmd" != *sesame-$$* ]]; echo $?) "the passphrase is not on QEMU's command line"
"$PHYLLO" kill "$p" >/dev/null

# --- one boot: the imported VM runs (with its encrypted disk); a running VM refuses what is unsafe ---
lc_vms+=("$a-i")
"$PHYLLO" start "$a-i" >/dev/null 2>&1; ok $? "the imported VM starts with the right key"
lc_wait_log "$a-i" 'PHYLLOME-GUEST-READY' 120; ok $? "the imported VM boots to the guest's READY marker"
# system is vda, data is on scsi; the encrypted 32 MiB disk, opened with its key, is vdb.
is "$("$PHYLLO" logs "$a-i" | grep -cE 'virtio_blk .*\[vdb\] 65536 512-byte logical blocks')" 1 \
   "the guest sees the encrypted disk (vdb, 32 MiB)"
cmd=$(tr '\0' ' ' <"/proc/$(lc_field "$a-i" qemu_pid)/cmdline")
like "$cmd" "virtio-blk-pci,id=disk-system,drive=disk-system,iothread=io-disk-system" "a virtio disk has its own iothread"
# The home is on a filesystem with O_DIRECT unless it is tmpfs; the argv follows the probe.
if dd if=/dev/null of="$PHYLLOME_HOME/direct" oflag=direct status=none 2>/dev/null; then
  like "$cmd" "disk-system.qcow2,cache.direct=on,aio=native" "cache.direct=on and native AIO where O_DIRECT works"
else
  like "$cmd" "disk-system.qcow2,discard" "no cache.direct (and QEMU's thread pool) on a filesystem without O_DIRECT"
fi
# A live snapshot holds the guest's memory: a shell variable set before it is back after the revert.
guest() { printf '%s; echo do""ne-%s\n' "$1" "$2" | "$PHYLLO" console "$a-i" >/dev/null 2>&1; lc_wait_log "$a-i" "^\[console\] done-$2"; }
guest "export PHYMARK=before-$$" m1; ok $? "the guest shell took a marker"
out=$("$PHYLLO" snapshot create "$a-i" live 2>&1); ok $? "snapshot create of the running VM (QEMU's snapshot-save job)" || {
  # Seen once in CI (QEMU 7.2 left the QMP command unanswered): what QEMU's threads wait on, for the next one.
  diag "$out"; diag "$(tail -5 "$PHYLLOME_HOME/run/$a-i/qemu.log" 2>/dev/null)"
  qp=$(lc_field "$a-i" qemu_pid)
  for t in /proc/"$qp"/task/*; do diag "$(cat "$t/comm") $(cat "$t/wchan" 2>/dev/null) $(head -3 "$t/stack" 2>/dev/null | tr '\n' ' ')"; done
}
is "$(lc_state "$a-i")" running "the VM runs on after its snapshot"
is "$("$PHYLLO" snapshot list "$a-i" --json | jq -c '.[] | select(.name=="live") | [.vmstate, (.disks | join(","))]')" \
   '[true,"system,data,sec"]' "the live snapshot holds memory and every disk, the encrypted one included"
guest "export PHYMARK=after" m2; ok $? "the guest changed its marker"
like "$("$PHYLLO" snapshot revert "$a-i" live 2>&1)" "is running; stop it first or revert with --stop" \
   "revert of a running VM is refused without --stop"
"$PHYLLO" snapshot revert "$a-i" live --stop >/dev/null 2>&1; ok $? "snapshot revert --stop"
is "$(lc_state "$a-i")" running "the VM runs again from the snapshot's memory"
printf 'echo mark-$PHYMARK\n' | "$PHYLLO" console "$a-i" >/dev/null 2>&1
lc_wait_log "$a-i" "^\[console\] mark-before-$$" 30; ok $? "the guest's memory is the snapshot's (marker 'before' is back)"
like "$("$PHYLLO" disk resize "$a-i" data 4G 2>&1)" "is running; stop it first" "resize of a running VM's disk is refused"
like "$("$PHYLLO" export "$a-i" "$PHYLLOME_HOME/r.bundle" 2>&1)" "is running; stop it first" "export of a running VM is refused"
ok $([ ! -e "$PHYLLOME_HOME/r.bundle" ] && [ ! -e "$PHYLLOME_HOME/r.bundle.partial" ]; echo $?) "a refused export leaves no file"
like "$("$PHYLLO" clone "$a-i" x 2>&1)" "is running; stop it first" "clone of a running VM is refused"
"$PHYLLO" kill "$a-i" >/dev/null 2>&1
"$PHYLLO" wait "$a-i" --for stopped --timeout 30 >/dev/null; ok $? "the VM is stopped again"

tap_done

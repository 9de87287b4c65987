#!/usr/bin/env bash
# Issue 12 (docs/security.md): the attacks of findings 1, 8 and 9 replayed
# as root on throwaway homes, through phyllo and through phyllod's API, per
# user and in system mode.  Each must be refused (and leave the target file
# as it was); the legitimate use next to it must still work.
#   1  paths: a root-only file as a disk then export; a '../' disk path and
#      the monitor's chown (also through a symlink in the VM dir); disk
#      remove outside the VM dir; a share of '/'; system mode allows nothing
#      beyond the VM dir but host.conf's allow-paths.
#   8  a newline in a value (create --append, POST, PUT) adds no section.
#   9  a kernel and an initrd in a directory with a comma really boot.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
command -v curl >/dev/null || skip_all "curl is not installed"
. "$(dirname "$0")/phyllod-lib.sh"
[ "$(id -u)" = 0 ] || skip_all "the attacks target root's files through a root phyllo and phyllod: run as root"
lc_new_home
# Outside every allowed directory: not below $HOME, nor the Phyllome home.
OUT=$(mktemp -d /tmp/phyllome-outside.XXXXXX)
SYS=$(mktemp -d /tmp/phyllome-test.XXXXXX)
# The user's home (allowed per user), beside the Phyllome home (shares of which are refused).
export HOME=$(mktemp -d /tmp/phyllome-userhome.XXXXXX)
trap 'lc_cleanup; rm -rf "$OUT" "$SYS" "$HOME"' EXIT
export PHYLLOME_NO_DAEMON=1
S=$PHYLLOME_HOME/pd.sock
echo "root-secret-$$" >"$OUT/secret"; chmod 600 "$OUT/secret"
echo "victim-$$" >"$OUT/victim"; chmod 600 "$OUT/victim"

# api SOCKET METHOD PATH [BODY]: prints "STATUS BODY".
api() {
  local out
  out=$(curl -s --max-time 120 --unix-socket "$1" -X "$2" ${4:+-H 'Content-Type: application/json' --data-binary "$4"} \
        -w '\n%{http_code}' "http://localhost$3")
  echo "${out##*$'\n'} ${out%$'\n'*}"
}
# put_conf SOCKET VM TEXT: PUT the definition text (JSON-quoted by jq).
put_conf() { api "$1" PUT "/v1/vms/$2" "$(jq -cn --arg c "$3" '{config: $c}')"; }
conf_of() { cat "$PHYLLOME_HOME/vms/$1/vm.conf"; }
# edit_to VM TEXT: phyllo edit with an "editor" that appends TEXT.
edit_to() {
  printf '%s\n' "$2" >"$PHYLLOME_HOME/append.txt"
  printf '#!/bin/sh\ncat %q >>"$1"\n' "$PHYLLOME_HOME/append.txt" >"$PHYLLOME_HOME/editor"
  chmod +x "$PHYLLOME_HOME/editor"
  EDITOR=$PHYLLOME_HOME/editor "$PHYLLO" edit "$1" 2>&1
}
# plant VM TEXT: what an old phyllod saved, or a hand edit: straight into vm.conf.
plant() { cp "$PHYLLOME_HOME/vms/$1/vm.conf" "$PHYLLOME_HOME/$1.conf.orig"; printf '%s\n' "$2" >>"$PHYLLOME_HOME/vms/$1/vm.conf"; }
unplant() { cp "$PHYLLOME_HOME/$1.conf.orig" "$PHYLLOME_HOME/vms/$1/vm.conf"; }
up="../../../.."     # from <home>/vms/a (/tmp/phyllome-test.X/vms/a) to /

pd_start --socket "$S"
ok $? "a per-user phyllod serves $S"

# ---- finding 8: values are single lines ----
inj=$'quiet\n[share root]\npath = /\ntype = 9p'
out=$("$PHYLLO" create v8 --profile linux --kernel "$GUEST/vmlinux" --append "$inj" --display none --memory 256M \
      --cpus 1 --no-uefi 2>&1)
ok $([ $? -ne 0 ]; echo $?) "create --append with a newline is refused"
like "$out" "\[boot\] append: the value 'quiet\\\\n\[share root\].*control character" "... naming [boot] append: $out"
ok $([ ! -e "$PHYLLOME_HOME/vms/v8" ]; echo $?) "... and no VM v8 exists"
r=$(api "$S" POST /v1/vms "$(jq -cn --arg k "$GUEST/vmlinux" --arg a "$inj" \
      '{name: "v8", profile: "linux", kernel: $k, append: $a, display: "none", memory: "256M", cpus: 1}')")
is "${r%% *}" 400 "POST /v1/vms with a newline in append: 400"
like "$r" '\[boot\] append' "... naming [boot] append"
ok $([ ! -e "$PHYLLOME_HOME/vms/v8" ]; echo $?) "... and no VM v8 exists"

lc_create a
base=$(conf_of a)
r=$(put_conf "$S" a "${base/console=ttyS0/console=ttyS0$'\r'quiet}")
is "${r%% *}" 400 "PUT with a carriage return in append: 400"
like "$r" "key 'append' in section \[boot\].*control character" "... naming the key: $r"
is "$(conf_of a)" "$base" "... and vm.conf is unchanged"

# ---- finding 1: paths, per user ----
out=$(edit_to a $'[disk s]\npath = '"$OUT/secret"$'\nformat = raw'); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "edit: a root-only file outside the allowed directories as a disk is refused"
like "$out" "\[disk s\] path: '$OUT/secret' is outside the VM's directory and the directories this host allows" \
  "... naming [disk s] path and why"
is "$(conf_of a)" "$base" "... and vm.conf is unchanged"
r=$(put_conf "$S" a "$base"$'\n[disk s]\npath = '"$OUT/secret"$'\nformat = raw')
is "${r%% *}" 403 "PUT: the same disk is refused with 403"
like "$r" '\[disk s\] path' "... naming the key"

plant a $'[disk s]\npath = '"$OUT/secret"$'\nformat = raw'
out=$("$PHYLLO" export a "$PHYLLOME_HOME/a.bundle" 2>&1)
ok $([ $? -ne 0 ]; echo $?) "export of a definition naming a root-only file is refused"
like "$out" "\[disk s\] path" "... naming the key: $out"
ok $(! { [ -e "$PHYLLOME_HOME/a.bundle" ] && zstd -dc "$PHYLLOME_HOME/a.bundle" 2>/dev/null | grep -qa "root-secret-$$"; }; echo $?) \
  "... and no bundle holds the secret"
r=$(curl -s --max-time 60 --unix-socket "$S" -o "$PHYLLOME_HOME/api.bundle" -w '%{http_code}' http://localhost/v1/vms/a/export)
is "$r" 403 "GET /v1/vms/a/export of that definition: 403"
ok $(! zstd -dc "$PHYLLOME_HOME/api.bundle" 2>/dev/null | grep -qa "root-secret-$$"; echo $?) "... and the secret is not in the reply"
unplant a

out=$(edit_to a $'[disk v]\npath = '"$up$OUT/victim"); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "edit: a '../' disk path is refused"
like "$out" "\[disk v\] path: the relative path '$up$OUT/victim' leaves the VM's directory" "... naming [disk v] path"
r=$(put_conf "$S" a "$base"$'\n[disk v]\npath = '"$up$OUT/victim")
is "${r%% *}" 403 "PUT: the same '../' disk path: 403"
plant a $'[disk v]\npath = '"$up$OUT/victim"$'\nformat = raw'
out=$("$PHYLLO" start a 2>&1)
ok $([ $? -ne 0 ]; echo $?) "start with a planted '../' disk path is refused"
like "$out" "\[disk v\] path: the relative path" "... naming the key"
is "$(stat -c %U:%a "$OUT/victim")" root:600 "... and the file it named is still root's, 0600"
r=$(api "$S" POST /v1/vms/a/start '{}')
ok $([ "${r%% *}" -ge 400 ]; echo $?) "POST /v1/vms/a/start with it: refused (${r%% *})"
is "$(stat -c %U:%a "$OUT/victim")" root:600 "... and the file is still root's"
unplant a

# A symlink inside the VM dir to a file the user may name: the monitor's chown
# must not follow it (before the fix the target became nobody's).
echo target >"$HOME/linked"; chmod 600 "$HOME/linked"
ln -s "$HOME/linked" "$PHYLLOME_HOME/vms/a/link.raw"
plant a $'[disk l]\npath = link.raw\nformat = raw'
out=$("$PHYLLO" start a 2>&1)
ok $([ $? -ne 0 ]; echo $?) "start with a disk that is a symlink in the VM dir fails"
like "$out" "cannot hand '.*/link.raw' to the QEMU user.*symlink" "... saying it will not chown through it: $out"
is "$(stat -c %U "$HOME/linked")" root "... and the symlink's target is still root's"
"$PHYLLO" stop a --force >/dev/null 2>&1
unplant a
rm -f "$PHYLLOME_HOME/vms/a/link.raw"

plant a $'[disk v]\npath = '"$up$OUT/victim"$'\nformat = raw'
out=$("$PHYLLO" disk remove a v --yes 2>&1)
ok $([ $? -ne 0 ]; echo $?) "disk remove of a '../' disk says what it did not do"
like "$out" "its image .* was not deleted: it is not a file inside the VM's directory" "... $out"
ok $([ -e "$OUT/victim" ]; echo $?) "... and the file outside the VM dir still exists"
plant a $'[disk w]\npath = '"$up$OUT/victim"$'\nformat = raw'
r=$(api "$S" DELETE /v1/vms/a/disks/w)
is "${r%% *}" 403 "DELETE /v1/vms/a/disks/w of a '../' disk: 403"
ok $([ -e "$OUT/victim" ]; echo $?) "... and the file still exists"
unplant a

# Every other root-run qemu-img step on a disk checks the definition first.
qemu-img create -q -f qcow2 "$OUT/victim.qcow2" 16M; chmod 600 "$OUT/victim.qcow2"
vsum=$(sha256sum <"$OUT/victim.qcow2")
plant a $'[disk q]\npath = '"$up$OUT/victim.qcow2"
out=$("$PHYLLO" disk resize a q 32M 2>&1); ok $([ $? -ne 0 ]; echo $?) "disk resize of a '../' disk is refused: $out"
out=$("$PHYLLO" snapshot create a s1 2>&1); ok $([ $? -ne 0 ]; echo $?) "snapshot create with it is refused: $out"
out=$("$PHYLLO" clone a a2 2>&1); ok $([ $? -ne 0 ]; echo $?) "clone with it is refused: $out"
out=$("$PHYLLO" disk list a 2>&1); ok $([ $? -ne 0 ]; echo $?) "disk list (qemu-img info as root) with it is refused"
is "$(sha256sum <"$OUT/victim.qcow2")" "$vsum" "... and the image outside is unchanged (not resized, no snapshot, not moved)"
ok $([ ! -e "$PHYLLOME_HOME/vms/a2" ]; echo $?) "... and no clone was made"
unplant a

out=$("$PHYLLO" share add a / root 2>&1)
ok $([ $? -ne 0 ]; echo $?) "share add of / is refused"
like "$out" "root directory '/'|\[share root\] path: '/' is the host's root directory" "... saying why: $out"
r=$(put_conf "$S" a "$base"$'\n[share root]\npath = /\ntype = 9p')
is "${r%% *}" 403 "PUT with a 9p share of /: 403"
out=$("$PHYLLO" share add a "$OUT" out 2>&1)
ok $([ $? -ne 0 ]; echo $?) "share add of a directory outside the allowed ones is refused"
is "$(conf_of a)" "$base" "vm.conf is unchanged after all of that"

# An image outside the allowed directories is not even read (a vmdk would be
# converted into the VM dir, and exported from there, before any save).
qemu-img create -q -f vmdk "$OUT/secret.vmdk" 1M; chmod 600 "$OUT/secret.vmdk"
out=$("$PHYLLO" disk add a --image "$OUT/secret.vmdk" --name x 2>&1)
ok $([ $? -ne 0 ]; echo $?) "disk add --image of a root-only image outside the allowed directories is refused"
like "$out" "--image: '$OUT/secret.vmdk' is outside" "... naming it: $out"
ok $([ ! -e "$PHYLLOME_HOME/vms/a/disk-x.qcow2" ]; echo $?) "... and nothing was converted into the VM dir"
r=$(api "$S" POST /v1/vms/a/disks "$(jq -cn --arg i "$OUT/secret.vmdk" '{image: $i, name: "y"}')")
is "${r%% *}" 403 "POST /v1/vms/a/disks with that image: 403"
ok $([ ! -e "$PHYLLOME_HOME/vms/a/disk-y.qcow2" ]; echo $?) "... and nothing was converted"

# What the user may name is still fine: a disk in their home, a share of it.
qemu-img create -q -f raw "$HOME/ok.raw" 16M
r=$(put_conf "$S" a "$base"$'\n[disk ok]\npath = '"$HOME/ok.raw"$'\nformat = raw')
is "${r%% *}" 200 "PUT: a disk in the user's home is allowed"
out=$("$PHYLLO" share add a "$HOME" home 2>&1); ok $? "share add of the user's home is allowed: $out"

# A virtiofs share whose directory is named like a second virtiofsd option
# ("x,source=DIR") must export that directory, not DIR (virtiofsd's -o splits
# on commas).  DIR is a decoy outside the allowed directories.
DECOY=$(mktemp -d /tmp/phyllome-decoy.XXXXXX)
trap 'lc_cleanup; rm -rf "$OUT" "$SYS" "$HOME" "$DECOY"' EXIT
echo "decoy-$$" >"$DECOY/phyllome-read.txt"
inj="$HOME/sh,source=$DECOY"
mkdir -p "$inj"; echo "inside-$$" >"$inj/phyllome-read.txt"; chmod -R a+rwX "$HOME"
lc_vms+=(vf)
"$PHYLLO" create vf --profile linux --kernel "$GUEST/vmlinux" --initrd "$GUEST/initrd.img" --display none \
  --append "console=ttyS0 phyllome.mount=inj:virtiofs:/mnt/a" --memory 256M --cpus 1 --no-uefi >/dev/null
out=$("$PHYLLO" share add vf "$inj" inj 2>&1); ok $? "a share of a directory named '...,source=$DECOY' in the home: $out"
out=$("$PHYLLO" start vf 2>&1); ok $? "it starts with virtiofsd" || diag "$out"
lc_wait_log vf 'PHYLLOME-GUEST-READ inj' 120
logs=$("$PHYLLO" logs vf)
like "$logs" "PHYLLOME-GUEST-READ inj inside-$$" "the guest reads the shared directory itself"
ok $([[ $logs != *decoy-$$* ]] && [ ! -e "$DECOY/phyllome-write.txt" ]; echo $?) "... and never sees the decoy"
"$PHYLLO" stop vf --force >/dev/null 2>&1

# ---- system mode: nothing beyond the VM dir but host.conf's allow-paths ----
R=$SYS/root; mkdir -p "$R/etc/phyllome" "$SYS/iso"
for d in proc sys dev; do ln -s "/$d" "$R/$d"; done
echo "allow-paths = $SYS/iso" >"$R/etc/phyllome/host.conf"
cp "$GUEST/vmlinux" "$SYS/iso/"
mkdir -p "$SYS/home"
S2=$SYS/pd.sock
PHYLLOME_HOME=$SYS/home pd_start --system --root "$R" --socket "$S2"
ok $? "a system-mode phyllod serves $S2"
body() { jq -cn --arg k "$1" '{name: "s1", profile: "linux", kernel: $k, display: "none", memory: "256M", cpus: 1, no_disk: true}'; }
r=$(api "$S2" POST /v1/vms "$(body "$GUEST/vmlinux")")
is "${r%% *}" 403 "system mode: a kernel in the Phyllome user's files (allowed per user) is refused"
like "$r" '\[boot\] kernel' "... naming [boot] kernel"
r=$(api "$S2" POST /v1/vms "$(body "$SYS/iso/vmlinux")")
is "${r%% *}" 201 "system mode: a kernel under host.conf's allow-paths is allowed"
sbase=$(cat "$SYS/home/vms/s1/vm.conf")
r=$(put_conf "$S2" s1 "$sbase"$'\n[disk s]\npath = '"$OUT/secret"$'\nformat = raw')
is "${r%% *}" 403 "system mode: PUT of a root-only file as a disk: 403"
r=$(put_conf "$S2" s1 "$sbase"$'\n[share h]\npath = '"$HOME"$'\ntype = 9p')
is "${r%% *}" 403 "system mode: PUT of a share outside allow-paths: 403"
r=$(put_conf "$S2" s1 "$sbase"$'\n[passthrough]\ndevices = 0000:00:03.0')
is "${r%% *}" 403 "system mode: a PCI device host.conf's passthrough-allow does not list: 403"
like "$r" 'PCI device 0000:00:03.0 is not in passthrough-allow' "... saying so"
r=$(put_conf "$S2" s1 "$sbase"$'\n[usb]\ndevices = 1d6b:0002')
is "${r%% *}" 403 "system mode: a host USB device: 403"
r=$(put_conf "$S2" s1 "$sbase"$'\n[disk d]\npath = data.raw\nformat = raw\nsize = 16M')
is "${r%% *}" 200 "system mode: a disk inside the VM dir is fine"
kill "$PD_PID"; wait "$PD_PID" 2>/dev/null

# ---- finding 9: a kernel at a path with a comma boots ----
mkdir "$PHYLLOME_HOME/boot,dir"
cp "$GUEST/vmlinux" "$GUEST/initrd.img" "$PHYLLOME_HOME/boot,dir/"
lc_vms+=(c9)
"$PHYLLO" create c9 --profile linux --kernel "$PHYLLOME_HOME/boot,dir/vmlinux" --initrd "$PHYLLOME_HOME/boot,dir/initrd.img" \
  --append "console=ttyS0" --display none --memory 256M --cpus 1 --no-uefi >/dev/null
ok $? "a VM booting a kernel from a directory with a comma"
like "$("$PHYLLO" argv c9 --null | tr '\0' '\n' | grep -A1 -x -- -kernel | tail -1)" "boot,dir/vmlinux$" \
  "its -kernel is the path as it is (no comma doubled)"
"$PHYLLO" start c9 >/dev/null 2>&1; ok $? "it starts"
lc_wait_log c9 'PHYLLOME-GUEST-READY' 120; ok $? "and the guest boots to READY"
"$PHYLLO" stop c9 --force >/dev/null 2>&1
tap_done

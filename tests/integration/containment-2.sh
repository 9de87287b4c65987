#!/usr/bin/env bash
# Issue 12, session 5's audit (docs/security.md, "Checked in session 5"):
# the attacks found by a fresh read of the code, replayed without a boot.
#   1  A raw disk whose guest wrote a qcow2 header naming a host file as
#      its backing file: `disk list`, `disk resize`, `clone --full` and both
#      exports must treat it as the raw disk it is; before, qemu-img probed
#      it as qcow2, and clone and export copied the named host file (any
#      file root can read) into the new VM's disk or into the bundle.
#   2  A qcow2 disk inside the VM dir belongs to the VM's uid: a compromised
#      QEMU can rewrite its header.  A backing file or an external data
#      file outside the VM's files, or a backing format other than qcow2
#      and raw, makes export, export to libvirt and `clone --full` refuse,
#      naming it, instead of copying the file.  A linked clone's frozen
#      base is root's, read-only, so the source's uid cannot change it.
#   3  An OVA (or a libvirt domain) whose qcow2 keeps its data in an
#      external host file ("data-file"): refused; before, qemu-img convert
#      copied that host file into the new VM's disk.
#   4  An OVA with a sparse member (a tiny tar declaring a large hole) is
#      refused before anything is hashed; before, every byte of the hole
#      was read and hashed (finding 5's bundle attack, in the OVA reader).
#   5  (as root) export to libvirt into a directory its client can write:
#      an existing one of another uid is refused; a new one is held open,
#      so a client swapping it for a symlink mid-export redirects nothing.
#   6  (as root) a TCP peer of phyllod --system (any member of phyllome can
#      read the token) acts as a member for the file checks, not as root.
set -u
. "$(dirname "$0")/tap.sh"
command -v jq >/dev/null || skip_all "jq is not installed"
command -v qemu-img >/dev/null || skip_all "qemu-img is not installed"
command -v zstd >/dev/null || skip_all "zstd is not installed"
tap_new_home
OUT=$(mktemp -d /tmp/phyllome-outside.XXXXXX)
export HOME=$(mktemp -d /tmp/phyllome-userhome.XXXXXX)
trap 'tap_cleanup; rm -rf "$OUT" "$HOME"' EXIT
export PHYLLOME_NO_DAEMON=1
V=$PHYLLOME_HOME/vms
SECRET="host-secret-$$-do-not-leak"
echo "$SECRET" >"$OUT/secret"; chmod 600 "$OUT/secret"
# leaks DIR-OR-FILE: does the secret appear in it (qcow2 clusters are stored plainly)?
leaks() { grep -rqa -- "$SECRET" "$@" 2>/dev/null; }
# hdr FILE ARGS...: a small qcow2 header made by qemu-img create ARGS.
hdr() { local f=$1; shift; qemu-img create -q -f qcow2 "$@" "$f" 64K; }

# ---- 1: a raw disk with a qcow2 header written by its guest ----
"$PHYLLO" create a --profile linux --no-disk --display none --memory 256M --cpus 1 --no-uefi >/dev/null
ok $? "create a (no disk)"
truncate -s 1M "$V/a/data.img"
"$PHYLLO" disk add a --image "$V/a/data.img" --name data >/dev/null
ok $? "a raw image in the VM dir becomes disk 'data'"
is "$(sed -n '/^\[disk data\]/,/^\[/p' "$V/a/vm.conf" | sed -n 's/^format = //p')" raw "its format is raw"
# What the guest writes to sector 0 of its disk: a qcow2 header backed by a host file.
hdr "$OUT/hdr.qcow2" -b "$OUT/secret" -F raw
dd if="$OUT/hdr.qcow2" of="$V/a/data.img" conv=notrunc status=none
ok $? "the 'guest' wrote a qcow2 header naming $OUT/secret into its raw disk"

out=$("$PHYLLO" disk list a --json 2>&1)
is "$(jq -r '.[0].format' <<<"$out")" raw "disk list reads the disk as raw (the definition's format), not as probed"
is "$(jq -r '.[0].backing' <<<"$out")" null "... and shows no backing file"
out=$("$PHYLLO" clone a b --full 2>&1); rc=$?
ok $(! leaks "$V/b" 2>/dev/null; echo $?) "clone --full does not copy the host file into the clone's disk (rc $rc: $out)"
"$PHYLLO" delete b --yes >/dev/null 2>&1
out=$("$PHYLLO" export a "$OUT/a.bundle" --yes 2>&1); rc=$?
is "$rc" 0 "export of a raw disk with a qcow2 header works" || diag "$out"
ok $(! zstd -dcq "$OUT/a.bundle" 2>/dev/null | grep -qa -- "$SECRET"; echo $?) "the bundle does not hold the host file"
out=$("$PHYLLO" export a --format libvirt "$OUT/lv-a" 2>&1); rc=$?
ok $(! leaks "$OUT/lv-a"; echo $?) "nor does the libvirt export (rc $rc)"
out=$("$PHYLLO" disk resize a data 2M 2>&1); rc=$?
is "$rc" 0 "disk resize of that disk works" || diag "$out"
is "$(stat -c %s "$V/a/data.img")" 2097152 "it resized the raw file (qemu-img -f raw), not a qcow2 inside it"
is "$(cat "$OUT/secret")" "$SECRET" "the host file is untouched"

# ---- 2: a qcow2 disk whose header a compromised QEMU rewrote ----
"$PHYLLO" create q --profile linux --disk 1M --display none --memory 256M --cpus 1 --no-uefi >/dev/null
ok $? "create q (a qcow2 disk)"
qd=$(ls "$V"/q/disk-*.qcow2 | head -1)
cp "$qd" "$OUT/q-orig.qcow2"
qemu-img rebase -q -u -f qcow2 -b "$OUT/secret" -F raw "$qd"
ok $? "its header now names $OUT/secret as the backing file (what QEMU's uid, its owner, can do)"
out=$("$PHYLLO" export q "$OUT/q.bundle" --yes 2>&1); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "export refuses the disk"
like "$out" "backing file '$OUT/secret'.*outside" "... naming the backing file: $out"
ok $(! { [ -e "$OUT/q.bundle" ] && zstd -dcq "$OUT/q.bundle" 2>/dev/null | grep -qa -- "$SECRET"; }; echo $?) \
  "no bundle holds the host file"
out=$("$PHYLLO" clone q q2 --full 2>&1); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "clone --full refuses it"
like "$out" "backing file '$OUT/secret'" "... naming it: $out"
ok $(! leaks "$V/q2" "$V"/.*; echo $?) "no clone or temporary file holds the host file"
out=$("$PHYLLO" export q --format libvirt "$OUT/lv-q" 2>&1); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "export to libvirt refuses it"
ok $(! leaks "$OUT/lv-q"; echo $?) "... and wrote no copy of the host file"
# A backing file inside the VM dir, but a format that names other files (a VMDK descriptor).
cp "$OUT/q-orig.qcow2" "$qd"
printf '# Disk DescriptorFile\nRW 128 FLAT "%s" 0\n' "$OUT/secret" >"$V/q/desc.vmdk"
qemu-img rebase -q -u -f qcow2 -b "$V/q/desc.vmdk" -F vmdk "$qd"
out=$("$PHYLLO" export q "$OUT/q3.bundle" --yes 2>&1); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "export refuses a backing file of format vmdk (a descriptor may name any file)"
like "$out" "backing format 'vmdk'" "... naming the format: $out"
rm -f "$V/q/desc.vmdk"
# An external data file instead.
cp "$OUT/q-orig.qcow2" "$qd"
hdr "$OUT/df.qcow2" -o "data_file=$OUT/df-scratch.raw,data_file_raw=on"
qemu-img amend -q -f qcow2 -o "data_file=$OUT/secret" "$OUT/df.qcow2"
ok $? "a qcow2 whose external data file is $OUT/secret"
cp "$OUT/df.qcow2" "$qd"
out=$("$PHYLLO" export q "$OUT/q2.bundle" --yes 2>&1); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "export refuses a disk with an external data file"
like "$out" "data file '$OUT/secret'" "... naming it: $out"
out=$("$PHYLLO" clone q q3 --full 2>&1); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "so does clone --full"
ok $(! leaks "$V/q3"; echo $?) "... and no clone holds the host file"
# The legitimate chain still works: a linked clone, then its export and full clone.
cp "$OUT/q-orig.qcow2" "$qd"
[ "$(id -u)" = 0 ] && chown nobody:nogroup "$qd"        # what a start does: the image is the VM's uid's
"$PHYLLO" clone q ql >/dev/null 2>&1
ok $? "a linked clone of q (its disk backed by q's frozen base)"
if [ "$(id -u)" = 0 ]; then
  # q's uid (nobody here) must not be able to change what the clone reads.
  qb=$(ls "$V"/q/base/*.qcow2 | head -1)
  is "$(stat -c '%U %a' "$qb")" "root 444" "the frozen base is root's and read-only, not q's uid's"
  chmod o+x "$PHYLLOME_HOME" "$V" "$V/q"      # q's uid passes through q's directory (its group, in a start)
  setpriv --reuid=nobody --regid=nogroup --clear-groups chmod u+w "$qb" 2>/dev/null
  ok $([ "$(stat -c %a "$qb")" = 444 ]; echo $?) "q's uid cannot make it writable"
fi
out=$("$PHYLLO" export ql "$OUT/ql.bundle" --yes 2>&1)
ok $? "the linked clone exports (its chain is flattened)" || diag "$out"
out=$("$PHYLLO" clone ql ql2 --full 2>&1)
ok $? "and clones --full" || diag "$out"

# ---- 3: an appliance or a domain whose qcow2 keeps its data in a host file ----
mkdir -p "$OUT/ova"
cp "$OUT/df.qcow2" "$OUT/ova/d.qcow2"
sed -e "s/@CAPACITY@/65536/" -e 's|tiny-disk001.vmdk|d.qcow2|' -e 's|ovf:format="[^"]*"|ovf:format="qcow2"|' \
  "$SRCDIR/fixtures/interop/virtualbox.ovf" >"$OUT/ova/t.ovf"
( cd "$OUT/ova" && printf 'SHA256 (t.ovf) = %s\nSHA256 (d.qcow2) = %s\n' "$(sha256sum t.ovf | cut -d' ' -f1)" \
    "$(sha256sum d.qcow2 | cut -d' ' -f1)" >t.mf && tar --format=ustar -cf "$OUT/df.ova" t.ovf t.mf d.qcow2 )
out=$("$PHYLLO" import-ova "$OUT/df.ova" --name ovadf 2>&1); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "an OVA whose qcow2 names an external data file is refused"
like "$out" "data file '$OUT/secret'" "... naming the file: $out"
ok $(! leaks "$V"; echo $?) "no VM holds the host file"
cp "$OUT/df.qcow2" "$HOME/df.qcow2"
cat >"$HOME/lvdf.xml" <<EOF
<domain type='kvm'>
  <name>lvdf</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$HOME/df.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
EOF
out=$("$PHYLLO" import-libvirt "$HOME/lvdf.xml" 2>&1); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "a libvirt domain whose qcow2 names an external data file is refused"
like "$out" "data file '$OUT/secret'" "... naming it: $out"
ok $(! leaks "$V"; echo $?) "no VM holds the host file"

# ---- 4: an OVA with a sparse member ----
mkdir -p "$OUT/sp"
truncate -s 2G "$OUT/sp/big.vmdk"
cp "$OUT/ova/t.ovf" "$OUT/sp/t.ovf"
( cd "$OUT/sp" && printf 'SHA256 (t.ovf) = %s\n' "$(sha256sum t.ovf | cut -d' ' -f1)" >t.mf &&
  tar --format=gnu --sparse -cf "$OUT/sparse.ova" t.ovf t.mf big.vmdk )
ok $([ "$(stat -c %s "$OUT/sparse.ova")" -lt 100000 ]; echo $?) "an OVA of $(stat -c %s "$OUT/sparse.ova") bytes declaring a 2 GiB member"
t0=$(date +%s%N)
out=$("$PHYLLO" import-ova "$OUT/sparse.ova" --name sparse 2>&1); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "is refused"
like "$out" "big.vmdk.*sparse" "... naming the sparse member: $out"
diag "refused after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
ok $([ -z "$(ls -A "$V" 2>/dev/null | grep -v '^a$\|^q$\|^ql$\|^ql2$')" ]; echo $?) "and leaves nothing behind in $V"

# ---- 5: export to libvirt into a directory its client can change ----
# phyllod writes as root for a client (POST /v1/vms/{name}/export-libvirt)
# into a directory the client may write.  An existing directory of another
# uid is refused (the client could plant "qemu -> /etc/..." in it); a new
# one is made and held open, so a rename of it, or a symlink put in its
# place while the disks are copied, leads the writes nowhere else.
if [ "$(id -u)" = 0 ]; then
  "$PHYLLO" create u --profile linux --disk 8M --display none --memory 256M --cpus 1 >/dev/null
  ok $? "create u (UEFI, an 8 MiB disk)"
  ud=$(ls "$V"/u/disk-*.qcow2 | head -1)
  head -c 8M /dev/urandom >"$OUT/u.raw"      # data to copy: the export takes a while
  qemu-img convert -q -f raw -O qcow2 "$OUT/u.raw" "$ud"
  vars=$(ls /usr/share/OVMF/OVMF_VARS_4M.fd /usr/share/OVMF/OVMF_VARS.fd 2>/dev/null | head -1)
  cp "$vars" "$V/u/OVMF_VARS.fd"
  chmod 755 "$OUT"
  mkdir -p "$OUT/client" "$OUT/evil"; chown nobody "$OUT/client" "$OUT/evil"
  mkdir "$OUT/client/given"; chown nobody "$OUT/client/given"
  out=$("$PHYLLO" export u --format libvirt "$OUT/client/given" 2>&1); rc=$?
  ok $([ $rc -ne 0 ]; echo $?) "an existing export directory of another uid is refused"
  like "$out" "belongs to uid $(id -u nobody)" "... saying whose it is: $out"
  ok $([ -z "$(ls -A "$OUT/client/given")" ]; echo $?) "... and nothing was written into it"
  # The client (as nobody) owns the directories above the new one: as soon
  # as root made images/ in it, it moves them aside and puts its own in
  # their place, whose qemu/ and images/ are symlinks to where it likes.
  mkdir -p "$OUT/client/b"; chown nobody "$OUT/client/b"
  D=$OUT/client/b/exp
  mkdir -p "$OUT/client/b.new/exp"
  for l in qemu images swtpm; do ln -s "$OUT/evil" "$OUT/client/b.new/exp/$l"; done
  chown -R -h nobody "$OUT/client/b.new"
  setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 -c '
import os, sys, time
c = sys.argv[1]
end = time.time() + 60
while not os.path.isdir(c + "/b/exp/images") and time.time() < end:
    pass
os.rename(c + "/b", c + "/b.old")
os.rename(c + "/b.new", c + "/b")' "$OUT/client" &
  swapper=$!
  tap_own_pid "$swapper"
  out=$("$PHYLLO" export u --format libvirt "$D" 2>&1); rc=$?
  wait "$swapper"
  ok $([ -L "$D/qemu" ] && [ -d "$OUT/client/b.old/exp/images" ]; echo $?) \
    "the client moved the directory away and planted symlinks in its place during the export"
  is "$(find "$OUT/evil" -mindepth 1 | head -3)" "" "root wrote nothing through them (rc $rc)"
  ok $([ -e "$OUT/client/b.old/exp/u.xml" ] && [ -e "$OUT/client/b.old/exp/qemu/nvram/u_VARS.fd" ]; echo $?) \
    "the export went into the directory it made, where it is now"
fi

# ---- 6: phyllod --system --listen-tcp: a TCP peer is a member, not root ----
# The token file is 0640 root:phyllome: every member can read it.  A TCP
# request acted as phyllod's own user, root, for the verbs' "may the caller
# read/write this" checks: a member could import a root-only file, have
# root read any password file, or export into any directory.
if [ "$(id -u)" = 0 ] && command -v curl >/dev/null; then
  . "$(dirname "$0")/phyllod-lib.sh"
  R=$OUT/sysroot; mkdir -p "$R/etc/phyllome" "$OUT/syshome" "$OUT/rootonly"
  for d in proc sys dev; do ln -s "/$d" "$R/$d"; done
  : >"$R/etc/phyllome/host.conf"
  chmod 700 "$OUT/rootonly"
  printf '%s\n' "<domain type='kvm'><name>ro</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>" \
    "<os><type arch='x86_64' machine='q35'>hvm</type></os></domain>" >"$OUT/rootonly/ro.xml"
  chmod 600 "$OUT/rootonly/ro.xml"
  port=$((20000 + $$ % 20000))
  PHYLLOME_HOME=$OUT/syshome pd_start --system --root "$R" --socket "$OUT/sys.sock" \
    --listen-tcp "127.0.0.1:$port" --token-file "$OUT/sys.token"
  ok $? "a system-mode phyllod listens on 127.0.0.1:$port too" || diag "$PD_LINE"
  tcp_post() { curl -s --max-time 60 -o "$OUT/tcp.out" -w '%{http_code}' -H "Authorization: Bearer $(cat "$OUT/sys.token")" \
               -H 'Content-Type: application/json' --data-binary "$2" "http://127.0.0.1:$port$1"; }
  is "$(tcp_post /v1/import/libvirt "{\"file\": \"$OUT/rootonly/ro.xml\", \"name\": \"tcpro\"}")" 403 \
    "a TCP peer cannot import a file only root may read"
  like "$(cat "$OUT/tcp.out")" "uid 65534 may not read" "... it is a member (nobody, group phyllome), not root: $(cat "$OUT/tcp.out")"
  ok $([ ! -e "$OUT/syshome/vms/tcpro" ]; echo $?) "no VM was made from it"
  r=$(curl -s --max-time 60 -o /dev/null -w '%{http_code}' --unix-socket "$OUT/sys.sock" -H 'Content-Type: application/json' \
      --data-binary "{\"file\": \"$OUT/rootonly/ro.xml\", \"name\": \"rootro\"}" http://localhost/v1/import/libvirt)
  is "$r" 201 "root itself, on the unix socket, still may"
  kill "$PD_PID" 2>/dev/null; wait "$PD_PID" 2>/dev/null
fi

tap_done

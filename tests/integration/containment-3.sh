#!/usr/bin/env bash
# Issue 12, session 6 (docs/security.md): linked clones and their bases.
#   1  As root with one uid per VM, a linked clone starts: its base lies in
#      the source's directory (closed to the clone's uid, outside its
#      Landlock ruleset), so the monitor opens the chain as root, checks
#      every link and hands QEMU fds (-add-fd, backing=).  QEMU itself
#      cannot open the base by path.  Before, the start was refused
#      ("Could not open backing file ... Permission denied").  Snapshots
#      (live and offline) and `disk resize` of the clone keep working.
#   2  A compromised QEMU (its uid owns its overlay) rewrites the header to
#      name another VM's frozen base, a host file or a FIFO, or has the base
#      swapped for a symlink: start, export and `clone --full` refuse,
#      naming the file.  Before, any VM's base passed the chain check and
#      export copied the other VM's data.  And at run time, QMP
#      blockdev-add of another VM's base by path is refused by Landlock.
#   3  A qcow2 naming an external data file that is a FIFO: `disk list`,
#      export, `clone --full`, snapshots, resize and start refuse it at once,
#      naming it (before, `disk list` showed it).  An image that is itself a
#      FIFO (`disk add --image`, a backing file) is refused before qemu-img
#      runs; before, `qemu-img info` blocked on it forever.
#   4  `disk add --image` of a VMDK descriptor (in a directory the rules
#      allow) whose extent is a root-only host file: refused; before, root's
#      `qemu-img convert` copied that file into the VM's new disk.
#   5  rename reads backing files from qcow2 headers through an fd, for the
#      images its definition says are qcow2 only: a raw disk whose guest
#      wrote a VMDK descriptor naming a FIFO, or a qcow2 header naming a
#      file in the VM's directory, is left alone.  Before, rename probed
#      every image with root's `qemu-img info`: it hung on the FIFO, and it
#      rewrote the raw disk's first bytes with `qemu-img rebase`.
set -u
. "$(dirname "$0")/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "QEMU runs as a uid of the VM's own only when phyllo runs as root"
command -v setpriv >/dev/null || skip_all "setpriv is not installed"
command -v qemu-io >/dev/null || skip_all "qemu-io is not installed"
QQ="$BUILDDIR/tests/qmp-query"
[ -x "$QQ" ] || skip_all "tests/qmp-query is not built"
. "$(dirname "$0")/lifecycle-lib.sh"
lc_new_home
export PHYLLOME_NO_DAEMON=1
V=$PHYLLOME_HOME/vms
OUT=$(mktemp -d /tmp/phyllome-outside.XXXXXX)
trap 'lc_cleanup; rm -rf "$OUT"' EXIT
status() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
qmp() { "$QQ" "$PHYLLOME_HOME/run/$1/qmp.sock" "${@:2}" 2>&1; }
add_file() { # VM NODE FILE: blockdev-add of a host file, read-only
  qmp "$1" blockdev-add "{\"driver\":\"file\",\"node-name\":\"$2\",\"filename\":\"$3\",\"read-only\":true}"
}
as_uid() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }
# t SECONDS CMD...: the command's output and status, or 124 when it hangs.
t() { timeout "$1" "${@:2}" 2>&1; }

# ---- 1: a linked clone starts as root, one uid per VM ----
a=a$$ b=b$$ c=c$$
lc_create "$a" --disk 16M
# HDA sound whatever the QEMU: QEMU 10.0 cannot save a virtio sound device's
# state, which would block the live snapshot below (as in store.sh).
printf '[sound]\ntype = hda\n' >>"$V/$a/vm.conf"
ad=$V/$a/disk-system.qcow2
qemu-io -f qcow2 -c "write -P 0x5a 0 64k" "$ad" >/dev/null
ok $? "a pattern (0x5a) written into $a's disk"
"$PHYLLO" clone "$a" "$b" >/dev/null; ok $? "clone $a $b (linked)"
lc_vms+=("$b")
base=$(ls "$V/$a"/base/*.qcow2 | head -n1)
is "$(stat -c '%U %a' "$base")" "root 444" "$a's frozen base is root's and read-only"
is "$(cat "$V/$a/base/.$(basename "$base").clone")" "$(sed -n 's/^uuid = //p' "$V/$b/vm.conf")" \
  "a record beside it names $b's uuid as the VM that may use it"
out=$("$PHYLLO" start "$b" 2>&1); ok $? "the linked clone $b starts as root" || diag "$out"
qb=$(lc_field "$b" qemu_pid)
ub=$(awk -v n="$b" '$2 == n { print $1 }' "$PHYLLOME_HOME/vm-uids")   # given out before QEMU starts
ok $([ "$ub" -ge 6000000 ] && [ "$ub" -le 6065535 ] && [ "$(status "$qb" Uid)" = "$ub" ]; echo $?) \
  "its QEMU runs as a uid of its own ($ub)"
cmd=$(tr '\0' '\n' <"/proc/$qb/cmdline")
ok $(grep -qx -- -add-fd <<<"$cmd"; echo $?) "QEMU gets the base as an fd (-add-fd)"
like "$cmd" "filename=/dev/fdset/1,read-only=on" "... a read-only node on /dev/fdset/1"
like "$cmd" "backing=disk-system-b1" "... named as the disk's backing node"
ok $(! grep -qF "$V/$a" <<<"$cmd"; echo $?) "$a's directory appears nowhere on its command line"
qmp "$b" human-monitor-command '{"command-line":"qemu-io disk-system \"read -v 0 16\""}' >/dev/null
# (qemu-io prints to QEMU's stdout: the serial console's pipe, so the console log)
lc_wait_log "$b" "00000000:  5a 5a 5a 5a" 30
ok $? "the clone reads $a's data (0x5a) through the fd"
lc_wait_log "$b" 'PHYLLOME-GUEST-READY' 120; ok $? "the clone's guest boots"
like "$(add_file "$b" x "$base")" "Could not open '$base': Permission denied" \
  "$b's QEMU cannot open its base by path"
# Only Landlock in the way: the uid may reach the base by its modes once $a's dir lets it through.
mode=$(stat -c %a "$V/$a"); chmod o+x "$V/$a"
is "$(as_uid "$ub" head -c 3 "$base" 2>&1)" "QFI" "(with $a's dir opened, uid $ub may read the base by its modes)"
like "$(add_file "$b" y "$base")" "Could not open '$base': Permission denied" \
  "yet its QEMU cannot: the Landlock ruleset refuses it"
chmod "$mode" "$V/$a"

# 2 at run time: another VM's QEMU and this base.
lc_create "$c" --disk 16M
out=$("$PHYLLO" start "$c" 2>&1); ok $? "start an unrelated VM $c" || diag "$out"
chmod o+x "$V/$a"
like "$(add_file "$c" z "$base")" "Could not open '$base': Permission denied" \
  "$c's QEMU cannot open $a's frozen base by path (Landlock), even with $a's dir open"
chmod "$mode" "$V/$a"
"$PHYLLO" stop "$c" --force >/dev/null 2>&1

# Snapshots and resize of the linked clone.
out=$("$PHYLLO" snapshot create "$b" live 2>&1); ok $? "a live snapshot of the running clone" || diag "$out"
"$PHYLLO" stop "$b" --force >/dev/null 2>&1
out=$("$PHYLLO" snapshot create "$b" off 2>&1); ok $? "an offline snapshot of the clone" || diag "$out"
out=$("$PHYLLO" snapshot revert "$b" off 2>&1); ok $? "an offline revert" || diag "$out"
"$PHYLLO" snapshot delete "$b" off >/dev/null 2>&1; ok $? "an offline delete"
out=$("$PHYLLO" disk resize "$b" system 32M 2>&1); ok $? "disk resize of the clone" || diag "$out"
is "$("$PHYLLO" disk list "$b" --json | jq -r '.[0]."virtual-size"')" 33554432 "... to 32M"
out=$("$PHYLLO" snapshot revert "$b" live 2>&1); ok $? "revert to the live snapshot (starts it)" || diag "$out"
is "$(lc_state "$b")" running "the clone runs again from its memory snapshot"
"$PHYLLO" stop "$b" --force >/dev/null 2>&1
"$PHYLLO" snapshot delete "$b" live >/dev/null 2>&1

# ---- 2: a rewritten header ----
bd=$V/$b/disk-system.qcow2
# Another VM (v) with a frozen base of its own and a secret in it.
v=v$$ SECRET="vm-secret-$$-do-not-leak"
lc_create "$v" --disk 16M
printf '%s' "$SECRET" >"$OUT/secret.raw"; truncate -s 64K "$OUT/secret.raw"
qemu-io -f qcow2 -c "write -s $OUT/secret.raw 0 64k" "$V/$v/disk-system.qcow2" >/dev/null
"$PHYLLO" clone "$v" "${v}c" >/dev/null; ok $? "$v has a frozen base too (clone ${v}c)"
lc_vms+=("${v}c")
vbase=$(ls "$V/$v"/base/*.qcow2 | head -n1)
rebase_as_b() { as_uid "$ub" qemu-img rebase -q -u -f qcow2 -b "$1" -F "$2" "$bd"; }
rebase_as_b "$vbase" qcow2; ok $? "as $b's uid (a compromised QEMU), its overlay now names $v's base"
out=$("$PHYLLO" start "$b" 2>&1); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "start refuses it"
like "$out" "backing file '$vbase'.*another VM's frozen base that no record names" "... naming the base and why"
is "$(lc_state "$b")" failed "nothing runs"
out=$("$PHYLLO" export "$b" "$OUT/b.phyllome" 2>&1); rc=$?
ok $([ $rc -ne 0 ] && ! grep -qa "$SECRET" "$OUT/b.phyllome" 2>/dev/null; echo $?) \
  "export refuses it: $v's data is not copied (rc $rc)"
like "$out" "$vbase" "... naming the base"
out=$("$PHYLLO" clone "$b" "${b}f" --full 2>&1); rc=$?
ok $([ $rc -ne 0 ] && ! grep -rqa "$SECRET" "$V/${b}f" 2>/dev/null; echo $?) "so does clone --full (rc $rc)"
like "$out" "$vbase" "... naming the base"
rebase_as_b /etc/shadow raw
out=$("$PHYLLO" start "$b" 2>&1); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "a header naming /etc/shadow: start refuses it"
like "$out" "backing file '/etc/shadow'.*outside the VM's files" "... naming it"
mkfifo "$V/$b/fifo"
rebase_as_b "$V/$b/fifo" raw
out=$(t 30 "$PHYLLO" start "$b"); rc=$?
ok $([ $rc -ne 0 ] && [ $rc -ne 124 ]; echo $?) "a backing file that is a FIFO: start refuses it at once (rc $rc)"
like "$out" "fifo'.*not a regular file" "... naming it"
out=$(t 30 "$PHYLLO" export "$b" "$OUT/b2.phyllome"); rc=$?
ok $([ $rc -ne 0 ] && [ $rc -ne 124 ]; echo $?) "... and so does export (rc $rc)"
rm -f "$V/$b/fifo"
# Back to the real base; then the base swapped for a symlink, or its record gone.
qemu-img rebase -q -u -f qcow2 -b "$base" -F qcow2 "$bd"
mv "$base" "$base.real"; ln -s "$base.real" "$base"
out=$("$PHYLLO" start "$b" 2>&1); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "a base swapped for a symlink: start refuses it"
like "$out" "backing file '$base'.*symlink" "... naming it"
rm "$base"; mv "$base.real" "$base"
rec=$V/$a/base/.$(basename "$base").clone
mv "$rec" "$OUT/rec"
out=$("$PHYLLO" start "$b" 2>&1); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "a base whose record is gone: start refuses it"
like "$out" "no record names" "... saying why"
mv "$OUT/rec" "$rec"
out=$("$PHYLLO" start "$b" 2>&1); ok $? "with all restored, the clone starts again" || diag "$out"
"$PHYLLO" stop "$b" --force >/dev/null 2>&1
# A clone of the clone: its chain crosses two bases (the second trusted as frozen).
out=$("$PHYLLO" clone "$b" "${b}2" 2>&1); ok $? "a linked clone of the clone" || diag "$out"
lc_vms+=("${b}2")
out=$("$PHYLLO" start "${b}2" 2>&1); ok $? "... starts (two bases, two fds)" || diag "$out"
like "$(tr '\0' '\n' <"/proc/$(lc_field "${b}2" qemu_pid)/cmdline")" "backing=disk-system-b2" \
  "... its first base backed by the second node"
"$PHYLLO" stop "${b}2" --force >/dev/null 2>&1

# ---- 3: a FIFO as an external data file ----
f=f$$
lc_create "$f" --disk 16M
fd=$V/$f/disk-system.qcow2
truncate -s 1M "$OUT/data.raw"
qemu-img create -q -f qcow2 -o "data_file=$OUT/data.raw" "$OUT/df.qcow2" 1M
rm "$OUT/data.raw"; mkfifo "$OUT/data.raw"
cp "$OUT/df.qcow2" "$fd"
ok $? "$f's disk now names a FIFO as its external data file (as its uid could write)"
for cmd in "disk list $f" "export $f $OUT/f.phyllome" "clone $f ${f}x --full" "snapshot create $f s" \
           "disk resize $f system 2M" "start $f"; do
  # shellcheck disable=SC2086
  out=$(t 30 "$PHYLLO" $cmd); rc=$?
  ok $([ $rc -ne 0 ] && [ $rc -ne 124 ]; echo $?) "'phyllo $cmd' refuses it at once (rc $rc; 124 is a hang)"
  like "$out" "external data file" "... saying why"
done
[ -e "$V/${f}x" ] && lc_vms+=("${f}x")
# An image to attach that is itself a FIFO (in a directory the rules allow).
mkfifo "$PHYLLOME_HOME/image.fifo"
out=$(t 30 "$PHYLLO" disk add "$f" --image "$PHYLLOME_HOME/image.fifo"); rc=$?
ok $([ $rc -ne 0 ] && [ $rc -ne 124 ]; echo $?) "'disk add --image' of a FIFO refuses it at once (rc $rc; 124 is a hang)"
like "$out" "image.fifo.*not a regular file" "... naming it"

# ---- a path checked, then used by name: root converts only what names no other file ----
# A VMDK descriptor in a directory the rules allow, whose extent is a root-only host file:
# `disk add --image` converted it as root into the VM's new disk before.
printf '%s' "$SECRET" >"$OUT/root-only"; truncate -s 64K "$OUT/root-only"; chmod 600 "$OUT/root-only"
printf '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 128 FLAT "%s" 0\n' \
  "$OUT/root-only" >"$PHYLLOME_HOME/desc.vmdk"
out=$(t 30 "$PHYLLO" disk add "$f" --image "$PHYLLOME_HOME/desc.vmdk" --name vm); rc=$?
ok $([ $rc -ne 0 ] && ! grep -rqa "$SECRET" "$V/$f" 2>/dev/null; echo $?) \
  "'disk add --image' of a VMDK whose extent is a host file is refused; nothing of that file is copied (rc $rc)"
like "$out" "names other files" "... saying why"

# ---- 5: rename does not probe what a guest wrote ----
r=r$$
lc_create "$r" --disk 16M
truncate -s 1M "$V/$r/data.raw"
out=$("$PHYLLO" disk add "$r" --image "$V/$r/data.raw" --name data 2>&1); ok $? "a raw disk for $r" || diag "$out"
# What its guest may write into its raw disk: a VMDK descriptor whose extent is a FIFO.
mkfifo "$OUT/extent.fifo"
printf '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 128 FLAT "%s" 0\n' \
  "$OUT/extent.fifo" | dd of="$V/$r/data.raw" conv=notrunc status=none
out=$(t 30 "$PHYLLO" rename "$r" "${r}n"); rc=$?
ok $([ $rc -eq 0 ]; echo $?) "rename of a VM whose raw disk holds a VMDK descriptor naming a FIFO ends (rc $rc; 124 is a hang)" \
  || diag "$out"
[ $rc -eq 0 ] && r=${r}n
lc_vms+=("$r")
# A qcow2 header naming a file in the VM's directory, written into the raw disk.
qemu-img create -q -f qcow2 -b "$V/$r/disk-system.qcow2" -F qcow2 "$OUT/hdr.qcow2" 16M
dd if="$OUT/hdr.qcow2" of="$V/$r/data.raw" conv=notrunc status=none
sum=$(md5sum <"$V/$r/data.raw")
out=$(t 30 "$PHYLLO" rename "$r" "${r}m"); rc=$?
ok $rc "rename of a VM whose raw disk holds a qcow2 header naming its directory" || diag "$out"
[ $rc -eq 0 ] && r=${r}m
lc_vms+=("$r")
is "$(md5sum <"$V/$r/data.raw")" "$sum" "... leaves the raw disk's bytes as its guest wrote them"

tap_done

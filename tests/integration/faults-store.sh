#!/bin/bash
# Crash safety of the storage commands (issue 8): kill -9 of `phyllo` at
# spread timings during snapshot create, clone, export and import, and a full
# disk (a small tmpfs home) during snapshot and export.  Afterwards every
# definition reads back, every disk passes `qemu-img check`, no lock is stale,
# `phyllo list` shows no half-made VM, and the next command tells the truth.
# No guest boots here: the VMs stay stopped.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
command -v qemu-io >/dev/null || skip_all "qemu-io (qemu-utils) is not installed"
lc_new_home
V=$PHYLLOME_HOME/vms

# Every VM of `phyllo list` reads back and its disks (with their backing
# chains) pass qemu-img check; prints the number of broken ones.
home_sound() {
  local bad=0 vm p
  for vm in $("$PHYLLO" list --json 2>/dev/null | jq -r '.[].name'); do
    "$PHYLLO" show "$vm" >/dev/null 2>&1 || { diag "show fails: $vm"; bad=$((bad + 1)); continue; }
    for p in $("$PHYLLO" disk list "$vm" --json 2>/dev/null | jq -r '.[].path'); do
      qemu-img check -q -U "$p" >/dev/null 2>&1 || { diag "qemu-img check fails: $vm $p"; bad=$((bad + 1)); }
    done
  done
  # A definition on disk that list does not show is lost.
  for p in "$V"/*/vm.conf; do
    [ -e "$p" ] || continue
    vm=$(basename "$(dirname "$p")")
    "$PHYLLO" show "$vm" >/dev/null 2>&1 || { diag "unreadable: $p"; bad=$((bad + 1)); }
  done
  echo "$bad"
}
# Names in `phyllo list` that are not plain VM names (temp or partial dirs).
odd_listed() { "$PHYLLO" list --json | jq -r '.[].name' | grep -cE '^\.|#|partial|import\.' ; }
# Runs phyllo with the args, kills it with SIGKILL after $1 seconds, and waits
# for the helpers it had started (qemu-img, zstd) so that no write of theirs
# lands after the checks.
kill_after() {
  local delay=$1; shift
  "$PHYLLO" "$@" >/dev/null 2>&1 &
  local p=$! kids k
  sleep "$delay"
  kids=$(cat /proc/$p/task/*/children 2>/dev/null)
  kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null
  for k in $kids; do timeout 20 tail --pid="$k" -f /dev/null; done
}
# A disk's data as seen by the guest (its backing chain included).
content() { qemu-img convert -U -O raw "$1" "$PHYLLOME_HOME/raw.tmp" && sha256sum <"$PHYLLOME_HOME/raw.tmp"; rm -f "$PHYLLOME_HOME/raw.tmp"; }
# No stale lock: a VM that never ran has no lock file at all.
lock_free() { [ ! -e "$PHYLLOME_HOME/run/$1/lock" ] || lc_lock_free "$1"; }
delays="0 0.005 0.01 0.02 0.04 0.07 0.1 0.15"

lc_create snap --disk 64M
lc_create src --disk 64M
qemu-io -c 'write -P 0xab 0 4M' "$V/snap/disk-system.qcow2" >/dev/null
qemu-io -c 'write -P 0xcd 0 4M' "$V/src/disk-system.qcow2" >/dev/null
src_sum=$(content "$V/src/disk-system.qcow2")

# --- snapshot create ---
i=0
for d in $delays; do
  i=$((i + 1)); kill_after "$d" snapshot create snap "s$i"
done
is "$(home_sound)" 0 "after kill -9 during 8 snapshot creates every VM reads back and its disk checks clean"
lock_free snap; ok $? "no stale lock on 'snap'"
listed=$("$PHYLLO" snapshot list snap --json | jq -r '.[].name' | sort | tr '\n' ' ')
inimg=$(qemu-img snapshot -U -l "$V/snap/disk-system.qcow2" | awk 'NR > 2 { print $2 }' | sort | tr '\n' ' ')
diag "snapshots listed: [$listed], in the image: [$inimg]"
# Every listed snapshot is whole (in the image too) and can be reverted.
whole=0
for s in $listed; do grep -qw "$s" <<<"$inimg" || whole=1; done
is "$whole" 0 "every snapshot listed is also in the disk image"
# The next command tells the truth: each name either is a snapshot or can be made now.
retry=0
for j in $(seq 1 $i); do
  if grep -qw "s$j" <<<"$listed"; then
    "$PHYLLO" snapshot revert snap "s$j" >/dev/null 2>&1 || { diag "revert s$j fails"; retry=1; }
  else
    out=$("$PHYLLO" snapshot create snap "s$j" 2>&1) || { diag "create s$j again: $out"; retry=1; }
  fi
done
is "$retry" 0 "a killed snapshot is either listed and revertible or can be created again under its name"
is "$("$PHYLLO" snapshot list snap --json | jq length)" "$i" "then all $i snapshots are listed"
# The state a create killed after its disk snapshot leaves, made on purpose:
# the name is usable again (the orphan internal snapshot is dropped).
mkdir -p "$V/snap/snapshots/.#new.orphan.AbC123"
qemu-img snapshot -c orphan "$V/snap/disk-system.qcow2"
out=$("$PHYLLO" snapshot create snap orphan 2>&1); ok $? "a create interrupted after its disk snapshot does not block the name ($out)"
ok $([ ! -e "$V/snap/snapshots/.#new.orphan.AbC123" ]; echo $?) "and its temp dir is gone"
is "$(qemu-img snapshot -U -l "$V/snap/disk-system.qcow2" | awk '$2 == "orphan"' | wc -l)" 1 "the disk holds one snapshot 'orphan'"
"$PHYLLO" snapshot delete snap orphan >/dev/null
is "$(home_sound)" 0 "and everything still checks clean"

# --- clone (the first one freezes the source's disk into base/) ---
# Without faults first: a second linked clone freezes the first one's overlay,
# whose relative backing ("base/...") must still resolve from inside base/.
lc_create twice --disk 64M
qemu-io -c 'write -P 0x77 0 1M' "$V/twice/disk-system.qcow2" >/dev/null
t_sum=$(content "$V/twice/disk-system.qcow2")
"$PHYLLO" clone twice twice-a >/dev/null && "$PHYLLO" clone twice twice-b >/dev/null
ok $? "two linked clones of the same source in a row"
is "$(content "$("$PHYLLO" disk list twice-b --json | jq -r '.[0].path')")" \
   "$t_sum" "the second clone holds the source's data"
is "$(content "$("$PHYLLO" disk list twice --json | jq -r '.[0].path')")" "$t_sum" "and so does the source"
for v in twice-a twice-b twice; do "$PHYLLO" delete "$v" --force --yes >/dev/null 2>&1; done
i=0
for d in $delays; do
  i=$((i + 1)); kill_after "$d" clone src "c$i"
done
is "$(home_sound)" 0 "after kill -9 during 8 clones every VM reads back and its disks check clean"
is "$(odd_listed)" 0 "no temp or partial dir is listed as a VM"
lock_free src; ok $? "no stale lock on 'src'"
is "$(content "$("$PHYLLO" disk list src --json | jq -r '.[0].path')")" \
   "$src_sum" "the source's disk content is unchanged"
retry=0
for j in $(seq 1 $i); do
  if "$PHYLLO" show "c$j" >/dev/null 2>&1; then
    "$PHYLLO" delete "c$j" --yes >/dev/null 2>&1 || { diag "delete c$j fails"; retry=1; }
  fi
  out=$("$PHYLLO" clone src "c$j" 2>&1) || { diag "clone c$j again: $out"; retry=1; }
done
is "$retry" 0 "each killed clone is whole (and deletes) or absent, and can be cloned again"
is "$(content "$("$PHYLLO" disk list c1 --json | jq -r '.[0].path')")" \
   "$src_sum" "a clone made after the faults holds the source's data"
for j in $(seq 1 $i); do "$PHYLLO" delete "c$j" --yes >/dev/null 2>&1; done

# --- export ---
"$PHYLLO" export src "$PHYLLOME_HOME/good.phyb" >/dev/null; ok $? "a whole export for the import faults"
i=0; bad=0
for d in $delays; do
  i=$((i + 1)); f=$PHYLLOME_HOME/e$i.phyb
  kill_after "$d" export src "$f"
  # What is left at the destination is refused or is a whole bundle.
  if [ -e "$f" ]; then
    out=$("$PHYLLO" import "$f" --name "e$i" 2>&1)
    if [ $? -eq 0 ]; then
      "$PHYLLO" show "e$i" >/dev/null 2>&1 || { diag "e$i imported but broken"; bad=1; }
      "$PHYLLO" delete "e$i" --yes >/dev/null 2>&1
    else
      [ -e "$V/e$i" ] && { diag "a refused import left $V/e$i"; bad=1; }
    fi
  fi
done
is "$bad" 0 "a killed export leaves no file or one that imports whole or is refused cleanly"
is "$(home_sound)" 0 "after kill -9 during 8 exports the source and everything else check clean"
lock_free src; ok $? "no stale lock on 'src'"

# --- import ---
i=0
for d in $delays; do
  i=$((i + 1)); kill_after "$d" import "$PHYLLOME_HOME/good.phyb" --name "i$i"
done
is "$(home_sound)" 0 "after kill -9 during 8 imports every listed VM reads back and its disks check clean"
is "$(odd_listed)" 0 "no temp or half-imported dir is listed as a VM"
diag "left in vms/ after the killed imports: $(ls -A "$V" | tr '\n' ' ')"
retry=0
for j in $(seq 1 $i); do
  if "$PHYLLO" show "i$j" >/dev/null 2>&1; then
    "$PHYLLO" delete "i$j" --yes >/dev/null 2>&1 || { diag "delete i$j fails"; retry=1; }
  elif [ -e "$V/i$j" ]; then
    diag "half-imported $V/i$j"; retry=1
  fi
  out=$("$PHYLLO" import "$PHYLLOME_HOME/good.phyb" --name "i$j" 2>&1) || { diag "import i$j again: $out"; retry=1; }
done
is "$retry" 0 "each killed import is whole or absent, and imports again under its name"
is "$(home_sound)" 0 "and everything checks clean"

# What the killed clones and imports left in vms/ (.#clone.*, .#import.*) is
# swept by the next create/clone/import once it is a minute old and its maker
# is gone; one still locked by a live maker stays.
mkdir -p "$V/.#import.Live01" "$V/.#clone.x.Dead01/sub"
: >"$V/.#clone.x.Dead01/sub/disk"
# This shell plays the live maker: it holds the lock on its open directory.
exec {hold}<"$V/.#import.Live01"
flock -x "$hold"; ok $? "a live maker holds its temp dir"
for t in "$V"/.#*; do touch -d '2 hours ago' "$t"; done
"$PHYLLO" import "$PHYLLOME_HOME/good.phyb" --name swept >/dev/null; ok $? "an import after the faults"
is "$(ls -A "$V" | grep '^\.#' | tr '\n' ' ')" ".#import.Live01 " "it swept every abandoned temp dir and left the locked one"
exec {hold}<&-
"$PHYLLO" delete swept --yes >/dev/null 2>&1

# --- a full disk during snapshot create and export ---
if [ "$(id -u)" = 0 ] && command -v mount >/dev/null; then
  full=$(mktemp -d /tmp/phyllome-full.XXXXXX)
  if mount -t tmpfs -o size=24M tmpfs "$full" 2>/dev/null; then
    trap 'umount "$full" 2>/dev/null; rmdir "$full"; lc_cleanup' EXIT
    F() { PHYLLOME_HOME=$full "$PHYLLO" "$@"; }
    F create small --profile linux --memory 256M --cpus 1 --display none --disk 64M --no-uefi >/dev/null
    ok $? "a VM on the small disk"
    qemu-io -c 'write -P 0x5a 0 4M' "$full/vms/small/disk-system.qcow2" >/dev/null
    F snapshot create small before >/dev/null; ok $? "a snapshot while there is room"
    conf=$(cat "$full/vms/small/vm.conf")
    dsum=$(content "$full/vms/small/disk-system.qcow2")
    dd if=/dev/zero of="$full/filler" bs=64k 2>/dev/null   # fills it: ENOSPC ends dd
    # A snapshot's metadata copies onto the full disk; qemu-img itself may still fit it in the image.
    out=$(F snapshot create small after 2>&1); rc=$?
    if [ $rc -ne 0 ]; then
      like "$out" "No space left on device|[Nn]o space" "snapshot create on a full disk fails and says why: $out"
      is "$(F snapshot list small --json | jq -r '[.[].name] | join(",")')" before "the failed snapshot is not listed"
    else
      ok 1 "snapshot create on a full disk failed (it succeeded instead)"
      diag "$(F snapshot list small --json)"
    fi
    is "$(cat "$full/vms/small/vm.conf")" "$conf" "the definition is intact"
    is "$(content "$full/vms/small/disk-system.qcow2")" "$dsum" \
       "the disk's content is intact"
    qemu-img check -q -U "$full/vms/small/disk-system.qcow2"; ok $? "the image checks clean"
    F snapshot revert small before >/dev/null 2>&1; ok $? "the earlier snapshot still reverts"
    out=$(F export small "$full/small.phyb" 2>&1); rc=$?
    ok $([ $rc -ne 0 ]; echo $?) "export onto the full disk fails"
    like "$out" "No space left on device" "and says why: $out"
    ok $([ ! -s "$full/small.phyb" ] || ! "$PHYLLO" import "$full/small.phyb" --name fromfull >/dev/null 2>&1; echo $?) \
       "what a failed export left is no bundle that imports"
    F show small >/dev/null; ok $? "the VM still reads back"
    is "$(F list --json | jq -r '[.[].name] | join(",")')" small "and is the only VM listed"
    rm -f "$full/filler"
    F export small "$full/small.phyb" --yes >/dev/null; ok $? "with room again the export works"
    umount "$full"; rmdir "$full"
    trap lc_cleanup EXIT
  else
    diag "cannot mount a tmpfs here: full-disk checks skipped"
  fi
else
  diag "not root: full-disk checks skipped (they mount a tmpfs)"
fi

tap_done

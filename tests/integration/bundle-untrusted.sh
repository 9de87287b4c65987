#!/bin/bash
# Importing bundles made by someone else (issue 12, findings 3 and 5): real
# hostile bundles (a real qcow2 whose backing file is a host file, a
# definition naming host files, ports and devices, a 1 TiB sparse disk, a
# zstd bomb) are refused or stripped, each within seconds, and nothing is
# left behind.  No VM is started.
set -u
. "$(dirname "$0")/tap.sh"
for t in jq zstd tar python3 qemu-img qemu-io curl; do
  command -v "$t" >/dev/null || skip_all "$t is not installed"
done
tap_new_home
export PHYLLOME_NO_DAEMON=1 PHYLLOME_CACHE=$PHYLLOME_HOME/cache
# Debian's python3 first: a version manager's shim costs seconds per call.
CRAFT=("$( [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || command -v python3)" "$SRCDIR/integration/bundle-craft.py")
W=$PHYLLOME_HOME/work
V=$PHYLLOME_HOME/vms
mkdir -p "$W"
# A file of this host the bundles reach for (the test's own: nothing of the real host is touched).
secret=$PHYLLOME_HOME/host-secret
echo "HOST-SECRET-$$" >"$secret"; chmod 600 "$secret"

"$PHYLLO" create base --profile linux --memory 256M --cpus 1 --display none --disk 16M --no-uefi >/dev/null
ok $? "a VM to start the bundles from"
"$PHYLLO" export base "$W/base.phyb" >/dev/null; ok $? "its bundle"
# unpack DIR: the base bundle's members in DIR, without the manifest.
unpack() { rm -rf "$1"; mkdir -p "$1"; zstd -dc "$W/base.phyb" | tar -xf - -C "$1"; rm "$1/manifest.json"; }
leftovers() { find "$V" -maxdepth 1 -name '.#*' | wc -l; }
# imp NAME BUNDLE [ARGS]: import it as NAME (30 s at most); OUT and RC.
imp() { local n=$1 b=$2; shift 2; OUT=$(timeout 30 "$PHYLLO" import "$b" --name "$n" "$@" 2>&1); RC=$?; }

# ---- finding 3: the definition of an untrusted bundle ----
u=$W/hostile; unpack "$u"
sed -i "/^\[disk system\]/a key-file = $secret" "$u/vm.conf"
cat >>"$u/vm.conf" <<EOF
[boot]
kernel = $secret
initrd = /etc/shadow
append = console=ttyS0
[cdrom install]
path = /etc/shadow
[share root]
path = /root
type = 9p
[network net1]
mode = user
forward = tcp:0.0.0.0:2222:22
[network net2]
mode = bridge
bridge = br0
[usb]
devices = 1d6b:0002
[passthrough]
devices = 0000:01:00.0
rom = 0000:01:00.0=/etc/shadow
[tpm]
type = passthrough
EOF
# Version 1 manifests (still imported) for the finding 3 bundles: what the code before the fix read too.
"${CRAFT[@]}" bundle "$W/hostile.phyb" "$u" --v1 vm.conf disk-system.qcow2
imp h1 "$W/hostile.phyb"
is "$RC" 0 "a bundle whose definition names host files, ports and devices imports (stripped)" || diag "$OUT"
like "$OUT" "removed from the untrusted bundle's definition.*--trust" "the report says what was removed and how to keep it"
conf=$V/h1/vm.conf
ok $([ -f "$conf" ] && ! grep -qE "/etc/shadow|$secret|/root|0\.0\.0\.0|br0|1d6b|0000:01:00\.0" "$conf"; echo $?) \
   "its saved definition names no host file, port, bridge or device"
show=$("$PHYLLO" show h1 --json 2>&1)
is "$(jq -c '[(.cdroms|length), (.shares|length), ([.networks[].forward | length] | add), .boot.kernel]' <<<"$show")" \
   '[0,0,0,null]' "no cdrom, share, forward or kernel is left"
is "$(jq -r '.networks[] | select(.name == "net2") | .mode' <<<"$show")" user "the bridged NIC is changed to user networking"
is "$(jq -r '.tpm.type' <<<"$show")" emulated "TPM passthrough is changed to an emulated TPM"
is "$(jq -r '.disks[0].key' <<<"$show")" prompt "the disk's host key file gives way to a typed passphrase"
imp h1json "$W/hostile.phyb" --json
st=$(jq -r '.stripped[]' <<<"$OUT" 2>/dev/null)
is "$(jq -r '.trusted' <<<"$OUT" 2>/dev/null)" false "--json says the bundle was not trusted"
for w in '\[cdrom install\] removed' '\[share root\] removed' "forward 'tcp:0.0.0.0:2222:22' removed" \
         '\[usb\] device' '\[passthrough\] device' '\[passthrough\] rom' '\[boot\] kernel' 'key-file' \
         'mode bridge:br0 changed to user' '\[tpm\] passthrough'; do
  like "$st" "$w" "the import's report lists: $w"
done
# --trust keeps the definition, but it is checked like any saved one:
# /etc/shadow and /root are outside allow-paths (per user: the home and the Phyllome home).
imp h2 "$W/hostile.phyb" --trust --json
like "$RC $OUT" "^[1-9].*trusted bundle's definition.*(/etc/shadow|/root)" \
     "with --trust, host paths outside allow-paths are still refused"
ok $([ ! -e "$V/h2" ] && [ "$(leftovers)" = 0 ]; echo $?) "and nothing is left in vms/"
# A bundle you made yourself, naming files where you may: kept as it is.
iso=$PHYLLOME_HOME/install.iso; truncate -s 1M "$iso"
unpack "$u"
printf '[cdrom install]\npath = %s\n[network net1]\nmode = user\nforward = tcp:127.0.0.1:2222:22\n' "$iso" >>"$u/vm.conf"
"${CRAFT[@]}" bundle "$W/own.phyb" "$u" vm.conf disk-system.qcow2
imp h3 "$W/own.phyb" --trust --json
is "$RC" 0 "with --trust an own bundle imports as it is" || diag "$OUT"
like "$(cat "$V/h3/vm.conf" 2>/dev/null)" "path = $iso" "its cdrom (an allowed path) is kept"
like "$(cat "$V/h3/vm.conf" 2>/dev/null)" "forward = tcp:127.0.0.1:2222:22" "its forward is kept"
is "$(jq -c '[.trusted, .stripped]' <<<"$OUT")" '[true,[]]' "--json says trusted, nothing stripped"

# A disk that is not a disk member: "..", another member, a host path.
for p in .. vm.conf "$secret" ../base/disk-system.qcow2; do
  unpack "$u"; sed -i "s|^path = disk-system.qcow2|path = $p|" "$u/vm.conf"
  "${CRAFT[@]}" bundle "$W/p.phyb" "$u" --v1 vm.conf disk-system.qcow2
  imp dp "$W/p.phyb"
  like "$RC $OUT" "^[1-9].*disk 'system' \('${p//./\\.}'\) is not one of its disk members" "disk path '$p' is refused"
done
ok $([ ! -e "$V/dp" ] && [ "$(leftovers)" = 0 ]; echo $?) "the refusals leave nothing in vms/"

# A qcow2 whose backing file is a host file (the image alone is a real, valid qcow2).
for back in "$secret" ../../host-secret "json:{\"file.filename\":\"$secret\"}"; do
  unpack "$u"; rm "$u/disk-system.qcow2"
  qemu-img create -q -f qcow2 -u -b "$back" -F raw "$u/disk-system.qcow2" 16M
  "${CRAFT[@]}" bundle "$W/b.phyb" "$u" --v1 vm.conf disk-system.qcow2
  imp bk "$W/b.phyb"
  like "$RC $OUT" "^[1-9].*backing file '.*', which is not one of the bundle's disk members" \
       "a qcow2 backing file '$back' is refused"
  [ -e "$V/bk" ] && { diag "imported; the guest reads: $(qemu-io -r -f qcow2 -c 'read -v 0 16' "$V/bk/disk-system.qcow2" | head -1)"
                      rm -rf "$V/bk"; }
done
ok $([ ! -e "$V/bk" ] && [ "$(leftovers)" = 0 ]; echo $?) "nothing of them is left in vms/"
# Even with --trust: export never makes a chain, so one that leaves the bundle is forged.
imp bk "$W/b.phyb" --trust
ok $([ "$RC" -ne 0 ]; echo $?) "a backing file outside the bundle is refused with --trust too"
# A qcow2 keeping its data in an external (host) file.
unpack "$u"; rm "$u/disk-system.qcow2"
qemu-img create -q -f qcow2 -o "data_file=$W/ext-data,data_file_raw=on" "$u/disk-system.qcow2" 16M
"${CRAFT[@]}" bundle "$W/d.phyb" "$u" --v1 vm.conf disk-system.qcow2
imp df "$W/d.phyb"
like "$RC $OUT" "^[1-9].*keeps its data in the external file" "a qcow2 with an external data file is refused"
# A chain inside the bundle is fine; it is rewritten to the member's plain name and format.
unpack "$u"; rm "$u/disk-system.qcow2"
qemu-img create -q -f qcow2 "$u/disk-base.qcow2" 16M
qemu-io -f qcow2 -c 'write -q -P 0x5a 0 64k' "$u/disk-base.qcow2"
(cd "$u" && qemu-img create -q -f qcow2 -b disk-base.qcow2 -F qcow2 disk-system.qcow2 16M)
"${CRAFT[@]}" bundle "$W/c.phyb" "$u" vm.conf disk-system.qcow2 disk-base.qcow2
imp ch "$W/c.phyb"
is "$RC" 0 "a backing chain of the bundle's own members imports" || diag "$OUT"
is "$(qemu-img info -U --output=json "$V/ch/disk-system.qcow2" | jq -c '[."backing-filename", ."backing-filename-format"]')" \
   '["disk-base.qcow2","qcow2"]' "its backing file is the member, format explicit"
qemu-io -r -f qcow2 -c 'read -q -P 0x5a 0 64k' "$V/ch/disk-system.qcow2" >/dev/null
ok $? "the guest sees the base member's data through the chain"

# ---- finding 5: sizes, holes, bombs ----
# A 1 TiB disk that is all hole but two bytes: a few hundred bytes of bundle.
unpack "$u"
truncate -s 1T "$u/disk-big.raw"
printf x | dd of="$u/disk-big.raw" bs=1 seek=1000000 conv=notrunc status=none
printf y | dd of="$u/disk-big.raw" bs=1 seek=$((1 << 39)) conv=notrunc status=none
printf '[disk big]\npath = disk-big.raw\nformat = raw\n' >>"$u/vm.conf"
"${CRAFT[@]}" bundle "$W/big.phyb" "$u" vm.conf disk-system.qcow2 disk-big.raw
diag "a 1 TiB sparse disk in $(stat -c %s "$W/big.phyb") bytes of bundle"
t=$SECONDS; imp big "$W/big.phyb"
is "$RC" 0 "a bundle with a 1 TiB sparse disk imports" || diag "$OUT"
ok $([ $((SECONDS - t)) -le 10 ]; echo $?) "within seconds (holes are not hashed): $((SECONDS - t)) s"
is "$(stat -c %s "$V/big/disk-big.raw")" $((1 << 40)) "the disk has its 1 TiB size"
ok $([ "$(du -k "$V/big/disk-big.raw" | cut -f1)" -lt 1024 ]; echo $?) "and stays sparse on this host"
is "$(dd if="$V/big/disk-big.raw" bs=1 skip=$((1 << 39)) count=1 status=none)" y "its data lands where it was"
# Its holes are covered by the manifest: the same data bytes one MiB further
# on, under the first bundle's manifest entry, are refused (only the map differs).
zstd -dc "$W/big.phyb" | tar -xOf - manifest.json >"$W/m1.json"
truncate -s 0 "$u/disk-big.raw"; truncate -s 1T "$u/disk-big.raw"
printf x | dd of="$u/disk-big.raw" bs=1 seek=$((1000000 + (1 << 20))) conv=notrunc status=none
printf y | dd of="$u/disk-big.raw" bs=1 seek=$((1 << 39)) conv=notrunc status=none
d3=$W/moved; rm -rf "$d3"; mkdir "$d3"
"${CRAFT[@]}" bundle "$W/moved.phyb" "$u" vm.conf disk-system.qcow2 disk-big.raw
zstd -dc "$W/moved.phyb" | tar -xf - -C "$d3"
is "$(jq -c '.members[2] | [.data, .sha256]' "$d3/manifest.json")" "$(jq -c '.members[2] | [.data, .sha256]' "$W/m1.json")" \
   "the moved data hashes the same"
jq --argjson m "$(jq '.members[2]' "$W/m1.json")" '.members[2] = $m' "$d3/manifest.json" >"$d3/m" && mv "$d3/m" "$d3/manifest.json"
(cd "$d3" && tar --sparse --format=pax -cf - vm.conf disk-system.qcow2 disk-big.raw manifest.json | zstd -q -c) >"$W/moved2.phyb"
imp moved "$W/moved2.phyb"
like "$RC $OUT" "^[1-9].*'disk-big.raw' does not match its manifest \(size, sha256 or sparse map\)" \
     "a sparse map that differs from the manifest's is refused"
# Version 1 bundles (holes hashed as zeros) still import...
unpack "$u"; "${CRAFT[@]}" bundle "$W/v1.phyb" "$u" --v1 vm.conf disk-system.qcow2
imp v1 "$W/v1.phyb"
is "$RC" 0 "a version 1 bundle still imports" || diag "$OUT"
# ...but one whose holes would take minutes to hash is refused at once (its sha256 is not even computed here).
truncate -s 1T "$u/disk-big.raw"; printf y | dd of="$u/disk-big.raw" bs=1 seek=$((1 << 39)) conv=notrunc status=none
printf '[disk big]\npath = disk-big.raw\nformat = raw\n' >>"$u/vm.conf"
"${CRAFT[@]}" bundle "$W/v1big.phyb" "$u" --v1 --bad-sha=disk-big.raw vm.conf disk-system.qcow2 disk-big.raw
t=$SECONDS; imp v1big "$W/v1big.phyb"
like "$RC $OUT" "^[1-9].*old bundle format \(version 1\).*holes are larger than" \
     "a version 1 bundle with a 1 TiB hole is refused"
ok $([ $((SECONDS - t)) -le 10 ]; echo $?) "within seconds, not after hashing 1 TiB of zeros: $((SECONDS - t)) s"
ok $([ "$(leftovers)" = 0 ] && [ ! -e "$V/v1big" ]; echo $?) "nothing is left in vms/"

# A zstd bomb: 1 GiB of zeros stored as data in ~36 KiB.
"${CRAFT[@]}" zeros "$W/bomb.phyb" disk-system.raw $((1 << 30))
diag "1 GiB of data in $(stat -c %s "$W/bomb.phyb") bytes of bundle"
# Free space is checked before writing: a 32 MiB file system for the home.
H2=$W/small; mkdir -p "$H2"
if unshare -m true 2>/dev/null; then
  out=$(unshare -m bash -c 'mount -t tmpfs -o size=32m tmpfs "$1" && PHYLLOME_HOME=$1 timeout 30 "$2" import "$3" 2>&1
                            echo "rc=$?"; find "$1/vms" -mindepth 1 | wc -l' _ "$H2" "$PHYLLO" "$W/bomb.phyb")
  like "$out" "holds 1\.0 GiB of data but only 3[0-9]\.[0-9] MiB are free.*rc=[1-9].*"$'\n'"0$" \
       "a member larger than the free space is refused before a byte is written, nothing left"
else
  echo "ok $((tap_n += 1)) # SKIP cannot unshare a mount namespace here"
fi

# ---- through phyllod: the cap counts unpacked bytes; a client that leaves stops the import ----
. "$(dirname "$0")/phyllod-lib.sh"
S=$PHYLLOME_HOME/phyllod.sock
pd_start --import-max 8M; ok $? "phyllod starts with --import-max 8M"
r=$(curl -s --max-time 60 --unix-socket "$S" -X POST -H 'Content-Type: application/zstd' \
      --data-binary @"$W/bomb.phyb" -w '\n%{http_code}' http://localhost/v1/vms/import)
is "${r##*$'\n'}" 413 "a 36 KiB body that unpacks to 1 GiB is over an 8 MiB cap: 413"
like "$r" "more than the 8\.0 MiB this import may write" "the error names the cap"
ok $([ "$(leftovers)" = 0 ]; echo $?) "nothing is left in vms/"
r=$(curl -s --max-time 60 --unix-socket "$S" -X POST --data-binary @"$W/hostile.phyb" \
      -w '\n%{http_code}' "http://localhost/v1/vms/import?name=api1")
is "${r##*$'\n'}" 201 "the hostile definition imports through phyllod"
like "$(jq -r '.stripped | length' <<<"${r%$'\n'*}")" '^[1-9][0-9]*$' "and the reply lists what was stripped"
kill "$PD_PID"; wait "$PD_PID" 2>/dev/null

pd_start --import-max 200G; ok $? "phyllod restarts with --import-max 200G"
threads() { ls "/proc/$PD_PID/task" | wc -l; }
base_threads=$(threads)
# gone_within SECONDS: until no import is in progress (no temp dir, phyllod's threads back to what they were).
gone_within() { local end=$((SECONDS + $1))
  while [ "$(leftovers)" != 0 ] || [ "$(threads)" -gt "$base_threads" ]; do
    [ $SECONDS -ge $end ] && return 1; sleep 0.2; done; }
# uploading BUNDLE: curl sends it and keeps the body open (a fifo fed by cat, then held), so the import is mid-way.
upload() {
  local fifo=$W/fifo; rm -f "$fifo"; mkfifo "$fifo"
  curl -s --max-time 120 --unix-socket "$S" -X POST -H 'Transfer-Encoding: chunked' -T - \
       http://localhost/v1/vms/import <"$fifo" >/dev/null &
  CURL=$!; tap_own_pid "$CURL"
  exec {HOLD}>"$fifo"; cat "$1" >&$HOLD &
  tap_own_pid $!
  # the import has started (bounded: a refused import leaves no temp dir)
  local end=$((SECONDS + 60))
  until [ "$(leftovers)" != 0 ]; do
    if [ $SECONDS -ge $end ] || ! kill -0 "$CURL" 2>/dev/null; then
      diag "the import of $1 did not start (curl ended or 60 s passed)"; return 1
    fi
    sleep 0.2
  done
}
# The 1 TiB hole of a version 1 bundle: once hashed for minutes, after the client left too.
upload "$W/v1big.phyb"; ok $? "the import of the 1 TiB hole starts"
sleep 1
kill -9 "$CURL"; exec {HOLD}>&-; t=$SECONDS
gone_within 10; ok $? "a client killed mid-import (1 TiB hole): the import ends and cleans up in $((SECONDS - t)) s"
# The bomb, 64 GiB of zeros (less where the home's filesystem has less free:
# phyllod refuses a bundle larger than the free space before it starts):
# minutes of work that stop when the client goes.
free_gib=$(( $(stat -f -c %a "$PHYLLOME_HOME") * $(stat -f -c %S "$PHYLLOME_HOME") >> 30 ))
bomb_gib=$(( free_gib - 4 < 64 ? free_gib - 4 : 64 ))
[ "$bomb_gib" -ge 8 ] || bomb_gib=8
"${CRAFT[@]}" zeros "$W/bomb64.phyb" disk-system.raw $((bomb_gib << 30))
upload "$W/bomb64.phyb"; ok $? "the import of the $bomb_gib GiB bomb starts"
sleep 2
kill -9 "$CURL"; exec {HOLD}>&-; t=$SECONDS
gone_within 5; ok $? "a client killed mid-import ($bomb_gib GiB bomb): the import is cancelled in $((SECONDS - t)) s"
is "$(curl -s --max-time 10 --unix-socket "$S" -o /dev/null -w '%{http_code}' http://localhost/v1/version)" 200 \
   "phyllod still answers"
tap_done

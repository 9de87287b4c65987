#!/bin/bash
# SPDX-License-Identifier: MIT
# Phyllome OS's image-based updates inside Phyllome (issue 16): the headless
# image (version N, built or reused as tests/image/lib.sh says) boots with
# phyllo under TCG, on user networking inside a network namespace this test
# makes (only loopback: the guest reaches the test's HTTP server on the
# namespace's 127.0.0.1 as 10.0.2.2, and nothing else).  The server offers
# N+1 and N+2, made from N's update artefacts by re-stamping the version
# (IMAGE_VERSION in the root's os-release, written with debugfs; the kernel
# is N's; a new partition UUID each): one build makes all three.
#   1. N (its self-test: phyllome.selftest=update:URL/n1/) runs
#      phyllome-update (systemd-sysupdate) and restarts;
#   2. N+1 boots on trial (its entry has 3 tries), is marked good
#      (boot-complete.target, systemd-bless-boot), reports its version, then
#      updates to N+2 from URL/n2/ and restarts;
#   3. N+2 is broken on purpose (its initramfs is garbage: the kernel finds
#      no root and panics, panic=5 restarts it): systemd-boot counts 3 failed
#      tries and then starts N+1 again, which reports and powers off.
set -u
. "$(dirname "$0")/../integration/tap.sh"
. "$(dirname "$0")/lib.sh"
os_require debugfs gzip nsenter ip python3
vm=upd$$
tap_new_home
ns=phyllome-upd$$
os_netns=
server=
upd_cleanup() {
  [ -z "$server" ] || kill "$server" 2>/dev/null
  os_cleanup
  [ -z "$os_netns" ] || ip netns del "$ns" 2>/dev/null
}
trap upd_cleanup EXIT
chmod 755 "$PHYLLOME_HOME"

os_build
art=$(dirname "$img")/update
n=$(sed -n 's/^[0-9a-f]*  phyllome_\([^_]*\)\.conf$/\1/p' "$art/SHA256SUMS" | head -n1)
like "$n" '^[0-9]+$' "the build's update artefacts are beside the image (version $n)"
ok $(cd "$art" && sha256sum --quiet -c SHA256SUMS; echo $?) "they match their SHA256SUMS"
n1=$((n + 1)) n2=$((n + 2))
port=8080
url=http://10.0.2.2:$port

# --- N+1 and N+2: N's artefacts re-stamped ---
S=$PHYLLOME_HOME/srv
mkdir -p "$S/n1" "$S/n2"
t0=$(date +%s)
gzip -dc "$art"/phyllome_"${n}"_*.root.gz >"$PHYLLOME_HOME/root.img"
entry_n=$(cat "$art/phyllome_$n.conf")
# stamp VERSION DIR INITRD EXTRA-ARGS SELFTEST-URL: the root image with
# IMAGE_VERSION=VERSION (os-release is the version marker), a new partition
# UUID, N's kernel, INITRD, and a boot entry naming them.
stamp() {
  local v=$1 d=$2 initrd=$3 extra=$4 next=$5 u
  u=$(cat /proc/sys/kernel/random/uuid)
  debugfs -R 'cat /usr/lib/os-release' "$PHYLLOME_HOME/root.img" 2>/dev/null |
    sed "s/^IMAGE_VERSION=.*/IMAGE_VERSION=$v/" >"$PHYLLOME_HOME/os-release"
  # and the kernel command line esp-update writes into entries names the
  # new root, as a build gives each version's root its own UUID
  debugfs -R 'cat /etc/kernel/cmdline' "$PHYLLOME_HOME/root.img" 2>/dev/null |
    sed "s/root=PARTUUID=[^ ]*/root=PARTUUID=$u/" >"$PHYLLOME_HOME/cmdline"
  printf 'cd /usr/lib\nrm os-release\nwrite %s os-release\ncd /etc/kernel\nrm cmdline\nwrite %s cmdline\n' \
    "$PHYLLOME_HOME/os-release" "$PHYLLOME_HOME/cmdline" >"$PHYLLOME_HOME/debugfs.cmd"
  debugfs -w -f "$PHYLLOME_HOME/debugfs.cmd" "$PHYLLOME_HOME/root.img" >/dev/null 2>&1
  gzip -1 -c "$PHYLLOME_HOME/root.img" >"$d/phyllome_${v}_$u.root.gz"
  cp "$art/phyllome_$n.vmlinuz" "$d/phyllome_$v.vmlinuz"
  cp "$initrd" "$d/phyllome_$v.initrd"
  printf '%s\n' "$entry_n" | sed -e "s/^title .*/title      Phyllome OS $v/" -e "s/^version .*/version    $v/" \
    -e "s|phyllome_$n\.|phyllome_$v.|g" -e "s/root=PARTUUID=[^ ]*/root=PARTUUID=$u/" \
    -e "/^options/s|\$| $extra phyllome.selftest=update:$next|" >"$d/phyllome_$v.conf"
  (cd "$d" && sha256sum phyllome_* >SHA256SUMS)
}
stamp "$n1" "$S/n1" "$art/phyllome_$n.initrd" "" "$url/n2/"
head -c 65536 /dev/urandom >"$PHYLLOME_HOME/garbage.initrd"
stamp "$n2" "$S/n2" "$PHYLLOME_HOME/garbage.initrd" "panic=5" "$url/n2/"
is "$(debugfs -R 'cat /usr/lib/os-release' "$PHYLLOME_HOME/root.img" 2>/dev/null | sed -n 's/^IMAGE_VERSION=//p')" "$n2" \
  "N+1 and N+2 are N re-stamped: version file rewritten, a new partition UUID each ($(( $(date +%s) - t0 )) s)"
rm -f "$PHYLLOME_HOME/root.img"
u1=$(sed -n 's/^[0-9a-f]*  phyllome_[0-9]*_\(.*\)\.root\.gz$/\1/p' "$S/n1/SHA256SUMS")
u2=$(sed -n 's/^[0-9a-f]*  phyllome_[0-9]*_\(.*\)\.root\.gz$/\1/p' "$S/n2/SHA256SUMS")

# --- the network: a namespace with loopback only; the server in it ---
ip netns add "$ns" && os_netns=/run/netns/$ns && ip -n "$ns" link set lo up
ok $? "a network namespace with loopback only ($ns)"
nsenter --net="$os_netns" python3 -m http.server --bind 127.0.0.1 --directory "$S" "$port" \
  >"$PHYLLOME_HOME/http.log" 2>&1 &
server=$!
tap_own_pid "$server"
for _ in $(seq 50); do nsenter --net="$os_netns" curl -sf -o /dev/null "http://127.0.0.1:$port/n1/SHA256SUMS" && break; sleep 0.2; done
nsenter --net="$os_netns" curl -sf -o /dev/null "http://127.0.0.1:$port/n1/SHA256SUMS"
ok $? "the update server answers on the namespace's loopback"

# --- the VM: user networking (QEMU's slirp: 10.0.2.2 is the namespace's
# loopback), N's entry with the update self-test ---
os_vm_create "$vm" 6G
sed -i 's/^mode = none$/mode = user\nbackend = slirp/' "$V/vm.conf"
os_esp "$V/os.raw"
is "$entry" "phyllome_$n.conf" "the image's entry is version N's"
mt mtype -i "$esp" "::/loader/entries/$entry" |
  sed "/^options/s|\$| phyllome.selftest=update:$url/n1/|" >"$PHYLLOME_HOME/entry-n.conf"
mt mcopy -o -i "$esp" "$PHYLLOME_HOME/entry-n.conf" "::/loader/entries/$entry"
ok $? "N's entry runs the update self-test"

selftest_boot "update" 5400 "PHYLLOME-SELFTEST done=update version=$n1 stage=final"
t_total=$(date +%s)
# The console log, one boot per kernel banner: what each one was.
boots=$(printf '%s\n' "$console" | awk -v u1="$u1" -v u2="$u2" '
  /Linux version / { if (n) print line; n++; line = n ":"; v = "" }
  /Command line: / { if (index($0, u2)) line = line " cmdline=N+2"; else if (index($0, u1)) line = line " cmdline=N+1"; else line = line " cmdline=N" }
  /Kernel panic/ && !p[n]++ { line = line " panic" }
  /PHYLLOME-SELFTEST version=/ { sub(/^.*PHYLLOME-SELFTEST version=/, ""); line = line " version=" $0 }
  /PHYLLOME-SELFTEST done=/ { sub(/^.*stage=/, ""); line = line " stage=" $0 }
  END { if (n) print line }')
diag "the boots: $(printf '%s\n' "$boots" | paste -sd'|' -)"
is "$(printf '%s\n' "$boots" | sed 's/^[0-9]*: //' | paste -sd'|' -)" \
  "cmdline=N version=$n stage=updated|cmdline=N+1 version=$n1 stage=updated|cmdline=N+2 panic|cmdline=N+2 panic|cmdline=N+2 panic|cmdline=N+1 version=$n1 stage=final" \
  "N updated to N+1; N+1 booted and updated to N+2; N+2 failed 3 times; N+1 booted again"

# boot_report K: $report holds the self-test lines of the K-th boot.
boot_report() {
  report=$(printf '%s\n' "$console" | awk -v k="$1" '/Linux version / { n++ } n == k' |
    grep -a 'PHYLLOME-SELFTEST \|PHYLLOME-HOST-CHECK-JSON ')
}
boot_report 1
is "$(val version)" "$n" "N: the version marker (IMAGE_VERSION) says N"
is "$(val slots)" "phyllome_$n,_empty" "N: root slot A holds N, slot B is empty"
like "$(val network)" "10\.0\.2\." "N: the guest has its address on user networking ($(val network))"
printf '%s\n' "$report" | sed -n 's/^.*PHYLLOME-SELFTEST update-log=/# N: update: /p' | tail -n 12
is "$(val update-rc)" 0 "N: phyllome-update (systemd-sysupdate) succeeded ($(val update-seconds) s under TCG)"
is "$(val slots-after)" "phyllome_$n,phyllome_$n1" "N: N+1 went into slot B"
like "$(val entries-after)" "(^|,)phyllome_$n1\+3-0\.conf(,|$)" "N: N+1's boot entry has 3 tries ($(val entries-after))"
like "$(val entries-after)" "(^|,)phyllome_$n\.conf(,|$)" "N: N's entry stays"

boot_report 2
check_report "N+1"
is "$(val version)" "$n1" "N+1: the version marker says N+1"
is "$(val root-slot)" "phyllome_$n1" "N+1: it runs from slot B"
is "$(val bless)" good "N+1: systemd-bless-boot marked it good (boot-complete.target reached)"
is "$(val boot-check)" "active,active" "N+1: the boot checks passed (phyllod answers, no failed unit)"
like "$(val entries)" "(^|,)phyllome_$n1\.conf(,|$)" "N+1: its entry lost its counter ($(val entries))"
is "$(val update-rc)" 0 "N+1: phyllome-update succeeded ($(val update-seconds) s under TCG)"
is "$(val slots-after)" "phyllome_$n2,phyllome_$n1" "N+1: N+2 went into slot A, N's slot (the oldest; N+1 runs and is protected)"
like "$(val entries-after)" "^phyllome_$n1\.conf,phyllome_$n2\+3-0\.conf$" "N+1: N+2's entry has 3 tries; N's is gone ($(val entries-after))"

boot_report 6
is "$(val version)" "$n1" "after N+2's 3 failed tries: N+1 again"
is "$(val root-slot)" "phyllome_$n1" "from slot B"
is "$(val state)" running "it reached a running system"
like "$(val entries)" "^phyllome_$n1\.conf,phyllome_$n2\+0-3\.conf$" "N+2's entry has no tries left (+0-3) ($(val entries))"
is "$(val slots)" "phyllome_$n2,phyllome_$n1" "both versions are still on the disk"
like "$(val phyllod-version)" '^\{.*"version"' "phyllod answers on N+1 again"
diag "the update test's guest ran $(( t_total - t0 )) s from the re-stamp to N+1's last report"
tap_done

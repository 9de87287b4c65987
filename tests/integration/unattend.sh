#!/bin/bash
# SPDX-License-Identifier: MIT
# Unattended installs end to end (issue 15, docs/catalog.md), fast: the real
# QEMU boots the real install runs, but not whole installers (that is
# unattend-debian.sh, suite slow).
#  * Linux: create --os debian12 --iso (an ISO with Debian 12 netinst's
#    volume id and the test guest's kernel and initrd where osinfo-db says
#    Debian keeps them) --unattended: the media's kernel boots directly with
#    the initrd holding preseed.cfg, which lives in the run dir only
#    (root:<VM gid> 0640); the guest finds /preseed.cfg in its root; the
#    password is in no process's command line; the guest's reboot ends the
#    install run: the answer is gone, [install] too, the VM boots its disk.
#  * Windows 11: Phyllome's autounattend.xml on a small ISO next to the
#    install ISO (and the virtio-win ISO): well-formed, Microsoft's unattend
#    namespaces, the account, locale and edition asked for, the password only
#    in Windows' encoded form; through phyllod with the password in the body
#    (a SATA system disk without virtio-win); a crashed install run is
#    cleaned by a reconcile.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
for t in xorriso xmllint jq iconv base64 python3; do
  command -v $t >/dev/null || skip_all "$t is not installed (scripts/deps.sh)"
done
[ -r "$G/vmlinuz" ] || skip_all "the test guest is not built (tests/guest/build.sh)"
lc_new_home
t=$PHYLLOME_HOME/t
mkdir -p "$t/deb/install.amd" "$t/deb/boot" "$t/win/boot" "$t/win/sources" "$t/virtio/viostor/w11/amd64"
unset PHYLLOME_CATALOG
secret='not-a-real-secret-7f3a'
printf '%s\n' "$secret" > "$t/pw"
chmod 600 "$t/pw"
cp "$G/vmlinuz" "$t/deb/install.amd/vmlinuz"
cp "$G/initrd.img" "$t/deb/install.amd/initrd.gz"
for d in deb win; do head -c 2048 /dev/zero > "$t/$d/boot/boot.img"; done
echo 'not Windows' > "$t/win/sources/install.wim"
echo 'not a driver' > "$t/virtio/viostor/w11/amd64/viostor.inf"
mkiso() { # mkiso VOLID DIR OUT: bootable (El Torito), as libosinfo wants install media
  xorriso -as mkisofs -quiet -V "$1" -b boot/boot.img -no-emul-boot -boot-load-size 4 -o "$3" "$2" 2>/dev/null
}
mkiso 'Debian 12.11.0 amd64 n' "$t/deb" "$t/deb.iso" && mkiso 'CCCOMA_X64FRE_EN-US_DV9' "$t/win" "$t/win.iso" &&
  xorriso -as mkisofs -quiet -V virtio-win-0.1.262 -o "$t/virtio.iso" "$t/virtio" 2>/dev/null
ok $? "install media made with xorriso"
chmod 755 "$t"; chmod 644 "$t"/*.iso

no_password_in_cmdlines() { # the password in no process's command line, now
  ! grep -lsF -- "$secret" /proc/[0-9]*/cmdline >/dev/null
}
qemu_args() { tr '\0' '\n' < "/proc/$(lc_field "$1" qemu_pid)/cmdline"; }

# ---- Linux: preseed.cfg in the media's initrd, the media's kernel booted ----
lc_vms+=(deb)
out=$("$PHYLLO" create deb --os debian12 --iso "$t/deb.iso" --unattended --user alice --password-file "$t/pw" \
      --hostname debvm --timezone Europe/Berlin --disk 1G --memory 256M --cpus 1 --no-uefi --display none \
      --net none 2>&1)
ok $? "create --os debian12 --unattended starts the install run"
like "$out" "installing unattended \(preseed.cfg, by initrd\)" "... and says so"
conf=$PHYLLOME_HOME/vms/deb/vm.conf
is "$(sed -n '/^\[install\]/,/^$/p' "$conf" | grep -E '^(answer|delivery|media) ' | sort | tr '\n' ';')" \
  "answer = preseed.cfg;delivery = initrd;media = $t/deb.iso;" "vm.conf has the one-shot [install] boot"
! grep -qF -- "$secret" "$PHYLLOME_HOME"/vms/deb/*
ok $? "the password is in no file of the VM dir"
no_password_in_cmdlines
ok $? "the password is in no process's command line (/proc/*/cmdline)"
f=$PHYLLOME_HOME/run/deb/install-initrd
gid=$(awk '/^Gid:/ {print $2}' "/proc/$(lc_field deb qemu_pid)/status")
is "$(stat -c '%u %g %a' "$f")" "0 $gid 640" "the initrd with the answer: root:<VM gid> 0640 in the run dir"
is "$(stat -c '%U %a' "$PHYLLOME_HOME/run/deb")" "root 710" "... the run dir root's, 0710"
args=$(qemu_args deb)
grep -qxF -- "$PHYLLOME_HOME/vms/deb/install-kernel" <<<"$args" && grep -qxF -- "$f" <<<"$args" &&
  grep -qx -- -no-reboot <<<"$args" && grep -q "filename=$t/deb.iso," <<<"$args"
ok $? "QEMU boots the media's kernel with that initrd, the media attached, -no-reboot"
like "$(grep -A1 -x -- -append <<<"$args" | tail -1)" 'auto=true priority=critical.* console=ttyS0$' \
  "... with the installer's arguments"
lc_wait_log deb PHYLLOME-GUEST-READY 180
ok $? "the media's kernel booted"
# The guest's shell: is /preseed.cfg (the cpio archive appended to the initrd) in its root?
console() { # console COMMAND MARK: types COMMAND on the serial console, waits for MARK
  python3 - "$PHYLLOME_HOME/run/deb/console.sock" "$1" "$2" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
s.sendall(b"\n" + sys.argv[2].encode() + b"\n")
got, end = b"", time.monotonic() + 60
while sys.argv[3].encode() not in got and time.monotonic() < end:
    try:
        b = s.recv(4096)
    except socket.timeout:
        continue
    if not b: break
    got += b
print("found" if sys.argv[3].encode() in got else "missing")
PY
}
is "$(console 'grep -q "passwd/username.* alice" /preseed.cfg && grep -q "passwd/user-password-crypted password .6." /preseed.cfg && echo PRESEED""-IN-ROOT' PRESEED-IN-ROOT)" found \
  "the installer's root holds /preseed.cfg with the user asked for, the password as a SHA-512 crypt hash"
old_qemu=$(lc_field deb qemu_pid)
# Issue 20: an install run keeps the forked monitor (its continuation runs
# run_start); the installed system's monitor is the lean executable.
is "$(basename "$(readlink "/proc/$(lc_field deb monitor_pid)/exe")")" phyllo \
  "the install run's monitor is the forked phyllo"
console 'reboot -f' NONE >/dev/null &
# -no-reboot: QEMU exits at the guest's reboot; the monitor ends the install
# run and starts the VM again from its disk (a new QEMU).
for i in $(seq 1 600); do
  q=$(lc_field deb qemu_pid 2>/dev/null)
  [ "$(lc_field deb state 2>/dev/null)" = running ] && [ -n "$q" ] && [ "$q" != "$old_qemu" ] && [ "$q" != 0 ] && break
  sleep 0.2
done
! lc_alive "$old_qemu"
ok $? "the guest's reboot ends the install run (-no-reboot)"
[ ! -e "$f" ] && [ -z "$(ls "$PHYLLOME_HOME/run/deb" | grep install)" ]
ok $? "the answer's initrd is gone from the run dir"
! grep -q '^\[install\]' "$conf" && [ ! -e "$PHYLLOME_HOME/vms/deb/install-kernel" ] &&
  [ ! -e "$PHYLLOME_HOME/vms/deb/install-initrd.img" ]
ok $? "[install] left vm.conf, the kernel and initrd copies the VM dir"
is "$(lc_state deb)" running "the installed system starts at once"
args=$(qemu_args deb)
! grep -qE -- '-kernel|install-|-no-reboot|deb.iso' <<<"$args" && grep -q disk-system <<<"$args"
ok $? "... from its disk: no installer kernel, no media, no -no-reboot"
is "$(basename "$(readlink "/proc/$(lc_field deb monitor_pid)/exe")")" phyllo-monitor \
  "... with the lean monitor, phyllo-monitor"
"$PHYLLO" kill deb >/dev/null 2>&1

# ---- Windows 11: autounattend.xml on a CD next to the install ISO -----------
lc_vms+=(w11)
out=$("$PHYLLO" create w11 --os win11 --iso "$t/win.iso" --drivers "$t/virtio.iso" --unattended --user alice \
      --password-file "$t/pw" --locale de-DE --timezone 'W. Europe Standard Time' --hostname winvm \
      --memory 4G --cpus 2 --disk 64G --display none --net none 2>&1)
ok $? "create --os win11 --unattended starts the install run (vTPM, Secure Boot, TCG)"
iso=$PHYLLOME_HOME/run/w11/install-answer.iso
gid=$(awk '/^Gid:/ {print $2}' "/proc/$(lc_field w11 qemu_pid)/status")
is "$(stat -c '%u %g %a' "$iso")" "0 $gid 640" "the answer CD: root:<VM gid> 0640 in the run dir"
is "$(xorriso -indev "$iso" -find / -type f 2>/dev/null | tr -d "'")" /autounattend.xml \
  "the CD holds autounattend.xml at its root, where Windows setup looks"
args=$(qemu_args w11)
cds=$(grep -E '^ide-cd,' <<<"$args" | sed 's/,drive=.*,bootindex=/ /; s/^ide-cd,id=//' | tr '\n' ';')
is "$cds" "cd-install-media 1;cd-drivers 2;cd-install-answer 3;" \
  "QEMU attaches the install ISO first, virtio-win, then the answer CD"
grep -q "filename=$t/win.iso," <<<"$args" && grep -q "filename=$iso," <<<"$args" && grep -qx -- -no-reboot <<<"$args"
ok $? "... the install ISO and the answer CD by their files, with -no-reboot"
no_password_in_cmdlines
ok $? "the password is in no process's command line"
xorriso -osirrox on -indev "$iso" -extract /autounattend.xml "$t/au.xml" 2>/dev/null
xmllint --noout "$t/au.xml"
ok $? "autounattend.xml is well-formed (xmllint)"
x() { xmllint --xpath "$1" "$t/au.xml" 2>/dev/null; }
is "$(x 'namespace-uri(/*)')" urn:schemas-microsoft-com:unattend "the root is in Microsoft's unattend namespace"
is "$(x "namespace-uri(//*[local-name()='LocalAccount']/@*[local-name()='action'])")" \
  http://schemas.microsoft.com/WMIConfig/2002/State "... wcm:action in the WMIConfig State namespace"
is "$(x "string(//*[local-name()='LocalAccount']/*[local-name()='Name'])")" alice "the local account asked for"
is "$(x "string(//*[local-name()='LocalAccount']/*[local-name()='Group'])")" Administrators "... an administrator"
is "$(x "string(//*[local-name()='settings'][@pass='oobeSystem']//*[local-name()='UserLocale'])")" de-DE "the locale"
is "$(x "string(//*[local-name()='TimeZone'])")" 'W. Europe Standard Time' "the time zone"
is "$(x "string(//*[local-name()='MetaData'][*[local-name()='Key']='/IMAGE/NAME']/*[local-name()='Value'])")" \
  'Windows 11 Pro' "the edition, chosen by name"
is "$(x "count(//*[local-name()='ProductKey'])")" 0 "no product key"
is "$(x "string(//*[local-name()='HideOnlineAccountScreens'])")" true "the online-account screens skipped by the answer file"
is "$(x "count(//*[contains(local-name(),'Bypass') or contains(local-name(),'RunSynchronous')] | //text()[contains(.,'Bypass') or contains(.,'LabConfig')])")" \
  0 "no TPM, Secure Boot or NRO bypass (no Bypass* key, no LabConfig, no command run)"
! grep -qF -- "$secret" "$t/au.xml"
ok $? "no password in clear"
want=$(printf '%sPassword' "$secret" | iconv -f UTF-8 -t UTF-16LE | base64 -w0)
is "$(x "string(//*[local-name()='LocalAccount']//*[local-name()='Value'])") $(x "string(//*[local-name()='LocalAccount']//*[local-name()='PlainText'])")" \
  "$want false" "the password in Windows' encoded form: base64(UTF-16LE(password + \"Password\"))"
like "$(x "string(//*[local-name()='DriverPaths'])")" 'viostor.w11.amd64' "virtio-win's storage driver loaded in Windows PE"
"$PHYLLO" kill w11 >/dev/null
[ ! -e "$iso" ] && ! grep -q '^\[install\]' "$PHYLLOME_HOME/vms/w11/vm.conf"
ok $? "killed, the install run ends all the same: the answer CD and [install] are gone"
args=$("$PHYLLO" argv w11)
! grep -qE -- 'win.iso|install-answer|-no-reboot' <<<"$args" && grep -q virtio.iso <<<"$args"
ok $? "the next start has the installer detached (the virtio-win CD stays)"

# ---- through phyllod: the password in the body; SATA without virtio-win ----
PHYLLOD=$BUILDDIR/phyllod
if [ -x "$PHYLLOD" ]; then
  . "$(dirname "$0")/phyllod-lib.sh"
  S=$PHYLLOME_HOME/phyllod.sock
  pd_start
  ok $? "phyllod serves $S"
  api() { curl -s --max-time 120 --unix-socket "$S" -w '\n%{http_code}' -X "$1" -H 'Content-Type: application/json' -d "$3" "http://localhost$2"; }
  lc_vms+=(w11b)
  body=$(jq -n --arg iso "$t/win.iso" --arg pw "$secret" '{name: "w11b", iso: $iso, cpus: 2, memory: "4G", disk: "64G",
    display: "none", net: "none", unattended: {os: "win11", user: "bob", password: $pw, locale: "en-GB"}}')
  r=$(api POST /v1/vms "$body")
  is "${r##*$'\n'}" 201 "POST /v1/vms with 'unattended' (the password in the body): 201"
  is "$(jq -r '.profile + " " + .install.answer + " " + (.install.started|tostring)' <<<"${r%$'\n'*}")" \
    "windows11 autounattend.xml true" "... the profile from the catalog, the install run started"
  is "$(jq -r '.model.disks[0].bus' <<<"${r%$'\n'*}")" sata "without virtio-win the system disk is SATA (setup needs no driver)"
  iso=$PHYLLOME_HOME/run/w11b/install-answer.iso
  xorriso -osirrox on -indev "$iso" -extract /autounattend.xml "$t/au2.xml" 2>/dev/null
  is "$(xmllint --xpath "string(//*[local-name()='LocalAccount']/*[local-name()='Name'])" "$t/au2.xml")" bob \
    "phyllod's answer file has the account asked for"
  ! grep -qF -- "$secret" "$t/au2.xml" && ! grep -q PnpCustomizations "$t/au2.xml"
  ok $? "... no password in clear, no driver paths without virtio-win"
  # the monitor and QEMU die (a crash): a reconcile ends the install run
  mon=$(lc_field w11b monitor_pid); q=$(lc_field w11b qemu_pid)
  kill -9 "$mon" "$q"
  while lc_alive "$q" || lc_alive "$mon"; do sleep 0.2; done
  "$PHYLLO" status w11b --repair >/dev/null 2>&1
  [ ! -e "$iso" ] && ! grep -q '^\[install\]' "$PHYLLOME_HOME/vms/w11b/vm.conf"
  ok $? "after a crash, status --repair removes the answer CD and [install]"
  r=$(api POST /v1/vms "$(jq '.name = "w11c" | .unattended.user = "a<b"' <<<"$body")")
  is "${r##*$'\n'}" 400 "a bad user name: 400"
  like "$(jq -r .error.message <<<"${r%$'\n'*}")" "invalid user name 'a<b'" "... saying which"
  [ ! -e "$PHYLLOME_HOME/vms/w11c" ]; ok $? "... and no VM is left"
  r=$(api POST /v1/vms "$(jq --arg f "$t/nonexistent" '.name = "w11c" | .unattended.password = null | .unattended.password_file = $f' <<<"$body")")
  is "${r##*$'\n'}" 400 "password null and a password_file that is not there: refused"
  r=$(api POST /v1/vms "$(jq --arg f "$t/nonexistent" '.name = "w11c" | del(.unattended.password) | .unattended.password_file = $f' <<<"$body")")
  is "${r##*$'\n'}" 404 "a password_file that is not there: 404"
fi
tap_done

#!/bin/bash
# SPDX-License-Identifier: MIT
# Unattended install on Debian's real installer (issue 15; suite 'slow': the
# installer needs minutes under TCG).  `phyllo catalog unattend debian12`
# writes osinfo's preseed and adds it to the netboot installer's initrd
# (package debian-installer-12-netboot-amd64); Phyllome boots it on an
# isolated network (no route anywhere) with auto=true priority=critical.
# The serial console must show that the installer asked none of the
# questions the preseed answers (language, country, keyboard, host name,
# users) and went on to the network step.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
DI=/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64
[ -r "$DI/linux" ] && [ -r "$DI/initrd.gz" ] ||
  skip_all "Debian's netboot installer is not installed (debian-installer-12-netboot-amd64)"
lc_new_home
d=$PHYLLOME_HOME/unattend
printf 'not-a-real-secret\n' > "$PHYLLOME_HOME/pw"
out=$("$PHYLLO" catalog unattend debian12 --user alice --password-file "$PHYLLOME_HOME/pw" --hostname debvm \
      --timezone Europe/Berlin --out "$d" --initrd "$DI/initrd.gz" --json)
ok $? "catalog unattend debian12 writes the preseed and the initrd"
is "$(jq -r .answer_file <<<"$out")" "$d/preseed.cfg" "the answer file has the name d-i looks for"
is "$(stat -c %a "$d/preseed.cfg")" 600 "... and is readable by its owner only"
# the initrd ends with a cpio archive holding preseed.cfg
tail -c 4096 "$d/initrd-unattended.gz" | grep -aq 'preseed.cfg'
ok $? "the installer's initrd carries preseed.cfg"
chmod 755 "$d"; chmod 644 "$d/initrd-unattended.gz"   # QEMU runs as another user here (root runs phyllo)
lc_vms+=(di)
"$PHYLLO" create di --profile linux --disk 2G --memory 1G --cpus 1 --no-uefi --display none \
  --kernel "$DI/linux" --initrd "$d/initrd-unattended.gz" --append "console=ttyS0 auto=true priority=critical" \
  --net isolated:di-only >/dev/null
ok $? "create di: the netboot kernel with the preseeded initrd, on an isolated network"
"$PHYLLO" start di >/dev/null
ok $? "start di" || { tap_done; exit 1; }
t=$SECONDS
# d-i draws its screens with cursor moves, not newlines: cut at CR and ESC
timeout 1500 "$PHYLLO" logs di --follow | stdbuf -o0 tr '\r\033' '\n\n' |
  grep -m1 -aqE 'Detecting network hardware|Configure the network|Network autoconfiguration'
ok $? "the installer reached the network step ($((SECONDS - t)) s)"
log=$("$PHYLLO" logs di | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g')
like "$log" 'Detecting network hardware' "the console log holds the installer's screens"
for q in 'Choose language' 'Select a language' 'Select your location' 'Configure the keyboard' 'Keymap to use' \
         'Please enter the hostname' 'Full name for the new user' 'Username for your account' 'Root password'; do
  grep -q "$q" <<<"$log"
  ok $(( ! $? )) "the installer did not ask '$q'"
done
"$PHYLLO" kill di >/dev/null 2>&1
tap_done

#!/bin/bash
# SPDX-License-Identifier: MIT
# Unattended install on Debian's real installer (issue 15; suite 'slow': the
# installer needs minutes under TCG).  Debian's netboot installer (package
# debian-installer-12-netboot-amd64) is put in an ISO the way Debian's
# netinst keeps it (install.amd/vmlinuz, install.amd/initrd.gz, volume id
# "Debian 12.x.0 amd64 n"), and `phyllo create --os debian12 --iso ISO
# --unattended` installs from it on an isolated network (no route
# anywhere): Phyllome makes osinfo's preseed, appends it to the media's
# initrd in the run dir and boots the media's kernel.  The serial console
# must show that the installer asked none of the questions the preseed
# answers (language, country, keyboard, host name, users) and went on to the
# network step; the password is in no command line; after the run the
# answer is gone and the definition boots its disk.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
DI=/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64
[ -r "$DI/linux" ] && [ -r "$DI/initrd.gz" ] ||
  skip_all "Debian's netboot installer is not installed (debian-installer-12-netboot-amd64)"
command -v xorriso >/dev/null || skip_all "xorriso is not installed (scripts/deps.sh)"
lc_new_home
t=$PHYLLOME_HOME/t
mkdir -p "$t/tree/install.amd" "$t/tree/boot"
cp "$DI/linux" "$t/tree/install.amd/vmlinuz"
cp "$DI/initrd.gz" "$t/tree/install.amd/initrd.gz"
head -c 2048 /dev/zero > "$t/tree/boot/boot.img"
xorriso -as mkisofs -quiet -V 'Debian 12.11.0 amd64 n' -b boot/boot.img -no-emul-boot -boot-load-size 4 \
  -o "$t/debian-netboot.iso" "$t/tree" 2>/dev/null
ok $? "Debian's netboot installer in an ISO laid out as Debian's netinst"
chmod 755 "$t"; chmod 644 "$t/debian-netboot.iso"
secret='not-a-real-secret-di'
printf '%s\n' "$secret" > "$t/pw"
unset PHYLLOME_CATALOG
lc_vms+=(di)
out=$("$PHYLLO" create di --os debian12 --iso "$t/debian-netboot.iso" --unattended --user alice \
      --password-file "$t/pw" --hostname debvm --timezone Europe/Berlin --disk 2G --memory 1G --cpus 1 --no-uefi \
      --display none --net isolated:di-only 2>&1)
ok $? "create --os debian12 --unattended: the install run starts on an isolated network"
diag "$out"
! grep -lsF -- "$secret" /proc/[0-9]*/cmdline >/dev/null
ok $? "the password is in no process's command line"
t0=$SECONDS
# d-i draws its screens with cursor moves, not newlines: the console log's
# bytes as they come, cut at CR and ESC
timeout 1500 tail -c +1 -F "$PHYLLOME_HOME/run/di/console.log" 2>/dev/null | stdbuf -o0 tr '\r\033' '\n\n' |
  grep -m1 -aqE 'Detecting network hardware|Configure the network|Network autoconfiguration'
ok $? "the installer reached the network step ($((SECONDS - t0)) s)"
log=$("$PHYLLO" logs di | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g')
like "$log" 'Detecting network hardware' "the console log holds the installer's screens"
for q in 'Choose language' 'Select a language' 'Select your location' 'Configure the keyboard' 'Keymap to use' \
         'Please enter the hostname' 'Full name for the new user' 'Username for your account' 'Root password'; do
  grep -q "$q" <<<"$log"
  ok $(( ! $? )) "the installer did not ask '$q'"
done
"$PHYLLO" kill di >/dev/null 2>&1
[ ! -e "$PHYLLOME_HOME/run/di/install-initrd" ] && ! grep -q '^\[install\]' "$PHYLLOME_HOME/vms/di/vm.conf"
ok $? "the install run ended: the answer's initrd and [install] are gone"
! grep -qE -- '-kernel|install-|-no-reboot' <<<"$("$PHYLLO" argv di)"
ok $? "the definition no longer boots the installer"
tap_done

#!/bin/bash
# Virtio sound, proven on whichever QEMU runs it (issue 18); what is checked
# follows what that QEMU has (its probed capabilities), never its version:
# - with virtio-sound-pci (QEMU 10.0 from bookworm-backports, the
#   sound-virtio-qemu10 variant): the linux profile picks it, and a guest with
#   Debian 13's kernel (virtio_snd; Debian 12's kernel is built without it)
#   and `[sound] type = virtio` lists its VirtIO SoundCard in
#   /proc/asound/cards, reported over the serial console.  One boot.
# - without (the system's 7.2): the profile's default falls back to hda, and
#   an explicit `type = virtio` is refused naming the QEMU that has it.
# The Debian 13 guest is tests/guest/build.sh with PHYLLOME_GUEST_KERNEL_SUITE
# =trixie, in its own cache dir (PHYLLOME_GUEST_TRIXIE_DIR); built on first use.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
lc_new_home

caps=$("$PHYLLO" caps --json) || { diag "$caps"; skip_all "phyllo caps failed"; }
version=$(jq -r .version <<<"$caps")
diag "QEMU $version ($(jq -r .binary <<<"$caps"))"

vm=snd$$
# A display: without one the profile gives no sound card (nothing would play it).
lc_create "$vm" --display vnc
conf=$PHYLLOME_HOME/vms/$vm/vm.conf

if ! jq -e '.devices | index("virtio-sound-pci")' <<<"$caps" >/dev/null; then
  is "$("$PHYLLO" show "$vm" --json | jq -r '.sound.type // .sound')" "hda" \
    "no virtio-sound-pci in QEMU $version: the linux profile's sound falls back to hda"
  printf '[sound]\ntype = virtio\n' >>"$conf"
  out=$("$PHYLLO" start "$vm" 2>&1); rc=$?
  ok $((rc == 0)) "an explicit [sound] type = virtio does not start"
  like "$out" "vm.conf: \\[sound\\] type = virtio needs QEMU's device 'virtio-sound-pci', which .* \\(QEMU ${version%% *}\\) does not have; QEMU [0-9.]+ and later have it; use hda instead" \
    "the refusal names this QEMU's version and the one that has it"
  like "$(lc_state "$vm")" "^(stopped|failed)$" "and nothing runs (a refused start is recorded as failed)"
  tap_done
  exit
fi

is "$("$PHYLLO" show "$vm" --json | jq -r '.sound.type // .sound')" "virtio" \
  "QEMU $version has virtio-sound-pci: the linux profile picks it"
T=${PHYLLOME_GUEST_TRIXIE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/phyllome/test-guest-trixie}
t0=$(date +%s)
PHYLLOME_GUEST_KERNEL_SUITE=trixie PHYLLOME_GUEST_DIR=$T "$SRCDIR/guest/build.sh" >/dev/null 2>"$PHYLLOME_HOME/guest-build.log"
ok $? "a test guest with Debian 13's kernel ($(sed -n 's/^kernel_release=//p' "$T/stamp" 2>/dev/null)) in $(( $(date +%s) - t0 )) s" ||
  { diag "$(tail -n 20 "$PHYLLOME_HOME/guest-build.log")"; tap_done; exit; }
like "$(sed -n 's/^modules=//p' "$T/stamp")" "virtio_snd.ko" "its initrd carries virtio_snd (and what it needs)"
cp "$T/vmlinux" "$GUEST/vmlinux-13"
cat "$T/initrd.img" >"$GUEST/initrd-13.img"
chmod 644 "$GUEST/vmlinux-13" "$GUEST/initrd-13.img"

sed -i -e "s|^kernel = .*|kernel = $GUEST/vmlinux-13|" -e "s|^initrd = .*|initrd = $GUEST/initrd-13.img|" \
  -e "s|^append = .*|append = console=ttyS0 phyllome.sound|" "$conf"
printf '[sound]\ntype = virtio\n' >>"$conf"
argv=$("$PHYLLO" argv "$vm" 2>&1); ok $? "argv with [sound] type = virtio" || diag "$argv"
like "$argv" "virtio-sound-pci,id=sound0,audiodev=snd0" "argv: -device virtio-sound-pci"
out=$("$PHYLLO" start "$vm" 2>&1); ok $? "start" || diag "$out"
lc_wait_log "$vm" 'PHYLLOME-GUEST-READY' 240; ok $? "the Debian 13 guest boots" ||
  diag "$("$PHYLLO" logs "$vm" 2>&1 | tail -n 20)"
cards=$("$PHYLLO" logs "$vm" 2>/dev/null | sed -n 's/\r$//; s/^\[console\] PHYLLOME-GUEST-SOUND //p')
diag "$cards"
like "$cards" "\\[SoundCard *\\]: virtio-snd - VirtIO SoundCard" "the guest's /proc/asound/cards lists its VirtIO SoundCard"
"$PHYLLO" logs "$vm" 2>/dev/null | grep -q 'PHYLLOME-GUEST-WARN insmod .*snd'
ok $((! $?)) "every sound module loaded (no insmod warning)"
# QEMU 10.0 cannot save the virtio sound device's state: a live snapshot is
# refused saying so and what to do, and the VM runs on.
out=$("$PHYLLO" snapshot create "$vm" live 2>&1); rc=$?
if [ $rc -ne 0 ]; then
  like "$out" "non-migratable device .*virtio-sound-device'; the device is its virtio sound device .*\[sound\] type = hda" \
    "a live snapshot QEMU refuses for the sound device says what to do"
  is "$(lc_state "$vm")" "running" "and the VM runs on"
else
  ok 0 "this QEMU saves virtio sound's state: the live snapshot was taken"
fi
"$PHYLLO" stop "$vm" >/dev/null 2>&1; ok $? "stop"
tap_done

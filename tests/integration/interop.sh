#!/bin/bash
# SPDX-License-Identifier: MIT
# Moving VMs in and out against the real other side (issue 17, docs/interop.md):
# domains made by virt-install --print-xml (Windows 11, Windows 10, Linux) and
# read back with virsh dumpxml from a session libvirtd this test starts (as
# nobody under root, with its own XDG dirs; ended by pid at the end), imported;
# the Linux one started by phyllo to the test guest's marker.  A Phyllome VM
# exported to libvirt is validated (virt-xml-validate), defined and started by
# libvirt to the marker, and imported back equal field by field.  An OVA made
# here (streamOptimized VMDK, VirtualBox's OVF shape, .mf) imports and boots;
# a wrong checksum is refused.  A quickemu VM imports.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/lifecycle-lib.sh"
for t in virsh virt-install virt-xml-validate /usr/sbin/libvirtd swtpm_setup syslinux mcopy mkfs.fat tar; do
  command -v "$t" >/dev/null || skip_all "$t is not installed (scripts/deps.sh: libvirt-clients, libvirt-daemon, virtinst, swtpm-tools, syslinux, mtools, dosfstools)"
done
[ -d /usr/lib/x86_64-linux-gnu/libvirt/connection-driver ] && ls /usr/lib/x86_64-linux-gnu/libvirt/connection-driver | grep -q qemu ||
  skip_all "libvirt's QEMU driver is not installed (libvirt-daemon-driver-qemu)"
lc_new_home
H=$PHYLLOME_HOME

# --- a session libvirtd of our own ---
# Inside the home (an allowed directory), short enough for libvirt's socket paths.
LV=$H/lv
mkdir -p "$LV" "$H/bin"
if [ "$(id -u)" -eq 0 ]; then
  chown nobody: "$LV"
  as_lv=(runuser -u nobody --)
else
  as_lv=()
fi
cat >"$H/bin/virsh" <<EOF
#!/bin/sh
exec ${as_lv[*]} env HOME=$LV XDG_RUNTIME_DIR=$LV/run XDG_CONFIG_HOME=$LV/config XDG_CACHE_HOME=$LV/cache /usr/bin/virsh "\$@"
EOF
chmod 755 "$H/bin/virsh"
vs() { "$H/bin/virsh" -q -c qemu:///session "$@"; }
vi() { "${as_lv[@]}" env HOME="$LV" XDG_RUNTIME_DIR="$LV/run" XDG_CONFIG_HOME="$LV/config" XDG_CACHE_HOME="$LV/cache" \
         virt-install --connect qemu:///session --print-xml --noautoconsole --virt-type qemu "$@"; }
lv_cleanup() {
  local d p
  for d in $(vs list --all --name 2>/dev/null); do vs destroy "$d" >/dev/null 2>&1; vs undefine --nvram "$d" >/dev/null 2>&1; done
  # Only the daemons this test started: their pid files are in our dir, their comm checked.
  for p in libvirtd virtlogd; do
    [ -r "$LV/run/libvirt/$p.pid" ] || continue
    pid=$(cat "$LV/run/libvirt/$p.pid")
    grep -qx "$p" "/proc/$pid/comm" 2>/dev/null && kill "$pid"
  done
  lc_cleanup
}
trap lv_cleanup EXIT
chmod 755 "$H"
qemu-img create -q -f qcow2 "$H/win11.qcow2" 64G
qemu-img create -q -f qcow2 "$H/win10.qcow2" 40G
qemu-img create -q -f qcow2 "$H/linux.qcow2" 64M
[ "$(id -u)" -eq 0 ] && chown nobody: "$H"/*.qcow2

diag "at ${SECONDS}s"
# --- virt-install's domains ---
hv=(--features hyperv.relaxed.state=on,hyperv.vapic.state=on,hyperv.spinlocks.state=on,hyperv.spinlocks.retries=8191,hyperv.synic.state=on,hyperv.reset.state=on,kvm.hidden.state=on)
for f in vpindex runtime stimer frequencies reenlightenment tlbflush; do hv+=(--xml "./features/hyperv/$f/@state=on"); done
vi --name w11 --osinfo win11 --memory 4096 --vcpus 2 --disk "path=$H/win11.qcow2,bus=sata" \
   --network user,model=e1000e --graphics spice --video virtio --sound ich9 \
   --tpm model=tpm-crb,backend.type=emulator,backend.version=2.0 --boot uefi,loader_secure=yes "${hv[@]}" \
   --clock offset=localtime --memballoon none --memorybacking source.type=memfd,access.mode=shared \
   --cpu host-passthrough >"$H/w11.xml" 2>"$H/vi.err"
ok $? "virt-install --print-xml: a Windows 11 domain (TPM CRB 2.0, Secure Boot, the Hyper-V set, kvm hidden)" || diag "$(cat "$H/vi.err")"
vi --name w10 --osinfo win10 --memory 4096 --vcpus 2 --disk "path=$H/win10.qcow2,bus=sata" \
   --network user,model=e1000e --graphics spice --video qxl --sound ich6 --boot uefi "${hv[@]}" \
   --clock offset=localtime --memballoon none --channel spicevmc >"$H/w10.xml" 2>"$H/vi.err"
ok $? "virt-install --print-xml: a Windows 10 domain (QXL, ICH6 sound)" || diag "$(cat "$H/vi.err")"
vi --name lin --osinfo debian11 --memory 256 --vcpus 1 --disk "path=$H/linux.qcow2,bus=virtio" \
   --network user,model=virtio --graphics none --video virtio --sound none \
   --boot "kernel=$GUEST/vmlinux,initrd=$GUEST/initrd.img,kernel_args=console=ttyS0" \
   --memballoon virtio --rng /dev/urandom --channel unix,target.type=virtio,target.name=org.qemu.guest_agent.0 \
   >"$H/lin.xml" 2>"$H/vi.err"
ok $? "virt-install --print-xml: a Linux domain (direct kernel boot of the test guest)" || diag "$(cat "$H/vi.err")"

# Windows 11 with its TPM state (a real one, made by swtpm_setup).
mkdir -p "$H/tpmstate"
swtpm_setup --tpm2 --tpmstate "$H/tpmstate" --createek --not-overwrite >/dev/null 2>&1
ok $? "swtpm_setup made a TPM 2.0 state to carry over"
out=$("$PHYLLO" import-libvirt "$H/w11.xml" --tpm-state "$H/tpmstate" --json 2>&1); rc=$?
is "$rc" 0 "import-libvirt: the Windows 11 domain" || diag "$out"
is "$("$PHYLLO" show w11 --json | jq -c '[.vm.profile, .firmware.type, .firmware."secure-boot", .machine.smm, .tpm.type, .machine.hyperv, .machine.rtc, .machine.balloon, .disks[0].bus, .networks[0].model, .gpu.type, .sound.type, .display.type, .usb.redirect]')" \
   '["windows11","uefi",true,true,"emulated",true,"localtime",false,"sata","e1000e","virtio","hda","spice",2]' \
   "Windows 11: profile, Secure Boot, SMM, TPM, Hyper-V, localtime, no balloon, SATA, e1000e, virtio video, HDA, SPICE, 2 redirections"
is "$(jq -r .uuid <<<"$out")" "$(sed -n 's:.*<uuid>\(.*\)</uuid>.*:\1:p' "$H/w11.xml")" "the domain's UUID is kept"
is "$("$PHYLLO" show w11 --json | jq -r '.networks[0].mac')" "$(sed -n 's:.*<mac address="\(.*\)"/>.*:\1:p' "$H/w11.xml")" "the NIC's MAC is kept"
cmp -s "$H/tpmstate/tpm2-00.permall" "$H/vms/w11/tpm/tpm2-00.permall"; ok $? "the TPM state was copied into the VM's tpm/"
is "$(qemu-img info --output=json "$H/vms/w11/disk-system.qcow2" | jq '."virtual-size"')" 68719476736 "the 64 GiB disk was copied"
is "$("$PHYLLO" show w11 --json | jq -r '.machine."kvm-hidden"')" true "kvm hidden is kept ([machine] kvm-hidden)"
is "$(jq '.report.not_modelled' <<<"$out")" 0 "nothing of the Windows 11 shape is left out"
like "$(jq -r '.report.items[] | select(.status=="changed") | "\(.element) \(.guest_visible)"' <<<"$out")" \
   "^/domain/features/hyperv|^$" "what changes is named by its element"

out=$("$PHYLLO" import-libvirt "$H/w10.xml" 2>&1); rc=$?
is "$rc" 0 "import-libvirt: the Windows 10 domain" || diag "$out"
like "$out" "changed +\[guest\] /domain/devices/video/model .*qxl" "the report says QXL becomes VGA, visible to the guest"
like "$out" "changed +\[guest\] /domain/devices/sound .*ich6" "and that ICH6 sound becomes ICH9"
# virt-install gives a UEFI Windows 10 a TPM CRB too (no version: libvirt's 2.0).
is "$("$PHYLLO" show w10 --json | jq -c '[.vm.profile, .firmware."secure-boot", .tpm.type, .machine.hyperv, .gpu.type]')" \
   '["windows10",false,"emulated",true,"std"]' "Windows 10: profile, no Secure Boot, virt-install's TPM, Hyper-V, standard VGA"

diag "at ${SECONDS}s"
# Linux: defined on the session libvirtd, read with virsh dumpxml, started by phyllo.
vs define "$H/lin.xml" >/dev/null; ok $? "virsh define: the Linux domain"
lc_vms+=(lin)
out=$(PATH="$H/bin:$PATH" "$PHYLLO" import-libvirt --from qemu:///session lin 2>&1); rc=$?
is "$rc" 0 "import-libvirt --from qemu:///session lin (virsh dumpxml)" || diag "$out"
"$PHYLLO" start lin >/dev/null 2>&1; ok $? "phyllo starts the imported Linux domain"
lc_wait_log lin 'PHYLLOME-GUEST-READY' 90; ok $? "the test guest reaches its marker"
like "$("$PHYLLO" logs lin)" "PHYLLOME-GUEST-INFO .*virtio_balloon.*virtio_blk.*virtio_net.*virtio_rng" \
   "the guest sees the domain's virtio balloon, disk, NIC and rng"
"$PHYLLO" kill lin >/dev/null 2>&1
vs undefine lin >/dev/null

diag "at ${SECONDS}s"
# --- round trip: Phyllome -> libvirt -> Phyllome ---
lc_create rt --disk 64M
"$PHYLLO" net forward add rt tcp:2222:22 >/dev/null
out=$("$PHYLLO" export rt --format libvirt "$H/ex" 2>&1); ok $? "export rt --format libvirt" || diag "$out"
virt-xml-validate "$H/ex/rt.xml" domain >/dev/null 2>&1; ok $? "virt-xml-validate accepts the domain"
ok $([ -s "$H/ex/images/rt-system.qcow2" ]; echo $?) "the disk is in images/ (libvirt's layout)"
[ "$(id -u)" -eq 0 ] && chown -R nobody: "$H/ex"
vs define "$H/ex/rt.xml" >/dev/null; ok $? "virsh define"
vs start rt >/dev/null; ok $? "virsh start (TCG)"
timeout 90 tail -F "$H/ex/rt-serial0.log" 2>/dev/null | grep -a -m1 -q PHYLLOME-GUEST-READY
ok $? "libvirt's run of the exported VM reaches the test guest's marker"
vs destroy rt >/dev/null
out=$(PATH="$H/bin:$PATH" "$PHYLLO" import-libvirt --from qemu:///session rt --name rt2 --json 2>&1)
ok $? "import-libvirt --from the domain libvirt ran" || diag "$out"
is "$(jq '.report.changed + .report.not_modelled' <<<"$out")" 0 "the way back changes nothing and leaves nothing out"
lc_vms+=(rt2)
d1=$("$PHYLLO" show rt --json | jq -S 'del(.defaulted, .vm.name)')
d2=$("$PHYLLO" show rt2 --json | jq -S 'del(.defaulted, .vm.name)')
is "$d2" "$d1" "imported back, the definition equals the original field by field (UUID, MAC, forwards)"
vs undefine rt >/dev/null

diag "at ${SECONDS}s"
# Windows 11 out and back: UEFI vars and TPM state in libvirt's layout.
head -c 540672 /dev/urandom >"$H/vms/w11/OVMF_VARS.fd"
out=$("$PHYLLO" export w11 --format libvirt "$H/ex11" --json 2>&1); ok $? "export w11 --format libvirt" || diag "$out"
virt-xml-validate "$H/ex11/w11.xml" domain >/dev/null 2>&1; ok $? "virt-xml-validate accepts the Windows 11 domain (Hyper-V, TPM, Secure Boot)"
u=$("$PHYLLO" show w11 --json | jq -r .vm.uuid)
cmp -s "$H/vms/w11/OVMF_VARS.fd" "$H/ex11/qemu/nvram/w11_VARS.fd"; ok $? "the UEFI vars are qemu/nvram/w11_VARS.fd"
cmp -s "$H/vms/w11/tpm/tpm2-00.permall" "$H/ex11/swtpm/$u/tpm2/tpm2-00.permall"; ok $? "the TPM state is swtpm/UUID/tpm2/"
out=$("$PHYLLO" import-libvirt "$H/ex11/w11.xml" --name w11b --tpm-state "$H/ex11/swtpm/$u/tpm2" --json 2>&1)
ok $? "the Windows 11 export imports back" || diag "$out"
is "$("$PHYLLO" show w11b --json | jq -S 'del(.defaulted, .vm.name)')" "$("$PHYLLO" show w11 --json | jq -S 'del(.defaulted, .vm.name)')" \
   "and equals the original field by field"
cmp -s "$H/vms/w11/OVMF_VARS.fd" "$H/vms/w11b/OVMF_VARS.fd" && cmp -s "$H/vms/w11/tpm/tpm2-00.permall" "$H/vms/w11b/tpm/tpm2-00.permall"
ok $? "with the same UEFI vars and TPM state"

# --- hostile domains ---
printf '<?xml version="1.0"?>\n<!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<domain type="kvm"><name>&x;</name></domain>\n' >"$H/xxe.xml"
out=$("$PHYLLO" import-libvirt "$H/xxe.xml" 2>&1); rc=$?
is "$rc" 2 "an external entity is refused (usage error)"
like "$out" "xxe.xml:2: <!DOCTYPE> is refused" "naming the file, line and element"
sed "s#$H/win10.qcow2#/etc/shadow#" "$H/w10.xml" >"$H/outside.xml"
out=$("$PHYLLO" import-libvirt "$H/outside.xml" --name outside 2>&1); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "a disk outside the allowed directories is refused"
like "$out" "outside.xml:[0-9]+: <source> \(/domain/devices/disk/source\): '/etc/shadow' is outside the VM's directory" \
     "naming the file, line, element and path"
head -c 1100000 /dev/zero | tr '\0' ' ' >"$H/huge.xml"
like "$("$PHYLLO" import-libvirt "$H/huge.xml" 2>&1)" "larger than 1048576 bytes" "a huge file is refused before it is parsed"
ok $([ -z "$(ls "$H/vms" | grep -v -x -e w11 -e w11b -e w10 -e lin -e rt -e rt2)" ]; echo $?) "no refused import left anything in the home"

diag "at ${SECONDS}s"
# --- OVA (VirtualBox's shape) ---
O=$H/ova; mkdir -p "$O"
truncate -s 48M "$O/boot.img" && mkfs.fat -n PHYBOOT "$O/boot.img" >/dev/null && syslinux --install "$O/boot.img" &&
printf 'DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL vmlinuz\n  APPEND initrd=initrd.img console=ttyS0\n' >"$O/syslinux.cfg" &&
mcopy -i "$O/boot.img" "$GUEST/vmlinuz" "$GUEST/initrd.img" "$O/syslinux.cfg" :: &&
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$O/boot.img" "$O/tiny-disk001.vmdk"
ok $? "a bootable streamOptimized VMDK (syslinux, the test guest)"
sed "s/@CAPACITY@/$(stat -c %s "$O/boot.img")/" "$SRCDIR/fixtures/interop/virtualbox.ovf" >"$O/tiny.ovf"
( cd "$O" && printf 'SHA256 (tiny.ovf) = %s\nSHA256 (tiny-disk001.vmdk) = %s\n' \
    "$(sha256sum tiny.ovf | cut -d' ' -f1)" "$(sha256sum tiny-disk001.vmdk | cut -d' ' -f1)" >tiny.mf &&
  tar --format=ustar -cf "$H/tiny.ova" tiny.ovf tiny.mf tiny-disk001.vmdk )
# The same with one byte of the disk changed after its checksum.
( cd "$O" && cp tiny-disk001.vmdk bad.vmdk && printf 'X' | dd of=bad.vmdk bs=1 seek=70000 conv=notrunc status=none &&
  mkdir -p bad && cp tiny.ovf tiny.mf bad/ && cp bad.vmdk bad/tiny-disk001.vmdk &&
  tar --format=ustar -C bad -cf "$H/bad.ova" tiny.ovf tiny.mf tiny-disk001.vmdk )
out=$("$PHYLLO" import-ova "$H/bad.ova" --name bad 2>&1); rc=$?
ok $([ $rc -ne 0 ]; echo $?) "an OVA whose disk does not match its .mf is refused"
like "$out" "tiny.mf:2: the SHA256 of 'tiny-disk001.vmdk' is [0-9a-f]+, the manifest says" "naming the manifest line and the file"
ok $([ ! -e "$H/vms/bad" ] && [ -z "$(ls -A "$H/vms" | grep '^\.#')" ]; echo $?) "and leaves no VM and no extraction behind"
lc_vms+=(tiny)
out=$("$PHYLLO" import-ova "$H/tiny.ova" 2>&1); rc=$?
is "$rc" 0 "import-ova: VirtualBox's shape" || diag "$out"
is "$("$PHYLLO" show tiny --json | jq -c '[.vm.profile, .cpu.cores, .memory.size, .disks[0].bus, .disks[0].format, .networks[0].model, .networks[0].mac]')" \
   '["linux",1,268435456,"sata","qcow2","e1000e","08:00:27:a1:b2:c3"]' "the OVF's hardware: 1 CPU, 256 MiB, a SATA disk as qcow2, VirtualBox's MAC"
like "$out" "changed +\[guest\] .*E1000 network card becomes e1000e" "the report says the NIC model changes"
"$PHYLLO" start tiny >/dev/null 2>&1; ok $? "phyllo starts the imported appliance (BIOS, from its disk)"
lc_wait_log tiny 'PHYLLOME-GUEST-READY' 90; ok $? "the appliance's guest reaches its marker"
"$PHYLLO" kill tiny >/dev/null 2>&1

diag "at ${SECONDS}s"
# --- quickemu ---
mkdir -p "$H/qe/debian-12"
qemu-img create -q -f qcow2 "$H/qe/debian-12/disk.qcow2" 16G
cp "$SRCDIR/fixtures/interop/quickemu.conf" "$H/qe/debian-12.conf"
out=$("$PHYLLO" import-quickemu "$H/qe/debian-12.conf" 2>&1); rc=$?
is "$rc" 0 "import-quickemu" || diag "$out"
is "$("$PHYLLO" show debian-12 --json | jq -c '[.vm.profile, .cpu.cores, .memory.size, .firmware.type, .disks[0].bus, .networks[0].model, .networks[0].forward]')" \
   '["linux",2,2147483648,"uefi","virtio","virtio",["tcp:8123:8123","udp:8123:8123","tcp:8888:80","udp:8888:80"]]' \
   "guest_os, cpu_cores, ram, boot, virtio-blk and virtio-net as quickemu gives Linux, port_forwards"
printf 'guest_os="linux"\ndisk_img="$(touch /tmp/pwned)"\n' >"$H/qe/evil.conf"
out=$("$PHYLLO" import-quickemu "$H/qe/evil.conf" 2>&1); rc=$?
is "$rc" 2 "a quickemu file with a command substitution is refused"
like "$out" "evil.conf:2: '\\$' in a value" "naming the line"

tap_done

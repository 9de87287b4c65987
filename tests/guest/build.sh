#!/bin/bash
# Build the tiny Phyllome test guest from Debian 12 packages:
#   vmlinuz     the kernel as Debian ships it (bzImage, EFI stub)
#   vmlinux     the same kernel uncompressed: an ELF with a PVH entry point,
#               so QEMU's -kernel boots it without the real-mode decompressor
#               (much faster under TCG)
#   initrd.img  busybox-static + virtio/ACPI modules of the same kernel + /init
#   extras.img  a second newc archive for the few tests that need more:
#               Debian's qemu-ga with the shared libraries it loads, and the
#               ext4 modules; `cat initrd.img extras.img` is an initrd with
#               both (the kernel unpacks concatenated archives in order), so
#               the other boots do not carry its ~8 MiB
#   stamp       what it was built from; a changed script or init rebuilds
#
# Usage: build.sh [--force] [--refresh]
#   --force    rebuild even when the cached guest is current
#   --refresh  ask apt for the newest kernel and rebuild if it changed
#              (a plain run never queries apt when the cache is current, so
#              it stays well under a second)
# Environment:
#   PHYLLOME_GUEST_DIR         output directory (default
#                              ${XDG_CACHE_HOME:-~/.cache}/phyllome/test-guest);
#                              owned by this script, replaced as a whole
#   PHYLLOME_GUEST_KERNEL_PKG  kernel package to use instead of the one
#                              linux-image-amd64 depends on
#   PHYLLOME_GUEST_KERNEL_SUITE  another suite of Debian's archive to take
#                              the kernel from (trixie: Debian 13's kernel,
#                              which has virtio sound as a module), through
#                              scripts/suite-apt; busybox and qemu-ga stay
#                              Debian 12's
# Output: progress on stderr; the output directory on stdout (one line).
# Nothing is installed on the host: packages are fetched with
# `apt-get download` and unpacked with `dpkg-deb -x`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${PHYLLOME_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/phyllome/test-guest}
out=${out%/}

say() { printf 'guest-build: %s\n' "$*" >&2; }
die() { printf 'guest-build: error: %s\n' "$*" >&2; exit 1; }

force=0 refresh=0
for a in "$@"; do
	case $a in
	--force) force=1 ;;
	--refresh) refresh=1 ;;
	-h | --help) sed -n '2,24s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) die "unknown argument '$a' (expected --force or --refresh)" ;;
	esac
done

# Everything that shapes the initramfs; its hash goes into the stamp.
inputs_hash() {
	(cd "$here" && cat build.sh init bin/*) | sha256sum | cut -d' ' -f1
}
inputs=$(inputs_hash)

outputs=(vmlinuz vmlinux initrd.img extras.img stamp)
is_current() {
	local f
	for f in "${outputs[@]}"; do
		[[ -s $out/$f ]] || return 1
	done
	grep -qx "inputs=$inputs" "$out/stamp" || return 1
	if [[ -n ${PHYLLOME_GUEST_KERNEL_PKG:-} ]]; then
		grep -qx "kernel_package=$PHYLLOME_GUEST_KERNEL_PKG" "$out/stamp" || return 1
	fi
	grep -qx "kernel_suite=${PHYLLOME_GUEST_KERNEL_SUITE:-}" "$out/stamp" || return 1
}
report() {
	say "test guest in $out: $(sed -n 's/^kernel_release=//p' "$out/stamp") ($(sed -n 's/^kernel_version=//p' "$out/stamp"))"
	printf '%s\n' "$out"
}

if ((!force && !refresh)) && is_current; then
	report
	exit 0
fi

# The directory is replaced as a whole; never take over someone else's.
if [[ -d $out && ! -f $out/stamp && -n $(ls -A "$out") ]]; then
	die "$out exists and was not made by this script (no stamp); remove it or set PHYLLOME_GUEST_DIR"
fi
mkdir -p "$(dirname "$out")"
# Serialise concurrent builds (parallel test runs); the loser finds the
# winner's result on the re-check below.
exec 9>"$out.lock"
flock 9
if ((!force && !refresh)) && is_current; then
	report
	exit 0
fi

for tool in apt-get apt-cache dpkg-deb cpio gzip xz sha256sum flock readelf; do
	command -v "$tool" >/dev/null || die "'$tool' is missing; install it with: apt-get install apt dpkg cpio gzip xz-utils coreutils util-linux binutils"
done

tmp=$(mktemp -d "$out.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Turn signals into a normal exit so the EXIT trap cleans up.
trap 'exit 130' INT TERM HUP

apt_show() {
	apt-cache show --no-all-versions "$1" 2>/dev/null
}
# The kernel from another suite: its own package lists (scripts/suite-apt).
ksuite=${PHYLLOME_GUEST_KERNEL_SUITE:-}
kapt() { # kapt apt-get|apt-cache ARGS...
	if [[ -n $ksuite ]]; then "$here/../../scripts/suite-apt" "$ksuite" "$@"; else "$@"; fi
}
kapt_show() {
	kapt apt-cache show --no-all-versions "$1" 2>/dev/null
}
# Package lists may be missing on a fresh machine; root may fetch them once.
if ! apt_show linux-image-amd64 >/dev/null; then
	((EUID == 0)) || die "apt has no package lists; run 'apt-get update' as root first"
	say "apt has no package lists; running apt-get update"
	apt-get update -qq >&2 || die "apt-get update failed"
fi

kpkg=${PHYLLOME_GUEST_KERNEL_PKG:-}
if [[ -z $kpkg ]]; then
	kpkg=$(kapt_show linux-image-amd64 | sed -n 's/^Depends: \(linux-image-[^ ,]*\).*/\1/p' | head -n1) || true
	[[ -n $kpkg ]] || die "cannot tell which kernel linux-image-amd64 depends on (apt-cache show linux-image-amd64${ksuite:+ in $ksuite})"
fi
kver=$(kapt_show "$kpkg" | sed -n 's/^Version: //p' | head -n1) || true
[[ -n $kver ]] || die "apt knows no package '$kpkg'; check PHYLLOME_GUEST_KERNEL_PKG or run apt-get update"
bbver=$(apt_show busybox-static | sed -n 's/^Version: //p' | head -n1) || true
[[ -n $bbver ]] || die "apt knows no package 'busybox-static'; run apt-get update"
qgaver=$(apt_show qemu-guest-agent | sed -n 's/^Version: //p' | head -n1) || true
[[ -n $qgaver ]] || die "apt knows no package 'qemu-guest-agent'; run apt-get update"

# The packages that can hold qemu-ga's shared libraries: the lib* packages
# reachable through Depends/Pre-Depends (the others, init-system-helpers and
# what it pulls in, hold none).  Only the files in the NEEDED closure of
# qemu-ga go into the initramfs, so fetching a few too many costs nothing.
qga_packages() {
	local queue=(qemu-guest-agent) seen=' ' p d
	while ((${#queue[@]})); do
		p=${queue[0]}
		queue=("${queue[@]:1}")
		[[ $seen == *" $p "* ]] && continue
		seen+="$p "
		[[ $p == qemu-guest-agent ]] || printf '%s\n' "$p"
		for d in $(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
			--no-replaces --no-enhances "$p" 2>/dev/null |
			sed -n 's/^ *|\{0,1\}\(Pre\)\{0,1\}Depends: \([^< ][^ ]*\).*/\2/p'); do
			[[ $d == lib* ]] && queue+=("$d")
		done
	done
}

if ((refresh && !force)) && is_current &&
	grep -qx "kernel_version=$kver" "$out/stamp" &&
	grep -qx "kernel_package=$kpkg" "$out/stamp"; then
	say "kernel $kpkg $kver is still the newest"
	report
	exit 0
fi

say "downloading $kpkg $kver and busybox-static $bbver"
mkdir "$tmp/debs"
apt_opts=(-q)
# apt drops to the _apt user for downloads; it cannot enter our private dir.
((EUID == 0)) && apt_opts+=(-o APT::Sandbox::User=root)
(cd "$tmp/debs" && kapt apt-get "${apt_opts[@]}" download "$kpkg=$kver" >&2 &&
	apt-get "${apt_opts[@]}" download "busybox-static=$bbver" >&2) ||
	die "apt-get download of $kpkg $kver${ksuite:+ ($ksuite)} and busybox-static $bbver failed"
mapfile -t qlibs < <(qga_packages)
say "downloading qemu-guest-agent $qgaver and its libraries (${qlibs[*]})"
mkdir "$tmp/qdebs"
(cd "$tmp/qdebs" && apt-get "${apt_opts[@]}" download "qemu-guest-agent=$qgaver" "${qlibs[@]}" >&2) ||
	die "apt-get download of qemu-guest-agent $qgaver and ${qlibs[*]} failed"

say "unpacking"
dpkg-deb -x "$tmp"/debs/linux-image-*.deb "$tmp/kernel"
dpkg-deb -x "$tmp"/debs/busybox-static_*.deb "$tmp/busybox"
for d in "$tmp"/qdebs/*.deb; do
	dpkg-deb -x "$d" "$tmp/qga"
done
# Debian 13's kernel package is merged-/usr (usr/lib/modules); depmod -b
# and the rest of this script read lib/modules.
if [[ ! -d $tmp/kernel/lib/modules && -d $tmp/kernel/usr/lib/modules ]]; then
	mkdir -p "$tmp/kernel/lib"
	mv "$tmp/kernel/usr/lib/modules" "$tmp/kernel/lib/modules"
fi
release=$(basename "$(ls -d "$tmp"/kernel/lib/modules/*/ | head -n1)")
kroot=$tmp/kernel
moddir=$kroot/lib/modules/$release
vmlinuz=$kroot/boot/vmlinuz-$release
bb=$tmp/busybox/bin/busybox
[[ -f $vmlinuz ]] || die "$kpkg has no /boot/vmlinuz-$release"
[[ -x $bb ]] || die "busybox-static has no /bin/busybox"

mkdir "$tmp/out"
cp "$vmlinuz" "$tmp/out/vmlinuz"

# Like the kernel's scripts/extract-vmlinux: the bzImage carries the
# compressed ELF after its setup code; find the compressor's magic, inflate
# from there and keep the first result that is an ELF file.
extract_vmlinux() {
	local img=$1 dst=$2 magic cmd off
	local -A tools=(['\xfd7zXZ\x00']='xz -dc' ['\x1f\x8b\x08']='gzip -dc' ['\x28\xb5\x2f\xfd']='zstd -dcq')
	for magic in '\xfd7zXZ\x00' '\x1f\x8b\x08' '\x28\xb5\x2f\xfd'; do
		cmd=${tools[$magic]}
		command -v "${cmd%% *}" >/dev/null || continue
		for off in $(LC_ALL=C grep -obUaP "$magic" "$img" | cut -d: -f1); do
			# Trailing bytes after the stream make the tool fail; the data is whole.
			tail -c "+$((off + 1))" "$img" | $cmd >"$dst" 2>/dev/null || true
			if [[ $(head -c4 "$dst" | od -An -c | tr -d ' \n') == '177ELF' ]]; then
				return 0
			fi
		done
	done
	return 1
}
say "extracting vmlinux from vmlinuz"
extract_vmlinux "$vmlinuz" "$tmp/out/vmlinux" ||
	die "found no compressed ELF kernel inside $kpkg's vmlinuz"

# The package ships no modules.dep (depmod runs at install time); the static
# busybox from the other package computes it without touching the host.
say "resolving modules for $release"
"$bb" depmod -b "$kroot" "$release" || die "depmod for $release failed"

# name|required: drivers the tests need, then ones later tests may use.
wanted=(
	virtio:1 virtio_ring:1 virtio_pci:1 virtio_pci_modern_dev:0 virtio_pci_legacy_dev:0
	virtio_blk:1 virtio_net:1 net_failover:0 failover:0 virtio_console:1
	virtio_rng:0 virtio_balloon:0 virtio_scsi:0 sd_mod:0 virtio_input:0
	vmw_vsock_virtio_transport:0
	9pnet:0 9pnet_virtio:0 netfs:0 9p:0 fuse:0 virtiofs:0
	button:1 evdev:1 tpm:0 tpm_tis_core:0 tpm_tis:0 tpm_crb:0 efivarfs:0
	virtio_gpu:0 ext4:0 crc32c_generic:0
	virtio_snd:0 pvpanic_mmio:0
)
modname() { # kernel/drivers/virtio/virtio-pci.ko.xz -> virtio_pci
	local n=${1##*/}
	n=${n%%.ko*}
	printf '%s' "${n//-/_}"
}
declare -A path_of deps_of builtin visited
while IFS= read -r line; do
	m=${line%%:*}
	n=$(modname "$m")
	path_of[$n]=$m
	deps_of[$n]=${line#*:}
done <"$moddir/modules.dep"
while IFS= read -r m; do
	builtin[$(modname "$m")]=1
done <"$moddir/modules.builtin"

order=()
visit() { # depth first: dependencies land in $order before their users
	local n=$1 d
	[[ -n ${visited[$n]:-} ]] && return 0
	visited[$n]=1
	for d in ${deps_of[$n]}; do
		visit "$(modname "$d")"
	done
	order+=("${path_of[$n]}")
}
for w in "${wanted[@]}"; do
	n=${w%:*}
	if [[ -n ${path_of[$n]:-} ]]; then
		visit "$n"
	elif [[ -n ${builtin[$n]:-} ]]; then
		say "  $n: built into the kernel"
	elif [[ ${w#*:} == 1 ]]; then
		die "required module $n is neither a module nor built into $release"
	else
		say "  $n: not in $release, skipped"
	fi
done

say "assembling initramfs (${#order[@]} modules)"
root=$tmp/root xroot=$tmp/extras
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/acpi/PWRF,proc,sys,dev,run,tmp,root,var/log,var/run,lib/modules}
mkdir -p "$xroot"/{sbin,usr/sbin,lib/modules}
: >"$root/lib/modules/load.list"
: >"$xroot/lib/modules/extras.list"
# Modules only phyllome.ext4 loads go into extras.img and are named in its
# own extras.list, which tests/guest/init reads only for phyllome.ext4;
# load.list names the modules every boot loads.
declare -A extra_mod=([ext4]=1 [jbd2]=1 [mbcache]=1 [crc16]=1 [crc32c_generic]=1)
for m in "${order[@]}"; do
	rel=${m#kernel/}
	mroot=$root list=$root/lib/modules/load.list
	[[ -n ${extra_mod[$(modname "$m")]:-} ]] && mroot=$xroot list=$xroot/lib/modules/extras.list
	case $rel in
	*.ko.xz) dst=${rel%.xz} dec=(xz -dc) ;;
	*.ko.zst) dst=${rel%.zst} dec=(zstd -dcq) ;;
	*.ko.gz) dst=${rel%.gz} dec=(gzip -dc) ;;
	*) dst=$rel dec=(cat) ;;
	esac
	mkdir -p "$mroot/lib/modules/$(dirname "$dst")"
	"${dec[@]}" "$moddir/$m" >"$mroot/lib/modules/$dst"
	printf '%s\n' "$dst" >>"$list"
done
# A module every boot loads must not need one that only extras.img carries.
for m in "${order[@]}"; do
	[[ -n ${extra_mod[$(modname "$m")]:-} ]] && continue
	for d in ${deps_of[$(modname "$m")]}; do
		[[ -z ${extra_mod[$(modname "$d")]:-} ]] ||
			die "$(modname "$m") needs $(modname "$d"), which only extras.img carries"
	done
done

install -m 0755 "$bb" "$root/bin/busybox"
while IFS= read -r applet; do
	[[ -e $root/$applet || -L $root/$applet ]] && continue
	ln -s /bin/busybox "$root/$applet"
done < <("$bb" --list-full | grep -v '^linuxrc$')
install -m 0755 "$here/init" "$root/init"
install -m 0755 "$here"/bin/* "$root/usr/bin/"
# Busybox acpid turns the power button (KEY_POWER on /dev/input/event*) into
# the action "PWRF/00000080" and runs that file below its config dir.
cat >"$root/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
# The shell's prompt may be mid-line; the marker starts a line.
printf '\nPHYLLOME-GUEST-POWEROFF\n' >/dev/console
sync
poweroff -f
EOF
chmod 0755 "$root/etc/acpi/PWRF/00000080"
# udhcpc's hook (phyllome.net): the address only, no route and no DNS.
cat >"$root/etc/udhcpc.script" <<'EOF'
#!/bin/sh
case $1 in
bound | renew) ip addr add "$ip/${mask:-24}" dev "$interface" 2>/dev/null ;;
esac
exit 0
EOF
chmod 0755 "$root/etc/udhcpc.script"

# qemu-ga (phyllome.qga) with every library in its NEEDED closure, found by
# soname in the unpacked packages, and the dynamic loader it names.
qroot=$tmp/qga
qlibdirs=("$qroot"/lib/x86_64-linux-gnu "$qroot"/usr/lib/x86_64-linux-gnu "$qroot"/lib "$qroot"/usr/lib)
[[ -x $qroot/usr/sbin/qemu-ga ]] || die "qemu-guest-agent has no /usr/sbin/qemu-ga"
interp=$(readelf -lW "$qroot/usr/sbin/qemu-ga" | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]/\1/p')
[[ $interp == /* && -e $qroot$interp ]] || die "the loader '$interp' of qemu-ga is not in libc6"
install -D -m 0755 "$qroot/usr/sbin/qemu-ga" "$xroot/usr/sbin/qemu-ga"
install -D -m 0755 "$(readlink -f "$qroot$interp")" "$xroot$interp"
mkdir -p "$xroot/lib/x86_64-linux-gnu"
declare -A have_so=(["${interp##*/}"]=1)
queue=("$qroot/usr/sbin/qemu-ga")
while ((${#queue[@]})); do
	f=${queue[0]}
	queue=("${queue[@]:1}")
	for so in $(readelf -dW "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		[[ -n ${have_so[$so]:-} ]] && continue
		have_so[$so]=1
		src=
		for d in "${qlibdirs[@]}"; do
			[[ -e $d/$so ]] && { src=$(readlink -f "$d/$so"); break; }
		done
		[[ -n $src ]] || die "no package of ${qlibs[*]} has $so, which $(basename "$f") needs"
		install -m 0755 "$src" "$xroot/lib/x86_64-linux-gnu/$so"
		queue+=("$src")
	done
done
# qemu-ga's guest-shutdown runs "/sbin/shutdown -h -P|-H|-r +0 MESSAGE" and
# answers an error unless it exits 0; busybox has no shutdown.
[[ -e $root/sbin/shutdown ]] && die "busybox now has a shutdown applet; extras.img would replace it"
cat >"$xroot/sbin/shutdown" <<'EOF'
#!/bin/sh
case " $* " in
*" -r "*) action=reboot ;;
*" -H "*) action=halt ;;
*) action=poweroff ;;
esac
printf '\nPHYLLOME-GUEST-AGENT-SHUTDOWN %s\n' "$action" >/dev/console
sync
# Like systemd's shutdown: the request is taken, the power goes off after.
"$action" -f </dev/null >/dev/null 2>&1 &
exit 0
EOF
chmod 0755 "$xroot/sbin/shutdown"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"

# Uncompressed: under TCG inflating a gzip initramfs costs more boot time
# than QEMU loading a few more MiB.
# Fixed timestamps: the same inputs give the same bytes.
pack() {
	find "$1" -exec touch -h -d @0 {} +
	(cd "$1" && find . -print0 | LC_ALL=C sort -z |
		cpio --null -o -H newc --owner=0:0 --reproducible --quiet) >"$2"
}
pack "$root" "$tmp/out/initrd.img"
pack "$xroot" "$tmp/out/extras.img"

cat >"$tmp/out/stamp" <<EOF
inputs=$inputs
kernel_package=$kpkg
kernel_suite=$ksuite
kernel_version=$kver
kernel_release=$release
busybox_version=$bbver
qemu_guest_agent_version=$qgaver
modules=$(printf '%s\n' "${order[@]}" | xargs -n1 basename | tr '\n' ' ')
EOF

# Swap the whole directory so readers never mix a kernel with another
# kernel's modules (checked above that it is ours).
if [[ -e $out ]]; then
	mv "$out" "$tmp/old"
fi
mv "$tmp/out" "$out"
say "built $release ($kver): vmlinux $(du -h "$out/vmlinux" | cut -f1), initrd.img $(du -h "$out/initrd.img" | cut -f1), extras.img $(du -h "$out/extras.img" | cut -f1)"
report

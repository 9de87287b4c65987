#!/usr/bin/env bash
# Installs the Debian 12 packages Phyllome builds with, runs with and tests
# with, when any is missing.  Needs root (or sudo) only when something is missing.
set -euo pipefail

pkgs=(
  # build
  gcc meson ninja-build pkg-config libjson-c-dev
  # phyllod: the local API (HTTP on a unix socket); tests talk to it with curl
  libmicrohttpd-dev curl
  # bundles (phyllo export/import): tar+zstd and sha256.  Opened on first use
  # (src/common/lazylib.c), so the binaries do not name them: the run-time
  # packages are listed as well as the headers
  libarchive-dev nettle-dev libarchive13 libnettle8
  # run: the real QEMU, firmware, TPM emulator, disk tool
  qemu-system-x86 qemu-utils ovmf swtpm swtpm-tools
  # 3D (virtio-vga-gl / virtio-gpu-gl, --gpu virgl), the gtk and sdl displays,
  # and PulseAudio sound: QEMU's modules in qemu-system-gui, which
  # qemu-system-x86 only recommends (a fresh machine lacked them: issue 11)
  qemu-system-gui
  # phyllo view: remote-viewer, the SPICE client
  virt-viewer
  # user networking without slirp's limits (port forwards, no root); virtiofsd ships in qemu-system-common
  passt
  # host check: PCI names
  pci.ids
  # tests: the tiny guest is built from Debian packages; jq reads --json output
  busybox-static cpio xz-utils zstd jq
  # tests: the integration tests time boots and stops with bc (a debootstrapped root lacked it: fresh-check)
  bc
  # tests: readelf finds the libraries qemu-ga (test guest extras.img) loads; gcc brings it too
  binutils
  # 3D test (display-virgl.sh, ~6 s): virgl on SDL gl=on under Xvfb with Mesa's llvmpipe; bridge test: ip
  xvfb libgl1-mesa-dri libegl1 libgl1 iproute2
  # tests: bundle-untrusted.sh crafts hostile bundles (GNU tar --sparse, python3), and the API/agent tests' helpers
  tar python3
  # scripts/fresh-check: a clean Debian 12 root to run the README in
  debootstrap
  # the OS catalog (issue 15, docs/catalog.md): OS facts and media detection
  # from osinfo-db through libosinfo; downloads with libcurl (resume, proxies)
  libosinfo-1.0-dev osinfo-db libcurl4-openssl-dev
  # the catalog: the vendors' signatures checked with gpgv
  gpgv
  # catalog tests: a throwaway signing key (gpg), fixture ISOs with a volume
  # id (xorriso), the loopback HTTP server with Range support (python3)
  gnupg xorriso python3
  # the desktop app phyllome (issue 14, docs/app.md; meson -Dapp=disabled
  # builds without it): GTK 3, libhandy, the SPICE display widget, VTE for
  # the serial console, the .desktop/metainfo checks
  libgtk-3-dev libhandy-1-dev libspice-client-gtk-3.0-dev libvte-2.91-dev desktop-file-utils appstream
  # the app's tests (tests/app): AT-SPI on a private D-Bus session, Python's
  # GObject bindings with the Atspi and Gdk typelibs (screenshots of Xvfb)
  dbus at-spi2-core python3-gi python3-pyatspi gir1.2-atspi-2.0 gir1.2-gtk-3.0
  # unattended installs: the answer CD and the media's kernel and initrd
  # (xorriso, above); tests: xmllint checks autounattend.xml, and Debian's
  # real netboot installer (unattend-debian.sh, suite slow)
  libxml2-utils debian-installer-12-netboot-amd64
  # unattended installs: a preseed's passwords as SHA-512 crypt hashes (crypt_r)
  libcrypt-dev
  # moving VMs in and out (issue 17, docs/interop.md): libvirt domain XML and OVF
  # descriptors (libxml2 is opened on first use, like libarchive)
  libxml2-dev libxml2
  # interop tests: virt-install --print-xml, a session libvirtd (virsh, virt-xml-validate), QEMU's libvirt driver
  virtinst libvirt-clients libvirt-daemon libvirt-daemon-driver-qemu
  # interop tests: a bootable disk for the OVA (syslinux on a FAT image made with dosfstools and mtools)
  syslinux syslinux-common mtools dosfstools
  # proof (issue 8): libFuzzer/ASan runtimes with clang, valgrind memcheck
  clang libclang-rt-14-dev valgrind
  # Phyllome OS image (issue 16, scripts/build-image, docs/image.md): mkosi 14
  # (debootstrap, systemd-nspawn) makes the root tree; mtools + dosfstools the
  # ESP, e2fsprogs the root (mkfs.ext4 -d), systemd-repart (in systemd) the
  # disk; fdisk's partx (util-linux) finds the ESP in tests/image
  mkosi systemd-container mtools dosfstools e2fsprogs util-linux
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "phyllome: installing ${missing[*]}" >&2
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=900 update -q
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"

#!/bin/sh
# SPDX-License-Identifier: MIT
#
# build-initramfs.sh — Debian's own kernel and a busybox initramfs for the DAX guest.
#
#   DAXVM_WORK=DIR tests/dax-vm/build-initramfs.sh
#
# Writes DIR/vmlinuz and DIR/initrd.gz and prints nothing else on stdout. The kernel
# package is resolved from `apt-cache depends linux-image-amd64` (its name changes with
# Debian's ABI bumps), fetched with `apt-get download` into DIR/dl (kept, 70 MB) and
# unpacked into DIR/kroot for the time of the build. The initramfs holds busybox-static
# as /init's shell, the guest's /init, and only the modules the guest loads (pmem, nvdimm,
# ext4, 9p over virtio) with their dependencies as `modprobe --show-depends` lists them. Both outputs are cached: a rerun with the same
# kernel, the same /init and the same script does nothing.
#
# Exit status: 0 built (or cached), 77 a prerequisite is missing (no busybox-static, cpio,
# or the kernel package cannot be downloaded; the reason goes to DIR/skip.reason), 1
# anything else.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
W=${DAXVM_WORK:-build/dax-vm}
mkdir -p "$W"
W=$(cd "$W" && pwd)

# skip WHY: a prerequisite is missing; run.sh prints WHY from DIR/skip.reason.
skip() {
	echo "$*" >"$W/skip.reason"
	exit 77
}
rm -f "$W/skip.reason"

# The guest's modules, by name; modprobe adds what each depends on.
#   nd_e820          the legacy e820 pmem region (memmap=SIZE!OFFSET) -> ndbus, region
#   nfit             ACPI NFIT: QEMU's -device nvdimm -> ndbus, region
#   nd_pmem          the pmem block driver: /dev/pmemN, with struct pages, so fsdax works
#   dax_pmem         /dev/daxN.M for a devdax namespace (not used yet; cheap to have)
#   ext4             the filesystem mounted with -o dax (pulls jbd2, mbcache, crc16, crc32c)
#   virtio_pci 9pnet_virtio 9p    the host share with the test binaries and the script
MODULES="nd_e820 nfit nd_pmem dax_pmem ext4 crc32c_intel virtio_pci 9pnet_virtio 9p"

command -v busybox >/dev/null 2>&1 || [ -x /bin/busybox ] ||
	skip "busybox is missing (apt-get install busybox-static)"
BUSYBOX=$(command -v busybox 2>/dev/null || echo /bin/busybox)
# A dynamically linked busybox (Debian's 'busybox' package) would need its libraries.
if ldd "$BUSYBOX" >/dev/null 2>&1; then
	skip "$BUSYBOX is not statically linked (apt-get install busybox-static)"
fi
command -v cpio >/dev/null 2>&1 || skip "cpio is missing (apt-get install cpio)"
command -v depmod >/dev/null 2>&1 || command -v /sbin/depmod >/dev/null 2>&1 ||
	skip "depmod is missing (apt-get install kmod)"
PATH=$PATH:/sbin:/usr/sbin

# Resolve the kernel package: linux-image-amd64 depends on exactly one linux-image-X.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
	sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1)
[ -n "$pkg" ] || skip "cannot resolve linux-image-amd64 (run apt-get update?)"
kver=${pkg#linux-image-}

# The cache key: the kernel, the guest's /init, the module list and this script.
key=$(cat "$here/init" "$0" | cksum | cut -d' ' -f1)-$kver
if [ -f "$W/initrd.gz" ] && [ -f "$W/vmlinuz" ] && [ "$(cat "$W/initrd.key" 2>/dev/null)" = "$key" ]
then
	exit 0
fi

# Fetch and unpack the kernel package (kept: a changed /init needs no new download).
mkdir -p "$W/dl"
deb=$(ls "$W/dl/${pkg}_"*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
	echo "dax-vm: downloading $pkg" >&2
	# apt-get download writes to the current directory.
	(cd "$W/dl" && apt-get download -q "$pkg" >&2) ||
		skip "cannot download $pkg (no network or no apt sources?)"
	deb=$(ls "$W/dl/${pkg}_"*.deb | head -n 1)
fi
# Unpacked only while the initramfs is built (400 MB; 3 s to unpack again).
rm -rf "$W/kroot"
dpkg-deb -x "$deb" "$W/kroot"
depmod -b "$W/kroot" "$kver"
cp "$W/kroot/boot/vmlinuz-$kver" "$W/vmlinuz"

# The initramfs tree.
R=$W/initramfs
rm -rf "$R"
mkdir -p "$R/bin" "$R/sbin" "$R/dev" "$R/proc" "$R/sys" "$R/tmp" "$R/mnt" "$R/host" \
	"$R/lib/modules/$kver"
cp "$BUSYBOX" "$R/bin/busybox"
# One link per applet; `busybox --list` includes busybox itself, and a link onto itself
# would make /bin/busybox a loop (the kernel then panics: "No working init found").
for applet in $("$R/bin/busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$R/bin/$applet"
done
cp "$here/init" "$R/init"
chmod 755 "$R/init"

# Modules with their dependencies, at the paths modules.dep names.
for m in $MODULES; do
	modprobe -d "$W/kroot" -S "$kver" --show-depends "$m" |
		sed -n 's/^insmod \([^ ]*\).*/\1/p'
done | sort -u | while read -r ko; do
	rel=${ko#"$W/kroot"}
	mkdir -p "$R$(dirname "$rel")"
	cp "$ko" "$R$rel"
done
for f in modules.order modules.builtin modules.builtin.modinfo; do
	if [ -f "$W/kroot/lib/modules/$kver/$f" ]; then
		cp "$W/kroot/lib/modules/$kver/$f" "$R/lib/modules/$kver/"
	fi
done
# modules.dep for exactly the modules copied (busybox modprobe reads kmod's format).
depmod -b "$R" "$kver"

(cd "$R" && find . | cpio -o -H newc --quiet) | gzip -1 >"$W/initrd.gz.tmp"
mv "$W/initrd.gz.tmp" "$W/initrd.gz"
rm -rf "$W/kroot" "$R"
echo "$key" >"$W/initrd.key"
echo "dax-vm: built $W/initrd.gz ($(du -k "$W/initrd.gz" | cut -f1) KiB, kernel $kver)" >&2

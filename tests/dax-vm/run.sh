#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run.sh — snstore on a real DAX filesystem, in a QEMU guest (`make test-dax-vm`).
#
#   tests/dax-vm/run.sh [BUILD]        BUILD: the CMake build directory (default build)
#
# Boots Debian's own kernel under qemu-system-x86_64 (TCG: no KVM needed) from a busybox
# initramfs (build-initramfs.sh), with an emulated NVDIMM whose memory is a sparse file of
# the work directory. The guest (guest.sh) makes it an fsdax namespace, puts ext4 on it,
# mounts it with -o dax, proves that MAP_SYNC works there (and is refused without dax),
# and runs snstore's tests from BUILD on ENGINE:/mnt/... . Its last step writes keys with
# durable puts and powers off without sync or unmount; a second boot on the same NVDIMM
# file checks that every key survived.
#
# Environment (all optional):
#   DAXVM_WORK      scratch and cache directory (default BUILD/dax-vm): the kernel package,
#                   the unpacked kernel, initramfs, NVDIMM file, share and guest logs
#   DAXVM_ENGINE    engine to test (default: dax when BUILD's snstore has it, else mmap)
#   DAXVM_PMEM      nvdimm (default: QEMU -device nvdimm, ACPI NFIT, file-backed, survives
#                   the power cut) or memmap (a legacy e820 pmem range, memmap=256M!1G:
#                   guest RAM, so no second boot)
#   DAXVM_TIMEOUT   seconds for both boots together (default 420: about 100 s on an idle
#                   2-vCPU host, 275 s measured on one with a load average of 16)
#   DAXVM_SMP       guest CPUs (default 2)
#   DAXVM_CRASH_POINTS, DAXVM_KILL_ITERS   size of test_kv_crash and test_kv_kill (100, 0:
#                                          test_kv_kill flakes under TCG, see guest.sh)
#   DAXVM_KILL9_ITERS                      kill -9 of kvbench on ENGINE (6)
#   DAXVM_POWERCUT_KEYS                    durable puts before the power cut (20)
#   DAXVM_SKIP_RC   exit status of a skip (default 0; CTest's entry sets 77)
#
# Exit status: 0 all passed, or skipped ("SKIP: why": no qemu, no kernel package);
# 1 a check failed, the guest did not finish in time, or the setup broke.
set -u

here=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
W=${DAXVM_WORK:-$BUILD/dax-vm}
TIMEOUT=${DAXVM_TIMEOUT:-420}
PMEM=${DAXVM_PMEM:-nvdimm}
SMP=${DAXVM_SMP:-2}
start=$(date +%s)

skip() {
	echo "SKIP: $*"
	exit "${DAXVM_SKIP_RC:-0}"
}
die() {
	echo "dax-vm: FAIL: $*"
	exit 1
}

command -v qemu-system-x86_64 >/dev/null 2>&1 ||
	skip "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
[ -x "$BUILD/snstore" ] && [ -x "$BUILD/tests/test_dev_conformance" ] ||
	die "no snstore build in $BUILD (run make build first)"
case $PMEM in nvdimm | memmap) ;; *) die "DAXVM_PMEM must be nvdimm or memmap" ;; esac

mkdir -p "$W" || die "cannot create $W"
W=$(cd "$W" && pwd)
# QEMU splits its options at commas.
case $W in *,*) die "the work directory $W must not contain a comma" ;; esac

# ---- kernel and initramfs (cached) ----
DAXVM_WORK=$W sh "$here/build-initramfs.sh"
rc=$?
[ $rc = 77 ] && skip "$(cat "$W/skip.reason" 2>/dev/null || echo "cannot build the guest")"
[ $rc = 0 ] || die "build-initramfs.sh failed (exit $rc)"

# ---- the engine ----
if [ -z "${DAXVM_ENGINE:-}" ]; then
	if "$BUILD/snstore" probe --engines | grep -q '^  dax '; then
		DAXVM_ENGINE=dax
	else
		DAXVM_ENGINE=mmap
		note="dax-vm: NOTE: $BUILD/snstore has no dax engine; testing mmap: on the DAX mount"
		echo "$note"
	fi
fi

# ---- the share: binaries, their libraries, the guest script ----
# Rebuilt on every run (a few MB): the binaries come from BUILD as it is now.
S=$W/share
rm -rf "$S"
mkdir -p "$S/bin" "$S/lib" "$S/etc" || die "cannot create $S"
bins="$BUILD/snstore"
for t in test_dev_conformance test_kv test_kv_medium test_kv_crash test_kv_kill; do
	bins="$bins $BUILD/tests/$t"
done
mke2fs=$(command -v mke2fs || echo /sbin/mke2fs)
[ -x "$mke2fs" ] || skip "mke2fs is not installed (apt-get install e2fsprogs)"
for b in $bins "$mke2fs"; do
	[ -x "$b" ] || die "missing $b"
	cp "$b" "$S/bin/" || die "cannot copy $b"
	# The libraries ldd resolves (lines "name => /path (addr)") and the loader ("/path (addr)").
	for lib in $(ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
	do
		cp -L "$lib" "$S/lib/" || die "cannot copy $lib"
	done
done
[ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$S/etc/"
cc -static -O2 -o "$S/bin/mapsync_probe" "$here/mapsync_probe.c" ||
	die "cannot build mapsync_probe (a static C program: needs libc6-dev)"
cp "$here/guest.sh" "$S/guest.sh"

powercut=0
[ "$PMEM" = nvdimm ] && powercut=1
cat >"$S/config.sh" <<EOF
DAXVM_ENGINE=$DAXVM_ENGINE
DAXVM_PMEM=$PMEM
DAXVM_POWERCUT=$powercut
DAXVM_POWERCUT_KEYS=${DAXVM_POWERCUT_KEYS:-20}
DAXVM_CRASH_POINTS=${DAXVM_CRASH_POINTS:-100}
DAXVM_KILL_ITERS=${DAXVM_KILL_ITERS:-0}
DAXVM_KILL9_ITERS=${DAXVM_KILL9_ITERS:-6}
EOF

# ---- the pmem ----
if [ "$PMEM" = nvdimm ]; then
	# A fresh, sparse 256 MiB NVDIMM: the guest makes its namespace fsdax and formats it.
	rm -f "$W/nvdimm.img"
	truncate -s 256M "$W/nvdimm.img" || die "cannot create $W/nvdimm.img"
	set -- -M q35,nvdimm=on -m 1G,slots=2,maxmem=4G \
		-object memory-backend-file,id=mem1,share=on,mem-path="$W/nvdimm.img",size=256M \
		-device nvdimm,memdev=mem1,id=nv1
	extra=
else
	# Guest RAM 1.5 GiB, of which [1 GiB, 1.25 GiB) becomes pmem: the range must be RAM,
	# or the "pmem" reads back 0xff.
	set -- -M q35 -m 1536
	extra="memmap=256M!1G"
fi

# boot PHASE: one guest run; its console goes to the terminal and to guest-PHASE.log.
boot() {
	phase=$1
	shift
	echo "DAXVM_PHASE=$phase" >"$S/phase.sh"
	left=$((TIMEOUT - ($(date +%s) - start)))
	[ $left -gt 10 ] || return 124
	echo "dax-vm: boot $phase ($PMEM, engine $DAXVM_ENGINE, ${left}s left)"
	# TCG with one thread per vCPU; -cpu max offers clwb/clflushopt to the guest.
	timeout -k 5 "$left" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp "$SMP" \
		"$@" -kernel "$W/vmlinuz" -initrd "$W/initrd.gz" \
		-append "console=ttyS0 quiet panic=-1 $extra daxvm.run=/host/guest.sh" \
		-display none -serial stdio -monitor none -no-reboot \
		-virtfs local,path="$S",mount_tag=host,security_model=none,id=host \
		</dev/null >"$W/guest-$phase.log" 2>&1 &
	qpid=$!
	# A background job of a script ignores SIGINT: stop QEMU (through timeout) by hand.
	trap 'kill $qpid 2>/dev/null; exit 130' INT TERM
	# Show the console as it comes; tail ends with QEMU.
	tail -n +1 -f --pid=$qpid "$W/guest-$phase.log"
	wait $qpid
}
rm -f "$W"/guest-*.log
verdict=PASS
boot 1 "$@"
rc=$?
[ $rc = 124 ] && { echo "dax-vm: boot 1 timed out (DAXVM_TIMEOUT=$TIMEOUT)"; verdict=FAIL; }
grep -q '^DAXVM: RESULT PASS' "$W/guest-1.log" || verdict=FAIL
if [ $verdict = PASS ] && [ $powercut = 1 ]; then
	if grep -q '^DAXVM: POWERCUT' "$W/guest-1.log"; then
		boot 2 "$@"
		rc=$?
		[ $rc = 124 ] && { echo "dax-vm: boot 2 timed out"; verdict=FAIL; }
		grep -q '^DAXVM: RESULT PASS' "$W/guest-2.log" || verdict=FAIL
	else
		echo "dax-vm: boot 1 did not cut the power"
		verdict=FAIL
	fi
fi

echo
echo "==== dax-vm summary ($(($(date +%s) - start)) s; logs in $W/guest-*.log) ===="
[ -n "${note:-}" ] && echo "$note"
cat "$W"/guest-*.log | grep -a -E '^DAXVM: (PASS|FAIL|RESULT|pmem0|[0-9]+ durable)' |
	tr -d '\r'
echo "dax-vm: $verdict"
# The NVDIMM's contents matter only for a post-mortem (up to 256 MiB): kept after a failure.
[ $verdict = PASS ] && rm -f "$W/nvdimm.img"
[ $verdict = PASS ]

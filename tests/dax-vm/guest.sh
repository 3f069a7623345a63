#!/bin/sh
# SPDX-License-Identifier: MIT
#
# guest.sh — runs inside the DAX guest (busybox ash), from the host share on /host.
# /host/config.sh says which engine to test (DAXVM_ENGINE: dax, or mmap while the build
# has no dax engine), how the pmem came to be (DAXVM_PMEM: nvdimm or memmap) and which boot
# this is (DAXVM_PHASE, in /host/phase.sh):
#
#   phase 1  turn /dev/pmem0 into an fsdax namespace (nvdimm: through sysfs, as ndctl
#            would), mkfs.ext4, prove MAP_SYNC fails without dax and works with -o dax, then
#            run the device conformance suite, the KV tests, a CLI round trip and kvbench on
#            ENGINE:/mnt/...; last, write keys with durable puts and cut the power
#            (poweroff without sync or unmount) when DAXVM_POWERCUT=1.
#   phase 2  the next boot on the same NVDIMM backing file: mount (ext4 replays its
#            journal), reopen the store and check that every acknowledged key is there.
#
# Each check prints "DAXVM: PASS name" or "DAXVM: FAIL name (why)"; the last line is
# "DAXVM: RESULT PASS|FAIL (passed P, failed F)", which run.sh on the host looks for.
. /host/config.sh
. /host/phase.sh

# The binaries are the host's, dynamically linked: their libraries (and loader) come from
# the share too. Copied to RAM first: every page fault of a binary run from 9p (no cache)
# would be a round trip to the host, which makes each process start take seconds.
mkdir -p /opt /lib64
cp -r /host/bin /host/lib /opt/
B=/opt/bin
export PATH=$PATH:$B
export LD_LIBRARY_PATH=/opt/lib
ln -sf /opt/lib/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2
export MKE2FS_CONFIG=/host/etc/mke2fs.conf

pass=0
fail=0
# check NAME CMD...: runs CMD with its output on the console and records the outcome.
check() {
	name=$1
	shift
	echo "DAXVM: ---- $name: $*"
	t0=$(date +%s)
	"$@"
	rc=$?
	dt=$(($(date +%s) - t0))
	if [ $rc = 0 ]; then
		pass=$((pass + 1))
		echo "DAXVM: PASS $name (${dt}s)"
	else
		fail=$((fail + 1))
		echo "DAXVM: FAIL $name (exit $rc, ${dt}s)"
	fi
	return $rc
}
result() {
	[ $fail = 0 ] && r=PASS || r=FAIL
	echo "DAXVM: RESULT $r (phase $DAXVM_PHASE, engine $DAXVM_ENGINE, pmem $DAXVM_PMEM:" \
		"passed $pass, failed $fail)"
}
finish() {
	result
	exit $fail
}
# fatal WHY: a step that later steps depend on failed; report and stop.
fatal() {
	fail=$((fail + 1))
	echo "DAXVM: FAIL $*"
	finish
}

# ---- the pmem device ----

# nd_pmem probes asynchronously: wait a little for /dev/pmem0.
i=0
while [ ! -b /dev/pmem0 ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -b /dev/pmem0 ] || fatal "no /dev/pmem0 (nd bus: $(ls /sys/bus/nd/devices 2>&1))"

# A label-less NVDIMM comes up as a raw namespace, which has no struct pages and so no
# fsdax. Give it a pfn device, as `ndctl create-namespace -f -e namespace0.0 -m fsdax
# --map=mem` would: the pfn info block goes on the media, so the next boot finds fsdax.
NS=/sys/bus/nd/devices/namespace0.0
if [ "$(cat $NS/mode)" = raw ]; then
	seed=$(cat /sys/bus/nd/devices/region0/pfn_seed)
	P=/sys/bus/nd/devices/$seed
	echo namespace0.0 >/sys/bus/nd/drivers/nd_pmem/unbind &&
		cat /proc/sys/kernel/random/uuid >"$P/uuid" &&
		echo 4096 >"$P/align" &&
		echo ram >"$P/mode" &&
		echo namespace0.0 >"$P/namespace" &&
		echo "$seed" >/sys/bus/nd/drivers/nd_pmem/bind ||
		fatal "cannot make namespace0.0 fsdax through $P"
	i=0
	while [ ! -b /dev/pmem0 ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
fi
echo "DAXVM: pmem0: namespace mode $(cat $NS/mode), $(($(cat /sys/block/pmem0/size) / 2048)) MiB," \
	"queue/dax=$(cat /sys/block/pmem0/queue/dax)," \
	"cpu flushes:$(grep -o -w -E "clwb|clflushopt" /proc/cpuinfo | sort -u | tr '\n' ' ')"
[ "$(cat /sys/block/pmem0/queue/dax 2>/dev/null)" = 1 ] || fatal "pmem0 does not support DAX"

# ---- phase 2: after the power cut ----

if [ "$DAXVM_PHASE" = 2 ]; then
	check mount-dax mount -t ext4 -o dax /dev/pmem0 /mnt || finish
	grep ' /mnt ' /proc/mounts
	URI="$DAXVM_ENGINE:/mnt/powercut.kv"
	check powercut-recover snstore kv stat "$URI"
	missing=0
	n=1
	while [ $n -le "$DAXVM_POWERCUT_KEYS" ]; do
		v=$(snstore kv get "$URI" "key$n" 2>&1)
		[ "$v" = "value$n" ] || { missing=$((missing + 1)); echo "key$n: got '$v'"; }
		n=$((n + 1))
	done
	echo "DAXVM: $DAXVM_POWERCUT_KEYS durable puts before the power cut, $missing missing or wrong"
	check powercut-keys test "$missing" = 0
	check powercut-kv-check snstore kv check "$URI"
	umount /mnt
	finish
fi

# ---- phase 1: the filesystem, and proof that it is DAX ----

check mkfs.ext4 $B/mke2fs -q -F -t ext4 -b 4096 /dev/pmem0 || finish
# Without DAX, MAP_SYNC must be refused: the probe is not fooled by a filesystem that
# ignores the flag.
if check mount-nodax mount -t ext4 -o dax=never /dev/pmem0 /mnt; then
	check mapsync-refused-without-dax $B/mapsync_probe /mnt/probe no
	# The dax engine must refuse such a file (unless fallback=msync), not run without
	# MAP_SYNC: exit 1 and the engine's reason.
	if [ "$DAXVM_ENGINE" = dax ]; then
		check dax-refused-without-dax sh -c \
			"! snstore kv format 'dax:/mnt/nodax.kv?create=1&size=16m'"
	fi
	umount /mnt
fi
check mount-dax mount -t ext4 -o dax /dev/pmem0 /mnt || finish
grep ' /mnt ' /proc/mounts
check mapsync-works-with-dax $B/mapsync_probe /mnt/probe yes || finish
snstore probe /mnt

# ---- snstore on ENGINE:/mnt/... ----

E=$DAXVM_ENGINE
check "conformance.$E" test_dev_conformance "$E:/mnt/conformance.dat?create=1&size=64m" --scratch
if [ "$E" != mmap ]; then
	check conformance.mmap test_dev_conformance "mmap:/mnt/conformance.dat?create=1&size=64m" \
		--scratch
fi
check conformance.auto test_dev_conformance "auto:/mnt/conformance.dat?create=1&size=64m" --scratch
# PMDK's libpmem2, when this build has the pmem engine: on a DAX file it maps with
# MAP_SYNC and persists with cache flushes, not msync.
if snstore probe --engines | grep -q '^  pmem '; then
	check conformance.pmem test_dev_conformance "pmem:/mnt/conformance.dat?create=1&size=64m" \
		--scratch
fi
check "kv.$E" test_kv "$E:/mnt/kv.dat?create=1&size=64m"
check "kv_medium.$E" test_kv_medium "$E:/mnt/kv_medium.dat?create=1&size=64m"

# The CLI: every subcommand is a new process, so each one reopens (recovers) the store.
U="$E:/mnt/cli.kv?create=1&size=32m"
roundtrip() {
	snstore kv format "$U" --shards 2 --segment 1m &&
		snstore kv put "$U" hello world &&
		snstore kv put "$U" answer 42 &&
		snstore kv del "$U" answer &&
		[ "$(snstore kv get "$U" hello)" = world ] &&
		! snstore kv get "$U" answer 2>/dev/null &&
		snstore kv stat "$U" &&
		snstore kv check "$U"
}
check "cli-roundtrip.$E" roundtrip
rm -f /mnt/cli.kv
check "kvbench.$E" snstore kvbench --db "$E:/mnt/bench.kv?create=1&size=96m" --capacity 96m \
	--num 20000 --benchmarks fillrandom,readrandom,fillsync
rm -f /mnt/bench.kv

# kill -9 of a process writing durable puts on ENGINE, at a time that varies: recovery
# must succeed, every value read back (kv check), and a key written before stays. The
# crash tests below have the precise oracle, but take only psync or uring.
killtest() {
	U="$E:/mnt/kill.kv?create=1&size=64m"
	snstore kv format "$U" --shards 2 --segment 1m >/dev/null &&
		snstore kv put "$U" sentinel alive || return 1
	overwrites=$(awk 'BEGIN { for (i = 0; i < 60; i++) printf "%soverwrite", i ? "," : "" }')
	i=1
	landed=0
	while [ $i -le "$DAXVM_KILL9_ITERS" ]; do
		# 12000 keys overwritten 60 times, one durable put at a time: longer than the
		# kill's delay (a guest once did 80,000 such puts in under 3 s, and the open
		# loads an index checkpoint in much less than the second a log scan took),
		# while the store stays small enough to check quickly.
		snstore kvbench --db "$U" --num 12000 --sync 1 --depth 1 --seed $i \
			--benchmarks "$overwrites" >/tmp/kvbench.out 2>&1 &
		pid=$!
		# 1.0 to 3.9 s: the store opens after about a second under TCG.
		sleep "$((1 + i % 3)).$((i * 7 % 10))"
		kill -9 $pid 2>/dev/null
		wait $pid
		st=$?
		[ $st = 137 ] && landed=$((landed + 1))
		snstore kv check "$U" >/tmp/check.out 2>&1 || { cat /tmp/check.out; return 1; }
		echo "kill $i: exit $st; $(tail -n 1 /tmp/check.out)"
		[ "$(snstore kv get "$U" sentinel)" = alive ] || { echo "sentinel lost"; return 1; }
		i=$((i + 1))
	done
	rm -f /mnt/kill.kv
	echo "kill -9 landed during the run $landed of $DAXVM_KILL9_ITERS times"
	[ $((2 * landed)) -ge "$DAXVM_KILL9_ITERS" ]
}
check "kill9.$E" killtest

# The KV crash tests take only psync or uring as their engine (test_kv_crash.c,
# test_kv_kill.c); run short versions on the DAX filesystem, which exercises the store on
# ext4-dax's read/write path, not the dax engine.
check kv_crash.fault-psync-on-daxfs test_kv_crash /mnt fault psync --points "$DAXVM_CRASH_POINTS"
# Off by default (DAXVM_KILL_ITERS=0): test_kv_kill asserts that at least 2 in 5 of its
# iterations end in a kill (one that lands before the workload ends), and under TCG its
# first run (which sets the kill window) can be much slower than the rest: 7 of 23 kills
# landed once, with nothing lost.
if [ "$DAXVM_KILL_ITERS" -gt 0 ]; then
	check kv_kill.psync-on-daxfs test_kv_kill /mnt psync --iters "$DAXVM_KILL_ITERS"
fi

# ---- the power cut: durable puts, then power off without sync or unmount ----

if [ "$DAXVM_POWERCUT" = 1 ]; then
	U="$E:/mnt/powercut.kv?create=1&size=16m"
	powercut_puts() {
		snstore kv format "$U" --shards 2 --segment 1m >/dev/null || return 1
		n=1
		while [ "$n" -le "$DAXVM_POWERCUT_KEYS" ]; do
			snstore kv put "$U" "key$n" "value$n" || return 1
			n=$((n + 1))
		done
	}
	check "powercut-puts.$E" powercut_puts
	result
	if [ $fail = 0 ]; then
		echo "DAXVM: POWERCUT now: poweroff without sync or unmount"
		poweroff -f -n
		sleep 30
	fi
	exit $fail
fi
finish

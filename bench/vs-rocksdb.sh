#!/usr/bin/env bash
# vs-rocksdb.sh — snstore's KV store against Debian's RocksDB, LevelDB and LMDB on
# db_bench-shaped workloads (bench/kvref.c drives the three reference stores through
# their C APIs; `snstore kvbench` drives snstore; both print the same JSON). Every store
# runs the same workloads, RUNS times, interleaved, and the script prints the median
# ops/s per cell and the ratios snstore/reference. Run with --help for the details.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
	cat <<'EOF'
usage: bench/vs-rocksdb.sh [--help]

Compares snstore's KV store with RocksDB, LevelDB and LMDB (Debian 12's packages,
driven by bench/kvref.c through their C APIs) on db_bench-shaped workloads: 16-byte
decimal keys, 100-byte values, uniform random keys over [0, NUM).

  fillrandom   NUM puts of random keys into a fresh DB (~63% of the key space)
  readrandom   NUM gets of random keys on what fillrandom left (~63% found)
  fillseq      keys 0..NUM-1 in order into a fresh DB
  overwrite    NUM random puts onto the DB fillseq left
  fillsync     max(NUM/1000, 1000) random puts, each synced, by W writer threads
               (once per W in WRITERS): W=1 is the fsync latency, W=32 is group commit
  readwhilewriting  (not default) THREADS readers while one writer puts continuously

The non-fillsync benchmarks run in the order given, in one process per store and run
(later benchmarks see what earlier ones left, as in db_bench); each fillsync row is its
own process. Runs are interleaved (run 1: every store, run 2: every store, ...), the
store order rotating each run; databases are deleted and `sync` runs between processes
(untimed) so one store's writeback does not land in the next store's numbers.

Durability: the fillsync rows are equal on both sides; the SYNC=0 rows are not quite:
  SYNC=0 rows: "no fsync": RocksDB/LevelDB WriteOptions.sync=false with the WAL on
    (db_bench's default); LMDB MDB_NOSYNC with one transaction per put (its write(2) at
    commit reaches the page cache, like the WAL's). These survive a process crash but
    not a power loss. snstore --sync 0 acknowledges a put in its shard's write buffer
    (O_DIRECT, no page cache) and writes it out per MiB, per segment or at sync/close:
    neither kind of crash is covered until then (a SIGKILL can lose up to ~1 MiB per
    shard of acknowledged puts; a power loss the same, where the others lose what the
    OS had not written back).
  fillsync rows (and every row with SYNC=1): "fsync per write/group commit (power-loss
    safe)": RocksDB/LevelDB sync=true (concurrent writers share syncs: group commit);
    LMDB's default commit (fdatasync of data and meta page; one writer at a time);
    snstore --sync 1.

Memory: the data (1M x 116 B) fits in memory on every store: RocksDB and LevelDB get a
1 GiB block cache and 64 MiB write buffer, LMDB a large map; no store compresses
(snstore does not); RocksDB/LevelDB use 10-bit Bloom filters. `kvref --help` lists
every setting and where it departs from db_bench.

snstore runs as `$SNSTORE kvbench --db DIR/snstore.db --benchmarks LIST --num NUM
--threads T [--writers W] --sync S $SN_ARGS --json`. When `$SNSTORE kvbench --help`
fails (kvbench not built yet), only the reference stores are measured and the script
says so. Client concurrency: a kvref client makes one blocking call at a time (the
reference stores' APIs are blocking); kvbench's default clients keep up to --depth (1024)
asynchronous calls in flight. SN_ARGS="--foreign --depth 1" gives call-for-call parity
(a plain thread making blocking calls, as kvref's); "--depth 1" keeps the client on a
worker, one call at a time. The default shows snstore used as its API intends. fillsync
is depth 1 on both sides.

Environment:
  NUM=1000000        keys (and operations per benchmark)
  RUNS=3             runs per cell; the table shows medians
  BENCHMARKS=fillrandom,readrandom,fillseq,overwrite,fillsync
  WRITERS="1 32"     writer threads for each fillsync row
  THREADS=1          client threads for the other benchmarks (NUM split across them)
  SYNC=0             1: fsync every write in the non-fillsync benchmarks too
  STORES="rocksdb leveldb lmdb"   reference stores
  DIR                where databases go (default: a temporary directory under $BUILD,
                     removed at exit); only DIR/{rocksdb,leveldb,lmdb,snstore.db} are
                     created and removed
  BUILD=build        build directory: kvref is built as $BUILD/bench-kvref/kvref
  SNSTORE=$BUILD/snstore
  SN_ARGS=""         extra `snstore kvbench` flags, e.g. "--depth 1" or "--foreign --depth 1"

Installs librocksdb-dev libleveldb-dev liblmdb-dev gcc with apt-get when missing.
Exits non-zero when a run fails.
EOF
}

case "${1:-}" in
-h | --help)
	usage
	exit 0
	;;
"") ;;
*)
	echo "vs-rocksdb.sh: unknown argument '$1'" >&2
	usage >&2
	exit 2
	;;
esac

BUILD=${BUILD:-build}
SNSTORE=${SNSTORE:-$BUILD/snstore}
NUM=${NUM:-1000000}
RUNS=${RUNS:-3}
BENCHMARKS=${BENCHMARKS:-fillrandom,readrandom,fillseq,overwrite,fillsync}
WRITERS=${WRITERS:-"1 32"}
THREADS=${THREADS:-1}
SYNC=${SYNC:-0}
STORES=${STORES:-"rocksdb leveldb lmdb"}
SN_ARGS=${SN_ARGS:-}
for v in NUM RUNS THREADS; do
	case "${!v}" in
	'' | *[!0-9]* | 0*)
		echo "vs-rocksdb.sh: $v=${!v}: a positive integer" >&2
		exit 2
		;;
	esac
done
KVREF=$BUILD/bench-kvref/kvref
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
T0=$(date +%s)

# --- install and build ---------------------------------------------------------------
missing=""
for p in librocksdb-dev libleveldb-dev liblmdb-dev gcc python3; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "vs-rocksdb.sh: installing Debian packages:$missing" >&2
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi
mkdir -p "$BUILD/bench-kvref"
if [ ! -x "$KVREF" ] || [ bench/kvref.c -nt "$KVREF" ] || [ bench/kvgen.h -nt "$KVREF" ]; then
	echo "vs-rocksdb.sh: building $KVREF" >&2
	gcc -std=gnu11 -O2 -Wall -Wextra -o "$KVREF" bench/kvref.c \
		-lrocksdb -lleveldb -llmdb -lpthread
fi

have_sn=0
if "$SNSTORE" kvbench --help >/dev/null 2>&1; then
	have_sn=1
fi

# --- where the databases go -------------------------------------------------------------
if [ -z "${DIR:-}" ]; then
	DIR=$(mktemp -d "$BUILD/vs-rocksdb.XXXXXX")
	OWN_DIR=1
else
	mkdir -p "$DIR"
	OWN_DIR=0
fi
OUT=$(mktemp -d)
cleanup() {
	rm -rf "$OUT" "$DIR/rocksdb" "$DIR/leveldb" "$DIR/lmdb" "$DIR/snstore.db"
	[ "$OWN_DIR" = 1 ] && rm -rf "$DIR"
	return 0
}
trap cleanup EXIT
# Each store's DB is deleted before the next starts: one DB at a time on disk.
need_kb=$((NUM * 600 / 1024 + 65536))
avail_kb=$(df -Pk "$DIR" | awk 'NR == 2 { print $4 }')
if [ "$avail_kb" -lt "$need_kb" ]; then
	echo "vs-rocksdb.sh: $DIR has $((avail_kb / 1024)) MiB free, needs about $((need_kb / 1024)) MiB" >&2
	exit 1
fi

# --- the plan -----------------------------------------------------------------------------
seq_list=""
fillsync=0
IFS=',' read -r -a blist <<<"$BENCHMARKS"
for b in "${blist[@]}"; do
	case "$b" in
	fillsync) fillsync=1 ;;
	fillseq | fillrandom | overwrite | readrandom | readwhilewriting)
		seq_list="${seq_list:+$seq_list,}$b"
		;;
	*)
		echo "vs-rocksdb.sh: unknown benchmark '$b' in BENCHMARKS" >&2
		exit 2
		;;
	esac
done
read -r -a stores <<<"$STORES"
for s in "${stores[@]}"; do
	case "$s" in
	rocksdb | leveldb | lmdb) ;;
	*)
		echo "vs-rocksdb.sh: unknown store '$s' in STORES" >&2
		exit 2
		;;
	esac
done
[ "$have_sn" = 1 ] && stores+=(snstore)

versions="rocksdb $(dpkg-query -W -f='${Version}' librocksdb-dev), leveldb $(dpkg-query -W -f='${Version}' libleveldb-dev), lmdb $(dpkg-query -W -f='${Version}' liblmdb-dev)"
echo "vs-rocksdb.sh: $versions; $(nproc) CPUs, $(free -g | awk '/^Mem:/ { print $2 }') GiB," \
	"$(uname -r); DIR $DIR ($(df -PT "$DIR" | awk 'NR == 2 { print $2 }'))" >&2
echo "NUM=$NUM RUNS=$RUNS BENCHMARKS=$BENCHMARKS WRITERS=\"$WRITERS\" THREADS=$THREADS SYNC=$SYNC" >&2
if [ "$have_sn" = 1 ]; then
	echo "vs-rocksdb.sh: snstore: $SNSTORE kvbench ... ${SN_ARGS:-(no SN_ARGS)}" >&2
else
	echo "vs-rocksdb.sh: snstore kvbench is not built yet ($SNSTORE kvbench --help fails):" \
		"measuring the reference stores alone" >&2
fi

# CPU time the machine spent outside the benchmarked process while it ran (other
# users' builds and tests, kernel writeback): /proc/stat busy time minus the process's
# own user+system time. Summed over all runs and reported at the end. The benchmark's
# own writeback alone is about 10% of one CPU on a quiet 2-CPU VM; above 20% it warns.
HZ=$(getconf CLK_TCK)
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
other_cpu=0 run_wall=0
# run STORE TAG ARGS... -> $OUT/STORE-TAG.json; a failed run stops the script.
run() {
	local store=$1 tag=$2 rc=0 b0 TIMEFORMAT='%3R %3U %3S'
	shift 2
	b0=$(busy)
	if [ "$store" = snstore ]; then
		# shellcheck disable=SC2086
		{ time "$SNSTORE" kvbench --db "$DIR/snstore.db" "$@" $SN_ARGS --json \
			>"$OUT/$store-$tag.json" 2>"$OUT/$store-$tag.err"; } 2>"$OUT/time" || rc=$?
		rm -rf "$DIR/snstore.db"
	else
		{ time "$KVREF" --store "$store" --db "$DIR/$store" "$@" --json \
			>"$OUT/$store-$tag.json" 2>"$OUT/$store-$tag.err"; } 2>"$OUT/time" || rc=$?
		rm -rf "${DIR:?}/$store"
	fi
	read -r other_cpu run_wall < <(awk -v b0="$b0" -v b1="$(busy)" -v hz="$HZ" \
		-v o="$other_cpu" -v w="$run_wall" '{ x = (b1 - b0) / hz - $2 - $3;
		print o + (x > 0 ? x : 0), w + $1 }' "$OUT/time")
	sync
	if [ "$rc" != 0 ]; then
		echo "vs-rocksdb.sh: $store $* failed (exit $rc):" >&2
		cat "$OUT/$store-$tag.err" >&2
		exit 1
	fi
}

n=${#stores[@]}
for r in $(seq "$RUNS"); do
	# Rotate the store order each run so no store always follows the same one.
	order=()
	for i in $(seq 0 $((n - 1))); do order+=("${stores[$(((i + r - 1) % n))]}"); done
	if [ -n "$seq_list" ]; then
		for s in "${order[@]}"; do
			echo "  run $r/$RUNS: $s $seq_list" >&2
			run "$s" "seq-$r" --benchmarks "$seq_list" --num "$NUM" --threads "$THREADS" \
				--sync "$SYNC"
		done
	fi
	if [ "$fillsync" = 1 ]; then
		for w in $WRITERS; do
			for s in "${order[@]}"; do
				echo "  run $r/$RUNS: $s fillsync, $w writers" >&2
				run "$s" "fillsync-w$w-$r" --benchmarks fillsync --num "$NUM" \
					--threads "$THREADS" --writers "$w" --sync "$SYNC"
			done
		done
	fi
done

python3 - "$OUT" "$RUNS" "${stores[*]}" "$seq_list" "$([ "$fillsync" = 1 ] && echo "$WRITERS")" \
	"$SYNC" "$have_sn" "$SN_ARGS" <<'PY'
import json, statistics, sys
out, runs, stores, seq, writers, sync, have_sn, sn_args = sys.argv[1:9]
runs, stores = int(runs), stores.split()
seq = [b for b in seq.split(",") if b]
writers = writers.split()
refs = [s for s in stores if s != "snstore"]
NOSYNC = "no fsync (see --help: not equal)"
FSYNC = "fsync per write/group commit (power-loss safe)"

def load(store, tag):
    with open(f"{out}/{store}-{tag}.json") as f:
        return json.load(f)["results"]

# rows: (label, durability, {store: [result per run]})
rows = []
for i, b in enumerate(seq):
    per = {}
    for s in stores:
        per[s] = []
        for r in range(1, runs + 1):
            res = load(s, f"seq-{r}")
            if len(res) != len(seq) or res[i]["name"] != b:
                sys.exit(f"vs-rocksdb.sh: {s} run {r}: results do not match {seq}")
            per[s].append(res[i])
    label = b if seq.count(b) == 1 else f"{b}#{seq[:i + 1].count(b)}"
    rows.append((label, FSYNC if sync == "1" else NOSYNC, per))
for w in writers:
    per = {s: [load(s, f"fillsync-w{w}-{r}")[0] for r in range(1, runs + 1)] for s in stores}
    rows.append((f"fillsync w={w}", FSYNC, per))

med = statistics.median
def ops(rs): return med(r["ops_per_sec"] for r in rs)
def p99(rs): return med(r["lat_ns"]["p99"] for r in rs) / 1e3

w0 = max(len(r[0]) for r in rows) + 2
head = f"{'workload':<{w0}}" + "".join(f"{s:>12}" for s in stores)
if have_sn == "1":
    head += "".join(f"{'sn/' + s:>12}" for s in refs)
print(f"median ops/s of {runs} runs")
print(head + "   durability")
for label, dur, per in rows:
    line = f"{label:<{w0}}" + "".join(f"{ops(per[s]):>12.0f}" for s in stores)
    if have_sn == "1":
        sn = ops(per["snstore"])
        line += "".join(f"{sn / ops(per[s]):>12.2f}" if ops(per[s]) else f"{'-':>12}"
                        for s in refs)
    print(line + "   " + dur)
print()
print(f"median p99 latency per operation (µs)")
print(f"{'workload':<{w0}}" + "".join(f"{s:>12}" for s in stores))
for label, dur, per in rows:
    print(f"{label:<{w0}}" + "".join(f"{p99(per[s]):>12.1f}" for s in stores))
bad = 0
for label, dur, per in rows:
    if "found" not in per[stores[0]][0]:
        continue
    found = {s: sorted({r["found"] for r in per[s]}) for s in stores}
    print(f"{label} found: " + ", ".join(f"{s} {'/'.join(map(str, v))}" for s, v in found.items())
          + f" of {per[stores[0]][0]['ops']}")
    # Same seeds and key sets: every store must find exactly the same keys (a store that
    # read other keys, or none, measured something else).
    if len({tuple(found[s]) for s in stores}) > 1:
        print(f"vs-rocksdb.sh: the stores disagree on {label} found", file=sys.stderr)
        bad = 1
if have_sn != "1":
    print("\nsnstore kvbench is not built yet: reference stores only (no ratios)")
elif sn_args:
    print(f"\nsnstore kvbench ran with {sn_args}")
else:
    print("\nsnstore kvbench ran with its default clients (up to --depth, 1024, calls in"
          " flight each; fillsync depth 1); kvref clients make one blocking call at a time."
          " SN_ARGS=\"--foreign --depth 1\" compares call for call.")
sys.exit(bad)
PY
share=$(awk -v o="$other_cpu" -v w="$run_wall" 'BEGIN { printf "%.0f", (w > 0 ? 100 * o / w : 0) }')
echo "vs-rocksdb.sh: done in $(($(date +%s) - T0)) s; outside the benchmarked process the" \
	"machine used ${other_cpu%.*} CPU-s during ${run_wall%.*} s of runs ($share% of one CPU)" >&2
if [ "$share" -gt 20 ]; then
	echo "vs-rocksdb.sh: warning: other work ran alongside the benchmark; the numbers are noisy" >&2
fi

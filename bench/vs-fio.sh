#!/usr/bin/env bash
# vs-fio.sh — snstore's uring and null engines against fio 3.33 on the same file, in the
# same run, interleaved (fio, snstore, fio, snstore ...) so drift on a shared machine hits
# both alike. Reports the median of RUNS runs per cell and the ratio snstore/fio.
#
# fio runs with --ioengine=io_uring --fixedbufs=1 --registerfiles=1 --direct=1 and
# --lat_percentiles=1, so its latency is submission-to-completion like snstore's.
#
# Environment: BUILD (build dir, default build), FILE (default $BUILD/vs-fio.dat),
# SIZE (default 2g), RUNTIME (seconds per run, default 5), RUNS (default 3),
# QDS (default "1 32 128"), RWS (default "randread randwrite"), JOBS (default 1: fio
# --numjobs with --group_reporting against snstore --jobs, i.e. runtime workers).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
SN=$BUILD/snstore
FILE=${FILE:-$BUILD/vs-fio.dat}
SIZE=${SIZE:-2g}
RUNTIME=${RUNTIME:-5}
RUNS=${RUNS:-3}
QDS=${QDS:-"1 32 128"}
RWS=${RWS:-"randread randwrite"}
JOBS=${JOBS:-1}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

command -v fio >/dev/null || { echo "vs-fio.sh: fio is not installed (apt-get install fio)" >&2; exit 1; }
[ -x "$SN" ] || { echo "vs-fio.sh: $SN not built (run make)" >&2; exit 1; }

echo "fio: $(fio --version)   snstore: $("$SN" --version)   $(nproc) CPUs, $(uname -r)" >&2
echo "laying out $FILE ($SIZE) ..." >&2
fio --name=layout --filename="$FILE" --size="$SIZE" --rw=write --bs=1M --direct=1 \
	--ioengine=psync --end_fsync=1 --output=/dev/null

fio_run() { # rw qd -> json file
	fio --name=t --filename="$FILE" --size="$SIZE" --ioengine=io_uring --fixedbufs=1 \
		--registerfiles=1 --direct=1 --rw="$1" --bs=4k --iodepth="$2" \
		--runtime="$RUNTIME" --time_based --lat_percentiles=1 --randrepeat=0 \
		--numjobs="$JOBS" --group_reporting --output-format=json --output="$3"
}
sn_run() {
	"$SN" bench --dev "uring:$FILE?direct=1" --size "$SIZE" --rw "$1" --bs 4k --qd "$2" \
		--jobs "$JOBS" --runtime "$RUNTIME" --json --quiet >"$3"
}

for rw in $RWS; do
	for qd in $QDS; do
		for run in $(seq "$RUNS"); do
			echo "  $rw qd=$qd run $run/$RUNS: fio, snstore" >&2
			fio_run "$rw" "$qd" "$OUT/fio-$rw-$qd-$run.json"
			sn_run "$rw" "$qd" "$OUT/sn-$rw-$qd-$run.json"
		done
	done
done
for run in $(seq "$RUNS"); do
	echo "  null qd=32 run $run/$RUNS: fio, snstore" >&2
	fio --name=n --ioengine=null --size=1G --rw=randread --bs=4k --iodepth=32 \
		--runtime="$RUNTIME" --time_based --numjobs="$JOBS" --group_reporting \
		--output-format=json --output="$OUT/fio-null-$run.json"
	"$SN" bench --dev "null:?size=1G" --rw randread --bs 4k --qd 32 --jobs "$JOBS" \
		--runtime "$RUNTIME" \
		--json --quiet >"$OUT/sn-null-$run.json"
done

python3 - "$OUT" "$RUNS" "$QDS" "$RWS" "$JOBS" <<'PY'
import json, statistics, sys
out, runs, qds, rws = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split()
def fio(path):
    j = json.load(open(path))["jobs"][0]
    d = j["read"] if j["read"]["io_bytes"] else j["write"]
    lat = d["lat_ns"]
    return d["iops"], lat["mean"], lat.get("percentile", {}).get("99.000000", 0)
def sn(path):
    j = json.load(open(path))
    return j["iops"], j["lat_ns"]["mean"], j["lat_ns"]["p99"]
med = statistics.median
print(f"{'workload':<18}{'fio IOPS':>11}{'snstore':>11}{'ratio':>7}"
      f"{'fio mean':>10}{'sn mean':>9}{'fio p99':>9}{'sn p99':>9}   (latency in µs)")
for rw in rws:
    for qd in qds:
        f = [fio(f"{out}/fio-{rw}-{qd}-{r}.json") for r in range(1, runs + 1)]
        s = [sn(f"{out}/sn-{rw}-{qd}-{r}.json") for r in range(1, runs + 1)]
        fi, si = med(x[0] for x in f), med(x[0] for x in s)
        print(f"{rw + ' qd' + qd:<18}{fi:>11.0f}{si:>11.0f}{si / fi if fi else 0:>7.2f}"
              f"{med(x[1] for x in f) / 1e3:>10.1f}{med(x[1] for x in s) / 1e3:>9.1f}"
              f"{med(x[2] for x in f) / 1e3:>9.1f}{med(x[2] for x in s) / 1e3:>9.1f}")
fi = med(json.load(open(f"{out}/fio-null-{r}.json"))["jobs"][0]["read"]["iops"]
         for r in range(1, runs + 1))
si = med(json.load(open(f"{out}/sn-null-{r}.json"))["iops"] for r in range(1, runs + 1))
print(f"{'null qd32':<18}{fi:>11.0f}{si:>11.0f}{si / fi if fi else 0:>7.2f}   (software cost: "
      f"{1e9 / si if si else 0:.0f} ns per I/O for snstore)")
print(f"medians of {runs} runs each, interleaved; ratio = snstore / fio; "
      f"{sys.argv[5]} job(s) on each side")
PY

#!/bin/sh
# SPDX-License-Identifier: MIT
# cli_kvbench.sh SNSTORE DIR — `snstore kvbench` end to end, in every client mode: clients
# on workers (depth 64 and 1), foreign threads with asynchronous calls (depth 16) and with
# blocking calls (depth 1), 1 and 3 clients. The keys are a function of --seed alone, so
# every mode must write and find exactly the same keys: readrandom's "found" and the YCSB
# rows' found counts are compared across modes, and each row's ops with --num. Then the
# JSON interface the acceptance checks use, fillsync with several writers, and bad usage.
set -eu
. "$(dirname "$0")/cli_lib.sh"
NUM=20000

# field NAME JSON_OBJECT_TEXT: the number after "NAME": in it
field() {
	printf '%s\n' "$2" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"
}

# row BENCH JSON: the result object of BENCH
row() {
	printf '%s\n' "$2" | tr '{' '\n' | grep "\"name\":\"$1\"" | head -1
}

# run MODE ARGS...: fillrandom,readrandom,ycsbc,ycsbf; prints "found_read found_c found_f"
run() {
	mode=$1
	shift
	rm -f "$DIR/kv.db"
	out=$("$SN" kvbench --db "$DIR/kv.db" --benchmarks fillrandom,readrandom,ycsbc,ycsbf \
		--num $NUM --seed 7 --json "$@") || fail "$mode: kvbench exited $?"
	for b in fillrandom readrandom ycsbc ycsbf; do
		r=$(row $b "$out")
		[ -n "$r" ] || fail "$mode: no $b row in: $out"
		[ "$(field ops "$r")" = $NUM ] || fail "$mode: $b did $(field ops "$r") ops, not $NUM"
		ops=$(field ops_per_sec "$r")
		[ "${ops%%.*}" -gt 0 ] || fail "$mode: $b at $ops ops/s"
	done
	echo "$(field found "$(row readrandom "$out")") $(field found "$(row ycsbc "$out")")" \
		"$(field found "$(row ycsbf "$out")")"
}

# check_ref WHAT "FOUND_READ FOUND_C FOUND_F": the counts a reference mode must reach
check_ref() {
	set -- "$1" $2
	[ "$2" -gt $((NUM / 2)) ] && [ "$2" -lt $((NUM * 7 / 10)) ] ||
		fail "$1: readrandom found $2 of $NUM: fillrandom should leave ~63% of the key space"
	[ "$3" = $NUM ] || fail "$1: ycsbc found $3 of $NUM: the load writes every key"
}

ref=$(run "workers, depth 64")
echo "clients on workers, depth 64: found (readrandom ycsbc ycsbf) = $ref"
check_ref "clients on workers, depth 64" "$ref"
# Each client has its own key stream: compare modes with the same number of clients.
ref3=$(run "workers, 3 clients" --threads 3)
echo "3 clients on workers: found = $ref3"
check_ref "3 clients on workers" "$ref3"
for m in "--depth 1" "--foreign" "--foreign --depth 1" "--threads 3 --foreign --depth 16" \
	"--threads 3 --foreign --depth 1" "--workers 2 --shards 2" "--workers 2 --owners 1,0,0"; do
	got=$(run "$m" $m)
	want=$ref
	case "$m" in --threads*) want=$ref3 ;; esac
	echo "$m: found = $got"
	[ "$got" = "$want" ] || fail "$m found $got, clients on workers found $want"
done

# The store's layout: one shard per worker, or what --shards, --owners say.
for m in "1 2" "2 2" "1 3 --shards 3" "3 4 --owners 1,1,0,1"; do
	set -- $m
	clients=$1
	want=$2
	shift 2
	rm -f "$DIR/kv.db"
	out=$("$SN" kvbench --db "$DIR/kv.db" --benchmarks fillseq --num 1000 --workers 2 \
		--threads $clients --json "$@") || fail "fillseq $* exited $?"
	[ "$(field shards "$out")" = $want ] ||
		fail "2 workers, $clients client(s) $*: $(field shards "$out") shards, not $want: $out"
done
echo "2 workers: 2 shards by default, or as --shards and --owners say"
rm -f "$DIR/kv.db"
if "$SN" kvbench --db "$DIR/kv.db" --benchmarks fillseq --num 1000 --workers 2 \
	--owners 0,2 >/dev/null 2>&1; then
	fail "--owners naming worker 2 of 2 was accepted"
fi

rm -f "$DIR/kv.db"
out=$("$SN" kvbench --db "$DIR/kv.db" --benchmarks fillsync --num 2000000 --writers 4 --json) ||
	fail "fillsync exited $?"
r=$(row fillsync "$out")
[ "$(field ops "$r")" = 2000 ] || fail "fillsync did $(field ops "$r") ops, not 2000: $out"
echo "fillsync, 4 writers: $(field ops_per_sec "$r") ops/s"

if "$SN" kvbench --db "$DIR/kv.db" --depth 0 >/dev/null 2>&1; then
	fail "--depth 0 was accepted"
fi
if "$SN" kvbench --db "$DIR/kv.db" --benchmarks nosuch >/dev/null 2>&1; then
	fail "an unknown benchmark was accepted"
fi
echo "ok"

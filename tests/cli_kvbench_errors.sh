#!/bin/sh
# SPDX-License-Identifier: MIT
# cli_kvbench_errors.sh SNSTORE DIR — `snstore kvbench --json` when it fails: stdout still
# holds exactly one JSON object, {"error": MESSAGE, "results": [the benchmarks that
# finished]}, the message is on stderr too, and the exit status stays 2 for bad usage
# (with --json before or after the bad option) and 1 for a store that cannot be opened and
# for a benchmark that fails after others finished (an EIO from the fault: engine).
set -eu
. "$(dirname "$0")/cli_lib.sh"

# check WHAT WANT_RC EXPR ARGS...: kvbench ARGS exits WANT_RC, its stdout is one JSON
# object d for which the Python expression EXPR holds, and stderr is not empty
check() {
	what=$1 want=$2 expr=$3
	shift 3
	rc=0
	"$SN" kvbench "$@" >"$DIR/out" 2>"$DIR/err" || rc=$?
	[ $rc = "$want" ] || fail "$what: exit $rc, not $want; stderr: $(cat "$DIR/err")"
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1], "rb"))
sys.exit(0 if isinstance(d, dict) and eval(sys.argv[2]) else 1)' "$DIR/out" "$expr" ||
		fail "$what: stdout is not one JSON object with $expr: $(cat "$DIR/out")"
	[ $want = 0 ] || [ -s "$DIR/err" ] || fail "$what: nothing on stderr"
	echo "ok: $what (exit $rc): $(cut -c1-160 "$DIR/out")"
}

# The error object of a failure that happened before any benchmark finished.
none='d["results"] == [] and "error" in d'
check "bad value, --json after it" 2 "$none and '--depth 0' in d['error']" \
	--db "$DIR/kv.db" --depth 0 --json
check "bad value, --json before it" 2 "$none and '--depth 0' in d['error']" \
	--json --db "$DIR/kv.db" --depth 0
check "unknown option" 2 "$none and '--nosuch' in d['error']" --nosuch --json
check "unknown benchmark" 2 "$none and 'nosuch' in d['error']" --benchmarks nosuch --json
check "unexpected argument" 2 "$none" --json extra
check "store that cannot be opened" 1 "$none and 'nonexistent' in d['error']" \
	--db "$DIR/nonexistent/kv.db" --num 1000 --json
printf 'not a store' >"$DIR/foreign"
check "--db holding something else" 1 "$none and 'not an snstore store' in d['error']" \
	--db "$DIR/foreign" --num 1000 --json

# Without --json, a failure prints no JSON.
rc=0
"$SN" kvbench --db "$DIR/kv.db" --depth 0 >"$DIR/out" 2>/dev/null || rc=$?
[ $rc = 2 ] && [ ! -s "$DIR/out" ] || fail "--depth 0 without --json: exit $rc, stdout: $(cat "$DIR/out")"

# Success keeps its shape, without "error".
check "success" 0 '"error" not in d and [r["name"] for r in d["results"]] == ["fillseq", "readrandom"] and all(r["ops"] == 2000 and "lat_ns" in r for r in d["results"])' \
	--db "$DIR/kv.db" --benchmarks fillseq,readrandom --num 2000 --json

# A benchmark that fails after another finished: the Nth device request fails with EIO.
# Which N lands in the second benchmark depends on the store's layout, so try N in turn
# until one does; every run must print one object (with "error" exactly when it fails).
n=1
found=
while [ $n -le 200 ] && [ -z "$found" ]; do
	rm -f "$DIR/f.db"
	rc=0
	"$SN" kvbench --db "fault:psync:$DIR/f.db?create=1&size=64m&eio_at=$n" \
		--benchmarks fillseq,overwrite,readrandom --num 20000 --workers 1 --cache 1m \
		--json >"$DIR/out" 2>"$DIR/err" || rc=$?
	case $rc in
	0) want='"error" not in d and len(d["results"]) == 3' ;;
	1) want='"error" in d and len(d["results"]) < 3' ;;
	*) fail "eio_at=$n: exit $rc: $(cat "$DIR/err")" ;;
	esac
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1], "rb"))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$DIR/out" "$want" ||
		fail "eio_at=$n: exit $rc but stdout is: $(cat "$DIR/out")"
	if [ $rc = 1 ] && python3 -c 'import json, sys
d = json.load(open(sys.argv[1], "rb"))
sys.exit(0 if d["results"] and " client " in d["error"] else 1)' "$DIR/out"; then
		found=$n
		grep -q "client 0: Input/output error" "$DIR/err" ||
			fail "eio_at=$n: the message is not on stderr: $(cat "$DIR/err")"
	fi
	n=$((n + 1))
done
[ -n "$found" ] || fail "no eio_at in 1..200 failed a benchmark after one had finished"
echo "ok: EIO at request $found: $(sed 's/"lat_ns":{[^}]*}//g' "$DIR/out")"
echo "ok"

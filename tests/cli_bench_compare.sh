#!/bin/sh
# SPDX-License-Identifier: MIT
# cli_bench_compare.sh SNSTORE DIR — `snstore bench --compare` with stderr not a terminal
# (a file here, as in a log or a pipe): progress is drawn only on a terminal, so stderr
# gets at most one line per engine row (7 rows of 4 cells), none with a carriage return or
# an escape sequence, and the table or the JSON on stdout is whole; --quiet: nothing.
set -eu
. "$(dirname "$0")/cli_lib.sh"
ROWS=7

"$SN" bench --compare --file "$DIR/scratch.dat" --size 4m --ios 200 >"$DIR/out" \
	2>"$DIR/err" || fail "bench --compare exited $?: $(cat "$DIR/err")"
n=$(wc -l <"$DIR/err")
[ "$n" -le $ROWS ] || fail "$n lines on stderr, more than one per row ($ROWS):
$(cat "$DIR/err")"
! grep -q "$(printf '[\r\033]')" "$DIR/err" || fail "stderr holds \\r or escape sequences"
[ "$(grep -c '^  \[[1-7]/7\] ' "$DIR/err")" = "$n" ] ||
	fail "stderr holds lines that are not a row's: $(cat "$DIR/err")"
for e in "uring:" "psync:" "mmap:" "mem:" "null:"; do
	grep -q "^$e" "$DIR/out" || fail "no $e row in the table: $(cat "$DIR/out")"
done
echo "ok: $n lines on stderr for $ROWS rows:"
cat "$DIR/err"

"$SN" bench --compare --file "$DIR/scratch.dat" --size 4m --ios 200 --json --quiet \
	>"$DIR/out" 2>"$DIR/err" || fail "bench --compare --json exited $?: $(cat "$DIR/err")"
[ ! -s "$DIR/err" ] || fail "--quiet printed on stderr: $(cat "$DIR/err")"
python3 -c 'import json, sys
d = json.load(open(sys.argv[1], "rb"))
sys.exit(0 if len(d["results"]) == int(sys.argv[2]) else 1)' "$DIR/out" $ROWS ||
	fail "--json: not one object with $ROWS results: $(cat "$DIR/out")"
echo "ok: --json --quiet: nothing on stderr, one object with $ROWS results"
echo "ok"

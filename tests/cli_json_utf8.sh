#!/bin/sh
# SPDX-License-Identifier: MIT
# cli_json_utf8.sh SNSTORE DIR — the CLI's JSON with a path that is not UTF-8 (byte 0xff)
# and holds a tab: `kv stat --json`, `bench --json`, `bench --verify --json`, `bench
# --memcpy --json`, `bench --compare --json` and the error objects of `kvbench --json` and
# `kv stat --json` must each parse as one JSON object (Python's json, strict about UTF-8),
# with the path in it as the bytes decoded with U+FFFD for 0xff.
set -eu
. "$(dirname "$0")/cli_lib.sh"
# é (valid UTF-8), 0xff (never valid), a tab (a control character)
P="$DIR/f-$(printf '\303\251-\377-\t')x"

# check WHAT EXPR: stdout ($DIR/out) is one JSON object d with EXPR true; p is the path as
# it should read in the JSON
check() {
	python3 -c 'import json, os, sys
d = json.load(open(sys.argv[1], "rb"))
p = os.fsencode(sys.argv[3]).decode("utf-8", "replace")
assert "\ufffd" in p and "\t" in p
sys.exit(0 if eval(sys.argv[2]) else 1)' "$DIR/out" "$2" "$P" ||
		fail "$1: stdout is not one JSON object with $2: $(cat -v "$DIR/out")"
	echo "ok: $1"
}

"$SN" kv format "$P.db" >/dev/null || fail "kv format exited $?"
"$SN" kv stat "$P.db" --json >"$DIR/out" || fail "kv stat --json exited $?"
check "kv stat --json" 'd["path"] == p + ".db"'

"$SN" bench --dev "psync:$P.dat?create=1&size=1m" --ios 200 --json >"$DIR/out" ||
	fail "bench --json exited $?"
check "bench --json" 'd["dev"] == "psync:" + p + ".dat?create=1&size=1m" and p in d["uri"]'

"$SN" bench --dev "psync:$P.dat" --size 1m --verify --json >"$DIR/out" ||
	fail "bench --verify --json exited $?"
check "bench --verify --json" 'd["verify"] and d["dev"] == "psync:" + p + ".dat"'

"$SN" bench --memcpy --dev "mmap:$P.dat" --ios 200 --json >"$DIR/out" ||
	fail "bench --memcpy --json exited $?"
check "bench --memcpy --json" 'd["target"] == "mmap:" + p + ".dat"'

"$SN" bench --compare --file "$P.cmp" --size 1m --ios 100 --json --quiet >"$DIR/out" ||
	fail "bench --compare --json exited $?"
check "bench --compare --json" 'd["file"] == p + ".cmp" and all(p in r["dev"] for r in d["results"][:5])'

rc=0
"$SN" kvbench --db "$P/missing/kv.db" --num 1000 --json >"$DIR/out" 2>/dev/null || rc=$?
[ $rc = 1 ] || fail "kvbench with a missing directory: exit $rc, not 1"
check "kvbench --json error object" 'd["results"] == [] and p + "/missing/kv.db" in d["error"]'

rc=0
"$SN" kv stat "$P.none" --json >"$DIR/out" 2>/dev/null || rc=$?
[ $rc = 1 ] || fail "kv stat of a missing file: exit $rc, not 1"
check "kv stat --json error object" 'list(d) == ["error"] and p + ".none" in d["error"]'
rc=0
"$SN" kv stat "$P.db" --bogus --json >"$DIR/out" 2>/dev/null || rc=$?
[ $rc = 2 ] || fail "kv stat --bogus: exit $rc, not 2"
check "kv stat --json error object (bad usage)" '"--bogus" in d["error"]'
echo "ok"

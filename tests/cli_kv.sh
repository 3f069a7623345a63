#!/bin/sh
# SPDX-License-Identifier: MIT
# cli_kv.sh SNSTORE DIR — `snstore kv` as the acceptance checks use it: put returns 0
# once durable, get prints the value (exit 0) or exits 1 with a message when the key is
# absent (2 for any failure), del likewise; what stat and check print; a store in use by
# another open (the script holds its lock with flock(1), as an open store does) is refused
# (exit 1; get: 2), untouched; a write to an engine that keeps nothing is refused.
. "$(dirname "$0")/cli_lib.sh"
S=$DIR/store

echo "get on a missing path: exit 2 (a failure, not an absent key), no file made"
$SN kv get "$S" k >"$DIR/out" 2>"$DIR/err"
rc=$?
[ $rc -eq 2 ] || fail "get on a missing path: exit $rc"
[ -e "$S" ] && fail "get created $S"
grep -q "no such file" "$DIR/err" || fail "get on a missing path: $(cat "$DIR/err")"

echo "put, get, overwrite, del"
$SN kv put "$S" user:1 hello || fail "put"
[ "$($SN kv get "$S" user:1)" = hello ] || fail "get after put"
$SN kv put "$S" user:1 'hello again' || fail "overwrite"
[ "$($SN kv get "$S" user:1)" = "hello again" ] || fail "get after overwrite"
$SN kv get "$S" user:2 >"$DIR/out" 2>"$DIR/err"
[ $? -eq 1 ] || fail "get of an absent key: exit status not 1"
[ -s "$DIR/out" ] && fail "get of an absent key printed a value"
grep -q "not found" "$DIR/err" || fail "get of an absent key: $(cat "$DIR/err")"
$SN kv del "$S" user:1 || fail "del"
$SN kv get "$S" user:1 >/dev/null 2>&1 && fail "get after del found the key"
$SN kv put "$S" a 1 && $SN kv put "$S" b 2 || fail "puts"
[ "$($SN kv scan "$S" | sort | tr '\t\n' '=;')" = "a=1;b=2;" ] || fail "scan: $($SN kv scan "$S")"

echo "a file of other data after 128 KiB of zeros is refused, not formatted over"
Z=$DIR/zeros-then-data
head -c 131072 /dev/zero >"$Z" && head -c 3000000 /dev/urandom >>"$Z" || fail "making $Z"
sum=$(cksum <"$Z")
$SN kv put "$Z" k v >"$DIR/out" 2>"$DIR/err" && fail "put formatted a file of other data"
grep -q "not an snstore KV store" "$DIR/err" || fail "put on other data: $(cat "$DIR/err")"
[ "$(cksum <"$Z")" = "$sum" ] || fail "put on other data changed the file"
rm -f "$Z"

echo "format creates a missing file: any capacity, also through a URI with options"
$SN kv format "$DIR/odd" --capacity 5000000 >/dev/null || fail "format --capacity 5000000"
$SN kv put "$DIR/odd" k v && [ "$($SN kv get "$DIR/odd" k)" = v ] || fail "odd capacity: put/get"
$SN kv format "psync:$DIR/opt?direct=1" --capacity 16m >/dev/null || fail "format URI?direct=1"
[ "$(stat -c %s "$DIR/opt")" = 16777216 ] || fail "URI with options: size $(stat -c %s "$DIR/opt")"
rm -f "$DIR/odd" "$DIR/opt"

echo "put and del on mem: (nothing persists) are refused"
$SN kv put mem: k v >"$DIR/out" 2>"$DIR/err" && fail "put on mem: succeeded"
grep -q "could never be durable" "$DIR/err" || fail "put on mem:: $(cat "$DIR/err")"

echo "a key or value '-h' is refused unless after '--', never taken for --help"
$SN kv put "$S" flag -h >/dev/null 2>&1
[ $? -eq 2 ] || fail "put KEY -h: not refused as bad usage"
$SN kv get "$S" flag >/dev/null 2>&1 && fail "put KEY -h stored something"
$SN kv put "$S" -- flag -h || fail "put -- KEY -h"
[ "$($SN kv get "$S" -- flag)" = "-h" ] || fail "the value -h"
$SN kv del "$S" -- flag || fail "del"

echo "get, scan, stat and check write nothing to the store"
sum=$(cksum <"$S")
{ $SN kv get "$S" a && $SN kv scan "$S" && $SN kv stat "$S" && $SN kv check "$S"; } >/dev/null ||
	fail "a read command failed"
[ "$(cksum <"$S")" = "$sum" ] || fail "a read command changed the store"

echo "stat and check name the engine of the open store"
$SN kv stat "$S" >"$DIR/out" || fail "stat"
grep -q "^store .*(engine [a-z]" "$DIR/out" || fail "stat: $(head -1 "$DIR/out")"
grep -q "^keys *2$" "$DIR/out" || fail "stat: keys: $(grep keys "$DIR/out")"
$SN kv stat "$S" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["keys"]==2 and d["engine"] not in ("", "?"), d' ||
	fail "stat --json"
$SN kv check "$S" >"$DIR/out" || fail "check: $(tail -1 "$DIR/out")"
grep -q "clean: 2 keys" "$DIR/out" || fail "check: $(tail -1 "$DIR/out")"

echo "a format whose segments cannot hold 1 MiB values says the largest value"
$SN kv format "$DIR/small" --capacity 8m --shards 1 >"$DIR/out" || fail "format 8m"
grep -q "values up to 510.9 KiB" "$DIR/out" || fail "format 8m: $(grep layout "$DIR/out")"
grep -q "values above 523160 bytes are refused" "$DIR/out" || fail "format 8m: no note"
$SN kv stat "$DIR/small" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["max_value"]==523160, d' ||
	fail "stat --json of the 8m store is not one JSON object with max_value"
head -c 600000 /dev/zero >"$DIR/big"
$SN kv put "$DIR/small" big --value-file "$DIR/big" 2>"$DIR/err" && fail "a 600000-byte value stored"
grep -q "523160" "$DIR/err" || fail "put of a too-large value: $(cat "$DIR/err")"
echo "a store whose lock another open holds: refused (exit 1), nothing changed"
if ! command -v flock >/dev/null; then
	echo "skipped: no flock(1) (util-linux) to hold the lock"
	exit 0
fi
exec 9<"$S"
flock -x 9 || fail "flock -x on $S"
for cmd in "put $S c 3" "del $S a" "get $S a" "format $S" "compact $S"; do
	# shellcheck disable=SC2086 # (word splitting wanted)
	$SN kv $cmd >"$DIR/out" 2>"$DIR/err"
	rc=$?
	want=1
	[ "${cmd%% *}" = get ] && want=2
	[ $rc -eq $want ] || fail "kv $cmd while locked: exit $rc"
	grep -q "in use" "$DIR/err" || fail "kv $cmd while locked: $(cat "$DIR/err")"
done
$SN kvbench --db "$S" --num 1000 >"$DIR/out" 2>"$DIR/err" && fail "kvbench on a locked store ran"
grep -q "in use" "$DIR/err" || fail "kvbench while locked: $(cat "$DIR/err")"
flock -u 9
exec 9<&-
[ "$($SN kv get "$S" a)" = 1 ] || fail "a changed while locked"
$SN kv get "$S" c >/dev/null 2>&1 && fail "the refused put of c is there"
[ "$($SN kv scan "$S" | wc -l)" -eq 2 ] || fail "keys changed while locked"
echo "a byte flipped in a durable record: check says CORRUPT (exit 1), changes nothing"
$SN kv put "$S" victim MARKER-OF-THE-VICTIM && $SN kv put "$S" after1 one &&
	$SN kv put "$S" after2 two || fail "puts"
off=$(grep -abo MARKER-OF-THE-VICTIM "$S" | head -1 | cut -d: -f1)
[ -n "$off" ] || fail "the victim's value is not in the file"
printf Z | dd of="$S" bs=1 seek=$((off + 3)) conv=notrunc 2>/dev/null
sum=$(cksum <"$S")
$SN kv check "$S" >"$DIR/out" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "check of a corrupt store: exit $rc: $(tail -1 "$DIR/out")"
grep -q "CORRUPT" "$DIR/out" || fail "check of a corrupt store: $(tail -1 "$DIR/out")"
[ "$(cksum <"$S")" = "$sum" ] || fail "check changed the corrupt store"
$SN kv get "$S" victim >/dev/null 2>"$DIR/err"
rc=$?
[ $rc -eq 2 ] || fail "get of the corrupt record: exit $rc (2: a failure, not absent)"
grep -q "checksum" "$DIR/err" || fail "get of the corrupt record: $(cat "$DIR/err")"
[ "$($SN kv get "$S" after1)$($SN kv get "$S" after2)" = onetwo ] ||
	fail "records written after the corrupt one are lost"
echo "ok"

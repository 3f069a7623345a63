#!/bin/sh
# SPDX-License-Identifier: MIT
# cli_kv.sh SNSTORE DIR — `snstore kv` as the acceptance checks use it: put returns 0
# once durable, get prints the value (exit 0) or exits 1 with a message when the key is
# absent, del likewise; what stat and check print; and a store in use by another open
# (the script holds its lock with flock(1), as an open store does) is refused with exit 1, untouched.
. "$(dirname "$0")/cli_lib.sh"
S=$DIR/store

echo "get on a missing path: exit 1, no file made"
$SN kv get "$S" k >"$DIR/out" 2>"$DIR/err" && fail "get on a missing path succeeded"
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

echo "stat and check name the engine of the open store"
$SN kv stat "$S" >"$DIR/out" || fail "stat"
grep -q "^store .*(engine [a-z]" "$DIR/out" || fail "stat: $(head -1 "$DIR/out")"
grep -q "^keys *2$" "$DIR/out" || fail "stat: keys: $(grep keys "$DIR/out")"
$SN kv stat "$S" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["keys"]==2 and d["engine"] not in ("", "?"), d' ||
	fail "stat --json"
$SN kv check "$S" >"$DIR/out" || fail "check: $(tail -1 "$DIR/out")"
grep -q "clean: 2 keys" "$DIR/out" || fail "check: $(tail -1 "$DIR/out")"

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
	[ $rc -eq 1 ] || fail "kv $cmd while locked: exit $rc"
	grep -q "in use" "$DIR/err" || fail "kv $cmd while locked: $(cat "$DIR/err")"
done
$SN kvbench --db "$S" --num 1000 >"$DIR/out" 2>"$DIR/err" && fail "kvbench on a locked store ran"
grep -q "in use" "$DIR/err" || fail "kvbench while locked: $(cat "$DIR/err")"
flock -u 9
exec 9<&-
[ "$($SN kv get "$S" a)" = 1 ] || fail "a changed while locked"
$SN kv get "$S" c >/dev/null 2>&1 && fail "the refused put of c is there"
[ "$($SN kv scan "$S" | wc -l)" -eq 2 ] || fail "keys changed while locked"
echo "ok"

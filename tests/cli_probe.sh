#!/bin/sh
# SPDX-License-Identifier: MIT
# cli_probe.sh SNSTORE DIR — `snstore probe PATH` on paths that exist and on paths that do
# not: a directory and a file are judged (exit 0), a missing file in an existing directory
# is created for the probe and removed again (exit 0), and a PATH that neither exists nor
# can be created (its directory is missing; a dangling symlink) is an error on stderr with
# exit status 1 and nothing on stdout. Bad usage stays exit 2.
set -eu
. "$(dirname "$0")/cli_lib.sh"

# probe WANT_RC PATH: snstore probe PATH exits WANT_RC
probe() {
	rc=0
	"$SN" probe "$2" >"$DIR/out" 2>"$DIR/err" || rc=$?
	[ $rc = "$1" ] || fail "probe $2: exit $rc, not $1; stderr: $(cat "$DIR/err")"
}

probe 0 "$DIR"
grep -q '^auto:' "$DIR/out" || fail "probe $DIR: no auto: section"
echo "ok: a directory (exit 0)"
printf 'x' >"$DIR/file"
probe 0 "$DIR/file"
echo "ok: a file (exit 0)"
probe 0 "$DIR/new"
[ ! -e "$DIR/new" ] || fail "probe $DIR/new left the file it made"
echo "ok: a file yet to be made, in an existing directory (exit 0, removed after)"

for p in "$DIR/missing/dir" "$DIR/missing/dir/" "$DIR/new/"; do
	probe 1 "$p"
	[ ! -s "$DIR/out" ] || fail "probe $p printed on stdout: $(head -3 "$DIR/out")"
	grep -q "$p" "$DIR/err" && grep -q "No such file or directory" "$DIR/err" ||
		fail "probe $p: stderr does not say the path is missing: $(cat "$DIR/err")"
	echo "ok: $p (exit 1): $(cat "$DIR/err")"
done
ln -s "$DIR/missing/target" "$DIR/dangling"
probe 1 "$DIR/dangling"
[ -L "$DIR/dangling" ] || fail "probe of a dangling symlink removed it"
echo "ok: a dangling symlink (exit 1): $(cat "$DIR/err")"

probe 2 --nosuch
rc=0
"$SN" probe "$DIR" "$DIR" >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "two PATHs: exit $rc, not 2"
echo "ok: bad usage (exit 2)"
echo "ok"

#!/bin/sh
# fuzz/run.sh — the run half of `make fuzz`: every target BUILD/fuzz/fuzz_NAME (one per
# fuzz/fuzz_NAME.c) runs for SECONDS from its seed corpus fuzz/corpus/NAME/, with
# fuzz/NAME.dict when present. New inputs go to BUILD/fuzz-corpus/NAME/, never into the
# committed corpus unless MERGE=1 (then the ones that add coverage are merged in).
# Crashing inputs land in fuzz/crashes/ (git-ignored). One summary line per target;
# exits 1 when any target crashed, leaked, timed out or failed to run.
#
# usage: fuzz/run.sh BUILD SECONDS MERGE      (FUZZ_TARGETS="uri ..." runs only those)
set -u
build=${1:-build-fuzz}
seconds=${2:-60}
merge=${3:-0}
cd "$(dirname "$0")/.." || exit 1
mkdir -p fuzz/crashes "$build/fuzz-logs"
failed=0

for src in fuzz/fuzz_*.c; do
	name=${src#fuzz/fuzz_}
	name=${name%.c}
	if [ -n "${FUZZ_TARGETS:-}" ]; then
		case " $FUZZ_TARGETS " in *" $name "*) ;; *) continue ;; esac
	fi
	bin=$build/fuzz/fuzz_$name
	log=$build/fuzz-logs/$name.log
	scratch=$build/fuzz-corpus/$name
	mkdir -p "$scratch"
	set -- -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="fuzz/crashes/$name-"
	[ -f "fuzz/$name.dict" ] && set -- "$@" -dict="fuzz/$name.dict"
	set -- "$@" "$scratch"
	[ -d "fuzz/corpus/$name" ] && set -- "$@" "fuzz/corpus/$name"

	start=$(date +%s)
	if [ -x "$bin" ]; then
		"$bin" "$@" >"$log" 2>&1
		rc=$?
	else
		echo "$bin: not built" >"$log"
		rc=127
	fi
	took=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	crashes=$(grep -c 'Test unit written to' "$log")
	[ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1
	printf 'fuzz %-12s %4ss %12s executions (%s/s) %s crashes, %s new inputs\n' \
		"$name" "$took" "${execs:-?}" "${rate:-?}" "$crashes" \
		"$(find "$scratch" -type f | wc -l)"

	if [ "$rc" -ne 0 ]; then
		failed=1
		echo "---- fuzz_$name exited $rc; the end of $log:"
		tail -n 60 "$log"
		echo "---- reproduce: $bin fuzz/crashes/$name-<file>"
	elif [ "$merge" = 1 ]; then
		mkdir -p "fuzz/corpus/$name"
		before=$(find "fuzz/corpus/$name" -type f | wc -l)
		"$bin" -merge=1 "fuzz/corpus/$name" "$scratch" >>"$log" 2>&1 || failed=1
		echo "fuzz $name: merged into fuzz/corpus/$name: $before -> $(find "fuzz/corpus/$name" -type f | wc -l) files"
	fi
done
exit $failed

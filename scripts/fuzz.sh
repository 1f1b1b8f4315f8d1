#!/usr/bin/env bash
# scripts/fuzz.sh - runs the libFuzzer harnesses of fuzz/ (built by make fuzz-build
# into build/fuzz/fuzz/).
#
#   sh scripts/fuzz.sh run      replays every input of fuzz/corpus/<harness>/ once,
#                               then fuzzes each harness FUZZ_SECONDS (default 60)
#   sh scripts/fuzz.sh replay   replays only (the seeds and every kept regression input)
#
# FUZZ_ONLY=name restricts to one harness (e.g. fuzz_http). New interesting
# inputs go to build/fuzz/corpus/<harness>/ (not committed); a finding stops
# the run, is saved as build/fuzz/crashes/<harness>-crash-<sha1> and is
# reproduced with: build/fuzz/fuzz/<harness> <that file>. Once fixed, copy it
# to fuzz/corpus/<harness>/regress-<what> so that it is replayed forever.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
RAMPART_SCRIPT=fuzz
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$RAMPART_ROOT"

mode=${1:-run}
secs=${FUZZ_SECONDS:-60}
bindir=build/fuzz/fuzz
[ -d "$bindir" ] || die "no harnesses in $bindir: run make fuzz-build"
failed=0
for bin in "$bindir"/fuzz_*; do
	# The harnesses only, not the dependency files (.d) beside them.
	case $bin in *.d | *.tmp) continue ;; esac
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	[ -n "${FUZZ_ONLY:-}" ] && [ "$name" != "$FUZZ_ONLY" ] && continue
	seeds=fuzz/corpus/$name
	[ -d "$seeds" ] || die "no seed corpus $seeds"
	log=build/fuzz/$name.log
	# Replay: each committed input once (files, not a directory: no mutation).
	if ! "$bin" -close_fd_mask=1 "$seeds"/* >"$log" 2>&1; then
		tail -n 40 "$log"
		say "$name: a corpus input fails (log: $log)"
		failed=1
		continue
	fi
	say "$name: $(find "$seeds" -type f | wc -l) corpus input(s) replayed"
	[ "$mode" = replay ] && continue
	mkdir -p "build/fuzz/corpus/$name" build/fuzz/crashes
	if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -close_fd_mask=1 \
		-print_final_stats=1 -artifact_prefix="build/fuzz/crashes/$name-" \
		"build/fuzz/corpus/$name" "$seeds" >"$log" 2>&1; then
		tail -n 60 "$log"
		say "$name: FINDING (log: $log; inputs: build/fuzz/crashes/$name-*)"
		failed=1
		continue
	fi
	say "$name: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo '?') runs in ${secs} s, no finding"
done
exit "$failed"

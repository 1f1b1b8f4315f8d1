#!/usr/bin/env bash
# scripts/test.sh - every check rampart has, in order (what `make test` and CI run).
#
#   deps -> checksrc -> format-check -> deploy files (kustomize + schema
#   validation, promtool; scripts/check-deploy.sh) -> gcc release build ->
#   compose file and image library checks -> clang build (daemons, unit and
#   component tests) ->
#   ASan/UBSan build (daemons + component tests) -> ThreadSanitizer build of
#   the api -> libFuzzer harnesses (every corpus input replayed, then each
#   harness FUZZ_SECONDS, default 10) -> unit tests (sanitized) ->
#   unit tests under valgrind (release) ->
#   openapi (npm tools of tests/openapi: lint docs/openapi.yaml, generate the
#   TypeScript client and type-check it) ->
#   integration tests (sanitized binaries against private PostgreSQL + Redis
#   started by the pytest fixtures, which also run the component tests) ->
#   the fault-injection campaign's fast subset (docs/reliability.md)
#
# Stops at the first failing step; exits non-zero if any step failed and ends
# with one summary line. PYTEST_ARGS adds arguments to pytest (e.g. "-k auth").
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -eu
RAMPART_SCRIPT="test"
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$RAMPART_ROOT"

MAKE=${MAKE:-make}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
passed=0
steps=()
start_all=$(date +%s)

finish() {
	local failed=$1 what=${2:-}
	echo
	echo "== summary ($(($(date +%s) - start_all)) s)"
	for s in "${steps[@]}"; do
		echo "   $s"
	done
	[ -n "$what" ] && echo "   FAILED: $what"
	echo "steps: $passed passed, $failed failed"
	exit "$failed"
}

# step NAME CMD...: runs one step, records it, stops everything on failure.
step() {
	local name=$1 t0 rc=0
	shift
	echo
	echo "== $name: $*"
	t0=$(date +%s)
	"$@" || rc=$?
	if [ "$rc" -ne 0 ]; then
		steps+=("FAIL $name (exit $rc)")
		finish 1 "$name"
	fi
	steps+=("ok   $name ($(($(date +%s) - t0)) s)")
	passed=$((passed + 1))
}

integration() {
	RAMPART_BIN="$RAMPART_ROOT/build/san/bin" \
		RAMPART_COMPONENT_BIN="$RAMPART_ROOT/build/san/tests/component" \
		RAMPART_VALGRIND_BIN="$RAMPART_ROOT/bin" \
		RAMPART_VALGRIND_COMPONENT_BIN="$RAMPART_ROOT/build/rel/tests/component" \
		RAMPART_TSAN_BIN="$RAMPART_ROOT/build/tsan/bin" \
		/usr/bin/python3 -m pytest -q -p no:cacheprovider \
		${PYTEST_ARGS:-} tests/integration
}

step deps sh scripts/deps.sh
# playwright-core for the dashboard's browser test (tests/integration/test_dashboard.py).
step npm-browser npm install --prefix tests/browser --no-package-lock --no-audit --no-fund
step checksrc sh scripts/checksrc.sh
# clang-format reads stdin when given no files: never let it wait on a terminal.
step format-check "$MAKE" format-check </dev/null
step check-deploy bash scripts/check-deploy.sh
step build-gcc "$MAKE" -j"$JOBS" all components bench-tools
step deploy-compose sh scripts/check-compose.sh bin
step build-clang "$MAKE" -j"$JOBS" CC=clang BUILD=build/clang BINDIR=build/clang/bin all components unit-bins bench-tools
step build-san "$MAKE" -j"$JOBS" SAN=1 BINDIR=build/san/bin all components
step build-tsan "$MAKE" -j"$JOBS" tsan
step build-fuzz "$MAKE" -j"$JOBS" fuzz-build
step fuzz "$MAKE" fuzz-smoke
step unit "$MAKE" -j"$JOBS" unit SAN=1 BINDIR=build/san/bin
step valgrind "$MAKE" -j"$JOBS" valgrind
step openapi bash scripts/openapi.sh
step integration integration
# The fault-injection campaign's fast subset (docs/reliability.md), on the
# sanitizer binaries: every fault once in about 45 s of load.
step faults-fast env FAULT_FAST=1 RAMPART_BIN="$RAMPART_ROOT/build/san/bin" \
	/usr/bin/python3 tests/faults/run_faults.py
finish 0

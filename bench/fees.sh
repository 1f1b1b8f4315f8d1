#!/usr/bin/env bash
# bench/fees.sh - POST /v1/fees/calculate (api -> Redis stream -> feeengine ->
# reply stream -> api) beside GET /healthz of the same api (the same HTTP
# stack answering at once: the static baseline), with the deterministic
# engine, then with Claude's decision served from the cache (a loopback stub
# of the Messages API, tests/integration/market_stub.py, warmed first).
# Target (issue 4): p99 under 5 ms at 1,000 req/s.
#
# Knobs: BENCH_SECONDS (10), BENCH_ROUNDS (3), BENCH_CONNS (16), BENCH_THREADS (2),
# BENCH_PACED_CONNS (32), BENCH_RATE (1000), BENCH_REFRESH_SECONDS (60: the
# fee engine's MARKET_REFRESH_SECONDS; each refresh makes the Python stub
# answer eight requests on the same two cores), BENCH_KEEP=1.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
RAMPART_SCRIPT=bench-fees
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"
cd "$RAMPART_ROOT"

SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-16}
THREADS=${BENCH_THREADS:-2}
PACED_CONNS=${BENCH_PACED_CONNS:-32}
RATE=${BENCH_RATE:-1000}
KEY=sk_bench
LIMIT=$((SECS + 60))

. "$RAMPART_ROOT/bench/lib.sh"

# ---- the stub (market sources + Claude), the api ----------------------------------
/usr/bin/python3 tests/integration/market_stub.py >"$TMP/stub.env" 2>"$TMP/stub.log" &
remember_pid $! market-stub TERM
for _ in $(seq 100); do grep -q STUB_CLAUDE_KEY "$TMP/stub.env" 2>/dev/null && break; sleep 0.1; done
grep -q STUB_CLAUDE_KEY "$TMP/stub.env" || die "market stub did not start: $(cat "$TMP/stub.log")"
set -a
. "$TMP/stub.env"
set +a

API_PORT=$(random_free_port)
BASE="http://127.0.0.1:$API_PORT"
setsid env API_LISTEN="127.0.0.1:$API_PORT" API_KEYS="$KEY" LOG_LEVEL=warn \
	RATE_LIMIT_RPS=1000000 RATE_LIMIT_BURST=10000000 REDIS_PREFIX=benchfees \
	bin/rampart-api >"$TMP/api.log" 2>&1 &
remember_pid $! rampart-api TERM
wait_http_200 "$BASE/readyz" 30 "$!"

FE_PID=""
start_feeengine() { # $1: ANTHROPIC_API_KEY ("" = deterministic only)
	local port
	port=$(random_free_port)
	setsid env METRICS_LISTEN="127.0.0.1:$port" REDIS_PREFIX=benchfees LOG_LEVEL=warn \
		MARKET_REFRESH_SECONDS="${BENCH_REFRESH_SECONDS:-60}" \
		ANTHROPIC_API_KEY="$1" FEE_AI_CACHE_SECONDS=3600 \
		bin/rampart-feeengine >>"$TMP/feeengine.log" 2>&1 &
	FE_PID=$!
	remember_pid "$FE_PID" rampart-feeengine TERM
	wait_http_200 "http://127.0.0.1:$port/readyz" 30 "$FE_PID"
}
stop_feeengine() {
	kill -TERM "$FE_PID" 2>/dev/null || true
	wait "$FE_PID" 2>/dev/null || true
}

probe() { # $1: expected source
	local out
	out=$(curl -s -X POST "$BASE/v1/fees/calculate" -H "Authorization: Bearer $KEY" \
		-H 'Content-Type: application/json' -d '{"from_currency":"USD","to_currency":"EUR","amount":5000}')
	case "$out" in *"\"source\":\"$1\""*) ;; *) die "probe: want source $1, got: $out" ;; esac
}


ERRORS=0
# run LABEL PATH CONNS DELAY_MS AMOUNTS: one wrk run; sets RPS P50 P99.
run() {
	local label=$1 path=$2 conns=$3 delay=$4 amounts=$5 out="$TMP/wrk.out" get=0
	[ "$path" = /healthz ] && get=1
	local cmd=(wrk -t"$THREADS" -c"$conns" -d"${SECS}s" --latency -s "$RAMPART_ROOT/bench/fees.lua"
		"$BASE$path")
	echo
	echo "== $label"
	show env BENCH_API_KEY="$KEY" BENCH_DELAY_MS="$delay" BENCH_AMOUNTS="$amounts" BENCH_GET="$get" "${cmd[@]}"
	BENCH_API_KEY=$KEY BENCH_DELAY_MS=$delay BENCH_AMOUNTS=$amounts BENCH_GET=$get \
		timeout "$LIMIT" "${cmd[@]}" >"$out" 2>&1 || {
		cat "$out" >&2
		die "wrk failed"
	}
	sed 's/^/   /' "$out"
	RPS=$(wrk_rps "$out")
	P50=$(wrk_pct "$out" 50%)
	P99=$(wrk_pct "$out" 99%)
	ERRORS=$((ERRORS + $(wrk_errors "$out")))
}
# paced_delay P50_MS: per-connection delay for about RATE req/s.
paced_delay() {
	awk -v c="$PACED_CONNS" -v t="$RATE" -v l="$1" \
		'BEGIN {d = int(c * 1000 / t - l + 0.5); if (d < 1) d = 1; print d}'
}

# Rounds: the machine's speed drifts from minute to minute, so every figure is
# measured once per round and the medians are reported.
declare -A R
add() { R[$1]="${R[$1]:-} $2"; }
for round in $(seq 1 "$ROUNDS"); do
	echo
	echo "######## round $round/$ROUNDS"
	start_feeengine ""
	probe fallback
	run "baseline: GET /healthz, $CONNS connections" /healthz "$CONNS" 0 vary
	add base_rps "$RPS"; add base_p99 "$P99"; p50=$P50
	d=$(paced_delay "$p50")
	run "baseline: GET /healthz paced ~$RATE req/s ($PACED_CONNS connections x 1 per ${d} ms)" /healthz "$PACED_CONNS" "$d" vary
	add base_paced_rps "$RPS"; add base_paced_p99 "$P99"
	run "deterministic: POST /v1/fees/calculate peak, $CONNS connections" /v1/fees/calculate "$CONNS" 0 vary
	add det_rps "$RPS"; add det_p99 "$P99"; p50=$P50
	d=$(paced_delay "$p50")
	run "deterministic: paced ~$RATE req/s ($PACED_CONNS connections x 1 per ${d} ms)" /v1/fees/calculate "$PACED_CONNS" "$d" vary
	add det_paced_rps "$RPS"; add det_paced_p99 "$P99"
	stop_feeengine

	start_feeengine "$STUB_CLAUDE_KEY"
	probe ai # the call to the stub: the band's decision is cached from here on
	run "AI (cached decision): peak, $CONNS connections" /v1/fees/calculate "$CONNS" 0 band
	add ai_rps "$RPS"; add ai_p99 "$P99"; p50=$P50
	d=$(paced_delay "$p50")
	run "AI (cached decision): paced ~$RATE req/s ($PACED_CONNS connections x 1 per ${d} ms)" /v1/fees/calculate "$PACED_CONNS" "$d" band
	add ai_paced_rps "$RPS"; add ai_paced_p99 "$P99"
	stop_feeengine
done
m() { median ${R[$1]}; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
echo
echo "== results: medians of $ROUNDS rounds ($(nproc) CPUs; wrk, the stub, Redis and the daemons share them)"
for k in base_paced_p99 det_paced_p99 ai_paced_p99; do echo "   rounds $k:${R[$k]}"; done
base_rps=$(m base_rps) base_p99=$(m base_p99) base_paced_rps=$(m base_paced_rps) base_paced_p99=$(m base_paced_p99)
det_rps=$(m det_rps) det_p99=$(m det_p99) det_paced_rps=$(m det_paced_rps) det_paced_p99=$(m det_paced_p99)
ai_rps=$(m ai_rps) ai_p99=$(m ai_p99) ai_paced_rps=$(m ai_paced_rps) ai_paced_p99=$(m ai_paced_p99)
printf '   %-46s %10s %8s %10s\n' "" "req/s" "p99 ms" "vs healthz"
printf '   %-46s %10.0f %8s %10s\n' "GET /healthz (static baseline, c=$CONNS)" "$base_rps" "$base_p99" "1.00"
printf '   %-46s %10.0f %8s %10s\n' "GET /healthz, paced (~$RATE/s)" "$base_paced_rps" "$base_paced_p99" ""
printf '   %-46s %10.0f %8s %10s\n' "fees, deterministic, peak (c=$CONNS)" "$det_rps" "$det_p99" "$(ratio "$det_rps" "$base_rps")"
printf '   %-46s %10.0f %8s %10s\n' "fees, deterministic, paced (~$RATE/s)" "$det_paced_rps" "$det_paced_p99" ""
printf '   %-46s %10.0f %8s %10s\n' "fees, AI cached, peak (c=$CONNS)" "$ai_rps" "$ai_p99" "$(ratio "$ai_rps" "$base_rps")"
printf '   %-46s %10.0f %8s %10s\n' "fees, AI cached, paced (~$RATE/s)" "$ai_paced_rps" "$ai_paced_p99" ""
echo "   target: p99 < 5 ms at ~$RATE req/s; non-2xx or socket errors: $ERRORS"
[ "$ERRORS" -eq 0 ] || die "errors under load (see $TMP/api.log, $TMP/feeengine.log)"

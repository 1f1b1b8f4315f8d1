#!/usr/bin/env bash
# bench/webhooks.sh - webhook deliveries per second to a fast loopback
# receiver (bench/receiver.c, answers 204): BENCH_EVENTS (1000) events are
# committed at once into a running daemon's outbox; the rate, and the
# latency from each event's commit (its created_at) to its receipt.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
RAMPART_SCRIPT=bench-webhooks
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"
cd "$RAMPART_ROOT"
N=${BENCH_EVENTS:-1000}
. "$RAMPART_ROOT/bench/lib.sh"

cc -std=c11 -D_GNU_SOURCE -O2 -o "$TMP/receiver" bench/receiver.c -levent
RPORT=$(random_free_port)
"$TMP/receiver" "$RPORT" >"$TMP/receiver.out" 2>&1 &
remember_pid "$!" receiver TERM

psql_ -c "INSERT INTO webhook_endpoints (id, api_key_id, url, events, secret)
	VALUES ('we_' || gen_random_uuid(), 'bench', 'http://127.0.0.1:$RPORT/hook', ARRAY['*'],
	'whsec_' || encode(convert_to('bench-secret-24-bytes!!!', 'UTF8'), 'base64'));" >/dev/null

# Baseline, same run: the receiver itself under wrk (a second instance, so its
# statistics stay clean), 64 connections POSTing a delivery-sized body.
BPORT=$(random_free_port)
"$TMP/receiver" "$BPORT" >"$TMP/receiver-baseline.out" 2>&1 &
remember_pid "$!" receiver-baseline TERM
cat >"$TMP/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"id":"evt_00000000-0000-4000-8000-000000000000","type":"payment.completed",' ..
	'"created_at":"2026-11-22T00:00:00.000Z","data":{"id":"pay_bench_1","status":"COMPLETED"}}'
LUA
sleep 0.2
show wrk -t2 -c64 -d3s -s "$TMP/post.lua" "http://127.0.0.1:$BPORT/hook"
timeout 30 wrk -t2 -c64 -d3s -s "$TMP/post.lua" "http://127.0.0.1:$BPORT/hook" >"$TMP/wrk-baseline.out" 2>&1 ||
	die "baseline wrk failed: $(cat "$TMP/wrk-baseline.out")"
BASE_RPS=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$TMP/wrk-baseline.out")
echo "== baseline: the receiver alone answers $BASE_RPS POST/s (wrk, 64 connections)"

ADMIN=$(random_free_port)
cmd=(env REDIS_PREFIX=bench WEBHOOK_ALLOW_PRIVATE=1 LOG_LEVEL=warn
	${BENCH_ENDPOINT_CONCURRENCY:+WEBHOOK_ENDPOINT_CONCURRENCY=$BENCH_ENDPOINT_CONCURRENCY}
	${BENCH_RELAY_INTERVAL_MS:+WEBHOOK_RELAY_INTERVAL_MS=$BENCH_RELAY_INTERVAL_MS}
	METRICS_LISTEN="127.0.0.1:$ADMIN" "${BENCH_WEBHOOK_BIN:-bin/rampart-webhook}")
show "${cmd[@]}"
setsid "${cmd[@]}" >"$TMP/webhook.log" 2>&1 &
remember_pid "$!" rampart-webhook TERM
wait_http_200 "http://127.0.0.1:$ADMIN/readyz" 30 "$!"
# BENCH_ROUNDS (5) rounds, each waiting for the previous one to be recorded:
# N events committed at once; the clock runs from that commit (relay, queue,
# delivery) to the receiver's last receipt (it tells, GET /wait, so nothing
# polls while deliveries run), then until every attempt is recorded.
ROUNDS=${BENCH_ROUNDS:-5}
metric() {
	curl -s "http://127.0.0.1:$ADMIN/metrics" | awk -v m="$1" 'index($0, m) == 1 {v = $2} END {print v + 0}'
}
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.3f", b - a}'; }
rates=() p50s=() p99s=() drains=() firsts=()
for round in $(seq 1 "$ROUNDS"); do
	base_deferred=$(metric rampart_webhook_jobs_deferred_total)
	psql_ -c "INSERT INTO events (id, type, payment_id, data)
		SELECT 'evt_' || gen_random_uuid(), 'payment.completed', NULL,
		jsonb_build_object('id', 'pay_bench_' || n, 'status', 'COMPLETED')
		FROM generate_series(1, $N) n;" >/dev/null
	t0=$(date +%s.%N)
	got=$(curl -s --max-time 130 "http://127.0.0.1:$RPORT/wait?n=$N" | awk '{print $2}')
	[ "${got:-0}" -ge "$N" ] || die "only ${got:-0} of $N delivered within 120 s"
	while [ "$(psql_ -tAc "SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'")" \
		-lt $((round * N)) ]; do
		[ "$(since "$t0" | cut -d. -f1)" -lt 120 ] || die "deliveries not all recorded within 120 s"
		sleep 0.05
	done
	t2=$(since "$t0")
	curl -s "http://127.0.0.1:$RPORT/stats" >"$TMP/stats.$round"
	read -r _ received _ p50 _ p99 _ max _ span_us _ last_wall_us <"$TMP/stats.$round"
	[ "$received" -ge "$N" ] || die "the receiver got $received of $N deliveries"
	t1=$(awk -v a="$t0" -v b="$last_wall_us" 'BEGIN {printf "%.3f", b / 1000000 - a}')
	rate=$(awk -v t="$t1" -v n="$N" 'BEGIN {printf "%.0f", n / t}')
	drain=$(awk -v n="$received" -v us="$span_us" 'BEGIN {printf "%.0f", (us > 0 ? (n - 1) * 1000000 / us : 0)}')
	first=$(awk -v max="$max" -v us="$span_us" 'BEGIN {printf "%.0f", max - us / 1000}')
	rates+=("$rate") p50s+=("$p50") p99s+=("$p99") drains+=("$drain") firsts+=("$first")
	echo "   round $round: $N delivered ${t1} s after their commit = $rate deliveries/s" \
		"(recorded after $t2 s); created_at -> receipt p50 $p50 ms, p99 $p99 ms, max $max ms;" \
		"first receipt ~$first ms; drain $drain/s;" \
		"deferred $(($(metric rampart_webhook_jobs_deferred_total) - base_deferred))"
	[ "${BENCH_TIMELINE:-0}" = 1 ] && echo "     $(sed -n 2p "$TMP/stats.$round")"
done
rate=$(median "${rates[@]}")
echo "== $N events, median of $ROUNDS rounds: $rate deliveries/s from commit to receipt" \
	"(min $(printf '%s\n' "${rates[@]}" | sort -n | head -1), max $(printf '%s\n' "${rates[@]}" | sort -n | tail -1));" \
	"p50 $(median "${p50s[@]}") ms, p99 $(median "${p99s[@]}") ms; first receipt $(median "${firsts[@]}") ms;" \
	"drain (first receipt to last) $(median "${drains[@]}")/s"
echo "   deliveries/s vs the receiver's own capacity: $(awk -v r="$rate" -v base="$BASE_RPS" \
	'BEGIN {printf "%.2f", r / base}')"

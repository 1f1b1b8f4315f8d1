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
RECV_PID=$!
remember_pid "$RECV_PID" receiver TERM

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
	METRICS_LISTEN="127.0.0.1:$ADMIN" bin/rampart-webhook)
show "${cmd[@]}"
setsid "${cmd[@]}" >"$TMP/webhook.log" 2>&1 &
remember_pid "$!" rampart-webhook TERM
wait_http_200 "http://127.0.0.1:$ADMIN/readyz" 30 "$!"
# The clock starts when the events are committed: relay, queue, delivery.
psql_ -c "INSERT INTO events (id, type, payment_id, data)
	SELECT 'evt_' || gen_random_uuid(), 'payment.completed', NULL,
	jsonb_build_object('id', 'pay_bench_' || n, 'status', 'COMPLETED')
	FROM generate_series(1, $N) n;" >/dev/null
t0=$(date +%s.%N)
echo "== $N events committed (receiver on 127.0.0.1:$RPORT)"
# Delivered = the receiver answered 2xx (the daemon's counter; polling its
# /metrics costs next to nothing, unlike counting rows in PostgreSQL).
delivered() {
	curl -s "http://127.0.0.1:$ADMIN/metrics" |
		awk '/^rampart_webhook_deliveries_total\{outcome="delivered"\}/ {v = $2} END {print v + 0}'
}
while :; do
	got=$(delivered)
	[ "${got:-0}" -ge "$N" ] && break
	awk -v t0="$t0" -v now="$(date +%s.%N)" 'BEGIN {exit !(now - t0 > 120)}' &&
		die "only ${got:-0} of $N delivered within 120 s"
	sleep 0.02
done
t1=$(date +%s.%N)
deferred=$(curl -s "http://127.0.0.1:$ADMIN/metrics" |
	awk '/^rampart_webhook_jobs_deferred_total/ {v = $2} END {print v + 0}')
# ... and every attempt recorded in PostgreSQL.
while [ "$(psql_ -tAc "SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'")" -lt "$N" ]; do
	awk -v t0="$t0" -v now="$(date +%s.%N)" 'BEGIN {exit !(now - t0 > 120)}' &&
		die "deliveries not all recorded within 120 s"
	sleep 0.05
done
t2=$(date +%s.%N)
stop_pid "$RECV_PID" receiver TERM
read -r _ received _ p50 _ p99 _ max _ span_us <"$TMP/receiver.out"
echo "   $N deliveries in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s" \
	"after their commit = $(awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN {printf "%.0f", n / (b - a)}') deliveries/s" \
	"(all recorded after $(awk -v a="$t0" -v b="$t2" 'BEGIN {printf "%.2f", b - a}') s)"
echo "   receiver: $received requests; commit -> receipt p50 ${p50} ms, p99 ${p99} ms, max ${max} ms"
echo "   $(sed -n 2p "$TMP/receiver.out")"
echo "   jobs deferred (their endpoint had too many waiting; back once its backlog drains): $deferred"
echo "   drain rate, first receipt to last: $(awk -v n="$received" -v us="$span_us" \
	'BEGIN {if (us > 0) printf "%.0f", (n - 1) * 1000000 / us; else print "n/a"}') deliveries/s" \
	"(the queue's, without the relay's start)"
echo "   deliveries/s vs the receiver's own capacity: $(awk -v a="$t0" -v b="$t1" -v n="$N" -v base="$BASE_RPS" \
	'BEGIN {printf "%.2f", n / (b - a) / base}')"

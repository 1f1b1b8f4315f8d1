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

ADMIN=$(random_free_port)
cmd=(env REDIS_PREFIX=bench WEBHOOK_ALLOW_PRIVATE=1 LOG_LEVEL=warn
	WEBHOOK_ENDPOINT_CONCURRENCY="${BENCH_ENDPOINT_CONCURRENCY:-8}"
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
while :; do
	got=$(psql_ -tAc "SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'")
	[ "$got" -ge "$N" ] && break
	awk -v t0="$t0" -v now="$(date +%s.%N)" 'BEGIN {exit !(now - t0 > 120)}' &&
		die "only $got of $N delivered within 120 s"
	sleep 0.05
done
t1=$(date +%s.%N)
stop_pid "$RECV_PID" receiver TERM
read -r _ received _ p50 _ p99 _ max <"$TMP/receiver.out"
echo "   $N deliveries in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s" \
	"after their commit = $(awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN {printf "%.0f", n / (b - a)}') deliveries/s"
echo "   receiver: $received requests; commit -> receipt p50 ${p50} ms, p99 ${p99} ms, max ${max} ms"

#!/usr/bin/env bash
# bench/e2e.sh - payments through all five states per second, with one and
# with two workers, instant mock settlement (bench/README.md).
#
# N payments (BENCH_PAYMENTS, 20000) are written straight into PostgreSQL as
# the api writes them (payment + first history row), their first jobs queued
# in one redis-cli --pipe, then the workers start and the clock runs until
# every payment is COMPLETED. PostgreSQL has default durability (fsync on).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
RAMPART_SCRIPT=bench-e2e
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"
cd "$RAMPART_ROOT"

N=${BENCH_PAYMENTS:-20000}
LIMIT=${BENCH_E2E_LIMIT:-300} # seconds per run, at most
. "$RAMPART_ROOT/bench/lib.sh"
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

# run WORKERS PREFIX: seeds N payments, queues their jobs, starts WORKERS
# workers and prints "seconds completed" when all N are COMPLETED.
run() {
	local workers=$1 prefix=$2 i pids=() t0 t1 done_n
	psql_ >/dev/null -c "INSERT INTO payments (id, api_key_id, quote_id, status, amount, currency,
		payout_amount, payout_currency, exchange_rate, platform_fee, onramp_fee, offramp_fee,
		total_fees, chain, source_account, destination_account)
		SELECT 'pay_' || u, 'bench', 'quote_' || u, 'PENDING', 100000, 'USD', 89056, 'EUR', 0.92,
		2000, 700, 500, 3200, 'base', 'acct_src', 'acct_dst'
		FROM (SELECT gen_random_uuid() AS u FROM generate_series(1, $N)) s;
		INSERT INTO payment_history (payment_id, to_status)
		SELECT id, 'PENDING' FROM payments WHERE api_key_id = 'bench' AND status = 'PENDING';"
	rcli XGROUP CREATE "$prefix:{payments}:jobs" workers 0 MKSTREAM >/dev/null
	# One XADD per payment, in Redis' protocol, through one pipe.
	psql_ -tAc "SELECT id FROM payments WHERE status = 'PENDING'" |
		awk -v key="$prefix:{payments}:jobs" '{
			n = split("XADD " key " * payment_id " $1 " step onramp_initiate attempt 1 request_id bench", a, " ")
			printf "*%d\r\n", n
			for (i = 1; i <= n; i++) printf "$%d\r\n%s\r\n", length(a[i]), a[i]
		}' | rcli --pipe >/dev/null
	t0=$(date +%s.%N)
	for i in $(seq 1 "$workers"); do
		setsid env REDIS_PREFIX="$prefix" METRICS_LISTEN="127.0.0.1:$(random_free_port)" \
			MOCK_SETTLE_MIN_MS=0 MOCK_SETTLE_MAX_MS=0 POLL_MIN_MS=0 POLL_MAX_MS=1 \
			WORKER_CONCURRENCY=2048 DB_POOL_SIZE=${BENCH_DB_POOL:-4} LOG_LEVEL=warn bin/rampart-worker >>"$TMP/worker-$prefix-$i.log" 2>&1 &
		pids+=($!)
		remember_pid "$!" rampart-worker TERM
	done
	while :; do
		done_n=$(psql_ -tAc "SELECT count(*) FROM payments WHERE status = 'COMPLETED' AND api_key_id = 'bench'")
		[ "$done_n" -ge "$N" ] && break
		awk -v t0="$t0" -v now="$(date +%s.%N)" -v lim="$LIMIT" 'BEGIN {exit !(now - t0 > lim)}' &&
			die "only $done_n of $N payments completed within $LIMIT s"
		sleep 0.2
	done
	t1=$(date +%s.%N)
	for p in "${pids[@]}"; do stop_pid "$p" rampart-worker TERM; done
	# Every payment went through exactly five states.
	local hist
	hist=$(psql_ -tAc "SELECT count(*) FROM payment_history h JOIN payments p ON p.id = h.payment_id WHERE p.api_key_id = 'bench'")
	[ "$hist" -eq $((5 * N)) ] || die "history rows: $hist, want $((5 * N))"
	RESULT=$(awk -v t0="$t0" -v t1="$t1" -v n="$N" 'BEGIN {printf "%.2f s = %.0f payments/s", t1 - t0, n / (t1 - t0)}')
	psql_ -c "DELETE FROM events; DELETE FROM payments WHERE api_key_id = 'bench'" >/dev/null
}

echo "== $N payments, instant mock settlement, PostgreSQL fsync=on"
echo "\$ env MOCK_SETTLE_MIN_MS=0 MOCK_SETTLE_MAX_MS=0 POLL_MIN_MS=0 WORKER_CONCURRENCY=2048 bin/rampart-worker (x1, then x2)"
run 1 e2e1
echo "   1 worker : $N payments COMPLETED in $RESULT (4 transitions each after PENDING)"
run 2 e2e2
echo "   2 workers: $N payments COMPLETED in $RESULT"

#!/usr/bin/env bash
# bench/payments.sh - POST /v1/payments (a fresh quote and Idempotency-Key per
# request, quotes created beforehand) beside pgbench committing the same
# transaction shape (bench/pgbench_payment.sql), in alternating rounds.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
RAMPART_SCRIPT=bench-payments
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"
cd "$RAMPART_ROOT"

SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-16}
THREADS=${BENCH_THREADS:-2}
PER_ROUND=${BENCH_QUOTES_PER_ROUND:-100000}
KEY=sk_bench
LIMIT=$((SECS + 60))
. "$RAMPART_ROOT/bench/lib.sh"

# Quotes for both sides, valid for an hour: pgbench's are quote_pgb_<n>, the
# api's real quote ids (one file per round for wrk).
total=$((PER_ROUND * ROUNDS))
quote_cols="api_key_id, amount, currency, payout_currency, exchange_rate, platform_fee,
	onramp_fee, offramp_fee, total_fees, guaranteed_payout, chain, created_at, expires_at"
quote_vals="'bench', 100000, 'USD', 'EUR', 0.92, 2000, 700, 500, 3200, 89056, 'base', now(),
	now() + interval '1 hour'"
psql_ >/dev/null -c "CREATE SEQUENCE bench_quote_seq;
	INSERT INTO quotes (id, $quote_cols) SELECT 'quote_pgb_' || n, $quote_vals
	FROM generate_series(1, $total) n;
	INSERT INTO quotes (id, $quote_cols) SELECT 'quote_' || gen_random_uuid(), $quote_vals
	FROM generate_series(1, $total);"
psql_ -tAc "SELECT id FROM quotes WHERE id NOT LIKE 'quote_pgb_%'" |
	split -l "$PER_ROUND" -d -a 2 - "$TMP/quotes-"

API_PORT=$(random_free_port)
URL="http://127.0.0.1:$API_PORT/v1/payments"
setsid env API_LISTEN="127.0.0.1:$API_PORT" API_KEYS="$KEY" LOG_LEVEL=warn \
	RATE_LIMIT_RPS=1000000 RATE_LIMIT_BURST=10000000 REDIS_PREFIX=bench \
	bin/rampart-api >"$TMP/api.log" 2>&1 &
remember_pid "$!" rampart-api TERM
wait_http_200 "http://127.0.0.1:$API_PORT/readyz" 30 "$!"

pgbench_cmd=("$PGBIN/pgbench" -n -M prepared -c "$CONNS" -j "$THREADS" -T "$SECS" -l
	-f "$RAMPART_ROOT/bench/pgbench_payment.sql" -h 127.0.0.1 -p "$PG_PORT" -U rampart rampart)
pg_all=() pg_p99_all=() api_all=() api_p99_all=()
for round in $(seq 1 "$ROUNDS"); do
	echo "== round $round/$ROUNDS: pgbench, the payment transaction, $CONNS clients, ${SECS}s"
	rm -rf "$TMP/pgbench" && mkdir -p "$TMP/pgbench"
	show "${pgbench_cmd[@]}"
	(cd "$TMP/pgbench" && timeout "$LIMIT" "${pgbench_cmd[@]}") >"$TMP/pgbench.out" 2>&1 ||
		{ cat "$TMP/pgbench.out" >&2; die "pgbench failed"; }
	grep -E '^(number of (transactions|failed)|tps)' "$TMP/pgbench.out" | sed 's/^/   /'
	pg_all+=("$(awk '/^tps = / {print $3; exit}' "$TMP/pgbench.out")")
	pg_p99_all+=("$(cat "$TMP"/pgbench/pgbench_log.* | awk '{print $3}' | sort -n |
		awk '{v[NR] = $1} END {i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f", v[i] / 1000}')")

	qfile=$(printf '%s/quotes-%02d' "$TMP" $((round - 1)))
	echo "== round $round/$ROUNDS: wrk, POST /v1/payments, $THREADS threads, $CONNS connections, ${SECS}s"
	wrk_cmd=(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency -s "$RAMPART_ROOT/bench/payments.lua" "$URL")
	show env BENCH_QUOTES="$qfile" BENCH_THREADS="$THREADS" "${wrk_cmd[@]}"
	BENCH_API_KEY=$KEY BENCH_QUOTES=$qfile BENCH_THREADS=$THREADS timeout "$LIMIT" "${wrk_cmd[@]}" \
		>"$TMP/wrk.out" 2>&1 || { cat "$TMP/wrk.out" >&2; die "wrk failed"; }
	sed 's/^/   /' "$TMP/wrk.out" | grep -E 'requests in|Requests/sec|99%|Non-2xx'
	if grep -q "Non-2xx" "$TMP/wrk.out"; then
		die "the api answered non-2xx: 503 OVERLOADED from admission control during a commit stall (docs/operations.md), or quotes used up (raise BENCH_QUOTES_PER_ROUND)"
	fi
	api_all+=("$(wrk_rps "$TMP/wrk.out")")
	api_p99_all+=("$(wrk_pct "$TMP/wrk.out" 99%)")
done
pg_tps=$(median "${pg_all[@]}")
api_rps=$(median "${api_all[@]}")
echo
echo "== results ($(nproc) CPUs; load generators share them with the servers)"
echo "   rounds: pgbench ${pg_all[*]} tps; payments ${api_all[*]} req/s"
printf '   %-40s %10.0f  p99 %s ms\n' "pgbench payment transaction (c=$CONNS)" "$pg_tps" "$(median "${pg_p99_all[@]}")"
printf '   %-40s %10.0f  p99 %s ms\n' "POST /v1/payments (c=$CONNS)" "$api_rps" "$(median "${api_p99_all[@]}")"
echo "   payments/pgbench throughput ratio: $(awk -v a="$api_rps" -v p="$pg_tps" 'BEGIN {printf "%.2f", a / p}')"
echo "   payments rows: $(psql_ -tAc "SELECT count(*) FROM payments") (pgbench's and the api's)"

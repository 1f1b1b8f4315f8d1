#!/usr/bin/env bash
# bench/run.sh - `make bench`: POST /v1/quotes throughput and latency against
# pgbench inserting the same row shape into the same PostgreSQL (bench/README.md).
#
# Everything is private and on loopback: PostgreSQL (default durability: fsync
# and synchronous_commit on) and Redis on free ports in a temp dir, the release
# api; all stopped by PID on exit. Each step is bounded by `timeout`.
#
# Knobs (environment): BENCH_SECONDS (10), BENCH_ROUNDS (3), BENCH_CONNS (16), BENCH_THREADS (2),
# BENCH_PACED_CONNS (32), BENCH_KEEP=1 keeps the temp dir.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
RAMPART_SCRIPT=bench
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"
cd "$RAMPART_ROOT"

SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-16}
THREADS=${BENCH_THREADS:-2}
PACED_CONNS=${BENCH_PACED_CONNS:-32}
KEY=sk_bench
LIMIT=$((SECS + 60)) # hard bound for each load step

. "$RAMPART_ROOT/bench/lib.sh"
psql_ -f bench/setup.sql
echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT:" \
	"fsync=$(psql_ -tAc 'SHOW fsync'), synchronous_commit=$(psql_ -tAc 'SHOW synchronous_commit')"

# ---- the api ------------------------------------------------------------------------
API_PORT=$(random_free_port)
URL="http://127.0.0.1:$API_PORT/v1/quotes"
LAST_PID=""
setsid env API_LISTEN="127.0.0.1:$API_PORT" API_KEYS="$KEY" LOG_LEVEL=warn \
	RATE_LIMIT_RPS=1000000 RATE_LIMIT_BURST=10000000 REDIS_PREFIX=bench \
	bin/rampart-api >"$TMP/api.log" 2>&1 &
API_PID=$!
remember_pid "$API_PID" rampart-api TERM
wait_http_200 "http://127.0.0.1:$API_PORT/readyz" 30 "$API_PID"
code=$(curl -s -o "$TMP/probe.json" -w '%{http_code}' -X POST "$URL" -H "Authorization: Bearer $KEY" \
	-H 'Content-Type: application/json' -d '{"from_currency":"USD","to_currency":"EUR","amount":100000}')
[ "$code" = 201 ] || die "probe POST /v1/quotes answered $code: $(cat "$TMP/probe.json")"


# ---- pgbench, the api at full speed, the api at half speed: alternating rounds ------------------------------
# This machine's throughput drifts by tens of percent from minute to minute
# (shared cores, fsync latency), so the two are measured in alternating rounds
# and compared by their medians.
pgbench_cmd=("$PGBIN/pgbench" -n -M prepared -c "$CONNS" -j "$THREADS" -T "$SECS" -l
	-f "$RAMPART_ROOT/bench/pgbench_insert.sql" -h 127.0.0.1 -p "$PG_PORT" -U rampart rampart)
wrk_cmd=(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency -s "$RAMPART_ROOT/bench/quotes.lua" "$URL")
pg_all=() pg_p99_all=() api_all=() api_p99_all=() api_p50_all=() paced_all=() paced_p99_all=()
api_err=0 paced_err=0
for round in $(seq 1 "$ROUNDS"); do
	echo
	echo "== round $round/$ROUNDS: pgbench, one quote-shaped INSERT per transaction, $CONNS clients, ${SECS}s"
	rm -rf "$TMP/pgbench" && mkdir -p "$TMP/pgbench"
	show "${pgbench_cmd[@]}"
	(cd "$TMP/pgbench" && timeout "$LIMIT" "${pgbench_cmd[@]}") >"$TMP/pgbench.out" 2>&1 || {
		cat "$TMP/pgbench.out" >&2
		die "pgbench failed"
	}
	grep -E '^(number of (transactions|failed)|latency average|tps)' "$TMP/pgbench.out" | sed 's/^/   /'
	pg_all+=("$(awk '/^tps = / {print $3; exit}' "$TMP/pgbench.out")")
	# Per-transaction log lines: client txno latency_us script epoch epoch_us.
	pg_p99_all+=("$(cat "$TMP"/pgbench/pgbench_log.* | awk '{print $3}' | sort -n |
		awk '{v[NR] = $1} END {i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f", v[i] / 1000}')")
	echo "   p99 latency = ${pg_p99_all[-1]} ms (from pgbench -l)"

	echo
	echo "== round $round/$ROUNDS: wrk, POST /v1/quotes, $THREADS threads, $CONNS connections, ${SECS}s"
	show env BENCH_API_KEY="$KEY" "${wrk_cmd[@]}"
	BENCH_API_KEY=$KEY timeout "$LIMIT" "${wrk_cmd[@]}" >"$TMP/wrk.out" 2>&1 || {
		cat "$TMP/wrk.out" >&2
		die "wrk failed"
	}
	sed 's/^/   /' "$TMP/wrk.out"
	api_all+=("$(wrk_rps "$TMP/wrk.out")")
	api_p99_all+=("$(wrk_pct "$TMP/wrk.out" 99%)")
	api_p50_all+=("$(wrk_pct "$TMP/wrk.out" 50%)")
	api_err=$((api_err + $(wrk_errors "$TMP/wrk.out")))

	# The api at about half this round's peak, paced: each connection waits
	# delay_ms before each request, so the offered rate is about
	# conns * 1000 / (delay_ms + latency); the median latency of the peak run
	# is subtracted. wrk's delay is whole milliseconds, so the rate is approximate.
	target=$(awk -v r="${api_all[-1]}" 'BEGIN {printf "%d", r / 2}')
	[ "$target" -ge 1 ] || die "no throughput measured"
	delay_ms=$(awk -v c="$PACED_CONNS" -v t="$target" -v l="${api_p50_all[-1]}" \
		'BEGIN {d = int(c * 1000 / t - l + 0.5); if (d < 1) d = 1; print d}')
	echo
	echo "== round $round/$ROUNDS: wrk paced, target ~${target} req/s = $PACED_CONNS connections x 1 request per ${delay_ms} ms"
	paced_cmd=(wrk -t"$THREADS" -c"$PACED_CONNS" -d"${SECS}s" --latency -s "$RAMPART_ROOT/bench/quotes.lua" "$URL")
	show env BENCH_API_KEY="$KEY" BENCH_DELAY_MS="$delay_ms" "${paced_cmd[@]}"
	BENCH_API_KEY=$KEY BENCH_DELAY_MS=$delay_ms timeout "$LIMIT" "${paced_cmd[@]}" >"$TMP/wrk-paced.out" 2>&1 || {
		cat "$TMP/wrk-paced.out" >&2
		die "wrk (paced) failed"
	}
	sed 's/^/   /' "$TMP/wrk-paced.out"
	paced_all+=("$(wrk_rps "$TMP/wrk-paced.out")")
	paced_p99_all+=("$(wrk_pct "$TMP/wrk-paced.out" 99%)")
	paced_err=$((paced_err + $(wrk_errors "$TMP/wrk-paced.out")))
done
pg_tps=$(median "${pg_all[@]}")
pg_p99=$(median "${pg_p99_all[@]}")
api_rps=$(median "${api_all[@]}")
api_p99=$(median "${api_p99_all[@]}")
paced_rps=$(median "${paced_all[@]}")
paced_p99=$(median "${paced_p99_all[@]}")
target=$(awk -v r="$api_rps" 'BEGIN {printf "%d", r / 2}')

rows=$(psql_ -tAc 'SELECT count(*) FROM quotes')
ratio=$(awk -v a="$api_rps" -v p="$pg_tps" 'BEGIN {if (p > 0) printf "%.2f", a / p; else print "n/a"}')

echo
echo "== results ($(nproc) CPUs; load generators share them with the servers)"
printf '   %-34s %12s %10s\n' "" "req/s" "p99 ms"
echo "   rounds: pgbench ${pg_all[*]} tps; quotes ${api_all[*]} req/s;" \
	"paced p99 ${paced_p99_all[*]} ms (medians below)"
printf '   %-34s %12.0f %10s\n' "pgbench INSERT (c=$CONNS)" "$pg_tps" "$pg_p99"
printf '   %-34s %12.0f %10s\n' "POST /v1/quotes peak (c=$CONNS)" "$api_rps" "$api_p99"
printf '   %-34s %12.0f %10s\n' "POST /v1/quotes paced (~$target/s)" "$paced_rps" "$paced_p99"
echo "   quotes/pgbench throughput ratio: $ratio"
echo "   non-2xx or socket errors: peak $api_err, paced $paced_err; quotes rows written: $rows"
[ "$api_err" -eq 0 ] && [ "$paced_err" -eq 0 ] || die "the api returned errors under load (see $TMP/api.log)"

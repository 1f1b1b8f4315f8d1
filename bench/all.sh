#!/usr/bin/env bash
# bench/all.sh - `make bench`: one orchestrated run against the machine's limits
# and real peers, written to bench/results/<date>.{md,json} with PNG plots
# (bench/README.md, docs/performance.md).
#
# One private PostgreSQL (default durability) and Redis (the settings of
# `make run`, via bench/lib.sh), then, each step bounded by `timeout`:
#   1. limits: pgbench INSERT, primary-key SELECT and the payment transaction
#      (16 clients, -M prepared; the INSERT and the transaction also at a
#      constant half of their rate), redis-benchmark XADD, wrk against nginx
#      serving a static JSON file;
#   2. the api through bench/rate.c: closed-loop saturation, then 25/50/75%
#      of it at a constant arrival rate (latency from each request's due time),
#      then (quotes, payments, GET) alternating rounds beside pgbench;
#   3. the pipeline: N payments through all five states with 1 and 2 workers,
#      payment.completed webhooks to a loopback receiver;
#   4. BullMQ (npm) running the same 5-step chain on the same Redis;
#   5. Artillery (npm) running the original system's scenario, then 10x, 20x,
#      50x its arrival rate;
#   6. RSS and CPU of the daemons, Redis memory, PostgreSQL size;
#   7. overload: half the payments saturation rate (the control), 2x, then half again;
# then (full runs only) the older scripts: run.sh, payments.sh, e2e.sh,
# webhooks.sh, fees.sh, each with its own servers.
#
# QUICK=1: short steps, fewer payments, only the 50% constant-rate run per
# endpoint, Artillery at 20x only, no perf profiles, no alternating rounds
# (< 3 minutes); knobs BENCH_SECONDS, BENCH_ALT_ROUNDS (3), BENCH_ALT_SECONDS (5),
# BENCH_PAYMENTS, BENCH_OVER_SECONDS, BENCH_ARTILLERY=0 (skip it), BENCH_ART_MULTS ("10 20 50"),
# BENCH_PERF=0|1 (profiles of the quotes and payments saturation runs),
# BENCH_SKIP_OLD=1, BENCH_OLD_ROUNDS (1: rounds of each older script),
# BENCH_RESULTS (the output folder), BENCH_KEEP=1.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
RAMPART_SCRIPT=bench-all
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"
cd "$RAMPART_ROOT"
T_START=$(date +%s)

QUICK=${QUICK:-0}
[ "$QUICK" = 1 ] || QUICK=0
if [ "$QUICK" = 1 ]; then
	SECS=${BENCH_SECONDS:-2} N=${BENCH_PAYMENTS:-2000} OVER_SECS=${BENCH_OVER_SECONDS:-5}
else
	SECS=${BENCH_SECONDS:-10} N=${BENCH_PAYMENTS:-20000} OVER_SECS=${BENCH_OVER_SECONDS:-30}
fi
CONNS=16
# Alternating rounds of the api and its pgbench baseline (section 2).
ALT_ROUNDS=${BENCH_ALT_ROUNDS:-$((QUICK == 1 ? 0 : 3))} ALT_SECS=${BENCH_ALT_SECONDS:-5}
KEY=sk_bench
LIMIT=$((SECS + 60))
RATE_BIN=${RATE_BIN:-build/rel/bench/rate}
# Artillery 2.0.21 (bench/artillery/package.json) needs Node.js 18.16 or
# newer; Debian 12's own is 18.20. Say so before the run, not after.
if [ "${BENCH_ARTILLERY:-1}" != 0 ]; then
	node_ok=$(node -p 'const [a, b] = process.versions.node.split(".").map(Number); a > 18 || (a === 18 && b >= 16) ? 1 : 0' 2>/dev/null || echo 0)
	[ "$node_ok" = 1 ] ||
		die "Artillery needs Node.js 18.16 or newer (found $(node --version 2>/dev/null || echo none));" \
			"install it (scripts/deps.sh --bench) or run with BENCH_ARTILLERY=0"
fi
[ -x "$RATE_BIN" ] || die "$RATE_BIN missing: run make bench-tools"

. "$RAMPART_ROOT/bench/lib.sh"
STAMP=$(date -u +%Y-%m-%d-%H%M)
OUT=${BENCH_RESULTS:-$RAMPART_ROOT/bench/results}
mkdir -p "$OUT"
REC="$TMP/records.jsonl"
: >"$REC"
REPORTED=0
# On any exit, a report of what was measured so far (a failed step leaves
# the earlier figures usable), then bench/lib.sh's clean-up.
all_on_exit() {
	local rc=$?
	trap - EXIT
	if [ "$REPORTED" = 0 ] && [ -s "$REC" ]; then
		say "writing a partial report (exit status $rc)"
		/usr/bin/python3 bench/report.py "$REC" "$TMP" "$OUT" "$STAMP-partial" "$QUICK" \
			$(($(date +%s) - T_START)) "$(nproc)" || true
	fi
	# Hand rc on as $?; without set +e a failing rc would end the shell
	# right here (errexit inside the trap) and leave the servers running.
	set +e
	(exit "$rc")
	bench_on_exit
}
trap all_on_exit EXIT

jstr() { /usr/bin/python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }
# rec ID SECTION LABEL CMD JSON: one raw record for the report.
rec() { printf '{"id":%s,"section":%s,"label":%s,"cmd":%s,"data":%s}\n' \
	"$(jstr "$1")" "$(jstr "$2")" "$(jstr "$3")" "$(jstr "$4")" "$5" >>"$REC"; }
jget() { /usr/bin/python3 -c 'import json, sys
d = json.loads(sys.argv[1])
for k in sys.argv[2].split("."): d = d[k]
print(d)' "$1" "$2"; }
cmdline() { show "$@" | sed 's/^\$ //'; }
# step TITLE: prints the title and notes, in $TMP/steps.tsv, how long the
# previous step took (the report's last table).
STEP_T=$(date +%s.%N) STEP_NAME="start-up and set-up"
step() {
	local now
	now=$(date +%s.%N)
	printf '%s\t%.1f\n' "$STEP_NAME" "$(awk -v a="$STEP_T" -v b="$now" 'BEGIN {print b - a}')" >>"$TMP/steps.tsv"
	STEP_T=$now STEP_NAME=$*
	echo
	echo "== $*"
}

PGB=("$PGBIN/pgbench" -n -M prepared -c "$CONNS" -j 2 -T "$SECS" -h 127.0.0.1 -p "$PG_PORT" -U rampart)
# pgbench_run ID LABEL SCRIPT [ARGS...]: one pgbench run (a step of its own
# unless PGB_IN_STEP is set), percentiles from its -l log; SCRIPT is under
# the root unless absolute. With -R (a constant rate, Poisson arrivals)
# pgbench counts each transaction's latency from its scheduled start, as
# rate.c does, so waiting behind a stall is counted.
pgbench_run() {
	local id=$1 label=$2 script=$3 cmd tps p50 p99 p999
	shift 3
	case $script in /*) ;; *) script=$RAMPART_ROOT/$script ;; esac
	cmd=("${PGB[@]}" "$@" -l -f "$script" rampart)
	[ -n "${PGB_IN_STEP:-}" ] || step "$label"
	show "${cmd[@]}"
	rm -rf "$TMP/pgbench" && mkdir -p "$TMP/pgbench"
	(cd "$TMP/pgbench" && timeout "$LIMIT" "${cmd[@]}") >"$TMP/pgbench.out" 2>&1 ||
		{ cat "$TMP/pgbench.out" >&2; die "pgbench failed"; }
	tps=$(awk '/^tps = / {print $3; exit}' "$TMP/pgbench.out")
	read -r p50 p99 p999 < <(cat "$TMP"/pgbench/pgbench_log.* | awk '{print $3}' | sort -n |
		awk 'function at(q,  i) {i = int(NR * q); if (i < 1) i = 1; return v[i] / 1000}
			{v[NR] = $1} END {printf "%.3f %.3f %.3f\n", at(0.5), at(0.99), at(0.999)}')
	echo "   $tps tps, p50 $p50 ms, p99 $p99 ms, p99.9 $p999 ms"
	rec "$id" limits "$label" "$(cmdline "${cmd[@]}")" "{\"rps\":$tps,\"p50_ms\":$p50,\"p99_ms\":$p99,\"p999_ms\":$p999}"
	PGB_TPS=$tps
}

# ---- 1. limits ----------------------------------------------------------------------
psql_ -f bench/setup.sql
echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT:" \
	"fsync=$(psql_ -tAc 'SHOW fsync'), synchronous_commit=$(psql_ -tAc 'SHOW synchronous_commit')"
NQ=$((SECS * 6000 + 20000)) # quotes for the pgbench payment transaction
NSEL=50000                  # payments read by primary key (pgbench and GET /v1/payments/{id})
quote_cols="api_key_id, amount, currency, payout_currency, exchange_rate, platform_fee,
	onramp_fee, offramp_fee, total_fees, guaranteed_payout, chain, created_at, expires_at"
quote_vals="'bench', 100000, 'USD', 'EUR', 0.92, 2000, 700, 500, 3200, 89056, 'base', now(),
	now() + interval '1 hour'"
pay_cols="api_key_id, quote_id, status, amount, currency, payout_amount, payout_currency,
	exchange_rate, platform_fee, onramp_fee, offramp_fee, total_fees, chain, source_account,
	destination_account"
psql_ >/dev/null -c "CREATE SEQUENCE bench_quote_seq;
	INSERT INTO quotes (id, $quote_cols) SELECT 'quote_pgb_' || n, $quote_vals FROM generate_series(1, $NQ) n;
	INSERT INTO payments (id, $pay_cols) SELECT 'pay_' || md5('sel' || n)::uuid, 'bench', 'quote_' || md5('selq' || n)::uuid,
		'COMPLETED', 100000, 'USD', 89056, 'EUR', 0.92, 2000, 700, 500, 3200, 'base', 'acct_src',
		'acct_dst' FROM generate_series(1, $NSEL) n;
	INSERT INTO payment_history (payment_id, to_status) SELECT 'pay_' || md5('sel' || n)::uuid, 'PENDING'
		FROM generate_series(1, $NSEL) n;
	ANALYZE;"
cat >"$TMP/pgbench_select.sql" <<EOF
\\set n random(1, $NSEL)
SELECT * FROM payments WHERE id = 'pay_' || md5('sel' || :n)::uuid;
EOF
cp "$TMP/pgbench_select.sql" "$TMP/select.sql"
# Each at saturation, then at a constant half of that rate: the disk's own
# latency at the load the api's p99 target names (section 2's 50% runs).
pgbench_run pg_insert "pgbench: one quote-shaped INSERT per transaction, $CONNS clients, ${SECS}s" bench/pgbench_insert.sql
half=$(awk -v t="$PGB_TPS" 'BEGIN {printf "%d", t / 2}')
pgbench_run pg_insert_50 "pgbench: the same INSERT at a constant $half/s (50%), $CONNS clients, ${SECS}s" bench/pgbench_insert.sql -R "$half"
pgbench_run pg_payment "pgbench: the payment-creation transaction (bench/pgbench_payment.sql), $CONNS clients, ${SECS}s" bench/pgbench_payment.sql
half=$(awk -v t="$PGB_TPS" 'BEGIN {printf "%d", t / 2}')
pgbench_run pg_payment_50 "pgbench: the same transaction at a constant $half/s (50%), $CONNS clients, ${SECS}s" bench/pgbench_payment.sql -R "$half"
# The SELECT script lives in TMP: it names the seeded range.
echo "   (script: $(tr '\n' ' ' <"$TMP/select.sql"))"
pgbench_run pg_select "pgbench: primary-key SELECT of a payment, $CONNS clients, ${SECS}s" "$TMP/select.sql"

step "redis-benchmark: XADD, $CONNS clients"
nx=$((SECS * 40000))
cmd=(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$CONNS" -n "$nx" -q -r 1000000 XADD bench:limits MAXLEN '~' 100000 '*' payment_id pay___rand_int__ step onramp_initiate)
show "${cmd[@]}"
timeout "$LIMIT" "${cmd[@]}" 2>&1 | tr '\r' '\n' | grep -v '^$' | tail -1 >"$TMP/rb.out"
cat "$TMP/rb.out"
xadd=$(awk '{for (i = 1; i <= NF; i++) if ($i == "requests") print $(i - 1)}' "$TMP/rb.out" | tail -1)
[ -n "$xadd" ] || xadd=$(grep -oE '[0-9.]+ requests per second' "$TMP/rb.out" | awk '{print $1}')
rec redis_xadd limits "redis-benchmark XADD, $CONNS clients" "$(cmdline "${cmd[@]}")" "{\"rps\":${xadd:-0}}"
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" DEL bench:limits >/dev/null

step "wrk: a static JSON file served by nginx, $CONNS connections, ${SECS}s"
NGX_PORT=$(random_free_port)
mkdir -p "$TMP/nginx/www" "$TMP/nginx/tmp"
printf '{"status":"ok","checks":{"postgres":"ok","redis":"ok"}}\n' >"$TMP/nginx/www/healthz.json"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $TMP/nginx/tmp;
	proxy_temp_path $TMP/nginx/tmp;
	fastcgi_temp_path $TMP/nginx/tmp;
	uwsgi_temp_path $TMP/nginx/tmp;
	scgi_temp_path $TMP/nginx/tmp;
	default_type application/json;
	server { listen 127.0.0.1:$NGX_PORT; root $TMP/nginx/www; }
}
EOF
chmod -R a+rX "$TMP/nginx"
setsid nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' >"$TMP/nginx/out.log" 2>&1 &
NGX_PID=$!
remember_pid "$NGX_PID" nginx QUIT
wait_http_200 "http://127.0.0.1:$NGX_PORT/healthz.json" 30 "$NGX_PID"
cmd=(wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "http://127.0.0.1:$NGX_PORT/healthz.json")
show "${cmd[@]}"
timeout "$LIMIT" "${cmd[@]}" >"$TMP/wrk.out" 2>&1 || die "wrk failed: $(cat "$TMP/wrk.out")"
grep -E 'Requests/sec|99%' "$TMP/wrk.out" | sed 's/^/   /'
rec nginx_static limits "nginx, static JSON file (1 worker process), wrk $CONNS connections" "$(cmdline "${cmd[@]}")" \
	"{\"rps\":$(wrk_rps "$TMP/wrk.out"),\"p99_ms\":$(wrk_pct "$TMP/wrk.out" 99%)}"
stop_pid "$NGX_PID" nginx QUIT
cmd=(wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "http://127.0.0.1:$NGX_PORT/healthz.json")

# ---- the daemons -----------------------------------------------------------------------
API_PORT=$(random_free_port)
BASE="http://127.0.0.1:$API_PORT"
setsid env API_LISTEN="127.0.0.1:$API_PORT" API_KEYS="$KEY" LOG_LEVEL=warn \
	RATE_LIMIT_RPS=1000000 RATE_LIMIT_BURST=10000000 REDIS_PREFIX=bench \
	bin/rampart-api >"$TMP/api.log" 2>&1 &
API_PID=$!
remember_pid "$API_PID" rampart-api TERM
wait_http_200 "$BASE/readyz" 30 "$API_PID"
FE_ADMIN=$(random_free_port)
setsid env METRICS_LISTEN="127.0.0.1:$FE_ADMIN" REDIS_PREFIX=bench LOG_LEVEL=warn ANTHROPIC_API_KEY= \
	bin/rampart-feeengine >"$TMP/feeengine.log" 2>&1 &
FE_PID=$!
remember_pid "$FE_PID" rampart-feeengine TERM
wait_http_200 "http://127.0.0.1:$FE_ADMIN/readyz" 30 "$FE_PID" || true

# rss_kb PID, cpu_ticks PID: from /proc.
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
TICK=$(getconf CLK_TCK)
# cpu_all: CPU ticks so far of the api, PostgreSQL (the postmaster, the
# backends it reaped, the live backends), Redis and the fee engine.
cpu_all() {
	local pg c
	pg=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$PG_PID/stat")
	for c in $(pgrep -P "$PG_PID" || true); do pg=$((pg + $(cpu_ticks "$c"))); done
	echo "$(cpu_ticks "$API_PID") $pg $(cpu_ticks "$REDIS_PID") $(cpu_ticks "$FE_PID")" \
		"$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat)"
}
# resources LABEL: RSS of each daemon, Redis memory, PostgreSQL size.
resources() {
	local label=$1 redis_mem pg_size
	redis_mem=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" INFO memory | awk -F: '/^used_memory:/ {print $2 + 0}')
	pg_size=$(psql_ -tAc "SELECT pg_database_size('rampart')")
	echo "   resources ($label): api $(rss_kb "$API_PID") kB, feeengine $(rss_kb "$FE_PID") kB," \
		"Redis used_memory $redis_mem B, PostgreSQL $pg_size B"
	rec "res_$label" resources "$label" "grep VmRSS /proc/PID/status; redis-cli INFO memory; SELECT pg_database_size('rampart')" \
		"{\"api_rss_kb\":$(rss_kb "$API_PID"),\"feeengine_rss_kb\":$(rss_kb "$FE_PID"),\"redis_used_memory\":$redis_mem,\"pg_bytes\":$pg_size}"
}
resources idle

# ---- 2. the api at saturation and at a constant rate ------------------------------------------
# POST /v1/payments consumes a fresh quote per request: each run gets its own,
# inserted just before it (valid for an hour).
QBATCH=0
# take_quotes K FILE: K new quotes, their ids into FILE.
take_quotes() {
	QBATCH=$((QBATCH + 1))
	psql_ -tAc "INSERT INTO quotes (id, $quote_cols) SELECT 'quote_' || gen_random_uuid(), $quote_vals
		FROM generate_series(1, $1) n RETURNING id" | grep . >"$2"
	[ -s "$2" ] || die "no quotes inserted"
}
psql_ -tAc "SELECT 'pay_' || md5('sel' || n)::uuid FROM generate_series(1, $NSEL) n ORDER BY random()" >"$TMP/pay-ids"
AUTH="Authorization: Bearer $KEY"

# endpoint_args NAME: rate.c's request description for an endpoint.
endpoint_args() {
	case $1 in
	quotes) ARGS=(-m POST -p /v1/quotes -H "$AUTH" -b '{"from_currency":"USD","to_currency":"EUR","amount":5{n}}') ;;
	payments) ARGS=(-m POST -p /v1/payments -H "$AUTH" -H 'Idempotency-Key: bench-{line}' -f "$TMP/q.cur"
		-b '{"quote_id":"{line}","source_account":"acct_bench_src","destination_account":"acct_bench_dst"}') ;;
	get_payment) ARGS=(-m GET -p '/v1/payments/{line}' -H "$AUTH" -f "$TMP/pay-ids") ;;
	list_payments) ARGS=(-m GET -p '/v1/payments?limit=20' -H "$AUTH") ;;
	fees) ARGS=(-m POST -p /v1/fees/calculate -H "$AUTH" -b '{"from_currency":"USD","to_currency":"EUR","amount":5{n}}') ;;
	healthz) ARGS=(-m GET -p /healthz) ;;
	esac
}
# rate_run ID NAME RATE CONNS SECS [TIMELINE]: one rate.c run; RES holds its JSON.
rate_run() {
	local id=$1 name=$2 r=$3 c=$4 s=$5 tl=${6:-} cmd
	endpoint_args "$name"
	if [ "$name" = payments ]; then
		local need
		need=$(awk -v r="$r" -v s="$s" 'BEGIN {n = (r > 0 ? r : 6000) * s * 1.2 + 100; printf "%d", n}')
		take_quotes "$need" "$TMP/q.cur"
	fi
	cmd=("$RATE_BIN" -u "$BASE" "${ARGS[@]}" -r "$r" -d "$s" -c "$c" ${tl:+-T "$tl"})
	show "${cmd[@]}"
	local c0 c1 t0 t1 perf_pid=""
	# A system-wide profile of the saturation runs of quotes and payments
	# (perf, when it works here; BENCH_PERF=0 turns it off).
	if [ "${BENCH_PERF:-$((1 - QUICK))}" = 1 ] && command -v perf >/dev/null && { [ "$id" = sat_quotes ] || [ "$id" = sat_payments ]; }; then
		perf record -a -F 499 -o "$TMP/perf-$id.data" -- sleep "$s" >"$TMP/perf-$id.log" 2>&1 &
		perf_pid=$!
	fi
	c0=$(cpu_all) t0=$(date +%s.%N)
	RES=$(timeout $((s + 40)) /usr/bin/time -f '%U %S' -o "$TMP/rate.time" "${cmd[@]}") || die "rate failed: $RES"
	c1=$(cpu_all) t1=$(date +%s.%N)
	if [ -n "$perf_pid" ]; then
		wait "$perf_pid" || true
		{
			echo "\$ perf record -a -F 499 -- sleep $s   (during [$id])"
			echo "\$ perf report --sort comm --stdio -g none --percent-limit 1"
			timeout 120 perf report -i "$TMP/perf-$id.data" --sort comm --stdio -g none --percent-limit 1 2>/dev/null | grep -vE '^(#|$)'
			echo "\$ perf report --sort comm,dso,sym --stdio -g none --percent-limit 0.7"
			timeout 120 perf report -i "$TMP/perf-$id.data" --sort comm,dso,sym --stdio -g none --percent-limit 0.7 2>/dev/null | grep -vE '^(#|$)' | head -40
		} >"$TMP/out-perf-$id.txt"
		rm -f "$TMP/perf-$id.data"
	fi
	echo "   $RES" | cut -c1-400
	rec "$id" api "$name" "$(cmdline "${cmd[@]}")" "$RES"
	# Cores busy per process over the run: which one limits it.
	local cpu
	cpu=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v tick="$TICK" -v g="$(cat "$TMP/rate.time")" 'BEGIN {
		split(a, x, " "); split(b, y, " "); split(g, z, " "); w = t1 - t0
		printf "{\"wall_s\":%.2f,\"api\":%.2f,\"postgres\":%.2f,\"redis\":%.2f,\"feeengine\":%.2f,\"generator\":%.2f,\"machine\":%.2f}",
			w, (y[1] - x[1]) / tick / w, (y[2] - x[2]) / tick / w, (y[3] - x[3]) / tick / w,
			(y[4] - x[4]) / tick / w, (z[1] + z[2]) / w, (y[5] - x[5]) / tick / w }')
	echo "   cores busy: $cpu"
	rec "cpu_$id" cpu "$name" "/proc/PID/stat of each process before and after; /usr/bin/time of the generator" "$cpu"
}

# probe NAME: one request as rate.c will send it (the template's first
# instance), which must answer 2xx.
probe() {
	local m=GET p b="" line h=() code i
	endpoint_args "$1"
	set -- "${ARGS[@]}"
	while [ $# -gt 0 ]; do
		case $1 in
		-m) m=$2 ;; -p) p=$2 ;; -b) b=$2 ;; -H) h+=(-H "$2") ;; -f) line=$(head -1 "$2") ;;
		esac
		shift 2
	done
	p=${p//\{n\}/1} b=${b//\{n\}/1}
	p=${p//\{line\}/${line:-}} b=${b//\{line\}/${line:-}}
	for i in "${!h[@]}"; do h[i]=${h[i]//\{line\}/${line:-}}; done
	[ -n "$b" ] && h+=(-H 'Content-Type: application/json' -d "$b")
	code=$(curl -s -o "$TMP/probe.out" -w '%{http_code}' -X "$m" "${h[@]}" "$BASE$p")
	case $code in 2*) ;; *) die "probe $m $p answered $code: $(cat "$TMP/probe.out")" ;; esac
}

declare -A SAT
for name in quotes payments get_payment list_payments fees healthz; do
	if [ "$name" = payments ]; then
		take_quotes 1 "$TMP/q.cur"
	fi
	probe "$name"
	step "api: $name, closed loop (saturation), $CONNS connections, ${SECS}s"
	rate_run "sat_$name" "$name" 0 "$CONNS" "$SECS"
	# Saturation counts answered 2xx only: the api may refuse some requests
	# with 503 OVERLOADED (admission control) when its database queue stands.
	SAT[$name]=$(awk -v ok="$(jget "$RES" ok)" -v t="$(jget "$RES" elapsed_s)" 'BEGIN {printf "%.1f", ok / t}')
	[ "$(jget "$RES" errors)" = 0 ] && [ "$(jget "$RES" unanswered)" = 0 ] ||
		die "$name: errors or unanswered requests at saturation (see $TMP/api.log)"
	[ "$(jget "$RES" non2xx)" = 0 ] || say "   $(jget "$RES" non2xx) refused (non-2xx) at saturation"
	pcts="25 50 75"
	[ "$name" = payments ] && pcts="25 50 75 90"
	[ "$QUICK" = 1 ] && pcts=50 # the percentile the targets name
	for pct in $pcts; do
		r=$(awk -v s="${SAT[$name]}" -v p="$pct" 'BEGIN {printf "%d", s * p / 100}')
		step "api: $name at a constant $r req/s ($pct% of saturation), ${SECS}s"
		rate_run "rate_${name}_$pct" "$name" "$r" 64 "$SECS" "$TMP/out-rate_${name}_$pct.tsv"
	done
	# Then alternating rounds against the endpoint's pgbench baseline, the
	# order flipped each round: each round's ratio compares two runs seconds
	# apart, where the headline ratio's runs are minutes apart and the
	# baselines moved by a third between whole runs (docs/performance.md).
	case $name in
	quotes) alt_script=bench/pgbench_insert.sql ;;
	payments) alt_script=bench/pgbench_payment.sql ;;
	get_payment) alt_script=$TMP/select.sql ;;
	*) alt_script="" ;;
	esac
	if [ -n "$alt_script" ] && [ "$ALT_ROUNDS" -gt 0 ]; then
		step "api: $name beside its pgbench baseline, $ALT_ROUNDS alternating rounds of ${ALT_SECS}s each"
		for i in $(seq 1 "$ALT_ROUNDS"); do
			order="pg api"
			[ $((i % 2)) = 0 ] && order="api pg"
			for side in $order; do
				if [ "$side" = pg ]; then
					PGB_IN_STEP=1 pgbench_run "alt_${name}_pg_$i" "pgbench beside $name, round $i" "$alt_script" -T "$ALT_SECS"
				else
					rate_run "alt_${name}_api_$i" "$name" 0 "$CONNS" "$ALT_SECS"
				fi
			done
		done
	fi
	[ "$name" = quotes ] && resources peak_after_quotes
	[ "$name" = payments ] && resources peak_after_payments
done

# ---- 3. the pipeline ---------------------------------------------------------------------------
# The payments of sections 1 and 2 (pgbench's and the api's) are PENDING
# with no worker: the pipeline's worker would find them overdue and work
# them too (24,780 of pgbench's, dead-lettered as malformed, halved the
# one-worker figure of the 2026-12-07-0433 run). Not this step's work.
# The api's key id, for section 3b's endpoint, first.
KEYID=$(psql_ -tAc "SELECT api_key_id FROM payments WHERE api_key_id NOT IN ('bench', 'pipe') LIMIT 1")
[ -n "$KEYID" ] || die "no payment made through the api"
psql_ -c "DELETE FROM payments" >/dev/null
cc -std=c11 -D_GNU_SOURCE -O2 -o "$TMP/receiver" bench/receiver.c -levent
RPORT=$(random_free_port)
"$TMP/receiver" "$RPORT" >"$TMP/receiver.out" 2>&1 &
remember_pid "$!" receiver TERM
psql_ -c "DELETE FROM events" >/dev/null # the api's payment.pending events: not this step's
psql_ -c "INSERT INTO webhook_endpoints (id, api_key_id, url, events, secret)
	VALUES ('we_' || gen_random_uuid(), 'pipe', 'http://127.0.0.1:$RPORT/hook', ARRAY['payment.completed'],
	'whsec_' || encode(convert_to('bench-secret-24-bytes!!!', 'UTF8'), 'base64'));" >/dev/null
WH_ADMIN=$(random_free_port)
setsid env REDIS_PREFIX=bench WEBHOOK_ALLOW_PRIVATE=1 LOG_LEVEL=warn METRICS_LISTEN="127.0.0.1:$WH_ADMIN" \
	bin/rampart-webhook >"$TMP/webhook.log" 2>&1 &
WH_PID=$!
remember_pid "$WH_PID" rampart-webhook TERM
wait_http_200 "http://127.0.0.1:$WH_ADMIN/readyz" 30 "$WH_PID"
curl -s "http://127.0.0.1:$RPORT/stats" >/dev/null # start the receiver's statistics afresh

# pipeline WORKERS: N payments seeded as the api writes them (payment + first
# history row, first job queued), then WORKERS workers; completed/s sampled
# every 0.5 s; webhooks for payment.completed to the receiver.
pipeline() {
	local workers=$1 prefix=pipe$1 t0 now done_n pids=() i tl="$TMP/pipeline-$1.tsv"
	# Each run starts from vacuumed tables: the dead rows of earlier steps
	# (and of the run before) otherwise slow the later run's index work
	# (one worker twice in a row: 8.2 s, then 11.6 s; docs/performance.md).
	psql_ -c "VACUUM ANALYZE" >/dev/null
	psql_ >/dev/null -c "DELETE FROM events; INSERT INTO payments (id, $pay_cols)
		SELECT 'pay_' || u, 'pipe', 'quote_' || u, 'PENDING', 100000, 'USD', 89056, 'EUR', 0.92,
		2000, 700, 500, 3200, 'base', 'acct_src', 'acct_dst'
		FROM (SELECT gen_random_uuid() AS u FROM generate_series(1, $N)) s;
		INSERT INTO payment_history (payment_id, to_status)
		SELECT id, 'PENDING' FROM payments WHERE api_key_id = 'pipe' AND status = 'PENDING';"
	redis-cli -h 127.0.0.1 -p "$REDIS_PORT" XGROUP CREATE "$prefix:{payments}:jobs" workers 0 MKSTREAM >/dev/null
	psql_ -tAc "SELECT id FROM payments WHERE status = 'PENDING' AND api_key_id = 'pipe'" |
		awk -v key="$prefix:{payments}:jobs" '{
			n = split("XADD " key " * payment_id " $1 " step onramp_initiate attempt 1 request_id bench", a, " ")
			printf "*%d\r\n", n
			for (i = 1; i <= n; i++) printf "$%d\r\n%s\r\n", length(a[i]), a[i]
		}' | redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --pipe >/dev/null
	t0=$(date +%s.%N)
	for i in $(seq 1 "$workers"); do
		setsid env REDIS_PREFIX="$prefix" METRICS_LISTEN="127.0.0.1:$(random_free_port)" \
			MOCK_SETTLE_MIN_MS=0 MOCK_SETTLE_MAX_MS=0 POLL_MIN_MS=0 POLL_MAX_MS=1 \
			WORKER_CONCURRENCY=2048 DB_POOL_SIZE=$((4 / workers)) LOG_LEVEL=warn bin/rampart-worker \
			>>"$TMP/worker-$workers-$i.log" 2>&1 &
		pids+=($!)
		remember_pid "$!" rampart-worker TERM
	done
	# Four PostgreSQL connections in all (the worker's default pool),
	# however many workers: on two cores more busy backends only contend
	# for the same index pages (16 connections: 1,900/s; 4: 2,800/s;
	# docs/performance.md, the pipeline).
	printf '# seconds\tcompleted\n' >"$tl"
	local peak_rss=0 r
	while :; do
		done_n=$(psql_ -tAc "SELECT count(*) FROM payments WHERE status = 'COMPLETED' AND api_key_id = 'pipe'")
		now=$(date +%s.%N)
		awk -v t0="$t0" -v now="$now" -v d="$done_n" 'BEGIN {printf "%.2f\t%d\n", now - t0, d}' >>"$tl"
		for p in "${pids[@]}"; do r=$(rss_kb "$p"); [ "${r:-0}" -gt "$peak_rss" ] && peak_rss=$r; done
		[ "$done_n" -ge "$N" ] && break
		awk -v t0="$t0" -v now="$now" 'BEGIN {exit !(now - t0 > 300)}' && die "only $done_n of $N completed in 300 s"
		sleep 0.5
	done
	local secs cpu=0
	secs=$(awk -v t0="$t0" -v now="$now" 'BEGIN {printf "%.2f", now - t0}')
	for p in "${pids[@]}"; do cpu=$((cpu + $(cpu_ticks "$p"))); done
	# The payment.completed webhooks: wait for all N, then the receiver's statistics.
	curl -s --max-time 130 "http://127.0.0.1:$RPORT/wait?n=$N" >/dev/null || true
	read -r _ received _ p50 _ p99 _ max _ <<<"$(curl -s "http://127.0.0.1:$RPORT/stats" | head -1)"
	for p in "${pids[@]}"; do stop_pid "$p" rampart-worker TERM; done
	local hist
	hist=$(psql_ -tAc "SELECT count(*) FROM payment_history h JOIN payments p ON p.id = h.payment_id WHERE p.api_key_id = 'pipe'")
	[ "$hist" -eq $((5 * N)) ] || die "history rows: $hist, want $((5 * N))"
	echo "   $workers worker(s): $N payments COMPLETED in $secs s = $(awk -v n="$N" -v s="$secs" 'BEGIN {printf "%.0f", n / s}')/s;" \
		"worker CPU $(awk -v c="$cpu" -v t="$TICK" -v s="$secs" 'BEGIN {printf "%.0f%%", 100 * c / t / s}') of one core;" \
		"peak worker RSS $peak_rss kB; webhooks received $received (created_at -> receipt p50 $p50 ms, p99 $p99 ms)"
	rec "pipeline_$workers" pipeline "$workers worker(s)" \
		"env MOCK_SETTLE_MIN_MS=0 MOCK_SETTLE_MAX_MS=0 POLL_MIN_MS=0 POLL_MAX_MS=1 WORKER_CONCURRENCY=2048 DB_POOL_SIZE=$((4 / workers)) bin/rampart-worker (x$workers), $N payments seeded as the api writes them" \
		"{\"payments\":$N,\"seconds\":$secs,\"per_s\":$(awk -v n="$N" -v s="$secs" 'BEGIN {printf "%.1f", n / s}'),\"worker_cpu_s\":$(awk -v c="$cpu" -v t="$TICK" 'BEGIN {printf "%.2f", c / t}'),\"worker_peak_rss_kb\":$peak_rss,\"webhooks\":${received:-0},\"webhook_p50_ms\":${p50:-0},\"webhook_p99_ms\":${p99:-0},\"timeline\":\"pipeline-$workers.tsv\"}"
	cp "$tl" "$TMP/out-pipeline-$workers.tsv"
	psql_ -c "DELETE FROM webhook_attempts; DELETE FROM webhook_deliveries; DELETE FROM events;
		DELETE FROM payment_history WHERE payment_id IN (SELECT id FROM payments WHERE api_key_id = 'pipe');
		DELETE FROM payments WHERE api_key_id = 'pipe'" >/dev/null 2>&1 || true
}
step "pipeline: $N payments, instant mock settlement, all five states, payment.completed webhooks"
for w in 1 2; do pipeline "$w"; done

# ---- 3b. POST to the payment.completed webhook, at a constant rate ---------------------------------
# A second api and a worker on their own Redis prefix (the first api's queue
# still holds the jobs of every payment made above), instant settlement; the
# receiver measures from the payment's created_at (its POST's transaction) to
# the receipt of its payment.completed webhook.
R2PORT=$(random_free_port)
"$TMP/receiver" "$R2PORT" data >"$TMP/receiver2.out" 2>&1 &
remember_pid "$!" receiver TERM
psql_ -c "INSERT INTO webhook_endpoints (id, api_key_id, url, events, secret)
	VALUES ('we_' || gen_random_uuid(), '$KEYID', 'http://127.0.0.1:$R2PORT/hook', ARRAY['payment.completed'],
	'whsec_' || encode(convert_to('bench-secret-24-bytes!!!', 'UTF8'), 'base64'));" >/dev/null
API2_PORT=$(random_free_port)
setsid env API_LISTEN="127.0.0.1:$API2_PORT" API_KEYS="$KEY" LOG_LEVEL=warn \
	RATE_LIMIT_RPS=1000000 RATE_LIMIT_BURST=10000000 REDIS_PREFIX=e2e \
	bin/rampart-api >"$TMP/api2.log" 2>&1 &
API2_PID=$!
remember_pid "$API2_PID" rampart-api TERM
wait_http_200 "http://127.0.0.1:$API2_PORT/readyz" 30 "$API2_PID"
ecmd=(env REDIS_PREFIX=e2e METRICS_LISTEN="127.0.0.1:$(random_free_port)" MOCK_SETTLE_MIN_MS=0
	MOCK_SETTLE_MAX_MS=0 POLL_MIN_MS=0 POLL_MAX_MS=1 WORKER_CONCURRENCY=2048 DB_POOL_SIZE=4 LOG_LEVEL=warn bin/rampart-worker)
setsid "${ecmd[@]}" >"$TMP/worker-e2e.log" 2>&1 &
EW_PID=$!
remember_pid "$EW_PID" rampart-worker TERM
E2E_RATE=$(awk -v a="${SAT[payments]}" -v b="$(jget "$(tail -n 20 "$REC" | grep '"pipeline_1"')" data.per_s)" \
	'BEGIN {m = (a < b ? a : b) / 4; printf "%d", m < 1 ? 1 : m}')
# A quarter: the api's payment creation, the worker's four transitions and
# the webhook deliveries share one PostgreSQL, so half of the lower figure
# was more than the machine (818/s: 3,104 refused, 2026-12-07-0525).
step "end to end: POST /v1/payments at $E2E_RATE req/s for ${SECS}s (a quarter of the lower of payments' saturation and the pipeline), to the payment.completed webhook"
show "${ecmd[@]}"
BASE_SAVED=$BASE
BASE="http://127.0.0.1:$API2_PORT"
rate_run e2e_rate payments "$E2E_RATE" 64 "$SECS"
BASE=$BASE_SAVED
ok=$(jget "$RES" ok)
got=$(curl -s --max-time 130 "http://127.0.0.1:$R2PORT/wait?n=$ok" | awk '{print $2}')
read -r _ received _ p50 _ p99 _ max _ <<<"$(curl -s "http://127.0.0.1:$R2PORT/stats" | head -1)"
echo "   $ok payments accepted, ${got:-0} payment.completed webhooks received: POST -> webhook p50 $p50 ms, p99 $p99 ms, max $max ms"
rec e2e_webhook pipeline "POST /v1/payments -> payment.completed webhook" \
	"$(cmdline "${ecmd[@]}"); bench/receiver PORT data (latency from the payment's created_at)" \
	"{\"rate\":$E2E_RATE,\"accepted\":$ok,\"webhooks\":${received:-0},\"p50_ms\":${p50:-0},\"p99_ms\":${p99:-0},\"max_ms\":${max:-0}}"
stop_pid "$EW_PID" rampart-worker TERM
stop_pid "$API2_PID" rampart-api TERM

# ---- 6. growth: payments waiting on a long settlement ------------------------------------------
# One worker with a one-hour mock settlement (polls every 10 min); payments
# are added until 1,000, 10,000 (and, full runs, 100,000) wait in
# ONRAMP_PENDING; at each, the RSS of every daemon, Redis memory, PostgreSQL size.
GROW_STEPS=${BENCH_GROW_STEPS:-$([ "$QUICK" = 1 ] && echo "1000 10000" || echo "1000 10000 100000")}
GW_ADMIN=$(random_free_port)
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" XGROUP CREATE "grow:{payments}:jobs" workers 0 MKSTREAM >/dev/null
gcmd=(env REDIS_PREFIX=grow METRICS_LISTEN="127.0.0.1:$GW_ADMIN" MOCK_SETTLE_MIN_MS=3600000
	MOCK_SETTLE_MAX_MS=3600000 POLL_MIN_MS=600000 POLL_MAX_MS=600000 LOG_LEVEL=warn bin/rampart-worker)
step "growth: payments waiting on a one-hour mock settlement: ${GROW_STEPS// /, }"
show "${gcmd[@]}"
setsid "${gcmd[@]}" >"$TMP/worker-grow.log" 2>&1 &
GW_PID=$!
remember_pid "$GW_PID" rampart-worker TERM
wait_http_200 "http://127.0.0.1:$GW_ADMIN/readyz" 30 "$GW_PID"
have=0
for want in $GROW_STEPS; do
	add=$((want - have))
	psql_ >/dev/null -c "CREATE TEMP TABLE g AS SELECT 'pay_' || gen_random_uuid() AS id FROM generate_series(1, $add);
		INSERT INTO payments (id, $pay_cols) SELECT id, 'grow', 'quote_' || gen_random_uuid(), 'PENDING',
		100000, 'USD', 89056, 'EUR', 0.92, 2000, 700, 500, 3200, 'base', 'acct_src', 'acct_dst' FROM g;
		INSERT INTO payment_history (payment_id, to_status) SELECT id, 'PENDING' FROM g;"
	psql_ -tAc "SELECT id FROM payments WHERE api_key_id = 'grow' AND status = 'PENDING'" |
		awk -v key="grow:{payments}:jobs" '{
			n = split("XADD " key " * payment_id " $1 " step onramp_initiate attempt 1 request_id bench", a, " ")
			printf "*%d\r\n", n
			for (i = 1; i <= n; i++) printf "$%d\r\n%s\r\n", length(a[i]), a[i]
		}' | redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --pipe >/dev/null
	t0=$(date +%s)
	while [ "$(psql_ -tAc "SELECT count(*) FROM payments WHERE api_key_id = 'grow' AND status = 'ONRAMP_PENDING'")" -lt "$want" ]; do
		[ $(($(date +%s) - t0)) -lt 300 ] || { say "warning: growth: $want payments not all waiting within 300 s"; break; }
		sleep 0.5
	done
	sleep 1
	have=$want
	redis_mem=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" INFO memory | awk -F: '/^used_memory:/ {print $2 + 0}')
	pg_size=$(psql_ -tAc "SELECT pg_database_size('rampart')")
	echo "   $want waiting: worker $(rss_kb "$GW_PID") kB, api $(rss_kb "$API_PID") kB," \
		"webhook $(rss_kb "$WH_PID") kB, feeengine $(rss_kb "$FE_PID") kB;" \
		"Redis used_memory $redis_mem B; PostgreSQL $pg_size B (reached in $(($(date +%s) - t0)) s)"
	rec "grow_$want" growth "$want payments waiting on settlement" \
		"$(cmdline "${gcmd[@]}"); grep VmRSS /proc/PID/status; redis-cli INFO memory; SELECT pg_database_size('rampart')" \
		"{\"inflight\":$want,\"worker_rss_kb\":$(rss_kb "$GW_PID"),\"api_rss_kb\":$(rss_kb "$API_PID"),\"webhook_rss_kb\":$(rss_kb "$WH_PID"),\"feeengine_rss_kb\":$(rss_kb "$FE_PID"),\"redis_used_memory\":$redis_mem,\"pg_bytes\":$pg_size}"
done
stop_pid "$GW_PID" rampart-worker TERM

# ---- 4. BullMQ -----------------------------------------------------------------------------
step "BullMQ: $N chains of 5 steps, one Node worker, concurrency 50, the same Redis"
(cd bench/bullmq && timeout 300 npm install --no-package-lock --no-audit --no-fund --loglevel=error >"$TMP/npm-bullmq.log" 2>&1) ||
	die "npm install in bench/bullmq failed: $(tail -5 "$TMP/npm-bullmq.log")"
cmd=(node bench/bullmq/chain.js "$REDIS_PORT" "$N" 50)
show "${cmd[@]}"
if RES=$(timeout 600 "${cmd[@]}"); then
	echo "   $RES" | cut -c1-300
	rec bullmq peers "BullMQ $(jget "$RES" bullmq), 1 worker, concurrency 50" "$(cmdline "${cmd[@]}")" "$RES"
else
	say "warning: the BullMQ run failed"
fi

# ---- 5. Artillery: the original system's scenario ------------------------------------------
if [ "${BENCH_ARTILLERY:-1}" != 0 ]; then
	(cd bench/artillery && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 600 npm install --no-package-lock --no-audit \
		--no-fund --loglevel=error >"$TMP/npm-artillery.log" 2>&1) ||
		die "npm install in bench/artillery failed: $(tail -5 "$TMP/npm-artillery.log")"
fi
ART=bench/artillery/node_modules/.bin/artillery
# artillery_run ID LABEL [OVERRIDES]: one run; its CPU share from /usr/bin/time
# of the whole process tree (user + system over wall time x CPUs).
artillery_run() {
	local id=$1 label=$2 ov=${3:-} cmd summary
	cmd=("$ART" run --quiet --target "$BASE" --output "$TMP/$id.json" ${ov:+--overrides "$ov"} bench/artillery/original.yml)
	step "Artillery: $label"
	show env BENCH_API_KEY="$KEY" "${cmd[@]}"
	if ! BENCH_API_KEY=$KEY ARTILLERY_DISABLE_TELEMETRY=true timeout 300 /usr/bin/time -f '%U %S %e' -o "$TMP/$id.time" \
		"${cmd[@]}" >"$TMP/$id.log" 2>&1 || [ ! -s "$TMP/$id.json" ]; then
		say "warning: artillery failed or timed out ($id): $(tail -5 "$TMP/$id.log")"
		rec "$id" artillery "$label (FAILED: see the log)" "$(cmdline env BENCH_API_KEY="$KEY" "${cmd[@]}")" '{"failed":true}'
		RES='{"failed":true}'
		return 0
	fi
	summary=$(/usr/bin/python3 - "$TMP/$id.json" "$TMP/$id.time" "$(nproc)" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["aggregate"]
u, s, e = (float(x) for x in open(sys.argv[2]).read().split()[-3:])
c, rt = a.get("counters", {}), a.get("summaries", {}).get("http.response_time", {})
reqs = c.get("http.requests", 0)
errs = sum(v for k, v in c.items() if k.startswith("errors."))
bad = sum(v for k, v in c.items() if k.startswith("http.codes.") and not k[11:].startswith("2"))
print(json.dumps({"requests": reqs, "vusers": c.get("vusers.created", 0),
    "vusers_failed": c.get("vusers.failed", 0), "errors": errs, "non2xx": bad,
    "error_rate": (errs + bad) / reqs if reqs else 1.0, "p50_ms": rt.get("median", 0),
    "p95_ms": rt.get("p95", 0), "p99_ms": rt.get("p99", 0), "max_ms": rt.get("max", 0),
    "rps": reqs / max(1e-3, (a.get("lastMetricAt", 0) - a.get("firstMetricAt", 0)) / 1000)
        if a.get("lastMetricAt") else a.get("rates", {}).get("http.request_rate", 0), "wall_s": e,
    "cpu_share": (u + s) / (e * int(sys.argv[3]))}))
PY
)
	echo "   $summary"
	rec "$id" artillery "$label" "$(cmdline env BENCH_API_KEY="$KEY" "${cmd[@]}")" "$summary"
	RES=$summary
}
if [ "${BENCH_ARTILLERY:-1}" = 0 ]; then
	echo "(Artillery skipped: BENCH_ARTILLERY=0)"
elif [ "$QUICK" = 1 ]; then
	phases='{"config":{"phases":[{"name":"warm-up","duration":3,"arrivalRate":5,"rampTo":60},{"name":"sustained","duration":6,"arrivalRate":60},{"name":"peak","duration":3,"arrivalRate":100}]}}'
	artillery_run art_original "the original scenario, shortened (QUICK): warm-up 3 s, 60 users/s 6 s, 100 users/s 3 s" "$phases"
	step_secs=4
else
	artillery_run art_original "the original scenario: warm-up 30 s (5 -> 60 users/s), 60 users/s 60 s, 100 users/s 30 s"
	step_secs=30
fi
for mult in ${BENCH_ART_MULTS-$([ "$QUICK" = 1 ] && echo 20 || echo 10 20 50)}; do
	[ "${BENCH_ARTILLERY:-1}" = 0 ] && break
	r=$((60 * mult))
	artillery_run "art_x$mult" "${mult}x the original's sustained rate: $r users/s for ${step_secs} s" \
		"{\"config\":{\"phases\":[{\"name\":\"x$mult\",\"duration\":$step_secs,\"arrivalRate\":$r}]}}"
	# Each user makes two requests. Once Artillery cannot offer the rate
	# asked (under 90% of it), a higher step would only measure Artillery.
	ach=$(awk -v q="$(jget "$RES" rps 2>/dev/null || echo 0)" 'BEGIN {printf "%d", q / 2}')
	if [ "$ach" -lt $((r * 9 / 10)) ]; then
		echo "   Artillery offered about $ach users/s of the $r asked: no higher step"
		break
	fi
done

# ---- 7. overload: half the payments saturation rate, 2x, then half again -------------------------
# The first half-rate phase is the control: the latency of that load just
# before the burst (the same connections, tables and checkpoint cycle),
# which the phase after the burst must return to.
before=$(psql_ -tAc "SELECT count(*) FROM payments")
r2=$(awk -v s="${SAT[payments]}" 'BEGIN {printf "%d", s * 2}')
rh=$(awk -v s="${SAT[payments]}" 'BEGIN {printf "%d", s / 2}')
HALF_SECS=$((QUICK == 1 ? 5 : 10))
step "overload: POST /v1/payments at $rh req/s for ${HALF_SECS}s, $r2 req/s (2x saturation) for ${OVER_SECS}s, then $rh req/s for ${HALF_SECS}s"
rate_run overload_before payments "$rh" 256 "$HALF_SECS" "$TMP/out-overload-before.tsv"
ok0=$(jget "$RES" ok)
rate_run overload_2x payments "$r2" 1024 "$OVER_SECS" "$TMP/out-overload-2x.tsv"
ok1=$(jget "$RES" ok)
rate_run overload_half payments "$rh" 256 "$HALF_SECS" "$TMP/out-overload-half.tsv"
ok2=$(jget "$RES" ok)
after=$(psql_ -tAc "SELECT count(*) FROM payments")
echo "   2xx answers $((ok0 + ok1 + ok2)); payments rows created $((after - before)) (every accepted payment must exist)"
rec overload_check overload "accepted payments vs rows" "SELECT count(*) FROM payments (before and after)" \
	"{\"accepted\":$((ok0 + ok1 + ok2)),\"rows\":$((after - before))}"
resources end

# ---- the older scripts (full runs only: each starts its own servers) -------------------------------
if [ "$QUICK" = 0 ] && [ "${BENCH_SKIP_OLD:-0}" = 0 ]; then
	export BENCH_ROUNDS=${BENCH_OLD_ROUNDS:-1}
	for s in run payments e2e webhooks fees; do
		step "bench/$s.sh (BENCH_ROUNDS=$BENCH_ROUNDS)"
		show env BENCH_ROUNDS="$BENCH_ROUNDS" sh "bench/$s.sh"
		sh "bench/$s.sh" 2>&1 | tee "$TMP/old-$s.out" | grep -E '^ *(==|rounds|[a-zA-Z/ ]+:)' | tail -15 ||
			say "warning: bench/$s.sh failed (its output is in the report)"
		rec "old_$s" older "bench/$s.sh" "env BENCH_ROUNDS=$BENCH_ROUNDS sh bench/$s.sh" "$(jstr "$(grep -vE '^\$' "$TMP/old-$s.out" | tail -12)")"
	done
fi

# ---- the report --------------------------------------------------------------------------------
T_END=$(date +%s)
step "report"
/usr/bin/python3 bench/report.py "$REC" "$TMP" "$OUT" "$STAMP" "$QUICK" $((T_END - T_START)) "$(nproc)"
REPORTED=1

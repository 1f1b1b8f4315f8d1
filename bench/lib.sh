# bench/lib.sh - what every benchmark script shares: a temp dir cleaned up
# on exit (kept with BENCH_KEEP=1 or on failure), the release build, private
# PostgreSQL (default durability) and Redis on free loopback ports, the
# migrated schema. Source it after scripts/lib.sh; it sets TMP, PGBIN,
# PG_PORT, REDIS_PORT, DATABASE_URL, REDIS_URL, psql_ and show.

TMP=$(mktemp -d /tmp/rampart-bench-XXXXXX)
chmod 755 "$TMP"
bench_on_exit() {
	local rc=$?
	trap - EXIT INT TERM
	rampart_stop_all
	if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
		say "logs kept in $TMP"
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap bench_on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# show CMD...: prints the exact command, so every figure can be reproduced.
show() {
	printf '$'
	printf ' %q' "$@"
	printf '\n'
}

sh scripts/deps.sh --bench
make -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
PGBIN=$(pg_bindir)
pg_init_cluster "$TMP/pg"
PG_PORT=$(random_free_port)
# shellcheck disable=SC2086 # a word list on purpose
pg_start "$TMP/pg" "$PG_PORT" "$TMP/pg-sock" "$TMP/postgres.log" $PG_RUN_SETTINGS # make run's
pg_create_db "$PG_PORT"
REDIS_PORT=$(random_free_port)
redis_start "$REDIS_PORT" "$TMP/redis" "$TMP/redis.log"
export DATABASE_URL="postgres://rampart@127.0.0.1:$PG_PORT/rampart"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
psql_() {
	PGOPTIONS='-c client_min_messages=warning' "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 \
		-h 127.0.0.1 -p "$PG_PORT" -U rampart -d rampart "$@"
}
timeout 60 bin/rampart-api --migrate >"$TMP/migrate.log" 2>&1 || {
	cat "$TMP/migrate.log" >&2
	die "migrate failed"
}

# ---- reading wrk --latency output (shared by the benchmark scripts) ----------------
# wrk_pct FILE PCT: a line of wrk --latency's distribution ("50%", "99%"), in ms.
wrk_pct() {
	awk -v pct="$2" '$1 == pct {
		v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
		if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000
		printf "%.2f", v }' "$1"
}
wrk_rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
# wrk_errors FILE: non-2xx/3xx responses plus socket errors.
wrk_errors() {
	awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {
		for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i + 0 } END {print n + 0}' "$1"
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

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
pg_start "$TMP/pg" "$PG_PORT" "$TMP/pg-sock" "$TMP/postgres.log"
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

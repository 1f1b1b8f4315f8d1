#!/usr/bin/env bash
# scripts/run.sh - `make run`: the whole system on loopback, stopped by Ctrl-C.
#
# When DATABASE_URL / REDIS_URL are unset it starts a private PostgreSQL
# (data in .run/pg, created once) and Redis (.run/redis) on the first free
# ports from 5432 / 6379, migrates, then starts every built bin/rampart-*
# daemon (api on the first free port from 8080, or API_LISTEN). Ctrl-C or
# SIGTERM stops everything it started, by PID, daemons first.
#
# Defaults it sets unless already set: API_KEYS=sk_dev_rampart, LOG_FORMAT=text.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
RAMPART_SCRIPT=run
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$RAMPART_ROOT"

RUN_DIR=$RAMPART_ROOT/.run
DAEMON_PIDS=()

on_exit() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$RAMPART_PIDS" ]; then
		say "stopping everything started by make run"
		rampart_stop_all
	fi
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_daemon NAME [VAR=value ...]: starts bin/rampart-NAME in the background
# with the current environment plus the given variables; skips (with a note) a
# daemon that is not built yet. Sets LAST_PID.
start_daemon() {
	local name=$1 exe
	shift
	exe=$RAMPART_ROOT/bin/rampart-$name
	LAST_PID=""
	if [ ! -x "$exe" ]; then
		say "bin/rampart-$name is not built yet: not starting it"
		return 0
	fi
	setsid env "$@" "$exe" & # own session: Ctrl-C reaches only this script
	LAST_PID=$!
	remember_pid "$LAST_PID" "rampart-$name" TERM
	DAEMON_PIDS+=("$LAST_PID")
	say "started rampart-$name (pid $LAST_PID)"
}

# claim_port VAR BASE: the first free port from BASE that no earlier claim took.
CLAIMED=" "
claim_port() {
	local claim_port_p=$2
	while :; do
		claim_port_p=$(first_free_port "$claim_port_p")
		case $CLAIMED in
		*" $claim_port_p "*) claim_port_p=$((claim_port_p + 1)) ;;
		*) break ;;
		esac
	done
	CLAIMED="$CLAIMED$claim_port_p "
	printf -v "$1" '%s' "$claim_port_p"
}

sh scripts/deps.sh
make -j"$(nproc 2>/dev/null || echo 2)"
mkdir -p "$RUN_DIR"

# ---- PostgreSQL -------------------------------------------------------------
pg_note=""
if [ -z "${DATABASE_URL:-}" ]; then
	pg_base=$RUN_DIR
	if ! pg_user_can_reach "$RUN_DIR"; then
		# e.g. a checkout under /root: "nobody" cannot traverse a parent.
		pg_base=/tmp/rampart-run-$(id -u)-$(printf '%s' "$RAMPART_ROOT" | cksum | cut -d' ' -f1)
		mkdir -p "$pg_base"
		chmod 755 "$pg_base"
		say "the PostgreSQL user ($PG_USER_UNPRIV) cannot reach $RUN_DIR; keeping its data in $pg_base/pg instead"
	fi
	pg_init_cluster "$pg_base/pg"
	claim_port PG_PORT 5432
	# shellcheck disable=SC2086 # a word list on purpose
	pg_start "$pg_base/pg" "$PG_PORT" "$pg_base/pg-sock" "$RUN_DIR/postgres.log" $PG_RUN_SETTINGS
	pg_create_db "$PG_PORT"
	export DATABASE_URL="postgres://rampart@127.0.0.1:$PG_PORT/rampart"
	pg_note="(private: data $pg_base/pg, log .run/postgres.log)"
fi

# ---- Redis --------------------------------------------------------------------
redis_note=""
if [ -z "${REDIS_URL:-}" ]; then
	claim_port REDIS_PORT 6379
	redis_start "$REDIS_PORT" "$RUN_DIR/redis" "$RUN_DIR/redis.log"
	export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
	redis_note="(private: data .run/redis, log .run/redis.log)"
fi

# ---- daemons ------------------------------------------------------------------
bin/rampart-api --migrate || die "bin/rampart-api --migrate failed"

export API_KEYS=${API_KEYS:-sk_dev_rampart}
export LOG_FORMAT=${LOG_FORMAT:-text}
# Local development: webhook receivers usually listen on this machine, so the
# api accepts loopback endpoint URLs and the webhook daemon delivers to them
# (production keeps WEBHOOK_ALLOW_PRIVATE=0; docs/webhooks.md).
export WEBHOOK_ALLOW_PRIVATE=${WEBHOOK_ALLOW_PRIVATE:-1}
if [ -z "${API_LISTEN:-}" ]; then
	claim_port API_PORT 8080
	export API_LISTEN="127.0.0.1:$API_PORT"
fi
api_hostport=${API_LISTEN/#0.0.0.0:/127.0.0.1:}
api_hostport=${api_hostport/#:/127.0.0.1:}

start_daemon api
wait_http_200 "http://$api_hostport/readyz" 30 "$LAST_PID"

# One line per daemon; each admin port is the first free one from its default.
# The worker settles mock legs in a few seconds (not the SPEC's default of
# minutes), so a newcomer watches a payment complete.
claim_port port 9101 && start_daemon worker METRICS_LISTEN="127.0.0.1:$port" \
	MOCK_SETTLE_MIN_MS="${MOCK_SETTLE_MIN_MS:-2000}" MOCK_SETTLE_MAX_MS="${MOCK_SETTLE_MAX_MS:-5000}"
claim_port port 9102 && start_daemon webhook METRICS_LISTEN="127.0.0.1:$port"
claim_port port 9103 && start_daemon feeengine METRICS_LISTEN="127.0.0.1:$port"

key=${API_KEYS%%,*}
cat <<EOF

rampart is running (Ctrl-C stops everything):
  API         http://$api_hostport   (Bearer key: $key)
  Dashboard   http://$api_hostport/dashboard   (asks for the key)
  PostgreSQL  $DATABASE_URL $pg_note
  Redis       $REDIS_URL $redis_note

Try:
  curl -s -X POST http://$api_hostport/v1/quotes -H 'Authorization: Bearer $key' -H 'Content-Type: application/json' -d '{"from_currency":"USD","to_currency":"EUR","amount":100000}'

then pay against the quote (put its id in) and watch the payment move through its states:
  curl -s -X POST http://$api_hostport/v1/payments -H 'Authorization: Bearer $key' -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' -d '{"quote_id":"quote_...","source_account":"acct_demo_src","destination_account":"acct_demo_dst"}'
  curl -s http://$api_hostport/v1/payments/pay_... -H 'Authorization: Bearer $key'

and ask the fee engine for a route and its fees (deterministic here; set
ANTHROPIC_API_KEY before make run for Claude's analysis, docs/fees.md):
  curl -s -X POST http://$api_hostport/v1/fees/calculate -H 'Authorization: Bearer $key' -H 'Content-Type: application/json' -d '{"amount":250000,"from_currency":"USD","to_currency":"EUR","priority":"express"}'

EOF

# Wait for Ctrl-C / SIGTERM (traps above), or for anything we started to die.
set +e
wait -n
rc=$?
set -e
for entry in $RAMPART_PIDS; do
	pid=${entry%%:*}
	name=${entry#*:}
	if ! pid_running "$pid"; then
		say "${name%%:*} (pid $pid) exited unexpectedly (status $rc); stopping the rest"
	fi
done
exit 1

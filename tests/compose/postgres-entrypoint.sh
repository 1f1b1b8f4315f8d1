#!/bin/sh
# Initialises $PGDATA on first start (like the official image), then execs
# postgres with the given arguments.
set -eu
: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
[ -n "${POSTGRES_PASSWORD:-}" ] || { echo "POSTGRES_PASSWORD is required" >&2; exit 1; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	pwfile=$(mktemp)
	printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
		-E UTF8 --locale=C.UTF-8 >/dev/null
	rm -f "$pwfile"
	echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
	postgres -D "$PGDATA" -c listen_addresses='' -k /var/run/postgresql &
	pid=$!
	until pg_isready -q -h /var/run/postgresql; do sleep 0.2; done
	if [ "$POSTGRES_DB" != postgres ]; then
		createdb -h /var/run/postgresql -U "$POSTGRES_USER" "$POSTGRES_DB"
	fi
	kill -INT "$pid"
	wait "$pid" || true
fi
[ "${1:-postgres}" = postgres ] && shift || true
exec postgres -D "$PGDATA" -c listen_addresses='*' -k /var/run/postgresql "$@"

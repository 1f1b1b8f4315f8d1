# scripts/lib.sh - shell helpers shared by scripts/*.sh and bench/run.sh (bash).
# shellcheck shell=bash disable=SC2034 # variables used by the scripts that source it
#
# Sourced, never run. Every server a script starts is remembered by PID in
# RAMPART_PIDS and stopped by rampart_stop_all (call it from an EXIT trap);
# nothing is ever stopped by name.

RAMPART_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RAMPART_PIDS=""      # "pid:name:signal" entries, in start order
PG_USER_UNPRIV=nobody # PostgreSQL refuses to run as root; this user runs it then

say() { printf '%s: %s\n' "${RAMPART_SCRIPT:-rampart}" "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

# The directory with initdb/postgres/pg_ctl/pgbench: the newest installed major.
pg_bindir() {
	local d best=""
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/postgres" ] && best=$d
	done
	# Prefer 15, the version the project targets, when several are installed.
	[ -x /usr/lib/postgresql/15/bin/postgres ] && best=/usr/lib/postgresql/15/bin
	[ -n "$best" ] || die "PostgreSQL server binaries not found (install postgresql-15)"
	printf '%s\n' "$best"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
	# A socket bound but not yet listening (or listening on 0.0.0.0 only
	# through a firewall) still makes bind fail: ask the kernel as well.
	if command -v ss >/dev/null 2>&1; then
		ss -Htln "sport = :$1" 2>/dev/null | grep -q . && return 0
	fi
	return 1
}

# The first free loopback port at or above $1 (at most 200 tried).
first_free_port() {
	local p=$1 end=$(($1 + 200))
	while [ "$p" -lt "$end" ]; do
		if ! port_in_use "$p"; then
			printf '%s\n' "$p"
			return 0
		fi
		p=$((p + 1))
	done
	die "no free port in $1..$end"
}

# A free loopback port chosen by the kernel.
random_free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs "$@" as the PostgreSQL user: itself when not root, $PG_USER_UNPRIV
# when root.
as_pg_user() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid="$PG_USER_UNPRIV" --regid="$(id -g "$PG_USER_UNPRIV")" \
			--clear-groups --reset-env -- "$@"
	else
		"$@"
	fi
}

# Like as_pg_user, in a new session, replacing the current (sub)shell: in
# "(exec_as_pg_user server ...) &" the PID in $! is the server's own, and a
# Ctrl-C at the terminal reaches only the script, which stops servers in order.
exec_as_pg_user() {
	if [ "$(id -u)" -eq 0 ]; then
		exec setsid setpriv --reuid="$PG_USER_UNPRIV" --regid="$(id -g "$PG_USER_UNPRIV")" \
			--clear-groups --reset-env -- "$@"
	fi
	exec setsid "$@"
}

# True when the PostgreSQL user can create files in directory $1 (every parent
# must be traversable, e.g. a checkout under /root is not for nobody).
pg_user_can_reach() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid="$PG_USER_UNPRIV" --regid="$(id -g "$PG_USER_UNPRIV")" \
			--clear-groups -- test -x "$1"
	else
		test -x "$1"
	fi
}

# Makes $1 a directory owned by the PostgreSQL user, mode 0700.
pg_own_dir() {
	mkdir -p "$1"
	[ "$(id -u)" -eq 0 ] && chown "$PG_USER_UNPRIV:$(id -gn "$PG_USER_UNPRIV")" "$1"
	chmod 700 "$1"
}

remember_pid() { RAMPART_PIDS="$RAMPART_PIDS $1:$2:${3:-TERM}"; }

# True while PID $1 runs (an exited child not yet reaped is a zombie: not running).
pid_running() {
	local state
	kill -0 "$1" 2>/dev/null || return 1
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$state" != Z ]
}

# Waits up to $2 seconds for PID $1 to exit; false if it is still running.
wait_pid_gone() {
	local i=0 limit=$(($2 * 10))
	while pid_running "$1"; do
		if [ "$i" -ge "$limit" ]; then
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 0
}

# Stops one remembered process: its signal, up to 15 s, then SIGKILL.
stop_pid() {
	local pid=$1 name=$2 sig=${3:-TERM}
	if ! pid_running "$pid"; then
		wait "$pid" 2>/dev/null || true
		return 0
	fi
	kill -s "$sig" "$pid" 2>/dev/null || return 0
	if ! wait_pid_gone "$pid" 15; then
		say "$name (pid $pid) did not stop after SIG$sig; killing it"
		kill -s KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# Stops everything remembered, newest first (daemons before their databases).
rampart_stop_all() {
	local entry list="" pid name sig
	for entry in $RAMPART_PIDS; do
		list="$entry $list"
	done
	for entry in $list; do
		pid=${entry%%:*}
		name=${entry#*:}
		sig=${name#*:}
		name=${name%%:*}
		stop_pid "$pid" "$name" "$sig"
	done
	RAMPART_PIDS=""
}

# Waits up to $2 seconds for PostgreSQL on 127.0.0.1:$1; $3 is the server PID
# and $4 its log, shown when it dies or times out.
wait_pg() {
	local port=$1 limit=$(($2 * 10)) pid=$3 logf=$4 i=0
	local bindir
	bindir=$(pg_bindir)
	while ! "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U rampart -d postgres; do
		if ! pid_running "$pid"; then
			tail -n 30 "$logf" >&2 || true
			die "PostgreSQL exited during startup (log: $logf)"
		fi
		if [ "$i" -ge "$limit" ]; then
			tail -n 30 "$logf" >&2 || true
			die "PostgreSQL not ready on port $port after $2 s (log: $logf)"
		fi
		sleep 0.1
		i=$((i + 1))
	done
}

# Waits up to $2 seconds for redis on 127.0.0.1:$1 to answer PING; $3 = PID.
wait_redis() {
	local port=$1 limit=$(($2 * 10)) pid=$3 i=0
	until [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = "PONG" ]; do
		pid_running "$pid" || die "redis-server exited during startup"
		[ "$i" -ge "$limit" ] && die "redis not ready on port $port after $2 s"
		sleep 0.1
		i=$((i + 1))
	done
}

# Waits up to $2 seconds for GET $1 to return 200; $3 = PID of the server.
wait_http_200() {
	local url=$1 limit=$(($2 * 10)) pid=$3 i=0 code
	while :; do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) || code=000
		[ "$code" = 200 ] && return 0
		pid_running "$pid" || die "process $pid exited before $url answered 200"
		[ "$i" -ge "$limit" ] && die "$url not 200 after $2 s (last: $code)"
		sleep 0.1
		i=$((i + 1))
	done
}

# Initialises a PostgreSQL cluster in $1 (owned by the PostgreSQL user) with a
# superuser "rampart" and trust auth, unless it already holds one.
# $2 = extra initdb flags (e.g. --no-sync).
pg_init_cluster() {
	local dir=$1 extra=${2:-} bindir
	bindir=$(pg_bindir)
	[ -f "$dir/PG_VERSION" ] && return 0
	pg_own_dir "$dir"
	# shellcheck disable=SC2086 # $extra is a word list on purpose
	as_pg_user "$bindir/initdb" -D "$dir" -A trust -U rampart -E UTF8 --locale=C $extra \
		>"$dir.initdb.log" 2>&1 || {
		cat "$dir.initdb.log" >&2
		die "initdb failed in $dir"
	}
}

# The settings of make run's (and make bench's) PostgreSQL beyond its defaults:
# at a few thousand payments/s the default 1 GB of WAL between checkpoints
# filled every 16-40 s, each checkpoint's full-page writes slowed commits
# (docs/performance.md). Time-driven checkpoints, every 5 min, instead.
PG_RUN_SETTINGS="-c max_wal_size=4GB"

# Starts postgres from cluster $1 on 127.0.0.1:$2, socket dir $3, log $4, plus
# extra "-c name=value" arguments; sets PG_PID and waits until it is ready.
pg_start() {
	local dir=$1 port=$2 sockdir=$3 logf=$4 bindir
	shift 4
	bindir=$(pg_bindir)
	pg_own_dir "$sockdir"
	: >"$logf"
	(exec_as_pg_user "$bindir/postgres" -D "$dir" -p "$port" -k "$sockdir" \
		-c listen_addresses=127.0.0.1 "$@") >>"$logf" 2>&1 &
	PG_PID=$!
	remember_pid "$PG_PID" postgres INT # SIGINT = fast shutdown
	wait_pg "$port" 60 "$PG_PID" "$logf"
}

# Creates database rampart on 127.0.0.1:$1 unless it exists.
pg_create_db() {
	local bindir
	bindir=$(pg_bindir)
	if ! "$bindir/psql" -X -q -h 127.0.0.1 -p "$1" -U rampart -d postgres -tAc \
		"SELECT 1 FROM pg_database WHERE datname = 'rampart'" | grep -q 1; then
		"$bindir/createdb" -h 127.0.0.1 -p "$1" -U rampart rampart || die "createdb failed"
	fi
}

# Starts redis-server on 127.0.0.1:$1 with its files in $2, log $3; sets REDIS_PID.
redis_start() {
	mkdir -p "$2"
	# setsid: see exec_as_pg_user (a background job is no group leader, so
	# setsid execs in place and $! stays the server's PID).
	setsid redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no \
		--daemonize no --dir "$2" --logfile "$3" &
	REDIS_PID=$!
	remember_pid "$REDIS_PID" redis-server TERM
	wait_redis "$1" 30 "$REDIS_PID"
}

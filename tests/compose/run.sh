#!/usr/bin/env bash
# tests/compose/run.sh - `make test-compose`: rampart in containers, for real.
#
#   1. a private Docker engine (dockerd --bridge=none --iptables=false, its
#      own socket and state; stopped by PID at the end);
#   2. a Debian 12 base image built offline: debootstrap --variant=minbase
#      bookworm, imported as debian:bookworm-slim (the Dockerfile's FROM),
#      since no image can be pulled here; cached in $RAMPART_CACHE;
#   3. the README's set-up on that pristine container: the working tree
#      copied in, `apt-get install make`, `make check-deps` (the deps step of
#      make test) from nothing, twice, then `make`, the unit tests and a
#      pytest collection, as root, each exit status checked;
#   4. the image (root Dockerfile) and test-only PostgreSQL/Redis images;
#   5. deploy/docker-compose.yml with tests/compose/docker-compose.test.yml
#      (host networking, free ports, the test images), up; every service
#      healthy; the README walkthrough (quote -> payment -> COMPLETED ->
#      signed payment.completed webhook) by tests/compose/walkthrough.py;
#   6. stop (every daemon must exit 0 on SIGTERM), down -v, dockerd stopped.
#
# Needs root (dockerd, debootstrap). RAMPART_CACHE (default .cache/ in the
# checkout, git-ignored) keeps the base tarball and the engine's images
# between runs. SKIP_PRISTINE=1 skips step 3. DEBIAN_MIRROR picks the mirror.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
RAMPART_SCRIPT=test-compose
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../../scripts/lib.sh"
cd "$RAMPART_ROOT"

[ "$(id -u)" -eq 0 ] || die "needs root (dockerd and debootstrap)"
CACHE=${RAMPART_CACHE:-$RAMPART_ROOT/.cache}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PROJECT=rampart-test
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
tmp=$(mktemp -d /tmp/rampart-compose.XXXXXX)
export DOCKER_HOST="unix://$tmp/docker.sock"
compose_file=""
timings=()
t_all=$(date +%s)

# timed NAME CMD...: runs a step and records how long it took.
timed() {
	local name=$1 t0 rc=0
	shift
	say "== $name"
	t0=$(date +%s)
	"$@" || rc=$?
	timings+=("$(printf '%-28s %4d s%s' "$name" $(($(date +%s) - t0)) "$([ $rc -eq 0 ] || echo "  FAILED ($rc)")")")
	return "$rc"
}

on_exit() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$compose_file" ]; then
		docker-compose -p "$PROJECT" -f "$compose_file" down -v -t 20 >/dev/null 2>&1 || true
	fi
	if [ -f "$tmp/dockerd.log" ] && [ "$rc" -ne 0 ]; then
		say "last lines of dockerd's log:"
		tail -n 15 "$tmp/dockerd.log" >&2 || true
	fi
	rampart_stop_all
	# dockerd stops its containerd on the way out; make sure nothing it
	# started outlives it.
	if [ -n "${CONTAINERD_PID:-}" ] && ! wait_pid_gone "$CONTAINERD_PID" 15; then
		say "containerd (pid $CONTAINERD_PID) still running; killing it"
		kill -KILL "$CONTAINERD_PID" 2>/dev/null || true
	fi
	# dockerd leaves its network namespace mounted under its exec root.
	findmnt -rn -o TARGET | grep "^$tmp/" | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	rm -rf "$tmp" 2>/dev/null || say "could not remove $tmp entirely"
	echo
	echo "== test-compose summary ($(($(date +%s) - t_all)) s)"
	for t in "${timings[@]}"; do echo "   $t"; done
	[ "$rc" -eq 0 ] && echo "test-compose: 1 passed, 0 failed" || echo "test-compose: 0 passed, 1 failed"
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_dockerd() {
	(exec setsid dockerd --bridge=none --iptables=false --ip6tables=false \
		--data-root "$CACHE/docker" --exec-root "$tmp/exec" --pidfile "$tmp/docker.pid" \
		-H "$DOCKER_HOST" >"$tmp/dockerd.log" 2>&1) &
	DOCKERD_PID=$!
	remember_pid "$DOCKERD_PID" dockerd TERM
	local i=0
	until docker info >/dev/null 2>&1; do
		pid_running "$DOCKERD_PID" || die "dockerd exited at start (log above)"
		[ "$i" -lt 300 ] || die "dockerd not answering after 30 s"
		sleep 0.1
		i=$((i + 1))
	done
	CONTAINERD_PID=$(pgrep -P "$DOCKERD_PID" containerd || true)
	say "dockerd pid $DOCKERD_PID (containerd ${CONTAINERD_PID:-none}), state in $CACHE/docker"
}

base_image() {
	docker image inspect debian:bookworm-slim >/dev/null 2>&1 && return 0
	local tarball="$CACHE/debian-bookworm-minbase.tar"
	if [ ! -s "$tarball" ]; then
		say "debootstrap --variant=minbase bookworm from $MIRROR"
		debootstrap --variant=minbase bookworm "$tmp/rootfs" "$MIRROR" >"$tmp/debootstrap.log" 2>&1 || {
			tail -n 20 "$tmp/debootstrap.log" >&2
			die "debootstrap failed"
		}
		# The suites the official image lists (updates and security fixes).
		cat >"$tmp/rootfs/etc/apt/sources.list" <<-SRC
			deb $MIRROR bookworm main
			deb $MIRROR bookworm-updates main
			deb ${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security} bookworm-security main
		SRC
		rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/lib/apt/lists/*
		tar -C "$tmp/rootfs" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
		rm -rf "$tmp/rootfs"
	fi
	docker import "$tarball" debian:bookworm-slim >/dev/null
}

# The README's set-up, as root, on a container that has nothing installed.
pristine() {
	git ls-files -co --exclude-standard -z | tar --null -T - -cf "$tmp/src.tar"
	docker run --rm --network host -v "$tmp/src.tar:/in/src.tar:ro" debian:bookworm-slim bash -c '
		set -eu
		run() { echo "+ $*"; "$@" || { echo "pristine: FAILED ($?): $*"; exit 1; }; }
		# Most containers (and these machines) carry a policy-rc.d already:
		# the case in which deps.sh used to exit 1 after installing everything.
		printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		mkdir /src && tar -C /src -xf /in/src.tar && cd /src
		export DEBIAN_FRONTEND=noninteractive
		run apt-get update -q
		run apt-get install -y -q make
		run make check-deps
		[ -x /usr/sbin/policy-rc.d ] || { echo "pristine: deps.sh removed a policy-rc.d it did not create"; exit 1; }
		run make check-deps
		run make -j2 all components
		run make -j2 unit
		run /usr/bin/python3 -m pytest --collect-only -q -p no:cacheprovider tests/integration
		echo "pristine: ok"
	' >"$tmp/pristine.log" 2>&1 || {
		tail -n 40 "$tmp/pristine.log" >&2
		die "the README set-up failed on a pristine Debian 12 container (log above)"
	}
	grep -E '^\+ |pristine:|installed [0-9]+ package' "$tmp/pristine.log" >&2 || true
}

build_images() {
	local args
	for args in "-t rampart:latest ." \
		"-t rampart-test/postgres:15 -f tests/compose/postgres.Dockerfile tests/compose" \
		"-t rampart-test/redis:7 -f tests/compose/redis.Dockerfile tests/compose"; do
		# shellcheck disable=SC2086 # $args is a word list
		docker build --network host $args >"$tmp/build.log" 2>&1 || {
			tail -n 40 "$tmp/build.log" >&2
			die "docker build $args failed"
		}
	done
	docker run --rm rampart:latest sh -c 'test "$(id -u)" != 0 && ! command -v cc && rampart-api --version' >&2 ||
		die "the image runs as root, has a compiler, or rampart-api does not start"
}

# The compose file as Compose merges it with the test override, less what
# host networking forbids (published ports) and what the test built already.
render() {
	T_PG_PORT=$(random_free_port) T_REDIS_PORT=$(random_free_port) T_API_PORT=$(random_free_port) \
		T_WORKER_PORT=$(random_free_port) T_WORKER2_PORT=$(random_free_port) \
		T_WEBHOOK_PORT=$(random_free_port) T_FEE_PORT=$(random_free_port)
	export T_PG_PORT T_REDIS_PORT T_API_PORT T_WORKER_PORT T_WORKER2_PORT T_WEBHOOK_PORT T_FEE_PORT
	docker-compose -p "$PROJECT" -f deploy/docker-compose.yml -f tests/compose/docker-compose.test.yml \
		config >"$tmp/merged.yml"
	/usr/bin/python3 - "$tmp/merged.yml" "$tmp/compose.yml" <<-'PY'
		import sys, yaml
		d = yaml.safe_load(open(sys.argv[1]))
		for s in d["services"].values():
		    assert s.get("network_mode") == "host", s
		    s.pop("ports", None)
		    s.pop("build", None)
		yaml.safe_dump(d, open(sys.argv[2], "w"), sort_keys=False)
	PY
	compose_file="$tmp/compose.yml"
}

services_healthy() {
	local deadline=$((SECONDS + 180)) ids id state bad
	while :; do
		bad=""
		ids=$(docker-compose -p "$PROJECT" -f "$compose_file" ps -q)
		for id in $ids; do
			state=$(docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.State.ExitCode}}' "$id")
			case $state in
			*migrate*" exited - 0") ;;
			*" running healthy "*) ;;
			*" exited "*) die "service stopped: $state" ;;
			*) bad="$bad; $state" ;;
			esac
		done
		[ -z "$bad" ] && [ "$(wc -w <<<"$ids")" -ge 8 ] && return 0
		[ "$SECONDS" -lt "$deadline" ] || die "not healthy after 180 s:$bad"
		sleep 1
	done
}

up() {
	docker-compose -p "$PROJECT" -f "$compose_file" up -d --no-build >"$tmp/up.log" 2>&1 || {
		cat "$tmp/up.log" >&2
		docker-compose -p "$PROJECT" -f "$compose_file" logs --tail 20 >&2 || true
		die "docker-compose up failed"
	}
	services_healthy
	docker-compose -p "$PROJECT" -f "$compose_file" ps >&2
}

walkthrough() {
	/usr/bin/python3 tests/compose/walkthrough.py "http://127.0.0.1:$T_API_PORT" || {
		docker-compose -p "$PROJECT" -f "$compose_file" logs --tail 30 >&2 || true
		return 1
	}
	curl -fsS "http://127.0.0.1:$T_API_PORT/health" >&2 && echo >&2
	services_healthy
}

# SIGTERM to every container; each must exit 0 within its stop_grace_period.
stop_all() {
	docker-compose -p "$PROJECT" -f "$compose_file" stop >/dev/null 2>&1
	local id state bad=0
	for id in $(docker-compose -p "$PROJECT" -f "$compose_file" ps -q); do
		state=$(docker inspect -f '{{.Name}} {{.State.Status}} {{.State.ExitCode}}' "$id")
		say "stopped: $state"
		case $state in *" exited 0") ;; *) bad=1 ;; esac
	done
	docker-compose -p "$PROJECT" -f "$compose_file" down -v >/dev/null 2>&1
	compose_file=""
	[ "$bad" -eq 0 ] || die "a container did not exit 0 on SIGTERM"
}

timed deps sh scripts/deps.sh --compose
timed dockerd start_dockerd
timed base-image base_image
if [ "${SKIP_PRISTINE:-0}" != 1 ]; then
	timed pristine-setup pristine
fi
timed build-images build_images
timed compose-render render
timed compose-up up
timed walkthrough walkthrough
timed compose-stop stop_all

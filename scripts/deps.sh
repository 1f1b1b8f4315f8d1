#!/usr/bin/env bash
# scripts/deps.sh - installs the Debian packages rampart needs to build, test and run.
#
#   sh scripts/deps.sh           build + test + run packages (wrk too: test_ratelimit.py floods with it)
#   sh scripts/deps.sh --bench   the same plus gnuplot-nox, nginx-light and time (make bench)
#   sh scripts/deps.sh --compose the same plus a Docker engine and debootstrap (make test-compose)
#
# As root, missing packages are installed with apt-get (one "apt-get update"
# first, only when something is missing). Otherwise it prints the apt-get
# command to run and exits 1. Installed packages are never touched.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
RAMPART_SCRIPT=deps
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

# prometheus: promtool (scripts/check-deploy.sh); stunnel4: the Redis TLS
# sidecar's test (tests/integration/test_redis_tls.py).
PKGS=(gcc make pkg-config clang clang-format libevent-dev libhiredis-dev libjansson-dev
	libcurl4-openssl-dev libpq-dev libssl-dev libcmocka-dev redis-server postgresql-15
	python3-pytest python3-yaml python3-jsonschema valgrind curl docker-compose prometheus stunnel4 chromium wrk
	libclang-rt-14-dev)

# Tools needed as commands, with the Debian packages that provide them when
# the command is missing. A machine may have them from elsewhere (kubectl
# from Kubernetes' own packages, node and npm from NodeSource, which bundles
# npm): then nothing is installed, as Debian's packages would conflict.
#   kubectl: kubernetes-client (1.20, whose built-in kustomize renders
#     deploy/k8s); node + npm: tests/k8s's schema validation and the OpenAPI
#     checks of tests/openapi (make test).
CMDS=("kubectl:kubernetes-client" "node:nodejs" "npm:npm")

for arg in "$@"; do
	case $arg in
	--bench) PKGS+=(gnuplot-nox nginx-light time) ;;
	--compose) PKGS+=(docker.io debootstrap git) ;;
	-h | --help)
		sed -n '2,10p' "$0"
		exit 0
		;;
	*) die "unknown argument: $arg" ;;
	esac
done

installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for p in "${PKGS[@]}"; do
	installed "$p" || missing+=("$p")
done
for c in "${CMDS[@]}"; do
	command -v "${c%%:*}" >/dev/null 2>&1 || installed "${c#*:}" || missing+=("${c#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	say "missing Debian packages: ${missing[*]}"
	say "install them with: sudo apt-get install -y ${missing[*]}"
	exit 1
fi

say "installing: ${missing[*]}"
# The redis-server and postgresql packages would start system-wide servers on
# 6379/5432 (and create a "main" cluster). rampart never uses them: its scripts
# start private servers on free ports. Keep the install from starting any
# service when no policy says otherwise (containers usually already have one).
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# temporary, from rampart scripts/deps.sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	own_policy=1
fi
# An EXIT trap's last status becomes the script's: keep the script's own.
cleanup() {
	local rc=$?
	if [ "$own_policy" -eq 1 ]; then
		rm -f "$policy"
	fi
	return "$rc"
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

still=()
for p in "${missing[@]}"; do
	installed "$p" || still+=("$p")
done
[ ${#still[@]} -eq 0 ] || die "still missing after apt-get install: ${still[*]}"
say "installed ${#missing[@]} package(s)"

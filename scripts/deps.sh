#!/usr/bin/env bash
# scripts/deps.sh - installs the Debian packages rampart needs to build, test and run.
#
#   sh scripts/deps.sh           build + test + run packages
#   sh scripts/deps.sh --bench   the same plus wrk (make bench)
#
# As root, missing packages are installed with apt-get (one "apt-get update"
# first, only when something is missing). Otherwise it prints the apt-get
# command to run and exits 1. Installed packages are never touched.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
RAMPART_SCRIPT=deps
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

PKGS=(gcc make pkg-config clang clang-format libevent-dev libhiredis-dev libjansson-dev
	libcurl4-openssl-dev libpq-dev libssl-dev libcmocka-dev redis-server postgresql-15
	python3-pytest valgrind curl libclang-rt-14-dev)

for arg in "$@"; do
	case $arg in
	--bench) PKGS+=(wrk) ;;
	-h | --help)
		sed -n '2,9p' "$0"
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

#!/usr/bin/env bash
# scripts/check-compose.sh - the container files hold together (make test).
#
#   - deploy/docker-compose.yml is valid for Compose (docker-compose config -q),
#     alone and merged with the test override tests/compose/docker-compose.test.yml;
#   - every variable it passes to a rampart daemon is one the daemons know
#     (README's configuration tables), so a typo cannot pass silently;
#   - the runtime image installs every library the binaries link
#     (scripts/check-image-libs.sh), and that check does fail when a package
#     is dropped from the list.
#
#   sh scripts/check-compose.sh [BINDIR]     default: bin
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
RAMPART_SCRIPT=check-compose
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$RAMPART_ROOT"
bindir=${1:-bin}

# Never let a developer's deploy/.env change what is checked.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp deploy/docker-compose.yml "$tmp/docker-compose.yml"
docker-compose -f "$tmp/docker-compose.yml" config -q
T_PG_PORT=1 T_REDIS_PORT=2 T_API_PORT=3 T_WORKER_PORT=4 T_WORKER2_PORT=5 T_WEBHOOK_PORT=6 T_FEE_PORT=7 \
	docker-compose -f "$tmp/docker-compose.yml" -f tests/compose/docker-compose.test.yml config -q
say "ok: docker-compose config (alone and with the test override)"

# Every environment variable given to a daemon must be documented in README.
docker-compose -f "$tmp/docker-compose.yml" config >"$tmp/merged.yml"
/usr/bin/python3 - "$tmp/merged.yml" README.md <<'PY'
import re, sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
known = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", open(sys.argv[2]).read()))
bad = []
for name, svc in d["services"].items():
    if not str(svc.get("image", "")).startswith("rampart"):
        continue
    for var in (svc.get("environment") or {}):
        if var not in known:
            bad.append(f"{name}: {var}")
if bad:
    sys.exit("check-compose: variables no daemon documents (README): " + ", ".join(bad))
print("check-compose: ok: every variable the compose file sets is a documented one")
PY

sh scripts/check-image-libs.sh "$bindir"
if RUNTIME_PACKAGES="libevent-2.1-7 libevent-pthreads-2.1-7 libhiredis0.14 libjansson4 libcurl4 libssl3" \
	sh scripts/check-image-libs.sh "$bindir" >/dev/null 2>&1; then
	die "self-test: check-image-libs.sh passed without libpq5 in the list"
fi
say "ok: check-image-libs.sh fails when a linked library's package is missing"

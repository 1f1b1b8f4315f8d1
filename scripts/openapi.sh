#!/usr/bin/env bash
# scripts/openapi.sh - the checks of docs/openapi.yaml that need npm (a step of
# `make test`; tests/integration/test_openapi.py also calls it when the client
# is not built yet):
#
#   1. installs the pinned tools of tests/openapi/package.json into
#      tests/openapi/node_modules (git-ignored; again only when package.json
#      changed): npm install --no-package-lock --no-audit --no-fund
#   2. lints the document: redocly lint (recommended rules, tests/openapi/redocly.yaml)
#   3. generates TypeScript types from it (openapi-typescript) and type-checks
#      and compiles tests/openapi/client.ts with them (tsc, strict) into
#      tests/openapi/build/js; the integration test runs that client against a
#      live api.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
RAMPART_SCRIPT=openapi
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$RAMPART_ROOT/tests/openapi"

command -v npm >/dev/null 2>&1 || die "npm not found: sh scripts/deps.sh installs it"
stamp=node_modules/.rampart-package.json
if ! cmp -s package.json "$stamp" 2>/dev/null; then
	say "installing the tools of tests/openapi/package.json"
	npm install --no-package-lock --no-audit --no-fund --loglevel=error
	cp package.json "$stamp"
fi

say "redocly lint docs/openapi.yaml"
node_modules/.bin/redocly lint --config redocly.yaml --format=stylish ../../docs/openapi.yaml

say "openapi-typescript docs/openapi.yaml -> tests/openapi/build/schema.ts"
rm -rf build
mkdir -p build
node_modules/.bin/openapi-typescript ../../docs/openapi.yaml -o build/schema.ts --silent
say "tsc (strict): tests/openapi/client.ts -> tests/openapi/build/js"
node_modules/.bin/tsc -p tsconfig.json

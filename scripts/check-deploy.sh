#!/usr/bin/env bash
# scripts/check-deploy.sh - offline checks of the deployment files (make test).
#
#   1. kubectl kustomize deploy/k8s and deploy/k8s/overlays/dev, every
#      rendered object validated against the Kubernetes schemas with unknown
#      fields rejected (tests/k8s/validate.js, npm kubernetes-models); and
#      proof that the validator rejects an unknown field and a wrong type.
#   2. promtool check rules deploy/prometheus/alerts.yml, and the rules'
#      unit tests (promtool test rules deploy/prometheus/alerts_test.yml).
#   3. deploy/grafana/rampart.json is JSON with a panel per expression.
#
# The npm packages (tests/k8s/package.json, exact versions) are installed
# into tests/k8s/node_modules (git-ignored) when missing or older than
# package.json. That every metric the alerts and the dashboard name is
# exposed by a running daemon is checked by the integration tests
# (tests/integration/test_observability.py).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
RAMPART_SCRIPT=check-deploy
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$RAMPART_ROOT"

for c in kubectl node npm promtool; do
	command -v "$c" >/dev/null 2>&1 || die "$c not found (sh scripts/deps.sh installs it)"
done

# --- 1. Kubernetes ---------------------------------------------------------
k8s=tests/k8s
stamp=$k8s/node_modules/.rampart-installed
if [ ! -e "$stamp" ] || [ "$k8s/package.json" -nt "$stamp" ]; then
	say "npm install in $k8s"
	(cd "$k8s" && npm install --no-package-lock --no-audit --no-fund --loglevel=error >/dev/null)
	touch "$stamp"
fi

render_validate() {
	local dir=$1 out
	out=$(mktemp)
	# kustomize's deprecation warnings ("bases", kept for Debian 12's
	# kubectl 1.20) go to stderr: keep them out of the log unless it fails.
	if ! kubectl kustomize "$dir" >"$out" 2>"$out.err"; then
		cat "$out.err" >&2
		rm -f "$out" "$out.err"
		die "kubectl kustomize $dir failed"
	fi
	say "kubectl kustomize $dir: $(grep -c '^kind:' "$out") objects"
	if ! node "$k8s/validate.js" "$out" | sed "s|^$out:|$dir:|"; then
		rm -f "$out" "$out.err"
		die "$dir: invalid objects"
	fi
	rm -f "$out" "$out.err"
}
render_validate deploy/k8s
render_validate deploy/k8s/overlays/dev

# The validator must fail on an unknown field (a typo) and on a wrong type.
bad=$(
	node "$k8s/validate.js" - <<'YAML' || true
apiVersion: apps/v1
kind: Deployment
metadata: {name: typo}
spec:
  replica: 2
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers: [{name: x, image: x, securityContext: {readOnlyRootFilesytem: true}}]
---
apiVersion: v1
kind: Service
metadata: {name: wrongtype}
spec: {ports: [{port: "eighty"}]}
YAML
)
for want in "unknown field spec.replica" \
	"unknown field spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem" \
	"Service/wrongtype: data/spec/ports/0/port must be integer"; do
	case $bad in
	*"$want"*) ;;
	*)
		printf '%s\n' "$bad" >&2
		die "the validator did not report: $want"
		;;
	esac
done
say "validator self-test: unknown fields and wrong types rejected"

# --- 2. Prometheus ---------------------------------------------------------
promtool check rules deploy/prometheus/alerts.yml
if [ -e deploy/prometheus/alerts_test.yml ]; then
	promtool test rules deploy/prometheus/alerts_test.yml
fi

# --- 3. Grafana ------------------------------------------------------------
/usr/bin/python3 - deploy/grafana/rampart.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
panels = [p for p in d["panels"] if p.get("type") != "row"]
assert panels, "no panels"
for p in panels:
    exprs = [t.get("expr", "") for t in p.get("targets", [])]
    assert exprs and all(exprs), f"panel {p.get('title')!r} has a target without expr"
print(f"check-deploy: {sys.argv[1]}: {len(panels)} panels")
PY
say "ok"

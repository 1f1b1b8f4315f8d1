"""Every metric that deploy/prometheus/alerts.yml and deploy/grafana/rampart.json
name is exposed by the running daemons: the four of them are started against
the test servers (the market sources and Claude stubbed on loopback), a
payment runs to COMPLETED with a webhook delivered and a fee decision made,
then each /metrics is scraped and every metric name found in the PromQL
expressions must be in the output (histogram _bucket/_sum/_count map to
their base). Also prints each daemon's resident memory (VmRSS) after that
light load, the figure the Kubernetes requests are sized from."""

import json
import re
import time
import uuid
from pathlib import Path

import pytest

from market_stub import MarketStub
from rampart_it import request, wait_for
from webhook_it import Receiver, Webhook, add_endpoint, webhook_env
from worker_it import Worker, worker_env

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
DASHBOARD = ROOT / "deploy/grafana/rampart.json"

# Series Prometheus makes itself, not the daemons.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and",
                   "or", "unless", "bool", "offset", "inf", "nan", "le"}


class FeeEngine(Worker):
    BINARY = "rampart-feeengine"


def alert_exprs() -> list:
    """The expr of every rule (a small reader for alerts.yml's layout: no YAML
    module in Debian's python3 is assumed): `expr: X` or `expr: |` + block."""
    exprs, lines = [], ALERTS.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)expr:\s*(.*)$", lines[i])
        i += 1
        if not m:
            continue
        if m.group(2).strip() not in ("|", ">", "|-", ">-"):
            exprs.append(m.group(2).strip())
            continue
        indent, block = len(m.group(1)), []
        while i < len(lines) and (not lines[i].strip() or
                                  len(lines[i]) - len(lines[i].lstrip()) > indent):
            block.append(lines[i].strip())
            i += 1
        exprs.append(" ".join(block))
    assert exprs, f"no expr in {ALERTS}"
    return exprs


def dashboard_exprs() -> list:
    d = json.loads(DASHBOARD.read_text())
    exprs = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            exprs.extend(t["expr"] for t in p.get("targets", []) if t.get("expr"))
    walk(d["panels"])
    assert exprs, f"no expr in {DASHBOARD}"
    return exprs


def metric_names(expr: str) -> set:
    """The metric names a PromQL expression reads: identifiers that are not
    functions (followed by "("), keywords, label names in by/without/on/
    ignoring/group_* lists, nor inside {label matchers}, strings or
    [ranges]."""
    e = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)                  # strings
    e = re.sub(r"\{[^{}]*\}", "", e)                               # matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                               # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = e.replace("$__rate_interval", "")
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word, rest = m.group(0), e[m.end():].lstrip()
        if rest.startswith("(") or word.lower() in PROMQL_KEYWORDS:
            continue
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue  # the exponent or suffix of a number (1e3, 5m)
        names.add(word)
    return names


def exposed(text: str) -> tuple:
    """(sample names, {name: type}) of a Prometheus text exposition."""
    samples, types = set(), {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(None, 3)
            types[name] = typ.strip()
        elif line and not line.startswith("#"):
            samples.add(re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0))
    return samples, types


def is_exposed(name: str, samples: set, types: dict) -> bool:
    if name in samples or name in types:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)] if name.endswith(suffix) else None
        if base and types.get(base) == "histogram":
            return True
    return False


def test_metric_names_parser():
    got = metric_names('histogram_quantile(0.99, sum by (le) (rate(rampart_x_bucket'
                       '{route!~"/metrics|/health",code=~"5.."}[5m]))) > 1e3 and '
                       'max by (queue) (deriv(rampart_queue_lag[10m:1m])) > 0 or '
                       'absent(up{app="a"} == 1) / on (instance) group_left(job) foo_total')
    assert got == {"rampart_x_bucket", "rampart_queue_lag", "up", "foo_total"}, got
    assert is_exposed("h_bucket", set(), {"h": "histogram"})
    assert not is_exposed("c_bucket", set(), {"c": "counter"})


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


@pytest.fixture
def stack(start_api, migrated, redis, workdir):
    prefix = f"itobs{uuid.uuid4().hex[:8]}"
    stub = MarketStub()
    receiver = Receiver()
    daemons = []

    def daemon(cls, env, name):
        d = cls(env, workdir, f"{name}-{prefix}")
        daemons.append(d)
        return d.start()

    fee_over = {"MARKET_REFRESH_SECONDS": "1", "ANTHROPIC_API_KEY": stub.claude_key,
                "DATABASE_URL": None, "MOCK_SETTLE_MIN_MS": None, "MOCK_SETTLE_MAX_MS": None,
                "POLL_MIN_MS": None, "POLL_MAX_MS": None, "SHUTDOWN_GRACE_SECONDS": "3"}
    fee_over.update(stub.env())
    fe = daemon(FeeEngine, worker_env(migrated, redis, prefix, fee_over), "obs-feeengine")
    api = start_api({"REDIS_PREFIX": prefix, "FEE_TIMEOUT_MS": "8000"})
    wk = daemon(Worker, worker_env(migrated, redis, prefix), "obs-worker")
    wh = daemon(Webhook, webhook_env(migrated, redis, prefix), "obs-webhook")
    try:
        yield api, wk, wh, fe, receiver
    finally:
        problems = []
        for d in daemons:
            problems += d.stop_and_check()
        receiver.stop()
        stub.close()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


def test_every_alert_and_dashboard_metric_is_exposed(stack, migrated):
    api, wk, wh, fe, receiver = stack
    # Light load that registers the lazily created series: a quote, a fee
    # decision (Claude stubbed), a payment to COMPLETED, its webhook.
    add_endpoint(migrated, receiver.url)
    assert api.post("/v1/fees/calculate", {"from_currency": "USD", "to_currency": "EUR",
                                           "amount": 500000}).status == 200
    q = api.quote("USD", "EUR", 100000)
    assert q.status == 201, q
    r = api.post("/v1/payments", {"quote_id": q.body["id"], "source_account": "acct_src_1",
                                  "destination_account": "acct_dst_1"})
    assert r.status == 202, r
    pid = r.body["id"]
    assert wait_for(lambda: api.get(f"/v1/payments/{pid}").body.get("status") == "COMPLETED",
                    30, 0.2), api.get(f"/v1/payments/{pid}").body
    assert wait_for(lambda: receiver.for_payment(pid), 30, 0.2), "no webhook delivered"
    # The queue gauges are sampled every 5 s, the api's pool gauges every 1 s.
    assert wait_for(lambda: "rampart_queue_lag{" in request(wk.port, "GET", "/metrics",
                                                           key=None).body.decode(), 15, 0.5)

    samples, types = set(), {}
    for port in (api.port, wk.port, wh.port, fe.port):
        r = request(port, "GET", "/metrics", key=None)
        assert r.status == 200, r
        s, t = exposed(r.body.decode())
        samples |= s
        types.update(t)

    missing = {}
    for source, exprs in (("alerts.yml", alert_exprs()), ("rampart.json", dashboard_exprs())):
        for e in exprs:
            for name in metric_names(e):
                if name in PROMETHEUS_OWN:
                    continue
                if not is_exposed(name, samples, types):
                    missing.setdefault(name, []).append(f"{source}: {e[:100]}")
    assert not missing, "metrics named but not exposed by any daemon:\n" + "\n".join(
        f"  {n}: {w[0]}" for n, w in sorted(missing.items()))

    rss = {d: rss_kib(p) for d, p in (("api", api.proc.pid), ("worker", wk.proc.pid),
                                      ("webhook", wh.proc.pid), ("feeengine", fe.proc.pid))}
    print("\nVmRSS after light load (KiB): " + ", ".join(f"{k} {v}" for k, v in rss.items()))


def metric_value(port: int, series: str):
    for line in request(port, "GET", "/metrics", key=None).body.decode().splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_queue_gauges_follow_redis(migrated, redis, workdir):
    """rampart_queue_* are sampled from Redis (every 5 s): a DLQ entry and a
    delayed job written behind the worker's back show up on its /metrics."""
    prefix = f"itqg{uuid.uuid4().hex[:8]}"
    wk = Worker(worker_env(migrated, redis, prefix), workdir, f"qgauge-worker-{prefix}").start()
    try:
        q = 'queue="payments"'
        assert wait_for(lambda: metric_value(wk.port, f"rampart_queue_lag{{{q}}}") == 0, 15, 0.5)
        assert metric_value(wk.port, f"rampart_queue_dlq_depth{{{q}}}") == 0
        for i in range(3):
            redis.cli("XADD", f"{prefix}:{{payments}}:dlq", "*", "payment_id", f"pay_{i}",
                      "step", "onramp_poll", "error", "boom")
        # Due in an hour: stays in the delayed set.
        redis.cli("ZADD", f"{prefix}:{{payments}}:delayed", str(int(time.time() * 1000) + 3600_000),
                  "payment_id=pay_later|step=onramp_poll|attempt=1|request_id=req_x")
        assert wait_for(lambda: metric_value(wk.port, f"rampart_queue_dlq_depth{{{q}}}") == 3,
                        15, 0.5), request(wk.port, "GET", "/metrics", key=None).body.decode()
        assert wait_for(lambda: metric_value(wk.port, f"rampart_queue_delayed{{{q}}}") == 1, 15, 0.5)
        assert metric_value(wk.port, f"rampart_queue_pending{{{q}}}") == 0
    finally:
        problems = wk.stop_and_check()
        assert not problems, "\n".join(problems)

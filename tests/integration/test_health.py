"""Health, readiness, metrics, logs and process lifecycle of rampart-api (SPEC 2, 4, 9)."""

import json
import os
import resource
import socket
import subprocess
import time
import uuid

import pytest

from rampart_it import BIN, api_env, check_error, run_migrate, wait_for


def _checks(body) -> dict:
    assert isinstance(body, dict), f"/health body is not JSON: {body!r}"
    checks = body.get("checks")
    assert isinstance(checks, list) and checks, f"/health has no checks list: {body!r}"
    by_service = {}
    for c in checks:
        assert isinstance(c, dict) and isinstance(c.get("service"), str), f"bad check: {c!r}"
        by_service[c["service"]] = c
    return by_service


# --------------------------------------------------------------------------
# Probes

def test_healthz_no_auth(api):
    r = api.get("/healthz", key=None)
    assert r.status == 200, f"GET /healthz: {r.status} {r.body!r}"
    assert r.headers.get("X-Request-Id"), "GET /healthz: no X-Request-Id"


def test_readyz_no_auth(api):
    r = api.get("/readyz", key=None)
    assert r.status == 200, f"GET /readyz: {r.status} {r.body!r}"


def test_health_reports_dependencies(api):
    r = api.get("/health", key=None)
    assert r.status == 200, f"GET /health: {r.status} {r.body!r}"
    assert "json" in (r.headers.get("Content-Type") or ""), r.headers.get("Content-Type")
    assert r.body.get("overall_status") in ("healthy", "degraded"), r.body
    checks = _checks(r.body)
    for service in ("postgres", "redis"):
        assert service in checks, f"/health has no {service} check: {r.body!r}"
        c = checks[service]
        assert c.get("status") == "up", f"{service} check not up: {c!r}"
        lat = c.get("latency_ms")
        assert isinstance(lat, (int, float)) and not isinstance(lat, bool) and lat >= 0, \
            f"{service} latency_ms not a non-negative number: {c!r}"


def test_request_id_generated_and_echoed(api):
    r = api.get("/healthz", key=None)
    generated = r.headers.get("X-Request-Id")
    assert generated, "no X-Request-Id generated"
    r2 = api.get("/healthz", key=None)
    assert r2.headers.get("X-Request-Id") != generated, "X-Request-Id is not unique per request"
    mine = f"it-{uuid.uuid4().hex}"
    for path, key in (("/healthz", None), ("/health", None), ("/v1/quotes/quote_x", None),
                      (f"/v1/quotes/quote_{uuid.uuid4()}", "sk_test_1")):
        r = api.get(path, key=key, headers={"X-Request-Id": mine})
        assert r.headers.get("X-Request-Id") == mine, \
            f"GET {path} (status {r.status}): X-Request-Id {r.headers.get('X-Request-Id')!r}, sent {mine!r}"


def test_metrics_prometheus_text(api):
    api.get("/healthz", key=None)
    api.quote("USD", "EUR", 10000)
    r = api.get("/metrics", key=None)
    assert r.status == 200, f"GET /metrics: {r.status} {r.body!r}"
    ctype = r.headers.get("Content-Type") or ""
    assert ctype.startswith("text/plain"), f"/metrics Content-Type {ctype!r}"
    text = r.body.decode() if isinstance(r.body, bytes) else str(r.body)
    assert "rampart_http_requests_total" in text, text[:2000]
    assert "# TYPE rampart_http_requests_total counter" in text, \
        "no '# TYPE rampart_http_requests_total counter' line"
    total = 0.0
    for line in text.splitlines():
        if line.startswith("rampart_http_requests_total"):
            total += float(line.rsplit(" ", 1)[1])
    assert total >= 2, f"rampart_http_requests_total sums to {total} after several requests"


def test_no_auth_needed_but_unknown_route_is_404(api):
    r = api.get("/definitely-not-a-route", key=None)
    check_error(r, 404, "NOT_FOUND", what="GET /definitely-not-a-route")


# --------------------------------------------------------------------------
# Logs (SPEC 9): one JSON object per line on stdout, with the request id

def test_logs_are_json_lines_with_request_id(start_api):
    a = start_api({"LOG_FORMAT": "json", "LOG_LEVEL": "info"})
    rid = f"it-log-{uuid.uuid4().hex}"
    r = a.quote("USD", "EUR", 10000, headers={"X-Request-Id": rid})
    assert r.status == 201, r
    time.sleep(0.3)
    rc = a.terminate()
    assert rc == 0, f"exit {rc} after SIGTERM\n{a.logs()}"
    lines = [ln for ln in a.stdout_path.read_text(errors="replace").splitlines() if ln.strip()]
    assert lines, "no log lines on stdout"
    seen_rid = False
    for ln in lines:
        try:
            obj = json.loads(ln)
        except ValueError:
            pytest.fail(f"stdout log line is not JSON: {ln!r}", pytrace=False)
        assert isinstance(obj, dict), ln
        for field in ("ts", "level", "msg"):
            assert field in obj, f"log line without {field}: {ln!r}"
        if obj.get("request_id") == rid:
            seen_rid = True
    assert seen_rid, f"no stdout log line carries request_id {rid!r} at LOG_LEVEL=info"
    assert any(json.loads(ln).get("service") for ln in lines), "no log line names its service"


# --------------------------------------------------------------------------
# Process lifecycle

def test_sigterm_exits_zero_promptly(start_api):
    a = start_api()
    assert a.quote("USD", "EUR", 10000).status == 201
    rc = a.terminate(10)
    assert rc == 0, f"exit code {rc} after SIGTERM\n{a.logs()}"
    assert a.stop_seconds < 5, f"took {a.stop_seconds:.1f} s to exit after SIGTERM"


@pytest.mark.parametrize("name,value", [
    ("FEE_PLATFORM_BPS", "abc"),
    ("RATE_LIMIT_RPS", "-1"),
    ("QUOTE_TTL_SECONDS", "ten"),
    ("API_LISTEN", "not-an-address"),
    ("LOG_LEVEL", "loud"),
    ("REDIS_URL", "http://127.0.0.1:1/"),
])
def test_bad_config_is_startup_error_naming_variable(migrated, redis, name, value):
    env = api_env(migrated, redis, {name: value})
    try:
        r = subprocess.run([str(BIN / "rampart-api")], env=env, capture_output=True, text=True,
                           timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}={value!r}: rampart-api did not exit within 15 s", pytrace=False)
    out = r.stdout + r.stderr
    assert r.returncode != 0, f"{name}={value!r}: exit code 0\n{out}"
    assert name in out, f"{name}={value!r}: output does not name {name}:\n{out}"
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
        assert marker not in r.stderr, f"{name}={value!r}: {marker} on the error path:\n{r.stderr}"


def test_migrate_unreachable_database_fails_promptly():
    t0 = time.monotonic()
    try:
        # Port 1 on loopback: connection refused at once.
        r = run_migrate("postgres://rampart@127.0.0.1:1/rampart", timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("--migrate against an unreachable database did not exit in 30 s", pytrace=False)
    assert r.returncode != 0, f"--migrate exited 0 without a database\n{r.stdout}{r.stderr}"
    assert time.monotonic() - t0 < 30


# --------------------------------------------------------------------------
# PostgreSQL outage and recovery, on a PostgreSQL of this test's own

def test_postgres_outage_and_recovery(start_api, private_pg):
    a = start_api(pg=private_pg)
    r = a.get("/health", key=None)
    assert r.status == 200, f"/health before the outage: {r.status} {r.body!r}"
    before = a.quote("USD", "EUR", 10000)
    assert before.status == 201, before

    private_pg.stop()
    stopped_at = time.monotonic()
    last = {}

    def down():
        h = a.get("/health", key=None, timeout=10)
        last["r"] = h
        return h.status == 503 and _checks(h.body).get("postgres", {}).get("status") == "down"

    assert wait_for(down, 10, 0.25), \
        f"/health did not report 503 with postgres down within 10 s; last: " \
        f"{last['r'].status} {last['r'].body!r}"
    h = last["r"]
    assert h.body.get("overall_status") == "unhealthy", f"overall_status with postgres down: {h.body!r}"
    assert _checks(h.body).get("redis", {}).get("status") == "up", f"redis check: {h.body!r}"

    # While the database is down, requests that need it fail fast with a 5xx
    # JSON error (a dependency is down), never hang.
    t0 = time.monotonic()
    r = a.quote("USD", "EUR", 10000)
    took = time.monotonic() - t0
    assert 500 <= r.status < 600, f"POST /v1/quotes with postgres down: {r.status} {r.body!r}"
    assert isinstance(r.body, dict) and "error" in r.body, f"5xx body not a JSON error: {r.body!r}"
    assert took < 10, f"POST /v1/quotes with postgres down took {took:.1f} s"
    r = a.get(f"/v1/quotes/{before.body['id']}")
    assert 500 <= r.status < 600, f"GET /v1/quotes/{{id}} with postgres down: {r.status} {r.body!r}"

    # Stay down a few seconds, long enough for reconnect attempts to back off.
    time.sleep(max(0.0, 3.0 - (time.monotonic() - stopped_at)))
    private_pg.start()  # same port, same data

    def up():
        h = a.get("/health", key=None, timeout=10)
        last["r"] = h
        return h.status == 200

    assert wait_for(up, 12, 0.25), \
        f"/health not 200 within 12 s of PostgreSQL restarting; last: " \
        f"{last['r'].status} {last['r'].body!r}"
    assert _checks(last["r"].body)["postgres"]["status"] == "up", last["r"].body

    # Requests work again without restarting the api. A loop whose
    # connections are all in reconnect backoff brings one attempt forward
    # when a request needs it, so this takes well under the 5 s backoff cap.
    seen = []

    def ten_ok():
        for i in range(10):
            st = a.quote("USD", "EUR", 10000 + i).status
            seen.append(st)
            if st != 201:
                return False
        return True

    assert wait_for(ten_ok, 2, 0.1), \
        f"POST /v1/quotes not reliably 201 within 2 s after /health recovered; " \
        f"statuses: {seen[-30:]}"
    r = a.get(f"/v1/quotes/{before.body['id']}")
    assert r.status == 200, f"quote created before the outage: {r.status} {r.body!r}"


def test_readyz_unaffected_by_auth_header(api):
    r = api.get("/readyz", key="not-a-key")
    assert r.status == 200, f"GET /readyz with a bogus Authorization: {r.status} {r.body!r}"


def test_raises_its_open_file_limit(start_api):
    # Room for 10,000 clients plus, per loop, its pool and Redis connections:
    # 10,000 + 2 x (4 + 8) + 64, as far as the hard limit allows.
    hard = min(20000, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    a = start_api({"API_THREADS": "2", "DB_POOL_SIZE": "4"},
                  preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)))
    with open(f"/proc/{a.proc.pid}/limits") as f:
        line = next(ln for ln in f if ln.startswith("Max open files"))
    assert [int(x) for x in line.split()[3:5]] == [min(10088, hard), hard]


def test_out_of_descriptors_pauses_accepting_instead_of_spinning(start_api):
    # 300 connections against a 150-descriptor limit: accept() fails while
    # connections wait in the backlog. evhttp alone retried at once, a core at
    # 100% (300 of 300 ticks in 3 s) and a raw libevent warning per retry; the
    # api pauses accepting for 100 ms and says so once, in its own log.
    a = start_api({"API_THREADS": "1", "DB_POOL_SIZE": "2"},
                  preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (150, 150)))

    def ticks():
        f = open(f"/proc/{a.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])  # utime + stime

    socks = [socket.create_connection(("127.0.0.1", a.port)) for _ in range(300)]
    try:
        time.sleep(0.5)
        t0 = ticks()
        time.sleep(2)
        spent = ticks() - t0
        assert spent < os.sysconf("SC_CLK_TCK"), spent  # under half a core
    finally:
        for s in socks[:250]:
            s.close()
    # Descriptors free again: accepting resumed, a new client is served.
    assert wait_for(lambda: a.get("/healthz", key=None).status == 200, 5, 0.1)
    for s in socks[250:]:
        s.close()
    log = a.stderr_path.read_text() + a.stdout_path.read_text()
    assert "Error from accept() call" not in log
    assert 1 <= log.count("http: cannot accept connections; pausing") <= 2, log[-2000:]


# --------------------------------------------------------------------------
# /health: the webhook queue and its DLQ, and the market data's freshness

MARKET_SOURCES = ("fx", "prices", "gas.ethereum", "gas.base", "gas.polygon", "gas.arbitrum",
                  "gas.solana", "status.circle")


def _write_snapshot(redis, prefix, written, sources):
    """sources: name -> (source, as_of); written: snapshot.as_of (None: no hash)."""
    key = f"{prefix}:market:snapshot"
    redis.cli("DEL", key)
    if written is None:
        return
    args = ["snapshot.as_of", str(written), "fx.EUR", "0.919"]
    for name, (src, as_of) in sources.items():
        args += [f"{name}.source", src, f"{name}.as_of", str(as_of)]
    redis.cli("HSET", key, *args)


def _health(api):
    r = api.get("/health", key=None)
    assert r.status == 200, f"GET /health: {r.status} {r.body!r}"
    return r.body, _checks(r.body)


def test_health_reports_webhook_queue_and_dlq(start_api, redis):
    prefix = f"itwh{uuid.uuid4().hex[:8]}"
    a = start_api({"REDIS_PREFIX": prefix})
    now = int(time.time())
    _write_snapshot(redis, prefix, now, {s: ("live", now) for s in MARKET_SOURCES})
    body, c = _health(a)
    assert body["overall_status"] == "healthy", body
    assert c["webhooks_queue"]["status"] == "up", body
    assert c["webhooks_queue"]["pending"] == 0 and c["webhooks_queue"]["lag"] == 0, body
    assert c["webhooks_dlq"]["status"] == "up" and c["webhooks_dlq"]["depth"] == 0, body

    jobs, dlq = f"{prefix}:{{webhooks}}:jobs", f"{prefix}:{{webhooks}}:dlq"
    redis.cli("XGROUP", "CREATE", jobs, "webhooks", "$", "MKSTREAM")
    for i in range(4):
        redis.cli("XADD", jobs, "*", "delivery_id", f"dlv_{i}", "attempt", "1")
    redis.cli("XREADGROUP", "GROUP", "webhooks", "w1", "COUNT", "1", "STREAMS", jobs, ">")
    body, c = _health(a)
    assert body["overall_status"] == "healthy", body
    assert c["webhooks_queue"]["pending"] == 1 and c["webhooks_queue"]["lag"] == 3, body
    # The payments queue is a different stream: untouched.
    assert c["payments_queue"]["pending"] == 0 and c["payments_queue"]["lag"] == 0, body

    redis.cli("XADD", dlq, "*", "delivery_id", "dlv_x", "error", "HTTP 500")
    redis.cli("XADD", dlq, "*", "delivery_id", "dlv_y", "error", "timeout")
    body, c = _health(a)
    assert body["overall_status"] == "degraded", body
    assert c["webhooks_dlq"]["status"] == "warn" and c["webhooks_dlq"]["depth"] == 2, body
    assert c["payments_dlq"]["status"] == "up", body


def test_health_market_data_freshness(start_api, redis):
    prefix = f"itmk{uuid.uuid4().hex[:8]}"
    a = start_api({"REDIS_PREFIX": prefix, "MARKET_CACHE_TTL_SECONDS": 60})

    # No snapshot at all: quotes run on built-in rates.
    _write_snapshot(redis, prefix, None, {})
    body, c = _health(a)
    m = c["market_data"]
    assert m["status"] == "warn" and "no market snapshot" in m["reason"], body
    assert m["snapshot_age_seconds"] is None, body
    assert set(m["sources"]) == set(MARKET_SOURCES), body
    assert all(v == {"source": "default", "age_seconds": None} for v in m["sources"].values()), body
    assert body["overall_status"] == "degraded", body

    # Fresh, every source live: up, with each source's age.
    now = int(time.time())
    srcs = {s: ("live", now - 5) for s in MARKET_SOURCES}
    srcs["gas.solana"] = ("cached", now - 40)
    _write_snapshot(redis, prefix, now - 2, srcs)
    body, c = _health(a)
    m = c["market_data"]
    assert m["status"] == "up" and "reason" not in m, body
    assert body["overall_status"] == "healthy", body
    assert 2 <= m["snapshot_age_seconds"] <= 2 + 30, body
    assert m["sources"]["fx"]["source"] == "live" and 5 <= m["sources"]["fx"]["age_seconds"] <= 35
    assert m["sources"]["gas.solana"]["source"] == "cached", body
    assert 40 <= m["sources"]["gas.solana"]["age_seconds"] <= 70, body

    # A source on its built-in default: warn, naming it.
    srcs["prices"] = ("default", 0)
    _write_snapshot(redis, prefix, now, srcs)
    body, c = _health(a)
    m = c["market_data"]
    assert m["status"] == "warn" and m["reason"] == "on built-in defaults: prices", body
    assert m["sources"]["prices"] == {"source": "default", "age_seconds": None}, body
    assert body["overall_status"] == "degraded", body

    # Not rewritten for longer than MARKET_CACHE_TTL_SECONDS: stale.
    srcs["prices"] = ("live", now - 500)
    _write_snapshot(redis, prefix, now - 500, srcs)
    body, c = _health(a)
    m = c["market_data"]
    assert m["status"] == "warn" and "not rewritten for" in m["reason"], body
    assert "MARKET_CACHE_TTL_SECONDS 60" in m["reason"], body
    assert m["snapshot_age_seconds"] >= 500, body
    assert body["overall_status"] == "degraded", body

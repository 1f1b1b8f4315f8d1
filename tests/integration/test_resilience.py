"""Resilience of the api: Redis going away and coming back, a graceful
SIGTERM that finishes the request in flight, and market snapshots that
change or carry garbage."""

import signal
import subprocess
import threading
import time
import uuid
from decimal import Decimal

import pytest

from rampart_it import Redis, wait_for


@pytest.fixture
def private_redis(workdir):
    d = workdir / f"redis-{uuid.uuid4().hex[:6]}"
    d.mkdir()
    r = Redis(d)
    r.start()
    try:
        yield r
    finally:
        r.stop()


def _checks(body):
    return {c["service"]: c for c in body.get("checks", [])}


def test_redis_outage_and_recovery(start_api, private_redis):
    a = start_api({"REDIS_URL": private_redis.url, "REDIS_TIMEOUT_MS": 500})
    assert a.get("/health", key=None).status == 200

    private_redis.stop()
    last = {}

    def down():
        last["r"] = a.get("/health", key=None, timeout=10)
        return last["r"].status == 503 and _checks(last["r"].body)["redis"]["status"] == "down"

    assert wait_for(down, 10, 0.2), f"/health with Redis down: {last['r'].status} {last['r'].body!r}"
    assert _checks(last["r"].body)["postgres"]["status"] == "up"
    assert a.get("/readyz", key=None).status == 503

    # Quotes need PostgreSQL, not Redis: they keep working on the last rates.
    r = a.quote("USD", "EUR", 10000)
    assert r.status == 201, f"POST /v1/quotes with Redis down: {r.status} {r.body!r}"

    private_redis.start()  # same port, empty data
    # Each event loop reconnects on its own backoff (at most 5 s apart).
    assert wait_for(lambda: a.get("/health", key=None).status == 200, 10, 0.2), \
        "/health not 200 within 10 s of Redis coming back"
    assert wait_for(lambda: all(a.get("/readyz", key=None).status == 200 for _ in range(4)),
                    10, 0.2), "/readyz not 200 within 10 s of Redis coming back"


def _hold_quotes_lock(pg, seconds):
    """A psql session that locks the quotes table for `seconds`."""
    sql = f"BEGIN; LOCK TABLE quotes IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({seconds}); COMMIT;"
    return subprocess.Popen(["psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "rampart",
                             "-d", "rampart", "-qAtc", sql],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sigterm_finishes_request_in_flight(start_api, private_pg):
    a = start_api(pg=private_pg)
    locker = _hold_quotes_lock(private_pg, 2)
    try:
        assert wait_for(lambda: private_pg.psql(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE c.relname = 'quotes' AND l.mode = 'AccessExclusiveLock' AND l.granted") == "1",
            10, 0.05), "the test could not lock the quotes table"
        result = {}

        def post():
            result["r"] = a.quote("USD", "EUR", 424242, timeout=20)

        t = threading.Thread(target=post)
        t.start()
        time.sleep(0.5)  # the insert is now waiting for the lock
        assert "r" not in result, f"the quote did not wait for the lock: {result}"
        t0 = time.monotonic()
        a.proc.send_signal(signal.SIGTERM)
        t.join(20)
        assert not t.is_alive(), "the request in flight never got an answer"
        r = result["r"]
        assert r.status == 201, f"request in flight during SIGTERM: {r.status} {r.body!r}"
        rc = a.proc.wait(15)
        a.terminated, a.exit_code = True, rc  # the fixture must not signal it again
        assert rc == 0, f"exit code after a graceful drain: {rc}\n{a.logs()}"
        assert time.monotonic() - t0 < 12, "drain took longer than the grace period"
        qid = r.body["id"]
        assert private_pg.psql(f"SELECT amount FROM quotes WHERE id = '{qid}'") == "424242"
    finally:
        locker.wait(10)


def _snapshot(redis, prefix, fields):
    args = []
    for k, v in fields.items():
        args += [k, v]
    redis.cli("DEL", f"{prefix}:market:snapshot")
    if args:
        redis.cli("HSET", f"{prefix}:market:snapshot", *args)


def _rate_becomes(api, want, frm="USD", to="EUR"):
    last = {}

    def ok():
        last["r"] = api.quote(frm, to, 100000)
        return last["r"].status == 201 and Decimal(last["r"].body["exchange_rate"]) == Decimal(want)

    assert wait_for(ok, 5, 0.2), f"{frm}->{to} rate did not become {want}: {last['r'].body!r}"
    return last["r"].body


def test_snapshot_changes_are_picked_up(start_api, redis):
    prefix = f"itchg{uuid.uuid4().hex[:8]}"
    a = start_api({"REDIS_PREFIX": prefix})
    _snapshot(redis, prefix, {"fx.EUR": "0.5", "fx.source": "live", "fx.as_of": "1700000000"})
    q = _rate_becomes(a, "0.5")
    assert q["rate_source"] == "live"
    _snapshot(redis, prefix, {"fx.EUR": "0.6", "fx.source": "cached"})
    q = _rate_becomes(a, "0.6")
    assert q["rate_source"] == "cached"
    # The snapshot disappears: back to the built-in default, said so.
    _snapshot(redis, prefix, {})
    q = _rate_becomes(a, "0.92")
    assert q["rate_source"] == "default"


@pytest.mark.parametrize("bad", ["abc", "-1", "0", "1e3", "", "0.5.5", " 0.5", "NaN",
                                 "99999999999999999999"])
def test_snapshot_garbage_is_ignored(start_api, redis, bad):
    prefix = f"itbad{uuid.uuid4().hex[:8]}"
    a = start_api({"REDIS_PREFIX": prefix})
    # A bad EUR value must not poison the good GBP one, nor crash anything.
    _snapshot(redis, prefix, {"fx.EUR": bad, "fx.GBP": "0.5", "fx.source": "live"})
    _rate_becomes(a, "0.5", "USD", "GBP")
    q = a.quote("USD", "EUR", 100000)
    assert q.status == 201, q
    assert Decimal(q.body["exchange_rate"]) == Decimal("0.92"), q.body
    assert q.body["rate_source"] == "default"
    assert a.get("/health", key=None).status == 200


def test_health_reports_queue_lag_and_dlq_depth(start_api, redis):
    prefix = f"itq{uuid.uuid4().hex[:8]}"
    a = start_api({"REDIS_PREFIX": prefix})
    # Fresh market data, so that only the queues decide the overall status.
    now = int(time.time())
    fresh = {"snapshot.as_of": str(now)}
    for src in ("fx", "prices", "gas.ethereum", "gas.base", "gas.polygon", "gas.arbitrum",
                "gas.solana", "status.circle"):
        fresh[f"{src}.as_of"], fresh[f"{src}.source"] = str(now), "live"
    _snapshot(redis, prefix, fresh)
    h = a.get("/health", key=None)
    assert h.status == 200 and h.body["overall_status"] == "healthy", h.body
    c = _checks(h.body)
    assert c["payments_queue"]["pending"] == 0 and c["payments_dlq"]["depth"] == 0, h.body

    jobs, dlq = f"{prefix}:{{payments}}:jobs", f"{prefix}:{{payments}}:dlq"
    redis.cli("XGROUP", "CREATE", jobs, "workers", "$", "MKSTREAM")
    for i in range(3):
        redis.cli("XADD", jobs, "*", "payment_id", f"pay_{i}", "step", "onramp_initiate",
                  "attempt", "1", "request_id", "req_test")
    redis.cli("XREADGROUP", "GROUP", "workers", "w1", "COUNT", "1", "STREAMS", jobs, ">")
    redis.cli("XADD", dlq, "*", "payment_id", "pay_x", "step", "offramp_poll", "error", "boom")

    h = a.get("/health", key=None)
    assert h.status == 200, h
    assert h.body["overall_status"] == "degraded", h.body
    c = _checks(h.body)
    assert c["payments_queue"]["pending"] == 1, h.body   # read, not acknowledged
    assert c["payments_queue"]["lag"] == 2, h.body       # not yet read by the group
    assert c["payments_dlq"]["depth"] == 1 and c["payments_dlq"]["status"] == "warn", h.body

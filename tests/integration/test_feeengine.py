"""The fee engine against real Redis, a real api and a loopback stub of every
market source and of Claude's Messages API (market_stub.py): the snapshot
(live, cached, default, rejected garbage), quotes priced from it, routing
through POST /v1/fees/calculate, Claude's decisions and every way they fall
back, the decision cache, concurrency, timeouts and bad input."""

import json
import threading
import time
import uuid

import pytest

from market_stub import MarketStub
from rampart_it import free_port, request, wait_for
from worker_it import Worker, worker_env

AI_TIMEOUT_MS = 1500
FEE_TIMEOUT_MS = 4000


class FeeEngine(Worker):
    """One rampart-feeengine; same life cycle and checks as a Worker."""

    BINARY = "rampart-feeengine"

    def metrics(self) -> str:
        b = request(self.port, "GET", "/metrics", key=None).body
        return b.decode() if isinstance(b, bytes) else str(b)

    def metric(self, name_labels: str) -> float:
        for line in self.metrics().splitlines():
            if line.startswith(name_labels + " "):
                return float(line.split()[-1])
        return 0.0


def fee_env(pg, redis, prefix, stub, overrides=None) -> dict:
    base = {"MARKET_REFRESH_SECONDS": "1", "MARKET_FX_REFRESH_SECONDS": "1",
            "MARKET_CACHE_TTL_SECONDS": "3",
            "MARKET_FETCH_TIMEOUT_MS": "800", "FEE_AI_TIMEOUT_MS": str(AI_TIMEOUT_MS),
            "SHUTDOWN_GRACE_SECONDS": "3", "DATABASE_URL": None, "MOCK_SETTLE_MIN_MS": None,
            "MOCK_SETTLE_MAX_MS": None, "POLL_MIN_MS": None, "POLL_MAX_MS": None}
    base.update(stub.env() if stub else {})
    base.update(overrides or {})
    return worker_env(pg, redis, prefix, base)


@pytest.fixture
def fees(start_api, migrated, redis, workdir):
    """fees.start(env=None, ai=False, api=True) -> (api, feeengine) sharing a
    fresh REDIS_PREFIX and fees.stub (a MarketStub)."""
    procs = []
    stub = MarketStub()

    class F:
        prefix = f"itfee{uuid.uuid4().hex[:10]}"

        def __init__(self):
            self.stub = stub

        def engine(self, env=None, ai=False, wait=True):
            over = dict(env or {})
            if ai:
                over.setdefault("ANTHROPIC_API_KEY", stub.claude_key)
            d = FeeEngine(fee_env(migrated, redis, self.prefix, stub, over), workdir,
                          f"feeengine-{self.prefix}-{len(procs)}")
            procs.append(d)
            if wait:
                d.start()
            return d

        def api(self, env=None):
            over = {"REDIS_PREFIX": self.prefix, "FEE_TIMEOUT_MS": str(FEE_TIMEOUT_MS)}
            over.update(env or {})
            return start_api(over)

        def start(self, env=None, ai=False, api=True):
            d = self.engine(env, ai)
            return (self.api() if api else None), d

        def snapshot(self) -> dict:
            out = redis.cli("HGETALL", f"{self.prefix}:market:snapshot").splitlines()
            return dict(zip(out[0::2], out[1::2]))

        def wait_snapshot(self, pred, timeout=10.0):
            ok = wait_for(lambda: pred(self.snapshot()), timeout, 0.1)
            assert ok, self.snapshot()

    yield F()
    problems = []
    for p in procs:
        problems += p.stop_and_check()
    stub.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def calc(api, **body):
    body.setdefault("from_currency", "USD")
    body.setdefault("to_currency", "EUR")
    return api.post("/v1/fees/calculate", body)


SOURCES = ("fx", "prices", "gas.ethereum", "gas.base", "gas.polygon", "gas.arbitrum",
           "gas.solana", "status.circle")


# ---- market data -------------------------------------------------------------

def test_snapshot_from_live_sources(fees):
    _, d = fees.start(api=False)
    fees.wait_snapshot(lambda s: all(s.get(f"{n}.source") == "live" for n in SOURCES))
    s = fees.snapshot()
    assert s["fx.EUR"] == "0.919" and s["fx.JPY"] == "151.2" and s["fx.USD"] == "1"
    assert abs(int(s["fx.as_of"]) - time.time()) < 10
    assert s["price.ETH"] == "3120.55" and s["price.SOL"] == "142.1"
    assert s["price.POL"] == "0.52"
    assert s["gas.ethereum.standard"] == "17.122906179" and s["gas.ethereum.fast"] == "38.2"
    assert s["gas.base.standard"] == "0.57" and s["gas.base.fast"] == "1.05"
    # Polygon is served in Blockscout's object shape.
    assert s["gas.polygon.standard"] == "30" and s["gas.polygon.fast"] == "45"
    # Solana: the median and 75th percentile of the samples.
    fees_sorted = sorted(fees.stub.solana_fees)
    assert s["gas.solana.standard"] == str(fees_sorted[(len(fees_sorted) - 1) // 2])
    assert s["status.circle"] == "none"
    assert fees.stub.hits["solana"] >= 1
    sol = fees.stub.requests["solana"][-1]
    assert sol["method"] == "POST"
    assert json.loads(sol["body"])["method"] == "getRecentPrioritizationFees"
    assert d.metric('rampart_market_fetch_total{source="fx",outcome="ok"}') >= 1


def test_failing_source_cached_then_default_then_live(fees):
    _, d = fees.start(api=False)
    fees.wait_snapshot(lambda s: s.get("fx.source") == "live")
    fees.stub.fx["EUR"] = 0.95
    fees.wait_snapshot(lambda s: s.get("fx.EUR") == "0.95")
    fees.stub.set_mode("fx", "fail")
    fees.wait_snapshot(lambda s: s.get("fx.source") == "cached")
    assert fees.snapshot()["fx.EUR"] == "0.95"          # the last good value
    assert fees.snapshot()["prices.source"] == "live"    # others unaffected
    # Past MARKET_CACHE_TTL_SECONDS (3 s): the built-in default (0.92).
    fees.wait_snapshot(lambda s: s.get("fx.source") == "default", 10)
    assert fees.snapshot()["fx.EUR"] == "0.92"
    assert fees.snapshot()["fx.as_of"] == "0"
    assert d.metric('rampart_market_fetch_total{source="fx",outcome="failed"}') >= 2
    fees.stub.set_mode("fx", "ok")
    fees.wait_snapshot(lambda s: s.get("fx.source") == "live" and s["fx.EUR"] == "0.95")


def test_fx_fetched_at_most_every_fx_refresh_seconds(fees):
    _, d = fees.start({"MARKET_FX_REFRESH_SECONDS": "3600"}, api=False)
    fees.wait_snapshot(lambda s: s.get("fx.source") == "live")
    hits = fees.stub.hits["fx"]
    assert wait_for(lambda: fees.stub.hits["prices"] >= 4, 10, 0.1)
    assert fees.stub.hits["fx"] == hits == 1
    assert fees.snapshot()["fx.source"] == "live"


def test_slow_source_times_out_without_delaying_others(fees):
    fees.stub.set_mode("prices", "slow", delay=5)
    _, d = fees.start(api=False)
    fees.wait_snapshot(lambda s: s.get("fx.source") == "live" and s.get("prices.source"))
    s = fees.snapshot()
    assert s["prices.source"] == "default"  # never had a good value
    assert s["gas.base.source"] == "live"
    fees.stub.set_mode("prices", "ok")
    fees.wait_snapshot(lambda s: s.get("prices.source") == "live")


@pytest.mark.parametrize("mode", ["garbage", "wrong_type", "absurd", "error"])
def test_bad_answers_rejected_without_poisoning(fees, mode):
    _, d = fees.start(api=False)
    fees.wait_snapshot(lambda s: all(s.get(f"{n}.source") == "live" for n in SOURCES))
    before = fees.snapshot()
    for src in ("fx", "prices", "eth_gas", "base", "polygon", "arbitrum", "solana", "circle"):
        fees.stub.set_mode(src, mode)
    fees.wait_snapshot(lambda s: all(s.get(f"{n}.source") == "cached" for n in SOURCES))
    after = fees.snapshot()
    for k, v in before.items():
        if not (k.endswith(".as_of") or k.endswith(".source")):
            assert after[k] == v, (k, v, after[k])
    outcome = "failed" if mode == "error" else "rejected"
    # Solana's and FX's error shapes come with HTTP 200: rejected by the parser.
    assert d.metric(f'rampart_market_fetch_total{{source="gas.base",outcome="{outcome}"}}') >= 1
    assert d.metric('rampart_market_fetch_total{source="fx",outcome="rejected"}') >= 1
    assert d.metric('rampart_market_fetch_total{source="gas.solana",outcome="rejected"}') >= 1
    assert request(d.port, "GET", "/healthz", key=None).status == 200


def test_rate_jump_rejected(fees):
    _, d = fees.start(api=False)
    fees.wait_snapshot(lambda s: s.get("fx.source") == "live")
    fees.stub.fx["EUR"] = 91.9  # 100x the last good rate
    fees.wait_snapshot(lambda s: s.get("fx.source") == "cached")
    assert fees.snapshot()["fx.EUR"] == "0.919"
    log = d.stdout_path.read_text()
    assert "jump" in log or "10x" in log, log[-2000:]


def test_quotes_use_the_snapshot_rate(fees):
    a, _ = fees.start()
    fees.wait_snapshot(lambda s: s.get("fx.source") == "live")

    def rate():
        r = a.quote("USD", "EUR", 10000)
        assert r.status == 201, r.body
        return r.body["exchange_rate"], r.body["rate_source"]

    assert wait_for(lambda: rate() == ("0.919", "live"), 5, 0.2), rate()
    fees.stub.fx["EUR"] = 0.95
    assert wait_for(lambda: rate() == ("0.95", "live"), 6, 0.2), rate()


def test_currency_the_fx_source_does_not_list_is_priced_as_default(fees):
    # The stub's FX answer lists nine currencies, not AUD: the snapshot leaves
    # AUD out, and a quote in AUD says its rate is the built-in one.
    a, _ = fees.start()
    fees.wait_snapshot(lambda s: s.get("fx.source") == "live")
    s = fees.snapshot()
    assert "fx.AUD" not in s and s["fx.EUR"] == "0.919"

    def source(to):
        r = a.quote("USD", to, 10000)
        assert r.status == 201, r.body
        return r.body["rate_source"], r.body["exchange_rate"]

    assert wait_for(lambda: source("EUR") == ("live", "0.919"), 5, 0.2), source("EUR")
    assert source("AUD") == ("default", "1.52")
    # Once the source lists it, it is live; when it stops, it is dropped again.
    with fees.stub.lock:  # the stub serves a copy taken under its lock
        fees.stub.fx["AUD"] = 1.5
    fees.wait_snapshot(lambda s: s.get("fx.AUD") == "1.5")
    assert wait_for(lambda: source("AUD") == ("live", "1.5"), 5, 0.2), source("AUD")
    with fees.stub.lock:
        del fees.stub.fx["AUD"]
    fees.wait_snapshot(lambda s: "fx.AUD" not in s)
    assert wait_for(lambda: source("AUD") == ("default", "1.52"), 5, 0.2), source("AUD")


def test_quote_chain_is_the_routers(fees):
    a, _ = fees.start()
    fees.stub.l2_gas.update(base={"slow": 5, "average": 5, "fast": 6},
                            arbitrum={"slow": 5, "average": 5, "fast": 6},
                            polygon={"slow": 0.001, "average": 0.001, "fast": 0.002})
    fees.stub.solana_fees = [10_000_000] * 10
    fees.wait_snapshot(lambda s: s.get("gas.polygon.standard") == "0.001")

    def chains(amount, **kw):
        q = a.quote("USD", "EUR", amount, extra=kw)
        assert q.status == 201, q.body
        f = calc(a, amount=amount, **kw)
        assert f.status == 200, f.body
        return q.body["chain"], f.body["recommended_provider"]["chain"]

    # The api re-reads the snapshot once a second.
    assert wait_for(lambda: chains(5000) == ("polygon", "polygon"), 5, 0.2), chains(5000)
    assert chains(100_000_000) == ("ethereum", "ethereum")
    q, f = chains(5000, priority="express")
    assert q == f, (q, f)
    fees.stub.circle = "critical"
    fees.wait_snapshot(lambda s: s.get("status.circle") == "critical")

    def refused():
        r = a.quote("USD", "EUR", 5000)
        return r.status == 503 and r.error()["code"] == "NO_ROUTE" and \
            "circle" in r.error()["message"]
    assert wait_for(refused, 5, 0.2), a.quote("USD", "EUR", 5000).body


def test_offline_says_so_once_and_uses_defaults(fees):
    dead = f"http://127.0.0.1:{free_port()}"
    env = {k: f"{dead}/x" for k in fees.stub.env() if k.startswith("MARKET_")}
    a, d = fees.start(env)
    fees.wait_snapshot(lambda s: s.get("fx.source") == "default")
    time.sleep(3.5)  # a few more refreshes
    log = d.stdout_path.read_text()
    assert log.count("no market source reachable") == 1, log
    assert "market source failed" not in log
    r = calc(a, amount=5000)
    assert r.status == 200, r.body
    assert r.body["source"] == "fallback" and r.body["confidence_score"] == 0.75
    assert "market data on built-in defaults: fx, prices, gas.ethereum, gas.base, " \
        "gas.polygon, gas.arbitrum, gas.solana, status.circle" in r.body["risk_factors"], r.body


# ---- routing and the fee API -----------------------------------------------------

def test_deterministic_fees(fees, redis):
    a, _ = fees.start()
    fees.wait_snapshot(lambda s: s.get("fx.source") == "live")
    r = calc(a, amount=5000)  # $50.00
    assert r.status == 200, r.body
    b = r.body
    assert b["source"] == "fallback" and b["fallback_reason"] == "disabled"
    assert b["confidence_score"] == 0.75
    assert decisions(redis, fees.prefix) == {"fallback": 1, "fallback.disabled": 1}
    fb = b["fee_breakdown"]
    assert fb["platform_fee"] == 100 and fb["onramp_fee"] == 35 and fb["offramp_fee"] == 25
    assert b["total_fee"] == sum(fb.values())
    assert b["currency"] == "USD"
    rp = b["recommended_provider"]
    assert rp["onramp"] == "circle" and rp["offramp"] == "circle"
    assert rp["chain"] in ("base", "polygon", "arbitrum", "solana"), b
    assert "cheapest" in rp["reasoning"], rp
    assert isinstance(b["estimated_settlement_time"], int)
    assert b["market_data_as_of"].endswith("Z")
    pct = b["total_fee"] * 100 / 5000
    assert abs(float(b["fee_percent"]) - pct) < 0.0001

    big = calc(a, amount=100_000_000).body  # $1,000,000.00
    assert big["recommended_provider"]["chain"] == "ethereum", big
    assert "L1" in big["recommended_provider"]["reasoning"]

    express = calc(a, amount=5000, priority="express").body
    assert express["estimated_settlement_time"] <= b["estimated_settlement_time"]
    prem = calc(a, amount=5000, customer_tier="premium").body
    ent = calc(a, amount=5000, customer_tier="enterprise").body
    assert ent["fee_breakdown"]["platform_fee"] < prem["fee_breakdown"]["platform_fee"] < 100


def test_cheapest_l2_follows_gas(fees):
    # $50: gas and the risk premium (1 cent on every L2 at this size) decide.
    fees.stub.l2_gas.update(base={"slow": 5, "average": 5, "fast": 6},
                            arbitrum={"slow": 5, "average": 5, "fast": 6},
                            polygon={"slow": 0.001, "average": 0.001, "fast": 0.002})
    fees.stub.solana_fees = [10_000_000] * 10  # $0.07 of priority fees
    a, _ = fees.start()
    # Every chain's figure from this stub, not only Polygon's: the sources
    # are fetched independently, and a chain still at its default could win.
    fees.wait_snapshot(lambda s: s.get("gas.polygon.standard") == "0.001"
                       and s.get("gas.arbitrum.standard") == "5"
                       and s.get("gas.base.standard") == "5"
                       and s.get("gas.solana.standard") == "10000000")
    assert calc(a, amount=5000).body["recommended_provider"]["chain"] == "polygon"
    fees.stub.l2_gas.update(polygon={"slow": 900, "average": 900, "fast": 1000},
                            arbitrum={"slow": 0.0001, "average": 0.0001, "fast": 0.0002})
    fees.wait_snapshot(lambda s: s.get("gas.polygon.standard") == "900"
                       and s.get("gas.arbitrum.standard") == "0.0001")
    assert calc(a, amount=5000).body["recommended_provider"]["chain"] == "arbitrum"


def test_unhealthy_circle_no_route(fees):
    a, _ = fees.start()
    fees.stub.circle = "major"
    fees.wait_snapshot(lambda s: s.get("status.circle") == "major")
    r = calc(a, amount=5000)
    assert r.status == 503, r.body
    assert r.error()["code"] == "NO_ROUTE"
    assert "circle" in r.error()["message"]
    fees.stub.circle = "minor"
    fees.wait_snapshot(lambda s: s.get("status.circle") == "minor")
    r = calc(a, amount=5000)
    assert r.status == 200 and any("circle" in f for f in r.body["risk_factors"]), r.body


def test_congested_chain_never_chosen(fees):
    a, _ = fees.start()
    fees.stub.eth_gas.update(standard=900_000_000_000, fast=990_000_000_000)  # 900 gwei
    fees.wait_snapshot(lambda s: s.get("gas.ethereum.available", "").startswith("ethereum"))
    b = calc(a, amount=100_000_000).body
    assert b["recommended_provider"]["chain"] in ("base", "arbitrum"), b
    assert any("ethereum" in f for f in b["risk_factors"]), b


@pytest.mark.parametrize("body,code,param", [
    ({"amount": 5000, "priority": "overnight"}, "INVALID_FIELD", "priority"),
    ({"amount": 5000, "customer_tier": "gold"}, "INVALID_FIELD", "customer_tier"),
    ({"amount": "abc"}, "INVALID_AMOUNT", "amount"),
    ({"amount": 12.5}, "INVALID_AMOUNT", "amount"),
    ({"amount": -5}, "INVALID_AMOUNT", "amount"),
    ({"amount": 5000, "from_currency": "XYZ"}, "UNSUPPORTED_CURRENCY", "from_currency"),
    ({"amount": 5000, "to_currency": "DOGE"}, "UNSUPPORTED_CURRENCY", "to_currency"),
    ({"amount": 5000, "to_currency": "USD"}, "SAME_CURRENCY", "to_currency"),
    ({"amount": 5000, "destination_country": "germany"}, "INVALID_FIELD",
     "destination_country"),
])
def test_bad_input(fees, body, code, param):
    a = fees.api()  # validation needs no fee engine
    r = calc(a, **body)
    assert r.status == 400, r.body
    assert r.error()["code"] == code and r.error().get("param") == param, r.body


def test_timeout_when_no_engine_then_late_reply_dropped(fees):
    a = fees.api({"FEE_TIMEOUT_MS": "1000"})
    t0 = time.monotonic()
    r = calc(a, amount=5000)
    took = time.monotonic() - t0
    assert r.status == 504 and r.error()["code"] == "FEE_ENGINE_TIMEOUT", r.body
    assert 0.9 < took < 3, took
    # An engine started now finds the request past its deadline: dropped.
    d = fees.engine()
    assert wait_for(lambda: d.metric('rampart_fee_requests_total{outcome="expired"}') >= 1,
                    10, 0.1), d.metrics()
    r = calc(a, amount=5000)
    assert r.status == 200, r.body


def test_200_concurrent_requests_each_get_their_own_reply(fees):
    a, _ = fees.start()
    fees.wait_snapshot(lambda s: s.get("fx.source") == "live")
    results = {}

    def one(i):
        amount = 10_000 + 37 * i
        results[i] = (amount, calc(a, amount=amount))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 200
    for i, (amount, r) in results.items():
        assert r.status == 200, (i, r.status, r.body)
        # platform 200 bps, rounded up: proves the reply was for this amount
        assert r.body["fee_breakdown"]["platform_fee"] == -(-amount * 200 // 10000), (i, r.body)


# ---- Claude ---------------------------------------------------------------------

def decisions(redis, prefix):
    """The fee engine's AI vs fallback counters (<prefix>:{fees}:decisions):
    sent on the engine's connection before its reply, so already counted
    when the api has answered."""
    out = redis.cli("HGETALL", f"{prefix}:{{fees}}:decisions").splitlines()
    return {k: int(v) for k, v in zip(out[::2], out[1::2])}


def test_ai_decision_used(fees, redis):
    a, d = fees.start(ai=True)
    fees.wait_snapshot(lambda s: s.get("fx.source") == "live")
    r = calc(a, amount=5000)
    assert r.status == 200, r.body
    b = r.body
    assert b["source"] == "ai", b
    assert "fallback_reason" not in b
    assert b["confidence_score"] == 0.92
    assert b["recommended_provider"]["reasoning"].startswith("stub analysis")
    assert "stub risk" in b["risk_factors"]
    req = fees.stub.requests["claude"][-1]
    assert req["headers"]["x-api-key"] == fees.stub.claude_key
    assert req["headers"]["anthropic-version"] == "2023-06-01"
    sent = json.loads(req["body"])
    assert sent["tool_choice"] == {"type": "tool", "name": "fee_decision"}
    ctx = json.loads(sent["messages"][0]["content"])
    assert ctx["request"]["amount"] == 5000 and len(ctx["candidates"]) == 5
    assert fees.stub.claude_key not in d.stdout_path.read_text()
    assert d.metric('rampart_fee_ai_calls_total{outcome="ok"}') == 1
    assert decisions(redis, fees.prefix) == {"ai": 1}


def test_ai_decision_cached_for_identical_requests(fees):
    a, d = fees.start(ai=True)
    fees.wait_snapshot(lambda s: s.get("fx.source") == "live")
    first = calc(a, amount=5000).body
    calls = fees.stub.claude_calls
    again = calc(a, amount=5100).body  # same band, corridor, priority, tier
    assert again["source"] == "ai" and fees.stub.claude_calls == calls
    assert again["recommended_provider"] == first["recommended_provider"]
    assert again["fee_breakdown"]["platform_fee"] == 102  # its own amount
    calc(a, amount=5000, customer_tier="premium")
    assert fees.stub.claude_calls == calls + 1
    assert d.metric('rampart_fee_ai_cache_total{result="hit"}') >= 1


@pytest.mark.parametrize("mode,kw,reason", [
    ("bad_chain", {}, "guardrail"),
    ("fees_10x", {}, "guardrail"),
    ("invalid_json", {}, "malformed"),
    ("text", {}, "malformed"),
    ("error", {"status": 529, "etype": "overloaded_error"}, "overloaded"),
    ("error", {"status": 500, "etype": "api_error"}, "server_error"),
    ("error", {"status": 429, "etype": "rate_limit_error", "retry_after": 30}, "rate_limited"),
    ("error", {"status": 400, "etype": "invalid_request_error"}, "client_error"),
    ("sleep", {"delay": 30}, "timeout"),
])
def test_ai_falls_back(fees, redis, mode, kw, reason):
    a, d = fees.start(ai=True)
    fees.wait_snapshot(lambda s: s.get("fx.source") == "live")
    fees.stub.set_mode("claude", mode, **kw)
    t0 = time.monotonic()
    r = calc(a, amount=5000)
    took = time.monotonic() - t0
    assert r.status == 200, r.body
    assert r.body["source"] == "fallback" and r.body["confidence_score"] == 0.75, r.body
    assert r.body["fallback_reason"] == reason, r.body
    assert r.body["recommended_provider"]["chain"] in ("base", "polygon", "arbitrum", "solana")
    assert took < AI_TIMEOUT_MS / 1000 + 1.0, took
    assert d.metric(f'rampart_fee_fallback_total{{reason="{reason}"}}') >= 1
    assert "claude fee decision not used" in d.stdout_path.read_text()
    assert decisions(redis, fees.prefix) == {"fallback": 1, f"fallback.{reason}": 1}


def test_ai_retries_once_after_overload(fees):
    a, _ = fees.start(ai=True)
    fees.wait_snapshot(lambda s: s.get("fx.source") == "live")
    fees.stub.set_mode("claude", "sequence", modes=[("error", {"status": 529}), "valid"])
    r = calc(a, amount=5000)
    assert r.body["source"] == "ai", r.body
    assert fees.stub.claude_calls == 2

"""POST /v1/quotes and GET /v1/quotes/{id}: shape, exact pricing, expiry (SPEC 3, 4)."""

import datetime as dt
import http.client
import json
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from rampart_it import (DEFAULT_BPS, QUOTE_ID_RE, RATE_RE, check_error, contract, cross_rate,
                        expected_quote, parse_ts, wait_for)

MAX_INT64 = 9223372036854775807

# A market snapshot with distinctive rates (units of CUR per 1 USD), so that
# prices from it cannot be confused with the built-in defaults.
SNAPSHOT = {
    "fx.USD": "1",
    "fx.EUR": "0.5123",
    "fx.GBP": "0.4321",
    "fx.JPY": "149.87",
    "fx.USDC": "1.0003",
    "fx.MXN": "17.1234",
    "fx.KWD": "0.3071",
    "fx.IDR": "15234.5",
}

QUOTE_FIELDS = {"id", "amount", "currency", "exchange_rate", "fees", "guaranteed_payout",
                "payout_currency", "chain", "priority", "expires_at", "valid_for_seconds",
                "created_at"}
FEE_FIELDS = {"platform_fee", "onramp_fee", "offramp_fee", "total_fees", "currency"}


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_quote_shape(q: dict, frm: str, to: str, amount: int, ttl: int = 60) -> None:
    assert isinstance(q, dict), f"quote is not a JSON object: {q!r}"
    missing = QUOTE_FIELDS - set(q)
    assert not missing, f"quote lacks {sorted(missing)}: {q!r}"
    assert QUOTE_ID_RE.match(q["id"]), f"id {q['id']!r} is not quote_<uuid4>"
    assert q["amount"] == amount and is_int(q["amount"]), q
    assert q["currency"] == frm and q["payout_currency"] == to, q
    assert isinstance(q["exchange_rate"], str) and RATE_RE.match(q["exchange_rate"]), \
        f"exchange_rate {q['exchange_rate']!r} is not a decimal string with <= 10 places"
    assert Decimal(q["exchange_rate"]) > 0, q
    fees = q["fees"]
    assert isinstance(fees, dict) and FEE_FIELDS <= set(fees), f"fees: {fees!r}"
    for k in ("platform_fee", "onramp_fee", "offramp_fee", "total_fees"):
        assert is_int(fees[k]) and fees[k] >= 0, f"fees.{k}: {fees!r}"
    assert fees["currency"] == frm, f"fees.currency {fees['currency']!r}, expected {frm}"
    assert fees["total_fees"] == fees["platform_fee"] + fees["onramp_fee"] + fees["offramp_fee"], fees
    assert is_int(q["guaranteed_payout"]) and q["guaranteed_payout"] > 0, q
    assert isinstance(q["chain"], str) and q["chain"], q
    assert q["priority"] in ("standard", "express"), q
    created, expires = parse_ts(q["created_at"]), parse_ts(q["expires_at"])
    assert expires - created == dt.timedelta(seconds=ttl), \
        f"expires_at - created_at = {expires - created}, expected {ttl} s: {q!r}"
    now = dt.datetime.now(dt.timezone.utc)
    assert abs((now - created).total_seconds()) < 30, f"created_at {q['created_at']} vs now {now}"
    assert is_int(q["valid_for_seconds"]) and 0 <= q["valid_for_seconds"] <= ttl, q


def check_pricing(q: dict, rate: Decimal, bps=DEFAULT_BPS) -> None:
    """q's fees and payout are exactly SPEC 3's formula applied to rate."""
    exp = expected_quote(q["amount"], q["currency"], q["payout_currency"], rate, bps)
    got = {k: q["fees"][k] for k in ("platform_fee", "onramp_fee", "offramp_fee", "total_fees")}
    got["guaranteed_payout"] = q["guaranteed_payout"]
    assert got == exp, (f"{q['currency']}->{q['payout_currency']} amount {q['amount']} at rate "
                        f"{rate}: expected {exp}, got {got}")


# --------------------------------------------------------------------------
# Shape and retrieval (default rates)

def test_create_quote_shape(api):
    r = api.quote("USD", "EUR", 100000)
    assert r.status == 201, f"{r.status} {r.body!r}"
    assert "json" in (r.headers.get("Content-Type") or ""), r.headers.get("Content-Type")
    assert r.headers.get("X-Request-Id")
    check_quote_shape(r.body, "USD", "EUR", 100000)
    assert r.body["priority"] == "standard", "priority defaults to standard"
    assert r.body["valid_for_seconds"] >= 59, r.body


def test_get_quote_returns_same_object(api):
    q = api.quote("GBP", "JPY", 50000).body
    time.sleep(1.1)
    r = api.get(f"/v1/quotes/{q['id']}")
    assert r.status == 200, f"GET /v1/quotes/{q['id']}: {r.status} {r.body!r}"
    g = r.body
    for k in QUOTE_FIELDS - {"valid_for_seconds"}:
        assert g.get(k) == q[k], f"GET differs from POST in {k}: {g.get(k)!r} vs {q[k]!r}"
    # 1.1 s later the remaining validity has counted down (58 or 59 of 60).
    assert is_int(g["valid_for_seconds"]) and 55 <= g["valid_for_seconds"] <= 59, \
        f"valid_for_seconds {g['valid_for_seconds']} 1.1 s after creation (POST said " \
        f"{q['valid_for_seconds']})"


def test_quote_ids_unique(api):
    ids = {api.quote("USD", "EUR", 100000 + i).body["id"] for i in range(20)}
    assert len(ids) == 20


def test_priority_express(api):
    r = api.quote("USD", "EUR", 100000, extra={"priority": "express"})
    assert r.status == 201, f"{r.status} {r.body!r}"
    assert r.body["priority"] == "express", r.body
    r = api.quote("USD", "EUR", 100000, extra={"priority": "standard"})
    assert r.status == 201 and r.body["priority"] == "standard", r.body


@pytest.mark.parametrize("frm,to,amount", [
    ("USD", "EUR", 100000), ("EUR", "USD", 99999), ("USD", "JPY", 12345), ("JPY", "USD", 1000000),
    ("GBP", "USDC", 777777), ("USDC", "MXN", 5000000), ("USD", "KWD", 100001),
    ("KWD", "BHD", 100000), ("CHF", "INR", 3141592), ("KRW", "JPY", 1000000),
])
def test_default_rate_quote_self_consistent(api, frm, to, amount):
    r = api.quote(frm, to, amount)
    assert r.status == 201, f"{frm}->{to} {amount}: {r.status} {r.body!r}"
    check_quote_shape(r.body, frm, to, amount)
    check_pricing(r.body, Decimal(r.body["exchange_rate"]))


def test_default_rates_are_plausible(api):
    # Built-in defaults are real-world-ish: catches inverted rates.
    rate = Decimal(api.quote("USD", "EUR", 100000).body["exchange_rate"])
    assert Decimal("0.5") < rate < Decimal("1.5"), f"default USD->EUR rate {rate}"
    rate = Decimal(api.quote("USD", "JPY", 100000).body["exchange_rate"])
    assert Decimal("50") < rate < Decimal("300"), f"default USD->JPY rate {rate}"
    rate = Decimal(api.quote("JPY", "USD", 100000).body["exchange_rate"])
    assert Decimal("0.003") < rate < Decimal("0.02"), f"default JPY->USD rate {rate}"


def test_quote_row_matches_response(api, migrated):
    q = api.quote("USD", "MXN", 123456).body
    row = migrated.psql(
        "SELECT amount, currency, payout_currency, exchange_rate, platform_fee, onramp_fee, "
        "offramp_fee, total_fees, guaranteed_payout, extract(epoch FROM expires_at - created_at) "
        f"FROM quotes WHERE id = '{q['id']}'")
    assert row, f"quote {q['id']} not in the quotes table"
    f = row.split("|")
    assert int(f[0]) == q["amount"] and f[1] == "USD" and f[2] == "MXN", row
    assert Decimal(f[3]) == Decimal(q["exchange_rate"]), f"stored rate {f[3]} vs {q['exchange_rate']}"
    assert [int(x) for x in f[4:9]] == [q["fees"]["platform_fee"], q["fees"]["onramp_fee"],
                                         q["fees"]["offramp_fee"], q["fees"]["total_fees"],
                                         q["guaranteed_payout"]], row
    assert Decimal(f[9]) == 60, f"stored TTL {f[9]}"


def test_concurrent_quotes(api):
    def one(i):
        return api.quote("USD", "EUR", 100000 + i)

    with ThreadPoolExecutor(16) as ex:
        results = list(ex.map(one, range(64)))
    statuses = [r.status for r in results]
    assert statuses == [201] * 64, f"concurrent POSTs: {sorted(set(statuses))}"
    ids = [r.body["id"] for r in results]
    assert len(set(ids)) == 64
    with ThreadPoolExecutor(16) as ex:
        gets = list(ex.map(lambda i: api.get(f"/v1/quotes/{i}"), ids))
    assert [g.status for g in gets] == [200] * 64
    for r, g in zip(results, gets):
        assert g.body["guaranteed_payout"] == r.body["guaranteed_payout"]


def test_quote_visible_to_another_instance(api, start_api):
    # Quotes live in PostgreSQL: a second api (same prefix) serves them too.
    q = api.quote("USD", "EUR", 100000).body
    other = start_api({"REDIS_PREFIX": api.prefix})
    r = other.get(f"/v1/quotes/{q['id']}")
    assert r.status == 200, f"GET via a second instance: {r.status} {r.body!r}"
    assert r.body["guaranteed_payout"] == q["guaranteed_payout"]


# --------------------------------------------------------------------------
# Expiry

def test_quote_ttl_and_expiry(start_api):
    a = start_api({"QUOTE_TTL_SECONDS": 2})
    r = a.quote("USD", "EUR", 100000)
    assert r.status == 201, f"{r.status} {r.body!r}"
    check_quote_shape(r.body, "USD", "EUR", 100000, ttl=2)
    assert 1 <= r.body["valid_for_seconds"] <= 2, r.body
    time.sleep(3.2)
    g = a.get(f"/v1/quotes/{r.body['id']}")
    assert g.status == 200, f"GET an expired (not cleaned up) quote: {g.status} {g.body!r}"
    assert g.body["valid_for_seconds"] == 0, f"valid_for_seconds of an expired quote: {g.body!r}"
    assert g.body["expires_at"] == r.body["expires_at"]


# --------------------------------------------------------------------------
# Exact pricing from a market snapshot the test writes

@pytest.fixture(scope="module")
def snap_api(redis, module_start_api):
    prefix = f"itsnap{uuid.uuid4().hex[:8]}"
    args = []
    for k, v in SNAPSHOT.items():
        args += [k, v]
    args += ["fx.as_of", str(int(time.time())), "fx.source", "live"]
    redis.cli("HSET", f"{prefix}:market:snapshot", *args)
    a = module_start_api({"REDIS_PREFIX": prefix})
    # The api re-reads the snapshot at most once a second.
    last = {}

    def picked_up():
        r = a.quote("USD", "EUR", 100000)
        last["r"] = r
        return r.status == 201 and Decimal(r.body["exchange_rate"]) == Decimal("0.5123")

    if not wait_for(picked_up, 5, 0.25):
        pytest.fail(f"the api did not price from {prefix}:market:snapshot within 5 s "
                    f"(fx.EUR=0.5123); last USD->EUR quote: {last['r'].status} {last['r'].body!r}",
                    pytrace=False)
    return a


SNAPSHOT_CASES = [
    ("USD", "EUR", 100000),
    ("EUR", "GBP", 123457),
    ("JPY", "USD", 1500000),
    ("USD", "JPY", 99999),
    ("USD", "USDC", 250000),
    ("USDC", "MXN", 123456789),
    ("USD", "KWD", 100001),
    ("KWD", "JPY", 5000),
    ("MXN", "IDR", 1000000),
    ("JPY", "USD", MAX_INT64),  # fees need more than 64 bits in between
]


@pytest.mark.parametrize("frm,to,amount", SNAPSHOT_CASES,
                         ids=[f"{f}-{t}-{a}" for f, t, a in SNAPSHOT_CASES])
def test_snapshot_pricing_exact(snap_api, frm, to, amount):
    r = snap_api.quote(frm, to, amount)
    assert r.status == 201, f"{frm}->{to} {amount}: {r.status} {r.body!r}"
    q = r.body
    check_quote_shape(q, frm, to, amount)
    rate = cross_rate(SNAPSHOT[f"fx.{frm}"], SNAPSHOT[f"fx.{to}"])
    assert Decimal(q["exchange_rate"]) == rate, \
        f"{frm}->{to}: exchange_rate {q['exchange_rate']}, expected {rate} " \
        f"(fx.{to}/fx.{frm} = {SNAPSHOT[f'fx.{to}']}/{SNAPSHOT[f'fx.{frm}']} rounded down to 10 places)"
    check_pricing(q, rate)


def test_stale_snapshot_is_cached_not_live(redis, start_api):
    # The fee engine rewrites the snapshot every MARKET_REFRESH_SECONDS; one
    # nobody rewrote for MARKET_CACHE_TTL_SECONDS keeps its rates, as cached.
    prefix = f"itstale{uuid.uuid4().hex[:8]}"
    old = str(int(time.time()) - 600)
    redis.cli("HSET", f"{prefix}:market:snapshot", "fx.EUR", "0.5123", "fx.source", "live",
              "fx.as_of", old, "snapshot.as_of", old)
    a = start_api({"REDIS_PREFIX": prefix, "MARKET_CACHE_TTL_SECONDS": "300"})

    def quote():
        r = a.quote("USD", "EUR", 100000)
        assert r.status == 201, r.body
        return r.body["exchange_rate"], r.body["rate_source"]

    assert wait_for(lambda: quote() == ("0.5123", "cached"), 5, 0.2), quote()
    redis.cli("HSET", f"{prefix}:market:snapshot", "snapshot.as_of", str(int(time.time())))
    assert wait_for(lambda: quote() == ("0.5123", "live"), 5, 0.2), quote()


def test_snapshot_payout_overflow_is_400(snap_api):
    r = snap_api.quote("USD", "IDR", MAX_INT64)
    check_error(r, 400, "AMOUNT_TOO_LARGE", what=f"USD->IDR {MAX_INT64}")
    r = snap_api.quote("USD", "USDC", MAX_INT64)
    check_error(r, 400, "AMOUNT_TOO_LARGE", what=f"USD->USDC {MAX_INT64} (x10^4)")


def test_snapshot_smallest_amounts(snap_api):
    # amount 3 USD cents: fees 1+1+1 eat it; 4 cents leave 1 cent -> 0.5123 EUR cents -> 0.
    check_error(snap_api.quote("USD", "EUR", 3), 400, "AMOUNT_TOO_SMALL", what="USD->EUR 3")
    check_error(snap_api.quote("USD", "EUR", 4), 400, "AMOUNT_TOO_SMALL",
                what="USD->EUR 4 (payout rounds down to 0)")
    r = snap_api.quote("USD", "JPY", 4)  # 1 cent -> 1.4987 yen -> 1
    assert r.status == 201, f"USD->JPY 4: {r.status} {r.body!r}"
    check_pricing(r.body, cross_rate("1", "149.87"))
    assert r.body["guaranteed_payout"] == 1


# --------------------------------------------------------------------------
# Fee configuration

def test_custom_fee_bps(start_api):
    a = start_api({"FEE_PLATFORM_BPS": 123, "FEE_ONRAMP_BPS": 45, "FEE_OFFRAMP_BPS": 6})
    r = a.quote("USD", "EUR", 100001)
    assert r.status == 201, f"{r.status} {r.body!r}"
    fees = r.body["fees"]
    assert (fees["platform_fee"], fees["onramp_fee"], fees["offramp_fee"]) == (1231, 451, 61), \
        f"with FEE_*_BPS=123/45/6 on 100001: {fees!r}, expected 1231/451/61"
    check_pricing(r.body, Decimal(r.body["exchange_rate"]), bps=(123, 45, 6))


def test_zero_fee_bps(start_api):
    a = start_api({"FEE_PLATFORM_BPS": 0, "FEE_ONRAMP_BPS": 0, "FEE_OFFRAMP_BPS": 0})
    r = a.quote("USD", "EUR", 100000)
    assert r.status == 201, f"{r.status} {r.body!r}"
    assert r.body["fees"]["total_fees"] == 0, r.body
    check_pricing(r.body, Decimal(r.body["exchange_rate"]), bps=(0, 0, 0))


# --------------------------------------------------------------------------
# HTTP client behaviour real clients have

def test_keep_alive_connection_reused(api):
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        body = json.dumps({"from_currency": "USD", "to_currency": "EUR", "amount": 100000})
        hdrs = {"Authorization": "Bearer sk_test_1", "Content-Type": "application/json"}
        ids = []
        for _ in range(5):
            conn.request("POST", "/v1/quotes", body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            assert r.status == 201, f"POST on a kept-alive connection: {r.status} {data!r}"
            contract().check("POST", "/v1/quotes", r.status, r.headers, data)
            ids.append(json.loads(data)["id"])
        conn.request("GET", f"/v1/quotes/{ids[0]}", headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        assert r.status == 200, f"GET on a kept-alive connection: {r.status} {data!r}"
        contract().check("GET", f"/v1/quotes/{ids[0]}", r.status, r.headers, data)
    finally:
        conn.close()


def test_curl_large_body_with_expect_100_continue(api, tmp_path):
    # curl sends "Expect: 100-continue" for bodies over 1 KiB.
    body = {"from_currency": "USD", "to_currency": "EUR", "amount": 100000}
    raw = json.dumps(body, indent=1).encode() + b" " * 4000
    f = tmp_path / "body.json"
    f.write_bytes(raw)
    r = subprocess.run(
        ["curl", "-s", "-S", "--max-time", "10", "-o", "-", "-w", "\\n%{http_code}",
         "-X", "POST", f"http://127.0.0.1:{api.port}/v1/quotes",
         "-H", "Authorization: Bearer sk_test_1", "-H", "Content-Type: application/json",
         "-H", "Expect: 100-continue", "--data-binary", f"@{f}"],
        capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, f"curl failed: {r.stderr}"
    out, code = r.stdout.rsplit("\n", 1)
    assert code == "201", f"curl POST with Expect: 100-continue: {code} {out}"

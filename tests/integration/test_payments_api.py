"""POST /v1/payments, GET /v1/payments/{id}, GET /v1/payments: creation
against a quote (single use, atomic with history and outbox event), the first
job in Redis, Idempotency-Key, listing with keyset pagination, bad input
(SPEC 4, 5, 7). No worker runs here: payments stay PENDING."""

import http.client
import json
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from rampart_it import STATIC_KEYS, Redis, check_error, parse_ts, request, wait_for

PAY_ID_RE = re.compile(r"^pay_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PAYMENT_FIELDS = {"id", "status", "quote_id", "amount", "currency", "payout_amount",
                  "payout_currency", "exchange_rate", "fees", "chain", "source_account",
                  "destination_account", "metadata", "failure_code", "created_at", "updated_at"}
STATES = ("PENDING", "ONRAMP_PENDING", "ONRAMP_COMPLETE", "OFFRAMP_PENDING", "COMPLETED",
          "FAILED", "REFUND_PENDING", "REFUNDED")


def new_quote(api, frm="USD", to="EUR", amount=100000, key=STATIC_KEYS[0]) -> dict:
    r = api.quote(frm, to, amount, key=key)
    assert r.status == 201, f"POST /v1/quotes: {r.status} {r.body!r}"
    return r.body


def pay_body(quote: dict, **extra) -> dict:
    body = {"quote_id": quote["id"], "source_account": "acct_src_0001",
            "destination_account": "DE89370400440532013000"}
    body.update(extra)
    return body


def create(api, body, *, idem=None, key=STATIC_KEYS[0], headers=None, raw=None):
    h = dict(headers or {})
    if idem is not None:
        h["Idempotency-Key"] = idem
    if raw is not None:
        return request(api.port, "POST", "/v1/payments", body=raw, key=key, headers=h)
    return api.post("/v1/payments", body, key=key, headers=h)


def created(api, quote=None, **kw) -> dict:
    quote = quote or new_quote(api)
    r = create(api, pay_body(quote), **kw)
    assert r.status == 202, f"POST /v1/payments: {r.status} {r.body!r}"
    return r.body


def check_payment_matches_quote(p: dict, q: dict) -> None:
    missing = PAYMENT_FIELDS - set(p)
    assert not missing, f"payment lacks {sorted(missing)}: {p!r}"
    assert PAY_ID_RE.match(p["id"]), f"id {p['id']!r} is not pay_<uuid4>"
    assert p["status"] == "PENDING", p
    assert p["quote_id"] == q["id"], p
    assert p["amount"] == q["amount"] and p["currency"] == q["currency"], p
    assert p["payout_amount"] == q["guaranteed_payout"], p
    assert p["payout_currency"] == q["payout_currency"], p
    assert p["exchange_rate"] == q["exchange_rate"], \
        f"exchange_rate {p['exchange_rate']!r}, quote said {q['exchange_rate']!r}"
    assert p["fees"] == q["fees"], f"fees {p['fees']!r}, quote said {q['fees']!r}"
    assert p["chain"] == q["chain"], p
    assert p["failure_code"] is None, p
    created_at, updated_at = parse_ts(p["created_at"]), parse_ts(p["updated_at"])
    assert created_at == updated_at, p
    assert created_at >= parse_ts(q["created_at"]), (p["created_at"], q["created_at"])


def check_history_pending(p: dict) -> None:
    h = p.get("history")
    assert isinstance(h, list) and len(h) == 1, f"history: {h!r}"
    assert set(h[0]) == {"from_status", "status", "at", "reason"}, h
    assert h[0]["from_status"] is None and h[0]["status"] == "PENDING", h
    assert h[0]["reason"] is None, h
    at = parse_ts(h[0]["at"])
    assert abs((at - parse_ts(p["created_at"])).total_seconds()) < 5, (h, p["created_at"])


def stream_entries(redis: Redis, key: str) -> list:
    """XRANGE key - + as a list of (entry id, {field: value})."""
    out = redis.cli("XRANGE", key, "-", "+")
    entries = []
    for line in out.splitlines():
        if re.match(r"^\d+-\d+$", line):
            entries.append((line, []))
        elif entries:
            entries[-1][1].append(line)
    return [(i, dict(zip(f[0::2], f[1::2]))) for i, f in entries]


def concurrently(n, fn):
    """Runs fn(i) for i in 0..n-1 on n threads released together."""
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait(10)
        return fn(i)

    with ThreadPoolExecutor(n) as ex:
        return list(ex.map(run, range(n)))


# --------------------------------------------------------------------------
# Creation

def test_create_payment_copies_the_quote(api):
    q = new_quote(api, "USD", "EUR", 123457)
    body = pay_body(q, metadata={"order": "A-17", "n": 3, "nested": {"ok": True}})
    r = create(api, body)
    assert r.status == 202, f"{r.status} {r.body!r}"
    assert "json" in (r.headers.get("Content-Type") or ""), r.headers.get("Content-Type")
    assert r.headers.get("Idempotent-Replayed") is None
    p = r.body
    check_payment_matches_quote(p, q)
    check_history_pending(p)
    assert p["source_account"] == body["source_account"], p
    assert p["destination_account"] == body["destination_account"], p
    assert p["metadata"] == body["metadata"], p
    assert set(p) == PAYMENT_FIELDS | {"history"}, f"unexpected fields: {sorted(set(p))}"


def test_metadata_defaults_to_empty_object(api):
    p = created(api)
    assert p["metadata"] == {}, p


def test_exchange_rate_trailing_zeros_trimmed(api, migrated):
    for frm, to in (("USD", "JPY"), ("USD", "EUR"), ("USDC", "USD"), ("JPY", "USD")):
        p = created(api, new_quote(api, frm, to, 5000000))
        assert re.match(r"^[0-9]+(\.[0-9]*[1-9])?$", p["exchange_rate"]), p["exchange_rate"]
        stored = migrated.psql(f"SELECT exchange_rate FROM payments WHERE id = '{p['id']}'")
        assert Decimal(stored) == Decimal(p["exchange_rate"]), (stored, p["exchange_rate"])


def test_payment_rows_history_and_event_in_db(api, migrated):
    p = created(api)
    row = migrated.psql(f"SELECT status, quote_id, api_key_id FROM payments WHERE id = '{p['id']}'")
    assert row.split("|")[:2] == ["PENDING", p["quote_id"]], row
    used = migrated.psql(f"SELECT used_at IS NOT NULL FROM quotes WHERE id = '{p['quote_id']}'")
    assert used == "t", "the quote was not marked used"
    hist = migrated.psql("SELECT coalesce(from_status, '<null>'), to_status FROM payment_history "
                         f"WHERE payment_id = '{p['id']}' ORDER BY id")
    assert hist == "<null>|PENDING", hist
    ev = migrated.psql("SELECT id || '|' || type FROM events "
                       f"WHERE payment_id = '{p['id']}'")
    assert len(ev.splitlines()) == 1, f"events of {p['id']}: {ev!r}"
    evt_id, typ = ev.split("|")
    assert re.match(r"^evt_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
                    evt_id), evt_id
    assert typ == "payment.pending", ev
    data = migrated.psql(f"SELECT data::text FROM events WHERE id = '{evt_id}'")
    data = json.loads(data)
    assert data["id"] == p["id"], data
    expected = {k: v for k, v in p.items() if k != "history"}
    assert data == expected, f"event data differs from the payment:\n{data}\n{expected}"


def test_first_job_is_in_the_stream(api, redis):
    rid = f"it-{uuid.uuid4().hex}"
    p = created(api, headers={"X-Request-Id": rid})
    key = f"{api.prefix}:{{payments}}:jobs"
    jobs = [f for _, f in stream_entries(redis, key) if f.get("payment_id") == p["id"]]
    assert len(jobs) == 1, f"jobs for {p['id']} in {key}: {jobs!r}"
    assert jobs[0] == {"payment_id": p["id"], "step": "onramp_initiate", "attempt": "1",
                       "request_id": rid}, jobs[0]


def test_get_payment(api):
    p = created(api)
    r = api.get(f"/v1/payments/{p['id']}")
    assert r.status == 200, f"{r.status} {r.body!r}"
    assert r.body == p, f"GET differs from POST:\n{r.body}\n{p}"


SPEC_ORDER = ["id", "status", "quote_id", "amount", "currency", "payout_amount",
              "payout_currency", "exchange_rate", "fees", "chain", "source_account",
              "destination_account", "metadata", "failure_code", "created_at", "updated_at"]
FEE_ORDER = ["platform_fee", "onramp_fee", "offramp_fee", "total_fees", "currency"]
HISTORY_ORDER = ["from_status", "status", "at", "reason"]
# Strings JSON must escape, and UTF-8 it must pass through.
AWKWARD = 'quote " backslash \\ slash / nl \n tab \t cr \r ctl \u0001\u001f é€😀 </script>'


def raw_get(port: int, path: str) -> bytes:
    """The raw body of a 200 GET."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {STATIC_KEYS[0]}"})
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, f"GET {path}: {r.status} {body!r}"
        return body
    finally:
        conn.close()


def compact(v) -> bytes:
    """v as compact JSON, \\u escapes in upper case as the api writes them."""
    text = json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode()
    return re.sub(rb"\\u([0-9a-f]{4})", lambda m: b"\\u" + m.group(1).upper(), text)


def keys_in_order(raw: bytes) -> list:
    """The payment's keys as the text has them (json.loads keeps order)."""
    return list(json.loads(raw))


def test_payment_text_is_compact_in_spec_order_and_escaped(api, migrated):
    """The api writes payments itself from the row's columns (no jsonb, no
    re-parse): POST and GET answer the same bytes, compact, in the SPEC's key
    order, with awkward strings escaped so they read back unchanged."""
    meta = {"note": AWKWARD, "nested": {"list": [1, "two", None, True]}, "n": -3}
    q = new_quote(api)
    body = pay_body(q, metadata=meta)
    body["source_account"] = "acct " + AWKWARD[:40]
    r = request(api.port, "POST", "/v1/payments", json_body=body)
    assert r.status == 202, f"{r.status} {r.body!r}"
    pid = r.body["id"]
    got = raw_get(api.port, f"/v1/payments/{pid}")
    assert json.loads(got) == r.body, f"GET differs from POST:\n{got!r}\n{r.body!r}"
    assert keys_in_order(got) == SPEC_ORDER + ["history"], keys_in_order(got)
    p = json.loads(got)
    assert list(p["fees"]) == FEE_ORDER, p["fees"]
    assert list(p["history"][0]) == HISTORY_ORDER, p["history"]
    assert p["metadata"] == meta and p["source_account"] == body["source_account"], p
    assert got == compact(p), f"not compact: {got!r}"

    # A history entry written by the worker, with a reason to escape.
    migrated.psql("INSERT INTO payment_history (payment_id, from_status, to_status, reason) "
                  f"VALUES ('{pid}', 'PENDING', 'FAILED', "
                  f"E'{AWKWARD.replace(chr(92), chr(92) * 2).replace(chr(39), chr(92) + chr(39))}')")
    h = json.loads(raw_get(api.port, f"/v1/payments/{pid}"))["history"]
    assert [(e["from_status"], e["status"]) for e in h] == [(None, "PENDING"),
                                                           ("PENDING", "FAILED")], h
    assert h[1]["reason"] == AWKWARD and list(h[1]) == HISTORY_ORDER, h[1]

    # The list writes the same text, without history.
    page = raw_get(api.port, "/v1/payments?limit=100")
    assert list(json.loads(page)) == ["object", "data", "has_more"], page[:80]
    item = [x for x in json.loads(page)["data"] if x["id"] == pid]
    assert item and list(item[0]) == SPEC_ORDER, item
    assert item[0] == {k: v for k, v in p.items() if k != "history"}, item
    assert compact(item[0]) in page, page


def test_concurrent_gets_each_answer_their_own_id(api):
    """Lookups of one loop iteration share a statement: each request still
    gets its own payment, and unknown ids their own 404, in any mix."""
    made = {}
    for _ in range(8):
        p = created(api)
        made[p["id"]] = p
    ids = list(made) * 4 + [f"pay_{uuid.uuid4()}" for _ in range(16)]

    def get(i):
        return ids[i], api.get(f"/v1/payments/{ids[i]}")

    for pid, r in concurrently(len(ids), get):
        if pid in made:
            assert r.status == 200 and r.body == made[pid], f"{pid}: {r.status} {r.body!r}"
        else:
            check_error(r, 404, "PAYMENT_NOT_FOUND")
            assert pid in r.error()["message"], r.body


def test_get_unknown_payment_is_404(api):
    r = api.get(f"/v1/payments/pay_{uuid.uuid4()}")
    check_error(r, 404, "PAYMENT_NOT_FOUND")


@pytest.mark.parametrize("pid", [
    "pay_not-a-uuid", "pay_", f"quote_{uuid.uuid4()}", str(uuid.uuid4()),
    "pay_7d1e3c2a-1111-4222-8333-44445555666", "pay_" + "a" * 300, "pay_%00",
    "PAY_7d1e3c2a-1111-4222-8333-444455556666",
])
def test_get_malformed_id_is_400(api, pid):
    check_error(api.get(f"/v1/payments/{pid}"), 400, "INVALID_ID", "id", what=pid[:50])


def test_quote_reuse_is_409(api, migrated):
    q = new_quote(api)
    created(api, q)
    r = create(api, pay_body(q, source_account="someone_else"))
    check_error(r, 409, "QUOTE_ALREADY_USED", "quote_id")
    n = migrated.psql(f"SELECT count(*) FROM payments WHERE quote_id = '{q['id']}'")
    assert n == "1", n


def test_concurrent_payments_on_one_quote(api, migrated):
    q = new_quote(api)
    results = concurrently(20, lambda i: create(api, pay_body(q, source_account=f"src_{i}")))
    ok = [r for r in results if r.status == 202]
    assert len(ok) == 1, [(r.status, r.body) for r in results]
    for r in results:
        if r.status != 202:
            check_error(r, 409, "QUOTE_ALREADY_USED")
    n = migrated.psql(f"SELECT count(*) FROM payments WHERE quote_id = '{q['id']}'")
    assert n == "1", n
    n = migrated.psql(f"SELECT count(*) FROM events WHERE payment_id = '{ok[0].body['id']}'")
    assert n == "1", n


def test_unknown_quote_is_404(api):
    r = create(api, {"quote_id": f"quote_{uuid.uuid4()}", "source_account": "a",
                     "destination_account": "b"})
    check_error(r, 404, "QUOTE_NOT_FOUND", "quote_id")


def test_expired_quote_is_400(start_api, migrated):
    a = start_api({"QUOTE_TTL_SECONDS": 1})
    q = new_quote(a)
    time.sleep(2)
    check_error(create(a, pay_body(q)), 400, "QUOTE_EXPIRED", "quote_id")
    used = migrated.psql(f"SELECT used_at IS NULL FROM quotes WHERE id = '{q['id']}'")
    assert used == "t", "an expired quote must not be consumed"


def test_amount_and_currency_must_match_the_quote(api):
    q = new_quote(api, "USD", "EUR", 100000)
    check_error(create(api, pay_body(q, amount=99999)), 400, "QUOTE_MISMATCH", "amount")
    check_error(create(api, pay_body(q, currency="GBP")), 400, "QUOTE_MISMATCH", "currency")
    check_error(create(api, pay_body(q, amount=100000, currency="JPY")), 400, "QUOTE_MISMATCH")
    # A mismatch does not consume the quote; matching values are accepted.
    r = create(api, pay_body(q, amount=100000, currency="USD"))
    assert r.status == 202, f"{r.status} {r.body!r}"
    q2 = new_quote(api, "USD", "EUR", 100000)
    r = create(api, pay_body(q2, currency="EUR"))  # the payout currency is accepted too
    assert r.status == 202, f"{r.status} {r.body!r}"


def test_api_works_while_redis_is_down(start_api, workdir, migrated):
    d = workdir / f"redis-{uuid.uuid4().hex[:6]}"
    d.mkdir()
    rd = Redis(d)
    rd.start()
    try:
        a = start_api({"REDIS_URL": rd.url, "REDIS_TIMEOUT_MS": 500})
        rd.stop()
        assert wait_for(lambda: a.get("/readyz", key=None).status == 503, 10, 0.1)
        q = new_quote(a)
        r = create(a, pay_body(q))
        assert r.status == 202, f"payment with Redis down: {r.status} {r.body!r}"
        n = migrated.psql(f"SELECT count(*) FROM payments WHERE id = '{r.body['id']}'")
        assert n == "1", n
        assert wait_for(lambda: "payment job not queued" in a.output(), 5), a.logs()
    finally:
        rd.stop()


# --------------------------------------------------------------------------
# Idempotency-Key

def test_idempotent_replay(api, migrated):
    q = new_quote(api)
    k = f"idem-{uuid.uuid4()}"
    raw = json.dumps(pay_body(q)).encode()
    r1 = create(api, None, idem=k, raw=raw)
    assert r1.status == 202, f"{r1.status} {r1.body!r}"
    assert r1.headers.get("Idempotent-Replayed") is None
    for _ in range(2):
        r2 = create(api, None, idem=k, raw=raw)
        assert r2.status == 202, f"replay: {r2.status} {r2.body!r}"
        assert r2.headers.get("Idempotent-Replayed") == "true", dict(r2.headers)
        assert r2.body == r1.body, f"replay differs:\n{r2.body}\n{r1.body}"
    n = migrated.psql(f"SELECT count(*) FROM payments WHERE quote_id = '{q['id']}'")
    assert n == "1", n
    row = migrated.psql("SELECT state, response_status, payment_id, "
                        "expires_at - created_at = interval '24 hours' FROM idempotency_keys "
                        f"WHERE key = '{k}'")
    assert row == f"complete|202|{r1.body['id']}|t", row


def test_same_key_different_body_is_422(api, migrated):
    q = new_quote(api)
    k = f"idem-{uuid.uuid4()}"
    assert create(api, pay_body(q), idem=k).status == 202
    check_error(create(api, pay_body(q, source_account="other"), idem=k), 422,
                "IDEMPOTENCY_KEY_REUSED")
    # Another quote under the same key: refused before the quote is touched.
    q2 = new_quote(api)
    check_error(create(api, pay_body(q2), idem=k), 422, "IDEMPOTENCY_KEY_REUSED")
    used = migrated.psql(f"SELECT used_at IS NULL FROM quotes WHERE id = '{q2['id']}'")
    assert used == "t", "a refused request must not consume its quote"


def test_same_key_under_another_api_key_is_independent(api):
    q = new_quote(api)
    k = f"idem-{uuid.uuid4()}"
    p1 = created(api, q, idem=k, key=STATIC_KEYS[0])
    # Same key and body from another API key: not a replay, a second use.
    r = create(api, pay_body(q), idem=k, key=STATIC_KEYS[1])
    check_error(r, 409, "QUOTE_ALREADY_USED")
    q2 = new_quote(api)
    r = create(api, pay_body(q2), idem=k, key=STATIC_KEYS[1])
    assert r.status == 202 and r.headers.get("Idempotent-Replayed") is None, \
        f"{r.status} {r.body!r}"
    assert r.body["id"] != p1["id"]
    r = create(api, pay_body(q2), idem=k, key=STATIC_KEYS[1])
    assert r.headers.get("Idempotent-Replayed") == "true" and r.body["id"] != p1["id"], r.body


def test_failed_request_does_not_bind_the_key(api):
    k = f"idem-{uuid.uuid4()}"
    r = create(api, {"quote_id": f"quote_{uuid.uuid4()}", "source_account": "a",
                     "destination_account": "b"}, idem=k)
    check_error(r, 404, "QUOTE_NOT_FOUND")
    p = created(api, idem=k)  # another body under the same key is a fresh request
    assert PAY_ID_RE.match(p["id"])


def test_expired_key_is_replaced(api, migrated):
    k = f"idem-{uuid.uuid4()}"
    p1 = created(api, idem=k)
    migrated.psql("UPDATE idempotency_keys SET expires_at = now() - interval '1 second', "
                  f"created_at = now() - interval '25 hours' WHERE key = '{k}'")
    r = create(api, pay_body(new_quote(api)), idem=k)
    assert r.status == 202 and r.headers.get("Idempotent-Replayed") is None, \
        f"{r.status} {r.body!r}"
    assert r.body["id"] != p1["id"]
    row = migrated.psql(f"SELECT payment_id, expires_at > now() FROM idempotency_keys "
                        f"WHERE key = '{k}'")
    assert row == f"{r.body['id']}|t", row


def test_key_in_flight_is_409_and_stale_one_replays_current_state(api, migrated):
    q = new_quote(api)
    k = f"idem-{uuid.uuid4()}"
    p = created(api, q, idem=k)
    # As if the request were still between its commit and storing its response.
    migrated.psql("UPDATE idempotency_keys SET state = 'in_flight', response_status = NULL, "
                  f"response_body = NULL WHERE key = '{k}'")
    check_error(create(api, pay_body(q), idem=k), 409, "IDEMPOTENCY_KEY_IN_USE")
    # As if the process had died there long ago: the payment as it is now.
    migrated.psql("UPDATE idempotency_keys SET created_at = now() - interval '10 minutes' "
                  f"WHERE key = '{k}'")
    migrated.psql(f"UPDATE payments SET status = 'FAILED', failure_code = 'test' "
                  f"WHERE id = '{p['id']}'")
    r = create(api, pay_body(q), idem=k)
    assert r.status == 202 and r.headers.get("Idempotent-Replayed") == "true", \
        f"{r.status} {r.body!r}"
    assert r.body["id"] == p["id"] and r.body["status"] == "FAILED", r.body


def test_concurrent_identical_requests_make_one_payment(start_api, migrated):
    a = start_api({"API_THREADS": 2})
    q = new_quote(a)
    k = f"idem-{uuid.uuid4()}"
    raw = json.dumps(pay_body(q)).encode()
    results = concurrently(50, lambda i: create(a, None, idem=k, raw=raw))
    n = migrated.psql(f"SELECT count(*) FROM payments WHERE quote_id = '{q['id']}'")
    assert n == "1", f"{n} payments for one quote and one Idempotency-Key"
    ok = [r for r in results if r.status == 202]
    originals = [r for r in ok if r.headers.get("Idempotent-Replayed") is None]
    assert len(originals) == 1, [(r.status, dict(r.headers), r.body) for r in results]
    for r in results:
        if r.status == 202:
            assert r.body == originals[0].body, f"replay differs:\n{r.body}\n{originals[0].body}"
        else:
            check_error(r, 409, "IDEMPOTENCY_KEY_IN_USE")
    # Once the original has answered, the key replays.
    r = create(a, None, idem=k, raw=raw)
    assert r.status == 202 and r.headers.get("Idempotent-Replayed") == "true", r.body
    assert r.body == originals[0].body


# --------------------------------------------------------------------------
# Listing

def test_list_pagination_and_status_filter(start_api, private_pg):
    a = start_api(pg=private_pg)
    made = []
    for i in range(45):
        made.append(created(a, new_quote(a, "USD", "EUR", 100000 + i))["id"])
    newest_first = list(reversed(made))

    seen, cursor, pages = [], None, []
    while True:
        path = "/v1/payments?limit=20" + (f"&starting_after={cursor}" if cursor else "")
        r = a.get(path)
        assert r.status == 200, f"{path}: {r.status} {r.body!r}"
        assert r.body["object"] == "list" and set(r.body) == {"object", "data", "has_more"}
        pages.append((len(r.body["data"]), r.body["has_more"]))
        for p in r.body["data"]:
            assert set(p) == PAYMENT_FIELDS, f"list items have no history: {sorted(p)}"
        seen += [p["id"] for p in r.body["data"]]
        if not r.body["has_more"]:
            break
        cursor = r.body["data"][-1]["id"]
        assert len(pages) < 5, pages
    assert pages == [(20, True), (20, True), (5, False)], pages
    assert seen == newest_first, "not newest first, or duplicates/gaps"

    r = a.get("/v1/payments")
    assert r.status == 200 and len(r.body["data"]) == 20 and r.body["has_more"], r.body
    r = a.get("/v1/payments?limit=100")
    assert [p["id"] for p in r.body["data"]] == newest_first and not r.body["has_more"]
    r = a.get(f"/v1/payments?starting_after={made[0]}")
    assert r.status == 200 and r.body["data"] == [] and not r.body["has_more"], r.body

    failed = made[3:40:8]  # 5 payments
    ids = ",".join(f"'{i}'" for i in failed)
    private_pg.psql(f"UPDATE payments SET status = 'FAILED' WHERE id IN ({ids})")
    r = a.get("/v1/payments?status=FAILED&limit=3")
    assert r.status == 200, r.body
    assert [p["id"] for p in r.body["data"]] == list(reversed(failed))[:3] and r.body["has_more"]
    assert all(p["status"] == "FAILED" for p in r.body["data"])
    r = a.get(f"/v1/payments?status=FAILED&starting_after={r.body['data'][-1]['id']}")
    assert [p["id"] for p in r.body["data"]] == list(reversed(failed))[3:], r.body
    assert not r.body["has_more"]
    r = a.get("/v1/payments?status=PENDING&limit=100")
    assert len(r.body["data"]) == 40 and not r.body["has_more"], len(r.body["data"])
    r = a.get("/v1/payments?status=COMPLETED")
    assert r.status == 200 and r.body["data"] == [] and not r.body["has_more"], r.body


# --------------------------------------------------------------------------
# Bad input

GOOD_QUOTE_ID = "quote_7d1e3c2a-1111-4222-8333-444455556666"


def body_with(**kw):
    body = {"quote_id": GOOD_QUOTE_ID, "source_account": "a", "destination_account": "b"}
    for k, v in kw.items():
        if v is ...:
            body.pop(k)
        else:
            body[k] = v
    return body


POST_CASES = [
    ("missing-quote_id", body_with(quote_id=...), 400, "MISSING_FIELD", "quote_id"),
    ("null-quote_id", body_with(quote_id=None), 400, "MISSING_FIELD", "quote_id"),
    ("malformed-quote_id", body_with(quote_id="quote_123"), 400, "INVALID_ID", "quote_id"),
    ("payment-id-as-quote_id", body_with(quote_id=f"pay_{uuid.uuid4()}"), 400, "INVALID_ID",
     "quote_id"),
    ("empty-quote_id", body_with(quote_id=""), 400, "INVALID_ID", "quote_id"),
    ("numeric-quote_id", body_with(quote_id=42), 400, "INVALID_ID", "quote_id"),
    ("missing-source", body_with(source_account=...), 400, "MISSING_FIELD", "source_account"),
    ("missing-destination", body_with(destination_account=...), 400, "MISSING_FIELD",
     "destination_account"),
    ("empty-source", body_with(source_account=""), 400, "INVALID_FIELD", "source_account"),
    ("numeric-destination", body_with(destination_account=7), 400, "INVALID_FIELD",
     "destination_account"),
    ("long-source", body_with(source_account="x" * 257), 400, "INVALID_FIELD", "source_account"),
    ("long-destination-utf8", body_with(destination_account="é" * 129), 400, "INVALID_FIELD",
     "destination_account"),
    ("metadata-array", body_with(metadata=[1, 2]), 400, "INVALID_FIELD", "metadata"),
    ("metadata-string", body_with(metadata="x"), 400, "INVALID_FIELD", "metadata"),
    ("metadata-9KiB", body_with(metadata={"blob": "x" * 9216}), 400, "INVALID_FIELD", "metadata"),
    ("amount-string", body_with(amount="100"), 400, "INVALID_AMOUNT", "amount"),
    ("amount-zero", body_with(amount=0), 400, "INVALID_AMOUNT", "amount"),
    ("currency-number", body_with(currency=840), 400, "INVALID_FIELD", "currency"),
    ("empty-object", {}, 400, "MISSING_FIELD", None),
    ("array", [1], 400, "INVALID_REQUEST", None),
]


@pytest.mark.parametrize("name,body,status,code,param", POST_CASES, ids=[c[0] for c in POST_CASES])
def test_post_payment_bad_body(api, name, body, status, code, param):
    check_error(create(api, body), status, code, param, what=name)


def test_metadata_at_the_limit_is_accepted(api):
    q = new_quote(api)
    meta = {"blob": ""}
    meta["blob"] = "x" * (8192 - len(json.dumps(meta, separators=(",", ":"))))
    assert len(json.dumps(meta, separators=(",", ":"))) == 8192
    r = create(api, pay_body(q, metadata=meta, source_account="s" * 256,
                             destination_account="é" * 128))
    assert r.status == 202, f"{r.status} {r.body!r}"
    assert r.body["metadata"] == meta and r.body["destination_account"] == "é" * 128


@pytest.mark.parametrize("idem", ["", "x" * 256, "tab\there", "caf\xe9", "del\x7f"])
def test_bad_idempotency_key_is_400(api, idem):
    q = new_quote(api)
    r = create(api, pay_body(q), idem=idem)
    check_error(r, 400, "INVALID_IDEMPOTENCY_KEY", what=repr(idem[:20]))


def test_longest_idempotency_key_is_accepted(api):
    r = create(api, pay_body(new_quote(api)), idem="k" * 255)
    assert r.status == 202, f"{r.status} {r.body!r}"


@pytest.mark.parametrize("query,param", [
    ("status=pending", "status"), ("status=", "status"), ("status=SETTLED", "status"),
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=abc", "limit"), ("limit=-5", "limit"),
    ("limit=", "limit"), ("limit=2.5", "limit"), ("limit=99999999999999999999", "limit"),
    ("starting_after=abc", "starting_after"), ("starting_after=quote_" + str(uuid.uuid4()),
                                               "starting_after"),
    ("starting_after=pay_" + str(uuid.uuid4()), "starting_after"),  # well-formed, unknown
])
def test_list_bad_query_is_400(api, query, param):
    check_error(api.get(f"/v1/payments?{query}"), 400, "INVALID_FIELD", param, what=query)


def test_payments_require_auth(api):
    check_error(request(api.port, "GET", "/v1/payments", key=None), 401, "UNAUTHORIZED")
    check_error(request(api.port, "GET", f"/v1/payments/pay_{uuid.uuid4()}", key=None), 401,
                "UNAUTHORIZED")
    check_error(request(api.port, "POST", "/v1/payments", body=b"{}", key=None), 401,
                "UNAUTHORIZED")
    check_error(request(api.port, "POST", "/v1/payments", body=b"{}", content_type="text/plain"),
                415, "UNSUPPORTED_MEDIA_TYPE")

"""GET /v1/summary, GET /v1/payments/{id}/events and GET /dashboard: the
summary's numbers against a known set of payments, queue entries, webhook
attempts, market snapshot and fee-decision counters; auth; the dashboard's
static files and their headers."""

import json
import time
import uuid

import pytest

from rampart_it import check_error, request
from webhook_it import payment_data

STATES = ["PENDING", "ONRAMP_PENDING", "ONRAMP_COMPLETE", "OFFRAMP_PENDING", "COMPLETED",
          "FAILED", "REFUND_PENDING", "REFUNDED"]
# How many payments of each state the known set holds (none REFUNDED).
KNOWN = {"PENDING": 3, "ONRAMP_PENDING": 1, "ONRAMP_COMPLETE": 0, "OFFRAMP_PENDING": 2,
         "COMPLETED": 5, "FAILED": 1, "REFUND_PENDING": 1, "REFUNDED": 0}


def insert_payments(pg, counts, age_seconds=0):
    """Payments in the given states, each with the history row that put it
    there (every status change writes one: the summary counts from them),
    created age_seconds ago."""
    rows = []
    for state, n in counts.items():
        for _ in range(n):
            u = uuid.uuid4()
            rows.append(f"('pay_{u}', 'k', 'quote_{u}', '{state}', 1000, 'USD', 900, 'EUR', 0.9,"
                        f" 10, 5, 5, 20, 'base', 'a', 'b')")
    if rows:
        pg.psql("WITH p AS (INSERT INTO payments (id, api_key_id, quote_id, status, amount,"
                " currency, payout_amount, payout_currency, exchange_rate, platform_fee,"
                " onramp_fee, offramp_fee, total_fees, chain, source_account,"
                " destination_account) VALUES " + ",".join(rows) + " RETURNING id, status)"
                " INSERT INTO payment_history (payment_id, from_status, to_status, created_at)"
                f" SELECT id, NULL, status, now() - interval '{age_seconds} seconds' FROM p")


def transition(pg, from_state, to_state):
    """Moves one payment from from_state to to_state as the worker does:
    the status and its history row in one statement."""
    pg.psql("WITH u AS (UPDATE payments SET status = '%s' WHERE id = (SELECT id FROM payments"
            " WHERE status = '%s' LIMIT 1) RETURNING id)"
            " INSERT INTO payment_history (payment_id, from_status, to_status)"
            " SELECT id, '%s', '%s' FROM u" % (to_state, from_state, from_state, to_state))


def insert_attempts(pg, pay_id, codes, pending_deliveries):
    """One endpoint, one event of pay_id, attempts with the given status codes
    (None = no answer), and pending_deliveries more events with a pending
    delivery each. Returns (endpoint id, event id)."""
    we = f"we_{uuid.uuid4()}"
    evt = f"evt_{uuid.uuid4()}"
    pg.psql(f"INSERT INTO webhook_endpoints (id, api_key_id, url, events, secret) VALUES"
            f" ('{we}', 'k', 'https://hooks.example/x', ARRAY['*'], 'whsec_x')")
    # Events as the worker writes them (the payment's JSON): the answers are
    # checked against docs/openapi.yaml.
    done = json.dumps(payment_data(pay_id, "COMPLETED"))
    pending = json.dumps(payment_data(pay_id, "PENDING"))
    pg.psql(f"INSERT INTO events (id, type, payment_id, data) VALUES"
            f" ('{evt}', 'payment.completed', '{pay_id}', '{done}')")
    pg.psql(f"INSERT INTO webhook_deliveries (event_id, endpoint_id, state, attempts) VALUES"
            f" ('{evt}', '{we}', 'delivered', {len(codes)})")
    for i, c in enumerate(codes, 1):
        code = "NULL" if c is None else str(c)
        err = "'timeout'" if c is None else "NULL"
        pg.psql(f"INSERT INTO webhook_attempts (event_id, endpoint_id, attempt, status_code,"
                f" latency_ms, error) VALUES ('{evt}', '{we}', {i}, {code}, 12, {err})")
    for _ in range(pending_deliveries):
        e2 = f"evt_{uuid.uuid4()}"
        pg.psql(f"INSERT INTO events (id, type, payment_id, data) VALUES"
                f" ('{e2}', 'payment.pending', '{pay_id}', '{pending}')")
        pg.psql(f"INSERT INTO webhook_deliveries (event_id, endpoint_id) VALUES ('{e2}', '{we}')")
    return we, evt


def test_summary_needs_a_key(api):
    for path in ("/v1/summary", f"/v1/payments/pay_{uuid.uuid4()}/events"):
        r = api.get(path, key=None)
        check_error(r, 401, "UNAUTHORIZED")
        r = api.get(path, key="sk_wrong")
        check_error(r, 401, "UNAUTHORIZED")


def test_summary_counts_a_known_set(start_api, private_pg, redis):
    a = start_api(pg=private_pg)
    p = a.prefix
    # Most of the set is an hour old (folded at the first refresh), the rest
    # new (counted, not folded yet).
    old = {k: max(0, n - 1) for k, n in KNOWN.items()}
    insert_payments(private_pg, old, age_seconds=3600)
    insert_payments(private_pg, {k: KNOWN[k] - old[k] for k in KNOWN})
    any_pay = private_pg.psql("SELECT id FROM payments LIMIT 1").strip()
    insert_attempts(private_pg, any_pay, [200, 204, 500, None, 200], pending_deliveries=2)

    # Payments queue: 4 entries, 3 read by a consumer (1 acked: 2 in flight),
    # 1 never read; 2 delayed; 1 dead.
    jobs = f"{p}:{{payments}}:jobs"
    redis.cli("XGROUP", "CREATE", jobs, "workers", "0", "MKSTREAM")
    for i in range(4):
        redis.cli("XADD", jobs, "*", "payment_id", f"pay_{i}", "step", "onramp_poll")
    out = redis.cli("XREADGROUP", "GROUP", "workers", "c1", "COUNT", "3", "STREAMS", jobs, ">")
    first_id = out.splitlines()[1]
    redis.cli("XACK", jobs, "workers", first_id)
    redis.cli("ZADD", f"{p}:{{payments}}:delayed", "1", "a", "2", "b")
    redis.cli("XADD", f"{p}:{{payments}}:dlq", "*", "payment_id", "pay_x", "error", "gave up")
    # Webhooks queue: 1 dead job, no stream yet.
    redis.cli("XADD", f"{p}:{{webhooks}}:dlq", "*", "event_id", "evt_x", "error", "410")
    now = int(time.time())
    redis.cli("HSET", f"{p}:market:snapshot", "snapshot.as_of", str(now - 5),
              "fx.as_of", str(now - 30), "fx.source", "live",
              "prices.as_of", "0", "prices.source", "default",
              "gas.base.as_of", str(now - 400), "gas.base.source", "cached")
    redis.cli("HSET", f"{p}:{{fees}}:decisions", "ai", "7", "fallback", "3",
              "fallback.timeout", "2", "fallback.disabled", "1")

    r = a.get("/v1/summary")
    assert r.status == 200, r
    s = r.body
    assert s["object"] == "summary"
    assert s["payments"]["by_state"] == KNOWN
    assert list(s["payments"]["by_state"]) == STATES
    assert s["payments"]["total"] == sum(KNOWN.values())

    q = s["queues"]["payments"]
    assert q == {"depth": 1, "in_flight": 2, "delayed": 2, "dlq": 1, "consumers": 1}, q
    assert s["queues"]["webhooks"] == {"depth": 0, "in_flight": 0, "delayed": 0, "dlq": 1,
                                       "consumers": 0}
    assert s["queues"]["fees"] == {"depth": 0, "in_flight": 0, "delayed": 0, "dlq": 0,
                                   "consumers": 0}

    w = s["webhooks"]
    assert w == {"window": 1000, "attempts": 5, "succeeded": 3, "failed": 2,
                 "success_rate": 0.6, "deliveries_pending": 2}, w

    m = s["market"]
    assert m["as_of"] == now - 5
    by = {x["name"]: x for x in m["sources"]}
    assert [x["name"] for x in m["sources"]] == ["fx", "prices", "gas.ethereum", "gas.base",
                                                 "gas.polygon", "gas.arbitrum", "gas.solana",
                                                 "status.circle"]
    assert by["fx"]["source"] == "live" and by["fx"]["as_of"] == now - 30
    assert 30 <= by["fx"]["age_seconds"] <= 30 + 60
    assert by["prices"] == {"name": "prices", "source": "default", "as_of": None,
                            "age_seconds": None}
    assert by["gas.base"]["source"] == "cached"
    assert by["status.circle"]["source"] == "missing"

    assert s["fee_decisions"] == {"ai": 7, "fallback": 3,
                                  "fallback_reasons": {"timeout": 2, "disabled": 1}}

    # Payments moving on show at once, on every loop (each keeps its fold),
    # and the fold stays exact over the following refreshes.
    transition(private_pg, "REFUND_PENDING", "REFUNDED")
    transition(private_pg, "PENDING", "ONRAMP_PENDING")
    insert_payments(private_pg, {"PENDING": 2})
    want = dict(KNOWN, REFUND_PENDING=0, REFUNDED=1, PENDING=4, ONRAMP_PENDING=2)
    for _ in range(6):
        s2 = a.get("/v1/summary").body
        assert s2["payments"]["by_state"] == want
        assert s2["payments"]["total"] == sum(KNOWN.values()) + 2


def test_summary_empty_system(start_api, private_pg):
    a = start_api(pg=private_pg)
    s = a.get("/v1/summary").body
    assert s["payments"] == {"total": 0, "by_state": {k: 0 for k in STATES}}
    assert s["webhooks"]["success_rate"] is None and s["webhooks"]["attempts"] == 0
    assert s["fee_decisions"] == {"ai": 0, "fallback": 0, "fallback_reasons": {}}
    assert all(x["source"] == "missing" for x in s["market"]["sources"])
    assert s["market"]["as_of"] is None


def test_summary_without_redis_still_answers(start_api, private_pg):
    # Redis on a port nobody listens on: the database half is still there.
    from rampart_it import free_port
    a = start_api({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}, pg=private_pg,
                  wait_ready=False)
    from rampart_it import wait_for

    got = {}

    def answered():
        try:
            got["r"] = a.get("/v1/summary")
        except OSError:
            return False
        return got["r"].status == 200

    assert wait_for(answered, 15, 0.1), got.get("r")
    s = got["r"].body
    assert s["queues"] == {"payments": None, "webhooks": None, "fees": None}
    assert s["market"] is None and s["fee_decisions"] is None
    assert s["payments"]["total"] == 0


def test_payment_events_with_attempts(start_api, private_pg):
    a = start_api(pg=private_pg)
    q = a.quote("USD", "EUR", 100000)
    assert q.status == 201, q
    pay = a.post("/v1/payments", {"quote_id": q.body["id"], "source_account": "s",
                                  "destination_account": "d"})
    assert pay.status == 202, pay
    pid = pay.body["id"]
    we, evt = insert_attempts(private_pg, pid, [500, 200], pending_deliveries=0)

    r = a.get(f"/v1/payments/{pid}/events")
    assert r.status == 200, r
    assert r.body["object"] == "list" and r.body["has_more"] is False
    types = [e["type"] for e in r.body["data"]]
    assert types == ["payment.pending", "payment.completed"]
    done = r.body["data"][1]
    assert done["id"] == evt
    # The same object as GET /v1/events/{id}.
    assert a.get(f"/v1/events/{evt}").body == done
    (d,) = done["deliveries"]
    assert d["endpoint_id"] == we and d["state"] == "delivered"
    assert [(x["attempt"], x["status_code"]) for x in d["attempts"]] == [(1, 500), (2, 200)]
    assert r.body["data"][0]["deliveries"] == []

    check_error(a.get(f"/v1/payments/pay_{uuid.uuid4()}/events"), 404, "PAYMENT_NOT_FOUND", "id")
    check_error(a.get("/v1/payments/nope/events"), 400, "INVALID_ID", "id")


def test_dashboard_files_and_headers(api):
    r = api.get("/dashboard", key=None)
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    html = r.body.decode()
    assert '<script src="/dashboard/dashboard.js"' in html
    assert "http://" not in html and "https://" not in html  # nothing from elsewhere
    for name, ctype in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        f = api.get(f"/dashboard/{name}", key=None)
        assert f.status == 200 and f.headers["Content-Type"].startswith(ctype)
        assert f.headers["Content-Security-Policy"] == csp
        assert b"http://" not in f.body and b"https://" not in f.body
    check_error(api.get("/dashboard/nope.js", key=None), 404, "NOT_FOUND")
    check_error(api.get("/dashboard/../main.c", key=None), 404, "NOT_FOUND")
    r = api.call("POST", "/dashboard", key=None)
    assert r.status == 405

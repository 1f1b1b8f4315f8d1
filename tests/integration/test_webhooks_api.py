"""POST/GET/DELETE /v1/webhook_endpoints, GET /v1/events/{id} and
POST /v1/events/{id}/redeliver (SPEC 4, 8). No webhook daemon runs here:
redelivery jobs stay in the stream, where the tests read them.

The database is shared by the whole session, so other tests' endpoints may
exist: assertions are about this module's own endpoints."""

import base64
import json
import re
import uuid

import pytest

from rampart_it import Redis, check_error, parse_ts, request
from webhook_it import payment_data

WE_ID_RE = re.compile(r"^we_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SECRET_RE = re.compile(r"^whsec_[A-Za-z0-9+/]{32}$")
PUBLIC_FIELDS = ["id", "object", "url", "events", "enabled", "disabled_reason", "created_at"]


def create_endpoint(api, url="https://example.com/hooks", events=("payment.completed",), **extra):
    body = {"url": url, "events": list(events)}
    body.update(extra)
    r = api.post("/v1/webhook_endpoints", body)
    assert r.status == 201, f"POST /v1/webhook_endpoints: {r.status} {r.body!r}"
    return r.body


def listed(api) -> dict:
    r = api.get("/v1/webhook_endpoints")
    assert r.status == 200, f"{r.status} {r.body!r}"
    assert r.body["object"] == "list" and r.body["has_more"] is False, r.body
    return {e["id"]: e for e in r.body["data"]}


# An event's data is always a payment object (webhook_it.payment_data).
def new_event(pg, typ="payment.completed", data=None) -> str:
    evt = f"evt_{uuid.uuid4()}"
    data = json.dumps(data if data is not None else payment_data())
    pg.psql(f"INSERT INTO events (id, type, payment_id, data) VALUES ('{evt}', '{typ}', NULL, "
            f"'{data}')")
    return evt


def stream_entries(redis: Redis, key: str) -> list:
    """XRANGE key - + as a list of {field: value}."""
    out = redis.cli("XRANGE", key, "-", "+")
    entries = []
    for line in out.splitlines():
        if re.match(r"^\d+-\d+$", line):
            entries.append([])
        elif entries:
            entries[-1].append(line)
    return [dict(zip(f[0::2], f[1::2])) for f in entries]


# --------------------------------------------------------------------------
# Endpoints

def test_create_endpoint_returns_secret_once(api, migrated):
    r = api.post("/v1/webhook_endpoints", {"url": "https://example.com/hooks",
                                           "events": ["payment.completed", "payment.failed"],
                                           "description": "orders"})
    assert r.status == 201, f"{r.status} {r.body!r}"
    e = r.body
    assert list(e) == PUBLIC_FIELDS + ["secret"], f"fields: {list(e)}"
    assert WE_ID_RE.match(e["id"]), e["id"]
    assert e["object"] == "webhook_endpoint"
    assert e["url"] == "https://example.com/hooks"
    assert e["events"] == ["payment.completed", "payment.failed"]
    assert e["enabled"] is True and e["disabled_reason"] is None, e
    parse_ts(e["created_at"])
    assert SECRET_RE.match(e["secret"]), e["secret"]
    assert len(base64.b64decode(e["secret"][len("whsec_"):], validate=True)) == 24
    stored = migrated.psql(f"SELECT secret FROM webhook_endpoints WHERE id = '{e['id']}'")
    assert stored == e["secret"]

    got = listed(api)[e["id"]]
    assert "secret" not in got, got
    assert got == {k: e[k] for k in PUBLIC_FIELDS}, got
    # Two endpoints never share a secret.
    assert create_endpoint(api)["secret"] != e["secret"]


def test_star_and_duplicates(api):
    assert create_endpoint(api, events=["*"])["events"] == ["*"]
    e = create_endpoint(api, "http://127.0.0.1:8080/x?y=1",
                        events=["payment.failed", "payment.failed", "payment.refunded"])
    assert e["events"] == ["payment.failed", "payment.refunded"], e
    assert e["url"] == "http://127.0.0.1:8080/x?y=1"
    assert create_endpoint(api, "https://[::1]:8443/h")["url"] == "https://[::1]:8443/h"


def test_list_newest_first_with_disabled_state(api, migrated):
    a = create_endpoint(api, "https://a.example/h")
    b = create_endpoint(api, "https://b.example/h")
    migrated.psql("UPDATE webhook_endpoints SET enabled = false, disabled_reason = "
                  f"'receiver answered 410' WHERE id = '{a['id']}'")
    r = api.get("/v1/webhook_endpoints")
    assert r.status == 200
    ids = [e["id"] for e in r.body["data"]]
    assert ids.index(b["id"]) < ids.index(a["id"]), "not newest first"
    created = [parse_ts(e["created_at"]) for e in r.body["data"]]
    assert created == sorted(created, reverse=True)
    got = {e["id"]: e for e in r.body["data"]}[a["id"]]
    assert got["enabled"] is False and got["disabled_reason"] == "receiver answered 410", got
    assert all("secret" not in e for e in r.body["data"])


def test_delete_endpoint(api, migrated):
    e = create_endpoint(api)
    evt = new_event(migrated)
    other = new_event(migrated)
    migrated.psql("INSERT INTO webhook_deliveries (event_id, endpoint_id, state) VALUES "
                  f"('{evt}', '{e['id']}', 'pending'), ('{other}', '{e['id']}', 'delivered')")
    r = api.call("DELETE", f"/v1/webhook_endpoints/{e['id']}")
    assert r.status == 204, f"{r.status} {r.body!r}"
    assert r.body == b"", r.body
    assert e["id"] not in listed(api)
    row = migrated.psql("SELECT deleted_at IS NOT NULL, enabled FROM webhook_endpoints "
                        f"WHERE id = '{e['id']}'")
    assert row == "t|f", row
    states = migrated.psql("SELECT event_id || '=' || state FROM webhook_deliveries "
                           f"WHERE endpoint_id = '{e['id']}' ORDER BY state")
    assert sorted(states.split()) == sorted([f"{evt}=cancelled", f"{other}=delivered"]), states

    r = api.call("DELETE", f"/v1/webhook_endpoints/{e['id']}")
    check_error(r, 404, "WEBHOOK_ENDPOINT_NOT_FOUND", "id")
    r = api.call("DELETE", f"/v1/webhook_endpoints/we_{uuid.uuid4()}")
    check_error(r, 404, "WEBHOOK_ENDPOINT_NOT_FOUND", "id")
    for bad in ("nope", f"evt_{uuid.uuid4()}", f"we_{str(uuid.uuid4()).upper()}"):
        check_error(api.call("DELETE", f"/v1/webhook_endpoints/{bad}"), 400, "INVALID_ID", "id",
                    what=bad)


BAD_CREATE = [
    ("not a URL", {"url": "not a url", "events": ["*"]}, "INVALID_URL", "url"),
    ("no host", {"url": "https:///path", "events": ["*"]}, "INVALID_URL", "url"),
    ("ftp", {"url": "ftp://example.com/x", "events": ["*"]}, "INVALID_URL", "url"),
    ("empty url", {"url": "", "events": ["*"]}, "INVALID_URL", "url"),
    ("bad port", {"url": "https://example.com:99999/", "events": ["*"]}, "INVALID_URL", "url"),
    ("3 KiB url", {"url": "https://example.com/" + "a" * 3072, "events": ["*"]},
     "INVALID_URL", "url"),
    ("missing url", {"events": ["*"]}, "MISSING_FIELD", "url"),
    ("url not a string", {"url": 5, "events": ["*"]}, "INVALID_FIELD", "url"),
    ("empty events", {"url": "https://example.com/", "events": []}, "INVALID_EVENTS", "events"),
    ("unknown event", {"url": "https://example.com/", "events": ["payment.exploded"]},
     "INVALID_EVENTS", "events"),
    ("star with others", {"url": "https://example.com/", "events": ["*", "payment.failed"]},
     "INVALID_EVENTS", "events"),
    ("events not an array", {"url": "https://example.com/", "events": "payment.failed"},
     "INVALID_FIELD", "events"),
    ("events not strings", {"url": "https://example.com/", "events": [1]},
     "INVALID_FIELD", "events"),
    ("missing events", {"url": "https://example.com/"}, "MISSING_FIELD", "events"),
    ("description not a string", {"url": "https://example.com/", "events": ["*"],
                                  "description": 7}, "INVALID_FIELD", "description"),
]


@pytest.mark.parametrize("name,body,code,param", BAD_CREATE, ids=[c[0] for c in BAD_CREATE])
def test_create_bad_input(api, name, body, code, param):
    r = api.post("/v1/webhook_endpoints", body)
    err = check_error(r, 400, code, param, what=name)
    if code == "INVALID_EVENTS" and "unknown" in name:
        assert "payment.exploded" in err["message"], err
    if name == "3 KiB url":
        assert "2048 bytes" in err["message"], err


def test_create_needs_json_and_auth(api):
    r = request(api.port, "POST", "/v1/webhook_endpoints", body=b"url=x",
                content_type="application/x-www-form-urlencoded")
    assert r.status == 415, r
    r = request(api.port, "GET", "/v1/webhook_endpoints", key=None)
    assert r.status == 401, r


# --------------------------------------------------------------------------
# Events

def test_get_event_with_deliveries_and_attempts(api, migrated):
    e = create_endpoint(api)
    data = payment_data("pay_0a1c0b7e-6a55-4e0c-9a51-6d1f3b2b1c9e")
    evt = new_event(migrated, "payment.completed", data)
    r = api.get(f"/v1/events/{evt}")
    assert r.status == 200, f"{r.status} {r.body!r}"
    assert list(r.body) == ["id", "object", "type", "created_at", "data", "deliveries"], r.body
    assert r.body["id"] == evt and r.body["object"] == "event"
    assert r.body["type"] == "payment.completed"
    assert r.body["data"] == data
    assert r.body["deliveries"] == []
    parse_ts(r.body["created_at"])

    migrated.psql("INSERT INTO webhook_deliveries (event_id, endpoint_id, state, attempts) "
                  f"VALUES ('{evt}', '{e['id']}', 'failed', 2)")
    migrated.psql("INSERT INTO webhook_attempts (event_id, endpoint_id, attempt, status_code, "
                  f"latency_ms, error) VALUES ('{evt}', '{e['id']}', 1, NULL, 5000, 'timeout'), "
                  f"('{evt}', '{e['id']}', 2, 500, 12, NULL)")
    r = api.get(f"/v1/events/{evt}")
    assert r.status == 200
    (d,) = r.body["deliveries"]
    assert list(d) == ["endpoint_id", "url", "state", "attempts"], d
    assert d["endpoint_id"] == e["id"] and d["url"] == e["url"] and d["state"] == "failed", d
    a1, a2 = d["attempts"]
    assert {k: a1[k] for k in ("attempt", "status_code", "latency_ms", "error")} == \
        {"attempt": 1, "status_code": None, "latency_ms": 5000, "error": "timeout"}, a1
    assert {k: a2[k] for k in ("attempt", "status_code", "latency_ms", "error")} == \
        {"attempt": 2, "status_code": 500, "latency_ms": 12, "error": None}, a2
    assert parse_ts(a1["at"]) <= parse_ts(a2["at"])


def test_get_event_errors(api):
    check_error(api.get(f"/v1/events/evt_{uuid.uuid4()}"), 404, "EVENT_NOT_FOUND", "id")
    for bad in ("evt_1", f"pay_{uuid.uuid4()}", "x" * 300):
        check_error(api.get(f"/v1/events/{bad}"), 400, "INVALID_ID", "id", what=bad)


def test_redeliver(api, migrated, redis):
    match = create_endpoint(api, "https://m.example/h", events=["payment.refunded"])
    star = create_endpoint(api, "https://s.example/h", events=["*"])
    other = create_endpoint(api, "https://o.example/h", events=["payment.completed"])
    gone = create_endpoint(api, "https://g.example/h", events=["payment.refunded"])
    assert api.call("DELETE", f"/v1/webhook_endpoints/{gone['id']}").status == 204
    evt = new_event(migrated, "payment.refunded")
    # A delivery that had given up keeps its attempts and goes back to pending.
    migrated.psql("INSERT INTO webhook_deliveries (event_id, endpoint_id, state, attempts) "
                  f"VALUES ('{evt}', '{match['id']}', 'dead', 7)")

    # No body and no Content-Type: the route does not want one.
    r = request(api.port, "POST", f"/v1/events/{evt}/redeliver")
    assert r.status == 202, f"{r.status} {r.body!r}"
    assert r.body["id"] == evt and r.body["object"] == "event", r.body
    to = r.body["redelivered_to"]
    assert match["id"] in to and star["id"] in to, to
    assert other["id"] not in to and gone["id"] not in to, to
    assert len(to) == len(set(to)), to

    jobs = stream_entries(redis, f"{api.prefix}:{{webhooks}}:jobs")
    assert sorted(j["endpoint_id"] for j in jobs) == sorted(to), jobs
    for j in jobs:
        assert j == {"event_id": evt, "endpoint_id": j["endpoint_id"], "attempt": "1",
                     "redelivery": "1"}, j
    rows = migrated.psql("SELECT endpoint_id || '=' || state || '/' || attempts "
                         f"FROM webhook_deliveries WHERE event_id = '{evt}'").split()
    assert f"{match['id']}=pending/7" in rows, rows
    assert f"{star['id']}=pending/0" in rows, rows
    assert not any(r.startswith(other["id"]) or r.startswith(gone["id"]) for r in rows), rows

    # A body is tolerated, and redelivering again queues again.
    r = api.post(f"/v1/events/{evt}/redeliver", {})
    assert r.status == 202, f"{r.status} {r.body!r}"
    assert len(stream_entries(redis, f"{api.prefix}:{{webhooks}}:jobs")) == 2 * len(to)


def test_redeliver_errors(api):
    r = request(api.port, "POST", f"/v1/events/evt_{uuid.uuid4()}/redeliver")
    check_error(r, 404, "EVENT_NOT_FOUND", "id")
    for bad in ("evt_1", f"we_{uuid.uuid4()}"):
        check_error(request(api.port, "POST", f"/v1/events/{bad}/redeliver"), 400, "INVALID_ID",
                    "id", what=bad)
    assert request(api.port, "POST", f"/v1/events/evt_{uuid.uuid4()}/redeliver",
                   key=None).status == 401


def test_redeliver_redis_down(start_api, migrated):
    """Redis unreachable: 503, and no delivery is set pending without its job."""
    api = start_api({"REDIS_URL": "redis://127.0.0.1:1/0"}, wait_ready=False)
    e = create_endpoint_direct(migrated)
    evt = new_event(migrated, "payment.failed")

    def answered():
        try:
            return request(api.port, "POST", f"/v1/events/{evt}/redeliver", timeout=5)
        except OSError:
            return None

    from rampart_it import wait_for
    r = wait_for(answered, 10, 0.1)
    assert r is not None, "api never answered"
    check_error(r, 503, "SERVICE_UNAVAILABLE")
    n = migrated.psql(f"SELECT count(*) FROM webhook_deliveries WHERE event_id = '{evt}' "
                      f"AND endpoint_id = '{e}'")
    assert n == "0", n


def create_endpoint_direct(pg) -> str:
    we = f"we_{uuid.uuid4()}"
    pg.psql("INSERT INTO webhook_endpoints (id, api_key_id, url, events, secret) VALUES "
            f"('{we}', 'k', 'https://d.example/h', '{{payment.failed}}', 'whsec_x')")
    return we

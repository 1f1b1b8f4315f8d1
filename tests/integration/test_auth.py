"""Bearer authentication and per-key rate limiting on /v1/* (SPEC 4)."""

import time
import uuid

import pytest

from rampart_it import check_error, request

UNKNOWN_QUOTE = "/v1/quotes/quote_00000000-0000-4000-8000-000000000000"


def _insert_db_key(pg, key: str, revoked: bool = False) -> str:
    key_id = f"key_{uuid.uuid4().hex}"
    pg.psql(
        "INSERT INTO api_keys (id, name, key_hash, revoked_at) VALUES "
        f"('{key_id}', 'integration test', encode(sha256('{key}'::bytea), 'hex'), "
        f"{'now()' if revoked else 'NULL'})")
    return key_id


# --------------------------------------------------------------------------
# 401s

@pytest.mark.parametrize("desc,headers", [
    ("no Authorization header", {}),
    ("unknown bearer key", {"Authorization": "Bearer sk_test_nope"}),
    ("empty bearer token", {"Authorization": "Bearer "}),
    ("Basic scheme", {"Authorization": "Basic c2tfdGVzdF8xOg=="}),
    ("key without scheme", {"Authorization": "sk_test_1"}),
    ("prefix of a valid key", {"Authorization": "Bearer sk_test_"}),
    ("valid key plus suffix", {"Authorization": "Bearer sk_test_1x"}),
    ("two keys", {"Authorization": "Bearer sk_test_1,sk_test_2"}),
])
def test_missing_or_invalid_key_is_401(api, desc, headers):
    for method, path, body in (("POST", "/v1/quotes",
                                 b'{"from_currency":"USD","to_currency":"EUR","amount":10000}'),
                                ("GET", UNKNOWN_QUOTE, None)):
        r = request(api.port, method, path, body=body, key=None, headers=headers)
        check_error(r, 401, "UNAUTHORIZED", what=f"{desc}: {method} {path}")


def test_auth_checked_before_body_validation(api):
    r = request(api.port, "POST", "/v1/quotes", body=b"{not json", key=None)
    check_error(r, 401, "UNAUTHORIZED", what="unauthenticated malformed body")


@pytest.mark.parametrize("key", ["sk_test_1", "sk_test_2"])
def test_static_keys_accepted(api, key):
    r = api.quote("USD", "EUR", 10000, key=key)
    assert r.status == 201, f"static key {key}: {r.status} {r.body!r}"


def test_bearer_scheme_case_insensitive(api):
    # RFC 7235: the auth scheme name is case-insensitive.
    r = api.get(UNKNOWN_QUOTE, key=None, headers={"Authorization": "bearer sk_test_1"})
    assert r.status == 404, f"'bearer' (lower case) scheme: {r.status} {r.body!r}"


# --------------------------------------------------------------------------
# Keys stored hashed in the database

def test_database_key_accepted(api, migrated):
    key = f"sk_live_{uuid.uuid4().hex}"
    _insert_db_key(migrated, key)
    r = api.quote("USD", "EUR", 10000, key=key)
    assert r.status == 201, f"DB key: {r.status} {r.body!r}"
    r = api.get(f"/v1/quotes/{r.body['id']}", key=key)
    assert r.status == 200, f"GET with DB key: {r.status} {r.body!r}"


def test_database_key_hash_of_other_key_rejected(api, migrated):
    key = f"sk_live_{uuid.uuid4().hex}"
    _insert_db_key(migrated, key)
    r = api.quote("USD", "EUR", 10000, key=key + "0")
    check_error(r, 401, "UNAUTHORIZED", what="key differing from a DB key by a suffix")


def test_revoked_database_key_is_401(api, migrated):
    key = f"sk_live_{uuid.uuid4().hex}"
    _insert_db_key(migrated, key, revoked=True)
    r = api.quote("USD", "EUR", 10000, key=key)
    check_error(r, 401, "UNAUTHORIZED", what="revoked DB key")


def test_keys_never_logged(start_api, migrated):
    static = f"sk_test_{uuid.uuid4().hex}"
    db_key = f"sk_live_{uuid.uuid4().hex}"
    bogus = f"sk_live_{uuid.uuid4().hex}"
    _insert_db_key(migrated, db_key)
    a = start_api({"API_KEYS": static, "LOG_LEVEL": "debug"})
    assert a.quote("USD", "EUR", 10000, key=static).status == 201
    assert a.quote("USD", "EUR", 10000, key=db_key).status == 201
    assert a.quote("USD", "EUR", 10000, key=bogus).status == 401
    time.sleep(0.3)
    assert a.terminate() == 0, a.logs()
    out = a.output()
    for k in (static, db_key, bogus):
        assert k not in out, f"full API key {k[:10]}... appears in the logs"


# --------------------------------------------------------------------------
# Rate limiting

def test_rate_limit_per_key(start_api):
    a = start_api({"RATE_LIMIT_RPS": 1, "RATE_LIMIT_BURST": 3})
    statuses = [a.get(UNKNOWN_QUOTE, key="sk_test_1").status for _ in range(3)]
    assert statuses == [404, 404, 404], f"first 3 requests within the burst: {statuses}"
    r = a.get(UNKNOWN_QUOTE, key="sk_test_1")
    check_error(r, 429, "RATE_LIMITED", what="4th request with RPS=1 BURST=3")
    ra = r.headers.get("Retry-After")
    assert ra is not None and ra.strip().isdigit() and int(ra) >= 1, f"Retry-After {ra!r}"

    # Another key has its own bucket.
    other = [a.get(UNKNOWN_QUOTE, key="sk_test_2").status for _ in range(3)]
    assert other == [404, 404, 404], f"sk_test_2 affected by sk_test_1's limit: {other}"

    # After Retry-After seconds the key may send again.
    time.sleep(int(ra) + 0.2)
    r = a.get(UNKNOWN_QUOTE, key="sk_test_1")
    assert r.status == 404, f"after waiting Retry-After={ra}: {r.status} {r.body!r}"


def test_rate_limit_applies_to_post(start_api):
    a = start_api({"RATE_LIMIT_RPS": 1, "RATE_LIMIT_BURST": 2})
    statuses = [a.quote("USD", "EUR", 10000).status for _ in range(3)]
    assert statuses[:2] == [201, 201] and statuses[2] == 429, f"POSTs with BURST=2: {statuses}"


def test_rate_limit_not_applied_to_probes(start_api):
    a = start_api({"RATE_LIMIT_RPS": 1, "RATE_LIMIT_BURST": 1})
    statuses = [a.get("/healthz", key=None).status for _ in range(5)]
    assert statuses == [200] * 5, f"/healthz under a tiny rate limit: {statuses}"

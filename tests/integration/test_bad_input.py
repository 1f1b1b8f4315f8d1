"""Bad input to POST/GET /v1/quotes: each gets its 4xx status and error code,
never a 5xx, always the SPEC's error shape with X-Request-Id (SPEC 3, 4)."""

import json
import uuid

import pytest

from rampart_it import check_error, request

GOOD = {"from_currency": "USD", "to_currency": "EUR", "amount": 100000}
MAX_INT64 = 9223372036854775807


def with_(**kw):
    body = dict(GOOD)
    body.update(kw)
    return json.dumps(body).encode()


def without(field):
    body = dict(GOOD)
    del body[field]
    return json.dumps(body).encode()


# (id, raw body, status, code, param or None)
BODY_CASES = [
    ("malformed-json", b'{"from_currency": "USD", "to_currency": ', 400, "INVALID_JSON", None),
    ("trailing-garbage", b'{"from_currency":"USD","to_currency":"EUR","amount":100000} x', 400,
     "INVALID_JSON", None),
    ("invalid-utf8-in-string", b'{"from_currency":"US\xff","to_currency":"EUR","amount":100000}',
     400, "INVALID_JSON", None),
    ("top-level-array", b'["USD", "EUR", 100000]', 400, "INVALID_REQUEST", None),
    ("top-level-string", b'"USD to EUR"', 400, "INVALID_REQUEST", None),
    ("missing-from_currency", without("from_currency"), 400, "MISSING_FIELD", "from_currency"),
    ("missing-to_currency", without("to_currency"), 400, "MISSING_FIELD", "to_currency"),
    ("missing-amount", without("amount"), 400, "MISSING_FIELD", "amount"),
    ("empty-object", b"{}", 400, "MISSING_FIELD", None),
    ("null-from_currency", with_(from_currency=None), 400, "MISSING_FIELD", "from_currency"),
    ("null-amount", with_(amount=None), 400, "MISSING_FIELD", "amount"),
    ("from_currency-number", with_(from_currency=840), 400, "INVALID_FIELD", "from_currency"),
    ("to_currency-object", with_(to_currency={"code": "EUR"}), 400, "INVALID_FIELD", "to_currency"),
    ("amount-string", with_(amount="100"), 400, "INVALID_AMOUNT", None),
    ("amount-fraction", with_(amount=10.5), 400, "INVALID_AMOUNT", None),
    ("amount-zero", with_(amount=0), 400, "INVALID_AMOUNT", None),
    ("amount-negative", with_(amount=-5), 400, "INVALID_AMOUNT", None),
    ("amount-bool", with_(amount=True), 400, "INVALID_AMOUNT", None),
    ("amount-1e30", b'{"from_currency":"USD","to_currency":"EUR","amount":1e30}', 400,
     "INVALID_AMOUNT", None),
    ("amount-above-int64", b'{"from_currency":"USD","to_currency":"EUR","amount":9223372036854775808}',
     400, "INVALID_AMOUNT", None),
    ("amount-far-above-int64",
     b'{"from_currency":"USD","to_currency":"EUR","amount":123456789012345678901234567890}',
     400, "INVALID_AMOUNT", None),
    ("unknown-from", with_(from_currency="XXX"), 400, "UNSUPPORTED_CURRENCY", "from_currency"),
    ("unknown-to", with_(to_currency="XXX"), 400, "UNSUPPORTED_CURRENCY", "to_currency"),
    ("lowercase-from", with_(from_currency="usd"), 400, "UNSUPPORTED_CURRENCY", "from_currency"),
    ("lowercase-to", with_(to_currency="eur"), 400, "UNSUPPORTED_CURRENCY", "to_currency"),
    ("same-currency", with_(to_currency="USD"), 400, "SAME_CURRENCY", None),
    ("priority-unknown", with_(priority="urgent"), 400, "INVALID_FIELD", "priority"),
    ("priority-number", with_(priority=1), 400, "INVALID_FIELD", "priority"),
    ("amount-too-small", with_(amount=1), 400, "AMOUNT_TOO_SMALL", None),
    ("amount-too-large-payout", with_(amount=MAX_INT64, to_currency="IDR"), 400,
     "AMOUNT_TOO_LARGE", None),
]


@pytest.mark.parametrize("body,status,code,param",
                         [c[1:] for c in BODY_CASES], ids=[c[0] for c in BODY_CASES])
def test_post_quotes_bad_body(api, body, status, code, param):
    r = request(api.port, "POST", "/v1/quotes", body=body)
    err = check_error(r, status, code, param, what=f"POST /v1/quotes {body[:80]!r}")
    if code == "INVALID_AMOUNT" and "param" in err:
        assert err["param"] == "amount", err


# Inputs the contract does not name a code for: any 4xx with the error shape.
ODD_BODIES = [
    ("empty-body", b""),
    ("json-null", b"null"),
    ("json-number", b"42"),
    ("deep-nesting", b"[" * 20000 + b"]" * 20000),
    ("nul-in-string", b'{"from_currency":"US\\u0000D","to_currency":"EUR","amount":100000}'),
    ("lone-surrogate", b'{"from_currency":"\\ud800","to_currency":"EUR","amount":100000}'),
    ("amount-1.0", b'{"from_currency":"USD","to_currency":"EUR","amount":1.0}'),
    ("amount-negative-zero", b'{"from_currency":"USD","to_currency":"EUR","amount":-0}'),
    ("huge-string", with_(from_currency="U" * 60000)),
    ("empty-currency", with_(to_currency="")),
    ("duplicate-keys", b'{"from_currency":"USD","from_currency":"XXX","to_currency":"EUR","amount":1}'),
]


@pytest.mark.parametrize("body", [c[1] for c in ODD_BODIES], ids=[c[0] for c in ODD_BODIES])
def test_post_quotes_odd_bodies_are_4xx(api, body):
    r = request(api.port, "POST", "/v1/quotes", body=body)
    assert 400 <= r.status < 500, f"POST /v1/quotes {body[:60]!r}: {r.status} {r.body!r}"
    check_error(r, r.status, r.error().get("code"), what=f"body {body[:60]!r}")


def test_body_too_large_is_413(api):
    body = json.dumps({**GOOD, "pad": "x" * (70 * 1024)}).encode()
    r = request(api.port, "POST", "/v1/quotes", body=body)
    check_error(r, 413, "BODY_TOO_LARGE", what="70 KiB body")


def test_body_just_under_limit_accepted(api):
    # 64 KiB is the limit: a body a little under it is parsed normally.
    body = dict(GOOD)
    pad = 63 * 1024 - len(json.dumps(body))
    raw = json.dumps(body).encode()[:-1] + b', "metadata_pad": "' + b"x" * pad + b'"}'
    assert len(raw) < 64 * 1024
    r = request(api.port, "POST", "/v1/quotes", body=raw)
    assert r.status != 413 and r.status < 500, f"{len(raw)}-byte body: {r.status} {r.body!r}"


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(api, ctype):
    r = request(api.port, "POST", "/v1/quotes", body=json.dumps(GOOD).encode(), content_type=ctype)
    check_error(r, 415, "UNSUPPORTED_MEDIA_TYPE", what=f"Content-Type {ctype!r}")


@pytest.mark.parametrize("ctype", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_content_type_variants_accepted(api, ctype):
    r = request(api.port, "POST", "/v1/quotes", body=json.dumps(GOOD).encode(), content_type=ctype)
    assert r.status == 201, f"Content-Type {ctype!r}: {r.status} {r.body!r}"


@pytest.mark.parametrize("method,path,status,code", [
    ("GET", "/v1/nope", 404, "NOT_FOUND"),
    ("POST", "/v1/nope", 404, "NOT_FOUND"),
    ("GET", "/nope", 404, "NOT_FOUND"),
    ("GET", "/v1/quotes/quote_00000000-0000-4000-8000-000000000000/extra", 404, "NOT_FOUND"),
])
def test_unknown_route(api, method, path, status, code):
    body = json.dumps(GOOD).encode() if method == "POST" else None
    r = request(api.port, method, path, body=body)
    check_error(r, status, code, what=f"{method} {path}")


@pytest.mark.parametrize("method,path,allowed", [
    ("DELETE", "/v1/quotes", "POST"),
    ("PUT", "/v1/quotes", "POST"),
    ("DELETE", "/v1/quotes/quote_00000000-0000-4000-8000-000000000000", "GET"),
])
def test_wrong_method_is_405_with_allow(api, method, path, allowed):
    r = request(api.port, method, path)
    check_error(r, 405, "METHOD_NOT_ALLOWED", what=f"{method} {path}")
    allow = r.headers.get("Allow")
    assert allow, f"{method} {path}: 405 without an Allow header"
    assert allowed in [m.strip() for m in allow.split(",")], f"{method} {path}: Allow {allow!r}"


@pytest.mark.parametrize("qid", [
    "quote_not-a-uuid",
    "quote_",
    "pay_7d1e3c2a-1111-4222-8333-444455556666",
    "7d1e3c2a-1111-4222-8333-444455556666",
    "quote_7d1e3c2a-1111-4222-8333-44445555666",   # one hex digit short
    "quote_7d1e3c2a-1111-4222-8333-4444555566667",  # one too many
    "quote_7d1e3c2a11114222833344445555666x",
    "quote_%00",
    "quote_" + "a" * 300,
])
def test_get_quote_malformed_id_is_400(api, qid):
    r = api.get(f"/v1/quotes/{qid}")
    check_error(r, 400, "INVALID_ID", what=f"GET /v1/quotes/{qid[:60]}")


def test_get_quote_unknown_is_404(api):
    r = api.get(f"/v1/quotes/quote_{uuid.uuid4()}")
    check_error(r, 404, "QUOTE_NOT_FOUND", what="GET unknown quote")


def test_request_id_on_errors_echoed(api):
    rid = f"it-{uuid.uuid4().hex}"
    r = request(api.port, "POST", "/v1/quotes", body=b"{", headers={"X-Request-Id": rid})
    check_error(r, 400, "INVALID_JSON")
    assert r.headers.get("X-Request-Id") == rid, r.headers.get("X-Request-Id")


def test_api_still_healthy_after_bad_input(api):
    r = api.quote("USD", "EUR", 100000)
    assert r.status == 201, f"after the bad-input tests: {r.status} {r.body!r}"

"""docs/openapi.yaml against the server: GET /openapi.json serves it, the
contract check that request() applies to every api answer rejects what the
document does not describe, and a TypeScript client generated from it
(openapi-typescript + openapi-fetch, compiled by scripts/openapi.sh) works
against a live api."""

import copy
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.request

import pytest
import yaml

import rampart_it
from rampart_it import (OPENAPI_YAML, REPO, ContractError, OpenApiContract, check_error,
                        contract, free_port, request, wait_for)
from test_webhook_daemon import hooks  # noqa: F401 (fixture: api, worker, webhook daemon)
from webhook_it import signature

CLIENT_JS = REPO / "tests" / "openapi" / "build" / "js" / "client.js"


def test_openapi_json_is_the_yaml_document(api):
    r = request(api.port, "GET", "/openapi.json", key=None)
    assert r.status == 200, r
    assert r.headers.get("Content-Type") == "application/json"
    with open(OPENAPI_YAML, encoding="utf-8") as f:
        want = yaml.safe_load(f)
    assert r.body == want, "GET /openapi.json differs from docs/openapi.yaml (rebuild the api?)"
    # HEAD works as for every GET route; a wrong method is 405 with Allow: GET.
    check_error(request(api.port, "POST", "/openapi.json", body=b"{}", key=None), 405,
                "METHOD_NOT_ALLOWED")


def test_every_route_of_the_server_is_documented(api):
    # Each (method, path) of services/api/main.c's route table answers something
    # other than 404 NOT_FOUND / 405, and the document has the operation.
    doc = OpenApiContract().doc
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    src = (REPO / "services" / "api" / "main.c").read_text()
    table = src[src.index("routes[] = {"):src.index("};", src.index("routes[] = {"))]
    routes = set(re.findall(r'\{"([A-Z]+)", "([^"]+)"', table))
    assert routes, "no routes parsed from services/api/main.c"
    assert routes - documented == set(), f"routes missing from docs/openapi.yaml: {routes - documented}"
    assert documented - routes == set(), f"documented but not served: {documented - routes}"


# --------------------------------------------------------------------------
# The contract check itself must fail on what the document does not describe

class FakeHeaders(dict):
    def get(self, k, default=None):
        for key, v in self.items():
            if key.lower() == k.lower():
                return v
        return default


def real_quote(api):
    """A live quote answer as (status, headers, raw body)."""
    r = api.quote("USD", "EUR", 100000)
    assert r.status == 201
    return r.status, FakeHeaders(dict(r.headers)), json.dumps(r.body).encode()


def test_contract_accepts_a_real_answer(api):
    status, headers, raw = real_quote(api)
    OpenApiContract().check("POST", "/v1/quotes", status, headers, raw)


@pytest.mark.parametrize("doctor, expect", [
    (lambda s, h, b: (s, h, {**b, "surprise": 1}), "Additional properties are not allowed"),
    (lambda s, h, b: (s, h, {k: v for k, v in b.items() if k != "chain"}), "'chain' is a required property"),
    (lambda s, h, b: (s, h, {**b, "amount": "100000"}), "amount: '100000' is not of type 'integer'"),
    (lambda s, h, b: (s, h, {**b, "rate_source": "guess"}), "rate_source: 'guess' is not one of"),
    (lambda s, h, b: (s, h, {**b, "created_at": "2026-11-22 01:53:04"}), "created_at"),
    (lambda s, h, b: (418, h, b), "status 418 is not documented for POST /v1/quotes"),
    (lambda s, h, b: (s, FakeHeaders({"Content-Type": "application/json"}), b),
     "header X-Request-Id is required and missing"),
    (lambda s, h, b: (s, FakeHeaders({**h, "Content-Type": "text/plain"}), b), "Content-Type 'text/plain'"),
    (lambda s, h, b: (400, h, {"error": {"code": "QUOTE_EXPIRED", "message": "m"}}),
     "error/code: 'QUOTE_EXPIRED' is not one of"),
    (lambda s, h, b: (400, h, {"error": {"code": "INVALID_FIELD"}}), "'message' is a required property"),
    (lambda s, h, b: (429, h, {"error": {"code": "RATE_LIMITED", "message": "m"}}),
     "header Retry-After is required and missing"),
])
def test_contract_rejects_a_doctored_answer(api, doctor, expect):
    status, headers, raw = real_quote(api)
    s, h, b = doctor(status, copy.deepcopy(headers), json.loads(raw))
    with pytest.raises(ContractError) as e:
        OpenApiContract().check("POST", "/v1/quotes", s, h, json.dumps(b).encode())
    msg = str(e.value)
    assert f"POST /v1/quotes answered {s}" in msg, msg
    assert expect in msg, msg


def test_contract_rejects_undocumented_routes(api):
    c = OpenApiContract()
    ok = FakeHeaders({"Content-Type": "application/json", "X-Request-Id": "req_1"})
    # A route the server might grow without the document: a 200 fails.
    with pytest.raises(ContractError, match="no GET operation for this path"):
        c.check("GET", "/v1/refunds", 200, ok, b'{"object": "list"}')
    with pytest.raises(ContractError, match="no PATCH operation"):
        c.check("PATCH", "/v1/payments", 200, ok, b"{}")
    # 405 must list exactly the documented methods.
    allow = FakeHeaders({**ok, "Allow": "GET"})
    with pytest.raises(ContractError, match="Allow 'GET', the document has"):
        c.check("PUT", "/v1/payments", 405, allow, b'{"error": {"code": "METHOD_NOT_ALLOWED", "message": "m"}}')
    # And request() raises it for a live answer that breaks the document:
    # a real 201 checked as if it were GET /v1/quotes/{id}'s (200 only).
    r = api.quote("USD", "EUR", 100000)
    with pytest.raises(ContractError, match="status 201 is not documented for GET /v1/quotes/"):
        c.check("GET", f"/v1/quotes/{r.body['id']}", 201, FakeHeaders(dict(r.headers)),
                json.dumps(r.body).encode())


def test_edges_the_document_describes(api):
    # HEAD is answered as GET without content; checked against GET's responses.
    r = request(api.port, "HEAD", "/v1/quotes/quote_00000000-0000-4000-8000-000000000000")
    assert r.status == 404 and r.body == b"", r
    # Over 1 MiB libevent refuses the body itself; its answer is rewritten
    # into the same JSON error (common/http.c), with an X-Request-Id.
    r = request(api.port, "POST", "/v1/quotes", body=b"{" + b" " * (2 << 20) + b"}")
    check_error(r, 413, "BODY_TOO_LARGE")
    assert r.headers.get("X-Request-Id"), r
    r = request(api.port, "POST", "/v1/quotes", body=b"{" + b" " * (70 << 10) + b"}")
    check_error(r, 413, "BODY_TOO_LARGE")


def test_request_helper_fails_on_an_answer_the_document_lacks(api, monkeypatch):
    # The same live answer, checked by request() against a document without
    # POST /v1/quotes' 201: the helper itself raises, so the test receiving
    # such an answer fails.
    c = OpenApiContract()
    del c.doc["paths"]["/v1/quotes"]["post"]["responses"]["201"]
    monkeypatch.setattr(rampart_it, "_contract", c)
    with pytest.raises(ContractError, match="status 201 is not documented for POST /v1/quotes"):
        api.quote("USD", "EUR", 100000)
    monkeypatch.undo()
    assert api.quote("USD", "EUR", 100000).status == 201


# --------------------------------------------------------------------------
# The generated TypeScript client against a live api

def build_client() -> None:
    """scripts/openapi.sh (make test runs it before pytest) when the compiled
    client is missing or older than the document or its source."""
    sources = [OPENAPI_YAML, REPO / "tests" / "openapi" / "client.ts",
               REPO / "tests" / "openapi" / "package.json"]
    if CLIENT_JS.exists() and all(CLIENT_JS.stat().st_mtime >= s.stat().st_mtime for s in sources):
        return
    r = subprocess.run(["bash", str(REPO / "scripts" / "openapi.sh")], capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, f"scripts/openapi.sh failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"


def test_generated_typescript_client_runs(api):
    build_client()
    r = subprocess.run(["node", str(CLIENT_JS), f"http://127.0.0.1:{api.port}", "sk_test_1"],
                       capture_output=True, text=True, timeout=60, cwd=CLIENT_JS.parent,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert r.returncode == 0, f"client failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["payment_status_code"] == 202 and out["payment_status"] == "PENDING", out
    assert out["history"] == ["PENDING"], out
    assert out["replay_id"] == out["payment_id"] and out["replayed"] == "true", out
    assert out["listed_payout"] == out["guaranteed_payout"] == 89056, out
    assert out["missing_status"] == 404 and out["missing_code"] == "PAYMENT_NOT_FOUND", out
    # What the client created, seen through the checked helper.
    p = request(api.port, "GET", f"/v1/payments/{out['payment_id']}")
    assert p.status == 200 and p.body["quote_id"] == out["quote_id"], p
    assert p.body["metadata"] == {"client": "openapi-fetch"}, p.body


# --------------------------------------------------------------------------
# docs/quickstart.md's receiver: the standardwebhooks npm package verifies
# real deliveries of the webhook daemon

def test_quickstart_receiver_verifies_real_deliveries(hooks):
    build_client()  # installs the npm tools (standardwebhooks among them)
    a, _ = hooks.start(api=True)
    port = free_port()
    r = a.post("/v1/webhook_endpoints", {"url": f"http://127.0.0.1:{port}/hooks", "events": ["*"]})
    assert r.status == 201, r
    ep, secret = r.body["id"], r.body["secret"]
    proc = subprocess.Popen(["node", "receiver.mjs"], cwd=REPO / "tests" / "openapi",
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                 "RAMPART_WEBHOOK_SECRET": secret, "PORT": str(port)})
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        def listening():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return proc.poll() is not None  # stop waiting: it exited
        assert wait_for(listening, 20, 0.1) and proc.poll() is None, "".join(lines)

        q = a.quote("USD", "EUR", 100000)
        p = a.post("/v1/payments", {"quote_id": q.body["id"], "source_account": "acct_qs",
                                    "destination_account": "acct_qs_dst"},
                   headers={"Idempotency-Key": f"qs-{q.body['id']}"})
        assert p.status == 202, p
        pid = p.body["id"]
        want = {f"verified payment.{s} {pid} {s.upper()}\n" for s in
                ("pending", "onramp_pending", "onramp_complete", "offramp_pending", "completed")}
        assert wait_for(lambda: want <= set(lines), 60, 0.1), "".join(lines)

        # A forged delivery (signed with another secret) is rejected with 400.
        body = b'{"id":"evt_00000000-0000-4000-8000-000000000000","type":"payment.completed"}'
        ts = str(int(time.time()))
        forged = urllib.request.Request(
            f"http://127.0.0.1:{port}/hooks", data=body, method="POST",
            headers={"Content-Type": "application/json", "webhook-id": "evt_x",
                     "webhook-timestamp": ts,
                     "webhook-signature": signature("whsec_" + "A" * 32, "evt_x", ts, body)})
        try:
            urllib.request.urlopen(forged, timeout=10)
            raise AssertionError("the forged delivery was accepted")
        except urllib.error.HTTPError as e:
            assert e.code == 400
        assert wait_for(lambda: any(ln.startswith("rejected:") for ln in lines), 10, 0.1), lines
    finally:
        proc.terminate()
        proc.wait(10)
        a.call("DELETE", f"/v1/webhook_endpoints/{ep}")

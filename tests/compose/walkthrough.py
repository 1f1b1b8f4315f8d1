#!/usr/bin/python3
"""The README's walkthrough against a running rampart, as a user would do it
with curl, plus a webhook endpoint whose signed delivery must arrive.

    walkthrough.py API_BASE_URL [API_KEY]

Registers an endpoint pointing at a receiver this script serves on loopback,
creates a quote, pays it with an Idempotency-Key, replays the payment (same
answer, Idempotent-Replayed: true), waits for COMPLETED, then for the
payment.completed webhook, whose Standard Webhooks signature it verifies
with the endpoint's secret. Exits 0 when all of that held, 1 otherwise,
printing each step."""

import base64
import hashlib
import hmac
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BASE = sys.argv[1].rstrip("/")
KEY = sys.argv[2] if len(sys.argv) > 2 else "sk_dev_rampart"
received = []  # (headers, body)
lock = threading.Lock()


def fail(msg):
    print(f"walkthrough: FAIL: {msg}", flush=True)
    sys.exit(1)


def step(msg):
    print(f"walkthrough: {msg}", flush=True)


def call(method, path, body=None, headers=None):
    h = {"Authorization": f"Bearer {KEY}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    req = urllib.request.Request(BASE + path, data=data, headers=h, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


def payment_id(body):
    """The payment id of an event body: data is the payment (SPEC §8)."""
    data = json.loads(body).get("data") or {}
    return (data.get("payment") or data).get("id")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{srv.server_address[1]}/hook"

    st, _, ep = call("POST", "/v1/webhook_endpoints",
                     {"url": hook, "events": ["payment.completed"]})
    if st != 201:
        fail(f"POST /v1/webhook_endpoints: {st} {ep}")
    secret = ep["secret"]
    step(f"webhook endpoint {ep['id']} -> {hook}")

    st, _, q = call("POST", "/v1/quotes",
                    {"from_currency": "USD", "to_currency": "EUR", "amount": 100000})
    if st != 201:
        fail(f"POST /v1/quotes: {st} {q}")
    step(f"quote {q['id']}: {q['amount']} {q['currency']} -> {q['guaranteed_payout']} "
         f"{q['payout_currency']} at {q['exchange_rate']} on {q['chain']}")

    idem = f"compose-{uuid.uuid4()}"
    body = {"quote_id": q["id"], "source_account": "acct_demo_src",
            "destination_account": "acct_demo_dst"}
    st, _, p = call("POST", "/v1/payments", body, {"Idempotency-Key": idem})
    if st != 202:
        fail(f"POST /v1/payments: {st} {p}")
    st2, h2, p2 = call("POST", "/v1/payments", body, {"Idempotency-Key": idem})
    if st2 != 202 or p2.get("id") != p["id"] or h2.get("Idempotent-Replayed") != "true":
        fail(f"replayed POST /v1/payments: {st2} {h2.get('Idempotent-Replayed')} {p2}")
    step(f"payment {p['id']} ({p['status']}); the replay returned the same payment")

    deadline = time.time() + 90
    while True:
        st, _, g = call("GET", f"/v1/payments/{p['id']}")
        if st == 200 and g["status"] in ("COMPLETED", "FAILED", "REFUNDED"):
            break
        if time.time() > deadline:
            fail(f"payment not terminal after 90 s: {st} {g}")
        time.sleep(0.5)
    if g["status"] != "COMPLETED":
        fail(f"payment ended {g['status']}: {g}")
    states = [h.get("status") for h in g.get("history", [])]
    step(f"payment COMPLETED through {states}")
    if g.get("payout_amount", q["guaranteed_payout"]) != q["guaranteed_payout"]:
        fail(f"payout {g.get('payout_amount')} != guaranteed {q['guaranteed_payout']}")

    deadline = time.time() + 60
    while True:
        with lock:
            got = [r for r in received if payment_id(r[1]) == p["id"]]
        if got:
            break
        if time.time() > deadline:
            fail(f"no payment.completed webhook within 60 s ({len(received)} other)")
        time.sleep(0.2)
    hdrs, raw = got[0]
    for h in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if h not in hdrs:
            fail(f"webhook without {h}: {hdrs}")
    key = base64.b64decode(secret.split("_", 1)[1])
    mac = hmac.new(key, f"{hdrs['webhook-id']}.{hdrs['webhook-timestamp']}.".encode() + raw,
                   hashlib.sha256).digest()
    want = base64.b64encode(mac).decode()
    sigs = [s.split(",", 1)[1] for s in hdrs["webhook-signature"].split() if s.startswith("v1,")]
    if not any(hmac.compare_digest(want, s) for s in sigs):
        fail(f"webhook signature does not verify: {hdrs['webhook-signature']}")
    ev = json.loads(raw)
    if ev.get("type") != "payment.completed":
        fail(f"webhook type {ev.get('type')}")
    step(f"signed webhook {hdrs['webhook-id']} ({ev['type']}) arrived and verifies")
    srv.shutdown()
    print("walkthrough: ok", flush=True)


if __name__ == "__main__":
    socket.setdefaulttimeout(15)
    main()

"""rampart-webhook processes, a programmable loopback webhook receiver, and
helpers to create endpoints and events directly in PostgreSQL, for the
webhook daemon's integration tests."""

import base64
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

from rampart_it import KEY, request
from worker_it import Worker, worker_env

# The api_key_id the api gives payments made with a static key (auth.c).
STATIC_KEY_ID = "key_static_" + hashlib.sha256(KEY.encode()).hexdigest()[:12]


class Webhook(Worker):
    """One rampart-webhook; same life cycle and checks as a Worker."""

    BINARY = "rampart-webhook"

    def metrics(self) -> str:
        b = request(self.port, "GET", "/metrics", key=None).body
        return b.decode() if isinstance(b, bytes) else str(b)


def webhook_env(pg, redis, prefix: str, overrides: Optional[dict] = None) -> dict:
    base = {"WEBHOOK_ALLOW_PRIVATE": "1", "WEBHOOK_RETRY_SCHEDULE": "1,1,1",
            "WEBHOOK_TIMEOUT_MS": "2000", "WEBHOOK_RELAY_INTERVAL_MS": "50",
            "SHUTDOWN_GRACE_SECONDS": "3"}
    base.update(overrides or {})
    env = worker_env(pg, redis, prefix, base)
    for k in ("MOCK_SETTLE_MIN_MS", "MOCK_SETTLE_MAX_MS", "POLL_MIN_MS", "POLL_MAX_MS"):
        env.pop(k, None)
    return env


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def signature(secret: str, msg_id: str, ts: str, body: bytes) -> str:
    key = base64.b64decode(secret.split("_", 1)[1])
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class Receiver:
    """A loopback webhook receiver. answer(n, headers, body) -> (status,
    headers dict, sleep seconds) decides each reply (n = how many requests
    this receiver got before, 0-based); default 200. Records every request
    as dict(headers, body, json, at)."""

    def __init__(self, answer: Optional[Callable] = None):
        self.answer = answer or (lambda n, h, b: (200, {}, 0))
        self.lock = threading.Lock()
        self.requests = []
        rcv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The reply goes out in two writes (head, body): with Nagle on,
            # the body waits for the client's delayed ACK, 40 ms a reply.
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                with rcv.lock:
                    idx = len(rcv.requests)
                    try:
                        js = json.loads(body)
                    except ValueError:
                        js = None
                    rcv.requests.append({"headers": hdrs, "body": body, "json": js,
                                         "at": time.monotonic()})
                code, extra, sleep = rcv.answer(idx, hdrs, body)
                if sleep:
                    time.sleep(sleep)
                out = b"ok"
                try:
                    self.send_response(code)
                    for k, v in (extra or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def for_events(self, event_ids) -> list:
        ids = set(event_ids)
        with self.lock:
            return [r for r in self.requests if r["json"] and r["json"].get("id") in ids]

    def for_payment(self, pid) -> list:
        with self.lock:
            return [r for r in self.requests
                    if r["json"] and (r["json"].get("data") or {}).get("id") == pid]


def add_endpoint(pg, url: str, events=("*",), api_key_id: str = STATIC_KEY_ID,
                 secret: Optional[str] = None):
    """Inserts an endpoint (as POST /v1/webhook_endpoints would); returns (id, secret)."""
    secret = secret or new_secret()
    ep = "we_" + str(uuid.uuid4())
    arr = ",".join(f'"{e}"' for e in events)
    pg.psql(f"INSERT INTO webhook_endpoints (id, api_key_id, url, events, secret) "
            f"VALUES ('{ep}', '{api_key_id}', '{url}', '{{{arr}}}', '{secret}')")
    return ep, secret


def payment_data(pid: str = "pay_5f1c0b7e-6a55-4e0c-9a51-6d1f3b2b1c9e",
                 status: str = "COMPLETED") -> dict:
    """A payment object as the api and the worker put it in an event's data
    (rampart_payment_json), for events made by hand: deliveries and
    GET /v1/events/{id} are checked against docs/openapi.yaml."""
    fees = {"platform_fee": 2, "onramp_fee": 1, "offramp_fee": 1, "total_fees": 4,
            "currency": "USD"}
    return {"id": pid, "status": status, "quote_id": "quote_2f1c0b7e-6a55-4e0c-9a51-6d1f3b2b1c9e",
            "amount": 500, "currency": "USD", "payout_amount": 455, "payout_currency": "EUR",
            "exchange_rate": "0.92", "fees": fees, "chain": "base", "source_account": "a",
            "destination_account": "b", "metadata": {}, "failure_code": None,
            "created_at": "2026-11-22T01:53:04.285Z", "updated_at": "2026-11-22T01:53:05.285Z"}


def add_event(pg, etype: str = "payment.completed", data: Optional[dict] = None) -> str:
    """Inserts an event without a payment (delivered to every subscribed endpoint)."""
    eid = "evt_" + str(uuid.uuid4())
    d = json.dumps(data or payment_data()).replace("'", "''")
    pg.psql(f"INSERT INTO events (id, type, data) VALUES ('{eid}', '{etype}', '{d}'::jsonb)")
    return eid

"""The per-key rate limit under concurrent load: several event loops of one
api, and several api processes sharing one Redis (issue 13 §1a, docs/api.md).

Each test floods one key with POST /v1/quotes from many keep-alive
connections for a bounded time, counts the 201s and the quote rows stored
for the key, and asserts both stay within what a token bucket allows:
burst + rate * elapsed, plus the documented lease slack."""

import hashlib
import http.client
import json
import threading
import time
import uuid

from rampart_it import wait_for

RPS = 50
BURST = 100
QUOTE = json.dumps({"from_currency": "USD", "to_currency": "EUR", "amount": 10000}).encode()


def _key_id(key: str) -> str:
    return "key_static_" + hashlib.sha256(key.encode()).hexdigest()[:12]


def hammer(ports, key: str, seconds: float, conns: int = 24) -> dict:
    """conns keep-alive connections spread over ports, each sending POST
    /v1/quotes back to back for `seconds`. Returns counts per status and the
    elapsed time from the first request sent to the last answer read."""
    counts: dict = {}
    lock = threading.Lock()
    start = threading.Barrier(conns)
    t = {"first": None, "last": 0.0}
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def one(i: int) -> None:
        port = ports[i % len(ports)]
        mine: dict = {}
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        start.wait()
        with lock:
            if t["first"] is None:
                t["first"] = time.monotonic()
            end = t["first"] + seconds
        try:
            while time.monotonic() < end:
                try:
                    c.request("POST", "/v1/quotes", body=QUOTE, headers=headers)
                    r = c.getresponse()
                    r.read()
                    mine[r.status] = mine.get(r.status, 0) + 1
                except (OSError, http.client.HTTPException):
                    mine["error"] = mine.get("error", 0) + 1
                    c.close()
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        finally:
            c.close()
            now = time.monotonic()
            with lock:
                t["last"] = max(t["last"], now)
                for k, v in mine.items():
                    counts[k] = counts.get(k, 0) + v

    threads = [threading.Thread(target=one, args=(i,)) for i in range(conns)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(seconds + 60)
    counts["elapsed"] = t["last"] - t["first"]
    return counts


def stored_quotes(pg, key: str) -> int:
    return int(pg.psql(f"SELECT count(*) FROM quotes WHERE api_key_id = '{_key_id(key)}'"))


def check_within_limit(pg, key: str, c: dict, slack: int, what: str) -> None:
    accepted = c.get(201, 0)
    allowed = BURST + RPS * c["elapsed"] + slack
    assert c.get("error", 0) == 0, f"{what}: transport errors: {c}"
    assert set(k for k in c if k != "elapsed") <= {201, 429}, f"{what}: unexpected statuses {c}"
    assert c.get(429, 0) > 0, f"{what}: the flood never hit the limit: {c}"
    # Every 201 is a stored row, and nothing else was stored.
    assert stored_quotes(pg, key) == accepted, f"{what}: rows != 201s ({c})"
    assert accepted <= allowed, (
        f"{what}: {accepted} quotes accepted in {c['elapsed']:.2f} s, at most "
        f"{BURST} + {RPS}/s * elapsed + {slack} = {allowed:.0f} allowed ({c})")
    # The burst itself is always granted (the flood sends far more).
    assert accepted >= BURST, f"{what}: only {accepted} accepted, below the burst ({c})"


def test_limit_holds_across_loops_of_one_process(start_api, migrated):
    """Several loops take from one key's bucket at once: the clock is read
    under the bucket's lock, so out-of-order readings cannot refill it."""
    key = f"sk_rl_{uuid.uuid4().hex}"
    a = start_api({"API_KEYS": key, "API_THREADS": 8, "RATE_LIMIT_RPS": RPS,
                   "RATE_LIMIT_BURST": BURST})
    c = hammer([a.port], key, 4.0)
    check_within_limit(migrated, key, c, slack=5, what="8 loops, 24 connections")


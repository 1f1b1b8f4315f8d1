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

import pytest

from rampart_it import Redis, check_error, wait_for

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


@pytest.mark.parametrize("shared", [0, 1])
def test_limit_holds_across_loops_of_one_process(start_api, migrated, shared):
    """Several loops take from one key's bucket at once. Local bucket
    (RATE_LIMIT_SHARED=0): the clock is read under the bucket's lock, so
    out-of-order readings cannot refill it (the test fails without that).
    Shared bucket: the loops lease from Redis, one token at a time here."""
    key = f"sk_rl_{uuid.uuid4().hex}"
    a = start_api({"API_KEYS": key, "API_THREADS": 8, "RATE_LIMIT_RPS": RPS,
                   "RATE_LIMIT_BURST": BURST, "RATE_LIMIT_SHARED": shared})
    c = hammer([a.port], key, 4.0)
    check_within_limit(migrated, key, c, slack=5 + 8 * shared,
                       what=f"8 loops, 24 connections, RATE_LIMIT_SHARED={shared}")


def test_limit_holds_across_processes_sharing_redis(start_api, migrated):
    """Two api processes on one Redis (same REDIS_PREFIX): their total stays
    within one key's limit (the bucket lives in Redis; each loop leases at
    most RATE_LIMIT_LEASE tokens at a time)."""
    key = f"sk_rl_{uuid.uuid4().hex}"
    prefix = f"it{uuid.uuid4().hex[:10]}"
    env = {"API_KEYS": key, "API_THREADS": 2, "RATE_LIMIT_RPS": RPS, "RATE_LIMIT_BURST": BURST,
           "REDIS_PREFIX": prefix}
    a = start_api(env)
    b = start_api(env)
    c = hammer([a.port, b.port], key, 4.0)
    # Lease slack: each of the 2 x 2 loops may hold one lease of at most
    # max(1, RPS/100) tokens leased but not yet spent (docs/api.md).
    check_within_limit(migrated, key, c, slack=4 * 1 + 5, what="2 processes x 2 loops")


UNKNOWN_QUOTE = "/v1/quotes/quote_00000000-0000-4000-8000-000000000000"


@pytest.fixture
def private_redis(workdir):
    d = workdir / f"redis-{uuid.uuid4().hex[:6]}"
    d.mkdir()
    r = Redis(d)
    r.start()
    try:
        yield r
    finally:
        r.stop()


def _statuses(a, key, n):
    return [a.get(UNKNOWN_QUOTE, key=key).status for _ in range(n)]


def test_shared_bucket_lives_in_redis(start_api, private_redis):
    """The bucket is <prefix>:ratelimit:<key_id> in Redis; a second process
    started later finds it spent; a flushed script cache (NOSCRIPT) is
    reloaded with EVAL."""
    key = f"sk_rl_{uuid.uuid4().hex}"
    prefix = f"it{uuid.uuid4().hex[:10]}"
    env = {"API_KEYS": key, "API_THREADS": 1, "RATE_LIMIT_RPS": 1, "RATE_LIMIT_BURST": 5,
           "REDIS_PREFIX": prefix, "REDIS_URL": private_redis.url}
    a = start_api(env)
    assert _statuses(a, key, 5) == [404] * 5
    rkey = f"{prefix}:ratelimit:{_key_id(key)}"
    assert private_redis.cli("EXISTS", rkey) == "1", f"no {rkey} in Redis"
    ttl = int(private_redis.cli("PTTL", rkey))
    assert 0 < ttl <= 6000, f"{rkey} PTTL {ttl}: expected to expire once full again (<= 6 s)"
    # Another process on the same Redis shares the (now empty) bucket.
    b = start_api(env)
    r = b.get(UNKNOWN_QUOTE, key=key)
    check_error(r, 429, "RATE_LIMITED", what="second process, bucket spent by the first")
    assert int(r.headers["Retry-After"]) >= 1
    # The script cache flushed (as after a Redis restart): EVALSHA gets
    # NOSCRIPT, the api sends the script whole and goes on.
    private_redis.cli("SCRIPT", "FLUSH")
    private_redis.cli("DEL", rkey)
    time.sleep(int(r.headers["Retry-After"]) + 0.2)  # b's 429 holds until then
    assert _statuses(b, key, 5) == [404] * 5
    assert private_redis.cli("EXISTS", rkey) == "1"
    assert _statuses(b, key, 1) == [429]


def test_redis_down_falls_back_to_local_bucket(start_api, private_redis):
    """Redis down: each process limits with its own bucket at the full rate
    (docs/api.md): the burst passes, then 429, never 5xx."""
    key = f"sk_rl_{uuid.uuid4().hex}"
    a = start_api({"API_KEYS": key, "API_THREADS": 2, "RATE_LIMIT_RPS": 1,
                   "RATE_LIMIT_BURST": 5, "REDIS_URL": private_redis.url,
                   "REDIS_TIMEOUT_MS": 500})
    assert _statuses(a, key, 5) == [404] * 5
    assert _statuses(a, key, 1) == [429]
    private_redis.stop()
    assert wait_for(lambda: a.get("/readyz", key=None).status == 503, 10, 0.1)
    # The local bucket starts full: 5 pass (the shared bucket was spent, but
    # this process cannot know it), then 429 (RPS 1: at most a few more).
    got = _statuses(a, key, 12)
    assert set(got) <= {404, 429}, f"statuses with Redis down: {got}"
    assert 5 <= got.count(404) <= 8, f"local bucket with Redis down: {got}"
    assert got[-1] == 429, f"local bucket with Redis down: {got}"
    assert "using the local bucket" in a.output()
    # Redis back: the shared bucket again (a fresh, full one: Redis lost it).
    private_redis.start()
    assert wait_for(lambda: a.get("/readyz", key=None).status == 200, 15, 0.2)
    prefix = a.prefix
    assert wait_for(lambda: a.get(UNKNOWN_QUOTE, key=key).status == 404
                    and private_redis.cli("EXISTS", f"{prefix}:ratelimit:{_key_id(key)}") == "1",
                    10, 0.2), "the shared bucket is not used again once Redis is back"

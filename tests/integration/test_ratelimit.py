"""The per-key rate limit under concurrent load: several event loops of one
api, and several api processes sharing one Redis (issue 13 §1a, docs/api.md).

Each test floods one key with POST /v1/quotes from wrk (scripts/deps.sh
installs it; bench/quotes.lua) over many keep-alive connections for a
bounded time (4 s, loopback only), counts the 201s and the quote rows stored
for the key, and asserts both stay within what a token bucket allows:
burst + rate * elapsed, plus the documented lease slack."""

import hashlib
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from rampart_it import Redis, check_error, request, wait_for

RPS = 50
BURST = 100


def _key_id(key: str) -> str:
    return "key_static_" + hashlib.sha256(key.encode()).hexdigest()[:12]


def hammer_wrk(ports, key: str, seconds: float, conns: int = 32) -> dict:
    """wrk (2 threads, conns keep-alive connections) per port at once, POST /v1/quotes
    for `seconds`: far more pressure than Python threads, so loops contend
    for the bucket as under real load. Counts: 201 (from wrk's totals), 429
    and other (non-2xx), and the elapsed wall time around the runs."""
    lua = Path(__file__).resolve().parents[2] / "bench" / "quotes.lua"
    env = dict(os.environ, BENCH_API_KEY=key)
    t0 = time.monotonic()
    procs = [subprocess.Popen(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s",
                               "-s", str(lua),
                               f"http://127.0.0.1:{p}/v1/quotes"], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for p in ports]
    outs = [p.communicate(timeout=seconds + 60)[0] for p in procs]
    counts = {"elapsed": time.monotonic() - t0, "ports": len(ports)}
    for out in outs:
        total = int(re.search(r"(\d+) requests in", out).group(1))
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                         out)
        bad = int(non2xx.group(1)) if non2xx else 0
        counts[201] = counts.get(201, 0) + total - bad
        counts["non2xx"] = counts.get("non2xx", 0) + bad
        if errs and sum(int(x) for x in errs.groups()):
            counts["error"] = counts.get("error", 0) + sum(int(x) for x in errs.groups())
    # What the apis answered, by status code (wrk only says "non-2xx").
    counts["codes"] = {}
    for p in ports:
        text = request(p, "GET", "/metrics", key=None).body.decode()
        for code, n in re.findall(r'rampart_http_requests_total\{route="/v1/quotes",'
                                  r'method="POST",code="(\d+)"\} (\d+)', text):
            counts["codes"][int(code)] = counts["codes"].get(int(code), 0) + int(n)
    return counts


def stored_quotes(pg, key: str) -> int:
    return int(pg.psql(f"SELECT count(*) FROM quotes WHERE api_key_id = '{_key_id(key)}'"))


def check_within_limit(pg, key: str, c: dict, slack: int, what: str) -> None:
    answered = c.get(201, 0)
    # wrk stops reading at its deadline: requests still in flight may be
    # stored without being counted. Let them finish, then trust the rows.
    prev = -1
    while (n := stored_quotes(pg, key)) != prev:
        prev = n
        time.sleep(0.5)
    accepted = n
    allowed = BURST + RPS * c["elapsed"] + slack
    assert c.get("error", 0) == 0, f"{what}: transport errors: {c}"
    assert set(k for k in c if k not in ("elapsed", "ports", "codes")) <= {201, "non2xx"}, \
        f"{what}: unexpected counts {c}"
    assert set(c["codes"]) <= {201, 429}, f"{what}: statuses other than 201 and 429: {c}"
    assert c.get("non2xx", 0) > 0, f"{what}: the flood never hit the limit: {c}"
    # Every 201 is a stored row; beyond them only requests wrk left unread.
    assert answered <= accepted <= answered + 64 * c["ports"], \
        f"{what}: {accepted} rows for {answered} 201s ({c})"
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
    c = hammer_wrk([a.port], key, 4)
    check_within_limit(migrated, key, c, slack=5 + 8 * shared,
                       what=f"8 loops, wrk -c32, RATE_LIMIT_SHARED={shared}")


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
    c = hammer_wrk([a.port, b.port], key, 4)
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
    a = start_api({"API_KEYS": key, "API_THREADS": 1, "RATE_LIMIT_RPS": 1,
                   "RATE_LIMIT_BURST": 5, "REDIS_URL": private_redis.url,
                   "REDIS_TIMEOUT_MS": 500})
    assert _statuses(a, key, 5) == [404] * 5
    assert _statuses(a, key, 1) == [429]
    private_redis.stop()
    assert wait_for(lambda: a.get("/readyz", key=None).status == 503, 10, 0.1)
    # Redis' last answer (empty until the next token, 1 s at RPS 1) stands
    # until then; after it the loop asks again, cannot, and goes local.
    time.sleep(1.2)
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

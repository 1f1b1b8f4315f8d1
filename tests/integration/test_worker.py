"""The worker against real PostgreSQL, Redis and api processes: the state
machine end to end, failures and refunds, crash and restart recovery, the
http provider against a loopback stub, the relay, quote cleanup."""

import json
import threading
import time
import uuid

import pytest

from rampart_it import wait_for
from worker_it import StubProvider, Worker, start_persistent_redis, worker_env

TERMINAL = ("COMPLETED", "FAILED", "REFUNDED")
HAPPY = ["PENDING", "ONRAMP_PENDING", "ONRAMP_COMPLETE", "OFFRAMP_PENDING", "COMPLETED"]


@pytest.fixture
def stack(start_api, migrated, redis, workdir):
    """stack(api_env=None, worker_env=None, workers=1, redis_srv=None) ->
    (api, [workers]) sharing a fresh REDIS_PREFIX."""
    workers = []

    def start(api_env=None, worker_env_over=None, workers_n=1, redis_srv=None):
        prefix = f"itw{uuid.uuid4().hex[:10]}"
        r = redis_srv or redis
        a = start_api({"REDIS_PREFIX": prefix, "REDIS_URL": r.url, **(api_env or {})})
        ws = []
        for i in range(workers_n):
            w = Worker(worker_env(migrated, r, prefix, worker_env_over), workdir,
                       f"worker-{prefix}-{i}")
            workers.append(w)
            ws.append(w.start())
        return a, ws

    yield start
    problems = []
    for w in workers:
        problems += w.stop_and_check()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def pay(api, dest="acct_dest_1", amount=100000, **extra):
    q = api.quote("USD", "EUR", amount)
    assert q.status == 201, q
    body = {"quote_id": q.body["id"], "source_account": "acct_src_1",
            "destination_account": dest, **extra}
    r = api.post("/v1/payments", body)
    assert r.status == 202, r
    return r.body["id"]


def statuses(pg, ids):
    rows = pg.psql("SELECT id || ' ' || status FROM payments WHERE id IN (%s)"
                   % ",".join(f"'{i}'" for i in ids))
    return dict(line.split(" ") for line in rows.splitlines() if line)


def wait_terminal(pg, ids, timeout):
    last = {}

    def done():
        last["s"] = statuses(pg, ids)
        return len(last["s"]) == len(ids) and all(s in TERMINAL for s in last["s"].values())

    ok = wait_for(done, timeout, 0.2)
    counts = {}
    for s in last["s"].values():
        counts[s] = counts.get(s, 0) + 1
    assert ok, f"not all terminal within {timeout} s: {counts}"
    return last["s"]


def history(api, pid):
    r = api.get(f"/v1/payments/{pid}")
    assert r.status == 200, r
    return r.body


def test_lifecycle_to_completed(stack, migrated):
    a, _ = stack()
    pid = pay(a)
    wait_terminal(migrated, [pid], 20)
    p = history(a, pid)
    assert p["status"] == "COMPLETED"
    assert [h["status"] for h in p["history"]] == HAPPY, p["history"]
    # The API shows milliseconds, and two transitions can share one (an
    # on-ramp settling is followed at once by the off-ramp's initiation):
    # in order there, strictly increasing in the database's microseconds.
    stamps = [h["at"] for h in p["history"]]
    assert stamps == sorted(stamps), stamps
    micros = migrated.psql("SELECT string_agg(to_char(created_at, 'HH24:MI:SS.US'), ' '"
                           f" ORDER BY id) FROM payment_history WHERE payment_id = '{pid}'").split()
    assert micros == sorted(micros) and len(set(micros)) == len(micros), micros
    events = migrated.psql(f"SELECT type FROM events WHERE payment_id = '{pid}' ORDER BY seq")
    assert events.split() == ["payment." + s.lower() for s in HAPPY]


def test_onramp_failure_is_failed(stack, migrated):
    a, _ = stack()
    pid = pay(a, dest="mock:fail_onramp")
    wait_terminal(migrated, [pid], 20)
    p = history(a, pid)
    assert p["status"] == "FAILED" and p["failure_code"] == "ONRAMP_FAILED", p
    assert [h["status"] for h in p["history"]] == ["PENDING", "ONRAMP_PENDING", "FAILED"]
    # The api writes the payment from its columns, the worker's events carry
    # rampart_payment_json: the last event and the answer agree on every field.
    last = migrated.psql("SELECT data::text FROM events WHERE payment_id = "
                         f"'{pid}' ORDER BY seq DESC LIMIT 1")
    assert json.loads(last) == {k: v for k, v in p.items() if k != "history"}, (last, p)


def test_offramp_failure_is_refunded(stack, migrated):
    a, _ = stack()
    pid = pay(a, dest="mock:fail_offramp")
    wait_terminal(migrated, [pid], 20)
    p = history(a, pid)
    assert p["status"] == "REFUNDED", p
    assert [h["status"] for h in p["history"]] == HAPPY[:4] + ["REFUND_PENDING", "REFUNDED"]


def _many(a, n):
    ids = []
    for i in range(n):
        ids.append(pay(a, amount=100000 + i))
    return ids


def _no_duplicate_transitions(pg, ids):
    dup = pg.psql("SELECT count(*) FROM (SELECT payment_id, to_status FROM payment_history"
                  " WHERE payment_id IN (%s) GROUP BY 1, 2 HAVING count(*) > 1) d"
                  % ",".join(f"'{i}'" for i in ids))
    assert dup == "0"
    per = pg.psql("SELECT count(*) FROM payment_history WHERE payment_id IN (%s)"
                  % ",".join(f"'{i}'" for i in ids))
    assert int(per) == 5 * len(ids), f"{per} history rows for {len(ids)} completed payments"


RECOVERY = {"JOB_CLAIM_IDLE_MS": 1000, "RELAY_STALE_SECONDS": 3, "RELAY_INTERVAL_MS": 500,
            "MOCK_SETTLE_MIN_MS": 200, "MOCK_SETTLE_MAX_MS": 800}


def test_kill9_one_of_two_workers(stack, migrated):
    a, (w0, w1) = stack(worker_env_over=RECOVERY, workers_n=2)
    ids = _many(a, 200)
    # Let the workers get going, then kill one in the middle of its steps.
    assert wait_for(lambda: "COMPLETED" in statuses(migrated, ids).values(), 20, 0.1)
    w0.kill9()
    final = wait_terminal(migrated, ids, 60)
    assert set(final.values()) == {"COMPLETED"}, final
    _no_duplicate_transitions(migrated, ids)


def test_redis_restart_loses_nothing(stack, migrated, workdir):
    d = workdir / f"predis-{uuid.uuid4().hex[:6]}"
    d.mkdir()
    r = start_persistent_redis(d)
    try:
        a, _ = stack(worker_env_over=RECOVERY, workers_n=2, redis_srv=r)
        ids = _many(a, 200)
        assert wait_for(lambda: "COMPLETED" in statuses(migrated, ids).values(), 20, 0.1)
        r.stop()
        time.sleep(1.0)
        r.start()  # same port, same data
        final = wait_terminal(migrated, ids, 60)
        assert set(final.values()) == {"COMPLETED"}, final
        _no_duplicate_transitions(migrated, ids)
    finally:
        r.stop()


@pytest.fixture
def stub():
    made = []

    def make(mode="ok", **kw):
        s = StubProvider(mode, **kw).start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def _http_env(s, **over):
    return {"PROVIDER": "http", "PROVIDER_BASE_URL": s.url, "PROVIDER_TIMEOUT_MS": 500,
            "MAX_ATTEMPTS": 4, **over}


def test_http_provider_success(stack, migrated, stub):
    s = stub("ok")
    a, _ = stack(worker_env_over=_http_env(s))
    pid = pay(a)
    assert wait_terminal(migrated, [pid], 20)[pid] == "COMPLETED"
    keys = {k for m, p, k, b in s.requests if m == "POST"}
    assert keys == {f"{pid}:onramp", f"{pid}:offramp"}, s.requests
    p = history(a, pid)
    assert [h["status"] for h in p["history"]] == HAPPY


def test_http_provider_transient_errors_retried(stack, migrated, stub):
    s = stub("flaky", fail_times=2)
    a, _ = stack(worker_env_over=_http_env(s))
    pid = pay(a)
    assert wait_terminal(migrated, [pid], 30)[pid] == "COMPLETED"
    onramp_posts = [k for m, p, k, b in s.requests if m == "POST" and p == "/v1/onramp"]
    assert len(onramp_posts) == 3 and set(onramp_posts) == {f"{pid}:onramp"}, onramp_posts
    assert sum(1 for kind, _, _ in s.legs.values() if kind == "onramp") == 1


def test_http_provider_timeouts_retried(stack, migrated, stub):
    s = stub("slow", fail_times=1, sleep=1.5)
    a, _ = stack(worker_env_over=_http_env(s, PROVIDER_TIMEOUT_MS=300))
    pid = pay(a)
    assert wait_terminal(migrated, [pid], 30)[pid] == "COMPLETED"
    assert s.count("POST", "onramp") >= 2


def test_http_provider_down_goes_to_dlq(stack, migrated, redis, stub):
    s = stub("down")
    a, _ = stack(worker_env_over=_http_env(s, MAX_ATTEMPTS=3))
    pid = pay(a)
    assert wait_terminal(migrated, [pid], 30)[pid] == "FAILED"
    p = history(a, pid)
    assert p["failure_code"] == "PROVIDER_UNAVAILABLE", p
    assert s.count("POST", "onramp") == 3
    dlq = redis.cli("XRANGE", f"{a.prefix}:{{payments}}:dlq", "-", "+")
    assert pid in dlq and "error" in dlq, dlq


def test_http_offramp_rejected_is_refunded(stack, migrated, stub):
    s = stub("reject_offramp")
    a, _ = stack(worker_env_over=_http_env(s))
    pid = pay(a)
    assert wait_terminal(migrated, [pid], 30)[pid] == "REFUNDED"
    assert s.count("POST", "refunds") == 1


def test_replayed_job_is_harmless(stack, migrated, redis):
    a, _ = stack()
    pid = pay(a)
    wait_terminal(migrated, [pid], 20)
    before = migrated.psql(f"SELECT count(*) FROM payment_history WHERE payment_id = '{pid}'")
    for step in ("onramp_initiate", "onramp_poll", "offramp_poll"):
        redis.cli("XADD", f"{a.prefix}:{{payments}}:jobs", "*", "payment_id", pid,
                  "step", step, "attempt", "1", "request_id", "replay")
    time.sleep(1.0)
    after = migrated.psql(f"SELECT count(*) FROM payment_history WHERE payment_id = '{pid}'")
    assert before == after == "5"
    assert history(a, pid)["status"] == "COMPLETED"


def test_malformed_job_goes_to_dlq(stack, redis):
    a, _ = stack()
    redis.cli("XADD", f"{a.prefix}:{{payments}}:jobs", "*", "payment_id", "pay_nope",
              "step", "teleport", "attempt", "1")
    dlq = f"{a.prefix}:{{payments}}:dlq"
    assert wait_for(lambda: "pay_nope" in redis.cli("XRANGE", dlq, "-", "+"), 10, 0.1)


def test_relay_requeues_a_payment_whose_job_was_lost(stack, migrated, redis, workdir):
    # The api commits a payment but its job never reaches a worker (as after
    # a crash between COMMIT and XADD, or a Redis that lost its data).
    a, _ = stack(workers_n=0)
    pid = pay(a)
    redis.cli("DEL", f"{a.prefix}:{{payments}}:jobs")
    migrated.psql(f"UPDATE payments SET updated_at = now() - interval '10 seconds'"
                  f" WHERE id = '{pid}'")
    w = Worker(worker_env(migrated, redis, a.prefix,
                          {"RELAY_STALE_SECONDS": 2, "RELAY_INTERVAL_MS": 200}),
               workdir, f"worker-relay-{a.prefix}").start()
    try:
        assert wait_terminal(migrated, [pid], 20)[pid] == "COMPLETED"
        assert "relayed a stalled payment" in w.stdout_path.read_text()
    finally:
        problems = w.stop_and_check()
        assert not problems, problems


def test_quote_cleanup(stack, migrated):
    a, _ = stack(api_env={"QUOTE_TTL_SECONDS": 1},
                 worker_env_over={"QUOTE_CLEANUP_INTERVAL_SECONDS": 1})
    unused = a.quote("USD", "EUR", 12345).body["id"]
    used = pay(a)
    used_quote = migrated.psql(f"SELECT quote_id FROM payments WHERE id = '{used}'")
    assert wait_for(lambda: migrated.psql(
        f"SELECT count(*) FROM quotes WHERE id = '{unused}'") == "0", 10, 0.2), \
        "the expired, unused quote was not deleted"
    assert migrated.psql(f"SELECT count(*) FROM quotes WHERE id = '{used_quote}'") == "1"
    assert a.get(f"/v1/quotes/{unused}").status == 404
    # Idempotency-Key records go after their 24 h the same way.
    migrated.psql("INSERT INTO idempotency_keys (api_key_id, key, request_hash, expires_at)"
                  " VALUES ('itclean', 'old', 'x', now() - interval '1 second'),"
                  " ('itclean', 'live', 'x', now() + interval '1 hour')")
    assert wait_for(lambda: migrated.psql(
        "SELECT string_agg(key, ',') FROM idempotency_keys WHERE api_key_id = 'itclean'")
        == "live", 10, 0.2), "the expired Idempotency-Key record was not deleted"


def test_worker_metrics_and_probes(stack):
    a, (w,) = stack()
    pay(a)
    from rampart_it import request
    assert request(w.port, "GET", "/healthz", key=None).status == 200
    m = request(w.port, "GET", "/metrics", key=None)
    assert m.status == 200 and b"rampart_jobs" in (m.body if isinstance(m.body, bytes)
                                                   else str(m.body).encode())


@pytest.mark.parametrize("name,value", [("MOCK_FAIL_RATE", "2"), ("MAX_ATTEMPTS", "0"),
                                        ("PROVIDER", "carrier-pigeon"),
                                        ("METRICS_LISTEN", "nope"),
                                        ("MOCK_SETTLE_MAX_MS", "-1"),
                                        ("RELAY_OVERDUE_SECONDS", "0")])
def test_worker_bad_config(migrated, redis, workdir, name, value):
    import subprocess
    from rampart_it import BIN
    env = worker_env(migrated, redis, "itbad", {name: value})
    r = subprocess.run([str(BIN / "rampart-worker")], env=env, capture_output=True, text=True,
                       timeout=20)
    assert r.returncode != 0 and name in r.stderr, (r.returncode, r.stderr)


def test_payment_made_before_any_worker_ran(stack, migrated, redis, workdir):
    # A fresh deployment: the api queues jobs before the first worker ever
    # created the consumer group. They must not be skipped (nor wait for
    # the relay, whose window is minutes).
    a, _ = stack(workers_n=0)
    pid = pay(a)
    w = Worker(worker_env(migrated, redis, a.prefix, {"RELAY_STALE_SECONDS": 3600}),
               workdir, f"worker-late-{a.prefix}").start()
    try:
        assert wait_terminal(migrated, [pid], 20)[pid] == "COMPLETED"
    finally:
        problems = w.stop_and_check()
        assert not problems, problems

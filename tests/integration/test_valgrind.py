"""The release build under valgrind (memcheck): the pg/redis component tests
and a short life of the api daemon (quotes, lookups, bad input, health,
SIGTERM) must show no memory error and no definite leak.

Runs when RAMPART_VALGRIND_BIN names a directory with release binaries
(scripts/test.sh sets it); sanitizer builds cannot run under valgrind."""

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from rampart_it import Api, api_env, stop_process

VG_BIN = os.environ.get("RAMPART_VALGRIND_BIN")
VG_COMPONENTS = os.environ.get("RAMPART_VALGRIND_COMPONENT_BIN")
VALGRIND = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite"]

pytestmark = pytest.mark.skipif(
    not VG_BIN or not shutil.which("valgrind"),
    reason="RAMPART_VALGRIND_BIN not set (make test sets it) or valgrind missing")


@pytest.mark.parametrize("name,var", [("test_pg", "DATABASE_URL"), ("test_redis", "REDIS_URL"),
                                      ("test_jobs", "REDIS_URL"), ("test_httpc", None)])
def test_component_under_valgrind(name, var, pg, redis):
    exe = Path(VG_COMPONENTS or "") / name
    assert exe.exists(), f"{exe} not built (make components)"
    extra = {var: pg.url if var == "DATABASE_URL" else redis.url} if var else {}
    r = subprocess.run(VALGRIND + [str(exe)], env={**os.environ, **extra},
                       capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"{name} under valgrind exited {r.returncode}:\n{out[-6000:]}"


def test_api_under_valgrind(migrated, redis, workdir):
    env = api_env(migrated, redis, {"API_THREADS": 2})
    api = Api(env, workdir, "valgrind-api")
    with open(api.stdout_path, "ab") as out, open(api.stderr_path, "ab") as err:
        api.proc = subprocess.Popen(VALGRIND + [str(Path(VG_BIN) / "rampart-api")], env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)
    try:
        api.wait_ready(60)
        ids = []
        for amount in (100000, 250, 99999999):
            r = api.quote("USD", "EUR", amount, timeout=30)
            assert r.status == 201, r
            ids.append(r.body["id"])
        for qid in ids:
            assert api.get(f"/v1/quotes/{qid}", timeout=30).status == 200
        assert api.quote("USD", "USD", 100, timeout=30).status == 400
        assert api.call("POST", "/v1/quotes", body=b"{nope", timeout=30).status == 400
        assert api.get("/v1/quotes/quote_nope", timeout=30).status == 400
        assert api.get("/health", key=None, timeout=30).status == 200
        assert api.get("/metrics", key=None, timeout=30).status == 200
        assert api.quote("USD", "EUR", 100, key="wrong", timeout=30).status == 401
    finally:
        rc = stop_process(api.proc, signal.SIGTERM, 60)
    err = api.stderr_path.read_text(errors="replace")
    assert rc == 0, f"rampart-api under valgrind exited {rc}:\n{err[-6000:]}"


def test_feeengine_under_valgrind(migrated, redis, workdir):
    """The fee engine's life under valgrind: live and failing market sources,
    Claude's valid, cached, guardrail-breaking and overloaded answers, the
    deterministic fallback, SIGTERM; the api (also under valgrind) asks."""
    import uuid

    from market_stub import MarketStub
    from test_feeengine import fee_env
    from worker_it import Worker

    stub = MarketStub()
    prefix = f"itvgfee{uuid.uuid4().hex[:8]}"
    env = fee_env(migrated, redis, prefix, stub, {"ANTHROPIC_API_KEY": stub.claude_key,
                                                  "FEE_AI_TIMEOUT_MS": "5000"})
    fe = Worker(env, workdir, "valgrind-feeengine")
    aenv = api_env(migrated, redis, {"API_THREADS": 1, "REDIS_PREFIX": prefix,
                                     "FEE_TIMEOUT_MS": "20000"})
    api = Api(aenv, workdir, "valgrind-api-fees")
    with open(fe.stdout_path, "ab") as out, open(fe.stderr_path, "ab") as err:
        fe.proc = subprocess.Popen(VALGRIND + [str(Path(VG_BIN) / "rampart-feeengine")],
                                   env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   start_new_session=True)
    with open(api.stdout_path, "ab") as out, open(api.stderr_path, "ab") as err:
        api.proc = subprocess.Popen(VALGRIND + [str(Path(VG_BIN) / "rampart-api")], env=aenv,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)
    try:
        api.wait_ready(60)
        body = {"amount": 5000, "from_currency": "USD", "to_currency": "EUR"}

        def calc(**kw):
            r = api.post("/v1/fees/calculate", dict(body, **kw), timeout=40)
            assert r.status == 200, r
            return r.body

        assert calc()["source"] in ("ai", "fallback")
        assert calc(amount=5100)["source"] == "ai"  # cached or fresh
        stub.set_mode("claude", "fees_10x")
        assert calc(customer_tier="premium")["source"] == "fallback"
        stub.set_mode("claude", "error", status=529)
        assert calc(customer_tier="enterprise")["source"] == "fallback"
        stub.set_mode("fx", "garbage")
        stub.set_mode("solana", "error")
        stub.circle = "major"
        import time
        time.sleep(3)
        assert api.post("/v1/fees/calculate", body, timeout=40).status in (200, 503)
        assert api.post("/v1/fees/calculate", dict(body, priority="soon"),
                        timeout=40).status == 400
    finally:
        rc_api = stop_process(api.proc, signal.SIGTERM, 60)
        rc_fe = stop_process(fe.proc, signal.SIGTERM, 60)
        stub.close()
    for name, rc, p in (("rampart-api", rc_api, api.stderr_path),
                        ("rampart-feeengine", rc_fe, fe.stderr_path)):
        err = p.read_text(errors="replace")
        assert rc == 0, f"{name} under valgrind exited {rc}:\n{err[-6000:]}"


def test_webhook_under_valgrind(migrated, redis, workdir):
    """The webhook daemon's life under valgrind: relay, signed deliveries, a
    retry after a 500, a 410 that disables its endpoint, SIGTERM."""
    import uuid

    import json

    from rampart_it import wait_for
    from webhook_it import Receiver, add_endpoint, webhook_env
    from worker_it import Worker

    # Other tests leave events without a payment unpublished (no daemon of
    # theirs relays them): they reach every endpoint too. So these receivers
    # judge by event id.
    events = [f"evt_{uuid.uuid4()}" for _ in range(5)]
    failed = set()

    def flaky_answer(n, h, b):
        eid = json.loads(b).get("id")
        if eid in events and eid not in failed:
            failed.add(eid)
            return 500, {}, 0
        return 200, {}, 0

    ok = Receiver()
    flaky = Receiver(flaky_answer)
    gone = Receiver(lambda n, h, b: (410, {}, 0))
    # A key of its own: payments of other tests (the static key's) whose events
    # are still unpublished must not reach these receivers.
    key = f"key_vg_{uuid.uuid4().hex[:8]}"
    eps = [add_endpoint(migrated, r.url, api_key_id=key)[0] for r in (ok, flaky, gone)]
    env = webhook_env(migrated, redis, f"itvgwh{uuid.uuid4().hex[:8]}",
                      {"WEBHOOK_RETRY_SCHEDULE": "1,1", "WEBHOOK_TIMEOUT_MS": "5000"})
    wh = Worker(env, workdir, "valgrind-webhook")
    with open(wh.stdout_path, "ab") as out, open(wh.stderr_path, "ab") as err:
        wh.proc = subprocess.Popen(VALGRIND + [str(Path(VG_BIN) / "rampart-webhook")],
                                   env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   start_new_session=True)
    try:
        for eid in events:
            migrated.psql(f"INSERT INTO events (id, type, data) VALUES "
                          f"('{eid}', 'payment.completed', '{{\"id\": \"pay_vg\"}}')")
        assert wait_for(lambda: len(ok.for_events(events)) == 5, 60, 0.2), ok.requests
        # Each event: a 500, then its retry.
        assert wait_for(lambda: len(flaky.for_events(events)) == 10, 60, 0.2), flaky.requests
        assert wait_for(lambda: migrated.psql(
            f"SELECT enabled FROM webhook_endpoints WHERE id = '{eps[2]}'") == "f", 60, 0.2)
    finally:
        rc = stop_process(wh.proc, signal.SIGTERM, 60)
        migrated.psql("UPDATE webhook_endpoints SET deleted_at = now() WHERE id IN (%s)"
                      % ",".join(f"'{e}'" for e in eps))
        for r in (ok, flaky, gone):
            r.stop()
    err = wh.stderr_path.read_text(errors="replace")
    assert rc == 0, f"rampart-webhook under valgrind exited {rc}:\n{err[-6000:]}"

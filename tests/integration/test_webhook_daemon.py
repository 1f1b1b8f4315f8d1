"""The webhook daemon against real PostgreSQL, Redis, api and worker
processes and loopback receivers: fan-out through the outbox relay,
Standard Webhooks signatures, retries, the DLQ, per-endpoint isolation,
crash recovery, deleted and disabled endpoints, the SSRF guard, config."""

import json
import resource
import subprocess
import time
import uuid

import pytest

from rampart_it import BIN, contract, wait_for
from test_worker import HAPPY, pay, wait_terminal
from webhook_it import (Receiver, Webhook, add_endpoint, add_event, signature, webhook_env)
from worker_it import Worker, worker_env


@pytest.fixture
def hooks(start_api, migrated, redis, workdir):
    """hooks(webhook_env=None, api=False) -> (api or None, webhook daemon),
    sharing a fresh REDIS_PREFIX; with api=True an api and a worker too.
    Endpoints and receivers made through it are retired at teardown."""
    procs, receivers, endpoints = [], [], []

    class H:
        prefix = None

        def start(self, env=None, api=False, name="wh"):
            self.prefix = self.prefix or f"itwh{uuid.uuid4().hex[:10]}"
            a = None
            if api:
                a = start_api({"REDIS_PREFIX": self.prefix, "REDIS_URL": redis.url})
                w = Worker(worker_env(migrated, redis, self.prefix), workdir,
                           f"worker-{self.prefix}")
                procs.append(w)
                w.start()
            d = Webhook(webhook_env(migrated, redis, self.prefix, env), workdir,
                        f"webhook-{self.prefix}-{name}-{len(procs)}")
            procs.append(d)
            d.start()
            return a, d

        def receiver(self, answer=None):
            r = Receiver(answer)
            receivers.append(r)
            return r

        def endpoint(self, url, **kw):
            ep, secret = add_endpoint(migrated, url, **kw)
            endpoints.append(ep)
            return ep, secret

    yield H()
    problems = []
    for p in procs:
        problems += p.stop_and_check()
    if endpoints:
        # As DELETE /v1/webhook_endpoints/{id} does: its pending deliveries
        # are cancelled too (else the next test's daemon finds them overdue
        # and spends its slots cancelling them).
        ids = ",".join(f"'{e}'" for e in endpoints)
        migrated.psql(f"UPDATE webhook_endpoints SET deleted_at = now() WHERE id IN ({ids});"
                      f" UPDATE webhook_deliveries SET state = 'cancelled' WHERE state ="
                      f" 'pending' AND endpoint_id IN ({ids})")
    for r in receivers:
        r.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def attempts(pg, event_id, endpoint_id):
    rows = pg.psql(f"SELECT attempt, coalesce(status_code, 0), coalesce(error, '') "
                   f"FROM webhook_attempts WHERE event_id = '{event_id}' "
                   f"AND endpoint_id = '{endpoint_id}' ORDER BY id")
    return [ln.split("|", 2) for ln in rows.splitlines() if ln]


def delivery_state(pg, event_id, endpoint_id):
    return pg.psql(f"SELECT state || ' ' || attempts FROM webhook_deliveries "
                   f"WHERE event_id = '{event_id}' AND endpoint_id = '{endpoint_id}'")


def check_signed(req, secret):
    h = req["headers"]
    assert h["webhook-id"] == req["json"]["id"]
    assert abs(int(h["webhook-timestamp"]) - time.time()) < 300
    assert h["webhook-signature"] == signature(secret, h["webhook-id"],
                                               h["webhook-timestamp"], req["body"])
    assert h["content-type"] == "application/json"
    assert set(req["json"]) == {"id", "type", "created_at", "data"}
    contract().check_webhook(h, req["body"])  # the webhooks section of docs/openapi.yaml


def test_payment_events_signed_and_filtered(hooks, migrated):
    rcv_all, rcv_done = hooks.receiver(), hooks.receiver()
    _, sec_all = hooks.endpoint(rcv_all.url)
    _, sec_done = hooks.endpoint(rcv_done.url, events=("payment.completed",))
    a, _ = hooks.start(api=True)
    pid = pay(a)
    wait_terminal(migrated, [pid], 30)
    assert wait_for(lambda: len(rcv_all.for_payment(pid)) >= 5, 15, 0.1), rcv_all.requests
    time.sleep(0.5)
    got = rcv_all.for_payment(pid)
    assert sorted(r["json"]["type"] for r in got) == sorted(
        "payment." + s.lower() for s in HAPPY), [r["json"]["type"] for r in got]
    for r in got:
        check_signed(r, sec_all)
        assert r["json"]["data"]["id"] == pid
    done = rcv_done.for_payment(pid)
    assert [r["json"]["type"] for r in done] == ["payment.completed"]
    check_signed(done[0], sec_done)
    assert done[0]["json"]["data"]["status"] == "COMPLETED"
    # Every event was marked published.
    assert migrated.psql(f"SELECT count(*) FROM events WHERE payment_id = '{pid}' "
                         f"AND published_at IS NULL") == "0"


def test_retries_same_id_then_delivered(hooks, migrated):
    rcv = hooks.receiver(lambda n, h, b: (500, {}, 0) if n < 2 else (200, {}, 0))
    ep, secret = hooks.endpoint(rcv.url)
    hooks.start()
    eid = add_event(migrated)
    assert wait_for(lambda: delivery_state(migrated, eid, ep) == "delivered 3", 20, 0.1), \
        (delivery_state(migrated, eid, ep), attempts(migrated, eid, ep))
    got = rcv.for_events([eid])
    assert len(got) == 3
    assert {r["headers"]["webhook-id"] for r in got} == {eid}
    assert len({r["body"] for r in got}) == 1  # the same bytes each time
    for r in got:
        check_signed(r, secret)
    assert [x[:2] for x in attempts(migrated, eid, ep)] == [["1", "500"], ["2", "500"],
                                                             ["3", "200"]]
    assert migrated.psql(f"SELECT delivered_at IS NOT NULL FROM webhook_deliveries "
                         f"WHERE event_id = '{eid}' AND endpoint_id = '{ep}'") == "t"


def test_always_failing_goes_to_dlq(hooks, migrated, redis):
    rcv = hooks.receiver(lambda n, h, b: (503, {}, 0))
    ep, _ = hooks.endpoint(rcv.url)
    hooks.start()
    eid = add_event(migrated)
    assert wait_for(lambda: delivery_state(migrated, eid, ep) == "dead 4", 25, 0.1), \
        delivery_state(migrated, eid, ep)
    assert len(rcv.for_events([eid])) == 4  # the first try and 3 retries
    dlq = redis.cli("XRANGE", f"{hooks.prefix}:{{webhooks}}:dlq", "-", "+")
    assert eid in dlq and ep in dlq, dlq


def test_retry_after_is_honoured(hooks, migrated):
    rcv = hooks.receiver(lambda n, h, b: (429, {"Retry-After": "3"}, 0) if n == 0
                         else (200, {}, 0))
    ep, _ = hooks.endpoint(rcv.url)
    hooks.start()
    eid = add_event(migrated)
    assert wait_for(lambda: len(rcv.for_events([eid])) >= 2, 20, 0.1)
    got = rcv.for_events([eid])
    assert got[1]["at"] - got[0]["at"] >= 2.9


def test_slow_endpoint_does_not_delay_others(hooks, migrated):
    slow = hooks.receiver(lambda n, h, b: (200, {}, 4))
    fast = hooks.receiver()
    slow_ep, _ = hooks.endpoint(slow.url)
    hooks.start({"WEBHOOK_TIMEOUT_MS": "1500", "WEBHOOK_ENDPOINT_CONCURRENCY": "2"})
    slow_ids = [add_event(migrated) for _ in range(10)]  # fills the slow endpoint's cap
    assert wait_for(lambda: len(slow.requests) >= 2, 10, 0.05)
    fast_ep, _ = hooks.endpoint(fast.url)
    eid = add_event(migrated)
    t0 = time.monotonic()
    assert wait_for(lambda: fast.for_events([eid]), 5, 0.02)
    assert time.monotonic() - t0 < 1.5, time.monotonic() - t0
    # The slow one timed out and is being retried.
    assert wait_for(lambda: any("timeout" in (x[2] or "").lower() or "timed out" in x[2].lower()
                                for x in attempts(migrated, slow_ids[0], slow_ep)), 10, 0.1)


def metric_sum(d, name):
    return sum(float(ln.split()[-1]) for ln in d.metrics().splitlines()
               if ln.startswith(name + "{") or ln.startswith(name + " "))


def test_saturated_endpoint_backlog_is_deferred_not_spun(hooks, migrated):
    # Half of WEBHOOK_CONCURRENCY (4) may wait for a dead endpoint's 2 slots;
    # its other jobs are deferred for about the time its backlog takes to
    # drain, which grows while it does not answer. A fixed 50-100 ms deferral
    # read the same 30-odd jobs back ten times a second (1,017 promotions from
    # the delayed set in these 3 s; now about 50).
    dead = hooks.receiver(lambda n, h, b: (200, {}, 5))
    fast = hooks.receiver()
    dead_ep, _ = hooks.endpoint(dead.url)
    _, d = hooks.start({"WEBHOOK_TIMEOUT_MS": "3000", "WEBHOOK_ENDPOINT_CONCURRENCY": "2",
                        "WEBHOOK_CONCURRENCY": "8"})
    ids = [add_event(migrated) for _ in range(40)]
    assert wait_for(lambda: len(dead.requests) >= 2, 10, 0.05)
    # Each deferral comes back through the delayed set (promoted).
    t0, n0 = time.monotonic(), metric_sum(d, "rampart_jobs_promoted_total")
    fast_ep, _ = hooks.endpoint(fast.url)
    eid = add_event(migrated)
    assert wait_for(lambda: fast.for_events([eid]), 5, 0.02)  # the others still get through
    time.sleep(max(0.0, 3 - (time.monotonic() - t0)))
    spun = metric_sum(d, "rampart_jobs_promoted_total") - n0
    assert spun < 200, spun
    assert metric_sum(d, "rampart_webhook_jobs_deferred_total") > 0
    # Deferred, not dropped: the dead endpoint's timed-out attempts are retried.
    assert wait_for(lambda: migrated.psql(
        f"SELECT count(DISTINCT event_id) FROM webhook_attempts WHERE endpoint_id = '{dead_ep}'"
    ) not in ("0", "1", "2", "3"), 15, 0.2)
    assert all(delivery_state(migrated, e, dead_ep).startswith("pending") for e in ids[-3:])


def test_fast_endpoint_burst_is_not_deferred(hooks, migrated):
    # The same limits, but an endpoint that answers at once: once the daemon
    # has seen its pace (and keeps it while the endpoint is idle), a burst far
    # beyond half of WEBHOOK_CONCURRENCY drains in well under FAST_DRAIN_MS
    # (100 ms), so none of it is deferred.
    rcv = hooks.receiver()
    hooks.endpoint(rcv.url)
    _, d = hooks.start({"WEBHOOK_ENDPOINT_CONCURRENCY": "2", "WEBHOOK_CONCURRENCY": "8"})
    # Its pace is a moving average; the first answer (connection set-up)
    # is slow, so a few deliveries go first, one by one.
    for _ in range(16):
        e = add_event(migrated)
        assert wait_for(lambda: rcv.for_events([e]), 10, 0.01)
    time.sleep(0.3)  # idle: its pace is kept
    migrated.psql("INSERT INTO events (id, type, data) SELECT 'evt_' || gen_random_uuid(), "
                  "'payment.completed', '{\"id\": \"pay_burst\"}'::jsonb "
                  "FROM generate_series(1, 40)")
    assert wait_for(lambda: len(rcv.requests) >= 56, 20, 0.05), len(rcv.requests)
    assert metric_sum(d, "rampart_webhook_jobs_deferred_total") == 0


def test_kill9_mid_batch_every_event_delivered(hooks, migrated):
    rcv = hooks.receiver(lambda n, h, b: (200, {}, 0.3))
    ep, _ = hooks.endpoint(rcv.url)
    _, d = hooks.start({"JOB_CLAIM_IDLE_MS": "500", "WEBHOOK_ENDPOINT_CONCURRENCY": "4"})
    ids = [add_event(migrated) for _ in range(30)]
    assert wait_for(lambda: len(rcv.for_events(ids)) >= 4, 10, 0.05)
    d.kill9()
    # Jobs the dead daemon had read are reclaimed (JOB_CLAIM_IDLE_MS); a relay
    # pass it committed without getting its XADDs out is found by the stale
    # pass (WEBHOOK_RELAY_STALE_SECONDS).
    hooks.start({"JOB_CLAIM_IDLE_MS": "500", "WEBHOOK_ENDPOINT_CONCURRENCY": "8",
                 "WEBHOOK_RELAY_STALE_SECONDS": "2"}, name="restarted")
    assert wait_for(lambda: {r["json"]["id"] for r in rcv.for_events(ids)} == set(ids), 40,
                    0.2), len({r["json"]["id"] for r in rcv.for_events(ids)})
    assert wait_for(lambda: migrated.psql(
        "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = '%s' "
        "AND state = 'delivered'" % ep) == "30", 10, 0.2)


def test_deleted_endpoint_gets_nothing_more(hooks, migrated):
    rcv = hooks.receiver(lambda n, h, b: (500, {}, 0))
    ep, _ = hooks.endpoint(rcv.url)
    hooks.start({"WEBHOOK_RETRY_SCHEDULE": "2,2,2"})
    eid = add_event(migrated)
    assert wait_for(lambda: len(rcv.for_events([eid])) == 1, 10, 0.05)
    migrated.psql(f"UPDATE webhook_endpoints SET deleted_at = now() WHERE id = '{ep}'")
    assert wait_for(lambda: delivery_state(migrated, eid, ep).startswith("cancelled"), 10, 0.1)
    eid2 = add_event(migrated)
    time.sleep(3)
    assert len(rcv.for_events([eid])) == 1
    assert rcv.for_events([eid2]) == []
    assert migrated.psql(f"SELECT count(*) FROM webhook_deliveries WHERE event_id = '{eid2}' "
                         f"AND endpoint_id = '{ep}'") == "0"


def test_private_target_refused(hooks, migrated, redis):
    rcv = hooks.receiver()
    ep, _ = hooks.endpoint(rcv.url)
    ep_name, _ = hooks.endpoint(f"http://localhost:{rcv.port}/hook")
    hooks.start({"WEBHOOK_ALLOW_PRIVATE": "0"})
    eid = add_event(migrated)
    for e in (ep, ep_name):
        assert wait_for(lambda: delivery_state(migrated, eid, e) == "dead 1", 10, 0.1), \
            delivery_state(migrated, eid, e)
        (row,) = attempts(migrated, eid, e)
        assert row[1] == "0"
        assert "refused" in row[2] and "127.0.0.1" in row[2] and "private" in row[2] and \
            "WEBHOOK_ALLOW_PRIVATE" in row[2], row
    assert rcv.requests == []
    dlq = redis.cli("XRANGE", f"{hooks.prefix}:{{webhooks}}:dlq", "-", "+")
    assert "refused" in dlq


def test_410_disables_endpoint(hooks, migrated):
    rcv = hooks.receiver(lambda n, h, b: (410, {}, 0))
    ep, _ = hooks.endpoint(rcv.url)
    hooks.start()
    eid = add_event(migrated)
    assert wait_for(lambda: delivery_state(migrated, eid, ep) == "failed 1", 10, 0.1), \
        delivery_state(migrated, eid, ep)
    assert migrated.psql(f"SELECT enabled || ' ' || disabled_reason FROM webhook_endpoints "
                         f"WHERE id = '{ep}'") == "false receiver answered 410 Gone"
    eid2 = add_event(migrated)
    time.sleep(1)
    assert rcv.for_events([eid2]) == []
    assert len(rcv.requests) == 1


def test_metrics_and_sigterm(hooks, migrated):
    rcv = hooks.receiver()
    hooks.endpoint(rcv.url)
    _, d = hooks.start()
    eid = add_event(migrated)
    assert wait_for(lambda: rcv.for_events([eid]), 10, 0.05)
    m = d.metrics()
    for name in ("rampart_webhook_deliveries_total{outcome=\"delivered\"}",
                 "rampart_webhook_latency_seconds_bucket", "rampart_webhook_requests_inflight"):
        assert name in m, m
    # stop_and_check (teardown) asserts SIGTERM exits 0 without sanitizer reports.


def open_files_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        line = next(ln for ln in f if ln.startswith("Max open files"))
    return [int(x) for x in line.split()[3:5]]


@pytest.mark.parametrize("soft,hard", [(200, 4096), (200, 500)])
def test_raises_its_open_file_limit(migrated, redis, workdir, soft, hard):
    # WEBHOOK_CONCURRENCY connections, the pool and the rest need
    # 1024 + 4 + 64 descriptors: the soft limit is raised that far, or to the
    # hard limit with a warning naming both.
    d = Webhook(webhook_env(migrated, redis, f"itfd{uuid.uuid4().hex[:8]}"), workdir,
                f"webhook-fd-{soft}-{hard}")
    d.start(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)))
    try:
        assert open_files_limit(d.proc.pid) == [min(1092, hard), hard]
        warned = "open-file limit below" in d.stderr_path.read_text() + \
            d.stdout_path.read_text()
        assert warned == (hard < 1092)
    finally:
        problems = d.stop_and_check()
    assert not problems, problems


@pytest.mark.parametrize("var,value", [
    ("WEBHOOK_RETRY_SCHEDULE", "5,x"), ("WEBHOOK_TIMEOUT_MS", "0"),
    ("WEBHOOK_ALLOW_PRIVATE", "maybe"), ("WEBHOOK_ENDPOINT_CONCURRENCY", "-1"),
    ("METRICS_LISTEN", "nowhere"), ("WEBHOOK_RELAY_OVERDUE_SECONDS", "0")])
def test_bad_config_exits_naming_variable(migrated, redis, var, value):
    env = webhook_env(migrated, redis, "itbad", {var: value})
    r = subprocess.run([str(BIN / "rampart-webhook")], env=env, capture_output=True, text=True,
                       timeout=20)
    assert r.returncode != 0
    assert var in r.stderr, r.stderr


def test_stale_pass_requeues_a_lost_job(hooks, migrated):
    """A delivery committed by the relay whose job never reached Redis (the
    daemon died between the commit and the XADD) is found by the stale pass
    and delivered."""
    rcv = hooks.receiver()
    ep, secret = hooks.endpoint(rcv.url)
    eid = add_event(migrated)
    # What the relay leaves behind when it dies after its commit: the event
    # published, the delivery pending and never attempted, no job.
    migrated.psql(f"UPDATE events SET published_at = now() WHERE id = '{eid}'")
    migrated.psql(f"INSERT INTO webhook_deliveries (event_id, endpoint_id, updated_at) "
                  f"VALUES ('{eid}', '{ep}', now() - interval '1 hour')")
    _, d = hooks.start({"WEBHOOK_RELAY_STALE_SECONDS": "1"})
    assert wait_for(lambda: delivery_state(migrated, eid, ep) == "delivered 1", 15, 0.1), \
        (delivery_state(migrated, eid, ep), attempts(migrated, eid, ep), d.logs())
    got = rcv.for_events([eid])
    assert len(got) == 1, got
    check_signed(got[0], secret)
    assert "re-queued deliveries whose job was lost" in d.stdout_path.read_text()
    m = d.metrics()
    assert any(ln.startswith("rampart_webhook_jobs_requeued_total") and
               float(ln.split()[-1]) >= 1 for ln in m.splitlines()), m


def test_relay_claims_past_events_no_endpoint_wants(hooks, migrated):
    """A backlog of events that match no endpoint (another tenant's
    payment.onramp_pending) must not hold back the event behind it: a pass
    that comes back full keeps the relay going, matched or not, and the
    first pass runs at start-up. The relay's ticks are an hour apart here,
    so only those passes can deliver it. Before, a full pass without a
    delivery looked empty and the rest waited for the next tick; in the
    bench, 20,000 payments' payment.completed webhooks came 98 s late."""
    rcv = hooks.receiver()
    _, secret = hooks.endpoint(rcv.url, events=("payment.completed",))
    pid = "pay_" + str(uuid.uuid4())
    migrated.psql(
        "INSERT INTO payments (id, api_key_id, quote_id, status, amount, currency,"
        " payout_amount, payout_currency, exchange_rate, platform_fee, onramp_fee,"
        " offramp_fee, total_fees, chain, source_account, destination_account)"
        f" VALUES ('{pid}', 'key_it_nobody_{uuid.uuid4().hex[:8]}', 'quote_' || gen_random_uuid(),"
        " 'ONRAMP_PENDING', 10000, 'USD', 9000, 'EUR', 0.9, 200, 70, 50, 320, 'base', 'a', 'b')")
    migrated.psql("INSERT INTO events (id, type, payment_id, data)"
                  " SELECT 'evt_' || gen_random_uuid(), 'payment.onramp_pending',"
                  f" '{pid}', '{{}}'::jsonb FROM generate_series(1, 300)")
    eid = add_event(migrated)  # no payment: to every endpoint subscribed to its type
    _, d = hooks.start({"WEBHOOK_RELAY_INTERVAL_MS": "3600000"})
    assert wait_for(lambda: len(rcv.for_events([eid])) == 1, 15, 0.1), d.logs()
    check_signed(rcv.for_events([eid])[0], secret)
    assert migrated.psql(f"SELECT count(*) FROM events WHERE payment_id = '{pid}'"
                         " AND published_at IS NULL") == "0"
    m = d.metrics()
    assert any(ln.startswith("rampart_webhook_events_relayed_total") and
               float(ln.split()[-1]) >= 301 for ln in m.splitlines()), m


def test_relay_plans_for_the_tables_it_finds(private_pg, redis, workdir):
    """The relay's passes run from start-up, when events and payments may be
    empty. As prepared statements they settled on a generic plan made then
    (scans of events and payments in a nested loop), kept until an ANALYZE:
    when 5,000 payments' 20,000 events came at once, every pass ran into
    DB_QUERY_TIMEOUT_MS and nothing was relayed. Now each pass is planned
    for the tables as they are. Autovacuum is off for both tables here, so
    no ANALYZE can stand in for that; the tables start analyzed while empty,
    as autovacuum (or the bench's VACUUM ANALYZE) leaves a quiet, new
    database."""
    private_pg.psql("ALTER TABLE events SET (autovacuum_enabled = false);"
                    " ALTER TABLE payments SET (autovacuum_enabled = false)")
    private_pg.psql("VACUUM ANALYZE events")
    private_pg.psql("VACUUM ANALYZE payments")
    add_endpoint(private_pg, "http://127.0.0.1:9/hook", events=("payment.refunded",),
                 api_key_id="k")
    prefix = f"itwh{uuid.uuid4().hex[:10]}"
    d = Webhook(webhook_env(private_pg, redis, prefix, {"WEBHOOK_RELAY_INTERVAL_MS": "20",
                                                         "DB_QUERY_TIMEOUT_MS": "2000"}),
                workdir, f"webhook-{prefix}-plans")
    d.start()
    try:
        time.sleep(1.5)  # dozens of passes over the empty tables
        private_pg.psql(
            "WITH p AS (INSERT INTO payments (id, api_key_id, quote_id, status, amount, currency,"
            " payout_amount, payout_currency, exchange_rate, platform_fee, onramp_fee,"
            " offramp_fee, total_fees, chain, source_account, destination_account)"
            " SELECT 'pay_' || gen_random_uuid(), 'k', 'quote_' || gen_random_uuid(), 'COMPLETED',"
            "  10000, 'USD', 9000, 'EUR', 0.9, 200, 70, 50, 320, 'base', 'a', 'b'"
            " FROM generate_series(1, 5000) RETURNING id)"
            " INSERT INTO events (id, type, payment_id, data)"
            " SELECT 'evt_' || gen_random_uuid(), t, p.id, '{}'::jsonb FROM p, unnest(ARRAY["
            "  'payment.onramp_pending', 'payment.onramp_complete', 'payment.offramp_pending',"
            "  'payment.completed']) t")

        def unpublished():
            return int(private_pg.psql("SELECT count(*) FROM events WHERE published_at IS NULL"))
        assert wait_for(lambda: unpublished() == 0, 60, 0.5), (unpublished(), d.logs())
        assert "relay pass failed" not in d.stdout_path.read_text(), d.logs()
    finally:
        problems = d.stop_and_check()
    assert not problems, problems

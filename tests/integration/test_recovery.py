"""Bounded recovery after a lost job (issue 13 §1b, docs/operations.md
"Recovery"): a payment or a webhook delivery whose job vanished from Redis
(a failed XADD/ZADD while Redis was down, a restart that lost its last
writes) is found by the relays' overdue pass within seconds, not after
the long stale windows (kept at an hour here, so only the overdue pass can
rescue them)."""

import time

from rampart_it import wait_for
from test_worker import pay, stack, statuses, wait_terminal  # noqa: F401 (fixture)
from webhook_it import add_event
from test_webhook_daemon import attempts, delivery_state, hooks  # noqa: F401 (fixture)
from worker_it import StubProvider, Worker, worker_env

LONG_STALE = {"RELAY_STALE_SECONDS": 3600, "RELAY_OVERDUE_SECONDS": 2,
              "RELAY_INTERVAL_MS": 200}


def _history_ok(pg, ids):
    # Each payment went through its states once: lost jobs re-queued twice
    # (a relayed job and a late original) are dropped by the compare-and-set.
    dup = pg.psql("SELECT count(*) FROM (SELECT payment_id, to_status FROM payment_history"
                  " WHERE payment_id IN (%s) GROUP BY 1, 2 HAVING count(*) > 1) d"
                  % ",".join(f"'{i}'" for i in ids))
    assert dup == "0"
    n = pg.psql("SELECT count(*) FROM payment_history WHERE payment_id IN (%s)"
                % ",".join(f"'{i}'" for i in ids))
    assert int(n) == 5 * len(ids), n


def test_lost_first_jobs_are_requeued_when_overdue(stack, migrated, redis, workdir):
    # The api accepted payments but their jobs never reached a worker (the
    # stream is deleted, as by a Redis that lost its data).
    a, _ = stack(workers_n=0)
    ids = [pay(a) for _ in range(20)]
    redis.cli("DEL", f"{a.prefix}:{{payments}}:jobs")
    w = Worker(worker_env(migrated, redis, a.prefix, LONG_STALE), workdir,
               f"worker-overdue-{a.prefix}").start()
    try:
        t0 = time.monotonic()
        final = wait_terminal(migrated, ids, 40)
        assert set(final.values()) == {"COMPLETED"}, final
        print(f"recovered {len(ids)} payments in {time.monotonic() - t0:.1f} s")
        assert "relayed a stalled payment" in w.stdout_path.read_text()
        _history_ok(migrated, ids)
    finally:
        problems = w.stop_and_check()
        assert not problems, problems


def test_backlog_is_not_taken_for_lost_jobs(stack, migrated, redis, workdir):
    # Payments whose jobs wait unread behind a backlog are overdue by their
    # next_due_at, but nothing is lost: the overdue pass counts from the
    # time up to which the queue has been read, and re-queues none of them
    # (before, it queued every payment not reached within the overdue
    # window again: duplicates for the compare-and-set to drop).
    a, _ = stack(workers_n=0)
    ids = [pay(a) for _ in range(12)]
    provider = StubProvider(settle=0, delay=0.25).start()
    w = Worker(worker_env(migrated, redis, a.prefix, {
        **LONG_STALE, "RELAY_OVERDUE_SECONDS": 1, "RELAY_INTERVAL_MS": 100,
        "WORKER_CONCURRENCY": 1, "PROVIDER": "http", "PROVIDER_BASE_URL": provider.url,
        "POLL_MIN_MS": 0, "POLL_MAX_MS": 1}), workdir, f"worker-backlog-{a.prefix}").start()
    try:
        final = wait_terminal(migrated, ids, 60)
        assert set(final.values()) == {"COMPLETED"}, final
        log = w.stdout_path.read_text()
        assert "relayed a stalled payment" not in log, \
            [line for line in log.splitlines() if "relayed a stalled payment" in line][:3]
        _history_ok(migrated, ids)
    finally:
        provider.stop()
        problems = w.stop_and_check()
        assert not problems, problems


def test_lost_scheduled_polls_are_requeued_when_overdue(stack, migrated, redis):
    # Payments wait on a slow leg with their next poll in the delayed set;
    # the set is lost. The payments' next_due_at finds them again.
    a, _ = stack(worker_env_over={**LONG_STALE, "MOCK_SETTLE_MIN_MS": 3000,
                                  "MOCK_SETTLE_MAX_MS": 3000, "POLL_MIN_MS": 1500,
                                  "POLL_MAX_MS": 1500})
    ids = [pay(a) for _ in range(20)]
    delayed = f"{a.prefix}:{{payments}}:delayed"
    assert wait_for(lambda: set(statuses(migrated, ids).values()) == {"ONRAMP_PENDING"}
                    and int(redis.cli("ZCARD", delayed)) == len(ids), 20, 0.05), \
        (statuses(migrated, ids), redis.cli("ZCARD", delayed))
    redis.cli("DEL", delayed)
    final = wait_terminal(migrated, ids, 40)
    assert set(final.values()) == {"COMPLETED"}, final
    _history_ok(migrated, ids)


def test_lost_webhook_retry_is_requeued_when_overdue(hooks, migrated, redis):  # noqa: F811
    # The first attempt fails; its retry (a delayed job) is lost. Before,
    # only never-attempted deliveries were ever looked for again.
    # Only this test's event: earlier tests' payments left events unpublished.
    migrated.psql("UPDATE events SET published_at = now() WHERE published_at IS NULL")
    rcv = hooks.receiver(lambda n, h, b: (500, {}, 0) if n < 1 else (200, {}, 0))
    ep, _ = hooks.endpoint(rcv.url)
    _, d = hooks.start({"WEBHOOK_RETRY_SCHEDULE": "3,3", "WEBHOOK_RELAY_STALE_SECONDS": 3600,
                        "WEBHOOK_RELAY_OVERDUE_SECONDS": 2})
    delayed = f"{hooks.prefix}:{{webhooks}}:delayed"
    eid = add_event(migrated)

    # Our delivery's retry, by its event id: the daemon's overdue pass may
    # also have re-queued (and scheduled retries of) earlier tests' pending
    # deliveries in the shared database, so the set can hold more than ours.
    def our_retry():
        return [m for m in redis.cli("ZRANGE", delayed, "0", "-1").splitlines() if eid in m]

    assert wait_for(lambda: delivery_state(migrated, eid, ep) == "pending 1" and our_retry(),
                    20, 0.02), (delivery_state(migrated, eid, ep), redis.cli("ZRANGE", delayed, "0", "-1"))
    for m in our_retry():
        redis.cli("ZREM", delayed, m)
    assert wait_for(lambda: delivery_state(migrated, eid, ep) == "delivered 2", 20, 0.1), \
        (delivery_state(migrated, eid, ep), attempts(migrated, eid, ep))
    assert [x[:2] for x in attempts(migrated, eid, ep)] == [["1", "500"], ["2", "200"]]
    assert "re-queued deliveries whose next attempt was overdue" in d.stdout_path.read_text()

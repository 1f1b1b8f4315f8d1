"""tests/invariants/check.py (issue 13 §2) on a healthy run of every daemon
(it passes) and on copies of that database corrupted on purpose, one rule
at a time (it fails, naming the rule)."""

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from rampart_it import wait_for
from test_worker import wait_terminal
from webhook_it import Receiver, Webhook, add_endpoint, webhook_env
from worker_it import Worker, worker_env

CHECK = Path(__file__).resolve().parents[1] / "invariants" / "check.py"


def run_check(url, *args):
    r = subprocess.run([sys.executable, str(CHECK), "--database-url", url, *args],
                       capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout + r.stderr


def pay(api, dest, key):
    q = api.quote("USD", "EUR", 100000)
    assert q.status == 201, q
    body = {"quote_id": q.body["id"], "source_account": "acct_src_1",
            "destination_account": dest}
    r = api.post("/v1/payments", body, headers={"Idempotency-Key": key})
    assert r.status == 202, r
    return r.body["id"]


@pytest.fixture
def healthy(private_pg, start_api, redis, workdir, tmp_path):
    """A finished run on a private database: completed, failed and refunded
    payments, each event delivered to a receiver. Returns (pg, ids, files)."""
    prefix = f"itinv{uuid.uuid4().hex[:8]}"
    rcv = Receiver()
    ep, _ = add_endpoint(private_pg, rcv.url)
    a = start_api({"REDIS_PREFIX": prefix}, pg=private_pg)
    procs = [Worker(worker_env(private_pg, redis, prefix), workdir, f"worker-{prefix}"),
             Webhook(webhook_env(private_pg, redis, prefix), workdir, f"webhook-{prefix}")]
    try:
        for p in procs:
            p.start()
        client = []
        ids = []
        for i, dest in enumerate(["acct_dest_1"] * 4 + ["mock:fail_onramp", "mock:fail_offramp"]):
            key = f"inv-{prefix}-{i}"
            ids.append(pay(a, dest, key))
            client.append(f"{key} {ids[-1]}")
        # A replay of the first key answers the same payment.
        r = a.post("/v1/payments", {"quote_id": "quote_x", "source_account": "s",
                                    "destination_account": "d"},
                   headers={"Idempotency-Key": f"inv-{prefix}-0"})
        wait_terminal(private_pg, ids, 60)
        n_events = lambda: int(private_pg.psql("SELECT count(*) FROM events"))  # noqa: E731
        assert wait_for(lambda: private_pg.psql(
            "SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'")
            == str(n_events()), 30, 0.2)
        received = tmp_path / "received.txt"
        received.write_text("".join(q["headers"]["webhook-id"] + "\n" for q in rcv.requests))
        clog = tmp_path / "client.txt"
        clog.write_text("\n".join(client) + "\n")
        if r.status == 202:
            clog.write_text(clog.read_text() + f"inv-{prefix}-0 {r.body['id']}\n")
    finally:
        problems = []
        for p in procs:
            problems += p.stop_and_check()
        problems += a.stop_and_check()  # no connection left: the copies need none
        rcv.stop()
        assert not problems, problems
    return private_pg, ids, {"received": received, "client": clog}


def test_healthy_run_passes_then_each_corruption_fails(healthy):
    pg, ids, files = healthy
    args = ["--received", str(files["received"]), "--client-log", str(files["client"])]
    rc, out = run_check(pg.url, *args)
    assert rc == 0, out
    for rule in ("path", "terminal", "payout", "refund", "webhooks", "quote_once",
                 "idempotency"):
        assert f"checked {rule}" in out, out
    assert "6 payments" in out, out

    completed = pg.psql("SELECT id FROM payments WHERE status = 'COMPLETED' ORDER BY id"
                        " LIMIT 2").splitlines()
    failed = pg.psql("SELECT id FROM payments WHERE status = 'FAILED'")
    refunded = pg.psql("SELECT id FROM payments WHERE status = 'REFUNDED'")
    c0, c1 = completed
    corruptions = {
        "path": f"DELETE FROM payment_history WHERE payment_id = '{c0}'"
                f" AND to_status = 'ONRAMP_COMPLETE'",
        "terminal": f"DELETE FROM payment_history WHERE payment_id = '{failed}'"
                    f" AND to_status = 'FAILED'; DELETE FROM events WHERE payment_id ="
                    f" '{failed}' AND type = 'payment.failed'; UPDATE payments SET status ="
                    f" 'ONRAMP_PENDING' WHERE id = '{failed}'",
        "payout": f"UPDATE payments SET payout_amount = payout_amount + 1 WHERE id = '{c0}'",
        "refund": f"UPDATE payments SET refund_ref = NULL WHERE id = '{refunded}'",
        "webhooks": f"DELETE FROM webhook_deliveries WHERE event_id = (SELECT id FROM events"
                    f" WHERE payment_id = '{c0}' AND type = 'payment.completed')",
        "quote_once": f"ALTER TABLE payments DROP CONSTRAINT payments_quote_id_key;"
                      f" UPDATE payments SET quote_id = (SELECT quote_id FROM payments"
                      f" WHERE id = '{c1}') WHERE id = '{c0}'",
        "idempotency": f"INSERT INTO idempotency_keys (api_key_id, key, request_hash,"
                       f" payment_id, expires_at) VALUES ('k', 'again', 'h', '{c0}',"
                       f" now() + interval '1 hour')",
    }
    for rule, sql in corruptions.items():
        db = f"corrupt_{rule}"
        pg.psql(f"CREATE DATABASE {db} TEMPLATE rampart", db="postgres")
        try:
            pg.psql(sql, db=db)
            url = pg.url.rsplit("/", 1)[0] + f"/{db}"
            rc, out = run_check(url, *args)
            assert rc == 1, (rule, out)
            assert f"VIOLATION {rule}:" in out, (rule, out)
            failed_rules = out.strip().splitlines()[-1]
            assert failed_rules == f"invariants: FAILED: {rule}", (rule, out)
        finally:
            pg.psql(f"DROP DATABASE {db}", db="postgres")
    # A receiver that missed a webhook-id, a client that saw a key answered
    # with two payments.
    lines = files["received"].read_text().splitlines()
    files["received"].write_text("\n".join(lines[1:]) + "\n")
    rc, out = run_check(pg.url, "--received", str(files["received"]))
    assert rc == 1 and "invariants: FAILED: webhooks" in out, out
    files["client"].write_text(files["client"].read_text() + f"inv-x {c0}\ninv-x {c1}\n")
    rc, out = run_check(pg.url, "--client-log", str(files["client"]))
    assert rc == 1 and "invariants: FAILED: idempotency" in out, out


def test_unreachable_database_is_not_a_pass():
    rc, out = run_check("postgres://nobody@127.0.0.1:1/none")
    assert rc == 2, out

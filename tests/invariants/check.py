#!/usr/bin/python3
"""Read-only money and delivery invariants of a rampart deployment (issue 13
section 2). Usable against any deployment: it only runs SELECTs (psql,
in a read-only transaction) and, with REDIS_URL, read-only redis-cli
commands.

    DATABASE_URL=postgres://... [REDIS_URL=redis://...] [REDIS_PREFIX=rampart] \\
      /usr/bin/python3 tests/invariants/check.py [--received FILE]... \\
      [--client-log FILE] [--not-idle] [--since TIMESTAMP]

Rules (each violation is printed with the rule's name and a few samples):

  path         every payment's history is one path of the SPEC section 5
               machine from PENDING: each row leaves the state the previous
               one entered, along an allowed edge, no state twice, ending in
               the payment's current status; one event per state entered
  terminal     (unless --not-idle) every accepted payment is terminal, every
               event published, no webhook delivery left pending
  payout       each completed payment's payout and fees equal its quote's
               guaranteed payout and fees (amount, currency, rate too)
  refund       every refunded payment had its on-ramp settled and is covered
               by a refund (refund_ref, REFUND_PENDING -> REFUNDED); every
               payment whose on-ramp settled ends COMPLETED or REFUNDED
  webhooks     every published event has a delivery for every live endpoint
               that matches it (type, tenant, endpoint older than the event)
               and, when idle, each is delivered; with --received FILE (the
               webhook-id of each request a receiver got, one per line) each
               delivered event's id is in a receiver's log
  quote_once   no quote used by two payments; every payment's quote marked used
  idempotency  no Idempotency-Key mapped to two payments and no payment
               created by two keys; with --client-log FILE (lines "key
               payment_id" as a client saw its 2xx answers) no key answered
               with two payment ids

Prints what it checked (counts) and exits 1 on any violation, 2 when it
cannot run (no psql, database unreachable).
"""

import argparse
import os
import shutil
import subprocess
import sys

TERMINAL = ("COMPLETED", "FAILED", "REFUNDED")
EDGES = {
    (None, "PENDING"),
    ("PENDING", "ONRAMP_PENDING"), ("PENDING", "FAILED"),
    ("ONRAMP_PENDING", "ONRAMP_COMPLETE"), ("ONRAMP_PENDING", "FAILED"),
    ("ONRAMP_COMPLETE", "OFFRAMP_PENDING"), ("ONRAMP_COMPLETE", "REFUND_PENDING"),
    ("OFFRAMP_PENDING", "COMPLETED"), ("OFFRAMP_PENDING", "REFUND_PENDING"),
    ("REFUND_PENDING", "REFUNDED"),
}
SAMPLES = 5


class Db:
    def __init__(self, url: str):
        self.url = url
        self.psql = shutil.which("psql") or "/usr/bin/psql"

    def rows(self, sql: str) -> list:
        """Runs sql read-only; returns rows as lists of strings."""
        script = "BEGIN TRANSACTION READ ONLY;\n" + sql.rstrip().rstrip(";") + ";\nCOMMIT;\n"
        r = subprocess.run([self.psql, "-X", "-q", "-A", "-t", "-F", "\x1f", "-v",
                            "ON_ERROR_STOP=1", "-d", self.url],
                           input=script, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {r.stderr.strip()}")
        out = [ln for ln in r.stdout.split("\n") if ln and ln not in ("BEGIN", "COMMIT")]
        return [ln.split("\x1f") for ln in out]

    def one(self, sql: str) -> str:
        rows = self.rows(sql)
        return rows[0][0] if rows else ""


class Checker:
    def __init__(self, db: Db, idle: bool, since: str):
        self.db = db
        self.idle = idle
        self.since = since  # only payments/events created at or after this (SQL timestamptz)
        self.violations = {}
        self.checked = []

    def where_since(self, col: str) -> str:
        return f"{col} >= '{self.since}'::timestamptz" if self.since else "true"

    def fail(self, rule: str, what: str, samples: list):
        if samples:
            self.violations.setdefault(rule, []).append((what, samples))

    def count(self, sql: str) -> int:
        return int(self.db.one(sql) or 0)

    def sample(self, sql: str) -> list:
        return [" ".join(r) for r in self.db.rows(f"{sql} LIMIT {SAMPLES}")]

    def note(self, rule: str, text: str):
        self.checked.append((rule, text))

    # ---- rules ----------------------------------------------------------

    def path(self):
        since = self.where_since("p.created_at")
        n = self.count(f"SELECT count(*) FROM payments p WHERE {since}")
        h = self.count(f"SELECT count(*) FROM payment_history x JOIN payments p"
                       f" ON p.id = x.payment_id WHERE {since}")
        edges = " OR ".join(
            f"(from_status IS NULL AND to_status = '{b}')" if a is None else
            f"(from_status = '{a}' AND to_status = '{b}')" for a, b in sorted(
                EDGES, key=lambda e: (e[0] or "", e[1])))
        steps = (f"SELECT x.payment_id, x.from_status, x.to_status, x.id,"
                 f" lag(x.to_status) OVER w AS prev, row_number() OVER w AS n"
                 f" FROM payment_history x JOIN payments p ON p.id = x.payment_id"
                 f" WHERE {since} WINDOW w AS (PARTITION BY x.payment_id ORDER BY x.id)")
        self.fail("path", "a transition not allowed by the machine", self.sample(
            f"SELECT payment_id, coalesce(from_status, 'NULL'), to_status FROM ({steps}) s"
            f" WHERE NOT ({edges})"))
        self.fail("path", "a transition that does not leave the previous state (skipped)",
                  self.sample(f"SELECT payment_id, coalesce(prev, 'NULL'), coalesce(from_status,"
                              f" 'NULL'), to_status FROM ({steps}) s"
                              f" WHERE n > 1 AND from_status IS DISTINCT FROM prev"))
        self.fail("path", "a history that does not start at PENDING", self.sample(
            f"SELECT payment_id, to_status FROM ({steps}) s WHERE n = 1"
            f" AND (from_status IS NOT NULL OR to_status <> 'PENDING')"))
        self.fail("path", "a state entered twice (repeated transition)", self.sample(
            f"SELECT x.payment_id, x.to_status, count(*) FROM payment_history x"
            f" JOIN payments p ON p.id = x.payment_id WHERE {since}"
            f" GROUP BY 1, 2 HAVING count(*) > 1"))
        self.fail("path", "a payment whose status is not where its history ends",
                  self.sample(f"SELECT p.id, p.status, coalesce(l.to_status, 'no history')"
                              f" FROM payments p LEFT JOIN LATERAL (SELECT to_status FROM"
                              f" payment_history x WHERE x.payment_id = p.id ORDER BY x.id DESC"
                              f" LIMIT 1) l ON true WHERE {since}"
                              f" AND l.to_status IS DISTINCT FROM p.status"))
        self.fail("path", "a state entered without exactly one event", self.sample(
            f"SELECT x.payment_id, x.to_status, (SELECT count(*) FROM events e"
            f" WHERE e.payment_id = x.payment_id AND e.type = 'payment.' || lower(x.to_status))"
            f" AS n FROM payment_history x JOIN payments p ON p.id = x.payment_id"
            f" WHERE {since} AND (SELECT count(*) FROM events e WHERE e.payment_id ="
            f" x.payment_id AND e.type = 'payment.' || lower(x.to_status)) <> 1"))
        self.note("path", f"{n} payments, {h} transitions")

    def terminal(self):
        if not self.idle:
            self.note("terminal", "skipped (--not-idle)")
            return
        since = self.where_since("p.created_at")
        self.fail("terminal", "a payment not terminal although the system is idle",
                  self.sample(f"SELECT p.id, p.status, p.updated_at FROM payments p"
                              f" WHERE {since} AND p.status NOT IN {TERMINAL}"
                              f" ORDER BY p.created_at"))
        self.fail("terminal", "an idempotency record whose payment does not exist",
                  self.sample("SELECT k.key, k.payment_id FROM idempotency_keys k"
                              " WHERE k.payment_id IS NOT NULL AND NOT EXISTS"
                              " (SELECT 1 FROM payments p WHERE p.id = k.payment_id)"))
        self.fail("terminal", "an event never published (outbox not drained)",
                  self.sample(f"SELECT e.id, e.type FROM events e WHERE"
                              f" {self.where_since('e.created_at')}"
                              f" AND e.published_at IS NULL"))
        by = self.db.rows(f"SELECT p.status, count(*) FROM payments p WHERE {since}"
                          f" GROUP BY 1 ORDER BY 1")
        self.note("terminal", "payments by status: " +
                  (", ".join(f"{s} {c}" for s, c in by) or "none"))

    def payout(self):
        since = self.where_since("p.created_at")
        n = self.count(f"SELECT count(*) FROM payments p WHERE {since}"
                       f" AND p.status = 'COMPLETED'")
        self.fail("payout", "a completed payment whose quote is gone", self.sample(
            f"SELECT p.id, p.quote_id FROM payments p WHERE {since} AND p.status = 'COMPLETED'"
            f" AND NOT EXISTS (SELECT 1 FROM quotes q WHERE q.id = p.quote_id)"))
        self.fail("payout", "a payout or fees that differ from the quote's", self.sample(
            f"SELECT p.id, p.payout_amount, q.guaranteed_payout, p.total_fees, q.total_fees"
            f" FROM payments p JOIN quotes q ON q.id = p.quote_id"
            f" WHERE {since} AND p.status = 'COMPLETED' AND ("
            f" p.payout_amount <> q.guaranteed_payout OR p.payout_currency <> q.payout_currency"
            f" OR p.amount <> q.amount OR p.currency <> q.currency"
            f" OR p.exchange_rate <> q.exchange_rate OR p.platform_fee <> q.platform_fee"
            f" OR p.onramp_fee <> q.onramp_fee OR p.offramp_fee <> q.offramp_fee"
            f" OR p.total_fees <> q.total_fees"
            f" OR p.total_fees <> p.platform_fee + p.onramp_fee + p.offramp_fee)"))
        self.note("payout", f"{n} completed payments against their quotes")

    def refund(self):
        since = self.where_since("p.created_at")
        n = self.count(f"SELECT count(*) FROM payments p WHERE {since}"
                       f" AND p.status = 'REFUNDED'")
        self.fail("refund", "a refunded payment without a settled on-ramp or a refund",
                  self.sample(
                      f"SELECT p.id, coalesce(p.onramp_ref, '-'), coalesce(p.refund_ref, '-')"
                      f" FROM payments p WHERE {since} AND p.status = 'REFUNDED' AND ("
                      f" p.onramp_ref IS NULL OR p.refund_ref IS NULL"
                      f" OR NOT EXISTS (SELECT 1 FROM payment_history x WHERE x.payment_id ="
                      f"  p.id AND x.to_status = 'ONRAMP_COMPLETE')"
                      f" OR NOT EXISTS (SELECT 1 FROM payment_history x WHERE x.payment_id ="
                      f"  p.id AND x.from_status = 'REFUND_PENDING'"
                      f"  AND x.to_status = 'REFUNDED'))"))
        if self.idle:
            self.fail("refund", "an on-ramp settled but neither paid out nor refunded",
                      self.sample(
                          f"SELECT p.id, p.status FROM payments p WHERE {since}"
                          f" AND p.status NOT IN ('COMPLETED', 'REFUNDED') AND EXISTS"
                          f" (SELECT 1 FROM payment_history x WHERE x.payment_id = p.id"
                          f"  AND x.to_status = 'ONRAMP_COMPLETE')"))
        self.note("refund", f"{n} refunded payments")

    def webhooks(self, received_files: list):
        ev_since = self.where_since("e.created_at")
        # Matching as the relay fans out: live enabled endpoint, tenant, type,
        # and the endpoint existed when the event was published.
        match = (f"FROM events e LEFT JOIN payments p ON p.id = e.payment_id"
                 f" JOIN webhook_endpoints w ON w.enabled AND w.deleted_at IS NULL"
                 f"  AND (p.api_key_id IS NULL OR w.api_key_id = p.api_key_id)"
                 f"  AND (e.type = ANY (w.events) OR '*' = ANY (w.events))"
                 f"  AND w.created_at < e.published_at"
                 f" WHERE {ev_since} AND e.published_at IS NOT NULL")
        pairs = self.count(f"SELECT count(*) {match}")
        self.fail("webhooks", "a published event without a delivery to a matching endpoint",
                  self.sample(f"SELECT e.id, w.id {match} AND NOT EXISTS (SELECT 1 FROM"
                              f" webhook_deliveries d WHERE d.event_id = e.id"
                              f" AND d.endpoint_id = w.id)"))
        if self.idle:
            self.fail("webhooks", "a delivery to a live endpoint not delivered",
                      self.sample(f"SELECT e.id, w.id, coalesce((SELECT d.state || '/' ||"
                                  f" d.attempts FROM webhook_deliveries d WHERE d.event_id ="
                                  f" e.id AND d.endpoint_id = w.id), 'none') {match}"
                                  f" AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d2"
                                  f" WHERE d2.event_id = e.id AND d2.endpoint_id = w.id"
                                  f" AND d2.state = 'delivered')"))
        self.fail("webhooks", "a delivery marked delivered without a successful attempt",
                  self.sample(f"SELECT d.event_id, d.endpoint_id FROM webhook_deliveries d"
                              f" JOIN events e ON e.id = d.event_id WHERE {ev_since}"
                              f" AND d.state = 'delivered' AND NOT EXISTS (SELECT 1 FROM"
                              f" webhook_attempts a WHERE a.event_id = d.event_id AND"
                              f" a.endpoint_id = d.endpoint_id AND a.status_code BETWEEN 200"
                              f" AND 299)"))
        text = f"{pairs} (event, matching endpoint) pairs"
        if received_files:
            got = set()
            for f in received_files:
                with open(f, encoding="utf-8") as fh:
                    got.update(ln.strip() for ln in fh if ln.strip())
            want = [r[0] for r in self.db.rows(f"SELECT DISTINCT e.id {match}")]
            missing = [e for e in want if e not in got]
            self.fail("webhooks", "an event no receiver got (by webhook-id)",
                      missing[:SAMPLES])
            text += f"; {len(want)} events checked against {len(got)} webhook-ids received"
        self.note("webhooks", text)

    def quote_once(self):
        since = self.where_since("p.created_at")
        n = self.count(f"SELECT count(*) FROM payments p WHERE {since}")
        self.fail("quote_once", "a quote used by two payments", self.sample(
            "SELECT quote_id, count(*) FROM payments GROUP BY 1 HAVING count(*) > 1"))
        self.fail("quote_once", "a payment whose quote is not marked used", self.sample(
            f"SELECT p.id, p.quote_id FROM payments p JOIN quotes q ON q.id = p.quote_id"
            f" WHERE {since} AND q.used_at IS NULL"))
        self.note("quote_once", f"{n} payments, one quote each")

    def idempotency(self, client_logs: list):
        n = self.count("SELECT count(*) FROM idempotency_keys WHERE payment_id IS NOT NULL")
        self.fail("idempotency", "a payment created under two Idempotency-Keys", self.sample(
            "SELECT payment_id, count(*) FROM idempotency_keys WHERE payment_id IS NOT NULL"
            " GROUP BY 1 HAVING count(*) > 1"))
        text = f"{n} Idempotency-Key records"
        if client_logs:
            seen, bad, lines = {}, [], 0
            for f in client_logs:
                with open(f, encoding="utf-8") as fh:
                    for ln in fh:
                        parts = ln.split()
                        if len(parts) != 2:
                            continue
                        lines += 1
                        key, pid = parts
                        if seen.setdefault(key, pid) != pid:
                            bad.append(f"{key} {seen[key]} {pid}")
            self.fail("idempotency", "a key answered with two payment ids", bad[:SAMPLES])
            db = {}
            keys = list(seen)
            for i in range(0, len(keys), 1000):
                chunk = ",".join("'" + k.replace("'", "''") + "'" for k in keys[i:i + 1000])
                for k, pid in self.db.rows(f"SELECT key, payment_id FROM idempotency_keys"
                                           f" WHERE key IN ({chunk})"):
                    db[k] = pid
            self.fail("idempotency", "a key whose record names another payment than answered",
                      [f"{k} {seen[k]} {db[k]}" for k in keys if k in db and db[k]
                       and db[k] != seen[k]][:SAMPLES])
            text += f"; {len(seen)} keys from {lines} client answers"
        self.note("idempotency", text)


def redis_summary(url: str, prefix: str) -> str:
    cli = shutil.which("redis-cli")
    if not cli:
        return "redis-cli not found"
    out = []
    for q in ("payments", "webhooks"):
        vals = []
        for kind, cmd in (("jobs", "XLEN"), ("delayed", "ZCARD"), ("dlq", "XLEN")):
            r = subprocess.run([cli, "-u", url, "--no-raw", cmd, f"{prefix}:{{{q}}}:{kind}"],
                               capture_output=True, text=True, timeout=10)
            vals.append(f"{kind} {r.stdout.strip().replace('(integer) ', '') or '?'}")
        out.append(f"{q}: " + ", ".join(vals))
    return "; ".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    ap.add_argument("--redis-prefix", default=os.environ.get("REDIS_PREFIX", "rampart"))
    ap.add_argument("--received", action="append", default=[],
                    help="a receiver's log: one webhook-id per line (repeatable)")
    ap.add_argument("--client-log", action="append", default=[],
                    help="lines 'idempotency-key payment_id' seen by a client (repeatable)")
    ap.add_argument("--not-idle", action="store_true",
                    help="the system is still working: skip the rules that need it idle")
    ap.add_argument("--since", default="",
                    help="only payments and events created at or after this timestamptz")
    a = ap.parse_args(argv)
    if not a.database_url:
        print("invariants: DATABASE_URL (or --database-url) is required", file=sys.stderr)
        return 2
    c = Checker(Db(a.database_url), not a.not_idle, a.since)
    try:
        c.path()
        c.terminal()
        c.payout()
        c.refund()
        c.webhooks(a.received)
        c.quote_once()
        c.idempotency(a.client_log)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print(f"invariants: cannot check: {e}", file=sys.stderr)
        return 2
    for rule, text in c.checked:
        print(f"checked {rule:12} {text}")
    if a.redis_url:
        print(f"redis        {redis_summary(a.redis_url, a.redis_prefix)}")
    if not c.violations:
        print("invariants: OK (7 rules)")
        return 0
    for rule, items in c.violations.items():
        for what, samples in items:
            print(f"VIOLATION {rule}: {what}")
            for s in samples:
                print(f"    {s}")
    print(f"invariants: FAILED: {', '.join(c.violations)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())

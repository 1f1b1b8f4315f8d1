#!/usr/bin/python3
"""Fault-injection campaign (issue 13 section 3; docs/reliability.md).

A steady load of payments through the api, two workers on the http provider
(a loopback stub of docs/providers.md settling each leg in 0.1-0.3 s), the
webhook daemon delivering to a loopback receiver, and the feeengine, on a
private PostgreSQL and a Redis with AOF. Meanwhile, at moments drawn from a
seeded RNG, the harness injects faults:

  kill_worker      SIGKILL one worker, restart it 1 s later
  kill_webhook     SIGKILL the webhook daemon, restart it
  kill_feeengine   SIGKILL the feeengine, restart it
  kill_api         SIGKILL the api, restart it (clients retry, same Idempotency-Key)
  restart_redis    stop Redis (AOF on), 1-2 s down, start it on the same port
  lose_redis       stop Redis and start it empty (its AOF deleted): every queued,
                   delayed and pending job is lost; PostgreSQL must find them again
  restart_postgres stop PostgreSQL (fast shutdown), 1-2 s down, start it
  stop_worker      SIGSTOP a worker past JOB_CLAIM_IDLE_MS, then SIGCONT
  receiver_trouble the webhook receiver slow, then flaky, then dead, a few s each
  provider_trouble the provider stub slow, then flaky, then dead, a few s each

After the load stops and the system drains, tests/invariants/check.py must
pass (with the receiver's webhook-ids and the client's key -> payment log).
Prints, per fault kind: times injected, payments in flight, lost, duplicated
and the worst end-to-end time of a payment in flight during it.

Environment: FAULT_SEED (default: random, printed), FAULT_FAST=1 (the CI
subset: each fault once, shorter, lighter), FAULT_DURATION (s of load),
FAULT_RATE (payments/s), FAULT_ROUNDS (injections per kind), FAULT_REPORT
(write the markdown table there), RAMPART_BIN (binaries, default bin/),
FAULT_KEEP=1 (keep the work directory with every log).
Exit 0 when every invariant holds, 1 otherwise.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

from market_stub import MarketStub  # noqa: E402
from rampart_it import (Api, Postgres, api_env, request, run_migrate,  # noqa: E402
                        wait_for)
from webhook_it import Receiver, Webhook, add_endpoint, webhook_env  # noqa: E402
from worker_it import StubProvider, Worker, start_persistent_redis, worker_env  # noqa: E402

CHECK = HERE.parent / "invariants" / "check.py"
KINDS = ["kill_worker", "kill_webhook", "kill_feeengine", "kill_api", "restart_redis",
         "lose_redis", "restart_postgres", "stop_worker", "receiver_trouble", "provider_trouble"]
TERMINAL = ("COMPLETED", "FAILED", "REFUNDED")
CLAIM_IDLE_MS = 3000


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class FeeEngine(Worker):
    BINARY = "rampart-feeengine"


class FaultStub(StubProvider):
    """The provider stub with a mode switched at run time: ok, slow (answers
    after the worker's timeout), flaky (half the calls 503), dead (500)."""

    def __init__(self, rng):
        super().__init__("ok", settle=0.2, sleep=1.5)
        self.server.handle_error = lambda *a: None  # clients gone mid-answer (timeouts)
        self.live_mode = "ok"
        self.rng = random.Random(rng.random())

    def answer(self, method, path, key, body):
        m = self.live_mode
        if m == "dead":
            return 500, {"error": "provider down"}, None
        if m == "flaky" and self.rng.random() < 0.5:
            return 503, {"error": "try later"}, {"Retry-After": "0"}
        if m == "slow" and self.rng.random() < 0.5:
            return 0, None, None  # sleeps past PROVIDER_TIMEOUT_MS
        # Accounts that force the other two endings (like the mock's).
        if method == "POST" and isinstance(body, dict):
            kind = path.strip("/").split("/")[1] if path.count("/") >= 2 else ""
            if kind == "onramp" and body.get("source_account") == "acct_fail":
                return 422, {"error": "source account frozen"}, None
            if kind == "offramp" and body.get("destination_account") == "acct_refund":
                return 422, {"error": "destination account closed"}, None
        with self.lock:
            self.settle = 0.1 + self.rng.random() * 0.2
        return super().answer(method, path, key, body)


class Campaign:
    def __init__(self):
        self.seed = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(1 << 30))
        self.fast = os.environ.get("FAULT_FAST") == "1"
        self.rounds = int(os.environ.get("FAULT_ROUNDS") or (1 if self.fast else 2))
        # Full: about 15 s between faults, so each one's effect is seen alone.
        self.duration = float(os.environ.get("FAULT_DURATION") or
                              (45 if self.fast else 15 * self.rounds * len(KINDS) + 10))
        self.rate = float(os.environ.get("FAULT_RATE") or (8 if self.fast else 12))
        self.rng = random.Random(self.seed)
        self.base = Path(tempfile.mkdtemp(prefix="rampart-faults-"))
        self.base.chmod(0o755)  # PostgreSQL runs as nobody when we are root
        self.prefix = "faults"
        self.lock = threading.Lock()
        self.client = []          # (key, payment id) of every 2xx answer
        self.accepted = {}        # payment id -> wall time accepted
        self.injections = []      # dicts: kind, t0, t1, in_flight, detail
        self.stop_load = threading.Event()
        self.receiver_mode = "ok"
        self.errors = 0
        self.refused = []         # (key, status, body) of 4xx answers that made a new key

    # ---- the system ---------------------------------------------------------

    def start(self):
        log(f"seed {self.seed} (rerun: FAULT_SEED={self.seed}{' FAULT_FAST=1' if self.fast else ''}"
            f" make test-faults); work dir {self.base}")
        self.pg = Postgres(self.base, "pg")
        self.pg.init()
        for _ in range(2):
            r = run_migrate(self.pg.url)
            assert r.returncode == 0, r.stderr
        self.redis = start_persistent_redis(self.base)
        self.market = MarketStub()
        self.stub = FaultStub(random.Random(self.seed + 2)).start()

        # Its own generator: the campaign's is drawn only by the fault
        # thread, so a seed gives the same faults in the same order.
        rrng = random.Random(self.seed + 1)

        def answer(n, headers, body):
            m = self.receiver_mode
            if m == "dead":
                return 503, {}, 0
            if m == "flaky" and rrng.random() < 0.5:
                return 500, {}, 0
            if m == "slow":
                return 200, {}, 1.5  # past WEBHOOK_TIMEOUT_MS half the time: a retry
            return 200, {}, 0

        self.receiver = Receiver(answer)
        self.receiver.server.handle_error = lambda *a: None
        add_endpoint(self.pg, self.receiver.url)
        self.api_env = api_env(self.pg, self.redis, {
            "REDIS_PREFIX": self.prefix, "RATE_LIMIT_RPS": 100000, "RATE_LIMIT_BURST": 100000,
            "API_THREADS": 2, "LOG_LEVEL": "warn"})
        self.api = self._new_api()
        common = {"JOB_CLAIM_IDLE_MS": CLAIM_IDLE_MS, "LOG_LEVEL": "warn"}
        self.workers = [Worker(worker_env(self.pg, self.redis, self.prefix, {
            **common, "PROVIDER": "http", "PROVIDER_BASE_URL": self.stub.url,
            "PROVIDER_TIMEOUT_MS": 1000, "MAX_ATTEMPTS": 10, "POLL_MIN_MS": 100,
            "POLL_MAX_MS": 1000, "RELAY_INTERVAL_MS": 500, "RELAY_OVERDUE_SECONDS": 3,
            "MOCK_SETTLE_MIN_MS": None, "MOCK_SETTLE_MAX_MS": None}),
            self.base, f"worker{i}") for i in range(2)]
        self.webhook = Webhook(webhook_env(self.pg, self.redis, self.prefix, {
            **common, "WEBHOOK_RETRY_SCHEDULE": "1,2,4,8,15,30,30,30,30,30,30,30,30,30",
            "WEBHOOK_TIMEOUT_MS": 1000, "WEBHOOK_RELAY_OVERDUE_SECONDS": 3}),
            self.base, "webhook")
        fee = worker_env(self.pg, self.redis, self.prefix, {
            **self.market.env(), "DATABASE_URL": None, "MOCK_SETTLE_MIN_MS": None,
            "MOCK_SETTLE_MAX_MS": None, "POLL_MIN_MS": None, "POLL_MAX_MS": None,
            "MARKET_REFRESH_SECONDS": 5, "LOG_LEVEL": "warn"})
        self.feeengine = FeeEngine(fee, self.base, "feeengine")
        for p in self.workers + [self.webhook, self.feeengine]:
            p.start(timeout=60)

    def _new_api(self):
        a = Api(self.api_env, self.base, f"api{uuid.uuid4().hex[:4]}")
        a.start(wait_ready=False)
        a.wait_ready(60)
        return a

    def psql(self, sql):
        return self.pg.psql(sql)

    # ---- load ---------------------------------------------------------------

    def _call(self, method, path, body=None, key=None):
        headers = {"Idempotency-Key": key} if key else None
        try:
            kw = {"json_body": body} if body is not None else {}
            return request(self.api.port, method, path, headers=headers, timeout=10, **kw)
        except OSError:
            return None

    def _one_payment(self, n):
        amount = 1000 + n
        key = f"flt-{self.seed}-{n}"
        while not self.stop_load.is_set():
            q = self._call("POST", "/v1/quotes", {"from_currency": "USD", "to_currency": "EUR",
                                                  "amount": amount})
            if q is None or q.status != 201:
                self.errors += 1
                time.sleep(0.2)
                continue
            # One in 20 fails at the on-ramp, one in 20 is refunded.
            body = {"quote_id": q.body["id"],
                    "source_account": "acct_fail" if n % 20 == 1 else "acct_src",
                    "destination_account": "acct_refund" if n % 20 == 2 else "acct_dest"}
            # The same key until answered (docs/api.md): an api killed
            # between its commit and its answer leaves the key in_flight,
            # 409 IDEMPOTENCY_KEY_IN_USE for 30 s, then a replay.
            t_key = time.monotonic()
            while time.monotonic() - t_key < 120:
                r = self._call("POST", "/v1/payments", body, key)
                if r is not None and r.status in (200, 201, 202):
                    with self.lock:
                        self.client.append((key, r.body["id"]))
                        self.accepted.setdefault(r.body["id"], time.time())
                    return
                code = (r.body.get("error") or {}).get("code") if r is not None and isinstance(
                    r.body, dict) else None
                if r is not None and 400 <= r.status < 500 and r.status != 429 \
                        and code != "IDEMPOTENCY_KEY_IN_USE":
                    # e.g. the quote expired during an outage: a new quote, a new key
                    with self.lock:
                        self.refused.append((key, r.status, str(r.body)[:200]))
                    break
                self.errors += 1
                time.sleep(0.2)
            key = f"flt-{self.seed}-{n}-{uuid.uuid4().hex[:6]}"

    def load(self):
        n = 0
        t0 = time.monotonic()
        threads = []
        while time.monotonic() - t0 < self.duration:
            due = t0 + n / self.rate
            if time.monotonic() < due:
                time.sleep(min(0.05, due - time.monotonic()))
                continue
            th = threading.Thread(target=self._one_payment, args=(n,), daemon=True)
            th.start()
            threads.append(th)
            threads = [t for t in threads if t.is_alive()]
            n += 1
        for th in threads:
            th.join(120)
        log(f"load done: {n} payments requested, {len(self.accepted)} accepted,"
            f" {self.errors} failed calls retried")

    # ---- faults -------------------------------------------------------------

    def in_flight(self):
        try:
            return int(self.psql("SELECT count(*) FROM payments WHERE status NOT IN"
                                 " ('COMPLETED', 'FAILED', 'REFUNDED')"))
        except RuntimeError:
            return -1

    def inject(self, kind):
        rng = self.rng
        rec = {"kind": kind, "in_flight": self.in_flight(), "t0": time.time(), "detail": ""}
        if kind == "kill_worker":
            w = rng.choice(self.workers)
            w.kill9()
            time.sleep(1)
            w.expect_kill = False
            w.start(timeout=60)
            rec["detail"] = w.name
        elif kind == "kill_webhook":
            self.webhook.kill9()
            time.sleep(1)
            self.webhook.expect_kill = False
            self.webhook.start(timeout=60)
        elif kind == "kill_feeengine":
            self.feeengine.kill9()
            time.sleep(1)
            self.feeengine.expect_kill = False
            self.feeengine.start(timeout=60)
        elif kind == "kill_api":
            self.api.proc.send_signal(signal.SIGKILL)
            self.api.proc.wait(10)
            self.api.terminated = True
            self.api.exit_code = 0  # killed on purpose
            time.sleep(0.5)
            self.api = self._new_api()
        elif kind == "restart_redis":
            down = 1 + rng.random()
            self.redis.stop()
            time.sleep(down)
            self.redis.start()
            rec["detail"] = f"down {down:.1f} s"
        elif kind == "lose_redis":
            down = 1 + rng.random()
            self.redis.stop()
            for f in self.redis.dir.iterdir():
                if f.is_dir():
                    shutil.rmtree(f)
                else:
                    f.unlink()
            time.sleep(down)
            self.redis.start()
            rec["detail"] = f"down {down:.1f} s, data lost"
        elif kind == "restart_postgres":
            down = 1 + rng.random()
            self.pg.stop()
            time.sleep(down)
            self.pg.start()
            rec["detail"] = f"down {down:.1f} s"
        elif kind == "stop_worker":
            w = rng.choice(self.workers)
            w.proc.send_signal(signal.SIGSTOP)
            time.sleep(CLAIM_IDLE_MS / 1000 * 2)
            w.proc.send_signal(signal.SIGCONT)
            rec["detail"] = f"{w.name} {CLAIM_IDLE_MS * 2} ms"
        elif kind in ("receiver_trouble", "provider_trouble"):
            each = 2 if self.fast else 4
            for mode in ("slow", "flaky", "dead"):
                if kind == "receiver_trouble":
                    self.receiver_mode = mode
                else:
                    self.stub.live_mode = mode
                time.sleep(each)
            self.receiver_mode = "ok"
            self.stub.live_mode = "ok"
            rec["detail"] = f"slow, flaky, dead {each} s each"
        rec["t1"] = time.time()
        log(f"fault {kind} {rec['detail']} ({rec['in_flight']} payments in flight)")
        self.injections.append(rec)

    def faults(self):
        plan = [k for k in KINDS for _ in range(self.rounds)]
        self.rng.shuffle(plan)
        slot = (self.duration - 8) / len(plan)
        t0 = time.monotonic()
        for i, kind in enumerate(plan):
            at = 4 + i * slot + self.rng.random() * slot * 0.3
            while time.monotonic() - t0 < at:
                time.sleep(0.05)
            self.inject(kind)

    # ---- drain, check, report -----------------------------------------------

    def drain(self, timeout):
        ids = list(self.accepted)

        def idle():
            try:
                live = int(self.psql("SELECT count(*) FROM payments WHERE status NOT IN"
                                     " ('COMPLETED', 'FAILED', 'REFUNDED')"))
                pend = int(self.psql("SELECT count(*) FROM webhook_deliveries"
                                     " WHERE state = 'pending'"))
                unpub = int(self.psql("SELECT count(*) FROM events WHERE published_at IS NULL"))
            except RuntimeError:
                return False
            return live == 0 and pend == 0 and unpub == 0

        t0 = time.monotonic()
        ok = wait_for(idle, timeout, 0.5)
        log(f"drain: {'idle' if ok else 'NOT idle'} after {time.monotonic() - t0:.0f} s"
            f" ({len(ids)} payments)")
        return ok

    def stop(self):
        problems = []
        for p in self.workers + [self.webhook, self.feeengine]:
            problems += p.stop_and_check()
        problems += self.api.stop_and_check()
        return problems

    def check(self):
        rec = self.base / "received.txt"
        with self.receiver.lock:
            ids = [r["headers"].get("webhook-id", "") for r in self.receiver.requests]
        rec.write_text("".join(i + "\n" for i in ids if i))
        clog = self.base / "client.txt"
        clog.write_text("".join(f"{k} {p}\n" for k, p in self.client))
        r = subprocess.run([sys.executable, str(CHECK), "--database-url", self.pg.url,
                            "--redis-url", self.redis.url, "--redis-prefix", self.prefix,
                            "--received", str(rec), "--client-log", str(clog)],
                           capture_output=True, text=True, timeout=600)
        print(r.stdout + r.stderr, flush=True)
        return r.returncode == 0

    def report(self):
        rows = self.psql(
            "SELECT p.id, extract(epoch FROM p.created_at), extract(epoch FROM max(h.created_at)),"
            " p.status, count(*), count(DISTINCT h.to_status) FROM payments p"
            " JOIN payment_history h ON h.payment_id = p.id GROUP BY p.id").splitlines()
        pays = {}
        for ln in rows:
            pid, c, t, st, n, nd = ln.split("|")
            pays[pid] = (float(c), float(t), st, int(n), int(nd))
        missing = [p for p in self.accepted if p not in pays]
        # A payment the client was never told about: it retried under a new
        # key and paid twice.
        orphans = [p for p in pays if p not in self.accepted]
        for k, st, b in self.refused[:5]:
            print(f"refused: {k} {st} {b}")
        e2e = sorted(t - c for c, t, st, _, _ in pays.values() if st in TERMINAL)
        p50 = e2e[len(e2e) // 2] if e2e else 0
        lines = ["| fault | injected | payments in flight | lost | duplicated |"
                 " worst payment delay | worst webhook delay |", "|---|---|---|---|---|---|---|"]
        for kind in KINDS:
            recs = [r for r in self.injections if r["kind"] == kind]
            if not recs:
                continue
            # A payment is hit by a fault when it was in flight at some
            # moment of it; its delay is how long it took to end from the
            # later of its creation and the fault's start.
            hit, worst = set(), 0.0
            for r in recs:
                for pid, (c, t, st, n, nd) in pays.items():
                    if c <= r["t1"] and t >= r["t0"]:
                        hit.add(pid)
                        worst = max(worst, t - max(c, r["t0"]))
            lost = sum(1 for pid in hit if pays[pid][2] not in TERMINAL)
            dup = sum(1 for pid in hit if pays[pid][3] != pays[pid][4])
            lines.append(f"| {kind} | {len(recs)} | {sum(max(r['in_flight'], 0) for r in recs)}"
                         f" | {lost} | {dup} | {worst:.1f} s |")
        ev = {}
        for ln in self.psql("SELECT e.id, extract(epoch FROM e.created_at),"
                            " extract(epoch FROM d.delivered_at) FROM events e"
                            " JOIN webhook_deliveries d ON d.event_id = e.id"
                            " WHERE d.delivered_at IS NOT NULL").splitlines():
            eid, c, t = ln.split("|")
            ev[eid] = (float(c), float(t))
        for i, kind in enumerate(k for k in KINDS if any(r["kind"] == k for r in self.injections)):
            worst = 0.0
            for r in (r for r in self.injections if r["kind"] == kind):
                for c, t in ev.values():
                    if c <= r["t1"] and t >= r["t0"]:
                        worst = max(worst, t - max(c, r["t0"]))
            lines[2 + i] += f" {worst:.1f} s |"
        wh = sorted(t - c for c, t in ev.values())
        lost_all = len(missing) + sum(1 for v in pays.values() if v[2] not in TERMINAL)
        dup_all = sum(1 for v in pays.values() if v[3] != v[4])
        by = {}
        for v in pays.values():
            by[v[2]] = by.get(v[2], 0) + 1
        summary = (f"seed {self.seed}; {len(self.accepted)} payments accepted"
                   f" ({', '.join(f'{k} {v}' for k, v in sorted(by.items()))});"
                   f" lost {lost_all}, duplicated transitions {dup_all},"
                   f" payments the client never saw {len(orphans)};"
                   f" end-to-end p50 {p50:.1f} s, max {e2e[-1] if e2e else 0:.1f} s;"
                   f" {len(self.receiver.requests)} webhook requests received, event to"
                   f" delivery p50 {wh[len(wh) // 2] if wh else 0:.1f} s,"
                   f" max {wh[-1] if wh else 0:.1f} s")
        table = "\n".join(lines)
        print(table + "\n\n" + summary, flush=True)
        if os.environ.get("FAULT_REPORT"):
            Path(os.environ["FAULT_REPORT"]).write_text(table + "\n\n" + summary + "\n")
        return lost_all == 0 and dup_all == 0 and not orphans

    def close(self, keep):
        for name, meth in (("receiver", "stop"), ("stub", "stop"), ("market", "close"),
                           ("redis", "stop"), ("pg", "stop")):
            try:
                if hasattr(self, name):
                    getattr(getattr(self, name), meth)()
            except Exception as e:  # noqa: BLE001 - teardown goes on
                log(f"teardown: {e}")
        if keep:
            log(f"logs kept in {self.base}")
        else:
            shutil.rmtree(self.base, ignore_errors=True)


def main():
    c = Campaign()
    ok = False
    try:
        c.start()
        loader = threading.Thread(target=c.load, daemon=True)
        loader.start()
        c.faults()
        loader.join()
        drained = c.drain(float(os.environ.get("FAULT_DRAIN_SECONDS") or 240))
        counted = c.report()
        problems = c.stop()
        for p in problems:
            print(p)
        checked = c.check()
        ok = drained and counted and checked and not problems
        log(f"fault campaign {'PASSED' if ok else 'FAILED'} (seed {c.seed})")
    finally:
        c.close(keep=not ok or os.environ.get("FAULT_KEEP") == "1")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

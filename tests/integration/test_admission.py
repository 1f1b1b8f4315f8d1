"""Admission control (API_ADMISSION_TARGET_MS / API_ADMISSION_INTERVAL_MS,
common/admission.c): while the api's database queue stands, /v1/ requests
are refused at once with 503 OVERLOADED and Retry-After instead of joining
the wait; liveness stays up, admitted requests still finish, and the api
admits again once the queue has drained.

The queue is made to stand for real: the PostgreSQL backends serving the
api are stopped with SIGSTOP (a stalled database), so the payments already
sent wait. DB_QUERY_TIMEOUT_MS is 60 s, so without admission control every
new request would wait too, far past this test's 15 s client timeout."""

import os
import signal
import subprocess
import sys
import threading
import time

from rampart_it import request, wait_for

PAY = {"source_account": "acct_src", "destination_account": "acct_dst"}


def api_backends(pg):
    """PIDs of the server processes of every other client of database rampart."""
    out = pg.psql("SELECT pid FROM pg_stat_activity WHERE datname = 'rampart' "
                  "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
    return [int(p) for p in out.split()]


def start(private_pg, start_api, target):
    return start_api({"DB_QUERY_TIMEOUT_MS": "60000", "API_THREADS": "1", "DB_POOL_SIZE": "2",
                      "API_ADMISSION_TARGET_MS": target, "API_ADMISSION_INTERVAL_MS": "100"},
                     pg=private_pg)


def stall(pids, sig):
    for p in pids:
        os.kill(p, sig)


def test_standing_queue_refused_fast_then_admitted(private_pg, start_api):
    api = start(private_pg, start_api, "50")
    quotes = [api.quote("USD", "EUR", 100000).body["id"] for _ in range(20)]
    pids = api_backends(private_pg)
    assert len(pids) == 2, pids  # DB_POOL_SIZE connections
    held = []
    stall(pids, signal.SIGSTOP)
    try:
        # Payments sent now wait: the database does not answer.
        def pay(qid):
            held.append(request(api.port, "POST", "/v1/payments", timeout=90,
                                json_body={"quote_id": qid, **PAY},
                                headers={"Idempotency-Key": f"held-{qid}"}))
        threads = [threading.Thread(target=pay, args=(q,)) for q in quotes[:3]]
        for t in threads:
            t.start()
        # Once they have waited past the target for an interval, new
        # requests are refused without waiting (a client timeout of 15 s
        # against a 60 s database timeout: waiting would fail this test).
        time.sleep(0.5)
        qid = quotes[3]
        r = request(api.port, "POST", "/v1/payments", json_body={"quote_id": qid, **PAY},
                    timeout=15)
        assert r.status == 503, r
        assert r.body["error"]["code"] == "OVERLOADED", r.body
        assert r.headers.get("Retry-After") == "1"
        # Reads that wait on the database are refused too; liveness is not.
        r = request(api.port, "GET", f"/v1/quotes/{quotes[0]}", timeout=15)
        assert r.status == 503 and r.body["error"]["code"] == "OVERLOADED", r
        assert request(api.port, "GET", "/healthz", key=None, timeout=15).status == 200
        assert all(t.is_alive() for t in threads), "the held payments did not wait"
    finally:
        stall(pids, signal.SIGCONT)
    # The held payments were admitted before the queue stood: they finish.
    for t in threads:
        t.join(90)
    assert sorted(r.status for r in held) == [202, 202, 202], held
    # A refused payment did nothing: its quote is still unused.
    assert private_pg.psql(f"SELECT used_at IS NULL FROM quotes WHERE id = '{qid}'") == "t"
    # The queue drained: the api admits again, and the refused quote pays.
    last = []

    def pays():
        last[:] = [request(api.port, "POST", "/v1/payments", timeout=15,
                           json_body={"quote_id": qid, **PAY})]
        return last[0].status == 202
    assert wait_for(pays, 10, 0.2), last
    m = request(api.port, "GET", "/metrics", key=None).body.decode()
    line = next(ln for ln in m.splitlines() if ln.startswith("rampart_http_refused_total"))
    assert float(line.split()[-1]) >= 2, line


def test_admission_off_by_zero(private_pg, start_api):
    """API_ADMISSION_TARGET_MS=0: nothing is refused; a request waits for the
    database as before (here until the backends are resumed)."""
    api = start(private_pg, start_api, "0")
    quotes = [api.quote("USD", "EUR", 100000).body["id"] for _ in range(3)]
    pids = api_backends(private_pg)
    got = []
    stall(pids, signal.SIGSTOP)
    try:
        t1 = threading.Thread(target=lambda: got.append(request(
            api.port, "POST", "/v1/payments", json_body={"quote_id": quotes[0], **PAY},
            timeout=90)))
        t1.start()
        time.sleep(0.5)
        t2 = threading.Thread(target=lambda: got.append(request(
            api.port, "GET", f"/v1/quotes/{quotes[1]}", timeout=90)))
        t2.start()
        time.sleep(1.0)
        assert t1.is_alive() and t2.is_alive() and got == [], got  # waiting, not refused
    finally:
        stall(pids, signal.SIGCONT)
    t1.join(90)
    t2.join(90)
    assert sorted(r.status for r in got) == [200, 202], got


def test_short_stalls_refuse_nobody(private_pg, start_api):
    """A database that stalls for less than target + interval (a slow
    fsync, a lock held for a moment) is not overloaded: the requests that
    wait are answered when it ends, and new ones must not be refused. The
    queue stands only once its oldest request has been over the target for
    a whole interval (CoDel's rule). Before, a stall that merely outlasted
    one interval with the oldest request past the target refused the
    requests of the next interval: 503s at loads the database carries.

    Target 100 ms, interval 100 ms, sixteen stalls of 140 ms under a steady
    200 requests/s: a stall spans a whole interval with nothing finished
    and its oldest request past the target in about two of five (the old
    rule refused then), and is never near 200 ms. The stalls are timed by a
    process of their own, so this test's threads cannot stretch them."""
    api = start(private_pg, start_api, "100")
    qid = api.quote("USD", "EUR", 100000).body["id"]
    pids = api_backends(private_pg)
    assert len(pids) == 2, pids
    answers, lock, stop = [], threading.Lock(), threading.Event()

    def one():
        t0 = time.monotonic()
        r = request(api.port, "GET", f"/v1/quotes/{qid}", timeout=15)
        with lock:
            answers.append((r.status, time.monotonic() - t0))

    def offer():  # open loop: a request every 5 ms, whatever the answers
        sent = []
        nxt = time.monotonic()
        while not stop.is_set():
            t = threading.Thread(target=one)
            t.start()
            sent.append(t)
            nxt += 0.005
            time.sleep(max(0.0, nxt - time.monotonic()))
        for t in sent:
            t.join(30)

    stalls = ("import os, signal, sys, time\n"
              "pids = [int(p) for p in sys.argv[1:]]\n"
              "for _ in range(16):\n"
              "    time.sleep(0.3)\n"
              "    t = time.monotonic()\n"
              "    for p in pids: os.kill(p, signal.SIGSTOP)\n"
              "    time.sleep(0.14)\n"
              "    for p in pids: os.kill(p, signal.SIGCONT)\n"
              "    print(round(time.monotonic() - t, 4))\n")
    gen = threading.Thread(target=offer)
    gen.start()
    try:
        out = subprocess.run([sys.executable, "-c", stalls, *map(str, pids)], check=True,
                             capture_output=True, text=True, timeout=60).stdout
        time.sleep(0.3)
    finally:
        stall(pids, signal.SIGCONT)
        stop.set()
        gen.join(60)
    lengths = [float(x) for x in out.split()]
    assert len(lengths) == 16 and max(lengths) < 0.17, lengths
    codes = [c for c, _ in answers]
    assert len(codes) > 800, len(codes)
    # The stalls were real: requests waited through them.
    assert sum(1 for _, s in answers if s >= 0.1) >= 16, sorted(s for _, s in answers)[-20:]
    assert codes.count(503) == 0, (codes.count(503), len(codes), lengths)
    assert set(codes) == {200}, sorted(set(codes))

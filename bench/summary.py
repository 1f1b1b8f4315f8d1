"""bench/summary.py - the cost of GET /v1/summary (the operator dashboard's
refresh) as the payments table grows: private PostgreSQL and Redis, a
release api with one loop, N payments with their history rows (an hour
old, so folded), then 200 sequential summaries per N. Beside it, the plan
of the GROUP BY status over payments that the summary does not run.

    make && /usr/bin/python3 bench/summary.py [N ...]     (default 10000 100000)
"""
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from rampart_it import Api, Postgres, Redis, api_env, cleanup_dir, request, run_migrate  # noqa: E402

sizes = [int(a) for a in sys.argv[1:]] or [10000, 100000]
d = Path(tempfile.mkdtemp(prefix="rampart-bench-summary-", dir="/tmp"))
d.chmod(0o755)
pg = Postgres(d, "pg")
pg.init()
rd = Redis(d)
rd.start()
api = None
try:
    run_migrate(pg.url)
    api = Api(api_env(pg, rd, {"API_THREADS": "1"}), d, "api").start()
    have = 0
    for n in sorted(sizes):
        pg.psql(
            "WITH p AS (INSERT INTO payments (id, api_key_id, quote_id, status, amount, currency,"
            " payout_amount, payout_currency, exchange_rate, platform_fee, onramp_fee, offramp_fee,"
            " total_fees, chain, source_account, destination_account)"
            " SELECT 'pay_' || gen_random_uuid(), 'k', 'quote_' || gen_random_uuid(),"
            " (ARRAY['COMPLETED','COMPLETED','COMPLETED','FAILED','PENDING','REFUNDED',"
            " 'ONRAMP_PENDING','COMPLETED'])[1 + i % 8], 1000, 'USD', 900, 'EUR', 0.9, 1, 1, 1, 3,"
            f" 'base', 'a', 'b' FROM generate_series(1, {n - have}) i RETURNING id, status)"
            " INSERT INTO payment_history (payment_id, from_status, to_status, created_at)"
            " SELECT id, NULL, 'PENDING', now() - interval '2 hours' FROM p UNION ALL"
            " SELECT id, 'PENDING', status, now() - interval '1 hour' FROM p"
            " WHERE status <> 'PENDING'")
        have = n
        pg.psql("VACUUM ANALYZE payments")
        pg.psql("VACUUM ANALYZE payment_history")
        t = time.perf_counter()
        r = request(api.port, "GET", "/v1/summary")
        fold = (time.perf_counter() - t) * 1000
        assert r.status == 200 and r.body["payments"]["total"] == n, r
        lat = []
        for _ in range(200):
            t = time.perf_counter()
            r = request(api.port, "GET", "/v1/summary")
            lat.append((time.perf_counter() - t) * 1000)
            assert r.status == 200 and r.body["payments"]["total"] == n, r
        lat.sort()
        plan = pg.psql("EXPLAIN ANALYZE SELECT status, count(*) FROM payments GROUP BY status")
        group_by = [ln.strip() for ln in plan.splitlines() if "Execution Time" in ln][0]
        print(f"payments={n}: first summary (folds the new rows) {fold:.1f} ms; then 200 sequential:"
              f" median {statistics.median(lat):.2f} ms, p99 {lat[197]:.2f} ms;"
              f" GROUP BY status over payments: {group_by}")
finally:
    if api:
        api.terminate()
    rd.stop()
    pg.stop()
    cleanup_dir(d)

"""The cost of the shared (Redis) rate limit: two release apis on one private
PostgreSQL and Redis, RATE_LIMIT_SHARED=0 (the process-local bucket) and =1,
measured with wrk in alternating rounds (the order flips each round) so the
machine's drift hits both alike. The limit is raised out of the way as in
bench/run.sh (RATE_LIMIT_RPS=1000000, RATE_LIMIT_BURST=10000000: leases of
100 tokens).

    make && /usr/bin/python3 bench/ratelimit_ab.py quotes|get [ROUNDS [SECONDS]]

quotes: POST /v1/quotes (bench/quotes.lua); get: GET /v1/quotes/{unknown}
(a read, no commit). Prints each round, the medians, their ratio and the
shared api's rate-limit counters (script calls = leases)."""
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
os.environ.setdefault("RAMPART_BIN", str(REPO / "bin"))
import rampart_it as it  # noqa: E402

route = sys.argv[1] if len(sys.argv) > 1 else "quotes"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 6
secs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
d = Path(tempfile.mkdtemp(prefix="rl-ab-"))
d.chmod(0o755)
pg = it.Postgres(d)
pg.init()
rd = it.Redis(d)
rd.start()
r = it.run_migrate(pg.url); assert r.returncode == 0, r.stderr
apis = {}
try:
    for mode in (0, 1):
        env = it.api_env(pg, rd, {"API_KEYS": "sk_bench", "LOG_LEVEL": "warn",
                                  "RATE_LIMIT_RPS": 1000000, "RATE_LIMIT_BURST": 10000000,
                                  "RATE_LIMIT_SHARED": mode})
        a = it.Api(env, d, f"api{mode}")
        a.start()
        apis[mode] = a
    lua = str(REPO / "bench" / "quotes.lua")
    res = {0: [], 1: []}
    for i in range(rounds):
        for mode in ((0, 1) if i % 2 == 0 else (1, 0)):
            port = apis[mode].port
            if route == "quotes":
                cmd = ["wrk", "-t2", "-c16", f"-d{secs}s", "-s", lua, f"http://127.0.0.1:{port}/v1/quotes"]
            else:
                cmd = ["wrk", "-t2", "-c16", f"-d{secs}s", "-H", "Authorization: Bearer sk_bench",
                       f"http://127.0.0.1:{port}/v1/quotes/quote_00000000-0000-4000-8000-000000000000"]
            out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "BENCH_API_KEY": "sk_bench"}, timeout=secs + 60).stdout
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            res[mode].append(rps)
            print(f"round {i+1} RATE_LIMIT_SHARED={mode}: {rps:.0f} req/s", flush=True)
    med = {m: sorted(v)[len(v) // 2] for m, v in res.items()}
    print(f"{route}: median local {med[0]:.0f}, shared {med[1]:.0f}, shared/local {med[1]/med[0]:.3f}")
    m = subprocess.run(["curl", "-s", f"http://127.0.0.1:{apis[1].port}/metrics"], capture_output=True, text=True).stdout
    print([l for l in m.splitlines() if l.startswith("rampart_rate_limit")])
finally:
    for a in apis.values():
        a.terminate()
    rd.stop()
    pg.stop()
    it.cleanup_dir(d)

"""The operator dashboard in a real browser: Debian's headless chromium,
driven by playwright-core (tests/browser/dashboard.mjs), against a running
system (api, worker with fast mock settlement, webhook daemon delivering to a
loopback receiver, fee engine on a loopback market and Claude stub). The
script checks the key prompt, that a payment made through the API appears and
reaches COMPLETED on the page, its detail view (timeline, webhook attempts),
in-place refreshes, a 401 back to the prompt, and that the key is in no URL;
it saves dashboard.png in the test's output folder (copied to
$RAMPART_SCREENSHOT_TO when set: that is how docs/img/dashboard.png is made)."""

import json
import os
import shutil
import subprocess
import uuid

import pytest

from market_stub import MarketStub
from rampart_it import KEY, REPO
from test_feeengine import FeeEngine, fee_env
from webhook_it import Receiver, Webhook, webhook_env
from worker_it import Worker, worker_env

BROWSER_DIR = REPO / "tests" / "browser"
CHROMIUM = "/usr/bin/chromium"


def ensure_playwright():
    """playwright-core from npm into tests/browser/node_modules (git-ignored),
    at the version package.json pins; once."""
    if (BROWSER_DIR / "node_modules" / "playwright-core" / "package.json").exists():
        return
    npm = shutil.which("npm")
    assert npm, "npm not found: sh scripts/deps.sh installs it"
    subprocess.run([npm, "install", "--no-package-lock", "--no-audit", "--no-fund"],
                   cwd=BROWSER_DIR, check=True, timeout=600)


def test_dashboard_in_chromium(start_api, private_pg, redis, workdir, tmp_path):
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} missing: sh scripts/deps.sh installs it"
    assert shutil.which("node"), "node missing: sh scripts/deps.sh installs it"
    ensure_playwright()

    prefix = f"itdash{uuid.uuid4().hex[:10]}"
    stub = MarketStub()
    receiver = Receiver()
    procs = []
    try:
        fe = FeeEngine(fee_env(private_pg, redis, prefix, stub,
                               {"ANTHROPIC_API_KEY": stub.claude_key}),
                       workdir, f"feeengine-{prefix}")
        procs.append(fe)
        fe.start()
        api = start_api({"REDIS_PREFIX": prefix, "FEE_TIMEOUT_MS": "4000"}, pg=private_pg)
        w = Worker(worker_env(private_pg, redis, prefix,
                              {"MOCK_SETTLE_MIN_MS": "200", "MOCK_SETTLE_MAX_MS": "500"}),
                   workdir, f"worker-{prefix}")
        procs.append(w)
        w.start()
        wh = Webhook(webhook_env(private_pg, redis, prefix), workdir, f"webhook-{prefix}")
        procs.append(wh)
        wh.start()
        ep = api.post("/v1/webhook_endpoints", {"url": receiver.url, "events": ["*"]})
        assert ep.status == 201, ep

        # Fee decisions for the AI vs fallback panel (the Claude stub answers).
        for body in ({"amount": 100000}, {"amount": 2500000}, {"amount": 100000, "priority": "express"}):
            r = api.post("/v1/fees/calculate", {"from_currency": "USD", "to_currency": "EUR", **body})
            assert r.status == 200, r
        s = api.get("/v1/summary").body
        assert s["fee_decisions"]["ai"] + s["fee_decisions"]["fallback"] == 3, s["fee_decisions"]

        # 10,000 older payments, settled (the worker's relay would take up
        # stale live ones): the page must stay one bounded page, the summary
        # count them all.
        private_pg.psql(
            "WITH p AS (INSERT INTO payments (id, api_key_id, quote_id, status, amount, currency,"
            " payout_amount, payout_currency, exchange_rate, platform_fee, onramp_fee,"
            " offramp_fee, total_fees, chain, source_account, destination_account,"
            " created_at, updated_at)"
            " SELECT 'pay_' || gen_random_uuid(), 'k', 'quote_' || gen_random_uuid(),"
            "  (ARRAY['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED',"
            "  'COMPLETED', 'COMPLETED', 'COMPLETED', 'FAILED', 'REFUNDED'])[1 + i % 10],"
            "  10000 + i, 'USD', 9000 + i, 'EUR', 0.9, 200, 70, 50, 320, 'base', 'acct_src',"
            "  'acct_dest', now() - interval '1 hour' - i * interval '1 second',"
            "  now() - interval '1 hour' - i * interval '1 second'"
            " FROM generate_series(1, 10000) i RETURNING id, status, created_at)"
            " INSERT INTO payment_history (payment_id, from_status, to_status, created_at)"
            " SELECT id, NULL, status, created_at FROM p")
        # Some recent payments, so the first page is not the bulk.
        for amount, to in ((120000, "EUR"), (5000000, "GBP"), (99900, "MXN"), (250000000, "EUR")):
            q = api.quote("USD", to, amount)
            assert q.status == 201, q
            p = api.post("/v1/payments", {"quote_id": q.body["id"], "source_account": "acct_src_1",
                                          "destination_account": f"acct_dest_{to.lower()}"})
            assert p.status == 202, p

        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TZ")}
        env.update({"RAMPART_URL": f"http://127.0.0.1:{api.port}", "RAMPART_KEY": KEY,
                    "OUT_DIR": str(tmp_path), "MIN_TOTAL": "10005"})
        run = subprocess.run(["node", str(BROWSER_DIR / "dashboard.mjs")], env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"browser test failed\n{run.stdout}\n{run.stderr}"
        result = json.loads(run.stdout.strip().splitlines()[-1])
        assert result["ok"] is True
        assert result["total"] == 10005
        assert result["timeline"] == ["PENDING", "ONRAMP_PENDING", "ONRAMP_COMPLETE",
                                      "OFFRAMP_PENDING", "COMPLETED"]
        shot = tmp_path / "dashboard.png"
        assert shot.stat().st_size > 10000
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("RAMPART_SCREENSHOT_TO"):
            shutil.copyfile(shot, os.environ["RAMPART_SCREENSHOT_TO"])
    finally:
        problems = []
        for p in reversed(procs):
            problems += p.stop_and_check()
        receiver.stop()
        stub.close()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)

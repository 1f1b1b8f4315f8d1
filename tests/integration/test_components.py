"""Runs the C component tests of common/ (tests/component/test_*.c) against
this session's real PostgreSQL and Redis: the async pool and client are
exercised on a real event loop, including server-side kills and timeouts."""

import os
import subprocess
from pathlib import Path

import pytest

from rampart_it import REPO

COMPONENT_BIN = Path(os.environ.get("RAMPART_COMPONENT_BIN")
                     or REPO / "build" / "rel" / "tests" / "component")


def run_component(name: str, env: dict) -> None:
    exe = COMPONENT_BIN / name
    if not os.access(exe, os.X_OK):
        pytest.fail(f"{exe} not built: run `make components` (or set RAMPART_COMPONENT_BIN)",
                    pytrace=False)
    r = subprocess.run([str(exe)], env={**os.environ, **env, "LOG_LEVEL": "warn"},
                       capture_output=True, text=True, timeout=180)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"{name} failed (exit {r.returncode}):\n{out[-6000:]}"
    assert "PASSED" in out, f"{name} ran no test:\n{out[-2000:]}"
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in out, f"{name}: sanitizer report:\n{out[-6000:]}"


def test_pg_pool_component(pg):
    run_component("test_pg", {"DATABASE_URL": pg.url})


def test_redis_client_component(redis):
    run_component("test_redis", {"REDIS_URL": redis.url})


def test_http_client_component():
    run_component("test_httpc", {})


def test_job_queue_component(redis):
    run_component("test_jobs", {"REDIS_URL": redis.url})

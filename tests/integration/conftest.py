"""Fixtures for rampart's integration tests.

The session starts its own redis-server and PostgreSQL 15 on free loopback
ports in a temp dir (PostgreSQL as "nobody" when running as root), migrates the
database with `rampart-api --migrate` (twice: the second run must be a no-op),
and hands tests rampart-api processes started from $RAMPART_BIN (default
<repo>/bin). Every api is stopped with SIGTERM on teardown and must exit 0
promptly without sanitizer reports; servers are stopped by PID.

Set RAMPART_KEEP_TMP=1 to keep the temp dir (logs) after the run.
"""

import atexit
import difflib
import os
import tempfile
from pathlib import Path

import pytest

from rampart_it import CHECKED, BIN, Api, Postgres, Redis, api_env, cleanup_dir, run_migrate

_started = []  # every Postgres/Redis/Api object, for a last-resort kill at exit


@atexit.register
def _kill_leftovers():
    for obj in _started:
        if obj.proc is not None and obj.proc.poll() is None:
            obj.proc.kill()


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"openapi: {CHECKED['answers']} api answers checked against "
                                "docs/openapi.yaml")


@pytest.fixture(scope="session")
def workdir():
    # Directly under /tmp (not pytest's 0700 tmp dir): the PostgreSQL user
    # must be able to traverse it.
    d = Path(tempfile.mkdtemp(prefix="rampart-it-"))
    d.chmod(0o755)
    yield d
    cleanup_dir(d)


@pytest.fixture(scope="session")
def redis(workdir):
    r = Redis(workdir)
    _started.append(r)
    r.start()
    yield r
    r.stop()


def _start_pg(workdir: Path, name: str) -> Postgres:
    pg = Postgres(workdir, name)
    _started.append(pg)
    pg.init()
    return pg


@pytest.fixture(scope="session")
def pg(workdir):
    p = _start_pg(workdir, "pg")
    yield p
    p.stop()


def migrate_checked(pg: Postgres) -> None:
    """`rampart-api --migrate` must exit 0, and a second run must be a no-op."""
    exe = BIN / "rampart-api"
    if not os.access(exe, os.X_OK):
        pytest.fail(f"{exe} not found: build it (make) or set RAMPART_BIN", pytrace=False)
    r = run_migrate(pg.url)
    assert r.returncode == 0, f"--migrate exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    before = pg.dump()
    assert "CREATE TABLE public.quotes" in before, "--migrate exited 0 but created no quotes table"
    r = run_migrate(pg.url)
    assert r.returncode == 0, \
        f"second --migrate exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    after = pg.dump()
    if before != after:
        diff = "\n".join(list(difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                   "after 1st", "after 2nd", lineterm=""))[:60])
        pytest.fail(f"second --migrate changed the database (expected a no-op):\n{diff}",
                    pytrace=False)


@pytest.fixture(scope="session")
def migrated(pg):
    migrate_checked(pg)
    return pg


class ApiFactory:
    """start(env_overrides) -> a running Api (ready: GET /readyz == 200).
    Overrides with value None remove a variable. close() stops every api it
    started and fails the test if one did not shut down cleanly."""

    def __init__(self, pg: Postgres, redis: Redis, logdir: Path, label: str):
        self.pg, self.redis, self.logdir, self.label = pg, redis, logdir, label
        self.apis = []

    def env(self, overrides=None, pg=None) -> dict:
        return api_env(pg or self.pg, self.redis, overrides)

    def __call__(self, overrides=None, *, pg=None, wait_ready=True, timeout=10.0,
                 preexec_fn=None) -> Api:
        env = self.env(overrides, pg)
        api = Api(env, self.logdir, f"{self.label}-api{len(self.apis)}")
        self.apis.append(api)
        _started.append(api)
        api.start(wait_ready=False, preexec_fn=preexec_fn)
        if wait_ready:
            api.wait_ready(timeout)
        return api

    def close(self) -> None:
        problems = []
        for api in reversed(self.apis):
            problems += api.stop_and_check()
        self.apis = []
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


def _factory(request, migrated, redis, workdir, scope_label):
    label = f"{scope_label}-{request.node.name}"[:80].replace("/", "_").replace("[", "_").replace("]", "")
    f = ApiFactory(migrated, redis, workdir, label)
    yield f
    f.close()


@pytest.fixture
def start_api(request, migrated, redis, workdir):
    """Function-scoped api factory: start_api({"RATE_LIMIT_RPS": 1, ...})."""
    yield from _factory(request, migrated, redis, workdir, "fn")


@pytest.fixture(scope="module")
def module_start_api(request, migrated, redis, workdir):
    yield from _factory(request, migrated, redis, workdir, "mod")


@pytest.fixture(scope="session")
def session_start_api(request, migrated, redis, workdir):
    yield from _factory(request, migrated, redis, workdir, "session")


@pytest.fixture(scope="session")
def api(session_start_api) -> Api:
    """The shared api with default settings (its own REDIS_PREFIX, no market
    snapshot, so built-in rates)."""
    return session_start_api()


@pytest.fixture
def private_pg(workdir):
    """A PostgreSQL of the test's own (migrated), for tests that stop it."""
    p = _start_pg(workdir, f"pg-{os.urandom(4).hex()}")
    try:
        migrate_checked(p)
        yield p
    finally:
        p.stop()

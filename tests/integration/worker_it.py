"""rampart-worker processes and a loopback stub of the http provider
(docs/providers.md), for the worker's integration tests."""

import json
import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

from rampart_it import BIN, SANITIZER_MARKERS, free_port, request, stop_process, tail, wait_for


class Worker:
    """One rampart-worker with its own admin port and log files (subclasses
    run another daemon of the same shape: set BINARY)."""

    BINARY = "rampart-worker"

    def __init__(self, env: dict, logdir: Path, name: str):
        self.env = env
        self.name = name
        self.port = int(env["METRICS_LISTEN"].rsplit(":", 1)[1])
        self.stdout_path = logdir / f"{name}.stdout"
        self.stderr_path = logdir / f"{name}.stderr"
        self.proc: Optional[subprocess.Popen] = None
        self.expect_kill = False  # a test kills it with SIGKILL on purpose

    def start(self, timeout: float = 15.0, preexec_fn=None) -> "Worker":
        exe = BIN / self.BINARY
        if not os.access(exe, os.X_OK):
            raise RuntimeError(f"{exe} not found (make)")
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen([str(exe)], env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, start_new_session=True,
                                         preexec_fn=preexec_fn)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.BINARY} exited with {self.proc.returncode}\n"
                                     f"{self.logs()}")
            try:
                return request(self.port, "GET", "/readyz", key=None, timeout=2).status == 200
            except OSError:
                return False

        if not wait_for(ready, timeout, 0.05):
            raise AssertionError(f"{self.BINARY} /readyz not 200 within {timeout} s\n"
                                 f"{self.logs()}")
        return self

    def logs(self, n: int = 60) -> str:
        return (f"--- {self.name} stdout ---\n{tail(self.stdout_path, n)}\n"
                f"--- {self.name} stderr ---\n{tail(self.stderr_path, n)}")

    def kill9(self) -> None:
        self.expect_kill = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop_and_check(self) -> list:
        if self.proc is None or self.expect_kill:
            return []
        problems = []
        if self.proc.poll() is not None:
            problems.append(f"{self.name} exited early with {self.proc.returncode}")
        else:
            rc = stop_process(self.proc, signal.SIGTERM, 15)
            if rc != 0:
                problems.append(f"{self.name} exited with {rc} after SIGTERM, expected 0")
        text = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        if any(m in text for m in SANITIZER_MARKERS):
            problems.append(f"{self.name}: sanitizer report in stderr")
        if problems:
            problems.append(self.logs(80))
        return problems


def worker_env(pg, redis, prefix: str, overrides: Optional[dict] = None) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "HOME", "TZ", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")}
    env.update({
        "DATABASE_URL": pg.url,
        "REDIS_URL": redis.url,
        "REDIS_PREFIX": prefix,
        "METRICS_LISTEN": f"127.0.0.1:{free_port()}",
        "MOCK_SETTLE_MIN_MS": "100",
        "MOCK_SETTLE_MAX_MS": "300",
        "POLL_MIN_MS": "20",
        "POLL_MAX_MS": "200",
        "LOG_LEVEL": "info",
    })
    for k, v in (overrides or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


# --------------------------------------------------------------------------
# A stub ramp provider speaking docs/providers.md

class StubProvider:
    """Legs complete after `settle` seconds. mode: "ok"; "flaky" (the first
    `fail_times` calls of each kind answer 503, then normal); "slow" (the
    first `fail_times` calls sleep past the client's timeout); "down"
    (always 500); "reject_offramp" (offramp initiate answers 422). Every
    answer waits `delay` seconds first. Records every request (method,
    path, Idempotency-Key)."""

    def __init__(self, mode: str = "ok", settle: float = 0.1, fail_times: int = 2,
                 sleep: float = 2.0, delay: float = 0.0):
        self.mode, self.settle, self.fail_times, self.sleep = mode, settle, fail_times, sleep
        self.delay = delay
        self.lock = threading.Lock()
        self.requests = []
        self.legs = {}       # ref -> (kind, created_at, idempotency key)
        self.by_key = {}     # idempotency key -> ref (a repeated initiate returns the same leg)
        self.failures = {}   # kind -> count of injected failures so far
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, code, obj, headers=None):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _handle(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"null") if n else None
                key = self.headers.get("Idempotency-Key")
                with stub.lock:
                    stub.requests.append((method, self.path, key, body))
                if stub.delay:
                    time.sleep(stub.delay)
                code, obj, hdrs = stub.answer(method, self.path, key, body)
                if code == 0:
                    time.sleep(stub.sleep)
                    code, obj, hdrs = 200, {"id": "late", "status": "pending"}, None
                self._send(code, obj, hdrs)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def _inject(self, kind):
        """True when this call of `kind` should fail (flaky/slow modes)."""
        with self.lock:
            n = self.failures.get(kind, 0)
            if n < self.fail_times:
                self.failures[kind] = n + 1
                return True
            return False

    def answer(self, method, path, key, body):
        parts = path.strip("/").split("/")  # v1, onramp|offramp|refunds, [ref]
        kind = parts[1] if len(parts) > 1 else ""
        if self.mode == "down":
            return 500, {"error": "provider down"}, None
        if self.mode == "flaky" and self._inject(f"{method} {kind}"):
            return 503, {"error": "try later"}, {"Retry-After": "0"}
        if self.mode == "slow" and self._inject(f"{method} {kind}"):
            return 0, None, None
        if method == "POST":
            if not key:
                return 400, {"error": "Idempotency-Key required"}, None
            if self.mode == "reject_offramp" and kind == "offramp":
                return 422, {"error": "destination account closed"}, None
            with self.lock:
                ref = self.by_key.get(key)
                if ref is None:
                    ref = f"{kind}_{len(self.legs) + 1}"
                    self.by_key[key] = ref
                    self.legs[ref] = (kind, time.monotonic(), key)
            status = "completed" if kind == "refunds" else "pending"
            return 201, {"id": ref, "status": status}, None
        ref = parts[2] if len(parts) > 2 else ""
        with self.lock:
            leg = self.legs.get(ref)
        if leg is None:
            return 404, {"error": "unknown id"}, None
        done = time.monotonic() - leg[1] >= self.settle
        return 200, {"id": ref, "status": "completed" if done else "pending"}, None

    def count(self, method=None, kind=None):
        with self.lock:
            return sum(1 for m, p, k, b in self.requests
                       if (method is None or m == method) and (kind is None or f"/{kind}" in p))


def start_persistent_redis(base: Path):
    """A redis-server with an append-only file fsynced on every write, so a
    restart keeps everything (the SPEC's production setting for queues)."""
    from rampart_it import Redis

    class PersistentRedis(Redis):
        def start(self) -> None:
            logf = open(self.log, "ab")
            try:
                self.proc = subprocess.Popen(
                    ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                     "--daemonize", "no", "--dir", str(self.dir)],
                    stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                    start_new_session=True)
            finally:
                logf.close()

            def ready():
                try:
                    return self.cli("PING") == "PONG"
                except RuntimeError:
                    return False

            if not wait_for(ready, 30, 0.05):
                raise RuntimeError(f"redis not ready:\n{tail(self.log)}")

    r = PersistentRedis(base)
    r.start()
    return r

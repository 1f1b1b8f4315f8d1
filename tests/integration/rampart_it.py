"""Helpers for rampart's integration tests: servers, processes, HTTP, money,
and the OpenAPI contract every api response is checked against.

Standard library plus Debian's python3-yaml and python3-jsonschema. conftest.py
builds fixtures from these classes; test modules import the HTTP and money
helpers directly (pytest puts this directory on sys.path).
"""

import datetime as dt
import decimal
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, Optional
from urllib.parse import urlsplit

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("RAMPART_BIN") or REPO / "bin").resolve()
STATIC_KEYS = ("sk_test_1", "sk_test_2")
KEY = STATIC_KEYS[0]

# Lines in a sanitizer build's stderr that mean a memory or UB error.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

QUOTE_ID_RE = re.compile(r"^quote_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
RFC3339_Z_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
RATE_RE = re.compile(r"^[0-9]+(\.[0-9]{1,10})?$")


def pg_bindir() -> Path:
    preferred = Path("/usr/lib/postgresql/15/bin")
    if (preferred / "postgres").exists():
        return preferred
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found: install postgresql-15")
    return found[-1].parent


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, n: int = 60) -> str:
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"({path}: missing)"
    return "\n".join(lines[-n:])


def wait_for(pred, timeout: float, interval: float = 0.05):
    """Calls pred() until it returns a truthy value or timeout seconds pass;
    returns that value, or None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def stop_process(proc: subprocess.Popen, sig: int, timeout: float) -> Optional[int]:
    """Sends sig, waits up to timeout seconds; SIGKILLs (and returns None) when
    the process does not exit in time, else returns its exit code."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        return None


# --------------------------------------------------------------------------
# PostgreSQL and Redis servers

def _unpriv_kwargs() -> dict:
    """PostgreSQL refuses to run as root: run its programs as nobody then."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam("nobody")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _chown_unpriv(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam("nobody")
        os.chown(path, pw.pw_uid, pw.pw_gid)


class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<port> with superuser
    "rampart" (trust auth) and database "rampart". stop() and start() keep the
    port and the data, as a real server restart does."""

    def __init__(self, base: Path, name: str = "pg"):
        self.bindir = pg_bindir()
        self.base = base
        self.datadir = base / f"{name}-data"
        self.sockdir = base / f"{name}-sock"
        self.log = base / f"{name}.log"
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"postgres://rampart@127.0.0.1:{self.port}/rampart"

    def init(self) -> None:
        for d in (self.datadir, self.sockdir):
            d.mkdir(mode=0o700)
            _chown_unpriv(d)
        r = subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.datadir), "-A", "trust", "-U", "rampart",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}, **_unpriv_kwargs())
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout}")
        self.start()
        r = subprocess.run([str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "rampart", "rampart"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"createdb failed: {r.stderr}")

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        logf = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(self.port),
                 "-k", str(self.sockdir), "-c", "listen_addresses=127.0.0.1",
                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=300"],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}, start_new_session=True,
                **_unpriv_kwargs())
        finally:
            logf.close()
        if not wait_for(self._ready, 60, 0.1):
            raise RuntimeError(f"PostgreSQL not ready on port {self.port}:\n{tail(self.log)}")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"postgres exited ({self.proc.returncode}):\n{tail(self.log)}")
        r = subprocess.run([str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p",
                            str(self.port), "-U", "rampart", "-d", "postgres"], timeout=10)
        return r.returncode == 0

    def stop(self) -> None:
        """Fast shutdown (SIGINT): clients are disconnected, data is kept."""
        if self.proc is None:
            return
        rc = stop_process(self.proc, signal.SIGINT, 60)
        if rc is None:
            raise RuntimeError(f"postgres did not stop on SIGINT:\n{tail(self.log)}")

    def psql(self, sql: str, db: str = "rampart") -> str:
        """Runs sql, returns unaligned tuples-only output; raises on error."""
        r = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", "rampart", "-d", db, "-c", sql],
            capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {sql}\n{r.stderr}")
        return r.stdout.strip()

    def dump(self) -> str:
        """Schema and data of database rampart, for before/after comparisons."""
        r = subprocess.run([str(self.bindir / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "rampart", "--no-owner", "rampart"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"pg_dump failed: {r.stderr}")
        # Recent pg_dump brackets its output with \restrict <random token>.
        return "\n".join(ln for ln in r.stdout.splitlines()
                         if not ln.startswith(("\\restrict", "\\unrestrict")))


class Redis:
    """A throwaway redis-server on 127.0.0.1:<port>, no persistence."""

    def __init__(self, base: Path):
        self.dir = base / "redis"
        self.dir.mkdir()
        self.log = base / "redis.log"
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        logf = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--dir", str(self.dir)],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            logf.close()

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited:\n{tail(self.log)}")
            try:
                return self.cli("PING") == "PONG"
            except RuntimeError:
                return False

        if not wait_for(ready, 30, 0.05):
            raise RuntimeError(f"redis not ready on port {self.port}:\n{tail(self.log)}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM, 30)

    def cli(self, *args: str) -> str:
        r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0 or r.stdout.startswith("ERR") or r.stdout.startswith("(error)"):
            raise RuntimeError(f"redis-cli {' '.join(args)}: {r.stdout}{r.stderr}")
        return r.stdout.strip()


# --------------------------------------------------------------------------
# The OpenAPI contract (docs/openapi.yaml)
#
# request() checks every answer of a rampart-api (a port an Api object owns)
# against the document: the operation for the path template and method, the
# response for the status, its required headers and their schemas, the media
# type, and the body against the schema (JSON Schema 2020-12). A request that
# matches no path must get 404 NOT_FOUND, and a documented path with another
# method 405 METHOD_NOT_ALLOWED with Allow naming the documented methods (what
# info.description says); anything else the document does not describe is a
# contract violation and fails the test that received it.

OPENAPI_YAML = REPO / "docs" / "openapi.yaml"
API_PORTS: set = set()  # ports of the rampart-api processes started by the tests
CHECKED = {"answers": 0}  # api answers checked so far (conftest reports it)


class ContractError(AssertionError):
    """A response the OpenAPI document does not describe."""


class OpenApiContract:
    METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

    def __init__(self, path: Path = OPENAPI_YAML):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.resolver = jsonschema.RefResolver("", self.doc)
        self.routes = []
        for template, item in self.doc["paths"].items():
            rx = "".join("/[^/]+" if seg.startswith("{") else "/" + re.escape(seg)
                         for seg in template.strip("/").split("/"))
            self.routes.append((template, re.compile(f"^{rx}$"), item))
        # Literal templates first: /v1/payments before /v1/payments/{id}.
        self.routes.sort(key=lambda r: r[0].count("{"))
        self._validators = {}
        self.error_schema = {
            "type": "object", "required": ["error"], "additionalProperties": False,
            "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}}}

    def _deref(self, obj: dict) -> dict:
        while isinstance(obj, dict) and "$ref" in obj:
            _, obj = self.resolver.resolve(obj["$ref"])
        return obj

    def _schema_errors(self, schema: dict, value: Any) -> list:
        key = id(schema)
        v = self._validators.get(key)
        if v is None:
            v = jsonschema.Draft202012Validator(schema, resolver=self.resolver)
            self._validators[key] = (v, schema)  # keep schema alive: id() stays unique
        else:
            v = v[0]
        out = []
        for e in sorted(v.iter_errors(value), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(p) for p in e.absolute_path) or "(body)"
            out.append(f"{where}: {e.message}")
        return out

    def match(self, method: str, path: str):
        """(template, operation or None, documented methods) for a request;
        (None, None, []) when no path template matches."""
        for template, rx, item in self.routes:
            if rx.match(path):
                methods = [m.upper() for m in self.METHODS if m in item]
                return template, item.get(method.lower()), methods
        return None, None, []

    def problems(self, method: str, target: str, status: int, headers, raw: bytes) -> list:
        """What is wrong with one response (empty when the document describes it)."""
        path = urlsplit(target).path
        # HEAD is GET without the content (RFC 9110; the server does the same).
        head = method == "HEAD"
        template, op, methods = self.match("GET" if head else method, path)
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if op is None:
            if template is None:
                want, code = 404, "NOT_FOUND"
            else:
                want, code = 405, "METHOD_NOT_ALLOWED"
            if status != want:
                return [f"not in the document (no {method} operation for this path), "
                        f"expected {want} {code}"]
            allow = sorted(a.strip() for a in (headers.get("Allow") or "").split(","))
            if want == 405 and allow != sorted(methods):
                return [f"Allow {headers.get('Allow')!r}, the document has {methods}"]
            body = _json_or_none(raw) if ctype == "application/json" else None
            if body is None:
                return [f"{status} without a JSON error body"]
            errs = self._schema_errors(self.error_schema, body)
            if not errs and body["error"]["code"] != code:
                errs = [f"error.code {body['error']['code']!r}, expected {code!r}"]
            return errs
        responses = op.get("responses", {})
        resp = responses.get(str(status)) or responses.get(f"{status // 100}XX") \
            or responses.get("default")
        if resp is None:
            return [f"status {status} is not documented for {method} {template} "
                    f"(documented: {', '.join(sorted(responses))})"]
        resp = self._deref(resp)
        out = []
        for name, h in (resp.get("headers") or {}).items():
            h = self._deref(h)
            value = headers.get(name)
            if value is None:
                if h.get("required"):
                    out.append(f"header {name} is required and missing")
                continue
            out += [f"header {name}: {e}" for e in self._schema_errors(h.get("schema", {}), value)]
        content = resp.get("content")
        if head:
            if raw:
                out.append(f"a body ({len(raw)} bytes) in the answer to HEAD")
            return out
        if not content:
            if raw:
                out.append(f"a body ({len(raw)} bytes) where the document has none")
            return out
        if ctype not in content:
            return out + [f"Content-Type {headers.get('Content-Type')!r}, the document has "
                          f"{', '.join(content)}"]
        schema = content[ctype].get("schema", {})
        if ctype == "application/json":
            body = _json_or_none(raw)
            if body is None:
                return out + [f"body is not JSON: {raw[:200]!r}"]
        else:
            body = raw.decode("utf-8", errors="replace")
        return out + self._schema_errors(schema, body)

    def check(self, method: str, target: str, status: int, headers, raw: bytes) -> None:
        """Raises ContractError naming the route, status and problems."""
        CHECKED["answers"] += 1
        probs = self.problems(method, target, status, headers, raw)
        if probs:
            template, _, _ = self.match(method, urlsplit(target).path)
            route = f"{method} {template or urlsplit(target).path}"
            raise ContractError(
                f"OpenAPI contract (docs/openapi.yaml): {route} answered {status}, which the "
                f"document does not describe:\n  " + "\n  ".join(probs)
                + f"\n  request: {method} {target}\n  body: {raw[:600]!r}")


    def webhook_problems(self, headers, raw: bytes, name: str = "payment") -> list:
        """What is wrong with one delivery of the webhook daemon, per the
        document's webhooks section (headers, media type, payload)."""
        op = self.doc["webhooks"][name]["post"]
        headers = {k.lower(): v for k, v in headers.items()}
        out = []
        for prm in op.get("parameters", []):
            prm = self._deref(prm)
            value = headers.get(prm["name"].lower())
            if value is None:
                if prm.get("required"):
                    out.append(f"header {prm['name']} is required and missing")
                continue
            out += [f"header {prm['name']}: {e}" for e in self._schema_errors(prm["schema"], value)]
        content = op["requestBody"]["content"]
        ctype = (headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype not in content:
            return out + [f"Content-Type {headers.get('content-type')!r}"]
        body = _json_or_none(raw)
        if body is None:
            return out + [f"body is not JSON: {raw[:200]!r}"]
        return out + self._schema_errors(content[ctype]["schema"], body)

    def check_webhook(self, headers, raw: bytes, name: str = "payment") -> None:
        probs = self.webhook_problems(headers, raw, name)
        if probs:
            raise ContractError(f"OpenAPI contract (docs/openapi.yaml): a {name} webhook delivery "
                                f"the document does not describe:\n  " + "\n  ".join(probs)
                                + f"\n  body: {raw[:600]!r}")


def _json_or_none(raw: bytes):
    try:
        return json.loads(raw)
    except ValueError:
        return None


_contract: Optional[OpenApiContract] = None


def contract() -> OpenApiContract:
    global _contract
    if _contract is None:
        _contract = OpenApiContract()
    return _contract


# --------------------------------------------------------------------------
# HTTP

class Resp(NamedTuple):
    status: int
    headers: Any  # http.client.HTTPMessage: case-insensitive .get()
    body: Any     # parsed JSON when the body is JSON, else the raw bytes

    def error(self) -> dict:
        """The {"error": {...}} object of an error response (asserted)."""
        assert isinstance(self.body, dict) and isinstance(self.body.get("error"), dict), \
            f"not an error body: {self.status} {self.body!r}"
        return self.body["error"]


_NO_BODY = object()


def request(port: int, method: str, path: str, *, json_body: Any = _NO_BODY,
            body: Optional[bytes] = None, key: Optional[str] = KEY,
            content_type: Optional[str] = "application/json",
            headers: Optional[dict] = None, timeout: float = 15.0) -> Resp:
    """One HTTP/1.1 request on a fresh connection to 127.0.0.1:port.

    json_body is serialised with json.dumps; body sends raw bytes instead.
    key=None sends no Authorization header; content_type=None no Content-Type.
    The response is read even when the server answers before reading the whole
    body (413), so that case does not look like a client error. An answer of a
    rampart-api (port in API_PORTS) that docs/openapi.yaml does not describe
    raises ContractError."""
    if json_body is not _NO_BODY:
        body = json.dumps(json_body).encode()
    hdrs = {"Host": f"127.0.0.1:{port}", "Connection": "close", "User-Agent": "rampart-it"}
    if key is not None:
        hdrs["Authorization"] = f"Bearer {key}"
    if body is not None:
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        hdrs["Content-Length"] = str(len(body))
    hdrs.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    wire = head.encode("latin-1") + b"\r\n" + (body or b"")

    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            sock.sendall(wire)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close early (e.g. 413): read it
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        raw = resp.read()
    finally:
        sock.close()
    if port in API_PORTS:
        contract().check(method, path, resp.status, resp.headers, raw)
    parsed: Any = raw
    ctype = resp.headers.get("Content-Type", "")
    if raw and "json" in ctype:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw
    return Resp(resp.status, resp.headers, parsed)


# --------------------------------------------------------------------------
# rampart-api processes

class Api:
    """One rampart-api process with its own listen port and log files."""

    def __init__(self, env: dict, logdir: Path, name: str):
        self.env = env
        self.name = name
        self.port = int(env["API_LISTEN"].rsplit(":", 1)[1])
        API_PORTS.add(self.port)  # its answers are checked against docs/openapi.yaml
        self.stdout_path = logdir / f"{name}.stdout"
        self.stderr_path = logdir / f"{name}.stderr"
        self.proc: Optional[subprocess.Popen] = None
        self.exit_code: Optional[int] = None
        self.stop_seconds: Optional[float] = None
        self.terminated = False  # terminate() was called (by a test or the fixture)

    @property
    def prefix(self) -> str:
        return self.env["REDIS_PREFIX"]

    def start(self, wait_ready: bool = True, timeout: float = 10.0, preexec_fn=None) -> "Api":
        exe = BIN / "rampart-api"
        if not os.access(exe, os.X_OK):
            raise RuntimeError(f"{exe} not found or not executable (build it: make, or set RAMPART_BIN)")
        API_PORTS.add(self.port)
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen([str(exe)], env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, start_new_session=True,
                                         preexec_fn=preexec_fn)
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        last = ["no answer"]

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"rampart-api exited with {self.proc.returncode} before /readyz was 200\n"
                    f"{self.logs()}")
            try:
                r = request(self.port, "GET", "/readyz", key=None, timeout=2)
                last[0] = f"{r.status} {r.body!r}"
                return r.status == 200
            except OSError as e:
                last[0] = repr(e)
                return False

        if not wait_for(ready, timeout, 0.05):
            raise AssertionError(f"GET /readyz not 200 within {timeout} s (last: {last[0]})\n"
                                 f"{self.logs()}")

    def logs(self, n: int = 40) -> str:
        return (f"--- {self.name} stdout (last {n} lines) ---\n{tail(self.stdout_path, n)}\n"
                f"--- {self.name} stderr (last {n} lines) ---\n{tail(self.stderr_path, n)}")

    def output(self) -> str:
        """Everything the process wrote so far (stdout then stderr)."""
        return (self.stdout_path.read_text(errors="replace") + "\n"
                + self.stderr_path.read_text(errors="replace"))

    def sanitizer_errors(self) -> list:
        text = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return [m for m in SANITIZER_MARKERS if m in text]

    def terminate(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM, wait; returns the exit code (None when it had to be killed)."""
        if self.proc is None:
            return None
        if self.terminated:
            return self.exit_code
        self.terminated = True
        API_PORTS.discard(self.port)  # the port may be another daemon's next
        if self.proc.poll() is not None:
            self.exit_code = self.proc.returncode
            return self.exit_code
        t0 = time.monotonic()
        rc = stop_process(self.proc, signal.SIGTERM, timeout)
        self.stop_seconds = time.monotonic() - t0
        self.exit_code = rc
        return rc

    def stop_and_check(self) -> list:
        """Stops the process as the fixtures do on teardown; returns a list of
        contract violations (empty when it shut down cleanly)."""
        problems = []
        if self.proc is None:
            return problems
        already = not self.terminated and self.proc.poll() is not None
        rc = self.terminate(10.0)
        if already:
            problems.append(f"rampart-api ({self.name}) had already exited with {rc} before SIGTERM")
        elif rc is None:
            problems.append(f"rampart-api ({self.name}) did not exit within 10 s of SIGTERM (killed)")
        elif rc != 0:
            problems.append(f"rampart-api ({self.name}) exited with {rc} after SIGTERM, expected 0")
        san = self.sanitizer_errors()
        if san:
            problems.append(f"rampart-api ({self.name}) stderr has sanitizer reports: {san}")
        if problems:
            problems.append(self.logs(80))
        return problems

    # Convenience wrappers around request().
    def get(self, path: str, **kw) -> Resp:
        return request(self.port, "GET", path, **kw)

    def post(self, path: str, json_body: Any = _NO_BODY, **kw) -> Resp:
        return request(self.port, "POST", path, json_body=json_body, **kw)

    def call(self, method: str, path: str, **kw) -> Resp:
        return request(self.port, method, path, **kw)

    def quote(self, from_currency: str, to_currency: str, amount: int, **kw) -> Resp:
        body = {"from_currency": from_currency, "to_currency": to_currency, "amount": amount}
        body.update(kw.pop("extra", {}))
        return self.post("/v1/quotes", body, **kw)


def api_env(pg: Postgres, redis: Redis, overrides: Optional[dict] = None) -> dict:
    """The environment of an api process: nothing inherited except PATH/HOME and
    sanitizer options, so a developer's DATABASE_URL etc. cannot leak in."""
    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "HOME", "TZ", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")}
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    env.update({
        "API_LISTEN": f"127.0.0.1:{free_port()}",
        "DATABASE_URL": pg.url,
        "REDIS_URL": redis.url,
        "REDIS_PREFIX": f"it{uuid.uuid4().hex[:10]}",
        "API_KEYS": ",".join(STATIC_KEYS),
        "LOG_LEVEL": "info",
        # The tests' webhook receivers listen on 127.0.0.1; test_security.py
        # starts apis without it (the default, 0) to check the refusals.
        "WEBHOOK_ALLOW_PRIVATE": "1",
        # Admission control answers 503 OVERLOADED whenever the database
        # queue stands, which sanitizer builds of several daemons on two
        # cores cause at moments no test chooses; tests of other behaviour
        # must not depend on it. test_admission.py turns it on.
        "API_ADMISSION_TARGET_MS": "0",
    })
    for k, v in (overrides or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def run_migrate(database_url: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    env["DATABASE_URL"] = database_url
    env["LOG_LEVEL"] = "info"
    return subprocess.run([str(BIN / "rampart-api"), "--migrate"], env=env, capture_output=True,
                          text=True, timeout=timeout)


# --------------------------------------------------------------------------
# Money (SPEC section 3), computed independently of the daemon with decimal

EXPONENTS = {c: 2 for c in "USD EUR GBP CHF CAD AUD NZD MXN BRL INR SGD HKD CNY SEK NOK DKK PLN "
             "ZAR PHP IDR".split()}
EXPONENTS.update({"JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3, "USDC": 6})
DEFAULT_BPS = (200, 70, 50)  # platform, onramp, offramp

_CTX = decimal.Context(prec=80)


def cross_rate(fx_from: str, fx_to: str) -> Decimal:
    """fx_to / fx_from rounded down to 10 decimal places."""
    q = _CTX.divide(Decimal(fx_to), Decimal(fx_from))
    return q.quantize(Decimal("1e-10"), rounding=decimal.ROUND_DOWN, context=_CTX)


def fee(amount: int, bps: int) -> int:
    return -(-amount * bps // 10000)  # ceil for non-negative values


def expected_quote(amount: int, frm: str, to: str, rate: Decimal, bps=DEFAULT_BPS) -> dict:
    platform, onramp, offramp = (fee(amount, b) for b in bps)
    total = platform + onramp + offramp
    scale = _CTX.power(Decimal(10), EXPONENTS[to] - EXPONENTS[frm])
    payout = _CTX.multiply(_CTX.multiply(Decimal(amount - total), rate), scale)
    payout_int = int(payout.to_integral_value(rounding=decimal.ROUND_FLOOR, context=_CTX))
    return {"platform_fee": platform, "onramp_fee": onramp, "offramp_fee": offramp,
            "total_fees": total, "guaranteed_payout": payout_int}


def parse_ts(s: str) -> dt.datetime:
    assert RFC3339_Z_RE.match(s), f"not RFC 3339 UTC with Z: {s!r}"
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def check_error(r: Resp, status: int, code: str, param: Optional[str] = None, *,
                what: str = "") -> dict:
    """Asserts r is an error response of this status and code (and param when
    given) with the SPEC's shape; returns the error object."""
    ctx = f"{what}: " if what else ""
    assert r.status == status, f"{ctx}expected {status} {code}, got {r.status} {r.body!r}"
    assert isinstance(r.body, dict), f"{ctx}error body is not JSON: {r.body!r} " \
                                     f"(Content-Type {r.headers.get('Content-Type')!r})"
    assert "json" in (r.headers.get("Content-Type") or ""), \
        f"{ctx}Content-Type {r.headers.get('Content-Type')!r} for a JSON error"
    err = r.error()
    assert err.get("code") == code, f"{ctx}expected code {code}, got {err!r}"
    assert isinstance(err.get("message"), str) and err["message"], f"{ctx}no message: {err!r}"
    assert set(err) <= {"code", "message", "param"}, f"{ctx}unexpected error fields: {err!r}"
    if param is not None:
        assert err.get("param") == param, f"{ctx}expected param {param!r}, got {err!r}"
    if "param" in err:
        assert isinstance(err["param"], str), f"{ctx}param not a string: {err!r}"
    assert r.headers.get("X-Request-Id"), f"{ctx}no X-Request-Id header"
    return err


def cleanup_dir(path: Path) -> None:
    if os.environ.get("RAMPART_KEEP_TMP") != "1":
        shutil.rmtree(path, ignore_errors=True)

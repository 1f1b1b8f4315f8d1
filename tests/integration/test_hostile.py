"""A generated campaign of hostile input against every route of the api and
the admin ports of the worker, the webhook daemon and the feeengine (issue 13
section 4): wrong types, huge numbers, deep nesting, 10 MB bodies, slowloris
headers, invalid UTF-8, CR/LF/NUL and very long Idempotency-Key and
X-Request-Id, SQL metacharacters in every string field, path traversal and odd
bytes in ids, thousands of idle connections.

Every answer must be a 4xx JSON error (SPEC 4's shape) or a closed
connection: never a 5xx, a crash (sanitizer report, exit), a hang, or a
stored row (row counts of every table before and after). A thread probes
GET /healthz of the api throughout; every probe must answer 200.

The cases are generated from a fixed seed (HOSTILE_SEED, printed) so a
failure is reproducible; HOSTILE_SEED=<n> reruns another draw. Cases that
once broke the code are kept by name in REGRESSIONS below."""

import http.client
import io
import json
import os
import random
import resource
import socket
import threading
import time
import uuid

import pytest

from conftest import _start_pg, migrate_checked, _started
from market_stub import MarketStub
from rampart_it import KEY, SANITIZER_MARKERS, request, wait_for
from webhook_it import Webhook, webhook_env
from worker_it import Worker, worker_env

SEED = int(os.environ.get("HOSTILE_SEED", "1313"))
TIMEOUT = 20.0  # seconds a single answer may take (sanitizers, 2 shared cores)
TABLES = ("quotes", "payments", "payment_history", "events", "job_outbox", "idempotency_keys",
          "webhook_endpoints", "webhook_deliveries", "webhook_attempts", "api_keys")
MISSING_QUOTE = "quote_00000000-0000-4000-8000-000000000000"

SQL_META = ["' OR '1'='1", "'; DROP TABLE payments; --", "\\", "\"", "%", "_%", "$1", "1;--",
            "') OR 1=1 --", "\\x27", "'||pg_sleep(5)||'", "E'\\\\'", "$$;SELECT 1;$$", "`",
            "/* */", "\u2019 OR 1=1", "\\u0027"]
HUGE_NUMBERS = [b"1e308", b"-1e308", b"1e999", b"9223372036854775808", b"-9223372036854775809",
                b"18446744073709551616", b"1" * 400, b"-" + b"9" * 400, b"1e-400", b"0.0",
                b"-0", b"4.9e-324", b"1.7976931348623157e308", b"123456789012345678901234567890.5"]
WRONG_TYPES = [b"null", b"true", b"false", b"0", b"-1", b"1.5", b'""', b'"x"', b"[]", b"{}",
               b'[1,2,3]', b'{"a":1}', b'"\\u0000"']
BAD_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80",
            b"\xfe\xfe\xff\xff", b"a\xc3"]

OPTIONAL = {"priority", "metadata", "amount", "currency", "description", "destination_country",
            "customer_tier"}
ROUTES = {
    "/v1/quotes": {"from_currency": "USD", "to_currency": "EUR", "amount": 100000,
                   "priority": "standard"},
    "/v1/payments": {"quote_id": MISSING_QUOTE, "source_account": "acct_src",
                     "destination_account": "acct_dst", "metadata": {"order": "1"},
                     "amount": 100000, "currency": "USD"},
    "/v1/webhook_endpoints": {"url": "http://127.0.0.1:9/hook", "events": ["payment.completed"],
                              "description": "hostile"},
    "/v1/fees/calculate": {"from_currency": "USD", "to_currency": "EUR", "amount": 100000,
                           "destination_country": "DE", "priority": "standard",
                           "customer_tier": "standard"},
}
GET_ROUTES = ["/v1/quotes/{}", "/v1/payments/{}", "/v1/events/{}"]
ODD_IDS = ["..", "../..", "..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e", "%00", "quote_%00",
           "%ff%fe", "%c0%ae%c0%ae", "quote_" + "a" * 5000, "%27%20OR%20%271%27=%271",
           "pay_00000000-0000-4000-8000-000000000000%00", "%0d%0aX-Evil:%201", "%",
           "%zz", "evt_%2Fetc", "quote_00000000-0000-4000-8000-00000000000G", "*", "~root",
           "%252e%252e", "\u00e9".encode().decode("latin-1"), "quote_ 1", "a;b", "a'b",
           "%E2%80%AE", "%7B%7D"]
# Inputs that broke the code once; each is replayed on every run, whatever
# the seed draws. (what, wire bytes, method)
REGRESSIONS = [
    # evhttp answered 501 in HTML and kept the connection open (a client hang).
    ("CONNECT", b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
     "CONNECT"),
    ("TRACE", b"TRACE /v1/payments HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "TRACE"),
    # evhttp's own HTML 501/400/413 pages instead of the JSON error shape.
    ("unknown method", b"FOO /v1/payments HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "FOO"),
    ("CR in Idempotency-Key", b"POST /v1/payments HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\rb\r\n"
     b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", "POST"),
    ("Content-Length -1", b"POST /v1/quotes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
     b"Content-Length: -1\r\nConnection: close\r\n\r\n{}", "POST"),
    ("2 MB body", b"POST /v1/quotes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
     b"Content-Length: 2097152\r\nConnection: close\r\n\r\n" + b" " * 2097152, "POST"),
    # Found by fuzz_http: evhttp echoed the request's version in the status
    # line ("HTTP/0.1 404", "HTTP/1.11 404", "HTTP/1.-1 404"): no client reads that.
    ("HTTP/0.1", b"GET /v1/payments HTTP/0.1\r\nHost: x\r\nConnection: close\r\n\r\n", "GET"),
    ("HTTP/1.11", b"GET /v1/nope HTTP/1.11\r\nHost: x\r\nConnection: close\r\n\r\n", "GET"),
    ("HTTP/1.-1", b"GET /v1/nope HTTP/1.-1\r\nHost: x\r\nConnection: close\r\n\r\n", "GET"),
    # A malformed query string was ignored: 200 with the default listing.
    ("query %%%", b"GET /v1/payments?%%% HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
     KEY.encode() + b"\r\nConnection: close\r\n\r\n", "GET"),
]


# --------------------------------------------------------------------------
# A raw HTTP client: whatever bytes we like, and an answer or a closed socket.

class Closed(Exception):
    pass


class _Bytes:
    def __init__(self, data):
        self.data = data

    def makefile(self, mode):
        return io.BytesIO(self.data)


def _complete(got: bytes) -> bool:
    end = got.find(b"\r\n\r\n")
    if end < 0:
        return False
    for line in got[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(got) >= end + 4 + int(value.strip())
    return False


def raw(port, data: bytes, timeout=TIMEOUT, method="POST"):
    """Sends data and reads until the server closes the connection (every
    case sends Connection: close) or a whole answer with a Content-Length
    arrived (evhttp keeps a CONNECT's connection open, as a tunnel). Returns (status, headers, body bytes), or
    raises Closed when the server closed without an answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = bytearray()
    try:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it may have answered early (413) and closed: read it
        deadline = time.monotonic() + timeout
        while True:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                raise AssertionError(f"connection still open {timeout} s later (a hang); got "
                                     f"{bytes(got[:300])!r} to {data[:200]!r}")
            if not chunk:
                break
            got += chunk
            if _complete(got):
                break  # a whole answer with a Content-Length: fine open or closed
    finally:
        sock.close()
    if not got:
        raise Closed("closed without an answer")
    if not got.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")):
        raise AssertionError(f"bad status line: {bytes(got[:300])!r} to {data[:200]!r}")
    resp = http.client.HTTPResponse(_Bytes(bytes(got)), method=method)
    try:
        resp.begin()
        body = resp.read()
    except (http.client.HTTPException, ValueError) as e:
        raise AssertionError(f"not an HTTP answer ({e!r}): {bytes(got[:300])!r} to {data[:200]!r}")
    return resp.status, resp.headers, body


def wire(method, path, body=None, headers=None, key=KEY, ctype=b"application/json"):
    h = [b"%s %s HTTP/1.1" % (method.encode(), path if isinstance(path, bytes) else path.encode()),
         b"Host: 127.0.0.1", b"Connection: close"]
    if key is not None:
        h.append(b"Authorization: Bearer " + (key if isinstance(key, bytes) else key.encode()))
    if body is not None:
        if ctype is not None:
            h.append(b"Content-Type: " + ctype)
        h.append(b"Content-Length: %d" % len(body))
    for k, v in (headers or []):
        h.append(k + b": " + v)
    return b"\r\n".join(h) + b"\r\n\r\n" + (body or b"")


class Campaign:
    def __init__(self, port):
        self.port = port
        self.answered = 0
        self.closed = 0
        self.created = {}  # table -> rows legitimately created by the campaign
        self.failures = []

    def check(self, what, data, method="POST", allow=()):
        """One case: a 4xx JSON error or a closed connection. allow lists
        statuses that are also fine for this case (e.g. 201 for a body
        whose SQL metacharacters must be stored verbatim)."""
        try:
            status, headers, body = raw(self.port, data, method=method)
        except Closed:
            self.closed += 1
            return None
        except AssertionError as e:  # a hang or not HTTP: record, go on
            self.failures.append(f"{what}: {e}")
            return None
        self.answered += 1
        if status in allow:
            return status, headers, body
        problem = None
        if not 400 <= status < 500:
            problem = f"status {status}"
        elif "application/json" not in (headers.get("Content-Type") or ""):
            problem = f"{status} with Content-Type {headers.get('Content-Type')!r}"
        else:
            try:
                err = json.loads(body)["error"]
                assert isinstance(err["code"], str) and isinstance(err["message"], str)
            except (ValueError, KeyError, TypeError, AssertionError):
                problem = f"{status} body is not the error shape"
        for name in ("X-Evil", "Set-Cookie"):
            if headers.get(name) is not None:
                problem = f"injected header {name} in the reply"
        if problem:
            self.failures.append(f"{what}: {problem}: {body[:200]!r} (request {data[:160]!r})")
        return status, headers, body


def body_with(route, field, raw_value: bytes) -> bytes:
    """The route's base body with one field's value replaced by raw bytes."""
    base = dict(ROUTES[route])
    marker = "__HOSTILE__"
    base[field] = marker
    return json.dumps(base).encode().replace(b'"' + marker.encode() + b'"', raw_value)


def invalidate(route, body: dict) -> dict:
    """Makes a body that must not store anything, whatever else it holds."""
    if route == "/v1/payments":
        body["quote_id"] = MISSING_QUOTE
    return body


def generate(rng: random.Random):
    """Yields (what, wire bytes, allow) for the body routes."""
    for route, base in ROUTES.items():
        fields = list(base)
        for f in fields:
            for v in WRONG_TYPES:
                if f == "metadata" and v.startswith(b"{"):
                    continue  # an object is its type
                if v == b"null" and f in OPTIONAL:
                    continue  # absent: valid
                # description is free text: a string is fine (stored or not)
                allow = (201,) if f == "description" and v.startswith(b'"') else ()
                yield f"{route} {f}={v!r}", wire("POST", route, body_with(route, f, v)), allow
            for v in rng.sample(HUGE_NUMBERS, 6):
                yield f"{route} {f}={v[:20]!r}", wire("POST", route, body_with(route, f, v)), ()
            depth = rng.choice([64, 1000, 100000])
            nest = b"[" * depth + b"]" * depth if rng.random() < 0.5 else \
                b'{"a":' * depth + b"1" + b"}" * depth
            yield f"{route} {f} nested {depth}", wire("POST", route, body_with(route, f, nest)), ()
            for bad in rng.sample(BAD_UTF8, 3):
                v = b'"US' + bad + b'D"'
                yield f"{route} {f} utf8 {bad!r}", wire("POST", route, body_with(route, f, v)), ()
            if isinstance(base[f], str):
                for s in SQL_META:
                    body = invalidate(route, dict(base))
                    body[f] = s if rng.random() < 0.5 else base[f] + s
                    allow = (201,) if route == "/v1/webhook_endpoints" else ()
                    yield (f"{route} {f} sql {s!r}", wire("POST", route, json.dumps(body).encode()),
                           allow)
                long = "x" * rng.choice([300, 5000, 70000])
                body = invalidate(route, dict(base))
                body[f] = long
                allow = (201,) if f == "description" and len(long) <= 300 else ()
                yield f"{route} {f} long", wire("POST", route, json.dumps(body).encode()), allow
        # The body itself.
        for b in (b"", b"{", b"}", b"[" * 200000, b"\xff\xfe{}", b"{}" * 1000, b"null",
                  b'{"a":1,"a":2}', b"\x00" * 100, b'{"' + b"k" * 60000 + b'":1}',
                  json.dumps({f"k{i}": i for i in range(5000)}).encode()):
            yield f"{route} body {b[:20]!r}", wire("POST", route, b), ()
        for ct in (b"text/plain", b"application/json\x00", b"application/jsonx", b"",
                   b"multipart/form-data; boundary=x"):
            # An empty object: 415, or 400 should the type pass.
            yield f"{route} content-type {ct!r}", wire("POST", route, b"{}", ctype=ct), ()


def protocol_cases(rng: random.Random):
    """Yields (what, wire bytes, method) for request-line, header and id abuse."""
    good = json.dumps(ROUTES["/v1/payments"]).encode()
    for name in (b"Idempotency-Key", b"X-Request-Id"):
        for v in (b"a\rb", b"a\x00b", b"a\x01b", b"\xff\xfe", b"k" * 256, b"k" * 20000,
                  b"a\r\n X-Evil: 1", b"a\r\nX-Evil: 1", b" ", b"\t", b"a\nX-Evil: 1",
                  b"\xc3\xa9t\xc3\xa9", b"' OR 1=1 --", b"%0d%0aX-Evil:1"):
            yield (f"payments {name!r}={v[:20]!r}",
                   wire("POST", "/v1/payments", good, [(name, v)]), "POST")
            yield (f"quote get {name!r}={v[:20]!r}",
                   wire("GET", "/v1/quotes/" + MISSING_QUOTE, None, [(name, v)]), "GET")
    for route in GET_ROUTES + ["/v1/webhook_endpoints/{}", "/v1/events/{}/redeliver"]:
        method = "DELETE" if route.startswith("/v1/webhook_endpoints") else \
            "POST" if route.endswith("redeliver") else "GET"
        for i in ODD_IDS:
            yield f"{method} {route} id {i[:30]!r}", wire(method, route.format(i).encode("latin-1")), \
                method
    for q in (b"limit=99999999999999999999", b"limit=-1", b"limit=1e3", b"limit=%00",
              b"status=' OR 1=1 --", b"status=%ff", b"starting_after=../../x",
              b"starting_after=pay_%27", b"limit=" + b"9" * 5000, b"%%%", b"a=%zz&&&=",
              b"starting_after=pay_00000000-0000-4000-8000-000000000000"):
        yield f"list {q[:30]!r}", wire("GET", b"/v1/payments?" + q), "GET"
    # Authorization abuse (401, never 5xx).
    for k in (b"", b"\xff", b"x" * 20000, b"' OR '1'='1", b"sk_test_1 extra", b"\x00sk_test_1"):
        yield f"auth {k[:20]!r}", wire("POST", "/v1/quotes", json.dumps(ROUTES["/v1/quotes"]).encode(),
                                       key=k), "POST"
    # Request lines and framing.
    for line in (b"GET /v1/quotes/" + b"a" * 100000 + b" HTTP/1.1",
                 b"GET /v1/payments HTTP/9.9",
                 b"GET /v1/payments", b"FOO /v1/payments HTTP/1.1", b"TRACE /v1/payments HTTP/1.1",
                 b"CONNECT 127.0.0.1:22 HTTP/1.1", b"GET \xff\xfe HTTP/1.1",
                 b"GET /v1/../../etc/passwd HTTP/1.1", b"GET //v1//payments HTTP/1.1",
                 b"GET /v1/payments/%2e%2e/quotes HTTP/1.1", b"\x00\x01\x02 / HTTP/1.1"):
        data = line + b"\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + \
            b"\r\nConnection: close\r\n\r\n"
        yield f"request line {line[:40]!r}", data, line.split(b" ")[0].decode("latin-1")
    for cl in (b"99999999999999999999", b"-1", b"abc", b"10, 10", b"0x10"):
        yield f"content-length {cl!r}", (b"POST /v1/quotes HTTP/1.1\r\nHost: x\r\nAuthorization: "
                                         b"Bearer " + KEY.encode() + b"\r\nContent-Type: "
                                         b"application/json\r\nContent-Length: " + cl +
                                         b"\r\nConnection: close\r\n\r\n{}"), "POST"
    many = b"".join(b"X-H%d: %d\r\n" % (i, i) for i in range(rng.choice([3000, 10000])))
    yield "many headers", b"GET /v1/payments HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n", "GET"
    yield "huge header", b"GET /v1/payments HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + \
        b"\r\n\r\n", "GET"
    yield "chunked garbage", (b"POST /v1/quotes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                              KEY.encode() + b"\r\nContent-Type: application/json\r\n"
                              b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                              b"zz\r\n{}\r\n0\r\n\r\n"), "POST"


# --------------------------------------------------------------------------
# The system under attack

@pytest.fixture(scope="module")
def system(workdir, redis, module_start_api):
    """An api on a PostgreSQL of its own (so that every row count is ours),
    with a worker, a webhook daemon and a feeengine sharing its prefix."""
    pg = _start_pg(workdir, f"pg-hostile-{uuid.uuid4().hex[:6]}")
    stub = MarketStub()
    daemons = []
    try:
        migrate_checked(pg)
        prefix = f"ithostile{uuid.uuid4().hex[:8]}"
        api = module_start_api({"REDIS_PREFIX": prefix, "FEE_TIMEOUT_MS": "4000",
                                "RATE_LIMIT_RPS": "1000000", "RATE_LIMIT_BURST": "1000000"}, pg=pg)
        w = Worker(worker_env(pg, redis, prefix), workdir, f"hostile-worker-{prefix}")
        wh = Webhook(webhook_env(pg, redis, prefix), workdir, f"hostile-webhook-{prefix}")
        fe_env = worker_env(pg, redis, prefix, {**stub.env(), "DATABASE_URL": None,
                                                "SHUTDOWN_GRACE_SECONDS": "3"})

        class FeeEngine(Worker):
            BINARY = "rampart-feeengine"

        fe = FeeEngine(fe_env, workdir, f"hostile-feeengine-{prefix}")
        for d in (w, wh, fe):
            daemons.append(d)
            _started.append(d)
            d.start()
        yield pg, api, daemons
    finally:
        problems = []
        for d in daemons:
            problems += d.stop_and_check()
        stub.close()
        pg.stop()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


def row_counts(pg) -> dict:
    out = pg.psql("SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in TABLES))
    return dict(zip(TABLES, (int(x) for x in out.strip().split("|"))))


class HealthProbe:
    """GET /healthz on a fresh connection every 100 ms until stopped."""

    def __init__(self, port):
        self.port = port
        self.ok = 0
        self.bad = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                r = request(self.port, "GET", "/healthz", key=None, timeout=10)
                if r.status == 200:
                    self.ok += 1
                else:
                    self.bad.append(f"{r.status} {r.body!r}")
            except OSError as e:
                self.bad.append(f"{e!r} after {time.monotonic() - t0:.1f} s")
            self.stop.wait(0.1)

    def finish(self):
        self.stop.set()
        self.thread.join(15)
        assert not self.bad, f"/healthz failed during the campaign: {self.bad[:10]}"
        assert self.ok > 0, "/healthz never answered"


def check_alive(api, daemons):
    assert api.proc.poll() is None, f"the api exited with {api.proc.returncode}\n{api.logs()}"
    assert not api.sanitizer_errors(), api.logs(120)
    for d in daemons:
        assert d.proc.poll() is None, f"{d.name} exited\n{d.logs()}"
        text = d.stderr_path.read_text(errors="replace")
        assert not any(m in text for m in SANITIZER_MARKERS), d.logs(120)


def test_hostile_bodies_headers_and_ids(system):
    pg, api, daemons = system
    print(f"HOSTILE_SEED={SEED}")
    rng = random.Random(SEED)
    before = row_counts(pg)
    probe = HealthProbe(api.port)
    c = Campaign(api.port)
    n = 0
    try:
        for what, data, allow in generate(rng):
            res = c.check(what, data, allow=allow)
            n += 1
            if res and res[0] == 201 and 201 in allow:
                # SQL metacharacters accepted: stored verbatim, nothing else.
                sent = json.loads(data.split(b"\r\n\r\n", 1)[1])
                got = json.loads(res[2])
                assert got.get("url") == sent["url"], f"{what}: stored {got.get('url')!r}"
                c.created["webhook_endpoints"] = c.created.get("webhook_endpoints", 0) + 1
        for what, data, method in protocol_cases(rng):
            c.check(what, data, method=method)
            n += 1
        for what, data, method in REGRESSIONS:
            c.check(what, data, method=method)
            n += 1
    finally:
        probe.finish()
    check_alive(api, daemons)
    print(f"{n} cases: {c.answered} answered 4xx, {c.closed} closed; /healthz {probe.ok} ok")
    assert not c.failures, f"{len(c.failures)} of {n} cases failed:\n" + "\n".join(c.failures[:40])
    after = row_counts(pg)
    expect = {t: before[t] + c.created.get(t, 0) for t in TABLES}
    assert after == expect, f"rows stored by hostile input: before {before}, after {after}"
    # Still serving real requests afterwards.
    assert api.quote("USD", "EUR", 100000).status == 201


def test_ten_megabyte_bodies(system):
    pg, api, daemons = system
    before = row_counts(pg)
    probe = HealthProbe(api.port)
    c = Campaign(api.port)
    big = b'{"pad":"' + b"x" * (10 * 1024 * 1024) + b'"}'
    try:
        for route in ROUTES:
            c.check(f"10 MB {route}", wire("POST", route, big))
            c.check(f"10 MB {route} no content-type", wire("POST", route, big, ctype=None))
            chunked = (b"POST " + route.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                       + KEY.encode() + b"\r\nContent-Type: application/json\r\n"
                       b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
                       b"".join(b"100000\r\n" + b"x" * 0x100000 + b"\r\n" for _ in range(10)) +
                       b"0\r\n\r\n")
            c.check(f"10 MB chunked {route}", chunked)
        for d in daemons:
            c.port = d.port
            c.check(f"10 MB to {d.BINARY} /metrics", wire("POST", "/metrics", big, key=None))
    finally:
        probe.finish()
    check_alive(api, daemons)
    assert not c.failures, "\n".join(c.failures)
    assert row_counts(pg) == before


def test_admin_ports(system):
    pg, api, daemons = system
    rng = random.Random(SEED + 1)
    for d in daemons:
        c = Campaign(d.port)
        for path in ("/metrics", "/healthz", "/readyz"):
            for m in ("POST", "PUT", "DELETE", "PATCH", "FOO"):
                c.check(f"{d.BINARY} {m} {path}", wire(m, path, b"{}", key=None), method=m)
            c.check(f"{d.BINARY} {path}/..", wire("GET", path + "/..", key=None), method="GET")
            c.check(f"{d.BINARY} {path}?{'x' * 9000}",
                    wire("GET", path + "?" + "x" * 9000, key=None, ctype=None), method="GET",
                    allow=(200,))
            c.check(f"{d.BINARY} {path} X-Request-Id CRLF",
                    wire("GET", path, None, [(b"X-Request-Id", b"a\r\nX-Evil: 1")], key=None),
                    method="GET", allow=(200,))
        for i in rng.sample(ODD_IDS, 8):
            c.check(f"{d.BINARY} /{i[:20]}", wire("GET", ("/" + i).encode("latin-1"), key=None),
                    method="GET")
        c.check(f"{d.BINARY} huge header", b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " +
                b"a" * 200000 + b"\r\n\r\n", method="GET")
        assert not c.failures, "\n".join(c.failures)
        assert request(d.port, "GET", "/healthz", key=None).status == 200
    check_alive(api, daemons)


def _raise_nofile(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft


def test_slowloris_and_idle_connections(system):
    """2,000 idle connections and 100 slowloris clients (a header line every
    half second for 8 s): the api keeps answering /healthz and real
    requests, then every connection is closed by us, and it carries on."""
    pg, api, daemons = system
    limit = _raise_nofile(4096)
    n_idle = min(2000, limit - 300)
    assert n_idle >= 500, f"open-file limit {limit} too low for this test"
    probe = HealthProbe(api.port)
    socks = []
    try:
        for _ in range(n_idle):
            s = socket.create_connection(("127.0.0.1", api.port), timeout=TIMEOUT)
            socks.append(s)
        slow = []
        for i in range(100):
            s = socket.create_connection(("127.0.0.1", api.port), timeout=TIMEOUT)
            s.sendall(b"POST /v1/quotes HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        t_end = time.monotonic() + 8
        i = 0
        while time.monotonic() < t_end:
            for s in slow:
                try:
                    s.sendall(b"X-Slow-%d: %d\r\n" % (i, i))
                except OSError:
                    pass  # closed by the server: fine
            i += 1
            # Real clients still get served meanwhile.
            assert api.quote("USD", "EUR", 100000).status == 201
            time.sleep(0.5)
        socks += slow
        assert wait_for(lambda: request(api.port, "GET", "/healthz", key=None).status == 200, 10)
    finally:
        for s in socks:
            s.close()
        probe.finish()
    check_alive(api, daemons)
    r = api.quote("USD", "EUR", 100000)
    assert r.status == 201, r

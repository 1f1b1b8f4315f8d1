"""Security controls (issue 13 §6, docs/security.md): webhook URLs that can
never be delivered are refused at registration, webhook secrets are shown
once, API keys live only as hashes and never reach the logs.

SSRF cases use loopback names and addresses only (127.0.0.0/8, ::1,
localhost and numeric / IPv4-mapped spellings of them)."""

import json
import re
import subprocess
import time
import uuid

import pytest

from rampart_it import BIN, api_env, check_error, wait_for
from webhook_it import payment_data

LOOPBACK_URLS = [
    "http://127.0.0.1/",
    "http://127.0.0.1:8080/hook",
    "https://127.1.2.3/x",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]:9000/h",
    "http://[64:ff9b::7f00:1]/",        # NAT64 of 127.0.0.1
    "http://2130706433/",               # 127.0.0.1 as one decimal number
    "http://0x7f.1/",                   # hex, short form
    "http://0x7f000001/",
    "http://0177.0.0.1/",               # octal
    "http://127.1/",
    "http://localhost/",
    "http://LOCALHOST:8443/x",
    "http://localhost./",
    "http://api.localhost/",            # RFC 6761: *.localhost is loopback
    "http://user:pw@127.0.0.1/",
]


@pytest.fixture(scope="module")
def strict_api(module_start_api):
    """An api with the default WEBHOOK_ALLOW_PRIVATE (0)."""
    return module_start_api({"WEBHOOK_ALLOW_PRIVATE": None})


@pytest.mark.parametrize("url", LOOPBACK_URLS)
def test_undeliverable_webhook_url_refused(strict_api, migrated, url):
    before = migrated.psql("SELECT count(*) FROM webhook_endpoints")
    r = strict_api.post("/v1/webhook_endpoints", {"url": url, "events": ["*"]})
    err = check_error(r, 400, "INVALID_URL", "url", what=f"POST {url}")
    msg = r.error()["message"]
    assert "WEBHOOK_ALLOW_PRIVATE" in msg and "loopback" in msg, msg
    assert migrated.psql("SELECT count(*) FROM webhook_endpoints") == before, \
        f"{url}: a row was stored"
    del err


def test_refusal_names_the_normalised_host(strict_api):
    r = strict_api.post("/v1/webhook_endpoints", {"url": "http://0x7f.1/", "events": ["*"]})
    assert "127.0.0.1" in r.error()["message"], r.body


@pytest.mark.parametrize("url", ["https://example.com/hooks", "http://hooks.example:8080/x",
                                 "https://localhost.example/h"])
def test_public_names_still_accepted(strict_api, url):
    # Names other than localhost are judged by the webhook daemon at each
    # delivery (their DNS answers may change); the api does not resolve them.
    r = strict_api.post("/v1/webhook_endpoints", {"url": url, "events": ["*"]})
    assert r.status == 201, f"{url}: {r.status} {r.body!r}"
    # Never delivered: deleted at once (no daemon may pick it up later).
    assert strict_api.call("DELETE", f"/v1/webhook_endpoints/{r.body['id']}").status == 204


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/h", "http://[::ffff:127.0.0.1]/",
                                 "http://localhost/"])
def test_loopback_allowed_with_allow_private(api, url):
    # The tests' apis run with WEBHOOK_ALLOW_PRIVATE=1 (rampart_it.api_env).
    assert api.env.get("WEBHOOK_ALLOW_PRIVATE") == "1"
    r = api.post("/v1/webhook_endpoints", {"url": url, "events": ["*"]})
    assert r.status == 201, f"{url}: {r.status} {r.body!r}"
    assert api.call("DELETE", f"/v1/webhook_endpoints/{r.body['id']}").status == 204


@pytest.mark.parametrize("name,value", [("WEBHOOK_ALLOW_PRIVATE", "maybe"),
                                        ("RATE_LIMIT_SHARED", "2"),
                                        ("RATE_LIMIT_LEASE", "-1")])
def test_new_variables_validated(migrated, redis, name, value):
    env = api_env(migrated, redis, {name: value})
    r = subprocess.run([str(BIN / "rampart-api")], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and name in r.stdout + r.stderr, (r.returncode, r.stderr)

# --------------------------------------------------------------------------
# Webhook secrets: in the creation answer only

def test_webhook_secret_shown_once(api, migrated):
    r = api.post("/v1/webhook_endpoints", {"url": "https://example.com/once", "events": ["*"]})
    assert r.status == 201, r.body
    secret, eid = r.body["secret"], r.body["id"]
    assert secret.startswith("whsec_")
    listed = api.get("/v1/webhook_endpoints?limit=100")
    assert listed.status == 200
    raw = repr(listed.body)
    assert eid in raw and secret not in raw and "secret" not in raw, "list shows a secret"
    # An event for this endpoint: its deliveries do not show the secret either.
    evt = f"evt_{uuid.uuid4()}"
    # Its data is a payment as the worker writes it (answers are checked
    # against docs/openapi.yaml).
    data = json.dumps(payment_data())
    # Published, with its one delivery made here and no longer pending:
    # an unpublished event would be fanned out to the endpoints of whatever
    # webhook daemon a later test starts (the database is shared).
    migrated.psql(f"INSERT INTO events (id, type, payment_id, data, published_at) VALUES "
                  f"('{evt}', 'payment.completed', NULL, '{data}', now())")
    migrated.psql(f"INSERT INTO webhook_deliveries (event_id, endpoint_id, state) VALUES "
                  f"('{evt}', '{eid}', 'cancelled')")
    ev = api.get(f"/v1/events/{evt}")
    assert ev.status == 200, ev.body
    assert secret not in repr(ev.body) and "secret" not in repr(ev.body), ev.body
    # Deleting the endpoint cancels its pending delivery: nothing is sent.
    assert api.call("DELETE", f"/v1/webhook_endpoints/{eid}").status == 204


# --------------------------------------------------------------------------
# API keys: hashes only, never logged

def test_api_keys_table_holds_only_hashes(migrated):
    cols = migrated.psql("SELECT string_agg(column_name, ',' ORDER BY column_name) "
                         "FROM information_schema.columns WHERE table_name = 'api_keys'")
    assert "key_hash" in cols.split(","), cols
    assert not {"key", "secret", "api_key", "plaintext"} & set(cols.split(",")), cols
    # The CHECK constraint admits nothing but a hex SHA-256.
    with pytest.raises(RuntimeError):
        migrated.psql("INSERT INTO api_keys (id, name, key_hash) VALUES "
                      "('key_bad', 'x', 'sk_live_plaintext')")


def test_keys_never_logged_even_in_debug(start_api, migrated):
    good = f"sk_test_{uuid.uuid4().hex}"
    db_key = f"sk_live_{uuid.uuid4().hex}"
    wrong = f"sk_live_{uuid.uuid4().hex}"
    migrated.psql("INSERT INTO api_keys (id, name, key_hash) VALUES "
                  f"('key_{uuid.uuid4().hex}', 'sec', encode(sha256('{db_key}'::bytea), 'hex'))")
    a = start_api({"API_KEYS": good, "LOG_LEVEL": "debug", "RATE_LIMIT_RPS": 1,
                   "RATE_LIMIT_BURST": 2})
    assert a.quote("USD", "EUR", 10000, key=good).status == 201
    assert a.quote("USD", "EUR", 10000, key=db_key).status == 201
    assert a.quote("USD", "EUR", 10000, key=wrong).status == 401
    assert a.get("/v1/payments", key=f"{wrong}x").status == 401
    statuses = [a.get("/v1/payments", key=good).status for _ in range(3)]
    assert 429 in statuses, statuses  # a rate-limited request is logged too
    time.sleep(0.3)
    assert a.terminate() == 0, a.logs()
    out = a.output()
    for k in (good, db_key, wrong):
        assert k not in out, f"API key {k[:10]}... appears in the logs"
        # nor a recognisable half of it
        assert k[len(k) // 2:] not in out, f"the tail of API key {k[:10]}... is logged"
    assert not re.search(r"Bearer\s+sk_", out), "an Authorization header was logged"


# --------------------------------------------------------------------------
# Credentials: from the environment only, never logged

def test_credentials_only_from_env_and_never_logged(start_api, migrated):
    pg_pw = f"pgpw{uuid.uuid4().hex}"
    rd_pw = f"rdpw{uuid.uuid4().hex}"
    key = f"sk_test_{uuid.uuid4().hex}"
    db_url = migrated.url.replace("postgres://rampart@", f"postgres://rampart:{pg_pw}@")
    # Redis on a closed port (127.0.0.1:1) with a password in its URL: the
    # connection errors are logged, the password must not be.
    a = start_api({"DATABASE_URL": db_url, "REDIS_URL": f"redis://:{rd_pw}@127.0.0.1:1/0",
                   "API_KEYS": key, "LOG_LEVEL": "debug"}, wait_ready=False)
    def live():
        try:
            return a.get("/healthz", key=None, timeout=2).status == 200
        except OSError:
            return False

    assert wait_for(live, 20, 0.1), a.logs()
    assert a.quote("USD", "EUR", 10000, key=key).status == 201  # the DB URL works
    assert a.get("/health", key=None).status == 503  # Redis down, reported
    time.sleep(1.5)  # a few reconnect attempts, each logged
    assert a.terminate() == 0, a.logs()
    out = a.output()
    assert "127.0.0.1:1" in out or "redis" in out.lower(), "no Redis error logged at all?"
    for secret in (pg_pw, rd_pw, key):
        assert secret not in out, f"a credential ({secret[:6]}...) appears in the logs"


@pytest.mark.parametrize("args", [["--database-url", "postgres://x"], ["--api-keys=sk_1"],
                                  ["-k", "sk_1"]])
def test_no_credentials_on_the_command_line(args):
    # Only --migrate, --version and --help: anything else is refused, so no
    # secret can be (or needs to be) passed where `ps` would show it.
    r = subprocess.run([str(BIN / "rampart-api"), *args], capture_output=True, text=True,
                       timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode != 0 and "unknown option" in r.stderr, (r.returncode, r.stderr)

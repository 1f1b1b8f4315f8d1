"""`rampart-api keys create NAME | list | revoke ID`: API keys managed without
raw SQL. A created key is printed once, only its SHA-256 is stored, it
authenticates requests, `list` never shows it, and a revoked key is refused
(401) within API_KEY_CACHE_SECONDS."""

import hashlib
import os
import subprocess
import time

from rampart_it import BIN, wait_for


def keys(pg, *args, timeout=60):
    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "HOME", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")}
    env["DATABASE_URL"] = pg.url
    return subprocess.run([str(BIN / "rampart-api"), "keys", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def created(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    fields = dict(line.split("\t", 1) for line in r.stdout.splitlines())
    assert set(fields) == {"id", "name", "key"}, r.stdout
    return fields


def listed(pg):
    r = keys(pg, "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "id\tname\tcreated\trevoked"
    rows = {}
    for line in lines[1:]:
        kid, name, created_at, revoked = line.split("\t")
        rows[kid] = (name, created_at, revoked)
    return r.stdout, rows


def test_create_use_list_revoke(start_api, migrated):
    api = start_api({"API_KEY_CACHE_SECONDS": 2})
    k = created(keys(migrated, "create", "ops team"))
    assert k["name"] == "ops team"
    assert k["key"].startswith("sk_live_") and len(k["key"]) == 8 + 48
    assert k["id"].startswith("key_")

    # Only the hash is stored.
    stored = migrated.psql(f"SELECT key_hash FROM api_keys WHERE id = '{k['id']}'").strip()
    assert stored == hashlib.sha256(k["key"].encode()).hexdigest()
    assert migrated.psql(f"SELECT count(*) FROM api_keys WHERE key_hash LIKE '%{k['key'][8:20]}%'"
                         " OR name LIKE '%sk_live_%'").strip() == "0"

    auth = {"Authorization": f"Bearer {k['key']}"}
    r = api.quote("USD", "EUR", 10000, headers=auth)
    assert r.status == 201, r.body

    out, rows = listed(migrated)
    assert k["key"] not in out and k["key"][8:] not in out
    name, created_at, revoked = rows[k["id"]]
    assert name == "ops team" and revoked == "-"
    assert created_at.endswith("Z") and created_at[:4].isdigit()

    r = keys(migrated, "revoke", k["id"])
    assert r.returncode == 0 and r.stdout.strip() == f"revoked {k['id']}", r.stdout + r.stderr
    _, rows = listed(migrated)
    assert rows[k["id"]][2] != "-"

    # Refused once the loop's cached lookup (2 s here) has expired.
    deadline = time.monotonic() + 2 + 10
    while True:
        r = api.quote("USD", "EUR", 10000, headers=auth)
        if r.status == 401 or time.monotonic() > deadline:
            break
        assert r.status == 201, r.body
        time.sleep(0.2)
    assert r.status == 401 and r.error()["code"] == "UNAUTHORIZED", r.body

    # Revoking again is a no-op that says so; the first revocation time stays.
    before = migrated.psql(f"SELECT revoked_at FROM api_keys WHERE id = '{k['id']}'")
    r = keys(migrated, "revoke", k["id"])
    assert r.returncode == 0 and r.stdout.strip() == f"already revoked {k['id']}"
    assert migrated.psql(f"SELECT revoked_at FROM api_keys WHERE id = '{k['id']}'") == before


def test_each_key_is_new(migrated):
    a = created(keys(migrated, "create", "a"))
    b = created(keys(migrated, "create", "a"))
    assert a["id"] != b["id"] and a["key"] != b["key"]


def test_revoke_unknown_id_fails(migrated):
    r = keys(migrated, "revoke", "key_does_not_exist")
    assert r.returncode == 1 and "no key with id key_does_not_exist" in r.stderr
    r = keys(migrated, "revoke", "x'; DROP TABLE api_keys; --")
    assert r.returncode == 1
    assert migrated.psql("SELECT count(*) >= 0 FROM api_keys").strip() == "t"


def test_usage_errors(migrated):
    for args in ([], ["create"], ["create", "a", "b"], ["list", "x"], ["revoke"], ["delete", "x"]):
        r = keys(migrated, *args)
        assert r.returncode == 2, args
        assert "usage: rampart-api keys" in r.stderr
    for bad in ("", "x" * 65, "tab\there", "new\nline"):
        r = keys(migrated, "create", bad)
        assert r.returncode == 2 and "NAME must be" in r.stderr, repr(bad)


def test_database_down_is_an_error(migrated):
    env_url = "postgres://rampart@127.0.0.1:1/rampart?connect_timeout=2"

    class Down:
        url = env_url
    r = keys(Down, "list")
    assert r.returncode == 1 and "cannot connect to PostgreSQL" in r.stderr

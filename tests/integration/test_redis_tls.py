"""Redis over TLS through a stunnel sidecar, as docs/deploy.md describes:
Debian 12's hiredis has no TLS, so the daemons talk plain RESP to a local
stunnel client that verifies the server's certificate (verifyChain,
checkHost) and speaks TLS to a redis-server that listens on TLS only. The
api works through the tunnel; without it (plain RESP to the TLS port), or
through a tunnel that expects another host name, it never gets Redis."""

import signal
import subprocess
import time

import pytest

from rampart_it import free_port, stop_process, tail, wait_for

HOST = "redis.test"  # the name in the server's certificate (checkHost)


def _run(*args, cwd):
    r = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{' '.join(args)}:\n{r.stdout}{r.stderr}"


def _port_open(port):
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def tls_redis(tmp_path):
    """A redis-server on a TLS-only port, with a CA and a server certificate
    for HOST; yields (tls_port, dir)."""
    d = tmp_path
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=rampart test CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={HOST}",
         "-keyout", "server.key", "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text(f"subjectAltName=DNS:{HOST}\n")
    _run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=d)
    port = free_port()
    log = open(d / "redis.log", "ab")
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(d / "server.crt"), "--tls-key-file", str(d / "server.key"),
         "--tls-ca-cert-file", str(d / "ca.crt"), "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", str(d)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    try:
        assert wait_for(lambda: proc.poll() is None and _port_open(port), 30, 0.05), \
            tail(d / "redis.log")
        yield port, d
    finally:
        stop_process(proc, signal.SIGTERM, 30)


class Stunnel:
    """stunnel in client mode: 127.0.0.1:<port> -> TLS to 127.0.0.1:<tls_port>,
    configured like the sidecar of docs/deploy.md."""

    def __init__(self, d, tls_port, check_host=HOST):
        self.port = free_port()
        self.conf = d / f"stunnel-{self.port}.conf"
        self.log = d / f"stunnel-{self.port}.log"
        self.conf.write_text(
            "foreground = yes\n"
            "pid =\n"
            "[redis]\n"
            "client = yes\n"
            f"accept = 127.0.0.1:{self.port}\n"
            f"connect = 127.0.0.1:{tls_port}\n"
            "verifyChain = yes\n"
            f"checkHost = {check_host}\n"
            f"CAfile = {d / 'ca.crt'}\n")
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(["stunnel", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()
        assert wait_for(lambda: self.proc.poll() is None and _port_open(self.port), 30, 0.05), \
            tail(self.log)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self):
        stop_process(self.proc, signal.SIGTERM, 10)


def _redis_never_answers(api, seconds):
    """Once the api listens, /health's redis check (PING) is never up for
    `seconds`: whatever the TCP connection does, no reply comes back."""
    assert wait_for(lambda: _port_open(api.port), 30, 0.05), api.logs()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r = api.get("/health", key=None, timeout=10)
        checks = {c["service"]: c for c in r.body["checks"]}
        assert r.status == 503 and checks["redis"]["status"] == "down", r.body
        time.sleep(0.25)


def test_api_through_stunnel_sidecar(start_api, tls_redis):
    tls_port, d = tls_redis
    tunnel = Stunnel(d, tls_port)
    try:
        api = start_api({"REDIS_URL": tunnel.url}, timeout=30)
        q = api.quote("USD", "EUR", 100000)
        assert q.status == 201, q
        h = api.get("/health", key=None)
        redis_check = [c for c in h.body["checks"] if c["service"] == "redis"][0]
        assert redis_check["status"] == "up", h.body
        # The bytes went through TLS: stunnel logged a verified session.
        assert "Certificate accepted" in tunnel.log.read_text() or \
            "connected remote server" in tunnel.log.read_text(), tail(tunnel.log)
    finally:
        tunnel.stop()


def test_plain_resp_to_the_tls_port_never_connects(start_api, tls_redis):
    tls_port, _ = tls_redis
    api = start_api({"REDIS_URL": f"redis://127.0.0.1:{tls_port}/0"}, wait_ready=False)
    _redis_never_answers(api, 4)


def test_tunnel_expecting_another_host_refuses(start_api, tls_redis):
    tls_port, d = tls_redis
    tunnel = Stunnel(d, tls_port, check_host="other.test")
    try:
        api = start_api({"REDIS_URL": tunnel.url}, wait_ready=False)
        _redis_never_answers(api, 4)
    finally:
        tunnel.stop()

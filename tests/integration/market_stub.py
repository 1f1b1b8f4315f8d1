"""A loopback stub of every market-data source and of Claude's Messages API,
for the fee engine's integration tests (shapes: /work/shared/EXTERNAL_APIS.md).

One MarketStub serves, on 127.0.0.1:<random port>:
  GET  /fx                          ExchangeRate-API open access (rates per 1 USD)
  GET  /prices?ids=...              CoinGecko simple price (the query is recorded, not used)
  GET  /eth/gasnow                  beaconcha.in gas oracle (wei)
  GET  /{base,arbitrum}/api/v2/stats  Blockscout stats, flat gas_prices shape (gwei)
  GET  /polygon/api/v2/stats        Blockscout stats, object gas_prices shape (gwei)
  POST /solana                      JSON-RPC getRecentPrioritizationFees (micro-lamports)
  GET  /circle/api/v2/status.json   Atlassian Statuspage status
  POST /v1/messages                 Claude Messages API, forced tool "fee_decision"
env() returns the daemon's MARKET_*_URL / ANTHROPIC_BASE_URL variables for it.

Tests control it from the same process: change the values (fx, prices, eth_gas,
l2_gas, solana_fees, circle; read at request time), pick a failure with
set_mode(source, mode, **kw), replace decide(context) -> decision for Claude,
and look at hits / requests / claude_calls. Modes: see MARKET_MODES and
CLAUDE_MODES below and the docstrings of set_mode and _claude_answer.
"""

import copy
import json
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MARKET_SOURCES = ("fx", "prices", "eth_gas", "base", "polygon", "arbitrum", "solana", "circle")
MARKET_MODES = ("ok", "fail", "slow", "garbage", "wrong_type", "absurd", "error")
CLAUDE_MODES = ("valid", "bad_chain", "fees_10x", "invalid_json", "text", "error", "sleep",
                "sequence")
ROUTES = {"/fx": "fx", "/prices": "prices", "/eth/gasnow": "eth_gas",
          "/base/api/v2/stats": "base", "/polygon/api/v2/stats": "polygon",
          "/arbitrum/api/v2/stats": "arbitrum", "/solana": "solana",
          "/circle/api/v2/status.json": "circle", "/v1/messages": "claude"}
FEE_KEYS = ("platform_fee", "onramp_fee", "offramp_fee", "gas_cost", "risk_premium")
CIRCLE_TEXT = {"none": "All Systems Operational", "minor": "Minor Service Outage",
               "major": "Partial System Outage", "critical": "Major Service Outage"}
KEEP = 1000  # requests kept per source


def _json(status, obj, headers=None):
    return status, "application/json", json.dumps(obj).encode(), headers or {}


def _claude_error(status, etype, message, headers=None):
    return _json(status, {"type": "error", "error": {"type": etype, "message": message},
                          "request_id": "req_" + uuid.uuid4().hex[:24]}, headers)


def _neg(v):
    return -abs(v) if isinstance(v, (int, float)) and v else -1


def _iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(t))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # close() never waits for (sleeping) handlers

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):  # broken pipes are expected
            super().handle_error(request, client_address)


class MarketStub:
    def __init__(self):
        self.lock = threading.RLock()
        self.fx = {"USD": 1, "EUR": 0.919, "GBP": 0.806, "JPY": 151.2, "CHF": 0.88,
                   "CAD": 1.36, "MXN": 17.1, "BRL": 5.05, "INR": 83.3}
        self.prices = {"ethereum": 3120.55, "solana": 142.1, "usd-coin": 0.9998,
                       "matic-network": 0.52}
        self.eth_gas = {"rapid": 69000000000, "fast": 38200000000,
                        "standard": 17122906179, "slow": 15280244053}
        self.l2_gas = {"base": {"slow": 0.1, "average": 0.57, "fast": 1.05},
                       "polygon": {"slow": 25, "average": 30, "fast": 45},
                       "arbitrum": {"slow": 0.01, "average": 0.01, "fast": 0.02}}
        self.solana_fees = [0, 0, 1000, 1000, 5000, 10000]
        self.circle = "none"
        self.claude_key = "test-key"
        self.claude_calls = 0
        self.modes = {s: ("ok", {}) for s in MARKET_SOURCES}
        self.modes["claude"] = ("valid", {})
        self.hits = {s: 0 for s in MARKET_SOURCES + ("claude", "unknown")}
        self.requests = {s: [] for s in self.hits}
        self._seq = 0        # position in a Claude "sequence"
        self._conns = set()  # open client sockets, cut by close()
        self._closed = False
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def setup(self):
                super().setup()
                with stub.lock:
                    stub._conns.add(self.connection)

            def finish(self):
                with stub.lock:
                    stub._conns.discard(self.connection)
                super().finish()

            def _body(self):  # the daemon's client always sends Content-Length
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n > 0 else b""

            def _handle(self):
                source = ROUTES.get(urlsplit(self.path).path, "unknown")
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                body = self._body()
                stub._record(source, {"method": self.command, "path": self.path,
                                      "headers": hdrs, "body": body, "at": time.monotonic()})
                if source == "unknown" or (source == "claude" and self.command != "POST"):
                    reply = _json(404, {"error": "not found", "path": self.path})
                elif source == "claude":
                    reply = stub._claude(hdrs, body)
                else:
                    reply = stub._market(source, body)
                status, ctype, out, extra = reply
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(out)))
                    for k, v in extra.items():
                        self.send_header(k, str(v))
                    self.end_headers()
                    self.wfile.write(out)
                    self.wfile.flush()
                except OSError:  # the client gave up (timeout) or close() cut it
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="market-stub",
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def env(self) -> dict:
        u = self.url
        return {
            "MARKET_FX_URL": f"{u}/fx",
            "MARKET_PRICES_URL": f"{u}/prices?ids=ethereum,solana,usd-coin,matic-network"
                                 "&vs_currencies=usd&include_last_updated_at=true",
            "MARKET_ETH_GAS_URL": f"{u}/eth/gasnow",
            "MARKET_BASE_GAS_URL": f"{u}/base/api/v2/stats",
            "MARKET_POLYGON_GAS_URL": f"{u}/polygon/api/v2/stats",
            "MARKET_ARBITRUM_GAS_URL": f"{u}/arbitrum/api/v2/stats",
            "MARKET_SOLANA_RPC_URL": f"{u}/solana",
            "MARKET_CIRCLE_STATUS_URL": f"{u}/circle/api/v2/status.json",
            "ANTHROPIC_BASE_URL": u,
        }

    def close(self):
        """Stops listening and cuts open connections; never waits for sleeping handlers."""
        if self._closed:
            return
        self._closed = True
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_mode(self, source: str, mode: str, **kw):
        """Market sources: ok; fail (500); slow (sleep kw delay, default 5 s, then ok);
        garbage (200, not JSON); wrong_type (200, a key field is a string);
        absurd (200, absurd value); error (the source's own error shape, else 503).
        Claude: see CLAUDE_MODES and _claude_answer."""
        modes = CLAUDE_MODES if source == "claude" else MARKET_MODES
        if source not in self.modes or mode not in modes:
            raise ValueError(f"unknown source/mode {source!r}/{mode!r}")
        if mode == "sequence" and not kw.get("modes"):
            raise ValueError("sequence needs modes=[...]")
        with self.lock:
            self.modes[source] = (mode, kw)
            self._seq = 0

    def _record(self, source, req):
        with self.lock:
            self.hits[source] += 1
            if source == "claude":
                self.claude_calls += 1
            lst = self.requests[source]
            lst.append(req)
            if len(lst) > KEEP:
                del lst[:-KEEP]

    # ---- market sources ----

    def _market(self, source, body):
        with self.lock:
            mode, kw = self.modes[source]
            v = copy.deepcopy({"fx": self.fx, "prices": self.prices, "eth_gas": self.eth_gas,
                               "l2_gas": self.l2_gas, "solana": self.solana_fees,
                               "circle": self.circle})
        if mode == "slow":
            time.sleep(kw.get("delay", 5))
            mode = "ok"
        if mode == "fail":
            return 500, "text/html", b"<html><body>500 Internal Server Error</body></html>", {}
        if mode == "garbage":
            return 200, "text/html", b"<html>oops", {}
        if mode == "error" and source not in ("fx", "solana"):
            return _json(503, {"error": "service unavailable"})
        now = time.time()
        if source == "fx":
            if mode == "error":
                return _json(200, {"result": "error", "error-type": "unsupported-code"})
            rates = v["fx"]
            if mode == "wrong_type":
                rates["EUR"] = "abc"
            elif mode == "absurd":
                rates["EUR"] = rates.get("EUR", 0.919) * 100
            return _json(200, {"result": "success", "base_code": "USD",
                               "time_last_update_unix": int(now) - 3600,
                               "time_next_update_unix": int(now) + 82800, "rates": rates})
        if source == "prices":
            doc = {c: {"usd": p, "last_updated_at": int(now) - 10} for c, p in v["prices"].items()}
            doc.setdefault("ethereum", {"usd": 3120.55, "last_updated_at": int(now) - 10})
            if mode == "wrong_type":
                doc["ethereum"]["usd"] = "lots"
            elif mode == "absurd":
                doc["ethereum"]["usd"] = _neg(doc["ethereum"]["usd"])
            return _json(200, doc)
        if source == "eth_gas":
            data = self._tiers(v["eth_gas"], mode)
            data.update(timestamp=int(now * 1000), priceUSD=v["prices"].get("ethereum"))
            return _json(200, {"code": 200, "data": data})
        if source in ("base", "polygon", "arbitrum"):
            tiers = self._tiers(v["l2_gas"].get(source, {}), mode)
            coin = v["prices"].get("matic-network" if source == "polygon" else "ethereum")
            if source == "polygon":  # the object shape
                tiers = {k: None if p is None else
                         {"price": p, "fiat_price": "0.01", "time": 12000,
                          "base_fee": p * 0.9 if isinstance(p, (int, float)) else p,
                          "priority_fee": p * 0.1 if isinstance(p, (int, float)) else p}
                         for k, p in tiers.items()}
                return _json(200, {"gas_prices": tiers, "coin_price": str(coin)})
            return _json(200, {"gas_prices": tiers, "gas_price_updated_at": _iso(now),
                               "coin_price": str(coin), "average_block_time": 2364})
        if source == "solana":
            return _json(200, self._solana(v["solana"], mode, body))
        indicator = {"wrong_type": 42, "absurd": "purple"}.get(mode, v["circle"])
        return _json(200, {"page": {"id": "y2j98763l56x", "name": "Circle",
                                    "url": "https://status.circle.com",
                                    "updated_at": _iso(now)},
                           "status": {"indicator": indicator,
                                      "description": CIRCLE_TEXT.get(indicator, "Unknown")}})

    @staticmethod
    def _tiers(tiers, mode):
        if mode == "wrong_type":
            return {k: "lots" for k in tiers}
        if mode == "absurd":
            return {k: _neg(p) for k, p in tiers.items()}
        return dict(tiers)

    @staticmethod
    def _solana(fees, mode, body):
        try:
            req = json.loads(body)
        except ValueError:
            req = None
        if not isinstance(req, dict):
            return {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"},
                    "id": None}
        rid = req.get("id")
        if mode == "error":
            return {"jsonrpc": "2.0", "id": rid,
                    "error": {"code": -32005, "message": "Node is behind by 42 slots"}}
        if req.get("method") != "getRecentPrioritizationFees":
            return {"jsonrpc": "2.0", "id": rid,
                    "error": {"code": -32601, "message": "Method not found"}}
        if mode == "wrong_type":
            fees = ["lots" for _ in fees]
        elif mode == "absurd":
            fees = [_neg(f) for f in fees]
        return {"jsonrpc": "2.0", "id": rid,
                "result": [{"slot": 348125 + i, "prioritizationFee": f}
                           for i, f in enumerate(fees)]}

    # ---- Claude ----

    def decide(self, context: dict) -> dict:
        """Default decision: the deterministic choice, with its own fees (tests may replace)."""
        cands = context.get("candidates") or []
        pick = next((c for c in cands if c.get("chain") == context.get("deterministic_choice")),
                    None) or next((c for c in cands if c.get("eligible")), None) \
            or (cands[0] if cands else {"chain": "none"})
        fees = pick.get("fees") or {}
        return {"chain": pick["chain"], "fees": {k: fees.get(k, 0) for k in FEE_KEYS},
                "reasoning": f"stub analysis: {pick['chain']} is the cheapest healthy route",
                "confidence": 0.92, "risk_factors": ["stub risk"],
                "estimated_settlement_time": pick.get("settlement_seconds", 0)}

    def _claude(self, hdrs, body):
        if hdrs.get("x-api-key") != self.claude_key:
            return _claude_error(401, "authentication_error", "invalid x-api-key")
        if not hdrs.get("anthropic-version"):
            return _claude_error(400, "invalid_request_error",
                                 "anthropic-version: header is required")
        try:
            req = json.loads(body)
        except ValueError:
            req = None
        if not isinstance(req, dict):
            return _claude_error(400, "invalid_request_error", "body: not a JSON object")
        tools = req.get("tools") if isinstance(req.get("tools"), list) else []
        for bad, what in ((not isinstance(req.get("model"), str), "model: string required"),
                          (type(req.get("max_tokens")) is not int, "max_tokens: integer required"),
                          (not isinstance(req.get("messages"), list) or not req["messages"],
                           "messages: non-empty list required"),
                          (not any(isinstance(t, dict) and t.get("name") == "fee_decision"
                                   for t in tools), "tools: no tool named fee_decision"),
                          (req.get("tool_choice") != {"type": "tool", "name": "fee_decision"},
                           'tool_choice: must be {"type":"tool","name":"fee_decision"}')):
            if bad:
                return _claude_error(400, "invalid_request_error", what)
        with self.lock:
            mode, kw = self.modes["claude"]
            if mode == "sequence":
                entry = kw["modes"][min(self._seq, len(kw["modes"]) - 1)]
                self._seq += 1
                mode, kw = (entry, kw) if isinstance(entry, str) else (entry[0], {**kw, **entry[1]})
        return self._claude_answer(mode, kw, req, len(body))

    def _claude_answer(self, mode, kw, req, size):
        """valid; bad_chain (an ineligible chain, else "dogecoin"); fees_10x;
        invalid_json (truncated body); text (no tool_use); error (kw status=529,
        etype="overloaded_error", retry_after); sleep (kw delay=30, then valid);
        sequence (kw modes=[mode or (mode, kw), ...], the last one repeating)."""
        if mode == "invalid_json":
            return 200, "application/json", b'{"id": "msg_01", "content": [', {}
        if mode == "error":
            extra = {"retry-after": kw["retry_after"]} if kw.get("retry_after") is not None else {}
            return _claude_error(kw.get("status", 529), kw.get("etype", "overloaded_error"),
                                 kw.get("message", "Overloaded"), extra)
        if mode == "sleep":
            time.sleep(kw.get("delay", 30))
        msg = {"id": "msg_01" + uuid.uuid4().hex[:22], "type": "message", "role": "assistant",
               "model": req["model"], "stop_sequence": None,
               "usage": {"input_tokens": max(1, size // 4), "output_tokens": 143}}
        if mode == "text":
            return _json(200, dict(msg, content=[{"type": "text", "text": "I think base."}],
                                   stop_reason="end_turn"))
        first = req["messages"][0]
        content = first.get("content") if isinstance(first, dict) else None
        if isinstance(content, list):  # content blocks instead of a string
            content = "".join(b.get("text", "") for b in content if isinstance(b, dict))
        try:
            context = json.loads(content)
            decision = self.decide(context)
        except Exception as e:  # noqa: BLE001 - reported to the daemon as the stub's error
            return _claude_error(400, "invalid_request_error",
                                 f"stub: cannot decide from messages[0].content: {e!r}")
        if mode == "bad_chain":
            bad = [c.get("chain") for c in context.get("candidates") or [] if not c.get("eligible")]
            decision["chain"] = bad[0] if bad else "dogecoin"
        elif mode == "fees_10x":
            decision["fees"] = {k: (f * 10 if f else 1000) for k, f in decision["fees"].items()}
        return _json(200, dict(msg, stop_reason="tool_use", content=[
            {"type": "tool_use", "id": "toolu_01" + uuid.uuid4().hex[:22],
             "name": "fee_decision", "input": decision}]))


if __name__ == "__main__":
    # Standalone (bench/fees.sh): print the daemon's variables, serve until killed.
    import signal
    import sys

    stub = MarketStub()
    for k, v in stub.env().items():
        print(f"{k}={v}")
    print(f"STUB_CLAUDE_KEY={stub.claude_key}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    finally:
        stub.close()

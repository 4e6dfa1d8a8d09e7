"""A loopback OpenAI-compatible HTTP server for tests, drills and benchmarks.

``with StubServer(latency_s=0.05, fault_rate=0.3, seed=1) as srv: srv.base_url`` serves
``POST /v1/chat/completions`` and ``GET /v1/models`` on 127.0.0.1 from a background thread. Replies come
from ``responder(request_json) -> str | (str, finish_reason)`` (default: echo of the last user message;
``varied_responder()``: seeded replies of varied lengths that follow length instructions). Seeded fault
injection picks, for a ``fault_rate`` share of requests, one of ``FAULT_KINDS``: 429 with Retry-After, 500, 503,
connection reset, slow (sleeps ``slow_s``, past a client's timeout), truncated body, invalid JSON body.
``stats`` counts requests, faults by kind, and ok replies. ``serve_until_signal()`` is the foreground
server of ``persona-testbed llm stub-server``: it stops on SIGINT or SIGTERM, whatever the inherited
signal disposition.
"""

from __future__ import annotations

import json
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULT_KINDS = ("429", "500", "503", "reset", "slow", "truncated", "invalid_json")

# a reply text, or (text, finish_reason) to report e.g. "length" for a reply cut off at max_tokens
Responder = Callable[[dict[str, Any]], "str | tuple[str, str]"]


def echo_responder(request: dict[str, Any]) -> str:
    """Default reply: echo the last user message (or ``{}`` when JSON output was requested)."""
    if request.get("response_format", {}).get("type") in ("json_object", "json_schema"):
        return "{}"
    users = [m.get("content", "") for m in request.get("messages", []) if m.get("role") == "user"]
    return f"stub reply to: {users[-1] if users else ''}"


_VOCAB = (
    "the",
    "a",
    "policy",
    "people",
    "often",
    "should",
    "weigh",
    "cost",
    "local",
    "family",
    "time",
    "rules",
    "can",
    "help",
    "community",
    "work",
    "change",
    "view",
    "and",
    "of",
    "to",
    "is",
    "it",
    "their",
    "many",
    "some",
    "consider",
    "balance",
    "practical",
    "values",
    "everyday",
    "fair",
    "choices",
    "support",
)
_BETWEEN = re.compile(r"between (\d+) and (\d+) (words|characters)", re.IGNORECASE)
_AT_MOST = re.compile(r"at most (\d+) (words|characters)", re.IGNORECASE)


def varied_responder(
    seed: int = 0, min_words: int = 8, max_words: int = 160, in_range_share: float = 0.6
) -> Responder:
    """Replies of varied lengths, deterministic per request, like a seeded model (a "stub world").

    Each request gets its own generator from (``seed``, messages, the request's seed and temperature; not
    ``max_tokens``, so a re-ask with a larger budget gets the same text, uncut). JSON requests get an object
    with one (random) value per ``enum`` property of the requested schema. A last user message that asks
    for a length ("between N and M words|characters", "at most N words|characters") gets a reply inside
    the range with probability ``in_range_share``, else up to 30% shorter or longer; "at most N" aims at
    60–100% of N. Otherwise the length is log-uniform in [``min_words``, ``max_words``]. A reply of more
    words than the request's ``max_tokens`` (one token per word here) is cut there: finish_reason "length".
    """

    def respond(request: dict[str, Any]) -> tuple[str, str]:
        rnd = random.Random(
            json.dumps(
                [seed, request.get("messages"), request.get("seed"), request.get("temperature")],
                sort_keys=True,
            )
        )
        fmt = request.get("response_format") or {}
        if fmt.get("type") in ("json_object", "json_schema"):
            schema = fmt.get("schema") or (fmt.get("json_schema") or {}).get("schema") or {}
            props = schema.get("properties") or {}
            return json.dumps({k: rnd.choice(v["enum"]) for k, v in props.items() if v.get("enum")}), "stop"
        users = [m.get("content", "") for m in request.get("messages", []) if m.get("role") == "user"]
        last = users[-1] if users else ""
        m, unit = _BETWEEN.search(last), "words"
        if m:
            lo, hi, unit = int(m.group(1)), int(m.group(2)), m.group(3).lower()
        elif m := _AT_MOST.search(last):
            hi, unit = int(m.group(1)), m.group(2).lower()
            lo = max(1, int(0.6 * hi))
        if m:
            if rnd.random() < in_range_share:
                size = rnd.uniform(lo, hi)
            else:
                size = rnd.uniform(0.7 * lo, lo) if rnd.random() < 0.5 else rnd.uniform(hi, 1.3 * hi)
        else:
            size = min_words * (max_words / min_words) ** rnd.random()
        words: list[str] = []
        while (len(" ".join(words)) if unit == "characters" else len(words)) < max(1, round(size)):
            words.append(rnd.choice(_VOCAB))
        if unit == "characters" and len(words) > 1:
            words.pop()
        budget = int(request.get("max_tokens") or 0)
        finish = "stop"
        if budget and len(words) > budget:
            words, finish = words[:budget], "length"
        text = " ".join(words)
        if finish == "stop":  # sentences of 6-14 words
            out, i = [], 0
            while i < len(words):
                n = rnd.randint(6, 14)
                chunk = words[i : i + n]
                out.append(
                    chunk[0].capitalize() + (" " + " ".join(chunk[1:]) if len(chunk) > 1 else "") + "."
                )
                i += n
            text = " ".join(out)
        return text, finish

    return respond


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True
    stub: StubServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-reply (a timeout, a cancelled call) is normal traffic, not an error:
        no traceback on stderr, where it would land in the output of the command under test."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(
        self,
        code: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/").endswith("/models"):
            body = {
                "object": "list",
                "data": [
                    {"id": self.server.stub.model_name, "object": "model", "created": 0, "owned_by": "stub"}
                ],
            }
            self._send(200, json.dumps(body).encode())
        else:
            self._send(404, b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:  # noqa: N802
        stub = self.server.stub
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        try:
            request = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(400, b'{"error": {"message": "request body is not JSON"}}')
            return
        fault = stub._next_fault()
        stub._count("requests")
        if stub.latency_s:
            time.sleep(stub.latency_s)
        if fault is not None:
            stub._count(f"fault_{fault}")
            self._fault(fault)
            return
        if stub.status_override is not None:
            code, message = stub.status_override
            stub._count(f"status_{code}")
            self._send(
                code, json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()
            )
            return
        try:
            reply = stub.responder(request)
            text, finish = reply if isinstance(reply, tuple) else (reply, "stop")
        except Exception as exc:  # a broken responder is a 500, visible to the client
            self._send(500, json.dumps({"error": {"message": f"responder failed: {exc}"}}).encode())
            return
        stub._count("ok")
        self._send(200, json.dumps(_completion(request, text, stub.model_name, finish)).encode())

    def _fault(self, kind: str) -> None:
        stub = self.server.stub
        if kind == "429":
            self._send(
                429,
                b'{"error": {"message": "rate limited (stub)", "type": "rate_limit"}}',
                {"Retry-After": stub.retry_after},
            )
        elif kind in ("500", "503"):
            self._send(int(kind), b'{"error": {"message": "server error (stub)"}}')
        elif kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        elif kind == "slow":
            time.sleep(stub.slow_s)
            try:
                self._send(200, json.dumps(_completion({}, "slow reply", stub.model_name)).encode())
            except OSError:
                pass
        elif kind == "truncated":
            body = json.dumps(_completion({}, "this body will be cut short", stub.model_name)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif kind == "invalid_json":
            self._send(200, b'{"id": "chatcmpl-stub", "choices": [{"index": 0, "message": ')


def _completion(
    request: dict[str, Any], text: str, model: str, finish_reason: str = "stop"
) -> dict[str, Any]:
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
    body: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", model),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(text.split()),
            "total_tokens": prompt_tokens + len(text.split()),
        },
    }
    if request.get("logprobs"):
        k = int(request.get("top_logprobs") or 0)
        body["choices"][0]["logprobs"] = {
            "content": [
                {
                    "token": tok,
                    "logprob": -0.5,
                    "bytes": list(tok.encode()),
                    "top_logprobs": [{"token": tok, "logprob": -0.5, "bytes": list(tok.encode())}][:k],
                }
                for tok in text.split()
            ]
        }
    return body


def _wakeup_only(signum: int, frame: object) -> None:
    """Signal handler of :meth:`StubServer.serve_until_signal`: the wakeup fd carries the signal."""


class StubServer:
    """Background OpenAI-compatible server on 127.0.0.1 (``port=0`` picks a free port)."""

    def __init__(
        self,
        *,
        port: int = 0,
        latency_s: float = 0.0,
        responder: Responder | None = None,
        fault_rate: float = 0.0,
        fault_kinds: Sequence[str] = FAULT_KINDS,
        seed: int = 0,
        retry_after: str = "0",
        slow_s: float = 2.0,
        model_name: str = "stub",
        status_override: tuple[int, str] | None = None,
        host: str = "127.0.0.1",
    ):
        unknown = set(fault_kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; valid: {', '.join(FAULT_KINDS)}")
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be in [0, 1], got {fault_rate}")
        self.latency_s = latency_s
        self.responder: Responder = responder or echo_responder
        self.fault_rate = fault_rate
        self.fault_kinds = tuple(fault_kinds)
        self.retry_after = retry_after
        self.slow_s = slow_s
        self.model_name = model_name
        self.status_override = status_override  # e.g. (400, "bad request"): every reply is that error
        self.stats: Counter[str] = Counter()
        self._rand = random.Random(seed)
        self._lock = threading.Lock()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.stub = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _next_fault(self) -> str | None:
        with self._lock:
            if self.fault_rate and self._rand.random() < self.fault_rate:
                return self._rand.choice(self.fault_kinds)
            return None

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def start(self) -> StubServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="llm-stub-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until the process ends (a benchmark's server process)."""
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def serve_until_signal(
        self,
        on_ready: Callable[[], None] | None = None,
        signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM),
    ) -> int:
        """Serve from the background thread until one of ``signals`` arrives, stop, and return its number.

        Call from the main thread. The handlers are installed here, before ``on_ready`` runs (where a caller
        announces the address): a signal sent after that announcement always stops the server. They do not
        rely on Python's KeyboardInterrupt, which is never raised when the process inherits SIGINT as ignored
        (a shell starts background jobs that way, e.g. ``make test &``). The C-level handler writes the
        signal number to a wakeup socket this method waits on, so a signal that lands in any thread, or
        before the wait begins, is not lost.
        """
        wake_r, wake_w = socket.socketpair()
        wake_w.setblocking(False)
        old_wakeup = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        previous: dict[int, Any] = {}
        try:
            for s in signals:  # a Python-level handler: only those make the C handler write to the wakeup fd
                previous[s] = signal.signal(s, _wakeup_only)
            self.start()
            if on_ready is not None:
                on_ready()
            while True:
                for signum in wake_r.recv(64):
                    if signum in signals:
                        return signum
        finally:
            self.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)
            signal.set_wakeup_fd(old_wakeup)
            wake_r.close()
            wake_w.close()

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever: only when a thread runs it
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""``FailureBreaker``: stop a stage whose model calls keep failing, with one line that names the cause.

Single failed calls are data (``ChatResult(status="failed")``); a stage where the server is down, the key
is wrong or every call times out should not grind through its work and then report "nothing passed the
filters". One breaker watches all the calls of one stage and trips when

* the first ``first_n`` (20) calls that finished all failed, or
* at least ``min_calls`` (20) calls finished and more than ``max_failed_share`` (0.5) of them failed.

``min_calls`` keeps the share rule from firing on a handful of unlucky calls (2 failures of the first 3
is noise; 11 of 20 is a broken stage). A stage with fewer calls than ``first_n`` in all never reaches
either rule, so it calls ``check_final()`` at its end: that raises when every one of its calls failed.

Once tripped, every ``LLMClient.chat`` given this breaker raises ``CallsFailingError`` (exit code 3):
the call that tripped it, each call in flight when it finishes (or before its next retry), each call
still waiting for a concurrency slot, and each new call (cached replays included). Its message is one
line: the most common cause, normalised across calls (``connection refused at <base_url>``,
``HTTP 401: <detail>``, ``timeout after 30 s at <base_url>``, ``invalid structured output (Model)``
...), and how many calls it hit::

    feedback: connection refused at http://127.0.0.1:9/v1 for 8 of 8 calls

How a stage uses it (one breaker per stage, shared by every client of that stage)::

    from persona_testbed.llm import FailureBreaker, LLMClient

    breaker = FailureBreaker("feedback")
    async with LLMClient(generator_model, store=store, breaker=breaker) as gen, \\
            LLMClient(judge_model, store=store, breaker=breaker) as judge:
        results = await asyncio.gather(*(one_pair(gen, judge, p) for p in pairs))
    breaker.check_final()          # raises when every call of the stage failed (fewer than first_n calls)

``asyncio.gather`` (without ``return_exceptions``) re-raises the first ``CallsFailingError`` at once.
The other tasks are not cancelled by gather, but none of them hangs or makes new requests: each raises
at its next check (when its call finishes, before a retry, after waiting for a slot, or at its next
``chat``), and ``asyncio.run`` cancels whatever is left when the stage's coroutine returns. To cancel
siblings immediately use ``asyncio.TaskGroup``. With ``gather(..., return_exceptions=True)`` (or any
``except Exception`` around a call) re-raise ``CallsFailingError`` yourself: it is a ``UserError``, not
a failure of one work item. ``chat_sync`` raises it the same way.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any

from ..core.errors import CallsFailingError

FIRST_N = 20
MIN_CALLS = 20
MAX_FAILED_SHARE = 0.5

_PREFIX = re.compile(r"^(gave up after \d+ attempts?: |permanent error: )", re.IGNORECASE)
_CONNECTION = re.compile(
    r"^connection error \((?P<url>[^)]*)\):\s*(?P<detail>.*)$", re.IGNORECASE | re.DOTALL
)
_TIMEOUT = re.compile(r"^timeout after (?P<s>[\d.]+)\s*s\b(?: \((?P<url>[^)]*)\))?", re.IGNORECASE)
_HTTP = re.compile(r"^HTTP (?P<code>\d{3})\b:?\s*(?P<detail>.*)$", re.IGNORECASE | re.DOTALL)
_STRUCTURED = re.compile(r"^(?P<head>invalid structured output \([^)]*\))", re.IGNORECASE)
_BACKEND = re.compile(r"^backend error: (?P<type>[\w.]+)", re.IGNORECASE)
_HEAD_ONLY = ("invalid response body", "llama.cpp rejected the request")
# what the detail of a connection error says, in the words of httpx / the OS, and our name for it
_CONNECTION_KINDS = (
    (("refused",), "connection refused"),
    (("reset", "disconnected", "remoteprotocolerror", "broken pipe", "incomplete"), "connection dropped"),
    (
        (
            "name or service not known",
            "nodename nor servname",
            "name resolution",
            "getaddrinfo",
            "no address associated",
        ),
        "host not found",
    ),
    (("timed out", "timeout"), "connection timeout"),
    (("ssl", "certificate", "tls"), "TLS error"),
    (("unreachable", "no route"), "network unreachable"),
    (("all connection attempts failed",), "cannot connect"),
)


def _one_line(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_cause(error: str | None) -> tuple[str, str]:
    """``(key, label)`` of a failed call's error text: calls with the same key failed for the same reason.

    ``label`` is what the breaker's message shows (one line); the key drops what differs from call to
    call (attempt counts, request ids, numbers in free text).
    """
    text = " ".join(str(error or "unknown error").split())
    while True:
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    m = _CONNECTION.match(text)
    if m:
        url, detail = m.group("url"), m.group("detail").lower()
        kind = next(
            (name for words, name in _CONNECTION_KINDS if any(w in detail for w in words)), "connection error"
        )
        label = f"{kind} at {url}"
        return label, label
    m = _TIMEOUT.match(text)
    if m:
        where = f" at {m.group('url')}" if m.group("url") else ""
        label = f"timeout after {float(m.group('s')):g} s{where}"
        return label, label
    m = _HTTP.match(text)
    if m:
        detail = m.group("detail").strip()
        code = f"HTTP {m.group('code')}"
        return code, _one_line(f"{code}: {detail}" if detail else code)
    m = _STRUCTURED.match(text)
    if m:
        return m.group("head"), m.group("head")
    m = _BACKEND.match(text)
    if m:
        label = f"backend error: {m.group('type')}"
        return label, label
    for head in _HEAD_ONLY:
        if text.lower().startswith(head):
            return head, _one_line(text, 100)
    return re.sub(r"\d+", "#", text[:120]).lower(), _one_line(text)


class FailureBreaker:
    """Watches the finished calls of one stage; trips when too many fail (see the module docstring).

    Thread-safe: clients on different event loops (``chat_sync``) may share one breaker.
    """

    def __init__(
        self,
        stage: str = "",
        *,
        first_n: int = FIRST_N,
        min_calls: int = MIN_CALLS,
        max_failed_share: float = MAX_FAILED_SHARE,
    ):
        if first_n < 1 or min_calls < 1:
            raise ValueError(f"first_n and min_calls must be >= 1 (got {first_n}, {min_calls})")
        if not 0.0 <= max_failed_share < 1.0:
            raise ValueError(f"max_failed_share must be in [0, 1) (got {max_failed_share})")
        self.stage = stage
        self.first_n = int(first_n)
        self.min_calls = int(min_calls)
        self.max_failed_share = float(max_failed_share)
        self.calls = 0
        self.failed = 0
        self._causes: Counter[str] = Counter()
        self._labels: dict[str, str] = {}
        self._trip_message: str | None = None
        self._lock = threading.Lock()

    @property
    def tripped(self) -> bool:
        """True once a rule fired; it stays tripped."""
        return self._trip_message is not None

    def record(self, ok: bool, error: str | None = None) -> bool:
        """Count one finished call (a cached replay is ``ok``); returns whether the breaker is tripped."""
        with self._lock:
            self.calls += 1
            if not ok:
                self.failed += 1
                key, label = failure_cause(error)
                self._causes[key] += 1
                self._labels.setdefault(key, label)
            if self._trip_message is None and (
                (self.calls == self.first_n and self.failed == self.calls)
                or (self.calls >= self.min_calls and self.failed > self.max_failed_share * self.calls)
            ):
                self._trip_message = self._message()
            return self._trip_message is not None

    def check(self) -> None:
        """Raise ``CallsFailingError`` when tripped; otherwise nothing."""
        if self._trip_message is not None:
            raise CallsFailingError(self._trip_message)

    def check_final(self) -> None:
        """At the end of a stage: raise when tripped, or when at least one call finished and all failed."""
        self.check()
        with self._lock:
            if self.calls >= 1 and self.failed == self.calls:
                self._trip_message = self._message()
        self.check()

    def message(self) -> str:
        """The one-line cause as it stands now (also for a breaker that did not trip)."""
        with self._lock:
            return self._message()

    def stats(self) -> dict[str, Any]:
        """``{"calls", "failed", "tripped", "causes": {label: count}}``, most common cause first."""
        with self._lock:
            return {
                "calls": self.calls,
                "failed": self.failed,
                "tripped": self._trip_message is not None,
                "causes": {self._labels[k]: n for k, n in self._causes.most_common()},
            }

    def _message(self) -> str:
        prefix = f"{self.stage}: " if self.stage else ""
        if not self._causes:
            return f"{prefix}0 of {self.calls} calls failed"
        key, n = self._causes.most_common(1)[0]
        text = f"{prefix}{self._labels[key]} for {n} of {self.calls} calls"
        if n < self.failed:
            text += f" ({self.failed} failed in all)"
        return text


__all__ = ["FailureBreaker", "failure_cause"]

"""A mock model for tests: queued replies or a function of the messages; no network, no weights."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ..types import ChatParams, Message, Usage
from .base import BackendReply, PermanentError, StructuredRequest

Reply = str | BackendReply | BaseException


class MockBackend:
    """``MockBackend(["a", "b"])`` replies "a" then "b"; ``MockBackend(lambda msgs: ...)`` computes replies.

    A queued item that is an exception (e.g. ``TransientError("429")``) is raised instead, to script
    faults; a ``BackendReply`` is returned as it is (e.g. ``finish_reason="length"`` for a cut-off reply),
    a string finishes with ``"stop"``. ``delay_s`` makes each call take that long (for concurrency tests);
    ``calls`` records the messages of every call and ``max_active`` the highest number of calls in flight.
    """

    kind = "mock"

    def __init__(
        self,
        replies: Sequence[Reply] | Callable[[list[Message]], Reply] | None = None,
        *,
        delay_s: float = 0.0,
        model_id: str = "mock",
    ):
        self._fn = replies if callable(replies) else None
        self._queue: list[Reply] = [] if callable(replies) or replies is None else list(replies)
        self._echo = replies is None
        self.delay_s = delay_s
        self.model_id = model_id
        self.model_string = "mock"
        self.calls: list[list[Message]] = []
        self.params: list[ChatParams] = []
        self.active = 0
        self.max_active = 0

    async def complete(
        self, messages: list[Message], params: ChatParams, structured: StructuredRequest | None
    ) -> BackendReply:
        self.calls.append([dict(m) for m in messages])
        self.params.append(params)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self._fn is not None:
                reply = self._fn(messages)
            elif self._echo:
                reply = "mock: " + (messages[-1].get("content", "") if messages else "")
            elif self._queue:
                reply = self._queue.pop(0)
            else:
                raise PermanentError("mock backend: no queued replies left")
            if isinstance(reply, BaseException):
                raise reply
            if isinstance(reply, BackendReply):
                return reply
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
            return BackendReply(
                text=str(reply),
                usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(str(reply).split())),
                finish_reason="stop",
            )
        finally:
            self.active -= 1

    async def aclose(self) -> None:
        return None

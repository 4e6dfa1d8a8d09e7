"""The backend protocol: one small class per model family, with one job (messages in, reply out).

Caching, logging, retries, re-asks and the concurrency limit live around backends, in ``LLMClient``.
A backend signals failures by raising ``TransientError`` (worth retrying) or ``PermanentError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..types import ChatParams, Message, Usage


class BackendError(Exception):
    """A failed backend call; ``str(exc)`` is the reason recorded in the call log."""


class TransientError(BackendError):
    """Worth retrying (429, 5xx, timeout, connection error/reset, truncated or invalid body)."""

    def __init__(self, reason: str, retry_after_s: float | None = None):
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class PermanentError(BackendError):
    """Not worth retrying (4xx other than 408/409/429, model refused the request, ...)."""


@dataclass
class StructuredRequest:
    """Ask for JSON that matches ``schema`` (a JSON schema produced from a pydantic model)."""

    name: str
    schema: dict[str, Any]


@dataclass
class BackendReply:
    text: str
    usage: Usage = field(default_factory=Usage)
    logprobs: list[dict[str, Any]] | None = None
    finish_reason: str | None = (
        None  # "stop", "length" (hit max_tokens), ...; None when the backend gives none
    )


class Backend(Protocol):
    """What ``LLMClient`` needs from a model family."""

    kind: str  # "embedded" | "gguf" | "openai" | "mock": enters the cache key
    model_id: str  # model identity for the cache key (model name, gguf path, ...)
    model_string: str  # the user's model string, reported in results

    async def complete(
        self, messages: list[Message], params: ChatParams, structured: StructuredRequest | None
    ) -> BackendReply:
        """One attempt: return the reply or raise ``TransientError`` / ``PermanentError``."""
        ...

    async def aclose(self) -> None:
        """Release network clients bound to the running event loop."""
        ...

"""Typed records of the LLM layer (stable contract for every stage)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}

# finish reasons meaning "cut off at the token limit": OpenAI-compatible servers and llama.cpp say "length"
TRUNCATED_FINISH_REASONS = frozenset({"length", "max_tokens"})


class ChatParams(BaseModel):
    """Sampling parameters; all of them enter the cache key."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None
    stop: list[str] | None = None
    logprobs: bool = False
    top_logprobs: int | None = None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ChatResult(BaseModel):
    """The outcome of one logical chat call (after retries / re-asks). Failures are data."""

    call_id: str  # id of the (last) row in the call log
    model: str  # the model string, e.g. "embedded", "openai/gpt-4o"
    status: Literal["ok", "failed"]
    text: str = ""
    parsed: Any = None  # the validated pydantic object (as dict) when a schema was given
    error: str | None = None  # reason when status == "failed"
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = (
        0.0  # request duration: from getting a concurrency slot to the result (retries included)
    )
    queue_s: float = 0.0  # time spent waiting for a concurrency slot before the request
    cached: bool = False
    attempts: int = 1
    logprobs: list[dict[str, Any]] | None = None
    # why generation stopped, as the backend said it: "stop" (a natural end), "length" (cut off at
    # max_tokens), "content_filter", ...; None when unknown (failed calls, rows logged before it was kept)
    finish_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def truncated(self) -> bool:
        """The reply was cut off at the token limit (``finish_reason`` is ``length``)."""
        return self.finish_reason in TRUNCATED_FINISH_REASONS

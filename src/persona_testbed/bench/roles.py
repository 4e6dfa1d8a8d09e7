"""A model in a bench role (candidate, judge, writer): its client, sampling parameters and call counts.

Every call gets a seed derived from the run seed and the call's key, so two runs with one seed send
identical requests (and replay from the cache).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel

from ..core.seeds import derive_int
from ..llm.types import ChatParams, ChatResult, Message


class Role:
    """``Role("judge", client, ChatParams(temperature=0))``; ``await role.chat(msgs, key=(...))``."""

    def __init__(self, name: str, client: Any, params: ChatParams, seed: int):
        self.name = name
        self.client = client
        self.params = params
        self.seed = seed
        self.counts: Counter[str] = Counter()

    @property
    def model(self) -> str:
        return str(getattr(self.client, "model", "unknown"))

    async def chat(
        self,
        messages: list[Message],
        *,
        key: tuple[object, ...],
        purpose: str,
        schema: type[BaseModel] | None = None,
        sample_index: int = 0,
    ) -> ChatResult:
        """One logical call; ``key`` (item id, arm, ...) derives the call's seed."""
        params = self.params.model_copy(update={"seed": derive_int(self.seed, purpose, *key, sample_index)})
        res = await self.client.chat(
            messages, params=params, schema=schema, sample_index=sample_index, purpose=purpose
        )
        self.counts["calls"] += 1
        if getattr(res, "cached", False):
            self.counts["cached"] += 1
        if not res.ok:
            self.counts["failed"] += 1
        return res

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "calls": self.counts["calls"],
            "cached": self.counts["cached"],
            "failed": self.counts["failed"],
            "temperature": self.params.temperature,
            "max_tokens": self.params.max_tokens,
        }


__all__ = ["Role"]

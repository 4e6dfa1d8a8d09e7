"""Answer a wave's pending requests with the LLM layer, away from the stage (inside an executor's workers).

``answer_requests`` sends each request body through an ``LLMClient`` for ``openai/<model>`` (its retries with
backoff, Retry-After, the concurrency limit, the json_schema → json_object fallback) and returns, per request,
``(status_code, response body JSON, error)``: 200 and a chat completion, or ``None`` and the reason it failed
(a failure recorded as data). Nothing is cached or logged here: the stage logs each call when it replays it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from .client import LLMClient
from .deferred import body_from_reply, parse_body

Answer = tuple[int | None, str | None, str | None]


async def answer_requests(
    bodies: Sequence[dict[str, Any]],
    *,
    base_url: str | None = None,
    timeout_s: float = 120.0,
    max_retries: int = 4,
    concurrency: int = 4,
) -> list[Answer]:
    """Send every request body (``deferred.request_body`` form); answers in the order of ``bodies``."""
    clients: dict[str, LLMClient] = {}

    def client(model: str) -> LLMClient:
        if model not in clients:
            clients[model] = LLMClient(
                f"openai/{model}",
                base_url=base_url,
                timeout_s=timeout_s,
                max_retries=max_retries,
                concurrency=concurrency,
            )
        return clients[model]

    async def one(body: dict[str, Any]) -> Answer:
        messages, params, structured = parse_body(body)
        reply, error, _attempts = await client(str(body["model"])).send(messages, params, structured)
        if reply is None:
            return None, None, error
        return 200, json.dumps(body_from_reply(reply), ensure_ascii=False, separators=(",", ":")), None

    try:
        return list(await asyncio.gather(*(one(b) for b in bodies)))
    finally:
        for c in clients.values():
            await c.aclose()


__all__ = ["Answer", "answer_requests"]

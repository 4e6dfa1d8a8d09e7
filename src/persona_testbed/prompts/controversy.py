"""The LLM controversy classifier: would people with different values answer this question differently?

One structured call per prompt (``ControversyAnswer``: ``controversial`` yes/no + ``reason``); a failed
call becomes an ``error`` verdict with the failure reason, so the prompt is excluded with that reason
and a re-run retries it (failures are not cached as final).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field

from ..core.seeds import derive_int
from ..llm import ChatParams
from .record import FilterVerdict, Prompt

CONTROVERSY_TEMPLATE_VERSION = "controversy-v1"

SYSTEM = (
    "You sort questions for a study of how people with different values answer the same question. "
    "A question is contested when people with different values, politics, religions, cultures or life "
    "situations would give meaningfully different answers to it. Factual lookups, arithmetic, coding "
    "help and greetings are not contested."
)
USER = (
    "Question: {question}\n\n"
    "Would people with different values answer this question differently? Reply in JSON with "
    '"controversial" (true or false) and "reason" (one short sentence).'
)


class ControversyAnswer(BaseModel):
    """The classifier's structured answer."""

    controversial: bool
    reason: str = Field(default="", max_length=400)


def controversy_messages(question: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": USER.format(question=question)},
    ]


async def classify_one(client, prompt: Prompt, seed: int, max_tokens: int = 96) -> FilterVerdict:
    """Classify one prompt; never raises for model failures (they become an ``error`` verdict)."""
    params = ChatParams(
        temperature=0.0,
        max_tokens=max_tokens,
        seed=derive_int(seed, "prompts.controversy", CONTROVERSY_TEMPLATE_VERSION, prompt.id),
    )
    res = await client.chat(
        controversy_messages(prompt.text),
        params=params,
        schema=ControversyAnswer,
        purpose="prompts.controversy",
    )
    detail = {"call_id": res.call_id, "model": res.model, "template_version": CONTROVERSY_TEMPLATE_VERSION}
    if not res.ok or res.parsed is None:
        return FilterVerdict(
            verdict="error",
            reason=f"classifier call failed: {res.error or 'no parsed answer'}",
            detail=detail,
        )
    answer = ControversyAnswer.model_validate(
        res.parsed.model_dump() if isinstance(res.parsed, BaseModel) else res.parsed
    )
    return FilterVerdict(
        verdict="pass" if answer.controversial else "fail",
        reason=("contested: " if answer.controversial else "not contested: ") + answer.reason.strip(),
        detail=detail,
    )


async def apply_controversy(
    prompts: Sequence[Prompt],
    client,
    seed: int,
    concurrency: int = 4,
    on_done: Callable[[int, int], None] | None = None,
) -> None:
    """Classify ``prompts`` with at most ``concurrency`` calls in flight; write each verdict in place.

    ``on_done(done, total)`` is called after each classification (for progress bars).
    """
    sem = asyncio.Semaphore(max(1, concurrency))
    state = {"done": 0}
    total = len(prompts)

    async def one(p: Prompt) -> None:
        async with sem:
            p.verdicts["controversy"] = await classify_one(client, p, seed)
        state["done"] += 1
        if on_done is not None:
            on_done(state["done"], total)

    await asyncio.gather(*(one(p) for p in prompts))

"""Solvers: produce the candidate's answer for an item (inspect_ai style: item in, solution out).

- ``ModelSolver``: a model in one of the modes (baseline / persona / cot / summary).
- ``AnswersSolver``: precomputed answers from a JSONL file (scored offline).
- ``ApproachSolver``: a Python function ``(persona, question) -> answer``, sync or async.
Failures are returned as ``Solution(ok=False, error=...)``, never raised.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .records import BenchItem
from .roles import Role
from .templates import MODE_SCHEMAS, candidate_messages


@dataclass
class Solution:
    ok: bool
    answer: str = ""
    raw: str | None = None
    call_id: str | None = None
    error: str | None = None
    parts: dict[str, Any] = field(default_factory=dict)


class Solver(Protocol):
    name: str  # description for results.json (model string, answers file, approach spec)
    can_ablate: bool  # whether the persona shown to the candidate can be changed (LOO on the candidate)

    async def solve(
        self,
        item: BenchItem,
        *,
        mode: str,
        sample_index: int = 0,
        without: Iterable[str] | None = None,
        tag: str = "",
    ) -> Solution: ...


class ModelSolver:
    """The candidate model answers in ``mode``; structured modes return parts, only ``answer`` is scored."""

    can_ablate = True

    def __init__(self, role: Role):
        self.role = role
        self.name = role.model

    async def solve(
        self,
        item: BenchItem,
        *,
        mode: str,
        sample_index: int = 0,
        without: Iterable[str] | None = None,
        tag: str = "",
    ) -> Solution:
        """``tag`` (e.g. "control") makes an independent sample of the same request (its own seed key)."""
        drop = sorted(without or ())
        schema = MODE_SCHEMAS.get(mode)
        res = await self.role.chat(
            candidate_messages(mode, item.persona, item.question, without=drop),
            key=(item.id, mode, *drop, *((tag,) if tag else ())),
            purpose=f"bench.{mode}.candidate",
            schema=schema,
            sample_index=sample_index,
        )
        if not res.ok:
            return Solution(False, raw=res.text or None, call_id=res.call_id, error=res.error)
        if schema is None:
            return Solution(True, answer=res.text.strip(), raw=res.text, call_id=res.call_id)
        parts = dict(res.parsed or {})
        answer = str(parts.get("answer", "")).strip()
        if not answer:
            return Solution(
                False,
                raw=res.text,
                call_id=res.call_id,
                parts=parts,
                error="structured output has an empty answer",
            )
        return Solution(True, answer=answer, raw=res.text, call_id=res.call_id, parts=parts)


class AnswersSolver:
    """Answers read from a file: ``(persona_id, prompt_id) -> [answer per sample]``."""

    can_ablate = False

    def __init__(self, answers: dict[tuple[str, str], list[str]], name: str):
        self.answers = answers
        self.name = name

    def samples(self, item: BenchItem) -> int:
        return len(self.answers.get((item.persona.id, item.prompt_id), []))

    async def solve(
        self,
        item: BenchItem,
        *,
        mode: str,
        sample_index: int = 0,
        without: Iterable[str] | None = None,
        tag: str = "",
    ) -> Solution:
        got = self.answers.get((item.persona.id, item.prompt_id), [])
        if sample_index >= len(got):
            return Solution(False, error=f"answers file has no sample {sample_index} for {item.id}")
        return Solution(True, answer=got[sample_index], raw=got[sample_index])


class ApproachSolver:
    """A user function ``fn(persona, question) -> str`` (or a coroutine function)."""

    can_ablate = False

    def __init__(self, fn: Callable[..., Any], name: str):
        self.fn = fn
        self.name = name

    async def solve(
        self,
        item: BenchItem,
        *,
        mode: str,
        sample_index: int = 0,
        without: Iterable[str] | None = None,
        tag: str = "",
    ) -> Solution:
        try:
            if inspect.iscoroutinefunction(self.fn):
                out = await self.fn(item.persona, item.question)
            else:
                out = await asyncio.to_thread(self.fn, item.persona, item.question)
                if inspect.isawaitable(out):
                    out = await out
        except Exception as exc:  # the user's code failed on this item: a recorded failure
            return Solution(False, error=f"approach raised {type(exc).__name__}: {exc}")
        if not isinstance(out, str) or not out.strip():
            return Solution(False, error=f"approach returned {type(out).__name__}, not a non-empty string")
        return Solution(True, answer=out, raw=out)


__all__ = ["AnswersSolver", "ApproachSolver", "ModelSolver", "Solution", "Solver"]

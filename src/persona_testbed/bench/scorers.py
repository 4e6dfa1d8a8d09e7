"""Scorers: the critic judge (answer still needs revision?) and the persona-judge (A or B?).

A judge reply that never validates against its schema (after the LLM layer's re-asks) comes back as a
failed verdict with the raw text and error: a recorded per-item failure, never a silent drop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..personas.record import Persona
from .records import BenchItem, CriticVerdict, PreferenceChoice
from .roles import Role
from .templates import critic_messages, preference_messages


@dataclass
class Verdict:
    ok: bool
    score: float | None = None  # 1.0 = no revision needed
    reasoning: str | None = None
    raw: str | None = None
    call_id: str | None = None
    error: str | None = None


class CriticScorer:
    """The critic judge: sees persona + question + answer; score 1 when no revision is needed."""

    def __init__(self, role: Role):
        self.role = role

    async def score(
        self,
        item: BenchItem,
        answer: str,
        *,
        key: tuple[object, ...],
        purpose: str,
        sample_index: int = 0,
        without: Iterable[str] | None = None,
    ) -> Verdict:
        res = await self.role.chat(
            critic_messages(item.persona, item.question, answer, without=without),
            key=(item.id, *key),
            purpose=purpose,
            schema=CriticVerdict,
            sample_index=sample_index,
        )
        if not res.ok:
            return Verdict(
                False,
                raw=res.text or None,
                call_id=res.call_id,
                error=f"judge output invalid or call failed: {res.error}",
            )
        parsed = res.parsed or {}
        return Verdict(
            True,
            score=0.0 if parsed.get("needs_revision") else 1.0,
            reasoning=parsed.get("reasoning"),
            raw=res.text,
            call_id=res.call_id,
        )


@dataclass
class Pick:
    ok: bool
    preferred: str | None = None  # "A" or "B"
    reasoning: str | None = None
    raw: str | None = None
    call_id: str | None = None
    error: str | None = None


class PreferenceJudge:
    """A model role-playing a persona picks the preferred of two answers."""

    def __init__(self, role: Role):
        self.role = role

    async def pick(
        self,
        persona: Persona,
        question: str,
        answer_a: str,
        answer_b: str,
        *,
        key: tuple[object, ...],
        purpose: str,
    ) -> Pick:
        res = await self.role.chat(
            preference_messages(persona, question, answer_a, answer_b),
            key=key,
            purpose=purpose,
            schema=PreferenceChoice,
        )
        if not res.ok:
            return Pick(
                False,
                raw=res.text or None,
                call_id=res.call_id,
                error=f"judge output invalid or call failed: {res.error}",
            )
        parsed = res.parsed or {}
        return Pick(
            True,
            preferred=parsed.get("preferred"),
            reasoning=parsed.get("reasoning"),
            raw=res.text,
            call_id=res.call_id,
        )


__all__ = ["CriticScorer", "Pick", "PreferenceJudge", "Verdict"]

"""LLM consistency judge: does a whole (enriched) persona describe one plausible person?

One structured call per persona returns a ``JudgeVerdict`` {consistent, conflicting_fields, reason}.
``conflicting_fields`` is constrained (JSON-schema enum) to the 33 PERSONA field names. The pipeline in
``enrich.py`` resamples personas the judge calls inconsistent; this module only asks and parses.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ..core.seeds import derive_int
from ..llm.types import ChatParams, ChatResult
from .record import PERSONA_FIELDS, Persona
from .render import render_full

FieldName = Literal[PERSONA_FIELDS]  # type: ignore[valid-type]


def prose_pattern(min_len: int, max_len: int) -> str:
    """JSON-schema pattern for one line of plain prose: no control characters, double quotes or backslashes."""
    return rf'^[^\x00-\x1f"\\]{{{min_len},{max_len}}}$'


JUDGE_PURPOSE = "personas.judge"


class JudgeVerdict(BaseModel):
    """The judge's structured answer."""

    consistent: bool
    conflicting_fields: list[FieldName] = Field(default_factory=list, max_length=6)  # type: ignore[valid-type]
    reason: str = Field(default="", max_length=300, pattern=prose_pattern(0, 300))


JUDGE_SYSTEM = (
    "You check synthetic personas built from US census records for internal consistency. A persona is "
    "INCONSISTENT only when some of its fields cannot all be true of one real person: for example a job "
    "description that contradicts the occupation or industry, prose that contradicts the age, sex, "
    "education, disability or employment status, or a lifestyle that contradicts the income or household. "
    "Unusual but possible combinations are consistent; writing style does not matter. "
    "Answer in JSON with keys: consistent (true/false), conflicting_fields (the exact field names that "
    "conflict, empty when consistent), reason (why, in one sentence)."
)


def judge_messages(persona: Persona) -> list[dict[str, str]]:
    """The chat messages asking for a verdict on ``persona`` (all 33 fields, ``field: value`` lines)."""
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {
            "role": "user",
            "content": "Persona profile:\n"
            + render_full(persona)
            + "\n\nIs this profile self-consistent? Answer in JSON.",
        },
    ]


def judge_params(seed: int, persona_id: str, max_tokens: int = 160) -> ChatParams:
    """Deterministic sampling for the judge: temperature 0, a seed derived from the persona id."""
    return ChatParams(
        temperature=0.0, max_tokens=max_tokens, seed=derive_int(seed, JUDGE_PURPOSE, persona_id)
    )


async def judge_persona(
    persona: Persona, client: Any, seed: int, *, max_tokens: int = 160
) -> tuple[JudgeVerdict | None, ChatResult]:
    """Ask ``client`` for a verdict on ``persona``; ``(None, result)`` when the call failed for good."""
    res = await client.chat(
        judge_messages(persona),
        params=judge_params(seed, persona.id, max_tokens),
        schema=JudgeVerdict,
        purpose=JUDGE_PURPOSE,
    )
    if not res.ok:
        return None, res
    verdict = res.parsed if isinstance(res.parsed, JudgeVerdict) else JudgeVerdict.model_validate(res.parsed)
    return verdict, res


__all__ = ["JudgeVerdict", "JUDGE_SYSTEM", "JUDGE_PURPOSE", "judge_messages", "judge_params", "judge_persona"]

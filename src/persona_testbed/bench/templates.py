"""The prompts the bench sends: candidate messages per mode, the critic judge, the persona-judge.

Every judge prompt carries the question AND the exact answer being judged (the public reference's
pass@k judge saw neither the question nor anything but the last sample).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..llm.types import Message
from ..personas.record import Persona
from ..personas.render import render_full
from .records import CotAnswer, SummaryAnswer

MODES: tuple[str, ...] = ("baseline", "persona", "cot", "summary", "fewshot", "fewshot-retrieved")
#: modes that show the persona's own train pairs (bench/fewshot.py); they need ``shots``
SHOT_MODES: tuple[str, ...] = ("fewshot", "fewshot-retrieved")

# Modes whose candidate output has parts; only ``answer`` is scored.
MODE_SCHEMAS = {"cot": CotAnswer, "summary": SummaryAnswer}

_PERSONA_SYSTEM = (
    "You are a helpful assistant answering a question from a specific user. Tailor your answer to this "
    "user's background, values and needs while staying helpful and harmless.\n\nUser profile:\n{profile}"
)
_MODE_SUFFIX = {
    "persona": "\n\nAnswer the question directly.",
    "cot": (
        "\n\nFirst think step by step about what this user needs, then answer. Reply with a JSON "
        'object: {"reasoning": "...", "answer": "..."}.'
    ),
    "fewshot": "\n\nAnswer the question directly, in the way this user preferred in the examples.",
    "fewshot-retrieved": "\n\nAnswer the question directly, in the way this user preferred in the examples.",
    "summary": (
        "\n\nFirst summarise the attributes of this user that are relevant to the question, then "
        'answer. Reply with a JSON object: {"summary": "...", "answer": "..."}.'
    ),
}


EXAMPLES_TITLE = "Answers this user preferred to earlier questions:"


def candidate_messages(
    mode: str,
    persona: Persona,
    question: str,
    without: Iterable[str] | None = None,
    shots: Sequence[tuple[str, str]] | None = None,
) -> list[Message]:
    """Messages for the candidate in ``mode`` (baseline sees no persona).

    The few-shot modes add ``shots`` (question, preferred answer) after the profile.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    if (mode in SHOT_MODES) != (shots is not None):
        raise ValueError(f"mode {mode!r} {'needs' if mode in SHOT_MODES else 'takes no'} shots")
    if mode == "baseline":
        system = "You are a helpful assistant. Answer the user's question helpfully and harmlessly."
    else:
        system = _PERSONA_SYSTEM.format(profile=render_full(persona, without=without))
        if shots is not None:
            system += f"\n\n{EXAMPLES_TITLE}" + "".join(
                f"\n\nExample {i}\nQuestion: {q}\nPreferred answer: {a}" for i, (q, a) in enumerate(shots, 1)
            )
        system += _MODE_SUFFIX[mode]
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


CRITIC_SYSTEM = (
    "You are a critic reviewing an assistant's answer for one specific user. Decide whether the answer "
    "still needs revision to suit this user (their background, values and needs) while remaining "
    "helpful and harmless. Give your reasoning first. Reply with a JSON object: "
    '{"reasoning": "...", "needs_revision": true or false}.'
)


def critic_messages(
    persona: Persona, question: str, answer: str, without: Iterable[str] | None = None
) -> list[Message]:
    """The critic judge sees the persona, the question and the answer being judged."""
    user = (
        f"User profile:\n{render_full(persona, without=without)}\n\n"
        f"Question from this user:\n{question}\n\n"
        f"Answer to review:\n{answer}\n\n"
        "Does this answer still need revision for this user?"
    )
    return [{"role": "system", "content": CRITIC_SYSTEM}, {"role": "user", "content": user}]


PREFERENCE_SYSTEM = (
    "You are role-playing the person described below. Stay in character: judge as this person would, "
    "with their background, values and needs.\n\nYour profile:\n{profile}"
)


def preference_messages(persona: Persona, question: str, answer_a: str, answer_b: str) -> list[Message]:
    """The persona-judge picks between answer A and answer B to the question."""
    user = (
        f"You asked: {question}\n\nAnswer A:\n{answer_a}\n\nAnswer B:\n{answer_b}\n\n"
        "Which answer do you prefer? Reply with a JSON object: "
        '{"reasoning": "...", "preferred": "A" or "B"}.'
    )
    return [
        {"role": "system", "content": PREFERENCE_SYSTEM.format(profile=render_full(persona))},
        {"role": "user", "content": user},
    ]


__all__ = [
    "CRITIC_SYSTEM",
    "EXAMPLES_TITLE",
    "MODES",
    "SHOT_MODES",
    "MODE_SCHEMAS",
    "candidate_messages",
    "critic_messages",
    "preference_messages",
]

"""Every prompt the Direct Principle Feedback stage sends, in one place, versioned.

``TEMPLATE_VERSION`` enters each call's sampling seed (so a template change changes every cache key even
where the text did not) and the run manifest. Bump it whenever a template below changes.

Steps: ``answer`` (rejected: no persona) -> ``critique`` (in the persona's shoes: what fails this
person, what to change; quote the persona and the answer; short) -> ``revise`` (chosen: subtle, indirect,
about as long as the original: a word range from ``length.LengthBand``) -> ``judge`` (the persona picks A or
B; asked in both orders).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from .length import count_words

TEMPLATE_VERSION = "dpf-v2"  # v2: the revision targets a word range (was: at most N characters)

Messages = list[dict[str, str]]

ANSWER_SYSTEM = "You are a helpful assistant. Answer the user's question directly and concisely."

CRITIQUE_SYSTEM = (
    "You are role-playing the person described below. Think and speak as this person, from their own "
    "background, values and situation.\n\nThe person:\n{persona}"
)
CRITIQUE_USER = (
    'You asked: {question}\n\nYou were given this answer:\n"""\n{answer}\n"""\n\n'
    "As yourself, say briefly what about this answer does not work for you and what should change. "
    "Quote the exact words of the answer that bother you and the detail of your own background that "
    "makes them a poor fit. Prefer short answers: two or three sentences."
)

REVISE_SYSTEM = (
    "You revise answers so they suit one particular reader, subtly and indirectly. You never mention, "
    "name or hint at the reader's personal attributes (age, sex, race, religion, politics, job, income, "
    "health, family or anything else about them); the answer simply fits them better."
)
REVISE_USER = (
    'The reader:\n{persona}\n\nQuestion: {question}\n\nOriginal answer ({words} words):\n"""\n'
    '{answer}\n"""\n\nThe reader\'s feedback:\n"""\n{critique}\n"""\n\n'
    "Rewrite the original answer so it suits this reader. Keep it about as long as the original: between "
    "{low} and {high} words. Do not name any of the reader's attributes. Reply with the revised answer only."
)
REVISE_RETRY = (
    "\n\nYour previous revision had {previous} words, outside the range of {low} to {high} words. "
    "Write a {direction} revision."
)

JUDGE_SYSTEM = (
    "You are the person described below. Judge as this person would, from their own values and "
    "situation.\n\nThe person:\n{persona}"
)
JUDGE_USER = (
    'You asked: {question}\n\nAnswer A:\n"""\n{a}\n"""\n\nAnswer B:\n"""\n{b}\n"""\n\n'
    'Which answer do you prefer? Reply in JSON with "choice": "A" or "B".'
)


class JudgeChoice(BaseModel):
    """The persona-judge's structured answer."""

    choice: Literal["A", "B"]


def answer_messages(question: str) -> Messages:
    """Step 1 (rejected): the question with no persona information."""
    return [{"role": "system", "content": ANSWER_SYSTEM}, {"role": "user", "content": question}]


def critique_messages(persona: str, question: str, answer: str) -> Messages:
    """Step 2 (critique): the model in the persona's shoes criticises the answer."""
    return [
        {"role": "system", "content": CRITIQUE_SYSTEM.format(persona=persona)},
        {"role": "user", "content": CRITIQUE_USER.format(question=question, answer=answer)},
    ]


def revise_messages(
    persona: str,
    question: str,
    answer: str,
    critique: str,
    bounds: tuple[int, int],
    previous_words: int | None = None,
) -> Messages:
    """Step 3 (chosen): revise ``answer`` for the persona in ``bounds`` = (low, high) words;
    ``previous_words`` (outside the bounds) asks again for a longer or shorter one."""
    low, high = bounds
    user = REVISE_USER.format(
        persona=persona,
        question=question,
        answer=answer,
        critique=critique,
        words=count_words(answer),
        low=low,
        high=high,
    )
    if previous_words is not None:
        user += REVISE_RETRY.format(
            previous=previous_words,
            low=low,
            high=high,
            direction="longer" if previous_words < low else "shorter",
        )
    return [{"role": "system", "content": REVISE_SYSTEM}, {"role": "user", "content": user}]


def judge_messages(persona: str, question: str, a: str, b: str) -> Messages:
    """Validation: the persona picks between answer A and answer B."""
    return [
        {"role": "system", "content": JUDGE_SYSTEM.format(persona=persona)},
        {"role": "user", "content": JUDGE_USER.format(question=question, a=a, b=b)},
    ]

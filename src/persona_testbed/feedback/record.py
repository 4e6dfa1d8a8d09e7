"""The PreferencePair record and its validation verdict."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from ..core.hashing import content_hash
from .leakage import PairLeakage

SCHEMA_VERSION = 1

PairSplit = Literal["train", "test", "held_out"]
SPLITS: tuple[str, ...] = ("train", "test", "held_out")

# Reasons a kept pair is suspect (``PreferencePair.flags``); ``feedback export --drop-flagged`` drops them.
FLAG_LENGTH = "length_out_of_band"  # no revision landed in the length band (see length.py)
FLAG_JUDGE = "judge_prefers_rejected"  # the persona-judge preferred rejected in both orders
TRUNCATED_STEPS: tuple[str, ...] = ("rejected", "critique", "chosen")


def truncated_flag(step: str) -> str:
    """``truncated:<step>``: the step's answer was still cut off at max_tokens after a re-ask with 2x."""
    return f"truncated:{step}"


class PairValidation(BaseModel):
    """The persona-judge's picks in both orders.

    ``choice_ab``: its letter when A = chosen, B = rejected; ``choice_ba``: when A = rejected, B = chosen.
    ``position_bias``: the same letter in both orders (the order, not the content, decided);
    ``flagged``: rejected preferred in both orders (the judge disagrees with the pair) — kept, not dropped.
    """

    choice_ab: Literal["A", "B"] | None = None
    choice_ba: Literal["A", "B"] | None = None
    error: str | None = None  # a judge call failed (its order's choice is None)

    @property
    def chosen_votes(self) -> list[bool]:
        votes = []
        if self.choice_ab is not None:
            votes.append(self.choice_ab == "A")
        if self.choice_ba is not None:
            votes.append(self.choice_ba == "B")
        return votes

    @property
    def complete(self) -> bool:
        return self.choice_ab is not None and self.choice_ba is not None

    @property
    def position_bias(self) -> bool | None:
        return self.choice_ab == self.choice_ba if self.complete else None

    @property
    def flagged(self) -> bool:
        return self.complete and self.choice_ab == "B" and self.choice_ba == "A"

    @property
    def chosen_both(self) -> bool:
        return self.complete and self.choice_ab == "A" and self.choice_ba == "B"


class PreferencePair(BaseModel):
    """One DPF pair: a persona, a question, the generic (rejected) and the revised (chosen) answer."""

    schema_version: int = SCHEMA_VERSION
    id: str
    persona_id: str
    prompt_id: str
    split: PairSplit
    question: str
    persona_text: str  # the persona as the model saw it (system message of TRL exports)
    rejected: str = ""
    critique: str = ""
    chosen: str = ""
    model: str
    template_version: str
    seed: int
    config_key: str  # hash of everything that determines the pair's content
    call_ids: dict[str, list[str]] = Field(default_factory=dict)  # step -> call ids (revise may retry)
    # step -> finish reason of each call in call_ids ("stop"; "length" = cut off at max_tokens; None unknown)
    finish_reasons: dict[str, list[str | None]] = Field(default_factory=dict)
    revision_attempts: int = 0
    # ok / retried / trimmed / out_of_band (length.py); "truncated": older files (cut to a character limit)
    length_action: Literal["ok", "retried", "trimmed", "out_of_band", "truncated", "none"] = "none"
    length_target: tuple[int, int] | None = None  # the chosen answer's word range (None in older files)
    validation: PairValidation | None = None
    flagged: bool = False  # copy of validation.flagged (judge preferred rejected in both orders)
    # every reason this kept pair is suspect, sorted: length_out_of_band, truncated:<step>,
    # judge_prefers_rejected; `feedback export --drop-flagged` leaves these pairs out
    flags: list[str] = Field(default_factory=list)
    # explicit mentions of the persona's attributes (feedback/leakage.py); None = not checked (older files)
    leakage: PairLeakage | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None

    @model_validator(mode="after")
    def _judge_flag(self) -> PreferencePair:
        """Files written before ``flags`` existed: their judge verdict becomes the flag it is now."""
        if self.flagged and FLAG_JUDGE not in self.flags:
            self.flags = sorted({*self.flags, FLAG_JUDGE})
        return self

    def add_flag(self, flag: str) -> None:
        if flag not in self.flags:
            self.flags = sorted({*self.flags, flag})

    @property
    def leaky(self) -> bool | None:
        """The chosen answer names a persona attribute (None: not checked)."""
        return None if self.leakage is None else self.leakage.leaky

    @staticmethod
    def make_id(persona_id: str, prompt_id: str, split: str) -> str:
        return "pair-" + content_hash({"persona": persona_id, "prompt": prompt_id, "split": split}, 16)

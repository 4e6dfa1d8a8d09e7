"""Typed records of the bench: inputs (prompts, pairs, items), structured-output schemas, item results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..personas.record import Persona


class BenchPrompt(BaseModel):
    """A question from the prompt set (``prompts.parquet`` / JSONL of the prompts stage)."""

    id: str
    text: str
    split: str | None = None


class BenchPair(BaseModel):
    """A feedback preference pair (``pairs.parquet`` / JSONL of the feedback stage)."""

    id: str
    persona_id: str
    prompt_id: str
    question: str
    chosen: str
    rejected: str
    split: str | None = None
    critique: str | None = None


@dataclass(frozen=True)
class BenchItem:
    """One (persona, question) work item; ``arm`` distinguishes conditions (mode, ablation, group)."""

    persona: Persona
    prompt_id: str
    question: str

    @property
    def id(self) -> str:
        return f"{self.persona.id}:{self.prompt_id}"


# -- structured outputs -------------------------------------------------------------------------------


class CotAnswer(BaseModel):
    """Candidate output in ``cot`` mode: step-by-step reasoning, then the answer (only it is scored)."""

    reasoning: str = Field(description="step-by-step thinking about what this user needs")
    answer: str = Field(description="the final answer to the user's question")


class SummaryAnswer(BaseModel):
    """Candidate output in ``summary`` mode: relevant persona attributes, then the answer."""

    summary: str = Field(description="the user's attributes that matter for this question")
    answer: str = Field(description="the final answer to the user's question")


class CriticVerdict(BaseModel):
    """The critic judge's decision: reasoning first, then whether the answer still needs revision."""

    reasoning: str = Field(description="why the answer does or does not suit this user")
    needs_revision: bool = Field(description="true if the answer should still be revised for this user")


class PreferenceChoice(BaseModel):
    """A persona-judge's pick between two answers shown as A and B."""

    reasoning: str = Field(description="why this person prefers one answer")
    preferred: Literal["A", "B"] = Field(description="the preferred answer: A or B")


# -- results ------------------------------------------------------------------------------------------


class ItemResult(BaseModel):
    """One judged unit of work (a row of ``items.parquet``); failures are rows too."""

    task: str
    item_id: str
    arm: str  # mode ("persona"), ablation ("full", "without:age"), group name, order ("AB"), ...
    persona_id: str
    prompt_id: str = ""
    pair_id: str = ""
    sample_index: int = 0
    question: str = ""
    answer: str = ""
    score: float | None = None  # 1/0 for critic verdicts; None when not scored (failure)
    label: str | None = None  # categorical outcome (e.g. "chosen"/"rejected", "A"/"B")
    status: Literal["ok", "failed"] = "ok"
    failed_stage: str | None = None  # "candidate" | "judge" | ...
    error: str | None = None
    candidate_call_id: str | None = None
    judge_call_id: str | None = None
    candidate_raw: str | None = None
    judge_raw: str | None = None
    judge_reasoning: str | None = None
    leaky: bool | None = None  # the answer names a persona attribute explicitly (None: not checked)
    extra: dict[str, Any] = Field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        d = self.model_dump()
        d["extra"] = json.dumps(d["extra"], sort_keys=True, ensure_ascii=False)
        return d


@dataclass
class TaskOutput:
    """What a task returns to the runner: per-item rows, headline figures, table rows for the CLI."""

    items: list[ItemResult]
    figures: Any  # the task's figures record (bench.results)
    table_columns: list[str]
    table_rows: list[list[Any]]
    config: dict[str, Any] = field(default_factory=dict)


__all__ = [
    "BenchItem",
    "BenchPair",
    "BenchPrompt",
    "CotAnswer",
    "CriticVerdict",
    "ItemResult",
    "PreferenceChoice",
    "SummaryAnswer",
    "TaskOutput",
]

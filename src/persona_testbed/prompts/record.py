"""The Prompt record: one input prompt, its filter verdicts, topic cluster and split."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ..core.hashing import content_hash

SCHEMA_VERSION = 1

# Filters in the order they are applied; a filter only sees prompts that passed every earlier one.
FILTER_ORDER: tuple[str, ...] = (
    "question_mark",
    "min_words",
    "exact_duplicate",
    "near_duplicate",
    "limit",
    "controversy",
)

Split = Literal["train", "held_out"]


class FilterVerdict(BaseModel):
    """What one filter said about one prompt. ``error`` = the check itself failed (e.g. LLM call)."""

    verdict: Literal["pass", "fail", "error"]
    reason: str = ""
    detail: dict[str, Any] = Field(default_factory=dict)  # e.g. {"call_id": ..., "duplicate_of": ...}

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


class Prompt(BaseModel):
    """A prompt as read from its source, with every filter verdict it received.

    ``id`` is the content hash of the text (``q-`` + 16 hex); a later exact repeat of a text gets
    ``<id>-dup<k>`` so every source line keeps its own record. ``kept`` is true when every applied
    filter passed; only kept prompts get a ``cluster`` and a ``split``.
    """

    schema_version: int = SCHEMA_VERSION
    id: str
    text: str
    source: str = ""  # file name the prompt came from
    source_index: int  # 1-based line / item number in the source
    verdicts: dict[str, FilterVerdict] = Field(default_factory=dict)
    kept: bool = False
    cluster: int | None = None
    cluster_label: str | None = None
    split: Split | None = None

    @staticmethod
    def make_id(text: str) -> str:
        return "q-" + content_hash(text, 16)

    def first_failure(self) -> tuple[str, FilterVerdict] | None:
        """The first filter (in application order) that did not pass, if any."""
        for name in FILTER_ORDER:
            v = self.verdicts.get(name)
            if v is not None and not v.passed:
                return name, v
        return None

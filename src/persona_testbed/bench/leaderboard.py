"""The typed record of a model comparison (``comparison.json``) and its tables.

``Comparison`` holds one ``LeaderboardRow`` per candidate and arm (a mode for task ``main``) and one
``PairedDifference`` per pair of candidates and arm. ``bench run --candidate A --candidate B`` writes it
next to the per-candidate ``results.json`` files; ``bench compare`` prints it for finished runs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .results import Estimate, Record, Table

COMPARISON_SCHEMA_VERSION = 1
COMPARISON_NAME = "comparison.json"


class LeaderboardRow(Record):
    """One candidate in one arm (mode) on the compared items."""

    candidate: str
    """Candidate label (its model string; the run directory is added when two runs share one)."""
    arm: str
    """Arm of the rows (a mode for task main, a group, an ablation, ...)."""
    accuracy: Estimate
    """Intent-to-treat accuracy on the compared items (a failure is never a pass), cluster-bootstrap CI."""
    answered_accuracy: float | None = None
    """Accuracy among items the candidate answered and the judge scored."""
    failure_rate: float | None = None
    """Candidate failures / items."""
    items: int
    """Compared items of this arm."""
    rank: int
    """1 = highest ITT accuracy in this arm."""
    calls: int | None = None
    """LLM calls of this candidate's run (candidate and judge, all arms; None: not recorded)."""
    tokens: int | None = None
    """Prompt + completion tokens of those calls (None: no call log found)."""


class PairedDifference(Record):
    """accuracy(a) - accuracy(b) on the items both candidates ran, in one arm."""

    a: str
    """First candidate."""
    b: str
    """Second candidate."""
    arm: str
    """Arm (mode)."""
    difference: Estimate
    """ITT accuracy difference; paired cluster-bootstrap interval (clusters drawn once for both candidates)."""
    unpaired: Estimate
    """The same difference with each candidate's clusters drawn independently (what two separate runs
    compared by eye give): wider whenever the candidates agree on which items are hard."""
    items: int
    """Shared items."""
    a_only: int
    """Items a passed and b did not (discordant)."""
    b_only: int
    """Items b passed and a did not (discordant)."""
    mcnemar_p: float | None = None
    """Exact two-sided McNemar p-value (binomial on the discordant items; ignores clustering)."""


class Comparison(Record):
    """``comparison.json``: candidates compared on one item set with one judge."""

    kind: Literal["comparison"] = "comparison"
    """Discriminator (a ``results.json`` is one candidate's record)."""
    schema_version: int = COMPARISON_SCHEMA_VERSION
    """Version of this record's layout."""
    task: str
    """Bench task."""
    seed: int
    """Seed of the items and of the bootstrap."""
    judge: str | list[str] | None = None
    """Judge model string."""
    cluster: str = "persona"
    """Resampling unit of every interval."""
    n_resamples: int = 2000
    """Bootstrap resamples."""
    candidates: list[str]
    """Candidate labels in the order given."""
    sources: dict[str, str] = Field(default_factory=dict)
    """Candidate -> the directory its results.json and items.parquet came from."""
    items: int
    """Compared units (item, arm, sample) shared by every candidate."""
    leaderboard: list[LeaderboardRow]
    """Per arm, candidates by rank."""
    differences: list[PairedDifference]
    """Every pair of candidates in every arm."""
    warnings: list[str] = Field(default_factory=list)
    """Things to know (items only some runs had, settings that differ)."""


def _r(x: float | None, d: int = 3) -> float | None:
    return None if x is None else round(x, d)


def leaderboard_table(c: Comparison) -> Table:
    """candidate x arm: ITT accuracy with CI, answered accuracy, failure rate, calls, tokens."""
    cols = [
        "arm",
        "rank",
        "candidate",
        "accuracy (ITT)",
        "ci_low",
        "ci_high",
        "answered acc.",
        "failure rate",
        "items",
        "calls",
        "tokens",
    ]
    rows = [
        [
            r.arm,
            r.rank,
            r.candidate,
            _r(r.accuracy.estimate),
            _r(r.accuracy.low),
            _r(r.accuracy.high),
            _r(r.answered_accuracy),
            _r(r.failure_rate),
            r.items,
            r.calls,
            r.tokens,
        ]
        for r in c.leaderboard
    ]
    return Table(columns=cols, rows=rows)


def differences_table(c: Comparison) -> Table:
    """Every pairwise difference: paired CI, unpaired CI, discordant counts, McNemar p."""
    cols = [
        "arm",
        "a",
        "b",
        "a - b",
        "paired ci_low",
        "paired ci_high",
        "unpaired ci_low",
        "unpaired ci_high",
        "a only",
        "b only",
        "McNemar p",
    ]
    rows = [
        [
            d.arm,
            d.a,
            d.b,
            _r(d.difference.estimate),
            _r(d.difference.low),
            _r(d.difference.high),
            _r(d.unpaired.low),
            _r(d.unpaired.high),
            d.a_only,
            d.b_only,
            _r(d.mcnemar_p, 4),
        ]
        for d in c.differences
    ]
    return Table(columns=cols, rows=rows)


def comparison_view(c: Comparison) -> dict[str, Any]:
    """The report's view of a comparison (plain data, part of ``bench/summary.json``)."""
    return {
        "task": c.task,
        "judge": c.judge,
        "items": c.items,
        "candidates": c.candidates,
        "leaderboard": [r.model_dump(mode="json") for r in c.leaderboard],
        "differences": [d.model_dump(mode="json") for d in c.differences],
        "warnings": list(c.warnings),
    }


__all__ = [
    "COMPARISON_NAME",
    "COMPARISON_SCHEMA_VERSION",
    "Comparison",
    "LeaderboardRow",
    "PairedDifference",
    "comparison_view",
    "differences_table",
    "leaderboard_table",
]

"""Judge calibration: human pass/fail labels of this run's answers -> judge-corrected accuracy per mode.

Labels CSV (one row per annotator and answer): ``item_id, annotator_id, label`` and optionally ``arm``
(the mode; needed when the run has several). ``item_id`` and ``arm`` are the columns of
``items.parquet``; ``label`` is ``pass``/``fail`` (also ``1``/``0``, ``true``/``false``, ``ok``/``revise``).
Each answer's label is the strict majority of its annotators (ties are left out). The judge's
sensitivity (passes among human passes) and specificity (fails among human fails) on the labelled answers
correct the observed pass rate among answered items (Rogan-Gladen, ``stats.calibrate``).

At least ``MIN_PER_CLASS`` human passes and as many human fails are needed; fewer is a one-line error
that says how many labels a +-0.05 interval needs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import UserError
from .analysis import Stats
from .human import read_csv_rows
from .metrics import majority_vote
from .records import ItemResult
from .results import Calibrated, Estimate, MainFigures
from .stats import calibrate, labels_needed

MIN_PER_CLASS = 10
COLUMNS = ("item_id", "annotator_id", "label")
_VALUES = {
    "pass": 1,
    "1": 1,
    "true": 1,
    "ok": 1,
    "yes": 1,
    "fail": 0,
    "0": 0,
    "false": 0,
    "revise": 0,
    "no": 0,
}
TARGET_HALF_WIDTH = 0.05


@dataclass(frozen=True)
class HumanLabels:
    """Majority labels per (item_id, arm) (``arm`` "" = any arm); ties counted apart."""

    path: Path
    majority: dict[tuple[str, str], int]
    ties: int


def _needed_hint(observed: float = 0.6, n_items: int | None = None) -> str:
    """How many labels a +-TARGET_HALF_WIDTH corrected accuracy needs, for a judge with 85% Se and Sp."""
    se = sp = 0.85
    j = se + sp - 1
    z = 1.959963984540054
    items_alone = math.ceil(
        observed * (1 - observed) / (TARGET_HALF_WIDTH * j / z) ** 2
    )  # infinitely many labels
    n = max(n_items or 0, 2 * items_alone)
    m = labels_needed(TARGET_HALF_WIDTH, observed=observed, sensitivity=se, specificity=sp, n_items=n)
    return (
        f"about {m} labelled answers give a +-{TARGET_HALF_WIDTH} corrected accuracy for a judge with 85% "
        f"sensitivity and specificity (with {n} bench items)"
    )


def read_human_labels(path: str | Path) -> HumanLabels:
    """Read and check the labels CSV; ``UserError`` (file:line) on bad rows or too few labels per class."""
    p = Path(path)
    votes: dict[tuple[str, str], list[int]] = {}
    seen: set[tuple[str, str, str]] = set()
    for line, row in read_csv_rows(p, COLUMNS):
        for c in COLUMNS:
            if not row.get(c):
                raise UserError(f"{p}:{line}: empty field {c!r}")
        value = _VALUES.get(row["label"].lower())
        if value is None:
            raise UserError(f"{p}:{line}: label {row['label']!r} must be pass or fail")
        key = (row["item_id"], row.get("arm", "") or "")
        if (*key, row["annotator_id"]) in seen:
            raise UserError(f"{p}:{line}: annotator {row['annotator_id']} labelled {key[0]} twice")
        seen.add((*key, row["annotator_id"]))
        votes.setdefault(key, []).append(value)
    majority, ties = {}, 0
    for key, v in votes.items():
        m = majority_vote(v)
        if m.tie:
            ties += 1
        else:
            majority[key] = int(m.label)  # type: ignore[arg-type]
    counts = Counter(majority.values())
    if counts[1] < MIN_PER_CLASS or counts[0] < MIN_PER_CLASS:
        raise UserError(
            f"{p}: calibration needs at least {MIN_PER_CLASS} answers the annotators pass and "
            f"{MIN_PER_CLASS} they fail (got {counts[1]} and {counts[0]}, {ties} ties); " + _needed_hint()
        )
    return HumanLabels(path=p, majority=majority, ties=ties)


def calibrate_modes(
    figures: MainFigures, results: Sequence[ItemResult], labels: str | Path | HumanLabels, stats: Stats
) -> None:
    """Add ``calibrated`` to every mode of ``figures`` from the human labels of its answers."""
    human = labels if isinstance(labels, HumanLabels) else read_human_labels(labels)
    arms_in_file = {arm for _, arm in human.majority}
    if "" in arms_in_file and len(figures.modes) > 1:
        raise UserError(
            f"{human.path}: the run has several modes ({', '.join(figures.modes)}); give an 'arm' column"
        )
    for mode, fig in figures.modes.items():
        rows = [r for r in results if r.arm == mode and r.status == "ok" and r.score is not None]
        if stats.exclude_leaky:
            rows = [r for r in rows if not r.leaky]
        matched = [
            (human.majority[(r.item_id, arm)], r.score)
            for r in rows
            for arm in (mode, "")
            if (r.item_id, arm) in human.majority
        ]
        pos = sum(1 for h, _ in matched if h == 1)
        neg = len(matched) - pos
        if pos < MIN_PER_CLASS or neg < MIN_PER_CLASS:
            raise UserError(
                f"{human.path}: only {pos} passed and {neg} failed labelled answers match judged "
                f"answers of mode {mode} (need {MIN_PER_CLASS} of each; item_id/arm as in "
                f"items.parquet); " + _needed_hint(fig.answered_accuracy.estimate or 0.6, len(rows))
            )
        scores = np.array([r.score for r in rows], dtype=float)
        cal = calibrate(
            scores,
            [h for h, _ in matched],
            [s for _, s in matched],
            rng=stats.rng(f"calibration.{mode}"),
            confidence=stats.confidence,
            n_resamples=stats.n_resamples,
            clusters=[r.persona_id for r in rows]
            if stats.cluster == "persona"
            else ([r.prompt_id for r in rows] if stats.cluster == "prompt" else None),
        )
        nan = cal.corrected != cal.corrected
        answered_share = (
            (fig.items - fig.candidate_failures - fig.judge_failures) / fig.items if fig.items else None
        )
        fig.calibrated = Calibrated(
            observed=cal.observed,
            sensitivity=cal.sensitivity,
            specificity=cal.specificity,
            youden=cal.youden,
            corrected=Estimate(
                estimate=None if nan else cal.corrected,
                low=None if cal.low != cal.low else cal.low,
                high=None if cal.high != cal.high else cal.high,
                n=cal.n_items,
                cluster=stats.cluster,
                confidence=stats.confidence,
                n_resamples=stats.n_resamples,
            ),
            corrected_itt=None if nan or answered_share is None else cal.corrected * answered_share,
            labelled_positive=cal.n_positive,
            labelled_negative=cal.n_negative,
            labels_needed=labels_needed(
                TARGET_HALF_WIDTH,
                observed=cal.observed,
                sensitivity=cal.sensitivity,
                specificity=cal.specificity,
                n_items=cal.n_items,
                confidence=stats.confidence,
            ),
            target_half_width=TARGET_HALF_WIDTH,
        )


__all__ = ["COLUMNS", "HumanLabels", "MIN_PER_CLASS", "calibrate_modes", "read_human_labels"]

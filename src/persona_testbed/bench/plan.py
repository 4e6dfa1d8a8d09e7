"""``bench plan``: from a pilot run's results, the items needed for a chosen CI half-width.

An interval's half-width shrinks like 1/sqrt(n) whatever the clustering, so the pilot's own interval is
the best guide: ``n_needed = n_pilot x (pilot half-width / target)^2``. That carries the design effect
(persona clusters, failures, the bootstrap method) the pilot measured. When the pilot's interval is
degenerate (an accuracy of exactly 0 or 1, or too few items), the binomial formula
``z^2 p (1 - p) / h^2`` with ``p`` clipped to [0.05, 0.95] is used instead. Planned per mode (main), per k
(passk), per attribute's changed-share difference (loo), per group (intersections), for fidelity accuracy,
and for the human labels judge calibration needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from ..core.errors import UserError
from .compare import CANDIDATES_DIR
from .results import (
    BenchResults,
    Estimate,
    FidelityFigures,
    IntersectionsFigures,
    LooFigures,
    MainFigures,
    PassKFigures,
)
from .stats import design_effect, n_for_half_width


class PlanRow(BaseModel):
    """Items needed for one figure."""

    task: str
    """Task of the pilot."""
    candidate: str | None = None
    """The pilot's candidate model (several when the pilot compared candidates)."""
    figure: str
    """The figure planned for (e.g. ``accuracy (persona)``)."""
    estimate: float | None
    """Pilot estimate."""
    pilot_n: int
    """Units in the pilot."""
    pilot_half_width: float | None
    """Half-width of the pilot's interval."""
    design_effect: float
    """(pilot half-width / binomial half-width at the pilot's n)^2 (1 when not measurable)."""
    n_needed: int | None
    """Units needed for the target half-width."""
    unit: str
    """What ``n`` counts (items, items per group, labelled answers)."""
    basis: str
    """How ``n_needed`` was found: pilot-scaled, binomial or delta method."""


def _row(
    task: str,
    figure: str,
    e: Estimate,
    target: float,
    unit: str,
    binomial: bool = True,
    candidate: str | None = None,
) -> PlanRow:
    half = (e.high - e.low) / 2 if e.low is not None and e.high is not None else None
    p = e.estimate
    deff = design_effect(p, e.n, e.low, e.high, e.confidence) if (binomial and p is not None) else 1.0
    if half and half > 0 and e.n >= 10:
        need, basis = int(math.ceil(e.n * (half / target) ** 2)), "pilot-scaled"
    elif binomial and p is not None:
        need, basis = n_for_half_width(p, target, confidence=e.confidence), "binomial"
    else:
        need, basis = None, "not measurable"
    return PlanRow(
        task=task,
        candidate=candidate,
        figure=figure,
        estimate=p,
        pilot_n=e.n,
        pilot_half_width=half,
        design_effect=deff,
        n_needed=need,
        unit=unit,
        basis=basis,
    )


def plan(results: BenchResults, half_width: float) -> list[PlanRow]:
    """Planning rows for every interval figure of ``results``."""
    if not 0 < half_width < 0.5:
        raise UserError(f"--half-width must lie in (0, 0.5) (got {half_width})")
    f = results.figures
    t = results.task
    cand = results.models.candidate
    rows: list[PlanRow] = []
    if isinstance(f, MainFigures):
        for m, a in f.modes.items():
            rows.append(_row(t, f"accuracy ({m})", a.accuracy, half_width, "items", candidate=cand))
            if a.calibrated is not None:
                c = a.calibrated
                rows.append(
                    PlanRow(
                        task=t,
                        candidate=cand,
                        figure=f"judge-corrected accuracy ({m})",
                        estimate=c.corrected.estimate,
                        pilot_n=c.labelled_positive + c.labelled_negative,
                        pilot_half_width=None,
                        design_effect=1.0,
                        n_needed=c.labels_needed,
                        unit=f"labelled answers (+-{c.target_half_width})",
                        basis="delta method",
                    )
                )
    elif isinstance(f, PassKFigures):
        for k, e in f.pass_at_k.items():
            rows.append(_row(t, f"pass@{k}", e, half_width, "items", candidate=cand))
    elif isinstance(f, LooFigures):
        rows.append(_row(t, "accuracy (full)", f.full_accuracy.accuracy, half_width, "items", candidate=cand))
        for a, eff in f.attributes.items():
            rows.append(
                _row(
                    t,
                    f"changed share - control ({a})",
                    eff.changed_share_difference,
                    half_width,
                    "items",
                    binomial=False,
                    candidate=cand,
                )
            )
    elif isinstance(f, IntersectionsFigures):
        for g, a in f.groups.items():
            rows.append(_row(t, f"accuracy ({g})", a.accuracy, half_width, "items per group", candidate=cand))
    elif isinstance(f, FidelityFigures):
        rows.append(_row(t, "accuracy", f.accuracy, half_width, "judgements (2 per pair)", candidate=cand))
    else:
        raise UserError(
            f"bench plan: task {t!r} results (schema {results.schema_version}) have no interval "
            "figures to plan from"
            + (" (written before schema 2: re-run the pilot)" if f.kind == "legacy" else "")
        )
    return rows


def results_files(path: Path) -> list[Path]:
    """The results.json files a ``bench plan`` argument stands for: the file itself; a task directory's
    ``results.json``, or, for a pilot that compared candidates, each ``candidates/*/results.json``; or those
    of every task directory in a run's ``bench/`` directory."""
    if not path.is_dir():
        return [path]

    def task_files(d: Path) -> list[Path]:
        if (d / "results.json").exists():
            return [d / "results.json"]
        return sorted((d / CANDIDATES_DIR).glob("*/results.json"))

    found = task_files(path) or [f for d in sorted(path.iterdir()) if d.is_dir() for f in task_files(d)]
    if not found:
        raise UserError(f"{path}: no results.json in it, in its task directories or in their candidates/")
    return found


def plan_many(results: Iterable[BenchResults], half_width: float) -> list[PlanRow]:
    """``plan`` over several results (e.g. every task of a run)."""
    return [r for res in results for r in plan(res, half_width)]


__all__ = ["PlanRow", "plan", "plan_many", "results_files"]

"""Task ``main``: the candidate answers for a persona, the critic judges; accuracy per mode.

Two LLM calls per item and mode (candidate + judge). Headline accuracy is intent-to-treat (a failed
candidate call counts as "needs revision"); accuracy among answered items and the failure rates sit
next to it, and the leak rate of the answers. With human labels (``calibration``) the judge-corrected
accuracy (Rogan-Gladen) is added per mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..analysis import main_figures
from ..calibration import calibrate_modes, read_human_labels
from ..context import BenchContext
from ..records import TaskOutput
from ..templates import MODES
from .common import candidate_modes, solve_and_judge


def table(figures) -> tuple[list[str], list[list]]:
    cols = ["mode", "accuracy (ITT)", "ci_low", "ci_high", "answered acc.", "failure rate", "judge failures",
            "leak rate", "items"]
    rows = []
    for m, f in figures.modes.items():
        rows.append([m, f.accuracy.estimate, f.accuracy.low, f.accuracy.high, f.answered_accuracy.estimate,
                     f.failure_rate, f.judge_failures, f.leak_rate, f.items])
        if f.calibrated is not None:
            c = f.calibrated
            rows.append([f"{m} (judge-corrected, answered)", c.corrected.estimate, c.corrected.low,
                         c.corrected.high, None, None, None, None, c.labelled_positive + c.labelled_negative])
    return cols, rows


async def run(ctx: BenchContext, *, modes: Sequence[str] | None = None,
              calibration: str | Path | None = None) -> TaskOutput:
    """Accuracy (share of answers the critic would not revise) per mode."""
    chosen = candidate_modes(ctx, modes, MODES)
    labels = read_human_labels(calibration) if calibration is not None else None  # checked before any call
    items = ctx.items()
    jobs = [(lambda it=it, m=m: solve_and_judge(ctx, it, arm=m, mode=m)) for m in chosen for it in items]
    results = await ctx.gather("answer + judge", jobs)
    figures = main_figures(ctx.rows(results), chosen, ctx.stats)
    if labels is not None:
        calibrate_modes(figures, results, labels, ctx.stats)
    cols, rows = table(figures)
    return TaskOutput(items=results, figures=figures, table_columns=cols, table_rows=rows,
                      config={"modes": chosen, "items": len(items)})

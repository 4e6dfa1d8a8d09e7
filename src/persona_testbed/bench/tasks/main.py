"""Task ``main``: the candidate answers for a persona, the critic judges; accuracy per mode.

Two LLM calls per item and mode (candidate + judge). Headline accuracy is intent-to-treat (a failed
candidate call counts as "needs revision"); accuracy among answered items and the failure rates sit
next to it, and the leak rate of the answers. With human labels (``calibration``) the judge-corrected
accuracy (Rogan-Gladen) is added per mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ...core.errors import UserError
from ..analysis import main_figures
from ..calibration import calibrate_modes, read_human_labels
from ..context import BenchContext
from ..fewshot import DEFAULT_SHOTS, ShotBank, solve_fewshot
from ..records import TaskOutput
from ..templates import MODES, SHOT_MODES
from .common import candidate_modes, solve_and_judge

#: modes run when none are named (the few-shot modes need pairs, so they are opt-in)
DEFAULT_MODES = tuple(m for m in MODES if m not in SHOT_MODES)


def table(figures) -> tuple[list[str], list[list]]:
    cols = [
        "mode",
        "accuracy (ITT)",
        "ci_low",
        "ci_high",
        "answered acc.",
        "failure rate",
        "judge failures",
        "leak rate",
        "items",
    ]
    rows = []
    for m, f in figures.modes.items():
        rows.append(
            [
                m,
                f.accuracy.estimate,
                f.accuracy.low,
                f.accuracy.high,
                f.answered_accuracy.estimate,
                f.failure_rate,
                f.judge_failures,
                f.leak_rate,
                f.items,
            ]
        )
        if f.calibrated is not None:
            c = f.calibrated
            rows.append(
                [
                    f"{m} (judge-corrected, answered)",
                    c.corrected.estimate,
                    c.corrected.low,
                    c.corrected.high,
                    None,
                    None,
                    None,
                    None,
                    c.labelled_positive + c.labelled_negative,
                ]
            )
    return cols, rows


async def run(
    ctx: BenchContext,
    *,
    modes: Sequence[str] | None = None,
    calibration: str | Path | None = None,
    shots: int | None = None,
) -> TaskOutput:
    """Accuracy (share of answers the critic would not revise) per mode.

    The few-shot modes (``fewshot``, ``fewshot-retrieved``) show ``shots`` (default 4) of the persona's
    own train pairs; every persona is checked to have that many before any call.
    """
    chosen = candidate_modes(ctx, modes, DEFAULT_MODES)
    labels = read_human_labels(calibration) if calibration is not None else None  # checked before any call
    items = ctx.items()
    bank: ShotBank | None = None
    if any(m in SHOT_MODES for m in chosen):
        if not ctx.pairs:
            raise UserError("modes fewshot / fewshot-retrieved need the persona's train pairs (--pairs DIR)")
        bank = ShotBank(ctx.pairs, k=DEFAULT_SHOTS if shots is None else shots, seed=ctx.seed)
        bank.check(items)
    elif shots is not None:
        raise UserError("--shots applies to the modes fewshot and fewshot-retrieved only")

    def job(it, m):  # type: ignore[no-untyped-def]
        if m in SHOT_MODES:

            async def few():  # type: ignore[no-untyped-def]
                sol = await solve_fewshot(ctx.candidate, bank, it, m)  # type: ignore[arg-type]
                return await solve_and_judge(ctx, it, arm=m, mode=m, solution=sol)

            return few
        return lambda: solve_and_judge(ctx, it, arm=m, mode=m)

    jobs = [job(it, m) for m in chosen for it in items]
    results = await ctx.gather("answer + judge", jobs)
    figures = main_figures(ctx.rows(results), chosen, ctx.stats)
    if labels is not None:
        calibrate_modes(figures, results, labels, ctx.stats)
    cols, rows = table(figures)
    config: dict = {"modes": chosen, "items": len(items)}
    if bank is not None:
        config["shots"] = bank.k
    return TaskOutput(items=results, figures=figures, table_columns=cols, table_rows=rows, config=config)

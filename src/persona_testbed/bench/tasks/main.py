"""Task ``main``: the candidate answers for a persona, the critic judges; accuracy with a bootstrap CI per mode.

Two LLM calls per item and mode (candidate + judge).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..context import BenchContext
from ..records import TaskOutput
from ..templates import MODES
from .common import candidate_modes, solve_and_judge


async def run(ctx: BenchContext, *, modes: Sequence[str] | None = None) -> TaskOutput:
    """Accuracy (share of answers the critic would not revise) per mode."""
    chosen = candidate_modes(ctx, modes, MODES)
    items = ctx.items()
    jobs = [(lambda it=it, m=m: solve_and_judge(ctx, it, arm=m, mode=m)) for m in chosen for it in items]
    results = await ctx.gather("answer + judge", jobs)
    figures = {"accuracy": {m: ctx.accuracy([r for r in results if r.arm == m], f"accuracy.{m}")
                            for m in chosen}}
    rows = [[m, f["estimate"], f["low"], f["high"], f["n"], f["failures"]]
            for m, f in figures["accuracy"].items()]
    return TaskOutput(items=results, figures=figures,
                      table_columns=["mode", "accuracy", "ci_low", "ci_high", "scored", "failures"],
                      table_rows=rows, config={"modes": chosen, "items": len(items)})

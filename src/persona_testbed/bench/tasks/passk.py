"""Task ``passk``: n >= k independent samples per item, EACH judged against the question; unbiased pass@k.

Samples are separate conversations with distinct ``sample_index`` and derived seeds; every sample's
own answer goes to the judge with the question (2 LLM calls per sample). pass@k (Chen et al. 2021) is
computed per item and averaged over items, with a (persona-)cluster bootstrap CI. Headline
(intent-to-treat): every drawn sample counts and a failed one is incorrect; ``answered_pass_at_k`` uses
judged samples only (items with fewer than k of them are left out and counted).
"""

from __future__ import annotations

from ...core.errors import UserError
from ..analysis import passk_figures
from ..context import BenchContext
from ..records import TaskOutput
from ..solvers import AnswersSolver
from .common import candidate_modes, solve_and_judge


async def run(
    ctx: BenchContext, *, k: int = 3, samples: int | None = None, mode: str | None = None
) -> TaskOutput:
    """pass@1 .. pass@k over items; ``samples`` (default k) independent answers per item."""
    if k < 1:
        raise UserError(f"--k must be at least 1 (got {k})")
    (arm,) = candidate_modes(ctx, [mode] if mode else None, ["persona"])
    items = ctx.items()
    solver = ctx.require_solver()
    per_item: dict[str, int] = {}
    for it in items:
        per_item[it.id] = solver.samples(it) if isinstance(solver, AnswersSolver) else (samples or k)
        if k > per_item[it.id]:
            raise UserError(f"--k {k} exceeds the {per_item[it.id]} samples of item {it.id} (need n >= k)")
    jobs = [
        (lambda it=it, s=s: solve_and_judge(ctx, it, arm=arm, mode=arm, sample_index=s))
        for it in items
        for s in range(per_item[it.id])
    ]
    results = await ctx.gather("samples + judges", jobs)
    figures = passk_figures(ctx.rows(results), k, ctx.stats)
    rows = []
    for kk in range(1, k + 1):
        e, a = figures.pass_at_k[str(kk)], figures.answered_pass_at_k[str(kk)]
        rows.append(
            [f"pass@{kk}", e.estimate, e.low, e.high, a.estimate, e.n, figures.items_excluded[str(kk)]]
        )
    rows.append(
        [
            "failure rate (samples)",
            figures.failure_rate,
            None,
            None,
            None,
            figures.samples,
            figures.judge_failures,
        ]
    )
    return TaskOutput(
        items=results,
        figures=figures,
        table_columns=[
            "metric",
            "estimate (ITT)",
            "ci_low",
            "ci_high",
            "answered only",
            "items",
            "items_excluded",
        ],
        table_rows=rows,
        config={"k": k, "samples": samples or k, "mode": arm, "items": len(items)},
    )

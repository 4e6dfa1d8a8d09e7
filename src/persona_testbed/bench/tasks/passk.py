"""Task ``passk``: n >= k independent samples per item, EACH judged against the question; unbiased pass@k.

Samples are separate conversations with distinct ``sample_index`` and derived seeds; every sample's
own answer goes to the judge with the question (2 LLM calls per sample). pass@k (Chen et al. 2021) is
computed per item from its judged samples and averaged over items, with a bootstrap CI over items.
"""

from __future__ import annotations

import numpy as np

from ...core.errors import UserError
from ...core.seeds import rng
from ..context import BenchContext
from ..metrics import mean_ci, pass_at_k
from ..records import TaskOutput
from ..solvers import AnswersSolver
from .common import candidate_modes, solve_and_judge


async def run(ctx: BenchContext, *, k: int = 3, samples: int | None = None, mode: str | None = None) -> TaskOutput:
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
    jobs = [(lambda it=it, s=s: solve_and_judge(ctx, it, arm=arm, mode=arm, sample_index=s))
            for it in items for s in range(per_item[it.id])]
    results = await ctx.gather("samples + judges", jobs)
    n_c: dict[str, list[int]] = {it.id: [0, 0] for it in items}
    for r in results:
        if r.status == "ok":
            n_c[r.item_id][0] += 1
            n_c[r.item_id][1] += int(r.score == 1.0)
    figures: dict = {"pass_at_k": {}, "samples_per_item": sorted(set(per_item.values())),
                     "failures": sum(r.status != "ok" for r in results)}
    rows = []
    for kk in range(1, k + 1):
        vals = [pass_at_k(n, c, kk) for n, c in n_c.values() if n >= kk]
        ci = mean_ci(vals, rng=rng(ctx.seed, "bench.bootstrap", ctx.task, f"pass@{kk}"),
                     confidence=ctx.confidence, n_resamples=ctx.n_resamples, method=ctx.ci_method).as_dict()  # type: ignore[arg-type]
        ci["items_excluded"] = sum(1 for n, _ in n_c.values() if n < kk)  # too few judged samples
        figures["pass_at_k"][str(kk)] = ci
        rows.append([f"pass@{kk}", ci["estimate"], ci["low"], ci["high"], ci["n"], ci["items_excluded"]])
    figures["mean_sample_accuracy"] = float(np.mean([c / n for n, c in n_c.values() if n])) if any(
        n for n, _ in n_c.values()) else None
    return TaskOutput(items=results, figures=figures,
                      table_columns=["metric", "estimate", "ci_low", "ci_high", "items", "items_excluded"],
                      table_rows=rows, config={"k": k, "samples": samples or k, "mode": arm, "items": len(items)})

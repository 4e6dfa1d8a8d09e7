"""Task ``intersections``: accuracy per intersectional group with CIs, and the largest gap between groups.

Each group gets ``n`` items drawn (seeded) from its own personas x the prompt set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...core.seeds import rng
from ..context import BenchContext
from ..groups import Group, load_groups_file, parse_group_spec, validate_groups
from ..records import TaskOutput
from .common import candidate_modes, solve_and_judge


def _gap_ci(a: list[float], b: list[float], ctx: BenchContext) -> tuple[float | None, float | None]:
    if not a or not b:
        return None, None
    g = rng(ctx.seed, "bench.bootstrap", ctx.task, "gap")
    xa, xb = np.asarray(a), np.asarray(b)
    da = xa[g.integers(0, len(xa), (ctx.n_resamples, len(xa)))].mean(1)
    db = xb[g.integers(0, len(xb), (ctx.n_resamples, len(xb)))].mean(1)
    alpha = (1 - ctx.confidence) / 2
    lo, hi = np.percentile(da - db, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


async def run(ctx: BenchContext, *, groups: Sequence[str] | None = None, groups_file: str | Path | None = None,
              mode: str | None = None) -> TaskOutput:
    """Accuracy per group (persona mode by default) and the largest gap with a bootstrap CI."""
    parsed: list[Group] = [parse_group_spec(s) for s in (groups or [])]
    if groups_file:
        parsed += load_groups_file(groups_file)
    members = validate_groups(parsed, ctx.personas)
    (arm_mode,) = candidate_modes(ctx, [mode] if mode else None, ["persona"])
    jobs, sizes = [], {}
    for g in parsed:
        cap = len(members[g.name]) * max(1, len(ctx.prompts))
        items = ctx.items("group", g.name, personas=members[g.name], n=min(ctx.n or 20, cap))
        sizes[g.name] = len(items)
        jobs += [(lambda it=it, name=g.name: solve_and_judge(ctx, it, arm=name, mode=arm_mode)) for it in items]
    results = await ctx.gather("groups", jobs)
    acc = {g.name: ctx.accuracy([r for r in results if r.arm == g.name], f"accuracy.{g.name}") for g in parsed}
    for g in parsed:
        acc[g.name]["personas"] = len(members[g.name])
        acc[g.name]["filters"] = {f: list(v) for f, v in g.filters}
    scored = {name: a for name, a in acc.items() if a["estimate"] is not None}
    gap = None
    if len(scored) >= 2:
        hi = max(scored, key=lambda k: scored[k]["estimate"])
        lo = min(scored, key=lambda k: scored[k]["estimate"])
        sc = {name: [r.score for r in results if r.arm == name and r.status == "ok"] for name in (hi, lo)}
        ci = _gap_ci(sc[hi], sc[lo], ctx)
        gap = {"estimate": scored[hi]["estimate"] - scored[lo]["estimate"], "low": ci[0], "high": ci[1],
               "highest": hi, "lowest": lo}
    rows = [[name, a["estimate"], a["low"], a["high"], a["personas"], a["n"], a["failures"]] for name, a in acc.items()]
    if gap:
        rows.append([f"largest gap ({gap['highest']} - {gap['lowest']})", gap["estimate"], gap["low"], gap["high"],
                     None, None, None])
    return TaskOutput(items=results, figures={"groups": acc, "largest_gap": gap},
                      table_columns=["group", "accuracy", "ci_low", "ci_high", "personas", "scored", "failures"],
                      table_rows=rows, config={"groups": [g.name for g in parsed], "mode": arm_mode,
                                               "items_per_group": sizes})

"""Task ``intersections``: accuracy per intersectional group with CIs, and the largest gap between groups.

Each group gets ``n`` items drawn (seeded) from its own personas x the prompt set. The largest gap is
re-selected inside every bootstrap resample (a simultaneous interval over all pairwise differences) and
tested with a permutation p-value for "no gap at all" (see ``bench.stats.max_gap``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ...personas.record import require_structured
from ..analysis import intersections_figures
from ..context import BenchContext
from ..groups import Group, load_groups_file, parse_group_spec, validate_groups
from ..records import TaskOutput
from .common import candidate_modes, solve_and_judge


async def run(
    ctx: BenchContext,
    *,
    groups: Sequence[str] | None = None,
    groups_file: str | Path | None = None,
    mode: str | None = None,
) -> TaskOutput:
    """Accuracy per group (persona mode by default) and the largest gap with a simultaneous CI and p-value."""
    require_structured(ctx.personas, "bench task intersections")  # groups are defined on attribute values
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
        jobs += [
            (lambda it=it, name=g.name: solve_and_judge(ctx, it, arm=name, mode=arm_mode)) for it in items
        ]
    results = await ctx.gather("groups", jobs)
    extra = {
        g.name: {"personas": len(members[g.name]), "filters": {f: list(v) for f, v in g.filters}}
        for g in parsed
    }
    figures = intersections_figures(ctx.rows(results), [g.name for g in parsed], ctx.stats, extra)
    rows = [
        [
            name,
            a.accuracy.estimate,
            a.accuracy.low,
            a.accuracy.high,
            a.answered_accuracy.estimate,
            a.failure_rate,
            a.personas,
            a.items,
            None,
        ]
        for name, a in figures.groups.items()
    ]
    gap = figures.largest_gap
    if gap:
        rows.append(
            [
                f"largest gap ({gap.highest} - {gap.lowest})",
                gap.estimate,
                gap.low,
                gap.high,
                None,
                None,
                None,
                None,
                gap.p_value,
            ]
        )
    return TaskOutput(
        items=results,
        figures=figures,
        table_columns=[
            "group",
            "accuracy (ITT)",
            "ci_low",
            "ci_high",
            "answered acc.",
            "failure rate",
            "personas",
            "items",
            "p (no gap)",
        ],
        table_rows=rows,
        config={"groups": [g.name for g in parsed], "mode": arm_mode, "items_per_group": sizes},
    )

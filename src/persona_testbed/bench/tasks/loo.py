"""Task ``loo``: leave-one-out attribute ablation against a control arm (the noise floor).

Arms per item: ``full`` (full persona), ``control`` (full persona again, an independent sample with its
own seed key: what sampling noise alone changes) and ``without:ATTR`` per chosen attribute. Per attribute:
kappa(full, ablated) and kappa(full, control) and their difference, the share of judgements that changed
in each arm and the difference of the shares, all with paired (persona-)cluster bootstrap intervals. An
attribute *matters* when its changed share exceeds the control's with an interval that excludes 0.

``ablate="candidate"`` (default) removes the attribute from the persona the candidate sees (the judge always
sees the full persona); ``ablate="judge"`` keeps the full-persona answer and removes the attribute from the
judge's view (no candidate sampling noise; the control re-judges the same answer with the full persona;
works for answers files too). Failures count as "not passed" in every arm (intent-to-treat).
"""

from __future__ import annotations

from collections.abc import Sequence

from ...core.errors import UserError
from ...personas.record import PERSONA_FIELDS, require_structured
from ..analysis import loo_figures
from ..context import BenchContext
from ..records import BenchItem, ItemResult, TaskOutput
from ..solvers import Solution
from .common import candidate_modes, solve_and_judge

DEFAULT_ATTRIBUTES = ("age", "sex", "race", "education", "income", "religion", "political views")
CONTROL = "control"


def check_attributes(attributes: Sequence[str] | None) -> list[str]:
    """Validate attribute names against the 33 persona fields (``all`` = every field)."""
    chosen = list(attributes or DEFAULT_ATTRIBUTES)
    if chosen == ["all"]:
        return list(PERSONA_FIELDS)
    for a in chosen:
        if a not in PERSONA_FIELDS:
            raise UserError(f"unknown persona attribute {a!r} (valid: {', '.join(PERSONA_FIELDS)})")
    return list(dict.fromkeys(chosen))


async def rejudge(
    ctx: BenchContext, item: BenchItem, full: ItemResult, arm: str, drop: list[str], mode: str
) -> ItemResult:
    """``ablate="judge"``: the critic re-judges the full-persona answer ``full`` without ``drop``."""
    if full.status == "failed" and full.failed_stage == "candidate":
        return ItemResult(
            task=ctx.task,
            item_id=item.id,
            arm=arm,
            persona_id=item.persona.id,
            prompt_id=item.prompt_id,
            question=item.question,
            status="failed",
            failed_stage="candidate",
            error="no full-persona answer to re-judge",
        )
    sol = Solution(True, answer=full.answer, raw=full.candidate_raw, call_id=full.candidate_call_id)
    return await solve_and_judge(ctx, item, arm=arm, mode=mode, judge_without=drop, solution=sol)


async def run(
    ctx: BenchContext,
    *,
    attributes: Sequence[str] | None = None,
    ablate: str = "candidate",
    mode: str | None = None,
) -> TaskOutput:
    """Per attribute: kappa and changed share vs full, each against the control arm."""
    require_structured(ctx.personas, "bench task loo")  # a text-only persona has no attribute to remove
    attrs = check_attributes(attributes)
    if ablate not in ("candidate", "judge"):
        raise UserError(f"--ablate must be 'candidate' or 'judge' (got {ablate!r})")
    solver = ctx.require_solver()
    if ablate == "candidate" and not solver.can_ablate:
        raise UserError(
            "an answers file or approach cannot be re-run without an attribute: use --ablate judge"
        )
    (arm_mode,) = candidate_modes(ctx, [mode] if mode else None, ["persona"])
    items = ctx.items()
    full = await ctx.gather(
        "full persona", [(lambda it=it: solve_and_judge(ctx, it, arm="full", mode=arm_mode)) for it in items]
    )
    by_item = {r.item_id: r for r in full}

    async def arm_of(it: BenchItem, arm: str, drop: list[str]) -> ItemResult:
        if ablate == "candidate":
            return await solve_and_judge(
                ctx,
                it,
                arm=arm,
                mode=arm_mode,
                candidate_without=drop,
                candidate_tag=CONTROL if arm == CONTROL else "",
            )
        return await rejudge(ctx, it, by_item[it.id], arm, drop, arm_mode)

    arms = [(CONTROL, [])] + [(f"without:{a}", [a]) for a in attrs]
    rest = await ctx.gather(
        "control + ablations",
        [(lambda it=it, arm=arm, drop=drop: arm_of(it, arm, drop)) for arm, drop in arms for it in items],
    )
    values = {a: [it.persona.value(a) for it in items] for a in attrs}
    figures = loo_figures(ctx.rows(full + rest), attrs, ctx.stats, values)
    for a, eff in figures.attributes.items():
        if eff.nearly_constant:
            ctx.warnings.append(
                f"attribute {a!r} is nearly constant among the items' personas "
                f"({eff.distinct_values} distinct value(s)): removing it can hardly change anything"
            )
    fa, ca = figures.full_accuracy, figures.control_accuracy
    rows: list[list] = [
        ["(full persona)", None, None, None, None, None, fa.accuracy.estimate, fa.items],
        [
            "(control: full persona again)",
            figures.control_kappa.estimate,
            None,
            figures.control_changed_share.estimate,
            None,
            None,
            ca.accuracy.estimate,
            ca.items,
        ],
    ]
    for a, e in figures.attributes.items():
        d = e.changed_share_difference
        rows.append(
            [
                a,
                e.kappa.estimate,
                e.kappa_difference.estimate,
                e.changed_share.estimate,
                d.estimate,
                f"({_f(d.low)}, {_f(d.high)})" + (" *" if e.matters else ""),
                e.accuracy.accuracy.estimate,
                e.paired_items,
            ]
        )
    return TaskOutput(
        items=full + rest,
        figures=figures,
        table_columns=[
            "attribute removed",
            "kappa",
            "kappa - control",
            "changed share",
            "changed - control",
            f"{round(100 * ctx.confidence)}% CI (* matters)",
            "accuracy (ITT)",
            "items",
        ],
        table_rows=rows,
        config={"attributes": attrs, "ablate": ablate, "mode": arm_mode, "items": len(items)},
    )


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"

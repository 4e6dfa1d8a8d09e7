"""Task ``loo``: leave-one-out attribute ablation, the full persona always the baseline.

For each chosen attribute the same items are judged with the full persona and with that attribute
removed; Cohen's kappa between the two judgements per attribute (lower = more influential attribute),
with a bootstrap CI, plus accuracy per arm. ``ablate="candidate"`` (default) removes the attribute from
the persona the candidate sees (the judge always sees the full persona); ``ablate="judge"`` keeps the
full-persona answer and removes the attribute from the judge's view (works for answers files too).
"""

from __future__ import annotations

from collections.abc import Sequence

from ...core.errors import UserError
from ...personas.record import PERSONA_FIELDS
from ..context import BenchContext
from ..records import ItemResult, TaskOutput
from ..solvers import Solution
from .common import candidate_modes, solve_and_judge

DEFAULT_ATTRIBUTES = ("age", "sex", "race", "education", "income", "religion", "political views")


def check_attributes(attributes: Sequence[str] | None) -> list[str]:
    """Validate attribute names against the 33 persona fields (``all`` = every field)."""
    chosen = list(attributes or DEFAULT_ATTRIBUTES)
    if chosen == ["all"]:
        return list(PERSONA_FIELDS)
    for a in chosen:
        if a not in PERSONA_FIELDS:
            raise UserError(f"unknown persona attribute {a!r} (valid: {', '.join(PERSONA_FIELDS)})")
    return list(dict.fromkeys(chosen))


async def run(ctx: BenchContext, *, attributes: Sequence[str] | None = None, ablate: str = "candidate",
              mode: str | None = None) -> TaskOutput:
    """Kappa(full, without attribute) per attribute and accuracy per arm."""
    attrs = check_attributes(attributes)
    if ablate not in ("candidate", "judge"):
        raise UserError(f"--ablate must be 'candidate' or 'judge' (got {ablate!r})")
    solver = ctx.require_solver()
    if ablate == "candidate" and not solver.can_ablate:
        raise UserError("an answers file or approach cannot be re-run without an attribute: use --ablate judge")
    (arm_mode,) = candidate_modes(ctx, [mode] if mode else None, ["persona"])
    items = ctx.items()
    full = await ctx.gather("full persona", [(lambda it=it: solve_and_judge(ctx, it, arm="full", mode=arm_mode))
                                             for it in items])
    by_item = {r.item_id: r for r in full}

    async def ablated(it, attr: str) -> ItemResult:
        arm = f"without:{attr}"
        if ablate == "candidate":
            return await solve_and_judge(ctx, it, arm=arm, mode=arm_mode, candidate_without=[attr])
        base = by_item[it.id]
        if base.status == "failed" and base.failed_stage == "candidate":
            return ItemResult(task=ctx.task, item_id=it.id, arm=arm, persona_id=it.persona.id,
                              prompt_id=it.prompt_id, question=it.question, status="failed",
                              failed_stage="candidate", error="no full-persona answer to re-judge")
        sol = Solution(True, answer=base.answer, raw=base.candidate_raw, call_id=base.candidate_call_id)
        return await solve_and_judge(ctx, it, arm=arm, mode=arm_mode, judge_without=[attr], solution=sol)

    rest = await ctx.gather("ablations", [(lambda it=it, a=a: ablated(it, a)) for a in attrs for it in items])
    figures: dict = {"full_accuracy": ctx.accuracy(full, "accuracy.full"), "attributes": {}}
    rows = [["(full persona)", None, None, None, figures["full_accuracy"]["estimate"],
             figures["full_accuracy"]["n"]]]
    for a in attrs:
        arm = [r for r in rest if r.arm == f"without:{a}"]
        pairs = [(by_item[r.item_id].score, r.score) for r in arm
                 if r.status == "ok" and by_item[r.item_id].status == "ok"]
        kap = ctx.kappa([p[0] for p in pairs], [p[1] for p in pairs], f"kappa.{a}")
        acc = ctx.accuracy(arm, f"accuracy.without.{a}")
        figures["attributes"][a] = {"kappa": kap, "accuracy": acc,
                                    "changed": sum(1 for x, y in pairs if x != y), "paired_items": len(pairs)}
        rows.append([a, kap["estimate"], kap["low"], kap["high"], acc["estimate"], len(pairs)])
    return TaskOutput(items=full + rest, figures=figures,
                      table_columns=["attribute removed", "kappa", "ci_low", "ci_high", "accuracy", "items"],
                      table_rows=rows, config={"attributes": attrs, "ablate": ablate, "mode": arm_mode,
                                               "items": len(items)})

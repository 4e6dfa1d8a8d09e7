"""Shared steps of the answer-then-judge tasks (main, pass@k, loo, intersections)."""

from __future__ import annotations

from collections.abc import Iterable

from ...core.errors import UserError
from ..context import BenchContext
from ..leaks import check_answer
from ..records import BenchItem, ItemResult
from ..solvers import ModelSolver, Solution
from ..templates import MODES, SHOT_MODES


async def solve_and_judge(
    ctx: BenchContext,
    item: BenchItem,
    *,
    arm: str,
    mode: str,
    sample_index: int = 0,
    candidate_without: Iterable[str] | None = None,
    judge_without: Iterable[str] | None = None,
    solution: Solution | None = None,
    candidate_tag: str = "",
) -> ItemResult:
    """Candidate answers (unless ``solution`` is given), the critic judges it: one ItemResult.

    The judge always sees the question and the exact answer of this sample.
    """
    solver = ctx.require_solver()
    critic = ctx.require_critic()
    base = dict(
        task=ctx.task,
        item_id=item.id,
        arm=arm,
        persona_id=item.persona.id,
        prompt_id=item.prompt_id,
        sample_index=sample_index,
        question=item.question,
    )
    if solution is None:
        solution = await solver.solve(
            item, mode=mode, sample_index=sample_index, without=candidate_without, tag=candidate_tag
        )
    if not solution.ok:
        return ItemResult(
            **base,
            status="failed",
            failed_stage="candidate",
            error=solution.error,
            candidate_call_id=solution.call_id,
            candidate_raw=solution.raw,
        )
    verdict = await critic.score(
        item,
        solution.answer,
        key=(arm,),
        purpose=f"bench.{ctx.task}.judge",
        sample_index=sample_index,
        without=judge_without,
    )
    extra: dict = (
        {"parts": {k: v for k, v in solution.parts.items() if k != "answer"}} if solution.parts else {}
    )
    leaky = None
    if ctx.check_leaks:
        leak = check_answer(item.persona, item.question, solution.answer)
        leaky = leak.leaky
        if leak.leaky:
            extra["leak"] = {"fields": list(leak.fields), "framings": list(leak.framings)}
    common = dict(
        base,
        answer=solution.answer,
        candidate_call_id=solution.call_id,
        leaky=leaky,
        candidate_raw=solution.raw,
        judge_call_id=verdict.call_id,
        judge_raw=verdict.raw,
        extra=extra,
    )
    if not verdict.ok:
        return ItemResult(**common, status="failed", failed_stage="judge", error=verdict.error)
    return ItemResult(**common, score=verdict.score, judge_reasoning=verdict.reasoning)


def candidate_modes(ctx: BenchContext, modes: Iterable[str] | None, default: Iterable[str]) -> list[str]:
    """Modes for a model candidate; an answers file or approach has one arm, ``custom``."""
    solver = ctx.require_solver()
    if not isinstance(solver, ModelSolver):
        if modes:
            raise UserError(
                "--mode applies to a model candidate only (answers/approach produce their own answers)"
            )
        return ["custom"]
    chosen = list(modes or default)
    bad = [m for m in chosen if m not in MODES]
    if bad:
        raise UserError(f"unknown mode {bad[0]!r} (choose from {', '.join(MODES)})")
    if not chosen:
        raise UserError("no modes selected")
    shot = [m for m in chosen if m in SHOT_MODES]
    if shot and ctx.task != "main":
        raise UserError(f"mode {shot[0]!r} is available in task main only (it needs --pairs and --shots)")
    return list(dict.fromkeys(chosen))

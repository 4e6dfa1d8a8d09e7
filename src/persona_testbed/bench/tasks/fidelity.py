"""Task ``fidelity``: role-play fidelity of the candidate playing a persona.

1. Pairs: the candidate, as the pair's persona, picks between chosen and rejected, shown in both orders
   (AB = chosen first, BA = chosen second). Accuracy vs the pair labels (intent-to-treat: a failed pick
   is wrong; and among answered judgements), Cohen's kappa between the label's position and the picked
   position, position bias (share of "A" picks minus 0.5), and the share of pairs answered consistently
   in both orders. Intervals resample whole pairs (both orders together), or personas / prompts.
2. Discrimination matrix: for m sampled personas and a few questions, the judge model writes an answer
   tailored to each persona; the candidate as persona i compares every ordered pair of answers. P[i][j]
   is the win rate of the answer tailored to j under judge i; the diagonal rank (1 = own answer
   preferred most) averaged over i is the mean diagonal rank (chance = (m+1)/2).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.stats import rankdata

from ...core.errors import UserError
from ...core.seeds import rng
from ...personas.record import Persona
from ..context import BenchContext
from ..records import BenchItem, BenchPair, ItemResult, TaskOutput
from ..results import FidelityFigures, Matrix
from ..roles import Role
from ..scorers import PreferenceJudge
from ..solvers import ModelSolver

ARMS = ("AB", "BA")  # chosen shown first, chosen shown second


def select_pairs(ctx: BenchContext) -> list[BenchPair]:
    """The task's pairs: the first ``n`` (all when None) in a seeded order; each pair's persona must exist."""
    pairs = ctx.require_pairs()
    by_id = {p.id for p in ctx.personas}
    for pair in pairs:
        if pair.persona_id not in by_id:
            raise UserError(f"pair {pair.id}: persona_id {pair.persona_id!r} is not in the persona set")
    order = rng(ctx.seed, "bench.fidelity.pairs").permutation(len(pairs))
    return [pairs[int(i)] for i in order[: (ctx.n or len(pairs))]]


async def judge_pair(
    ctx: BenchContext, judge: PreferenceJudge, persona: Persona, pair: BenchPair, arm: str
) -> ItemResult:
    """The candidate as ``persona`` picks between the pair's answers in order ``arm`` (AB: chosen first)."""
    a, b = (pair.chosen, pair.rejected) if arm == "AB" else (pair.rejected, pair.chosen)
    pick = await judge.pick(
        persona, pair.question, a, b, key=(pair.id, arm), purpose="bench.fidelity.persona_judge"
    )
    base = dict(
        task=ctx.task,
        item_id=f"{pair.id}:{arm}",
        arm=arm,
        persona_id=pair.persona_id,
        prompt_id=pair.prompt_id,
        pair_id=pair.id,
        question=pair.question,
        judge_call_id=pick.call_id,
        judge_raw=pick.raw,
    )
    correct = "A" if arm == "AB" else "B"
    if not pick.ok:
        return ItemResult(
            **base,
            status="failed",
            failed_stage="judge",
            error=pick.error,
            extra={"correct_position": correct},
        )
    label = "chosen" if pick.preferred == correct else "rejected"
    return ItemResult(
        **base,
        score=float(label == "chosen"),
        label=label,
        judge_reasoning=pick.reasoning,
        extra={"correct_position": correct, "picked_position": pick.preferred},
    )


async def _pair_judgements(ctx: BenchContext, judge: PreferenceJudge) -> list[ItemResult]:
    by_id = {p.id: p for p in ctx.personas}
    return await ctx.gather(
        "pairs (both orders)",
        [
            (lambda p=p, arm=arm: judge_pair(ctx, judge, by_id[p.persona_id], p, arm))
            for p in select_pairs(ctx)
            for arm in ARMS
        ],
    )


def _pair_clusters(ctx: BenchContext, rows: list[ItemResult]) -> tuple[list[str], str]:
    """Resampling unit: both orders of a pair always stay together (persona/prompt clusters hold whole pairs)."""
    if ctx.cluster == "persona":
        return [r.persona_id for r in rows], "persona"
    if ctx.cluster == "prompt":
        return [r.prompt_id for r in rows], "prompt"
    return [r.pair_id for r in rows], "pair"


def pair_figures(ctx: BenchContext, results: list[ItemResult]) -> FidelityFigures:
    ok = [r for r in results if r.status == "ok"]
    stats = ctx.stats
    cl_all, unit = _pair_clusters(ctx, results)
    cl_ok, _ = _pair_clusters(ctx, ok)
    itt = np.array([r.score if r.status == "ok" and r.score is not None else 0.0 for r in results])
    picks_a = [float(r.extra["picked_position"] == "A") for r in ok]
    by_pair: dict[str, dict[str, str]] = {}
    for r in ok:
        by_pair.setdefault(r.pair_id, {})[r.arm] = r.label or ""
    both = [v for v in by_pair.values() if len(v) == 2]
    return FidelityFigures(
        accuracy=stats.mean(itt, cl_all, "accuracy", cluster=unit),
        answered_accuracy=stats.mean(
            np.array([r.score for r in ok], dtype=float), cl_ok, "accuracy.answered", cluster=unit
        ),
        kappa=ctx.kappa(
            [r.extra["correct_position"] for r in ok],
            [r.extra["picked_position"] for r in ok],
            "kappa.position",
            cl_ok,
            cluster=unit,
        ),
        position_bias=(float(np.mean(picks_a)) - 0.5) if picks_a else None,
        share_picked_A=float(np.mean(picks_a)) if picks_a else None,
        pairs_both_orders=len(both),
        consistent_share=float(np.mean([v["AB"] == v["BA"] for v in both])) if both else None,
        both_orders_correct_share=float(np.mean([v["AB"] == v["BA"] == "chosen" for v in both]))
        if both
        else None,
        failures=len(results) - len(ok),
    )


async def _matrix(
    ctx: BenchContext, judge: PreferenceJudge, writer: Role, m: int, q: int
) -> tuple[Matrix | None, list]:
    if m < 2:
        return None, []
    if len(ctx.personas) < m:
        raise UserError(f"--matrix-personas {m} exceeds the {len(ctx.personas)} personas in the set")
    questions = (
        [(p.id, p.text) for p in ctx.prompts]
        if ctx.prompts
        else sorted({(p.prompt_id, p.question) for p in (ctx.pairs or [])})
    )
    if not questions:
        raise UserError("the discrimination matrix needs questions (--prompts)")
    g = rng(ctx.seed, "bench.fidelity.matrix")
    personas = [ctx.personas[int(i)] for i in g.permutation(len(ctx.personas))[:m]]
    qs = [questions[int(i)] for i in g.permutation(len(questions))[: max(1, q)]]
    solver = ModelSolver(writer)
    items = {
        (j, qid): BenchItem(persona=personas[j], prompt_id=qid, question=text)
        for j in range(m)
        for qid, text in qs
    }
    keys = list(items)
    sols = dict(
        zip(
            keys,
            await ctx.gather(
                "tailored answers", [(lambda k=k: solver.solve(items[k], mode="persona")) for k in keys]
            ),
        )
    )
    rows: list[ItemResult] = []
    jobs, meta = [], []
    for i in range(m):
        for qid, text in qs:
            for a, b in itertools.permutations(range(m), 2):
                sa, sb = sols[(a, qid)], sols[(b, qid)]
                meta.append((i, qid, text, a, b, sa, sb))
                if sa.ok and sb.ok:
                    jobs.append(
                        lambda i=i, qid=qid, text=text, a=a, b=b, sa=sa, sb=sb: judge.pick(
                            personas[i],
                            text,
                            sa.answer,
                            sb.answer,
                            key=("matrix", personas[i].id, qid, personas[a].id, personas[b].id),
                            purpose="bench.fidelity.matrix",
                        )
                    )
                else:
                    jobs.append(None)
    real = [j for j in jobs if j is not None]
    picks = iter(await ctx.gather("matrix comparisons", real))
    wins = np.zeros((m, m))
    games = np.zeros((m, m))
    for job, (i, qid, text, a, b, sa, sb) in zip(jobs, meta):
        base = dict(
            task=ctx.task,
            item_id=f"matrix:{personas[i].id}:{qid}:{personas[a].id}>{personas[b].id}",
            arm="matrix",
            persona_id=personas[i].id,
            prompt_id=qid,
            question=text,
            extra={"answer_a_for": personas[a].id, "answer_b_for": personas[b].id},
        )
        if job is None:
            err = sa.error if not sa.ok else sb.error
            rows.append(ItemResult(**base, status="failed", failed_stage="writer", error=err))
            continue
        pick = next(picks)
        if not pick.ok:
            rows.append(
                ItemResult(
                    **base,
                    status="failed",
                    failed_stage="judge",
                    error=pick.error,
                    judge_call_id=pick.call_id,
                    judge_raw=pick.raw,
                )
            )
            continue
        winner = a if pick.preferred == "A" else b
        wins[i, winner] += 1
        games[i, a] += 1
        games[i, b] += 1
        rows.append(
            ItemResult(
                **base,
                label=personas[winner].id,
                score=float(winner == i),
                judge_call_id=pick.call_id,
                judge_raw=pick.raw,
                judge_reasoning=pick.reasoning,
            )
        )
    with np.errstate(invalid="ignore"):
        rate = np.where(games > 0, wins / np.maximum(games, 1), np.nan)
    ranks = []
    for i in range(m):
        row = rate[i]
        if np.isnan(row).any():
            continue
        ranks.append(float(rankdata(-row, method="average")[i]))
    fig = Matrix(
        personas=[p.id for p in personas],
        questions=[qid for qid, _ in qs],
        win_rate=[[None if np.isnan(x) else float(x) for x in r] for r in rate],
        diagonal_ranks=ranks,
        mean_diagonal_rank=float(np.mean(ranks)) if ranks else None,
        chance_rank=(m + 1) / 2,
        writer=writer.model,
    )
    return fig, rows


async def run(ctx: BenchContext, *, matrix_personas: int = 3, matrix_questions: int = 2) -> TaskOutput:
    """Pair accuracy, kappa and position bias; discrimination matrix over ``matrix_personas`` (0 = off)."""
    judge = ctx.require_persona_judge()
    results = await _pair_judgements(ctx, judge)
    figures = pair_figures(ctx, results)
    matrix: Matrix | None = None
    mrows: list[ItemResult] = []
    if matrix_personas:
        if ctx.judge is None:
            raise UserError("the discrimination matrix needs --judge (it writes the tailored answers)")
        matrix, mrows = await _matrix(ctx, judge, ctx.judge, matrix_personas, matrix_questions)
    figures.matrix = matrix
    acc, ans, kap = figures.accuracy, figures.answered_accuracy, figures.kappa
    rows = [
        ["accuracy vs labels (ITT)", acc.estimate, acc.low, acc.high],
        ["accuracy, answered judgements", ans.estimate, ans.low, ans.high],
        ["kappa (position)", kap.estimate, kap.low, kap.high],
        ["position bias (P(A) - 0.5)", figures.position_bias, None, None],
        ["consistent in both orders", figures.consistent_share, None, None],
        ["failed judgements", figures.failures, None, None],
    ]
    if matrix:
        rows.append(
            [f"mean diagonal rank (chance {matrix.chance_rank:.2f})", matrix.mean_diagonal_rank, None, None]
        )
    return TaskOutput(
        items=results + mrows,
        figures=figures,
        table_columns=["metric", "estimate", "ci_low", "ci_high"],
        table_rows=rows,
        config={
            "pairs": len(results) // 2,
            "matrix_personas": matrix_personas,
            "matrix_questions": matrix_questions,
        },
    )

"""Task ``agreement``: human labels vs model judges.

Human labels (CSV: persona_id, pair_id, annotator_id, choice in chosen|rejected|tie) are reduced to a
strict majority per pair (3 annotators per pair in the kit; ties are reported, not broken). Each model
judge (the ``--judge`` models and a model ``--candidate``) plays the pair's persona and picks in both
orders: consistent picks give chosen/rejected, inconsistent ones "tie". Reported: Cohen's kappa between
the human majority and each model judge, and between every two annotators (on their shared pairs).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...core.errors import UserError
from ...core.seeds import rng
from ..context import BenchContext
from ..human import read_labels
from ..metrics import cohen_kappa, majority_vote
from ..records import ItemResult, TaskOutput
from ..results import AgreementFigures, AnnotatorKappa, JudgeAgreement
from ..scorers import PreferenceJudge


async def run(ctx: BenchContext, *, labels: str | Path | None = None) -> TaskOutput:
    """Kappa(human majority, model judge) per judge and kappa between annotators."""
    if labels is None:
        raise UserError("task agreement needs human labels (--labels FILE.csv)")
    rows = read_labels(labels)
    pairs = {p.id: p for p in ctx.require_pairs()}
    personas = {p.id: p for p in ctx.personas}
    for r in rows:
        if r.pair_id not in pairs:
            raise UserError(f"{labels}:{r.line}: pair_id {r.pair_id!r} is not in the pairs file")
        if pairs[r.pair_id].persona_id != r.persona_id:
            raise UserError(
                f"{labels}:{r.line}: pair {r.pair_id} belongs to persona {pairs[r.pair_id].persona_id}, "
                f"not {r.persona_id}"
            )
        if r.persona_id not in personas:
            raise UserError(f"{labels}:{r.line}: persona_id {r.persona_id!r} is not in the persona set")
    votes: dict[str, dict[str, str]] = {}
    for r in rows:
        votes.setdefault(r.pair_id, {})[r.annotator_id] = r.choice
    pair_ids = sorted(votes)
    if ctx.n is not None:
        pair_ids = [
            pair_ids[int(i)] for i in rng(ctx.seed, "bench.agreement").permutation(len(pair_ids))[: ctx.n]
        ]
    majority = {pid: majority_vote(sorted(votes[pid].values())) for pid in pair_ids}
    human = {pid: m.label for pid, m in majority.items() if not m.tie}

    judges = list({r.model: r for r in reversed(ctx.roles())}.values())[::-1]  # one per model string
    if not judges:
        raise UserError("task agreement needs at least one model judge (--judge)")
    results: list[ItemResult] = []
    figures = AgreementFigures(
        pairs=len(pair_ids),
        human_ties=sorted(pid for pid, m in majority.items() if m.tie),
        pairs_without_3_votes=sum(1 for pid in pair_ids if len(votes[pid]) != 3),
        judges={},
        annotators={},
    )
    table = []
    for role in judges:
        judge = PreferenceJudge(role)

        async def one(pid: str, arm: str, judge=judge, role=role) -> ItemResult:
            pair = pairs[pid]
            a, b = (pair.chosen, pair.rejected) if arm == "AB" else (pair.rejected, pair.chosen)
            pick = await judge.pick(
                personas[pair.persona_id],
                pair.question,
                a,
                b,
                key=(pid, arm),
                purpose="bench.agreement.judge",
            )
            base = dict(
                task=ctx.task,
                item_id=f"{pid}:{arm}",
                arm=f"{role.model}:{arm}",
                persona_id=pair.persona_id,
                prompt_id=pair.prompt_id,
                pair_id=pid,
                question=pair.question,
                judge_call_id=pick.call_id,
                judge_raw=pick.raw,
                extra={"judge_model": role.model, "human": human.get(pid)},
            )
            if not pick.ok:
                return ItemResult(**base, status="failed", failed_stage="judge", error=pick.error)
            label = "chosen" if pick.preferred == ("A" if arm == "AB" else "B") else "rejected"
            return ItemResult(
                **base, label=label, score=float(label == "chosen"), judge_reasoning=pick.reasoning
            )

        got = await ctx.gather(
            f"judge {role.model}",
            [(lambda p=p, arm=arm: one(p, arm)) for p in pair_ids for arm in ("AB", "BA")],
        )
        results += got
        model_label: dict[str, str] = {}
        for pid in pair_ids:
            two = [r for r in got if r.pair_id == pid and r.status == "ok"]
            if len(two) == 2:
                model_label[pid] = two[0].label if two[0].label == two[1].label else "tie"
        common = [pid for pid in pair_ids if pid in human and pid in model_label]
        clusters = (
            [pairs[p].persona_id for p in common]
            if ctx.cluster == "persona"
            else [pairs[p].prompt_id for p in common]
            if ctx.cluster == "prompt"
            else None
        )
        kap = ctx.kappa(
            [human[p] for p in common],
            [model_label[p] for p in common],
            f"kappa.{role.model}",
            clusters,
            cluster=ctx.cluster if ctx.cluster != "none" else "pair",
        )
        agree = float(np.mean([human[p] == model_label[p] for p in common])) if common else None
        figures.judges[role.model] = JudgeAgreement(
            kappa=kap,
            raw_agreement=agree,
            pairs=len(common),
            model_ties=sum(1 for v in model_label.values() if v == "tie"),
            failures=sum(1 for r in got if r.status != "ok"),
        )
        table.append([f"human majority vs {role.model}", kap.estimate, kap.low, kap.high, len(common)])

    annotators = sorted({a for v in votes.values() for a in v})
    kappas = []
    for x, y in itertools.combinations(annotators, 2):
        shared = [pid for pid in pair_ids if x in votes[pid] and y in votes[pid]]
        if not shared:
            continue
        k = cohen_kappa([votes[p][x] for p in shared], [votes[p][y] for p in shared])
        figures.annotators[f"{x}|{y}"] = AnnotatorKappa(kappa=None if np.isnan(k) else k, pairs=len(shared))
        if not np.isnan(k):
            kappas.append(k)
    figures.mean_annotator_kappa = float(np.mean(kappas)) if kappas else None
    table.append(
        ["mean kappa between annotators", figures.mean_annotator_kappa, None, None, len(figures.annotators)]
    )
    table.append(["human ties (no majority)", len(figures.human_ties), None, None, len(pair_ids)])
    return TaskOutput(
        items=results,
        figures=figures,
        table_columns=["comparison", "kappa", "ci_low", "ci_high", "pairs"],
        table_rows=table,
        config={"labels": str(labels), "annotators": annotators, "judges": [r.model for r in judges]},
    )


__all__: Sequence[str] = ["run"]

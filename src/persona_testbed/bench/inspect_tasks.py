"""PERSONA Bench as ``inspect_ai`` tasks (extra ``inspect``): main, passk, loo, intersections, fidelity.

Registered through the ``inspect_ai`` entry point (``pyproject.toml``), so from any directory::

    inspect eval persona_testbed/persona_main --model openai/gpt-4o-mini \\
        -T personas=run/personas -T prompts=run/prompts -T n=50 -T modes=persona,cot -T judge=openai/gpt-4o
    inspect eval persona_testbed/persona_passk --model ... -T personas=... -T prompts=... -T k=3
    inspect eval src/persona_testbed/bench/inspect_tasks.py@persona_loo ...   # the file form works too

Each task has the items, seeds, prompts, judge and figures of ``persona-testbed bench run TASK`` with the
same options: the candidate is inspect's ``--model``; the judge is ``-T judge=MODEL``, else the model of
``--model-role judge=MODEL``, else the candidate model. One inspect sample is one bench work unit (item x
mode / arm / sample index / pair order); its score is C (passed), I (needs revision) or N (a failed
candidate or judge call: ``metadata.failed_stage``, never silent), and ``metadata.rows`` holds the
bench's ``ItemResult`` rows. The task's metric recomputes the ``results.json`` figures from those rows
(``modes.persona.accuracy`` with ``_low`` / ``_high``, ``pass_at_k.3``, ...). Use ``-T samples`` for
pass@k rather than ``--epochs`` (epochs repeat identical seeded requests). Not offered here: the
fidelity discrimination matrix, ``--answers`` / ``--approach`` candidates and task agreement (use
``bench run``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample

from persona_testbed.bench.analysis import intersections_figures, loo_figures, main_figures, passk_figures
from persona_testbed.bench.context import BenchContext
from persona_testbed.bench.fewshot import DEFAULT_SHOTS, ShotBank
from persona_testbed.bench.groups import load_groups_file, parse_group_spec, validate_groups
from persona_testbed.bench.inputs import load_pairs, load_prompts
from persona_testbed.bench.inspect_bridge import (
    BenchPlan,
    Job,
    as_names,
    inspect_messages,
    inspect_role,
    plan_scorer,
    plan_solver,
)
from persona_testbed.bench.records import BenchPair, BenchPrompt
from persona_testbed.bench.runner import check_run_options
from persona_testbed.bench.solvers import ModelSolver
from persona_testbed.bench.tasks.common import candidate_modes
from persona_testbed.bench.tasks.fidelity import ARMS, pair_figures, select_pairs
from persona_testbed.bench.tasks.loo import CONTROL, check_attributes
from persona_testbed.bench.templates import MODES, SHOT_MODES, candidate_messages, preference_messages
from persona_testbed.core.errors import UserError
from persona_testbed.llm.types import ChatParams
from persona_testbed.personas.io import read_personas
from persona_testbed.personas.record import Persona, require_structured

DEFAULT_MODES = [m for m in MODES if m not in SHOT_MODES]  # as bench run: the few-shot modes are opt-in


def _context(
    name: str,
    *,
    personas: Any,
    prompts: Any = None,
    pairs: Any = None,
    n: int | None,
    seed: int,
    split: str,
    judge: Any = None,
    temperature: float = 0.7,
    max_tokens: int = 512,
    judge_temperature: float = 0.0,
    judge_max_tokens: int = 384,
    confidence: float = 0.95,
    resamples: int = 2000,
    ci_method: str = "percentile",
    cluster: str = "persona",
    exclude_leaky: bool = False,
) -> BenchContext:
    """The bench context ``bench run`` would build, its roles talking to inspect models."""
    if n is not None and n < 1:
        raise UserError(f"n must be at least 1 (got {n})")
    check_run_options(cluster=cluster, ci_method=ci_method, confidence=confidence, n_resamples=resamples)
    persona_list: list[Persona] = (
        list(personas) if isinstance(personas, (list, tuple)) else read_personas(personas)
    )
    prompt_list: list[BenchPrompt] = (
        list(prompts)
        if isinstance(prompts, (list, tuple))
        else load_prompts(prompts, split)
        if prompts is not None
        else []
    )
    pair_list: list[BenchPair] | None = (
        list(pairs)
        if isinstance(pairs, (list, tuple))
        else load_pairs(pairs, split)
        if pairs is not None
        else None
    )
    candidate = inspect_role(
        "candidate", None, ChatParams(temperature=temperature, max_tokens=max_tokens), seed
    )
    judge_role = inspect_role(
        "judge",
        judge,
        ChatParams(temperature=judge_temperature, max_tokens=judge_max_tokens),
        seed,
        model_role="judge",
    )
    return BenchContext(
        task=name,
        seed=seed,
        n=n,
        personas=persona_list,
        prompts=prompt_list,
        pairs=pair_list,
        solver=ModelSolver(candidate),
        candidate=candidate,
        judge=judge_role,
        confidence=confidence,
        n_resamples=resamples,
        ci_method=ci_method,
        show_progress=False,
        cluster=cluster,
        exclude_leaky=exclude_leaky,
    )


def _sample(job: Job) -> Sample:
    if job.pair is not None:
        assert job.persona is not None
        a, b = (
            (job.pair.chosen, job.pair.rejected) if job.arm == "AB" else (job.pair.rejected, job.pair.chosen)
        )
        msgs = preference_messages(job.persona, job.pair.question, a, b)
    else:
        assert job.item is not None
        msgs = (
            [{"role": "user", "content": job.item.question}]
            if job.mode in SHOT_MODES
            else candidate_messages(
                job.mode, job.item.persona, job.item.question, without=job.candidate_without
            )
        )
    return Sample(id=job.id, input=inspect_messages(msgs), metadata=job.metadata())


def _task(plan: BenchPlan, name: str) -> Task:
    return Task(
        dataset=MemoryDataset([_sample(j) for j in plan.jobs], name=name),
        solver=[plan_solver(plan)],
        scorer=plan_scorer(plan, name),
        name=name,
    )


def _mode(ctx: BenchContext, mode: str | None) -> str:
    (arm,) = candidate_modes(ctx, [mode] if mode else None, ["persona"])
    return arm


def _answer_plan(ctx: BenchContext, jobs: list[Job], figures: Any) -> BenchPlan:
    return BenchPlan(
        ctx, jobs, [(j.arm, j.item.id, j.sample_index) for j in jobs if j.item is not None], figures
    )


@task
def persona_main(
    personas: Any,
    prompts: Any,
    n: int | None = None,
    seed: int = 0,
    modes: Any = None,
    mode: str | None = None,
    shots: int | None = None,
    pairs: Any = None,
    judge: Any = None,
    split: str = "held_out",
    temperature: float = 0.7,
    max_tokens: int = 512,
    judge_temperature: float = 0.0,
    judge_max_tokens: int = 384,
    confidence: float = 0.95,
    resamples: int = 2000,
    ci_method: str = "percentile",
    cluster: str = "persona",
    exclude_leaky: bool = False,
) -> Task:
    """main: the candidate answers for a persona in each mode (``modes=persona,cot``; default all but the
    few-shot ones), the critic judges; accuracy per mode (intent-to-treat + answered-only, failure and leak
    rates). ``mode`` is one mode; the few-shot modes need ``pairs`` (all splits read; train pairs shown)."""
    ctx = _context(
        "main",
        personas=personas,
        prompts=prompts,
        n=n,
        seed=seed,
        split=split,
        judge=judge,
        pairs=(
            list(pairs)
            if isinstance(pairs, (list, tuple))
            else load_pairs(pairs, "all")
            if pairs is not None
            else None
        ),
        temperature=temperature,
        max_tokens=max_tokens,
        judge_temperature=judge_temperature,
        judge_max_tokens=judge_max_tokens,
        confidence=confidence,
        resamples=resamples,
        ci_method=ci_method,
        cluster=cluster,
        exclude_leaky=exclude_leaky,
    )
    chosen = candidate_modes(ctx, as_names(modes) or ([mode] if mode else None), DEFAULT_MODES)
    items = ctx.items()
    bank: ShotBank | None = None
    if any(m in SHOT_MODES for m in chosen):
        if not ctx.pairs:
            raise UserError("modes fewshot / fewshot-retrieved need the persona's train pairs (-T pairs=DIR)")
        bank = ShotBank(ctx.pairs, k=DEFAULT_SHOTS if shots is None else shots, seed=ctx.seed)
        bank.check(items)
    elif shots is not None:
        raise UserError("shots applies to the modes fewshot and fewshot-retrieved only")
    jobs = [Job(id=f"{m}/{it.id}", arm=m, mode=m, item=it) for m in chosen for it in items]
    plan = _answer_plan(ctx, jobs, lambda rows: main_figures(ctx.rows(rows), chosen, ctx.stats))
    plan.shots = bank
    return _task(plan, "persona_main")


@task
def persona_passk(
    personas: Any,
    prompts: Any,
    n: int | None = None,
    seed: int = 0,
    k: int = 3,
    samples: int | None = None,
    mode: str | None = None,
    judge: Any = None,
    split: str = "held_out",
    temperature: float = 0.7,
    max_tokens: int = 512,
    judge_temperature: float = 0.0,
    judge_max_tokens: int = 384,
    confidence: float = 0.95,
    resamples: int = 2000,
    ci_method: str = "percentile",
    cluster: str = "persona",
    exclude_leaky: bool = False,
) -> Task:
    """passk: ``samples`` (default k) independent answers per item, each judged; unbiased pass@1..k."""
    if k < 1:
        raise UserError(f"k must be at least 1 (got {k})")
    if k > (samples or k):
        raise UserError(f"k {k} exceeds samples={samples} (need n >= k)")
    ctx = _context(
        "passk",
        personas=personas,
        prompts=prompts,
        n=n,
        seed=seed,
        split=split,
        judge=judge,
        temperature=temperature,
        max_tokens=max_tokens,
        judge_temperature=judge_temperature,
        judge_max_tokens=judge_max_tokens,
        confidence=confidence,
        resamples=resamples,
        ci_method=ci_method,
        cluster=cluster,
        exclude_leaky=exclude_leaky,
    )
    arm = _mode(ctx, mode)
    jobs = [
        Job(id=f"{it.id}#{s}", arm=arm, mode=arm, item=it, sample_index=s)
        for it in ctx.items()
        for s in range(samples or k)
    ]
    return _task(
        _answer_plan(ctx, jobs, lambda rows: passk_figures(ctx.rows(rows), k, ctx.stats)), "persona_passk"
    )


@task
def persona_loo(
    personas: Any,
    prompts: Any,
    n: int | None = None,
    seed: int = 0,
    attributes: Any = None,
    ablate: str = "candidate",
    mode: str | None = None,
    judge: Any = None,
    split: str = "held_out",
    temperature: float = 0.7,
    max_tokens: int = 512,
    judge_temperature: float = 0.0,
    judge_max_tokens: int = 384,
    confidence: float = 0.95,
    resamples: int = 2000,
    ci_method: str = "percentile",
    cluster: str = "persona",
    exclude_leaky: bool = False,
) -> Task:
    """loo: leave-one-out attribute ablation (``attributes=age,sex`` or ``all``) against a control arm;
    ``ablate=candidate`` (what the candidate sees) or ``judge`` (what the critic sees)."""
    ctx = _context(
        "loo",
        personas=personas,
        prompts=prompts,
        n=n,
        seed=seed,
        split=split,
        judge=judge,
        temperature=temperature,
        max_tokens=max_tokens,
        judge_temperature=judge_temperature,
        judge_max_tokens=judge_max_tokens,
        confidence=confidence,
        resamples=resamples,
        ci_method=ci_method,
        cluster=cluster,
        exclude_leaky=exclude_leaky,
    )
    require_structured(ctx.personas, "bench task loo")
    attrs = check_attributes(as_names(attributes))
    if ablate not in ("candidate", "judge"):
        raise UserError(f"ablate must be 'candidate' or 'judge' (got {ablate!r})")
    arm_mode = _mode(ctx, mode)
    items = ctx.items()
    arms = [(CONTROL, ())] + [(f"without:{a}", (a,)) for a in attrs]
    order = [("full", it.id, 0) for it in items] + [(arm, it.id, 0) for arm, _ in arms for it in items]
    if ablate == "candidate":
        jobs = [Job(id=f"full/{it.id}", arm="full", mode=arm_mode, item=it) for it in items]
        jobs += [
            Job(
                id=f"{arm}/{it.id}",
                arm=arm,
                mode=arm_mode,
                item=it,
                candidate_without=drop,
                candidate_tag=CONTROL if arm == CONTROL else "",
            )
            for arm, drop in arms
            for it in items
        ]
    else:  # one answer per item, re-judged in every arm
        jobs = [
            Job(id=f"full/{it.id}", arm="full", mode=arm_mode, item=it, rejudge=tuple(arms)) for it in items
        ]
    values = {a: [it.persona.value(a) for it in items] for a in attrs}
    plan = BenchPlan(ctx, jobs, order, lambda rows: loo_figures(ctx.rows(rows), attrs, ctx.stats, values))
    return _task(plan, "persona_loo")


@task
def persona_intersections(
    personas: Any,
    prompts: Any,
    groups: Any = None,
    groups_file: str | None = None,
    n: int | None = None,
    seed: int = 0,
    mode: str | None = None,
    judge: Any = None,
    split: str = "held_out",
    temperature: float = 0.7,
    max_tokens: int = 512,
    judge_temperature: float = 0.0,
    judge_max_tokens: int = 384,
    confidence: float = 0.95,
    resamples: int = 2000,
    ci_method: str = "percentile",
    cluster: str = "persona",
    exclude_leaky: bool = False,
) -> Task:
    """intersections: accuracy per group (``groups=["sex=Female,race=Asian alone", ...]`` or ``groups_file``)
    with n items each; the largest gap with a simultaneous interval and a permutation p-value."""
    ctx = _context(
        "intersections",
        personas=personas,
        prompts=prompts,
        n=n,
        seed=seed,
        split=split,
        judge=judge,
        temperature=temperature,
        max_tokens=max_tokens,
        judge_temperature=judge_temperature,
        judge_max_tokens=judge_max_tokens,
        confidence=confidence,
        resamples=resamples,
        ci_method=ci_method,
        cluster=cluster,
        exclude_leaky=exclude_leaky,
    )
    require_structured(ctx.personas, "bench task intersections")
    parsed = [parse_group_spec(s) for s in (as_names(groups, split=False) or [])]
    if groups_file:
        parsed += load_groups_file(groups_file)
    members = validate_groups(parsed, ctx.personas)
    arm_mode = _mode(ctx, mode)
    jobs: list[Job] = []
    for g in parsed:
        cap = len(members[g.name]) * max(1, len(ctx.prompts))
        items = ctx.items("group", g.name, personas=members[g.name], n=min(ctx.n or 20, cap))
        jobs += [Job(id=f"{g.name}/{it.id}", arm=g.name, mode=arm_mode, item=it) for it in items]
    extra = {
        g.name: {"personas": len(members[g.name]), "filters": {f: list(v) for f, v in g.filters}}
        for g in parsed
    }
    names = [g.name for g in parsed]
    plan = _answer_plan(
        ctx, jobs, lambda rows: intersections_figures(ctx.rows(rows), names, ctx.stats, extra)
    )
    return _task(plan, "persona_intersections")


@task
def persona_fidelity(
    personas: Any,
    pairs: Any,
    n: int | None = None,
    seed: int = 0,
    split: str = "held_out",
    temperature: float = 0.7,
    max_tokens: int = 512,
    confidence: float = 0.95,
    resamples: int = 2000,
    ci_method: str = "percentile",
    cluster: str = "persona",
) -> Task:
    """fidelity: the candidate as the pair's persona picks chosen vs rejected, in both orders (n pairs,
    default all); accuracy vs the labels, kappa, position bias, consistency."""
    ctx = _context(
        "fidelity",
        personas=personas,
        pairs=pairs,
        n=n,
        seed=seed,
        split=split,
        temperature=temperature,
        max_tokens=max_tokens,
        confidence=confidence,
        resamples=resamples,
        ci_method=ci_method,
        cluster=cluster,
    )
    by_id = {p.id: p for p in ctx.personas}
    chosen: Sequence[BenchPair] = select_pairs(ctx)
    jobs = [
        Job(id=f"{p.id}:{arm}", arm=arm, pair=p, persona=by_id[p.persona_id]) for p in chosen for arm in ARMS
    ]
    plan = BenchPlan(
        ctx,
        jobs,
        [(j.arm, f"{j.pair.id}:{j.arm}", 0) for j in jobs if j.pair is not None],
        lambda rows: pair_figures(ctx, rows),
    )
    return _task(plan, "persona_fidelity")


__all__ = ["persona_fidelity", "persona_intersections", "persona_loo", "persona_main", "persona_passk"]

"""PERSONA Bench: ``bench run`` and ``run``'s bench stage."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ConfigDict, Field

from ...bench.compare import CANDIDATES_DIR, Candidate, call_totals, compare_candidates
from ...bench.leaderboard import COMPARISON_NAME, Comparison, comparison_view, leaderboard_table
from ...bench.results import read_results
from ...bench.runner import ITEMS_NAME, RESULTS_NAME, arun_task, read_items
from ...bench.summary import bench_summary
from ...bench.templates import SHOT_MODES
from ...core.atomic import atomic_write_text
from ...core.errors import UserError
from ...llm.types import ChatParams
from ...personas.io import read_personas
from ..config import RunConfig
from ..session import ItemFailure, StageContext, StageOutcome
from .base import Spec, write_json
from .feedback import personas_path

# -- bench ----------------------------------------------------------------------------------------------


class BenchTaskSpec(Spec):
    """One PERSONA Bench task: models, inputs, sampling and the task's own options."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    task: str
    candidate: str | None = None
    candidates: list[str] = Field(default_factory=list)
    """Several candidates run on the same items, seeds and judge (replaces ``candidate``); a comparison
    (leaderboard, paired differences) is written beside their results."""
    judges: list[str] = Field(default_factory=list)
    personas: str
    prompts: str | None = None
    pairs: str | None = None
    answers: str | None = None
    approach: str | None = None
    split: str = "held_out"
    pairs_split: str | None = None
    n: int | None = None
    seed: int = Field(0, ge=0)
    candidate_params: ChatParams = Field(default_factory=lambda: ChatParams(temperature=0.7, max_tokens=512))
    judge_params: ChatParams = Field(default_factory=lambda: ChatParams(temperature=0.0, max_tokens=384))
    concurrency: int = Field(4, ge=1, le=4096)
    run_options: dict[str, Any] = Field(default_factory=dict)
    """Options of ``arun_task`` itself (``ci_method``, ``n_resamples`` …)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """The task's own options (``modes``, ``k``, ``attributes`` …)."""


def bench_specs(cfg: RunConfig, run_path: Path, bench_dir: Path) -> list[BenchTaskSpec]:
    b = cfg.bench
    pairs = str(run_path / "feedback")
    fewshot = any(m in SHOT_MODES for m in b.main.modes)  # main reads the train pairs only for these modes
    options: dict[str, dict[str, Any]] = {
        "main": {"modes": list(b.main.modes), "shots": b.main.shots if fewshot else None},
        "passk": {"k": b.passk.k, "samples": b.passk.samples},
        "loo": {"attributes": list(b.loo.attributes)},
        "intersections": {"groups_file": str(bench_dir / "groups.toml")},
        "fidelity": {
            "matrix_personas": b.fidelity.discrimination_personas,
            "matrix_questions": b.fidelity.discrimination_questions,
        },
        "agreement": {"labels": b.agreement.labels},
    }
    n = {
        "main": b.main.n,
        "passk": b.passk.n,
        "loo": b.loo.n,
        "intersections": b.intersections.n,
        "fidelity": b.fidelity.n,
        "agreement": None,
    }
    judge = cfg.models.for_role("judge")
    many = list(b.candidates) if len(b.candidates) > 1 else []
    single = b.candidates[0] if len(b.candidates) == 1 else cfg.models.for_role("candidate")
    return [
        BenchTaskSpec(
            task=name,
            candidate=None if many else single,
            candidates=many,
            judges=[judge],
            personas=str(personas_path(run_path, cfg)),
            prompts=str(run_path / "prompts"),
            pairs=pairs if name in ("fidelity", "agreement") or (name == "main" and fewshot) else None,
            pairs_split="all" if name == "agreement" else None,
            split=b.split,
            n=n[name],
            seed=cfg.seed,
            concurrency=cfg.llm.concurrency,
            candidate_params=ChatParams(temperature=cfg.llm.temperature, max_tokens=cfg.llm.max_tokens),
            judge_params=ChatParams(temperature=0.0, max_tokens=b.judge_max_tokens),
            options={k: v for k, v in options[name].items() if v is not None},
        )
        for name in b.tasks
    ]


def check_candidates(candidates: list[str], where: str = "--candidate") -> None:
    """A candidate listed twice is one line naming it (before anything is written)."""
    seen: set[str] = set()
    for c in candidates:
        if c in seen:
            raise UserError(f"{where}: candidate {c!r} is listed twice; list each candidate once")
        seen.add(c)


def candidate_dir_name(index: int, model: str) -> str:
    """``01-openai_gpt-4o``: the directory of one candidate's results (order kept, readable, unique)."""
    return f"{index + 1:02d}-" + (re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_.")[:60] or "candidate")


def bench_stage(
    ctx: StageContext,
    specs: list[BenchTaskSpec],
    *,
    nested: bool = True,
    groups: dict[str, Any] | None = None,
) -> StageOutcome:
    """Run bench tasks into ``ctx.dir/<task>/`` (``nested``) or ``ctx.dir`` (one task), then ``summary.json``.

    Per-item failures and task-level input problems (e.g. an empty group) are recorded, not raised, when
    several tasks run; a single task's input problem is raised.
    """
    if groups is not None:
        atomic_write_text(ctx.dir / "groups.toml", tomli_w.dumps({"groups": groups}))
    results: dict[str, dict[str, Any]] = {}
    failures: list[ItemFailure] = []
    items = ok = 0
    personas_cache: dict[str, Any] = {}
    comparisons: dict[str, tuple[Comparison, Path]] = {}
    per_candidate: dict[str, list[tuple[str, Path, dict[str, Any]]]] = {}

    async def run_all() -> None:
        nonlocal items, ok
        for spec in specs:
            if nested:
                ctx.log(f"  bench task {spec.task}")
            personas = personas_cache.get(spec.personas)
            if personas is None:
                personas = personas_cache[spec.personas] = read_personas(spec.personas)
            judges = [ctx.client(j) for j in spec.judges]
            judge: Any = judges if spec.task == "agreement" else (judges[0] if judges else None)
            out = ctx.dir / spec.task if nested else ctx.dir
            many = len(spec.candidates) > 1
            runs = (
                [(m, out / CANDIDATES_DIR / candidate_dir_name(i, m)) for i, m in enumerate(spec.candidates)]
                if many
                else [(spec.candidate or (spec.candidates[0] if spec.candidates else None), out)]
            )
            done: list[tuple[str, Path, dict[str, Any]]] = []
            try:
                if many:
                    check_candidates(spec.candidates)
                    if spec.task == "agreement":
                        raise UserError(
                            "task agreement compares judges, not candidates: give one --candidate"
                        )
                for model, cand_out in runs:
                    if many:
                        ctx.log(f"  bench {spec.task}: candidate {model}")
                    res = await arun_task(
                        spec.task,
                        candidate=ctx.client(model) if model else None,
                        judge=judge,
                        personas=personas,
                        prompts=spec.prompts,
                        pairs=spec.pairs,
                        n=spec.n,
                        seed=spec.seed,
                        out_dir=cand_out,
                        store=ctx.session.store,
                        answers=spec.answers,
                        approach=spec.approach,
                        split=spec.split,
                        pairs_split=spec.pairs_split,
                        candidate_params=spec.candidate_params,
                        judge_params=spec.judge_params,
                        concurrency=spec.concurrency,
                        show_progress=not ctx.quiet,
                        **spec.run_options,
                        **spec.options,
                    )
                    done.append((model or "", cand_out, res))
                if many:
                    comparison = _compare(ctx, done)
                    write_json(out / COMPARISON_NAME, comparison.model_dump(mode="json"))
                    comparisons[spec.task] = (comparison, out)
            except UserError as exc:
                if not nested:
                    raise
                failures.append(ItemFailure(item=f"task:{spec.task}", reason=str(exc)))
                items += 1
                continue
            for model, cand_out, res in done:
                results.setdefault(
                    spec.task, res
                )  # the first candidate's figures stand for the task in summary
                per_candidate.setdefault(spec.task, []).append((model, cand_out, res))
                counts = res.get("counts", {})
                items += counts.get("rows", 0)
                ok += counts.get("ok", 0)
                prefix = f"{spec.task}:{model}" if many else spec.task
                for f in res.get("failures", []):
                    failures.append(
                        ItemFailure(
                            item=f"{prefix}:{f.get('item_id')}:{f.get('arm')}:{f.get('sample_index', 0)}",
                            reason=f"{f.get('stage')}: {f.get('error')}",
                        )
                    )

    ctx.run_async(run_all)
    summary_path = ctx.dir / "summary.json"
    summary = bench_summary(results)
    if comparisons:
        summary["leaderboards"] = {t: comparison_view(c) for t, (c, _) in comparisons.items()}
        summary["figures_candidate"] = {t: c.candidates[0] for t, (c, _) in comparisons.items()}
    write_json(summary_path, summary)
    artifacts = [ctx.rel(summary_path)]
    for name, runs in per_candidate.items():
        for _, base, _ in runs:
            for fname in (RESULTS_NAME, ITEMS_NAME):
                if (base / fname).exists():
                    artifacts.append(ctx.rel(base / fname))
        if name in comparisons:
            artifacts.append(ctx.rel(comparisons[name][1] / COMPARISON_NAME))
    detail: dict[str, Any] = dict(results)
    for name, (comparison, _) in comparisons.items():
        detail[name] = {
            "comparison": comparison.model_dump(mode="json"),
            "leaderboard": leaderboard_table(comparison).model_dump(mode="json"),
            "candidates": {m: r for m, _, r in per_candidate.get(name, [])},
        }
    return StageOutcome(
        items=items,
        ok=ok,
        failed=len(failures),
        failures=failures,
        artifacts=artifacts,
        summary={
            "tasks": list(results),
            "failed_tasks": [f.item for f in failures if f.item.startswith("task:")],
        },
        detail=detail,
    )


def _compare(ctx: StageContext, done: list[tuple[str, Path, dict[str, Any]]]) -> Comparison:
    """The comparison of one task's candidates (same items, seeds and judge by construction)."""
    store = ctx.session.store
    if store is not None:
        store.flush()
    cands = []
    for model, out, _ in done:
        items = read_items(out / ITEMS_NAME)
        ids = [
            x
            for col in ("candidate_call_id", "judge_call_id")
            if col in items.columns
            for x in items[col].to_list()
            if x
        ]
        calls, tokens = call_totals(store.path if store is not None else None, ids)
        record = read_results(out)
        cands.append(
            Candidate(
                label=model,
                results=record,
                items=items,
                source=ctx.rel(out),
                call_log=store.path if store is not None else None,
                calls=record.counts.llm_calls_total,
                tokens=tokens,
            )
        )
    return compare_candidates(cands, check_templates=False)

"""PERSONA Bench: ``bench run`` and ``run``'s bench stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ConfigDict, Field

from ...bench.runner import arun_task
from ...bench.summary import bench_summary
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
    options: dict[str, dict[str, Any]] = {
        "main": {"modes": list(b.main.modes)},
        "passk": {"k": b.passk.k, "samples": b.passk.samples},
        "loo": {"attributes": list(b.loo.attributes)},
        "intersections": {"groups_file": str(bench_dir / "groups.toml")},
        "fidelity": {"matrix_personas": b.fidelity.discrimination_personas,
                     "matrix_questions": b.fidelity.discrimination_questions},
        "agreement": {"labels": b.agreement.labels},
    }
    n = {"main": b.main.n, "passk": b.passk.n, "loo": b.loo.n, "intersections": b.intersections.n,
         "fidelity": b.fidelity.n, "agreement": None}
    judge = cfg.models.for_role("judge")
    return [BenchTaskSpec(task=name, candidate=cfg.models.for_role("candidate"), judges=[judge],
                          personas=str(personas_path(run_path, cfg)), prompts=str(run_path / "prompts"),
                          pairs=pairs if name in ("fidelity", "agreement") else None,
                          pairs_split="all" if name == "agreement" else None, split=b.split, n=n[name],
                          seed=cfg.seed, concurrency=cfg.llm.concurrency,
                          candidate_params=ChatParams(temperature=cfg.llm.temperature, max_tokens=cfg.llm.max_tokens),
                          judge_params=ChatParams(temperature=0.0, max_tokens=b.judge_max_tokens),
                          options={k: v for k, v in options[name].items() if v is not None})
            for name in b.tasks]


def bench_stage(ctx: StageContext, specs: list[BenchTaskSpec], *, nested: bool = True,
                groups: dict[str, Any] | None = None) -> StageOutcome:
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

    async def run_all() -> None:
        nonlocal items, ok
        for spec in specs:
            if nested:
                ctx.log(f"  bench task {spec.task}")
            personas = personas_cache.get(spec.personas)
            if personas is None:
                personas = personas_cache[spec.personas] = read_personas(spec.personas)
            candidate = ctx.client(spec.candidate) if spec.candidate else None
            judges = [ctx.client(j) for j in spec.judges]
            judge: Any = judges if spec.task == "agreement" else (judges[0] if judges else None)
            out = ctx.dir / spec.task if nested else ctx.dir
            try:
                res = await arun_task(spec.task, candidate=candidate, judge=judge, personas=personas,
                                      prompts=spec.prompts, pairs=spec.pairs, n=spec.n, seed=spec.seed,
                                      out_dir=out, store=ctx.session.store, answers=spec.answers,
                                      approach=spec.approach, split=spec.split, pairs_split=spec.pairs_split,
                                      candidate_params=spec.candidate_params, judge_params=spec.judge_params,
                                      concurrency=spec.concurrency, show_progress=not ctx.quiet,
                                      **spec.run_options, **spec.options)
            except UserError as exc:
                if not nested:
                    raise
                failures.append(ItemFailure(item=f"task:{spec.task}", reason=str(exc)))
                items += 1
                continue
            results[spec.task] = res
            counts = res.get("counts", {})
            items += counts.get("rows", 0)
            ok += counts.get("ok", 0)
            for f in res.get("failures", []):
                failures.append(ItemFailure(
                    item=f"{spec.task}:{f.get('item_id')}:{f.get('arm')}:{f.get('sample_index', 0)}",
                    reason=f"{f.get('stage')}: {f.get('error')}"))

    ctx.run_async(run_all)
    summary_path = ctx.dir / "summary.json"
    write_json(summary_path, bench_summary(results))
    artifacts = [ctx.rel(summary_path)]
    for name in results:
        base = ctx.dir / name if nested else ctx.dir
        for fname in ("results.json", "items.parquet"):
            if (base / fname).exists():
                artifacts.append(ctx.rel(base / fname))
    return StageOutcome(items=items, ok=ok, failed=len(failures), failures=failures, artifacts=artifacts,
                        summary={"tasks": list(results), "failed_tasks": [f.item for f in failures
                                                                          if f.item.startswith("task:")]},
                        detail=results)

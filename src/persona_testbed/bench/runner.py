"""``run_task``: resolve inputs and models, run one bench task, write ``results.json`` + ``items.parquet``.

This is the library entry point (the CLI and the pipeline call it)::

    from persona_testbed.bench import run_task
    res = run_task("main", candidate="embedded", judge="embedded", personas="run/personas",
                   prompts="run/prompts", n=20, seed=0, out_dir="run/bench/main", store=None, modes=["persona"])
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from .. import __version__
from ..core.atomic import atomic_path, atomic_write_text
from ..core.errors import UserError
from ..llm import CallStore, LLMClient
from ..llm.types import ChatParams
from ..personas.io import read_personas
from ..personas.record import Persona
from .calibration import read_human_labels
from .context import BenchContext
from .inputs import SPLIT_ALL, load_answers, load_approach, load_pairs, load_prompts
from .records import BenchPair, BenchPrompt, ItemResult, TaskOutput
from .results import BenchResults, Counts, Failure, Models, RoleCalls, RunSettings, Table
from .roles import Role
from .solvers import AnswersSolver, ApproachSolver, ModelSolver
from .stats import CLUSTER_CHOICES
from .tasks import TASKS

ITEM_SCHEMA = {name: pl.Utf8 for name in ItemResult.model_fields}
ITEM_SCHEMA.update(sample_index=pl.Int64, score=pl.Float64, leaky=pl.Boolean)
RESULTS_NAME = "results.json"
ITEMS_NAME = "items.parquet"


def _personas(x: Any) -> list[Persona]:
    return list(x) if isinstance(x, (list, tuple)) else read_personas(x)


def _prompts(x: Any, split: str) -> list[BenchPrompt]:
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        out = [p if isinstance(p, BenchPrompt) else BenchPrompt.model_validate(p) for p in x]
        return out if split == SPLIT_ALL else [p for p in out if p.split == split]
    return load_prompts(x, split)


def _pairs(x: Any, split: str) -> list[BenchPair] | None:
    if x is None:
        return None
    if isinstance(x, (list, tuple)):
        out = [p if isinstance(p, BenchPair) else BenchPair.model_validate(p) for p in x]
        return out if split == SPLIT_ALL else [p for p in out if p.split == split]
    return load_pairs(x, split)


def _client(model: Any, store: Any, concurrency: int) -> tuple[Any, bool]:
    """An LLMClient for a model string (owned: closed at the end) or the client given."""
    if model is None or not isinstance(model, str):
        return model, False
    return LLMClient(model, store=store, concurrency=concurrency), True


def _store(store: Any, out_dir: Path | None) -> Any:
    if store is None:
        return CallStore(out_dir / "calls.db") if out_dir is not None else None
    if isinstance(store, (str, Path)):
        return CallStore(store)
    return store


def write_items(items: Sequence[ItemResult], path: Path) -> None:
    """Per-item Parquet (raw judge output and call ids), written atomically."""
    frame = (
        pl.DataFrame([r.row() for r in items], schema=ITEM_SCHEMA, orient="row")
        if items
        else pl.DataFrame(schema=ITEM_SCHEMA)
    )
    with atomic_path(path) as tmp:
        frame.write_parquet(tmp)


def read_items(path: str | Path) -> pl.DataFrame:
    """Read a task's ``items.parquet``."""
    return pl.read_parquet(path)


def check_run_options(
    *,
    cluster: str = "persona",
    calibration: str | Path | None = None,
    ci_method: str = "percentile",
    confidence: float = 0.95,
    n_resamples: int = 2000,
) -> None:
    """Check the run-wide statistics options (and read the calibration labels) before anything is created."""
    if cluster not in CLUSTER_CHOICES:
        raise UserError(f"--cluster must be one of {', '.join(CLUSTER_CHOICES)} (got {cluster!r})")
    if ci_method not in ("percentile", "bca"):
        raise UserError(f"--ci-method must be 'percentile' or 'bca' (got {ci_method!r})")
    if not 0 < confidence < 1:
        raise UserError(f"--confidence must lie strictly between 0 and 1 (got {confidence})")
    if n_resamples < 100:
        raise UserError(f"--resamples must be at least 100 (got {n_resamples})")
    if calibration is not None:
        read_human_labels(calibration)


def _task_options(fn: Any, name: str, options: dict[str, Any]) -> dict[str, Any]:
    accepted = set(inspect.signature(fn).parameters) - {"ctx"}
    unknown = sorted(k for k, v in options.items() if k not in accepted and v is not None)
    if unknown:
        raise UserError(
            f"task {name} has no option {unknown[0]!r} (options: {', '.join(sorted(accepted)) or 'none'})"
        )
    return {k: v for k, v in options.items() if k in accepted and v is not None}


async def arun_task(
    name: str,
    *,
    candidate: Any = None,
    judge: Any = None,
    personas: Any,
    prompts: Any = None,
    pairs: Any = None,
    n: int | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    store: Any = None,
    answers: str | Path | None = None,
    approach: str | Any = None,
    split: str = "held_out",
    pairs_split: str | None = None,
    candidate_params: ChatParams | None = None,
    judge_params: ChatParams | None = None,
    concurrency: int = 4,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    ci_method: str = "percentile",
    cluster: str = "persona",
    exclude_leaky: bool = False,
    show_progress: bool = False,
    **task_options: Any,
) -> dict:
    """Async ``run_task`` (for callers already inside an event loop)."""
    if name not in TASKS:
        raise UserError(f"unknown bench task {name!r} (choose from {', '.join(TASKS)})")
    if n is not None and n < 1:
        raise UserError(f"--n must be at least 1 (got {n})")
    check_run_options(cluster=cluster, ci_method=ci_method, confidence=confidence, n_resamples=n_resamples)
    if sum(x is not None for x in (candidate, answers, approach)) > 1:
        raise UserError("give only one of --candidate, --answers, --approach")
    fn = TASKS[name].run
    options = _task_options(fn, name, task_options)
    out = Path(out_dir) if out_dir is not None else None
    persona_list = _personas(personas)
    prompt_list = _prompts(prompts, split)
    # main reads pairs only for its few-shot modes, which keep the train split themselves (bench/fewshot.py)
    pair_list = _pairs(pairs, pairs_split or (SPLIT_ALL if name == "main" else split))
    judges = judge if isinstance(judge, (list, tuple)) else ([judge] if judge is not None else [])
    solver: Any = None
    if answers is not None:
        solver = AnswersSolver(load_answers(answers, persona_list, prompt_list), name=f"answers:{answers}")
    elif approach is not None:
        fn_ = load_approach(approach) if isinstance(approach, str) else approach
        solver = ApproachSolver(
            fn_,
            name=f"approach:{approach if isinstance(approach, str) else getattr(fn_, '__qualname__', 'fn')}",
        )
    # Inputs are checked; only now open a call store, and only one of our own when a model string needs it.
    needs_store = any(isinstance(m, str) for m in (candidate, *judges))
    owned_store = needs_store and not (store is not None and not isinstance(store, (str, Path)))
    call_store = (
        _store(store, out) if needs_store else (store if not isinstance(store, (str, Path)) else None)
    )
    shared: dict[str, tuple[Any, bool]] = {}  # one client per model string (one embedded model load)

    def client_for(model: Any) -> tuple[Any, bool]:
        if isinstance(model, str):
            if model not in shared:
                shared[model] = _client(model, call_store, concurrency)
            return shared[model][0], False
        return model, False  # a client object: the caller's, never closed here

    try:
        cand_client, _ = client_for(candidate)
        judge_clients = [client_for(j) for j in judges]
        cand_params = candidate_params or ChatParams(temperature=0.7, max_tokens=512)
        j_params = judge_params or ChatParams(temperature=0.0, max_tokens=384)
        cand_role = Role("candidate", cand_client, cand_params, seed) if cand_client is not None else None
        judge_roles = [Role("judge", c, j_params, seed) for c, _ in judge_clients]
        if cand_role is not None:
            solver = ModelSolver(cand_role)
        ctx = BenchContext(
            task=name,
            seed=seed,
            n=n,
            personas=persona_list,
            prompts=prompt_list,
            pairs=pair_list,
            solver=solver,
            candidate=cand_role,
            judge=judge_roles[0] if judge_roles else None,
            confidence=confidence,
            n_resamples=n_resamples,
            ci_method=ci_method,
            show_progress=show_progress,
            extra_roles=judge_roles[1:],
            cluster=cluster,
            exclude_leaky=exclude_leaky,
        )
        output: TaskOutput = await fn(ctx, **options)
    finally:
        for client, _ in shared.values():
            await client.aclose()
        if owned_store and call_store is not None:
            call_store.close()
    record = build_results(name, ctx, output, seed=seed, n=n, split=split, options=options, solver=solver)
    if out is not None:
        write_items(output.items, out / ITEMS_NAME)
        write_results(record, out / RESULTS_NAME)
        record.paths = {"results": str(out / RESULTS_NAME), "items": str(out / ITEMS_NAME)}
    return record.model_dump(mode="json")


def write_results(record: BenchResults, path: Path) -> None:
    """``results.json`` from the record (without ``paths``), written atomically."""
    data = record.model_dump(mode="json", exclude={"paths"})
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def build_results(
    name: str,
    ctx: BenchContext,
    output: TaskOutput,
    *,
    seed: int,
    n: int | None,
    split: str,
    options: dict,
    solver: Any,
) -> BenchResults:
    """The typed ``BenchResults`` record of a finished task."""
    items = output.items
    failures = [
        Failure(
            item_id=r.item_id, arm=r.arm, sample_index=r.sample_index, stage=r.failed_stage, error=r.error
        )
        for r in items
        if r.status != "ok"
    ]
    calls: dict[str, RoleCalls] = {}
    if ctx.candidate is not None:
        calls["candidate"] = RoleCalls(**ctx.candidate.summary())
    judge_roles = [r for r in ([ctx.judge] + ctx.extra_roles) if r is not None]
    for k, r in enumerate(judge_roles):
        calls["judge" if k == 0 else f"judge#{k + 1}"] = RoleCalls(**r.summary())
    total_calls = sum(v.calls for v in calls.values())
    rows = len(items)
    stages = sorted({str(f.stage) for f in failures})
    return BenchResults(
        package_version=__version__,
        task=name,
        seed=seed,
        models=Models(
            candidate=getattr(solver, "name", None),
            judge=(judge_roles[0].model if len(judge_roles) == 1 else [r.model for r in judge_roles] or None),
        ),
        config=RunSettings(
            n=n,
            split=split,
            confidence=ctx.confidence,
            n_resamples=ctx.n_resamples,
            ci_method=ctx.ci_method,
            cluster=ctx.cluster,
            exclude_leaky=ctx.exclude_leaky,
            personas=len(ctx.personas),
            prompts=len(ctx.prompts),
            pairs=len(ctx.pairs) if ctx.pairs is not None else None,
            pairs_skipped_failed=getattr(ctx.pairs, "skipped_failed", 0),
            options=json.loads(json.dumps(options, default=str)),
            task=json.loads(json.dumps(output.config, default=str)),
        ),
        figures=output.figures,
        counts=Counts(
            rows=rows,
            ok=rows - len(failures),
            failed=len(failures),
            failed_by_stage={s: sum(1 for f in failures if str(f.stage) == s) for s in stages},
            llm_calls=calls,
            llm_calls_total=total_calls,
            llm_calls_per_row=(total_calls / rows) if rows else None,
        ),
        failures=failures,
        warnings=list(ctx.warnings),
        table=Table(
            columns=output.table_columns, rows=json.loads(json.dumps(output.table_rows, default=str))
        ),
    )


def run_task(
    name: str,
    *,
    candidate: Any = None,
    judge: Any = None,
    personas: Any,
    prompts: Any = None,
    pairs: Any = None,
    n: int | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    store: Any = None,
    **task_options: Any,
) -> dict:
    """Run bench task ``name`` and return its results dict (also written to ``out_dir/results.json``).

    ``candidate``/``judge``: model strings or ``LLMClient`` objects (``judge`` may be a list for
    ``agreement``); ``personas``/``prompts``/``pairs``: paths or record lists; ``store``: a ``CallStore``,
    a path, or None (``out_dir/calls.db``). Other options: ``answers``, ``approach``, ``split``,
    ``candidate_params``, ``judge_params``, ``concurrency``, ``confidence``, ``n_resamples``, ``ci_method``,
    ``cluster`` (persona | prompt | none), ``exclude_leaky``, and the task's own options (``modes``, ``k``,
    ``samples``, ``attributes``, ``ablate``, ``groups``,
    ``groups_file``, ``matrix_personas``, ``matrix_questions``, ``labels``, ``mode``, ``calibration``).
    Returns ``BenchResults.model_dump(mode="json")`` (``bench.results.read_results`` reads the file back).
    """
    return asyncio.run(
        arun_task(
            name,
            candidate=candidate,
            judge=judge,
            personas=personas,
            prompts=prompts,
            pairs=pairs,
            n=n,
            seed=seed,
            out_dir=out_dir,
            store=store,
            **task_options,
        )
    )


__all__ = [
    "ITEMS_NAME",
    "RESULTS_NAME",
    "arun_task",
    "build_results",
    "check_run_options",
    "read_items",
    "run_task",
    "write_items",
    "write_results",
]

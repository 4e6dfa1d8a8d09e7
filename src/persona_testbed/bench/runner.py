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
from ..core.errors import UserError
from ..llm.types import ChatParams
from ..personas.io import read_personas
from ..personas.record import Persona
from ..core.atomic import atomic_path, atomic_write_text
from .context import BenchContext
from .inputs import SPLIT_ALL, load_answers, load_approach, load_pairs, load_prompts
from .records import RESULTS_SCHEMA_VERSION, BenchPair, BenchPrompt, ItemResult, TaskOutput
from .roles import Role
from .solvers import AnswersSolver, ApproachSolver, ModelSolver
from .tasks import TASKS

ITEM_SCHEMA = {name: pl.Utf8 for name in ItemResult.model_fields}
ITEM_SCHEMA.update(sample_index=pl.Int64, score=pl.Float64)
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
    from ..llm import LLMClient

    return LLMClient(model, store=store, concurrency=concurrency), True


def _store(store: Any, out_dir: Path | None) -> Any:
    from ..llm import CallStore

    if store is None:
        return CallStore(out_dir / "calls.db") if out_dir is not None else None
    if isinstance(store, (str, Path)):
        return CallStore(store)
    return store


def write_items(items: Sequence[ItemResult], path: Path) -> None:
    """Per-item Parquet (raw judge output and call ids), written atomically."""
    frame = pl.DataFrame([r.row() for r in items], schema=ITEM_SCHEMA, orient="row") if items else \
        pl.DataFrame(schema=ITEM_SCHEMA)
    with atomic_path(path) as tmp:
        frame.write_parquet(tmp)


def read_items(path: str | Path) -> pl.DataFrame:
    """Read a task's ``items.parquet``."""
    return pl.read_parquet(path)


def _task_options(fn: Any, name: str, options: dict[str, Any]) -> dict[str, Any]:
    accepted = set(inspect.signature(fn).parameters) - {"ctx"}
    unknown = sorted(k for k, v in options.items() if k not in accepted and v is not None)
    if unknown:
        raise UserError(f"task {name} has no option {unknown[0]!r} (options: {', '.join(sorted(accepted)) or 'none'})")
    return {k: v for k, v in options.items() if k in accepted and v is not None}


async def arun_task(name: str, *, candidate: Any = None, judge: Any = None, personas: Any,
                    prompts: Any = None, pairs: Any = None, n: int | None = None, seed: int = 0,
                    out_dir: str | Path | None = None, store: Any = None, answers: str | Path | None = None,
                    approach: str | Any = None, split: str = "held_out", pairs_split: str | None = None,
                    candidate_params: ChatParams | None = None, judge_params: ChatParams | None = None,
                    concurrency: int = 4, confidence: float = 0.95, n_resamples: int = 2000,
                    ci_method: str = "percentile", show_progress: bool = False, **task_options: Any) -> dict:
    """Async ``run_task`` (for callers already inside an event loop)."""
    if name not in TASKS:
        raise UserError(f"unknown bench task {name!r} (choose from {', '.join(TASKS)})")
    if n is not None and n < 1:
        raise UserError(f"--n must be at least 1 (got {n})")
    if ci_method not in ("percentile", "bca"):
        raise UserError(f"--ci-method must be 'percentile' or 'bca' (got {ci_method!r})")
    if sum(x is not None for x in (candidate, answers, approach)) > 1:
        raise UserError("give only one of --candidate, --answers, --approach")
    fn = TASKS[name]
    options = _task_options(fn, name, task_options)
    out = Path(out_dir) if out_dir is not None else None
    persona_list = _personas(personas)
    prompt_list = _prompts(prompts, split)
    pair_list = _pairs(pairs, pairs_split or split)
    call_store = _store(store, out)

    judges = judge if isinstance(judge, (list, tuple)) else ([judge] if judge is not None else [])
    shared: dict[str, tuple[Any, bool]] = {}  # one client per model string (one embedded model load)

    def client_for(model: Any) -> tuple[Any, bool]:
        if isinstance(model, str):
            if model not in shared:
                shared[model] = _client(model, call_store, concurrency)
            return shared[model][0], False
        return model, False

    cand_client, _ = client_for(candidate)
    judge_clients = [client_for(j) for j in judges]
    cand_params = candidate_params or ChatParams(temperature=0.7, max_tokens=512)
    j_params = judge_params or ChatParams(temperature=0.0, max_tokens=384)
    cand_role = Role("candidate", cand_client, cand_params, seed) if cand_client is not None else None
    judge_roles = [Role("judge", c, j_params, seed) for c, _ in judge_clients]
    solver: Any = None
    if cand_role is not None:
        solver = ModelSolver(cand_role)
    elif answers is not None:
        solver = AnswersSolver(load_answers(answers, persona_list, prompt_list), name=f"answers:{answers}")
    elif approach is not None:
        fn_ = load_approach(approach) if isinstance(approach, str) else approach
        solver = ApproachSolver(fn_, name=f"approach:{approach if isinstance(approach, str) else getattr(fn_, '__qualname__', 'fn')}")
    ctx = BenchContext(task=name, seed=seed, n=n, personas=persona_list, prompts=prompt_list, pairs=pair_list,
                       solver=solver, candidate=cand_role, judge=judge_roles[0] if judge_roles else None,
                       confidence=confidence, n_resamples=n_resamples, ci_method=ci_method,
                       show_progress=show_progress, extra_roles=judge_roles[1:])
    try:
        output: TaskOutput = await fn(ctx, **options)
    finally:
        for client, _ in shared.values():
            await client.aclose()
    results = _results(name, ctx, output, seed=seed, n=n, split=split, options=options, solver=solver)
    if out is not None:
        write_items(output.items, out / ITEMS_NAME)
        atomic_write_text(out / RESULTS_NAME, json.dumps(results, indent=2, ensure_ascii=False, default=str))
        results["paths"] = {"results": str(out / RESULTS_NAME), "items": str(out / ITEMS_NAME)}
    return results


def _results(name: str, ctx: BenchContext, output: TaskOutput, *, seed: int, n: int | None, split: str,
             options: dict, solver: Any) -> dict:
    items = output.items
    failures = [{"item_id": r.item_id, "arm": r.arm, "sample_index": r.sample_index, "stage": r.failed_stage,
                 "error": r.error} for r in items if r.status != "ok"]
    calls: dict[str, Any] = {}
    if ctx.candidate is not None:
        calls["candidate"] = ctx.candidate.summary()
    judge_roles = [r for r in ([ctx.judge] + ctx.extra_roles) if r is not None]
    for k, r in enumerate(judge_roles):
        calls["judge" if k == 0 else f"judge#{k + 1}"] = r.summary()
    total_calls = sum(v["calls"] for v in calls.values())
    judged = sum(1 for r in items)
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "package_version": __version__,
        "task": name,
        "seed": seed,
        "models": {"candidate": getattr(solver, "name", None),
                   "judge": (judge_roles[0].model if len(judge_roles) == 1
                             else [r.model for r in judge_roles] or None)},
        "config": {"n": n, "split": split, "confidence": ctx.confidence, "n_resamples": ctx.n_resamples,
                   "ci_method": ctx.ci_method, "personas": len(ctx.personas), "prompts": len(ctx.prompts),
                   "pairs": len(ctx.pairs) if ctx.pairs is not None else None,
                   "pairs_skipped_failed": getattr(ctx.pairs, "skipped_failed", 0), "options": options,
                   **output.config},
        "figures": output.figures,
        "counts": {"rows": judged, "ok": judged - len(failures), "failed": len(failures),
                   "failed_by_stage": {s: sum(1 for f in failures if f["stage"] == s)
                                       for s in sorted({str(f["stage"]) for f in failures})},
                   "llm_calls": calls, "llm_calls_total": total_calls,
                   "llm_calls_per_row": (total_calls / judged) if judged else None},
        "failures": failures,
        "table": {"columns": output.table_columns, "rows": output.table_rows},
    }


def run_task(name: str, *, candidate: Any = None, judge: Any = None, personas: Any, prompts: Any = None,
             pairs: Any = None, n: int | None = None, seed: int = 0, out_dir: str | Path | None = None,
             store: Any = None, **task_options: Any) -> dict:
    """Run bench task ``name`` and return its results dict (also written to ``out_dir/results.json``).

    ``candidate``/``judge``: model strings or ``LLMClient`` objects (``judge`` may be a list for
    ``agreement``); ``personas``/``prompts``/``pairs``: paths or record lists; ``store``: a ``CallStore``,
    a path, or None (``out_dir/calls.db``). Other options: ``answers``, ``approach``, ``split``,
    ``candidate_params``, ``judge_params``, ``concurrency``, ``confidence``, ``n_resamples``, ``ci_method``,
    and the task's own options (``modes``, ``k``, ``samples``, ``attributes``, ``ablate``, ``groups``,
    ``groups_file``, ``matrix_personas``, ``matrix_questions``, ``labels``, ``mode``).
    """
    return asyncio.run(arun_task(name, candidate=candidate, judge=judge, personas=personas, prompts=prompts,
                                 pairs=pairs, n=n, seed=seed, out_dir=out_dir, store=store, **task_options))


__all__ = ["ITEMS_NAME", "RESULTS_NAME", "arun_task", "read_items", "run_task", "write_items"]

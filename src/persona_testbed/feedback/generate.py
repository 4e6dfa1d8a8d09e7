"""``generate_pairs``: personas x sampled prompts -> Direct Principle Feedback pairs, resumable.

Resume: every LLM call is cached in ``DIR/calls.db`` and every finished pair is appended to
``DIR/pairs.checkpoint.jsonl``. A re-run skips pairs already in the checkpoint (status ok, same
``config_key``), replays any cached call of the others, and writes the final ``pairs.jsonl`` /
``pairs.parquet`` (sorted by id, planned pairs only) once everything has a result or a recorded failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..core.errors import UserError
from ..personas import Persona, render
from ..prompts import Prompt
from . import templates
from .io import CHECKPOINT_NAME, Checkpoint, write_pairs
from .leakage import check_pair
from .pair import GenerationParams, make_pair
from .plan import PairCounts, PlannedPair, plan_pairs
from .record import PreferencePair
from .stats import feedback_stats

PAIR_ATTRIBUTION = (
    "Questions: PRISM opening prompts (Kirk et al. 2024, arXiv 2404.16019), CC-BY-4.0. Personas: derived "
    "from U.S. Census Bureau ACS PUMS microdata (public domain)."
)

OnPair = Callable[[PreferencePair, int], None]


class FeedbackConfig(GenerationParams):
    """Generation parameters plus pair counts and concurrency (``--train/--test/--held-out``)."""

    counts: PairCounts = PairCounts()
    concurrency: int = 4


class FeedbackResult(BaseModel):
    pairs: list[PreferencePair]
    stats: dict[str, Any]
    paths: dict[str, str] = {}
    reused: int = 0  # pairs taken from the checkpoint of an earlier (interrupted) run


async def agenerate_pairs(personas: Sequence[Persona], prompts: Sequence[Prompt], client: Any,
                          config: FeedbackConfig, *, checkpoint: Checkpoint | None = None,
                          planned: list[PlannedPair] | None = None,
                          on_pair: OnPair | None = None) -> tuple[list[PreferencePair], int]:
    """Generate every planned pair with ``client``; returns ``(pairs sorted by id, pairs reused)``.

    With a ``checkpoint`` (opened), finished pairs are appended to it and ok pairs already in it with
    the same ``config_key`` are reused.
    """
    planned = planned if planned is not None else plan_pairs(personas, prompts, config.counts, config.seed)
    by_persona = {p.id: p for p in personas}
    by_prompt = {p.id: p for p in prompts}
    key = config.config_key(client.model)
    done: dict[str, PreferencePair] = {}
    if checkpoint is not None:
        for pid, pair in checkpoint.load().items():
            if pair.status == "ok" and pair.config_key == key:
                done[pid] = pair
    planned_ids = {p.id for p in planned}
    reused = len(planned_ids & done.keys())
    todo = [p for p in planned if p.id not in done]
    results = {pid: done[pid] for pid in planned_ids & done.keys()}
    for pid, pair in results.items():  # checkpointed before the leakage check existed: check now (offline)
        if pair.leakage is None and pair.persona_id in by_persona:
            results[pid] = pair.model_copy(update={"leakage": check_pair(
                by_persona[pair.persona_id], pair.question, pair.rejected, pair.chosen)})
    if on_pair is not None:
        for pair in results.values():
            on_pair(pair, 0)
    texts: dict[str, str] = {}
    it = iter(todo)

    async def worker() -> None:
        for item in it:
            persona = by_persona[item.persona_id]
            if persona.id not in texts:
                texts[persona.id] = render(persona, config.persona_format)
            pair, new_tokens = await make_pair(
                client, config, pair_id=item.id, persona_id=item.persona_id, prompt_id=item.prompt_id,
                split=item.split, question=by_prompt[item.prompt_id].text, persona_text=texts[persona.id],
                persona=persona)
            results[pair.id] = pair
            if checkpoint is not None:
                checkpoint.append(pair)
            if on_pair is not None:
                on_pair(pair, new_tokens)

    await asyncio.gather(*(worker() for _ in range(max(1, min(config.concurrency, len(todo) or 1)))))
    return sorted(results.values(), key=lambda p: p.id), reused


def _validate_config(config: FeedbackConfig) -> None:
    if config.concurrency < 1:
        raise UserError(f"--concurrency must be at least 1 (got {config.concurrency})")
    if config.max_tokens < 1 or config.critique_max_tokens < 1 or config.judge_max_tokens < 1:
        raise UserError("max token limits must be at least 1")
    if config.max_revision_attempts < 1:
        raise UserError(f"max revision attempts must be at least 1 (got {config.max_revision_attempts})")


def generate_pairs(personas: Sequence[Persona], prompts: Sequence[Prompt], *, out_dir: str | Path,
                   model: str | None = None, client: Any = None, config: FeedbackConfig | None = None,
                   progress: bool = False, lock: bool = True,
                   sources: dict[str, Any] | None = None) -> FeedbackResult:
    """Generate, checkpoint and write DPF pairs into ``out_dir`` (a run directory).

    Give ``client`` (an ``LLMClient``; the caller owns it) or ``model`` (a client is opened with its
    call log in ``out_dir/calls.db``). Inputs are validated before anything is created: no personas,
    counts larger than a prompt pool, bad config -> ``UserError``. ``lock=False`` when the caller already
    holds the run lock of ``out_dir``. ``sources`` (e.g. input file checksums) goes into the manifest.
    """
    from ..pipeline.rundir import RunDir

    config = config or FeedbackConfig()
    _validate_config(config)
    planned = plan_pairs(personas, prompts, config.counts, config.seed)
    own = None
    if client is None:
        if model is None:
            raise UserError("generate_pairs needs a model or a client")
        from ..llm import LLMClient

        own = client = LLMClient(model, concurrency=config.concurrency)  # validates the model string first
    run = RunDir(out_dir)
    try:
        if lock:
            with run.locked():
                return _generate_locked(run, personas, prompts, client, own is not None, config, planned,
                                        progress, sources)
        return _generate_locked(run, personas, prompts, client, own is not None, config, planned, progress, sources)
    finally:
        if own is not None and own.store is not None:
            own.store.close()


def _generate_locked(run, personas, prompts, client, owned: bool, config: FeedbackConfig, planned, progress: bool,
                     sources) -> FeedbackResult:
    if owned:
        from ..llm import CallStore

        client.store = CallStore(run.calls_db)
    checkpoint = Checkpoint(run.path / CHECKPOINT_NAME).open()
    started = time.time()
    try:
        pairs, reused = asyncio.run(_run_with_progress(personas, prompts, client, config, checkpoint, planned,
                                                       progress, owned))
    finally:
        checkpoint.close()
    paths = write_pairs(pairs, run.path)
    stats = feedback_stats(pairs)
    run.update_manifest(model=client.model, seed=config.seed, stages={"feedback": {
        "template_version": templates.TEMPLATE_VERSION, "model": client.model, "seed": config.seed,
        "config": config.model_dump(exclude={"concurrency"}), "config_key": config.config_key(client.model),
        "pairs": stats["pairs"], "ok": stats["ok"], "failed": stats["failed"], "reused_from_checkpoint": reused,
        "leaky": stats["leakage"]["leaky"], "leakage_version": stats["leakage"]["version"],
        "seconds": round(time.time() - started, 3), "sources": sources or {}, "attribution": PAIR_ATTRIBUTION,
    }})
    return FeedbackResult(pairs=pairs, stats=stats, reused=reused, paths={k: str(v) for k, v in paths.items()})


async def _run_with_progress(personas, prompts, client, config, checkpoint, planned, progress: bool, owned: bool):
    try:
        if not progress:
            return await agenerate_pairs(personas, prompts, client, config, checkpoint=checkpoint, planned=planned)
        from .progress import PairProgress

        with PairProgress(total=len(planned)) as bar:
            return await agenerate_pairs(personas, prompts, client, config, checkpoint=checkpoint,
                                         planned=planned, on_pair=bar.update)
    finally:
        if owned:
            await client.aclose()

"""``generate_pairs``: personas x sampled prompts -> Direct Principle Feedback pairs, resumable.

Resume: every LLM call is cached in ``DIR/calls.db`` and every finished pair is appended to
``DIR/pairs.checkpoint.jsonl``. A re-run skips pairs already in the checkpoint (status ok, same
``config_key``), replays any cached call of the others, and writes the final ``pairs.jsonl`` /
``pairs.parquet`` (sorted by id, planned pairs only) once everything has a result or a recorded failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from ..core.errors import UserError
from ..personas import Persona, render
from ..prompts import Prompt
from .io import Checkpoint
from .leakage import can_check, check_pair
from .length import check_band
from .pair import GenerationParams, make_pair
from .plan import PairCounts, PlannedPair, plan_pairs
from .record import PreferencePair

PAIR_ATTRIBUTION = (
    "Questions: PRISM opening prompts (Kirk et al. 2024, arXiv 2404.16019), CC-BY-4.0. Personas: derived "
    "from U.S. Census Bureau ACS PUMS microdata (public domain)."
)

OnPair = Callable[[PreferencePair, int], None]


class FeedbackConfig(GenerationParams):
    """Generation parameters plus pair counts and concurrency (``--train/--test/--held-out``).

    ``length_band`` (``LengthBand(low, high)``; CLI ``--length-band-low/--length-band-high``, run config
    ``feedback.length_band``): the chosen answer's words within low-high x the rejected answer's words;
    ``0 < low <= high`` or ``UserError`` before anything is written.
    """

    counts: PairCounts = PairCounts()
    concurrency: int = 4


class FeedbackResult(BaseModel):
    pairs: list[PreferencePair]
    stats: dict[str, Any]
    paths: dict[str, str] = {}
    reused: int = 0  # pairs taken from the checkpoint of an earlier (interrupted) run


async def agenerate_pairs(
    personas: Sequence[Persona],
    prompts: Sequence[Prompt],
    client: Any,
    config: FeedbackConfig,
    *,
    checkpoint: Checkpoint | None = None,
    planned: list[PlannedPair] | None = None,
    on_pair: OnPair | None = None,
) -> tuple[list[PreferencePair], int]:
    """Generate every planned pair with ``client``; returns ``(pairs sorted by id, pairs reused)``.

    With a ``checkpoint`` (opened), finished pairs are appended to it and ok pairs already in it with
    the same ``config_key`` are reused.
    """
    validate_pair_config(config)
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
        if pair.leakage is None and pair.persona_id in by_persona and can_check(by_persona[pair.persona_id]):
            results[pid] = pair.model_copy(
                update={
                    "leakage": check_pair(
                        by_persona[pair.persona_id], pair.question, pair.rejected, pair.chosen
                    )
                }
            )
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
                client,
                config,
                pair_id=item.id,
                persona_id=item.persona_id,
                prompt_id=item.prompt_id,
                split=item.split,
                question=by_prompt[item.prompt_id].text,
                persona_text=texts[persona.id],
                persona=persona,
            )
            results[pair.id] = pair
            if checkpoint is not None:
                checkpoint.append(pair)
            if on_pair is not None:
                on_pair(pair, new_tokens)

    await asyncio.gather(*(worker() for _ in range(max(1, min(config.concurrency, len(todo) or 1)))))
    return sorted(results.values(), key=lambda p: p.id), reused


def validate_pair_config(config: FeedbackConfig) -> None:
    if config.concurrency < 1:
        raise UserError(f"--concurrency must be at least 1 (got {config.concurrency})")
    if config.max_tokens < 1 or config.critique_max_tokens < 1 or config.judge_max_tokens < 1:
        raise UserError("max token limits must be at least 1")
    if config.max_revision_attempts < 1:
        raise UserError(f"max revision attempts must be at least 1 (got {config.max_revision_attempts})")
    check_band(config.length_band.low, config.length_band.high)

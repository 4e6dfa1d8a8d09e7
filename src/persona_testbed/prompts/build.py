"""``build_prompts``: source prompts -> filter verdicts -> topic clusters -> stratified train/held-out split."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..core.errors import UserError
from ..core.seeds import rng
from .cluster import PAPER_HELD_OUT_FRACTION, cluster_texts, default_clusters, stratified_split
from .controversy import apply_controversy
from .filters import (
    MIN_WORDS,
    NEAR_DUPLICATE_THRESHOLD,
    apply_exact_duplicates,
    apply_min_words,
    apply_near_duplicates,
    apply_question_mark,
)
from .load import load_source
from .record import FilterVerdict, Prompt


class PromptBuildConfig(BaseModel):
    """Everything that determines a prompt set (recorded in its manifest)."""

    seed: int = 0
    limit: int | None = None
    held_out_fraction: float = PAPER_HELD_OUT_FRACTION
    clusters: int | None = None  # None: default_clusters(candidates the classifier sees)
    min_words: int = MIN_WORDS
    near_duplicate_threshold: float = NEAR_DUPLICATE_THRESHOLD
    controversy: bool = True
    concurrency: int = 4


def make_prompts(items: Sequence[tuple[int, str]], source: str = "") -> list[Prompt]:
    """One ``Prompt`` per source item; later exact repeats get ``<id>-dup<k>`` ids."""
    seen: dict[str, int] = {}
    out = []
    for index, text in items:
        base = Prompt.make_id(text)
        k = seen.get(base, 0)
        seen[base] = k + 1
        out.append(
            Prompt(id=base if k == 0 else f"{base}-dup{k}", text=text, source=source, source_index=index)
        )
    return out


def _in_play(prompts: Sequence[Prompt]) -> list[Prompt]:
    return [p for p in prompts if all(v.passed for v in p.verdicts.values())]


def apply_limit(prompts: Sequence[Prompt], limit: int | None, seed: int) -> None:
    """Keep a seeded random subset of ``limit`` prompts in play (in source order); the rest fail ``limit``."""
    if limit is None:
        return
    if limit < 1:
        raise UserError(f"--limit must be at least 1 (got {limit})")
    if limit >= len(prompts):
        for p in prompts:
            p.verdicts["limit"] = FilterVerdict(
                verdict="pass", reason=f"pool of {len(prompts)} <= limit {limit}"
            )
        return
    chosen = set(rng(seed, "prompts.limit").choice(len(prompts), size=limit, replace=False).tolist())
    for i, p in enumerate(prompts):
        p.verdicts["limit"] = FilterVerdict(
            verdict="pass" if i in chosen else "fail",
            reason=f"in the seeded subset of {limit}"
            if i in chosen
            else f"not in the seeded --limit {limit} subset",
        )


def _candidate(p: Prompt) -> bool:
    """Passed every filter other than the LLM classifier: the pool the topic clusters are fitted on."""
    return bool(p.verdicts) and all(v.passed for name, v in p.verdicts.items() if name != "controversy")


def assign_clusters_and_split(prompts: Sequence[Prompt], config: PromptBuildConfig) -> None:
    """Mark kept prompts, cluster them and split them train / held-out stratified by cluster.

    The clusters are fitted on the *candidates* (prompts that passed every deterministic filter, i.e.
    all but the LLM classifier), and each kept prompt takes its candidate cluster. The classifier's
    verdicts (a retried call, another model) therefore never move a prompt to another cluster, and the
    per-prompt split (``stratified_split``) moves at most the boundary prompts of each cluster.
    """
    for p in prompts:
        p.kept = bool(p.verdicts) and all(v.passed for v in p.verdicts.values())
        p.cluster = p.cluster_label = p.split = None
    kept = [p for p in prompts if p.kept]
    if not kept:
        return
    candidates = [p for p in prompts if _candidate(p)]
    k = config.clusters if config.clusters is not None else default_clusters(len(candidates))
    assignments, labels = cluster_texts([p.text for p in candidates], k, config.seed)
    cluster_of = {p.id: c for p, c in zip(candidates, assignments)}
    clusters = [cluster_of[p.id] for p in kept]
    split = stratified_split([p.id for p in kept], clusters, config.held_out_fraction, config.seed)
    for p, c in zip(kept, clusters):
        p.cluster, p.cluster_label, p.split = c, labels[c], split[p.id]  # type: ignore[assignment]


def validate_build_config(config: PromptBuildConfig) -> None:
    if not 0.0 <= config.held_out_fraction < 1.0:
        raise UserError(f"--held-out-fraction must be in [0, 1) (got {config.held_out_fraction})")
    if config.clusters is not None and config.clusters < 1:
        raise UserError(f"--clusters must be at least 1 (got {config.clusters})")
    if not 0.0 < config.near_duplicate_threshold <= 1.0:
        raise UserError(f"near-duplicate threshold must be in (0, 1] (got {config.near_duplicate_threshold})")
    if config.concurrency < 1:
        raise UserError(f"--concurrency must be at least 1 (got {config.concurrency})")


async def abuild_prompts(
    items: Sequence[tuple[int, str]],
    client: Any,
    config: PromptBuildConfig,
    source: str = "",
    on_classified=None,
) -> list[Prompt]:
    """Async core of ``build_prompts`` for a caller that already holds an LLM client."""
    validate_build_config(config)
    prompts = make_prompts(items, source)
    apply_question_mark(prompts)
    apply_min_words(_in_play(prompts), config.min_words)
    apply_exact_duplicates(_in_play(prompts))
    apply_near_duplicates(_in_play(prompts), config.near_duplicate_threshold)
    apply_limit(_in_play(prompts), config.limit, config.seed)
    if config.controversy:
        if client is None:
            raise UserError("the controversy filter needs a model (--model), or pass --no-controversy")
        await apply_controversy(_in_play(prompts), client, config.seed, config.concurrency, on_classified)
    assign_clusters_and_split(prompts, config)
    return prompts


def build_prompts(
    source: str | Path | None = None,
    *,
    client: Any = None,
    config: PromptBuildConfig | None = None,
    data_dir: str | Path | None = None,
) -> list[Prompt]:
    """Build a prompt set from ``source`` (a user file; None = PRISM from the data directory) in memory.

    ``client``: an ``LLMClient`` for the controversy classifier (needed when ``config.controversy``).
    To write the set into a directory with its call log, use ``pipeline.stages.prompts.build_prompts``
    (what ``prompts build`` and ``run`` do). Returns every prompt with its verdicts (nothing is dropped).
    """
    config = config or PromptBuildConfig()
    validate_build_config(config)
    source_name, items = load_source(source, data_dir)
    return asyncio.run(abuild_prompts(items, client, config, source_name))

"""DPF preference pairs: ``feedback generate`` and ``run``'s feedback stage."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from ...core.errors import UserError
from ...core.hashing import file_sha256
from ...feedback.generate import PAIR_ATTRIBUTION, FeedbackResult, agenerate_pairs, validate_pair_config
from ...feedback.generate import FeedbackConfig as PairConfig
from ...feedback.io import CHECKPOINT_NAME, Checkpoint, write_pairs
from ...feedback.length import LengthBand
from ...feedback.plan import PairCounts, plan_pairs
from ...feedback.progress import PairProgress
from ...feedback.stats import feedback_stats
from ...feedback.templates import TEMPLATE_VERSION
from ...personas.io import read_personas, resolve_personas_path
from ...personas.record import Persona
from ...prompts import read_prompts
from ...prompts.io import resolve_prompts_path
from ...prompts.record import Prompt
from ..config import LLMConfig, RunConfig
from ..session import ItemFailure, Session, StageContext, StageOutcome
from .base import Spec, write_json

# -- feedback -------------------------------------------------------------------------------------------


class FeedbackSpec(Spec):
    """What ``feedback generate`` / the feedback stage generates."""

    personas: str
    prompts: str
    model: str
    config: PairConfig = Field(default_factory=PairConfig)


def feedback_config(cfg: RunConfig) -> PairConfig:
    """The pair-generation config a run uses (also read by ``status`` for its checkpoint key)."""
    return PairConfig(
        seed=cfg.seed,
        persona_format=cfg.personas.render,
        temperature=cfg.llm.temperature,
        max_tokens=cfg.llm.max_tokens,
        validate_pairs=cfg.feedback.validate_pairs,
        counts=PairCounts(**cfg.feedback.pairs.model_dump()),
        concurrency=cfg.llm.concurrency,
        length_band=LengthBand(low=cfg.feedback.length_band[0], high=cfg.feedback.length_band[1]),
    )


def personas_path(run_path: Path, cfg: RunConfig) -> Path:
    """The personas later stages use: the enriched set when enrichment is on, else the sampled set."""
    if cfg.personas.enrich.enabled:
        return run_path / "enrich" / "personas.jsonl"
    return run_path / "personas" / "personas.jsonl"


def feedback_spec(cfg: RunConfig, run_path: Path) -> FeedbackSpec:
    return FeedbackSpec(
        personas=str(personas_path(run_path, cfg)),
        prompts=str(run_path / "prompts"),
        model=cfg.models.for_role("feedback"),
        config=feedback_config(cfg),
    )


def feedback_stage(ctx: StageContext, spec: FeedbackSpec) -> StageOutcome:
    """DPF pairs (rejected → critique → chosen, judged in both orders), checkpointed, resumable."""
    personas = read_personas(spec.personas)
    prompts = read_prompts(spec.prompts)
    sources = {
        "personas": file_sha256(resolve_personas_path(spec.personas)),
        "prompts": file_sha256(resolve_prompts_path(spec.prompts)),
    }
    return pairs_stage(ctx, personas, prompts, ctx.client(spec.model), spec.config, sources)


def pairs_stage(
    ctx: StageContext,
    personas: Sequence[Persona],
    prompts: Sequence[Prompt],
    client: Any,
    config: PairConfig,
    sources: dict[str, str] | None = None,
) -> StageOutcome:
    """``feedback_stage`` for records already in memory: plan, generate (checkpointed), write, count."""
    validate_pair_config(config)
    planned = plan_pairs(
        personas, prompts, config.counts, config.seed
    )  # UserError: counts larger than a pool
    checkpoint = Checkpoint(ctx.dir / CHECKPOINT_NAME).open()

    async def generate() -> tuple[list[Any], int]:
        if ctx.quiet:
            return await agenerate_pairs(
                personas, prompts, client, config, checkpoint=checkpoint, planned=planned
            )
        with PairProgress(total=len(planned)) as bar:
            return await agenerate_pairs(
                personas, prompts, client, config, checkpoint=checkpoint, planned=planned, on_pair=bar.update
            )

    try:
        pairs, reused = ctx.run_async(generate)
    finally:
        checkpoint.close()
    paths = write_pairs(pairs, ctx.dir)
    stats = feedback_stats(pairs)
    write_json(ctx.dir / "stats.json", stats)
    failures = [ItemFailure(item=p.id, reason=p.error or "failed") for p in pairs if p.status != "ok"]
    artifacts = [
        ctx.rel(ctx.dir / n) for n in ("pairs.jsonl", "pairs.parquet", "stats.json") if (ctx.dir / n).exists()
    ]
    result = FeedbackResult(
        pairs=pairs, stats=stats, reused=reused, paths={k: str(v) for k, v in paths.items()}
    )
    return StageOutcome(
        items=len(pairs),
        ok=len(pairs) - len(failures),
        failed=len(failures),
        failures=failures,
        artifacts=artifacts,
        summary={
            **{k: v for k, v in stats.items() if not isinstance(v, (list, dict))},
            "model": client.model,
            "seed": config.seed,
            "template_version": TEMPLATE_VERSION,
            "config_key": config.config_key(client.model),
            "reused_from_checkpoint": reused,
            "sources": sources or {},
            "leaky": stats["leakage"]["leaky"],
            "attribution": PAIR_ATTRIBUTION,
        },
        detail=result,
    )


def generate_pairs(
    personas: Sequence[Persona],
    prompts: Sequence[Prompt],
    *,
    out_dir: str | Path,
    model: str | None = None,
    client: Any = None,
    config: PairConfig | None = None,
    progress: bool = False,
) -> FeedbackResult:
    """Library entry point: generate, checkpoint and write DPF pairs into ``out_dir`` (opens a session).

    Give ``client`` (an ``LLMClient``) or ``model``. Inputs are validated before anything is created.
    """
    config = config or PairConfig()
    validate_pair_config(config)
    plan_pairs(personas, prompts, config.counts, config.seed)
    if client is None and model is None:
        raise UserError("generate_pairs needs a model or a client")
    with Session(
        out_dir, kind="feedback", llm=LLMConfig(concurrency=config.concurrency), quiet=not progress
    ) as session:
        outcome = session.run_stage(
            "feedback",
            out_dir,
            lambda ctx: pairs_stage(
                ctx, personas, prompts, ctx.client(client if client is not None else model), config
            ),
            inputs={
                "config": config.model_dump(mode="json"),
                "personas": [p.id for p in personas],
                "prompts": [p.id for p in prompts],
            },
        )
    return outcome.detail

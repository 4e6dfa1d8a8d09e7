"""Contested prompts: ``prompts build`` and ``run``'s prompts stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ...core.errors import UserError
from ...core.output import err_console
from ...prompts import (
    PRISM_ATTRIBUTION,
    PromptBuildConfig,
    abuild_prompts,
    prompt_stats,
    read_prompts,
    write_prompts,
)
from ...prompts.build import validate_build_config
from ...prompts.controversy import CONTROVERSY_TEMPLATE_VERSION
from ...prompts.load import load_source
from ...prompts.record import FILTER_ORDER, Prompt
from ..config import LLMConfig, RunConfig
from ..session import ItemFailure, Session, StageContext, StageOutcome
from .base import Spec, write_json

# -- prompts --------------------------------------------------------------------------------------------


class PromptsSpec(Spec):
    """What ``prompts build`` / the prompts stage builds."""

    source: str | None = None
    """A prompts file; None = PRISM from the data directory."""
    data_dir: str | None = None
    model: str | None = None
    """Model of the controversy classifier (needed when ``build.controversy``)."""
    build: PromptBuildConfig = Field(default_factory=PromptBuildConfig)


def prompts_spec(cfg: RunConfig) -> PromptsSpec:
    p = cfg.prompts
    return PromptsSpec(
        source=None if p.source == "prism" else p.source,
        data_dir=cfg.data.dir,
        model=cfg.models.for_role("prompts") if p.classify else None,
        build=PromptBuildConfig(
            seed=cfg.seed,
            limit=p.limit,
            held_out_fraction=p.held_out_fraction,
            clusters=p.clusters,
            controversy=p.classify,
            concurrency=cfg.llm.concurrency,
        ),
    )


def prompts_stage(ctx: StageContext, spec: PromptsSpec, client: Any = None) -> StageOutcome:
    """Prompts file (or PRISM) → filters (+ LLM controversy classifier) → clusters → train/held-out split.

    ``client``: an ``LLMClient`` to use instead of ``spec.model`` (a library caller's).
    """
    name, items = load_source(spec.source, spec.data_dir)
    if spec.build.controversy and not (spec.model or client is not None):
        raise UserError("the controversy classifier needs a model (--model), or pass --no-controversy")
    if spec.build.controversy:
        client = ctx.client(client if client is not None else spec.model)
    else:
        client = None

    async def build() -> Any:
        if ctx.quiet or client is None:
            return await abuild_prompts(items, client, spec.build, name)
        with Progress(
            TextColumn("classifying prompts"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task("classify", total=None)
            return await abuild_prompts(
                items,
                client,
                spec.build,
                name,
                on_classified=lambda n, total: bar.update(task, completed=n, total=total),
            )

    prompts = ctx.run_async(build)
    failures = [
        ItemFailure(item=p.id, reason=f"{fname}: {verdict.reason}")
        for p in prompts
        for fname, verdict in p.verdicts.items()
        if verdict.verdict == "error"
    ]
    kept = [p for p in prompts if p.kept]
    if not kept:
        why = f"; {len(failures)} classifier calls failed (first: {failures[0].reason})" if failures else ""
        raise UserError(f"prompts: no prompt of {name} passed the filters{why}")
    write_prompts(
        prompts,
        ctx.dir,
        {
            "source": name,
            "model": client.model if client else None,
            "config": spec.build.model_dump(),
            "filter_order": list(FILTER_ORDER),
            "controversy_template_version": CONTROVERSY_TEMPLATE_VERSION,
            "attribution": PRISM_ATTRIBUTION if spec.source is None else None,
        },
    )
    stats = prompt_stats(prompts)
    funnel = [{"step": f"loaded from {name}", "count": stats["prompts"]}]
    for row in stats["filters"]:
        if row["evaluated"]:
            funnel.append({"step": f"passed {row['filter']}", "count": row["pass"]})
    clusters = [
        {
            "cluster": c["cluster"],
            "label": c["label"],
            "size": c["total"],
            "train": c["train"],
            "held_out": c["held_out"],
        }
        for c in stats["clusters"]
    ]
    write_json(ctx.dir / "summary.json", {"funnel": funnel, "clusters": clusters, "stats": stats})
    artifacts = [
        ctx.rel(ctx.dir / n)
        for n in ("prompts.jsonl", "prompts.parquet", "summary.json")
        if (ctx.dir / n).exists()
    ]
    return StageOutcome(
        items=len(prompts),
        ok=len(prompts) - len(failures),
        failed=len(failures),
        failures=failures,
        artifacts=artifacts,
        summary={"source": name, "kept": len(kept), "splits": stats["splits"]},
        detail=stats,
    )


def build_prompts(
    source: str | Path | None = None,
    *,
    out_dir: str | Path,
    model: str | None = None,
    client: Any = None,
    config: PromptBuildConfig | None = None,
    progress: bool = False,
    data_dir: str | Path | None = None,
) -> list[Prompt]:
    """Library entry point: build a prompt set into ``out_dir`` (opens a session, as ``prompts build``)."""
    spec = PromptsSpec(
        source=str(source) if source else None,
        data_dir=str(data_dir) if data_dir else None,
        model=model,
        build=config or PromptBuildConfig(),
    )
    validate_build_config(spec.build)
    load_source(spec.source, spec.data_dir)  # bad input fails before anything is created
    with Session(
        out_dir,
        kind="prompts",
        inputs=[source],
        llm=LLMConfig(concurrency=spec.build.concurrency),
        quiet=not progress,
    ) as session:
        session.run_stage("prompts", out_dir, lambda ctx: prompts_stage(ctx, spec, client), inputs=spec)
    return read_prompts(out_dir)

"""CLI commands for LLM enrichment: ``personas enrich`` and ``personas stats`` (registered in ``cli/personas.py``)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.output import console, emit, print_json, table
from ..llm.models import parse_model
from ..personas.io import resolve_personas_path
from ..personas.record import PERSONA_FIELDS, PROVENANCES
from ..personas.stats import enrich_summary_rows, persona_stats
from ..pipeline.config import MAX_CONCURRENCY, LLMConfig, execution_config
from ..pipeline.session import Session
from ..pipeline.stages.personas import EnrichSpec, enrich_stage


def enrich_command(
    input: Path = typer.Argument(
        ..., help="Persona file (personas.jsonl / .parquet) or a directory holding one."
    ),
    out: Path = typer.Argument(
        ..., help="Output directory: personas.jsonl/.parquet, enrich_report.json, calls.db."
    ),
    model: str = typer.Option(
        "embedded",
        "--model",
        "-m",
        help="Model that writes the fields (embedded, gguf:/path, openai/<model>).",
    ),
    judge_model: str | None = typer.Option(
        None, "--judge-model", help="Model for the consistency judge; omit to skip judging."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed for category picks, call seeds and resampling."),
    max_resamples: int = typer.Option(
        3, "--max-resamples", min=0, help="Resamples per persona the judge rejects."
    ),
    concurrency: int = typer.Option(
        4, "--concurrency", min=1, max=MAX_CONCURRENCY, help="Concurrent model calls."
    ),
    max_chars: int = typer.Option(240, "--max-chars", min=20, help="Longest value per written field."),
    categories: int = typer.Option(
        3, "--categories", min=0, max=10, help="Idiosyncratic categories per persona."
    ),
    resample: bool = typer.Option(
        True, "--resample/--no-resample", help="Replace judge-rejected personas with new census draws."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data directory for census resampling (default: the tool's home)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report summary as JSON."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    executor: str | None = typer.Option(
        None,
        "--executor",
        help="How model calls run: local (default) or "
        "batch (write waves for a batch endpoint; see docs/execution.md).",
    ),
) -> None:
    """Write the pending / procedural persona fields with an LLM; optionally judge and resample.

    Census, derived, imputed and survey fields are never changed. Runs the same stage function as
    ``persona-testbed run``; resumable: finished calls replay from OUT/calls.db.
    """
    resolve_personas_path(input)  # bad input fails before OUT is created
    for m in (model, judge_model):
        if m is not None:
            parse_model(m)
    spec = EnrichSpec(
        personas=str(input),
        model=model,
        judge_model=judge_model,
        seed=seed,
        max_resamples=max_resamples,
        max_chars=max_chars,
        categories=categories,
        resample=resample,
        data_dir=str(data_dir) if data_dir else None,
    )
    with Session(
        out,
        kind="enrich",
        inputs=[input],
        llm=LLMConfig(concurrency=concurrency),
        execution=execution_config(executor),
        quiet=as_json or not progress,
    ) as session:
        outcome = session.run_stage("enrich", out, lambda ctx: enrich_stage(ctx, spec), inputs=spec)
    rows = enrich_summary_rows(outcome.detail)
    emit(
        {k: v for k, v in rows} | {"out": str(out)},
        as_json,
        columns=("figure", "value"),
        rows=rows,
        title=f"enrichment -> {out}",
    )


def stats_command(
    path: Path = typer.Argument(..., help="Persona file or a directory holding personas.jsonl."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Provenance counts per field, rejection rates by reason (rules and LLM judge), diversity figure."""
    stats = persona_stats(path)
    if as_json:
        print_json(stats)
        return
    provs = list(PROVENANCES)
    console.print(
        table(
            f"provenance per field ({stats['personas']} personas)",
            ["field", *provs],
            [[name, *[stats["provenance"][name].get(k, 0) for k in provs]] for name in PERSONA_FIELDS],
        )
    )
    console.print(
        table(
            "rejection rates",
            ["source", "reason", "rejected", "checked", "rate"],
            [[r["source"], r["reason"], r["rejected"], r["checked"], r["rate"]] for r in stats["rejections"]]
            or [["-", "no rule or judge report found", "", "", ""]],
        )
    )
    div = stats["diversity"]["overall"]
    console.print(
        table(
            "diversity of LLM-written fields",
            ["figure", "value"],
            [
                ("enriched personas", stats["diversity"]["personas"]),
                ("distinct-1", div["distinct_1"]),
                ("distinct-2", div["distinct_2"]),
                ("distinct-3", div["distinct_3"]),
                ("mean pairwise TF-IDF distance", div["mean_pairwise_tfidf_distance"]),
                ("near-duplicate pairs", len(stats["near_duplicates"])),
                ("paper judge rejection rate", stats["paper_judge_rejection_rate"]),
            ],
        )
    )


__all__ = ["enrich_command", "stats_command"]

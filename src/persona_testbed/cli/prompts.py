"""CLI for the prompts group: build a contested prompt set, print its statistics."""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.errors import UserError
from ..core.output import emit
from ..llm.models import parse_model
from ..pipeline.config import MAX_CONCURRENCY, LLMConfig, execution_config
from ..pipeline.session import Session
from ..pipeline.stages.prompts import PromptsSpec, prompts_stage
from ..prompts.build import PromptBuildConfig, validate_build_config
from ..prompts.cluster import PAPER_HELD_OUT_FRACTION
from ..prompts.io import read_prompts
from ..prompts.load import load_source
from ..prompts.stats import prompt_stats

app = typer.Typer(
    no_args_is_help=True, help="Prompts: PRISM (or your file) -> filters, topic clusters, split."
)


@app.command("build")
def build_cmd(
    out: Path = typer.Option(
        ..., "--out", help="Output directory (gets prompts.parquet, prompts.jsonl, calls.db)."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Model for the controversy classifier (embedded, gguf:/path, openai/<model>)."
    ),
    source: Path | None = typer.Option(
        None,
        "--source",
        help="A prompts file (JSONL/JSON/CSV with a "
        "text or prompt field, or TXT one per line). Default: PRISM.",
    ),
    limit: int | None = typer.Option(
        None,
        "--limit",
        help="Seeded random subset of N prompts taken after the cheap filters and before the LLM classifier.",
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed for --limit, clustering and the split."),
    held_out_fraction: float = typer.Option(
        PAPER_HELD_OUT_FRACTION,
        "--held-out-fraction",
        help="Share of kept prompts held out (paper: 868/3868).",
    ),
    clusters: int | None = typer.Option(
        None, "--clusters", help="Number of topic clusters (default round(sqrt(kept/2)), at most 20)."
    ),
    concurrency: int = typer.Option(
        4, "--concurrency", min=1, max=MAX_CONCURRENCY, help="LLM calls in flight at once."
    ),
    controversy: bool = typer.Option(
        True, "--controversy/--no-controversy", help="Run the LLM controversy classifier (on by default)."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data directory holding PRISM (default: $PERSONA_TESTBED_HOME/data)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON."),
    executor: str | None = typer.Option(
        None,
        "--executor",
        help="How model calls run: local (default) or "
        "batch (write waves for a batch endpoint; see docs/execution.md).",
    ),
) -> None:
    """Load prompts, record every filter verdict, cluster by topic and split train / held-out.

    Runs the same stage function as ``persona-testbed run`` (calls logged to OUT/calls.db, the stage
    recorded in OUT/manifest.json); re-running resumes from the call log.
    """
    if controversy and model is None:
        raise UserError("--model is required for the controversy classifier (or pass --no-controversy)")
    if controversy:
        parse_model(model)  # a bad model string fails before OUT is created
    spec = PromptsSpec(
        source=str(source) if source else None,
        data_dir=str(data_dir) if data_dir else None,
        model=model if controversy else None,
        build=PromptBuildConfig(
            seed=seed,
            limit=limit,
            held_out_fraction=held_out_fraction,
            clusters=clusters,
            concurrency=concurrency,
            controversy=controversy,
        ),
    )
    validate_build_config(spec.build)
    load_source(spec.source, spec.data_dir)  # bad input fails before OUT is created
    with Session(
        out,
        kind="prompts",
        inputs=[source],
        llm=LLMConfig(concurrency=concurrency),
        execution=execution_config(executor),
        quiet=as_json,
    ) as session:
        outcome = session.run_stage("prompts", out, lambda ctx: prompts_stage(ctx, spec), inputs=spec)
    _print_stats(outcome.detail, as_json, title=f"prompts written to {out}")


@app.command("stats")
def stats_cmd(
    path: Path = typer.Argument(..., help="A prompts directory, prompts.parquet or prompts.jsonl."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Counts per filter, per cluster and per split of a built prompt set."""
    _print_stats(prompt_stats(read_prompts(path)), as_json, title=str(path))


def _print_stats(stats: dict, as_json: bool, title: str) -> None:
    if as_json:
        emit(stats, True)
        return
    emit(
        None,
        False,
        ("filter", "evaluated", "pass", "fail", "error"),
        [(f["filter"], f["evaluated"], f["pass"], f["fail"], f["error"]) for f in stats["filters"]],
        title=f"{title}: {stats['prompts']} prompts, {stats['kept']} kept",
    )
    scripts = stats.get("scripts") or []
    ran = list(scripts[0]["passed"]) if scripts else []
    emit(
        None,
        False,
        ("script", "prompts", *ran, "kept"),
        [(s["script"], s["prompts"], *(s["passed"].get(f, 0) for f in ran), s["kept"]) for s in scripts],
        title="funnel per script (prompts passing each filter)",
    )
    emit(
        None,
        False,
        ("cluster", "label", "train", "held_out", "total"),
        [(c["cluster"], c["label"], c["train"], c["held_out"], c["total"]) for c in stats["clusters"]],
        title="clusters",
    )
    emit(None, False, ("split", "prompts"), list(stats["splits"].items()), title="splits")

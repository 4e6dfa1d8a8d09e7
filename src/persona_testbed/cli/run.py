"""Top-level commands ``run`` (the whole pipeline from one config) and ``status`` (what a run holds)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.output import console, emit
from ..pipeline.config import execution_config
from ..pipeline.engine import prepare_run, run_pipeline
from ..pipeline.status import format_progress, run_status


def run_command(
    config: Path | None = typer.Argument(
        None, help="Run configuration (TOML), e.g. configs/quickstart.toml."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run directory (default: runs/<name>)."),
    resume: Path | None = typer.Option(None, "--resume", help="Continue the run in this directory."),
    retry_failed: Path | None = typer.Option(
        None, "--retry-failed", help="Re-run only the recorded failures of the run in this directory."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress messages."),
    as_json: bool = typer.Option(False, "--json", help="Print the final status as JSON."),
    executor: str | None = typer.Option(
        None,
        "--executor",
        help="How model calls run: local or batch (default: "
        "the config's [execution] backend; see docs/execution.md).",
    ),
) -> None:
    """Run census → personas (→ enrichment) → prompts → feedback → bench → report into one directory.

    Stages whose artifacts are complete and whose inputs are unchanged are skipped; interrupted stages
    resume from the run's call cache. The config is validated (every problem at once) before any work.
    """
    run, cfg, retry = prepare_run(config, out, resume, retry_failed)
    cfg = cfg.model_copy(update={"execution": execution_config(executor, cfg.execution)})
    run_pipeline(run, cfg, retry_failed=retry, quiet=quiet or as_json)
    _print_status(run_status(run.path), as_json)


def status_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by `persona-testbed run`."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    failures: int = typer.Option(5, "--failures", help="Show up to this many recorded failures per stage."),
) -> None:
    """Show what a run has done, failed and still pending per stage, with calls, tokens and time."""
    _print_status(run_status(run_dir), as_json, failures)


def _print_status(doc: dict, as_json: bool, failures: int = 5) -> None:
    if as_json:
        emit(doc, True)
        return
    rows = [
        (
            s["stage"],
            s["status"],
            s["items"],
            s["ok"],
            s["failed"],
            s["calls"],
            s.get("calls_failed", 0),
            s["tokens"],
            s["duration_s"],
        )
        for s in doc["stages"]
    ]
    t = doc["totals"]
    emit(
        doc,
        False,
        columns=("stage", "status", "items", "ok", "failed", "calls", "calls failed", "tokens", "time s"),
        rows=rows,
        title=f"run {doc['name']} ({doc['status']}) — {doc['run']}",
    )
    console.print(
        f"calls {t['calls']} ({t['failed']} failed), tokens {t['prompt_tokens']} in / "
        f"{t['completion_tokens']} out, model latency {t['model_s']} s, queue wait "
        f"{t.get('queue_s') if t.get('queue_s') is not None else '?'} s, stage time {t['stage_s']} s, "
        f"failed items {t['failed_items']}",
        highlight=False,
    )
    for s in doc["stages"]:
        if s["status"] in ("running", "interrupted", "failed") and format_progress(s.get("progress")):
            console.print(
                f"{s['stage']} ({s['status']}): {format_progress(s['progress'])} done so far "
                f"— from {s['progress']['source']}",
                highlight=False,
                markup=False,
            )
        if s.get("error"):
            console.print(f"[red]{s['stage']}[/red]: {s['error']}", highlight=False)
        for f in s["failures"][:failures]:
            console.print(
                f"  {s['stage']} failed item {f['item']}: {f['reason']}", highlight=False, markup=False
            )
        if len(s["failures"]) > failures:
            console.print(f"  … {len(s['failures']) - failures} more (use --json)", highlight=False)

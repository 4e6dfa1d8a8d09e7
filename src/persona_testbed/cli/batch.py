"""CLI for the batch executor: submit written waves, follow them, ingest their results."""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.errors import UserError
from ..core.output import emit
from ..llm.batch_api import poll, states, submit, vllm_commands
from ..llm.deferred import BatchStore

app = typer.Typer(no_args_is_help=True, help="Batch executor: submit waves, follow them, ingest results.")


def _store(run: Path) -> BatchStore:
    store = BatchStore(run)
    if not store.exists():
        raise UserError(f"{run}: no batch requests here (run a stage with --executor batch first)")
    return store


def _emit_states(store: BatchStore, as_json: bool, title: str) -> None:
    rows = [(s.file, s.wave, s.status, s.batch_id or "") for s in states(store)]
    doc = {
        "files": [dict(zip(("file", "wave", "status", "batch_id"), r)) for r in rows],
        "unanswered": store.unanswered(),
    }
    emit(
        doc,
        as_json,
        columns=("file", "wave", "status", "batch id"),
        rows=rows,
        title=f"{title}: {doc['unanswered']} requests without a result",
    )


@app.command("submit")
def submit_cmd(
    run: Path = typer.Argument(..., help="Run (or stage output) directory holding batch/."),
    vllm: bool = typer.Option(
        False, "--vllm", help="Print the `vllm run-batch` commands instead of submitting."
    ),
    base_url: str | None = typer.Option(
        None, "--base-url", help="Batch API base URL (default: OPENAI_BASE_URL, else api.openai.com)."
    ),
    completion_window: str = typer.Option("24h", "--completion-window", help="Batch completion window."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Upload every written request file and create one batch per file (OpenAI Files + Batches API).

    With --vllm, print one `vllm run-batch -i FILE -o OUT --model M` command per file; run them, then
    `persona-testbed batch ingest RUN OUT...`.
    """
    store = _store(run)
    if vllm:
        cmds = vllm_commands(store)
        if as_json:
            emit({"commands": cmds}, True)
        else:
            for c in cmds:
                typer.echo(c)
        return
    submit(store, base_url=base_url, completion_window=completion_window)
    _emit_states(store, as_json, f"batches of {run}")


@app.command("status")
def status_cmd(
    run: Path = typer.Argument(..., help="Run (or stage output) directory holding batch/."),
    base_url: str | None = typer.Option(
        None, "--base-url", help="Batch API base URL (default: OPENAI_BASE_URL, else api.openai.com)."
    ),
    offline: bool = typer.Option(False, "--offline", help="Only show what is recorded; ask no endpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Refresh submitted batches; download and ingest the results of those that ended."""
    store = _store(run)
    if not offline:
        _, report = poll(store, base_url=base_url)
        if report is not None and not as_json:
            typer.echo(
                f"ingested {report.lines} results ({report.failed} failed) from {report.files} file(s)",
                err=True,
            )
    _emit_states(store, as_json, f"batches of {run}")


@app.command("ingest")
def ingest_cmd(
    run: Path = typer.Argument(..., help="Run (or stage output) directory holding batch/."),
    files: list[Path] = typer.Argument(
        ..., help="Batch output files (OpenAI Batch or `vllm run-batch` output; partial files are fine)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Read batch results into the run; re-run the stage to use them (it continues with the next wave)."""
    store = _store(run)
    report = store.ingest(files)
    doc = {
        "files": report.files,
        "results": report.lines,
        "ok": report.ok,
        "failed": report.failed,
        "unanswered": report.unanswered,
    }
    emit(doc, as_json, columns=("figure", "value"), rows=list(doc.items()), title=f"ingested into {run}")

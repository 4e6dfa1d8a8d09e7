"""CLI for the batch executor: submit written waves, follow them, ingest their results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..core.errors import UserError
from ..core.output import emit
from ..llm.batch_api import missing, poll, resubmit_missing, states, submit, vllm_commands
from ..llm.deferred import BatchStore

app = typer.Typer(no_args_is_help=True, help="Batch executor: submit waves, follow them, ingest results.")


def _store(run: Path) -> BatchStore:
    store = BatchStore(run)
    if not store.exists():
        raise UserError(f"{run}: no batch requests here (run a stage with --executor batch first)")
    return store


def _emit_states(store: BatchStore, as_json: bool, title: str, **extra: Any) -> None:
    rows = [(s.file, s.wave, s.status, s.batch_id or "") for s in states(store)]
    doc = {
        "files": [dict(zip(("file", "wave", "status", "batch_id"), r)) for r in rows],
        "unanswered": store.unanswered(),
        **extra,
    }
    title = f"{title}: {doc['unanswered']} requests without a result"
    if doc.get("to_resubmit"):
        title += f" ({doc['to_resubmit']} of them in ended batches: `batch submit` resubmits them)"
    emit(doc, as_json, columns=("file", "wave", "status", "batch id"), rows=rows, title=title)


def _resubmit(store: BatchStore, as_json: bool) -> list[dict[str, Any]]:
    """Write the unanswered requests of ended batches into new request files; say so on stderr."""
    done: list[dict[str, Any]] = [
        {"file": f, "wave": w, "requests": n} for f, w, n in resubmit_missing(store)
    ]
    if done and not as_json:
        for d in done:
            typer.echo(
                f"resubmitting {d['requests']} requests left unanswered by ended batches of {d['wave']}: "
                f"{store.root / d['file']}",
                err=True,
            )
    return done


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

    Requests that a batch which ended (expired, cancelled, failed, or completed without them) left without a
    result are first written into a new request file of their wave and submitted with the others: each
    once, never one that has a result or is in a file still written or in flight.

    With --vllm, print one `vllm run-batch -i FILE -o OUT --model M` command per file; run them, then
    `persona-testbed batch ingest RUN OUT...`.
    """
    store = _store(run)
    resubmitted = _resubmit(store, as_json)
    if vllm:
        cmds = vllm_commands(store)
        if as_json:
            emit({"commands": cmds, "resubmitted": resubmitted}, True)
        else:
            for c in cmds:
                typer.echo(c)
        return
    submit(store, base_url=base_url, completion_window=completion_window)
    _emit_states(store, as_json, f"batches of {run}", resubmitted=resubmitted)


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
    to_resubmit = sum(len(ids) for ids in missing(store).values())
    _emit_states(store, as_json, f"batches of {run}", to_resubmit=to_resubmit)


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
        "not_run": report.not_run,
        "unanswered": report.unanswered,
    }
    emit(doc, as_json, columns=("figure", "value"), rows=list(doc.items()), title=f"ingested into {run}")

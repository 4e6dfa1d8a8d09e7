"""Top-level command ``report``: a static, self-contained HTML report of a run directory."""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.output import emit
from ..pipeline.view import write_report


def report_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by `persona-testbed run`."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="HTML file to write (default: RUN/report/index.html)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Write a self-contained HTML report of a run (opens from disk, no network).

    Sections: run summary, census fidelity, persona browser, prompt funnel, pairs browser, bench tables
    and plots.
    """
    info = write_report(run_dir, out)
    emit(info, as_json)

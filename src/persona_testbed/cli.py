"""The ``persona-testbed`` command line: thin; parses options, calls stage functions, prints results.

Each stage owns its sub-command group in ``<stage>/cli.py``; this module only assembles them and turns
``UserError`` into one line on stderr with exit code 2.
"""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

from . import __version__
from .errors import UserError
from .output import err_console

class _Group(TyperGroup):
    """Root command group: a ``UserError`` anywhere becomes one stderr line and exit code 2."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except UserError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=_Group,
    name="persona-testbed",
    help="PERSONA testbed for pluralistic alignment: census personas, contested prompts, "
    "Direct Principle Feedback pairs and PERSONA Bench — reproducible and offline-first.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"persona-testbed {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """PERSONA testbed for pluralistic alignment."""


def _register() -> None:
    from .data.cli import app as data_app
    from .llm.cli import app as llm_app

    app.add_typer(data_app, name="data", help="Input data: list, fetch from a mirror or the official URLs.")
    app.add_typer(llm_app, name="llm", help="Models: chat with a backend, browse the call log.")

    from .feedback.cli import app as feedback_app
    from .prompts.cli import app as prompts_app

    app.add_typer(prompts_app, name="prompts", help="Prompts: PRISM or your file -> filters, topic clusters, split.")
    app.add_typer(feedback_app, name="feedback", help="Direct Principle Feedback pairs: generate, export, stats.")

    from .census.cli import app as census_app

    app.add_typer(census_app, name="census", help="Census sources (ACS PUMS): list, decode cache, rake to totals.")

    from .personas.cli import app as personas_app

    app.add_typer(personas_app, name="personas", help="Personas: sample census-grounded personas, show one.")

    from .bench.cli import app as bench_app

    app.add_typer(bench_app, name="bench", help="PERSONA Bench: run tasks, export items, human-eval kit.")

    from .report.cli import report_command
    from .runs.cli import run_command, status_command

    app.command("run")(run_command)
    app.command("status")(status_command)
    app.command("report")(report_command)


_register()


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, prog_name="persona-testbed")
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()

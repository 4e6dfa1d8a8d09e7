"""The ``persona-testbed`` command line: thin; parses options, calls stage functions, prints results.

Each stage owns its sub-command group in ``<stage>/cli.py``; this module only assembles them and turns
``UserError`` — and any ``OSError`` a command lets through (permissions, read-only or full disk, a parent
that is a file) — into one line on stderr with exit code 2.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.resources
import json
import platform
import sys

import typer
import typer.main
from rich.markup import escape
from typer.core import TyperGroup

try:  # typer >= 0.20 vendors click
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer on click
    from click.exceptions import NoArgsIsHelpError, UsageError

from .. import __version__
from ..core.errors import UserError
from ..core.output import err_console
from ..core.outputs import os_error_message

# Sub-commands load on first use, so `persona-testbed --version` or `llm chat` does not import polars,
# scipy and scikit-learn. name -> (module, attribute, one-line help shown in the root listing).
_LAZY: dict[str, tuple[str, str, str]] = {
    "run": (
        "persona_testbed.cli.run",
        "run_command",
        "Run census → personas (→ enrichment) → prompts → feedback → bench → report into one directory.",
    ),
    "status": (
        "persona_testbed.cli.run",
        "status_command",
        "Show what a run has done, failed and still pending per stage, with calls, tokens and time.",
    ),
    "report": (
        "persona_testbed.cli.report",
        "report_command",
        "Write a self-contained HTML report of a run (opens from disk, no network).",
    ),
    "data": (
        "persona_testbed.cli.data",
        "app",
        "Input data: list, fetch from a mirror or the official URLs.",
    ),
    "llm": ("persona_testbed.cli.llm", "app", "Models: chat with a backend, browse the call log."),
    "census": (
        "persona_testbed.cli.census",
        "app",
        "Census sources (ACS PUMS): list, decode cache, rake to totals, fidelity.",
    ),
    "personas": (
        "persona_testbed.cli.personas",
        "app",
        "Personas: sample census-grounded personas, enrich, show, stats.",
    ),
    "prompts": (
        "persona_testbed.cli.prompts",
        "app",
        "Prompts: PRISM or your file -> filters, topic clusters, split.",
    ),
    "feedback": (
        "persona_testbed.cli.feedback",
        "app",
        "Direct Principle Feedback pairs: generate, export, stats.",
    ),
    "bench": ("persona_testbed.cli.bench", "app", "PERSONA Bench: run tasks, export items, human-eval kit."),
    "plan": (
        "persona_testbed.cli.plan",
        "plan_command",
        "Project a config's calls, tokens, wall time and cost before running it (pilot or a run's log).",
    ),
    "batch": (
        "persona_testbed.cli.batch",
        "app",
        "Batch executor: submit waves to a batch endpoint (OpenAI, vllm run-batch), follow, ingest.",
    ),
    "import": (
        "persona_testbed.cli.imports",
        "app",
        "Import published data (the PERSONA authors' release) as our personas and pairs.",
    ),
}


def _load(name: str):  # type: ignore[no-untyped-def]
    module, attr, short_help = _LAZY[name]
    target = getattr(importlib.import_module(module), attr)
    if isinstance(target, typer.Typer):
        cmd = typer.main.get_group(target)
        cmd.help = short_help  # this table is the one place a group's description lives
    else:
        single = typer.Typer()
        single.command(name)(target)
        cmd = typer.main.get_command(single)
    cmd.name = name
    cmd.help = cmd.help or short_help
    cmd.short_help = short_help
    return cmd


class _Group(TyperGroup):
    """Root command group: lazily loaded sub-commands; a ``UserError`` or ``OSError`` anywhere becomes one
    stderr line (``error: <path>: <reason>`` for an ``OSError``) and exit code 2."""

    def list_commands(self, ctx):  # type: ignore[no-untyped-def]
        return [*super().list_commands(ctx), *(n for n in _LAZY if n not in self.commands)]

    def get_command(self, ctx, name):  # type: ignore[no-untyped-def]
        if name not in self.commands and name in _LAZY:
            self.commands[name] = _load(name)
        return super().get_command(ctx, name)

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except UserError as exc:
            colour = "red" if exc.label == "error" else "yellow"
            err_console.print(
                f"[{colour}]{exc.label}:[/{colour}] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(exc.exit_code) from None
        except NoArgsIsHelpError:
            raise  # a group named alone prints its help
        except UsageError as exc:  # a bad option value: one line like every other input error
            err_console.print(
                f"[red]error:[/red] {escape(exc.format_message())}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(UserError.exit_code) from None
        except BrokenPipeError:
            raise  # click handles a closed stdout (`| head`) itself
        except OSError as exc:
            err_console.print(
                f"[red]error:[/red] {escape(os_error_message(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(UserError.exit_code) from None


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
    """``--version``: the package, the packaged data manifest (format, file count, sha256 of the file, so
    two installs can be compared) and the interpreter. Reads the manifest as plain JSON through the root
    package, so no stage (nor pydantic) is imported."""
    if value:
        raw = importlib.resources.files("persona_testbed").joinpath("data/manifest.json").read_bytes()
        doc = json.loads(raw)
        typer.echo(f"persona-testbed {__version__}")
        typer.echo(
            f"data manifest format {doc.get('format', '?')}, {len(doc.get('files', []))} files, "
            f"sha256 {hashlib.sha256(raw).hexdigest()[:12]}"
        )
        typer.echo(
            f"Python {platform.python_version()} ({platform.python_implementation()}, {sys.executable})"
        )
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """PERSONA testbed for pluralistic alignment."""


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, prog_name="persona-testbed")
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()

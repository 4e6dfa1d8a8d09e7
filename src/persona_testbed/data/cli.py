"""CLI for the data group (filled in by the data module owner)."""

import typer

app = typer.Typer(no_args_is_help=True)

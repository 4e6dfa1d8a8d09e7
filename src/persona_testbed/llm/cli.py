"""CLI for the llm group (filled in by the llm module owner)."""

import typer

app = typer.Typer(no_args_is_help=True)

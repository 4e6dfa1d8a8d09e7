"""Every typer command of ``persona-testbed``: parse options, open a session, call one library function,
print. Nothing below this package imports typer."""

from .root import app, main

__all__ = ["app", "main"]

"""Printing results: rich tables for people, ``--json`` for programs. One way to do it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (plain, no colour codes)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    t = Table(title=title, show_lines=False)
    for col in columns:
        t.add_column(str(col))
    for row in rows:
        t.add_row(*["" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v)) for v in row])
    return t


def emit(
    data: Any,
    as_json: bool,
    columns: Sequence[str] | None = None,
    rows: Iterable[Sequence[Any]] | None = None,
    title: str | None = None,
) -> None:
    """Print ``data`` as JSON when ``as_json``, else the given table (or a key/value table of ``data``)."""
    if as_json:
        print_json(data)
        return
    if columns is None or rows is None:
        columns, rows = ("key", "value"), [(k, v) for k, v in dict(data).items()]
    console.print(table(title, columns, rows))

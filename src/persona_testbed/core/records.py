"""Reading JSON Lines artifacts with errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import UserError


def read_jsonl(path: Path) -> list[tuple[int, Any]]:
    """``(line number, decoded value)`` for every non-blank line of ``path``.

    Raises ``UserError`` naming the file when it is not UTF-8, and the line when it is not JSON.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"{path}: not valid UTF-8") from None
    out: list[tuple[int, Any]] = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append((lineno, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    return out

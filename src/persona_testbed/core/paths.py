"""Artifact paths: a file given directly or found by name inside a directory."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UserError


def resolve_artifact(path: str | os.PathLike[str], names: tuple[str, ...], what: str, hint: str = "") -> Path:
    """A stage artifact: ``path`` itself, or the first of ``names`` inside the directory ``path``.

    Raises ``UserError`` naming the path when neither exists (``hint`` says how to make it).
    """
    p = Path(path)
    if p.is_dir():
        for name in names:
            if (p / name).exists():
                return p / name
        listed = " or ".join(names)
        raise UserError(f"{p}: directory has no {listed}" + (f" ({hint})" if hint else ""))
    if not p.exists():
        raise UserError(f"{p}: no such {what} file")
    return p

"""sha256 of input files, remembered per (path, size, mtime) so re-opening a source costs no re-hash."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core import settings
from ..core.atomic import atomic_write_text
from ..core.hashing import file_sha256

INDEX = "census/sha256-index.json"


def _index_path() -> Path:
    return settings.cache_dir() / INDEX


def _load() -> dict[str, str]:
    try:
        return json.loads(_index_path().read_text())
    except (OSError, ValueError):
        return {}


def file_checksums(paths: list[Path]) -> dict[Path, str]:
    """sha256 of each file; hashes only files whose size or mtime changed since last time."""
    index = _load()
    out: dict[Path, str] = {}
    changed = False
    for p in paths:
        st = os.stat(p)
        key = f"{Path(p).resolve()}|{st.st_size}|{st.st_mtime_ns}"
        digest = index.get(key)
        if digest is None:
            digest = file_sha256(p)
            index[key] = digest
            changed = True
        out[p] = digest
    if changed:
        _index_path().parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(_index_path(), json.dumps(index, indent=0, sort_keys=True))
    return out


FACTS = "census/input-facts.json"


def recall(sha256: str, key: str) -> str | None:
    """A fact remembered about an input file (by its sha256), e.g. its first SERIALNO."""
    try:
        return json.loads((settings.cache_dir() / FACTS).read_text()).get(sha256, {}).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def remember(sha256: str, key: str, value: str) -> None:
    """Remember a fact about an input file so a later load need not open it."""
    path = settings.cache_dir() / FACTS
    try:
        facts = json.loads(path.read_text())
    except (OSError, ValueError):
        facts = {}
    facts.setdefault(sha256, {})[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(facts, indent=0, sort_keys=True))

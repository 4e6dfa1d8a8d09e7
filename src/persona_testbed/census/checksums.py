"""sha256 of input files, remembered per (path, size, mtime) so re-opening a source costs no re-hash."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import settings
from ..hashing import file_sha256
from ..runs import atomic_write_text

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

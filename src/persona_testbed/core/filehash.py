"""One file-hash cache: sha256 of input files keyed by (path, size, mtime), so re-runs do not re-read them."""

from __future__ import annotations

import json
from pathlib import Path

from .atomic import atomic_write_text
from .hashing import file_sha256
from .settings import cache_dir


def _cache_path() -> Path:
    return cache_dir() / "sha256_by_stat.json"


def cached_sha256(paths: list[Path]) -> dict[Path, str]:
    """sha256 of each file, cached by (path, size, mtime_ns); the cache is advisory (unwritable = not kept)."""
    cache_file = _cache_path()
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, json.JSONDecodeError):
        cache = {}
    out: dict[Path, str] = {}
    changed = False
    for p in paths:
        st = p.stat()
        key = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if key not in cache:
            cache[key] = file_sha256(p)
            changed = True
        out[p] = cache[key]
    if changed:
        try:
            atomic_write_text(cache_file, json.dumps(cache, sort_keys=True))
        except OSError:
            pass
    return out

"""Checksums of files the manifest does not know, and a cache of computed hashes.

- ``SHA256SUMS.local`` in the data directory (``sha256sum -c`` format): the sha256 recorded when a
  file without a manifest checksum (e.g. ``pums:2019:p:ca``) was first fetched. Later reads verify
  against it, so a file that changes on disk is noticed.
- ``PROVENANCE.local.json`` in the data directory: for files derived from a public origin (no mirror),
  the URL and sha256 of the file they were made from.
- ``<cache dir>/data-hashes.json``: sha256 of files keyed by (absolute path, size, mtime), so listing
  or resolving an unchanged file does not re-hash it. Disposable; a read-only data directory works.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core import settings
from ..core.atomic import atomic_write_text
from ..core.hashing import file_sha256

LOCAL_SUMS = "SHA256SUMS.local"
PROVENANCE = "PROVENANCE.local.json"
HASH_CACHE = "data-hashes.json"


def read_sums(path: Path) -> dict[str, str]:
    """Parse a ``SHA256SUMS`` file into relpath -> sha256 (missing file: empty)."""
    sums: dict[str, str] = {}
    if not path.is_file():
        return sums
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2:
            sums[parts[1].lstrip("*").strip()] = parts[0].lower()
    return sums


def local_sums(data_dir: Path) -> dict[str, str]:
    """Checksums recorded in ``<data_dir>/SHA256SUMS.local``."""
    return read_sums(Path(data_dir) / LOCAL_SUMS)


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / ".sums.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def record_sum(data_dir: Path, relpath: str, sha256: str | None) -> None:
    """Record (or replace) the checksum of ``relpath`` in ``SHA256SUMS.local``; ``None`` removes it."""
    data_dir = Path(data_dir)
    with _locked(data_dir):
        sums = local_sums(data_dir)
        if sha256 is None and relpath not in sums:
            return
        if sha256 is None:
            del sums[relpath]
        else:
            sums[relpath] = sha256
        text = "".join(f"{sha}  {rel}\n" for rel, sha in sorted(sums.items()))
        atomic_write_text(data_dir / LOCAL_SUMS, text)


def expected_sha256(relpath: str, manifest_sha: str | None, recorded: dict[str, str]) -> str | None:
    """The checksum a file must have: the one recorded in ``SHA256SUMS.local`` (a file derived from a
    public origin, or one no manifest knows) wins over the manifest's (the mirror's bytes)."""
    return recorded.get(relpath) or manifest_sha


def provenance(data_dir: Path) -> dict[str, dict[str, Any]]:
    """Where derived files came from: relpath -> {origin, url, fetched_from, download_sha256, derived...}."""
    try:
        doc = json.loads((Path(data_dir) / PROVENANCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def record_provenance(data_dir: Path, entries: dict[str, dict[str, Any] | None]) -> None:
    """Add (or, with ``None``, drop) provenance entries."""
    data_dir = Path(data_dir)
    with _locked(data_dir):
        doc = provenance(data_dir)
        for rel, entry in entries.items():
            if entry is None:
                doc.pop(rel, None)
            else:
                doc[rel] = entry
        atomic_write_text(data_dir / PROVENANCE, json.dumps(doc, indent=1, sort_keys=True) + "\n")


class HashCache:
    """sha256 of files keyed by (path, size, mtime_ns); ``save()`` persists new entries (best effort)."""

    def __init__(self, path: Path | None = None):
        self.path = path or settings.cache_dir() / HASH_CACHE
        self._dirty = False
        try:
            self._entries: dict[str, dict[str, Any]] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self._entries = {}

    def cached(self, path: Path) -> str | None:
        """The cached sha256 of ``path`` if the file is unchanged since it was hashed, else ``None``."""
        try:
            st = Path(path).stat()
        except OSError:
            return None
        e = self._entries.get(str(Path(path).resolve()))
        if e and e.get("size") == st.st_size and e.get("mtime_ns") == st.st_mtime_ns:
            return e.get("sha256")
        return None

    def remember(self, path: Path, sha256: str) -> None:
        """Store the sha256 of ``path`` as it is now on disk."""
        st = Path(path).stat()
        self._entries[str(Path(path).resolve())] = {
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "sha256": sha256,
        }
        self._dirty = True

    def sha256(self, path: Path) -> str:
        """sha256 of ``path``: from the cache when unchanged, else computed and remembered."""
        sha = self.cached(path)
        if sha is None:
            sha = file_sha256(path)
            self.remember(path, sha)
        return sha

    def save(self) -> None:
        """Write the cache if anything changed; an unwritable cache directory is ignored."""
        if not self._dirty:
            return
        try:
            atomic_write_text(self.path, json.dumps(self._entries, sort_keys=True))
            self._dirty = False
        except OSError:
            pass

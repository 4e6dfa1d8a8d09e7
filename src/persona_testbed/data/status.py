"""Checksum status of data files: ``ok``, ``mismatch``, ``missing`` or ``unverified``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from ..core import settings
from .checksums import HashCache, local_sums, provenance
from .manifest import MANIFEST, DataFile
from .origins import CITATIONS, origin_for
from .targets import entry_for, expand_targets

Status = Literal["ok", "mismatch", "missing", "unverified"]


class FileStatus(BaseModel):
    """One file in the data directory as it is now. ``unverified``: present but not hashed (``--no-verify``
    and no fresh cached hash) or no checksum known for it."""

    relpath: str
    group: str
    present: bool
    size: int | None
    expected_size: int | None
    status: Status
    sha256: str | None
    checksum_source: Literal["manifest", "recorded", "none"]
    path: str
    url: str | None
    origin: str | None = None
    """Without a mirror: the official URL, or the public file it is derived from (``package`` for
    tables shipped in the package); ``None`` when only a mirror has it."""
    fetched_from: str | None = None
    """For a file derived from a public origin: the URL it was made from (``PROVENANCE.local.json``)."""
    licence: str = ""
    citation: str = ""


def known_files(
    data_dir: str | os.PathLike[str] | None = None, manifest: Mapping[str, DataFile] = MANIFEST
) -> list[DataFile]:
    """Every file the tool knows: the manifest plus files recorded in the data dir's ``SHA256SUMS.local``."""
    files = dict(manifest)
    for rel in local_sums(settings.data_dir(data_dir)):
        if rel not in files:
            files[rel] = entry_for(rel, manifest) or DataFile(relpath=rel, group="extra")
    return list(files.values())


def verify(
    targets: Iterable[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    hash_files: bool = True,
    manifest: Mapping[str, DataFile] = MANIFEST,
) -> list[FileStatus]:
    """Check data files against their checksums (``targets`` as for ``fetch``; default every known file).

    Hashes are cached by (path, size, mtime), so repeated checks of unchanged files are fast. With
    ``hash_files=False`` only cached hashes and sizes are used (status ``unverified`` otherwise).
    """
    ddir = settings.data_dir(data_dir)
    mirror = bool(os.environ.get("PERSONA_TESTBED_MIRROR"))
    files = (
        known_files(data_dir, manifest)
        if targets is None
        else [f for f, _ in expand_targets(targets, manifest, allow_unknown=True, mirror=mirror)]
    )
    recorded = local_sums(ddir)
    prov = provenance(ddir)
    cache = HashCache()
    out = []
    try:
        for f in files:
            out.append(
                _status(
                    f, ddir / f.relpath, recorded.get(f.relpath), cache, hash_files, prov.get(f.relpath, {})
                )
            )
    finally:
        cache.save()
    return out


def _status(
    f: DataFile, path: Path, recorded: str | None, cache: HashCache, hash_files: bool, prov: dict[str, Any]
) -> FileStatus:
    expected = recorded or f.sha256  # a recorded checksum (derived file, unknown file) wins
    source = "recorded" if recorded else ("manifest" if f.sha256 else "none")
    present = path.is_file()
    size = path.stat().st_size if present else None
    sha = None
    if not present:
        status: Status = "missing"
    else:
        sha = cache.sha256(path) if hash_files else cache.cached(path)
        if expected is None:
            status = "unverified"
        elif source == "manifest" and f.size is not None and size != f.size:
            status = "mismatch"
        elif sha is None:
            status = "unverified"
        else:
            status = "ok" if sha == expected else "mismatch"
    origin = origin_for(f.relpath)
    where = f.url or (origin.url or "package" if origin else None)
    return FileStatus(
        relpath=f.relpath,
        group=f.group,
        present=present,
        size=size,
        expected_size=f.size if source == "manifest" else None,
        status=status,
        sha256=sha,
        checksum_source=source,
        path=str(path),
        url=f.url,
        origin=where,
        fetched_from=prov.get("fetched_from"),
        licence=f.licence or (origin.licence if origin else ""),
        citation=CITATIONS.get(f.group) or (origin.citation if origin else ""),
    )

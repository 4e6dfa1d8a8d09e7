"""``resolve(relpath)``: the path of an input file in the data directory, or a clear fix."""

from __future__ import annotations

import os
from pathlib import Path

from ..core import settings
from ..core.errors import DataMissingError, UserError
from .checksums import HashCache, expected_sha256, local_sums
from .fetcher import fix_command
from .manifest import MANIFEST
from .targets import entry_for, normalize_relpath


def resolve(relpath: str, data_dir: str | os.PathLike[str] | None = None, *, verify: bool = True) -> Path:
    """The file ``relpath`` (e.g. ``census/acs/2018/1-Year/csv_pde.zip``) inside the data directory.

    Raises ``DataMissingError`` naming the file and the ``persona-testbed data fetch`` command that
    brings it. With ``verify`` (default) the file's sha256 is checked against the manifest or the
    recorded checksum (cached by path, size and mtime, so cheap after the first call); a mismatch
    raises ``UserError`` with the re-fetch command.
    """
    rel = normalize_relpath(relpath)
    ddir = settings.data_dir(data_dir)
    path = ddir / rel
    entry = entry_for(rel, MANIFEST)
    if not path.is_file():
        raise DataMissingError(
            f"data file {rel} is missing from {ddir}; fetch it with: {fix_command(rel, entry, data_dir)}"
        )
    if verify:
        expected = expected_sha256(rel, entry.sha256 if entry else None, local_sums(ddir))
        if expected is not None:
            cache = HashCache()
            got = cache.sha256(path)
            cache.save()
            if got != expected:
                raise UserError(
                    f"data file {path} does not match its sha256 (corrupt or changed); "
                    f"re-fetch it with: {fix_command(rel, entry, data_dir)} --force"
                )
    return path

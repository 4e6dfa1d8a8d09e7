"""A run directory: resolved config, manifest, call log, stage artifacts, and a writer lock.

Layout::

    RUN/
      config.toml        resolved configuration
      manifest.json      package version, seed, model ids, data sha256s, stage input hashes
      calls.db           SQLite call log + cache (llm/store.py)
      .lock              held (fcntl) by the process writing this run
      personas/ prompts/ feedback/ bench/ report/   stage artifacts
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.atomic import atomic_write_text
from ..core.errors import UserError


class RunLockedError(UserError):
    pass


class RunDir:
    """Handle on a run directory. Use ``with RunDir(path).locked():`` around any writing."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._lock_fd: int | None = None

    # -- paths ---------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def calls_db(self) -> Path:
        return self.path / "calls.db"

    def stage_dir(self, stage: str) -> Path:
        d = self.path / stage
        d.mkdir(parents=True, exist_ok=True)
        return d

    # -- lock ----------------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[RunDir]:
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            finally:
                os.close(fd)
            # the holder writes its pid right after taking the lock: in that instant it is not there yet
            pid = f"pid {holder}" if holder.isdigit() else "pid not written yet"
            raise RunLockedError(
                f"run directory {self.path} is in use by another persona-testbed process "
                f"({pid}; wait for it to finish or stop it)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd
        try:
            yield self
        finally:
            os.ftruncate(fd, 0)  # no stale pid for the next process to report
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            self._lock_fd = None

    # -- manifest ------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any]:
        if not self.manifest_path.exists():
            return {"package_version": __version__, "stages": {}}
        try:
            return json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"{self.manifest_path}: not valid JSON ({exc.msg})") from None

    def update_manifest(self, **updates: Any) -> dict[str, Any]:
        """Merge top-level keys into the manifest (``stages`` is merged per stage) and write atomically."""
        manifest = self.read_manifest()
        manifest["package_version"] = __version__
        for key, value in updates.items():
            if key == "stages":
                manifest.setdefault("stages", {}).update(value)
            else:
                manifest[key] = value
        atomic_write_text(self.manifest_path, json.dumps(manifest, indent=2, sort_keys=True, default=str))
        return manifest

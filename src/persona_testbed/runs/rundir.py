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
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .. import __version__
from ..errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: permissions of written artifacts: what ``open()`` would give (temp files start private, 0600)
FILE_MODE = 0o666 & ~_umask()


def _temp_next_to(path: Path) -> tuple[int, str]:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, FILE_MODE)
    return fd, tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory + rename (no half files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_next_to(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success rename it over ``path``, on error remove it.

    For writers that want a filename (``polars.DataFrame.write_parquet`` etc.).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_next_to(path)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
    def locked(self) -> Iterator["RunDir"]:
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLockedError(
                f"run directory {self.path} is in use by another persona-testbed process "
                "(wait for it to finish or stop it)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd
        try:
            yield self
        finally:
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

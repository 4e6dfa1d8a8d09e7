"""Atomic file writes: a temp file next to the target, then a rename (readers never see half a file).

A failed write leaves nothing behind: the temp file is removed and the target is untouched. A parent
that is a file surfaces as ``NotADirectoryError`` (``ENOTDIR``) naming the target, which
``core.outputs.os_error_message`` turns into one line.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: permissions of written artifacts: what ``open()`` would give (temp files start private, 0600)
FILE_MODE = 0o666 & ~_umask()
#: permissions of created directories: what ``mkdir`` would give (``mkdtemp`` starts private, 0700)
DIR_MODE = 0o777 & ~_umask()


def make_dirs(path: str | os.PathLike[str]) -> list[Path]:
    """Create directory ``path`` and its missing parents; return the directories created, outermost first.

    Raises ``NotADirectoryError`` (``ENOTDIR``, filename = ``path``) when ``path`` or an ancestor is a file,
    instead of ``mkdir``'s ``FileExistsError`` that names the file but not the problem.
    """
    path = Path(path)
    missing: list[Path] = []
    p = path
    while not p.is_dir():
        if p.exists() or p.is_symlink():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    created: list[Path] = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path)) from None
            continue  # made by someone else meanwhile
        created.append(d)
    return created


def _make_parent(path: Path) -> None:
    """Create the directory ``path`` goes in; a file in the way is reported against ``path`` itself."""
    try:
        make_dirs(path.parent)
    except NotADirectoryError as exc:
        raise NotADirectoryError(exc.errno, exc.strerror, str(path)) from None


def _temp_next_to(path: Path) -> tuple[int, str]:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory + rename (no half files)."""
    path = Path(path)
    _make_parent(path)
    fd, tmp = _temp_next_to(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
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
    _make_parent(path)
    fd, tmp = _temp_next_to(path)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)

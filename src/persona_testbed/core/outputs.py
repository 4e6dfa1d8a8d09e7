"""Outputs that cannot destroy: where a command may write, and how it writes there.

Every directory the tool creates holds a marker file, ``.persona-testbed.json`` (``{"kind", "package_version",
"created"}``). A command only ever replaces or adds to a directory that carries the marker of its own kind
(or, for directories made before markers existed, one a caller-given predicate recognises); anything else
is refused with one line naming the path. Nothing here deletes a directory without that marker.

- ``check_out``: refuse an output that is an input, contains an input, lies inside an input directory,
  contains the working directory, has a file as a parent, or is a foreign non-empty directory.
- ``staged_dir``: build a directory output in a temp sibling (``.<name>.<random>.tmp``), then rename it into
  place; ``force`` replaces only a previous output of the same kind, and only after the new one is in place.
- ``staged_file``: the same checks for a one-file output, written through a temp file + rename.
- ``claim_dir`` / ``release_if_created`` / ``claimed_dir``: for resumable directories written over time
  (a run directory, ``prompts build --out``): create or adopt, and remove again if a failed command created
  it and left nothing but the marker.
- ``os_error_message`` / ``translate_os_errors``: an ``OSError`` as one line, ``<path>: <reason>``.

A failing command leaves nothing behind: no temp siblings, no half files, no parents it created.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from .. import __version__
from .atomic import DIR_MODE, atomic_path, atomic_write_text, make_dirs
from .errors import UserError

#: the marker file written into every directory output the tool creates
MARKER = ".persona-testbed.json"

#: a predicate recognising an output of some kind written before markers existed
Recognise = Callable[[Path], bool]
PathLike = str | os.PathLike[str]
_TEMP_FILE = re.compile(r"^\.(.+)\.[A-Za-z0-9_]+\.tmp$")
#: what ``check_out`` found at the output path
OutState = Literal["absent", "empty", "previous"]

_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied (operation not permitted)",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a parent is a file",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EEXIST: "already exists",
    errno.ENOTEMPTY: "directory not empty",
    errno.EISDIR: "is a directory",
    errno.ENOENT: "no such file or directory",
    errno.EXDEV: "cannot move across file systems",
    errno.EBUSY: "in use (busy)",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links",
    errno.EIO: "input/output error",
}


# -- OS errors as one line -------------------------------------------------------------------------


def _file_ancestor(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` (or ``path`` itself) that is not a directory."""
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            return None if p.is_dir() else p
    return None


def os_error_message(exc: OSError, path: PathLike | None = None) -> str:
    """``<path>: <reason>`` for an ``OSError`` (its own filename, else ``path``; reason in plain words)."""
    name = exc.filename if exc.filename is not None else path
    reason = _REASONS.get(exc.errno or 0) or exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.ENOTDIR and name is not None:
        anc = _file_ancestor(Path(os.fsdecode(name)))
        if anc == Path(os.fsdecode(name)):
            reason = "is a file, not a directory"
        elif anc is not None:
            reason = f"a parent is a file ({anc})"
    if name is None:
        return reason
    return f"{os.fsdecode(name)}: {reason}"


@contextmanager
def translate_os_errors(path: PathLike | None = None) -> Iterator[None]:
    """Turn an ``OSError`` raised inside into ``UserError("<path>: <reason>")`` (``path`` when it names none)."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise UserError(os_error_message(exc, path)) from exc


def _about_out(exc: OSError, out: Path, tmp: Path | None = None) -> UserError:
    """An ``OSError`` met while staging ``out``, reported against ``out``: a path inside the temp directory
    ``tmp`` becomes the same path inside ``out``; a temp sibling (``.<name>.*.tmp``) becomes ``out``; an
    atomic write's temp file (``.<file>.<random>.tmp``) becomes ``<file>``."""
    name = exc.filename
    if name is not None:
        p = Path(os.fsdecode(name))
        stem = _real(out).name
        if tmp is not None and (p == tmp or tmp in p.parents):
            p = out / p.relative_to(tmp) if p != tmp else out
        elif p.name.startswith(f".{stem}.") and p.name.endswith(".tmp"):
            p = out
        m = _TEMP_FILE.match(p.name)  # an atomic write's temp file: name the file it was writing
        exc.filename = str(p.with_name(m.group(1)) if m else p)
    msg = os_error_message(exc, out)
    exc.filename = name
    return UserError(msg)


# -- markers ---------------------------------------------------------------------------------------


def read_marker(path: PathLike) -> dict[str, Any] | None:
    """The marker of directory ``path`` (``None`` when it has none, or an unreadable one)."""
    m = Path(path) / MARKER
    if m.is_symlink() or not m.is_file():
        return None
    try:
        data = json.loads(m.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("kind"), str) else None


def write_marker(path: PathLike, kind: str) -> None:
    """Write the marker of ``kind`` into directory ``path``."""
    created = datetime.now(UTC).isoformat(timespec="seconds")
    atomic_write_text(
        Path(path) / MARKER,
        json.dumps({"kind": kind, "package_version": __version__, "created": created}, sort_keys=True) + "\n",
    )


def marker_kind(path: PathLike) -> str | None:
    """The kind recorded in the marker of ``path``, or ``None``."""
    m = read_marker(path)
    return None if m is None else m["kind"]


# -- checks ----------------------------------------------------------------------------------------


def _real(p: PathLike) -> Path:
    return Path(os.path.realpath(os.fspath(p)))


def _inside(child: Path, parent: Path) -> bool:
    return child != parent and parent in child.parents


def _is_empty(path: Path) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


def _check_inputs(out: Path, inputs: Iterable[PathLike]) -> None:
    real = _real(out)
    for inp in inputs:
        ri = _real(inp)
        if real == ri:
            raise UserError(f"{out}: is the input {inp}; choose another --out")
        if _inside(ri, real):
            raise UserError(f"{out}: contains the input {inp}; choose another --out")
        if _inside(real, ri) and ri.is_dir():
            raise UserError(f"{out}: is inside the input directory {inp}; choose an --out outside it")


def _check_cwd(out: Path) -> None:
    try:
        cwd = Path(os.getcwd())
    except OSError:
        return
    real = _real(out)
    if real == cwd or _inside(cwd, real):
        raise UserError(f"{out}: contains the current directory; choose another --out")


def check_out(
    out: PathLike,
    kind: str,
    *,
    inputs: Iterable[PathLike] = (),
    force: bool = False,
    file: bool = False,
    recognise: Recognise | None = None,
) -> OutState:
    """Check that ``out`` may receive an output of ``kind``; raise ``UserError`` (one line naming it) if not.

    Refused: ``out`` is one of ``inputs``, contains one, or lies inside an input directory; it contains the
    working directory (directory outputs); a parent is a file; for ``file`` outputs, ``out`` is a directory;
    for directory outputs, ``out`` is a file, or a non-empty directory that is not a previous output of
    ``kind`` (marker of ``kind``, or ``recognise(out)`` for outputs made before markers) — and a previous
    output of ``kind`` unless ``force``. Returns what is there: ``"absent"``, ``"empty"`` (an empty directory)
    or ``"previous"`` (a previous output of ``kind``, to be replaced; for files, any existing file).
    """
    out = Path(out)
    _check_inputs(out, inputs)
    if not file:
        _check_cwd(out)
    anc = _file_ancestor(out.parent)
    if anc is not None:
        raise UserError(f"{out}: a parent is a file ({anc})")
    if file:
        if out.is_dir():
            raise UserError(f"{out}: is a directory; {kind} is written to one file")
        return "previous" if out.exists() else "absent"
    if not out.exists():
        if out.is_symlink():
            raise UserError(f"{out}: is a broken symbolic link; choose another --out")
        return "absent"
    if not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory; choose another --out")
    with translate_os_errors(out):
        if _is_empty(out):
            return "empty"
    found = marker_kind(out)
    if found == kind or (found is None and recognise is not None and recognise(out)):
        if not force:
            raise UserError(f"{out}: exists; pass --force to replace the previous {kind} output")
        return "previous"
    if found is not None:
        raise UserError(f"{out}: holds a persona-testbed {found} output, not {kind}; choose another --out")
    if force:
        raise UserError(
            f"{out}: is not empty and was not written by persona-testbed (no {MARKER}); "
            "refusing to replace it, even with --force"
        )
    raise UserError(
        f"{out}: is not empty and was not written by persona-testbed; choose a new or empty --out"
    )


def _removable(tree: Path) -> None:
    """Raise ``PermissionError`` for the first directory in ``tree`` whose entries cannot be removed."""
    for dirpath, dirnames, _ in os.walk(tree):
        if not os.access(dirpath, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), dirpath)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]


def _remove_created(created: list[Path]) -> None:
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            break


# -- writing ---------------------------------------------------------------------------------------


@contextmanager
def staged_dir(
    out: PathLike,
    kind: str,
    *,
    inputs: Iterable[PathLike] = (),
    force: bool = False,
    recognise: Recognise | None = None,
) -> Iterator[Path]:
    """Yield an empty temp sibling of ``out`` to write a directory output of ``kind`` into; then put it in place.

    ``check_out`` first (same arguments). On success the marker is written and the temp directory renamed
    to ``out``; a previous output of ``kind`` (``force``) is renamed aside, the new one renamed into place,
    and only then the old one removed. On any exception the temp sibling (and any parent this call made)
    is removed and the error re-raised; an ``OSError`` becomes ``UserError("<out path>: <reason>")``.
    """
    out = Path(out)
    state = check_out(out, kind, inputs=inputs, force=force, recognise=recognise)
    target = _real(out) if out.is_symlink() else out
    name = _real(out).name
    with translate_os_errors(out):
        if state == "previous":
            _removable(target)
        created = make_dirs(target.parent)
    tmp: Path | None = None
    try:
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=target.parent))
            os.chmod(tmp, DIR_MODE)
        except OSError as exc:
            raise _about_out(exc, out, tmp) from exc
        try:
            yield tmp
            write_marker(tmp, kind)
            _swap(tmp, target, replace=state == "previous", name=name)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _about_out(exc, out, tmp) from exc
    except BaseException:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        _remove_created(created)
        raise


def _swap(tmp: Path, target: Path, *, replace: bool, name: str) -> None:
    """Rename ``tmp`` to ``target``; with ``replace``, move the old ``target`` aside first, remove it last."""
    if not replace:
        os.rename(tmp, target)  # onto nothing, or onto an empty directory (POSIX rename allows that)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old.tmp", dir=target.parent))
    try:
        os.rename(target, aside / "old")
    except BaseException:
        aside.rmdir()
        raise
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(aside / "old", target)  # put the previous output back
        aside.rmdir()
        raise
    try:
        shutil.rmtree(aside)  # the previous output of the same kind, now replaced
    except OSError as exc:
        raise UserError(
            f"{target}: written, but the previous output moved to {aside} could not be "
            f"removed: {os_error_message(exc)}"
        ) from exc


@contextmanager
def staged_file(out: PathLike, kind: str = "output", *, inputs: Iterable[PathLike] = ()) -> Iterator[Path]:
    """Yield a temp path next to ``out`` for a one-file output; on success rename it over ``out``.

    ``check_out(file=True)`` first: ``out`` may not be a directory, an input, inside an input directory,
    or below a file. An existing file at ``out`` is replaced (as any file-writing tool does). On error the
    temp file and any parent this call made are removed; an ``OSError`` becomes ``UserError`` naming ``out``.
    """
    out = Path(out)
    check_out(out, kind, inputs=inputs, file=True)
    with translate_os_errors(out):
        created = make_dirs(out.parent)
    try:
        with atomic_path(out) as tmp:
            yield tmp
    except BrokenPipeError:
        _remove_created(created)
        raise
    except OSError as exc:
        _remove_created(created)
        raise _about_out(exc, out) from exc
    except BaseException:
        _remove_created(created)
        raise


# -- resumable directories -------------------------------------------------------------------------


def claim_dir(
    out: PathLike, kind: str, *, inputs: Iterable[PathLike] = (), recognise: Recognise | None = None
) -> bool:
    """Make ``out`` a directory of ``kind`` that a resumable command writes into over time.

    Creates it (with its marker) when missing and returns ``True``. Accepts, returning ``False``, a
    directory with the marker of ``kind``, an empty one, or one ``recognise(out)`` identifies as an earlier
    output of ``kind`` made before markers (e.g. a run directory holding manifest.json + config.toml); the
    last two get the marker. Refuses with one line: an input, a path containing an input or inside an
    input directory, a file, a parent that is a file, another kind's output, or any other non-empty directory.
    """
    return bool(_claim(Path(out), kind, inputs, recognise))


def _claim(out: Path, kind: str, inputs: Iterable[PathLike], recognise: Recognise | None) -> list[Path]:
    """``claim_dir``; returns the directories it created (``out`` and missing parents), outermost first."""
    _check_inputs(out, inputs)  # no _check_cwd: adding to the working directory replaces nothing
    anc = _file_ancestor(out.parent)
    if anc is not None:
        raise UserError(f"{out}: a parent is a file ({anc})")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory; choose another --out")
    with translate_os_errors(out):
        if not out.exists():
            created = make_dirs(out)
            try:
                write_marker(out, kind)
            except BaseException:
                _remove_created(created)
                raise
            return created
        found = marker_kind(out)
        if found == kind:
            return []
        if found is not None:
            raise UserError(
                f"{out}: holds a persona-testbed {found} output, not {kind}; choose another --out"
            )
        if _is_empty(out) or (recognise is not None and recognise(out)):
            write_marker(out, kind)
            return []
    raise UserError(
        f"{out}: is not empty and is not a persona-testbed {kind} directory (no {MARKER}); "
        "choose a new or empty --out"
    )


def release_if_created(path: PathLike, created: bool) -> bool:
    """Remove ``path`` if ``claim_dir`` ``created`` it and it holds nothing but the marker; True if removed.

    For a command that failed before writing anything worth resuming. Never removes anything else.
    """
    p = Path(path)
    if not created or not p.is_dir() or p.is_symlink():
        return False
    try:
        names = os.listdir(p)
        if any(n != MARKER for n in names):
            return False
        if names:
            (p / MARKER).unlink()
        p.rmdir()
    except OSError:
        return False
    return True


@contextmanager
def claimed_dir(
    out: PathLike, kind: str, *, inputs: Iterable[PathLike] = (), recognise: Recognise | None = None
) -> Iterator[Path]:
    """``claim_dir`` as a context manager: yields ``out``; on an exception, removes ``out`` if this call
    created it and it still holds nothing but the marker (``release_if_created``), then the parents this
    call created if they are empty, and re-raises."""
    out = Path(out)
    created = _claim(out, kind, inputs, recognise)
    try:
        yield out
    except BaseException:
        if release_if_created(out, bool(created)):
            _remove_created(created[:-1])
        raise


__all__ = [
    "MARKER",
    "OutState",
    "Recognise",
    "check_out",
    "claim_dir",
    "claimed_dir",
    "marker_kind",
    "os_error_message",
    "read_marker",
    "release_if_created",
    "staged_dir",
    "staged_file",
    "translate_os_errors",
    "write_marker",
]

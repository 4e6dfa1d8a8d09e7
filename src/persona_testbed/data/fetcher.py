"""Fetch data files into the data directory: copy from a mirror, or download from the official URL.

A mirror is a directory laid out like the data directory (``../shared/data``, an NFS share on an
air-gapped cluster) or an ``http(s)://`` URL with the same layout. Without one, files with an official
URL are downloaded; files without one can only come from a mirror and fail with a message saying so.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterable, Iterator, Literal, Mapping

import httpx
from pydantic import BaseModel
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)

from ..core import settings
from ..core.errors import UserError
from ..core.output import err_console
from .census_urls import rebase_census_url
from .checksums import HashCache, local_sums, read_sums, record_sum
from .download import DownloadError, copy_verified, download
from .manifest import MANIFEST, DataFile
from .targets import expand

ENV_MIRROR = "PERSONA_TESTBED_MIRROR"
MIRROR_ONLY = "mirror only (no URL)"


class FetchResult(BaseModel):
    """What happened to one file: ``present`` (already there, checksum ok), ``copied``, ``downloaded``,
    or ``failed`` (``error`` says why)."""

    relpath: str
    group: str
    status: Literal["present", "copied", "downloaded", "failed"]
    source: str = ""
    size: int | None = None
    sha256: str | None = None
    checksum: Literal["manifest", "mirror", "recorded", "none"] = "none"
    error: str | None = None
    note: str = ""


class FetchFailed(UserError):
    """Some files could not be fetched; ``results`` holds every file's outcome."""

    def __init__(self, message: str, results: list[FetchResult]):
        super().__init__(message)
        self.results = results


def mirror_location(mirror: str | os.PathLike[str] | None) -> str | None:
    """The mirror to use: the argument, else ``$PERSONA_TESTBED_MIRROR``, else ``None``."""
    value = str(mirror) if mirror else os.environ.get(ENV_MIRROR)
    return value or None


def fix_command(relpath: str, entry: DataFile | None, data_dir: str | os.PathLike[str] | None) -> str:
    """The ``persona-testbed data fetch`` command that brings ``relpath`` into the data directory."""
    cmd = f"persona-testbed data fetch {relpath}"
    if data_dir is not None:
        cmd += f" --data-dir {data_dir}"
    if (entry is None or entry.url is None) and not os.environ.get(ENV_MIRROR):
        cmd += " --mirror DIR"
    return cmd


def fetch(targets: Iterable[str] = ("all",), mirror: str | os.PathLike[str] | None = None,
          data_dir: str | os.PathLike[str] | None = None, *, force: bool = False,
          manifest: Mapping[str, DataFile] = MANIFEST, retries: int = 4, backoff: float = 0.5,
          show_progress: bool = True, strict: bool = True,
          client: httpx.Client | None = None) -> list[FetchResult]:
    """Bring ``targets`` (``all``, groups, relpaths, ``pums:`` targets) into the data directory.

    From ``mirror`` (a directory or http(s) URL; default ``$PERSONA_TESTBED_MIRROR``) files are copied,
    otherwise downloaded from their official URL. Checksums are verified (manifest, else the mirror's
    ``SHA256SUMS``); a file with no known checksum gets its sha256 recorded in ``SHA256SUMS.local``.
    Files already present with a good checksum are skipped unless ``force``. Every file ends as a
    result; with ``strict`` any failure raises ``FetchFailed`` (a ``UserError``) after all were tried.
    """
    ddir = settings.data_dir(data_dir)
    where = mirror_location(mirror)
    mirror_is_url = bool(where and where.startswith(("http://", "https://")))
    if where and not mirror_is_url and not Path(where).is_dir():
        raise UserError(f"mirror directory {where} does not exist")
    files = expand(targets, manifest, allow_unknown=where is not None)
    mirror_sums = read_sums(Path(where) / "SHA256SUMS") if where and not mirror_is_url else {}
    recorded = local_sums(ddir)
    cache = HashCache()
    own_client = client is None
    if own_client:
        client = httpx.Client(follow_redirects=True, timeout=httpx.Timeout(60.0, connect=15.0),
                              headers={"User-Agent": "persona-testbed"})
    progress = _progress() if show_progress and err_console.is_terminal else None
    results: list[FetchResult] = []
    try:
        with _fetch_lock(ddir), progress or nullcontext():
            for f in files:
                results.append(_fetch_one(
                    f, ddir, where, mirror_is_url, mirror_sums, recorded, cache, force=force,
                    client=client, retries=retries, backoff=backoff, progress=progress,
                    explicit_dir=data_dir))
    finally:
        cache.save()
        if own_client:
            client.close()
    failed = [r for r in results if r.status == "failed"]
    if strict and failed:
        raise FetchFailed(_summary(results, failed), results)
    return results


def _fetch_one(f: DataFile, ddir: Path, where: str | None, mirror_is_url: bool,
               mirror_sums: dict[str, str], recorded: dict[str, str], cache: HashCache, *,
               force: bool, client: httpx.Client, retries: int, backoff: float,
               progress: Progress | None, explicit_dir) -> FetchResult:
    dest = ddir / f.relpath
    base = dict(relpath=f.relpath, group=f.group)
    if f.sha256:
        expected, kind = f.sha256, "manifest"
    elif f.relpath in mirror_sums:
        expected, kind = mirror_sums[f.relpath], "mirror"
    else:
        expected, kind = None, "none"
    if dest.is_file() and not force:
        have = cache.sha256(dest)
        want = expected or recorded.get(f.relpath)
        if want is None or have == want:
            return FetchResult(**base, status="present", source=str(dest), size=dest.stat().st_size,
                               sha256=have, checksum="recorded" if kind == "none" and want else kind)
    cb, done = _task(progress, f.relpath)
    try:
        if where and not mirror_is_url:
            src = Path(where) / f.relpath
            if not src.is_file():
                raise DownloadError(f"{f.relpath} is not in mirror {where} (expected {src})", "not in mirror")
            sha = copy_verified(src, dest, label=f.relpath, sha256=expected,
                                progress=cb)
            status, source = "copied", str(src)
        else:
            url = f"{where.rstrip('/')}/{f.relpath}" if where else (
                rebase_census_url(f.url) if f.url else None)
            if url is None:
                raise DownloadError(f"{f.relpath} has no official download URL (it is distributed only via "
                                    f"a data mirror): run {fix_command(f.relpath, f, explicit_dir)} "
                                    f"or set {ENV_MIRROR}", MIRROR_ONLY)
            sha = download(url, dest, label=f.relpath, sha256=expected, size=f.size if expected else None,
                           client=client, retries=retries, backoff=backoff,
                           progress=cb)
            status, source = "downloaded", url
    except DownloadError as exc:
        return FetchResult(**base, status="failed", error=str(exc), note=exc.short)
    except UserError as exc:
        return FetchResult(**base, status="failed", error=str(exc), note="error")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return FetchResult(**base, status="failed", error=f"download of {f.relpath} failed: {exc}",
                           note="bad URL or protocol")
    except OSError as exc:
        return FetchResult(**base, status="failed", error=f"{f.relpath}: {exc.strerror or exc}",
                           note=exc.strerror or "I/O error")
    finally:
        done()
    cache.remember(dest, sha)
    if not f.sha256:  # no manifest checksum: record it so later reads verify the file
        record_sum(ddir, f.relpath, sha)
        kind = "mirror" if kind == "mirror" else "recorded"
    return FetchResult(**base, status=status, source=source, size=dest.stat().st_size, sha256=sha,
                       checksum=kind)


@contextmanager
def _fetch_lock(ddir: Path) -> Iterator[None]:
    """One fetch per data directory at a time (two writers would share ``.part`` files)."""
    try:
        ddir.mkdir(parents=True, exist_ok=True)
        fd = os.open(ddir / ".fetch.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # read-only data directory: nothing can be written anyway
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another `persona-testbed data fetch` is writing to {ddir}; "
                            "wait for it to finish") from None
        yield
    finally:
        os.close(fd)


def _summary(results: list[FetchResult], failed: list[FetchResult]) -> str:
    """One line: the single error, or counts with the first real error and the mirror-only count."""
    if len(results) == 1:
        return failed[0].error or "failed"
    mirror_only = [r for r in failed if r.note == MIRROR_ONLY]
    other = [r for r in failed if r.note != MIRROR_ONLY]
    parts = [f"{len(failed)} of {len(results)} files could not be fetched"]
    if other:
        parts.append(f"first error: {other[0].error}")
    if mirror_only:
        parts.append(f"{len(mirror_only)} have no official download URL and come only from a data mirror "
                     f"(add --mirror DIR or set {ENV_MIRROR})")
    return "; ".join(parts)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}", style="cyan"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=err_console, transient=True)


def _task(progress: Progress | None, label: str):
    """A progress callback bound to a new task (or ``None``), and a function removing the task."""
    if progress is None:
        return None, lambda: None
    task = progress.add_task(label, total=None)

    def update(advance: int, total: int | None, reset: int | None) -> None:
        if reset is not None:
            progress.update(task, total=total, completed=reset)
        if advance:
            progress.advance(task, advance)

    return update, lambda: progress.remove_task(task)

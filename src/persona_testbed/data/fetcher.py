"""Fetch data files into the data directory: copy from a mirror, or bring them from their public origin.

A mirror is a directory laid out like the data directory (``../shared/data``, an NFS share on an
air-gapped cluster) or an ``http(s)://`` URL with the same layout. Without one, files with an official
URL are downloaded and files without one are derived from their public origin (``origins.py``); a file
with neither comes only from a mirror and fails with a message saying so (or, swept in by ``all`` or a
group, is skipped).
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ..core import settings
from ..core.errors import UserError
from ..core.hashing import file_sha256
from ..core.output import err_console
from .checksums import HashCache, expected_sha256, local_sums, read_sums, record_provenance, record_sum
from .derive import (
    ContentError,
    derive_dictionary,
    derive_gss,
    derive_package,
    derive_prism,
    derive_pums,
    pums_output,
)
from .download import DownloadError, ProgressFn, copy_verified, download
from .manifest import MANIFEST, DataFile
from .origins import DOWNLOADS, Origin, origin_for, rebase_url
from .targets import entry_for, expand_targets

ENV_MIRROR = "PERSONA_TESTBED_MIRROR"
MIRROR_ONLY = "mirror only (no URL)"


class FetchResult(BaseModel):
    """What happened to one file: ``present`` (already there, checksum ok), ``copied`` (from a mirror),
    ``downloaded`` (official URL), ``derived`` (made from a public origin's file or the package tables),
    ``skipped`` (swept in by ``all`` / a group, but only a mirror has it) or ``failed`` (``error`` says why)."""

    relpath: str
    group: str
    status: Literal["present", "copied", "downloaded", "derived", "skipped", "failed"]
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
    public = entry is not None and entry.url is not None or origin_for(relpath) is not None
    if not public and not os.environ.get(ENV_MIRROR):
        cmd += " --mirror DIR"
    return cmd


@dataclass
class _Ctx:
    """What every file of one fetch shares."""

    ddir: Path
    where: str | None
    mirror_is_url: bool
    mirror_sums: dict[str, str]
    recorded: dict[str, str]
    cache: HashCache
    manifest: Mapping[str, DataFile]
    force: bool
    client: httpx.Client
    retries: int
    backoff: float
    progress: Progress | None
    explicit_dir: str | os.PathLike[str] | None


def fetch(
    targets: Iterable[str] = ("all",),
    mirror: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    states: Iterable[str | int] | None = None,
    manifest: Mapping[str, DataFile] = MANIFEST,
    retries: int = 4,
    backoff: float = 0.5,
    show_progress: bool = True,
    strict: bool = True,
    client: httpx.Client | None = None,
) -> list[FetchResult]:
    """Bring ``targets`` (``all``, ``quickstart``, groups, relpaths, ``pums:`` targets) into the data directory.

    From ``mirror`` (a directory or http(s) URL; default ``$PERSONA_TESTBED_MIRROR``) files are copied.
    Without one, files with an official URL are downloaded and the others are derived from their public
    origin (``origins.py``: official Census zips, the PRISM dataset, NORC's GSS file, package tables).
    Checksums are verified (manifest, else the mirror's ``SHA256SUMS``); a file with no known checksum
    (or derived from an origin) gets its sha256 recorded in ``SHA256SUMS.local``. Files already present
    with a good checksum are skipped unless ``force``. ``states`` limits the census files of groups,
    ``all`` and ``quickstart`` to those states. Every file ends as a result; with ``strict`` any failure
    raises ``FetchFailed`` (a ``UserError``) after all were tried.
    """
    ddir = settings.data_dir(data_dir)
    where = mirror_location(mirror)
    mirror_is_url = bool(where and where.startswith(("http://", "https://")))
    if where and not mirror_is_url and not Path(where).is_dir():
        raise UserError(f"mirror directory {where} does not exist")
    planned = expand_targets(
        targets, manifest, allow_unknown=where is not None, mirror=where is not None, states=states
    )
    own_client = client is None
    if own_client:
        client = httpx.Client(
            follow_redirects=True,
            timeout=httpx.Timeout(60.0, connect=15.0),
            headers={"User-Agent": "persona-testbed"},
        )
    ctx = _Ctx(
        ddir=ddir,
        where=where,
        mirror_is_url=mirror_is_url,
        mirror_sums=read_sums(Path(where) / "SHA256SUMS") if where and not mirror_is_url else {},
        recorded=local_sums(ddir),
        cache=HashCache(),
        manifest=manifest,
        force=force,
        client=client,  # type: ignore[arg-type]
        retries=retries,
        backoff=backoff,
        progress=_progress() if show_progress and err_console.is_terminal else None,
        explicit_dir=data_dir,
    )
    # without a mirror, files with no URL of their own come from their origin, one job per origin
    jobs: dict[str, tuple[Origin | None, list[tuple[DataFile, bool]]]] = {}
    for f, explicit in planned:
        origin = None if where else origin_for(f.relpath)
        if origin is not None and f.url and origin.kind != "dictionary":
            origin = None  # an official URL of its own: downloaded and checked as it is
        key = f"origin:{origin.key}" if origin else f"file:{f.relpath}"
        jobs.setdefault(key, (origin, []))[1].append((f, explicit))
    results: list[FetchResult] = []
    try:
        with _fetch_lock(ddir), ctx.progress or nullcontext():
            for origin, files in jobs.values():
                if origin is None:
                    results.append(_fetch_one(*files[0], ctx))
                else:
                    results.extend(_fetch_origin(origin, [f for f, _ in files], ctx))
    finally:
        ctx.cache.save()
        if own_client:
            client.close()  # type: ignore[union-attr]
    failed = [r for r in results if r.status == "failed"]
    if strict and failed:
        raise FetchFailed(_summary(results, failed), results)
    if strict and results and all(r.status == "skipped" for r in results):
        raise FetchFailed(
            f"{len(results)} file{'s' if len(results) > 1 else ''} requested, none with a public "
            f"origin: they come only from a data mirror (add --mirror DIR or set {ENV_MIRROR})",
            results,
        )
    return results


def _present(f: DataFile, dest: Path, ctx: _Ctx, mirror_sha: str | None = None) -> FetchResult | None:
    """A ``present`` result when ``dest`` exists with the checksum it must have (and no ``--force``)."""
    if ctx.force or not dest.is_file():
        return None
    have = ctx.cache.sha256(dest)
    recorded = ctx.recorded.get(f.relpath)
    want = expected_sha256(f.relpath, f.sha256 or mirror_sha, ctx.recorded)
    if want is not None and have != want:
        return None
    kind = (
        "recorded"
        if recorded and want == recorded
        else "manifest"
        if f.sha256
        else "mirror"
        if mirror_sha
        else "none"
    )
    return FetchResult(
        relpath=f.relpath,
        group=f.group,
        status="present",
        source=str(dest),
        size=dest.stat().st_size,
        sha256=have,
        checksum=kind,
    )


def _fetch_one(f: DataFile, explicit: bool, ctx: _Ctx) -> FetchResult:
    dest = ctx.ddir / f.relpath
    base = dict(relpath=f.relpath, group=f.group)
    if f.sha256:
        expected, kind = f.sha256, "manifest"
    elif f.relpath in ctx.mirror_sums:
        expected, kind = ctx.mirror_sums[f.relpath], "mirror"
    else:
        expected, kind = None, "none"
    present = _present(f, dest, ctx, ctx.mirror_sums.get(f.relpath))
    if present is not None:
        return present
    where = ctx.where
    if not where and f.url is None and not explicit:
        return FetchResult(**base, status="skipped", note=MIRROR_ONLY)
    cb, done = _task(ctx.progress, f.relpath)
    try:
        if where and not ctx.mirror_is_url:
            src = Path(where) / f.relpath
            if not src.is_file():
                raise DownloadError(f"{f.relpath} is not in mirror {where} (expected {src})", "not in mirror")
            sha = copy_verified(src, dest, label=f.relpath, sha256=expected, progress=cb)
            status, source = "copied", str(src)
        else:
            url = f"{where.rstrip('/')}/{f.relpath}" if where else (rebase_url(f.url) if f.url else None)
            if url is None:
                raise DownloadError(
                    f"{f.relpath} has no official download URL (it is distributed only via "
                    f"a data mirror): run {fix_command(f.relpath, f, ctx.explicit_dir)} "
                    f"or set {ENV_MIRROR}",
                    MIRROR_ONLY,
                )
            sha = download(
                url,
                dest,
                label=f.relpath,
                sha256=expected,
                size=f.size if expected else None,
                client=ctx.client,
                retries=ctx.retries,
                backoff=ctx.backoff,
                progress=cb,
            )
            status, source = "downloaded", url
    except (DownloadError, UserError, httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        return FetchResult(**base, status="failed", **_failure(exc, f.relpath))
    finally:
        done()
    ctx.cache.remember(dest, sha)
    if f.sha256:  # the manifest's bytes now: a checksum recorded for a derived copy no longer applies
        _forget(ctx, f.relpath)
    else:  # no manifest checksum: record it so later reads verify the file
        record_sum(ctx.ddir, f.relpath, sha)
        ctx.recorded[f.relpath] = sha
        kind = "mirror" if kind == "mirror" else "recorded"
    return FetchResult(
        **base, status=status, source=source, size=dest.stat().st_size, sha256=sha, checksum=kind
    )


def _fetch_origin(origin: Origin, files: list[DataFile], ctx: _Ctx) -> list[FetchResult]:
    """Download an origin's public file once, derive its outputs, move them into place, record them.

    A download that is not the expected content (HTML page, damaged or foreign file) is discarded; one
    interrupted or derived from without success for another reason (disk full...) is kept for the next run.
    """
    entries = {f.relpath: f for f in files}
    for rel in origin.outputs:  # an origin writes all its outputs (the GSS file makes two)
        entries.setdefault(rel, entry_for(rel, ctx.manifest) or DataFile(relpath=rel, group=origin.key))
    present = {rel: _present(f, ctx.ddir / rel, ctx) for rel, f in entries.items()}
    if all(r is not None for r in present.values()):
        return [r for r in present.values() if r is not None]
    url = rebase_url(origin.url) if origin.url else None
    raw = ctx.ddir / origin.download_relpath if origin.download_relpath else None
    label = f"{Path(urlsplit(origin.url).path).name} from {url}" if origin.url else "package tables"
    work = ctx.ddir / DOWNLOADS / f".work-{origin.key}"  # one fetch per data dir (the lock)
    cb, done = _task(ctx.progress, raw.name if raw else origin.key)
    try:
        raw_sha = None
        if raw is not None and url is not None:
            if ctx.force or not raw.is_file():
                raw_sha = download(
                    url,
                    raw,
                    label=raw.name,
                    client=ctx.client,
                    retries=ctx.retries,
                    backoff=ctx.backoff,
                    progress=cb,
                )
            else:  # downloaded by an earlier run whose derivation did not finish
                raw_sha = ctx.cache.sha256(raw)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        outs = {rel: work / f"out-{i}{Path(rel).suffix}" for i, rel in enumerate(origin.outputs)}
        _derive(origin, raw, outs, label, work)
        results = _install(origin, entries, outs, url, raw_sha, ctx)
    except ContentError as exc:  # not the data the origin serves: discard it, the next run downloads again
        if raw is not None:
            _discard(raw, ctx.ddir / DOWNLOADS)
        return [
            FetchResult(
                relpath=rel, group=f.group, status="failed", error=str(exc), note="not the expected data"
            )
            for rel, f in entries.items()
        ]
    except (DownloadError, UserError, httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        return [
            FetchResult(relpath=rel, group=f.group, status="failed", **_failure(exc, rel))
            for rel, f in entries.items()
        ]
    finally:
        done()
        shutil.rmtree(work, ignore_errors=True)
    if raw is not None:
        _discard(raw, ctx.ddir / DOWNLOADS)
    return results


def _install(
    origin: Origin,
    entries: dict[str, DataFile],
    outs: dict[str, Path],
    url: str | None,
    raw_sha: str | None,
    ctx: _Ctx,
) -> list[FetchResult]:
    """Move derived files into place (each atomically) and record their checksums and provenance."""
    results = []
    for rel, tmp in outs.items():
        dest = ctx.ddir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
        sha = file_sha256(dest)
        ctx.cache.remember(dest, sha)
        f = entries[rel]
        if f.sha256 == sha:  # byte for byte the mirror's file: the manifest checksum applies
            _forget(ctx, rel)
            kind = "manifest"
        else:
            record_sum(ctx.ddir, rel, sha)
            ctx.recorded[rel] = sha
            kind = "recorded"
        results.append(
            FetchResult(
                relpath=rel,
                group=f.group,
                status="derived",
                source=url or "package",
                size=dest.stat().st_size,
                sha256=sha,
                checksum=kind,
                note=f"from {Path(urlsplit(origin.url).path).name}" if origin.url else "package tables",
            )
        )
    when = datetime.now(UTC).isoformat(timespec="seconds")
    record_provenance(
        ctx.ddir,
        {
            r.relpath: {
                "origin": origin.key,
                "url": origin.url,
                "fetched_from": url,
                "download_sha256": raw_sha,
                "licence": origin.licence,
                "citation": origin.citation,
                "derived": when,
            }
            for r in results
        },
    )
    return results


def _discard(raw: Path, top: Path) -> None:
    """Delete a raw download and the folders it leaves empty below ``top``."""
    raw.unlink(missing_ok=True)
    for parent in raw.parents:
        if parent == top or top not in parent.parents:
            break
        try:
            parent.rmdir()
        except OSError:
            break


def _derive(origin: Origin, raw: Path | None, outs: dict[str, Path], label: str, work: Path) -> None:
    if origin.kind == "package":
        derive_package(outs)
    elif origin.kind == "dictionary":
        [out] = outs.values()
        derive_dictionary(raw, out, label=label)  # type: ignore[arg-type]
    elif origin.kind == "prism":
        [out] = outs.values()
        derive_prism(raw, out, label=label)  # type: ignore[arg-type]
    elif origin.kind == "gss":
        derive_gss(raw, outs, label=label, work=work)  # type: ignore[arg-type]
    else:
        [(rel, out)] = outs.items()
        year, kind, fips = pums_output(rel)
        derive_pums(raw, out, kind=kind, fips=fips, year=year, label=label, work=work)  # type: ignore[arg-type]


def _forget(ctx: _Ctx, relpath: str) -> None:
    if relpath in ctx.recorded:
        record_sum(ctx.ddir, relpath, None)
        record_provenance(ctx.ddir, {relpath: None})
        del ctx.recorded[relpath]


def _failure(exc: BaseException, relpath: str) -> dict[str, str]:
    """``error`` and ``note`` of a failed result."""
    if isinstance(exc, DownloadError):
        return dict(error=str(exc), note=exc.short)
    if isinstance(exc, UserError):
        return dict(error=str(exc), note="error")
    if isinstance(exc, (httpx.HTTPError, httpx.InvalidURL)):
        return dict(error=f"download of {relpath} failed: {exc}", note="bad URL or protocol")
    text = getattr(exc, "strerror", None) or str(exc)
    return dict(error=f"{relpath}: {text}", note=text or "I/O error")


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
            raise UserError(
                f"another `persona-testbed data fetch` is writing to {ddir}; wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)


def _summary(results: list[FetchResult], failed: list[FetchResult]) -> str:
    """One line: the single error, or counts with the first real error and the mirror-only count."""
    if len(results) == 1 or (len(failed) == len(results) and len({r.error for r in failed}) == 1):
        return failed[0].error or "failed"
    mirror_only = [r for r in failed if r.note == MIRROR_ONLY]
    other = [r for r in failed if r.note != MIRROR_ONLY]
    parts = [f"{len(failed)} of {len(results)} files could not be fetched"]
    if other:
        parts.append(f"first error: {other[0].error}")
    if mirror_only:
        parts.append(
            f"{len(mirror_only)} have no official download URL and come only from a data mirror "
            f"(add --mirror DIR or set {ENV_MIRROR})"
        )
    return "; ".join(parts)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}", style="cyan"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


def _task(progress: Progress | None, label: str) -> tuple[ProgressFn | None, Callable[[], None]]:
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

"""Resumable HTTP download into ``<dest>.part``, verified, then renamed into place.

- A ``.part`` left by an interrupted download is resumed with ``Range: bytes=N-``; a server that
  ignores Range (answers 200) restarts the file from byte 0.
- Connection errors, timeouts, a body cut short, 429 and 5xx are retried with exponential backoff
  (``Retry-After`` honoured, capped); an attempt that added bytes does not count against the limit.
- A checksum mismatch deletes the ``.part``: nothing of the bad file stays in the data directory.
  Other failures keep the ``.part`` so the next run resumes.
- An HTML page where a data file was expected (a captive portal, a login or error page answering 200)
  is refused before anything is written; an empty answer (some CDNs answer 204) is retried.
- A server that advertises the file's sha256 (Hugging Face: ``X-Linked-Etag`` on the redirect to the
  storage) is checked against it when no checksum is known in advance.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from ..core.errors import UserError
from ..core.hashing import file_sha256

RETRY_STATUS = {204, 408, 425, 429, 500, 502, 503, 504}
HTML_STARTS = (b"<!doctype html", b"<html", b"<head")
_SHA256 = re.compile(r'^(?:W/)?"?([0-9a-f]{64})"?$', re.IGNORECASE)

# progress(advance_bytes, total_bytes_or_None, reset_to_bytes_or_None)
ProgressFn = Callable[[int, "int | None", "int | None"], None]


class DownloadError(UserError):
    """A download or copy failed; ``short`` is a few words for tables (the message is the full line)."""

    def __init__(self, message: str, short: str):
        super().__init__(message)
        self.short = short


class _Transient(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def part_path(dest: Path) -> Path:
    """Where the bytes of an unfinished download of ``dest`` are kept."""
    return dest.with_name(dest.name + ".part")


def download(
    url: str,
    dest: Path,
    *,
    label: str,
    sha256: str | None = None,
    size: int | None = None,
    client: httpx.Client,
    retries: int = 4,
    backoff: float = 0.5,
    progress: ProgressFn | None = None,
) -> str:
    """Download ``url`` to ``dest`` (resuming, retrying, verifying ``sha256`` if given); return its sha256.

    Raises ``UserError`` with one line naming ``label`` and ``url`` on a checksum mismatch, an HTTP
    error, or when the retries are used up.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    failures = 0
    advertised = None
    while True:
        before = part.stat().st_size if part.exists() else 0
        try:
            advertised = _attempt(url, part, label=label, size=size, client=client, progress=progress)
            break
        except (httpx.TransportError, _Transient) as exc:
            after = part.stat().st_size if part.exists() else 0
            failures = 0 if after > before else failures + 1
            if failures > retries:
                raise DownloadError(
                    f"download of {label} from {url} failed after {retries + 1} attempts: "
                    f"{_describe(exc)} (run the command again to resume)",
                    f"network: {_describe(exc)[:40]}",
                ) from None
            wait = backoff * 2 ** max(failures - 1, 0)
            if isinstance(exc, _Transient) and exc.retry_after is not None:
                wait = max(wait, min(exc.retry_after, 60.0))
            time.sleep(wait)
    if not part.exists() or part.stat().st_size == 0:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"download of {label} from {url} returned an empty file; nothing was saved", "empty file"
        )
    got = file_sha256(part)
    want, whose = (sha256, "expected") if sha256 is not None else (advertised, "the server advertised")
    if want is not None and got != want.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"checksum mismatch for {label} downloaded from {url}: {whose} sha256 "
            f"{want[:12]}…, got {got[:12]}…; the file was discarded",
            "checksum mismatch",
        )
    os.replace(part, dest)
    return got


def _advertised_sha256(r: httpx.Response) -> str | None:
    """The sha256 a server vouches for (``X-Linked-Etag`` on this response or a redirect before it)."""
    for resp in (*r.history, r):
        m = _SHA256.match(resp.headers.get("x-linked-etag", "").strip())
        if m:
            return m.group(1).lower()
    return None


def _attempt(
    url: str, part: Path, *, label: str, size: int | None, client: httpx.Client, progress: ProgressFn | None
) -> str | None:
    """One GET into ``part`` (resuming); returns the sha256 the server advertised, if any."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with client.stream("GET", url, headers=headers) as r:
        if r.status_code == 416 and offset:
            total = _content_range_total(r.headers.get("content-range", ""))
            if total is not None and total == offset and (size is None or size == offset):
                return _advertised_sha256(r)  # the .part is already complete
            part.unlink()
            raise _Transient("stale partial file (HTTP 416); restarting")
        if r.status_code in RETRY_STATUS:
            what = "HTTP 204 (empty answer)" if r.status_code == 204 else f"HTTP {r.status_code}"
            raise _Transient(what, _retry_after(r.headers.get("retry-after")))
        if r.status_code >= 400:
            raise DownloadError(
                f"download of {label} failed: HTTP {r.status_code} from {url}", f"HTTP {r.status_code}"
            )
        if "text/html" in r.headers.get("content-type", "").lower() and not label.lower().endswith(
            (".html", ".htm")
        ):
            raise _html_error(label, url)
        if r.status_code == 206:
            start = _content_range_start(r.headers.get("content-range", ""))
            if start != offset:
                part.unlink()
                raise _Transient(f"server resumed at byte {start}, not {offset}; restarting")
            mode = "ab"
        else:  # 200: full body (a server that ignores Range restarts the file)
            mode, offset = "wb", 0
        length = r.headers.get("content-length")
        total = offset + int(length) if length and length.isdigit() else size
        if progress:
            progress(0, total, offset)
        chunks = r.iter_bytes()  # pieces as they arrive: a dropped connection loses none
        first = next(chunks, b"")
        if (
            offset == 0
            and first.lstrip(b"\xef\xbb\xbf \t\r\n").lower().startswith(HTML_STARTS)
            and not label.lower().endswith((".html", ".htm"))
        ):
            raise _html_error(label, url)
        with open(part, mode) as f:
            for chunk in _chain(first, chunks):
                f.write(chunk)
                if progress:
                    progress(len(chunk), None, None)
        return _advertised_sha256(r)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _html_error(label: str, url: str) -> DownloadError:
    return DownloadError(
        f"download of {label} from {url} returned an HTML page instead of the file (a "
        "captive portal, login or error page?); nothing was saved",
        "HTML instead of data",
    )


def _content_range_start(value: str) -> int | None:
    # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _content_range_total(value: str) -> int | None:
    # "bytes */200"
    try:
        return int(value.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        return None


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def copy_verified(
    src: Path, dest: Path, *, label: str, sha256: str | None, progress: ProgressFn | None = None
) -> str:
    """Copy ``src`` to ``dest`` via ``<dest>.part`` (hashing on the way); on mismatch keep nothing."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    h = hashlib.sha256()
    try:
        if progress:
            progress(0, src.stat().st_size, 0)
        with open(src, "rb") as fin, open(part, "wb") as fout:
            while block := fin.read(1 << 20):
                h.update(block)
                fout.write(block)
                if progress:
                    progress(len(block), None, None)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    got = h.hexdigest()
    if sha256 is not None and got != sha256.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"checksum mismatch for {label} in mirror file {src}: expected sha256 "
            f"{sha256[:12]}…, got {got[:12]}…; nothing was copied",
            "checksum mismatch",
        )
    os.replace(part, dest)
    return got

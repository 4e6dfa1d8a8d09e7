"""The call log: every logical LLM call as one row of a SQLite table (WAL), also a content-addressed cache.

Schema (table ``calls``; see docs/llm.md): id, created, cache_key, backend, model, purpose, messages,
params, schema, sample_index, response, parsed, logprobs, prompt_tokens, completion_tokens, latency_s,
status, error, attempts, reasks, finish_reason, queue_s. Migrations are append-only and named; applied ones are
listed in table ``migrations``. API keys and base URLs never enter the database.
"""

from __future__ import annotations

import atexit
import json
import os
import sqlite3
import threading
import uuid
import weakref
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..core.errors import UserError
from ..core.hashing import canonical_json, content_hash
from .types import ChatParams, ChatResult, Message, Usage

# Append-only: never edit or reorder an entry once released; add a new one instead.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_create_calls",
        """
        CREATE TABLE calls (
            id TEXT PRIMARY KEY,
            created TEXT NOT NULL,
            cache_key TEXT NOT NULL,
            backend TEXT NOT NULL,
            model TEXT NOT NULL,
            purpose TEXT NOT NULL DEFAULT '',
            messages TEXT NOT NULL,
            params TEXT NOT NULL,
            schema TEXT,
            sample_index INTEGER NOT NULL DEFAULT 0,
            response TEXT,
            parsed TEXT,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            latency_s REAL NOT NULL DEFAULT 0,
            status TEXT NOT NULL,
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX calls_cache_key ON calls (cache_key, status);
        CREATE INDEX calls_created ON calls (created);
    """,
    ),
    (
        "002_add_logprobs_and_reasks",
        """
        ALTER TABLE calls ADD COLUMN logprobs TEXT;
        ALTER TABLE calls ADD COLUMN reasks INTEGER NOT NULL DEFAULT 0;
    """,
    ),
    # why generation stopped ("stop", "length" = cut off at max_tokens, ...); NULL in rows logged before
    (
        "003_add_finish_reason",
        """
        ALTER TABLE calls ADD COLUMN finish_reason TEXT;
    """,
    ),
    # wait for a concurrency slot, apart from latency_s (the request itself); NULL in rows logged before,
    # whose latency_s includes that wait
    (
        "004_add_queue_s",
        """
        ALTER TABLE calls ADD COLUMN queue_s REAL;
    """,
    ),
]

_COLUMNS = (
    "id",
    "created",
    "cache_key",
    "backend",
    "model",
    "purpose",
    "messages",
    "params",
    "schema",
    "sample_index",
    "response",
    "parsed",
    "logprobs",
    "prompt_tokens",
    "completion_tokens",
    "latency_s",
    "status",
    "error",
    "attempts",
    "reasks",
    "finish_reason",
    "queue_s",
)


def cache_key(
    backend: str,
    model: str,
    messages: list[Message],
    params: ChatParams,
    schema: dict[str, Any] | None,
    sample_index: int,
) -> str:
    """sha256 of the canonical JSON of everything that determines a reply."""
    return content_hash(
        {
            "backend": backend,
            "model": model,
            "messages": messages,
            "params": params.model_dump(mode="json"),
            "schema": schema,
            "sample_index": int(sample_index),
        }
    )


def ok_call_id(key: str) -> str:
    """The id of the ok call for cache key ``key``: derived from the key (an ok result is final for its
    key), so the same request gives the same id in any run and artifacts that cite it are reproducible."""
    return key[:28]


def replayed_call_id(key: str, result: ChatResult, reasks: int) -> str:
    """The id of a failed call replayed from stored batch replies (batch and Ray executors): derived from the
    key and the failure (error, which names the result it came from, reply text and re-asks), so every
    later wave that replays the same failure gives the same id and the log keeps one row for it."""
    return content_hash({"key": key, "error": result.error, "text": result.text, "reasks": int(reasks)})[:28]


def new_call_id() -> str:
    """A unique, roughly time-ordered id (hex nanoseconds + random suffix)."""
    import time

    return f"{time.time_ns():016x}{uuid.uuid4().hex[:12]}"


def apply_migrations(
    conn: sqlite3.Connection, migrations: Iterable[tuple[str, str]] = MIGRATIONS
) -> list[str]:
    """Apply the named migrations not yet listed in table ``migrations``; return the names applied."""
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
    applied = []
    for name, sql in migrations:
        conn.execute("BEGIN IMMEDIATE")  # one transaction per migration; re-check inside it
        try:
            if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                conn.execute("COMMIT")
                continue
            for stmt in (s.strip() for s in sql.split(";")):
                if stmt:
                    conn.execute(stmt)
            conn.execute(
                "INSERT INTO migrations (name, applied) VALUES (?, ?)",
                (name, datetime.now(UTC).isoformat()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def is_wal_database(path: Path) -> bool:
    """Whether the SQLite file at ``path`` is in WAL mode (header bytes 18-19 are 2), read without SQLite."""
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[:16] == b"SQLite format 3\x00" and header[18] == header[19] == 2


def connect_readonly(
    path: str | os.PathLike[str], *, timeout: float = 10.0, allow_immutable: bool = True
) -> sqlite3.Connection:
    """A read-only connection to a call log that leaves no ``-wal`` / ``-shm`` files behind.

    ``mode=ro`` alone still creates the ``-shm`` (and ``-wal``) of a WAL database next to it. When no
    ``-wal`` exists, no writer is active and everything is in the main file: it is opened ``immutable=1``
    (no locks, no side files). With a ``-wal`` (a run is writing, or was killed) it is opened ``mode=ro``
    so the rows in the WAL are seen. Reading an immutable file that a writer changes underneath can fail
    with a ``DatabaseError``: callers that may race a writer retry with ``allow_immutable=False``.
    """
    p = Path(path)
    uri = f"file:{quote(str(p.absolute()), safe='/')}?mode=ro"
    if allow_immutable and is_wal_database(p) and not Path(f"{p}-wal").exists():
        uri += "&immutable=1"
    return sqlite3.connect(uri, uri=True, timeout=timeout)


class CallStore:
    """SQLite call log + cache, safe from asyncio tasks and threads.

    Writes never block the caller: ``record`` queues the row and a writer thread commits queued rows in
    batches (one transaction each) on its own connection; ``ok`` results still queued are served to
    ``lookup`` from memory, so a cache hit never depends on the writer having caught up. Reads use a
    second connection (WAL lets them run while a batch commits). ``flush()`` waits for the queue to drain;
    ``recent``, ``count`` and ``close`` flush first; an interpreter exit flushes too.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path).expanduser()
        self._read_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._cv = threading.Condition()
        self._queue: list[tuple[Any, ...]] = []
        self._pending_ok: dict[str, ChatResult] = {}
        self._writing = 0
        self._writer: threading.Thread | None = None
        self._closed = False
        self._write_error: BaseException | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._wconn = _connect(self.path)
            self._wconn.execute("PRAGMA journal_mode=WAL")
            apply_migrations(self._wconn)
            self._conn = _connect(self.path)
            self._conn.execute("SELECT COUNT(*) FROM calls").fetchone()
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{self.path}: not a usable call-log database ({exc})") from None
        except OSError as exc:
            raise UserError(f"{self.path}: cannot open call-log database ({exc})") from None
        ref = weakref.ref(self)
        self._atexit = lambda: (lambda st: st.close() if st is not None else None)(ref())
        atexit.register(self._atexit)

    # -- cache ---------------------------------------------------------------------------------------
    def lookup(self, key: str) -> ChatResult | None:
        """The most recent ``ok`` result for this cache key (replayed with ``cached=True``), or None."""
        with self._cv:
            pending = self._pending_ok.get(key)
        if pending is not None:
            return pending.model_copy(update={"cached": True})
        with self._read_lock:
            row = self._conn.execute(
                "SELECT id, model, response, parsed, prompt_tokens, completion_tokens, latency_s, attempts,"
                " logprobs, finish_reason FROM calls WHERE cache_key = ? AND status = 'ok'"
                " ORDER BY created DESC LIMIT 1",
                (key,),
            ).fetchone()
        if row is None:
            return None
        cid, model, response, parsed, pt, ct, lat, attempts, logprobs, finish_reason = row
        return ChatResult(
            call_id=cid,
            model=model,
            status="ok",
            text=response or "",
            parsed=json.loads(parsed) if parsed is not None else None,
            usage=Usage(prompt_tokens=pt, completion_tokens=ct),
            latency_s=lat,
            cached=True,
            attempts=attempts,
            logprobs=json.loads(logprobs) if logprobs is not None else None,
            finish_reason=finish_reason,
        )

    # -- log -----------------------------------------------------------------------------------------
    def record(
        self,
        *,
        key: str,
        backend: str,
        result: ChatResult,
        messages: list[Message],
        params: ChatParams,
        schema: dict[str, Any] | None,
        sample_index: int,
        purpose: str,
        reasks: int = 0,
    ) -> None:
        """Queue one row for a finished logical call (ok or failed); the writer thread commits it."""
        row = (
            result.call_id,
            datetime.now(UTC).isoformat(),
            key,
            backend,
            result.model,
            purpose,
            canonical_json(messages),
            canonical_json(params.model_dump(mode="json")),
            canonical_json(schema) if schema is not None else None,
            int(sample_index),
            result.text,
            canonical_json(result.parsed) if result.parsed is not None else None,
            canonical_json(result.logprobs) if result.logprobs is not None else None,
            result.usage.prompt_tokens,
            result.usage.completion_tokens,
            float(result.latency_s),
            result.status,
            result.error,
            int(result.attempts),
            int(reasks),
            result.finish_reason,
            float(result.queue_s),
        )
        with self._cv:
            if self._closed:
                raise RuntimeError(f"call log {self.path} is closed")
            self._queue.append(row)
            if result.status == "ok":
                self._pending_ok[key] = result.model_copy()
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="callstore-writer", daemon=True)
                self._writer.start()
            self._cv.notify_all()

    def _write_loop(self) -> None:
        # OR IGNORE: two identical requests in flight at once both end ok with the key's id; one row is kept
        sql = f"INSERT OR IGNORE INTO calls ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if not self._queue and self._closed:
                    return
                batch, self._queue = self._queue, []
                self._writing += 1
            try:
                with self._write_lock:
                    self._wconn.execute("BEGIN")
                    self._wconn.executemany(sql, batch)
                    self._wconn.execute("COMMIT")
            except BaseException as exc:  # keep the error for flush() to raise; never lose it silently
                try:
                    self._wconn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                with self._cv:
                    self._write_error = exc
            finally:
                with self._cv:
                    self._writing -= 1
                    for row in batch:
                        res = self._pending_ok.get(row[2])
                        if res is not None and res.call_id == row[0]:
                            del self._pending_ok[row[2]]
                    self._cv.notify_all()

    def flush(self) -> None:
        """Wait until every recorded row is committed; raise if a batch failed to commit."""
        with self._cv:
            while self._queue or self._writing:
                self._cv.wait()
            if self._write_error is not None:
                exc, self._write_error = self._write_error, None
                raise UserError(f"{self.path}: could not write to the call log ({exc})")

    def recent(self, n: int = 20) -> list[dict[str, Any]]:
        """The ``n`` most recent rows, newest first, as dicts (JSON columns decoded)."""
        self.flush()
        with self._read_lock:
            cur = self._conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM calls ORDER BY created DESC, rowid DESC LIMIT ?",
                (int(n),),
            )
            rows = cur.fetchall()
        out = []
        for r in rows:
            d = dict(zip(_COLUMNS, r))
            for col in ("messages", "params", "schema", "parsed", "logprobs"):
                if d[col] is not None:
                    d[col] = json.loads(d[col])
            out.append(d)
        return out

    def count(self, status: str | None = None) -> int:
        self.flush()
        with self._read_lock:
            if status is None:
                return int(self._conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
            return int(
                self._conn.execute("SELECT COUNT(*) FROM calls WHERE status = ?", (status,)).fetchone()[0]
            )

    def migrations(self) -> list[str]:
        with self._read_lock:
            return [r[0] for r in self._conn.execute("SELECT name FROM migrations ORDER BY name")]

    def close(self) -> None:
        """Commit what is queued, stop the writer and close both connections (idempotent)."""
        with self._cv:
            if self._closed:
                return
        try:
            self.flush()
        finally:
            with self._cv:
                self._closed = True
                self._cv.notify_all()
                writer = self._writer
            if writer is not None:
                writer.join(timeout=30)
            atexit.unregister(self._atexit)
            with self._write_lock:
                self._wconn.close()
            with self._read_lock:
                self._conn.close()

    def __enter__(self) -> CallStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

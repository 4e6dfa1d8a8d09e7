"""The call log: every logical LLM call as one row of a SQLite table (WAL), also a content-addressed cache.

Schema (table ``calls``; see docs/llm.md): id, created, cache_key, backend, model, purpose, messages,
params, schema, sample_index, response, parsed, logprobs, prompt_tokens, completion_tokens, latency_s,
status, error, attempts, reasks. Migrations are append-only and named; applied ones are listed in table
``migrations``. API keys and base URLs never enter the database.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from ..errors import UserError
from ..hashing import canonical_json, content_hash
from .types import ChatParams, ChatResult, Message, Usage

# Append-only: never edit or reorder an entry once released; add a new one instead.
MIGRATIONS: list[tuple[str, str]] = [
    ("001_create_calls", """
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
    """),
    ("002_add_logprobs_and_reasks", """
        ALTER TABLE calls ADD COLUMN logprobs TEXT;
        ALTER TABLE calls ADD COLUMN reasks INTEGER NOT NULL DEFAULT 0;
    """),
]

_COLUMNS = ("id", "created", "cache_key", "backend", "model", "purpose", "messages", "params", "schema",
            "sample_index", "response", "parsed", "logprobs", "prompt_tokens", "completion_tokens",
            "latency_s", "status", "error", "attempts", "reasks")


def cache_key(backend: str, model: str, messages: list[Message], params: ChatParams,
              schema: dict[str, Any] | None, sample_index: int) -> str:
    """sha256 of the canonical JSON of everything that determines a reply."""
    return content_hash({"backend": backend, "model": model, "messages": messages,
                         "params": params.model_dump(mode="json"), "schema": schema,
                         "sample_index": int(sample_index)})


def new_call_id() -> str:
    """A unique, roughly time-ordered id (hex nanoseconds + random suffix)."""
    import time

    return f"{time.time_ns():016x}{uuid.uuid4().hex[:12]}"


def apply_migrations(conn: sqlite3.Connection, migrations: Iterable[tuple[str, str]] = MIGRATIONS) -> list[str]:
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
            conn.execute("INSERT INTO migrations (name, applied) VALUES (?, ?)",
                         (name, datetime.now(timezone.utc).isoformat()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


class CallStore:
    """SQLite call log + cache. One connection, guarded by a lock: safe from asyncio tasks and threads."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=10000")
            apply_migrations(self._conn)
            self._conn.isolation_level = ""  # implicit transactions for `with conn` from here on
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{self.path}: not a usable call-log database ({exc})") from None
        except OSError as exc:
            raise UserError(f"{self.path}: cannot open call-log database ({exc})") from None

    # -- cache ---------------------------------------------------------------------------------------
    def lookup(self, key: str) -> ChatResult | None:
        """The most recent ``ok`` result for this cache key (replayed with ``cached=True``), or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT id, model, response, parsed, prompt_tokens, completion_tokens, latency_s, attempts,"
                " logprobs FROM calls WHERE cache_key = ? AND status = 'ok' ORDER BY created DESC LIMIT 1",
                (key,)).fetchone()
        if row is None:
            return None
        cid, model, response, parsed, pt, ct, lat, attempts, logprobs = row
        return ChatResult(call_id=cid, model=model, status="ok", text=response or "",
                          parsed=json.loads(parsed) if parsed is not None else None,
                          usage=Usage(prompt_tokens=pt, completion_tokens=ct), latency_s=lat,
                          cached=True, attempts=attempts,
                          logprobs=json.loads(logprobs) if logprobs is not None else None)

    # -- log -----------------------------------------------------------------------------------------
    def record(self, *, key: str, backend: str, result: ChatResult, messages: list[Message],
               params: ChatParams, schema: dict[str, Any] | None, sample_index: int, purpose: str,
               reasks: int = 0) -> None:
        """Append one row for a finished logical call (ok or failed)."""
        row = (result.call_id, datetime.now(timezone.utc).isoformat(), key, backend, result.model, purpose,
               canonical_json(messages), canonical_json(params.model_dump(mode="json")),
               canonical_json(schema) if schema is not None else None, int(sample_index), result.text,
               canonical_json(result.parsed) if result.parsed is not None else None,
               canonical_json(result.logprobs) if result.logprobs is not None else None,
               result.usage.prompt_tokens, result.usage.completion_tokens, float(result.latency_s),
               result.status, result.error, int(result.attempts), int(reasks))
        sql = f"INSERT INTO calls ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        with self._lock, self._conn:
            self._conn.execute(sql, row)

    def recent(self, n: int = 20) -> list[dict[str, Any]]:
        """The ``n`` most recent rows, newest first, as dicts (JSON columns decoded)."""
        with self._lock:
            cur = self._conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM calls ORDER BY created DESC, rowid DESC"
                                     " LIMIT ?", (int(n),))
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
        with self._lock:
            if status is None:
                return self._conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
            return self._conn.execute("SELECT COUNT(*) FROM calls WHERE status = ?", (status,)).fetchone()[0]

    def migrations(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT name FROM migrations ORDER BY name")]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "CallStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

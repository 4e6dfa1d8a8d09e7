"""Deferred calls: the batch executor's half of the LLM layer.

With the batch executor a stage run is a *wave*. Every backend request whose reply is not known yet is
recorded as pending (``DeferredCall``) instead of being sent; ``LLMClient.chat`` turns that into a placeholder
result (``status="failed"``, ``error`` starting with ``PENDING_PREFIX``) that is neither logged nor counted by
the failure breaker, so the stage finishes its pass cleanly and ``Session.run_stage`` records it as
``waiting_for_batch``. The pending requests are written as OpenAI Batch JSONL (``write_wave``); their replies,
once ingested (``BatchStore.ingest``), are served by ``BatchBackend`` on the next run of the stage, which goes
through the normal client path: the same validation, re-asks (a re-ask is a new request: the next wave),
cache keys and call-log rows as an online run. Multi-step stages therefore advance one step per wave.

Everything lives in ``RUN/batch/``: ``batch.db`` (requests, replies, waves, submissions; SQLite) and one
folder per wave, ``<stage>-<NNN>/requests-<i>.jsonl``, split at ``max_lines`` lines / ``max_bytes`` bytes.
A request's ``custom_id`` is the sha256 of its canonical body, so requests are content-addressed: the same
request in a later wave or another run has the same id.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_text
from ..core.errors import UserError
from ..core.hashing import canonical_json, content_hash
from .backends.base import BackendReply, PermanentError, StructuredRequest
from .models import parse_model
from .types import ChatParams, ChatResult, Message, Usage

#: limits of one OpenAI Batch input file
MAX_LINES = 50_000
MAX_BYTES = 200 * 1024 * 1024
#: how the placeholder result of a deferred call starts its ``error``
PENDING_PREFIX = "waiting for batch"
BATCH_URL = "/v1/chat/completions"
BATCH_DIR = "batch"
#: error codes of result lines for requests a batch never ran (OpenAI writes them for the unfinished requests
#: of an expired or cancelled batch): not results, the request stays without a reply
NOT_RUN_CODES = ("batch_expired", "batch_cancelled")
#: model kinds whose requests the batch and Ray executors can defer and answer
DEFERRABLE_KINDS = ("openai", "vllm")


class DeferredCall(Exception):
    """Raised by ``BatchBackend.complete`` for a request whose reply is not in the batch store yet."""

    def __init__(self, request_id: str):
        super().__init__(f"{PENDING_PREFIX} (request {request_id[:12]})")
        self.request_id = request_id

    def result(self, model: str) -> ChatResult:
        """The placeholder ``chat`` returns: a failure that is never logged, cached or counted."""
        return ChatResult(
            call_id=f"pending-{self.request_id[:24]}", model=model, status="failed", error=str(self)
        )


class WaitingForBatch(UserError):
    """A stage stopped after a wave: its pending requests were written for a batch endpoint (exit 4)."""

    exit_code = 4
    label = "waiting"


def is_pending(result: ChatResult) -> bool:
    """Whether ``result`` is the placeholder of a deferred call."""
    return not result.ok and (result.error or "").startswith(PENDING_PREFIX)


def request_body(
    model_id: str, messages: list[Message], params: ChatParams, structured: StructuredRequest | None
) -> dict[str, Any]:
    """The ``/v1/chat/completions`` body the ``openai/`` backend would send (json_schema response format)."""
    body: dict[str, Any] = {
        "model": model_id,
        "messages": messages,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_tokens,
    }
    if params.seed is not None:
        body["seed"] = params.seed
    if params.stop:
        body["stop"] = params.stop
    if params.logprobs:
        body["logprobs"] = True
        if params.top_logprobs:
            body["top_logprobs"] = params.top_logprobs
    if structured is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": structured.name, "schema": structured.schema},
        }
    return body


def request_line(request_id: str, body: dict[str, Any]) -> str:
    """One line of an OpenAI Batch input file (no newline)."""
    return json.dumps(
        {"custom_id": request_id, "method": "POST", "url": BATCH_URL, "body": body},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def reply_from_body(body: dict[str, Any]) -> BackendReply:
    """A chat completion (JSON) as a backend reply, like the ``openai/`` backend reads it."""
    choices = body.get("choices") if isinstance(body, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise ValueError("no choices in the response body")
    choice = choices[0]
    text = ((choice.get("message") or {}).get("content")) or ""
    u = body.get("usage") or {}
    lp = (choice.get("logprobs") or {}).get("content") if isinstance(choice.get("logprobs"), dict) else None
    logprobs = None
    if lp:
        logprobs = [
            {
                "token": t["token"],
                "logprob": t["logprob"],
                "top_logprobs": [
                    {"token": x["token"], "logprob": x["logprob"]} for x in (t.get("top_logprobs") or [])
                ],
            }
            for t in lp
        ]
    finish = choice.get("finish_reason")
    return BackendReply(
        text=str(text),
        usage=Usage(
            prompt_tokens=int(u.get("prompt_tokens") or 0),
            completion_tokens=int(u.get("completion_tokens") or 0),
        ),
        logprobs=logprobs,
        finish_reason=str(finish) if finish else None,
    )


def parse_body(body: dict[str, Any]) -> tuple[list[Message], ChatParams, StructuredRequest | None]:
    """The inverse of ``request_body``: messages, parameters (seed as sent) and structured request."""
    params = ChatParams(
        temperature=body.get("temperature", 0.7),
        top_p=body.get("top_p", 1.0),
        max_tokens=body.get("max_tokens", 256),
        seed=body.get("seed"),
        stop=body.get("stop"),
        logprobs=bool(body.get("logprobs", False)),
        top_logprobs=body.get("top_logprobs"),
    )
    fmt = body.get("response_format")
    structured = None
    if fmt:
        spec = fmt.get("json_schema") or {}
        structured = StructuredRequest(name=spec.get("name", "Output"), schema=spec.get("schema") or {})
    return list(body["messages"]), params, structured


def body_from_reply(reply: BackendReply) -> dict[str, Any]:
    """A chat completion body that ``reply_from_body`` reads back as ``reply``."""
    logprobs = {"content": reply.logprobs} if reply.logprobs else None
    return {
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": reply.finish_reason,
                "logprobs": logprobs,
            }
        ],
        "usage": {
            "prompt_tokens": reply.usage.prompt_tokens,
            "completion_tokens": reply.usage.completion_tokens,
            "total_tokens": reply.usage.total_tokens,
        },
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, wave TEXT NOT NULL, stage TEXT NOT NULL,
    model TEXT NOT NULL, body TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS replies (id TEXT PRIMARY KEY, status_code INTEGER, body TEXT, error TEXT,
    source TEXT NOT NULL, line INTEGER NOT NULL, ingested TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS waves (name TEXT PRIMARY KEY, stage TEXT NOT NULL, model TEXT NOT NULL,
    requests INTEGER NOT NULL, files TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS submissions (file TEXT PRIMARY KEY, wave TEXT NOT NULL, input_file_id TEXT,
    batch_id TEXT, status TEXT NOT NULL, output_file_id TEXT, error_file_id TEXT, updated TEXT NOT NULL);
"""


@dataclass
class Wave:
    """A wave written for a batch endpoint."""

    name: str
    stage: str
    model: str
    requests: int
    files: list[str]
    created: str = ""


@dataclass
class IngestReport:
    """What ``BatchStore.ingest`` took in."""

    files: int = 0
    lines: int = 0
    ok: int = 0
    failed: int = 0
    not_run: int = 0  # lines for requests the batch never ran (``NOT_RUN_CODES``): not taken in
    unanswered: int = 0  # requests of the store still without a reply


class BatchStore:
    """``RUN/batch/batch.db``: pending requests, ingested replies, waves and submissions."""

    def __init__(self, run_dir: str | Path):
        self.root = Path(run_dir) / BATCH_DIR
        self.path = self.root / "batch.db"
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA busy_timeout=10000")
                conn.executescript(_SCHEMA)
            except sqlite3.DatabaseError as exc:
                raise UserError(f"{self.path}: not a usable batch database ({exc})") from None
            self._conn = conn
        return self._conn

    def exists(self) -> bool:
        return self.path.is_file()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- replies -------------------------------------------------------------------------------------
    def reply(self, request_id: str) -> tuple[int | None, str | None, str | None] | None:
        """``(status_code, body, error)`` of the ingested reply to ``request_id``, or None.

        A failure's ``error`` ends with where it came from: ``[<file>:<line>]`` (see ``_source``) or the
        executor that answered (``[ray]``). So the call log tells failures from different results of one
        request apart, while every replay of the same result is the same failure, logged once
        (``store.replayed_call_id``).
        """
        if not self.exists():
            return None
        with self._lock:
            row = (
                self._db()
                .execute(
                    "SELECT status_code, body, error, source, line FROM replies WHERE id = ?", (request_id,)
                )
                .fetchone()
            )
        if row is None:
            return None
        code, body, error, source, line = row
        if error is not None:
            source = str(source)
            error = f"{error} [{source}:{line}]" if "/" in source else f"{error} [{source}]"
        return code, body, error

    def _source(self, path: Path) -> str:
        """How ``ingest`` records a results file: ``batch/…`` when inside ``batch/`` (stable when the run
        directory moves), else its absolute path. Always holds a ``/``, unlike an executor's name (``ray``)."""
        full, root = path.absolute(), self.root.absolute()
        if full.is_relative_to(root):
            return (Path(BATCH_DIR) / full.relative_to(root)).as_posix()
        return full.as_posix()

    def known(self, ids: Iterable[str]) -> set[str]:
        """The ids among ``ids`` already written in an earlier wave."""
        ids = list(ids)
        if not ids or not self.exists():
            return set()
        out: set[str] = set()
        with self._lock:
            db = self._db()
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                out.update(
                    r[0]
                    for r in db.execute(
                        f"SELECT id FROM requests WHERE id IN ({','.join('?' * len(chunk))})", chunk
                    )
                )
        return out

    # -- waves ---------------------------------------------------------------------------------------
    def waves(self) -> list[Wave]:
        if not self.exists():
            return []
        with self._lock:
            rows = (
                self._db()
                .execute(
                    "SELECT name, stage, model, requests, files, created FROM waves ORDER BY created, name"
                )
                .fetchall()
            )
        return [Wave(n, s, m, r, json.loads(f), c) for n, s, m, r, f, c in rows]

    def write_wave(
        self,
        stage: str,
        model: str,
        pending: dict[str, dict[str, Any]],
        *,
        max_lines: int = MAX_LINES,
        max_bytes: int = MAX_BYTES,
    ) -> Wave | None:
        """Write the ``pending`` requests not written before as a new wave; None when all were.

        Files are written atomically, then the wave is recorded in one transaction, so an interruption
        leaves either a whole wave or none (stray files of an unrecorded wave are overwritten next time).
        """
        # one model per file (the OpenAI Batch API requires it), ids sorted within a model
        new = sorted(
            set(pending) - self.known(pending), key=lambda rid: (str(pending[rid].get("model")), rid)
        )
        if not new:
            return None
        number = 1 + sum(1 for w in self.waves() if w.stage == stage)
        name = f"{stage}-{number:03d}"
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        files: list[str] = []
        chunk: list[str] = []
        size = 0
        model_of_chunk = None

        def flush() -> None:
            nonlocal chunk, size
            if chunk:
                path = folder / f"requests-{len(files) + 1:03d}.jsonl"
                atomic_write_text(path, "".join(chunk))
                files.append(str(path.relative_to(self.root)))
                chunk, size = [], 0

        for rid in new:
            line = request_line(rid, pending[rid]) + "\n"
            n = len(line.encode())
            other_model = pending[rid].get("model") != model_of_chunk
            if chunk and (len(chunk) >= max_lines or size + n > max_bytes or other_model):
                flush()
            model_of_chunk = pending[rid].get("model")
            chunk.append(line)
            size += n
        flush()
        created = _now()
        with self._lock:
            db = self._db()
            db.execute("BEGIN")
            try:
                db.executemany(
                    "INSERT OR IGNORE INTO requests (id, wave, stage, model, body, created)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(rid, name, stage, model, canonical_json(pending[rid]), created) for rid in new],
                )
                db.execute(
                    "INSERT OR REPLACE INTO waves (name, stage, model, requests, files, created)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (name, stage, model, len(new), json.dumps(files), created),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return Wave(name, stage, model, len(new), files, created)

    def save_answers(
        self,
        stage: str,
        model: str,
        pending: dict[str, dict[str, Any]],
        answers: list[tuple[str, int | None, str | None, str | None]],
        source: str,
    ) -> None:
        """Record requests answered by an executor (Ray) with their replies ``(id, status_code, body, error)``
        in one transaction; a wave named ``<stage>-<source>-<NNN>`` without files lists them."""
        if not answers:
            return
        created = _now()
        with self._lock:
            db = self._db()
            n = db.execute(
                "SELECT COUNT(*) FROM waves WHERE stage = ? AND name LIKE ?", (stage, f"{stage}-{source}-%")
            ).fetchone()[0]
            name = f"{stage}-{source}-{n + 1:03d}"
            db.execute("BEGIN")
            try:
                db.executemany(
                    "INSERT OR IGNORE INTO requests (id, wave, stage, model, body, created)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(rid, name, stage, model, canonical_json(pending[rid]), created) for rid, *_ in answers],
                )
                db.executemany(
                    "INSERT OR REPLACE INTO replies (id, status_code, body, error, source, line, ingested)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (rid, code, body, error, source, i, created)
                        for i, (rid, code, body, error) in enumerate(answers, 1)
                    ],
                )
                db.execute(
                    "INSERT INTO waves (name, stage, model, requests, files, created) VALUES (?, ?, ?, ?, ?, ?)",
                    (name, stage, model, len(answers), "[]", created),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def fail_unanswered(
        self,
        stage: str,
        model: str,
        pending: dict[str, dict[str, Any]],
        answered: set[str],
        why: str,
        source: str,
    ) -> None:
        """Record every request of ``pending`` not in ``answered`` as failed with ``why`` (an executor that
        could not answer them): a failure recorded as data, so the stage never defers them again."""
        rest: list[tuple[str, int | None, str | None, str | None]] = [
            (rid, None, None, why) for rid in sorted(pending) if rid not in answered
        ]
        self.save_answers(stage, model, pending, rest, source=source)

    def unanswered(self) -> int:
        if not self.exists():
            return 0
        with self._lock:
            return int(
                self._db()
                .execute(
                    "SELECT COUNT(*) FROM requests r LEFT JOIN replies p ON p.id = r.id WHERE p.id IS NULL"
                )
                .fetchone()[0]
            )

    def unanswered_waves(self) -> set[str]:
        """The waves holding requests without a reply."""
        if not self.exists():
            return set()
        with self._lock:
            rows = (
                self._db()
                .execute(
                    "SELECT DISTINCT r.wave FROM requests r LEFT JOIN replies p ON p.id = r.id WHERE p.id IS NULL"
                )
                .fetchall()
            )
        return {r[0] for r in rows}

    def request_ids(self, file: str) -> list[str]:
        """The ``custom_id`` of every line of the request file ``file`` (relative to ``batch/``)."""
        path = self.root / file
        try:
            with path.open("rb") as fh:
                return [json.loads(raw)["custom_id"] for raw in fh if raw.strip()]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{path}: not a readable batch request file ({exc})") from None

    def answered(self, ids: Iterable[str]) -> set[str]:
        """The ids among ``ids`` that have a reply."""
        ids = list(ids)
        if not ids or not self.exists():
            return set()
        out: set[str] = set()
        with self._lock:
            db = self._db()
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                out.update(
                    r[0]
                    for r in db.execute(
                        f"SELECT id FROM replies WHERE id IN ({','.join('?' * len(chunk))})", chunk
                    )
                )
        return out

    def missing(self, ended: Iterable[str], busy: Iterable[str]) -> dict[str, list[str]]:
        """Per request file of ``ended`` (files whose batch ended), its requests without a reply that are in
        no file of ``busy`` (written or in flight) and in no earlier file of ``ended``: each request once."""
        taken = {rid for f in busy for rid in self.request_ids(f)}
        out: dict[str, list[str]] = {}
        for f in ended:
            ids = [rid for rid in self.request_ids(f) if rid not in taken]
            done = self.answered(ids)
            ids = [rid for rid in ids if rid not in done]
            taken.update(ids)
            if ids:
                out[f] = ids
        return out

    def write_resubmission(self, missing: dict[str, list[str]]) -> list[tuple[str, str, int]]:
        """Write ``missing`` (``missing()``'s answer) as new request files of their waves: one file per ended
        file, its lines as they were (same bodies, ids and model), named ``requests-<i>.jsonl`` after the
        wave's last file and added to the wave in one transaction. Returns ``(file, wave, requests)``."""
        if not missing:
            return []
        waves = {f: w for w in self.waves() for f in w.files}
        files_of = {w.name: list(w.files) for w in waves.values()}
        written: list[tuple[str, str, int]] = []
        for f, ids in missing.items():
            wave = waves[f]
            want = set(ids)
            src = self.root / f
            with src.open("rb") as fh:
                lines = [raw.decode() for raw in fh if raw.strip() and json.loads(raw)["custom_id"] in want]
            lines = [x if x.endswith("\n") else x + "\n" for x in lines]
            new = src.parent / f"requests-{len(files_of[wave.name]) + 1:03d}.jsonl"
            atomic_write_text(new, "".join(lines))
            rel = str(new.relative_to(self.root))
            files_of[wave.name].append(rel)
            written.append((rel, wave.name, len(lines)))
        with self._lock:
            db = self._db()
            db.execute("BEGIN")
            try:
                for name in {w for _, w, _ in written}:
                    db.execute(
                        "UPDATE waves SET files = ? WHERE name = ?", (json.dumps(files_of[name]), name)
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return written

    # -- submissions ---------------------------------------------------------------------------------
    def submissions(self) -> list[dict[str, Any]]:
        if not self.exists():
            return []
        with self._lock:
            cur = self._db().execute(
                "SELECT file, wave, input_file_id, batch_id, status, output_file_id,"
                " error_file_id, updated FROM submissions ORDER BY file"
            )
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]

    def save_submission(self, file: str, wave: str, **fields: Any) -> None:
        row = {
            "input_file_id": None,
            "batch_id": None,
            "status": "written",
            "output_file_id": None,
            "error_file_id": None,
        }
        old = {s["file"]: s for s in self.submissions()}.get(file)
        if old:
            row.update({k: old[k] for k in row})
        row.update(fields)
        with self._lock:
            self._db().execute(
                "INSERT OR REPLACE INTO submissions (file, wave, input_file_id, batch_id, status, output_file_id,"
                " error_file_id, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    file,
                    wave,
                    row["input_file_id"],
                    row["batch_id"],
                    row["status"],
                    row["output_file_id"],
                    row["error_file_id"],
                    _now(),
                ),
            )

    # -- ingest --------------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path]) -> IngestReport:
        """Read OpenAI Batch output files (``vllm run-batch`` writes the same) into the store.

        Every file is parsed and checked before anything is written; a line that is not JSON (a truncated
        file), not an output record, or answers a ``custom_id`` this run never wrote is a ``UserError``
        naming the file and line. Files may be partial (any subset of a wave's requests). A line with an
        ``error`` or a non-200 ``status_code`` is stored as a failure: the stage records that call as failed,
        except a line saying the batch never ran the request (``NOT_RUN_CODES``: the unfinished requests of an
        expired or cancelled batch), which is no reply at all. A later reply to the same id replaces an
        earlier one.
        """
        report = IngestReport()
        rows: list[tuple[Any, ...]] = []
        parsed: list[tuple[str, Path, int, dict[str, Any]]] = []
        for p in paths:
            path = Path(p)
            report.files += 1
            try:
                fh = path.open("rb")
            except OSError as exc:
                raise UserError(f"{path}: cannot read batch results ({exc.strerror or exc})") from None
            with fh:
                for lineno, raw in enumerate(fh, 1):
                    if not raw.strip():
                        continue
                    try:
                        rec = json.loads(raw)
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        raise UserError(f"{path}:{lineno}: not a JSON line (truncated file?)") from None
                    cid = rec.get("custom_id") if isinstance(rec, dict) else None
                    if not isinstance(cid, str) or not ("response" in rec or "error" in rec):
                        raise UserError(
                            f"{path}:{lineno}: not a batch output record (needs custom_id and "
                            "response or error)"
                        )
                    parsed.append((cid, path, lineno, rec))
        known = self.known({cid for cid, *_ in parsed})
        ingested = _now()
        for cid, path, lineno, rec in parsed:
            if cid not in known:
                raise UserError(f"{path}:{lineno}: unknown custom_id {cid[:16]}… (not a request of this run)")
            resp = rec.get("response") or {}
            err = rec.get("error")
            if isinstance(err, dict) and err.get("code") in NOT_RUN_CODES:
                # never ran: no reply (``batch submit`` resubmits it); an earlier reply is kept
                report.not_run += 1
                continue
            code = resp.get("status_code") if isinstance(resp, dict) else None
            body = resp.get("body") if isinstance(resp, dict) else None
            error = None
            if err:
                error = err.get("message") if isinstance(err, dict) else str(err)
                error = f"batch error: {error or err}"
            elif code != 200:
                msg = ((body or {}).get("error") or {}).get("message") if isinstance(body, dict) else None
                error = f"batch HTTP {code}: {msg or 'no message'}"
            else:
                try:
                    reply_from_body(body if isinstance(body, dict) else {})
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    raise UserError(
                        f"{path}:{lineno}: response body is not a chat completion ({exc})"
                    ) from None
            report.lines += 1
            report.ok += error is None
            report.failed += error is not None
            rows.append(
                (
                    cid,
                    code,
                    canonical_json(body) if body is not None else None,
                    error,
                    self._source(path),
                    lineno,
                    ingested,
                )
            )
        with self._lock:
            db = self._db()
            db.execute("BEGIN")
            try:
                db.executemany(
                    "INSERT OR REPLACE INTO replies (id, status_code, body, error, source, line, ingested)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        report.unanswered = self.unanswered()
        return report


@dataclass
class WaveRecorder:
    """Collects the requests deferred during one stage run (shared by the stage's batch backends)."""

    store: BatchStore
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_of: dict[str, str] = field(default_factory=dict)
    """The model string (``openai/…`` or ``vllm/…``) that deferred each pending request."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def models(self) -> set[str]:
        return set(self.model_of.values())

    def add(self, request_id: str, body: dict[str, Any], model: str) -> None:
        with self._lock:
            self.pending[request_id] = body
            self.model_of[request_id] = model

    def reset(self) -> None:
        with self._lock:
            self.pending, self.model_of = {}, {}

    def finish(
        self, stage: str, *, max_lines: int = MAX_LINES, max_bytes: int = MAX_BYTES
    ) -> WaitingForBatch:
        """Write the wave (new requests only) and return the exception that stops the stage."""
        with self._lock:
            pending, models = dict(self.pending), sorted(self.models)
        wave = self.store.write_wave(
            stage, ",".join(models), pending, max_lines=max_lines, max_bytes=max_bytes
        )
        self.reset()
        run = self.store.root.parent
        if wave is None:
            msg = (
                f"{stage}: waiting for batch — {len(pending)} requests already written and not yet answered; "
                f"`persona-testbed batch status {run}` shows them, `batch ingest` takes their results, and "
                "`batch submit` resends those an ended batch left without a result"
            )
        else:
            msg = (
                f"{stage}: waiting for batch — {wave.requests} requests written to "
                f"{self.store.root / wave.name} ({len(wave.files)} file(s)); next: `persona-testbed batch submit "
                f"{run}` (OpenAI Batch API, or --vllm for the `vllm run-batch` commands), then re-run this command"
            )
        exc = WaitingForBatch(msg)
        exc.wave = wave  # type: ignore[attr-defined]
        exc.pending = len(pending)  # type: ignore[attr-defined]
        return exc


class BatchBackend:
    """Serves ingested batch replies for an ``openai/<model>`` or ``vllm/<model>``; defers every other request."""

    kind = "openai"

    def __init__(self, model: str, recorder: WaveRecorder):
        spec = parse_model(model)
        if spec.kind not in DEFERRABLE_KINDS:
            raise UserError(
                f"the batch and ray executors need an 'openai/<model>' or 'vllm/<model>' model string (got "
                f"{model!r}): they answer OpenAI-compatible requests (Batch API, vllm run-batch, Ray workers)"
            )
        self.model_id = spec.name
        self.model_string = spec.model_string
        self.recorder = recorder

    async def complete(
        self, messages: list[Message], params: ChatParams, structured: StructuredRequest | None
    ) -> BackendReply:
        body = request_body(self.model_id, messages, params, structured)
        rid = content_hash(body)
        got = self.recorder.store.reply(rid)
        if got is None:
            self.recorder.add(rid, body, self.model_string)
            raise DeferredCall(rid)
        code, text, error = got
        if error is not None:
            raise PermanentError(error)
        return reply_from_body(json.loads(text or "{}"))

    async def aclose(self) -> None:
        return None


__all__ = [
    "BATCH_DIR",
    "BatchBackend",
    "BatchStore",
    "DEFERRABLE_KINDS",
    "DeferredCall",
    "IngestReport",
    "MAX_BYTES",
    "MAX_LINES",
    "NOT_RUN_CODES",
    "PENDING_PREFIX",
    "WaitingForBatch",
    "Wave",
    "WaveRecorder",
    "body_from_reply",
    "is_pending",
    "parse_body",
    "reply_from_body",
    "request_body",
    "request_line",
]

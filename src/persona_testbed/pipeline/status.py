"""What a run directory holds: per stage done / failed / pending, calls, tokens and time.

Read-only: built from ``manifest.json``, ``calls.db`` and the stages' checkpoint files; safe to call
while the run is writing, and it writes nothing (``calls.db`` is opened without creating ``-wal`` /
``-shm`` files, see ``llm.store.connect_readonly``). A stage that is running or was interrupted also
gets its ``progress``: how many of its work items are finished out of how many it will do (see
``stage_progress``).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import UserError
from ..feedback.plan import plan_pairs
from ..llm.store import connect_readonly
from ..personas import read_personas
from ..prompts import read_prompts
from .config import load_config
from .rundir import RunDir
from .stages.feedback import feedback_config, personas_path

# Purpose tags in the call log start with the stage that made the call ("feedback.critique" ...).
PURPOSE_STAGE = {
    "census": "census",
    "personas": "personas",
    "enrich": "enrich",
    "persona": "enrich",
    "prompts": "prompts",
    "prompt": "prompts",
    "feedback": "feedback",
    "dpf": "feedback",
    "bench": "bench",
    "report": "report",
}


def lock_holder(run: RunDir) -> int | None:
    """The pid of the process writing this run, or None when nobody holds its lock."""
    lock = run.path / ".lock"
    if not lock.exists():
        return None
    fd = os.open(lock, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return int(lock.read_text().strip() or 0) or -1
            except (OSError, ValueError):
                return -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# Two-part purposes that belong to another stage than their first part says.
PURPOSE_PREFIX_STAGE = {"personas.enrich": "enrich", "personas.judge": "enrich"}


def stage_of_purpose(purpose: str) -> str:
    """The pipeline stage a call-log ``purpose`` tag belongs to ("feedback.critique" -> "feedback")."""
    parts = (purpose or "").lower().split(".")
    two = ".".join(parts[:2])
    if two in PURPOSE_PREFIX_STAGE:
        return PURPOSE_PREFIX_STAGE[two]
    return PURPOSE_STAGE.get(parts[0].split(":", 1)[0], "other")


def _query_calls(db: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on the call log, leaving no files behind; a writer racing an immutable
    read (a checkpoint rewriting the file) gets one retry through the WAL. ``sqlite3.Error`` propagates."""
    for allow_immutable in (True, False):
        conn = connect_readonly(db, allow_immutable=allow_immutable)
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            if not allow_immutable or "no such table" in str(exc):
                raise
        finally:
            conn.close()
    return []  # not reached


def call_stats(db: Path) -> dict[str, dict[str, Any]]:
    """Per stage (from the purpose tag): calls, ok, failed, prompt/completion tokens, model and queue seconds.

    ``failed`` counts logged calls whose status is not ``ok`` (after their retries and re-asks).
    ``model_s`` is model latency, the sum of request durations (from getting a concurrency slot to the
    result); ``queue_s`` the sum of the calls' waits for a slot (``None`` for a log written before the
    call log kept it, migration 004, whose latencies include that wait).
    """
    if not db.exists():
        return {}
    base = (
        "SELECT purpose, status, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(latency_s){}"
        " FROM calls GROUP BY purpose, status"
    )
    try:
        try:
            rows = _query_calls(db, base.format(", SUM(queue_s), COUNT(queue_s)"))
        except sqlite3.OperationalError as exc:
            if "queue_s" not in str(exc):
                raise
            rows = [(*r, None, 0) for r in _query_calls(db, base.format(""))]
    except sqlite3.Error as exc:
        if "no such table" in str(exc):
            return {}
        raise UserError(f"{db}: not a readable call log ({exc})") from None
    out: dict[str, dict[str, Any]] = {}
    for purpose, status, n, pt, ct, lat, queue, with_queue in rows:
        s = out.setdefault(
            stage_of_purpose(purpose),
            {
                "calls": 0,
                "ok": 0,
                "failed": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "model_s": 0.0,
                "queue_s": None,
            },
        )
        s["calls"] += n
        s["ok" if status == "ok" else "failed"] += n
        s["prompt_tokens"] += int(pt or 0)
        s["completion_tokens"] += int(ct or 0)
        s["model_s"] = round(s["model_s"] + float(lat or 0.0), 3)
        if with_queue:
            s["queue_s"] = round((s["queue_s"] or 0.0) + float(queue or 0.0), 3)
    return out


UNFINISHED = ("running", "interrupted", "failed")


def _progress(unit: str, done: int, failed: int, expected: int | None, source: str) -> dict[str, Any]:
    return {"unit": unit, "done": done, "failed": failed, "expected": expected, "source": source}


def _feedback_progress(run: RunDir) -> dict[str, Any]:
    """Pairs in ``feedback/pairs.checkpoint.jsonl`` that the resumed stage would reuse, of the planned pairs.

    The plan is recomputed from the run's config, personas and prompts exactly as the stage does; a
    checkpoint entry counts when its pair is planned and its ``config_key`` matches this run's (ok pairs
    are reused on resume, failed ones retried). Without a readable plan, every checkpoint entry counts
    and ``expected`` is None.
    """
    source = "feedback/pairs.checkpoint.jsonl"
    entries: dict[str, dict[str, Any]] = {}
    path = run.path / "feedback" / "pairs.checkpoint.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue  # a torn last line of a killed run
            if isinstance(obj, dict) and "id" in obj:
                entries[str(obj["id"])] = obj  # later lines win, like the checkpoint reader
    planned: set[str] | None = None
    key = None
    try:
        cfg = load_config(run.config_path)
        fc = feedback_config(cfg)
        key = fc.config_key(cfg.models.for_role("feedback"))
        plan = plan_pairs(
            read_personas(personas_path(run.path, cfg)),
            read_prompts(run.path / "prompts"),
            fc.counts,
            fc.seed,
        )
        planned = {p.id for p in plan}
    except (UserError, OSError, ValueError, KeyError):
        pass  # no plan yet (e.g. prompts missing): count every checkpoint entry
    rows = [
        e
        for pid, e in entries.items()
        if (planned is None or pid in planned) and (key is None or e.get("config_key") == key)
    ]
    done = sum(1 for e in rows if e.get("status") == "ok")
    failed = sum(1 for e in rows if e.get("status") != "ok")
    return _progress("pairs", done, failed, len(planned) if planned is not None else None, source)


def _bench_progress(run: RunDir, record: dict[str, Any]) -> dict[str, Any]:
    """Bench tasks whose ``bench/<task>/results.json`` was written since the stage started, of those configured."""
    from datetime import datetime

    tasks: list[str] = []
    try:
        tasks = list(load_config(run.config_path).bench.tasks)
    except (UserError, OSError, ValueError):
        pass
    started = record.get("started")
    try:
        since = datetime.fromisoformat(started).timestamp() - 1.0 if started else None  # second resolution
    except ValueError:
        since = None
    done = 0
    for name in tasks:
        res = run.path / "bench" / name / "results.json"
        if res.is_file() and (since is None or res.stat().st_mtime >= since):
            done += 1
    return _progress("tasks", done, 0, len(tasks) or None, "bench/<task>/results.json")


def _calls_progress(stage: str, calls: dict[str, Any]) -> dict[str, Any]:
    """Stages with no checkpoint file resume from the call cache: the calls it holds for the stage."""
    c = calls.get(stage, {})
    return _progress("calls", c.get("ok", 0), c.get("failed", 0), None, "calls.db")


def _enrich_progress(run: RunDir) -> dict[str, Any]:
    """Personas to enrich (``personas/personas.jsonl``) and the enrichment calls already cached for them.

    Each persona takes one enrichment call (``personas.enrich``); a persona the judge rejects is
    resampled and takes another, so ``done`` is capped at ``expected``.
    """
    expected = None
    path = run.path / "personas" / "personas.jsonl"
    if path.is_file():
        text = path.read_text(encoding="utf-8", errors="replace")
        expected = sum(1 for line in text.splitlines() if line.strip())
    ok = failed = 0
    try:
        # one row per distinct call: ok once any attempt of it succeeded (a retried failure is not counted)
        sql = "SELECT MAX(status = 'ok') FROM calls WHERE purpose = ? GROUP BY cache_key"
        rows = _query_calls(run.calls_db, sql, ("personas.enrich",)) if run.calls_db.exists() else []
        ok = sum(1 for (is_ok,) in rows if is_ok)
        failed = len(rows) - ok
    except sqlite3.Error:
        pass
    done = min(ok, expected) if expected is not None else ok
    return _progress("personas", done, failed, expected, "calls.db (personas.enrich)")


def stage_progress(run: RunDir, stage: str, record: dict[str, Any], calls: dict[str, Any]) -> dict[str, Any]:
    """How far a stage got: ``{"unit", "done", "failed", "expected", "source"}``.

    A finished stage reports its record (items, ok, failed). An unfinished one (running, interrupted,
    failed) is read from what it leaves while running: the feedback checkpoint (pairs), bench task
    results (tasks), the cached enrichment calls (personas); other stages from their cached calls
    (``expected`` None: not known before the stage ends).
    """
    state = record.get("status", "pending")
    if state == "done":
        return _progress(
            "items",
            int(record.get("ok", 0)),
            int(record.get("failed", 0)),
            int(record.get("items", 0)),
            "manifest.json",
        )
    if state == "pending" or not record:
        return _progress("items", 0, 0, None, "")
    if stage == "feedback":
        return _feedback_progress(run)
    if stage == "bench":
        return _bench_progress(run, record)
    if stage == "enrich":
        return _enrich_progress(run)
    return _calls_progress(stage, calls)


def format_progress(p: dict[str, Any] | None) -> str:
    """``"7/12 pairs"``, ``"7/12 pairs, 1 failed"``, ``"40 calls"``; empty when nothing is known."""
    if not p or (not p.get("source")):
        return ""
    text = f"{p['done']}/{p['expected']}" if p.get("expected") is not None else f"{p['done']}"
    text += f" {p['unit']}"
    if p.get("failed"):
        text += f", {p['failed']} failed"
    return text


STATUS_SCHEMA_VERSION = 1


class StageStatus(BaseModel):
    """One stage of a run, as ``status`` shows it."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    stage: str
    """Stage name (census, personas, enrich, prompts, feedback, bench, report)."""
    status: str
    """pending, running, done, failed or interrupted (running with no live writer)."""
    items: int = 0
    """Work items the stage attempted."""
    ok: int = 0
    """Items that ended as a result."""
    failed: int = 0
    """Items that ended as a recorded failure."""
    duration_s: float | None = None
    """Wall time of the stage's last run."""
    calls: int = 0
    """Model calls logged for this stage (by purpose tag)."""
    calls_failed: int = 0
    """Of those, calls that failed after retries."""
    tokens: int = 0
    """Prompt + completion tokens of those calls."""
    error: str | None = None
    """Why the stage failed, one line."""
    failures: list[dict[str, Any]] = Field(default_factory=list)
    """Recorded item failures (``item``, ``reason``)."""
    progress: dict[str, Any] | None = None
    """Items done so far inside a running or interrupted stage."""


class StatusTotals(BaseModel):
    """Sums over the whole run."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    calls: int = 0
    """Model calls logged."""
    ok: int = 0
    """Calls that succeeded."""
    failed: int = 0
    """Calls that failed after retries."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_s: float = 0.0
    """Sum of request durations (model latency, not wall time; queue wait apart)."""
    queue_s: float | None = None
    """Sum of the calls' waits for a concurrency slot (None: call log written before it was kept)."""
    stage_s: float = 0.0
    """Sum of stage wall times."""
    failed_items: int = 0
    """Work items recorded as failures, all stages."""


class RunStatus(BaseModel):
    """What ``persona-testbed status --json`` prints (``schema_version`` changes with the layout)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    schema_version: int = STATUS_SCHEMA_VERSION
    run: str
    """The run directory."""
    name: str | None = None
    status: str
    """pending, running, done, failed or interrupted."""
    pid: int | None = None
    """The process holding the run lock, if any."""
    package_version: str | None = None
    seed: int | None = None
    models: dict[str, Any] = Field(default_factory=dict)
    """Model string per role."""
    stages: list[StageStatus] = Field(default_factory=list)
    calls: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Call counts per stage (from the call log)."""
    totals: StatusTotals = Field(default_factory=StatusTotals)


def run_status(path: str | Path, writer: str | None = None) -> dict[str, Any]:
    """``run_status_record`` as JSON-ready data (what ``status --json`` prints)."""
    return run_status_record(path, writer).model_dump(mode="json")


def run_status_record(path: str | Path, writer: str | None = None) -> RunStatus:
    """The typed status of a run directory.

    Each stage row counts its work items (``items``, ``ok``, ``failed``) and its logged model calls
    (``calls``, ``calls_failed``: calls whose purpose tag belongs to the stage, see ``stage_of_purpose``);
    ``totals`` sums the calls over all stages (``calls``, ``ok``, ``failed``) and the failed items.

    ``writer``: the stage of *this* process that is writing the run right now (the pipeline's report
    stage reports on a finished run: its own lock and its own stage count as done).
    """
    run = RunDir(path)
    if not run.path.is_dir():
        raise UserError(f"{run.path}: no such run directory")
    if not run.manifest_path.is_file():
        raise UserError(f"{run.path}: not a run directory (no manifest.json)")
    manifest = run.read_manifest()
    holder = None if writer else lock_holder(run)
    calls = call_stats(run.calls_db)
    records = manifest.get("stages", {})
    order = list(manifest.get("stage_order") or records)
    order += [s for s in records if s not in order]
    stages = []
    for name in order:
        rec = records.get(name, {})
        state = rec.get("status", "pending")
        if writer and name == writer:
            state = "done"
        elif state == "running" and holder is None:
            state = "interrupted"
        c = calls.get(name, {})
        progress = stage_progress(run, name, {**rec, "status": state} if rec else {}, calls)
        stages.append(
            {
                "stage": name,
                "status": state,
                "items": rec.get("items", 0),
                "ok": rec.get("ok", 0),
                "failed": rec.get("failed", 0),
                "duration_s": rec.get("duration_s"),
                "calls": c.get("calls", 0),
                "calls_failed": c.get("failed", 0),
                "tokens": c.get("prompt_tokens", 0) + c.get("completion_tokens", 0),
                "error": rec.get("error"),
                "failures": rec.get("failures", []),
                "progress": progress,
            }
        )
    totals = {
        k: sum(v.get(k, 0) for v in calls.values())
        for k in ("calls", "ok", "failed", "prompt_tokens", "completion_tokens")
    }
    totals["model_s"] = round(sum(v.get("model_s", 0.0) for v in calls.values()), 3)
    queues = [v["queue_s"] for v in calls.values() if v.get("queue_s") is not None]
    totals["queue_s"] = round(sum(queues), 3) if queues else None
    totals["stage_s"] = round(sum(float(r.get("duration_s") or 0) for r in records.values()), 3)
    totals["failed_items"] = sum(s["failed"] for s in stages)
    run_state = manifest.get("status", "pending")
    if writer:
        run_state = "failed" if any(s["status"] in ("failed", "interrupted") for s in stages) else "done"
    elif holder is not None:
        run_state = "running"
    elif run_state == "running":
        run_state = "interrupted"
    return RunStatus(
        run=str(run.path),
        name=manifest.get("name"),
        status=run_state,
        pid=holder,
        package_version=manifest.get("package_version"),
        seed=manifest.get("seed"),
        models=manifest.get("models", {}),
        stages=[StageStatus(**s) for s in stages],
        calls=calls,
        totals=StatusTotals(**totals),
    )


__all__ = [
    "RunStatus",
    "StageStatus",
    "StatusTotals",
    "run_status_record",
    "call_stats",
    "format_progress",
    "lock_holder",
    "run_status",
    "stage_of_purpose",
    "stage_progress",
]

"""What a run directory holds: per stage done / failed / pending, calls, tokens and time.

Read-only: built from ``manifest.json`` and ``calls.db``; safe to call while the run is writing.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from typing import Any

from ..errors import UserError
from .rundir import RunDir

# Purpose tags in the call log start with the stage that made the call ("feedback.critique" ...).
PURPOSE_STAGE = {"census": "census", "personas": "personas", "enrich": "enrich", "persona": "enrich",
                 "prompts": "prompts", "prompt": "prompts", "feedback": "feedback", "dpf": "feedback",
                 "bench": "bench", "report": "report"}


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


def call_stats(db: Path) -> dict[str, dict[str, Any]]:
    """Per stage (from the purpose tag): calls, ok, failed, prompt/completion tokens, model seconds."""
    if not db.exists():
        return {}
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise UserError(f"{db}: cannot open call log ({exc})") from None
    try:
        rows = conn.execute(
            "SELECT purpose, status, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(latency_s)"
            " FROM calls GROUP BY purpose, status").fetchall()
    except sqlite3.Error as exc:
        if "no such table" in str(exc):
            return {}
        raise UserError(f"{db}: not a readable call log ({exc})") from None
    finally:
        conn.close()
    out: dict[str, dict[str, Any]] = {}
    for purpose, status, n, pt, ct, lat in rows:
        s = out.setdefault(stage_of_purpose(purpose), {"calls": 0, "ok": 0, "failed": 0, "prompt_tokens": 0,
                                                       "completion_tokens": 0, "model_s": 0.0})
        s["calls"] += n
        s["ok" if status == "ok" else "failed"] += n
        s["prompt_tokens"] += int(pt or 0)
        s["completion_tokens"] += int(ct or 0)
        s["model_s"] = round(s["model_s"] + float(lat or 0.0), 3)
    return out


def run_status(path: str | Path, writer: str | None = None) -> dict[str, Any]:
    """The status document of a run directory (what ``persona-testbed status --json`` prints).

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
        stages.append({
            "stage": name, "status": state, "items": rec.get("items", 0), "ok": rec.get("ok", 0),
            "failed": rec.get("failed", 0), "duration_s": rec.get("duration_s"),
            "calls": c.get("calls", 0), "failed_calls": c.get("failed", 0),
            "tokens": c.get("prompt_tokens", 0) + c.get("completion_tokens", 0),
            "error": rec.get("error"),
            "failures": rec.get("failures", []),
        })
    totals = {k: sum(v.get(k, 0) for v in calls.values())
              for k in ("calls", "ok", "failed", "prompt_tokens", "completion_tokens")}
    totals["model_s"] = round(sum(v.get("model_s", 0.0) for v in calls.values()), 3)
    totals["stage_s"] = round(sum(float(r.get("duration_s") or 0) for r in records.values()), 3)
    totals["failed_items"] = sum(s["failed"] for s in stages)
    run_state = manifest.get("status", "pending")
    if writer:
        run_state = "failed" if any(s["status"] in ("failed", "interrupted") for s in stages) else "done"
    elif holder is not None:
        run_state = "running"
    elif run_state == "running":
        run_state = "interrupted"
    return {"run": str(run.path), "name": manifest.get("name"), "status": run_state, "pid": holder,
            "package_version": manifest.get("package_version"), "seed": manifest.get("seed"),
            "models": manifest.get("models", {}), "stages": stages, "calls": calls, "totals": totals}


__all__ = ["run_status", "call_stats", "lock_holder", "stage_of_purpose"]

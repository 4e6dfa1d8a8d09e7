"""`persona-testbed status` on a run interrupted mid-stage: the work items the stage already finished
(checkpointed pairs, bench task results, cached enrichment calls) are counted against those expected,
in `--json` and in the table. The partial states are made from a finished stub run, as a killed run
leaves them: the stage record still says `running` (nobody holds the lock), no final artifact."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from e2e_tools import e2e_env, shared_home, stub, stub_config  # noqa: F401 (fixtures)


def _set_running(out: Path, stage: str, later: tuple[str, ...] = ()) -> None:
    """Make ``stage`` look killed mid-way: status running, started now; ``later`` stages never ran."""
    m = json.loads((out / "manifest.json").read_text())
    m["status"] = "running"
    m["stages"][stage] = {
        "status": "running",
        "input_hash": m["stages"][stage]["input_hash"],
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "pid": 999999,
    }
    for name in later:
        m["stages"].pop(name, None)
    (out / "manifest.json").write_text(json.dumps(m))


def _stage(doc: dict, name: str) -> dict:
    return next(s for s in doc["stages"] if s["stage"] == name)


def test_status_counts_items_finished_inside_an_interrupted_stage(cli, e2e_env, stub, mirror, tmp_path):
    cfg = stub_config(tmp_path, mirror, stub.base_url, enrich=True, pairs=(2, 1, 1))
    out = tmp_path / "run"
    r = cli("run", cfg, "--out", out, "--quiet")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(cli("status", out, "--json").stdout)
    fb = _stage(doc, "feedback")
    assert fb["progress"] == {
        "unit": "items",
        "done": 12,
        "failed": 0,
        "expected": 12,
        "source": "manifest.json",
    }
    manifest_done = (out / "manifest.json").read_text()

    # -- feedback killed after 5 pairs: a torn last line, a failed pair, a stale entry of another config
    lines = (out / "feedback" / "pairs.checkpoint.jsonl").read_text().splitlines()
    assert len(lines) == 12
    failed = dict(json.loads(lines[5]), status="failed", error="timeout")
    stale = dict(json.loads(lines[6]), config_key="another-model")
    foreign = dict(json.loads(lines[7]), id="pair-not-in-the-plan")
    partial = lines[:5] + [json.dumps(failed), json.dumps(stale), json.dumps(foreign), lines[8][:40]]
    (out / "feedback" / "pairs.checkpoint.jsonl").write_text("\n".join(partial))
    (out / "feedback" / "pairs.jsonl").unlink()
    _set_running(out, "feedback", later=("bench", "report"))
    doc = json.loads(cli("status", out, "--json").stdout)
    assert doc["status"] == "interrupted"
    fb = _stage(doc, "feedback")
    assert fb["status"] == "interrupted"
    assert fb["progress"] == {
        "unit": "pairs",
        "done": 5,
        "failed": 1,
        "expected": 12,
        "source": "feedback/pairs.checkpoint.jsonl",
    }
    assert _stage(doc, "bench")["progress"]["expected"] is None  # not started
    table = cli("status", out).stdout
    assert "5/12 pairs, 1 failed" in table
    # the interrupted run resumes to the full set
    r = cli("run", "--resume", out, "--quiet", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads((out / "manifest.json").read_text())["stages"]["feedback"]["summary"]["pairs"] == 12
    manifest_done = (out / "manifest.json").read_text()

    # -- bench killed after two of its five tasks wrote their results
    tasks = ["main", "passk", "loo", "intersections", "fidelity"]
    old = time.time() - 3600
    for name in tasks:
        os.utime(out / "bench" / name / "results.json", (old, old))
    _set_running(out, "bench", later=("report",))
    for name in tasks[:2]:
        os.utime(out / "bench" / name / "results.json")
    doc = json.loads(cli("status", out, "--json").stdout)
    assert _stage(doc, "bench")["progress"] == {
        "unit": "tasks",
        "done": 2,
        "failed": 0,
        "expected": 5,
        "source": "bench/<task>/results.json",
    }
    assert "2/5 tasks" in cli("status", out).stdout

    # -- enrichment killed after one persona's call; prompts killed mid-classification (calls only)
    (out / "manifest.json").write_text(manifest_done)
    conn = sqlite3.connect(out / "calls.db")
    try:
        keys = [
            k
            for (k,) in conn.execute(
                "SELECT cache_key FROM calls WHERE purpose = 'personas.enrich'"
                " AND status = 'ok' ORDER BY created"
            )
        ]
        assert len(set(keys)) >= 3
        conn.execute("DELETE FROM calls WHERE purpose = 'personas.enrich' AND cache_key != ?", (keys[0],))
        conn.commit()
        classified = conn.execute(
            "SELECT COUNT(*) FROM calls WHERE purpose = 'prompts.controversy' AND status = 'ok'"
        ).fetchone()[0]
    finally:
        conn.close()
    _set_running(out, "enrich", later=("prompts", "feedback", "bench", "report"))
    doc = json.loads(cli("status", out, "--json").stdout)
    assert _stage(doc, "enrich")["progress"] == {
        "unit": "personas",
        "done": 1,
        "failed": 0,
        "expected": 3,
        "source": "calls.db (personas.enrich)",
    }
    (out / "manifest.json").write_text(manifest_done)
    _set_running(out, "prompts", later=("feedback", "bench", "report"))
    doc = json.loads(cli("status", out, "--json").stdout)
    assert classified == 12
    assert _stage(doc, "prompts")["progress"] == {
        "unit": "calls",
        "done": 12,
        "failed": 0,
        "expected": None,
        "source": "calls.db",
    }
    assert "12 calls" in cli("status", out).stdout

"""The pipeline engine with stand-in stages: skip when unchanged, re-run when changed or incomplete,
retry only stages with recorded failures, status from manifest + calls.db, and the run lock."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from persona_testbed.core.errors import UserError
from persona_testbed.pipeline.config import parse_config
from persona_testbed.pipeline.engine import ItemFailure, Stage, StageOutcome, run_pipeline
from persona_testbed.pipeline.rundir import RunDir
from persona_testbed.pipeline.status import run_status


class Recorder:
    """Stand-in stages: 'a' writes a file from config; 'b' reads it and fails items listed in ``flaky``."""

    def __init__(self):
        self.calls: list[str] = []
        self.flaky: set[int] = {2}

    def stage_a(self, ctx, cfg):
        self.calls.append("a")
        out = ctx.dir / "a.json"
        out.write_text(json.dumps({"n": cfg.personas.n}))
        return StageOutcome(items=1, ok=1, artifacts=[ctx.rel(out)])

    def stage_b(self, ctx, cfg):
        self.calls.append("b")
        n = json.loads((ctx.run.path / "a" / "a.json").read_text())["n"]
        results = {i: ("fail" if i in self.flaky else "ok") for i in range(n)}
        out = ctx.dir / "b.json"
        out.write_text(json.dumps(results, sort_keys=True))
        fails = [ItemFailure(item=f"item-{i}", reason="HTTP 503") for i, r in results.items() if r == "fail"]
        return StageOutcome(
            items=n, ok=n - len(fails), failed=len(fails), failures=fails, artifacts=[ctx.rel(out)]
        )

    def stages(self):
        return [
            Stage("a", (), lambda c: {"n": c.personas.n}, self.stage_a),
            Stage("b", ("a",), lambda c: {}, self.stage_b),
        ]


def _cfg(n=4, **kw):
    return parse_config({"personas": {"n": n}, "prompts": {"source": "prism"}, **kw})


def test_skip_rerun_retry(tmp_path):
    rec = Recorder()
    run = RunDir(tmp_path / "run")
    m = run_pipeline(run, _cfg(), quiet=True, stages=rec.stages())
    assert rec.calls == ["a", "b"] and m["status"] == "done"
    assert m["stages"]["b"]["failed"] == 1 and m["stages"]["b"]["failures"][0]["item"] == "item-2"
    assert (run.path / "config.toml").is_file()
    # unchanged -> everything skipped
    run_pipeline(run, _cfg(), quiet=True, stages=rec.stages())
    assert rec.calls == ["a", "b"]
    # retry-failed: only the stage holding failures runs again
    rec.flaky = set()
    m = run_pipeline(run, _cfg(), quiet=True, retry_failed=True, stages=rec.stages())
    assert rec.calls == ["a", "b", "b"] and m["stages"]["b"]["failed"] == 0
    # a retry with nothing failed does nothing
    run_pipeline(run, _cfg(), quiet=True, retry_failed=True, stages=rec.stages())
    assert rec.calls == ["a", "b", "b"]
    # changed config -> 'a' re-runs, and 'b' because its input artifact changed
    run_pipeline(run, _cfg(n=5), quiet=True, stages=rec.stages())
    assert rec.calls == ["a", "b", "b", "a", "b"]
    # a damaged artifact makes its stage incomplete -> re-run; downstream unchanged -> skipped
    (run.path / "b" / "b.json").write_text("{}")
    run_pipeline(run, _cfg(n=5), quiet=True, stages=rec.stages())
    assert rec.calls[-1] == "b" and len(rec.calls) == 6


def test_interrupted_stage_resumes_and_status_says_so(tmp_path):
    rec = Recorder()
    run = RunDir(tmp_path / "run")

    def boom(ctx, cfg):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pipeline(
            run, _cfg(), quiet=True, stages=[rec.stages()[0], Stage("b", ("a",), lambda c: {}, boom)]
        )
    st = run_status(run.path)
    assert [(s["stage"], s["status"]) for s in st["stages"]] == [("a", "done"), ("b", "interrupted")]
    run_pipeline(run, _cfg(), quiet=True, stages=rec.stages())
    assert rec.calls == ["a", "b"]  # a skipped on resume


def test_user_error_in_first_stage_leaves_no_run_directory(tmp_path):
    def bad(ctx, cfg):
        (ctx.dir / "half.txt").write_text("x")
        raise UserError("psam_p10.csv: missing PUMS column 'AGEP'")

    run = RunDir(tmp_path / "run")
    with pytest.raises(UserError):
        run_pipeline(run, _cfg(), quiet=True, stages=[Stage("a", (), lambda c: {}, bad)])
    assert not run.path.exists()


def test_status_cli_reads_manifest_and_calls(cli, tmp_path):
    import sqlite3

    rec = Recorder()
    run = RunDir(tmp_path / "run")
    run_pipeline(run, _cfg(), quiet=True, stages=rec.stages())
    for suffix in ("", "-wal", "-shm"):  # a call log in a minimal layout of its own instead of the session's
        Path(f"{run.calls_db}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(run.calls_db)
    conn.execute(
        "CREATE TABLE calls (id TEXT, purpose TEXT, status TEXT, prompt_tokens INT, completion_tokens INT,"
        " latency_s REAL)"
    )
    conn.executemany(
        "INSERT INTO calls VALUES (?,?,?,?,?,?)",
        [("1", "b.x", "ok", 10, 5, 0.1), ("2", "b.x", "failed", 0, 0, 0.2), ("3", "zzz", "ok", 1, 1, 0)],
    )
    conn.commit()
    conn.close()
    r = cli("status", run.path, "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["status"] == "done"
    b = [s for s in doc["stages"] if s["stage"] == "b"][0]
    assert (b["status"], b["items"], b["failed"]) == ("done", 4, 1)
    assert (
        doc["totals"]["calls"] == 3 and doc["totals"]["failed"] == 1 and doc["totals"]["prompt_tokens"] == 11
    )
    assert doc["totals"]["failed_items"] == 1
    r = cli("status", run.path)
    assert r.exit_code == 0 and "item-2" in r.stdout and "HTTP 503" in r.stdout
    r = cli("status", tmp_path / "nothing")
    assert r.exit_code == 2 and "no such run directory" in r.stderr


def test_second_run_on_locked_directory_is_a_clear_error(cli, tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.config_path.write_text('name = "locked"\n')
    run.update_manifest(name="locked", status="running", stages={})
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import time
        from persona_testbed.pipeline.rundir import RunDir
        with RunDir({str(run.path)!r}).locked():
            print("locked", flush=True)
            time.sleep(60)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = run.manifest_path.read_text()
        r = cli("run", "--resume", run.path)
        assert r.exit_code == 2
        assert "is in use by another persona-testbed process" in r.stderr and r.stderr.count("\n") == 1
        assert run.manifest_path.read_text() == before  # nothing touched
        doc = json.loads(cli("status", run.path, "--json").stdout)
        assert doc["status"] == "running" and doc["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    doc = json.loads(cli("status", run.path, "--json").stdout)
    assert doc["status"] == "interrupted" and doc["pid"] is None

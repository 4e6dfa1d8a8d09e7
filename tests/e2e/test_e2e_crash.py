"""Crash drill: SIGKILL a running pipeline at several points (during prompts, twice during feedback),
resume each time; the final artifacts equal an uninterrupted run's, with no duplicate or missing item.
Also: a second `run --resume` while the first is running exits with a clear error (the run lock)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from e2e_tools import e2e_env, schema_responder, shared_home, stub_config  # noqa: F401 (fixtures)

from persona_testbed.llm.stub_server import StubServer


def _start(args: list[str], home: Path) -> subprocess.Popen:
    env = dict(os.environ, PERSONA_TESTBED_HOME=str(home))
    return subprocess.Popen(
        [sys.executable, "-m", "persona_testbed", *args, "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 240) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended before the kill point: {proc.returncode} {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError("kill point never reached")


def _stage_status(out: Path, stage: str) -> str | None:
    try:
        return json.loads((out / "manifest.json").read_text())["stages"].get(stage, {}).get("status")
    except (OSError, ValueError, KeyError):
        return None


def _checkpoint_lines(out: Path) -> int:
    try:
        return (out / "feedback" / "pairs.checkpoint.jsonl").read_text().count("\n")
    except OSError:
        return 0


def _checkpointed_ok(out: Path) -> int:
    """Distinct ok pairs in the feedback checkpoint (a torn last line skipped)."""
    ok = {}
    for line in (out / "feedback" / "pairs.checkpoint.jsonl").read_text().splitlines():
        try:
            pair = json.loads(line)
        except ValueError:
            continue
        ok[pair["id"]] = pair["status"] == "ok"
    return sum(ok.values())


def _strip_call_ids(obj):
    """Call-log row ids differ between two runs; everything else must not."""
    if isinstance(obj, dict):
        return {k: _strip_call_ids(v) for k, v in obj.items() if k not in ("call_id", "call_ids")}
    if isinstance(obj, list):
        return [_strip_call_ids(v) for v in obj]
    return obj


def _content(path: Path) -> list[dict]:
    return [_strip_call_ids(json.loads(x)) for x in path.read_text().splitlines()]


def test_sigkill_and_resume_equals_uninterrupted(cli, e2e_env, mirror, tmp_path):
    with StubServer(responder=schema_responder, latency_s=0.08) as srv:
        cfg = stub_config(tmp_path, mirror, srv.base_url, bench=False, pairs=(2, 1, 1), concurrency=2)
        ref = tmp_path / "reference"
        r = cli("run", cfg, "--out", ref, "--quiet")
        assert r.exit_code == 0, r.stderr

        out = tmp_path / "crashy"
        kills = 0
        proc = _start(["run", str(cfg), "--out", str(out)], e2e_env)
        # kill point 1: as soon as the prompts stage is running (personas done)
        _wait_for(lambda: _stage_status(out, "prompts") == "running", proc)
        second = cli("run", "--resume", out)  # the lock: a second writer is refused
        assert second.exit_code == 2 and "in use by another persona-testbed process" in second.stderr
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        assert json.loads(cli("status", out, "--json").stdout)["status"] == "interrupted"
        # kill points 2 and 3: in the middle of feedback generation
        for lines in (2, 7):
            proc = _start(["run", "--resume", str(out)], e2e_env)
            _wait_for(lambda lines=lines: _checkpoint_lines(out) >= lines, proc)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            assert _stage_status(out, "feedback") == "running"
            assert not (out / "feedback" / "pairs.jsonl").exists()  # no half-written final artifact
            # status counts the pairs the killed stage checkpointed, of the 12 planned
            fb = next(
                s
                for s in json.loads(cli("status", out, "--json").stdout)["stages"]
                if s["stage"] == "feedback"
            )
            assert fb["status"] == "interrupted"
            assert fb["progress"]["expected"] == 12 and fb["progress"]["unit"] == "pairs"
            assert fb["progress"]["done"] == _checkpointed_ok(out) >= lines - 1  # the last line may be torn
            assert f"{fb['progress']['done']}/12 pairs" in cli("status", out).stdout
        proc = _start(["run", "--resume", str(out)], e2e_env)
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
        assert kills == 3

    assert (out / "personas/personas.jsonl").read_text() == (ref / "personas/personas.jsonl").read_text()
    assert _content(out / "prompts/prompts.jsonl") == _content(ref / "prompts/prompts.jsonl")
    got, want = _content(out / "feedback" / "pairs.jsonl"), _content(ref / "feedback" / "pairs.jsonl")
    ids = [p["id"] for p in got]
    assert len(ids) == len(set(ids)) == 12  # no duplicate, none missing
    assert got == want
    status = json.loads(cli("status", out, "--json").stdout)
    assert status["status"] == "done" and status["totals"]["failed_items"] == 0
    feedback = [s for s in status["stages"] if s["stage"] == "feedback"][0]
    assert feedback["status"] == "done" and feedback["items"] == 12

"""Resume after SIGKILL: a killed `feedback generate` subprocess, re-run, equals an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from persona_testbed.llm.stub_server import StubServer


def _cmd(personas, prompts, out):
    return [
        sys.executable,
        "-m",
        "persona_testbed",
        "feedback",
        "generate",
        "--personas",
        str(personas),
        "--prompts",
        str(prompts),
        "--model",
        "openai/stub",
        "--out",
        str(out),
        "--train",
        "3",
        "--test",
        "2",
        "--held-out",
        "1",
        "--concurrency",
        "2",
        "--seed",
        "11",
        "--json",
    ]


def _content(path):
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    for r in rows:
        r.pop("call_ids")
    return rows


def test_sigkill_then_resume_equals_uninterrupted(tmp_path, input_files, scripted, cli, monkeypatch):
    personas, prompts = input_files
    with StubServer(latency_s=0.06, responder=lambda req: scripted(req["messages"])) as srv:
        env = dict(os.environ, OPENAI_BASE_URL=srv.base_url, OPENAI_API_KEY="sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        ref = cli(*_cmd(personas, prompts, tmp_path / "ref")[3:])  # the uninterrupted reference, in-process
        assert ref.exit_code == 0, ref.stderr

        out = tmp_path / "killed"
        proc = subprocess.Popen(
            _cmd(personas, prompts, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        checkpoint = out / "pairs.checkpoint.jsonl"
        deadline = time.time() + 60
        while time.time() < deadline:
            if checkpoint.exists() and len(checkpoint.read_text().splitlines()) >= 4:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        finished_before = len(checkpoint.read_text().splitlines())
        assert 4 <= finished_before < 18, "the kill must land mid-run"
        assert not (out / "pairs.jsonl").exists()

        requests_before = srv.stats["requests"]
        resumed = subprocess.run(
            _cmd(personas, prompts, out), env=env, capture_output=True, text=True, timeout=120
        )
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(resumed.stdout)["pairs"] == 18
        resume_requests = srv.stats["requests"] - requests_before

    assert _content(out / "pairs.jsonl") == _content(tmp_path / "ref" / "pairs.jsonl")
    ids = [r["id"] for r in _content(out / "pairs.jsonl")]
    assert len(ids) == len(set(ids)) == 18 and ids == sorted(ids)
    # finished calls were not repeated: each ok cache key appears once in the call log
    with sqlite3.connect(out / "calls.db") as db:
        keys = [k for (k,) in db.execute("SELECT cache_key FROM calls WHERE status = 'ok'")]
    assert len(keys) == len(set(keys))
    with sqlite3.connect(tmp_path / "ref" / "calls.db") as db:
        ref_requests = db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    assert resume_requests < ref_requests

"""Failures that speak: with an unreachable model server every stage that calls a model stops with one
line naming the cause ("connection refused at <url> for F of N calls") and exit code 3, and `status`
counts the failed calls per stage. `status` itself writes nothing into the run directory.

The unreachable server is a bound socket that never listens: its port refuses every connection and no
other process can take it while the test runs.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_tools import QUESTIONS, e2e_env, shared_home, stub_config  # noqa: F401 (fixtures)

from factories import make_persona
from persona_testbed.core.errors import CallsFailingError
from persona_testbed.llm import CallStore, ChatParams, LLMClient, MockBackend, PermanentError
from persona_testbed.personas import write_personas
from persona_testbed.prompts.build import PromptBuildConfig, assign_clusters_and_split, make_prompts
from persona_testbed.prompts.io import write_prompts
from persona_testbed.prompts.record import FilterVerdict


@pytest.fixture
def refused() -> Iterator[str]:
    """Base URL of a port that refuses connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def one_line_cause(stderr: str, url: str) -> re.Match[str]:
    """The one ``error:`` line (a progress bar may share stderr) names the cause and counts the calls."""
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    m = re.search(rf"connection refused at {re.escape(url)} for (\d+) of (\d+) calls$", errors[0])
    assert m, stderr
    assert m.group(1) == m.group(2) and int(m.group(2)) >= 1, stderr
    return m


def _stage(doc: dict, name: str) -> dict:
    return next(s for s in doc["stages"] if s["stage"] == name)


# -- status: failed calls per stage, read-only -----------------------------------------------------------


def _fake_finished_run(out: Path) -> None:
    """A finished run as `run` leaves it: manifest (all stages done) and a calls.db in WAL mode, closed."""
    out.mkdir()
    stages = ["census", "personas", "enrich", "prompts", "feedback"]
    (out / "manifest.json").write_text(
        json.dumps(
            {
                "name": "fake",
                "status": "done",
                "seed": 1,
                "stage_order": stages,
                "stages": {
                    s: {"status": "done", "items": 3, "ok": 3, "failed": 0, "duration_s": 1.0} for s in stages
                },
            }
        )
    )
    store = CallStore(out / "calls.db")
    replies = [
        "fine",
        PermanentError("HTTP 500: boom"),
        PermanentError("HTTP 500: boom"),
        "fine",
        PermanentError("HTTP 401: no"),
        "fine",
    ]
    purposes = ["prompts.controversy"] * 3 + ["feedback.critique", "personas.enrich", "personas.enrich"]
    with LLMClient(backend=MockBackend(replies), store=store) as client:
        for i, purpose in enumerate(purposes):
            client.chat_sync(
                [{"role": "user", "content": f"q{i}"}], params=ChatParams(seed=i), purpose=purpose
            )
    store.close()


def test_status_counts_failed_calls_per_stage_and_writes_nothing(cli, tmp_path):
    out = tmp_path / "run"
    _fake_finished_run(out)
    assert not (out / "calls.db-wal").exists() and not (out / "calls.db-shm").exists()
    before = snapshot(out)
    r = cli("status", out, "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    rows = {s["stage"]: (s["calls"], s["calls_failed"]) for s in doc["stages"]}
    assert rows == {
        "census": (0, 0),
        "personas": (0, 0),
        "enrich": (2, 1),
        "prompts": (3, 2),
        "feedback": (1, 0),
    }
    assert (doc["totals"]["calls"], doc["totals"]["ok"], doc["totals"]["failed"]) == (6, 3, 3)
    assert cli("status", out).exit_code == 0
    assert snapshot(out) == before  # no -wal, no -shm, nothing rewritten


def test_status_sees_calls_still_in_the_wal_of_a_running_writer(cli, tmp_path):
    out = tmp_path / "run"
    _fake_finished_run(out)
    store = CallStore(out / "calls.db")  # a writer holds the log open: rows sit in calls.db-wal
    try:
        with LLMClient(backend=MockBackend([PermanentError("HTTP 500: boom")]), store=store) as client:
            client.chat_sync([{"role": "user", "content": "late"}], purpose="prompts.controversy")
        assert (out / "calls.db-wal").exists()
        doc = json.loads(cli("status", out, "--json").stdout)
        assert _stage(doc, "prompts")["calls_failed"] == 3 and doc["totals"]["calls"] == 7
    finally:
        store.close()


def test_breaker_exit_code_is_3_not_2():
    assert CallsFailingError.exit_code == 3


# -- every stage command against a refused port --------------------------------------------------------


def test_run_stops_at_the_first_model_stage_with_exit_3(cli, e2e_env, mirror, tmp_path, refused):
    cfg = stub_config(tmp_path, mirror, refused, bench=False, max_retries=0)
    out = tmp_path / "run"
    r = cli("run", cfg, "--out", out, "--quiet")
    assert r.exit_code == 3, (r.stdout, r.stderr)
    m = one_line_cause(r.stderr, refused)
    assert "passed the filters" not in r.stderr
    before = snapshot(out)
    doc = json.loads(cli("status", out, "--json").stdout)
    prompts = _stage(doc, "prompts")
    assert prompts["status"] == "failed"
    assert prompts["calls_failed"] == prompts["calls"] == int(m.group(2))
    assert doc["totals"]["failed"] == int(m.group(2))
    assert snapshot(out) == before


def test_prompts_build_exits_3(cli, e2e_env, tmp_path, refused, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", refused)
    src = tmp_path / "questions.txt"
    src.write_text("\n".join(QUESTIONS) + "\n", encoding="utf-8")
    r = cli("prompts", "build", "--source", src, "--model", "openai/x", "--out", tmp_path / "prompts")
    assert r.exit_code == 3, (r.stdout, r.stderr)
    one_line_cause(r.stderr, refused)


@pytest.fixture
def inputs(tmp_path) -> tuple[Path, Path]:
    """3 personas and 8 kept prompts (6 train, 2 held-out) on disk."""
    personas = [make_persona(f"p-{i}", serialno=f"2024HU{i:07d}", age=str(25 + 10 * i)) for i in range(3)]
    prompts = make_prompts([(i, f"Contested question number {i} about values?") for i in range(1, 9)], "test")
    for p in prompts:
        p.verdicts["question_mark"] = FilterVerdict(verdict="pass")
    assign_clusters_and_split(prompts, PromptBuildConfig(clusters=1, held_out_fraction=0.0))
    for p in prompts[6:]:
        p.split = "held_out"
    write_personas(personas, tmp_path / "personas")
    write_prompts(prompts, tmp_path / "prompts")
    return tmp_path / "personas", tmp_path / "prompts"


def test_feedback_generate_exits_3(cli, e2e_env, tmp_path, refused, monkeypatch, inputs):
    monkeypatch.setenv("OPENAI_BASE_URL", refused)
    personas, prompts = inputs
    r = cli(
        "feedback",
        "generate",
        "--personas",
        personas,
        "--prompts",
        prompts,
        "--model",
        "openai/x",
        "--out",
        tmp_path / "fb",
        "--train",
        "1",
        "--test",
        "1",
        "--held-out",
        "1",
    )
    assert r.exit_code == 3, (r.stdout, r.stderr)
    one_line_cause(r.stderr, refused)


def test_bench_run_exits_3(cli, e2e_env, tmp_path, refused, monkeypatch, inputs):
    monkeypatch.setenv("OPENAI_BASE_URL", refused)
    personas, prompts = inputs
    r = cli(
        "bench",
        "run",
        "main",
        "--candidate",
        "openai/x",
        "--judge",
        "openai/x",
        "--personas",
        personas,
        "--prompts",
        prompts,
        "--n",
        "2",
        "--mode",
        "persona",
        "--out",
        tmp_path / "bench",
    )
    assert r.exit_code == 3, (r.stdout, r.stderr)
    one_line_cause(r.stderr, refused)

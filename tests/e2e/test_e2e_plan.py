"""``persona-testbed plan``: a pilot on the stub, a finished run's log, an unreachable model."""

from __future__ import annotations

import json
from pathlib import Path

from e2e_tools import e2e_env, shared_home, stub, stub_config  # noqa: F401 (fixtures)

from persona_testbed.pipeline.config import load_config
from persona_testbed.pipeline.plan import base_calls

REPO = Path(__file__).resolve().parents[2]


def _steps(doc):
    return {(s["stage"], s["step"]): s for s in doc["steps"]}


def test_plan_from_pilot_and_from_run(cli, e2e_env, stub, mirror, tmp_path, monkeypatch):
    cfg = stub_config(tmp_path, mirror, stub.base_url)
    cfg.write_text(cfg.read_text().replace("[report]\nenabled = true", "[report]\nenabled = false"))
    monkeypatch.chdir(tmp_path)
    r = cli(
        "plan",
        cfg,
        "--rps",
        "10",
        "--tokens-per-s",
        "openai/stub=1000",
        "--price-in",
        "1",
        "--price-out",
        "2",
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["source"] == "pilot" and sorted(p.name for p in tmp_path.iterdir()) == [
        "drill.toml",
        "questions.txt",
    ]
    steps = _steps(doc)
    c = load_config(cfg)
    pairs = 3 * 3
    assert steps[("feedback", "feedback.critique")]["base_calls"] == pairs
    assert steps[("feedback", "feedback.judge_ba")]["calls"] >= pairs
    assert steps[("bench:main", "bench.main.judge")]["base_calls"] == c.bench.main.n * len(c.bench.main.modes)
    assert steps[("bench:loo", "bench.loo.judge")]["base_calls"] == c.bench.loo.n * (
        2 + len(c.bench.loo.attributes)
    )
    assert steps[("bench:fidelity", "bench.fidelity.persona_judge")]["base_calls"] == 2 * c.bench.fidelity.n
    assert all(s["prompt_tokens_per_call"] is not None for s in doc["steps"])
    t = doc["totals"]
    assert (
        t["calls"] == sum(s["calls"] for s in doc["steps"])
        and t["cost_usd"] > 0
        and t["wall_s"] >= t["calls"] / 10
    )
    assert any("projection" in a for a in doc["assumptions"])
    # the same numbers from a finished run's call log
    run = tmp_path / "run"
    assert cli("run", cfg, "--out", run, "--quiet").exit_code == 0
    r = cli("plan", cfg, "--from-run", run, "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["source"] == f"run:{run}" and doc["totals"]["prompt_tokens"] > 0
    # the table names it a projection
    r = cli("plan", cfg, "--no-pilot", "--rps", "5")
    assert r.exit_code == 0 and "PROJECTION" in r.stdout and "no call log" in r.stdout


def test_plan_unreachable_model_is_one_line_exit_2(cli, e2e_env, mirror, tmp_path, monkeypatch):
    cfg = stub_config(tmp_path, mirror, "http://127.0.0.1:9/v1", max_retries=0, timeout_s=1.0)
    monkeypatch.chdir(tmp_path)
    r = cli("plan", cfg)
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "pilot cannot reach the configured model" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drill.toml", "questions.txt"]


def test_plan_bad_options(cli, tmp_path):
    paper = REPO / "configs" / "paper.toml"
    r = cli("plan", paper, "--no-pilot", "--rps", "fast")
    assert r.exit_code == 2 and "--rps 'fast'" in r.stderr
    r = cli("plan", paper, "--no-pilot", "--prices", "cheap")
    assert r.exit_code == 2 and "unknown preset" in r.stderr


def test_paper_counts():
    cfg = load_config(REPO / "configs" / "paper.toml")
    calls = {(s, p): c for s, p, _, c in base_calls(cfg)}
    assert calls[("feedback", "feedback.chosen")] == 1586 * 200
    assert calls[("bench:fidelity", "bench.fidelity.matrix")] == 20 * 1 * 20 * 19

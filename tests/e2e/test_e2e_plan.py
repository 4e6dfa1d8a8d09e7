"""``persona-testbed plan``: a pilot on the stub, a finished run's log, an unreachable model."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from e2e_tools import e2e_env, shared_home, stub, stub_config  # noqa: F401 (fixtures)

from persona_testbed.pipeline.config import load_config
from persona_testbed.pipeline.plan import PRICE_PRESETS, PricePreset, base_calls, pricing

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


def test_plan_pilot_that_cannot_run_here_is_one_line_exit_2(cli, e2e_env, mirror, tmp_path, monkeypatch):
    cfg = stub_config(tmp_path, mirror, "http://127.0.0.1:9/v1")
    text = cfg.read_text()
    cfg.write_text(text.replace('"openai/stub"', '"vllm/Qwen/Qwen2.5-0.5B-Instruct"'))
    assert "vllm/" in cfg.read_text()
    monkeypatch.chdir(tmp_path)
    r = cli("plan", cfg)
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "pilot cannot run: vllm/Qwen/Qwen2.5-0.5B-Instruct" in r.stderr and "--no-pilot" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drill.toml", "questions.txt"]
    assert cli("plan", cfg, "--no-pilot", "--rps", "5").exit_code == 0  # counts need no model


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


def test_every_price_preset_has_a_source_a_date_and_a_label():
    assert PRICE_PRESETS
    for name, p in PRICE_PRESETS.items():
        assert p.source.strip(), name
        if p.provider is None:  # self-hosted: no provider's price to date
            assert p.price_in == p.price_out == 0 and "not a provider" in p.label(), name
            continue
        listed, checked = date.fromisoformat(p.date), date.fromisoformat(p.checked)
        assert listed <= checked, name
        assert f"as listed on {p.date}, check before relying on it" in p.label(), name
        assert p.label().startswith("UNVERIFIED") == (not p.verified), name


def _unverified_preset(monkeypatch) -> str:
    monkeypatch.setitem(
        PRICE_PRESETS,
        "test-unverified",
        PricePreset(
            price_in=1.0,
            price_out=2.0,
            provider="Nobody",
            verified=False,
            source="a test",
            date="2026-01-02",
            checked="2026-01-03",
        ),
    )
    return "test-unverified"


def test_plan_prints_the_preset_label_and_json_carries_it(cli, monkeypatch):
    paper = REPO / "configs" / "paper.toml"
    names = [*PRICE_PRESETS, _unverified_preset(monkeypatch)]
    for name in names:
        p = PRICE_PRESETS[name]
        r = cli("plan", paper, "--no-pilot", "--prices", name, "--json")
        assert r.exit_code == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["pricing"]["verified"] is p.verified and doc["pricing"]["label"] == p.label()
        assert doc["pricing"]["listed_on"] == p.date and doc["pricing"]["source"] == p.source
        line = next(a for a in doc["assumptions"] if a.startswith(f"prices: preset {name}:"))
        assert p.label() in line and p.source in line
        assert ("UNVERIFIED" in line) == (not p.verified), name
        r = cli("plan", paper, "--no-pilot", "--prices", name)
        assert r.exit_code == 0 and ("UNVERIFIED" in r.stdout) == (not p.verified), name
        if p.provider is not None:
            assert f"as listed on {p.date}, check before relying on it" in " ".join(r.stdout.split())


def test_preset_overridden_by_price_options():
    p = pricing("openai-gpt-4o-mini", 1.0, None)
    assert p is not None and p.overridden and p.price_in == 1.0
    assert p.price_out == PRICE_PRESETS["openai-gpt-4o-mini"].price_out


def test_list_prices(cli, monkeypatch):
    name = _unverified_preset(monkeypatch)
    r = cli("plan", "--list-prices", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc) == list(PRICE_PRESETS)
    for n, p in PRICE_PRESETS.items():
        assert doc[n]["source"] == p.source and doc[n]["date"] == p.date
        assert doc[n]["verified"] is p.verified and doc[n]["label"] == p.label()
    assert doc[name]["label"].startswith("UNVERIFIED")
    r = cli("plan", "--list-prices")
    assert r.exit_code == 0 and "PRICE PRESETS" in r.stdout and "UNVERIFIED" in r.stdout


@pytest.mark.parametrize("args", [(), ("--no-pilot",)])
def test_plan_without_config_is_one_line_exit_2(cli, args):
    r = cli("plan", *args)
    assert r.exit_code == 2 and "missing CONFIG" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_readme_price_table_matches_the_presets():
    """README's copy of the preset table: same names, prices and UNVERIFIED labels as PRICE_PRESETS."""
    rows = {}
    for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and cells[0].strip("`") in PRICE_PRESETS:
            rows[cells[0].strip("`")] = cells
    assert set(rows) == set(PRICE_PRESETS)
    for name, p in PRICE_PRESETS.items():
        _, price_in, price_out, status = rows[name]
        assert (float(price_in), float(price_out)) == (p.price_in, p.price_out), name
        assert ("UNVERIFIED" in status) == (not p.verified), name
        if p.provider is not None and p.verified:
            assert f"as listed on {p.date}" in status, name

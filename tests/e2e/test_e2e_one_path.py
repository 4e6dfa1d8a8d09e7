"""One path per stage: each stage's own command and ``run`` call the same stage function, so on the same
inputs and seed they write byte-identical artifacts and the same manifest record (issue 13).

A tiny run against the loopback stub first; then ``personas sample``, ``personas enrich``,
``prompts build``, ``feedback generate`` and ``bench run`` on the run's inputs, each into its own
directory, compared file by file with the run's artifacts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e_tools import e2e_env, shared_home, stub, stub_config  # noqa: F401 (fixtures)

#: fields that measure time, not content
VOLATILE = {"seconds", "render_s", "duration_s", "started", "finished", "updated", "paths"}


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _same(a: Path, b: Path) -> None:
    assert a.is_file() and b.is_file(), (a, b)
    if a.suffix == ".json":
        assert _strip(json.loads(a.read_text())) == _strip(json.loads(b.read_text())), (a, b)
    else:
        assert a.read_bytes() == b.read_bytes(), (a, b)


def _record(run_dir: Path, stage: str) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())["stages"][stage]


def _same_schema(a: dict, b: dict) -> None:
    assert set(a) == set(b), (sorted(a), sorted(b))
    for key in a:
        assert type(a[key]) is type(b[key]), key
    assert a["status"] == b["status"] == "done"
    assert set(a["summary"]) == set(b["summary"])


@pytest.mark.shared_data
def test_each_stage_command_matches_run(cli, e2e_env, stub, mirror, tmp_path, monkeypatch):
    cfg = stub_config(tmp_path, mirror, stub.base_url, enrich=True)
    run = tmp_path / "run"
    r = cli("run", cfg, "--out", run, "--quiet")
    assert r.exit_code == 0, r.stderr
    monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
    stub_model = "openai/stub"

    # personas: streamed sample + fidelity
    a = tmp_path / "personas"
    r = cli(
        "personas",
        "sample",
        "--n",
        "3",
        "--seed",
        "3",
        "--source",
        "acs2018",
        "--states",
        "WY",
        "--data-dir",
        mirror,
        "--fidelity",
        "--out",
        a,
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    for name in (
        "personas.jsonl",
        "personas.parquet",
        "personas_manifest.json",
        "fidelity.json",
        "personas_report.json",
    ):
        _same(run / "personas" / name, a / name)
    _same_schema(_record(run, "personas"), _record(a, "personas"))

    # enrichment (LLM fields, judge, census resampling from the sample's own report)
    e = tmp_path / "enrich"
    r = cli(
        "personas",
        "enrich",
        run / "personas" / "personas.jsonl",
        e,
        "--model",
        stub_model,
        "--judge-model",
        stub_model,
        "--seed",
        "3",
        "--data-dir",
        mirror,
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    for name in ("personas.jsonl", "personas.parquet", "enrich_report.json"):
        _same(run / "enrich" / name, e / name)
    _same_schema(_record(run, "enrich"), _record(e, "enrich"))

    # prompts: filters + LLM classifier + clusters + split
    p = tmp_path / "prompts"
    r = cli(
        "prompts",
        "build",
        "--source",
        tmp_path / "questions.txt",
        "--model",
        stub_model,
        "--seed",
        "3",
        "--clusters",
        "2",
        "--held-out-fraction",
        "0.34",
        "--out",
        p,
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    for name in ("prompts.jsonl", "prompts.parquet", "prompts_manifest.json", "summary.json"):
        _same(run / "prompts" / name, p / name)
    _same_schema(_record(run, "prompts"), _record(p, "prompts"))

    # feedback: DPF pairs on the run's enriched personas and prompts
    f = tmp_path / "feedback"
    r = cli(
        "feedback",
        "generate",
        "--personas",
        run / "enrich",
        "--prompts",
        run / "prompts",
        "--model",
        stub_model,
        "--train",
        "1",
        "--test",
        "1",
        "--held-out",
        "1",
        "--seed",
        "3",
        "--persona-format",
        "summary",
        "--max-tokens",
        "48",
        "--out",
        f,
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    for name in ("pairs.jsonl", "pairs.parquet", "stats.json"):
        _same(run / "feedback" / name, f / name)
    _same_schema(_record(run, "feedback"), _record(f, "feedback"))

    # bench: task main with the run's models and sampling
    b = tmp_path / "bench"
    r = cli(
        "bench",
        "run",
        "main",
        "--candidate",
        stub_model,
        "--judge",
        stub_model,
        "--personas",
        run / "enrich",
        "--prompts",
        run / "prompts",
        "--n",
        "2",
        "--seed",
        "3",
        "--mode",
        "baseline",
        "--mode",
        "persona",
        "--max-tokens",
        "48",
        "--judge-max-tokens",
        "192",
        "--out",
        b,
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    _same(run / "bench" / "main" / "items.parquet", b / "items.parquet")
    _same(run / "bench" / "main" / "results.json", b / "results.json")
    rec_run, rec_cmd = _record(run, "bench"), _record(b, "bench")
    assert set(rec_run) == set(rec_cmd) and set(rec_run["summary"]) == set(rec_cmd["summary"])

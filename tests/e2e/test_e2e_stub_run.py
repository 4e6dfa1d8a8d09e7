"""The whole pipeline against a loopback OpenAI-compatible stub: one command, re-run all cached,
status, report, and no secret anywhere in the run directory or report."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from e2e_tools import e2e_env, shared_home, stub, stub_config  # noqa: F401 (fixtures)

SECRET = "sk-test-SECRET-4242-do-not-leak"


def _calls(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    finally:
        conn.close()


def test_full_run_rerun_cached_status_report_no_secret(cli, e2e_env, stub, mirror, tmp_path):
    cfg = stub_config(tmp_path, mirror, stub.base_url, enrich=True)
    out = tmp_path / "run"
    r = cli("run", cfg, "--out", out, "--quiet")
    assert r.exit_code == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["seed"] == 3
    assert manifest["models"]["feedback"] == "openai/stub"
    assert any(k.startswith("census/acs/2018/") for k in manifest["data"])
    order = ["census", "personas", "enrich", "prompts", "feedback", "bench", "report"]
    assert manifest["stage_order"] == order
    for stage in order:
        rec = manifest["stages"][stage]
        assert rec["status"] == "done" and rec["failed"] == 0 and rec["artifacts"], stage
        assert len(rec["input_hash"]) == 64
    pairs = [json.loads(line) for line in (out / "feedback" / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 3 * 3 and len({p["id"] for p in pairs}) == 9
    for task in ("main", "passk", "loo", "intersections", "fidelity"):
        assert (out / "bench" / task / "results.json").is_file(), task
    summary = json.loads((out / "bench" / "summary.json").read_text())
    assert [m["mode"] for m in summary["main"]["modes"]] == ["baseline", "persona"]
    assert summary["passk"]["k"] == [1, 2]
    html = (out / "report" / "index.html").read_text()
    assert 'data-missing="' not in html  # every section has data
    assert "<th>status</th><td>done</td>" in html  # written by the run's last stage, about the finished run
    # issue 12: the data artefacts are measurable in the report, not only in the CLI
    for table_id in (
        "pair-giveaways",
        "pair-truncation",
        "pair-format",
        "survey-cells",
        "household-consistency",
    ):
        assert f'id="{table_id}"' in html, table_id
    calls_before, requests_before = _calls(out / "calls.db"), stub.stats["requests"]
    assert calls_before == requests_before > 0

    # second run: everything up to date, no model call, nothing rewritten
    r = cli("run", "--resume", out, "--json")
    assert r.exit_code == 0, r.stderr
    status = json.loads(r.stdout)
    assert _calls(out / "calls.db") == calls_before and stub.stats["requests"] == requests_before
    again = json.loads((out / "manifest.json").read_text())
    assert all(again["stages"][s]["runs"] == 1 for s in order)
    assert {s["stage"]: s["status"] for s in status["stages"]} == {s: "done" for s in order}
    assert status["totals"]["calls"] == calls_before and status["totals"]["failed_items"] == 0
    by_stage = {s["stage"]: s for s in status["stages"]}
    assert (
        by_stage["feedback"]["calls"] > 0
        and by_stage["bench"]["calls"] > 0
        and by_stage["prompts"]["calls"] == 12
    )
    assert by_stage["enrich"]["calls"] >= 6  # enrichment + consistency judge per persona
    enriched = [json.loads(x) for x in (out / "enrich" / "personas.jsonl").read_text().splitlines()]
    assert enriched and all(p["fields"]["mannerisms"]["provenance"] == "llm" for p in enriched)
    assert {p["persona_id"] for p in pairs} == {p["id"] for p in enriched}  # feedback used the enriched set

    # changing one bench option re-runs only bench (and the report); feedback calls are not repeated
    text = cfg.read_text().replace("[bench.main]\nn = 2", "[bench.main]\nn = 1")
    cfg.write_text(text)
    r = cli("run", cfg, "--out", out, "--quiet")
    assert r.exit_code == 0, r.stderr
    third = json.loads((out / "manifest.json").read_text())
    assert [s for s in order if third["stages"][s]["runs"] == 2] == ["bench", "report"]

    # the API key is nowhere: not in the run directory (config, manifest, call log, artifacts) nor the report
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
            assert b"SECRET" not in path.read_bytes(), path
    r = cli("report", out, "--out", tmp_path / "r.html")
    assert r.exit_code == 0 and SECRET not in (tmp_path / "r.html").read_text()

"""The batch executor end to end: every LLM stage of a tiny run proceeds in waves through a batch endpoint
and ends with byte-identical artifacts to the local executor (issue 14 item 4, issue 15 item 1).

Waves are answered two ways: through the loopback Files + Batches API (``batch submit`` / ``batch status``)
and from result files our stub writes like ``vllm run-batch`` (``batch ingest``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e_tools import e2e_env, schema_responder, shared_home, stub_config  # noqa: F401 (fixtures)

from persona_testbed.llm.batch_stub import BatchStubServer, run_batch_file
from persona_testbed.llm.deferred import BatchStore

ARTIFACTS = (
    "enrich/personas.jsonl",
    "enrich/enrich_report.json",
    "prompts/prompts.jsonl",
    "prompts/summary.json",
    "feedback/pairs.jsonl",
    "feedback/pairs.parquet",
    "feedback/stats.json",
    "bench/main/items.parquet",
    "bench/main/results.json",
    "bench/passk/results.json",
)
#: time, and how many calls a stage replayed from the cache (a resumed local run differs the same way)
VOLATILE = {"seconds", "render_s", "duration_s", "started", "finished", "updated", "paths", "cached"}


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


def _answer_with_vllm_files(run: Path) -> None:
    """Answer every unanswered request file as ``vllm run-batch`` would, then ``batch ingest`` them."""
    store = BatchStore(run)
    outs = []
    for wave in store.waves():
        for f in wave.files:
            src = store.root / f
            out = src.with_name(src.name.replace("requests-", "results-"))
            if not out.exists():
                run_batch_file(src, out, responder=schema_responder)
                outs.append(out)
    store.close()
    return outs


@pytest.mark.shared_data
@pytest.mark.parametrize("route", ["api", "files"])
def test_batch_run_matches_local(cli, e2e_env, mirror, tmp_path, monkeypatch, route):
    with BatchStubServer(responder=schema_responder, seed=11) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        cfg = stub_config(tmp_path, mirror, srv.base_url, enrich=True)
        local = tmp_path / "local"
        r = cli("run", cfg, "--out", local, "--quiet")
        assert r.exit_code == 0, r.stderr
        online_calls = srv.stats["ok"]

        batch = tmp_path / "batch"
        r = cli("run", cfg, "--out", batch, "--quiet", "--executor", "batch")
        waves = 0
        while r.exit_code == 4:
            waves += 1
            assert waves < 40, r.stderr
            assert "waiting for batch" in r.stderr
            manifest = json.loads((batch / "manifest.json").read_text())
            assert "waiting_for_batch" in {s["status"] for s in manifest["stages"].values()}
            if route == "api":
                assert cli("batch", "submit", batch, "--json").exit_code == 0
                first = cli("batch", "status", batch, "--json")  # in progress on the first poll
                assert first.exit_code == 0 and json.loads(first.stdout)["unanswered"] > 0
                assert cli("batch", "status", batch, "--json").exit_code == 0
            else:
                outs = _answer_with_vllm_files(batch)
                r = cli("batch", "ingest", batch, *outs, "--json")
                assert r.exit_code == 0, r.stderr
            r = cli("run", "--resume", batch, "--quiet")
        assert r.exit_code == 0, r.stderr
        assert srv.stats["ok"] == online_calls  # the batch run made no online call
        assert waves >= 4  # enrich, prompts, feedback steps (rejected -> critique -> chosen ...), bench
    for rel in ARTIFACTS:
        _same(local / rel, batch / rel)
    status = cli("status", batch, "--json")
    assert status.exit_code == 0
    assert json.loads(status.stdout)["status"] == "done"

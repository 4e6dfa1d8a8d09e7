"""``vllm/<model>`` on the Ray executor with real vLLM engines (issue 15 item 2).

Runs only where vLLM and a CUDA GPU are present (skipped otherwise, saying which is missing): the prompts
stage of the quickstart with ``--executor ray`` and a small instruct model, whose requests go through
``ray.data.llm``'s vLLM processor. ``PERSONA_TESTBED_VLLM_MODEL`` names the model (a Hugging Face id, which
needs the Hub or a warm cache, or a local path); default ``HuggingFaceTB/SmolLM2-135M-Instruct``.
The same mechanics without a GPU, with a CPU stand-in for the engine, are in ``test_e2e_ray.py``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'persona-testbed[vllm]')")
pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'persona-testbed[vllm]'; needs a GPU)")
torch = pytest.importorskip("torch", reason="torch is not installed (vLLM brings it)")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU here: the vLLM engine needs one", allow_module_level=True)

from e2e_tools import write_prompts_file  # noqa: E402

MODEL = os.environ.get("PERSONA_TESTBED_VLLM_MODEL", "HuggingFaceTB/SmolLM2-135M-Instruct")


def test_prompts_stage_on_vllm_engines(tmp_path):
    q = write_prompts_file(tmp_path / "q.txt")
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "persona_testbed", "prompts", "build", "--source", str(q), "--model",
         f"vllm/{MODEL}", "--seed", "3", "--clusters", "2", "--out", str(out), "--executor", "ray", "--json"],
        capture_output=True, text=True, timeout=1800, env={**os.environ, "CI": "true"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    db = sqlite3.connect(out / "batch" / "batch.db")
    sources = {s for (s,) in db.execute("SELECT DISTINCT source FROM replies")}
    db.close()
    assert sources == {"vllm"}
    calls = sqlite3.connect(out / "calls.db")
    ok = calls.execute("SELECT COUNT(*) FROM calls WHERE status = 'ok' AND model = ?", (f"vllm/{MODEL}",))
    assert ok.fetchone()[0] > 0
    calls.close()
    assert json.loads((out / "manifest.json").read_text())["stages"]["prompts"]["status"] == "done"

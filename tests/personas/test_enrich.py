"""Enrichment with a scripted mock model: which fields get written, provenance, failures, determinism."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_enrich_support import PROSE, procedural_persona, scripted_reply  # noqa: E402

from persona_testbed.llm import CallStore, LLMClient, MockBackend  # noqa: E402
from persona_testbed.personas.enrich import EnrichOptions, apply_enrichment, enrich_personas, fields_to_write
from persona_testbed.personas.record import PERSONA_FIELDS  # noqa: E402

PROTECTED = ("census", "derived", "imputed", "survey")


def mock_client(fn=None, **kw) -> LLMClient:
    backend = MockBackend(fn or (lambda msgs: scripted_reply(msgs)))
    return LLMClient(backend=backend, **kw)


def run(coro):
    return asyncio.run(coro)


def test_fields_to_write_only_pending_or_procedural():
    p = procedural_persona("p-a")
    assert fields_to_write(p) == ["detailed job description", *PROSE]
    q = procedural_persona("p-b", survey=False)
    assert fields_to_write(q) == [
        "detailed job description",
        *PROSE,
        "ideology",
        "political views",
        "religion",
    ]
    # big five scores is procedural but not an LLM field: never written
    assert "big five scores" not in fields_to_write(q)


def test_enrich_writes_llm_fields_and_never_touches_grounded_ones():
    personas = [procedural_persona("p-a", ancestry="Irish"), procedural_persona("p-b", "S2", survey=False)]
    client = mock_client()
    res = run(enrich_personas(personas, client, seed=3, progress=False))
    assert not res.failures and len(res.personas) == 2
    for before, after in zip(personas, res.personas):
        assert after.id == before.id and after.source == before.source
        assert after.tags == before.tags  # procedural tags stay
        written = set(fields_to_write(before))
        for name in PERSONA_FIELDS:
            b, a = before.fields[name], after.fields[name]
            if name in written:
                assert a.provenance == "llm" and a.value and a.value != b.value
                assert a.detail["model"] == "mock" and a.detail["call_id"]
                assert len(a.detail["categories"]) == 3
                if b.provenance == "procedural":
                    assert a.detail["replaced"] == b.model_dump()
            else:
                assert a == b, name  # value, provenance and detail unchanged
            if b.provenance in PROTECTED:
                assert a == b
    # survey-grounded politics kept for p-a, written by the model for p-b
    assert res.personas[0].fields["religion"].provenance == "survey"
    assert res.personas[1].fields["religion"].provenance == "llm"
    rep = res.report
    assert rep["counts"] == {
        "input": 2,
        "output": 2,
        "accepted_first_try": 2,
        "resampled_and_accepted": 0,
        "failed": 0,
        "failed_by_stage": {},
    }
    assert rep["calls"]["enrich"] == 2 and rep["calls"]["per_persona"] == 1.0 and rep["judge"] is None
    assert rep["diversity"]["personas"] == 2


def test_apply_enrichment_refuses_grounded_fields():
    p = procedural_persona("p-a")
    with pytest.raises(ValueError, match="census"):
        apply_enrichment(p, ["age"], {"age": "99"}, model="m", call_id="c", categories=[])
    with pytest.raises(ValueError, match="survey"):
        apply_enrichment(p, ["religion"], {"religion": "x"}, model="m", call_id="c", categories=[])


def test_prompt_carries_facts_tags_and_seeded_categories():
    p = procedural_persona("p-a", ancestry="Norwegian")
    backend = MockBackend(lambda msgs: scripted_reply(msgs))
    run(enrich_personas([p], LLMClient(backend=backend), seed=5, progress=False))
    user = backend.calls[0][1]["content"]
    assert "ancestry: Norwegian" in user and "collects vintage maps" in user
    assert "occupation category: Registered nurses" in user
    assert "procedural defining quirks" not in user  # fields being rewritten are not shown as facts
    assert "defining_quirks:" in user and "religion:" not in user.split("Write these")[1]


def test_same_seed_same_output_and_categories_vary():
    personas = [procedural_persona(f"p-{i}", f"S{i}", ancestry=f"A{i}") for i in range(6)]
    a = run(enrich_personas(personas, mock_client(), seed=11, progress=False))
    b = run(enrich_personas(personas, mock_client(), seed=11, progress=False))
    c = run(enrich_personas(personas, mock_client(), seed=12, progress=False))

    def strip_ids(res):  # call ids are fresh per call; everything else must match
        return [
            {n: (f.value, f.provenance, f.detail.get("categories")) for n, f in p.fields.items()}
            for p in res.personas
        ]

    assert strip_ids(a) == strip_ids(b)
    assert strip_ids(a) != strip_ids(c)
    cats = {tuple(p.fields["lifestyle"].detail["categories"]) for p in a.personas}
    assert len(cats) > 1  # not one template for the whole population


def test_never_valid_json_is_a_recorded_failure_per_persona():
    personas = [procedural_persona("p-a"), procedural_persona("p-b", "S2")]
    backend = MockBackend(lambda msgs: "I am not JSON at all")
    client = LLMClient(backend=backend, max_reasks=2)
    res = run(enrich_personas(personas, client, seed=0, progress=False))
    assert res.personas == []
    assert [f.persona_id for f in res.failures] == ["p-a", "p-b"]
    assert all(
        f.stage == "enrich" and "invalid structured output" in f.error and f.call_id for f in res.failures
    )
    assert len(backend.calls) == 2 * 3  # first try + 2 re-asks each, then give up
    assert res.report["counts"]["failed"] == 2 and res.report["counts"]["failed_by_stage"] == {"enrich": 2}


def test_blank_values_are_rejected_by_schema():
    p = procedural_persona("p-a")
    import json

    from test_enrich_support import requested_keys

    def blank(msgs):
        return json.dumps({k: "   " for k in requested_keys(msgs[1]["content"])})

    res = run(
        enrich_personas([p], LLMClient(backend=MockBackend(blank), max_reasks=1), seed=0, progress=False)
    )
    assert res.personas == [] and res.failures[0].stage == "enrich"


def test_resume_replays_from_call_cache(tmp_path):
    personas = [procedural_persona(f"p-{i}", f"S{i}", ancestry=f"A{i}") for i in range(3)]
    with CallStore(tmp_path / "calls.db") as store:  # closing commits the write-behind queue
        first = run(enrich_personas(personas, mock_client(store=store), seed=1, progress=False))
    backend = MockBackend([])  # would fail every call: everything must come from the cache
    second = run(
        enrich_personas(
            personas,
            LLMClient(backend=backend, store=CallStore(tmp_path / "calls.db")),
            seed=1,
            progress=False,
        )
    )
    assert backend.calls == []
    assert [p.model_dump() for p in second.personas] == [p.model_dump() for p in first.personas]
    assert second.report["calls"]["cached"] == 3


def test_near_duplicates_flagged_not_dropped():
    # p-a and p-b: one census record drawn twice; the model writes identical prose for both
    personas = [
        procedural_persona("p-a", "S1"),
        procedural_persona("p-b", "S1"),
        procedural_persona("p-c", "S2"),
    ]
    client = mock_client(lambda msgs: scripted_reply(msgs, same_text=True))
    res = run(
        enrich_personas(
            personas, client, seed=0, progress=False, options=EnrichOptions(categories_per_persona=0)
        )
    )
    assert len(res.personas) == 3
    dups = res.report["near_duplicates"]
    assert [(d["a"], d["b"]) for d in dups] == [("p-a", "p-b")]  # p-c has the same text, other record
    assert dups[0]["cosine"] >= 0.9 and dups[0]["source"]["serialno"] == "S1"
    by_id = {p.id: p for p in res.personas}
    assert by_id["p-a"].tags["near_duplicate_of"] == ["p-b"]
    assert by_id["p-b"].tags["near_duplicate_of"] == ["p-a"]
    assert "near_duplicate_of" not in by_id["p-c"].tags


def test_nothing_to_write_needs_no_call():
    p = procedural_persona("p-a")
    done = run(enrich_personas([p], mock_client(), seed=0, progress=False)).personas[0]
    backend = MockBackend([])
    res = run(enrich_personas([done], LLMClient(backend=backend), seed=0, progress=False))
    assert backend.calls == [] and res.personas == [done] and not res.failures


def test_schema_keeps_values_to_one_plain_line():
    from persona_testbed.personas.enrich import enrichment_schema

    schema = enrichment_schema(("lifestyle",), 30)
    assert (
        schema.model_validate({"lifestyle": "  early riser, likes jazz "}).lifestyle
        == "early riser, likes jazz"
    )
    for bad in ("line one\nline two", 'says "hi"', "x" * 31, "   "):
        with pytest.raises(ValueError):
            schema.model_validate({"lifestyle": bad})

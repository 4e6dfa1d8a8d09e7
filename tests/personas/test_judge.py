"""The LLM consistency judge and census resampling, driven through a scripted loopback stub server."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_enrich_support import procedural_persona, scripted_reply, stub_responder  # noqa: E402

from persona_testbed.llm import LLMClient, MockBackend  # noqa: E402
from persona_testbed.llm.stub_server import StubServer  # noqa: E402
from persona_testbed.personas.enrich import enrich_personas  # noqa: E402
from persona_testbed.personas.judge import JudgeVerdict, judge_messages  # noqa: E402
from persona_testbed.personas.record import PERSONA_FIELDS  # noqa: E402


def is_bad(profile: str) -> bool:
    return "ancestry: Bad" in profile


class Resampler:
    """Stands in for the census sampler: hands out fresh records, 'Bad' ones first ``bad_first`` times."""

    def __init__(self, bad_first: int = 0):
        self.calls: list[tuple[str, int]] = []
        self.bad_first = bad_first

    def __call__(self, original, attempt):
        self.calls.append((original.id, attempt))
        bad = len(self.calls) <= self.bad_first
        return procedural_persona(
            f"p-new{len(self.calls)}", f"R{len(self.calls)}", ancestry="BadAgain" if bad else "Swedish"
        )


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def stub():
    with StubServer(responder=stub_responder(inconsistent=is_bad)) as srv:
        yield srv


def clients(srv):
    return (
        LLMClient("openai/enricher", base_url=srv.base_url, api_key="k"),
        LLMClient("openai/judge", base_url=srv.base_url, api_key="k"),
    )


def test_judge_messages_show_whole_profile():
    msgs = judge_messages(procedural_persona("p-a"))
    assert all(f"{name}: " in msgs[1]["content"] for name in PERSONA_FIELDS)


def test_inconsistent_personas_are_resampled_enriched_and_judged_again(stub):
    personas = [
        procedural_persona("p-ok1", "S1"),
        procedural_persona("p-bad", "S2", ancestry="Bad"),
        procedural_persona("p-ok2", "S3"),
    ]
    enricher, judge = clients(stub)
    resampler = Resampler()
    res = run(
        enrich_personas(personas, enricher, seed=4, judge_client=judge, resample=resampler, progress=False)
    )
    assert not res.failures
    assert resampler.calls == [("p-bad", 1)]
    ids = [p.id for p in res.personas]
    assert ids[0] == "p-ok1" and ids[2] == "p-ok2" and ids[1] not in ("p-bad", "p-new1")  # re-identified
    new = res.personas[1]
    assert new.source.serialno == "R1" and new.fields["ancestry"].value == "Swedish"
    assert new.fields["lifestyle"].provenance == "llm"
    assert new.fields["lifestyle"].detail["model"] == "openai/enricher"
    rep = res.report
    assert rep["judge"]["judged"] == 4 and rep["judge"]["rejected"] == 1
    assert rep["judge"]["rejection_rate"] == pytest.approx(0.25)
    assert rep["judge"]["persona_rejection_rate"] == pytest.approx(1 / 3)
    assert rep["judge"]["by_field"] == {"ancestry": 1, "lifestyle": 1}
    assert rep["judge"]["paper_reference_rate"] == 0.085
    assert rep["counts"]["resampled_and_accepted"] == 1 and rep["counts"]["accepted_first_try"] == 2
    assert rep["calls"]["total"] == 8 and rep["calls"]["per_persona"] == pytest.approx(8 / 3)
    assert rep["judge_model"] == "openai/judge"
    outcome = rep["outcomes"][1]
    assert outcome["persona_id"] == "p-bad" and outcome["final_id"] == new.id and outcome["resamples"] == 1
    assert [v["consistent"] for v in outcome["verdicts"]] == [False, True]
    assert stub.stats["ok"] == 8


def test_resample_bound_hit_is_a_recorded_failure(stub):
    personas = [procedural_persona("p-bad", "S2", ancestry="Bad"), procedural_persona("p-ok", "S3")]
    enricher, judge = clients(stub)
    resampler = Resampler(bad_first=99)
    res = run(
        enrich_personas(
            personas,
            enricher,
            seed=4,
            judge_client=judge,
            resample=resampler,
            max_resamples=2,
            progress=False,
        )
    )
    assert [p.id for p in res.personas] == ["p-ok"]
    (fail,) = res.failures
    assert fail.persona_id == "p-bad" and fail.stage == "inconsistent" and fail.resamples == 2
    assert "after 2 resamples" in fail.error and fail.call_id
    assert resampler.calls == [("p-bad", 1), ("p-bad", 2)]
    assert res.report["judge"]["rejected"] == 3 and res.report["counts"]["failed_by_stage"] == {
        "inconsistent": 1
    }
    assert res.report["outcomes"][0]["calls"] == 6  # 3 records x (enrich + judge)


def test_inconsistent_without_resampler_is_recorded(stub):
    enricher, judge = clients(stub)
    res = run(
        enrich_personas(
            [procedural_persona("p-bad", ancestry="Bad")],
            enricher,
            seed=0,
            judge_client=judge,
            progress=False,
        )
    )
    assert res.personas == [] and res.failures[0].stage == "inconsistent"
    assert "no resampler" in res.failures[0].error


def test_failing_resampler_is_recorded(stub):
    enricher, judge = clients(stub)

    def broken(original, attempt):
        raise RuntimeError("census source unavailable")

    res = run(
        enrich_personas(
            [procedural_persona("p-bad", ancestry="Bad")],
            enricher,
            seed=0,
            judge_client=judge,
            resample=broken,
            progress=False,
        )
    )
    assert res.failures[0].stage == "resample" and "census source unavailable" in res.failures[0].error


def test_async_resampler_is_awaited(stub):
    enricher, judge = clients(stub)

    async def resample(original, attempt):
        return procedural_persona("p-x", "R9", ancestry="Danish")

    res = run(
        enrich_personas(
            [procedural_persona("p-bad", ancestry="Bad")],
            enricher,
            seed=0,
            judge_client=judge,
            resample=resample,
            progress=False,
        )
    )
    assert not res.failures and res.personas[0].source.serialno == "R9"


def test_judge_that_never_answers_validly_is_a_recorded_failure():
    def fn(msgs):
        if "consistency" in msgs[0]["content"]:
            return json.dumps({"consistent": "maybe", "conflicting_fields": ["not a field"]})
        return scripted_reply(msgs)

    res = run(
        enrich_personas(
            [procedural_persona("p-a")],
            LLMClient(backend=MockBackend(fn)),
            seed=0,
            judge_client=LLMClient(backend=MockBackend(fn), max_reasks=1),
            progress=False,
        )
    )
    assert res.personas == [] and res.failures[0].stage == "judge"


def test_verdict_schema_constrains_field_names():
    assert JudgeVerdict.model_json_schema()["properties"]["conflicting_fields"]["items"]["enum"] == list(
        PERSONA_FIELDS
    )
    with pytest.raises(ValueError):
        JudgeVerdict.model_validate({"consistent": False, "conflicting_fields": ["shoe size"], "reason": ""})


def test_census_resampler_replaces_rejected_persona_with_a_real_record(mirror):
    from persona_testbed.personas.resample import census_resampler
    from persona_testbed.personas.sample import sample_personas

    personas = sample_personas(3, 5, source="acs2018", data_dir=mirror).personas
    target = personas[1]
    marks = [f"{n}: {target.value(n)}\n" for n in ("age", "income", "occupation category", "ancestry")]

    def rejects_target(profile: str) -> bool:
        return all(m in profile for m in marks)

    with StubServer(responder=stub_responder(inconsistent=rejects_target)) as srv:
        enricher, judge = clients(srv)
        res = run(
            enrich_personas(
                personas,
                enricher,
                seed=5,
                judge_client=judge,
                resample=census_resampler(5, source="acs2018", data_dir=mirror),
                progress=False,
            )
        )
    assert not res.failures and len(res.personas) == 3
    new = res.personas[1]
    assert new.id != target.id and new.source != target.source and new.source.year == 2018
    assert new.fields["age"].provenance == "census" and new.fields["lifestyle"].provenance == "llm"
    assert "replaced" in new.fields["lifestyle"].detail  # the procedural rendering was kept in detail
    assert res.report["judge"]["rejected"] == 1 and res.report["outcomes"][1]["resamples"] == 1
    # same seed -> same replacement record; another attempt -> another draw
    resampler = census_resampler(5, source="acs2018", data_dir=mirror)
    assert run(resampler(target, 1)).source == new.source
    assert run(resampler(target, 2)).source != new.source

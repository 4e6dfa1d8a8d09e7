"""One pair: assembly, length band, truncation re-asks, failures as data, judge in both orders, template version."""

from __future__ import annotations

import asyncio
import json

import pytest

from persona_testbed.feedback import templates
from persona_testbed.feedback.length import LengthBand, count_words, trim_to_band
from persona_testbed.feedback.pair import GenerationParams, make_pair
from persona_testbed.llm import CallStore, LLMClient, MockBackend, PermanentError
from persona_testbed.llm.backends.base import BackendReply

PERSONA = "Age 70. Religion: Catholic. Lives on a farm."
QUESTION = "Should the state fund churches?"
REJECTED = "A long generic answer about funding. It has two sentences."  # 10 words: band 9-11
FITS = "A fitting answer about funding for you. It has two sentences."  # 11 words


def _run(backend, gp=None, store=None, **kw):
    client = LLMClient(backend=backend, store=store)
    args = dict(
        pair_id="pair-1",
        persona_id="p-1",
        prompt_id="q-1",
        split="train",
        question=QUESTION,
        persona_text=PERSONA,
    )
    args.update(kw)
    return asyncio.run(make_pair(client, gp or GenerationParams(), **args))[0]


def _step(messages) -> str:
    system = messages[0]["content"]
    return (
        "rejected"
        if system == templates.ANSWER_SYSTEM
        else "critique"
        if "role-playing" in system
        else "chosen"
        if system == templates.REVISE_SYSTEM
        else "judge"
    )


def _router(rejected=REJECTED, critique="Too generic.", revisions=(FITS,), judge=("A", "B")):
    """A backend function: per-step replies; ``revisions`` consumed in order; judge by order."""
    revs = list(revisions)

    def reply(messages):
        user = messages[-1]["content"]
        step = _step(messages)
        if step == "judge":
            a = user.split("Answer A:")[1].split("Answer B:")[0]
            return json.dumps({"choice": judge[0] if rejected not in a else judge[1]})
        if step == "rejected":
            return rejected
        if step == "critique":
            return critique
        return revs.pop(0) if len(revs) > 1 else revs[0]

    return reply


def test_pair_fields_and_message_contents():
    backend = MockBackend(_router())
    pair = _run(backend)
    assert pair.status == "ok" and pair.error is None
    assert (
        pair.rejected.startswith("A long generic") and pair.critique == "Too generic." and pair.chosen == FITS
    )
    assert pair.length_action == "ok" and pair.revision_attempts == 1 and pair.length_target == (9, 11)
    assert pair.flags == []
    assert set(pair.call_ids) == {"rejected", "critique", "chosen", "judge_ab", "judge_ba"}
    assert pair.finish_reasons == {step: ["stop"] for step in pair.call_ids}
    assert pair.template_version == templates.TEMPLATE_VERSION and pair.model == "mock"
    rejected_call, critique_call, revise_call, judge_ab, judge_ba = backend.calls
    assert PERSONA not in json.dumps(rejected_call)  # rejected: no persona information
    assert PERSONA in critique_call[0]["content"] and pair.rejected in critique_call[1]["content"]
    assert pair.critique in revise_call[1]["content"] and "(10 words)" in revise_call[1]["content"]
    assert "between 9 and 11 words" in revise_call[1]["content"]
    # order ab: A = chosen; order ba: A = rejected
    assert judge_ab[1]["content"].index(pair.chosen) < judge_ab[1]["content"].index(pair.rejected)
    assert judge_ba[1]["content"].index(pair.rejected) < judge_ba[1]["content"].index(pair.chosen)
    assert pair.validation.choice_ab == "A" and pair.validation.choice_ba == "B"
    assert pair.validation.chosen_both and not pair.flagged and pair.validation.position_bias is False


def test_judge_preferring_rejected_in_both_orders_is_flagged_not_dropped():
    pair = _run(MockBackend(_router(judge=("B", "A"))))
    assert pair.status == "ok" and pair.flagged and pair.validation.flagged
    assert pair.flags == ["judge_prefers_rejected"]
    pos = _run(MockBackend(_router(judge=("A", "A"))))
    assert pos.validation.position_bias is True and not pos.flagged and pos.flags == []


def test_length_band_reasks_on_both_sides_then_ok():
    backend = MockBackend(_router(revisions=("Far too short.", "w " * 20, FITS)))
    pair = _run(backend)
    assert pair.chosen == FITS and pair.length_action == "retried" and pair.revision_attempts == 3
    revise_calls = [c for c in backend.calls if c[0]["content"] == templates.REVISE_SYSTEM]
    assert (
        "previous revision had 3 words, outside the range of 9 to 11 words" in revise_calls[1][1]["content"]
    )
    assert "longer revision" in revise_calls[1][1]["content"]
    assert "previous revision had 20 words" in revise_calls[2][1]["content"]
    assert "shorter revision" in revise_calls[2][1]["content"]
    assert pair.flags == []


def test_length_band_trims_only_at_a_sentence_end():
    long_rev = "One two three four five six seven eight nine ten. Eleven twelve thirteen fourteen fifteen."
    pair = _run(MockBackend(_router(revisions=(long_rev,))), GenerationParams(max_revision_attempts=2))
    assert pair.length_action == "trimmed" and pair.revision_attempts == 2
    assert pair.chosen == "One two three four five six seven eight nine ten." and pair.flags == []


@pytest.mark.parametrize(
    "revision", ["Far too short.", "a b c d e f g h i j k l m n o p q r s t u v w x y z"]
)
def test_length_band_out_of_band_is_kept_whole_and_flagged(revision):
    pair = _run(MockBackend(_router(revisions=(revision,))))
    assert pair.status == "ok" and pair.length_action == "out_of_band" and pair.revision_attempts == 3
    assert pair.chosen == revision  # never cut inside a sentence
    assert pair.flags == ["length_out_of_band"]


def test_length_band_keeps_the_nearest_attempt():
    pair = _run(
        MockBackend(_router(revisions=("one two", "a b c d e f g h", "a b c d e f g h i j k l m n o p")))
    )
    assert pair.chosen == "a b c d e f g h" and pair.length_action == "out_of_band"


def test_length_band_is_configurable():
    gp = GenerationParams(length_band=LengthBand(low=0.1, high=0.5))
    pair = _run(MockBackend(_router(revisions=("Short fit now.",))), gp)
    assert pair.length_target == (1, 5) and pair.length_action == "ok" and pair.chosen == "Short fit now."
    assert gp.config_key("mock") != GenerationParams().config_key("mock")


def test_band_bounds_count_words_and_trim():
    band = LengthBand()
    assert band.bounds(10) == (9, 11) and band.bounds(100) == (85, 115) and band.bounds(1) == (1, 1)
    assert LengthBand(low=0.9, high=0.95).bounds(5) == (5, 5)  # no whole count inside: the nearest
    assert count_words("Hello there, world.") == 3 and count_words("今天天气很好") == 6
    assert count_words("Hi 你好 there") == 4 and count_words("") == 0
    assert trim_to_band("One two. Three four five. Six seven.", (3, 5)) == "One two. Three four five."
    assert trim_to_band("One two three four five six", (3, 5)) is None  # no sentence end: never cut
    assert trim_to_band('He said "yes." Then more words here.', (2, 4)) == 'He said "yes."'


def _truncating(base, cut_steps, always=False):
    """Reply function: the first call of each step in ``cut_steps`` (every call with ``always``) is cut off."""
    seen: dict[str, int] = {}

    def reply(messages):
        step = _step(messages)
        seen[step] = seen.get(step, 0) + 1
        text = base(messages)
        if step in cut_steps and (always or seen[step] == 1):
            return BackendReply(text=text + " and then it stops mid", finish_reason="length")
        return BackendReply(text=text, finish_reason="stop")

    return reply


class _Budgets(MockBackend):
    """Records max_tokens per call."""

    async def complete(self, messages, params, structured):
        self.budgets = getattr(self, "budgets", []) + [params.max_tokens]
        return await super().complete(messages, params, structured)


@pytest.mark.parametrize("step", ["rejected", "critique", "chosen"])
def test_truncated_step_is_reasked_once_with_twice_the_budget(step):
    backend = _Budgets(_truncating(_router(), {step}))
    pair = _run(backend, GenerationParams(max_tokens=100, critique_max_tokens=50))
    assert pair.status == "ok" and pair.flags == []
    assert pair.finish_reasons[step] == ["length", "stop"]
    assert "stops mid" not in getattr(pair, step)
    # max_tokens per call: rejected, critique, chosen (the revision starts with the budget the rejected
    # answer needed), judge_ab, judge_ba
    assert (
        backend.budgets
        == {
            "rejected": [100, 200, 50, 200, 16, 16],
            "critique": [100, 50, 100, 100, 16, 16],
            "chosen": [100, 50, 100, 200, 16, 16],
        }[step]
    )


@pytest.mark.parametrize("step", ["rejected", "critique", "chosen"])
def test_still_truncated_after_reask_is_kept_and_flagged(step):
    pair = _run(
        MockBackend(_truncating(_router(revisions=(REJECTED,)), {step}, always=True)),
        GenerationParams(max_revision_attempts=2),
    )
    assert pair.status == "ok" and f"truncated:{step}" in pair.flags
    assert pair.finish_reasons[step][:2] == ["length", "length"]
    if step == "chosen":  # one re-ask per step; the later attempt keeps the larger budget
        assert pair.finish_reasons["chosen"] == ["length", "length", "length"]


@pytest.mark.parametrize(
    "fail_step,prefix", [("rejected", "rejected:"), ("critique", "critique:"), ("revise", "chosen:")]
)
def test_failed_call_becomes_failed_pair(fail_step, prefix):
    base = _router()

    def reply(messages):
        system = messages[0]["content"]
        step = (
            "rejected"
            if system == templates.ANSWER_SYSTEM
            else "critique"
            if "role-playing" in system
            else "revise"
            if system == templates.REVISE_SYSTEM
            else "judge"
        )
        return PermanentError("boom") if step == fail_step else base(messages)

    pair = _run(MockBackend(reply))
    assert pair.status == "failed" and pair.error.startswith(prefix) and "boom" in pair.error
    assert pair.validation is None


def test_judge_failure_is_recorded_pair_stays_ok():
    base = _router()

    def reply(messages):
        return "not json at all" if "Which answer" in messages[-1]["content"] else base(messages)

    pair = _run(MockBackend(reply))
    assert pair.status == "ok" and pair.validation.error and pair.validation.choice_ab is None
    assert not pair.flagged and pair.validation.position_bias is None


def test_template_version_enters_the_cache_key(tmp_path, monkeypatch):
    store = CallStore(tmp_path / "calls.db")
    backend = MockBackend(_router())
    first = _run(backend, store=store)
    n = len(backend.calls)
    again = _run(backend, store=store)
    assert len(backend.calls) == n  # all replayed from the cache
    assert again.chosen == first.chosen
    monkeypatch.setattr(templates, "TEMPLATE_VERSION", "dpf-test-bump")
    bumped = _run(backend, store=store)
    assert len(backend.calls) == 2 * n  # no call replayed: the version changed every key
    assert bumped.template_version == "dpf-test-bump" and bumped.config_key != first.config_key


def test_rejected_is_shared_across_personas_of_one_prompt(tmp_path):
    store = CallStore(tmp_path / "calls.db")
    backend = MockBackend(_router())
    _run(backend, store=store, pair_id="pair-a", persona_id="p-a")
    _run(backend, store=store, pair_id="pair-b", persona_id="p-b")
    answer_calls = [c for c in backend.calls if c[0]["content"] == templates.ANSWER_SYSTEM]
    assert len(answer_calls) == 1

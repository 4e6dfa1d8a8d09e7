"""One pair: assembly, length policy, failures as data, judge in both orders, template version in the key."""

from __future__ import annotations

import asyncio
import json

import pytest

from persona_testbed.feedback import templates
from persona_testbed.feedback.length import truncate_to
from persona_testbed.feedback.pair import GenerationParams, make_pair
from persona_testbed.llm import CallStore, LLMClient, MockBackend, PermanentError

PERSONA = "Age 70. Religion: Catholic. Lives on a farm."
QUESTION = "Should the state fund churches?"


def _run(backend, gp=None, store=None, **kw):
    client = LLMClient(backend=backend, store=store)
    args = dict(pair_id="pair-1", persona_id="p-1", prompt_id="q-1", split="train", question=QUESTION,
                persona_text=PERSONA)
    args.update(kw)
    return asyncio.run(make_pair(client, gp or GenerationParams(), **args))[0]


def _router(rejected="A long generic answer about funding. It has two sentences.", critique="Too generic.",
            revisions=("Short fit.",), judge=("A", "B")):
    """A backend function: per-step replies; ``revisions`` consumed in order; judge by order."""
    revs = list(revisions)

    def reply(messages):
        system, user = messages[0]["content"], messages[-1]["content"]
        if "Which answer do you prefer" in user:
            a = user.split("Answer A:")[1].split("Answer B:")[0]
            return json.dumps({"choice": judge[0] if rejected not in a else judge[1]})
        if system == templates.ANSWER_SYSTEM:
            return rejected
        if "role-playing" in system:
            return critique
        r = revs.pop(0) if len(revs) > 1 else revs[0]
        return r
    return reply


def test_pair_fields_and_message_contents():
    backend = MockBackend(_router())
    pair = _run(backend)
    assert pair.status == "ok" and pair.error is None
    assert pair.rejected.startswith("A long generic") and pair.critique == "Too generic." and pair.chosen == "Short fit."
    assert pair.length_action == "ok" and pair.revision_attempts == 1
    assert set(pair.call_ids) == {"rejected", "critique", "chosen", "judge_ab", "judge_ba"}
    assert pair.template_version == templates.TEMPLATE_VERSION and pair.model == "mock"
    rejected_call, critique_call, revise_call, judge_ab, judge_ba = backend.calls
    assert PERSONA not in json.dumps(rejected_call)  # rejected: no persona information
    assert PERSONA in critique_call[0]["content"] and pair.rejected in critique_call[1]["content"]
    assert pair.critique in revise_call[1]["content"] and f"({len(pair.rejected)} characters)" in revise_call[1]["content"]
    # order ab: A = chosen; order ba: A = rejected
    assert judge_ab[1]["content"].index(pair.chosen) < judge_ab[1]["content"].index(pair.rejected)
    assert judge_ba[1]["content"].index(pair.rejected) < judge_ba[1]["content"].index(pair.chosen)
    assert pair.validation.choice_ab == "A" and pair.validation.choice_ba == "B"
    assert pair.validation.chosen_both and not pair.flagged and pair.validation.position_bias is False


def test_judge_preferring_rejected_in_both_orders_is_flagged_not_dropped():
    pair = _run(MockBackend(_router(judge=("B", "A"))))
    assert pair.status == "ok" and pair.flagged and pair.validation.flagged
    pos = _run(MockBackend(_router(judge=("A", "A"))))
    assert pos.validation.position_bias is True and not pos.flagged


def test_length_policy_retry_then_ok():
    rejected = "Twenty-five characters!!"
    backend = MockBackend(_router(rejected=rejected, revisions=("x" * 40, "y" * 30, "fits")))
    pair = _run(backend)
    assert pair.chosen == "fits" and pair.length_action == "retried" and pair.revision_attempts == 3
    revise_calls = [c for c in backend.calls if c[0]["content"] == templates.REVISE_SYSTEM]
    assert "previous revision had 40 characters" in revise_calls[1][1]["content"]
    assert "previous revision had 30 characters" in revise_calls[2][1]["content"]


def test_length_policy_truncates_shortest_attempt():
    rejected = "A medium answer. With two sentences in it."
    long_rev = "Fitting first sentence. Second sentence that goes on and on beyond the limit for sure."
    pair = _run(MockBackend(_router(rejected=rejected, revisions=(long_rev + " extra", long_rev))),
                GenerationParams(max_revision_attempts=2))
    assert pair.length_action == "truncated" and pair.revision_attempts == 2
    assert pair.chosen == "Fitting first sentence." and len(pair.chosen) <= len(rejected)


def test_truncate_to():
    assert truncate_to("One. Two three four.", 10) == "One."
    assert truncate_to("alpha beta gamma", 12) == "alpha beta"
    assert truncate_to("alpha beta gamma", 10) == "alpha beta"
    assert truncate_to("abcdefghijkl", 5) == "abcde"
    assert truncate_to("short", 50) == "short"


@pytest.mark.parametrize("fail_step,prefix", [("rejected", "rejected:"), ("critique", "critique:"),
                                              ("revise", "chosen:")])
def test_failed_call_becomes_failed_pair(fail_step, prefix):
    base = _router()

    def reply(messages):
        system = messages[0]["content"]
        step = ("rejected" if system == templates.ANSWER_SYSTEM else "critique" if "role-playing" in system
                else "revise" if system == templates.REVISE_SYSTEM else "judge")
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

"""Which prompts each persona gets: seeded by persona id, disjoint train/test, counts vs pools."""

from __future__ import annotations

import pytest

from factories import make_persona
from persona_testbed.core.errors import UserError
from persona_testbed.feedback.plan import PairCounts, plan_pairs


def test_plan_counts_disjoint_and_sorted(prompt_set, personas3):
    prompts = prompt_set(10, 4)
    plan = plan_pairs(personas3, prompts, PairCounts(train=5, test=3, held_out=2), seed=0)
    assert len(plan) == 3 * 10 and [p.id for p in plan] == sorted(p.id for p in plan)
    split_of = {p.id: p.split for p in prompts}
    for persona in personas3:
        mine = [p for p in plan if p.persona_id == persona.id]
        by = {s: [p.prompt_id for p in mine if p.split == s] for s in ("train", "test", "held_out")}
        assert (len(by["train"]), len(by["test"]), len(by["held_out"])) == (5, 3, 2)
        assert not set(by["train"]) & set(by["test"])
        assert {split_of[q] for q in by["train"] + by["test"]} == {"train"}
        assert {split_of[q] for q in by["held_out"]} == {"held_out"}


def test_sampling_depends_on_persona_id_only(prompt_set):
    prompts = prompt_set(20, 5)
    counts = PairCounts(train=4, test=2, held_out=2)
    a = plan_pairs([make_persona("p-x", age="20", religion="Atheist")], prompts, counts, seed=1)
    b = plan_pairs([make_persona("p-x", age="80", religion="Catholic")], prompts, counts, seed=1)
    assert a == b  # same id, different attributes: same prompts (no demographic–topic coupling)
    c = plan_pairs([make_persona("p-y")], prompts, counts, seed=1)
    assert {p.prompt_id for p in a} != {p.prompt_id for p in c}
    d = plan_pairs([make_persona("p-x")], list(reversed(prompts)), counts, seed=1)
    assert a == d  # input order does not matter


def test_more_held_out_does_not_reshuffle_train(prompt_set):
    prompts = prompt_set(12, 6)
    p = [make_persona("p-1")]
    small = plan_pairs(p, prompts, PairCounts(train=4, test=2, held_out=2), seed=0)
    big = plan_pairs(p, prompts, PairCounts(train=4, test=2, held_out=5), seed=0)
    assert {x.id for x in small if x.split != "held_out"} == {x.id for x in big if x.split != "held_out"}
    assert {x.id for x in small} < {x.id for x in big}


@pytest.mark.parametrize(
    "counts,needle",
    [
        (PairCounts(train=5, test=2, held_out=1), "exceed the 6 train-split prompts"),
        (PairCounts(train=1, test=1, held_out=3), "exceed the 2 held-out prompts"),
        (PairCounts(train=0, test=0, held_out=0), "nothing to generate"),
        (PairCounts(train=-1, test=0, held_out=0), "--train must be >= 0"),
    ],
)
def test_bad_counts(prompt_set, personas3, counts, needle):
    with pytest.raises(UserError, match=needle):
        plan_pairs(personas3, prompt_set(6, 2), counts, seed=0)


def test_zero_personas(prompt_set):
    with pytest.raises(UserError, match="no personas"):
        plan_pairs([], prompt_set(6, 2), PairCounts(train=1, test=1, held_out=1), seed=0)

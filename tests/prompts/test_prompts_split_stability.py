"""The split is keyed per prompt: prompts joining or leaving the kept set move only boundary prompts."""

from __future__ import annotations

import asyncio

import pytest

from persona_testbed.core.seeds import rng
from persona_testbed.llm import LLMClient, MockBackend, PermanentError
from persona_testbed.prompts import PromptBuildConfig, abuild_prompts
from persona_testbed.prompts.cluster import (
    PAPER_HELD_OUT_FRACTION,
    held_out_counts,
    side_changes_bound,
    split_priority,
    stratified_split,
)

F = PAPER_HELD_OUT_FRACTION


def _paper_like(n: int = 3868, k: int = 20, seed: int = 0) -> dict[str, int]:
    """``n`` prompt ids in ``k`` clusters of uneven sizes."""
    r = rng(seed, "test.clusters")
    weights = r.dirichlet([2.0] * k)
    return {f"q-{i:05d}": int(c) for i, c in enumerate(r.choice(k, size=n, p=weights))}


def _split(members: dict[str, int], seed: int = 7, fraction: float = F) -> dict[str, str]:
    ids = list(members)
    return stratified_split(ids, [members[i] for i in ids], fraction, seed)


def _changes(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return [pid for pid in a if pid in b and a[pid] != b[pid]]


@pytest.mark.parametrize("trial", range(5))
def test_removing_one_percent_moves_only_boundary_prompts(trial):
    full = _paper_like()
    split = _split(full)
    assert sum(v == "held_out" for v in split.values()) == 868 and len(split) - 868 == 3000
    gone = set(rng(trial, "test.remove").choice(sorted(full), size=len(full) // 100, replace=False).tolist())
    rest = {pid: c for pid, c in full.items() if pid not in gone}
    split2 = _split(rest)
    assert sum(v == "held_out" for v in split2.values()) == round(len(rest) * F)
    bound = side_changes_bound(full, rest, F)
    moved = _changes(split, split2)
    for c in set(full.values()):
        in_c = [pid for pid in moved if full[pid] == c]
        assert len(in_c) <= bound[c], (c, len(in_c), bound[c])
        assert len({split2[pid] for pid in in_c}) <= 1  # one direction per cluster
    # 38 prompts removed: a few dozen boundary prompts at most move, never a reshuffle of 3,830
    assert len(moved) <= sum(bound.values()) <= 2 * len(gone) + 2 * 20
    assert len(moved) < 0.03 * len(rest)


def test_adding_and_removing_prompts_is_bounded_and_symmetric():
    base = _paper_like(1000, 8, seed=3)
    grown = dict(base, **{f"new-{i}": i % 8 for i in range(15)})
    shrunk = {pid: c for i, (pid, c) in enumerate(base.items()) if i % 97}
    a, b, c = _split(base, fraction=0.3), _split(grown, fraction=0.3), _split(shrunk, fraction=0.3)
    for x, y, mx, my in ((a, b, base, grown), (a, c, base, shrunk), (b, c, grown, shrunk)):
        bound = side_changes_bound(mx, my, 0.3)
        moved = _changes(x, y)
        for cl in bound:
            assert sum(1 for pid in moved if mx[pid] == cl) <= bound[cl]
    assert _split(base, fraction=0.3) == a  # deterministic


def test_a_prompt_with_a_low_priority_stays_held_out_whatever_joins():
    members = _paper_like(500, 4, seed=1)
    split = _split(members, fraction=0.25)
    lowest = min(members, key=lambda pid: split_priority(7, pid))
    assert split[lowest] == "held_out"
    for extra in range(1, 40, 7):  # prompts joining its cluster never push the first in line out
        grown = dict(members, **{f"x{i}": members[lowest] for i in range(extra)})
        assert _split(grown, fraction=0.25)[lowest] == "held_out"


def test_split_priority_is_per_prompt_and_seeded():
    assert split_priority(1, "q-a") == split_priority(1, "q-a")
    assert split_priority(1, "q-a") != split_priority(2, "q-a")
    assert split_priority(1, "q-a") != split_priority(1, "q-b")


def test_exact_sizes_and_stratification_kept():
    members = _paper_like()
    split = _split(members)
    sizes: dict[int, int] = {}
    for c in members.values():
        sizes[c] = sizes.get(c, 0) + 1
    want = held_out_counts(sizes, F)
    for c in sizes:
        assert sum(1 for pid, cl in members.items() if cl == c and split[pid] == "held_out") == want[c]


# -- the build: a classifier verdict changing never moves clusters ----------------------------------------

TOPICS = [
    "taxes on income",
    "abortion rights",
    "gun ownership",
    "school prayer",
    "immigration limits",
    "meat eating",
    "nuclear power",
    "voting age",
]
QUESTIONS = [
    f"Should the law on {t} change in case {i} for families like ours?" for i in range(12) for t in TOPICS
]


def _classifier(failing: set[str]):
    def reply(messages):
        question = messages[-1]["content"]
        if any(f in question for f in failing):
            return PermanentError("scripted outage")
        return '{"controversial": true, "reason": "values differ"}'

    return reply


def _build(failing: set[str]):
    client = LLMClient(backend=MockBackend(_classifier(failing)))
    items = list(enumerate(QUESTIONS, 1))
    return asyncio.run(
        abuild_prompts(items, client, PromptBuildConfig(seed=4, clusters=4, held_out_fraction=0.3))
    )


def test_failed_classifications_do_not_reshuffle_the_split():
    full = {p.id: p for p in _build(set()) if p.kept}
    assert len(full) == len(QUESTIONS)
    failing = {"in case 3 ", "in case 7 "}  # 16 prompts' classifier calls fail: they leave the kept set
    partial = {p.id: p for p in _build(failing) if p.kept}
    assert len(partial) == len(full) - 16
    # clusters are fitted on the classifier's input, so every remaining prompt keeps its cluster and label
    assert all(
        partial[i].cluster == full[i].cluster and partial[i].cluster_label == full[i].cluster_label
        for i in partial
    )
    moved = [i for i in partial if partial[i].split != full[i].split]
    bound = side_changes_bound(
        {i: p.cluster for i, p in full.items()}, {i: p.cluster for i, p in partial.items()}, 0.3
    )
    for c in bound:
        assert sum(1 for i in moved if full[i].cluster == c) <= bound[c]
    assert len(moved) <= sum(bound.values()) < len(partial) // 2

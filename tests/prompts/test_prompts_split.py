"""Topic clusters and the stratified split (sizes like the paper, proportional per cluster)."""

from __future__ import annotations

from collections import Counter

import pytest

from persona_testbed.prompts.cluster import (
    PAPER_HELD_OUT_FRACTION,
    cluster_texts,
    default_clusters,
    held_out_counts,
    stratified_split,
)


def test_paper_scale_split_is_3000_868():
    counts = held_out_counts({0: 3868}, PAPER_HELD_OUT_FRACTION)
    assert counts == {0: 868}
    sizes = {c: s for c, s in enumerate([900, 700, 650, 500, 400, 300, 200, 150, 68])}
    assert sum(sizes.values()) == 3868
    counts = held_out_counts(sizes, PAPER_HELD_OUT_FRACTION)
    assert sum(counts.values()) == 868
    for c, n in sizes.items():  # each cluster within one prompt of its exact share
        assert abs(counts[c] - n * PAPER_HELD_OUT_FRACTION) < 1


@pytest.mark.parametrize("n,fraction", [(40, PAPER_HELD_OUT_FRACTION), (101, 0.3), (7, 0.5), (4, 0.25)])
def test_stratified_split_proportions(n, fraction):
    ids = [f"q{i}" for i in range(n)]
    clusters = [i % 3 for i in range(n)]
    split = stratified_split(ids, clusters, fraction, seed=1)
    assert sum(v == "held_out" for v in split.values()) == round(n * fraction)
    for c in range(3):
        members = [i for i, cl in zip(ids, clusters) if cl == c]
        held = sum(split[i] == "held_out" for i in members)
        assert abs(held - len(members) * fraction) < 1
    assert split == stratified_split(list(reversed(ids)), list(reversed(clusters)), fraction, seed=1)
    other = stratified_split(ids, clusters, fraction, seed=2)
    assert sorted(Counter(other.values()).items()) == sorted(Counter(split.values()).items())


def test_clusters_are_seeded_and_labelled_by_top_terms():
    texts = (
        [f"Should taxes on income rise for group {i}?" for i in range(10)]
        + [f"Is abortion morally acceptable in case {i}?" for i in range(10)]
        + [f"Who wins the football match number {i}?" for i in range(10)]
    )
    a, labels = cluster_texts(texts, 3, seed=5)
    b, labels_b = cluster_texts(texts, 3, seed=5)
    assert a == b and labels == labels_b
    groups = [set(a[i * 10 : (i + 1) * 10]) for i in range(3)]
    assert all(len(g) == 1 for g in groups) and len(set.union(*groups)) == 3
    assert any("abortion" in lab for lab in labels) and any(
        "taxes" in lab or "income" in lab for lab in labels
    )


def test_default_clusters():
    assert default_clusters(3868) == 20 and default_clusters(4) == 1 and default_clusters(40) == 4
    assert default_clusters(0) == 0

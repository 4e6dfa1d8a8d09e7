"""Bench metrics against oracles: sklearn kappa, scipy bootstrap, brute-force pass@k."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from persona_testbed.bench.metrics import (
    bootstrap_ci,
    cohen_kappa,
    kappa_ci,
    majority_vote,
    mean_ci,
    pass_at_k,
)


def _sk(a, b, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cohen_kappa_score(a, b, **kw)


@pytest.mark.parametrize("trial", range(40))
def test_kappa_equals_sklearn_random(trial):
    r = np.random.default_rng(trial)
    n = int(r.integers(1, 60))
    k = int(r.integers(1, 4))
    a = [str(x) for x in r.integers(0, k, n)]
    b = [str(x) for x in r.integers(0, k + 1, n)]
    ours, ref = cohen_kappa(a, b), _sk(a, b)
    assert (math.isnan(ours) and math.isnan(ref)) or ours == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize(
    "a,b",
    [
        ([1, 1, 1], [1, 1, 1]),  # one shared label: undefined (nan), like sklearn
        ([1, 1, 1], [0, 0, 0]),  # constant but different: 0
        ([1, 1, 0], [1, 1, 1]),  # one rater constant: 0
        ([0, 1, 0, 1], [1, 0, 1, 0]),  # perfect disagreement: -1
        ([0, 1, 2], [0, 1, 2]),  # perfect agreement: 1
        (["chosen", "tie"], ["rejected", "tie"]),
    ],
)
def test_kappa_degenerate_cases_match_sklearn(a, b):
    ours, ref = cohen_kappa(a, b), _sk(a, b)
    assert (math.isnan(ours) and math.isnan(ref)) or ours == pytest.approx(ref)


def test_kappa_with_labels_and_empty():
    a, b = ["x", "y", "z", "x"], ["x", "y", "y", "q"]
    assert cohen_kappa(a, b, labels=["x", "y"]) == pytest.approx(_sk(a, b, labels=["x", "y"]))
    assert math.isnan(cohen_kappa([], []))
    with pytest.raises(ValueError):
        cohen_kappa([1], [1, 2])


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_mean_ci_agrees_with_scipy(method):
    r = np.random.default_rng(7)
    x = (r.random(80) < 0.65).astype(float)
    ours = mean_ci(x, rng=np.random.default_rng(1), n_resamples=20000, method=method)
    ref = stats.bootstrap(
        (x,), np.mean, n_resamples=20000, method=method, random_state=2, confidence_level=0.95
    ).confidence_interval
    assert ours.estimate == pytest.approx(x.mean())
    # Monte-Carlo error of a 2.5% quantile with 20k resamples is ~0.005 here; allow 0.02.
    assert ours.low == pytest.approx(ref.low, abs=0.02)
    assert ours.high == pytest.approx(ref.high, abs=0.02)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_paired_kappa_agrees_with_scipy(method):
    r = np.random.default_rng(3)
    a = r.integers(0, 2, 120)
    b = np.where(r.random(120) < 0.8, a, 1 - a)
    ours = kappa_ci(list(a), list(b), rng=np.random.default_rng(5), n_resamples=10000, method=method)

    def stat(x, y, axis=-1):
        x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
        po = np.mean(x == y, axis=-1)
        pe = np.mean(x == 0, -1) * np.mean(y == 0, -1) + np.mean(x == 1, -1) * np.mean(y == 1, -1)
        return (po - pe) / (1 - pe)

    ref = stats.bootstrap(
        (a, b), stat, paired=True, vectorized=True, n_resamples=10000, method=method, random_state=4
    ).confidence_interval
    assert ours.estimate == pytest.approx(_sk(a, b))
    assert ours.low == pytest.approx(ref.low, abs=0.03)
    assert ours.high == pytest.approx(ref.high, abs=0.03)


def test_bootstrap_degenerate_and_deterministic():
    ci = mean_ci([1.0, 1.0, 1.0], rng=np.random.default_rng(0))
    assert (ci.estimate, ci.low, ci.high) == (1.0, 1.0, 1.0)
    empty = mean_ci([], rng=np.random.default_rng(0))
    assert math.isnan(empty.estimate) and empty.as_dict()["low"] is None
    x = [0, 1, 1, 0, 1, 1, 1]
    assert mean_ci(x, rng=np.random.default_rng(9)) == mean_ci(x, rng=np.random.default_rng(9))
    with pytest.raises(ValueError):
        bootstrap_ci([[1, 2], [1]], lambda a, b: a.mean(-1), rng=np.random.default_rng(0))


def _pass_at_k_brute(correct: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(range(len(correct)), k))
    return sum(any(correct[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_equals_bruteforce(n):
    for c in range(n + 1):
        correct = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(_pass_at_k_brute(correct, k), abs=1e-12)


def test_pass_at_k_large_n_is_stable_and_validates():
    # Binomials overflow floats here; the product form stays exact enough.
    v = pass_at_k(2000, 3, 100)
    assert v == pytest.approx(1 - math.comb(1997, 100) / math.comb(2000, 100), rel=1e-9)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_majority_vote_ties_explicit():
    assert majority_vote(["a", "a", "b"]).label == "a"
    m = majority_vote(["a", "b", "tie"])
    assert m.tie and m.label is None and m.counts == {"a": 1, "b": 1, "tie": 1}
    assert majority_vote(["a", "b"]).tie
    assert majority_vote([]).tie and majority_vote([]).n_votes == 0
    assert not majority_vote(["b", "b", "b"]).tie

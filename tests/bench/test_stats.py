"""Resampling statistics against oracles: the item bootstrap, sklearn, scipy, brute force."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score

from persona_testbed.bench.metrics import bootstrap_ci, kappa_ci, mean_ci
from persona_testbed.bench.stats import (
    calibrate,
    cluster_ci,
    kappa_features,
    kappa_from_totals,
    label_codes,
    labels_needed,
    max_gap,
    mean_features,
    n_for_half_width,
    ratio,
    rogan_gladen,
    small_sample_factor,
)


def _widen(ci, g, method):
    """The item bootstrap's interval with the small-sample widening of a percentile interval."""
    if method != "percentile":
        return ci.estimate, ci.low, ci.high
    k = small_sample_factor(g)
    return ci.estimate, ci.estimate - (ci.estimate - ci.low) * k, ci.estimate + (ci.high - ci.estimate) * k


def test_small_sample_factor():
    assert small_sample_factor(50) == pytest.approx(
        math.sqrt(50 / 49) * sps.t.ppf(0.975, 49) / sps.norm.ppf(0.975)
    )
    assert 1.03 < small_sample_factor(50) < 1.04 and small_sample_factor(100000) == pytest.approx(1, abs=1e-4)
    assert small_sample_factor(4) > small_sample_factor(10) > small_sample_factor(30)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_unclustered_equals_the_item_bootstrap_exactly(method):
    """clusters=None draws exactly the item bootstrap's resamples: same interval to the last bit (plus the
    small-sample widening of a percentile interval)."""
    r = np.random.default_rng(3)
    x = (r.random(57) < 0.4).astype(float)
    ours, g = cluster_ci(
        mean_features(x), ratio(), clusters=None, rng=np.random.default_rng(9), method=method
    )
    ref = _widen(mean_ci(x, rng=np.random.default_rng(9), method=method), 57, method)
    assert g == 57 and (ours.estimate, ours.low, ours.high) == pytest.approx(ref, abs=1e-12)
    a, b = r.integers(0, 3, 80), r.integers(0, 3, 80)
    ca, cb, k = label_codes(list(a), list(b))
    ko, _ = cluster_ci(
        kappa_features(ca, cb, k),
        kappa_from_totals(k),
        clusters=None,
        rng=np.random.default_rng(2),
        method=method,
    )
    kr = _widen(kappa_ci(list(a), list(b), rng=np.random.default_rng(2), method=method), 80, method)
    assert (ko.estimate, ko.low, ko.high) == pytest.approx(kr, abs=1e-12)


@pytest.mark.parametrize("trial", range(20))
def test_kappa_from_totals_equals_sklearn_with_weights(trial):
    """Cluster multiplicities are sample weights: kappa of the totals = sklearn's weighted kappa."""
    r = np.random.default_rng(trial)
    n, k = int(r.integers(2, 40)), int(r.integers(2, 4))
    a, b = r.integers(0, k, n), r.integers(0, k, n)
    w = r.integers(0, 4, n).astype(float)
    ours = float(kappa_from_totals(k)((kappa_features(a, b, k) * w[:, None]).sum(0)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cohen_kappa_score(a, b, labels=list(range(k)), sample_weight=w)
    assert (math.isnan(ours) and math.isnan(ref)) or ours == pytest.approx(ref, abs=1e-12)


def test_cluster_bootstrap_equals_brute_force():
    """Resampling whole clusters, computed by concatenating the drawn clusters' items one resample at a time."""
    r = np.random.default_rng(5)
    clusters = np.repeat(np.arange(12), r.integers(1, 6, 12))
    x = (r.random(len(clusters)) < 0.3 + 0.04 * clusters).astype(float)
    ours, g = cluster_ci(
        mean_features(x), ratio(), clusters=list(clusters), rng=np.random.default_rng(1), n_resamples=500
    )
    draws = np.random.default_rng(1).integers(0, 12, size=(500, 12))
    boot = [np.concatenate([x[clusters == c] for c in row]).mean() for row in draws]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    est, k = x.mean(), small_sample_factor(12)
    assert (
        g == 12
        and ours.low == pytest.approx(est - (est - lo) * k)
        and ours.high == pytest.approx(est + (hi - est) * k)
    )


def test_cluster_interval_is_wider_when_items_within_a_cluster_agree():
    r = np.random.default_rng(0)
    clusters = np.repeat(np.arange(30), 8)
    x = np.repeat((r.random(30) < 0.5).astype(float), 8)  # perfectly correlated within a persona
    c, _ = cluster_ci(mean_features(x), ratio(), clusters=list(clusters), rng=np.random.default_rng(1))
    i, _ = cluster_ci(mean_features(x), ratio(), clusters=None, rng=np.random.default_rng(1))
    assert (c.high - c.low) > 2.5 * (i.high - i.low)  # sqrt(8) ~ 2.8: the design effect


def test_percentile_interval_agrees_with_scipy():
    r = np.random.default_rng(7)
    x = (r.random(120) < 0.65).astype(float)
    ours, _ = cluster_ci(
        mean_features(x), ratio(), clusters=None, rng=np.random.default_rng(1), n_resamples=20000
    )
    ref = sps.bootstrap((x,), np.mean, n_resamples=20000, method="percentile", rng=np.random.default_rng(2))
    assert ours.low == pytest.approx(ref.confidence_interval.low, abs=0.02)
    assert ours.high == pytest.approx(ref.confidence_interval.high, abs=0.02)


def test_stratified_resampling_keeps_each_stratum_whole():
    """With strata, every resample has each stratum's number of clusters: a group's size never collapses."""
    x = np.r_[np.ones(10), np.zeros(10)]
    strata = ["a"] * 10 + ["b"] * 10
    e, _ = cluster_ci(mean_features(x), ratio(), clusters=None, strata=strata, rng=np.random.default_rng(0))
    assert e.low == e.high == 0.5  # each stratum is constant, so the pooled mean never moves


def test_max_gap_permutation_p_value_agrees_with_scipy():
    r = np.random.default_rng(11)
    groups = np.repeat(["a", "b", "c"], [40, 50, 45])
    x = (r.random(len(groups)) < np.select([groups == "a", groups == "b"], [0.5, 0.62], 0.45)).astype(float)
    ours = max_gap(x, list(groups), None, rng=np.random.default_rng(1), n_resamples=500, n_permutations=20000)

    def stat(*samples, axis=-1):
        means = np.stack([np.mean(s, axis=axis) for s in samples])
        return means.max(0) - means.min(0)

    ref = sps.permutation_test(
        [x[groups == g] for g in "abc"],
        stat,
        n_resamples=20000,
        alternative="greater",
        rng=np.random.default_rng(3),
    )
    assert ours is not None and ours.estimate == pytest.approx(ref.statistic)
    assert ours.p_value == pytest.approx(ref.pvalue, abs=0.015)


def test_max_gap_interval_against_brute_force_two_groups():
    """Two groups: c is the quantile of |(d* - d)| with d* from independent within-group resamples."""
    r = np.random.default_rng(4)
    a, b = (r.random(60) < 0.7).astype(float), (r.random(80) < 0.5).astype(float)
    x = np.r_[a, b]
    groups = ["a"] * 60 + ["b"] * 80
    ours = max_gap(x, groups, None, rng=np.random.default_rng(1), n_resamples=4000, n_permutations=200)
    g = np.random.default_rng(8)
    d = a.mean() - b.mean()
    dev = np.abs(a[g.integers(0, 60, (4000, 60))].mean(1) - b[g.integers(0, 80, (4000, 80))].mean(1) - d)
    c = np.quantile(dev, 0.95)
    assert ours is not None and ours.highest == "a" and ours.estimate == pytest.approx(d)
    assert ours.critical == pytest.approx(c, rel=0.06)
    assert ours.low == pytest.approx(max(0.0, d - ours.critical)) and ours.high == pytest.approx(
        d + ours.critical
    )


def test_rogan_gladen_and_its_interval():
    assert rogan_gladen(0.6, 1.0, 1.0) == pytest.approx(0.6)
    # a judge that passes 90% of good and 30% of bad answers observes 0.9 t + 0.3 (1 - t)
    assert rogan_gladen(0.9 * 0.4 + 0.3 * 0.6, 0.9, 0.7) == pytest.approx(0.4)
    assert math.isnan(rogan_gladen(0.5, 0.5, 0.5))  # an uninformative judge corrects nothing
    hits = 0
    for seed in range(100):  # coverage of the corrected accuracy, both error sources resampled
        g = np.random.default_rng(seed)
        truth, se, sp, n, m = 0.4, 0.85, 0.8, 400, 300
        good = g.random(n) < truth
        judged = np.where(good, g.random(n) < se, g.random(n) < 1 - sp).astype(float)
        h = (g.random(m) < truth).astype(int)
        hj = np.where(h == 1, g.random(m) < se, g.random(m) < 1 - sp).astype(float)
        cal = calibrate(judged, h, hj, rng=np.random.default_rng([seed, 1]), n_resamples=1000)
        hits += cal.low <= truth <= cal.high
    assert hits >= 90


def test_labels_needed_reaches_the_width():
    m = labels_needed(0.05, observed=0.5, sensitivity=0.85, specificity=0.8, n_items=2000)
    assert m is not None and 500 < m < 5000
    widths = []
    for seed in range(40):
        g = np.random.default_rng(seed)
        truth = rogan_gladen(0.5, 0.85, 0.8)
        good = g.random(2000) < truth
        judged = np.where(good, g.random(2000) < 0.85, g.random(2000) < 0.2).astype(float)
        h = (g.random(m) < truth).astype(int)
        hj = np.where(h == 1, g.random(m) < 0.85, g.random(m) < 0.2).astype(float)
        cal = calibrate(judged, h, hj, rng=np.random.default_rng(seed), n_resamples=1000)
        widths.append((cal.high - cal.low) / 2)
    assert np.mean(widths) == pytest.approx(0.05, rel=0.15)
    assert (
        labels_needed(0.01, observed=0.5, sensitivity=0.85, specificity=0.8, n_items=50) is None
    )  # too few items


def test_n_for_half_width_is_the_binomial_formula():
    assert n_for_half_width(0.5, 0.05) == math.ceil(1.959963984540054**2 * 0.25 / 0.0025)
    assert n_for_half_width(0.5, 0.05, design_effect=2.0) == math.ceil(
        2 * 1.959963984540054**2 * 0.25 / 0.0025
    )


def test_bootstrap_ci_unchanged_for_existing_callers():
    ci = bootstrap_ci([np.array([1.0, 0.0, 1.0, 1.0])], lambda x: x.mean(-1), rng=np.random.default_rng(0))
    assert ci.estimate == 0.75 and 0 <= ci.low <= ci.high <= 1

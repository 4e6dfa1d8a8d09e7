"""weighted_shares, tvd, chi-square GOF against scipy; Kish ESS."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from persona_testbed.census import chi2_gof, chi2_gof_pvalue, kish_ess, tvd, weighted_shares


def test_weighted_shares():
    s = weighted_shares(["a", "b", "a", None], [1, 2, 3, 4])
    assert s == pytest.approx({"a": 0.4, "b": 0.2, "N/A": 0.4})
    assert list(s)[0] in ("a", "N/A")
    assert weighted_shares(["x", "y"]) == {"x": 0.5, "y": 0.5}
    assert weighted_shares([], []) == {}


def test_tvd():
    p, q = {"a": 0.5, "b": 0.5}, {"a": 0.2, "c": 0.8}
    assert tvd(p, q) == pytest.approx(0.5 * (0.3 + 0.5 + 0.8))
    assert tvd(p, p) == 0.0
    assert tvd({"a": 2, "b": 2}, {"a": 0.5, "b": 0.5}) == pytest.approx(0.0)  # renormalised


def test_chi2_matches_scipy_without_pooling():
    obs = {"a": 30, "b": 50, "c": 20}
    shares = {"a": 0.25, "b": 0.5, "c": 0.25}
    stat, p, dof = chi2_gof(obs, shares)
    ref = stats.chisquare([30, 50, 20], [25, 50, 25])
    assert stat == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue) and dof == 2
    assert chi2_gof_pvalue(obs, shares) == pytest.approx(ref.pvalue)


def test_chi2_pools_tiny_cells():
    obs = {"a": 48, "b": 45, "c": 4, "d": 3}
    shares = {"a": 0.5, "b": 0.42, "c": 0.04, "d": 0.04}  # c, d expected 4 each -> pooled to 8
    stat, p, dof = chi2_gof(obs, shares)
    ref = stats.chisquare([48, 45, 7], [50, 42, 8])
    assert stat == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue) and dof == 2
    # an observed category with no expected share joins the pooled cell
    stat2, _p2, _ = chi2_gof({"a": 48, "b": 45, "zz": 7}, {"a": 0.5, "b": 0.42, "c": 0.08})
    assert stat2 == pytest.approx(ref.statistic)
    assert chi2_gof({"a": 10}, {"a": 1.0}) == (0.0, 1.0, 0)


def test_kish_ess():
    assert kish_ess([1, 1, 1, 1]) == pytest.approx(4)
    w = np.array([1.0, 2.0, 3.0])
    assert kish_ess(w) == pytest.approx(36 / 14)

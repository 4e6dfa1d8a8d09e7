import numpy as np
import pytest

from persona_testbed.personas.bigfive import DOMAINS, Norms, draw_bigfive, level_of, load_norms

CORR = np.array([[1.0, -0.013, 0.413, -0.013, 0.019],  # O C E A N order
                 [-0.013, 1.0, 0.281, 0.244, -0.544],
                 [0.413, 0.281, 1.0, 0.075, -0.215],
                 [-0.013, 0.244, 0.075, 1.0, -0.256],
                 [0.019, -0.544, -0.215, -0.256, 1.0]])


def _norms():
    means = np.full((2, 4, 5), 80.0)
    means[1, :, DOMAINS.index("A")] = 95.0
    return Norms(means, np.full((2, 4, 5), 12.0), CORR)


def test_large_draw_has_target_correlation_and_norm_means():
    n = 100_000
    res = draw_bigfive(_norms(), np.arange(n) % 2 == 1, np.full(n, 30), seed=0, keys=np.arange(n))
    emp = np.corrcoef(res["z"].T)
    assert np.abs(emp - CORR).max() < 0.02
    a = DOMAINS.index("A")
    female = np.arange(n) % 2 == 1
    assert abs(res["score"][female, a].mean() - 95.0) < 0.3 and abs(res["score"][~female, a].mean() - 80.0) < 0.3
    share_avg = (res["level"] == "Average").mean()
    assert abs(share_avg - 0.40) < 0.01


def test_levels_by_percentile_band_and_determinism():
    assert list(level_of(np.array([1, 5, 20, 50, 80, 95, 99]))) == [
        "Extremely Low", "Very Low", "Low", "Average", "High", "Very High", "Extremely High"]
    a = draw_bigfive(_norms(), np.array([True]), np.array([70]), 3, np.array([9]))
    b = draw_bigfive(_norms(), np.array([True]), np.array([70]), 3, np.array([9]))
    assert np.array_equal(a["score"], b["score"]) and a["group"][0] == 3


def test_load_norms_from_mirror(mirror):
    norms = load_norms(mirror)
    assert norms.means.shape == (2, 4, 5)
    assert norms.corr[DOMAINS.index("N"), DOMAINS.index("C")] == pytest.approx(-0.544)

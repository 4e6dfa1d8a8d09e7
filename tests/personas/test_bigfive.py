import numpy as np
import pytest
from scipy.special import ndtr

from persona_testbed.core.errors import UserError
from persona_testbed.personas.bigfive import (
    DOMAINS,
    LEVELS,
    POOLED_WEIGHTS,
    Norms,
    draw_bigfive,
    level_of,
    level_probabilities,
    load_norms,
)

CORR = np.array(
    [
        [1.0, -0.013, 0.413, -0.013, 0.019],  # O C E A N order
        [-0.013, 1.0, 0.281, 0.244, -0.544],
        [0.413, 0.281, 1.0, 0.075, -0.215],
        [-0.013, 0.244, 0.075, 1.0, -0.256],
        [0.019, -0.544, -0.215, -0.256, 1.0],
    ]
)


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
    assert (
        abs(res["score"][female, a].mean() - 95.0) < 0.3 and abs(res["score"][~female, a].mean() - 80.0) < 0.3
    )
    share_avg = (res["level"] == "Average").mean()
    assert abs(share_avg - 0.40) < 0.01


def test_levels_by_percentile_band_and_determinism():
    assert list(level_of(np.array([1, 5, 20, 50, 80, 95, 99]))) == [
        "Extremely Low",
        "Very Low",
        "Low",
        "Average",
        "High",
        "Very High",
        "Extremely High",
    ]
    a = draw_bigfive(_norms(), np.array([True]), np.array([70]), 3, np.array([9]))
    b = draw_bigfive(_norms(), np.array([True]), np.array([70]), 3, np.array([9]))
    assert np.array_equal(a["score"], b["score"]) and a["group"][0] == 3


def test_load_norms_from_mirror(mirror):
    norms = load_norms(mirror)
    assert norms.means.shape == (2, 4, 5)
    assert norms.corr[DOMAINS.index("N"), DOMAINS.index("C")] == pytest.approx(-0.544)


def _grouped_norms():
    """Norm groups whose means differ (by sex and by age group), as in the real IPIP-NEO-120 tables."""
    means = np.full((2, 4, 5), 80.0)
    means[1] += 6.0
    means[:, :, DOMAINS.index("A")] += np.array([0.0, 3.0, 6.0, 9.0])
    sds = np.full((2, 4, 5), 12.0)
    sds[:, 3] = 10.0
    return Norms(means, sds, CORR)


def _pooled_population(n):
    """Sex / age arrays whose norm groups follow POOLED_WEIGHTS (the population the pooled norms describe)."""
    rng = np.random.default_rng(1)
    cell = rng.choice(8, size=n, p=POOLED_WEIGHTS.ravel())
    ages = np.array([19, 30, 50, 70])[cell % 4]
    return cell // 4 == 1, ages


def test_pooled_reference_levels_are_percentile_bands_over_the_adult_population():
    n = 200_000
    female, ages = _pooled_population(n)
    norms = _grouped_norms()
    res = draw_bigfive(norms, female, ages, seed=0, keys=np.arange(n), reference="pooled")
    for j in range(5):  # over the whole adult population, the pooled levels have the band probabilities
        assert abs((res["level"][:, j] == "Average").mean() - 0.40) < 0.006
        assert abs((res["level"][:, j] == "Extremely Low").mean() - 0.025) < 0.003
    # ... but not within a group: older women score higher on Agreeableness, so they are "High" more often
    a = DOMAINS.index("A")
    high = np.isin(res["level"][:, a], ["High", "Very High", "Extremely High"])
    old_f, young_m = female & (ages > 60), ~female & (ages < 21)
    assert high[old_f].mean() > 0.45 and high[young_m].mean() < 0.2
    grp = draw_bigfive(norms, female, ages, seed=0, keys=np.arange(n), reference="group")
    assert np.array_equal(grp["score"], res["score"])  # the reference changes levels, never scores
    g_high = np.isin(grp["level"][:, a], ["High", "Very High", "Extremely High"])
    assert abs(g_high[old_f].mean() - 0.30) < 0.02 and abs(g_high[young_m].mean() - 0.30) < 0.03


def test_group_reference_is_the_within_group_percentile():
    norms = _grouped_norms()
    res = draw_bigfive(
        norms, np.array([True, False]), np.array([70, 19]), 5, np.array([1, 2]), reference="group"
    )
    mu, sd = norms.means[[1, 0], [3, 0]], norms.sds[[1, 0], [3, 0]]
    assert np.allclose(res["percentile"], ndtr((res["score"] - mu) / sd) * 100)


def test_level_probabilities_match_draws_and_sum_to_one():
    norms = _grouped_norms()
    n = 100_000
    for female, group, age in ((1, 3, 70), (0, 0, 19)):
        probs = level_probabilities(norms, "pooled", female, group)
        assert probs.shape == (5, len(LEVELS)) and np.allclose(probs.sum(axis=1), 1.0)
        res = draw_bigfive(norms, np.full(n, bool(female)), np.full(n, age), seed=2, keys=np.arange(n))
        for k, (_, level) in enumerate(LEVELS):
            assert abs((res["level"][:, 2] == level).mean() - probs[2, k]) < 0.006
    assert np.allclose(
        level_probabilities(None, "group", 0, 0)[0], [0.025, 0.075, 0.2, 0.4, 0.2, 0.075, 0.025]
    )


def test_unknown_reference_is_a_user_error():
    with pytest.raises(UserError, match="unknown Big Five reference 'own'"):
        draw_bigfive(_norms(), np.array([True]), np.array([30]), 0, np.array([0]), reference="own")


def test_pooled_percentile_and_level_index_equal_the_plain_formulas():
    """The in-place pooled percentile is bit-identical to the plain sum of weighted normal CDFs, and
    ``level_names=False`` (no per-row object array) leaves every other output unchanged."""
    from persona_testbed.personas.bigfive import AGE_GROUPS, pooled_percentile

    rng = np.random.default_rng(5)
    norms = _norms()
    norms.means[0, 2] += 4.0
    norms.sds[1, 3] *= 1.3
    score = rng.uniform(24, 120, size=(5000, 5))
    plain = np.zeros_like(score)
    for s in range(2):
        for g in range(len(AGE_GROUPS)):
            plain += POOLED_WEIGHTS[s, g] * ndtr((score - norms.means[s, g]) / norms.sds[s, g])
    assert np.array_equal(pooled_percentile(norms, score), plain * 100.0)
    n = 3000
    args = (norms, rng.integers(0, 2, n) == 1, rng.integers(18, 90, n), 7, np.arange(n))
    for reference in ("pooled", "group"):
        full = draw_bigfive(*args, reference=reference)
        lean = draw_bigfive(*args, reference=reference, level_names=False)
        assert "level" not in lean and set(full) == set(lean) | {"level"}
        assert all(np.array_equal(full[k], lean[k]) for k in lean)
        assert np.array_equal(full["level"], level_of(full["percentile"]))
        assert np.array_equal(
            np.array([name for _, name in LEVELS], dtype=object)[lean["level_index"]], full["level"]
        )

"""Sampling designs: systematic PPS (default) vs independent draws — inclusion ∝ weight, balance, seeds."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from persona_testbed.census import open_source, sample_persons
from persona_testbed.census.sampling import van_der_corput
from persona_testbed.core.errors import UserError


def frame(n: int, seed: int = 0) -> pl.DataFrame:
    g = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "SERIALNO": [f"2018HU{i:07d}" for i in range(n)],
            "SPORDER": np.ones(n, dtype=np.int64),
            "STATE": g.choice(["10", "50"], n),
            "AGEP": g.integers(18, 90, n),
            "SEX": g.choice(["1", "2"], n),
            "SCHL": [f"{c:02d}" for c in g.integers(1, 25, n)],
            "PWGTP": g.integers(1, 100, n),
        }
    )


def counts(draws: pl.DataFrame, df: pl.DataFrame) -> np.ndarray:
    got = dict(
        zip(*draws["SERIALNO"].value_counts().select("SERIALNO", "count").to_dict(as_series=False).values())
    )
    return np.array([got.get(s, 0) for s in df["SERIALNO"]], dtype=float)


def test_van_der_corput():
    assert van_der_corput(8).tolist() == [0, 0.5, 0.25, 0.75, 0.125, 0.625, 0.375, 0.875]


def test_systematic_inclusion_proportional_to_weight_over_seeds():
    df = frame(30, seed=1)
    w = df["PWGTP"].to_numpy().astype(float)
    n, seeds = 11, 3000
    per_seed = np.array([counts(sample_persons(df, n, seed=s), df) for s in range(seeds)])
    total = per_seed.sum(axis=0)
    expected = seeds * n * w / w.sum()
    assert stats.chisquare(total, expected).pvalue > 1e-3
    assert stats.chisquare(total, np.full(len(w), seeds * n / len(w))).pvalue < 1e-6  # uniform is rejected
    # and record by record: mean hits within 4.5 standard errors of n * w / W (the larger of the empirical
    # and the iid standard error: the empirical one is biased low for records hit a handful of times)
    p = w / w.sum()
    se = np.maximum(per_seed.std(axis=0, ddof=1), np.sqrt(n * p * (1 - p))) / np.sqrt(seeds)
    z = (per_seed.mean(axis=0) - n * w / w.sum()) / np.maximum(se, 1e-9)
    assert np.abs(z).max() < 4.5


def test_systematic_grid_for_power_of_two():
    # n = 2^k points are exactly the systematic grid: every record is hit floor or ceil of n * w / W times
    # (one design key, one record per rank: the walk is one systematic pass along the sort)
    df = frame(40, seed=2).with_columns(SCHL=pl.Series([f"{i:02d}" for i in range(40)])).drop("AGEP", "SEX")
    w = df["PWGTP"].to_numpy().astype(float)
    for s in range(20):
        c = counts(sample_persons(df, 64, seed=s), df)
        exp = 64 * w / w.sum()
        assert np.all(c >= np.floor(exp) - 1e-9) and np.all(c <= np.ceil(exp) + 1e-9)


def test_systematic_balances_the_sort_keys():
    df = frame(3000, seed=3)
    w = df["PWGTP"].to_numpy().astype(float)
    codes = df["SCHL"].cast(int).to_numpy()
    pop = np.bincount(codes, weights=w, minlength=25) / w.sum()

    def mean_tvd(design: str) -> float:
        tv = []
        for s in range(40):
            d = sample_persons(df, 500, seed=s, design=design)
            tv.append(
                0.5 * np.abs(np.bincount(d["SCHL"].cast(int).to_numpy(), minlength=25) / 500 - pop).sum()
            )
        return float(np.mean(tv))

    systematic, independent = mean_tvd("systematic"), mean_tvd("independent")
    assert systematic < 0.5 * independent
    assert independent > 0.03  # the iid noise floor this design removes


def test_designs_seeded_prefix_stable_and_distinct():
    df = frame(200, seed=4)
    for design in ("systematic", "independent"):
        a = sample_persons(df, 300, seed=3, design=design)
        assert a.equals(sample_persons(df, 300, seed=3, design=design))
        assert sample_persons(df, 1000, seed=3, design=design).head(300)["SERIALNO"].equals(a["SERIALNO"])
        assert not a["SERIALNO"].equals(sample_persons(df, 300, seed=4, design=design)["SERIALNO"])
    assert not sample_persons(df, 300, seed=3)["SERIALNO"].equals(
        sample_persons(df, 300, seed=3, design="independent")["SERIALNO"]
    )
    # default is systematic; without replacement the design does not matter
    assert sample_persons(df, 50, seed=1).equals(sample_persons(df, 50, seed=1, design="systematic"))
    assert sample_persons(df, 50, seed=1, replace=False).equals(
        sample_persons(df, 50, seed=1, replace=False, design="independent")
    )


def test_systematic_quotas_and_filters():
    df = frame(400, seed=5)
    out = sample_persons(df, 301, seed=2, quota_by="STATE")
    assert sorted(out["_stratum"].value_counts()["count"].to_list()) == [150, 151]
    assert (out["_stratum"] == out["STATE"]).all()
    from persona_testbed.census import Filters

    out = sample_persons(df, 200, seed=2, filters=Filters(min_age=40, states=["VT"]))
    assert out["AGEP"].min() >= 40 and set(out["STATE"]) == {"50"}


def test_bad_design():
    with pytest.raises(UserError, match="design must be one of"):
        sample_persons(frame(10), 5, seed=0, design="cluster")  # type: ignore[arg-type]


def test_source_design_matches_frame_and_is_cached(pums2018, tmp_path):
    from persona_testbed.core import settings

    src = open_source(path=pums2018["dir"], dictionary=pums2018["dictionary"])
    for design in ("systematic", "independent"):
        a = sample_persons(src, 400, seed=9, design=design)
        b = sample_persons(src.persons().collect(), 400, seed=9, year=src.year, design=design)
        assert a.select("SERIALNO", "SPORDER", "_state").equals(b.select("SERIALNO", "SPORDER", "_state"))
    assert list((settings.cache_dir() / "census").glob("design-rank-*.npz"))


def test_systematic_without_sort_keys_samples_the_list_order():
    # no DESIGN_KEYS column: systematic over the frame's own order, so a sorted column is balanced
    n = 1024
    df = pl.DataFrame(
        {
            "SERIALNO": [str(i) for i in range(n)],
            "PWGTP": np.ones(n, dtype=np.int64),
            "grp": np.repeat(np.arange(8), n // 8),
        }
    )
    for s in range(5):
        got = sample_persons(df, 64, seed=s)["grp"].value_counts()["count"].to_list()
        assert got == [8] * 8

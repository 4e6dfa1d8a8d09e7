"""Weighted whole-record sampling: correctness (chi-square vs weights), seeds, quotas, filters, errors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from persona_testbed.census import Filters, open_source, rake, sample_persons
from persona_testbed.census.raking import Cell, Margin
from persona_testbed.core.errors import UserError


def frame(n: int = 200, seed: int = 0) -> pl.DataFrame:
    g = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "SERIALNO": [f"2018HU{i:07d}" for i in range(n)],
            "SPORDER": np.ones(n, dtype=np.int64),
            "STATE": g.choice(["10", "50"], n),
            "AGEP": g.integers(0, 90, n),
            "SEX": g.choice(["1", "2"], n),
            "PWGTP": g.integers(1, 100, n),
        }
    )


def test_draws_proportional_to_weight_chi_square():
    df = frame(50)
    draws = sample_persons(df, 200_000, seed=7)
    counts = draws["SERIALNO"].value_counts()
    obs = dict(zip(counts["SERIALNO"], counts["count"]))
    w = df["PWGTP"].to_numpy().astype(float)
    expected = 200_000 * w / w.sum()
    observed = np.array([obs.get(s, 0) for s in df["SERIALNO"]])
    p = stats.chisquare(observed, expected).pvalue
    assert p > 1e-3
    # and a clearly wrong distribution (uniform) is rejected by the same test
    assert stats.chisquare(observed, np.full(50, 200_000 / 50)).pvalue < 1e-6


def test_whole_records_and_bookkeeping_columns():
    df = frame()
    out = sample_persons(df, 500, seed=1, year=2018)
    assert out["_draw"].to_list() == list(range(500))
    assert set(out.columns) >= {"SERIALNO", "AGEP", "SEX", "_year", "_state", "_weight"}
    joined = out.join(df, on="SERIALNO", suffix="_src")
    assert joined.height == 500  # every drawn row is a real record, all attributes together
    assert (joined["AGEP"] == joined["AGEP_src"]).all() and (joined["SEX"] == joined["SEX_src"]).all()
    assert (joined["_weight"] == joined["PWGTP_src"].cast(pl.Float64)).all()
    assert set(out["_year"]) == {2018} and (out["_state"] == out["STATE"]).all()


def test_seeded_and_prefix_stable():
    df = frame()
    a = sample_persons(df, 300, seed=3)
    b = sample_persons(df, 300, seed=3)
    c = sample_persons(df, 300, seed=4)
    assert a.equals(b)
    assert not a["SERIALNO"].equals(c["SERIALNO"])
    more = sample_persons(df, 400, seed=3)
    assert more.head(300)["SERIALNO"].equals(a["SERIALNO"])  # raising n extends, not reshuffles
    nr = sample_persons(df, 50, seed=3, replace=False)
    assert sample_persons(df, 80, seed=3, replace=False).head(50)["SERIALNO"].equals(nr["SERIALNO"])


def test_without_replacement():
    df = frame(100)
    out = sample_persons(df, 100, seed=2, replace=False)
    assert out["SERIALNO"].n_unique() == 100
    with pytest.raises(UserError, match="without replacement"):
        sample_persons(df, 101, seed=2, replace=False)
    # first pick of an Efraimidis-Spirakis draw is proportional to weight
    small = pl.DataFrame({"SERIALNO": ["a", "b", "c"], "PWGTP": [1, 2, 7]})
    firsts = [sample_persons(small, 2, seed=s, replace=False)["SERIALNO"][0] for s in range(3000)]
    obs = [firsts.count(k) for k in "abc"]
    assert stats.chisquare(obs, [300, 600, 2100]).pvalue > 1e-3


def test_quotas_equal_counts_and_within_stratum_weights():
    df = frame(40)
    out = sample_persons(df, 60_001, seed=5, quota_by="STATE")
    counts = out["_stratum"].value_counts().sort("_stratum")["count"].to_list()
    assert sorted(counts) == [30_000, 30_001]
    assert (out["_stratum"] == out["STATE"]).all()
    vt = df.filter(pl.col("STATE") == "50")
    got = out.filter(pl.col("STATE") == "50")["SERIALNO"].value_counts()
    obs = dict(zip(got["SERIALNO"], got["count"]))
    w = vt["PWGTP"].to_numpy().astype(float)
    n_vt = sum(obs.values())
    assert stats.chisquare([obs.get(s, 0) for s in vt["SERIALNO"]], n_vt * w / w.sum()).pvalue > 1e-3
    bands = sample_persons(df, 70, seed=5, quota_by="age_band")
    assert set(bands["_stratum"].value_counts()["count"]) == {10}
    both = sample_persons(df, 20, seed=5, quota_by=["STATE", "SEX"])
    assert set(both["_stratum"].value_counts()["count"]) == {5}


def test_filters():
    df = frame(300)
    out = sample_persons(df, 2000, seed=1, filters=Filters(adults_only=True, max_age=40, states=["VT"]))
    assert out["AGEP"].min() >= 18 and out["AGEP"].max() <= 40 and set(out["STATE"]) == {"50"}
    out = sample_persons(df, 500, seed=1, filters=Filters(min_age=65))
    assert out["AGEP"].min() >= 65


def test_bad_inputs():
    df = frame(30)
    for n in (0, -3, 1.5):
        with pytest.raises(UserError, match="positive integer"):
            sample_persons(df, n, seed=0)
    with pytest.raises(UserError, match="zero person records"):
        sample_persons(df, 5, seed=0, filters=Filters(min_age=120))
    with pytest.raises(UserError, match="unknown state"):
        sample_persons(df, 5, seed=0, filters=Filters(states=["QQ"]))
    with pytest.raises(UserError, match="min_age"):
        Filters(min_age=50, max_age=20)
    with pytest.raises(UserError, match="missing required column PWGTP"):
        sample_persons(df.drop("PWGTP"), 5, seed=0)
    with pytest.raises(UserError, match="missing required column AGEP"):
        sample_persons(df.drop("AGEP"), 5, seed=0, filters=Filters(adults_only=True))
    with pytest.raises(UserError, match="negative"):
        sample_persons(df.with_columns(pl.lit(-1).alias("PWGTP")), 5, seed=0)


def test_source_path_matches_frame_path(pums2018):
    src = open_source(path=pums2018["dir"], dictionary=pums2018["dictionary"])
    a = sample_persons(src, 300, seed=9, filters=Filters(adults_only=True), quota_by="STATE")
    b = sample_persons(
        src.persons().collect(),
        300,
        seed=9,
        filters=Filters(adults_only=True),
        quota_by="STATE",
        year=src.year,
    )
    assert a.select("SERIALNO", "SPORDER", "_state", "_stratum").equals(
        b.select("SERIALNO", "SPORDER", "_state", "_stratum")
    )
    assert a.columns == b.columns and set(a["_year"]) == {2018}
    with pytest.raises(UserError, match="not in source"):
        sample_persons(src, 5, seed=0, filters=Filters(states=["CA"]))
    with pytest.raises(UserError, match="without replacement"):
        sample_persons(src, 10_000, seed=0, replace=False)


def test_source_with_raked_weights(pums2018):
    src = open_source(path=pums2018["dir"], dictionary=pums2018["dictionary"])
    df = src.persons(["STATE", "PWGTP"]).collect()
    target = {"10": 1000.0, "50": 9000.0}
    res = rake(
        df,
        [Margin("state", [Cell(k, v, pl.col("STATE") == k) for k, v in target.items()], columns=["STATE"])],
    )
    out = sample_persons(src, 20_000, seed=1, weights=res.weights, columns=["STATE"])
    share_vt = (out["STATE"] == "50").mean()
    assert share_vt == pytest.approx(0.9, abs=0.01)
    with pytest.raises(UserError, match="entries"):
        sample_persons(src, 5, seed=1, weights=res.weights[:-1])


def test_mirror_2024_one_state(mirror):
    src = open_source("acs2024", states="VT", data_dir=mirror)
    out = sample_persons(src, 200, seed=0, filters=Filters(adults_only=True))
    assert out.height == 200 and out["AGEP"].min() >= 18
    assert set(out["_state"]) == {"50"} and set(out["_year"]) == {2024}
    assert out.equals(sample_persons(src, 200, seed=0, filters=Filters(adults_only=True)))


def test_mirror_2018_one_state(mirror):
    src = open_source("acs2018", states="DE", data_dir=mirror)
    out = sample_persons(src, 100, seed=1, columns=["SERIALNO", "SPORDER", "AGEP", "RELP", "ST"])
    assert out.columns[:5] == ["SERIALNO", "SPORDER", "AGEP", "RELSHIPP", "STATE"]
    assert out.height == 100 and set(out["_year"]) == {2018} and out["RELSHIPP"].null_count() == 0


@pytest.mark.parametrize(
    "design,quota", [("systematic", None), ("independent", "age_band"), ("systematic", "STATE")]
)
def test_plan_fetched_in_chunks_equals_sample_persons(pums2018, design, quota):
    """``plan_draws`` + ``fetch`` over any chunking gives exactly ``sample_persons``' records."""
    from persona_testbed.census import plan_draws

    src = open_source(None, None, path=pums2018["dir"], dictionary=pums2018["dictionary"])
    whole = sample_persons(src, 97, 4, design=design, quota_by=quota, columns=["SERIALNO", "SPORDER", "AGEP"])
    plan = plan_draws(src, 97, 4, design=design, quota_by=quota, columns=["SERIALNO", "SPORDER", "AGEP"])
    assert plan.n == 97
    for size in (1, 13, 97, 200):
        parts = [plan.fetch(start, start + size) for start in range(0, 97, size)]
        assert pl.concat(parts).equals(whole)
    with pytest.raises(UserError, match="n must be a positive integer"):
        plan_draws(src, 0, 4)

"""The balanced (Sobol' walk) sampling design: point set, key hierarchy, unbiasedness, extension, balance."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats
from scipy.stats import qmc

from persona_testbed.census import sample_persons
from persona_testbed.census.sampling import (
    DESIGN_KEYS,
    STAGE,
    _draw_systematic,
    design_code_exprs,
    design_rank,
    sobol_directions,
    sobol_points,
)
from persona_testbed.core.seeds import rng


def population(n: int, seed: int = 0) -> pl.DataFrame:
    """Synthetic persons with several design keys (correlated, with nulls) and skewed weights."""
    g = np.random.default_rng(seed)
    work = g.random(n) < 0.6
    occ = np.where(work, g.choice([110, 1020, 2310, 4720, 9130], n), -1)
    return pl.DataFrame(
        {
            "SERIALNO": [f"2024HU{i:07d}" for i in range(n)],
            "OCCP": pl.Series([f"{c:04d}" if c >= 0 else None for c in occ], dtype=pl.String),
            "INDP": pl.Series(
                [f"{(c * 7) % 9000 + 170:04d}" if c >= 0 and g.random() < 0.9 else None for c in occ],
                dtype=pl.String,
            ),
            "SCHL": [f"{c:02d}" for c in np.clip(g.integers(14, 25, n) - (~work) * 3, 1, 24)],
            "PINCP": np.where(work, g.integers(5_000, 200_000, n), g.integers(-5_000, 30_000, n)),
            "AGEP": g.integers(18, 90, n),
            "MAR": g.choice(["1", "2", "3", "4", "5"], n),
            "SEX": g.choice(["1", "2"], n),
            "PWGTP": np.maximum(1, g.pareto(1.5, n) * 20).astype(np.int64),
        }
    )


def test_sobol_directions_match_scipy():
    d = len(sobol_directions(21))
    v = sobol_directions(d)
    i = np.arange(256, dtype=np.uint64)
    x = np.zeros((256, d), dtype=np.uint64)
    for b in range(8):
        x[((i >> np.uint64(b)) & np.uint64(1)).astype(bool)] ^= v[:, b]
    mine = {tuple(r) for r in (x.astype(float) / 2.0**32).round(12)}
    ref = {tuple(r) for r in qmc.Sobol(d, scramble=False).random(256).round(12)}
    assert mine == ref


def test_sobol_points_uniform_nets_and_prefix_stable():
    a = sobol_points(1000, 4, rng(3, "t"))
    b = sobol_points(300, 4, rng(3, "t"))
    assert all(np.array_equal(x[:300], y) for x, y in zip(a, b))  # point i does not depend on m
    p = sobol_points(256, 4, rng(5, "t"))
    for coord in p:  # every coordinate of the first 2^k points: one point per 1/2^k
        assert sorted(np.floor(coord * 256).astype(int)) == list(range(256))
    assert not np.array_equal(sobol_points(8, 2, rng(1, "t"))[1], sobol_points(8, 2, rng(2, "t"))[1])
    # each point is uniform on the cube: over seeds, point 5's coordinates are uniform and uncorrelated
    pts = np.array([[c[5] for c in sobol_points(6, 3, rng(s, "u"))] for s in range(2000)])
    for j in range(3):
        assert stats.kstest(pts[:, j], "uniform").pvalue > 1e-3
    assert abs(np.corrcoef(pts[:, 0], pts[:, 1])[0, 1]) < 0.1


def test_design_rank_first_differing_key():
    df = population(400, seed=1)
    present = [c for c, _ in DESIGN_KEYS if c in df.columns]
    codes = df.select(design_code_exprs(present))
    rank, dlev = design_rank(codes)
    arr = codes.to_numpy()
    cells = sorted({tuple(r) for r in arr})
    assert rank.max() + 1 == len(cells) == len(dlev)
    for r, row in enumerate(arr):
        assert cells[rank[r]] == tuple(row)  # dense rank = lexicographic order of the banded codes
    for r in range(1, len(cells)):
        first = next(k for k in range(len(present)) if cells[r][k] != cells[r - 1][k])
        assert dlev[r] == first


@pytest.mark.parametrize("subset", [None, "half"])
def test_expected_counts_equal_n_w_over_W(subset):
    # exact unbiasedness of the walk on a small population with a 7-key hierarchy (every record, also the
    # rare ones): total hits over many seeds match n * w / W (chi-square), record by record within 4.5 se
    df = population(60, seed=2)
    present = [c for c, _ in DESIGN_KEYS if c in df.columns]
    rank, dlev = design_rank(df.select(design_code_exprs(present)))
    w = df["PWGTP"].to_numpy().astype(float)
    rows = np.arange(len(w)) if subset is None else np.arange(0, len(w), 2)  # a filtered subsequence
    rows = rows[np.argsort(rank[rows], kind="stable")]
    n, seeds = 13, 6000
    hits = np.zeros((seeds, len(rows)))
    for s in range(seeds):
        np.add.at(
            hits[s], _draw_systematic(w[rows], rank[rows], dlev, len(present), n, rng(s, STAGE, "t")), 1
        )
    p = w[rows] / w[rows].sum()
    assert stats.chisquare(hits.sum(axis=0), seeds * n * p).pvalue > 1e-3
    se = np.maximum(hits.std(axis=0, ddof=1), np.sqrt(n * p * (1 - p))) / np.sqrt(seeds)
    assert np.abs((hits.mean(axis=0) - n * p) / se).max() < 4.5


def test_later_keys_balanced_and_prefix_extends():
    df = population(5000, seed=3).drop("OCCP", "INDP", "PINCP")  # keys SCHL, age band, MAR, SEX
    w = df["PWGTP"].to_numpy().astype(float)
    band = (df["AGEP"].to_numpy()[:, None] >= np.array([25, 35, 45, 55, 65])).sum(axis=1)
    mar = df["MAR"].cast(int).to_numpy()
    pop_age = np.bincount(band, weights=w, minlength=6) / w.sum()
    pop_mar = np.bincount(mar, weights=w, minlength=6) / w.sum()

    def tvd(design: str, s: int) -> tuple[float, float]:
        d = sample_persons(df, 400, seed=s, design=design)
        rows = d["SERIALNO"].str.slice(6).cast(int).to_numpy()
        return (
            0.5 * np.abs(np.bincount(band[rows], minlength=6) / 400 - pop_age).sum(),
            0.5 * np.abs(np.bincount(mar[rows], minlength=6) / 400 - pop_mar).sum(),
        )

    sysm = np.mean([tvd("systematic", s) for s in range(30)], axis=0)
    iid = np.mean([tvd("independent", s) for s in range(30)], axis=0)
    assert np.all(sysm < 0.75 * iid)  # age bands (2nd key), marital status (3rd) beat iid
    a = sample_persons(df, 777, seed=4)
    assert sample_persons(df, 250, seed=4)["SERIALNO"].equals(a.head(250)["SERIALNO"])

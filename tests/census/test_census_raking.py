"""Raking (IPF) against closed-form solutions; universes; target loaders."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from scipy.optimize import brentq

from persona_testbed.census import kish_ess, load_targets, open_source, rake, rake_source
from persona_testbed.census.raking import Cell, Margin
from persona_testbed.census.targets import code_condition
from persona_testbed.core.errors import UserError


def two_by_two(seed_w: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"A": ["1", "1", "2", "2"], "B": ["1", "2", "1", "2"], "PWGTP": seed_w})


def margins_2x2(r: tuple[float, float], c: tuple[float, float]) -> list[Margin]:
    return [
        Margin("A", [Cell(f"A{i}", r[i - 1], pl.col("A") == str(i)) for i in (1, 2)], columns=["A"]),
        Margin("B", [Cell(f"B{j}", c[j - 1], pl.col("B") == str(j)) for j in (1, 2)], columns=["B"]),
    ]


def test_ipf_independent_seed_gives_product_of_margins():
    res = rake(two_by_two([1, 1, 1, 1]), margins_2x2((30, 70), (40, 60)))
    assert res.converged
    assert res.weights == pytest.approx([30 * 40 / 100, 30 * 60 / 100, 70 * 40 / 100, 70 * 60 / 100])


def test_ipf_matches_closed_form_odds_ratio_solution():
    seed = [10.0, 20.0, 30.0, 5.0]
    r, c = (50.0, 50.0), (60.0, 40.0)
    res = rake(two_by_two(seed), margins_2x2(r, c), tol=1e-10, max_iter=1000)
    # IPF keeps the seed's odds ratio: x11*x22/(x12*x21) = seed OR, with margins met -> solve for x11
    odds = seed[0] * seed[3] / (seed[1] * seed[2])
    f = lambda x: x * (r[1] - c[0] + x) - odds * (r[0] - x) * (c[0] - x)  # noqa: E731
    x11 = brentq(f, max(0.0, c[0] - r[1]) + 1e-12, min(r[0], c[0]) - 1e-12)
    want = [x11, r[0] - x11, c[0] - x11, r[1] - c[0] + x11]
    assert res.converged and res.weights == pytest.approx(want, rel=1e-8)
    assert res.ess == pytest.approx(kish_ess(res.weights)) and res.ess_before == pytest.approx(kish_ess(seed))


def test_margins_met_and_rows_outside_universe_keep_weights():
    g = np.random.default_rng(0)
    n = 2000
    df = pl.DataFrame(
        {
            "AGEP": g.integers(0, 90, n),
            "SEX": g.choice(["1", "2"], n),
            "SCHL": g.choice(["16", "21", "22"], n),
            "PWGTP": g.integers(1, 50, n),
        }
    )
    adults = pl.col("AGEP") >= 25
    ms = [
        Margin(
            "sex",
            [Cell("m", 5000, pl.col("SEX") == "1"), Cell("f", 6000, pl.col("SEX") == "2")],
            columns=["SEX"],
        ),
        Margin(
            "edu25",
            [Cell(k, v, pl.col("SCHL") == k) for k, v in (("16", 3000), ("21", 2500), ("22", 1500))],
            universe=adults,
            columns=["SCHL", "AGEP"],
        ),
    ]
    res = rake(df, ms, tol=1e-9, max_iter=500)
    assert res.converged and res.max_rel_error < 1e-9
    w = res.weights
    sex = df["SEX"].to_numpy()
    assert w[sex == "1"].sum() == pytest.approx(5000) and w[sex == "2"].sum() == pytest.approx(6000)
    a = df["AGEP"].to_numpy() >= 25
    for k, v in (("16", 3000), ("21", 2500), ("22", 1500)):
        assert w[a & (df["SCHL"].to_numpy() == k)].sum() == pytest.approx(v)
    fit = {(f.margin, f.cell): f for f in res.fit}
    assert fit[("edu25", "21")].target == 2500 and fit[("edu25", "21")].rel_error < 1e-9
    assert {m.margin for m in res.margins} == {"sex", "edu25"}
    # a single margin that excludes rows: those rows keep their weight exactly
    only = rake(df, [ms[1]])
    assert np.array_equal(only.weights[~a], df["PWGTP"].to_numpy()[~a].astype(float))


def test_non_convergence_is_reported():
    df = two_by_two([1, 0, 0, 1])  # zero structure makes these margins unreachable
    res = rake(df, margins_2x2((30, 70), (40, 60)), max_iter=20)
    assert not res.converged and res.iterations == 20 and res.max_rel_error > 0.1


def test_rake_errors():
    df = two_by_two([1, 1, 1, 1])
    with pytest.raises(UserError, match="overlap"):
        rake(
            df,
            [
                Margin(
                    "x",
                    [Cell("a", 1, pl.col("A") == "1"), Cell("b", 1, pl.col("B") == "1")],
                    columns=["A", "B"],
                )
            ],
        )
    with pytest.raises(UserError, match="needs column C"):
        rake(df, [Margin("x", [Cell("a", 1, pl.col("C") == "1")], columns=["C"])])
    with pytest.raises(UserError, match="weight column"):
        rake(df, margins_2x2((1, 1), (1, 1)), weight="W")
    with pytest.raises(UserError, match="no margins"):
        rake(df, [])


def test_code_condition():
    df = pl.DataFrame({"HISP": ["01", "02", "24", "25", None], "RAC1P": [1, 3, 5, 6, 9]})
    assert df.select(code_condition("HISP", "02-24")).to_series().to_list() == [
        False,
        True,
        True,
        False,
        None,
    ]
    assert df.select(code_condition("RAC1P", "3,4,5")).to_series().to_list() == [
        False,
        True,
        True,
        False,
        False,
    ]
    assert df.select(code_condition("HISP", "01")).to_series().to_list()[:2] == [True, False]


def test_targets_csv_loader_and_universes(tmp_path, pums2018):
    csv = tmp_path / "t.csv"
    csv.write_text(
        "dimension,pums_var,pums_code,label,universe,estimate\n"
        + "sex,SEX,1,Male,total population,100\n"
        + "sex,SEX,2,Female,total population,120\n"
        + 'edu,SCHL,"01,09",Low,population 25 years and over,40\n'
        + "edu,SCHL,16-23,High,population 25 years and over,60\n"
        + 'vet,MIL,2,Veteran,"civilian population 18 years and over (MIL!=1, AGEP>=18)",10\n'
        + 'vet,MIL,4,Nonveteran,"civilian population 18 years and over (MIL!=1, AGEP>=18)",90\n'
        + "sexage,SEX;AGEP,1;0-17,Boys,total population,30\n"
        + "sexage,SEX;AGEP,2;0-17,Girls,total population,30\n"
        + "dis,SEX,1,x,civilian noninstitutionalized population,95\n"
    )
    dic = open_source(path=pums2018["dir"], dictionary=pums2018["dictionary"]).dictionary
    ms = {m.name: m for m in load_targets(csv, dictionary=dic, columns=["RELSHIPP", "MIL"])}
    assert set(ms) == {"sex", "edu", "vet", "sexage", "dis"}
    assert ms["sexage"].total == 60 and ms["sexage"].columns == ["SEX", "AGEP"]
    assert "RELSHIPP != 16" in ms["dis"].note
    df = pl.DataFrame(
        {
            "SEX": ["1", "2", "1"],
            "AGEP": [30, 10, 40],
            "SCHL": ["09", None, "21"],
            "MIL": ["1", None, "2"],
            "RELSHIPP": ["00", "02", "16"],
            "PWGTP": [1, 1, 1],
        }
    )
    inside = df.select(ms["vet"].universe).to_series().to_list()
    assert inside == [False, False, True]
    assert df.select(ms["dis"].universe).to_series().to_list() == [False, True, False]
    assert df.select(ms["edu"].universe).to_series().to_list() == [True, False, True]
    assert [m.name for m in load_targets(csv, margins=["edu"])] == ["edu"]
    with pytest.raises(UserError, match="no dimension"):
        load_targets(csv, margins=["nope"])
    with pytest.raises(UserError, match="unknown targets"):
        load_targets("acs1999-xx")


def test_s0101_loader(tmp_path):
    header = (
        ["GEO_ID", "NAME"] + [f"S0101_{c}_{i:03d}E" for c in ("C03", "C05") for i in range(1, 20)] + ["state"]
    )
    male = [10.0] * 18
    female = [20.0] * 18
    row = (
        ["x", "US", str(sum(male))]
        + [str(v) for v in male]
        + [str(sum(female))]
        + [str(v) for v in female]
        + ["50"]
    )
    path = tmp_path / "s0101.json"
    path.write_text(json.dumps([header, row]))
    (m,) = load_targets(path)
    assert len(m.cells) == 36 and m.total == 540
    df = pl.DataFrame({"SEX": ["1", "2", "2"], "AGEP": [3, 86, 99]})
    hits = df.select([c.condition.alias(c.label) for c in m.cells])
    assert hits["Male 0-4"].to_list() == [True, False, False] and hits["Female 85+"].to_list() == [
        False,
        True,
        True,
    ]
    bad = list(row)
    bad[2] = "999"
    path.write_text(json.dumps([header, bad]))
    with pytest.raises(UserError, match="sum to"):
        load_targets(path)


def test_mirror_targets_and_rake_2018(mirror):
    ms = load_targets("acs2018-us", data_dir=mirror)
    totals = {m.name: m.total for m in ms}
    assert totals["sex_x_age"] == 327_167_439 == totals["race"] == totals["hispanic"] == totals["citizenship"]
    assert totals["marital_15plus_x_sex"] == 266_322_302
    src = open_source("acs2018", states="VT,NH,ME", data_dir=mirror)
    res = rake_source(src, "acs2018-us", margins=["sex_x_age", "hispanic"], data_dir=mirror, max_iter=300)
    assert res.converged and res.weights.sum() == pytest.approx(327_167_439, rel=1e-5)
    assert 0 < res.ess <= res.n_records
    (s0101,) = load_targets("acs2024-s0101", data_dir=mirror)
    assert s0101.total == pytest.approx(340_110_990)
    (ca,) = load_targets("acs2024-s0101:CA", data_dir=mirror)
    assert ca.total == pytest.approx(39_431_263)

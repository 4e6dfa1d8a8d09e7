import numpy as np
import polars as pl
import pytest
from synth import persons

from persona_testbed.personas.hotdeck import pick_by_cell, pick_with_backoff, pick_with_backoff_counts
from persona_testbed.personas.impute import impute_missing


def _donors():
    return persons(
        [
            # same cell as the recipient (40-44 male white non-Hispanic bachelor's citizen) in Delaware
            {
                "SERIALNO": "2018HU0000101",
                "STATE": "10",
                "ESR": "1",
                "OCCP": "3250",
                "PINCP": 90000,
                "MAR": "1",
                "PWGTP": 5,
            },
            {
                "SERIALNO": "2018HU0000102",
                "STATE": "10",
                "ESR": "6",
                "OCCP": None,
                "PINCP": 0,
                "MAR": "5",
                "PWGTP": 0,
            },  # zero weight: never a donor
            # only donor for the woman: different education, so she backs off
            {
                "SERIALNO": "2018HU0000103",
                "STATE": "10",
                "SEX": "2",
                "SCHL": "16",
                "ESR": "6",
                "OCCP": None,
                "PINCP": 1000,
                "MAR": "5",
                "PWGTP": 3,
            },
        ]
    )


def test_recipient_takes_all_missing_vars_from_one_donor_with_key():
    rec = persons(
        [
            {"SERIALNO": "2018HU0000001", "ESR": None, "OCCP": None, "PINCP": None, "MAR": None},
            {
                "SERIALNO": "2018HU0000002",
                "SEX": "2",
                "SCHL": "21",
                "ESR": None,
                "OCCP": None,
                "PINCP": None,
                "MAR": None,
            },
        ]
    ).with_columns(_state=pl.col("STATE"))
    res = impute_missing(
        rec,
        pl.Series([True, True]),
        ["ESR", "OCCP", "PINCP", "MAR"],
        _donors(),
        seed=1,
        keys=np.array([0, 1]),
        donor_source="acs2018",
    )
    f = res.frame
    assert f.row(0, named=True)["OCCP"] == "3250" and f["PINCP"][0] == 90000 and f["MAR"][0] == "1"
    assert f["ESR"][1] == "6" and f["PINCP"][1] == 1000  # jointly from donor 103
    d = res.donor_detail
    assert d["donor_serialno"].to_list() == ["2018HU0000101", "2018HU0000103"]
    assert d["backoff_level"][0] == 0 and d["backoff_level"][1] > 0
    assert d["donor_source"][0] == "acs2018"


def test_non_recipients_untouched_and_deterministic():
    rec = persons([{"ESR": "1", "OCCP": "3250", "PINCP": 7}, {"ESR": None, "OCCP": None, "PINCP": None}])
    rec = rec.with_columns(_state=pl.col("STATE"))
    mask = pl.Series([False, True])
    a = impute_missing(rec, mask, ["ESR", "OCCP", "PINCP"], _donors(), 5, np.array([0, 1]), "x")
    b = impute_missing(rec, mask, ["ESR", "OCCP", "PINCP"], _donors(), 5, np.array([0, 1]), "x")
    assert a.frame.equals(b.frame)
    assert a.frame["PINCP"][0] == 7 and a.donor_detail["donor_serialno"][0] is None


def test_pick_by_cell_is_weight_proportional():
    rng = np.random.default_rng(0)
    n = 20000
    rows = pick_by_cell(
        pl.Series(["a"] * n), rng.random(n), pl.Series(["a", "b", "a", "a"]), np.array([1.0, 5.0, 3.0, 0.0])
    )
    counts = np.bincount(rows, minlength=4) / n
    assert counts[1] == 0 and counts[3] == 0  # other cell, zero weight
    assert abs(counts[0] - 0.25) < 0.015 and abs(counts[2] - 0.75) < 0.015
    assert (pick_by_cell(pl.Series(["zz"]), np.array([0.5]), pl.Series(["a"]), np.array([1.0])) == -1).all()


def test_backoff_levels():
    rec = pl.DataFrame({"x": [1, 2], "y": [1, 9]})
    don = pl.DataFrame({"x": [1, 2], "y": [1, 1], "w": [1.0, 1.0]})
    rows, level = pick_with_backoff(rec, don, [["x", "y"], ["x"], []], np.array([0.5, 0.5]), "w")
    assert rows.tolist() == [0, 1] and level.tolist() == [0, 1]


def test_many_column_cells_never_collide():
    """Nine matching columns must not alias distinct cells (an overflowing key packing would)."""
    cols = [f"c{i}" for i in range(9)]
    for big in (30, 200):  # packed integer keys / string keys
        rec = pl.DataFrame({c: [big if i < 8 else 1, 1] for i, c in enumerate(cols)})
        don = pl.DataFrame({**{c: [big, 1] for c in cols}, "w": [1.0, 1.0]})
        rows, level = pick_with_backoff(rec, don, [cols, []], np.array([0.1, 0.1]), "w")
        assert level.tolist() == [1, 0] and rows[1] == 1


def test_pick_with_backoff_recipient_codes_outside_donor_range():
    # a recipient code above every donor's (or negative) matches no donor at that level and backs off,
    # and the donor index built for one call is reused by the next (same donor frame)
    don = pl.DataFrame({"x": [1, 2, 2], "y": [0, 1, 1], "w": [1.0, 1.0, 3.0]})
    rec = pl.DataFrame({"x": [2, 9, 2], "y": [1, 1, 7]})
    rows, level = pick_with_backoff(rec, don, [["x", "y"], ["y"], []], np.array([0.9, 0.1, 0.5]), "w")
    assert rows.tolist()[0] == 2 and level.tolist() == [0, 1, 2]
    assert rows[1] in (1, 2)
    again, _ = pick_with_backoff(rec, don, [["x", "y"], ["y"], []], np.array([0.9, 0.1, 0.5]), "w")
    assert again.tolist() == rows.tolist()


@pytest.mark.parametrize("as_text", [False, True])  # Int64-packed cell keys and string cell keys
def test_pick_with_backoff_min_count_skips_small_cells(as_text):
    # cell x=1 holds 2 donors (one of zero weight: not counted), cell x=2 holds 4
    don = pl.DataFrame(
        {"x": [1, 1, 1, 2, 2, 2, 2], "y": [5, 5, 5, 5, 5, 5, 6], "w": [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0]}
    )
    rec = pl.DataFrame({"x": [1, 2, 3], "y": [5, 5, 5]})
    if as_text:
        don, rec = (f.with_columns(pl.col("x").cast(pl.Utf8), pl.col("y").cast(pl.Utf8)) for f in (don, rec))
    u = np.array([0.3, 0.3, 0.3])
    rows, level, count = pick_with_backoff_counts(rec, don, [["x", "y"], ["x"], []], u, "w")
    assert level.tolist() == [0, 0, 2] and count.tolist() == [2, 3, 6]
    rows, level, count = pick_with_backoff_counts(rec, don, [["x", "y"], ["x"], []], u, "w", min_count=3)
    assert level.tolist() == [2, 0, 2] and count.tolist() == [
        6,
        3,
        6,
    ]  # x=1 too small at every level but the last
    rows, level, count = pick_with_backoff_counts(rec, don, [["x", "y"], ["x"], []], u, "w", min_count=4)
    assert level.tolist() == [2, 1, 2] and count.tolist() == [6, 4, 6]
    assert don["x"][int(rows[1])] == (2 if not as_text else "2")

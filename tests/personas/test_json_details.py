"""``json_details`` (row-wise detail JSON): the per-distinct-row path and the shared-part encoding give
exactly what ``json.dumps`` of each row gives."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from persona_testbed.personas import mapping
from persona_testbed.personas.mapping import FieldColumn, json_details, json_extend


def _expected(frame: pl.DataFrame) -> list[str]:
    """The reference: each row as a dict without null entries, through ``json.dumps``."""
    out = []
    for row in frame.iter_rows(named=True):
        out.append(
            json.dumps(
                {k: v for k, v in row.items() if v is not None}, ensure_ascii=False, separators=(",", ":")
            )
        )
    return out


def _frame(n: int, seed: int = 0) -> pl.DataFrame:
    g = np.random.default_rng(seed)
    codes = g.integers(0, 6, n)
    return pl.DataFrame(
        {
            "var": ["SCHL"] * n,
            "code": pl.Series([None if c == 0 else f"{c:02d}" for c in codes], dtype=pl.Utf8),
            "label": pl.Series(
                ['say "hi"\\n' if c == 1 else "plain\ttab" if c == 2 else "é ok" for c in codes]
            ),
            "level": pl.Series(codes % 3, dtype=pl.Int64),
            "share": pl.Series((codes % 2).astype(float) + 0.5 * (codes == 3)),
            "flag": pl.Series(codes > 2),
        }
    )


@pytest.mark.parametrize("n", [10, 5000])  # below and above the distinct-row threshold
def test_json_details_matches_json_dumps(n):
    frame = _frame(n)
    assert json_details(frame).to_list() == _expected(frame)


def test_distinct_row_path_equals_direct_path(monkeypatch):
    frame = _frame(4000, seed=3)
    fast = json_details(frame)
    monkeypatch.setattr(mapping, "DEDUPE_MIN_ROWS", 10**9)  # force the row-by-row path
    assert fast.to_list() == json_details(frame).to_list()


def test_high_cardinality_frame_keeps_row_path():
    n = 3000
    frame = pl.DataFrame({"serial": [f"S{i}" for i in range(n)], "var": ["MAR"] * n})
    assert json_details(frame).to_list() == _expected(frame)


def test_constant_only_frame_repeats_one_object():
    frame = pl.DataFrame({"var": ["AGEP"] * 2000, "note": ["x"] * 2000})
    out = json_details(frame)
    assert len(out) == 2000 and set(out.to_list()) == {'{"var":"AGEP","note":"x"}'}


def test_json_extend_equals_details_of_joined_frame():
    frame = _frame(3000, seed=5)
    shared, own = frame.select("var", "code", "label"), frame.select("level", "share", "flag")
    assert json_extend(json_details(shared), own).to_list() == _expected(frame)
    empty = pl.DataFrame({"x": pl.Series([None] * 3000, dtype=pl.Utf8)})
    assert json_extend(json_details(shared), empty).to_list() == _expected(shared)
    assert json_extend(json_details(empty), shared).to_list() == _expected(shared)


def test_make_sharing_equals_make():
    frame = _frame(2500, seed=7)
    shared = frame.select("code", "label")
    values = frame["level"].cast(pl.Utf8)
    own = {
        "a": (values, pl.DataFrame({"var": ["A"] * frame.height})),
        "b": (values, frame.select("share", "flag")),
    }
    made = FieldColumn.make_sharing(own, "survey", shared)
    for name, (val, extra) in own.items():
        ref = FieldColumn.make(val, "survey", pl.concat([shared, extra], how="horizontal"))
        assert made[name].detail.to_list() == ref.detail.to_list()
        assert made[name].value.to_list() == ref.value.to_list()
        assert made[name].provenance.to_list() == ref.provenance.to_list()

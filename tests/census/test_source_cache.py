"""Household lookups through the serial index and the memory-mapped per-column caches (census.source)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from persona_testbed.census import source as S
from persona_testbed.census.source import _decode_serials, _encode_serials, _positions, open_source
from persona_testbed.core import settings


@pytest.fixture(autouse=True)
def _fresh_memos():
    for memo in (S._SERIAL_MEMO, S._SERIAL_EXACT, S._COLUMN_MEMO):
        memo.clear()
    yield
    for memo in (S._SERIAL_MEMO, S._SERIAL_EXACT, S._COLUMN_MEMO):
        memo.clear()


def _slow(src, serials, columns, kind="person"):  # type: ignore[no-untyped-def]
    """The same lookup without the column caches (file scans filtered by row)."""
    old = S.CensusSource._rows_from_column_cache
    S.CensusSource._rows_from_column_cache = lambda *a, **k: None  # type: ignore[method-assign]
    try:
        return src.records_for_serials(serials, columns, kind)
    finally:
        S.CensusSource._rows_from_column_cache = old  # type: ignore[method-assign]


def _open(pums_parquet):  # type: ignore[no-untyped-def]
    return open_source(path=pums_parquet["dir"], dictionary=pums_parquet["dictionary"])


def test_column_cache_matches_file_scan(pums_parquet):
    src = _open(pums_parquet)
    serials = src.persons(["SERIALNO"]).collect()["SERIALNO"].unique().sort().gather_every(3)
    cols = ["SERIALNO", "SPORDER", "AGEP", "SEX", "MAR", "OCCP", "STATE"]  # MAR, OCCP: absent in DE's file
    fast = src.records_for_serials(serials, cols)
    assert list((settings.cache_dir() / "census").glob("column-person-*.arrow"))
    slow = _slow(src, serials, cols)
    assert fast.height > 0 and fast.equals(slow)
    assert fast.schema == slow.schema
    # housing too, and household_members (sorted) on top of it
    assert src.records_for_serials(serials, ["SERIALNO", "HHT"], "housing").equals(
        _slow(src, serials, ["SERIALNO", "HHT"], "housing")
    )
    members = src.household_members(serials, ["AGEP", "SEX"])
    assert members.equals(
        _slow(src, serials, ["SERIALNO", "SPORDER", "AGEP", "SEX"]).sort(["SERIALNO", "SPORDER"])
    )


def test_column_cache_is_used_and_reloaded(pums_parquet, monkeypatch):
    src = _open(pums_parquet)
    serials = src.persons(["SERIALNO"]).collect()["SERIALNO"].unique().sort().head(5)
    first = src.records_for_serials(serials, ["SERIALNO", "AGEP"])
    S._COLUMN_MEMO.clear()
    S._SERIAL_MEMO.clear()
    calls = []
    orig = S.CensusSource._file_frame
    monkeypatch.setattr(
        S.CensusSource, "_file_frame", lambda self, *a, **k: calls.append(a) or orig(self, *a, **k)
    )
    again = _open(pums_parquet).records_for_serials(serials, ["SERIALNO", "AGEP"])
    assert again.equals(first)
    assert calls == []  # served from the on-disk index and column cache: no file scanned


@pytest.mark.parametrize("damage", ["garbage", "truncate", "empty"])
def test_corrupt_column_cache_is_rebuilt(pums_parquet, damage):
    src = _open(pums_parquet)
    serials = src.persons(["SERIALNO"]).collect()["SERIALNO"].unique().sort().head(7)
    want = src.records_for_serials(serials, ["SERIALNO", "SPORDER", "SEX"])
    files = sorted((settings.cache_dir() / "census").glob("column-person-*.arrow"))
    assert len(files) == 2
    for f in files:
        data = f.read_bytes()
        f.write_bytes(
            {"garbage": b"not arrow at all" * 10, "truncate": data[: len(data) // 2], "empty": b""}[damage]
        )
    S._COLUMN_MEMO.clear()
    got = src.records_for_serials(serials, ["SERIALNO", "SPORDER", "SEX"])
    assert got.equals(want)
    import pyarrow as pa

    for f in files:  # rewritten whole
        assert pa.ipc.open_file(pa.memory_map(str(f), "r")).read_all().num_rows == src.row_count()


def test_stale_column_cache_with_other_row_count_is_rebuilt(pums_parquet):
    src = _open(pums_parquet)
    serials = src.persons(["SERIALNO"]).collect()["SERIALNO"].unique().sort().head(4)
    want = src.records_for_serials(serials, ["SERIALNO", "AGEP"])
    (f,) = (settings.cache_dir() / "census").glob("column-person-AGEP-*.arrow")
    import pyarrow as pa

    short = pa.table({"AGEP": pa.array([1, 2, 3], type=pa.int8())})
    with pa.OSFile(str(f), "wb") as sink, pa.ipc.new_file(sink, short.schema) as w:
        w.write_table(short)
    S._COLUMN_MEMO.clear()
    assert src.records_for_serials(serials, ["SERIALNO", "AGEP"]).equals(want)


def test_unsorted_files_and_inexact_serials_fall_back(tmp_path, pums_parquet):
    d = tmp_path / "shuffled"
    d.mkdir()
    for p in pums_parquet["dir"].iterdir():
        df = pl.read_parquet(p)
        if p.name.startswith("p_"):
            df = df.sample(fraction=1.0, shuffle=True, seed=1)
        df.write_parquet(d / p.name)
    src = open_source(path=d, dictionary=pums_parquet["dictionary"])
    serials = src.persons(["SERIALNO"]).collect()["SERIALNO"].unique().sort()
    got = src.records_for_serials(serials, ["SERIALNO", "SPORDER", "AGEP"])
    key = src._serial_key("person")
    index_file = settings.cache_dir() / "census" / f"serials-person-{key}.npy"
    _codes, exact, segments_sorted = S._load_serial_index(index_file, len(src._persons))  # type: ignore[misc]
    assert segments_sorted is False and exact is True and S._SERIAL_EXACT[key] is True
    assert got.equals(_slow(src, serials, ["SERIALNO", "SPORDER", "AGEP"]))
    assert got.height == src.row_count()
    S._SERIAL_EXACT[key] = False  # a spelling the codes cannot reproduce: SERIALNO from its column cache
    assert src.records_for_serials(serials, ["SERIALNO", "SPORDER", "AGEP"]).equals(got)


def test_file_frames_rows_from_column_cache_match_file_scan(pums_parquet):
    src = _open(pums_parquet)
    cols = ["SERIALNO", "SPORDER", "STATE", "AGEP", "SEX", "MAR", "OCCP", "PWGTP"]
    rows = {0: np.array([3, 0, 3, 7]), 1: np.array([5, 1, 2])}
    fast = src.file_frames(cols, rows=rows)
    assert list((settings.cache_dir() / "census").glob("column-person-*.arrow"))
    old = S.CensusSource._file_rows_from_column_cache
    S.CensusSource._file_rows_from_column_cache = lambda *a, **k: None  # type: ignore[method-assign]
    try:
        slow = src.file_frames(cols, rows=rows)
    finally:
        S.CensusSource._file_rows_from_column_cache = old  # type: ignore[method-assign]
    assert [i for i, _ in fast] == [i for i, _ in slow]
    for (_, a), (_, b) in zip(fast, slow):
        a, b = a.collect(), b.collect()
        assert a.equals(b) and a.schema == b.schema and a.height > 0
    # a row past the end of its file: served by the file scan (which drops it), same as before
    far = src.file_frames(cols, rows={0: np.array([0, 10_000])})
    assert far[0][1].collect()["_row"].to_list() == [0]


def test_positions_equal_isin():
    g = np.random.default_rng(5)
    segs = [np.sort(g.integers(0, 500, size=k)) for k in (0, 40, 1, 300, 77)]
    codes = np.concatenate(segs).astype(np.int64)
    for want in (g.integers(0, 520, size=60), np.array([], dtype=np.int64), codes[:5], np.array([9999])):
        expect = np.flatnonzero(np.isin(codes, want))
        assert np.array_equal(_positions(codes, want), expect)


def test_decode_serials_round_trips():
    s = pl.Series(["2024HU0000001", "2018GQ9999999", "0999HU0123456"])
    assert _decode_serials(_encode_serials(s)).to_list() == s.to_list()


def test_census_import_does_not_import_scipy_stats():
    code = (
        "import sys, persona_testbed.census, persona_testbed.personas.sample; "
        "print('scipy.stats' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    from persona_testbed.census import chi2_gof  # still works: imported on first use

    _stat, p, dof = chi2_gof({"a": 10, "b": 20}, {"a": 0.5, "b": 0.5})
    assert dof == 1 and 0.06 < p < 0.07

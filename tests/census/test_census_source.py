"""Census sources: official zips and Parquet extracts, canonical columns, caching, bad input."""

from __future__ import annotations

import hashlib
import zipfile

import polars as pl
import pytest

from persona_testbed.census import PumsDictionary, open_source
from persona_testbed.core.errors import UserError


def test_zip_source_decodes_and_normalises(pums2018):
    src = open_source(path=pums2018["dir"], dictionary=pums2018["dictionary"])
    assert src.year == 2018 and src.states == ["10", "50"]
    df = src.persons(
        ["SERIALNO", "SPORDER", "ST", "RELP", "AGEP", "SCHL", "OCCP", "NAICSP", "PINCP", "MIL"]
    ).collect()
    assert df.columns == [
        "SERIALNO",
        "SPORDER",
        "STATE",
        "RELSHIPP",
        "AGEP",
        "SCHL",
        "OCCP",
        "NAICSP",
        "PINCP",
        "MIL",
    ]  # renamed through the one table
    assert df.schema["AGEP"] == pl.Int64 and df.schema["PINCP"] == pl.Int64
    assert df.schema["SCHL"] == pl.String and df.schema["STATE"] == pl.String
    raw = pl.concat([pums2018["frames"]["10"], pums2018["frames"]["50"]])
    assert df.height == raw.height
    assert df["STATE"].unique().sort().to_list() == ["10", "50"]
    assert set(df["SCHL"].drop_nulls()) <= {"01", "09", "16", "21", "23"}
    assert set(df["OCCP"].drop_nulls()) == {"0010", "4020"}  # zero-padded per dictionary width
    assert set(df["NAICSP"].drop_nulls()) == {"4453", "722Z"}
    assert df["SCHL"].null_count() == (raw["SCHL"] == "").sum()  # blank -> null
    assert df["AGEP"].to_list() == [int(a) for a in raw["AGEP"]]
    d = src.dictionary
    assert all(d.label("SCHL", c) for c in df["SCHL"])  # null -> explicit N/A label


def test_parquet_source_missing_columns_are_null(pums_parquet):
    src = open_source(path=pums_parquet["dir"], dictionary=pums_parquet["dictionary"])
    assert src.year == 2024 and src.dictionary.year == 2023
    assert "MAR" in src.available_columns("50") and "MAR" not in src.available_columns("DE")
    df = src.persons(["STATE", "SCHL", "MAR", "OCCP", "SPORDER"]).collect()
    de = df.filter(pl.col("STATE") == "10")
    vt = df.filter(pl.col("STATE") == "50")
    assert de["MAR"].null_count() == de.height and vt["MAR"].null_count() == 0
    assert set(vt["OCCP"].drop_nulls()) == {"0010", "4020"}  # ints in the file -> padded strings
    assert set(df["SCHL"].drop_nulls()) <= {"01", "09", "16", "21", "23"}
    assert df.schema["SPORDER"] == pl.Int64
    h = src.housing(["SERIALNO", "HHT"]).collect()
    assert set(h["HHT"]) == {"1", "4"}
    with pytest.raises(UserError, match="NOPE"):
        src.persons(["NOPE"])


def test_household_members(pums2018):
    src = open_source(path=pums2018["dir"], dictionary=pums2018["dictionary"])
    raw = pums2018["frames"]["50"]
    serial = raw["SERIALNO"][0]
    members = src.household_members([serial], columns=["AGEP", "RELSHIPP"])
    assert members.height == (raw["SERIALNO"] == serial).sum()
    assert members["SPORDER"].to_list() == list(range(1, members.height + 1))
    assert members["RELSHIPP"][0] == "00"
    assert src.housing() is None  # 2018 zips: no housing files


def test_cache_second_load_does_not_read_zip(pums2018, monkeypatch, tmp_home):
    src = open_source(path=pums2018["dir"], dictionary=pums2018["dictionary"])
    assert not src.is_cached()
    first = src.persons(["SERIALNO", "AGEP"]).collect()
    assert src.is_cached()
    cached = list((tmp_home / "cache" / "census").glob("*.parquet"))
    assert len(cached) == 2

    def boom(*a, **k):
        raise AssertionError("zip opened on a cached load")

    monkeypatch.setattr(zipfile, "ZipFile", boom)
    again = open_source(path=pums2018["dir"], dictionary=pums2018["dictionary"])
    assert again.persons(["SERIALNO", "AGEP"]).collect().equals(first)


def test_inputs_and_checksum(pums2018):
    src = open_source(path=pums2018["dir"], dictionary=pums2018["dictionary"])
    by_name = {i.path.split("/")[-1]: i for i in src.inputs}
    want = hashlib.sha256((pums2018["dir"] / "csv_pde.zip").read_bytes()).hexdigest()
    assert by_name["csv_pde.zip"].sha256 == want and by_name["csv_pde.zip"].state == "10"
    assert src.checksum == open_source(path=pums2018["dir"], dictionary=pums2018["dictionary"]).checksum
    assert len(src.checksum) == 64


def test_states_selection(pums2018):
    src = open_source(path=pums2018["dir"], states="vt", dictionary=pums2018["dictionary"])
    assert src.states == ["50"]
    assert src.persons(["STATE"]).collect()["STATE"].unique().to_list() == ["50"]
    with pytest.raises(UserError, match="unknown state"):
        open_source(path=pums2018["dir"], states="ZZ", dictionary=pums2018["dictionary"])
    with pytest.raises(UserError, match="not in source"):
        open_source(path=pums2018["dir"], states="CA", dictionary=pums2018["dictionary"])


def test_spec_source_in_data_dir(data_dir):
    src = open_source("acs2018", data_dir=data_dir)
    assert src.year == 2018 and src.name == "acs2018"
    assert src.row_count() == sum(1 for _ in src.persons(["AGEP"]).collect().iter_rows())
    with pytest.raises(UserError, match="not found"):
        open_source("acs2016", data_dir=data_dir)
    with pytest.raises(UserError, match="unknown census source"):
        open_source("census-please", data_dir=data_dir)


def test_bad_inputs(tmp_path, pums2018):
    # corrupt zip
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "csv_pvt.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(UserError, match="corrupt or unreadable zip"):
        open_source(path=bad, dictionary=pums2018["dictionary"])
    # corrupt parquet
    badp = tmp_path / "badp"
    badp.mkdir()
    (badp / "p_50.parquet").write_bytes(b"PAR1garbage")
    with pytest.raises(UserError, match="Parquet"):
        open_source(path=badp, dictionary=pums2018["dictionary"])
    # dictionary of another year
    other = tmp_path / "dict2015.csv"
    other.write_text(pums2018["dictionary"].read_text().replace("2018", "2015"))
    with pytest.raises(UserError, match="2015"):
        open_source(path=pums2018["dir"], dictionary=other)
    # no person files
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no PUMS person files"):
        open_source(path=empty)
    with pytest.raises(UserError, match="not found"):
        open_source(path=tmp_path / "nowhere")
    # a zip whose CSV is not PUMS
    nopums = tmp_path / "nopums"
    nopums.mkdir()
    with zipfile.ZipFile(nopums / "csv_pvt.zip", "w") as zf:
        zf.writestr("psam_p50.csv", "a,b\n1,2\n")
    with pytest.raises(UserError, match="SERIALNO"):
        open_source(path=nopums, dictionary=pums2018["dictionary"])


def test_mirror_2018_one_state(mirror):
    src = open_source("acs2018", states="WY", data_dir=mirror)
    assert src.year == 2018 and src.dictionary.year == 2018
    df = src.persons(["STATE", "RELSHIPP", "SCHL", "PWGTP", "AGEP"]).collect()
    assert df.height == 5740 and set(df["STATE"]) == {"56"}
    assert src.dictionary.undecodable("SCHL", df["SCHL"]) == []
    assert src.dictionary.undecodable("RELSHIPP", df["RELSHIPP"]) == []
    assert len(src.available_columns()) == 286


def test_mirror_2024_extract_ca_narrow(mirror):
    src = open_source("acs2024", states="CA,VT", data_dir=mirror)
    assert src.year == 2024 and src.dictionary.year == 2023
    assert len(src.available_columns("CA")) == 12 and "MAR" in src.available_columns("VT")
    df = src.persons(["STATE", "MAR", "SCHL", "PWGTP"]).collect()
    ca = df.filter(pl.col("STATE") == "06")
    assert ca["MAR"].null_count() == ca.height
    assert df["PWGTP"].sum() == pytest.approx(39431263 + 648493, rel=0.01)
    assert src.housing(["HHT", "HHL"]) is not None
    assert isinstance(PumsDictionary.load(2023, data_dir=mirror).label("HHL", "2"), str)


def test_text_in_code_columns(tmp_path, pums2018):
    from census_synth import make_persons, write_zip

    d = tmp_path / "odd"
    d.mkdir()
    df = make_persons("50", 10, seed=5)
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("X1")).otherwise(pl.col("SCHL")).alias("SCHL")
    )
    write_zip(df, d / "csv_pvt.zip", "50")
    src = open_source(path=d, dictionary=pums2018["dictionary"])
    schl = src.persons(["SCHL"]).collect()["SCHL"]
    assert schl[0] == "X1" and src.dictionary.undecodable("SCHL", schl) == ["X1"]  # kept, reported

    bad = tmp_path / "badnum"
    bad.mkdir()
    write_zip(
        make_persons("50", 10, seed=5).with_columns(pl.lit("12x").alias("AGEP")), bad / "csv_pvt.zip", "50"
    )
    src = open_source(path=bad, dictionary=pums2018["dictionary"])
    with pytest.raises(UserError, match="numeric column AGEP"):
        src.persons(["AGEP"])


def test_corrupt_second_zip_leaves_no_cache(tmp_path, pums2018, tmp_home):
    d = tmp_path / "half"
    d.mkdir()
    (d / "csv_pde.zip").write_bytes((pums2018["dir"] / "csv_pde.zip").read_bytes())
    good = (pums2018["dir"] / "csv_pvt.zip").read_bytes()
    (d / "csv_pvt.zip").write_bytes(good[: len(good) // 2])  # truncated download
    src = open_source(path=d, dictionary=pums2018["dictionary"])
    with pytest.raises(UserError, match="csv_pvt.zip"):
        src.persons(["AGEP"]).collect()
    cached = [p.name for p in (tmp_home / "cache" / "census").glob("*.parquet")]
    assert all(not n.startswith("csv_pvt") for n in cached)
    assert not list((tmp_home / "cache" / "census").glob(".*tmp"))

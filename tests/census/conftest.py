"""Fixtures for census tests; the synthetic-data builders live in census_synth.py."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from census_synth import make_dictionary, make_persons, write_zip  # noqa: F401


@pytest.fixture
def pums2018(tmp_path) -> dict:
    """A directory of two official-style 2018 zips (DE, VT) plus a matching mini dictionary."""
    d = tmp_path / "pums2018"
    d.mkdir()
    de = make_persons("10", 60, seed=1)
    vt = make_persons("50", 40, seed=2)
    write_zip(de, d / "csv_pde.zip", "10")
    write_zip(vt, d / "csv_pvt.zip", "50")
    dic = make_dictionary(tmp_path / "dict2018.csv")
    return {"dir": d, "dictionary": dic, "frames": {"10": de, "50": vt}}


@pytest.fixture
def pums_parquet(tmp_path) -> dict:
    """A 2024-style Parquet extract: VT full, DE narrow (no MAR, OCCP), integer codes, housing for VT."""
    d = tmp_path / "pums2024"
    d.mkdir()
    vt = make_persons("50", 30, seed=3, year=2024).rename({"ST": "STATE", "RELP": "RELSHIPP"})
    de = (
        make_persons("10", 20, seed=4, year=2024)
        .rename({"ST": "STATE"})
        .select("SERIALNO", "SPORDER", "STATE", "PWGTP", "AGEP", "SEX", "SCHL")
    )
    ints = ["SPORDER", "PWGTP", "AGEP", "SEX", "SCHL", "PINCP", "MIL", "MAR", "OCCP"]

    def typed(df: pl.DataFrame) -> pl.DataFrame:
        return df.with_columns([pl.col(c).replace("", None).cast(pl.Int64) for c in ints if c in df.columns])

    typed(vt).drop("RT", "NAICSP").write_parquet(d / "p_50.parquet")
    typed(de).write_parquet(d / "p_10.parquet")
    serials = vt["SERIALNO"].unique().sort()
    pl.DataFrame(
        {
            "SERIALNO": serials,
            "STATE": ["50"] * len(serials),
            "HHT": [1 if i % 2 else 4 for i in range(len(serials))],
        }
    ).write_parquet(d / "h_50.parquet")
    dic = make_dictionary(tmp_path / "dict2023.csv", year=2023)
    return {"dir": d, "dictionary": dic, "frames": {"50": vt, "10": de}}


@pytest.fixture
def data_dir(tmp_path, pums2018) -> Path:
    """A data directory in mirror layout holding the synthetic 2018 zips and dictionary."""
    root = tmp_path / "data"
    acs = root / "census" / "acs" / "2018" / "1-Year"
    acs.mkdir(parents=True)
    for p in pums2018["dir"].iterdir():
        (acs / p.name).write_bytes(p.read_bytes())
    dic = root / "census" / "dictionaries"
    dic.mkdir(parents=True)
    (dic / "PUMS_Data_Dictionary_2018.csv").write_bytes(pums2018["dictionary"].read_bytes())
    return root

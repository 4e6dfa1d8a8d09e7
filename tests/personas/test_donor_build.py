"""The donor frame is built a few person files at a time (bounded memory): the same frame as one pass over
every file, and the same as the copy a later run memory-maps from the cache."""

import polars as pl
import pytest


def _as_text(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col(c).cast(pl.Utf8) for c, t in df.schema.items() if t == pl.Categorical)


@pytest.mark.shared_data
def test_donor_build_in_file_groups_equals_one_pass_and_the_cached_copy(mirror, tmp_path, monkeypatch):
    from persona_testbed.personas import build
    from persona_testbed.personas.build import HOUSEHOLD_COLUMNS, MappingContext, _housing_columns
    from persona_testbed.personas.impute import MATCH_VARS, match_columns
    from persona_testbed.personas.sample import _open

    monkeypatch.setenv("PERSONA_TESTBED_HOME", str(tmp_path))
    monkeypatch.setattr(build, "_DONORS", {})
    src = _open("acs2024", "DE,RI,VT", mirror)
    need = ["ESR", "MAR", "OCCP"]
    states = list(src.states)
    cols = list(
        dict.fromkeys(
            [
                "SERIALNO",
                "SPORDER",
                "STATE",
                "PWGTP",
                *[c for c in MATCH_VARS if c in src.available_columns()],
                *need,
            ]
        )
    )
    # the one-pass build (every file decoded at once)
    ref = src.persons(cols).filter(pl.col("STATE").is_in(states)).filter(pl.col("PWGTP") > 0).collect()
    hcols = [c for c in HOUSEHOLD_COLUMNS if c in _housing_columns(src)]
    assert hcols  # the household matching columns are part of the frame
    hh = src.housing(["SERIALNO", *hcols]).collect().unique("SERIALNO")
    ref = ref.join(hh, on="SERIALNO", how="left", maintain_order="left")
    ref = match_columns(ref).drop([c for c in (*MATCH_VARS, "HHT", "NP") if c not in need], strict=False)
    ref = ref.with_columns(
        pl.col(c).cast(pl.Categorical) for c, t in ref.schema.items() if t == pl.Utf8 and c != "SERIALNO"
    )
    for group in (1, 2, 50):
        monkeypatch.setattr(build, "DONOR_BUILD_FILES", group)
        got = build._build_donors(src, cols, states, need)
        assert got.schema == ref.schema
        assert _as_text(got).equals(_as_text(ref))

    ctx = MappingContext(src, 0, mirror, "acs2024")
    first = ctx.donors(src, need, "impute")  # built, written, then read back from the file
    assert list((tmp_path / "cache" / "personas").glob("donors-impute-*.arrow"))
    monkeypatch.setattr(build, "_DONORS", {})
    again = ctx.donors(src, need, "impute")  # a later run: the memory-mapped cache file
    assert first is not again
    assert _as_text(first).equals(_as_text(ref)) and _as_text(again).equals(_as_text(ref))

"""Manifest, states table and Census URL templates."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from persona_testbed.core.errors import UserError
from persona_testbed.data import GROUPS, MANIFEST, STATES, parse_target, state
from persona_testbed.data.build_manifest import build
from persona_testbed.data.census_urls import census_file_for_relpath, dictionary_file, pums_file
from persona_testbed.data.checksums import read_sums


def test_states_table():
    assert len(STATES) == 52  # 50 states + DC + PR
    assert len({s.abbr for s in STATES}) == len({s.fips for s in STATES}) == 52
    assert state("ca").fips == "06" and state(6).abbr == "CA" and state("06").name == "California"
    assert state("District of Columbia").abbr == "DC" and state("pr").fips == "72"
    with pytest.raises(UserError, match="unknown state 'zz'"):
        state("zz")


def test_manifest_covers_groups_and_urls():
    groups = {f.group for f in MANIFEST.values()}
    assert groups == set(GROUPS)
    for f in MANIFEST.values():
        assert len(f.sha256) == 64 and f.size > 0 and f.description and f.licence and f.source
        if f.group in ("census-2018", "dictionaries"):
            assert f.url and f.url.startswith("https://www2.census.gov/programs-surveys/acs/")
        else:
            assert f.url is None
    assert MANIFEST["census/acs/2018/1-Year/csv_pvt.zip"].url == (
        "https://www2.census.gov/programs-surveys/acs/data/pums/2018/1-Year/csv_pvt.zip"
    )
    assert "CC-BY-4.0" in MANIFEST["prompts/prism/prism_opening_prompts.json"].licence
    # the 2024 extract covers 50 states + DC, person and housing, named by FIPS from the table
    fips = {f.relpath[-10:-8] for f in MANIFEST.values() if f.group == "census-2024"}
    assert fips == {s.fips for s in STATES if s.abbr != "PR"}


@pytest.mark.shared_data
def test_manifest_matches_mirror(mirror):
    sums = read_sums(mirror / "SHA256SUMS")
    assert {k: f.sha256 for k, f in MANIFEST.items()} == sums
    on_disk = {str(p.relative_to(mirror)) for p in mirror.rglob("*") if p.is_file()}
    assert on_disk - set(MANIFEST) == {"README.md", "SHA256SUMS"}
    for rel, f in MANIFEST.items():
        assert (mirror / rel).stat().st_size == f.size, rel
    packaged = json.loads(resources.files("persona_testbed.data").joinpath("manifest.json").read_text())
    assert build(mirror) == packaged  # the committed file is what the script generates


def test_pums_targets():
    [f] = parse_target("pums:2019:p:ca")
    assert f.relpath == "census/acs/2019/1-Year/csv_pca.zip"
    assert f.url == "https://www2.census.gov/programs-surveys/acs/data/pums/2019/1-Year/csv_pca.zip"
    [h] = parse_target("pums:2021:h:06:5")
    assert h.relpath == "census/acs/2021/5-Year/csv_hca.zip" and h.url.endswith("/2021/5-Year/csv_hca.zip")
    allp = parse_target("pums:2022:p:all")
    assert len(allp) == 52 and allp[-1].relpath.endswith("csv_ppr.zip")
    [d] = parse_target("pums:2023:dict")
    assert d.url == (
        "https://www2.census.gov/programs-surveys/acs/tech_docs/pums/data_dict/PUMS_Data_Dictionary_2023.csv"
    )
    [d5] = parse_target("pums:2019:dict:5")
    assert d5.relpath == "census/dictionaries/PUMS_Data_Dictionary_2015-2019.csv"
    assert parse_target("pums:2019:p:us")[0].relpath.endswith("csv_pus.zip")
    for bad, why in [
        ("pums:2019:x:ca", "record type"),
        ("pums:2019:p:zz", "unknown state"),
        ("pums:1999:p:ca", "first is 2005"),
        ("pums:2019:p:ca:3", "period"),
        ("pums:abc", "expected pums:YEAR"),
    ]:
        with pytest.raises(UserError, match=why):
            parse_target(bad)


def test_relpath_round_trip_and_census_url_env(monkeypatch):
    for f in [
        pums_file(2017, "h", "wy"),
        pums_file(2020, "p", "dc", "5-Year"),
        dictionary_file(2016),
        dictionary_file(2022, "5-Year"),
    ]:
        assert census_file_for_relpath(f.relpath) == f
    assert census_file_for_relpath("census/acs/2019/1-Year/csv_pzz.zip") is None
    assert census_file_for_relpath("norms/bigfive/x.csv") is None
    from persona_testbed.data.census_urls import rebase_census_url

    url = pums_file(2019, "p", "ca").url
    assert rebase_census_url(url) == url
    monkeypatch.setenv("PERSONA_TESTBED_CENSUS_URL", "http://census.local:8080/")
    assert (
        rebase_census_url(url)
        == "http://census.local:8080/programs-surveys/acs/data/pums/2019/1-Year/csv_pca.zip"
    )
    assert rebase_census_url("https://example.org/x") == "https://example.org/x"

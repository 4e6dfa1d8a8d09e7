"""PumsDictionary: decoding, ranges, explicit N/A, undecodable codes, renames, year."""

from __future__ import annotations

import pytest

from persona_testbed.census import PumsDictionary, canonical_name
from persona_testbed.core.errors import UserError


def test_decodes_exact_range_and_blank(pums2018):
    d = PumsDictionary.load(pums2018["dictionary"])
    assert d.year == 2018
    assert d.label("SCHL", "21") == "Bachelor's degree"
    assert d.label("SCHL", 21) == "Bachelor's degree"  # integer code, zero-padded to width 2
    assert d.label("SCHL", "1") == "No schooling completed"
    assert d.label("SCHL", "09") == "Grade school to 12th grade"  # inside range 02-15
    assert d.label("SCHL", None) == "N/A (less than 3 years old)"  # blank made explicit
    assert d.label("SCHL", "bb") == "N/A (less than 3 years old)"
    assert d.label("PINCP", -5) == "Loss $1 to $19997"
    assert d.label("PINCP", 0) == "None"
    assert d.label("AGEP", 0) == "Under 1 year" and d.label("AGEP", 45) == "1 to 99 years (Top-coded)"
    assert d.label("OCCP", 10) == "MGR-Chief Executives"
    assert d.label("NAICSP", "722Z") == "ENT-Restaurants"
    assert d.label("NOPE", "1") is None


def test_undecodable_codes_are_reported_not_guessed(pums2018):
    d = PumsDictionary.load(pums2018["dictionary"])
    assert d.undecodable("SCHL", ["21", "17", 99, None, "01"]) == ["17", "99"]
    assert d.label("SCHL", "17") is None
    assert d.undecodable("SEX", [None]) == ["<blank>"]  # SEX has no N/A category


def test_renames_apply_to_dictionary_and_first_definition_wins(pums2018):
    d = PumsDictionary.load(pums2018["dictionary"])
    assert canonical_name("ST") == "STATE" and canonical_name("relp") == "RELSHIPP"
    assert d.label("STATE", "10") == "Delaware/DE"  # not the duplicate block's label
    assert d.label("ST", 10) == "Delaware/DE"
    assert d.label("RELSHIPP", "0") == "Reference person"
    assert d.find_code("RELSHIPP", "institutionalized") == "16"


def test_code_width_only_when_codes_are_fixed_width(pums2018):
    d = PumsDictionary.load(pums2018["dictionary"])
    assert d.variable("OCCP").width == 4
    assert d.variable("NAICSP").width is None  # 4453 vs 722Z: variable width, never padded
    assert d.normalise("NAICSP", "4453") == "4453"
    assert d.normalise("SCHL", 3) == "03"
    assert d.normalise("PINCP", "007") == "7"


def test_bad_dictionaries(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("hello,world\n")
    with pytest.raises(UserError, match="not a PUMS dictionary row"):
        PumsDictionary.load(bad)
    noyear = tmp_path / "noyear.csv"
    noyear.write_text('NAME,AGEP,N,2,"Age"\nVAL,AGEP,N,2,0,99,"Age"\n')
    with pytest.raises(UserError, match="year"):
        PumsDictionary.load(noyear)
    with pytest.raises(UserError, match="not found"):
        PumsDictionary.load(tmp_path / "missing.csv")


def test_real_dictionaries(mirror):
    d18 = PumsDictionary.load(2018, data_dir=mirror)
    d23 = PumsDictionary.load(2023, data_dir=mirror)
    assert (d18.year, d23.year) == (2018, 2023)
    assert d18.label("SCHL", 21) == d23.label("SCHL", "21") == "Bachelor's degree"
    assert d18.label("RELSHIPP", "16") == "Institutionalized group quarters population"  # 2018 RELP codes
    assert d23.label("RELSHIPP", "37") == "Institutionalized group quarters population"
    assert d18.label("STATE", 6) == "California/CA"
    assert d23.label("MIL", None).startswith("N/A")
    assert d23.undecodable("SCHL", ["25", "21"]) == ["25"]

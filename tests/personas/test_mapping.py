import json

import polars as pl
from synth import dictionary, persons

from persona_testbed.personas.mapping import DecodeReport, map_census_fields


def _map(rows):
    rep = DecodeReport()
    return map_census_fields(persons(rows), dictionary(), 2018, rep), rep


def test_labels_provenance_and_detail():
    cols, rep = _map([{}])
    assert cols["sex"].value[0] == "Male" and cols["sex"].provenance[0] == "census"
    assert json.loads(cols["education"].detail[0]) == {"var": "SCHL", "code": "21"}
    assert cols["occupation category"].value[0] == "Veterinarians"
    assert json.loads(cols["occupation category"].detail[0])["group"] == "MED"
    assert cols["income"].value[0] == "$52,000"
    assert json.loads(cols["income"].detail[0])["band"] == "$50,000-74,999"
    assert cols["age"].value[0] == "40"
    assert rep.undecodable == {}


def test_na_categories_are_explicit_never_blank():
    cols, _ = _map([{"AGEP": 10, "ESR": None, "OCCP": None, "PINCP": None, "SCHL": None}])
    assert cols["employment status"].value[0] == "N/A (less than 16 years old)"
    assert cols["occupation category"].value[0] == "N/A (less than 16 years old/NILF)"
    assert cols["income"].value[0] == "N/A (less than 15 years old)"
    assert cols["education"].value[0] == "N/A (less than 3 years old)"
    for c in cols.values():
        assert all(v for v in c.value.to_list())


def test_losses_hispanic_origin_and_undecodable_codes_reported():
    cols, rep = _map([{"PINCP": -1200, "HISP": "02", "OCCP": "9999"}])
    assert cols["income"].value[0] == "-$1,200"
    assert cols["race"].value[0] == "White alone; Hispanic or Latino (Mexican)"
    assert rep.undecodable == {"OCCP": ["9999"]}
    assert "9999" in cols["occupation category"].value[0]  # reported, not guessed


def test_place_of_birth_derived_from_citizenship_when_pobp_absent():
    cols, _ = _map([{"CIT": "1"}, {"CIT": "4"}])
    pob = cols["place of birth"]
    assert pob.provenance.to_list() == ["derived", "derived"]
    assert pob.value[0].startswith("United States") and pob.value[1].startswith("Outside the United States")


def test_fidelity_shares_and_tvd_match_brute_force():
    from persona_testbed.census.distributions import tvd
    from persona_testbed.personas.fidelity import _shares

    df = pl.DataFrame({"k": ["a", "a", "b", "c"], "w": [1.0, 3.0, 2.0, 2.0]})
    assert _shares(df, "k", None) == {"a": 0.5, "b": 0.25, "c": 0.25}
    assert _shares(df, "k", "w") == {"a": 0.5, "b": 0.25, "c": 0.25}
    assert tvd(_shares(df.head(2), "k", None), _shares(df, "k", "w")) == 0.5

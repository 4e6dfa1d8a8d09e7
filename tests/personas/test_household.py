import json

import polars as pl
from synth import dictionary, persons

from persona_testbed.personas.household import household_fields
from persona_testbed.personas.mapping import DecodeReport

# 2018 relationship codes: 00 reference person, 01 spouse, 02 biological child, 12 housemate, 16 inst. GQ
MEMBERS = persons(
    [
        # married couple with a 4-year-old, Spanish at home
        {
            "SERIALNO": "2018HU0000001",
            "SPORDER": 1,
            "RELSHIPP": "00",
            "SEX": "1",
            "LANX": "1",
            "LANP": "1200",
        },
        {
            "SERIALNO": "2018HU0000001",
            "SPORDER": 2,
            "RELSHIPP": "01",
            "SEX": "2",
            "LANX": "1",
            "LANP": "1200",
        },
        {"SERIALNO": "2018HU0000001", "SPORDER": 3, "RELSHIPP": "02", "AGEP": 4, "LANX": None},
        # woman living alone, English only
        {"SERIALNO": "2018HU0000002", "SPORDER": 1, "RELSHIPP": "00", "SEX": "2"},
        # two housemates, one speaks Vietnamese; a 10-year-old non-relative lives with them
        {
            "SERIALNO": "2018HU0000003",
            "SPORDER": 1,
            "RELSHIPP": "00",
            "SEX": "1",
            "LANX": "1",
            "LANP": "2050",
        },
        {"SERIALNO": "2018HU0000003", "SPORDER": 2, "RELSHIPP": "12", "SEX": "1"},
        {"SERIALNO": "2018HU0000003", "SPORDER": 3, "RELSHIPP": "15", "AGEP": 10},
        # group quarters
        {"SERIALNO": "2018GQ0000004", "SPORDER": 1, "RELSHIPP": "16"},
    ]
)


def _draws(keys):
    m = MEMBERS.with_columns(pl.struct("SERIALNO", "SPORDER").alias("k"))
    rows = [m.filter((pl.col("SERIALNO") == s) & (pl.col("SPORDER") == o)) for s, o in keys]
    return pl.concat(rows).drop("k").with_row_index("_row")


def test_household_fields_from_members():
    d = _draws(
        [
            ("2018HU0000001", 1),
            ("2018HU0000002", 1),
            ("2018HU0000003", 2),
            ("2018GQ0000004", 1),
            ("2018HU0000001", 3),
        ]
    )
    out = household_fields(d, MEMBERS, None, dictionary(), 2018, DecodeReport())
    ht = out["household type"].value.to_list()
    assert ht[:4] == [
        "Married couple household",
        "Nonfamily household: Female householder: Living alone",
        "Nonfamily household: Male householder: Not living alone",
        "N/A (GQ/vacant)",
    ]
    assert out["household language"].value.to_list()[:4] == [
        "Spanish",
        "English only",
        "Vietnamese",
        "N/A (GQ/vacant)",
    ]
    fam = out["family presence and age"].value.to_list()
    assert fam[0] == "With own children under 6 years only"  # householder with own 4-year-old
    assert fam[1] == "No own children under 18 years"
    assert fam[2].startswith("Lives with children 6 to 17 years only")  # housemate: not own
    assert fam[3] == "N/A (group quarters)" and fam[4] == "N/A (under 16 years old)"
    assert set(out["household type"].provenance.to_list()) == {"derived"}
    assert json.loads(out["household type"].detail[0])["from"] == "members of the same SERIALNO"


def test_housing_record_and_paoc_take_precedence():
    d = _draws([("2018HU0000001", 2)]).with_columns(PAOC=pl.lit("1"))
    housing = pl.DataFrame({"SERIALNO": ["2018HU0000001"], "HHT": ["3"], "HHL": ["1"]})
    out = household_fields(d, MEMBERS, housing, dictionary(), 2018, DecodeReport())
    assert out["household type"].value[0].startswith("Other family household: Female")
    assert out["household language"].value[0] == "English only"
    assert out["family presence and age"].value[0] == "With own children under 6 years only"
    assert out["family presence and age"].provenance[0] == "census"
    assert json.loads(out["household type"].detail[0]) == {
        "var": "HHT",
        "code": "3",
        "from": "housing record",
        "persons": 3,
        "role": "spouse",
    }
    # the housing record's person count wins over the members found
    out = household_fields(d, MEMBERS, housing.with_columns(NP=pl.lit(4)), dictionary(), 2018, DecodeReport())
    assert json.loads(out["household type"].detail[0])["persons"] == 4


def test_household_size_and_role():
    d = _draws(
        [
            ("2018HU0000001", 1),
            ("2018HU0000001", 2),
            ("2018HU0000001", 3),
            ("2018HU0000002", 1),
            ("2018GQ0000004", 1),
        ]
    )
    out = household_fields(d, MEMBERS, None, dictionary(), 2018, DecodeReport())
    details = [json.loads(x) for x in out["household type"].detail.to_list()]
    assert [x["persons"] for x in details] == [3, 3, 3, 1, 1]
    assert [x.get("role") for x in details] == [
        "householder",
        "spouse",
        "child",
        "householder",
        "group quarters",
    ]
    # no relationship codes (the 2024 extract): only person number 1 of a housing unit is known, the householder
    bare = MEMBERS.drop("RELSHIPP")
    out = household_fields(
        _draws([("2018HU0000001", 1), ("2018HU0000001", 2), ("2018GQ0000004", 1)]).drop("RELSHIPP"),
        bare,
        None,
        dictionary(),
        2018,
        DecodeReport(),
    )
    assert [json.loads(x).get("role") for x in out["household type"].detail.to_list()] == [
        "householder",
        None,
        None,
    ]


def test_paoc_no_own_children_wording():
    d = _draws([("2018HU0000002", 1)]).with_columns(PAOC=pl.lit("4"))
    out = household_fields(d, MEMBERS, None, dictionary(), 2018, DecodeReport())
    assert out["family presence and age"].value[0] == "No own children under 18 years"

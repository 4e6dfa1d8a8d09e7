import json

import numpy as np
import polars as pl
import pytest
from synth import persons

from factories import make_persona
from persona_testbed.core.errors import UserError
from persona_testbed.personas.fidelity import survey_cells
from persona_testbed.personas.record import FieldValue
from persona_testbed.personas.survey import draw_survey, load_pool

LONG_HEADER = (
    "year,id,ballot,age,sex,race,degree,bigregion,income16,marital,kids,siblings,relig,relig_label,"
    "religion,partyid,polviews,happy,grass,padeg,madeg,wtssall,wtssps,formwt,oversamp,vpsu,vstrat,"
    "sample,sampcode"
)


def _row(i, age, sex, race, degree, region, relig, party, pol, w=1.0, year=2022):
    return (
        f"{year},{i},,{age},{sex},{race},{degree},{region},,,,,0,{relig.lower()},{relig},"
        f'"{party}","{pol}",,,,,,{w},,,,,,'
    )


def _long_file(tmp_path):
    rows = [
        _row(1, 35, "Female", "White", "Bachelor's", "South", "None", "Strong Democrat", "Liberal"),
        _row(
            2, 35, "Female", "White", "Bachelor's", "South", "Catholic", "Strong Democrat", "Liberal", w=0.0
        ),
        _row(
            3,
            70,
            "Male",
            "Black",
            "High School",
            "West",
            "Protestant",
            "Independent (Neither, No Response)",
            "Moderate, Middle of the Road",
            2.0,
        ),
        _row(
            4,
            50,
            "Male",
            "White",
            "Graduate",
            "Midwest",
            "Jewish",
            "Not Very Strong Republican",
            "Conservative",
            1.0,
            year=1990,
        ),  # outside 2021-2024: never used
    ]
    d = tmp_path / "survey" / "gss"
    d.mkdir(parents=True)
    (d / "gss_1972_2024_long.csv").write_text(LONG_HEADER + "\n" + "\n".join(rows) + "\n")
    return tmp_path


def test_none_religion_is_a_value_and_years_and_weights_respected(tmp_path):
    pool = load_pool(str(_long_file(tmp_path)), 2024)
    assert pool.label == "GSS 2022-2022"
    assert sorted(pool.frame["gss_id"].to_list()) == ["1", "3"]  # zero weight and 1990 dropped
    assert "No religion" in pool.frame["religion"].to_list()


def test_draw_matches_cell_and_backs_off(tmp_path):
    pool = load_pool(str(_long_file(tmp_path)), 2024)
    df = persons(
        [
            {
                "AGEP": 33,
                "SEX": "2",
                "RAC1P": "1",
                "SCHL": "21",
                "STATE": "13",
            },  # GA: South, exact cell -> id 1
            {
                "AGEP": 80,
                "SEX": "1",
                "RAC1P": "2",
                "SCHL": "16",
                "STATE": "13",
            },  # West respondent only: backs off
        ]
    ).with_columns(_state=pl.col("STATE"))
    cols, levels = draw_survey(df, pool, seed=0, keys=np.array([0, 1]), min_cell=1)
    assert cols["religion"].value.to_list() == ["No religion", "Protestant"]
    assert cols["political views"].value[0] == "Strong Democrat"
    assert cols["ideology"].value[1] == "Moderate, Middle of the Road"
    d0, d1 = (json.loads(x) for x in cols["religion"].detail.to_list())
    assert d0["gss_id"] == "1" and d0["backoff_level"] == 0 and d0["cell"].startswith("ageband,sex")
    assert d1["gss_id"] == "3" and d1["backoff_level"] == 1  # region dropped
    assert set(cols["ideology"].provenance.to_list()) == {"survey"}
    assert levels == {0: 1, 1: 1}


def _pool_file(tmp_path, n_south_cell=3, n_region_cell=25):
    """A long file: a fine cell (35, female, white, bachelor's, South) with few respondents, and the same
    person cell without region held by many respondents in the West."""
    rows = [
        _row(i, 35, "Female", "White", "Bachelor's", "South", "Jewish", "Strong Democrat", "Liberal")
        for i in range(1, n_south_cell + 1)
    ]
    rows += [
        _row(100 + i, 36, "Female", "White", "Bachelor's", "West", "Catholic", "Independent", "Moderate")
        for i in range(n_region_cell)
    ]
    d = tmp_path / "survey" / "gss"
    d.mkdir(parents=True)
    (d / "gss_1972_2024_long.csv").write_text(LONG_HEADER + "\n" + "\n".join(rows) + "\n")
    return tmp_path


def test_min_cell_backs_off_small_cells_and_reports_cell_size(tmp_path):
    pool = load_pool(str(_pool_file(tmp_path)), 2024)
    df = persons([{"AGEP": 33, "SEX": "2", "RAC1P": "1", "SCHL": "21", "STATE": "13"}] * 40).with_columns(
        _state=pl.col("STATE")
    )
    keys = np.arange(40)
    cols, levels = draw_survey(df, pool, seed=0, keys=keys, min_cell=1)
    details = [json.loads(x) for x in cols["religion"].detail.to_list()]
    assert levels == {0: 40} and {d["cell_respondents"] for d in details} == {3}
    assert set(cols["religion"].value.to_list()) == {"Jewish"}  # 3 respondents serve 40 personas
    cols, levels = draw_survey(df, pool, seed=0, keys=keys, min_cell=20)
    details = [json.loads(x) for x in cols["religion"].detail.to_list()]
    assert levels == {1: 40}  # region dropped: 28 respondents
    assert {d["cell_respondents"] for d in details} == {28} and all(
        d["cell"] == "ageband,sex,raceeth,degree" for d in details
    )
    cols, levels = draw_survey(df, pool, seed=0, keys=keys, min_cell=1000)
    assert levels == {5: 40}  # no cell is big enough: the last level (everyone) still answers


def test_min_cell_must_be_positive(tmp_path):
    pool = load_pool(str(_pool_file(tmp_path)), 2024)
    df = persons([{"AGEP": 33, "SEX": "2", "RAC1P": "1", "SCHL": "21", "STATE": "13"}]).with_columns(
        _state=pl.col("STATE")
    )
    for bad in (0, -1):
        with pytest.raises(UserError, match="at least 1"):
            draw_survey(df, pool, seed=0, keys=np.arange(1), min_cell=bad)


def test_survey_cells_report(tmp_path):
    pool = load_pool(str(_pool_file(tmp_path)), 2024)
    df = persons([{"AGEP": 33, "SEX": "2", "RAC1P": "1", "SCHL": "21", "STATE": "13"}] * 10).with_columns(
        _state=pl.col("STATE")
    )
    cols, _ = draw_survey(df, pool, seed=0, keys=np.arange(10), min_cell=1)
    personas = [make_persona() for _ in range(10)]
    for p, value, detail in zip(
        personas, cols["religion"].value.to_list(), cols["religion"].detail.to_list()
    ):
        p.fields["religion"] = FieldValue(value=value, provenance="survey", detail=json.loads(detail))
    rep = survey_cells(personas, pool, 1)
    assert rep["personas"] == 10 and rep["respondents"] <= 3 and rep["max_reuse"] >= 4
    assert rep["cell_respondents"]["min"] == 3 and rep["cell_effective_respondents"]["median"] == 3.0
    assert rep["share_in_cells_under_5"] == 1.0
    assert rep["backoff_levels"] == [
        {"level": 0, "cell": "ageband,sex,raceeth,degree,region", "personas": 10, "share": 1.0}
    ]

import json

import numpy as np
import polars as pl

from persona_testbed.personas.survey import load_pool, draw_survey
from synth import persons

LONG_HEADER = ("year,id,ballot,age,sex,race,degree,bigregion,income16,marital,kids,siblings,relig,relig_label,"
               "religion,partyid,polviews,happy,grass,padeg,madeg,wtssall,wtssps,formwt,oversamp,vpsu,vstrat,"
               "sample,sampcode")


def _row(i, age, sex, race, degree, region, relig, party, pol, w=1.0, year=2022):
    return (f"{year},{i},,{age},{sex},{race},{degree},{region},,,,,0,{relig.lower()},{relig},"
            f"\"{party}\",\"{pol}\",,,,,,{w},,,,,,")


def _long_file(tmp_path):
    rows = [
        _row(1, 35, "Female", "White", "Bachelor's", "South", "None", "Strong Democrat", "Liberal"),
        _row(2, 35, "Female", "White", "Bachelor's", "South", "Catholic", "Strong Democrat", "Liberal", w=0.0),
        _row(3, 70, "Male", "Black", "High School", "West", "Protestant", "Independent (Neither, No Response)",
             "Moderate, Middle of the Road", 2.0),
        _row(4, 50, "Male", "White", "Graduate", "Midwest", "Jewish", "Not Very Strong Republican", "Conservative",
             1.0, year=1990),  # outside 2021-2024: never used
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
    df = persons([
        {"AGEP": 33, "SEX": "2", "RAC1P": "1", "SCHL": "21", "STATE": "13"},  # GA: South, exact cell -> id 1
        {"AGEP": 80, "SEX": "1", "RAC1P": "2", "SCHL": "16", "STATE": "13"},  # West respondent only: backs off
    ]).with_columns(_state=pl.col("STATE"))
    cols, levels = draw_survey(df, pool, seed=0, keys=np.array([0, 1]))
    assert cols["religion"].value.to_list() == ["No religion", "Protestant"]
    assert cols["political views"].value[0] == "Strong Democrat"
    assert cols["ideology"].value[1] == "Moderate, Middle of the Road"
    d0, d1 = (json.loads(x) for x in cols["religion"].detail.to_list())
    assert d0["gss_id"] == "1" and d0["backoff_level"] == 0 and d0["cell"].startswith("ageband,sex")
    assert d1["gss_id"] == "3" and d1["backoff_level"] == 1  # region dropped
    assert set(cols["ideology"].provenance.to_list()) == {"survey"}
    assert levels == {0: 1, 1: 1}

"""The vectorised rules flag exactly what the persona-by-persona Python rules (``rules_oracle``) flag:
on every rule's breaker, on thousands of fuzzed personas built from tricky values, and on real census
personas (children included, so the age rules get exercised)."""

from __future__ import annotations

import random

import pytest
import rules_oracle
from test_rules import BREAKERS

from factories import make_persona
from persona_testbed.personas.record import FieldValue
from persona_testbed.personas.rules import RULE_NAMES, broken_matrix, frame_violations, rules_frame, validate

POOLS = {
    "age": [
        "0",
        "12",
        "14",
        "15",
        "16",
        "17",
        "19",
        "21",
        "34",
        "50",
        "51",
        "58",
        "61",
        "95",
        "N/A",
        "",
        "40s",
    ],
    "income": [
        "$120,000",
        "$99,999",
        "-$150,000",
        "$100,000",
        "N/A (less than 15 years old)",
        "$,",
        " $250,000",
    ],
    "education": [
        "Master's degree",
        "Doctorate degree",
        "Professional degree beyond a bachelor's degree",
        "Grade 6",
        "Bachelor's degree",
        "N/A (less than 3 years old)",
    ],
    "marital status": [
        "Married",
        "Widowed",
        "Divorced",
        "Separated",
        "Never married or under 15 years old",
        " married",
        "Married-ish",
    ],
    "sex": ["Male", "Female", " male ", "FEMALE"],
    "fertility": [
        "Yes",
        "No",
        "Gave birth to child within the past 12 months",
        "Birth in the past 12 months",
        "N/A (less than 15 years/greater than 50 years/ male)",
        "yes ",
    ],
    "veteran status": [
        "Now on active duty",
        "Never served in the military",
        "N/A (less than 17 years old)",
        "Veteran",
        " n/a",
    ],
    "occupation category": ["Registered nurses", "N/A (x)", "n/a"],
    "class of worker": ["Employee of a private for-profit company", "N/A (less than 16 years old)"],
    "industry category": ["Health care", "N/A (x)"],
    "employment status": [
        "Civilian employed, at work",
        "Unemployed",
        "Armed forces, at work",
        "Not in labor force",
        "N/A (less than 16 years old)",
        "Self-employed",
    ],
    "citizenship": ["Born in the United States", "Naturalized US citizen", " born in the united states"],
    "place of birth": ["Ohio/OH", "Outside the United States (country not recorded)", "Mexico"],
    "household language": ["English only", "Spanish", " english only "],
    "ability to speak english": ["N/A (speaks only English)", "Not well", "Very well", ""],
    "household type": [
        "Married couple household",
        "Nonfamily household: Female householder: Living alone",
        "Nonfamily household: Male householder: Not living alone",
    ],
    "family presence and age": [
        "With own children under 6 years only",
        "With no own children under 18 years",
        "Lives with relatives' children",
        "N/A (GQ/vacant)",
    ],
    "religion": ["Catholic", "No religion", "none", "NONE", "Protestant"],
}
DETAILS = {
    "place of birth": [
        {},
        {"var": "POBP", "code": "303"},
        {"var": "POBP", "code": "039"},
        {"var": "CIT", "code": "1"},
        {"var": "POBP", "code": "x1"},
    ],
    "religion": [
        {},
        {"denomination": "southern baptist convention"},
        {"denomination": "no denomination given"},
        {"denomination": None},
        {"denomination": ""},
        {
            "cell": "ageband,sex",
            "respondent": "30-44|male|white|3|South",
            "persona_cell": "30-44|female|white|3|South",
            "gss_id": "7",
        },
        {
            "cell": "ageband,sex,raceeth,degree,region",
            "respondent": "30-44|female|white|3|South",
            "persona_cell": "30-44|female|white|3|West",
            "gss_id": 8,
        },
        {"cell": "ageband,degree", "respondent": "30-44|female", "persona_cell": "30-44|female|white|3|West"},
        {"cell": "region,division", "respondent": "a|b|c|d|e", "persona_cell": "a|b|c"},
        {"cell": "ageband", "respondent": "18-29|male|x|1|W", "persona_cell": "18-29|female|x|1|W"},
    ],
    "big five scores": [
        {},
        {"norm_group": "M >60"},
        {"norm_group": "F 21-40"},
        {"norm_group": "M <21"},
        {"norm_group": "F 41-60"},
        {"norm_group": ""},
    ],
    "household type": [
        {},
        {"persons": 2},
        {"persons": 1},
        {"persons": "2"},
        {"persons": None},
        {"persons": 2, "role": "child"},
        {"persons": 4, "role": "spouse"},
        {"role": "householder"},
        {"persons": 3, "role": None},
        {"persons": 2, "role": ""},
    ],
    "marital status": [
        {},
        {"donor_household": "married couple"},
        {"donor_household": "living alone"},
        {"donor_household": None},
        {"donor_household": "group quarters"},
        {"var": "MAR", "code": "1"},
    ],
}
TAGS = [{}, {"hobbies": ["wine tasting", "golf"]}, {"hobbies": ["golf"]}, {"lifestyle": ["gardening"]}]


def _fuzzed(g: random.Random, i: int):
    p = make_persona(
        pid=f"p-{i}", **{k.replace(" ", "_"): g.choice(v) for k, v in POOLS.items() if g.random() < 0.7}
    )
    for name, options in DETAILS.items():
        f = p.fields[name]
        p.fields[name] = FieldValue(value=f.value, provenance=f.provenance, detail=g.choice(options))
    return p.model_copy(update={"tags": g.choice(TAGS)})


def _oracle_names(p) -> list[str]:
    return [name for name, _ in rules_oracle.violations(p)]


def test_breakers_agree_with_the_oracle():
    personas = [make() for make in BREAKERS.values()]
    got = [[n for n, _ in v] for v in frame_violations(rules_frame(personas))]
    assert got == [_oracle_names(p) for p in personas]


def test_fuzzed_personas_agree_with_the_oracle():
    g = random.Random(0)
    personas = [_fuzzed(g, i) for i in range(3000)]
    matrix = broken_matrix(rules_frame(personas))
    got = [[name for name in RULE_NAMES if row[name]] for row in matrix.iter_rows(named=True)]
    want = [_oracle_names(p) for p in personas]
    mismatches = [(i, g_, w) for i, (g_, w) in enumerate(zip(got, want)) if g_ != w]
    assert not mismatches, mismatches[:5]
    assert sum(map(bool, want)) > 1000  # the fuzzing does break rules, many of them
    assert {n for w in want for n in w} == set(RULE_NAMES)
    assert validate(personas) == rules_oracle.validate(personas)


def test_reasons_name_the_values():
    (broken,) = frame_violations(rules_frame([BREAKERS["six_figure_income_under_16"]()]))
    assert broken[0] == ("six_figure_income_under_16", "income $120,000 at age 15")
    (cell,) = frame_violations(rules_frame([BREAKERS["survey_cell_mismatch"]()]))
    assert cell == [("survey_cell_mismatch", "GSS respondent 7 has sex=male, persona female")]


def test_real_personas_agree_with_the_oracle(mirror):
    from persona_testbed.personas.sample import sample_personas

    res = sample_personas(
        600, 3, source="acs2018", states=["VT", "WY"], data_dir=mirror, adults_only=False, max_attempts=0
    )
    personas = res.personas
    got = [[n for n, _ in v] for v in frame_violations(rules_frame(personas))]
    assert got == [_oracle_names(p) for p in personas]


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_each_breaker_breaks_only_what_the_oracle_says(rule):
    p = BREAKERS[rule]()
    assert [n for n, _ in frame_violations(rules_frame([p]))[0]] == _oracle_names(p)

import pytest

from factories import make_persona
from persona_testbed.personas.record import FieldValue
from persona_testbed.personas.rules import RULE_NAMES, validate, violations


def _with_detail(p, name, value=None, **detail):
    f = p.fields[name]
    p.fields[name] = FieldValue(
        value=value if value is not None else f.value, provenance=f.provenance, detail={**f.detail, **detail}
    )
    return p


BREAKERS = {
    "graduate_degree_under_18": lambda: make_persona(age="16", education="Master's degree"),
    "six_figure_income_under_16": lambda: make_persona(age="15", income="$120,000"),
    "married_under_15": lambda: make_persona(age="13", marital_status="Married"),
    "fertility_for_male": lambda: make_persona(sex="Male", fertility="Yes"),
    "fertility_outside_15_50": lambda: make_persona(age="58", fertility="Yes"),
    "veteran_under_17": lambda: make_persona(age="16", veteran_status="Now on active duty"),
    "occupation_for_child": lambda: make_persona(age="12", employment_status="N/A (less than 16 years old)"),
    "employment_for_child": lambda: make_persona(
        age="12",
        employment_status="Civilian employed, at work",
        occupation_category="N/A (x)",
        class_of_worker="N/A (x)",
        industry_category="N/A (x)",
    ),
    "employed_without_class_of_worker": lambda: make_persona(class_of_worker="N/A (less than 16 years old)"),
    "us_born_abroad": lambda: make_persona(place_of_birth="Outside the United States (country not recorded)"),
    "english_only_household_speaks_other": lambda: make_persona(ability_to_speak_english="Not well"),
    "alone_with_children": lambda: make_persona(
        household_type="Nonfamily household: Female householder: Living alone"
    ),
    # an imputed "Married" from a donor who lived with a spouse, in the recipient's one-person home
    "married_living_alone": lambda: _with_detail(
        make_persona(
            household_type="Nonfamily household: Female householder: Living alone",
            family_presence_and_age="No children under 18 years in household",
            marital_status="Married",
        ),
        "marital status",
        donor_household="married couple",
    ),
    # never married, yet one of the two persons of a married-couple household
    "married_couple_household_unmarried": lambda: _with_detail(
        make_persona(
            household_type="Married couple household", marital_status="Never married or under 15 years old"
        ),
        "household type",
        persons=2,
    ),
    "no_religion_with_denomination": lambda: _with_detail(
        make_persona(), "religion", "No religion", denomination="southern baptist convention"
    ),
    "survey_cell_mismatch": lambda: _with_detail(
        make_persona(),
        "religion",
        cell="ageband,sex",
        respondent="30-44|male|white|3|South",
        persona_cell="30-44|female|white|3|South",
        gss_id="7",
    ),
    "procedural_age_limits": lambda: make_persona(age="19").model_copy(
        update={"tags": {"hobbies": ["wine tasting"]}}
    ),
    "bigfive_norm_group": lambda: _with_detail(make_persona(), "big five scores", norm_group="M >60"),
}


def test_every_rule_has_a_breaking_persona():
    assert set(BREAKERS) == set(RULE_NAMES)


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_rule_catches_its_breaker(rule):
    p = BREAKERS[rule]()
    names = [n for n, _ in violations(p)]
    assert rule in names, names
    assert validate([p])[rule] == 1


def test_clean_persona_breaks_nothing():
    p = _with_detail(make_persona(), "big five scores", norm_group="F 21-40")
    p = _with_detail(
        p,
        "religion",
        cell="ageband,sex",
        respondent="30-44|female|white|3|South",
        persona_cell="30-44|female|white|3|South",
        denomination=None,
    )
    assert violations(p.model_copy(update={"tags": {"hobbies": ["wine tasting", "golf"]}})) == []
    assert sum(validate([p]).values()) == 0


def test_na_values_do_not_trigger():
    p = make_persona(
        age="12",
        employment_status="N/A (less than 16 years old)",
        occupation_category="N/A (x)",
        class_of_worker="N/A (x)",
        industry_category="N/A (x)",
        income="N/A (less than 15 years old)",
        marital_status="Never married or under 15 years old",
        veteran_status="N/A (less than 17 years old)",
        education="Grade 6",
        fertility="N/A (less than 15 years/greater than 50 years/ male)",
        household_type="Married couple household",
    )
    assert violations(p) == []

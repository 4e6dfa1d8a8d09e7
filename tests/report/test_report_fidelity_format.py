"""The report's census-fidelity format: converted from the personas module's report, or computed from a
reference draw (fallback) — checked against hand-computed TVDs."""

from __future__ import annotations

from factories import make_persona
from persona_testbed.personas.fidelity_document import binned, fidelity_document, from_personas_fidelity


def test_from_personas_fidelity_labels_codes_and_keeps_values():
    rep = {
        "n": 3,
        "source": "acs2018",
        "year": 2018,
        "max_tvd": 0.4,
        "max_tvd_field": "sex",
        "fields": {
            "sex": {
                "compare_on": "code",
                "tvd": 0.4,
                "chi2_p": 0.2,
                "provenance": {"census": 3},
                "top": [
                    {"key": "1", "source": 0.5, "sample": 0.9},
                    {"key": "2", "source": 0.5, "sample": 0.1},
                ],
            },
            "religion": {
                "compare_on": "value vs GSS",
                "tvd": 0.1,
                "chi2_p": 0.9,
                "provenance": {"survey": 3},
                "top": [{"key": "None", "source": 0.3, "sample": 0.4}],
            },
            "mannerisms": {"provenance": {"procedural": 3}},  # not compared: no row
        },
        "intersections": {"age band x sex": {"tvd": 0.5, "chi2_p": 1.0}},
    }
    doc = from_personas_fidelity(rep, lambda field, code: {"1": "Male", "2": "Female"}.get(code))
    rows = {r["field"]: r for r in doc["fields"]}
    assert set(rows) == {"sex", "religion"}
    assert rows["sex"]["source"] == {"Male": 0.5, "Female": 0.5} and rows["sex"]["p_value"] == 0.2
    assert rows["religion"]["sample"] == {"None": 0.4}  # values are not looked up as codes
    assert doc["intersections"] == [{"name": "age band x sex", "tvd": 0.5, "p_value": 1.0}]


def test_reference_draw_fallback_tvd_matches_hand_computation():
    personas = [
        make_persona("a", sex="Male", age="23"),
        make_persona("b", sex="Male", age="70"),
        make_persona("c", sex="Female", age="41"),
    ]
    reference = [make_persona(f"r{i}", sex=("Female" if i % 4 else "Male"), age="30") for i in range(8)]
    doc = fidelity_document(personas, reference, "test")
    rows = {r["field"]: r for r in doc["fields"]}
    # sample: Male 2/3, Female 1/3; reference: Male 2/8, Female 6/8 -> TVD = |2/3 - 1/4| = 5/12
    assert abs(rows["sex"]["tvd"] - 5 / 12) < 1e-4
    # age in bands: sample 18-24, 65+, 35-44 (1/3 each); reference all 25-34 -> TVD 1
    assert rows["age"]["tvd"] == 1.0 and set(rows["age"]["sample"]) == {"18-24", "65+", "35-44", "25-34"} - {
        "25-34"
    }
    assert "mannerisms" not in rows  # free text is not a distribution
    assert (
        binned("income", "$52,000") == "$50,000–99,999"
        and binned("income", "N/A (under 15)") == "N/A (under 15)"
    )

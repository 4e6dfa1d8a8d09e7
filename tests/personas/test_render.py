import pytest

from factories import make_persona
from persona_testbed.personas import PERSONA_FIELDS, render_full, render_list, render_summary
from persona_testbed.personas.mapping import UNAVAILABLE
from persona_testbed.personas.record import FieldValue
from persona_testbed.personas.render import render


def test_full_has_every_field_in_paper_order():
    p = make_persona()
    lines = render_full(p).splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == list(PERSONA_FIELDS)
    assert lines[0] == "age: 34"


def test_list_and_leave_one_out():
    p = make_persona(religion="Jewish")
    out = render_list(p)
    assert "- religion: Jewish" in out.splitlines()
    loo = render_list(p, without={"religion"})
    assert "religion" not in loo and len(loo.splitlines()) == 32
    assert "religion" not in render_full(p, without={"religion"})
    assert "Jewish" not in render_summary(p, without={"religion"})


def test_summary_is_deterministic_and_skips_na():
    p = make_persona(fertility="N/A (less than 15 years/greater than 50 years/ male)")
    s = render_summary(p)
    assert s == render_summary(make_persona(fertility="N/A (less than 15 years/greater than 50 years/ male)"))
    assert s.startswith("Age 34.") and "Fertility" not in s and "\n" not in s
    assert "Job:" not in s  # pending fields are left out


def test_unknown_field_and_format_rejected():
    with pytest.raises(ValueError, match="relig"):
        render_full(make_persona(), without={"relig"})
    with pytest.raises(ValueError, match="format"):
        render(make_persona(), "html")


def test_unavailable_field_is_rendered_as_not_recorded():
    p = make_persona()
    p.fields["ancestry"] = FieldValue(value=UNAVAILABLE, provenance="unavailable", detail={"var": "ANC1P"})
    assert "ancestry: not recorded in this census source" in render_full(p).lower()

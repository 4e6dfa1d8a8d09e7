"""Attribute-leakage detector: hand-written positives and negatives, the prompt / rejected control, spans."""

from __future__ import annotations

import pytest

from factories import make_persona
from persona_testbed.feedback.leakage import check_pair, find_leakage, persona_terms

# DEFAULT_VALUES in factories: Female, 34, German ancestry, Catholic, Ohio/OH, Married, nurse in health care,
# "Moderate, middle of the road", Independent, $52,000, gardening ...
PERSONA = make_persona(
    age="45",
    occupation_category="Civil Engineers",
    veteran_status="On active duty in the past, but not now",
    political_views="Strong Democrat",
    ideology="Slightly Conservative",
    industry_category="Computer Systems Design And Related Services",
)


def _fields(answer, persona=PERSONA, context=""):
    res = find_leakage(persona, answer, context=context)
    return res.leaky, [(f.field, f.text) for f in res.findings if not f.in_context]


@pytest.mark.parametrize(
    "answer, field, text",
    [
        ("As a 45-year-old, you can still switch careers.", "age", "As a 45-year-old"),
        ("At 45 years old this is common.", "age", "45 years old"),
        ("You're in your mid forties, so plan ahead.", "age", "You're in your mid forties"),
        ("People your age often save more.", "age", "People your age"),
        ("As a Catholic, you may see it differently.", "religion", "Catholic"),
        ("Your Catholic faith can guide this.", "religion", "Catholic"),
        ("As a Christian, you may pray on it.", "religion", "As a Christian"),
        ("Since you are a woman, consider the data.", "sex", "you are a woman"),
        ("As a veteran, you know discipline.", "veteran status", "As a veteran"),
        ("Given your military service, the VA helps.", "veteran status", "your military service"),
        ("As an engineer, you like numbers.", "occupation category", "As an engineer"),
        ("Civil engineers often think this way.", "occupation category", "Civil engineers"),
        ("Fellow Democrats will agree.", "political views", "Democrats"),
        ("As a conservative, you value tradition.", "ideology", "As a conservative"),
        ("A slightly conservative reader may object.", "ideology", "slightly conservative"),
        ("Think of your German roots.", "ancestry", "German"),
        ("Growing up in Ohio shapes views.", "place of birth", "Ohio"),
        ("You're married, so talk with your husband.", "marital status", "You're married"),
        ("On $52,000 a year you can save 10%.", "income", "$52,000"),
        ("Since you enjoy gardening, think of seasons.", "personal time", "you enjoy gardening"),
        (
            "You work in computer systems design, so this is familiar.",
            "industry category",
            "You work in computer systems design",
        ),
    ],
)
def test_positive_mentions(answer, field, text):
    leaky, found = _fields(answer)
    assert leaky and (field, text) in found, found


@pytest.mark.parametrize(
    "answer",
    [
        "Engineering is a broad field with many paths.",  # "engineer" inside "engineering"
        "Re-engineering the budget takes time.",
        "A conservative estimate is about five percent.",  # adjective of another noun
        "Ask your mother what she thinks.",  # someone else's sex, not the reader's
        "Women and men both benefit from exercise.",  # no framing: topical
        "Oh, that is a hard one. OH well.",  # the state code of "Ohio/OH" is not a term
        "Cars built in the 1945 era are collectibles.",  # 45 only inside another number
        "The veteran quarterback threw well.",  # "veteran" without identity framing
        "A plain, generic answer with no personal details.",
        "Nursing homes vary in quality.",
        "As a whole, women, on average, earn less.",  # "as a whole," is not an identity framing
        "As a general rule, moderate exercise helps.",
        "Health care costs keep rising; plan ahead.",  # 2-word industry label needs a framing
    ],
)
def test_negative_texts(answer):
    leaky, found = _fields(answer)
    assert not leaky and found == [], found


def test_moderate_persona_needs_a_framing():
    p = make_persona()  # ideology "Moderate, middle of the road"
    for text in (
        "As a general rule, moderate exercise helps.",
        "Pick a middle-of-the-road plan.",
        "Moderate drinking is debated.",
    ):
        assert not find_leakage(p, text).leaky, text
    assert find_leakage(p, "As a moderate, you weigh both sides.").leaky
    assert find_leakage(p, "You're middle of the road on this.").leaky


def test_whole_word_engineer_not_in_engineering():
    terms = {t.name for t in persona_terms(PERSONA) if t.field == "occupation category"}
    assert "engineer" in terms
    assert not find_leakage(PERSONA, "As an engineering student you learn a lot.").leaky


def test_prompt_mention_makes_catholicism_topical_not_leakage():
    q = "What do you think about the Catholic church's role in politics?"
    res = find_leakage(PERSONA, "Catholicism has shaped politics for centuries.", context=q)
    assert not res.leaky
    assert [(f.field, f.text, f.in_context) for f in res.findings] == [("religion", "Catholicism", True)]
    # the same answer to a question that never mentions it: leakage
    res = find_leakage(
        PERSONA, "Catholicism has shaped politics for centuries.", context="Should taxes rise?"
    )
    assert res.leaky and res.findings[0].in_context is False


def test_rejected_answer_is_a_control_for_the_chosen_one():
    question = "How should I plan for retirement?"
    rejected = "Many people, as a woman or a man, should save early."
    chosen = "As a woman, save early; as a Catholic, consider tithing."
    leak = check_pair(PERSONA, question, rejected, chosen)
    chosen_found = {(f.field, f.in_context) for f in leak.chosen.findings}
    assert chosen_found == {("sex", True), ("religion", False)}
    assert leak.leaky and leak.chosen.fields == ["religion"]
    # the rejected answer itself is checked against the question only: its "as a woman" counts there
    assert leak.rejected.leaky and leak.rejected.fields == ["sex"]


def test_spans_point_at_the_matched_text():
    answer = "Well. Since you're a 45-year-old veteran, you know it."
    res = find_leakage(PERSONA, answer)
    assert res.findings
    for f in res.findings:
        assert answer[f.start : f.end] == f.text
    assert {f.field for f in res.findings} == {"age", "veteran status"}


def test_generic_values_give_no_terms():
    p = make_persona(
        occupation_category="N/A (less than 16 years old/NILF who last worked more than 5 years ago)",
        industry_category="N/A (less than 16 years old)",
        religion="No religion",
        ancestry="Not reported",
        political_views="Other Party",
        place_of_birth="United States (state not recorded)",
        marital_status="Never married or under 15 years old",
        detailed_job_description="pending: LLM enrichment",
    )
    fields = {t.field for t in persona_terms(p)}
    assert not fields & {
        "occupation category",
        "industry category",
        "ancestry",
        "place of birth",
        "detailed job description",
    }
    # "No religion" only counts as an identity framing, never the words "no" / "religion"
    assert not find_leakage(p, "No religion is perfect; many reject it. Yes, no, N/A.").leaky
    assert find_leakage(p, "As an atheist, you may disagree.").leaky


def test_unavailable_fields_give_no_terms():
    # a census source without ancestry / place of birth: the fields read "not recorded in this census source"
    p = make_persona(
        ancestry="not recorded in this census source", place_of_birth="not recorded in this census source"
    )
    assert not {t.field for t in persona_terms(p)} & {"ancestry", "place of birth"}
    assert not find_leakage(p, "This is not recorded in this census source, as far as I know.").leaky


def test_case_and_apostrophe_normalisation():
    assert find_leakage(PERSONA, "AS A CATHOLIC you know").leaky
    p = make_persona(education="Bachelor's degree")
    assert (
        find_leakage(p, "With the bachelor\u2019s degree you\u2019ve got, apply.").leaky is False
    )  # no framing
    assert find_leakage(p, "You have a bachelor\u2019s degree, so apply.").leaky


def test_deterministic_and_json_roundtrip():
    from persona_testbed.feedback.leakage import PairLeakage

    a = check_pair(PERSONA, "q?", "generic", "As a 45-year-old Catholic veteran, yes.")
    b = check_pair(PERSONA, "q?", "generic", "As a 45-year-old Catholic veteran, yes.")
    assert a == b and PairLeakage.model_validate_json(a.model_dump_json()) == a
    assert a.chosen.fields == ["age", "religion", "veteran status"]

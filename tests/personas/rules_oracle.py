"""Test oracle: the consistency rules written persona by persona in plain Python (the first
implementation, before the rules became polars expressions). ``test_rules_oracle.py`` checks that the
vectorised rules flag exactly the personas these flag."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from persona_testbed.personas.record import Persona
from persona_testbed.personas.tags import min_age_of

_MONEY = re.compile(r"^(-?)\$([\d,]+)")


def age_of(p: Persona) -> int | None:
    m = re.match(r"^\d+", p.value("age"))
    return int(m.group(0)) if m else None


def income_of(p: Persona) -> int | None:
    m = _MONEY.match(p.value("income").strip())
    if not m:
        return None
    digits = m.group(2).replace(",", "")
    if not digits:  # "$," : the first implementation raised here; the rules read it as no income
        return None
    v = int(digits)
    return -v if m.group(1) else v


def is_na(value: str) -> bool:
    return value.strip().lower().startswith("n/a")


def _low(p: Persona, name: str) -> str:
    return p.value(name).strip().lower()


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: Callable[[Persona], str | None]  # reason when broken, else None


def _under(age: int | None, limit: int) -> bool:
    return age is not None and age < limit


def _graduate_degree_under_18(p: Persona) -> str | None:
    edu = _low(p, "education")
    if _under(age_of(p), 18) and any(w in edu for w in ("master", "professional degree", "doctorate")):
        return f"{p.value('education')} at age {age_of(p)}"
    return None


def _six_figure_income_under_16(p: Persona) -> str | None:
    inc = income_of(p)
    if _under(age_of(p), 16) and inc is not None and inc >= 100_000:
        return f"income {p.value('income')} at age {age_of(p)}"
    return None


def _married_under_15(p: Persona) -> str | None:
    mar = _low(p, "marital status")
    if _under(age_of(p), 15) and mar.split(" ")[0] in ("married", "widowed", "divorced", "separated"):
        return f"{p.value('marital status')} at age {age_of(p)}"
    return None


def _gave_birth(p: Persona) -> bool:
    fer = _low(p, "fertility")
    return fer == "yes" or fer.startswith("gave birth") or fer.startswith("birth in the past")


def _fertility_for_male(p: Persona) -> str | None:
    if _low(p, "sex") == "male" and _gave_birth(p):
        return "male with a birth in the past 12 months"
    return None


def _fertility_outside_15_50(p: Persona) -> str | None:
    age = age_of(p)
    if _gave_birth(p) and age is not None and not 15 <= age <= 50:
        return f"birth in the past 12 months at age {age}"
    return None


def _veteran_under_17(p: Persona) -> str | None:
    mil = p.value("veteran status")
    if _under(age_of(p), 17) and not is_na(mil) and not mil.lower().startswith("never served"):
        return f"{mil} at age {age_of(p)}"
    return None


def _occupation_for_child(p: Persona) -> str | None:
    for name in ("occupation category", "class of worker", "industry category"):
        if _under(age_of(p), 16) and not is_na(p.value(name)):
            return f"{name} {p.value(name)!r} at age {age_of(p)}"
    return None


def _employment_for_child(p: Persona) -> str | None:
    if _under(age_of(p), 16) and not is_na(p.value("employment status")):
        return f"employment status {p.value('employment status')!r} at age {age_of(p)}"
    return None


def _employed_without_class_of_worker(p: Persona) -> str | None:
    esr = _low(p, "employment status")
    if ("employed" in esr and "unemployed" not in esr or esr.startswith("armed forces")) and is_na(
        p.value("class of worker")
    ):
        return f"{p.value('employment status')} but class of worker N/A"
    return None


def _us_born_abroad(p: Persona) -> str | None:
    cit = _low(p, "citizenship")
    pob = p.fields["place of birth"]
    if cit.startswith("born in the united states") and (
        pob.value.lower().startswith("outside the united states")
        or (
            pob.detail.get("var") == "POBP"
            and str(pob.detail.get("code", "0")).isdigit()
            and int(pob.detail["code"]) >= 100
        )
    ):
        return f"citizenship {p.value('citizenship')!r} but born in {pob.value}"
    return None


def _english_only_household_speaks_other(p: Persona) -> str | None:
    hhl = _low(p, "household language")
    eng = p.value("ability to speak english")
    if hhl == "english only" and eng and not is_na(eng):
        return f"household English only but ability to speak English is {eng!r}"
    return None


def _alone_with_children(p: Persona) -> str | None:
    hht = _low(p, "household type")
    fam = _low(p, "family presence and age")
    if (
        "living alone" in hht
        and "not living alone" not in hht
        and fam.startswith(("with ", "lives with"))
        and not fam.startswith("with no ")
    ):
        return f"{p.value('household type')} but {p.value('family presence and age')}"
    return None


def _no_religion_with_denomination(p: Persona) -> str | None:
    rel = p.fields["religion"]
    denom = rel.detail.get("denomination")
    if (
        rel.value.lower() in ("no religion", "none")
        and denom
        and not str(denom)
        .lower()
        .startswith(("no denomination", "not applicable", "iap", "don't know", "no answer"))
    ):
        return f"no religion but denomination {denom!r}"
    return None


def _living_alone(p: Persona) -> bool:
    hht = _low(p, "household type")
    return "living alone" in hht and "not living alone" not in hht


def _married_living_alone(p: Persona) -> str | None:
    donor_home = p.fields["marital status"].detail.get("donor_household") or ""
    if _low(p, "marital status") == "married" and _living_alone(p) and donor_home not in ("", "living alone"):
        return (
            f"married and living alone, but the marital status came from a donor in a {donor_home} household"
        )
    return None


def _married_couple_household_unmarried(p: Persona) -> str | None:
    detail = p.fields["household type"].detail
    role = detail.get("role") or ""
    persons = detail.get("persons")
    try:
        two = int(str(persons)) == 2
    except ValueError:
        two = False
    member = role in ("householder", "spouse") if role else two
    if (
        _low(p, "household type") == "married couple household"
        and member
        and _low(p, "marital status") != "married"
    ):
        who = role or "householder or spouse (2 persons)"
        return f"'{p.value('marital status')}' but the {who} of a married-couple household"
    return None


def _survey_cell_mismatch(p: Persona) -> str | None:
    """The GSS respondent must match the persona on the cell variables of its back-off level."""
    detail = p.fields["religion"].detail
    cell = detail.get("cell")
    respondent = detail.get("respondent")
    persona_cell = detail.get("persona_cell")
    if not cell or not respondent or not persona_cell:
        return None
    names = ("ageband", "sex", "raceeth", "degree", "region")
    r = dict(zip(names, respondent.split("|")))
    c = dict(zip(names, persona_cell.split("|")))
    for var in cell.split(","):
        if var in r and r[var] != c.get(var):
            return f"GSS respondent {detail.get('gss_id')} has {var}={r[var]}, persona {c.get(var)}"
    return None


def _procedural_age_limits(p: Persona) -> str | None:
    age = age_of(p)
    for kind, entries in p.tags.items():
        for text in entries:
            need = min_age_of(kind, text)
            if need and (age is None or age < need):
                return f"{kind} tag {text!r} needs age {need}+"
    return None


def _bigfive_norm_group(p: Persona) -> str | None:
    detail = p.fields["big five scores"].detail
    group = detail.get("norm_group")
    age = age_of(p)
    if not group or age is None:
        return None
    sex = "F" if _low(p, "sex") == "female" else "M"
    expect = "<21" if age < 21 else "21-40" if age <= 40 else "41-60" if age <= 60 else ">60"
    if group != f"{sex} {expect}":
        return f"Big Five norm group {group} for a {sex} aged {age}"
    return None


RULES: tuple[Rule, ...] = (
    Rule(
        "graduate_degree_under_18",
        "master's, professional or doctoral degree under age 18",
        _graduate_degree_under_18,
    ),
    Rule(
        "six_figure_income_under_16", "income of $100,000 or more under age 16", _six_figure_income_under_16
    ),
    Rule("married_under_15", "ever married under age 15", _married_under_15),
    Rule("fertility_for_male", "a male with a birth in the past 12 months", _fertility_for_male),
    Rule(
        "fertility_outside_15_50",
        "a birth in the past 12 months outside ages 15-50",
        _fertility_outside_15_50,
    ),
    Rule("veteran_under_17", "military service under age 17", _veteran_under_17),
    Rule(
        "occupation_for_child", "occupation, industry or class of worker under age 16", _occupation_for_child
    ),
    Rule("employment_for_child", "an employment status under age 16", _employment_for_child),
    Rule(
        "employed_without_class_of_worker",
        "employed but class of worker N/A",
        _employed_without_class_of_worker,
    ),
    Rule(
        "us_born_abroad",
        "born in the United States by citizenship but born abroad by place of birth",
        _us_born_abroad,
    ),
    Rule(
        "english_only_household_speaks_other",
        "English-only household but the person speaks another language",
        _english_only_household_speaks_other,
    ),
    Rule("alone_with_children", "living alone yet living with children", _alone_with_children),
    Rule(
        "married_living_alone",
        "married and living alone without an absent spouse on record",
        _married_living_alone,
    ),
    Rule(
        "married_couple_household_unmarried",
        "householder or spouse of a married-couple household not married",
        _married_couple_household_unmarried,
    ),
    Rule("no_religion_with_denomination", "no religion but a denomination", _no_religion_with_denomination),
    Rule(
        "survey_cell_mismatch",
        "GSS respondent differs from the persona on a matched cell variable",
        _survey_cell_mismatch,
    ),
    Rule(
        "procedural_age_limits", "an age-limited activity tag below its minimum age", _procedural_age_limits
    ),
    Rule("bigfive_norm_group", "Big Five drawn from the wrong sex x age norm group", _bigfive_norm_group),
)
RULE_NAMES = tuple(r.name for r in RULES)


def violations(p: Persona) -> list[tuple[str, str]]:
    """(rule name, reason) for every rule the persona breaks, in rule order."""
    out = []
    for rule in RULES:
        reason = rule.check(p)
        if reason:
            out.append((rule.name, reason))
    return out


def validate(personas: list[Persona]) -> dict[str, int]:
    """Count of personas breaking each rule (all rules listed, zeros included)."""
    counts = {name: 0 for name in RULE_NAMES}
    for p in personas:
        for name, _ in violations(p):
            counts[name] += 1
    return counts

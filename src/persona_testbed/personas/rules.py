"""Consistency rules: a deterministic validator with named rules, run on every persona.

Each rule is a pair of polars expressions over a *rules frame* (one row per persona: ``v:<field>`` values,
``d:<field>`` detail JSON, ``t:<kind>`` tag lists — the layout ``build.map_frame`` produces): whether the
persona breaks it, and a short reason. The same expressions check a million mapped rows at once and a
single ``Persona`` (through :func:`rules_frame`), so there is one definition of every rule.

Census records are edited by the Bureau and rarely break a rule; imputed, derived, survey and procedural
fields can, and a breaking persona is resampled (see ``sample.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from .frames import personas_frame
from .record import Persona
from .tags import TAG_KINDS, vocabulary

#: the detail keys the rules read, by field
DETAIL_KEYS: dict[str, tuple[str, ...]] = {
    "place of birth": ("var", "code"),
    "religion": ("denomination", "cell", "respondent", "persona_cell", "gss_id"),
    "big five scores": ("norm_group",),
    "household type": ("persons", "role"),
    "marital status": ("donor_household",),
}
#: GSS cell variables in the order of the ``respondent`` / ``persona_cell`` texts (survey.py)
CELL_NAMES = ("ageband", "sex", "raceeth", "degree", "region")


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    broken: Callable[[], pl.Expr]  # true where a persona breaks the rule (never null)
    reason: Callable[[], pl.Expr]  # why, for the rows where it is broken


# ---- reading the rules frame --------------------------------------------------------------------------
def _v(name: str) -> pl.Expr:
    return pl.col(f"v:{name}").fill_null("")


def _low(name: str) -> pl.Expr:
    return _v(name).str.strip_chars().str.to_lowercase()


def _is_na(value: pl.Expr) -> pl.Expr:
    return value.str.strip_chars().str.to_lowercase().str.starts_with("n/a")


def _detail(name: str, key: str) -> pl.Expr:
    """A detail key as text (numbers as their JSON text), from the decoded column of :func:`_decoded`."""
    return pl.col(f"_d:{name}").struct.field(key)


def _decoded(frame: pl.DataFrame) -> pl.LazyFrame:
    """The rules frame with each rule-read detail decoded once into a struct of its keys (``_d:<field>``)."""
    return frame.lazy().with_columns(
        pl.col(f"d:{name}").str.json_decode(pl.Struct({k: pl.Utf8 for k in keys})).alias(f"_d:{name}")
        for name, keys in DETAIL_KEYS.items()
    )


def _age() -> pl.Expr:
    return _v("age").str.extract(r"^(\d+)", 1).cast(pl.Int64, strict=False)


def _income() -> pl.Expr:
    m = _v("income").str.strip_chars().str.extract_groups(r"^(-?)\$([\d,]+)")
    amount = m.struct.field("2").str.replace_all(",", "", literal=True).cast(pl.Int64, strict=False)
    return pl.when(m.struct.field("1") == "-").then(-amount).otherwise(amount)


def _under(limit: int) -> pl.Expr:
    return (_age() < limit).fill_null(False)


def _at_age(text: pl.Expr) -> pl.Expr:
    return pl.concat_str([text, pl.lit(" at age "), _age().cast(pl.Utf8)])


def _quoted(value: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit("'"), value, pl.lit("'")])


def _gave_birth() -> pl.Expr:
    fer = _low("fertility")
    return (fer == "yes") | fer.str.starts_with("gave birth") | fer.str.starts_with("birth in the past")


# ---- the rules ----------------------------------------------------------------------------------------
def _graduate_degree_under_18() -> pl.Expr:
    edu = _low("education")
    return _under(18) & pl.any_horizontal(
        [edu.str.contains(w, literal=True) for w in ("master", "professional degree", "doctorate")]
    )


def _married_under_15() -> pl.Expr:
    first = _low("marital status").str.split(" ").list.first()
    return _under(15) & first.is_in(["married", "widowed", "divorced", "separated"]).fill_null(False)


def _veteran_under_17() -> pl.Expr:
    mil = _v("veteran status")
    return _under(17) & ~_is_na(mil) & ~mil.str.to_lowercase().str.starts_with("never served")


_CHILD_WORK = ("occupation category", "class of worker", "industry category")


def _occupation_for_child() -> pl.Expr:
    return _under(16) & pl.any_horizontal([~_is_na(_v(name)) for name in _CHILD_WORK])


def _occupation_for_child_reason() -> pl.Expr:
    expr = pl.when(pl.lit(False)).then(pl.lit(None, dtype=pl.Utf8))
    for name in _CHILD_WORK:
        expr = expr.when(~_is_na(_v(name))).then(
            _at_age(pl.concat_str([pl.lit(f"{name} "), _quoted(_v(name))]))
        )
    return expr.otherwise(pl.lit(None, dtype=pl.Utf8))


def _employed_without_class_of_worker() -> pl.Expr:
    esr = _low("employment status")
    employed = (
        esr.str.contains("employed", literal=True) & ~esr.str.contains("unemployed", literal=True)
    ) | esr.str.starts_with("armed forces")
    return employed & _is_na(_v("class of worker"))


def _us_born_abroad() -> pl.Expr:
    code = _detail("place of birth", "code")
    abroad_code = (
        (_detail("place of birth", "var") == "POBP")
        & code.str.contains(r"^\d+$")
        & (code.cast(pl.Int64, strict=False) >= 100)
    )
    abroad = _v("place of birth").str.to_lowercase().str.starts_with(
        "outside the united states"
    ) | abroad_code.fill_null(False)
    return _low("citizenship").str.starts_with("born in the united states") & abroad


def _english_only_household_speaks_other() -> pl.Expr:
    eng = _v("ability to speak english")
    return (_low("household language") == "english only") & (eng != "") & ~_is_na(eng)


def _alone_with_children() -> pl.Expr:
    hht, fam = _low("household type"), _low("family presence and age")
    return (
        hht.str.contains("living alone", literal=True)
        & ~hht.str.contains("not living alone", literal=True)
        & (fam.str.starts_with("with ") | fam.str.starts_with("lives with"))
        & ~fam.str.starts_with("with no ")
    )


def _married() -> pl.Expr:
    return _low("marital status") == "married"


def _living_alone() -> pl.Expr:
    hht = _low("household type")
    return hht.str.contains("living alone", literal=True) & ~hht.str.contains(
        "not living alone", literal=True
    )


def _married_living_alone() -> pl.Expr:
    """Married and living alone is a married person whose spouse lives elsewhere (spouse absent): the
    census says so when it codes both on the person's own record, an imputed marital status only when
    its donor also lived alone."""
    donor_home = _detail("marital status", "donor_household").fill_null("")
    return _married() & _living_alone() & (donor_home != "") & (donor_home != "living alone")


def _couple_member() -> pl.Expr:
    """The persona is the householder or the spouse: by relationship code where the source has one, else
    because a married-couple household of two persons is the couple."""
    role = _detail("household type", "role").fill_null("")
    persons = _detail("household type", "persons").cast(pl.Int64, strict=False)
    return (
        pl.when(role != "")
        .then(role.is_in(["householder", "spouse"]))
        .otherwise((persons == 2).fill_null(False))
    )


def _married_couple_household_unmarried() -> pl.Expr:
    return (_low("household type") == "married couple household") & _couple_member() & ~_married()


_NOT_A_DENOMINATION = ("no denomination", "not applicable", "iap", "don't know", "no answer")


def _no_religion_with_denomination() -> pl.Expr:
    denom = _detail("religion", "denomination").fill_null("")
    low = denom.str.to_lowercase()
    return (
        _v("religion").str.to_lowercase().is_in(["no religion", "none"])
        & (denom != "")
        & ~pl.any_horizontal([low.str.starts_with(w) for w in _NOT_A_DENOMINATION])
    )


def _cell_mismatch_of(i: int, name: str) -> pl.Expr:
    cell = _detail("religion", "cell").fill_null("")
    present = (
        (cell != "")
        & (_detail("religion", "respondent").fill_null("") != "")
        & (_detail("religion", "persona_cell").fill_null("") != "")
    )
    resp = _detail("religion", "respondent").str.split("|")
    pers = _detail("religion", "persona_cell").str.split("|")
    r = resp.list.get(i, null_on_oob=True)
    c = pers.list.get(i, null_on_oob=True)
    return (present & cell.str.split(",").list.contains(name) & r.is_not_null() & r.ne_missing(c)).fill_null(
        False
    )


def _survey_cell_mismatch() -> pl.Expr:
    """The GSS respondent must match the persona on the cell variables of its back-off level."""
    return pl.any_horizontal([_cell_mismatch_of(i, name) for i, name in enumerate(CELL_NAMES)])


def _survey_cell_mismatch_reason() -> pl.Expr:
    expr = pl.when(pl.lit(False)).then(pl.lit(None, dtype=pl.Utf8))
    resp = _detail("religion", "respondent").str.split("|")
    pers = _detail("religion", "persona_cell").str.split("|")
    for i, name in enumerate(CELL_NAMES):
        expr = expr.when(_cell_mismatch_of(i, name)).then(
            pl.concat_str(
                [
                    pl.lit("GSS respondent "),
                    _detail("religion", "gss_id").fill_null("?"),
                    pl.lit(f" has {name}="),
                    resp.list.get(i, null_on_oob=True),
                    pl.lit(", persona "),
                    pers.list.get(i, null_on_oob=True).fill_null("None"),
                ]
            )
        )
    return expr.otherwise(pl.lit(None, dtype=pl.Utf8))


def _limited_tags() -> list[tuple[str, str, int]]:
    """(kind, entry, minimum age) of every age-limited vocabulary entry."""
    return [(kind, e.text, e.min_age) for kind in TAG_KINDS for e in vocabulary(kind) if e.min_age]


def _tag_too_young(kind: str, text: str, need: int) -> pl.Expr:
    has = pl.col(f"t:{kind}").list.contains(text).fill_null(False)
    return has & (_age().is_null() | (_age() < need))


def _procedural_age_limits() -> pl.Expr:
    checks = [_tag_too_young(*t) for t in _limited_tags()]
    return pl.any_horizontal(checks) if checks else pl.lit(False)


def _procedural_age_limits_reason() -> pl.Expr:
    expr = pl.when(pl.lit(False)).then(pl.lit(None, dtype=pl.Utf8))
    for kind, text, need in _limited_tags():
        expr = expr.when(_tag_too_young(kind, text, need)).then(
            pl.lit(f"{kind} tag {text!r} needs age {need}+")
        )
    return expr.otherwise(pl.lit(None, dtype=pl.Utf8))


def _expected_norm_group() -> pl.Expr:
    age = _age()
    sex = pl.when(_low("sex") == "female").then(pl.lit("F")).otherwise(pl.lit("M"))
    band = (
        pl.when(age < 21)
        .then(pl.lit("<21"))
        .when(age <= 40)
        .then(pl.lit("21-40"))
        .when(age <= 60)
        .then(pl.lit("41-60"))
        .otherwise(pl.lit(">60"))
    )
    return pl.concat_str([sex, pl.lit(" "), band])


def _bigfive_norm_group() -> pl.Expr:
    group = _detail("big five scores", "norm_group").fill_null("")
    return ((group != "") & _age().is_not_null() & (group != _expected_norm_group())).fill_null(False)


RULES: tuple[Rule, ...] = (
    Rule(
        "graduate_degree_under_18",
        "master's, professional or doctoral degree under age 18",
        _graduate_degree_under_18,
        lambda: _at_age(_v("education")),
    ),
    Rule(
        "six_figure_income_under_16",
        "income of $100,000 or more under age 16",
        lambda: _under(16) & (_income() >= 100_000).fill_null(False),
        lambda: _at_age(pl.concat_str([pl.lit("income "), _v("income")])),
    ),
    Rule(
        "married_under_15",
        "ever married under age 15",
        _married_under_15,
        lambda: _at_age(_v("marital status")),
    ),
    Rule(
        "fertility_for_male",
        "a male with a birth in the past 12 months",
        lambda: (_low("sex") == "male") & _gave_birth(),
        lambda: pl.lit("male with a birth in the past 12 months"),
    ),
    Rule(
        "fertility_outside_15_50",
        "a birth in the past 12 months outside ages 15-50",
        lambda: _gave_birth() & (~_age().is_between(15, 50)).fill_null(False),
        lambda: pl.concat_str([pl.lit("birth in the past 12 months at age "), _age().cast(pl.Utf8)]),
    ),
    Rule(
        "veteran_under_17",
        "military service under age 17",
        _veteran_under_17,
        lambda: _at_age(_v("veteran status")),
    ),
    Rule(
        "occupation_for_child",
        "occupation, industry or class of worker under age 16",
        _occupation_for_child,
        _occupation_for_child_reason,
    ),
    Rule(
        "employment_for_child",
        "an employment status under age 16",
        lambda: _under(16) & ~_is_na(_v("employment status")),
        lambda: _at_age(pl.concat_str([pl.lit("employment status "), _quoted(_v("employment status"))])),
    ),
    Rule(
        "employed_without_class_of_worker",
        "employed but class of worker N/A",
        _employed_without_class_of_worker,
        lambda: pl.concat_str([_v("employment status"), pl.lit(" but class of worker N/A")]),
    ),
    Rule(
        "us_born_abroad",
        "born in the United States by citizenship but born abroad by place of birth",
        _us_born_abroad,
        lambda: pl.concat_str(
            [
                pl.lit("citizenship "),
                _quoted(_v("citizenship")),
                pl.lit(" but born in "),
                _v("place of birth"),
            ]
        ),
    ),
    Rule(
        "english_only_household_speaks_other",
        "English-only household but the person speaks another language",
        _english_only_household_speaks_other,
        lambda: pl.concat_str(
            [
                pl.lit("household English only but ability to speak English is "),
                _quoted(_v("ability to speak english")),
            ]
        ),
    ),
    Rule(
        "alone_with_children",
        "living alone yet living with children",
        _alone_with_children,
        lambda: pl.concat_str([_v("household type"), pl.lit(" but "), _v("family presence and age")]),
    ),
    Rule(
        "married_living_alone",
        "married and living alone without an absent spouse on record",
        _married_living_alone,
        lambda: pl.concat_str(
            [
                pl.lit("married and living alone, but the marital status came from a donor in a "),
                _detail("marital status", "donor_household"),
                pl.lit(" household"),
            ]
        ),
    ),
    Rule(
        "married_couple_household_unmarried",
        "householder or spouse of a married-couple household not married",
        _married_couple_household_unmarried,
        lambda: pl.concat_str(
            [
                _quoted(_v("marital status")),
                pl.lit(" but the "),
                pl.when(_detail("household type", "role").fill_null("") != "")
                .then(_detail("household type", "role"))
                .otherwise(pl.lit("householder or spouse (2 persons)")),
                pl.lit(" of a married-couple household"),
            ]
        ),
    ),
    Rule(
        "no_religion_with_denomination",
        "no religion but a denomination",
        _no_religion_with_denomination,
        lambda: pl.concat_str(
            [pl.lit("no religion but denomination "), _quoted(_detail("religion", "denomination"))]
        ),
    ),
    Rule(
        "survey_cell_mismatch",
        "GSS respondent differs from the persona on a matched cell variable",
        _survey_cell_mismatch,
        _survey_cell_mismatch_reason,
    ),
    Rule(
        "procedural_age_limits",
        "an age-limited activity tag below its minimum age",
        _procedural_age_limits,
        _procedural_age_limits_reason,
    ),
    Rule(
        "bigfive_norm_group",
        "Big Five drawn from the wrong sex x age norm group",
        _bigfive_norm_group,
        lambda: pl.concat_str(
            [
                pl.lit("Big Five norm group "),
                _detail("big five scores", "norm_group"),
                pl.lit(" for a "),
                pl.when(_low("sex") == "female").then(pl.lit("F")).otherwise(pl.lit("M")),
                pl.lit(" aged "),
                _age().cast(pl.Utf8),
            ]
        ),
    ),
)
RULE_NAMES = tuple(r.name for r in RULES)


# ---- running them -------------------------------------------------------------------------------------
def rules_frame(personas: Sequence[Persona]) -> pl.DataFrame:
    """The rules frame of ``Persona`` records: their mapped-frame layout (``frames.personas_frame``)."""
    return personas_frame(personas)


def broken_matrix(frame: pl.DataFrame) -> pl.DataFrame:
    """One boolean column per rule (in rule order): whether each row of a rules frame breaks it."""
    # lazy, so polars computes each shared sub-expression (the age, a split cell) once
    return _decoded(frame).select([r.broken().fill_null(False).alias(r.name) for r in RULES]).collect()


def frame_violations(frame: pl.DataFrame) -> list[list[tuple[str, str]]]:
    """Per row of a rules frame: (rule name, reason) for every rule it breaks, in rule order."""
    matrix = broken_matrix(frame)
    out: list[list[tuple[str, str]]] = [[] for _ in range(frame.height)]
    for rule in RULES:
        rows = matrix[rule.name].arg_true()
        if len(rows):
            reasons = (
                _decoded(frame[rows])
                .select(rule.reason().fill_null(rule.description).alias("r"))
                .collect()["r"]
                .to_list()
            )
            for i, reason in zip(rows.to_list(), reasons):
                out[i].append((rule.name, reason))
    return out


def violations(p: Persona) -> list[tuple[str, str]]:
    """(rule name, reason) for every rule the persona breaks, in rule order."""
    return frame_violations(rules_frame([p]))[0]


def validate(personas: Sequence[Persona]) -> dict[str, int]:
    """Count of personas breaking each rule (all rules listed, zeros included)."""
    if not personas:
        return {name: 0 for name in RULE_NAMES}
    counts = broken_matrix(rules_frame(list(personas))).sum().row(0)
    return {name: int(c) for name, c in zip(RULE_NAMES, counts)}

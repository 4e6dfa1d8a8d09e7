"""Attribute leakage: does an answer explicitly name the persona's attributes?

The DPF ``chosen`` answer must be a *subtle, indirect* revision: it may fit the persona, but must not say
"as a 45-year-old Catholic nurse". This module finds such explicit mentions deterministically (regular
expressions built from the persona's own field values; no model). A text-only persona (provenance
``external``, e.g. from the PERSONA release) has no field values: it gives no terms and its pairs stay
unchecked (:func:`can_check`).

Each persona field yields *terms*, in one of two modes:

- ``label``: specific enough to count wherever it occurs as a whole word (case-insensitive): a religion
  ("Catholic", also "Catholics", "Catholicism"), a party ("Democrat"), an ancestry ("Irish"), a multi-word
  occupation ("registered nurse"), an exact age ("45-year-old"), an income ("$52,000"), a place of birth
  ("Ohio"), a hobby phrase of three or more words copied from the persona;
- ``identity``: too common to count alone ("woman", "conservative", "married", "nurse", "construction"),
  counted only in an identity framing right before it, in the same clause: ``as a(n) / as someone ...``
  (up to three words between), ``you are / you're / you were / you've been / you have / you work in /
  you enjoy ...`` (up to three words between), and, for fields where a possessive names the attribute,
  ``your ...`` ("your Catholic faith", "your thirties"; not for sex: "your mother" is someone else).

Generic values are skipped: ``N/A ...``, ``pending ...``, ``Yes`` / ``No``, ``Not reported``, ``Other ...``,
values that are only the default ("English only", "Born in the United States", "Without a disability").

**Control.** A term that also occurs (any variant of it, e.g. "Catholic" for "Catholicism") in the
*context* is about the topic, not the persona: the finding is kept with ``in_context = True`` for audit
but does not count as leakage. For a chosen answer the context is the question and the rejected answer
(written without the persona); for the rejected answer itself it is the question only, so the rejected
answer's leakage rate estimates the detector's false-positive rate.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from ..personas.record import Persona

LEAKAGE_VERSION = "leak-v1"

Mode = Literal["label", "identity"]


class LeakageFinding(BaseModel):
    """One explicit mention of a persona attribute in an answer."""

    field: str  # the persona field, e.g. "religion"
    mode: Mode  # "label": the value itself; "identity": an "as a ..." / "you are ..." framing
    term: str  # the persona-derived term that matched (normalised)
    text: str  # the matched text in the answer (framing included)
    start: int  # character span of ``text`` in the answer
    end: int
    in_context: bool = False  # the term also occurs in the context (question / rejected): not leakage


class AnswerLeakage(BaseModel):
    """Findings in one answer; ``leaky`` when at least one finding is not explained by the context."""

    leaky: bool = False
    findings: list[LeakageFinding] = Field(default_factory=list)

    @property
    def fields(self) -> list[str]:
        """Fields with at least one counted (not in-context) finding, sorted."""
        return sorted({f.field for f in self.findings if not f.in_context})


class PairLeakage(BaseModel):
    """Leakage check of a pair: the chosen answer (context: question + rejected) and, as a control, the
    rejected answer (context: question only; it never saw the persona)."""

    version: str = LEAKAGE_VERSION
    leaky: bool = False  # copy of chosen.leaky, for filtering
    chosen: AnswerLeakage = Field(default_factory=AnswerLeakage)
    rejected: AnswerLeakage = Field(default_factory=AnswerLeakage)


@dataclass(frozen=True)
class Term:
    """A persona-derived term: a regex for its variants and how it must be framed to count."""

    field: str
    name: str  # normalised display form
    pattern: re.Pattern[str]
    mode: Mode
    possessive: bool = True  # identity mode: "your <term>" also counts


# ----------------------------------------------------------------------------------------------- building

_GENERIC_VALUE = re.compile(
    r"^\s*(n/?a\b|pending\b|yes$|no$|none\b|not reported|not recorded|unknown|other\b|some other|unclassified|"
    r"english only|born in the united states|without a disability|with health insurance|"
    r"never served|no children|civilian employed|employee of a private for-profit|"
    r"not in labor force|very well$|well$|no birth|independent \(neither)",
    re.IGNORECASE,
)
_STOP = {
    "a",
    "an",
    "the",
    "and",
    "or",
    "of",
    "in",
    "on",
    "at",
    "for",
    "to",
    "with",
    "without",
    "by",
    "from",
    "as",
    "other",
    "all",
    "misc",
    "miscellaneous",
    "not",
    "no",
    "only",
    "alone",
    "some",
    "except",
    "including",
    "related",
    "services",
    "service",
    "activities",
    "products",
    "manufacturing",
    "workers",
    "worker",
    "occupations",
    "operators",
    "operator",
    "general",
    "specialty",
    "first-line",
    "hand",
    "their",
    "own",
    "various",
    "n/a",
    "etc",
    "new",
    "more",
    "less",
    "than",
    "just",
    "very",
    "slightly",
    "extremely",
    "strong",
    "places",
    "stores",
    "store",
    "retailers",
    "wholesalers",
    "industries",
}
_GENERIC_HEADS = {
    "worker",
    "manager",
    "supervisor",
    "operator",
    "assistant",
    "specialist",
    "helper",
    "attendant",
    "aide",
    "tender",
    "setter",
    "mover",
    "repairer",
    "installer",
    "clerk",
    "agent",
    "representative",
    "occupation",
    "personnel",
    "staff",
    "professional",
}
# too common to count alone ("English" is also the language of every answer)
_GENERIC_ANCESTRY = {
    "american",
    "white",
    "european",
    "african",
    "black",
    "other",
    "not reported",
    "unclassified",
    "english",
}
_GENERIC_PLACES = {
    "united states",
    "the united states",
    "u.s.",
    "us",
    "usa",
    "america",
    "outside the united states",
    "abroad",
}

_APOS = "['\u2019]"


def _word_re(word: str) -> str:
    return "".join(_APOS if ch in "'\u2019" else (r"\." if ch == "." else re.escape(ch)) for ch in word)


def _phrase_re(phrase: str, plural: bool = True) -> str:
    """Whole-word, case-insensitive regex for ``phrase``; spaces/hyphens interchangeable, last word may be
    plural (``nurse`` -> ``nurses``) when ``plural``."""
    words = [w for w in re.split(r"[\s\-]+", phrase.strip()) if w]
    parts = [_word_re(w) for w in words]
    if plural and words and words[-1][-1:].isalpha():
        parts[-1] += "(?:s|es)?"
    return r"(?<![\w$])" + r"[\s\-]+".join(parts) + r"(?!\w)"


def _singular(word: str) -> str:
    w = word.lower()
    if w in ("men", "women"):
        return w[:-2] + "an"
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and re.search(r"(ches|shes|sses|xes)$", w):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u2019", "'")).strip().lower()


class _Builder:
    def __init__(self) -> None:
        self.terms: list[Term] = []
        self._seen: set[tuple[str, str, str]] = set()

    def add(
        self,
        field: str,
        phrases: Iterable[str],
        mode: Mode,
        *,
        possessive: bool = True,
        plural: bool = True,
        regex: str | None = None,
    ) -> None:
        for phrase in phrases:
            name = _norm(phrase)
            if (
                not name
                or (mode == "label" and regex is None and name in _STOP)
                or (field, name) in self._seen
            ):
                continue
            self._seen.add((field, name))
            variants = [_phrase_re(name, plural)]
            if name in ("woman", "man"):
                variants.append(_phrase_re(name[:-2] + "en", False))
            pat = re.compile(regex if regex is not None else "|".join(variants), re.IGNORECASE)
            self.terms.append(Term(field, name, pat, mode, possessive))


_RELIGION = {
    "catholic": ["catholic", "catholicism", "roman catholic"],
    "protestant": ["protestant", "protestantism", "evangelical"],
    "christian": ["christian", "christianity"],
    "orthodox christian": ["orthodox christian", "eastern orthodox", "greek orthodox", "russian orthodox"],
    "jewish": ["jewish", "jew", "judaism"],
    "muslim": ["muslim", "islam", "islamic"],
    "hindu": ["hindu", "hinduism"],
    "buddhist": ["buddhist", "buddhism"],
    "native american religion": ["native american religion", "native american spirituality"],
    "inter-nondenominational": ["nondenominational", "non-denominational", "interdenominational"],
}
_RELIGION_IDENTITY = {
    "no religion": [
        "atheist",
        "agnostic",
        "non-religious",
        "nonreligious",
        "nonbeliever",
        "non-believer",
        "not religious",
    ],
    "other religion": ["religious", "person of faith"],
}
_EDUCATION = [
    ("doctorate", ["doctorate", "phd", "ph.d.", "doctoral degree"]),
    ("professional degree", ["professional degree", "law degree", "medical degree", "graduate degree"]),
    ("master", ["master's degree", "master's", "masters degree", "graduate degree"]),
    (
        "bachelor",
        [
            "bachelor's degree",
            "bachelor's",
            "bachelors degree",
            "college degree",
            "college graduate",
            "college grad",
        ],
    ),
    ("associate", ["associate's degree", "associate degree", "community college degree"]),
    ("ged", ["ged"]),
    ("high school diploma", ["high school diploma", "high school graduate", "high school education"]),
    ("no schooling", ["no schooling", "no formal education", "no formal schooling"]),
    ("college credit", ["some college", "college credit", "college dropout"]),
    ("less than 1 year", ["some college", "college dropout"]),
    ("grade", ["high school dropout", "no diploma", "no high school diploma"]),
]
_BIG_FIVE = {
    ("extraversion", "low"): ["introvert", "introverted", "shy", "reserved"],
    ("extraversion", "high"): ["extrovert", "extroverted", "extravert", "outgoing"],
    ("neuroticism", "high"): ["anxious", "neurotic", "worrier", "worried type"],
    ("neuroticism", "low"): ["calm", "even-keeled", "unflappable"],
    ("conscientiousness", "high"): ["organized", "conscientious", "disciplined", "meticulous"],
    ("conscientiousness", "low"): ["disorganized", "spontaneous"],
    ("openness", "high"): ["open-minded", "curious", "creative"],
    ("openness", "low"): ["traditional", "set in your ways"],
    ("agreeableness", "high"): ["agreeable", "easygoing", "easy-going"],
    ("agreeableness", "low"): ["disagreeable", "blunt", "skeptical"],
}
_NUMBER_WORDS = {
    2: "twenties",
    3: "thirties",
    4: "forties",
    5: "fifties",
    6: "sixties",
    7: "seventies",
    8: "eighties",
    9: "nineties",
}


def _chunks(label: str) -> list[str]:
    """Occupation / industry label -> phrases: drop parentheses and 'except/including ...' clauses, split on
    commas, slashes, 'and', 'or', 'of', drop generic words at the edges."""
    text = re.sub(r"\([^)]*\)?", " ", label)
    text = re.split(
        r",?\s+\b(?:except|including|excluding|and related|n\.e\.c)\b", text, flags=re.IGNORECASE
    )[0]
    out = []
    for chunk in re.split(r"[,/;&]|\b(?:and|or|of)\b", text, flags=re.IGNORECASE):
        words = [w for w in re.split(r"\s+", chunk.strip()) if w]
        while words and words[0].lower() in _STOP:
            words.pop(0)
        while words and words[-1].lower() in _STOP:
            words.pop()
        if words:
            out.append(" ".join(words))
    return out


def _free_items(value: str) -> list[str]:
    if len(value) > 200:
        return []
    return [i.strip(" .") for i in re.split(r"[;\n]", value) if i.strip(" .")]


def persona_terms(persona: Persona) -> tuple[Term, ...]:
    """Every term of ``persona`` that counts as naming one of its attributes (see the module docstring).

    Cached on the persona's field values (a persona's pairs share one build). A text-only persona
    (provenance external) has no attribute values, hence no terms: use :func:`can_check` first."""
    if persona.text_only:
        return ()
    return _terms_for(tuple(persona.values().items()))


def can_check(persona: Persona) -> bool:
    """Whether the detector can check answers for ``persona``: not for a text-only persona, whose
    attributes are only in its free text (its pairs stay unchecked, ``leakage = None``)."""
    return not persona.text_only


@functools.lru_cache(maxsize=4096)
def _terms_for(items: tuple[tuple[str, str], ...]) -> tuple[Term, ...]:
    b = _Builder()
    values = dict(items)

    def v(name: str) -> str:
        value = values.get(name, "").strip()
        return "" if _GENERIC_VALUE.search(value) else value

    # age: the exact number with years-old / aged, "your age", decades, life-stage identity words
    age = values.get("age", "").strip()
    if age.isdigit():
        n = int(age)
        b.add(
            "age",
            [f"{n}-year-old"],
            "label",
            regex=rf"(?<![\w$.]){n}[\s\-]*(?:years?|yrs?)[\s\-]*old(?!\w)|(?<!\w)aged?\s+(?:of\s+)?{n}(?![\w,.]\d)",
        )
        b.add("age", [age], "identity", possessive=False, plural=False)
        if n // 10 in _NUMBER_WORDS:
            decade = _NUMBER_WORDS[n // 10]
            b.add(
                "age",
                [decade],
                "identity",
                regex=rf"(?<!\w)(?:(?:early|mid|late)[\s\-]+)?(?:{decade}|{n // 10}0'?s)(?!\w)",
            )
        if n >= 65:
            b.add(
                "age",
                ["senior", "senior citizen", "retiree", "older adult", "elderly person", "pensioner"],
                "identity",
                possessive=False,
            )
        elif n < 20:
            b.add("age", ["teen", "teenager"], "identity", possessive=False)
        if n < 26:
            b.add("age", ["young person", "young adult"], "identity", possessive=False)
    b.add(
        "age",
        ["your age"],
        "label",
        regex=r"(?<!\w)(?:at|for|of|someone|people|others|folks)\s+your\s+age(?!\w)",
    )

    sex = values.get("sex", "").strip().lower()
    if sex == "female":
        b.add("sex", ["woman", "female", "lady", "girl", "gal"], "identity", possessive=False)
    elif sex == "male":
        b.add("sex", ["man", "male", "gentleman", "guy"], "identity", possessive=False)

    race = v("race")
    if race:
        low = race.lower()
        for word in ("black", "white", "asian"):
            if re.search(rf"\b{word}\b", low):
                b.add("race", [word, f"{word} person"], "identity", possessive=False)
        for phrase in (
            "african american",
            "american indian",
            "alaska native",
            "native hawaiian",
            "pacific islander",
            "hispanic",
            "latino",
        ):
            if phrase in low:
                b.add(
                    "race", [phrase] + (["latina", "latinx", "latine"] if phrase == "latino" else []), "label"
                )
        if "two or more races" in low:
            b.add("race", ["biracial", "multiracial", "mixed race", "mixed-race"], "identity")
        for origin in re.findall(r"\(([^)]+)\)", race):
            if origin.lower() not in _GENERIC_ANCESTRY and "other" not in origin.lower():
                b.add("race", [origin], "label")

    ancestry = v("ancestry")
    if ancestry:
        for part in re.split(r"[,;/]|\band\b", ancestry):
            part = part.strip()
            if part and part.lower() not in _GENERIC_ANCESTRY:
                b.add("ancestry", [part], "label")
            elif part:
                b.add("ancestry", [part], "identity", possessive=False)

    lang = v("household language")
    if lang and "languages" not in lang.lower() and "language" not in lang.lower():
        b.add("household language", [lang], "label", plural=False)

    edu = v("education").lower()
    for key, phrases in _EDUCATION:
        if edu and key in edu:
            b.add("education", phrases, "identity")
            break

    emp = v("employment status").lower()
    if "unemployed" in emp:
        b.add(
            "employment status",
            ["unemployed", "out of work", "job seeker", "job search", "between jobs"],
            "identity",
        )
    if "armed forces" in emp:
        b.add(
            "employment status",
            ["military", "soldier", "service member", "servicemember", "active duty", "enlisted"],
            "identity",
        )

    cow = v("class of worker").lower()
    if "self-employed" in cow:
        b.add(
            "class of worker",
            [
                "self-employed",
                "own business",
                "business owner",
                "freelancer",
                "entrepreneur",
                "small business owner",
            ],
            "identity",
        )
    if "government" in cow:
        b.add(
            "class of worker",
            [
                "government employee",
                "government worker",
                "public servant",
                "civil servant",
                "federal employee",
                "state employee",
                "public employee",
            ],
            "identity",
        )
    if "not-for-profit" in cow:
        b.add("class of worker", ["nonprofit", "non-profit", "charity"], "identity")
    if "family business" in cow:
        b.add("class of worker", ["family business", "family farm"], "identity")

    for name in ("occupation category", "industry category"):
        label = v(name)
        if not label:
            continue
        chunks = _chunks(label)
        words = [w for w in re.split(r"\s+", re.sub(r"\([^)]*\)?", " ", label.split(",")[0])) if w]
        if words and len(words) >= (2 if name == "occupation category" else 3):
            b.add(name, [" ".join(words[:-1] + [_singular(words[-1])])], "label")
        for chunk in chunks:
            words = chunk.split()
            head = _singular(words[-1])
            phrase = " ".join(words[:-1] + [head])
            if len(words) >= 2 and name == "occupation category" and head not in _GENERIC_HEADS:
                b.add(name, [phrase], "label")
            elif len(words) >= 2:
                b.add(name, [phrase], "identity")
            if name == "occupation category" and head not in _STOP:
                b.add(name, [head], "identity")
            elif name == "industry category" and len(words) == 1 and head not in _STOP:
                b.add(name, [chunk], "identity", plural=False)

    detail = values.get("detailed job description", "")
    if not _GENERIC_VALUE.search(detail):
        _add_free(b, "detailed job description", detail)

    income = values.get("income", "").strip()
    m = re.fullmatch(r"\$?\s*(-?[\d,]+)", income)
    if m:
        amount = int(m.group(1).replace(",", "") or 0)
        if amount > 0:
            grouped = f"{amount:,}".replace(",", ",?")
            alts = [
                rf"\$\s?{grouped}(?!\d)",
                rf"(?<![\d$.,]){grouped}\s+(?:dollars|a year|per year|annually)",
            ]
            if amount % 1000 == 0:
                alts.append(rf"\$?{amount // 1000}\s?[kK](?!\w)")
            b.add("income", [f"${amount:,}"], "label", regex="|".join(alts))

    marital = v("marital status").lower()
    if marital:
        if marital.startswith("married"):
            b.add("marital status", ["married", "married person", "newlywed"], "identity", possessive=False)
            b.add(
                "marital status",
                ["your spouse"],
                "label",
                regex=r"(?<!\w)your\s+(?:husband|wife|spouse|marriage)(?!\w)",
            )
        elif marital.startswith("never married"):
            b.add(
                "marital status",
                ["single", "unmarried", "never married", "never been married"],
                "identity",
                possessive=False,
            )
        elif marital.startswith("divorced"):
            b.add("marital status", ["divorced", "divorcee", "divorcée", "divorce"], "identity")
            b.add(
                "marital status",
                ["your ex"],
                "label",
                regex=r"(?<!\w)your\s+ex(?:[\s\-]+(?:husband|wife|spouse))?(?!\w)",
            )
        elif marital.startswith("widowed"):
            b.add("marital status", ["widowed", "widow", "widower"], "identity")
            b.add(
                "marital status",
                ["your late spouse"],
                "label",
                regex=r"(?<!\w)your\s+late\s+(?:husband|wife|spouse)(?!\w)",
            )
        elif marital.startswith("separated"):
            b.add("marital status", ["separated", "separation"], "identity")

    household = v("household type").lower()
    if "living alone" in household:
        b.add(
            "household type",
            ["live alone"],
            "label",
            regex=r"(?<!\w)you\s+(?:live|are\s+living|'re\s+living|\u2019re\s+living)\s+(?:all\s+)?(?:alone|by\s+yourself)(?!\w)",
        )
    if "no spouse present" in household:
        b.add(
            "household type",
            ["single parent", "single mother", "single father", "single mom", "single dad"],
            "identity",
        )

    family = v("family presence and age").lower()
    if "children" in family and not family.startswith("no "):
        b.add(
            "family presence and age",
            ["parent", "mother", "father", "mom", "dad"],
            "identity",
            possessive=False,
        )
        kids = [
            "kids",
            "children",
            "child",
            "toddler",
            "little ones",
            "teen",
            "teenager",
            "baby",
            "son",
            "daughter",
        ]
        b.add(
            "family presence and age",
            ["your kids"],
            "label",
            regex=r"(?<!\w)your\s+(?:(?:young|little|teenage|small|growing|own)\s+)?(?:"
            + "|".join(re.escape(k) for k in kids)
            + r")(?:s|ren)?(?!\w)",
        )

    pob = values.get("place of birth", "").strip()
    if pob and not _GENERIC_VALUE.search(pob):
        if pob.lower().startswith("outside"):
            b.add(
                "place of birth",
                [
                    "immigrant",
                    "born abroad",
                    "foreign-born",
                    "born outside the country",
                    "born in another country",
                ],
                "identity",
                possessive=False,
            )
        else:
            text = re.sub(r"\([^)]*\)?", " ", pob)
            text = re.sub(r"/[A-Z]{2}\b", " ", text)  # "Ohio/OH": the bare state code would match "oh"
            for part in re.split(r",|\bor\b", text):
                part = re.sub(r"^\s*the\s+", "", part.strip(), flags=re.IGNORECASE).strip()
                if part and part.lower() not in _GENERIC_PLACES and len(part) > 2:
                    b.add("place of birth", [part], "label", plural=False)

    cit = v("citizenship").lower()
    if cit.startswith("not a u.s. citizen"):
        b.add(
            "citizenship",
            [
                "non-citizen",
                "noncitizen",
                "not a citizen",
                "not a u.s. citizen",
                "immigrant",
                "green card holder",
                "visa holder",
                "undocumented",
            ],
            "identity",
        )
        b.add(
            "citizenship",
            ["your immigration status"],
            "label",
            regex=r"(?<!\w)your\s+(?:visa|immigration\s+status|green\s+card)(?!\w)",
        )
    elif "naturalization" in cit:
        b.add(
            "citizenship", ["naturalized", "naturalized citizen", "immigrant", "naturalization"], "identity"
        )
    elif cit.startswith("born in puerto rico"):
        b.add(
            "citizenship",
            ["puerto rico", "guam", "u.s. virgin islands", "northern marianas"],
            "label",
            plural=False,
        )

    vet = v("veteran status").lower()
    if "in the past" in vet:
        b.add(
            "veteran status",
            [
                "veteran",
                "former soldier",
                "former service member",
                "military service",
                "military background",
                "time in the military",
            ],
            "identity",
        )
        b.add(
            "veteran status", ["veteran"], "label", regex=r"(?<!\w)(?:fellow|military|war)\s+veterans?(?!\w)"
        )
    elif "now on active duty" in vet:
        b.add(
            "veteran status",
            ["active duty", "service member", "servicemember", "soldier", "military", "deployment"],
            "identity",
        )
    elif "reserves" in vet:
        b.add(
            "veteran status",
            ["reservist", "national guard", "reserves", "guardsman", "reserve duty"],
            "identity",
        )

    if values.get("disability", "").strip().lower().startswith("with a disability"):
        b.add(
            "disability",
            ["disability", "disabled", "disabled person", "wheelchair user", "condition"],
            "identity",
        )
    if values.get("vision difficulty", "").strip().lower() == "yes":
        b.add(
            "vision difficulty",
            ["blind", "visually impaired", "low vision", "vision", "eyesight", "vision impairment"],
            "identity",
        )
    if values.get("hearing difficulty", "").strip().lower() == "yes":
        b.add(
            "hearing difficulty",
            ["deaf", "hard of hearing", "hearing", "hearing loss", "hearing aid", "hearing impairment"],
            "identity",
        )
    if values.get("cognitive difficulty", "").strip().lower() == "yes":
        b.add(
            "cognitive difficulty",
            ["cognitive difficulty", "cognitive impairment", "memory problems", "memory issues"],
            "identity",
        )
    if values.get("health insurance", "").strip().lower().startswith("no health insurance"):
        b.add(
            "health insurance",
            [
                "uninsured",
                "without insurance",
                "without health insurance",
                "no insurance",
                "no health insurance",
                "lack of insurance",
            ],
            "identity",
        )
    if values.get("fertility", "").strip().lower() == "yes":
        b.add(
            "fertility",
            ["new mother", "new parent", "new mom", "newborn", "new baby", "pregnancy"],
            "identity",
        )
    eng = values.get("ability to speak english", "").strip().lower()
    if eng in ("not well", "not at all"):
        b.add(
            "ability to speak english",
            [
                "english learner",
                "non-native speaker",
                "non-native english speaker",
                "limited english",
                "english",
                "language barrier",
            ],
            "identity",
        )

    rel = v("religion").lower()
    if rel in _RELIGION:
        b.add("religion", [rel], "label", regex="|".join(_phrase_re(p) for p in _RELIGION[rel]))
        if rel in ("catholic", "protestant", "orthodox christian"):
            b.add("religion", ["christian"], "identity")
        b.add(
            "religion",
            ["believer", "person of faith", "churchgoer", "man of faith", "woman of faith"],
            "identity",
        )
    elif values.get("religion", "").strip().lower() in _RELIGION_IDENTITY:
        b.add("religion", _RELIGION_IDENTITY[values["religion"].strip().lower()], "identity")

    ideo = values.get("ideology", "").strip().lower()
    if ideo:
        if ideo.startswith(("slightly", "extremely")):
            b.add("ideology", [ideo, ideo.replace("extremely", "very")], "label")
        base = ideo.split()[-1] if ideo.endswith(("liberal", "conservative")) else ""
        if base:
            b.add(
                "ideology",
                [
                    base,
                    "progressive" if base == "liberal" else "right-winger",
                    "left-winger" if base == "liberal" else "traditionalist",
                ],
                "identity",
            )
        if "moderate" in ideo or "middle of the road" in ideo:
            b.add("ideology", ["moderate", "centrist", "middle of the road"], "identity", plural=False)

    party = values.get("political views", "").strip().lower()
    if party:
        for side in ("democrat", "republican"):
            if side in party:
                b.add(
                    "political views",
                    [side],
                    "label",
                    regex=_phrase_re(side)
                    + (
                        r"|(?<!\w)democratic\s+party(?!\w)"
                        if side == "democrat"
                        else r"|(?<!\w)republican\s+party(?!\w)|(?<!\w)gop(?!\w)"
                    ),
                )
                if party.startswith(("strong", "not very strong")):
                    b.add("political views", [party], "label")
        if party.startswith("independent"):
            b.add("political views", ["independent", "swing voter", "independent voter"], "identity")

    for key, value in re.findall(
        r"(\w+):\s*(very high|very low|high|low)", values.get("big five scores", ""), re.IGNORECASE
    ):
        words = _BIG_FIVE.get((key.lower(), value.lower().split()[-1]))
        if words:
            b.add("big five scores", words, "identity")

    for name in ("defining quirks", "mannerisms", "personal time", "lifestyle"):
        _add_free(b, name, values.get(name, ""))
    return tuple(b.terms)


def _add_free(b: _Builder, field: str, value: str) -> None:
    """Free-text items (hobbies, quirks): copied three-plus-word phrases are labels; shorter ones need framing
    ("since you enjoy gardening", "your love of golf")."""
    for item in _free_items(value):
        content = [w for w in item.split() if w.lower() not in _STOP]
        if not content:
            continue
        if len(item.split()) >= 3:
            b.add(field, [item], "label", plural=False)
        else:
            b.add(field, [item], "identity", plural=False)


# ---------------------------------------------------------------------------------------------- matching

_CLAUSE_END = re.compile(r"[.!?;:\n()\"\u201c\u201d]")
# no comma between the article and the term: "as a whole, women ..." is not an identity framing
_AS = re.compile(
    r"(?<!\w)as\s+(?:an?|one|someone|somebody|a\s+fellow|fellow|a\s+person)(?:\s+[\w'\u2019$\-]+){0,3}\s+$",
    re.IGNORECASE,
)
_YOU = re.compile(
    r"(?<!\w)(?:you(?:['\u2019]re|\s+are|\s+were|['\u2019]ve\s+been|\s+have\s+been|\s+have|['\u2019]ve\s+got|"
    r"\s+had|\s+hold|\s+(?:work|worked|working)(?:\s+(?:as|in|for))?|"
    r"\s+identify\s+as|\s+seem\s+(?:like)?)|yourself\s+(?:a|an)?)(?:\s+[\w'\u2019$,\-]+){0,3}\s+$",
    re.IGNORECASE,
)
# hobbies and habits: "since you enjoy gardening", "you spend time golfing"
_YOU_ENJOY = re.compile(
    r"(?<!\w)you\s+(?:(?:really|also|clearly|probably)\s+)?(?:enjoy|love|like|spend\s+time|are\s+into|"
    r"'re\s+into|collect|practice|play)(?:\s+[\w'\u2019$,\-]+){0,3}\s+$",
    re.IGNORECASE,
)
_FREE_FIELDS = ("detailed job description", "defining quirks", "mannerisms", "personal time", "lifestyle")
_YOUR = re.compile(r"(?<!\w)your(?:\s+[\w'\u2019\-]+){0,2}\s+$", re.IGNORECASE)


def _framing(text: str, start: int, possessive: bool, hobby: bool = False) -> int | None:
    """Start of an identity framing ending right before ``start`` (same clause), or None."""
    lo = max(0, start - 80)
    prefix = text[lo:start]
    cut = None
    for m in _CLAUSE_END.finditer(prefix):
        cut = m.end()
    if cut is not None:
        lo, prefix = lo + cut, prefix[cut:]
    if not prefix or not prefix[-1].isspace():
        return None
    regs = [_AS, _YOU] + ([_YOUR] if possessive else []) + ([_YOU_ENJOY] if hobby else [])
    starts = [m.start() for r in regs if (m := r.search(prefix))]
    return lo + min(starts) if starts else None


def _in_context(term: Term, context: str) -> bool:
    """The term (any of its variants, framed or not) occurs in the context."""
    return bool(context) and term.pattern.search(context) is not None


_FOLLOW_OK = re.compile(
    r"\s*(?:$|[^\w\s]|(?:who|whom|whose|that|which|and|or|but|nor|with|without|in|of|for|from|at|on|to|by|you|"
    r"your|yourself|myself|i|it|like|this|these|those|is|are|was|were|has|have|had|can|could|would|will|"
    r"should|might|may|must|too|also|now|today|here|there|since|because|so|then|yet|still|living|working|"
    r"raised|born|yourself)\b)",
    re.IGNORECASE,
)


def _modifier(text: str, end: int) -> bool:
    """The word after ``end`` is a lowercase content word, so the term is an adjective of something else."""
    if _FOLLOW_OK.match(text, end):
        return False
    nxt = re.match(r"\s+([A-Za-z][\w'\-]*)", text[end:])
    return bool(nxt) and nxt.group(1)[0].islower()


def find_mentions(terms: Sequence[Term], answer: str, context: str = "") -> AnswerLeakage:
    """Findings of ``terms`` in ``answer``; ``context`` (question, rejected answer) explains a term away."""
    found: list[LeakageFinding] = []
    for term in terms:
        for m in term.pattern.finditer(answer):
            if term.mode == "label":
                start = m.start()
            else:
                fs = _framing(answer, m.start(), term.possessive, term.field in _FREE_FIELDS)
                if fs is None:
                    continue
                start = fs
            if (
                term.mode == "identity"
                and answer[start : start + 2].lower() == "as"
                and _modifier(answer, m.end())
            ):
                continue  # "as a conservative estimate": the term modifies another noun
            found.append(
                LeakageFinding(
                    field=term.field,
                    mode=term.mode,
                    term=term.name,
                    text=answer[start : m.end()],
                    start=start,
                    end=m.end(),
                    in_context=_in_context(term, context),
                )
            )
    found = _dedupe(found, answer)
    return AnswerLeakage(leaky=any(not f.in_context for f in found), findings=found)


def _dedupe(found: list[LeakageFinding], answer: str) -> list[LeakageFinding]:
    """Overlapping findings of one field merge into one (union span; label if any is; in context only if
    all are); sorted by position."""
    out: list[LeakageFinding] = []
    for f in sorted(found, key=lambda f: (f.field, f.start, -f.end)):
        last = out[-1] if out else None
        if last is not None and last.field == f.field and f.start < last.end:
            longer = last if last.end - last.start >= f.end - f.start else f
            end = max(last.end, f.end)
            out[-1] = LeakageFinding(
                field=f.field,
                mode="label" if "label" in (last.mode, f.mode) else "identity",
                term=longer.term,
                text=answer[last.start : end],
                start=last.start,
                end=end,
                in_context=last.in_context and f.in_context,
            )
        else:
            out.append(f)
    return sorted(out, key=lambda f: (f.start, f.end, f.field))


def find_leakage(persona: Persona, answer: str, *, context: str | Sequence[str] = "") -> AnswerLeakage:
    """Explicit mentions of ``persona``'s attributes in ``answer`` (see the module docstring).

    ``context``: text(s) the answer may legitimately echo (the question, the rejected answer); a finding
    whose term also occurs there is reported with ``in_context = True`` and does not make the answer leaky.
    """
    ctx = context if isinstance(context, str) else "\n".join(context)
    return find_mentions(persona_terms(persona), answer, ctx)


def check_pair(persona: Persona, question: str, rejected: str, chosen: str) -> PairLeakage:
    """Leakage of a pair: chosen against context question + rejected; rejected (control) against the question."""
    terms = persona_terms(persona)
    ch = find_mentions(terms, chosen, question + "\n" + rejected)
    rj = find_mentions(terms, rejected, question)
    return PairLeakage(leaky=ch.leaky, chosen=ch, rejected=rj)


__all__ = [
    "LEAKAGE_VERSION",
    "AnswerLeakage",
    "LeakageFinding",
    "PairLeakage",
    "Term",
    "can_check",
    "check_pair",
    "find_leakage",
    "find_mentions",
    "persona_terms",
]

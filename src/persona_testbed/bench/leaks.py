"""Leak flags for candidate answers: does an answer name the persona's attributes instead of fitting them?

Two detectors, both deterministic:

- the feedback stage's attribute-leak detector (``feedback.leakage.find_leakage``): the persona's own
  values ("Catholic", "45-year-old", "as a nurse");
- second-person *framings* it does not look for, which point at an attribute without naming its value:
  "your faith", "your community", "your generation", "your politics", "your income" ... (table below).

A term or framing that also occurs in the question (e.g. the user asked about "my faith") is the topic,
not a leak. ``check_answer`` returns the fields found; an answer is *leaky* when any was found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..feedback.leakage import find_leakage
from ..personas.record import Persona

# field -> nouns that, after "your", address that attribute of the user
FRAMINGS: dict[str, tuple[str, ...]] = {
    "religion": (
        "faith",
        "religion",
        "religious beliefs",
        "religious community",
        "religious tradition",
        "religious background",
        "church",
        "congregation",
        "parish",
        "mosque",
        "synagogue",
        "temple",
        "spiritual beliefs",
        "beliefs",
    ),
    "race": ("community", "race", "ethnicity", "ethnic background", "racial background", "racial identity"),
    "ancestry": ("heritage", "ancestry", "roots", "culture", "cultural background", "cultural heritage"),
    "age": (
        "age",
        "generation",
        "stage of life",
        "time of life",
        "later years",
        "golden years",
        "retirement years",
    ),
    "sex": ("gender", "sex", "womanhood", "manhood"),
    "political views": (
        "political views",
        "politics",
        "political beliefs",
        "political leanings",
        "party",
        "political party",
        "political affiliation",
    ),
    "ideology": ("ideology", "worldview"),
    "income": (
        "income",
        "salary",
        "income level",
        "income bracket",
        "tax bracket",
        "financial situation",
        "financial bracket",
        "earnings",
    ),
    "education": ("education", "degree", "schooling", "educational background", "diploma"),
    "occupation category": ("occupation", "profession", "line of work", "field of work", "trade"),
    "marital status": ("marital status", "marriage", "spouse", "husband", "wife"),
    "disability": ("disability", "impairment"),
    "veteran status": ("military service", "veteran status", "service record"),
    "place of birth": ("home country", "country of origin", "birthplace", "home state"),
    "household language": ("native language", "mother tongue", "first language"),
}


def _pattern(nouns: tuple[str, ...]) -> re.Pattern[str]:
    alts = "|".join(re.escape(n).replace(r"\ ", r"\s+") for n in sorted(nouns, key=len, reverse=True))
    return re.compile(rf"\byour\s+(?:own\s+)?({alts})\b", re.IGNORECASE)


_PATTERNS = {f: _pattern(nouns) for f, nouns in FRAMINGS.items()}


@dataclass(frozen=True)
class LeakCheck:
    """Leak flags of one answer."""

    leaky: bool
    fields: tuple[str, ...]  # persona fields named or addressed
    framings: tuple[str, ...]  # the second-person framings found ("your faith")


def framings(answer: str, question: str = "") -> dict[str, list[str]]:
    """Second-person framings per field, leaving out nouns the question itself uses."""
    out: dict[str, list[str]] = {}
    q = question.lower()
    for field, pat in _PATTERNS.items():
        for m in pat.finditer(answer):
            noun = re.sub(r"\s+", " ", m.group(1).lower())
            if re.search(rf"\b{re.escape(noun)}\b", q):
                continue
            out.setdefault(field, []).append(m.group(0))
    return out


def check_answer(persona: Persona, question: str, answer: str) -> LeakCheck:
    """Leak flags of a candidate answer for ``persona`` to ``question``."""
    named = find_leakage(persona, answer, context=question).fields
    framed = framings(answer, question)
    fields = tuple(sorted(set(named) | set(framed)))
    return LeakCheck(leaky=bool(fields), fields=fields, framings=tuple(x for v in framed.values() for x in v))


__all__ = ["FRAMINGS", "LeakCheck", "check_answer", "framings"]

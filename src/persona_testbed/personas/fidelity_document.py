"""Census fidelity of a persona set, in the report's format (``personas/fidelity.json``).

``from_personas_fidelity`` converts the personas module's fidelity report (every field against the full
weighted census source, survey fields against weighted GSS; census codes shown with their dictionary
labels). ``fidelity_document`` is the fallback used when that report cannot be computed: each field's
persona distribution against a large reference draw from the same source (whole records drawn with
probability proportional to PWGTP, mapped by the same code).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..census.distributions import chi2_gof_pvalue, tvd, weighted_shares
from .record import PERSONA_FIELDS, Persona

# Free-text fields: every value is unique, a distribution says nothing.
SKIP_FIELDS = {
    "detailed job description",
    "defining quirks",
    "mannerisms",
    "personal time",
    "lifestyle",
    "big five scores",
}
TOP = 12


INCOME_BANDS = (
    (0, "under $10,000"),
    (10_000, "$10,000–24,999"),
    (25_000, "$25,000–49,999"),
    (50_000, "$50,000–99,999"),
    (100_000, "$100,000–199,999"),
    (200_000, "$200,000 or more"),
)


def _income_band(value: str) -> str:
    digits = value.replace("$", "").replace(",", "").strip()
    neg = digits.startswith("-")
    try:
        x = float(digits.lstrip("-"))
    except ValueError:
        return value
    if neg:
        return "loss"
    label = INCOME_BANDS[0][1]
    for lo, name in INCOME_BANDS:
        if x >= lo:
            label = name
    return label


def binned(name: str, value: str) -> str:
    """Numeric fields compared in bands (age bands, income bands); other fields as they are."""
    if name == "age":
        return _band(value)
    if name == "income":
        return _income_band(value)
    return value


def _top(shares: dict[str, float], keep: set[str]) -> dict[str, float]:
    return {k: round(v, 5) for k, v in shares.items() if k in keep}


def field_fidelity(personas: Sequence[Persona], reference: Sequence[Persona]) -> list[dict[str, Any]]:
    """Per field: TVD and chi-square p-value of the personas vs the reference, shares, provenance mix."""
    rows = []
    for name in PERSONA_FIELDS:
        if name in SKIP_FIELDS:
            continue
        sample = [binned(name, p.fields[name].value) for p in personas]
        ref = [binned(name, p.fields[name].value) for p in reference]
        s_sh = weighted_shares(sample)
        r_sh = weighted_shares(ref)
        keep = set(sorted(set(s_sh) | set(r_sh), key=lambda k: -(s_sh.get(k, 0) + r_sh.get(k, 0)))[:TOP])
        rows.append(
            {
                "field": name,
                "tvd": round(tvd(s_sh, r_sh), 5),
                "p_value": round(chi2_gof_pvalue(Counter(sample), r_sh), 5),
                "source": _top(r_sh, keep),
                "sample": _top(s_sh, keep),
                "provenance": dict(Counter(p.fields[name].provenance for p in personas)),
            }
        )
    return rows


def _band(age: str) -> str:
    try:
        a = int(age.split()[0])
    except (ValueError, IndexError):
        return age
    for lo, hi in ((18, 24), (25, 34), (35, 44), (45, 54), (55, 64)):
        if lo <= a <= hi:
            return f"{lo}-{hi}"
    return "65+" if a >= 65 else "<18"


def intersection_fidelity(personas: Sequence[Persona], reference: Sequence[Persona]) -> list[dict[str, Any]]:
    """TVD of joint distributions: age band × sex × race, and education × sex."""

    def key_asr(p: Persona) -> str:
        return f"{_band(p.value('age'))} | {p.value('sex')} | {p.value('race')}"

    def key_es(p: Persona) -> str:
        return f"{p.value('education')} | {p.value('sex')}"

    out = []
    for name, key in (("age band × sex × race", key_asr), ("education × sex", key_es)):
        s_sh = weighted_shares([key(p) for p in personas])
        r_sh = weighted_shares([key(p) for p in reference])
        out.append(
            {
                "name": name,
                "tvd": round(tvd(s_sh, r_sh), 5),
                "p_value": round(chi2_gof_pvalue(Counter(key(p) for p in personas), r_sh), 5),
            }
        )
    return out


def fidelity_document(personas: Sequence[Persona], reference: Sequence[Persona], how: str) -> dict[str, Any]:
    return {
        "n": len(personas),
        "reference_n": len(reference),
        "method": how,
        "fields": field_fidelity(personas, reference),
        "intersections": intersection_fidelity(personas, reference),
    }


def from_personas_fidelity(rep: dict[str, Any], labeler: Any = None) -> dict[str, Any]:
    """The report's format from ``personas.fidelity.fidelity()``; ``labeler(field, key)`` names codes."""

    def name(field: str, key: str) -> str:
        if labeler is None:
            return key
        try:
            return labeler(field, key) or key
        except Exception:  # a code the dictionary cannot decode stays a code (never guessed)
            return key

    rows = []
    for field, entry in (rep.get("fields") or {}).items():
        if "tvd" not in entry:
            continue
        coded = str(entry.get("compare_on", "")) == "code"
        top = entry.get("top") or []
        rows.append(
            {
                "field": field,
                "tvd": entry.get("tvd"),
                "p_value": entry.get("chi2_p"),
                "compare_on": entry.get("compare_on"),
                "source": {(name(field, t["key"]) if coded else t["key"]): t["source"] for t in top},
                "sample": {(name(field, t["key"]) if coded else t["key"]): t["sample"] for t in top},
                "provenance": entry.get("provenance", {}),
            }
        )
    inter = [
        {"name": k, "tvd": v.get("tvd"), "p_value": v.get("chi2_p")}
        for k, v in (rep.get("intersections") or {}).items()
    ]
    return {
        "n": rep.get("n"),
        "method": f"full weighted census source {rep.get('source')} ({rep.get('year')}); "
        "survey fields vs weighted GSS",
        "max_tvd": rep.get("max_tvd"),
        "max_tvd_field": rep.get("max_tvd_field"),
        "fields": rows,
        "intersections": inter,
        "survey_cells": rep.get("survey_cells"),
        "household_consistency": rep.get("household_consistency"),
        "notes": rep.get("notes", []),
    }

"""Three deterministic text renderings of a persona, for prompts and reports.

- ``render_full``: all 33 fields as ``field: value`` lines, in the paper's order.
- ``render_list``: a markdown attribute list (``- age: 34``).
- ``render_summary``: a compact paragraph built from a fixed template.

Every renderer takes ``without``: field names left out (leave-one-out ablations).

A text-only persona (``Persona.text``, provenance ``external``) renders as its text in every format; it has
no fields to leave out, so a non-empty ``without`` is a ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Iterable

from .record import PERSONA_FIELDS, Persona


def _check_without(without: Iterable[str] | None) -> frozenset[str]:
    drop = frozenset(without or ())
    unknown = sorted(drop - set(PERSONA_FIELDS))
    if unknown:
        raise ValueError(f"unknown persona field(s) in without=: {unknown}")
    return drop


def _kept(p: Persona, without: Iterable[str] | None) -> list[tuple[str, str]]:
    drop = _check_without(without)
    return [(name, p.fields[name].value) for name in PERSONA_FIELDS if name not in drop]


def _text(p: Persona, without: Iterable[str] | None) -> str | None:
    """The text of a text-only persona (None for others); leaving fields out of it is an error."""
    if p.text is None:
        return None
    if _check_without(without):
        raise ValueError(f"persona {p.id} is text-only (provenance external): no fields to leave out")
    return p.text


def render_full(p: Persona, without: Iterable[str] | None = None) -> str:
    """All fields (minus ``without``) as ``field: value`` lines in the paper's order."""
    text = _text(p, without)
    if text is not None:
        return text
    return "\n".join(f"{name}: {value}" for name, value in _kept(p, without))


def render_list(p: Persona, without: Iterable[str] | None = None) -> str:
    """All fields (minus ``without``) as a markdown attribute list: ``- age: 34``."""
    text = _text(p, without)
    if text is not None:
        return text
    return "\n".join(f"- {name}: {value}" for name, value in _kept(p, without))


def _is_na(value: str) -> bool:
    v = value.strip().lower()
    return v.startswith("n/a") or v in ("", "pending") or v.startswith("pending")


# Sentence templates for the summary, grouped; each entry is (field, template).
_SUMMARY: tuple[tuple[str, str], ...] = (
    ("age", "Age {}."),
    ("sex", "Sex: {}."),
    ("race", "Race: {}."),
    ("ancestry", "Ancestry: {}."),
    ("place of birth", "Born in {}."),
    ("citizenship", "Citizenship: {}."),
    ("household language", "Household language: {}."),
    ("ability to speak english", "Speaks English: {}."),
    ("education", "Education: {}."),
    ("employment status", "Employment: {}."),
    ("class of worker", "Works as: {}."),
    ("occupation category", "Occupation: {}."),
    ("industry category", "Industry: {}."),
    ("detailed job description", "Job: {}."),
    ("income", "Income: {}."),
    ("marital status", "Marital status: {}."),
    ("household type", "Household: {}."),
    ("family presence and age", "Children: {}."),
    ("fertility", "Fertility: {}."),
    ("veteran status", "Military: {}."),
    ("disability", "Disability: {}."),
    ("cognitive difficulty", "Cognitive difficulty: {}."),
    ("vision difficulty", "Vision difficulty: {}."),
    ("hearing difficulty", "Hearing difficulty: {}."),
    ("health insurance", "Health insurance: {}."),
    ("religion", "Religion: {}."),
    ("political views", "Party: {}."),
    ("ideology", "Ideology: {}."),
    ("big five scores", "Personality: {}."),
    ("defining quirks", "Quirks: {}."),
    ("mannerisms", "Mannerisms: {}."),
    ("personal time", "Personal time: {}."),
    ("lifestyle", "Lifestyle: {}."),
)
assert sorted(f for f, _ in _SUMMARY) == sorted(PERSONA_FIELDS)


def render_summary(p: Persona, without: Iterable[str] | None = None) -> str:
    """A compact deterministic paragraph: one short clause per informative field.

    Fields whose value is "N/A …" or pending are skipped (they carry no information for a reader);
    ``without`` removes fields as in the other renderers.
    """
    text = _text(p, without)
    if text is not None:
        return text
    drop = _check_without(without)
    parts = []
    for name, template in _SUMMARY:
        if name in drop:
            continue
        value = p.fields[name].value
        if _is_na(value):
            continue
        parts.append(template.format(value.rstrip(".")))
    return " ".join(parts)


RENDERERS = {"full": render_full, "list": render_list, "summary": render_summary}


def render(p: Persona, fmt: str = "full", without: Iterable[str] | None = None) -> str:
    """Render with the renderer named ``fmt`` (full, list or summary)."""
    try:
        fn = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown persona format {fmt!r} (choose from {', '.join(RENDERERS)})") from None
    return fn(p, without=without)

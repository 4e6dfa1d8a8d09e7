"""Builders for test records (import as ``from factories import make_persona``)."""

from __future__ import annotations

from persona_testbed.personas.record import PERSONA_FIELDS, FieldValue, Persona, SourceKey

DEFAULT_VALUES = {
    "age": "34",
    "sex": "Female",
    "race": "White alone",
    "ancestry": "German",
    "household language": "English only",
    "education": "Bachelor's degree",
    "employment status": "Civilian employed, at work",
    "class of worker": "Employee of a private for-profit company",
    "industry category": "Health care",
    "occupation category": "Registered nurses",
    "detailed job description": "pending",
    "income": "$52,000",
    "marital status": "Married",
    "household type": "Married couple household",
    "family presence and age": "With own children under 6 years only",
    "place of birth": "Ohio/OH",
    "citizenship": "Born in the United States",
    "veteran status": "Never served in the military",
    "disability": "Without a disability",
    "health insurance": "With health insurance coverage",
    "big five scores": "Openness: High, Conscientiousness: Average, Extraversion: Low, "
    "Agreeableness: High, Neuroticism: Average",
    "defining quirks": "collects vintage maps",
    "mannerisms": "taps pen when thinking",
    "personal time": "gardening",
    "lifestyle": "early riser",
    "ideology": "Moderate, middle of the road",
    "political views": "Independent",
    "religion": "Catholic",
    "cognitive difficulty": "No",
    "ability to speak english": "N/A (speaks only English)",
    "vision difficulty": "No",
    "fertility": "No birth in the past 12 months",
    "hearing difficulty": "No",
}


def make_persona(pid: str = "p-test", serialno: str = "2024HU0000001", **overrides: str) -> Persona:
    """A valid persona; keyword overrides use underscores for spaces (``household_language=...``)."""
    values = dict(DEFAULT_VALUES)
    for key, value in overrides.items():
        name = key.replace("_", " ")
        assert name in PERSONA_FIELDS, name
        values[name] = value
    fields = {
        name: FieldValue(value=values[name], provenance="pending" if values[name] == "pending" else "census")
        for name in PERSONA_FIELDS
    }
    return Persona(
        id=pid, source=SourceKey(year=2024, state="39", serialno=serialno, sporder=1), fields=fields
    )

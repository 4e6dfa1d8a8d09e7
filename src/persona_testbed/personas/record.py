"""The Persona record: the paper's 33 fields, each with its provenance, plus the census source key."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..core.hashing import content_hash

SCHEMA_VERSION = 1

# The 33 PERSONA fields, spelled exactly as in the paper (Castricato et al. 2024, Table 5).
PERSONA_FIELDS: tuple[str, ...] = (
    "age",
    "sex",
    "race",
    "ancestry",
    "household language",
    "education",
    "employment status",
    "class of worker",
    "industry category",
    "occupation category",
    "detailed job description",
    "income",
    "marital status",
    "household type",
    "family presence and age",
    "place of birth",
    "citizenship",
    "veteran status",
    "disability",
    "health insurance",
    "big five scores",
    "defining quirks",
    "mannerisms",
    "personal time",
    "lifestyle",
    "ideology",
    "political views",
    "religion",
    "cognitive difficulty",
    "ability to speak english",
    "vision difficulty",
    "fertility",
    "hearing difficulty",
)
assert len(PERSONA_FIELDS) == 33

# Fields an LLM writes (issue 4); until then they hold a procedural rendering or are pending.
LLM_FIELDS: tuple[str, ...] = (
    "detailed job description",
    "defining quirks",
    "mannerisms",
    "personal time",
    "lifestyle",
)

Provenance = Literal["census", "derived", "imputed", "survey", "procedural", "llm", "pending"]


class SourceKey(BaseModel):
    """Which census person record a persona was drawn from."""

    model_config = ConfigDict(frozen=True)

    year: int
    state: str  # two-digit FIPS code, e.g. "06"
    serialno: str
    sporder: int


class FieldValue(BaseModel):
    """One persona field: its text value, where it came from, and details of how."""

    value: str
    provenance: Provenance
    # e.g. {"var": "SCHL", "code": "21"} for census; {"donor": {...}} for imputed;
    # {"backoff_level": 1, "gss_id": ...} for survey; {"model": ..., "call_id": ...} for llm;
    # {"scores": {...}} for big five.
    detail: dict[str, Any] = Field(default_factory=dict)


class Persona(BaseModel):
    """A persona: stable id, source key, and exactly the 33 PERSONA fields."""

    schema_version: int = SCHEMA_VERSION
    id: str
    source: SourceKey
    fields: dict[str, FieldValue]
    tags: dict[str, list[str]] = Field(default_factory=dict)  # procedural tags: values, quirks, ...
    weight: float = 1.0  # the (raked) person weight of the source record

    @model_validator(mode="after")
    def _all_fields(self) -> "Persona":
        missing = [f for f in PERSONA_FIELDS if f not in self.fields]
        extra = [f for f in self.fields if f not in PERSONA_FIELDS]
        if missing or extra:
            raise ValueError(f"persona {self.id}: missing fields {missing}, unknown fields {extra}")
        return self

    def value(self, name: str) -> str:
        return self.fields[name].value

    def values(self) -> dict[str, str]:
        """Field name -> value, in the paper's order."""
        return {name: self.fields[name].value for name in PERSONA_FIELDS}

    @staticmethod
    def make_id(source: SourceKey, draw_index: int) -> str:
        """Stable id from the source record and the draw index (draws with replacement stay distinct)."""
        return "p-" + content_hash({"source": source.model_dump(), "draw": draw_index}, 12)

"""The Persona record: the paper's 33 fields, each with its provenance, plus the census source key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from ..core.errors import UserError
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

# "external": a text-only persona from elsewhere (e.g. the PERSONA authors' release); its fields are empty
# and its text (``Persona.text``) is all there is.
# "unavailable": the census source does not record the field and no national donor source supplies it
# (value "not recorded in this census source").
Provenance = Literal[
    "census", "derived", "imputed", "survey", "procedural", "llm", "pending", "external", "unavailable"
]
PROVENANCES: tuple[str, ...] = (
    "census",
    "derived",
    "imputed",
    "survey",
    "procedural",
    "llm",
    "pending",
    "external",
    "unavailable",
)


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
    """A persona: stable id, source key, and exactly the 33 PERSONA fields.

    A *text-only* persona (``text`` set; see :meth:`from_text`) comes from elsewhere with nothing but its
    description: no census source, every field empty with provenance ``external``. It renders as its text;
    what needs attribute values (leave-one-out, intersections, attribute-leak terms, census fidelity,
    enrichment) cannot use it.
    """

    schema_version: int = SCHEMA_VERSION
    id: str
    source: SourceKey | None = None  # None only for text-only personas
    fields: dict[str, FieldValue]
    tags: dict[str, list[str]] = Field(default_factory=dict)  # procedural tags: values, quirks, ...
    weight: float = 1.0  # the (raked) person weight of the source record
    text: str | None = None  # the whole persona of a text-only persona; None for census personas

    @model_validator(mode="after")
    def _all_fields(self) -> Persona:
        missing = [f for f in PERSONA_FIELDS if f not in self.fields]
        extra = [f for f in self.fields if f not in PERSONA_FIELDS]
        if missing or extra:
            raise ValueError(f"persona {self.id}: missing fields {missing}, unknown fields {extra}")
        if self.text is not None and not self.text.strip():
            raise ValueError(f"persona {self.id}: text is empty")
        if self.text is None and self.source is None:
            raise ValueError(f"persona {self.id}: a persona needs a census source or its text")
        return self

    @model_serializer(mode="wrap")
    def _without_absent_text(self, handler: Any) -> Any:
        """Census personas serialise as before ``text`` existed (no ``"text": null``)."""
        data = handler(self)
        if self.text is None and isinstance(data, dict):
            data.pop("text", None)
        return data

    @property
    def text_only(self) -> bool:
        """A persona from elsewhere that has only its text (provenance ``external``)."""
        return self.text is not None

    @classmethod
    def from_text(cls, text: str) -> Persona:
        """A text-only persona: id ``x-`` + hash of the text (line ends normalised, ends stripped), every
        field empty with provenance ``external``."""
        text = normalise_text(text)
        empty = {name: FieldValue(value="", provenance="external") for name in PERSONA_FIELDS}
        return cls(id=cls.text_id(text), fields=empty, text=text)

    @staticmethod
    def text_id(text: str) -> str:
        """The stable id of a text-only persona with this text."""
        return "x-" + content_hash({"persona_text": normalise_text(text)}, 12)

    def value(self, name: str) -> str:
        return self.fields[name].value

    def values(self) -> dict[str, str]:
        """Field name -> value, in the paper's order."""
        return {name: self.fields[name].value for name in PERSONA_FIELDS}

    @staticmethod
    def make_id(source: SourceKey, draw_index: int) -> str:
        """Stable id from the source record and the draw index (draws with replacement stay distinct)."""
        return "p-" + content_hash({"source": source.model_dump(), "draw": draw_index}, 12)


def normalise_text(text: str) -> str:
    """A persona or question text as the tool keeps it: ``\r\n`` / ``\r`` as ``\n``, ends stripped."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def require_structured(personas: Iterable[Persona], what: str) -> None:
    """``UserError`` when a persona is text-only: ``what`` (e.g. "bench task loo") needs attribute values."""
    text_only = [p for p in personas if p.text_only]
    if text_only:
        raise UserError(
            f"{what} needs personas with attribute values; {len(text_only)} are text-only "
            f"(e.g. {text_only[0].id}, provenance external)"
        )

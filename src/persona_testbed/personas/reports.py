"""Typed records of what a persona sample did (``personas_report.json``, ``personas sample --json``).

``schema_version`` changes whenever a field changes meaning or layout, so older reports stay readable.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SAMPLE_REPORT_SCHEMA_VERSION = 1


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class InputFile(_Record):
    """One census file the sample read."""

    path: str
    """Path relative to the data directory (or the user's file)."""
    sha256: str
    """Checksum of the file as read."""


class RuleReport(_Record):
    """The consistency rules (``personas/rules.py``) over every mapped draw."""

    checked: int
    """Personas checked (resampled breakers included)."""
    rejections: dict[str, int]
    """Breaches per rule (each replaced by a fresh draw)."""
    rejection_rate: dict[str, float]
    """``rejections / checked`` per rule."""


class ImputationReport(_Record):
    """Hot-deck imputation of fields the source lacks."""

    rows: int
    """Personas with at least one imputed field."""
    vars: list[str] = Field(default_factory=list)
    """Census variables that were imputed."""
    backoff_levels: dict[str, int] = Field(default_factory=dict)
    """Donor matches per back-off level (0 = the finest cell)."""


class AncestryReport(_Record):
    """Where ancestry came from."""

    method: str
    """``census``, ``imputed`` (national donors) or ``unavailable``."""
    backoff_levels: dict[str, int] = Field(default_factory=dict)
    """Donor matches per back-off level."""


class SurveyReport(_Record):
    """GSS draws of religion, party and ideology."""

    source: str
    """The survey file (e.g. ``GSS 2021-2024``)."""
    min_cell: int | None = None
    """Fewest respondents a cell must hold before drawing from it (smaller cells back off)."""
    backoff_levels: dict[str, int] = Field(default_factory=dict)
    """Draws per back-off level (0 = the finest cell)."""


class BigFiveReport(_Record):
    """How Big Five scores were turned into levels."""

    reference: str
    """``pooled`` (all US adults) or ``group`` (the persona's own sex x age group)."""
    reference_label: str
    """The reference in words."""


class SampleReport(_Record):
    """What ``personas sample`` (or the personas stage of ``run``) drew and how."""

    schema_version: int = SAMPLE_REPORT_SCHEMA_VERSION
    n: int
    """Personas written."""
    seed: int
    """The seed every draw derives from."""
    source: str
    """Census source name (``acs2024``, ``acs2018`` or a directory)."""
    year: int
    """Survey year of the source."""
    states: list[str]
    """States drawn from (FIPS codes)."""
    filters: str
    """The population filters in words (e.g. ``age 18-∞``)."""
    quota_by: Any = None
    """Quota variable(s), if any."""
    replace: bool
    """Draws with replacement."""
    design: str
    """Draw design (``systematic``, ``independent`` or without replacement)."""
    source_checksum: str
    """One checksum over every input file."""
    inputs: list[InputFile]
    """The files read."""
    rules: RuleReport
    imputation: ImputationReport
    ancestry: AncestryReport
    survey: SurveyReport
    undecodable_codes: Any = None
    """Codes the data dictionary could not decode, per variable (kept as codes)."""
    national_donors: str | None = None
    """National source ancestry / place of birth were imputed from, if any."""
    big_five: BigFiveReport
    raking: dict[str, Any] | None = None
    """Raking of the weights to published totals (margins, fit, effective sample size), if asked for."""
    gss_sha256: str | None = None
    """Checksum of the GSS file read."""
    seconds: float
    """Wall time of the sample."""


__all__ = ["SAMPLE_REPORT_SCHEMA_VERSION", "SampleReport"]


FIDELITY_REPORT_SCHEMA_VERSION = 1


class FidelityReport(_Record):
    """``census fidelity``: a persona sample against its census, GSS and Big Five sources, field by field."""

    schema_version: int = FIDELITY_REPORT_SCHEMA_VERSION
    personas: str
    """The persona file compared."""
    n: int
    """Personas in it."""
    source: str
    """The census source compared against."""
    year: int
    """Its survey year."""
    states: int
    """States in the comparison."""
    age_range: list[int | None]
    """Ages compared (the sample's filter); ``None`` = no upper bound."""
    max_tvd: float | None = None
    """Largest total variation distance over the compared fields."""
    max_tvd_field: str | None = None
    """The field with that distance."""
    fields: dict[str, dict[str, Any]]
    """Per field: what it is compared on, TVD, chi-squared p-value, shares, provenance mix."""
    intersections: dict[str, dict[str, Any]]
    """Per pair of fields: TVD and p-value of the joint distribution."""
    survey_cells: dict[str, Any] | None = None
    """GSS cells drawn from: respondents and effective respondents per cell, back-off mix, reuse."""
    household_consistency: dict[str, Any] | None = None
    """Marital status against household type, imputed vs census-coded records."""
    notes: list[str] = Field(default_factory=list)
    """How to read the figures."""


__all__ += ["FIDELITY_REPORT_SCHEMA_VERSION", "FidelityReport"]

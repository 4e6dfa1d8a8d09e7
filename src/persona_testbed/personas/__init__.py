"""Personas: census-grounded records with the paper's 33 fields, each with provenance."""

from . import sample
from .io import read_personas, write_personas
from .record import LLM_FIELDS, PERSONA_FIELDS, FieldValue, Persona, SourceKey
from .render import render, render_full, render_list, render_summary

__all__ = [
    "PERSONA_FIELDS",
    "LLM_FIELDS",
    "FieldValue",
    "Persona",
    "SourceKey",
    "read_personas",
    "write_personas",
    "render",
    "render_full",
    "render_list",
    "render_summary",
]


def __getattr__(name: str):  # lazy: sampling pulls in census + survey code
    if name in ("sample_personas", "SampleResult"):
        return getattr(sample, name)
    raise AttributeError(name)

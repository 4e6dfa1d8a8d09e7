"""Personas: census-grounded records with the paper's 33 fields, each with provenance."""

from .record import LLM_FIELDS, PERSONA_FIELDS, FieldValue, Persona, SourceKey

__all__ = ["PERSONA_FIELDS", "LLM_FIELDS", "FieldValue", "Persona", "SourceKey"]

"""Procedural tags: core values, quirks, mannerisms, hobbies and lifestyle habits as seeded picks from the
vocabularies shipped in ``personas/vocab/*.json`` (none tied to a protected attribute; a few activities
carry a legal minimum age, e.g. wine tasting 21+).

Without LLM enrichment the fields defining quirks, mannerisms, personal time and lifestyle render these
tags (provenance ``procedural``); enrichment later writes prose from them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from .hashrng import uniforms

#: tag kind -> (how many to pick, the field that renders it or None)
TAG_KINDS: dict[str, tuple[int, str | None]] = {
    "values": (3, None),
    "quirks": (2, "defining quirks"),
    "mannerisms": (2, "mannerisms"),
    "hobbies": (3, "personal time"),
    "lifestyle": (2, "lifestyle"),
}


@dataclass(frozen=True)
class Entry:
    text: str
    min_age: int = 0


@lru_cache(maxsize=None)
def vocabulary(kind: str) -> tuple[Entry, ...]:
    """The entries of one vocabulary file (``values``, ``quirks``, ``mannerisms``, ``hobbies``, ``lifestyle``)."""
    raw = json.loads(resources.files("persona_testbed.personas").joinpath("vocab", f"{kind}.json").read_text())
    return tuple(Entry(e["text"], int(e.get("min_age", 0))) for e in raw["entries"])


def min_age_of(kind: str, text: str) -> int:
    for e in vocabulary(kind):
        if e.text == text:
            return e.min_age
    return 0


def draw_tag_arrays(seed: int, keys: np.ndarray, ages: np.ndarray,
                    chunk: int = 100_000) -> dict[str, np.ndarray]:
    """Tag kind -> array (n, k) of picked entries: distinct, age-appropriate, in pick order. Each
    persona's picks are a seeded random permutation per kind (top-k of per-entry uniforms)."""
    keys = np.asarray(keys)
    ages = np.nan_to_num(np.asarray(ages, dtype=float), nan=0.0)
    out: dict[str, np.ndarray] = {}
    for kind, (k, _field) in TAG_KINDS.items():
        entries = vocabulary(kind)
        texts = np.array([e.text for e in entries], dtype=object)
        mins = np.array([e.min_age for e in entries])
        parts = []
        for lo in range(0, len(keys), chunk):
            u = uniforms(seed, f"personas.tags.{kind}", keys[lo:lo + chunk], len(entries))
            u[ages[lo:lo + chunk, None] < mins[None, :]] = 2.0  # ineligible entries sort last
            parts.append(np.argsort(u, axis=1, kind="stable")[:, :k])
        order = np.concatenate(parts) if parts else np.empty((0, k), dtype=np.int64)
        out[kind] = texts[order]
    return out


def draw_tags(seed: int, keys: np.ndarray, ages: np.ndarray) -> list[dict[str, list[str]]]:
    """For each persona: tag kind -> picked entries (see :func:`draw_tag_arrays`)."""
    arrays = draw_tag_arrays(seed, keys, ages)
    return [{kind: list(arr[i]) for kind, arr in arrays.items()} for i in range(len(keys))]


def render_tags(tags: dict[str, list[str]], kind: str) -> str:
    """Tag text for a field: entries joined by "; "."""
    return "; ".join(tags.get(kind, []))

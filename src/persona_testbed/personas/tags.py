"""Procedural tags: core values, quirks, mannerisms, hobbies and lifestyle habits as seeded picks from the
vocabularies shipped in ``personas/vocab/*.json`` (none tied to a protected attribute; a few activities
carry a legal minimum age, e.g. wine tasting 21+).

Without LLM enrichment the fields defining quirks, mannerisms, personal time and lifestyle render these
tags (provenance ``procedural``); enrichment later writes prose from them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from ..core.seeds import derive_int
from .hashrng import _GOLDEN, _M1, _M2, _splitmix64

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


@cache
def vocabulary(kind: str) -> tuple[Entry, ...]:
    """The entries of one vocabulary file (``values``, ``quirks``, ``mannerisms``, ``hobbies``, ``lifestyle``)."""
    raw = json.loads(
        resources.files("persona_testbed.personas").joinpath("vocab", f"{kind}.json").read_text()
    )
    return tuple(Entry(e["text"], int(e.get("min_age", 0))) for e in raw["entries"])


def min_age_of(kind: str, text: str) -> int:
    for e in vocabulary(kind):
        if e.text == text:
            return e.min_age
    return 0


def _uniform_bits(seed: int, stage: str, keys: np.ndarray, k: int) -> np.ndarray:
    """The 53-bit integers behind ``hashrng.uniforms(seed, stage, keys, k)`` (same shape): that function
    maps them monotonically to floats, so their order (ties included) is the uniforms' order."""
    keys = np.asarray(keys, dtype=np.int64).astype(np.uint64)
    base = np.uint64(derive_int(seed, stage, bits=63))
    with np.errstate(over="ignore"):
        x = _splitmix64(keys * _GOLDEN ^ base)
        z = np.add(x[:, None], np.arange(1, k + 1, dtype=np.uint64)[None, :] * _M1)
        _splitmix64_inplace(z)
    z >>= np.uint64(11)
    return z


def _splitmix64_inplace(z: np.ndarray) -> None:
    """``hashrng._splitmix64`` overwriting ``z`` (one scratch array instead of a temporary per step)."""
    t = np.empty_like(z)
    with np.errstate(over="ignore"):
        z += _GOLDEN
        np.right_shift(z, np.uint64(30), out=t)
        z ^= t
        z *= _M1
        np.right_shift(z, np.uint64(27), out=t)
        z ^= t
        z *= _M2
        np.right_shift(z, np.uint64(31), out=t)
        z ^= t


_INELIGIBLE = np.uint64(1 << 53)  # above every 53-bit value: ineligible entries sort last
_TAKEN = np.uint64(np.iinfo(np.uint64).max)


def _first_k(u: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` smallest entries per row, in ``argsort(kind="stable")`` order (ties
    to the lower index), by ``k`` passes of ``argmin`` (which returns the first minimum), not a full sort.
    Overwrites the picked entries of ``u``."""
    rows = np.arange(u.shape[0])
    out = np.empty((u.shape[0], k), dtype=np.int64)
    for j in range(k):
        idx = np.argmin(u, axis=1)
        out[:, j] = idx
        u[rows, idx] = _TAKEN  # above every value and the ineligible marker
    return out


def draw_tag_indices(
    seed: int, keys: np.ndarray, ages: np.ndarray, chunk: int = 100_000
) -> dict[str, np.ndarray]:
    """Tag kind -> int array (n, k) of picked entry indices into :func:`vocabulary` (kind): distinct,
    age-appropriate, in pick order. Each persona's picks are a seeded random permutation per kind (top-k
    of per-entry uniforms)."""
    keys = np.asarray(keys)
    ages = np.nan_to_num(np.asarray(ages, dtype=float), nan=0.0)
    out: dict[str, np.ndarray] = {}
    for kind, (k, _field) in TAG_KINDS.items():
        entries = vocabulary(kind)
        mins = np.array([e.min_age for e in entries])
        age_limited = np.flatnonzero(mins > 0)
        k_eff = min(k, len(entries))
        parts = []
        for lo in range(0, len(keys), chunk):
            u = _uniform_bits(seed, f"personas.tags.{kind}", keys[lo : lo + chunk], len(entries))
            for j in age_limited:  # the few entries with a minimum age
                u[ages[lo : lo + chunk] < mins[j], j] = _INELIGIBLE
            parts.append(_first_k(u, k_eff))
        out[kind] = np.concatenate(parts) if parts else np.empty((0, k_eff), dtype=np.int64)
    return out


def draw_tag_arrays(
    seed: int, keys: np.ndarray, ages: np.ndarray, chunk: int = 100_000
) -> dict[str, np.ndarray]:
    """Tag kind -> array (n, k) of picked entries: distinct, age-appropriate, in pick order. Each
    persona's picks are a seeded random permutation per kind (top-k of per-entry uniforms)."""
    out: dict[str, np.ndarray] = {}
    for kind, order in draw_tag_indices(seed, keys, ages, chunk).items():
        texts = np.array([e.text for e in vocabulary(kind)], dtype=object)
        out[kind] = texts[order]
    return out


def draw_tags(seed: int, keys: np.ndarray, ages: np.ndarray) -> list[dict[str, list[str]]]:
    """For each persona: tag kind -> picked entries (see :func:`draw_tag_arrays`)."""
    arrays = draw_tag_arrays(seed, keys, ages)
    return [{kind: list(arr[i]) for kind, arr in arrays.items()} for i in range(len(keys))]


def render_tags(tags: dict[str, list[str]], kind: str) -> str:
    """Tag text for a field: entries joined by "; "."""
    return "; ".join(tags.get(kind, []))

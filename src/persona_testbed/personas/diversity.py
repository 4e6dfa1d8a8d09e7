"""Diversity of LLM-written persona text, and the idiosyncratic categories that drive it.

- ``IDIOSYNCRATIC_CATEGORIES``: a shipped vocabulary of themes (lifestyle, personality, hobbies, habits,
  ...). Each persona gets a seeded selection (``pick_categories``) that its enrichment prompt asks the
  model to write about, so a population does not collapse onto one template.
- ``distinct_n``: distinct n-gram ratio (unique n-grams / all n-grams over the corpus; Li et al. 2016).
- ``mean_pairwise_tfidf_distance``: mean over all pairs of ``1 - cosine`` between TF-IDF vectors
  (scikit-learn's ``TfidfVectorizer``).
- ``near_duplicates``: personas drawn from the same census record whose enriched text is near-identical.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np

from ..core.seeds import rng
from .record import PERSONA_FIELDS, Persona

# Themes an enrichment prompt can ask the model to weave into a persona's prose. None of them is tied to a
# protected attribute; each is a short phrase the prompt quotes verbatim.
IDIOSYNCRATIC_CATEGORIES: tuple[str, ...] = (
    "lifestyle",
    "personality",
    "hobbies",
    "habits",
    "daily routine",
    "food and cooking",
    "sleep patterns",
    "social life",
    "friendships",
    "family traditions",
    "childhood memories",
    "pet peeves",
    "guilty pleasures",
    "aspirations",
    "small fears",
    "superstitions",
    "sense of humor",
    "communication style",
    "money habits",
    "shopping habits",
    "home and living space",
    "neighborhood life",
    "travel",
    "music taste",
    "reading and media",
    "technology use",
    "sports and exercise",
    "collections",
    "pets and animals",
    "clothing style",
    "weekend rituals",
    "community involvement",
    "learning new skills",
    "work habits",
    "handling stress",
    "seasonal routines",
    "favorite places",
    "local knowledge",
    "crafts and making things",
    "relationship with nature",
)

DEFAULT_CATEGORIES_PER_PERSONA = 3
NEAR_DUPLICATE_COSINE = 0.9
_TOKEN = re.compile(r"[a-z0-9']+")


def pick_categories(
    seed: int,
    persona_id: str,
    k: int = DEFAULT_CATEGORIES_PER_PERSONA,
    vocabulary: Sequence[str] = IDIOSYNCRATIC_CATEGORIES,
) -> list[str]:
    """A seeded selection of ``k`` distinct categories for one persona (same seed + id -> same picks)."""
    if k < 0 or k > len(vocabulary):
        raise ValueError(f"categories per persona must be in 0..{len(vocabulary)}, got {k}")
    idx = rng(seed, "personas.enrich.categories", persona_id).choice(len(vocabulary), size=k, replace=False)
    return [vocabulary[int(i)] for i in idx]


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens (letters, digits, apostrophes)."""
    return _TOKEN.findall(text.lower())


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    """Distinct-n: unique n-grams / total n-grams over all ``texts`` (None when there are no n-grams)."""
    if n < 1:
        raise ValueError("n must be >= 1")
    total = 0
    unique: set[tuple[str, ...]] = set()
    for text in texts:
        toks = tokenize(text)
        grams = [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
        total += len(grams)
        unique.update(grams)
    return len(unique) / total if total else None


def tfidf_matrix(texts: Sequence[str]):
    """L2-normalised TF-IDF rows for ``texts`` (scikit-learn defaults), or None for an empty vocabulary."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        return TfidfVectorizer(token_pattern=r"[A-Za-z0-9']+").fit_transform(list(texts))
    except ValueError:  # empty vocabulary: every text is blank
        return None


def mean_pairwise_tfidf_distance(texts: Sequence[str]) -> float | None:
    """Mean of ``1 - cosine(tfidf_i, tfidf_j)`` over all pairs i < j (None for fewer than two texts)."""
    if len(texts) < 2:
        return None
    x = tfidf_matrix(texts)
    n = len(texts)
    if x is None:
        return 0.0
    # Rows are L2-normalised (or all zero), so the sum of cos(i, j) over ordered pairs i != j is
    # ||sum_i x_i||^2 - sum_i ||x_i||^2: exact, O(nnz) memory, no n x n matrix.
    total = np.asarray(x.sum(axis=0)).ravel()
    self_sim = float(x.multiply(x).sum())
    mean_cos = (float(total @ total) - self_sim) / (n * (n - 1))
    return float(1.0 - mean_cos)


def llm_fields(persona: Persona) -> list[str]:
    """Names of the fields an LLM wrote for this persona, in the paper's order."""
    return [n for n in PERSONA_FIELDS if persona.fields[n].provenance == "llm"]


def enriched_text(persona: Persona) -> str:
    """All LLM-written field values of a persona joined into one text."""
    return "\n".join(persona.fields[n].value for n in llm_fields(persona))


def diversity_figures(texts: Sequence[str]) -> dict[str, Any]:
    """distinct-1/2/3 and mean pairwise TF-IDF cosine distance of a corpus."""
    return {
        "texts": len(texts),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "distinct_3": distinct_n(texts, 3),
        "mean_pairwise_tfidf_distance": mean_pairwise_tfidf_distance(texts),
    }


def diversity_report(personas: Sequence[Persona]) -> dict[str, Any]:
    """Diversity of the LLM-written text: overall (each persona's enriched fields joined) and per field."""
    enriched = [p for p in personas if llm_fields(p)]
    overall = diversity_figures([enriched_text(p) for p in enriched])
    per_field: dict[str, Any] = {}
    for name in PERSONA_FIELDS:
        vals = [p.fields[name].value for p in enriched if p.fields[name].provenance == "llm"]
        if vals:
            per_field[name] = diversity_figures(vals)
    return {"personas": len(enriched), "overall": overall, "per_field": per_field}


def near_duplicates(
    personas: Sequence[Persona], threshold: float = NEAR_DUPLICATE_COSINE
) -> list[dict[str, Any]]:
    """Pairs of personas drawn from the same census record whose enriched texts have TF-IDF cosine >= threshold.

    IDF is fitted on the whole population's enriched text, so a shared boilerplate phrase counts for
    little. Returns ``[{"a", "b", "source", "cosine"}]``; nothing is dropped.
    """
    enriched = [p for p in personas if llm_fields(p)]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, p in enumerate(enriched):
        key = (p.source.year, p.source.state, p.source.serialno, p.source.sporder)
        groups.setdefault(key, []).append(i)
    if not any(len(g) > 1 for g in groups.values()):
        return []
    x = tfidf_matrix([enriched_text(p) for p in enriched])
    out: list[dict[str, Any]] = []
    for key, members in groups.items():
        for i, j in combinations(members, 2):
            cos = 1.0 if x is None else float((x[i] @ x[j].T).toarray()[0, 0])
            if cos >= threshold:
                out.append(
                    {
                        "a": enriched[i].id,
                        "b": enriched[j].id,
                        "cosine": round(cos, 6),
                        "source": dict(zip(("year", "state", "serialno", "sporder"), key)),
                    }
                )
    return out


__all__ = [
    "IDIOSYNCRATIC_CATEGORIES",
    "DEFAULT_CATEGORIES_PER_PERSONA",
    "NEAR_DUPLICATE_COSINE",
    "pick_categories",
    "tokenize",
    "distinct_n",
    "tfidf_matrix",
    "mean_pairwise_tfidf_distance",
    "llm_fields",
    "enriched_text",
    "diversity_figures",
    "diversity_report",
    "near_duplicates",
]

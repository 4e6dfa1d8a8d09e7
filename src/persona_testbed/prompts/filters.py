"""Cheap deterministic filters: question mark, word count, exact and near duplicates.

Each filter takes the prompts still in play and writes a verdict into each one; none of them removes
anything from the list, so every prompt keeps a record of why it was (not) kept.

Near duplicates: texts are lower-cased, punctuation is dropped and whitespace collapsed; a TF-IDF
vector over word 1- and 2-grams (sublinear tf, l2-normalised) is built for each prompt, and a prompt
whose cosine similarity to an EARLIER prompt that is still in play is at least ``threshold``
(default 0.9) fails, naming that prompt. Identical normalised texts have cosine 1.0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .record import FilterVerdict, Prompt

MIN_WORDS = 5
NEAR_DUPLICATE_THRESHOLD = 0.9

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower-case, punctuation removed, whitespace collapsed."""
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


def word_count(text: str) -> int:
    return len(text.split())


def apply_question_mark(prompts: Sequence[Prompt]) -> None:
    for p in prompts:
        ok = "?" in p.text
        p.verdicts["question_mark"] = FilterVerdict(
            verdict="pass" if ok else "fail", reason="contains '?'" if ok else "no question mark")


def apply_min_words(prompts: Sequence[Prompt], min_words: int = MIN_WORDS) -> None:
    for p in prompts:
        n = word_count(p.text)
        ok = n >= min_words
        p.verdicts["min_words"] = FilterVerdict(
            verdict="pass" if ok else "fail", reason=f"{n} words ({'>=' if ok else '<'} {min_words})",
            detail={"words": n})


def apply_exact_duplicates(prompts: Sequence[Prompt]) -> None:
    """The first occurrence of a text passes; each later one fails naming the first."""
    first: dict[str, Prompt] = {}
    for p in prompts:
        original = first.get(p.text)
        if original is None:
            first[p.text] = p
            p.verdicts["exact_duplicate"] = FilterVerdict(verdict="pass", reason="first occurrence")
        else:
            p.verdicts["exact_duplicate"] = FilterVerdict(
                verdict="fail", reason=f"same text as {original.id} (item {original.source_index})",
                detail={"duplicate_of": original.id})


def similarity_neighbours(texts: Sequence[str], threshold: float, chunk: int = 1024) -> list[list[tuple[int, float]]]:
    """For each text i, the earlier texts j < i with TF-IDF cosine >= threshold (sparse, chunked)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(texts)
    out: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    normalised = [normalise(t) for t in texts]
    try:
        x = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b",
                            dtype=np.float32).fit_transform(normalised)
    except ValueError:  # empty vocabulary: fall back to identical normalised text
        x = None
    if x is not None:
        xt = x.T.tocsc()
        for start in range(0, n, chunk):
            sims = (x[start:start + chunk] @ xt).tocoo()
            for i, j, s in zip(sims.row, sims.col, sims.data):
                gi = start + int(i)
                if int(j) < gi and s >= threshold - 1e-6:
                    out[gi].append((int(j), float(s)))
    seen: dict[str, int] = {}
    for i, t in enumerate(normalised):  # identical normalised text is a duplicate even without terms
        if t in seen and all(j != seen[t] for j, _ in out[i]):
            out[i].append((seen[t], 1.0))
        seen.setdefault(t, i)
    for lst in out:
        lst.sort()
    return out


def apply_near_duplicates(prompts: Sequence[Prompt], threshold: float = NEAR_DUPLICATE_THRESHOLD) -> None:
    """Greedy in source order: fail a prompt similar (>= threshold) to an earlier one that passed."""
    neighbours = similarity_neighbours([p.text for p in prompts], threshold)
    passed = np.zeros(len(prompts), dtype=bool)
    for i, p in enumerate(prompts):
        hit = next(((j, s) for j, s in neighbours[i] if passed[j]), None)
        if hit is None:
            passed[i] = True
            p.verdicts["near_duplicate"] = FilterVerdict(
                verdict="pass", reason=f"no earlier prompt with cosine >= {threshold}")
        else:
            j, s = hit
            p.verdicts["near_duplicate"] = FilterVerdict(
                verdict="fail", reason=f"near-duplicate of {prompts[j].id} (cosine {s:.3f} >= {threshold})",
                detail={"duplicate_of": prompts[j].id, "cosine": round(s, 4)})
